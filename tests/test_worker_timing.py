"""The worker's clocks: the server clock estimate and the precise alarm thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from redisched.timing import MAX_LEAD, Alarm, ServerClock


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


async def test_an_early_alarm_fires_ahead_by_the_alarms_own_lateness_at_most(alarm: Alarm) -> None:
    alarm._lateness = 0.05  # as if the loop had seen every alarm 50 ms late
    assert alarm.lead == MAX_LEAD
    event = asyncio.Event()
    when = time.time() + 0.05
    alarm.set_at(when, event, early=True)
    await asyncio.wait_for(event.wait(), 1)
    assert time.time() >= when - MAX_LEAD
    plain = asyncio.Event()
    when = time.time() + 0.02
    alarm.set_at(when, plain)
    await asyncio.wait_for(plain.wait(), 1)
    assert time.time() >= when  # without early, never before its time
