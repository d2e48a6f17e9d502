"""The job lifecycle of DESIGN.md section 2, through both clients, on a real Redis."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import redisched
from redisched import InvalidArgument, JobState, PutStatus, StaleReservation, VersionConflict
from tests.conftest import FakeClock

pytestmark = pytest.mark.asyncio

DAY = 86_400


async def test_put_get_delete_by_id(api: Any, topic: str) -> None:
    result = await api.put(topic, "need_some_help_email_42", b"hi", delay=timedelta(days=3))
    assert (result.status, result.version) == (PutStatus.CREATED, 1)
    job = await api.get(topic, "need_some_help_email_42")
    assert job.body == b"hi" and job.state is JobState.SCHEDULED and job.token is None
    assert await api.delete(topic, "need_some_help_email_42") is True
    assert await api.get(topic, "need_some_help_email_42") is None
    assert await api.delete(topic, "need_some_help_email_42") is False


async def test_job_becomes_due_when_the_clock_passes_run_at(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "j", "later", delay=3 * DAY)
    assert await api.reserve(topic) is None
    clock.advance(3 * DAY - 1)
    assert await api.reserve(topic) is None
    clock.advance(1)
    job = await api.reserve(topic)
    assert job.id == "j" and job.body == b"later" and job.attempts == 1


async def test_run_at_accepts_datetime_and_epoch(api: Any, topic: str, clock: FakeClock) -> None:
    when = datetime.fromtimestamp(clock.now + 60, tz=UTC)
    await api.put(topic, "a", b"", run_at=when)
    await api.put(topic, "b", b"", run_at=clock.now + 120)
    assert (await api.get(topic, "a")).run_at == when
    assert (await api.get(topic, "b")).run_at == datetime.fromtimestamp(clock.now + 120, tz=UTC)


async def test_put_on_existing_id_is_create_only_by_default(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"one")
    result = await api.put(topic, "j", b"two")
    assert (result.status, result.version) == (PutStatus.EXISTS, 1)
    assert (await api.get(topic, "j")).body == b"one"


async def test_replace_scheduled_job_in_place(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "j", b"one", delay=100)
    result = await api.put(topic, "j", b"two", delay=10, priority=3, replace=True)
    assert (result.status, result.version) == (PutStatus.REPLACED, 2)
    job = await api.get(topic, "j")
    assert (job.body, job.priority, job.version) == (b"two", 3, 2)
    clock.advance(10)
    assert (await api.reserve(topic)).body == b"two"
    assert await api.reserve(topic) is None


async def test_replace_while_reserved_waits_for_the_attempt(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"v1")
    running = await api.reserve(topic)
    result = await api.put(topic, "j", b"v2", replace=True)
    assert (result.status, result.version) == (PutStatus.PENDING, 2)
    stored = await api.get(topic, "j")
    assert stored.state is JobState.RESERVED and stored.pending_version == 2
    await api.ack(running)  # the old attempt's ack never deletes the new version
    job = await api.get(topic, "j")
    assert (job.body, job.version, job.state, job.attempts) == (b"v2", 2, JobState.READY, 0)
    assert (await api.reserve(topic)).body == b"v2"


@pytest.mark.parametrize("ending", ["release", "bury", "timeout"])
async def test_pending_version_follows_any_end_of_attempt(
    api: Any, topic: str, clock: FakeClock, ending: str
) -> None:
    await api.put(topic, "j", b"v1", ttr=5)
    running = await api.reserve(topic)
    await api.put(topic, "j", b"v2", replace=True)
    if ending == "release":
        await api.release(running)
    elif ending == "bury":
        await api.bury(running, reason="broken")
    else:
        clock.advance(6)
        assert await api.requeue(topic) == 1
    job = await api.get(topic, "j")
    assert (job.body, job.version, job.state) == (b"v2", 2, JobState.READY)


async def test_replace_dead_job_schedules_it_anew(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"v1")
    await api.bury(await api.reserve(topic), reason="no")
    result = await api.put(topic, "j", b"v2", delay=5, replace=True)
    assert result.status is PutStatus.REPLACED
    job = await api.get(topic, "j")
    assert (job.state, job.attempts, job.last_error) == (JobState.SCHEDULED, 0, None)


async def test_if_version_is_compare_and_set(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"v1")
    with pytest.raises(VersionConflict) as conflict:
        await api.put(topic, "j", b"v2", replace=True, if_version=7)
    assert conflict.value.current_version == 1
    assert (await api.put(topic, "j", b"v2", replace=True, if_version=1)).version == 2
    with pytest.raises(VersionConflict):
        await api.delete(topic, "j", if_version=1)
    assert (await api.get(topic, "j")).body == b"v2"
    assert await api.delete(topic, "j", if_version=2) is True
    with pytest.raises(VersionConflict) as missing:
        await api.put(topic, "j", b"v3", if_version=1)
    assert missing.value.current_version == 0


async def test_reserve_order_priority_then_run_at_then_insertion(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "late-low", b"", delay=2, priority=0)
    await api.put(topic, "early-low", b"", delay=1, priority=0)
    await api.put(topic, "b-first", b"", priority=5)
    await api.put(topic, "a-second", b"", priority=5)
    await api.put(topic, "urgent", b"", delay=3, priority=-1)
    clock.advance(3)
    order = [job.id for job in await api.reserve_many(topic, 10)]
    assert order == ["urgent", "early-low", "late-low", "b-first", "a-second"]


async def test_put_many_keeps_insertion_order(api: Any, topic: str) -> None:
    ids = [f"job-{n}" for n in (5, 3, 9, 1, 7)]
    results = await api.put_many(topic, [(i, i.encode()) for i in ids])
    assert [r.status for r in results] == [PutStatus.CREATED] * 5
    assert [job.id for job in await api.reserve_many(topic, 5)] == ids


async def test_put_many_batches_large_loads(api: Any, topic: str) -> None:
    results = await api.put_many(topic, ((f"j{i}", b"x") for i in range(1203)))
    assert len(results) == 1203
    assert (await api.stats(topic)).ready == 1203


async def test_ack_is_exactly_once(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"")
    job = await api.reserve(topic)
    await api.ack(job)
    assert await api.get(topic, "j") is None
    with pytest.raises(StaleReservation):
        await api.ack(job)


async def test_stale_lease_is_rejected_and_the_new_holder_wins(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "j", b"", ttr=10)
    first = await api.reserve(topic)
    clock.advance(11)
    assert await api.requeue(topic) == 1
    second = await api.reserve(topic)
    assert second.token != first.token and second.attempts == 2
    for late in (api.ack, api.touch, api.release, api.bury):
        with pytest.raises(StaleReservation):
            await late(first)
    await api.ack(second)
    assert await api.get(topic, "j") is None


async def test_deleted_reservation_is_stale_and_not_resurrected(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "j", b"", ttr=1)
    job = await api.reserve(topic)
    assert await api.delete(topic, "j")
    clock.advance(5)
    assert await api.requeue(topic) == 0
    with pytest.raises(StaleReservation):
        await api.ack(job)
    assert await api.get(topic, "j") is None


async def test_release_with_delay_and_error(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "j", b"")
    job = await api.reserve(topic)
    assert await api.release(job, delay=30, reason="smtp down") is JobState.SCHEDULED
    stored = await api.get(topic, "j")
    assert (stored.state, stored.last_error, stored.attempts) == (
        JobState.SCHEDULED, "smtp down", 1,
    )  # fmt: skip
    clock.advance(30)
    again = await api.reserve(topic)
    assert again.attempts == 2 and again.last_error == "smtp down"
    assert await api.release(again) is JobState.READY


async def test_max_attempts_sends_the_job_to_dead(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "j", b"", max_attempts=2, ttr=5)
    await api.release(await api.reserve(topic), reason="first")
    clock.advance(6)
    await api.reserve(topic)
    clock.advance(6)
    assert await api.requeue(topic) == 1
    job = await api.get(topic, "j")
    assert job.state is JobState.DEAD and "timed out" in job.last_error
    assert (await api.stats(topic)).dead == 1
    assert await api.kick(topic, "j") == 1
    kicked = await api.get(topic, "j")
    assert (kicked.state, kicked.attempts) == (JobState.READY, 0)


async def test_release_after_last_attempt_is_dead(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"", max_attempts=1)
    assert await api.release(await api.reserve(topic), reason="boom") is JobState.DEAD
    assert (await api.get(topic, "j")).last_error == "boom"


async def test_touch_extends_the_reservation(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "j", b"", ttr=10)
    job = await api.reserve(topic)
    clock.advance(8)
    until = await api.touch(job, ttr=20)
    assert until == datetime.fromtimestamp(clock.now + 20, tz=UTC)
    clock.advance(15)
    assert await api.requeue(topic) == 0
    await api.ack(job)


async def test_touch_sets_the_deadline_from_now_even_when_sooner(
    api: Any, topic: str, clock: FakeClock
) -> None:
    # The docstring said "extend a reservation by ttr": a touch sets now + ttr, which can
    # shorten the reservation.
    await api.put(topic, "j", b"", ttr=600)
    job = await api.reserve(topic)
    until = await api.touch(job, ttr=1)
    assert until == datetime.fromtimestamp(clock.now + 1, tz=UTC) < job.reserved_until
    clock.advance(2)
    assert await api.requeue(topic) == 1


async def test_reserve_ttr_override(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "j", b"", ttr=100)
    job = await api.reserve(topic, ttr=2)
    assert job.reserved_until == datetime.fromtimestamp(clock.now + 2, tz=UTC)


async def test_bury_and_kick_all(api: Any, topic: str) -> None:
    await api.put_many(topic, [("a", b""), ("b", b""), ("c", b"")])
    for job in await api.reserve_many(topic, 3):
        await api.bury(job, reason="bad")
    page = await api.jobs(topic, "dead")
    assert sorted(j.id for j in page.jobs) == ["a", "b", "c"]
    assert all(j.last_error == "bad" for j in page.jobs)
    assert await api.kick(topic, limit=2) == 2
    assert (await api.stats(topic)).dead == 1
    assert await api.kick(topic, "missing") == 0


async def test_pull_is_at_most_once(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "low", b"1", priority=5)
    await api.put(topic, "high", b"2", delay=1, priority=1)
    clock.advance(1)
    pulled = await api.pull(topic)
    assert pulled.id == "high" and pulled.body == b"2"
    assert await api.get(topic, "high") is None
    assert (await api.pull(topic)).id == "low"
    assert await api.pull(topic) is None


async def test_stats_topics_and_listing(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put_many(topic, [(f"s{i}", b"") for i in range(5)], delay=60)
    await api.put_many(topic, [(f"r{i}", b"") for i in range(3)])
    await api.reserve(topic)
    stats = await api.stats(topic)
    assert (stats.scheduled, stats.ready, stats.reserved, stats.dead) == (5, 2, 1, 0)
    assert stats.total_put == 8 and stats.total_reserved == 1
    assert topic in await api.topics()
    first = await api.jobs(topic, "scheduled", limit=3)
    second = await api.jobs(topic, "scheduled", limit=3, cursor=first.cursor)
    assert len(first.jobs) == 3 and len(second.jobs) == 2 and second.cursor is None
    assert {j.id for j in first.jobs + second.jobs} == {f"s{i}" for i in range(5)}
    clock.advance(60)
    ready = await api.jobs(topic, JobState.READY, limit=100)
    assert len(ready.jobs) == 7 and all(j.state is JobState.READY for j in ready.jobs)
    assert [j.id for j in (await api.jobs(topic, "reserved")).jobs] == ["r0"]


async def test_pause_and_resume(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"")
    assert await api.pause(topic) is True
    assert await api.pause(topic) is False
    assert await api.reserve(topic) is None and await api.pull(topic) is None
    assert (await api.stats(topic)).paused is True
    assert await api.resume(topic) is True
    assert (await api.reserve(topic)).id == "j"


async def test_lease_reports_when_work_is_next_due(api: Any, topic: str, clock: FakeClock) -> None:
    await api.put(topic, "j", b"", delay=5, ttr=30)
    lease = await api.lease(topic, 10)
    assert lease.jobs == [] and lease.now_ms == round(clock.now * 1000)
    assert lease.next_due_ms == lease.now_ms + 5000 and lease.next_timeout_ms is None
    clock.advance(5)
    lease = await api.lease(topic, 10)
    assert [j.id for j in lease.jobs] == ["j"] and lease.next_due_ms is None
    assert lease.next_timeout_ms == lease.now_ms + 30_000


async def test_ack_and_lease_in_one_round_trip(api: Any, topic: str) -> None:
    await api.put_many(topic, [(f"j{i}", b"") for i in range(4)])
    first = await api.reserve_many(topic, 2)
    acked, lease = await api.ack_and_lease(topic, first, 2)
    assert acked == [True, True] and [j.id for j in lease.jobs] == ["j2", "j3"]
    acked, lease = await api.ack_and_lease(topic, [*lease.jobs, first[0]], 2)
    assert acked == [True, True, False] and lease.jobs == []


async def test_binary_and_unicode_round_trip(api: Any, topic: str) -> None:
    body = bytes(range(256)) * 4
    await api.put(topic, "ключ-🔑", body)
    await api.put(topic, "text", "héllo")
    assert (await api.get(topic, "ключ-🔑")).body == body
    assert (await api.get(topic, "text")).body == "héllo".encode()


async def test_ids_never_leak_into_other_topics(api: Any, topic: str) -> None:
    other = topic + "-other"
    await api.put(topic, "same", b"a")
    await api.put(other, "same", b"b")
    assert (await api.get(topic, "same")).body == b"a"
    assert (await api.get(other, "same")).body == b"b"


async def test_bad_input_is_rejected_before_redis(api: Any, topic: str) -> None:
    await api.put(topic, "keep", b"original")
    with pytest.raises(InvalidArgument) as err:
        await api.put(topic, "keep", b"new", replace=True, ttr=-1)
    assert err.value.argument == "ttr"
    assert (await api.get(topic, "keep")).body == b"original"


async def test_an_unhashable_topic_is_an_invalid_argument(api: Any, topic: str) -> None:
    # The per-topic caches looked a topic up before validating it: a list or dict topic
    # raised TypeError: unhashable type (delete_topic too, once the client had registered
    # a topic).
    await api.put(topic, "keep", b"original", ttr=600)
    leased = await api.reserve(topic)
    before = await api.get(topic, "keep")
    for bad in (["t"], {"t": 1}, {"t"}):
        calls = [
            api.put(bad, "j", b""), api.put(bad, "j", b"", durable=True), api.get(bad, "j"),
            api.delete(bad, "j"), api.reserve(bad), api.reserve_many(bad, 2), api.lease(bad, 2),
            api.stats(bad), api.pull(bad), api.requeue(bad), api.kick(bad), api.config(bad),
            api.put_many(bad, [("j", b"")]), api.delete_topic(bad), api.purge(bad, "dead"),
            api.schedule(bad, "s", b"", every=60), api.history(bad, "j"), api.events(bad),
            api.ack_many(bad, [leased]), api.throughput(bad), api.jobs(bad, "ready"),
        ]  # fmt: skip
        for call in calls:
            with pytest.raises(InvalidArgument) as err:
                await call
            assert err.value.argument == "topic", str(err.value)
        with pytest.raises(InvalidArgument) as err:
            await api.ack(replace(leased, topic=bad))
        assert err.value.argument == "job.topic", str(err.value)
    assert await api.get(topic, "keep") == before


async def test_an_unstarted_release_gives_the_attempt_back(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "j", b"", max_attempts=1)
    leased = await api.reserve(topic)
    assert await api.release(leased, delay=5, unstarted=True) is JobState.SCHEDULED
    job = await api.get(topic, "j")
    assert (job.attempts, job.last_error, job.state) == (0, None, JobState.SCHEDULED)
    clock.advance(5)
    again = await api.reserve(topic)
    assert again.attempts == 1  # its one attempt is still whole
    # cut short for the consumer's own reason (a stop): the attempt back, the reason kept
    assert await api.release(again, reason="the worker stopped", unstarted=True) is (JobState.READY)
    job = await api.get(topic, "j")
    assert (job.attempts, job.last_error, job.state) == (0, "the worker stopped", JobState.READY)
    history = await api.history(topic, "j")
    assert [e.detail for e in history.events if e.kind == "released"] == [
        "never started", "the worker stopped",
    ]  # fmt: skip


async def test_release_reason_and_its_deprecated_alias_error(api: Any, topic: str) -> None:
    await api.put(topic, "j", b"x")
    await api.release(await api.reserve(topic), reason="one name everywhere")
    job = await api.get(topic, "j")
    assert job is not None and job.last_error == "one name everywhere"
    with pytest.warns(DeprecationWarning, match="reason="):
        await api.release(await api.reserve(topic), error="the old name still works")
    job = await api.get(topic, "j")
    assert job is not None and job.last_error == "the old name still works"


async def test_reserve_requeues_a_lease_whose_holder_died(server_api: Any, topic: str) -> None:
    """A consumer that only calls ``reserve`` ran no requeue: a job whose holder died stayed
    reserved for ever, and ``reserve`` returned None. A topic's ``reserve`` now requeues the
    timed-out leases first, once a second at most, in the same round trip."""
    await server_api.put(topic, "j", b"x")
    lost = await server_api.reserve(topic, ttr=0.3)  # its holder dies here
    assert lost is not None and await server_api.reserve(topic) is None
    await asyncio.sleep(1.1)  # the lease has lapsed, and a second has passed since the sweep
    again = await server_api.reserve(topic)
    assert again is not None and again.id == "j" and again.attempts == 2
    assert again.token != lost.token
    await server_api.ack(again)
    many = await server_api.reserve_many(topic, 5)
    assert many == [] and await server_api.get(topic, "j") is None


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6399/abc", "redis://127.0.0.1:6399/1/2", "redis://127.0.0.1:6399/-1",
     "redis://127.0.0.1:6399/0?db=x", "unix:///tmp/none.sock?db=1x"],
)  # fmt: skip
async def test_a_database_that_is_no_number_is_refused_naming_the_url(url: str) -> None:
    """redis-py read ``/abc`` as database 0 and ``/1/2`` as 12: the jobs went elsewhere."""
    with pytest.raises(InvalidArgument) as refused:
        redisched.Client.from_url(url)
    assert refused.value.argument == "url" and "database" in refused.value.message
    with pytest.raises(InvalidArgument):
        redisched.AsyncClient.from_url(url)
    with pytest.raises(InvalidArgument, match="database 0 only"):
        redisched.AsyncClient.from_url("redis://127.0.0.1:6399/3", cluster=True)


async def test_a_database_number_in_the_url_is_the_one_used(redis_url: str, topic: str) -> None:
    other = redis_url.rsplit("/", 1)[0] + "/5"
    with redisched.Client.from_url(other) as client:
        client.put(topic, "j", b"x")
        assert client.redis.connection_pool.connection_kwargs["db"] == 5
        assert client.get(topic, "j") is not None
        client.delete(topic, "j")
