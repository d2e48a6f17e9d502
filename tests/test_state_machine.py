"""A Hypothesis state machine drives the real scripts against a pure-Python model of the
lifecycle in DESIGN.md section 2, on a hand-moved clock, with each job's history (events,
outcome, versions that go on after a job finished), and of schedules (section 9, interval and
cron): their occurrences are jobs of the same model, put by schedule.lua and by the leasing
or deleting of the pending one."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import redisched
from redisched import (
    DEFAULT_MAX_ATTEMPTS,
    InvalidArgument,
    PutStatus,
    StaleReservation,
    VersionConflict,
)
from redisched.dashboard.data import joined
from redisched.keys import TopicKeys
from redisched.ops import Call
from redisched.schedule_ops import with_refill
from tests.conftest import FakeClock

IDS = st.sampled_from(["a", "b", "c", "é"])
DELAYS = st.just(0) | st.integers(0, 4000)
SCHEDULE_IDS = st.sampled_from(["s", "t"])
CRONS = {"* * * * *": 60_000, "*/2 * * * *": 120_000}  # (every n minutes: a grid from 0)
RHYTHMS = st.integers(1, 3) | st.sampled_from(sorted(CRONS))  # every n seconds, or a cron
STEPS = int(os.environ.get("STATE_MACHINE_STEPS", "30"))
EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "500" if os.environ.get("CI") else "150"))


@dataclass
class Model:
    """What the model knows of one job."""

    state: str
    version: int
    body: bytes
    run_at: int
    priority: int
    ttr: int
    max_attempts: int
    attempts: int = 0
    seq: int = 0
    token: str | None = None
    reserved_until: int | None = None
    died_at: int = 0
    last_error: str | None = None
    pending: Model | None = None
    events: list[str] = field(default_factory=list)


@dataclass
class Finished:
    """What the model knows of a job that ended."""

    outcome: str
    version: int
    attempts: int
    last_error: str | None
    events: list[str]


@dataclass
class ScheduleModel:
    """What the model knows of one schedule (times in epoch ms). A cron schedule of the
    model fires every minute or every other minute, UTC: a grid anchored at the epoch."""

    version: int
    every: int
    cron: str | None
    anchor: int
    start_at: int
    end_at: int
    body: bytes
    priority: int
    next: int = 0  # the pending occurrence's time; 0: none (the schedule ended)
    last: int = 0  # the latest occurrence handed out or skipped (moved past now: its run_at)
    runs: list[int] = field(default_factory=list)  # the times handed out or skipped, in order


def occurrence_id(schedule_id: str, ms: int) -> str:
    """``<schedule id>@<YYYY-MM-DDTHH:MM:SSZ>``, as the scripts name an occurrence."""
    return f"{schedule_id}@{datetime.fromtimestamp(ms // 1000, UTC):%Y-%m-%dT%H:%M:%SZ}"


MAX_EVENTS = 16  # a record keeps its first event and its last 15


def add_event(job: Model, kind: str) -> None:
    if kind == "touched" and job.events and job.events[-1] == "touched":
        return  # a touch right after a touch only moves that event's time
    if len(job.events) >= MAX_EVENTS:
        del job.events[1]
    job.events.append(kind)


class Lifecycle(RuleBasedStateMachine):
    """Real scripts against the model; ``url`` is set by the test."""

    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.client = redisched.Client.from_url(self.url, clock=self.clock)
        self.raw = redis.Redis.from_url(self.url)
        self.topic = f"sm-{uuid.uuid4().hex}"
        self.jobs: dict[str, Model] = {}
        self.finished: dict[str, Finished] = {}
        self.tokens: list[tuple[str, str]] = []
        self.counter = itertools.count(1)
        self.paused = False
        self.schedules: dict[str, ScheduleModel] = {}
        self.unscheduled: dict[str, list[int]] = {}  # an ended schedule's runs, by id

    def teardown(self) -> None:
        self.client.close()
        self.raw.close()

    @property
    def now(self) -> int:
        return round(self.clock.now * 1000)

    # -- the model's moves ------------------------------------------------------------------

    def place(self, job: Model) -> None:
        if job.run_at <= self.now:
            job.state, job.seq = "ready", next(self.counter)
        else:
            job.state = "scheduled"
        job.token = job.reserved_until = None

    def end_attempt_with_pending(self, job_id: str, kind: str) -> bool:
        """Add the event that ends the attempt; True when a waiting replacement took over."""
        job = self.jobs[job_id]
        pending = job.pending
        add_event(job, kind)
        if pending is None:
            return False
        pending.events = job.events
        self.jobs[job_id] = pending
        self.place(pending)
        return True

    def finish(self, job_id: str, outcome: str, version: int | None = None) -> None:
        job = self.jobs.pop(job_id)
        self.finished[job_id] = Finished(
            outcome, version or job.version, job.attempts, job.last_error, job.events
        )

    def promote(self, limit: int) -> None:
        """Make the first ``limit`` due jobs ready, in run_at order (as reserve.lua does)."""
        due = [(j.run_at, i.encode()) for i, j in self.jobs.items()
               if j.state == "scheduled" and j.run_at <= self.now]  # fmt: skip
        for _, job_id in sorted(due)[:limit]:
            self.place(self.jobs[job_id.decode()])

    def ready_order(self) -> list[str]:
        ready = [(j.priority, j.seq, i) for i, j in self.jobs.items() if j.state == "ready"]
        return [i for _, _, i in sorted(ready)]

    # -- rules ------------------------------------------------------------------------------

    @rule(
        job_id=IDS,
        delay=DELAYS,
        priority=st.integers(-2, 2),
        replace_=st.booleans(),
        max_attempts=st.integers(0, 3),
        ttr=st.integers(1, 3000),
        body=st.binary(max_size=8),
    )
    def put(
        self, job_id: str, delay: int, priority: int, replace_: bool, max_attempts: int,
        ttr: int, body: bytes,
    ) -> None:  # fmt: skip
        result = self.client.put(
            self.topic, job_id, body, delay=delay / 1000, priority=priority, ttr=ttr / 1000,
            max_attempts=max_attempts or None, replace=replace_,
        )  # fmt: skip
        attempts = max_attempts or DEFAULT_MAX_ATTEMPTS  # the scripts' default
        new = Model("scheduled", 1, body, self.now + delay, priority, ttr, attempts)
        old = self.jobs.get(job_id)
        if old is None:
            ended = self.finished.get(job_id)
            new.version = 1 if ended is None else ended.version + 1  # versions go on
            assert (result.status, result.version) == (PutStatus.CREATED, new.version)
            add_event(new, "put")
            self.jobs[job_id] = new
            self.place(new)
            return
        current = old.pending.version if old.pending else old.version
        if not replace_:
            assert (result.status, result.version) == (PutStatus.EXISTS, current)
            return
        new.version = current + 1
        if old.state == "reserved":
            assert (result.status, result.version) == (PutStatus.PENDING, current + 1)
            add_event(old, "replaced")
            old.pending = new
        else:
            assert (result.status, result.version) == (PutStatus.REPLACED, current + 1)
            self.replace(job_id, old, new)

    def replace(self, job_id: str, old: Model, new: Model) -> None:
        new.events = old.events
        add_event(new, "replaced")
        self.jobs[job_id] = new
        self.place(new)

    @rule(job_id=IDS, guess=st.integers(1, 3))
    def put_if_version(self, job_id: str, guess: int) -> None:
        old = self.jobs.get(job_id)
        current = 0 if old is None else (old.pending.version if old.pending else old.version)
        try:
            self.client.put(self.topic, job_id, b"cas", replace=True, if_version=guess, ttr=1)
        except VersionConflict as conflict:
            assert guess != current and conflict.current_version == current
            return
        assert old is not None and guess == current
        new = Model("scheduled", current + 1, b"cas", self.now, 0, 1000, DEFAULT_MAX_ATTEMPTS)
        if old.state == "reserved":
            add_event(old, "replaced")
            old.pending = new
        else:
            self.replace(job_id, old, new)

    @rule(job_id=IDS, offset=st.integers(-3000, 4000))
    def put_at(self, job_id: str, offset: int) -> None:
        run_at = max(0, self.now + offset)
        result = self.client.put(self.topic, job_id, b"at", run_at=run_at / 1000)
        old = self.jobs.get(job_id)
        if old is not None:
            current = old.pending.version if old.pending else old.version
            assert (result.status, result.version) == (PutStatus.EXISTS, current)
            return
        ended = self.finished.get(job_id)
        version = 1 if ended is None else ended.version + 1  # versions go on
        assert (result.status, result.version) == (PutStatus.CREATED, version)
        new = Model("scheduled", version, b"at", run_at, 0, 60_000, DEFAULT_MAX_ATTEMPTS)
        add_event(new, "put")
        self.jobs[job_id] = new
        self.place(new)

    @rule(job_id=IDS, guess=st.integers(1, 3))
    def delete_if_version(self, job_id: str, guess: int) -> None:
        old = self.jobs.get(job_id)
        if old is None:
            assert self.client.delete(self.topic, job_id, if_version=guess) is False
            return
        current = old.pending.version if old.pending else old.version
        try:
            deleted = self.client.delete(self.topic, job_id, if_version=guess)
        except VersionConflict as conflict:
            assert guess != current and conflict.current_version == current
            return
        assert deleted is True and guess == current
        old.version = current
        add_event(old, "deleted")
        self.finish(job_id, "dead" if old.state == "dead" else "cancelled")

    @rule(job_id=IDS)
    def delete(self, job_id: str) -> None:
        assert self.client.delete(self.topic, job_id) is (job_id in self.jobs)
        if job_id in self.jobs:
            self.end_deleted(job_id)

    @rule(count=st.integers(1, 3), ttr=st.none() | st.integers(1, 3000))
    def reserve(self, count: int, ttr: int | None) -> None:
        got = self.client.reserve_many(self.topic, count, ttr=None if ttr is None else ttr / 1000)
        if self.paused:
            assert got == []
            return
        self.promote(min(self.client.ops.promote_limit, count))  # as reserve.lua promotes
        expected = self.ready_order()[:count]
        assert [job.id for job in got] == expected
        for job in got:
            model = self.jobs[job.id]
            model.state, model.attempts, model.token = "reserved", model.attempts + 1, job.token
            model.reserved_until = self.now + (ttr or model.ttr)
            add_event(model, "reserved")
            assert job.attempts == model.attempts and job.body == model.body
            assert job.token is not None
            self.tokens.append((job.id, job.token))
        for job in got:  # reserve.lua advances the schedules after leasing them all
            self.advance_schedule(job.id)
        # a lease past all of a cron schedule's times leaves it dry until the glue's next ack
        # (or pull, delete...) refills it from now, as the model's lease does at once
        self.client.execute(with_refill(self.client.ops, self.topic, Call((), lambda r: None)))

    def holds(self, job_id: str, token: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.state == "reserved" and job.token == token

    def lease(self, data: Any) -> tuple[str, str, bool]:
        """A reservation to act on: usually a live one, sometimes any token ever issued."""
        live = [(i, j.token) for i, j in self.jobs.items() if j.state == "reserved" and j.token]
        pool = live if live and data.draw(st.integers(0, 3)) else self.tokens
        job_id, token = data.draw(st.sampled_from(pool))
        return job_id, token, self.holds(job_id, token)

    def expect_stale(self, action: Any, job: Any) -> None:
        try:
            action(job)
        except StaleReservation:
            return
        raise AssertionError("a stale token was accepted")

    @precondition(lambda self: self.tokens)
    @rule(data=st.data())
    def ack(self, data: Any) -> None:
        job_id, token, valid = self.lease(data)
        handle = _Handle(self.topic, job_id, token)
        if not valid:
            return self.expect_stale(self.client.ack, handle)
        self.client.ack(handle)
        if not self.end_attempt_with_pending(job_id, "acked"):
            self.finish(job_id, "done")

    @precondition(lambda self: self.tokens)
    @rule(
        data=st.data(),
        delay=st.integers(0, 3000),
        error=st.none() | st.just("oops"),
        unstarted=st.booleans(),
    )
    def release(self, data: Any, delay: int, error: str | None, unstarted: bool) -> None:
        job_id, token, valid = self.lease(data)
        handle = _Handle(self.topic, job_id, token)
        if not valid:
            return self.expect_stale(lambda h: self.client.release(h, delay=delay / 1000), handle)
        state = self.client.release(handle, delay=delay / 1000, reason=error, unstarted=unstarted)
        model = self.jobs[job_id]
        if model.pending is not None:
            self.end_attempt_with_pending(job_id, "released")
            return
        if unstarted:  # the attempt is given back, never dead
            model.attempts = max(model.attempts - 1, 0)
        if error is not None:  # kept as for any release (an unstarted one says why it came back)
            model.last_error = error
        if not unstarted and model.max_attempts and model.attempts >= model.max_attempts:
            model.state, model.died_at, model.token = "dead", self.now, None
            model.reserved_until = None
            add_event(model, "dead")
        else:
            model.run_at = self.now + delay
            self.place(model)
            add_event(model, "retried" if error is not None and not unstarted else "released")
        assert state.value == model.state

    @precondition(lambda self: self.tokens)
    @rule(data=st.data(), ttr=st.none() | st.integers(1, 3000))
    def touch(self, data: Any, ttr: int | None) -> None:
        job_id, token, valid = self.lease(data)
        handle = _Handle(self.topic, job_id, token)
        seconds = None if ttr is None else ttr / 1000
        if not valid:
            return self.expect_stale(lambda h: self.client.touch(h, ttr=seconds), handle)
        self.client.touch(handle, ttr=seconds)
        model = self.jobs[job_id]
        model.reserved_until = self.now + (ttr or model.ttr)
        add_event(model, "touched")

    @precondition(lambda self: self.tokens)
    @rule(data=st.data())
    def bury(self, data: Any) -> None:
        job_id, token, valid = self.lease(data)
        handle = _Handle(self.topic, job_id, token)
        if not valid:
            return self.expect_stale(self.client.bury, handle)
        self.client.bury(handle, reason="buried")
        if self.jobs[job_id].pending is not None:
            self.end_attempt_with_pending(job_id, "released")
        else:
            model = self.jobs[job_id]
            add_event(model, "buried")
            model.state, model.died_at, model.last_error = "dead", self.now, "buried"
            model.token = model.reserved_until = None

    @rule(job_id=st.none() | IDS)
    def kick(self, job_id: str | None) -> None:
        dead = sorted((j.died_at, i.encode()) for i, j in self.jobs.items() if j.state == "dead")
        targets = [i.decode() for _, i in dead]
        if job_id is not None:
            targets = [job_id] if job_id in targets else []
        assert self.client.kick(self.topic, job_id) == len(targets)
        for target in targets:
            model = self.jobs[target]
            model.state, model.attempts, model.seq = "ready", 0, next(self.counter)
            add_event(model, "kicked")

    @rule()
    def requeue(self) -> None:
        expired = sorted(
            (j.reserved_until or 0, i.encode()) for i, j in self.jobs.items()
            if j.state == "reserved" and (j.reserved_until or 0) <= self.now
        )  # fmt: skip
        assert self.client.requeue(self.topic) == len(expired)
        for _, raw_id in expired:
            job_id = raw_id.decode()
            model = self.jobs[job_id]
            if model.pending is not None:
                self.end_attempt_with_pending(job_id, "requeued")
            elif model.max_attempts and model.attempts >= model.max_attempts:
                model.state, model.died_at = "dead", self.now
                plural = "attempt" if model.attempts == 1 else "attempts"
                model.last_error = f"reservation timed out after {model.attempts} {plural}"
                model.token = model.reserved_until = None
                add_event(model, "dead")
            else:
                model.run_at = self.now
                self.place(model)
                add_event(model, "requeued")

    def shown_state(self, job: Model) -> str:
        return "ready" if job.state == "scheduled" and job.run_at <= self.now else job.state

    @rule(
        job_id=IDS,
        delay=DELAYS,
        priority=st.none() | st.integers(-2, 2),
        state=st.none() | st.sampled_from(["scheduled", "ready", "reserved", "dead"]),
    )
    def reschedule(self, job_id: str, delay: int, priority: int | None, state: str | None) -> None:
        result = self.client.reschedule(
            self.topic, job_id, delay=delay / 1000, priority=priority, state=state
        )
        old = self.jobs.get(job_id)
        if old is None or (state is not None and self.shown_state(old) != state):
            assert result is None
            return
        latest = old.pending or old
        new = Model(
            "scheduled", latest.version + 1, latest.body, self.now + delay,
            latest.priority if priority is None else priority, latest.ttr, latest.max_attempts,
        )  # fmt: skip
        assert result is not None and result.version == new.version
        if old.state == "reserved":
            assert result.status is PutStatus.PENDING
            add_event(old, "replaced")
            old.pending = new
        else:
            assert result.status is PutStatus.REPLACED
            self.replace(job_id, old, new)

    @rule(
        ids=st.lists(IDS, min_size=1, max_size=4),
        state=st.none() | st.sampled_from(["scheduled", "ready", "reserved", "dead"]),
    )
    def delete_many(self, ids: list[str], state: str | None) -> None:
        doomed = {
            i for i in ids
            if i in self.jobs and (state is None or self.shown_state(self.jobs[i]) == state)
        }  # fmt: skip
        assert self.client.delete_many(self.topic, ids, state=state) == len(doomed)
        self.end_all_deleted(list(doomed))

    @rule(state=st.sampled_from(["scheduled", "ready", "dead"]))
    def purge(self, state: str) -> None:
        doomed = [i for i, j in self.jobs.items() if self.shown_state(j) == state]
        assert self.client.purge(self.topic, state) == len(doomed)
        self.end_all_deleted(doomed)

    def end_all_deleted(self, doomed: list[str]) -> None:
        """Jobs deleted by one call of delete_many or purge: every job first, then their
        schedules advance; an id put again by an earlier advance is the new pending
        occurrence, not a deleted one, so the order of the ids does not matter."""
        run_ats = {job_id: self.jobs[job_id].run_at for job_id in doomed}
        for job_id in doomed:
            self.end_deleted(job_id, advance=False)
        for job_id in doomed:
            if job_id not in self.jobs:
                self.advance_schedule(job_id, run_ats[job_id])

    def end_deleted(self, job_id: str, how: str = "delete", *, advance: bool = True) -> None:
        """A job deleted by delete, delete_many or purge (a deleted event, then finished
        cancelled), or by abort (an aborted event, finished aborted); a dead one stays dead.
        Deleting the pending occurrence skips that one run (``advance``: now)."""
        job = self.jobs[job_id]
        run_at = job.run_at
        job.version = job.pending.version if job.pending else job.version
        aborted = how == "abort"
        add_event(job, "aborted" if aborted else "deleted")
        outcome = "aborted" if aborted else "cancelled"
        self.finish(job_id, "dead" if job.state == "dead" else outcome)
        if advance:
            self.advance_schedule(job_id, run_at)

    @rule()
    def pull(self) -> None:
        got = self.client.pull(self.topic)
        if self.paused:
            assert got is None
            return
        self.promote(min(self.client.ops.promote_limit, 1))  # as a reserve of one job
        ready = self.ready_order()
        best = ready[0] if ready else None
        assert (got.id if got else None) == best
        if best is not None:
            assert got is not None and got.attempts == self.jobs[best].attempts + 1
            self.jobs[best].attempts += 1
            add_event(self.jobs[best], "pulled")
            self.finish(best, "pulled")
            self.advance_schedule(best)

    @rule(choice=st.integers(0, 4))
    def pause_or_resume(self, choice: int) -> None:
        paused = choice == 0  # mostly resume: a paused topic leases nothing, which tests little
        changed = (self.client.pause if paused else self.client.resume)(self.topic)
        assert changed is (paused != self.paused)
        self.paused = paused

    @rule(ms=st.integers(0, 5000))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms / 1000)

    # -- schedules (section 9) --------------------------------------------------------------

    def occurrence_version(self, job_id: str) -> int:
        ended = self.finished.get(job_id)
        return 1 if ended is None else ended.version + 1  # versions go on, as a put's

    def put_occurrence(self, schedule_id: str, at: int) -> None:
        """The occurrence at ``at``: a new scheduled job (placed in the scheduled set even
        when due, as the scripts do)."""
        sched = self.schedules[schedule_id]
        job_id = occurrence_id(schedule_id, at)
        assert job_id not in self.jobs, f"{job_id} is still live: the chain would stall on it"
        job = Model(
            "scheduled", self.occurrence_version(job_id), sched.body, at, sched.priority,
            60_000, DEFAULT_MAX_ATTEMPTS,
        )  # fmt: skip
        add_event(job, "put")
        self.jobs[job_id] = job
        sched.next = at

    def next_after(self, sched: ScheduleModel, after: int) -> int:
        """The first time of the grid strictly after ``after``, or 0 past end_at."""
        at = sched.anchor + ((after - sched.anchor) // sched.every + 1) * sched.every
        return 0 if sched.end_at and at > sched.end_at else at

    def advance_schedule(self, job_id: str, run_at: int = 0) -> None:
        """A job leased or deleted: when it is a schedule's pending occurrence, the next one
        is put (missed times collapse; after a deleted one's run_at too, when it was moved
        later) and the handed-out or skipped one becomes last (a deleted one moved past now:
        its run_at, to the second)."""
        schedule_id, at, _ = job_id.rpartition("@")
        sched = self.schedules.get(schedule_id) if at else None
        if sched is None or not sched.next or job_id != occurrence_id(schedule_id, sched.next):
            return
        following = self.next_after(sched, max(self.now, sched.next, run_at))
        while following and occurrence_id(schedule_id, following) in self.jobs:
            following = self.next_after(sched, following)  # a taken id is passed over
        moved = run_at - run_at % 1000 if run_at > self.now else 0  # skipped where it was
        sched.last = max(sched.next, moved)
        sched.runs.append(sched.last)
        sched.next = 0
        if following:
            self.put_occurrence(schedule_id, following)

    def take_waiting(self, schedule_id: str) -> tuple[str, Model] | None:
        """The schedule's pending occurrence when it waits (scheduled or ready)."""
        sched = self.schedules.get(schedule_id)
        if sched is None or not sched.next:
            return None
        job_id = occurrence_id(schedule_id, sched.next)
        job = self.jobs.get(job_id)
        if job is None or job.state not in ("scheduled", "ready"):
            return None
        return job_id, job

    @rule(
        schedule_id=SCHEDULE_IDS,
        rhythm=RHYTHMS,
        start=st.none() | st.integers(-4000, 4000),
        end=st.none() | st.integers(-1000, 15_000),
        priority=st.integers(-1, 1),
        body=st.binary(max_size=4),
    )
    def schedule(
        self, schedule_id: str, rhythm: int | str, start: int | None, end: int | None,
        priority: int, body: bytes,
    ) -> None:  # fmt: skip
        """Create or replace a schedule (start and end relative to now, in ms). Its cron
        times are an endless grid: the glue sends 48 at a time, later ones when its last run
        is further ahead than they reach, and refills the record after a lease or a delete."""
        cron = rhythm if isinstance(rhythm, str) else None
        every = CRONS[rhythm] if isinstance(rhythm, str) else rhythm * 1000
        start_ms = 0 if start is None else self.now + start
        end_ms = 0 if end is None else self.now + end
        old = self.schedules.get(schedule_id)
        waiting = self.take_waiting(schedule_id)
        last = old.last if old else 0
        if cron is not None:
            anchor = 0
        elif start is not None:
            anchor = -(-start_ms // 1000) * 1000
        elif old is not None and old.cron is None:
            anchor = old.anchor  # an interval replaced without start_at keeps its anchor
        else:
            anchor = -(-self.now // 1000) * 1000
        sched = ScheduleModel(
            (old.version if old else 0) + 1, every, cron, anchor, start_ms, end_ms, body,
            priority, last=last, runs=old.runs if old else [],
        )  # fmt: skip
        earliest = max(self.now, start_ms, last + 1000)
        first = anchor if anchor >= earliest else self.next_after(sched, earliest - 1)
        while (  # a time whose id a live job holds (an old run of this second) is passed over
            first
            and occurrence_id(schedule_id, first) in self.jobs
            and (waiting is None or waiting[0] != occurrence_id(schedule_id, first))
        ):  # fmt: skip
            first += sched.every
        # refused: an end not after the start or now, or before the first run (never runs)
        never = bool(end_ms) and (
            end_ms <= start_ms or end_ms <= self.now or not first or first > end_ms
        )
        try:
            got = self.client.schedule(
                self.topic, schedule_id, body, priority=priority,
                **({"cron": cron} if cron else {"every": every // 1000}),
                start_at=None if start is None else start_ms / 1000,
                end_at=None if end is None else end_ms / 1000,
            )  # fmt: skip
        except InvalidArgument as refused:
            assert refused.argument == "end_at" and never
            return
        assert not never
        self.schedules[schedule_id] = sched
        first_id = occurrence_id(schedule_id, first) if first else None
        if waiting is not None and waiting[0] == first_id:  # replaced in place
            job = waiting[1]
            job.version, job.body, job.priority = job.version + 1, body, priority
            job.state, job.run_at, job.attempts, job.last_error = "scheduled", first, 0, None
            add_event(job, "replaced")
            sched.next = first
        else:
            if waiting is not None:
                self.end_waiting(*waiting)
            if first:
                self.put_occurrence(schedule_id, first)
        assert (got.version, got.cron, got.priority) == (sched.version, cron, priority)
        assert self.ms(got.next_run_at) == sched.next

    @initialize(
        schedule_id=SCHEDULE_IDS, rhythm=RHYTHMS, start=st.none() | st.integers(-4000, 4000)
    )
    def a_first_schedule(self, schedule_id: str, rhythm: int | str, start: int | None) -> None:
        """Every example starts with a schedule (a rule among some 25 comes late, if at all)."""
        self.schedule(schedule_id, rhythm, start, None, 0, b"first")

    def end_waiting(self, job_id: str, job: Model) -> None:
        add_event(job, "deleted")
        self.finish(job_id, "cancelled")

    @rule(schedule_id=SCHEDULE_IDS)
    def unschedule(self, schedule_id: str) -> None:
        waiting = self.take_waiting(schedule_id)
        assert self.client.unschedule(self.topic, schedule_id) is (schedule_id in self.schedules)
        if waiting is not None:
            self.end_waiting(*waiting)
        sched = self.schedules.pop(schedule_id, None)
        if sched is not None:
            self.unscheduled[schedule_id] = sched.runs

    @precondition(lambda self: any("@" in i for i in self.jobs))
    @rule(data=st.data(), how=st.sampled_from(["delete", "abort", "delete_many"]))
    def delete_occurrence(self, data: Any, how: str) -> None:
        """Delete (or abort) a live occurrence: the pending one skips one run."""
        job_id = data.draw(st.sampled_from(sorted(i for i in self.jobs if "@" in i)))
        if how == "delete_many":
            assert self.client.delete_many(self.topic, [job_id, "a"]) == 1 + ("a" in self.jobs)
            if "a" in self.jobs:
                self.end_deleted("a")
        else:
            assert getattr(self.client, how)(self.topic, job_id) is True
        self.end_deleted(job_id, how)

    @precondition(lambda self: any(s.next for s in self.schedules.values()))
    @rule(data=st.data(), count=st.integers(49, 60))
    def skip_many_runs(self, data: Any, count: int) -> None:
        """Delete a schedule's pending occurrence ``count`` times in a row: more runs than a
        cron schedule's record holds times, so its last run goes far ahead of now (a replace
        goes on after it)."""
        schedule_id = data.draw(
            st.sampled_from(sorted(i for i, s in self.schedules.items() if s.next))
        )
        for _ in range(count):
            sched = self.schedules[schedule_id]
            if not sched.next:
                return  # it reached its end_at
            job_id = occurrence_id(schedule_id, sched.next)
            assert self.client.delete(self.topic, job_id) is True
            self.end_deleted(job_id)

    @precondition(lambda self: any(s.next > self.now for s in self.schedules.values()))
    @rule(
        data=st.data(),
        late=st.just(0) | st.integers(0, 7000),
        then=st.sampled_from(["reserve", "pull", None]),
    )
    def advance_to_an_occurrence(self, data: Any, late: int, then: str | None) -> None:
        """Move the clock to a pending occurrence's time, exactly or ``late`` ms past it (a
        late one collapses the missed times when it is leased or deleted), and mostly lease
        at once (two rules in a row among some 25 are rare)."""
        times = sorted(s.next for s in self.schedules.values() if s.next > self.now)
        self.clock.now = (data.draw(st.sampled_from(times)) + late) / 1000
        if then == "reserve":
            self.reserve(data.draw(st.integers(1, 3)), None)
        elif then == "pull":
            self.pull()

    @precondition(lambda self: any("@" in i for i in self.jobs))
    @rule(
        data=st.data(),
        delay=DELAYS | st.sampled_from([3_000_000, 7_200_000]),  # or past a cron's 48 times
        priority=st.none() | st.integers(-2, 2),
        put=st.booleans(),
    )
    def reschedule_occurrence(
        self, data: Any, delay: int, priority: int | None, put: bool
    ) -> None:  # fmt: skip
        """Move a live occurrence in time (``reschedule``, or a replacing ``put``): the
        pending one keeps its id, so it stays pending and its chain counts on from the time
        in its id; a running one's move waits."""
        job_id = data.draw(st.sampled_from(sorted(i for i in self.jobs if "@" in i)))
        if put:
            self.put(job_id, delay, priority or 0, True, 0, 1000, b"put")
        else:
            self.reschedule(job_id, delay, priority, None)

    @precondition(lambda self: any("@" in i for i in self.finished))
    @rule(data=st.data(), delay=DELAYS)
    def put_a_finished_occurrences_id(self, data: Any, delay: int) -> None:
        """A create-only put of a finished (run or skipped) occurrence's id: an ordinary job,
        which no chain takes for its pending occurrence."""
        job_id = data.draw(st.sampled_from(sorted(i for i in self.finished if "@" in i)))
        self.put(job_id, delay, 0, False, 0, 1000, b"again")

    @staticmethod
    def ms(when: datetime | None) -> int:
        return 0 if when is None else round(when.timestamp() * 1000)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def get_matches_the_model(self) -> None:
        for job_id in ("a", "b", "c", "é"):
            job = self.client.get(self.topic, job_id)
            model = self.jobs.get(job_id)
            if model is None:
                assert job is None
                continue
            assert job is not None
            state = (
                "ready" if model.state == "scheduled" and model.run_at <= self.now else model.state
            )
            assert job.state.value == state
            assert (job.version, job.attempts, job.body, job.priority) == (
                model.version, model.attempts, model.body, model.priority,
            )  # fmt: skip
            assert job.last_error == model.last_error
            assert round(job.run_at.timestamp() * 1000) == model.run_at
            assert job.pending_version == (model.pending.version if model.pending else None)
            assert job.token is None
            until = job.reserved_until
            assert (None if until is None else round(until.timestamp() * 1000)) == (
                model.reserved_until
            )

    @invariant()
    def history_matches_the_model(self) -> None:
        occurrences = {i for i in [*self.jobs, *self.finished] if "@" in i}
        ids = ("a", "b", "c", "é", *sorted(occurrences))
        calls = [self.client.ops.history(self.topic, job_id) for job_id in ids]
        found = self.client.execute(joined(calls))  # one round trip for the four
        for job_id, history in zip(ids, found, strict=True):
            live, ended = self.jobs.get(job_id), self.finished.get(job_id)
            if live is None and ended is None:
                assert history is None
                continue
            assert history is not None
            kinds = [e.kind.value for e in history.events]
            if live is not None:
                version = live.pending.version if live.pending else live.version
                assert (history.outcome, history.version, history.attempts) == (
                    None, version, live.attempts,
                )  # fmt: skip
                assert kinds == live.events and history.last_error == live.last_error
            else:
                assert ended is not None and history.outcome is not None
                assert (history.outcome.value, history.version, history.attempts) == (
                    ended.outcome, ended.version, ended.attempts,
                )  # fmt: skip
                assert kinds == ended.events and history.last_error == ended.last_error

    @invariant()
    def every_job_is_in_exactly_one_state(self) -> None:
        keys = TopicKeys("redisched", self.topic)
        pipe = self.raw.pipeline()
        pipe.hkeys(keys.name("jobs"))
        pipe.zrange(keys.name("scheduled"), 0, -1)
        pipe.zrange(keys.name("ready"), 0, -1)
        pipe.zrange(keys.name("reserved"), 0, -1)
        pipe.zrange(keys.name("dead"), 0, -1)
        stored, scheduled, ready, reserved, dead = pipe.execute()
        ready = [member[12:] for member in ready]
        members = scheduled + ready + reserved + dead
        assert sorted(members) == sorted(stored)
        assert sorted(m.decode() for m in members) == sorted(self.jobs)

    @invariant()
    def each_structure_matches_the_records(self) -> None:
        keys = TopicKeys("redisched", self.topic)
        pipe = self.raw.pipeline()
        for name in ("scheduled", "ready", "reserved", "dead"):
            pipe.zrange(keys.name(name), 0, -1)
        pipe.hkeys(keys.name("pending"))
        pipe.hkeys(keys.name("errors"))
        scheduled, ready, reserved, dead, pending, errors = pipe.execute()
        ids = {
            "scheduled": {m.decode() for m in scheduled},
            "ready": {m[12:].decode() for m in ready},
            "reserved": {m.decode() for m in reserved},
            "dead": {m.decode() for m in dead},
        }
        for member in ready:  # the sequence prefix: 12 hex digits, each id once
            int(member[:12], 16)
        assert len(ids["ready"]) == len(ready)
        for state, members in ids.items():
            assert members == {i for i, j in self.jobs.items() if j.state == state}, state
        assert {p.decode() for p in pending} == {i for i, j in self.jobs.items() if j.pending}
        assert {e.decode() for e in errors} == {
            i for i, j in self.jobs.items() if j.last_error is not None
        }  # no orphans: a deleted or finished job leaves no error or pending entry behind

    @invariant()
    def stats_match(self) -> None:
        stats = self.client.stats(self.topic)
        counts = {"scheduled": 0, "ready": 0, "reserved": 0, "dead": 0}
        for job in self.jobs.values():
            due = job.state == "scheduled" and job.run_at <= self.now
            counts["ready" if due else job.state] += 1
        assert (stats.scheduled, stats.ready, stats.reserved, stats.dead) == tuple(counts.values())

    @invariant()
    def schedules_match_the_model(self) -> None:
        listed = self.client.schedules(self.topic)
        assert [s.id for s in listed] == sorted(self.schedules)
        for got in listed:
            sched = self.schedules[got.id]
            assert (got.version, got.body, got.priority) == (
                sched.version, sched.body, sched.priority,
            )  # fmt: skip
            assert got.cron == sched.cron
            if sched.cron is None:
                assert got.every is not None and got.every.total_seconds() * 1000 == sched.every
            assert (self.ms(got.next_run_at), self.ms(got.last_run_at)) == (sched.next, sched.last)
            assert (self.ms(got.start_at), self.ms(got.end_at)) == (sched.start_at, sched.end_at)

    @invariant()
    def each_live_schedule_has_one_pending_occurrence(self) -> None:
        for schedule_id, sched in self.schedules.items():
            if not sched.next:  # ended: the next grid time (collapsed at now) is past end_at
                assert sched.end_at
                assert not self.next_after(sched, max(sched.last, sched.anchor - 1)) or (
                    self.now + sched.every > sched.end_at
                )
                continue
            job = self.jobs[occurrence_id(schedule_id, sched.next)]
            assert job.state in ("scheduled", "ready")  # its run_at moves with a reschedule
            assert (sched.next - sched.anchor) % sched.every == 0  # on the grid
            assert sched.next > sched.last and (not sched.end_at or sched.next <= sched.end_at)
        for runs in [*self.unscheduled.values(), *(s.runs for s in self.schedules.values())]:
            assert runs == sorted(set(runs)), runs  # each run once, never going back
        for sched in self.schedules.values():
            assert sched.last == (sched.runs[-1] if sched.runs else 0)

    @invariant()
    def occurrences_match_the_model(self) -> None:
        ids = sorted(i for i in self.jobs if "@" in i)
        found = self.client.execute(joined([self.client.ops.get(self.topic, i) for i in ids]))
        for job_id, job in zip(ids, found, strict=True):
            model = self.jobs[job_id]
            assert job is not None
            assert job.state.value == self.shown_state(model)
            assert (job.version, job.attempts, job.body, job.priority) == (
                model.version, model.attempts, model.body, model.priority,
            )  # fmt: skip
            assert round(job.run_at.timestamp() * 1000) == model.run_at


@dataclass(frozen=True)
class _Handle:
    topic: str
    id: str
    token: str


@pytest.mark.timeout(300)  # the history invariant adds a round trip per step
def test_lifecycle_matches_the_model(redis_url: str) -> None:
    machine = type("Machine", (Lifecycle,), {"url": redis_url})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=[HealthCheck.too_slow], database=None,
        ),
    )  # fmt: skip
