"""redisched: a delayed-job scheduler on Redis in which every job has a client-chosen id."""

from .client import AsyncClient, Client
from .errors import (
    BackendError,
    ClientClosed,
    InvalidArgument,
    NotReplicated,
    RedischedError,
    StaleReservation,
    TopicBusy,
    VersionConflict,
)
from .models import (
    DEFAULT_MAX_ATTEMPTS,
    EventKind,
    HistoryPage,
    Job,
    JobEvent,
    JobHistory,
    JobPage,
    JobState,
    Lease,
    Outcome,
    PutResult,
    PutStatus,
    Schedule,
    Timeline,
    TopicStats,
)
from .retry import Backoff, Retry, TopicBackoff
from .worker import Worker

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "AsyncClient",
    "BackendError",
    "Backoff",
    "Client",
    "ClientClosed",
    "EventKind",
    "HistoryPage",
    "InvalidArgument",
    "Job",
    "JobEvent",
    "JobHistory",
    "JobPage",
    "JobState",
    "Lease",
    "NotReplicated",
    "Outcome",
    "PutResult",
    "PutStatus",
    "RedischedError",
    "Retry",
    "Schedule",
    "StaleReservation",
    "Timeline",
    "TopicBackoff",
    "TopicBusy",
    "TopicStats",
    "VersionConflict",
    "Worker",
]
