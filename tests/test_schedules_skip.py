"""Deleting a schedule's pending occurrence skips that one run: the schedule goes on (delete,
delete_many, purge); abort and a replacing put of an occurrence keep the chain too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import redisched
from redisched import EventKind, InvalidArgument, JobState, Outcome
from redisched.operate import purge
from tests.conftest import FakeClock


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def occurrence(schedule: str, when: datetime) -> str:
    """The job id of ``schedule``'s occurrence at ``when``."""
    return f"{schedule}@{when.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def assert_pending(api: Any, topic: str, schedule: str, when: datetime) -> None:
    """The schedule names the occurrence at ``when`` as pending, and that job is waiting."""
    s = await api.get_schedule(topic, schedule)
    assert s is not None and s.next_run_at == when
    job = await api.get(topic, occurrence(schedule, when))
    assert job is not None and job.run_at == when
    assert job.state in (JobState.SCHEDULED, JobState.READY)


async def test_delete_skips_one_run_of_an_interval(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=1, start_at=at("2027-05-01 00:00:10"))
    assert await api.delete(topic, occurrence("s", at("2027-05-01 00:00:10"))) is True
    await assert_pending(api, topic, "s", at("2027-05-01 00:00:11"))
    s = await api.get_schedule(topic, "s")
    assert s.last_run_at == at("2027-05-01 00:00:10")  # the skipped one
    assert (await api.stats(topic)).scheduled == 1
    clock.now = at("2027-05-01 00:00:11").timestamp()
    leased = await api.reserve(topic)
    assert leased.id == occurrence("s", at("2027-05-01 00:00:11"))
    await assert_pending(api, topic, "s", at("2027-05-01 00:00:12"))


