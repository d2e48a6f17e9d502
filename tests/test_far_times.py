"""Times no datetime holds: a client ``clock`` that does not give epoch seconds is refused
naming ``clock``, and a job stored past the year 9999 (a raw script call may store any
number) reads as the latest datetime everywhere instead of failing every reader."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner

import redisched
from redisched import InvalidArgument
from redisched.cli import main
from redisched.convert import LATEST
from tests.http_fixtures import web
from tests.raw_scripts import call

__all__ = ["web"]  # fixtures

FAR_MS = 1_700_000_000_000_000  # a clock in ms taken for seconds: the year ~55,800
BAD_CLOCKS: list[Any] = [
    lambda: time.time() * 1000,
    lambda: datetime.now(UTC),
    lambda: float("nan"),
    lambda: -1.0,
    lambda: True,
    lambda: "1700000000",
]


@pytest.mark.parametrize(
    "clock", BAD_CLOCKS, ids=["ms", "datetime", "nan", "negative", "bool", "str"]
)
def test_a_clock_that_gives_no_epoch_seconds_is_refused_naming_it(
    redis_url: str, topic: str, clock: Any
) -> None:
    """A clock in milliseconds stored a job due in the year 58,903, which then failed every
    read of the topic (stats, GET, the dashboard's overview); a datetime raised a TypeError."""
    client = redisched.Client.from_url(redis_url, clock=clock)
    for action in (
        lambda: client.put(topic, "j", b"x", delay=1),
        lambda: client.put_many(topic, [("k", b"x")]),
        lambda: client.schedule(topic, "s", b"x", every=60),
    ):
        with pytest.raises(InvalidArgument) as refused:
            action()
        assert refused.value.argument == "clock", refused.value
    plain = redisched.Client.from_url(redis_url)
    assert plain.get(topic, "j") is None and plain.get(topic, "k") is None
    assert plain.get_schedule(topic, "s") is None


async def test_the_async_client_refuses_the_same_clock(redis_url: str, topic: str) -> None:
    async with redisched.AsyncClient.from_url(redis_url, clock=lambda: time.time() * 1000) as c:
        with pytest.raises(InvalidArgument) as refused:
            await c.put(topic, "j", b"x")
        assert refused.value.argument == "clock"


async def test_a_job_stored_past_the_year_9999_reads_as_the_latest_time(
    redis_url: str, topic: str, web: httpx.AsyncClient
) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "near", b"0", delay=60)  # the topic registered, as any client does
    conn = redis.Redis.from_url(redis_url)
    stored = call(
        conn, topic, "put", {"now_ms": FAR_MS, "delay_ms": 1000, "id": ["far"], "body": [b"1"]}
    )
    assert stored[0] == 1, stored
    job = client.get(topic, "far")
    assert job is not None and job.run_at == LATEST
    assert client.stats(topic).scheduled == 2
    assert client.jobs(topic, "scheduled").jobs[-1].run_at == LATEST
    shown = await web.get(f"/v1/topics/{topic}/jobs/far")
    assert shown.status_code == 200 and shown.json()["run_at"].startswith("9999-12-31"), shown.text
    assert (await web.get(f"/v1/topics/{topic}")).status_code == 200
    overview = await web.get("/dashboard/overview")
    assert overview.status_code == 200 and topic in overview.text
    page = await web.get("/dashboard/topic", params={"topic": topic})
    assert page.status_code == 200
    stats = CliRunner().invoke(main, ["stats", topic], env={"REDISCHED_REDIS_URL": redis_url})
    assert stats.exit_code == 0, stats.output
    # it can still be reached: rescheduled to now, it runs
    client.reschedule(topic, "far", delay=0)
    leased = client.reserve(topic)
    assert leased is not None and leased.id == "far"
    client.ack(leased)
