"""Throughput over the last day: sampled totals, per-minute figures, the chart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import redisched
from redisched.dashboard import chart
from redisched.http.throughput import ThroughputSampler
from redisched.throughput import KEEP_MINUTES, member, parse
from tests.conftest import FakeClock


def test_parse_spreads_deltas_over_the_minutes_between_samples() -> None:
    now = 30_000_000
    members = [
        member(now - 3, (10, 0, 0, 0)).encode(),
        member(now - 3, (99, 9, 9, 9)).encode(),  # a second server's sample: the first counts
        member(now - 2, (16, 2, 1, 0)).encode(),
        member(now, (20, 6, 1, 1)).encode(),  # a minute without a sample in between
    ]
    found = parse("t", members, now, minutes=5)
    assert found.minutes[-1] == datetime.fromtimestamp(now * 60, tz=UTC)
    assert found.put == [0, 0, 6, 2, 2] and found.acked == [0, 0, 2, 2, 2]
    assert found.failed == [0, 0, 1, 0, 0] and found.dead == [0, 0, 0, 0, 1]
    restarted = parse("t", [member(now - 1, (50, 0, 0, 0)).encode(),
                            member(now, (3, 0, 0, 0)).encode()], now, minutes=2)  # fmt: skip
    assert restarted.put == [0, 0]  # a deleted topic counts from zero again: no negative figure
    # two servers' samples of one minute, the later one's text sorting first ("150" < "99"):
    # the first sample, the smaller totals, counts
    both = [member(now - 1, (150, 0, 0, 0)).encode(), member(now - 1, (99, 0, 0, 0)).encode(),
            member(now, (200, 0, 0, 0)).encode()]  # fmt: skip
    assert parse("t", sorted(both), now, minutes=1).put == [101]


def test_chart_of_a_quiet_day_draws_flat_lines() -> None:
    found = parse(None, [], 30_000_000)
    drawn = chart.lines(found)
    assert len(found.minutes) == KEEP_MINUTES and drawn.total == 0
    assert [line.name for line in drawn.lines] == ["put", "acked", "failed", "dead"]
    assert [t.label for t in drawn.x_ticks] == ["-24h", "-18h", "-12h", "-6h", "now"]


@pytest.mark.asyncio
async def test_the_sampler_records_every_topic_and_their_sum(
    redis_url: str, topic: str, clock: FakeClock
) -> None:
    other = topic + "-2"
    async with redisched.AsyncClient.from_url(redis_url, clock=clock) as client:
        sampler = ThroughputSampler(client)
        await client.put(topic, "first", b"")
        await client.put(other, "first", b"")
        await sampler.sample()  # a topic's first sample is its starting point
        await client.put_many(topic, [("a", b""), ("b", b""), ("c", b"")])
        await client.put(other, "x", b"")
        await client.delete(topic, "first")
        job = await client.reserve(topic)
        await client.ack(job)
        held = await client.reserve(topic)
        await client.release(held, reason="flaky")
        clock.advance(60)
        await sampler.sample()
        mine = await client.throughput(topic)
        assert (mine.put[-1], mine.acked[-1], mine.failed[-1], mine.dead[-1]) == (3, 1, 1, 0)
        assert sum(mine.put) == 3 and len(mine.minutes) == KEEP_MINUTES
        everyone = await client.throughput()
        assert everyone.put[-1] >= 4  # other tests' topics may add to the sum
        clock.advance(2 * 86_400)  # a day later the samples are trimmed as new ones come
        await sampler.sample()
        assert sum((await client.throughput(topic)).put) == 0
        await client.delete_topic(topic)
        assert await client.redis.exists(f"redisched:{{{topic}}}:throughput") == 0


def test_the_put_total_counts_jobs_put_not_puts_refused(redis_url: str, topic: str) -> None:
    # it counted every id sent: a create-only put of an existing id, or a version conflict,
    # showed on the dashboard's puts per minute and in redisched_puts_total
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "a", b"1")
    client.put(topic, "a", b"again")  # exists
    with pytest.raises(redisched.VersionConflict):
        client.put(topic, "a", b"cas", replace=True, if_version=7)
    client.put(topic, "a", b"2", replace=True)
    client.put_many(topic, [("a", b"x"), ("b", b"y")])  # a exists, b is created
    job = client.reserve(topic)
    assert job is not None
    client.put(topic, job.id, b"next", replace=True)  # pending: it waits for the attempt
    assert client.stats(topic).total_put == 4
