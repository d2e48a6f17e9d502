"""Job history and the topic feed (issue 13), through both clients, on a real Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

import redisched
from redisched import EventKind, InvalidArgument, JobState, Outcome, PutStatus, VersionConflict
from redisched.results import RESULT_LIMIT
from tests.conftest import FakeClock

pytestmark = pytest.mark.asyncio

DAY = 86_400


def kinds(history: Any) -> list[str]:
    return [e.kind.value for e in history.events]


async def test_acked_job_keeps_outcome_result_and_timeline(
    api: Any, topic: str, clock: FakeClock
) -> None:
    put_at = clock.now
    await api.put(topic, "need_some_help_email_42", b"{}", delay=60)
    clock.advance(60)
    job = await api.reserve(topic)
    clock.advance(2)
    await api.ack(job, result={"sent": True})
    assert await api.get(topic, "need_some_help_email_42") is None  # get: live jobs only
    history = await api.history(topic, "need_some_help_email_42")
    assert history.outcome is Outcome.DONE
    assert history.finished_at == datetime.fromtimestamp(put_at + 62, tz=UTC)
    assert (history.version, history.attempts) == (1, 1)
    assert history.result == b'{"sent":true}'
    assert kinds(history) == ["put", "reserved", "acked"]
    assert [e.attempt for e in history.events] == [0, 1, 1]
    assert history.events[0].at == datetime.fromtimestamp(put_at, tz=UTC)


async def test_live_job_history_and_never_seen(api: Any, topic: str) -> None:
    assert await api.history(topic, "nobody") is None
    await api.put(topic, "j", b"x")
    history = await api.history(topic, "j")
    assert history.outcome is None and history.finished_at is None
    assert kinds(history) == ["put"] and history.result is None
    job = await api.reserve(topic)
    await api.touch(job)
    await api.touch(job)
    await api.release(job, reason="boom")
    history = await api.history(topic, "j")
    assert kinds(history) == ["put", "reserved", "touched", "retried"]
    assert history.events[-1].detail == "boom" and history.last_error == "boom"


async def test_delete_cancels_and_delete_of_dead_is_dead(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"")
    assert await api.delete(topic, "a")
    history = await api.history(topic, "a")
    assert history.outcome is Outcome.CANCELLED and kinds(history) == ["put", "deleted"]
    await api.put(topic, "b", b"", max_attempts=1)
    await api.release(await api.reserve(topic), reason="bad")
    assert (await api.get(topic, "b")).state.value == "dead"
    await api.delete(topic, "b")
    history = await api.history(topic, "b")
    assert history.outcome is Outcome.DEAD and history.last_error == "bad"
    assert kinds(history) == ["put", "reserved", "dead", "deleted"]


async def test_pull_bury_kick_and_requeue_events(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "p", b"")
    await api.pull(topic)
    assert (await api.history(topic, "p")).outcome is Outcome.PULLED
    await api.put(topic, "q", b"", ttr=5)
    job = await api.reserve(topic)
    await api.bury(job, reason="poison")
    await api.kick(topic, "q")
    await api.reserve(topic)
    clock.advance(6)
    await api.requeue(topic)
    history = await api.history(topic, "q")
    assert kinds(history) == ["put", "reserved", "buried", "kicked", "reserved", "requeued"]
    assert history.events[2].detail == "poison" and history.outcome is None


async def test_a_long_detail_is_cut_between_characters(api: Any, topic: str) -> None:
    """An event keeps at most 200 bytes of its detail, cut before a character, not inside one
    (which read back as U+FFFD, in the job's history and in the feed)."""
    text = "a" + "é" * 150  # the 200th byte is the first of a character
    await api.put(topic, "b", b"", max_attempts=2)
    await api.release(await api.reserve(topic), reason=text)  # retried
    await api.release(await api.reserve(topic), reason=text)  # dead
    await api.kick(topic, "b")
    await api.bury(await api.reserve(topic), reason=text)
    history = await api.history(topic, "b")
    assert kinds(history) == ["put", "reserved", "retried", "reserved", "dead", "kicked",
                              "reserved", "buried"]  # fmt: skip
    cut = "a" + "é" * 99  # 199 bytes: the next character would pass 200
    assert [e.detail for e in history.events if e.detail] == [cut, cut, cut]
    assert [e.detail for e in await api.events(topic) if e.detail] == [cut, cut, cut]
    assert history.last_error == text  # the error itself is kept whole


async def test_replace_and_a_new_life_after_finishing(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"1")
    await api.put(topic, "j", b"2", replace=True)
    await api.ack(await api.reserve(topic))
    history = await api.history(topic, "j")
    assert kinds(history) == ["put", "replaced", "reserved", "acked"]
    assert [e.version for e in history.events] == [1, 2, 2, 2]
    result = await api.put(topic, "j", b"3")  # no dedup window: a new version at once
    assert (result.status, result.version) == (PutStatus.CREATED, 3)
    history = await api.history(topic, "j")
    assert history.outcome is None and kinds(history) == ["put"] and history.version == 3


async def test_dedup_window_keeps_a_finished_id_taken(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.configure(topic, dedup_window=3600)
    await api.put(topic, "once", b"")
    await api.ack(await api.reserve(topic))
    clock.advance(3599)
    result = await api.put(topic, "once", b"")
    assert (result.status, result.version) == (PutStatus.EXISTS, 1)
    assert await api.get(topic, "once") is None
    assert (await api.put(topic, "once", b"", replace=True)).status is PutStatus.CREATED
    await api.delete(topic, "once")
    clock.advance(3601)
    assert (await api.put(topic, "once", b"")).status is PutStatus.CREATED


async def test_dedup_window_outlasts_retention_by_count_and_age(
    api: Any, topic: str, clock: FakeClock
) -> None:
    # Dedup reads the finished record: trimmed by keep_finished (here 1) or keep_finished_for
    # (here 60 s), the id was forgotten within its window and a put ran the job again.
    await api.configure(topic, dedup_window=3600, keep_finished=1, keep_finished_for=60)
    await api.put(topic, "order-42", b"")
    await api.ack(await api.reserve(topic))
    for i in range(3):  # finishing by ack, by delete: both trim
        await api.put(topic, f"other-{i}", b"")
        await api.ack(await api.reserve(topic))
        await api.put(topic, f"gone-{i}", b"")
        await api.delete(topic, f"gone-{i}")
    clock.advance(3599)
    await api.put(topic, "late", b"")
    await api.delete(topic, "late")  # a finishing call past keep_finished_for: trims by age
    result = await api.put(topic, "order-42", b"")
    assert (result.status, result.version) == (PutStatus.EXISTS, 1)
    clock.advance(2)  # past the window: the record goes with the next trim, the id is free
    await api.put(topic, "later", b"")
    await api.delete(topic, "later")
    assert await api.history(topic, "order-42") is None
    assert (await api.put(topic, "order-42", b"")).status is PutStatus.CREATED


async def test_versions_never_repeat_after_the_finished_record_is_trimmed(
    api: Any, topic: str
) -> None:
    # A new life of an id whose finished record was trimmed started at version 1 again: an
    # ETag kept from its old life matched the new job (a stale conditional delete deleted
    # it), and a webhook's id (topic, id, version) repeated, so receivers dropped the new job.
    await api.configure(topic, keep_finished=1)
    assert (await api.put(topic, "invoice-7", b"old")).version == 1
    await api.ack(await api.reserve(topic))
    for other in ("x", "y"):  # finishing others trims invoice-7's record (by ack, by delete)
        await api.put(topic, other, b"")
        await api.delete(topic, other) if other == "y" else await api.ack(await api.reserve(topic))
    assert await api.history(topic, "invoice-7") is None
    again = await api.put(topic, "invoice-7", b"new", delay=3600)
    assert again.status is PutStatus.CREATED and again.version == 2
    with pytest.raises(VersionConflict):
        await api.delete(topic, "invoice-7", if_version=1)
    many = await api.put_many(topic, [("fresh-1", b""), ("fresh-2", b"")])
    assert {r.version for r in many} == {2}  # any id without a record starts above the floor


async def test_versions_past_2_to_the_31_can_be_compared(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    # a busy topic's versions pass 2^31 (version_floor grows about one per job ended), and
    # if_version refused them: no conditional change of such a job was possible
    raw_redis.hset(f"redisched:{{{topic}}}:meta", "version_floor", 2**40)
    assert (await api.put(topic, "j", b"")).version == 2**40 + 1
    assert (await api.put(topic, "j", b"2", replace=True, if_version=2**40 + 1)).version == (
        2**40 + 2
    )
    with pytest.raises(InvalidArgument, match="if_version"):
        await api.delete(topic, "j", if_version=2**53)
    assert await api.delete(topic, "j", if_version=2**40 + 2)


@pytest.mark.parametrize(
    "ending", ["ack", "delete", "abort", "pull", "delete_many", "purge", "dead", "replaced"]
)
async def test_versions_never_repeat_with_history_off(api: Any, topic: str, ending: str) -> None:
    # With history off no finished record is kept, and a new life of an id started at version
    # 1 again: a stale If-Match deleted the new job, and a receiver deduping by webhook-id
    # (topic, id, version) dropped it. Each way a job ends now raises version_floor.
    await api.configure(topic, history=False)
    await api.put(topic, "invoice-7", b"old", max_attempts=1)
    if ending == "replaced":  # a second version before it ends
        await api.put(topic, "invoice-7", b"newer", replace=True, max_attempts=1)
    old = await api.get(topic, "invoice-7")
    if ending in ("ack", "replaced"):
        await api.ack(await api.reserve(topic))
    elif ending == "delete":
        assert await api.delete(topic, "invoice-7")
    elif ending == "abort":
        assert await api.abort(topic, "invoice-7")
    elif ending == "pull":
        assert (await api.pull(topic)).id == "invoice-7"
    elif ending == "delete_many":
        assert await api.delete_many(topic, ["invoice-7"]) == 1
    elif ending == "purge":
        assert await api.purge(topic, "ready") == 1
    else:  # its one attempt failed: dead, then deleted from the dead
        await api.release(await api.reserve(topic), reason="boom")
        assert (await api.get(topic, "invoice-7")).state is JobState.DEAD
        assert await api.delete(topic, "invoice-7")
    assert await api.get(topic, "invoice-7") is None
    again = await api.put(topic, "invoice-7", b"new")
    assert again.status is PutStatus.CREATED and again.version == old.version + 1
    with pytest.raises(VersionConflict):
        await api.delete(topic, "invoice-7", if_version=old.version)
    fresh = await api.put(topic, "fresh", b"")  # any id starts above the floor
    assert fresh.version == old.version + 1


async def test_versions_never_repeat_after_history_is_turned_off(api: Any, topic: str) -> None:
    # records kept from before history was turned off hold versions a new life must go above
    assert (await api.put(topic, "a", b"1")).version == 1
    await api.put(topic, "a", b"2", replace=True)
    await api.ack(await api.reserve(topic))  # a's record: version 2
    await api.configure(topic, history=False)
    assert (await api.put(topic, "a", b"3")).version == 3
    await api.ack(await api.reserve(topic))  # a's version 3 ended: the floor, above a's record
    assert (await api.put(topic, "a", b"4")).version == 4  # not its stale record's 2 + 1
    await api.ack(await api.reserve(topic))
    await api.configure(topic, history=True)  # and on again
    assert (await api.put(topic, "a", b"5")).version == 5
    assert (await api.schedule(topic, "s", b"", every=3600)).version == 1


@pytest.mark.parametrize("how", ["delete_many", "purge"])
async def test_an_occurrence_put_again_by_a_bulk_delete_goes_above_its_ended_versions(
    api: Any, topic: str, clock: FakeClock, how: str
) -> None:
    # delete_many and purge put a schedule's next occurrence in the call that deletes jobs: it
    # read version_floor before that call raised it, and came back at version 1 (history off)
    await api.configure(topic, history=False)
    made = await api.schedule(topic, "s", b"", every=3600, start_at=clock.now + 600)
    first = made.next_run_at.timestamp()
    pending = f"s@{datetime.fromtimestamp(first, UTC):%Y-%m-%dT%H:%M:%SZ}"
    later = f"s@{datetime.fromtimestamp(first + 3600, UTC):%Y-%m-%dT%H:%M:%SZ}"
    for _ in range(3):  # the id of the next occurrence, as a job of version 3
        await api.put(topic, later, b"", delay=7200, replace=True)
    assert (await api.get(topic, later)).version == 3
    if how == "delete_many":
        assert await api.delete_many(topic, [pending, later]) == 2
    else:
        assert await api.purge(topic, "scheduled") == 2
    again = await api.get(topic, later)
    assert again is not None and again.version == 4


async def test_retention_by_count_and_age_trims_incrementally(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.configure(topic, keep_finished=3, keep_finished_for=100)
    for i in range(5):
        await api.put(topic, f"j{i}", b"")
        await api.ack(await api.reserve(topic))
    kept = [i for i in range(5) if await api.history(topic, f"j{i}") is not None]
    assert kept == [2, 3, 4]
    clock.advance(101)
    await api.put(topic, "late", b"")
    await api.delete(topic, "late")  # any finishing call trims what aged out
    assert [await api.history(topic, f"j{i}") for i in range(5)] == [None] * 5
    assert (await api.history(topic, "late")).outcome is Outcome.CANCELLED


async def test_acks_trim_finished_at_a_cadence_within_its_bound(
    api: Any, topic: str, clock: FakeClock, raw_redis: redis.Redis
) -> None:
    # keep_finished 50: an ack trims when finished_done passes a multiple of 5 (keep_finished
    # / 10), so finished holds at most 4 records more, and never fewer than keep_finished
    await api.configure(topic, keep_finished=50)
    finished = f"redisched:{{{topic}}}:finished"
    sizes = []  # one clock: records of one score go in member order
    for i in range(80):
        await api.put(topic, f"j{i:02}", b"")
        await api.ack(await api.reserve(topic))
        sizes.append(raw_redis.zcard(finished))
    assert sizes[:50] == list(range(1, 51))
    assert max(sizes) == 54 and min(sizes[50:]) == 50
    kept = [i for i in range(80) if await api.history(topic, f"j{i:02}") is not None]
    assert kept == list(range(30, 80))
    # keep_finished 10,000 trims every 100 jobs: a record past keep_finished_for goes at the
    # next trim (finished_done 80 now: the 20th ack from here passes 100)
    await api.configure(topic, keep_finished=None, keep_finished_for=100)
    clock.advance(101)
    for i in range(20):
        assert await api.history(topic, "j79") is not None
        await api.put(topic, f"k{i}", b"")
        await api.ack(await api.reserve(topic))
    assert [i for i in range(80) if await api.history(topic, f"j{i:02}") is not None] == []
    assert raw_redis.zcard(finished) == 20


async def test_finished_score_is_finished_at_on_the_server_clock(
    client: redisched.Client, topic: str, raw_redis: redis.Redis
) -> None:
    # on the server clock ack.lua writes the score as text made from TIME, not formatted
    for i in range(30):
        client.put(topic, f"j{i:02}", b"")
        client.ack(client.reserve(topic))
    finished = f"redisched:{{{topic}}}:finished"
    for i in range(30):
        history = client.history(topic, f"j{i:02}")
        score = raw_redis.zscore(finished, f"j{i:02}")
        assert history is not None and history.finished_at is not None and score is not None
        assert score == round(history.finished_at.timestamp() * 1000)


async def test_dead_jobs_are_capped(api: Any, topic: str) -> None:
    await api.configure(topic, keep_dead=2)
    for i in range(4):
        await api.put(topic, f"d{i}", b"")
        await api.bury(await api.reserve(topic), reason=f"r{i}")
    assert (await api.stats(topic)).dead == 2
    assert await api.get(topic, "d0") is None and await api.get(topic, "d3") is not None
    history = await api.history(topic, "d0")
    assert history.outcome is Outcome.DEAD and history.last_error == "r0"
    assert kinds(history)[-2:] == ["buried", "expired"]


async def test_topic_feed_with_cursors(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "a", b"")
    await api.put(topic, "b", b"")
    await api.ack(await api.reserve(topic))
    first = await api.events(topic, limit=2)
    assert [(e.id, e.kind) for e in first] == [("a", EventKind.PUT), ("b", EventKind.PUT)]
    rest = await api.events(topic, after=first[-1].cursor)
    assert [(e.id, e.kind.value) for e in rest] == [("a", "reserved"), ("a", "acked")]
    assert await api.events(topic, after=rest[-1].cursor) == []
    with pytest.raises(InvalidArgument) as info:
        await api.events(topic + "x", after=rest[-1].cursor)
    assert info.value.argument == "after"
    with pytest.raises(InvalidArgument):
        await api.events(topic, after="yesterday")
    assert await api.events(topic, after=f"{2**64 - 1}-0") == []  # the largest that has a next


async def test_history_off_records_nothing(api: Any, topic: str, raw_redis: redis.Redis) -> None:
    await api.configure(topic, history=False)
    await api.put(topic, "j", b"")
    assert (await api.history(topic, "j")).events == []
    await api.ack(await api.reserve(topic), result=b"r")
    assert await api.history(topic, "j") is None
    assert await api.events(topic) == []
    assert not raw_redis.exists(f"redisched:{{{topic}}}:feed", f"redisched:{{{topic}}}:history")


async def test_bad_history_input_changes_nothing(api: Any, topic: str) -> None:
    await api.configure(topic, keep_finished=5)
    for name, value in [("keep_finished", -1), ("keep_finished_for", -1), ("dedup_window", "x"),
                        ("keep_dead", 1.5), ("history", "no")]:  # fmt: skip
        with pytest.raises(InvalidArgument) as info:
            await api.configure(topic, **{name: value})
        assert info.value.argument == name
    assert (await api.config(topic)).keep_finished == 5
    with pytest.raises(InvalidArgument) as info:
        await api.finished(topic, outcome="exploded")
    assert info.value.argument == "outcome"
    with pytest.raises(InvalidArgument):
        await api.ack(await _reserved(api, topic), result=object())
    assert (await api.get(topic, "r")).state.value == "reserved"


async def _reserved(api: Any, topic: str) -> Any:
    await api.put(topic, "r", b"")
    return await api.reserve(topic)


async def test_large_result_is_truncated_with_a_note(api: Any, topic: str) -> None:
    await api.put(topic, "big", b"")
    await api.ack(await api.reserve(topic), result=b"x" * (RESULT_LIMIT + 10))
    history = await api.history(topic, "big")
    assert history.result == b"x" * RESULT_LIMIT
    assert "truncated" in (history.events[-1].detail or "")


async def test_finished_listing_pages_by_outcome(api: Any, topic: str) -> None:
    for i in range(5):
        await api.put(topic, f"j{i}", b"")
        if i % 2:
            await api.delete(topic, f"j{i}")
        else:
            await api.ack(await api.reserve(topic), result=str(i))
    page = await api.finished(topic, outcome="done", limit=2)
    assert [h.id for h in page.jobs] == ["j4", "j2"] and page.cursor
    rest = await api.finished(topic, outcome="done", limit=2, cursor=page.cursor)
    assert [h.id for h in rest.jobs] == ["j0"] and rest.jobs[0].result == b"0"
    everything = await api.finished(topic)
    assert [h.outcome.value for h in everything.jobs] == ["done", "cancelled"] * 2 + ["done"]


async def test_worker_keeps_the_handler_result(redis_url: str, topic: str) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await client.put(topic, "w", b"")
        done = asyncio.Event()

        async def handler(job: redisched.Job) -> dict[str, int]:
            done.set()
            return {"answer": 42}

        worker = redisched.Worker(client, {topic: handler})
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(done.wait(), 10)
        for _ in range(100):
            history = await client.history(topic, "w")
            if history is not None and history.outcome is not None:
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await task
    assert history.outcome is Outcome.DONE and history.result == b'{"answer":42}'


async def test_the_feed_is_bounded_by_keep_events(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    await api.configure(topic, keep_events=50)
    for start in range(0, 600, 100):  # big entries (one per call) and small ones
        await api.put_many(topic, [(f"j{i}", b"") for i in range(start, start + 100)])
    for i in range(300):
        await api.delete(topic, f"j{i}")
    feed = f"redisched:{{{topic}}}:feed"
    events = await api.events(topic, limit=1000)
    # at least keep_events, trimmed in whole stream nodes (stream-node-max-entries: 100)
    assert 50 <= len(events) <= 50 + 100
    assert [e.id for e in events[-50:]] == [f"j{i}" for i in range(250, 300)]  # the newest
    assert events[-1].kind is EventKind.DELETED and events[-1].id == "j299"
    assert int(raw_redis.hget(f"redisched:{{{topic}}}:meta", "feed_total")) == 900
    assert raw_redis.xlen(feed) <= 150


async def test_keep_events_0_turns_the_feed_off(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    await api.configure(topic, keep_events=0)
    await api.put(topic, "j", b"")
    await api.ack(await api.reserve(topic))
    assert await api.events(topic) == []
    assert [e.kind for e in (await api.history(topic, "j")).events][-1] is EventKind.ACKED
    assert not raw_redis.exists(f"redisched:{{{topic}}}:feed")


async def test_a_feed_of_an_older_version_goes_on_after_its_time_based_ids(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    feed, meta = f"redisched:{{{topic}}}:feed", f"redisched:{{{topic}}}:meta"
    old = ["j", "old", "k", "put", "t", "1", "v", "1", "a", "0", "d", ""]
    raw_redis.xadd(feed, dict(zip(old[::2], old[1::2], strict=True)), id="1900000000000-0")
    raw_redis.xadd(feed, dict(zip(old[::2], old[1::2], strict=True)), id="1900000000000-7")
    raw_redis.xdel(feed, "1900000000000-7")  # the stream's last id is one it no longer holds
    raw_redis.hset(meta, mapping={"feed_events": 1, "keep_events": 3})
    seen = await api.events(topic)
    assert [(e.id, e.kind.value, e.version, e.attempt, e.detail) for e in seen] == [
        ("old", "put", 1, 0, None)
    ]
    await api.put(topic, "a", b"")
    after = await api.events(topic, after=seen[-1].cursor)
    assert [(e.id, e.kind.value) for e in after] == [("a", "put")]
    assert raw_redis.xrevrange(feed, count=1)[0][0] == b"1900000000001-1"
    assert raw_redis.hget(meta, "feed_epoch") == b"1900000000001"
    assert not raw_redis.hexists(meta, "feed_events")
    for name in "bcd":
        await api.put(topic, name, b"")
    assert [e.id for e in await api.events(topic)] == ["old", "a", "b", "c", "d"]
    # trimmed with its stream node (100 entries) by the first trim (one per 100 events) after
    # that node holds no newest events
    for i in range(250):
        await api.put(topic, f"n{i}", b"")
    kept = [e.id for e in await api.events(topic, limit=1000)]
    assert "old" not in kept and 3 <= len(kept) <= 3 + 100 + 100 and kept[-1] == "n249"


async def test_entries_of_both_feed_layouts_read_alike(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    feed = f"redisched:{{{topic}}}:feed"
    old = [
        ("j", "a"),
        ("k", "put"),
        ("t", "5"),
        ("v", "1"),
        ("a", "0"),
        ("d", ""),
        ("j", "b"),
        ("k", "released"),
        ("t", "7"),
        ("v", "2"),
        ("a", "3"),
        ("d", "boom"),
    ]
    raw_redis.execute_command("XADD", feed, "0-2", *[x for pair in old for x in pair])
    raw_redis.hset(f"redisched:{{{topic}}}:meta", mapping={"feed_epoch": 1, "feed_total": 2})
    await api.put(topic, "c", b"")
    got = [(e.id, e.kind.value, e.version, e.attempt, e.detail) for e in await api.events(topic)]
    assert got == [("a", "put", 1, 0, None), ("b", "released", 2, 3, "boom"),
                   ("c", "put", 1, 0, None)]  # fmt: skip
    fields = raw_redis.xrevrange(feed, count=1)[0][1]
    assert list(fields.values()) == [b"c"]  # the new layout: the event's bytes, then the id


async def test_a_meta_reset_while_the_feed_stayed_starts_a_later_epoch(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    meta = f"redisched:{{{topic}}}:meta"
    await api.put(topic, "a", b"")
    await api.put(topic, "b", b"")
    first = 1_900_000_000_000_000  # a new feed's epoch: the clock's now in µs
    assert raw_redis.hget(meta, "feed_epoch") == str(first).encode()
    raw_redis.hdel(meta, "feed_total")  # the stream is now ahead of the counter
    await api.put(topic, "c", b"")
    assert [e.id for e in await api.events(topic)] == ["a", "b", "c"]
    assert raw_redis.hget(meta, "feed_epoch") == str(first + 1).encode()
    raw_redis.delete(meta)  # meta gone, feed kept: the epoch comes from the stream
    await api.put(topic, "d", b"")
    assert [e.id for e in await api.events(topic)] == ["a", "b", "c", "d"]
    assert raw_redis.hget(meta, "feed_epoch") == str(first + 2).encode()


async def test_a_call_acking_and_leasing_a_thousand_jobs_each_records_every_event(
    api: Any, topic: str
) -> None:
    # 2,000 events in one call: more than one feed entry holds (flush_feed's FEED_ENTRY_EVENTS).
    await api.put_many(topic, [(f"j{i}", b"x") for i in range(2000)])
    jobs = await api.reserve_many(topic, 1000)
    done, lease = await api.ack_and_lease(topic, jobs, 1000)
    assert all(done) and len(done) == 1000 and len(lease.jobs) == 1000
    assert (await api.history(topic, "j999")).outcome is Outcome.DONE
    reserved = await api.history(topic, lease.jobs[-1].id)
    assert kinds(reserved)[-1] == "reserved"
    counts: dict[str, int] = {}
    after = None
    while page := await api.events(topic, after=after, limit=1000):
        for event in page:
            counts[event.kind.value] = counts.get(event.kind.value, 0) + 1
        after = page[-1].cursor
    assert counts == {"put": 2000, "reserved": 2000, "acked": 1000}
