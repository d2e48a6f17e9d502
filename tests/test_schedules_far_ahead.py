"""A schedule whose runs went further ahead than a cron record's 48 times (more runs skipped
in a row, or one run moved far later and then skipped) goes on after them: a replace and the
refill of a dry cron schedule never put a run before its last one (section 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import redisched
from redisched import InvalidArgument, JobState, Outcome
from tests.conftest import FakeClock


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def occurrence(schedule: str, when: datetime) -> str:
    """The job id of ``schedule``'s occurrence at ``when``."""
    return f"{schedule}@{when.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def skip_an_hour(api: Any, topic: str, schedule: str) -> None:
    """Delete the minutely schedule's pending runs 00:01 to 01:00 (60: more than it holds)."""
    for minute in range(1, 61):
        when = at("2027-05-01 00:00:00") + timedelta(minutes=minute)
        assert await api.delete(topic, occurrence(schedule, when)) is True


async def test_a_cron_schedule_replaced_after_more_skipped_runs_than_it_holds_goes_on_after_them(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:30").timestamp()
    await api.schedule(topic, "m", b"old", cron="* * * * *")
    await skip_an_hour(api, topic, "m")
    # the glue's first 48 times from now (00:01 to 00:48) all come before the last skipped run
    replaced = await api.schedule(topic, "m", b"new", cron="* * * * *")
    assert replaced.version == 2
    assert replaced.next_run_at == at("2027-05-01 01:01:00")
    assert replaced.last_run_at == at("2027-05-01 01:00:00")
    pending = await api.get(topic, occurrence("m", at("2027-05-01 01:01:00")))
    assert pending is not None and pending.body == b"new"  # replaced in place
    assert pending.state is JobState.SCHEDULED
    assert (await api.stats(topic)).scheduled == 1
    other = await api.schedule(topic, "m", b"new", cron="*/7 * * * *")
    assert other.next_run_at == at("2027-05-01 01:07:00")  # its first time after 01:00
    cancelled = await api.history(topic, occurrence("m", at("2027-05-01 01:01:00")))
    assert cancelled.outcome is Outcome.CANCELLED
    assert (await api.stats(topic)).scheduled == 1


async def test_a_replace_far_behind_the_last_run_is_refused_only_when_it_ends_before_it(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:30").timestamp()
    await api.schedule(topic, "m", b"", cron="* * * * *")
    await skip_an_hour(api, topic, "m")
    with pytest.raises(InvalidArgument) as refused:  # it would never run again
        await api.schedule(topic, "m", b"", cron="* * * * *", end_at=at("2027-05-01 00:59:30"))
    assert refused.value.argument == "end_at"
    kept = await api.get_schedule(topic, "m")
    assert (kept.version, kept.next_run_at) == (1, at("2027-05-01 01:01:00"))  # unchanged
    ending = await api.schedule(
        topic, "m", b"", cron="*/5 * * * *", end_at=at("2027-05-01 01:20:00")
    )
    assert ending.next_run_at == at("2027-05-01 01:05:00")


async def moved_and_deleted(api: Any, clock: FakeClock, topic: str, to: datetime) -> Any:
    """A minutely cron schedule "m" whose first run (08:01) is moved to ``to`` and then
    deleted (the refill puts the next run); the schedule as it is then."""
    clock.now = at("2027-05-01 08:00:30").timestamp()
    await api.schedule(topic, "m", b"", cron="* * * * *")
    pending = occurrence("m", at("2027-05-01 08:01:00"))
    await api.reschedule(topic, pending, run_at=to)
    assert await api.delete(topic, pending) is True
    return await api.get_schedule(topic, "m")


async def test_a_cron_run_moved_past_its_times_and_deleted_goes_on_after_it(
    api: Any, clock: FakeClock, topic: str
) -> None:
    s = await moved_and_deleted(api, clock, topic, at("2027-05-01 12:00:00"))  # past 08:48
    assert s.next_run_at == at("2027-05-01 12:01:00")  # not 08:02, before the moved run
    assert s.last_run_at == at("2027-05-01 12:00:00")  # the skipped run, where it was moved
    assert (await api.stats(topic)).scheduled == 1


async def test_a_run_moved_to_a_fraction_of_a_second_and_deleted_goes_on_at_the_next_time(
    api: Any, clock: FakeClock, topic: str
) -> None:
    moved = at("2027-05-01 11:59:59") + timedelta(milliseconds=500)
    s = await moved_and_deleted(api, clock, topic, moved)
    assert s.next_run_at == at("2027-05-01 12:00:00")  # the first time after 11:59:59.5
    assert s.last_run_at == at("2027-05-01 11:59:59")  # to the second


async def test_an_interval_replaced_after_a_moved_run_was_deleted_does_not_go_back(
    api: Any, clock: FakeClock, topic: str
) -> None:
    clock.now = at("2027-05-01 00:00:00").timestamp()
    await api.schedule(topic, "s", b"old", every=60, start_at=at("2027-05-01 00:01:00"))
    pending = occurrence("s", at("2027-05-01 00:01:00"))
    await api.reschedule(topic, pending, run_at=at("2027-05-01 00:10:30"))
    assert await api.delete(topic, pending) is True
    assert (await api.get_schedule(topic, "s")).next_run_at == at("2027-05-01 00:11:00")
    replaced = await api.schedule(topic, "s", b"new", every=60)
    assert replaced.next_run_at == at("2027-05-01 00:11:00")  # not 00:02, which it passed
    job = await api.get(topic, occurrence("s", at("2027-05-01 00:11:00")))
    assert job is not None and job.body == b"new"


async def test_an_http_replace_after_more_skipped_runs_than_held_goes_on_after_them(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    made = await http.put(
        f"/v1/topics/{topic}/schedules/m", json={"cron": "* * * * *", "body": None}
    )
    assert made.status_code == 201, made.text
    for _ in range(60):  # on the server's clock: each delete skips the pending run
        pending = await py.get_schedule(topic, "m")
        assert pending is not None and pending.next_run_at is not None
        assert await py.delete(topic, occurrence("m", pending.next_run_at)) is True
    last = (await py.get_schedule(topic, "m")).last_run_at
    replaced = await http.put(
        f"/v1/topics/{topic}/schedules/m", json={"cron": "* * * * *", "body": None}
    )
    assert replaced.status_code == 200, replaced.text
    out = replaced.json()
    assert out["next_run_at"] == (last + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_cron_start_late_on_the_last_day_east_of_utc_never_fires(
    redis_url: str, topic: str
) -> None:
    """Its local time is in the year 10000: an OverflowError escaped (HTTP 500)."""
    client = redisched.Client.from_url(redis_url)
    with pytest.raises(InvalidArgument, match="never fires after start_at"):
        client.schedule(
            topic, "late", b"", cron="0 * * * *", tz="Asia/Tokyo",
            start_at=at("9999-12-31 20:00:00"),
        )  # fmt: skip
    assert client.schedules(topic) == []
