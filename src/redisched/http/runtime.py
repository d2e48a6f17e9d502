"""What the handlers of one app share: settings, the client, the wake-up hub, metrics.

``create_app`` builds one :class:`Runtime` in its lifespan and keeps it on
``app.state.runtime``; routes added by others (the dashboard) read it with :func:`runtime`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from starlette.requests import Request

from ..client import AsyncClient
from ..config import Settings
from ..leasing import LimitsCache
from ..partition_setting import PartitionMap
from ..timing import ServerClock
from ..unreachable import Unreachable
from ..wakeup import Wakeups
from .metrics import Metrics
from .turns import Turns


@dataclass(eq=False)
class Runtime:
    """The per-app state.

    Attributes:
        settings: the service settings.
        client: the AsyncClient every route uses.
        wakeups: the process's single Pub/Sub listener, for long polls and the dispatcher.
        metrics: the Prometheus registry served at /metrics.
        closing: set when the service begins to shut down; long polls then answer at once.
        topic_listeners: called with a topic's name after its settings change over the API
            (the dispatcher re-reads webhooks then instead of at its next refresh).
        limits: each topic's concurrency and rate as last read (for HTTP reserves).
        clock: the server clock every lessee of the process shares (HTTP reserves, the push
            dispatcher), read at startup (see :mod:`redisched.warmup`).
        held: topics whose deliveries the push dispatcher holds -> why (their webhook is
            refused by the target policy); the dashboard shows it.
        services: the background parts running now, in start order.
        partitions: the partitioned topics' layouts as last read (routing by id, reserves).
        turns: each topic's turn among its long polls (see :class:`~.turns.Turns`).
        unreachable: partitions whose last lease failed, which reserves pass over for a
            while (:class:`~redisched.partitions.Sweep`).
        unreadable: topics the dashboard's overview could not read lately, shown as
            unreachable without a try for a while (:func:`redisched.dashboard.data.overview`).
    """

    settings: Settings
    client: AsyncClient
    wakeups: Wakeups
    metrics: Metrics
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    topic_listeners: list[Callable[[str], None]] = field(default_factory=list)
    limits: LimitsCache = field(default_factory=LimitsCache)
    clock: ServerClock = field(default_factory=ServerClock)
    held: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    partitions: PartitionMap = field(default_factory=PartitionMap)
    turns: Turns = field(default_factory=Turns)
    unreachable: Unreachable = field(default_factory=Unreachable)
    unreadable: Unreachable = field(default_factory=Unreachable)

    def topic_changed(self, topic: str) -> None:
        """Tell the listeners that ``topic``'s settings changed."""
        for listener in self.topic_listeners:
            listener(topic)

    def failures(self) -> list[str]:
        """Why background parts that should be running are not (empty when all are well)."""
        found = (s.failure() for s in self.services if isinstance(s, Watched))
        return [reason for reason in found if reason is not None]


class Service(Protocol):
    """A background part of the server (requeue loop, push dispatcher)."""

    async def start(self) -> None:
        """Begin working; return once running."""

    async def stop(self) -> None:
        """Finish or abandon work in flight and return when stopped."""


@runtime_checkable
class Watched(Protocol):
    """A service whose background task can die; ``/healthz`` answers 503 when it has."""

    def failure(self) -> str | None:
        """Why the service stopped working although nobody stopped it, else None."""


ServiceFactory = Callable[[Runtime], Service]
"""Builds a service from the app's runtime when the app starts."""


def runtime(request: Request) -> Runtime:
    """The Runtime of the app serving ``request``."""
    state = request.app.state
    # Starlette's State answers attributes from its ``_state`` dict through __getattr__, after
    # a failed lookup: about 2 us a request under load. Read the dict when it is there.
    value: Runtime | None = getattr(state, "_state", {}).get("runtime")
    if value is None:
        value = state.runtime
    return value
