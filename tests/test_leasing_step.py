"""Lessee.step with a consumer that has no room: one ack round trip per step, then lease."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from redisched.leasing import ACK_DELAY, Lessee, Round


async def test_a_full_consumer_acks_once_per_step_and_then_decides_again() -> None:
    lessee = Lessee(SimpleNamespace(), "t", SimpleNamespace())  # type: ignore[arg-type]
    exchanged: list[int] = []

    async def exchange(want: int, retry_for: float | None = None) -> Round:
        done, lessee.done = lessee.done, []
        exchanged.append(want)
        await asyncio.sleep(0)  # a round trip
        lessee.finish(SimpleNamespace(token=f"t{len(exchanged)}", id="j"))  # type: ignore[arg-type]
        return Round(want, [], [True] * len(done), done)

    lessee.exchange = exchange  # type: ignore[method-assign]
    room = {"want": 0}
    capacity: Any = SimpleNamespace(
        want=lambda: room["want"], size=lambda: 100, busy=lambda: True,
        take=lambda n: None, give=lambda n: None, start=lambda lessee, jobs: None,
    )  # fmt: skip
    lessee.finish(SimpleNamespace(token="t0", id="j"))  # type: ignore[arg-type]
    lessee.done_since -= ACK_DELAY * 2  # the ack has waited long enough
    # A job finishes during every round trip: acking until none is pending never ended
    # while the consumer was busy, and leased nothing meanwhile.
    await asyncio.wait_for(lessee.step(capacity, lambda: False), 1.0)
    assert exchanged == [0]
    room["want"] = 50
    lessee.saturated = False
    await asyncio.wait_for(lessee.step(capacity, lambda: True), 1.0)
    assert exchanged == [0, 50]  # room again: the next step leases
