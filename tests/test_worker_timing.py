"""The worker's clocks: the server clock estimate and the precise alarm thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from redisched.timing import MAX_LEAD, START_LEAD, Alarm, Lead, ServerClock


def test_server_clock_keeps_the_tightest_lower_bound() -> None:
    clock = ServerClock()
    # The server runs 250.4 ms ahead; replies read its clock (floored) 0.1 ms after sending.
    for local in (1000.0, 2000.3, 3000.55, 4000.9):
        server = local + 250.4 + 0.1
        clock.observe(int(server), sent=local / 1000, received=(local + 0.2) / 1000)
    assert clock.local_time(10_250.4) * 1000 == pytest.approx(10_000, abs=1.0)
    assert clock.local_time(10_250.4) * 1000 >= 10_000  # never wakes before the server's time


def test_server_clock_resets_when_the_local_clock_steps() -> None:
    clock = ServerClock()
    clock.observe(5000, sent=4.0, received=4.001)  # offset about 1000 ms
    clock.observe(5000, sent=5.0, received=5.001)  # local clock stepped 1 s ahead: offset ~0
    assert clock.local_time(6000) == pytest.approx(6.0, abs=0.002)


@pytest.fixture
async def alarm() -> AsyncIterator[Alarm]:
    """A started alarm thread, closed after the test."""
    started = Alarm()
    started.start()
    yield started
    started.close()


async def test_alarm_sets_events_on_time_and_never_early(alarm: Alarm) -> None:
    lateness = []
    for delay in (0.003, 0.011, 0.007, 0.02):
        event = asyncio.Event()
        when = time.time() + delay
        alarm.set_at(when, event)
        await asyncio.wait_for(event.wait(), 1)
        lateness.append(time.time() - when)
    assert min(lateness) >= 0
    assert sorted(lateness)[1] < 0.005  # typically ~0.2 ms; generous on a shared machine


async def test_a_cancelled_alarm_does_not_fire(alarm: Alarm) -> None:
    quiet, loud = asyncio.Event(), asyncio.Event()
    alarm.set_at(time.time() + 0.01, quiet).cancel()
    alarm.set_at(time.time() + 0.03, loud)
    await asyncio.wait_for(loud.wait(), 1)
    assert not quiet.is_set()


async def test_many_cancelled_alarms_are_compacted(alarm: Alarm) -> None:
    far = time.time() + 3600
    for _ in range(3000):
        alarm.set_at(far, asyncio.Event()).cancel()
    assert len(alarm._heap) < 1100


async def test_an_alarm_already_due_sets_its_event_at_once(alarm: Alarm) -> None:
    event = asyncio.Event()
    alarm.set_at(time.time() - 1, event)
    assert event.is_set()  # no hop through the alarm thread


def test_the_lead_learns_from_outcomes_within_its_bounds() -> None:
    lead = Lead()
    assert lead.seconds == START_LEAD
    lead.met()
    assert lead.seconds > START_LEAD
    lead.missed()
    assert lead.seconds < START_LEAD  # a miss weighs three hits
    for _ in range(1000):
        lead.missed()
    assert lead.seconds == 0.0
    for _ in range(1000):
        lead.met()
    assert lead.seconds == MAX_LEAD


def test_the_lead_settles_where_a_quarter_of_leases_come_early() -> None:
    lead = Lead()
    needed = 0.0004  # a lease sent less than this far ahead finds its job due
    early = []
    for step in range(4000):
        jitter = (step * 7919 % 1000) / 1000 * 0.0002 - 0.0001  # ±0.1 ms, spread evenly
        if lead.seconds > needed + jitter:
            lead.missed()
            early.append(step >= 2000)
        else:
            lead.met()
    assert 0.0003 < lead.seconds < 0.0004  # the quarter quantile of what was needed: 0.35 ms
    assert 0.15 < sum(early) / 2000 < 0.35


async def test_an_alarm_says_whether_it_ended_the_wait(alarm: Alarm) -> None:
    rung, kicked, past = asyncio.Event(), asyncio.Event(), asyncio.Event()
    ringing = alarm.set_at(time.time() + 0.005, rung)
    await asyncio.wait_for(rung.wait(), 1)
    waiting = alarm.set_at(time.time() + 0.05, kicked)
    kicked.set()  # another wake-up ended the wait first
    waiting.cancel()
    await asyncio.sleep(0.08)
    assert ringing.fired and not waiting.fired
    assert alarm.set_at(time.time() - 1, past).fired
