"""The HTTP service: REST API (pull), metrics, and the hooks the dispatcher and dashboard use."""

from .app import create_app
from .endpoint import Endpoint
from .metrics import Metrics
from .runtime import Runtime, Service, ServiceFactory, runtime

__all__ = ["Endpoint", "Metrics", "Runtime", "Service", "ServiceFactory", "create_app", "runtime"]
