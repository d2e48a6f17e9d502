"""Request deadlines on one timer: who is cancelled, when, and whose cancellation it is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from redisched.push.deadlines import Deadlines


async def _armed(deadlines: Deadlines, seconds: float, work: Awaitable[Any]) -> tuple[str, float]:
    """Await ``work`` under a deadline of ``seconds``, as the dispatcher awaits a request: how
    it ended ("done" or "timed out"), after how many seconds."""
    me = asyncio.current_task()
    assert me is not None
    started = time.monotonic()
    deadlines.arm(me, seconds)
    try:
        await work
    except asyncio.CancelledError:
        cut = deadlines.was_cut(me)
        if not deadlines.disarm(me) or me.uncancel():
            raise
        return "cut" if cut else "timed out", time.monotonic() - started
    deadlines.disarm(me)
    return "done", time.monotonic() - started


async def test_only_tasks_past_their_deadline_are_cancelled_each_at_its_own() -> None:
    deadlines = Deadlines()
    results = await asyncio.gather(
        _armed(deadlines, 0.3, asyncio.sleep(0.05)),
        _armed(deadlines, 0.1, asyncio.sleep(5)),
        _armed(deadlines, 0.3, asyncio.sleep(5)),
        _armed(deadlines, 5, asyncio.sleep(0.2)),
    )
    assert [how for how, _ in results] == ["done", "timed out", "timed out", "done"]
    assert 0.09 <= results[1][1] < 0.25 and 0.29 <= results[2][1] < 0.45
    assert len(deadlines) == 0
    deadlines.close()


async def test_a_task_that_timed_out_goes_on_as_if_never_cancelled() -> None:
    deadlines = Deadlines()
    assert (await _armed(deadlines, 0.05, asyncio.sleep(5)))[0] == "timed out"
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0
    assert (await _armed(deadlines, 5, asyncio.sleep(0.01)))[0] == "done"
    await asyncio.sleep(0.01)  # no cancellation left over
    deadlines.close()


async def test_an_earlier_deadline_armed_later_sets_the_timer_sooner() -> None:
    deadlines = Deadlines()
    slow = asyncio.create_task(_armed(deadlines, 5, asyncio.sleep(5)))
    await asyncio.sleep(0.01)
    how, seconds = await _armed(deadlines, 0.1, asyncio.sleep(5))
    assert how == "timed out" and seconds < 0.3
    assert not slow.done()
    slow.cancel()
    await asyncio.wait([slow])
    deadlines.close()


async def test_another_cancellation_wins_over_a_deadline() -> None:
    deadlines = Deadlines()
    early = asyncio.create_task(_armed(deadlines, 0.2, asyncio.sleep(5)))
    await asyncio.sleep(0.01)
    early.cancel()  # e.g. a shutdown, before the deadline
    await asyncio.wait([early])
    assert early.cancelled() and len(deadlines) == 0

    # a shutdown right after the deadline, before the task handled the deadline's cancellation
    work = asyncio.get_running_loop().create_future()
    both: list[asyncio.Task[Any]] = []
    work.add_done_callback(lambda _: both[0].cancel())  # runs before the task wakes
    both.append(asyncio.create_task(_armed(deadlines, 0.05, work)))
    await asyncio.wait(both)
    assert both[0].cancelled() and len(deadlines) == 0
    deadlines.close()


async def test_close_stops_the_timer_without_cancelling() -> None:
    deadlines = Deadlines()
    task = asyncio.create_task(asyncio.sleep(0.2))
    deadlines.arm(task, 0.05)
    deadlines.close()
    await task
    assert not task.cancelled() and len(deadlines) == 0


async def test_cut_cancels_an_armed_task_now_and_is_told_from_a_timeout() -> None:
    deadlines = Deadlines()
    held = asyncio.create_task(_armed(deadlines, 5, asyncio.sleep(5)))
    other = asyncio.create_task(_armed(deadlines, 0.1, asyncio.sleep(5)))
    await asyncio.sleep(0.01)
    assert deadlines.cut(held) is True
    assert deadlines.cut(held) is False  # once: it is already cancelled
    how, seconds = await held
    assert how == "cut" and seconds < 0.1 and held.cancelling() == 0
    assert (await other)[0] == "timed out"  # the others keep their own deadlines
    assert not deadlines.was_cut(held) and len(deadlines) == 0
    deadlines.close()


async def test_only_an_armed_task_not_yet_timed_out_is_cut() -> None:
    deadlines = Deadlines()
    idle = asyncio.create_task(asyncio.sleep(0.1))
    assert deadlines.cut(idle) is False  # not in a request: nothing to cut
    await idle
    assert not idle.cancelled()
    late = asyncio.create_task(asyncio.sleep(5))
    deadlines.arm(late, 0.01)
    await asyncio.wait([late])  # cancelled for its deadline, not yet disarmed
    assert deadlines.cut(late) is False and not deadlines.was_cut(late)
    assert deadlines.disarm(late) is True  # a timeout, taken back as such
    deadlines.close()


async def test_a_cut_task_goes_on_as_if_never_cancelled() -> None:
    deadlines = Deadlines()
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().call_later(0.02, deadlines.cut, me)
    assert (await _armed(deadlines, 5, asyncio.sleep(5)))[0] == "cut"
    assert me.cancelling() == 0
    assert (await _armed(deadlines, 0.05, asyncio.sleep(5)))[0] == "timed out"
    deadlines.close()
