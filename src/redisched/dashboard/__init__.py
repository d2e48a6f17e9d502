"""The web dashboard of ``redisched serve``, at ``/`` on the API's port.

A page shell with htmx (vendored in ``static/``) polling server-rendered fragments every two
seconds, actions sent to the JSON API, and a server-side SVG chart of upcoming jobs. No build
step, nothing fetched from the network. ``serve`` passes :data:`ROUTES`, :data:`ENDPOINTS`
and :data:`OPEN_PATHS` to ``create_app``.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from .api import ENDPOINTS
from .soft import SoftStatusMiddleware
from .views import Dashboard, open_paths

__all__ = ["ENDPOINTS", "MIDDLEWARE", "OPEN_PATHS", "ROUTES", "Dashboard", "routes"]


def routes() -> list[BaseRoute]:
    """The dashboard's routes: the page at ``/``, its fragments and static files."""
    return Dashboard.create().routes()


ROUTES: tuple[BaseRoute, ...] = tuple(routes())
"""The routes ``create_app`` serves after the API's."""
OPEN_PATHS: frozenset[str] = open_paths()
"""Paths served without a token: the page shell and static files, which hold no job data."""
MIDDLEWARE: tuple[Middleware, ...] = (Middleware(SoftStatusMiddleware),)
"""Middleware ``create_app`` runs: expected refusals as 200 for the dashboard's own requests."""
