"""Recurring schedules on both clients: occurrences, DST through whole years, missed runs,
pause, replace and unschedule (a hand-moved clock, a real Redis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

import redisched
from redisched import InvalidArgument, JobState, VersionConflict
from tests.conftest import FakeClock


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


async def walk(api: Any, clock: FakeClock, topic: str, until: datetime) -> list[datetime]:
    """Consume a topic the way a worker does (lease, ack, sleep until next due) up to
    ``until``; the run_at of every job handed out, in order."""
    seen: list[datetime] = []
    while clock.now <= until.timestamp():
        lease = await api.lease(topic, 10)
        for job in lease.jobs:
            assert job.id.endswith("@" + job.run_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
            seen.append(job.run_at)
            await api.ack(job)
        if lease.jobs:
            continue
        if lease.next_due_ms is None:
            break
        clock.now = lease.next_due_ms / 1000
    return seen


def local_times(zone: str, year: int, hour: int, minute: int) -> list[datetime]:
    """What Debian cron does for a fixed 'M H * * *' job, computed with zoneinfo alone: the
    local time each day; a time that does not exist runs when the clock jumps past it (the
    first valid minute after the gap); a repeated time runs once (the first)."""
    tz = ZoneInfo(zone)
    out = []
    day = datetime(year, 1, 1)
    while day.year == year:
        local = day.replace(hour=hour, minute=minute, tzinfo=tz)
        utc = local.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):  # in the gap
            # clocks jumped forward: the job runs right after the jump, at the new hour
            jumped = utc.astimezone(tz)
            utc = jumped.replace(minute=0).astimezone(UTC)
        out.append(utc)
        day += timedelta(days=1)
    return out


@pytest.mark.parametrize(
    ("zone", "cron", "hour", "minute"),
    [
        ("Europe/Berlin", "30 2 * * *", 2, 30),  # 2027-03-28 02:30 does not exist; 10-31 repeats
        ("America/New_York", "30 2 * * *", 2, 30),  # 2027-03-14 02:30 does not exist
        ("America/New_York", "30 1 * * *", 1, 30),  # 2027-11-07 01:30 happens twice
    ],
)
async def test_a_year_of_a_daily_cron_through_both_dst_transitions(
    api: Any, clock: FakeClock, topic: str, zone: str, cron: str, hour: int, minute: int
) -> None:
    clock.now = at("2026-12-31 12:00").timestamp()
    created = await api.schedule(topic, "daily", b"x", cron=cron, tz=zone)
    assert created.next_run_at == local_times(zone, 2027, hour, minute)[0]
    seen = await walk(api, clock, topic, at("2027-12-31 12:00"))
    expected = local_times(zone, 2027, hour, minute)
    assert seen[: len(expected)] == expected
    assert len(seen) == 365 and len(set(seen)) == 365


async def test_the_2027_transitions_exactly(api: Any, clock: FakeClock, topic: str) -> None:
    """The four days named in the issue, spelled out."""
    clock.now = at("2027-01-01 00:00").timestamp()
    await api.schedule(topic, "berlin", b"", cron="30 2 * * *", tz="Europe/Berlin")
    seen = await walk(api, clock, topic, at("2027-12-31 00:00"))
    days = {t.date().isoformat(): t for t in seen}
    assert days["2027-03-27"] == at("2027-03-27 01:30")  # 02:30 CET
    assert days["2027-03-28"] == at("2027-03-28 01:00")  # 02:30 skipped: 03:00 CEST
    assert days["2027-03-29"] == at("2027-03-29 00:30")  # 02:30 CEST
    autumn = [t for t in seen if t.date().isoformat() in ("2027-10-30", "2027-10-31")]
    assert autumn == [at("2027-10-30 00:30"), at("2027-10-31 00:30")]  # once in the repeat
    assert [t for t in seen if t.date().isoformat() == "2027-11-01"] == [at("2027-11-01 01:30")]


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("Europe/Berlin", "2027-03-28 00:00", "2027-10-31 00:00"),
        ("America/New_York", "2027-03-14 05:00", "2027-11-07 04:00"),
    ],
)
async def test_a_wildcard_cron_keeps_its_real_time_interval(
    api: Any, clock: FakeClock, topic: str, zone: str, spring: str, autumn: str
) -> None:
    for day in (spring, autumn):
        clock.now = at(day).timestamp() - 1
        await api.schedule(topic, "quarter", b"", cron="*/15 * * * *", tz=zone)
        seen = await walk(api, clock, topic, at(day) + timedelta(hours=4))
        assert seen[:17] == [at(day) + timedelta(minutes=15 * i) for i in range(17)]
        await api.unschedule(topic, "quarter")


async def test_a_weekly_cron_in_new_york_for_a_year(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-01-01 00:00").timestamp()
    await api.schedule(topic, "digest", b"d", cron="0 9 * * MON", tz="America/New_York")
    seen = await walk(api, clock, topic, at("2027-12-31 00:00"))
    tz = ZoneInfo("America/New_York")
    mondays = [datetime(2027, 1, 4, 9, tzinfo=tz) + timedelta(weeks=i) for i in range(52)]
    assert seen == [m.replace(tzinfo=tz).astimezone(UTC) for m in mondays]


async def test_an_occurrence_is_an_ordinary_job(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-03-29 06:00").timestamp()
    schedule = await api.schedule(
        topic, "digest", b"body", cron="0 9 * * MON", tz="Europe/Berlin", ttr=30, priority=3,
        max_attempts=2,
    )  # fmt: skip
    assert schedule.next_run_at == at("2027-03-29 07:00")
    assert (schedule.cron, schedule.every, schedule.tz, schedule.version) == (
        "0 9 * * MON", None, "Europe/Berlin", 1,
    )  # fmt: skip
    job = await api.get(topic, "digest@2027-03-29T07:00:00Z")
    assert job.state == JobState.SCHEDULED and job.body == b"body"
    assert (job.ttr, job.priority, job.max_attempts) == (30, 3, 2)
    clock.now = at("2027-03-29 07:00").timestamp()
    leased = await api.reserve(topic)
    assert leased.id == "digest@2027-03-29T07:00:00Z"
    # the next occurrence was put in the same step
    assert (await api.get(topic, "digest@2027-04-05T07:00:00Z")).state == JobState.SCHEDULED
    await api.release(leased, delay=0, reason="boom")  # retries as any job, the chain goes on
    again = await api.reserve(topic)
    assert again.id == leased.id and again.attempts == 2
    await api.ack(again)
    after = await api.get_schedule(topic, "digest")
    assert after.next_run_at == at("2027-04-05 07:00")
    assert after.last_run_at == at("2027-03-29 07:00")


async def test_each_occurrence_counts_as_a_put(api: Any, clock: FakeClock, topic: str) -> None:
    """``total_put`` (the put line of the topic's throughput chart) counted only the puts of
    clients: a topic fed by a schedule showed none."""
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "tick", b"", every=60)
    assert (await api.stats(topic)).total_put == 1  # the first occurrence
    seen = await walk(api, clock, topic, at("2027-05-01 00:09"))
    assert len(seen) == 10
    assert (await api.stats(topic)).total_put == 11  # and the one now pending


async def test_every_counts_from_start_at(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    start = at("2027-05-01 00:00") + timedelta(seconds=10)
    s = await api.schedule(topic, "sync", b"", every=timedelta(minutes=10), start_at=start)
    assert s.every == timedelta(minutes=10) and s.cron is None and s.next_run_at == start
    seen = await walk(api, clock, topic, start + timedelta(minutes=35))
    assert seen == [start + timedelta(minutes=10 * i) for i in range(4)]


async def test_every_without_start_runs_now(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = 1_900_000_000.25
    s = await api.schedule(topic, "now", b"", every=60)
    assert s.next_run_at == datetime.fromtimestamp(1_900_000_001, tz=UTC)


async def test_missed_occurrences_collapse_to_one(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "sync", b"", every=60)
    await api.ack(await api.reserve(topic))
    clock.advance(3600 + 30)  # nobody consumed for an hour
    overdue = await api.reserve(topic)
    assert overdue.run_at == at("2027-05-01 00:01")
    assert await api.reserve(topic) is None  # one overdue occurrence, not a burst
    await api.ack(overdue)
    s = await api.get_schedule(topic, "sync")
    assert s.next_run_at == at("2027-05-01 01:01")  # the first future time


async def test_missed_cron_times_collapse_even_past_the_held_list(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp() - 1
    await api.schedule(topic, "minutely", b"", cron="* * * * *")
    await api.ack(await api.reserve(topic) or (clock.advance(1) or await api.reserve(topic)))
    clock.advance(5 * 3600)  # far more minutes than the schedule holds
    overdue = await api.reserve(topic)
    assert overdue.run_at == at("2027-05-01 00:01")
    assert await api.reserve(topic) is None
    await api.ack(overdue)  # the ack tops the list up and puts the first future time
    s = await api.get_schedule(topic, "minutely")
    assert s.next_run_at == at("2027-05-01 05:01")
    clock.now = s.next_run_at.timestamp()
    assert (await api.reserve(topic)).run_at == at("2027-05-01 05:01")


async def test_pausing_the_topic_pauses_its_schedules(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "sync", b"", every=60)
    await api.pause(topic)
    clock.advance(600)
    assert await api.reserve(topic) is None
    await api.resume(topic)
    assert (await api.reserve(topic)).run_at == at("2027-05-01 00:00")
    assert await api.reserve(topic) is None
    assert (await api.get_schedule(topic, "sync")).next_run_at == at("2027-05-01 00:11")


async def test_replace_takes_effect_from_the_next_occurrence_not_yet_reserved(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"old", every=60)
    running = await api.reserve(topic)  # 00:00 runs with the old body; 00:01 is pending
    replaced = await api.schedule(topic, "s", b"new", every=120)
    assert replaced.version == 2 and replaced.every == timedelta(minutes=2)
    assert await api.get(topic, "s@2027-05-01T00:01:00Z") is None  # the old pending one
    assert replaced.next_run_at == at("2027-05-01 00:02")  # same anchor, new interval
    job = await api.get(topic, "s@2027-05-01T00:02:00Z")
    assert job.body == b"new"
    assert (await api.get(topic, running.id)).body == b"old"  # the running one untouched
    await api.ack(running)
    with pytest.raises(VersionConflict, match=r"^schedule 's' in topic .* is at version 2, not 1$"):
        await api.schedule(topic, "s", b"x", every=60, if_version=1)


async def test_replace_a_cron_keeps_a_due_time_that_still_matches(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 08:00").timestamp()
    await api.schedule(topic, "d", b"old", cron="0 9 * * *")
    s = await api.schedule(topic, "d", b"new", cron="0 9 * * *")
    assert s.next_run_at == at("2027-05-01 09:00")
    assert (await api.get(topic, "d@2027-05-01T09:00:00Z")).body == b"new"


async def test_declaring_an_interval_again_keeps_its_due_run(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"old", every=600)
    clock.advance(300)  # 00:00 is due, nobody took it yet; the app restarts and declares again
    again = await api.schedule(topic, "s", b"new", every=600)
    assert again.version == 2 and again.next_run_at == at("2027-05-01 00:00")
    job = await api.reserve(topic)
    assert (job.id, job.body, job.version) == ("s@2027-05-01T00:00:00Z", b"new", 2)
    await api.ack(job)
    assert (await api.get_schedule(topic, "s")).next_run_at == at("2027-05-01 00:10")


async def test_declaring_a_cron_again_keeps_its_due_run(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 06:00").timestamp()
    await api.schedule(topic, "d", b"", cron="0 9 * * *", tz="Europe/Paris")
    clock.now = at("2027-05-01 07:30").timestamp()  # 09:00 in Paris (07:00 UTC) was due
    again = await api.schedule(topic, "d", b"", cron="0 9 * * *", tz="Europe/Paris")
    assert again.next_run_at == at("2027-05-01 07:00")
    assert (await api.reserve(topic)).id == "d@2027-05-01T07:00:00Z"
    # due less than a minute ago: the glue's times (from a minute before now) hold it
    clock.now = at("2027-05-01 08:58").timestamp()
    await api.schedule(topic, "h", b"", cron="0 * * * *")
    clock.now = at("2027-05-01 09:00").timestamp() + 30
    assert (await api.schedule(topic, "h", b"", cron="0 * * * *")).next_run_at == at(
        "2027-05-01 09:00"
    )
    assert (await api.reserve(topic)).id == "h@2027-05-01T09:00:00Z"


async def test_declaring_a_schedule_again_keeps_no_postponed_run_as_due(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", every=3600)
    await api.reschedule(topic, "s@2027-05-01T00:00:00Z", run_at=at("2027-05-01 00:30"))
    clock.advance(300)
    again = await api.schedule(topic, "s", b"", every=3600)
    assert again.next_run_at == at("2027-05-01 01:00")  # not run early at 00:00
    assert await api.reserve(topic) is None


async def test_a_replace_on_another_time_grid_still_ends_a_due_run(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", every=600)
    clock.advance(300)
    moved = await api.schedule(topic, "s", b"", every=600, start_at=at("2027-05-01 00:07"))
    assert moved.next_run_at == at("2027-05-01 00:07")  # start_at is the new anchor
    assert await api.get(topic, "s@2027-05-01T00:00:00Z") is None
    cron = await api.schedule(topic, "c", b"", cron="*/10 * * * *")
    clock.advance(900)  # 00:20: 00:10 is due
    changed = await api.schedule(topic, "c", b"", cron="*/15 * * * *")
    assert changed.next_run_at == at("2027-05-01 00:30")
    assert cron.next_run_at == at("2027-05-01 00:10")
    assert await api.get(topic, "c@2027-05-01T00:10:00Z") is None


async def test_unschedule_deletes_the_pending_occurrence_only(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    running = await api.reserve(topic)
    assert await api.unschedule(topic, "s") is True
    assert await api.get(topic, "s@2027-05-01T00:01:00Z") is None
    assert (await api.get(topic, running.id)).state == JobState.RESERVED
    await api.ack(running)
    clock.advance(3600)
    assert await api.reserve(topic) is None
    assert await api.unschedule(topic, "s") is False
    assert await api.get_schedule(topic, "s") is None


async def test_a_schedule_made_again_while_its_old_occurrence_runs_goes_on(
    api: Any, clock: FakeClock, topic: str
) -> None:
    # The new first occurrence fell on the running one's id (same second): schedule.lua's
    # create-only put kept the running job, the record named it as pending, and once it was
    # acked nothing ever ran again (found by tests/test_state_machine.py).
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"old", every=60)
    running = await api.reserve(topic)
    assert running.id == "s@2027-05-01T00:00:00Z"
    assert await api.unschedule(topic, "s") is True
    again = await api.schedule(topic, "s", b"new", every=60)
    assert again.next_run_at == at("2027-05-01 00:01")
    assert (await api.get(topic, running.id)).body == b"old"  # left alone, still running
    await api.ack(running)
    clock.advance(60)
    job = await api.reserve(topic)
    assert job is not None and (job.id, job.body) == ("s@2027-05-01T00:01:00Z", b"new")


async def test_end_at_stops_the_chain(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    end = at("2027-05-01 00:03")
    await api.schedule(topic, "s", b"", every=60, end_at=end)
    seen = await walk(api, clock, topic, at("2027-05-01 01:00"))
    assert seen == [at("2027-05-01 00:00") + timedelta(minutes=i) for i in range(4)]
    assert (await api.get_schedule(topic, "s")).next_run_at is None


async def test_the_year_9999_ends_an_interval_chain(api: Any, clock: FakeClock, topic: str) -> None:
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    created = await api.schedule(topic, "s", b"", every=1, start_at=last)
    assert created.next_run_at == last
    clock.now = last.timestamp()
    pulled = await api.pull(topic)  # the next one would be in the year 10000
    assert pulled.id == "s@9999-12-31T23:59:59Z"
    (listed,) = await api.schedules(topic)
    assert listed.next_run_at is None and listed.last_run_at == last
    assert (await api.stats(topic)).scheduled == 0
    clock.now = last.timestamp() - 3600
    await api.schedule(topic, "t", b"", every=86_400, start_at=last - timedelta(hours=1))
    job = await api.reserve(topic)
    assert job is not None and job.id == "t@9999-12-31T22:59:59Z"
    assert (await api.get_schedule(topic, "t")).next_run_at is None
    replaced = await api.schedule(topic, "t", b"", every=86_400)  # after the last one reserved
    assert replaced.next_run_at is None and (await api.stats(topic)).scheduled == 0


async def test_schedules_lists_every_schedule(api: Any, clock: FakeClock, topic: str) -> None:
    assert await api.schedules(topic) == []
    await api.schedule(topic, "b", b"", every=5)
    await api.schedule(topic, "a", b"", cron="0 0 * * *", tz="Asia/Tokyo")
    listed = await api.schedules(topic)
    assert [s.id for s in listed] == ["a", "b"]
    assert listed[0].tz == "Asia/Tokyo" and listed[1].every == timedelta(seconds=5)


async def test_pull_advances_the_schedule_too(api: Any, clock: FakeClock, topic: str) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"", every=60)
    pulled = await api.pull(topic)
    assert pulled.id == "s@2027-05-01T00:00:00Z"
    assert (await api.get_schedule(topic, "s")).next_run_at == at("2027-05-01 00:01")


async def test_a_job_id_with_an_at_sign_is_not_an_occurrence(
    api: Any, clock: FakeClock, topic: str
) -> None:
    await api.schedule(topic, "ada", b"", every=60)
    await api.put(topic, "ada@example.com", b"mail")
    await api.put(topic, "ada@2027-05-01T00:00:00Z", b"lookalike")
    before = await api.get_schedule(topic, "ada")
    while (job := await api.reserve(topic)) is not None:
        await api.ack(job)
    after = await api.get_schedule(topic, "ada")
    assert after.last_run_at == before.next_run_at  # only its own occurrence advanced it


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": "* * * * *", "every": 60}, "cron"),
        ({}, "cron"),
        ({"cron": "* * * * *", "tz": "Mars/Olympus"}, "tz"),
        ({"cron": "* * * * *", "tz": "../../etc/passwd"}, "tz"),
        # files of the tz database that are no zone every glue knows (Node's Intl refuses them,
        # and its refill found no times: the schedule stopped after its first 48 runs)
        ({"cron": "* * * * *", "tz": "localtime"}, "tz"),  # the host's zone, whichever it is
        ({"cron": "* * * * *", "tz": "posixrules"}, "tz"),
        ({"cron": "* * * * *", "tz": "Factory"}, "tz"),
        ({"cron": "* * * * *", "tz": "posix/Europe/Berlin"}, "tz"),
        ({"cron": "* * * * *", "tz": "right/UTC"}, "tz"),
        ({"every": 0.5}, "every"),
        ({"every": 0}, "every"),
        ({"every": 1.5}, "every"),
        ({"every": "60"}, "every"),
        ({"every": 60, "start_at": 2_000_000_000, "end_at": 1_999_999_999}, "end_at"),
        # an end already past (schedule.lua's clock): was stored, a schedule that never runs
        ({"every": 60, "end_at": 1_000_000_000}, "end_at"),
        ({"cron": "* * * * *", "end_at": 1_000_000_000}, "end_at"),
        # the epoch itself is past too (0 is schedule.lua's "no end": was a schedule for ever)
        ({"every": 60, "end_at": 0}, "end_at"),
        ({"every": 60, "end_at": 0.0004}, "end_at"),
        ({"cron": "* * * * *", "end_at": datetime(1970, 1, 1, tzinfo=UTC)}, "end_at"),
        ({"every": 60, "start_at": datetime(2027, 1, 1)}, "start_at"),
        ({"every": 60, "ttr": 0}, "ttr"),
        ({"every": 60, "priority": "high"}, "priority"),
        ({"every": 60, "max_attempts": 0}, "max_attempts"),
        # no New Year left before the year 10000: was OverflowError: date value out of range
        ({"cron": "0 0 1 1 *", "start_at": datetime(9999, 6, 1, tzinfo=UTC)}, "cron"),
        # a valid cron of 200 KB was stored whole in the schedule's record
        ({"cron": "0," * 100_000 + "0 * * * *"}, "cron"),
    ],
)
async def test_bad_input_names_the_field_and_changes_nothing(
    api: Any, topic: str, kwargs: dict[str, Any], field: str, raw_redis: redis.Redis
) -> None:
    await api.schedule(topic, "s", b"kept", every=60)
    before = sorted(raw_redis.keys(f"redisched:{{{topic}}}:*"))
    snapshot = {k: raw_redis.dump(k) for k in before if not k.endswith(b":wake")}
    with pytest.raises(InvalidArgument) as caught:
        await api.schedule(topic, "s", b"new", **kwargs)
    assert caught.value.argument == field
    assert {k: raw_redis.dump(k) for k in snapshot} == snapshot
    assert (await api.get_schedule(topic, "s")).version == 1


async def test_bad_schedule_ids(api: Any, topic: str) -> None:
    for bad, field in (("", "id"), ("x" * 1010, "id")):
        with pytest.raises(InvalidArgument) as caught:
            await api.schedule(topic, bad, b"", every=60)
        assert caught.value.argument == field


def test_two_clients_never_double_an_occurrence(redis_url: str, topic: str) -> None:
    clock = FakeClock(at("2027-05-01 00:00").timestamp())
    a = redisched.Client.from_url(redis_url, clock=clock)
    b = redisched.Client.from_url(redis_url, clock=clock)
    a.schedule(topic, "s", b"", every=1)
    seen = []
    for _ in range(200):
        for c in (a, b, b, a):
            job = c.reserve(topic)
            if job:
                seen.append(job.id)
                c.ack(job)
        clock.advance(0.5)
    assert len(seen) == len(set(seen)) == 100
    a.close()
    b.close()


def test_every_occurrence_has_one_put_event(redis_url: str, topic: str) -> None:
    """schedule.lua and reserve.lua log a put for each occurrence they create (in its history
    and the topic's feed), once."""
    clock = FakeClock(at("2027-05-01 00:00").timestamp())
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.schedule(topic, "s", b"", every=60, start_at=at("2027-05-01 00:01"))
        first = client.history(topic, "s@2027-05-01T00:01:00Z")
        assert first is not None
        assert [e.kind for e in first.events] == ["put"]
        assert first.events[0].at == at("2027-05-01 00:00")
        clock.advance(60)
        job = client.reserve(topic)
        assert job is not None and job.id == "s@2027-05-01T00:01:00Z"
        following = client.history(topic, "s@2027-05-01T00:02:00Z")
        assert following is not None
        assert [e.kind for e in following.events] == ["put"]
        assert following.events[0].at == at("2027-05-01 00:01")
        feed = [(e.id, e.kind) for e in client.events(topic)]
        assert feed.count(("s@2027-05-01T00:01:00Z", "put")) == 1
        assert ("s@2027-05-01T00:02:00Z", "put") in feed


def test_an_end_at_past_by_the_servers_clock_is_refused(
    client: redisched.Client, raw_redis: redis.Redis
) -> None:
    """The check is schedule.lua's, on the Redis server's clock (a client on server time sends
    no now_ms), so a skewed local clock does not decide it."""
    topic = f"ended-{uuid.uuid4().hex[:8]}"
    seconds, _ = raw_redis.time()
    server_now = datetime.fromtimestamp(seconds, UTC)
    with pytest.raises(InvalidArgument) as caught:
        client.schedule(topic, "s", b"", every=60, end_at=server_now - timedelta(seconds=2))
    assert caught.value.argument == "end_at" and "Redis server's clock" in caught.value.message
    assert client.get_schedule(topic, "s") is None and client.stats(topic).scheduled == 0
    made = client.schedule(topic, "s", b"", every=60, end_at=server_now + timedelta(hours=1))
    assert made.next_run_at is not None


@pytest.mark.parametrize(
    "when",
    [
        {"cron": "0 0 1 1 *", "end_at": at("2027-06-01 00:00")},  # next: 2028-01-01
        {"cron": "0 12 * * *", "tz": "Europe/Paris", "end_at": at("2027-05-01 09:00")},
    ],
)
async def test_a_schedule_whose_first_run_is_after_its_end_is_refused(
    api: Any, clock: FakeClock, topic: str, when: dict[str, Any]
) -> None:
    # It was stored with no occurrence at all (next_run_at None): a schedule that never runs.
    clock.now = at("2027-05-01 00:00").timestamp()
    with pytest.raises(InvalidArgument) as caught:
        await api.schedule(topic, "s", b"", **when)
    assert caught.value.argument == "end_at" and "first run" in caught.value.message
    assert await api.get_schedule(topic, "s") is None
    assert (await api.stats(topic)).scheduled == 0


async def test_a_replace_whose_first_run_is_after_its_end_changes_nothing(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00").timestamp()
    await api.schedule(topic, "s", b"v1", every=3600)
    await api.ack(await api.reserve(topic))  # the 00:00 run: the next one is at 01:00
    made = await api.get_schedule(topic, "s")
    assert made is not None and made.next_run_at == at("2027-05-01 01:00")
    with pytest.raises(InvalidArgument) as caught:
        await api.schedule(topic, "s", b"v2", every=3600, end_at=at("2027-05-01 00:30"))
    assert caught.value.argument == "end_at" and "first run" in caught.value.message
    kept = await api.get_schedule(topic, "s")
    assert kept is not None and kept.version == made.version and kept.body == b"v1"
    pending = await api.get(topic, "s@2027-05-01T01:00:00Z")
    assert pending is not None and pending.body == b"v1"  # its occurrence stays, unreplaced