async def test_delete_of_an_overdue_occurrence_puts_the_first_future_one(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    clock.now = at("2027-05-01 00:10:30").timestamp()  # 00:00 is overdue, nobody consumed
    assert (await api.get(topic, occurrence("s", at("2027-05-01 00:00:00")))).state == "ready"
    assert await api.delete(topic, occurrence("s", at("2027-05-01 00:00:00"))) is True
    await assert_pending(api, topic, "s", at("2027-05-01 00:11:00"))  # not in the past
    assert await api.reserve(topic) is None


async def test_delete_skips_one_run_of_a_cron(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 08:00:00").timestamp()
    await api.schedule(topic, "d", b"x", cron="0 9 * * *", tz="UTC")
    assert await api.delete(topic, occurrence("d", at("2027-05-01 09:00:00"))) is True
    await assert_pending(api, topic, "d", at("2027-05-02 09:00:00"))
    job = await api.get(topic, occurrence("d", at("2027-05-02 09:00:00")))
    assert job.body == b"x"


async def test_deleting_many_cron_runs_in_a_row_refills_its_times(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:30").timestamp()
    await api.schedule(topic, "m", b"", cron="* * * * *")
    for minute in range(1, 61):  # more than the 48 times a schedule holds
        when = at("2027-05-01 00:00:00") + timedelta(minutes=minute)
        assert await api.delete(topic, occurrence("m", when)) is True
    await assert_pending(api, topic, "m", at("2027-05-01 01:01:00"))


async def test_delete_of_the_last_occurrence_before_end_at_ends_the_schedule(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60, end_at=at("2027-05-01 00:00:30"))
    assert await api.delete(topic, occurrence("s", at("2027-05-01 00:00:00"))) is True
    assert (await api.get_schedule(topic, "s")).next_run_at is None
    assert (await api.stats(topic)).scheduled == 0


async def test_delete_many_skips_one_run(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60, start_at=at("2027-05-01 00:01:00"))
    first = occurrence("s", at("2027-05-01 00:01:00"))
    assert await api.delete_many(topic, [first], state="scheduled") == 1
    await assert_pending(api, topic, "s", at("2027-05-01 00:02:00"))


async def test_purge_skips_one_run_of_each_schedule(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "a", b"", every=60, start_at=at("2027-05-01 00:01:00"))
    await api.schedule(topic, "b", b"", every=3600)  # due now: ready
    await api.put(topic, "plain", b"", delay=30)
    assert await api.purge(topic, "scheduled") == 2  # a's occurrence and the plain job
    await assert_pending(api, topic, "a", at("2027-05-01 00:02:00"))
    assert await api.purge(topic, "ready") == 1
    await assert_pending(api, topic, "b", at("2027-05-01 01:00:00"))
    stats = await api.stats(topic)
    assert (stats.scheduled, stats.ready) == (2, 0)


def test_a_chunked_purge_ends_and_skips_one_run_only(redis_url: str, topic: str) -> None:
    clock = FakeClock(at("2027-05-01 00:00:00").timestamp())
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        for i in range(5):  # more schedules than a chunk holds
            client.schedule(topic, f"s{i}", b"", every=1, start_at=at("2027-05-01 00:00:10"))
        client.put(topic, "late", b"", delay=3600)
        deleted = client._drive(purge(client.ops, topic, "scheduled", chunk=2))
        assert deleted == 6
        for i in range(5):
            s = client.get_schedule(topic, f"s{i}")
            assert s is not None and s.next_run_at == at("2027-05-01 00:00:11")
        assert client.stats(topic).scheduled == 5


async def test_abort_of_a_running_occurrence_keeps_the_chain(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    running = await api.reserve(topic)
    assert await api.abort(topic, running.id) is True
    await assert_pending(api, topic, "s", at("2027-05-01 00:01:00"))
    assert (await api.get_schedule(topic, "s")).last_run_at == at("2027-05-01 00:00:00")
    assert (await api.stats(topic)).scheduled == 1  # nothing doubled


async def test_abort_of_the_pending_occurrence_skips_one_run_and_reads_aborted(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60, start_at=at("2027-05-01 00:01:00"))
    skipped = occurrence("s", at("2027-05-01 00:01:00"))
    assert await api.abort(topic, skipped, reason="holiday") is True
    await assert_pending(api, topic, "s", at("2027-05-01 00:02:00"))
    assert (await api.get_schedule(topic, "s")).last_run_at == at("2027-05-01 00:01:00")
    history = await api.history(topic, skipped)
    assert history.outcome is Outcome.ABORTED and history.events[-1].kind is EventKind.ABORTED
    assert history.events[-1].detail == "holiday"
    assert (await api.stats(topic)).scheduled == 1


async def test_a_retried_occurrence_deleted_advances_nothing(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    running = await api.reserve(topic)
    await api.release(running, delay=5)  # a retry: no longer the pending occurrence
    assert await api.delete(topic, running.id) is True
    await assert_pending(api, topic, "s", at("2027-05-01 00:01:00"))
    assert (await api.stats(topic)).scheduled == 1


async def test_a_replacing_put_of_the_pending_occurrence_keeps_the_chain(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"old", every=60, start_at=at("2027-05-01 00:01:00"))
    pending = occurrence("s", at("2027-05-01 00:01:00"))
    await api.put(topic, pending, b"new", delay=90, replace=True)  # moved to 00:01:30
    assert (await api.get_schedule(topic, "s")).next_run_at == at("2027-05-01 00:01:00")
    assert (await api.stats(topic)).scheduled == 1  # still the schedule's pending one
    clock.now = at("2027-05-01 00:01:30").timestamp()
    leased = await api.reserve(topic)
    assert (leased.id, leased.body) == (pending, b"new")
    await assert_pending(api, topic, "s", at("2027-05-01 00:02:00"))


async def test_unschedule_still_ends_the_schedule(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    assert await api.unschedule(topic, "s") is True
    assert (await api.stats(topic)).scheduled + (await api.stats(topic)).ready == 0
    assert await api.get_schedule(topic, "s") is None


async def test_delete_topic_removes_the_schedules_and_their_occurrences(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "a", b"", every=1, start_at=at("2027-05-01 00:00:10"))
    await api.schedule(topic, "b", b"", every=60)
    await api.delete_topic(topic)
    assert await api.schedules(topic) == []
    stats = await api.stats(topic)
    assert (stats.scheduled, stats.ready) == (0, 0)


def test_a_purge_bound_is_checked_before_any_io() -> None:
    with redisched.Client.from_url("redis://127.0.0.1:1/0") as client:
        for bad in (-1, "5", 1.5, True):
            with pytest.raises(InvalidArgument, match="before"):
                client.ops.purge_chunk("t", "scheduled", before=bad)  # type: ignore[arg-type]


def test_a_chunked_purge_skips_one_run_of_a_postponed_occurrence(
    redis_url: str, topic: str
) -> None:
    clock = FakeClock(at("2027-05-01 00:00:00").timestamp())
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.schedule(topic, "s", b"", every=1, start_at=at("2027-05-01 00:00:10"))
        pending = occurrence("s", at("2027-05-01 00:00:10"))
        client.reschedule(topic, pending, run_at=at("2027-05-01 01:00:00"))  # postponed
        client.put(topic, "plain", b"", run_at=at("2027-05-01 00:30:00"))
        # chunks of 1: the postponed occurrence's successor was put within the purge's bound
        # (before the plain job's run_at), and the next chunk skipped it too
        assert client._drive(purge(client.ops, topic, "scheduled", chunk=1)) == 2
        s = client.get_schedule(topic, "s")
        assert s is not None and s.last_run_at == at("2027-05-01 01:00:00")  # where it was moved
        assert s.next_run_at == at("2027-05-01 01:00:01")  # as if run at 01:00, then skipped
        assert client.stats(topic).scheduled == 1


async def test_delete_of_a_postponed_occurrence_goes_on_after_its_run_at(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60, start_at=at("2027-05-01 00:01:00"))
    pending = occurrence("s", at("2027-05-01 00:01:00"))
    await api.reschedule(topic, pending, run_at=at("2027-05-01 00:10:30"))
    assert await api.delete_many(topic, [pending]) == 1  # the run at 00:10:30 is skipped
    await assert_pending(api, topic, "s", at("2027-05-01 00:11:00"))  # not 00:02 to 00:10


async def test_the_chain_passes_over_a_job_put_under_a_later_occurrences_name(
    api: Any, clock: FakeClock, topic: str
) -> None:
    # A replace to a shorter interval cancels the waiting occurrence at :03; a create-only put
    # of that id makes an ordinary job, which runs at once. When the chain reached :03 the
    # leasing script's create-only put kept that running job, the record named it as pending,
    # and after its ack nothing ran again (found by tests/test_state_machine.py).
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"", every=3)
    assert (await api.reserve(topic)).id == occurrence("s", at("2027-05-01 00:00:00"))
    await api.schedule(topic, "s", b"", every=1)
    taken = occurrence("s", at("2027-05-01 00:00:03"))
    assert (await api.history(topic, taken)).outcome.value == "cancelled"
    await api.put(topic, taken, b"mine")
    mine = await api.reserve(topic)
    assert mine.id == taken
    for second in (1, 2):
        clock.advance(1)
        assert (await api.reserve(topic)).id == occurrence("s", at(f"2027-05-01 00:00:0{second}"))
    await assert_pending(api, topic, "s", at("2027-05-01 00:00:04"))
    await api.ack(mine)
    clock.advance(2)
    assert (await api.reserve(topic)).id == occurrence("s", at("2027-05-01 00:00:04"))


async def test_a_schedule_stored_in_a_zone_now_refused_is_still_refilled(
    api: Any, clock: FakeClock, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tz refused for new schedules (not a zone every glue knows) stays readable: a schedule
    an older version stored with one keeps getting its cron times (Factory reads as UTC; the
    tzdata dependency ships it where the system has no tz database)."""
    from redisched import recurrence

    clock.now = at("2027-05-01 00:00:30").timestamp()
    with monkeypatch.context() as older:
        older.setattr(recurrence, "NOT_ZONES", frozenset())
        await api.schedule(topic, "f", b"", cron="* * * * *", tz="Factory")
    for minute in range(1, 61):  # more than the 48 times a schedule holds: refills
        when = at("2027-05-01 00:00:00") + timedelta(minutes=minute)
        assert await api.delete(topic, occurrence("f", when)) is True
    await assert_pending(api, topic, "f", at("2027-05-01 01:01:00"))
