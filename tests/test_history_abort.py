"""An aborted job's history says it was aborted, not deleted (docs/design.md section 7)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import redisched
from redisched import EventKind, InvalidArgument, Outcome, StaleReservation, scripts
from redisched.history import cancel_sent


def kinds(history: Any) -> list[str]:
    return [e.kind.value for e in history.events]


@pytest.mark.asyncio
async def test_an_aborted_pending_job_ends_aborted(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"")
    assert await api.abort(topic, "a") is True
    history = await api.history(topic, "a")
    assert history.outcome is Outcome.ABORTED and kinds(history) == ["put", "aborted"]
    assert history.events[-1].detail is None and not cancel_sent(history.events[-1])
    assert await api.abort(topic, "a") is False  # gone: nothing more is recorded
    assert kinds(await api.history(topic, "a")) == ["put", "aborted"]


@pytest.mark.asyncio
async def test_an_aborted_running_job_ends_aborted_and_its_holder_is_told(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    await api.put(topic, "r", b"")
    job = await api.reserve(topic)
    with raw_redis.pubsub() as pubsub:
        pubsub.psubscribe(f"*{{{topic}}}:wake")
        assert pubsub.get_message(timeout=1)["type"] == "psubscribe"
        assert await api.abort(topic, "r") is True
        # the cancel, as a delete sends: the reservation's token, then the id
        assert pubsub.get_message(timeout=1)["data"] == f"c{job.token}:r".encode()
    history = await api.history(topic, "r")
    assert history.outcome is Outcome.ABORTED
    assert kinds(history) == ["put", "reserved", "aborted"]
    assert history.events[-1].detail == "was running; cancel sent"
    assert cancel_sent(history.events[-1]) and history.events[-1].attempt == 1
    with pytest.raises(StaleReservation):  # the holder's ack is stale, as after a delete
        await api.ack(job)


@pytest.mark.asyncio
async def test_an_abort_keeps_its_reason(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"")
    await api.put(topic, "r", b"")
    await api.reserve(topic)  # a (the first put)
    assert await api.abort(topic, "a", reason="wrong customer") is True
    assert await api.abort(topic, "r", reason="duplicate") is True
    running, pending = await api.history(topic, "a"), await api.history(topic, "r")
    assert running.events[-1].detail == "wrong customer; was running; cancel sent"
    assert pending.events[-1].detail == "duplicate"
    assert running.last_error is None  # a reason is no handler's error
    long = "é" * 300  # the detail keeps its cancel note whatever the reason's length
    await api.put(topic, "l", b"")
    await api.reserve(topic)
    await api.abort(topic, "l", reason=long)
    detail = (await api.history(topic, "l")).events[-1].detail
    assert detail.startswith("é" * 50) and cancel_sent((await api.history(topic, "l")).events[-1])


@pytest.mark.asyncio
async def test_a_bad_reason_changes_nothing(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"")
    for bad in (1, b"x", "\ud800", "x" * 70_000):
        with pytest.raises(InvalidArgument) as info:
            await api.abort(topic, "a", reason=bad)
        assert info.value.argument == "reason"
    assert (await api.get(topic, "a")) is not None


@pytest.mark.asyncio
async def test_a_delete_still_reads_as_a_delete(api: Any, topic: str) -> None:
    await api.put(topic, "d", b"")
    await api.reserve(topic)
    assert await api.delete(topic, "d") is True
    history = await api.history(topic, "d")
    assert history.outcome is Outcome.CANCELLED and kinds(history) == ["put", "reserved", "deleted"]


@pytest.mark.asyncio
async def test_an_aborted_dead_job_stays_dead(api: Any, topic: str) -> None:
    await api.put(topic, "b", b"", max_attempts=1)
    await api.release(await api.reserve(topic), reason="bad")
    await api.abort(topic, "b")
    history = await api.history(topic, "b")
    assert history.outcome is Outcome.DEAD and history.last_error == "bad"
    assert kinds(history) == ["put", "reserved", "dead", "aborted"]


@pytest.mark.asyncio
async def test_filters_and_counters_know_aborted(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"")
    await api.put(topic, "d", b"")
    await api.abort(topic, "a")
    await api.delete(topic, "d")
    page = await api.finished(topic, outcome="aborted")
    assert [h.id for h in page.jobs] == ["a"]
    assert [h.id for h in (await api.finished(topic, outcome=Outcome.CANCELLED)).jobs] == ["d"]
    events = await api.events(topic)
    assert [(e.id, e.kind) for e in events][-2:] == [
        ("a", EventKind.ABORTED),
        ("d", EventKind.DELETED),
    ]
    stats = await api.stats(topic)
    assert (stats.finished_aborted, stats.finished_cancelled) == (1, 1)


def test_a_caller_that_sends_no_abort_argument_deletes(
    client: redisched.Client, topic: str, raw_redis: redis.Redis
) -> None:
    """Glue written before abort had a history sends delete.lua three ARGV: still a delete."""
    client.put(topic, "old", b"")
    script = scripts.get("delete")
    keys = [f"redisched:{{{topic}}}:{p.name}" for p in script.keys]
    assert raw_redis.eval(script.source, len(keys), *keys, "old", "", "") == [1, 1]
    history = client.history(topic, "old")
    assert history is not None and history.outcome is Outcome.CANCELLED
    assert kinds(history) == ["put", "deleted"]


@pytest.mark.asyncio
async def test_a_long_reason_is_cut_between_characters(api: Any, topic: str) -> None:
    """The detail keeps at most 200 bytes: a reason of two-byte characters after one ASCII
    byte is cut before a character, not inside one (which read back as U+FFFD)."""
    reason = "a" + "é" * 150
    await api.put(topic, "held", b"")
    await api.put(topic, "queued", b"")
    await api.reserve(topic)  # held (the first put)
    await api.abort(topic, "held", reason=reason)
    await api.abort(topic, "queued", reason=reason)
    held = (await api.history(topic, "held")).events[-1].detail
    queued = (await api.history(topic, "queued")).events[-1].detail
    assert queued == "a" + "é" * 99  # 199 bytes: the next character would pass 200
    assert held == "a" + "é" * 86 + "; was running; cancel sent"
