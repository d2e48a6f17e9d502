"""A schedule's occurrences in the history: the default max_attempts, replace and unschedule
(both clients, a hand-moved clock, a real Redis)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from redisched import DEFAULT_MAX_ATTEMPTS, JobState, Outcome
from tests.conftest import FakeClock
from tests.test_history import kinds
from tests.test_schedules import at

pytestmark = pytest.mark.asyncio


async def test_an_occurrence_gets_the_default_max_attempts(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    schedule = await api.schedule(topic, "s", b"", every=60)
    assert schedule.max_attempts == DEFAULT_MAX_ATTEMPTS
    job = await api.get(topic, "s@2027-05-01T00:00:00Z")
    assert job.max_attempts == DEFAULT_MAX_ATTEMPTS  # not 0: a failing one goes dead
    await api.configure(topic, max_attempts=4)
    await api.schedule(topic, "t", b"", every=60)
    assert (await api.get(topic, "t@2027-05-01T00:00:00Z")).max_attempts == 4


async def test_replacing_a_schedule_replaces_its_waiting_occurrence_with_one_event(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 08:00").timestamp()
    await api.schedule(topic, "d", b"old", cron="0 9 * * *")
    await api.schedule(topic, "d", b"new", cron="0 9 * * *", priority=2)
    occurrence = "d@2027-05-01T09:00:00Z"
    job = await api.get(topic, occurrence)
    assert (job.body, job.priority, job.version) == (b"new", 2, 2)
    history = await api.history(topic, occurrence)
    assert kinds(history) == ["put", "replaced"] and history.version == 2
    assert history.events[-1].detail == "schedule replaced"
    feed = [(e.id, e.kind.value, e.version) for e in await api.events(topic)]
    assert feed == [(occurrence, "put", 1), (occurrence, "replaced", 2)]


async def test_a_replaced_schedules_occurrence_at_another_time_ends_cancelled(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 08:00").timestamp()
    await api.schedule(topic, "d", b"", cron="0 9 * * *")
    replaced = await api.schedule(topic, "d", b"", cron="0 10 * * *")
    assert replaced.next_run_at == at("2027-05-01 10:00")
    old = await api.history(topic, "d@2027-05-01T09:00:00Z")
    assert old.outcome is Outcome.CANCELLED and kinds(old) == ["put", "deleted"]
    assert old.events[-1].detail == "schedule replaced"
    assert old.finished_at == at("2027-05-01 08:00")
    new = await api.history(topic, "d@2027-05-01T10:00:00Z")
    assert new.outcome is None and kinds(new) == ["put"]


async def test_unschedule_ends_the_waiting_occurrence_cancelled(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    running = await api.reserve(topic)  # 00:00 runs; 00:01 waits
    clock.advance(10)
    assert await api.unschedule(topic, "s") is True
    waiting = await api.history(topic, "s@2027-05-01T00:01:00Z")
    assert waiting.outcome is Outcome.CANCELLED and kinds(waiting) == ["put", "deleted"]
    assert waiting.events[-1].detail == "unscheduled"
    assert waiting.finished_at == datetime.fromtimestamp(clock.now, tz=UTC)
    assert (await api.history(topic, running.id)).outcome is None  # running: kept
    await api.ack(running)
    assert (await api.history(topic, running.id)).outcome is Outcome.DONE
    finished = {f.id: f.outcome for f in (await api.finished(topic)).jobs}
    assert finished == {"s@2027-05-01T00:01:00Z": Outcome.CANCELLED, running.id: Outcome.DONE}


async def test_scheduling_again_goes_on_from_the_finished_version(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60, start_at=at("2027-05-01 00:01"))
    assert await api.unschedule(topic, "s") is True
    await api.schedule(topic, "s", b"", every=60, start_at=at("2027-05-01 00:01"))
    occurrence = "s@2027-05-01T00:01:00Z"
    assert (await api.get(topic, occurrence)).version == 2  # versions never repeat
    assert kinds(await api.history(topic, occurrence)) == ["put"]


@pytest.mark.parametrize("consume", ["reserve", "pull"])
async def test_the_next_occurrence_goes_on_from_the_finished_version(
    api: Any, clock: FakeClock, topic: str, consume: str
) -> None:
    clock.now = at("2027-05-01 17:40").timestamp()
    await api.schedule(topic, "s", b"", cron="0 18 * * *")
    await api.schedule(topic, "s", b"", cron="0,50 17,18 * * *")  # 18:00 ends cancelled
    cancelled = "s@2027-05-01T18:00:00Z"
    assert (await api.history(topic, cancelled)).version == 1
    clock.now = at("2027-05-01 17:50").timestamp()
    assert (await getattr(api, consume)(topic)).id == "s@2027-05-01T17:50:00Z"
    job = await api.get(topic, cancelled)  # put again by the lease: version 2, not 1 again
    assert job.version == 2 and (await api.history(topic, cancelled)).version == 2


async def test_a_refilled_occurrence_goes_on_from_the_finished_version(
    api: Any, clock: FakeClock, topic: str
) -> None:
    leased = await run_dry(api, clock, topic)
    later = f"s@{datetime.fromtimestamp(clock.now + 50, UTC):%Y-%m-%dT%H:%M:%SZ}"
    await api.put(topic, later, b"")  # an earlier life of the id refill will put
    assert await api.delete(topic, later) is True
    await api.ack(leased[0])  # refills the schedule that ran dry: its first time after now
    assert (await api.get_schedule(topic, "s")).next_run_at.timestamp() == clock.now + 50
    assert (await api.get(topic, later)).version == 2


async def test_a_refill_passes_over_a_time_whose_id_a_running_job_holds(
    api: Any, clock: FakeClock, topic: str
) -> None:
    # refill.lua's create-only put kept the running job and named it as pending: once it was
    # acked the schedule never ran again (as advance_schedule and schedule.lua, fixed before)
    leased = await run_dry(api, clock, topic)
    taken = f"s@{datetime.fromtimestamp(clock.now + 50, UTC):%Y-%m-%dT%H:%M:%SZ}"
    await api.put(topic, taken, b"mine")
    mine = await api.reserve(topic)
    assert mine.id == taken
    await api.ack(leased[0])  # refills the schedule that ran dry: its first time after now
    after = f"s@{datetime.fromtimestamp(clock.now + 110, UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert (await api.get_schedule(topic, "s")).next_run_at.timestamp() == clock.now + 110
    assert (await api.get(topic, after)).state == JobState.SCHEDULED
    await api.ack(mine)


async def test_leasing_occurrences_with_other_jobs_puts_each_next_one_after_its_lease(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "a", b"", every=60, priority=0)
    await api.put(topic, "j", b"", delay=30, priority=1)
    await api.schedule(topic, "b", b"", every=60, priority=2)
    seen = await api.events(topic)
    clock.now = at("2027-05-01 00:00").timestamp() + 30
    leased = await api.reserve_many(topic, 3)
    assert [job.id for job in leased] == ["a@2027-05-01T00:00:00Z", "j", "b@2027-05-01T00:00:00Z"]
    feed = [(e.id, e.kind.value) for e in await api.events(topic, after=seen[-1].cursor)]
    assert feed == [
        ("a@2027-05-01T00:00:00Z", "reserved"), ("a@2027-05-01T00:01:00Z", "put"),
        ("j", "reserved"),
        ("b@2027-05-01T00:00:00Z", "reserved"), ("b@2027-05-01T00:01:00Z", "put"),
    ]  # fmt: skip
    assert (await api.get(topic, "b@2027-05-01T00:01:00Z")).run_at == at("2027-05-01 00:01")


async def run_dry(api: Any, clock: FakeClock, topic: str) -> list[Any]:
    """A cron schedule "s" every minute, leased until its stored times run out (no ack, so
    no refill yet), the clock then 10 s past the last; the leased jobs."""
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", cron="* * * * *")
    leased = []
    while (await api.get_schedule(topic, "s")).next_run_at is not None:
        leased.append(await api.reserve(topic))
        clock.advance(60)
    clock.advance(10)
    return leased
