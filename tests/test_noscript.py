"""A server that lost its script cache (restart, failover) gets the scripts again by itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from tests.conftest import FakeClock


async def test_script_flush_is_recovered(api: object, topic: str, raw_redis: redis.Redis) -> None:
    client = api
    await client.put(topic, "a", b"1")  # type: ignore[attr-defined]
    raw_redis.script_flush()
    assert (await client.get(topic, "a")).body == b"1"  # type: ignore[attr-defined]
    raw_redis.script_flush()
    jobs = await client.reserve_many(topic, 1)  # type: ignore[attr-defined]
    raw_redis.script_flush()
    acked, lease = await client.ack_and_lease(topic, jobs, 1)  # type: ignore[attr-defined]
    assert acked == [True] and lease.jobs == []


async def test_the_refill_check_after_a_lost_script_reads_after_it(
    api: Any, clock: FakeClock, topic: str, raw_redis: redis.Redis
) -> None:
    # The refill set is read in the delete's round trip. When the server had lost delete.lua,
    # that read ran before the delete (sent again alone), so the cron schedule it left dry was
    # not refilled by this call (found by tests/test_state_machine.py).
    clock.now = datetime(2027, 5, 1, 8, 0, 30, tzinfo=UTC).timestamp()
    await api.schedule(topic, "m", b"", cron="* * * * *")
    pending = "m@2027-05-01T08:01:00Z"
    await api.reschedule(topic, pending, run_at=datetime(2027, 5, 1, 12, 0, tzinfo=UTC))
    raw_redis.script_flush()
    assert await api.delete(topic, pending) is True  # past all 48 times: the refill puts one
    s = await api.get_schedule(topic, "m")
    assert s.next_run_at == datetime(2027, 5, 1, 12, 1, tzinfo=UTC)
