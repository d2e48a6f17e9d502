"""timeline.lua and expire: the data behind the dashboard's chart and its release button."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from redisched import InvalidArgument, JobState, StaleReservation
from redisched.ops import Operations, to_datetime
from tests.conftest import FakeClock


async def test_counts_jobs_per_minute_ahead(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put_many(topic, [(f"a{i}", b"") for i in range(3)], delay=30)  # minute 0
    await api.put(topic, "b", b"", delay=60)  # exactly at the end of minute 0
    await api.put(topic, "c", b"", delay=61)  # minute 1
    await api.put(topic, "d", b"", delay=59 * 60 + 30)  # the last minute
    await api.put(topic, "e", b"", delay=2 * 3600)  # beyond the hour
    await api.put(topic, "now", b"")  # due already: ready, not on the timeline

    timeline = await api.timeline(topic, width=60, buckets=60)

    assert timeline.now == to_datetime(round(clock.now * 1000))
    assert timeline.width == 60 and len(timeline.counts) == 60
    assert timeline.counts[:2] == [4, 1] and timeline.counts[59] == 1
    assert sum(timeline.counts) == 6
    hours = await api.timeline(topic, width=timedelta(hours=1), buckets=24)
    assert hours.counts[:3] == [6, 1, 0] and hours.width == 3600


async def test_oldest_ready_is_the_earliest_due_time(
    api: Any, topic: str, clock: FakeClock
) -> None:
    assert (await api.timeline(topic, buckets=1)).oldest_ready is None
    await api.put(topic, "later", b"", delay=100)
    assert (await api.timeline(topic, buckets=1)).oldest_ready is None
    first_due = to_datetime(round((clock.now + 100) * 1000))
    clock.advance(500)  # "later" is due but not promoted (no reserve ran)
    await api.put(topic, "fresh", b"")  # straight to ready, newer
    timeline = await api.timeline(topic, buckets=1)
    assert timeline.oldest_ready == first_due
    assert (timeline.now - timeline.oldest_ready).total_seconds() == 400
    # reserve promotes "later" behind "fresh" (ready first) and takes "fresh"
    assert (await api.reserve(topic)).id == "fresh"
    assert (await api.timeline(topic, buckets=1)).oldest_ready == first_due
    assert (await api.reserve(topic)).id == "later"
    assert (await api.timeline(topic, buckets=1)).oldest_ready is None


async def test_expire_returns_a_stuck_reservation(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"x", ttr=3600)
    held = await api.reserve(topic)
    assert await api.expire(topic, "j") is True
    job = await api.get(topic, "j")
    assert job.state is JobState.READY and job.attempts == 1
    with pytest.raises(StaleReservation):
        await api.ack(held)
    assert await api.expire(topic, "j") is False  # not reserved any more
    assert await api.expire(topic, "missing") is False
    assert (await api.reserve(topic)).attempts == 2


async def test_expire_sends_a_job_out_of_attempts_to_dead(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"x", max_attempts=1)
    await api.reserve(topic)
    assert await api.expire(topic, "j") is True
    assert (await api.get(topic, "j")).state is JobState.DEAD


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": 0.5}, "width"),
        ({"width": 86_401}, "width"),
        ({"width": "60"}, "width"),
        ({"buckets": 0}, "buckets"),
        ({"buckets": 1441}, "buckets"),
        ({"buckets": 2.0}, "buckets"),
    ],
)
def test_timeline_rejects_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Operations().timeline("t", **kwargs)
    assert info.value.argument == field


def test_expire_rejects_a_bad_id_or_topic() -> None:
    with pytest.raises(InvalidArgument) as info:
        Operations().expire("t", "")
    assert info.value.argument == "id"
    with pytest.raises(InvalidArgument) as info:
        Operations().expire("a{b}", "j")
    assert info.value.argument == "topic"
