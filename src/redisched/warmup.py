"""Before a consumer's first lease: every script loaded, the server's clock read to the µs.

The Worker, the push dispatcher and the HTTP service (its long-poll reserves) do this at
start. Without it the first job due after an idle start is late twice over: its lease meets
NOSCRIPT (nothing has called ``reserve.lua`` yet; the SCRIPT LOAD and retry cost ~5 ms), and
the alarm that wakes for it is set from a lease's ``now_ms``, floored to the millisecond, so
it may fire a millisecond late. ``TIME`` has microseconds.
"""

from __future__ import annotations

import logging
import time

from .client import AsyncClient
from .errors import BackendError
from .timing import ServerClock

log = logging.getLogger(__name__)

CLOCK_SAMPLES = 5
"""``TIME`` round trips read at start to learn the server clock's offset."""


async def warm_up(client: AsyncClient, clock: ServerClock) -> None:
    """Load every script on the server (each primary of a cluster), then teach ``clock`` the
    server's from :data:`CLOCK_SAMPLES` reads of ``TIME``.

    Raises:
        BackendError: when Redis is unavailable.
    """
    await client.execute(client.ops.load_scripts())
    for _ in range(CLOCK_SAMPLES):
        sent = time.time()
        now_ms = await client.execute(client.ops.server_time_ms())
        clock.observe(now_ms, sent, time.time(), step_ms=0.001)


async def warm_up_or_warn(client: AsyncClient, clock: ServerClock, who: str) -> bool:
    """:func:`warm_up`, logging an unavailable Redis instead of raising: a service starts all
    the same, and its leases load the scripts and learn the clock as they go. False when
    Redis (or a Cluster primary) could not be reached."""
    try:
        await warm_up(client, clock)
    except BackendError as exc:
        log.warning("%s could not load the scripts and read the server clock yet: %s", who, exc)
        return False
    return True


__all__ = ["CLOCK_SAMPLES", "warm_up", "warm_up_or_warn"]
