"""The worker runtime: lease due jobs, run their handlers, ack or release them.

One :class:`Worker` serves one or more topics with a shared concurrency limit. Per topic, one
:class:`~redisched.leasing.Lessee` talks to Redis (the leasing loop shared with the push
dispatcher and the HTTP long poll): each call acks the jobs finished since the last one *and*
leases as many new ones as there are free slots, in one round trip, so a busy worker spends
far less than a round trip per job. A topic's ``concurrency`` and ``rate`` settings hold
across every Worker process and every other consumer (``limit.lua``'s grant). A fixed set of
runner tasks runs the handlers; a handler that never waits runs without a task switch.

When a topic has nothing due, its loop sleeps until the next job's ``run_at`` or the next
reservation deadline (both from the lease, on the server's clock), or until the topic's wake
channel announces new work: no polling. A running job that is deleted, replaced, expired,
purged or aborted is announced on the same channel: its handler is cancelled (an async one)
or sees ``job.cancelled`` (a sync one).

Delivery is at least once: a killed worker's jobs return when their ttr runs out. Every ack
carries the lease's token, so a late ack of a lease that was lost changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from . import results, validate
from .client import AsyncClient
from .errors import BackendError, InvalidArgument, RedischedError, StaleReservation
from .fanout import readable
from .handlers import Handler, Watched, describe, is_async
from .keys import validate_topic
from .leasing import ACK_DELAY, MAX_IDLE, Lessee, LimitsCache
from .models import Cancellation, Job, JobState
from .ops import Call
from .partition_setting import REFRESH, names, read_counts, served_topics
from .retry import Backoff, Retry, TopicBackoff
from .timing import ServerClock
from .wakeup import Wakeups
from .warmup import warm_up_or_warn

log = logging.getLogger(__name__)

__all__ = ["ACK_DELAY", "MAX_IDLE", "Worker"]

SIDE_CALLS = 16
"""Releases and touches in flight at once."""
STOPPED_ERROR = "the worker stopped before the handler finished"
CANCELLED_ERROR = "cancelled: the job was deleted, replaced, expired or aborted while running"
CANCEL_WAIT = 1.0
"""Seconds handlers still running at the end of the grace period get to end once cancelled;
one that ignores its cancellation (or a thread that does not return) is left behind."""
LOST_CANCELS = sys.version_info < (3, 12)
"""Python 3.11's ``asyncio.wait_for`` returns the result of an inner future that finished as
its task was cancelled, and the cancellation is lost (``cancelling()`` stays 1): redis-py 8's
asyncio sends go through it, and about half the cancellations that land in one of its
commands vanish (all that land in a send). 3.12 rewrote ``wait_for``."""
RECANCEL_AFTER = (1.0, 5.0) if LOST_CANCELS else ()
"""Seconds after a job's cancellation (then after the one before) at which its async handler,
still running, is cancelled again, then left to end (Python 3.11 only, :data:`LOST_CANCELS`:
the handler of a deleted job ran on to its end). A handler's own cleanup of a second or more
is then cut short too; on 3.12 a cancellation is sent once, as asyncio means it."""
STOP_CALLS_WAIT = 2.0
"""Seconds a stop waits for one more of its last calls to end, once the grace period is over
(the releases of unfinished jobs and the acks): with Redis not answering, each waited out the
socket's timeout (5 s), and the stop overran its grace by that much."""


@dataclass(eq=False, slots=True)
class _Topic:
    name: str
    handler: Handler
    is_async: bool
    backoff: Backoff | None = None
    lessee: Lessee | None = None


@dataclass(eq=False, slots=True)
class _Attempt:
    """One leased job, from dispatch until its handler ends."""

    job: Job
    topic: _Topic
    ttr: float
    touch_at: float
    lost: bool = False
    cancelled: bool = False
    stopped: bool = False  # a sync handler told to stop at the end of the grace period
    finished: bool = False
    started: bool = False
    cancels: int = 0  # the cancellations of its runner task for this job (RECANCEL_AFTER)
    task: asyncio.Task[None] | None = None
    thread: Future[Any] | None = None  # a sync handler's run in the thread pool
    result: bytes | None = None  # what the handler returned, kept with the ack


class _Slots:
    """The Worker's capacity (a :class:`~redisched.leasing.Capacity`): its free handler slots,
    shared by every topic."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def want(self) -> int:
        return 0 if self.worker._stop_requested else self.worker._free

    def size(self) -> int:
        return self.worker._concurrency

    def busy(self) -> bool:
        return bool(self.worker._active)

    def take(self, count: int) -> None:
        self.worker._free -= count

    def give(self, count: int) -> None:
        self.worker._free += count
        if count > 0:
            self.worker._kick_starved()

    def start(self, lessee: Lessee, jobs: list[Job]) -> None:
        self.worker._dispatch(self.worker._topics[lessee.topic], jobs)


class Worker:
    """Runs handlers for the due jobs of one or more topics.

    Args:
        client: the AsyncClient to lease, ack and release through.
        handlers: topic name -> handler. An ``async def`` handler runs on the event loop; a
            plain function runs in a thread pool of ``min(concurrency, 256)`` threads (jobs
            leased beyond that wait for a thread). Returning acks the job; raising releases
            it with backoff (``Retry(delay=...)`` picks the delay); a job whose
            ``max_attempts`` are used up goes dead with the error text as its
            ``last_error``. Any exception fails only its job; a ``KeyboardInterrupt`` or
            ``SystemExit`` also stops the Worker gracefully, and ``run()`` then raises it.
            A partitioned topic is served on each of its partitions, and on its own name; one
            partitioned while the Worker runs, within 5 seconds (its partitions' count is
            read again every 5 s).
        concurrency: handlers running at once, across all topics; leased jobs never exceed it.
        ttr: seconds each lease lasts (None: each job's own ttr). Handlers running longer
            than half of it get their lease extended.
        backoff: the retry delays after a failure: a Backoff for every topic, or a
            TopicBackoff leaving parts of it to each topic's ``backoff`` and ``backoff_max``
            settings as read at start (None: ``TopicBackoff()``, all of it).
        grace: seconds that running handlers get to finish after ``stop()``; what has not
            finished then is cancelled and released. A stop takes ``grace``, plus up to 1 s
            for handlers that ignore their cancellation, plus its last releases and acks,
            given up once none has ended for 2 s (Redis not answering: those jobs return
            after their ttr).
        wakeups: the process's wake-up hub (None: the worker opens its own on the client's
            connection pool).
        handle_signals: stop gracefully on SIGTERM and SIGINT (when run in the main thread).
    """

    def __init__(
        self,
        client: AsyncClient,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 50,
        ttr: float | None = None,
        backoff: Backoff | TopicBackoff | None = None,
        grace: float = 30.0,
        wakeups: Wakeups | None = None,
        handle_signals: bool = True,
    ) -> None:
        if not isinstance(client, AsyncClient):
            raise InvalidArgument("client", "must be a redisched.AsyncClient")
        if not isinstance(handlers, Mapping) or not handlers:
            raise InvalidArgument("handlers", "must map at least one topic to a handler")
        self._topics: dict[str, _Topic] = {}
        for name, handler in handlers.items():
            validate_topic(name, f"handlers[{name!r}]")
            if not callable(handler):
                raise InvalidArgument(f"handlers[{name!r}]", "must be callable")
            if inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler):
                # its call returns a generator without running a line: each job was acked
                raise InvalidArgument(
                    f"handlers[{name!r}]", "must be a function, not a generator function"
                )
            self._topics[name] = _Topic(name, handler, is_async(handler))
        if backoff is not None and not isinstance(backoff, (Backoff, TopicBackoff)):
            raise InvalidArgument("backoff", "must be a redisched.Backoff or TopicBackoff")
        if wakeups is not None and not isinstance(wakeups, Wakeups):
            raise InvalidArgument("wakeups", "must be a redisched.wakeup.Wakeups")
        self._client = client
        self._concurrency = validate.integer(concurrency, "concurrency", 1, 10_000)
        self._ttr = None if ttr is None else validate.ttr_ms(ttr) / 1000
        self._backoff = TopicBackoff() if backoff is None else backoff
        self._grace = validate.duration_ms(grace, "grace") / 1000
        self._wakeups = wakeups
        if not isinstance(handle_signals, bool):  # "no" would install the handlers
            kind = type(handle_signals).__name__
            raise InvalidArgument("handle_signals", f"must be a bool, not {kind}")
        self._handle_signals = handle_signals
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop_requested = False
        self._force_requested = False
        self._clock = ServerClock()
        self._serving = asyncio.Event()
        self._abandoned = 0
        self._starting = False

    # -- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop gracefully: lease nothing more, let running handlers finish within ``grace``.

        Callable from any task, thread or handler; a second call cuts the grace period short.
        """
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._request_stop()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(self._request_stop)

    def _request_stop(self) -> None:
        if self._stop_requested:
            self._force_requested = True
        self._stop_requested = True
        if self._loop is not None:
            self._announce_stop()

    def _announce_stop(self) -> None:
        self._wake_up.set()
        if self._force_requested:
            self._force.set()
        self._kick_all()

    def _kick_starved(self) -> None:
        """Wake the topics that wait for a free slot."""
        for topic in self._topics.values():
            if topic.lessee is not None and topic.lessee.starved:
                topic.lessee.kick.set()

    def _kick_all(self) -> None:
        for topic in self._topics.values():
            if topic.lessee is not None:
                topic.lessee.kick.set()

    async def wait_started(self) -> None:
        """Return once ``run()`` serves: subscribed to wake-ups, so no put goes unnoticed."""
        await self._serving.wait()

    @property
    def abandoned(self) -> int:
        """Handlers that had not ended when ``run()`` last returned: cancelled at the end of
        the grace period, an async one ignored its cancellation or a thread did not return.
        Their jobs were released (what they do now is not applied); they may still run, and
        a thread keeps the interpreter from exiting until it returns."""
        return self._abandoned

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called (or a signal arrived)."""
        return self._stop_requested

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the topics until ``stop()``, SIGTERM or SIGINT; then stop gracefully.

        Raises:
            RedischedError: when already running, or a worker task failed unexpectedly.
            BackendError: when Redis cannot be reached at start.
            KeyboardInterrupt, SystemExit: what a handler raised, after the graceful stop.
        """
        if self._loop is not None or self._starting:
            raise RedischedError("this worker is already running")
        self._starting = True  # before the first await: a second run() meanwhile is refused
        try:
            served = await served_topics(self._client, self._topics)  # partitioned: each one
        finally:
            self._starting = False
        self._logical = {name for name in self._topics if served.get(name) == name}
        self._topics = {n: _Topic(n, self._topics[t].handler, self._topics[t].is_async)
                        for n, t in served.items()}  # fmt: skip
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake_up = asyncio.Event()
        self._force = asyncio.Event()
        self._pending: deque[_Attempt] = deque()
        self._parked: deque[asyncio.Future[None]] = deque()
        self._active: set[_Attempt] = set()
        self._interrupted: list[_Attempt] = []
        self._idle = asyncio.Event()
        self._free = self._concurrency
        self._touches: set[asyncio.Task[None]] = set()
        # Releases and touches go one job per call; a burst of them (many handlers failing at
        # once) shares a few connections instead of opening one each.
        self._side_calls = asyncio.Semaphore(SIDE_CALLS)
        self._min_ttr = 3600.0
        self._shorter_ttr = asyncio.Event()
        self._failure: BaseException | None = None
        self._runners_ended = False
        self._recancels: set[asyncio.TimerHandle] = set()  # RECANCEL_AFTER's, ended with run()
        self._abandoned = 0
        self._exit: KeyboardInterrupt | SystemExit | None = None
        self._executor: ThreadPoolExecutor | None = None
        if not all(t.is_async for t in self._topics.values()):
            self._executor = ThreadPoolExecutor(
                min(self._concurrency, 256), thread_name_prefix="redisched-handler"
            )
        owns_wakeups = self._wakeups is None
        wakeups = self._wakeups or Wakeups(self._client.redis, self._client.ops.prefix)
        limits = LimitsCache()
        for topic in self._topics.values():
            topic.lessee = Lessee(
                self._client, topic.name, wakeups, ttr=self._ttr, limits=limits, clock=self._clock
            )
        signals = self._install_signals(loop)
        background: list[asyncio.Task[None]] = []
        loops: list[asyncio.Task[None]] = []
        runners: list[asyncio.Task[None]] = []
        unsubscribe: list[Callable[[], None]] = []
        # what _serve_partition adds a topic to, while the Worker runs
        self._serving_parts = (wakeups, limits, loops, unsubscribe)
        try:
            for topic in self._topics.values():
                assert topic.lessee is not None
                try:  # subscribed before the first lease: no wake-up is lost
                    await topic.lessee.watch()
                except (RedisError, OSError) as exc:
                    raise BackendError(f"Redis is unavailable: {exc}") from exc
                unsubscribe.append(wakeups.on_abort(topic.name, self._aborter(topic)))
            # the first job due later is on time; a cluster primary down (another topic's)
            # made it raise, and the Worker could not start even for the healthy nodes' topics
            warm = await warm_up_or_warn(self._client, self._clock, "the worker")
            await self._read_backoffs(None if warm else 0)
            background = [
                self._spawn(self._heartbeat(), "heartbeat"),
                self._spawn(self._follow_partitions(), "partitions"),
            ]
            runners = [self._spawn(self._runner(), "runner") for _ in range(self._concurrency)]
            loops.extend(  # the list _serve_partition adds to: cancelled and awaited alike
                self._spawn(self._topic_loop(t), f"topic {t.name}") for t in self._topics.values()
            )
            log.info(
                "worker serving %s with concurrency %d",
                ", ".join(self._topics), self._concurrency,
            )  # fmt: skip
            self._serving.set()
            if self._stop_requested:  # stop() came before run()
                self._announce_stop()
            await self._wake_up.wait()
            await self._shutdown(loops, runners)
        finally:
            tasks = (*loops, *background, *self._touches)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._end_runners(runners)
            for timer in self._recancels:
                timer.cancel()
            self._recancels.clear()
            threads = [a.thread for a in (*self._interrupted, *self._active) if a.thread]
            self._abandoned = sum(not t.done() for t in runners) + sum(
                not t.done() for t in threads
            )
            if self._abandoned:
                log.warning("%d handlers did not end when cancelled; left behind, their"
                            " jobs released", self._abandoned)  # fmt: skip
            for sig in signals:
                loop.remove_signal_handler(sig)
            for stop_listening in unsubscribe:
                stop_listening()
            for topic in self._topics.values():
                if topic.lessee is not None:
                    await topic.lessee.close()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if owns_wakeups:
                await wakeups.close()
            self._serving.clear()
            self._stop_requested = self._force_requested = False
            self._loop = None
        if self._failure is not None:
            raise RedischedError(f"worker task failed: {self._failure!r}") from self._failure
        if self._exit is not None:
            raise self._exit
        log.info("worker stopped")

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
        return installed

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop_requested:
            log.info("%s again: skipping the grace period", sig.name)
        else:
            log.info("%s: stopping (send it again to skip the grace period)", sig.name)
        self._request_stop()

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"redisched-worker {name}")
        task.add_done_callback(self._supervise)
        return task

    def _supervise(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
            log.error("worker task %s failed", task.get_name(), exc_info=self._failure)
            self._request_stop()

    async def _read_backoffs(self, retry_for: float | None) -> None:
        """Each topic's backoff: the Worker's own, else the topic's settings (one round trip
        for every topic and partition, waiting out ``retry_for``; 0 after a failed warm-up,
        which waited it out already). A topic Redis cannot serve now, its Cluster primary
        down, reads its settings at its first retry instead of failing the start: its jobs are
        served only once its node is back."""
        topics = list(self._topics.values())
        policy = self._backoff
        if isinstance(policy, Backoff):
            for topic in topics:
                topic.backoff = policy
            return
        ops, client = self._client.ops, self._client
        try:
            call = Call.join(*(ops.config(t.name) for t in topics))
            configs = await client.execute(call, retry_for=retry_for)
        except BackendError:  # a Cluster primary down: each topic on its own, once
            configs = await readable(
                [t.name for t in topics],
                lambda name: client.execute(ops.config(name), retry_for=0),
                "worker start: the backoff settings",
            )
        for topic, config in zip(topics, configs, strict=True):
            if config is not None:
                topic.backoff = policy.for_topic(config.backoff, config.backoff_max)

    async def _retry_delay(self, attempt: _Attempt) -> float:
        """Seconds before a failed attempt's job is tried again, by its topic's backoff (read
        now if the start could not read it)."""
        topic, policy = attempt.topic, self._backoff
        if topic.backoff is None:
            assert isinstance(policy, TopicBackoff)  # a Backoff is set at start
            try:
                config = await self._client.execute(self._client.ops.config(topic.name))
            except BackendError:  # the default this time; read again at the next retry
                return policy.for_topic(None, None).delay(attempt.job.attempts)
            topic.backoff = policy.for_topic(config.backoff, config.backoff_max)
        return topic.backoff.delay(attempt.job.attempts)

    async def _shutdown(
        self, loops: list[asyncio.Task[None]], runners: list[asyncio.Task[None]]
    ) -> None:
        """Let running handlers finish within the grace period; release what did not."""
        deadline = time.monotonic() + self._grace
        log.info("stopping: %d jobs running, up to %g s to finish", len(self._active), self._grace)
        await self._within(asyncio.gather(*loops, return_exceptions=True), deadline)
        if self._active:
            await self._within(self._idle.wait(), deadline)
        await self._end_runners(runners)
        # Interrupted handlers (and those that ignored it), and jobs leased but never started:
        unfinished = [a for a in (*self._interrupted, *self._active) if not a.lost]
        if unfinished:
            log.warning("releasing %d jobs that did not finish in time", len(unfinished))
        last_calls = [  # the releases and the acks of what finished, at once
            *(self._release(a, 0.0, STOPPED_ERROR, refund=True) for a in unfinished),
            *(t.lessee.flush() for t in self._topics.values() if t.lessee is not None),
        ]
        await _bounded(last_calls)
        for attempt in unfinished:  # a handler left behind neither acks nor releases
            attempt.lost = True

    async def _end_runners(self, runners: list[asyncio.Task[None]]) -> None:
        """Cancel the runners and give them :data:`CANCEL_WAIT` to end (once per run): a
        handler that ignores its cancellation no longer holds the Worker forever."""
        if self._runners_ended:
            return
        self._runners_ended = True
        deadline = time.monotonic() + CANCEL_WAIT
        await self._stop_threads(deadline)
        while True:  # on Python 3.11, again every 0.1 s: a cancellation may be lost
            live = [t for t in runners if not t.done()]
            for task in live:
                task.cancel()
            left = deadline - time.monotonic()
            if not live or left <= 0:
                break
            await asyncio.wait(live, timeout=min(0.1, left) if LOST_CANCELS else left)

    async def _stop_threads(self, deadline: float) -> None:
        """Tell the sync handlers still running to stop (their ``job.cancelled`` turns True,
        as for a delete) and give them until ``deadline`` to return: a thread cannot be
        cancelled, so one whose runner were cancelled at once would run on beside the next
        attempt of its job. Whatever such a handler returns, its job is released."""
        stopped = [a for a in self._active if a.thread is not None and not a.thread.done()]
        if not stopped:
            return
        for attempt in stopped:
            attempt.stopped = True
            cancellation = attempt.job.cancellation
            assert cancellation is not None  # a sync handler's job has one from the start
            cancellation.set(STOPPED_ERROR)
        # Each attempt ends in its runner, which releases its job: wait for that, not for the
        # thread alone, so that no runner is cancelled in the middle of its release.
        # A forced stop (a second stop()) sets the flags and does not wait.
        while (
            any(not a.finished for a in stopped)
            and time.monotonic() < deadline
            and not self._force.is_set()
        ):
            await asyncio.sleep(0.01)

    async def _within(self, waitable: Awaitable[Any], deadline: float) -> None:
        """Await ``waitable`` until ``deadline`` (monotonic) or a forced stop, whichever first."""
        task = asyncio.ensure_future(waitable)
        force = asyncio.ensure_future(self._force.wait())
        try:
            await asyncio.wait({task, force}, timeout=max(0.0, deadline - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            force.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, force, return_exceptions=True)

    # -- leasing (see redisched.leasing) --------------------------------------------------

    async def _topic_loop(self, topic: _Topic) -> None:
        assert topic.lessee is not None
        # Once stopping, the loop leases nothing but goes on acking until the handlers are done:
        # an ack held until the end of the grace period let a finished job's reservation run
        # out (heartbeats touch running jobs only), and another worker ran it again.
        await topic.lessee.run(_Slots(self), lambda: self._stop_requested and not self._active)

    # -- cancellation -----------------------------------------------------------------------

    def _aborter(self, topic: _Topic) -> Callable[[str, str], None]:
        def abort(job_id: str, token: str) -> None:
            for attempt in self._active:
                job = attempt.job
                if (
                    attempt.topic is topic and job.id == job_id and job.token == token
                    and not attempt.finished
                ):  # fmt: skip
                    self._cancel(attempt)

        return abort

    def _cancel(self, attempt: _Attempt) -> None:
        """The job was deleted, replaced, expired or aborted: its result would not apply.
        Stop the handler (a sync one sees ``job.cancelled``)."""
        if attempt.cancelled:
            return
        attempt.cancelled = True
        job = attempt.job
        if job.cancellation is None:  # made only now: a job that is never cancelled pays nothing
            object.__setattr__(job, "cancellation", Cancellation())
        assert job.cancellation is not None
        job.cancellation.set(CANCELLED_ERROR)
        log.info(
            "job %r of topic %r: cancelled %s",
            job.id,
            job.topic,
            "while running" if attempt.started else "before it started",
        )
        if attempt.task is not None:  # set only while a coroutine of the handler runs
            attempt.cancels += 1
            attempt.task.cancel(CANCELLED_ERROR)
            self._cancel_again(attempt, 0)

    def _cancel_again(self, attempt: _Attempt, later: int) -> None:
        """Cancel a cancelled job's handler again if it still runs :data:`RECANCEL_AFTER`
        [``later``] seconds from now (the first CancelledError was lost)."""
        if later >= len(RECANCEL_AFTER) or self._loop is None:
            return
        timers = self._recancels

        def again() -> None:
            timers.discard(timer)
            if attempt.finished or attempt.task is None or self._runners_ended:
                return
            job = attempt.job
            log.warning("job %r of topic %r: its handler still runs %g s after its cancellation;"
                        " cancelled again", job.id, job.topic, RECANCEL_AFTER[later])  # fmt: skip
            attempt.cancels += 1
            attempt.task.cancel(CANCELLED_ERROR)
            self._cancel_again(attempt, later + 1)

        timer = self._loop.call_later(RECANCEL_AFTER[later], again)
        timers.add(timer)

    # -- running handlers -------------------------------------------------------------------

    def _dispatch(self, topic: _Topic, jobs: list[Job]) -> None:
        now = time.monotonic()
        put = self._pending.append
        add = self._active.add
        assert topic.lessee is not None
        wakeups, name = topic.lessee.wakeups, topic.name
        for job in jobs:
            ttr = self._ttr or job.ttr
            if ttr < self._min_ttr:
                self._min_ttr = ttr
                self._shorter_ttr.set()  # the heartbeat must tick faster
            if not topic.is_async and job.cancellation is None:
                # A thread may wait on the flag (job.cancellation.wait): it exists before the
                # handler starts. An async handler is cancelled instead, and its job gets a
                # flag only if that happens.
                object.__setattr__(job, "cancellation", Cancellation())
            attempt = _Attempt(job, topic, ttr, now + ttr / 2)
            if wakeups.cancelled(name, job.id, job.token):
                # its cancel was read before this lease's reply: given back, never started
                self._cancel(attempt)
            add(attempt)
            put(attempt)
        self._unpark()

    def _unpark(self) -> None:
        """Wake one parked runner for the pending jobs.

        One is enough: a runner takes pending jobs one after the other, and wakes the next
        runner only when a handler actually waits. Handlers that never wait thus run back to
        back without a task switch each.
        """
        parked = self._parked
        while parked:
            waiter = parked.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _on_suspend(self) -> None:
        if self._pending:
            self._unpark()

    async def _runner(self) -> None:
        pending, loop, task = self._pending, asyncio.get_running_loop(), asyncio.current_task()
        while True:
            if pending:
                await self._run_attempt(pending.popleft(), task)
            else:
                waiter = loop.create_future()
                self._parked.append(waiter)
                await waiter

    async def _run_attempt(self, attempt: _Attempt, runner: asyncio.Task[Any] | None) -> None:
        topic, job = attempt.topic, attempt.job
        lessee = topic.lessee
        assert lessee is not None
        ok = False
        if attempt.cancelled:  # before its handler started
            await self._release(attempt, 0.0, CANCELLED_ERROR)
            self._finish(attempt, lessee, ok)
            return
        result: object = None
        try:
            if topic.is_async:
                attempt.started = True
                handled = Watched(topic.handler(job), self._on_suspend)  # type: ignore[arg-type]
                result = await _cancellable(attempt, runner, handled)
            else:
                assert self._loop is not None and self._executor is not None
                self._on_suspend()
                # started once a thread takes it: one waiting for a thread when the worker
                # stops goes back unstarted (it counted as an attempt, never having run)
                attempt.thread = self._executor.submit(_call, topic.handler, job, attempt)
                result, error = await asyncio.wrap_future(attempt.thread)
                if error is not None:
                    raise error
                if inspect.isawaitable(result):  # e.g. a lambda returning a coroutine
                    result = await _cancellable(attempt, runner, result)
        except Retry as retry:
            self._on_suspend()
            await self._release(attempt, retry.delay, retry.reason)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            # Only this job was cancelled (not the worker, which would add a cancellation):
            # the message may be lost on the way (a library re-raising its own error), and a
            # first cancellation swallowed leaves its count (RECANCEL_AFTER)
            if (attempt.cancelled and not self._runners_ended and task is not None
                    and task.cancelling() <= attempt.cancels):  # fmt: skip
                while task.cancelling():  # this job was cancelled, not the worker: go on
                    task.uncancel()
                # A replaced job's new version is scheduled at once (else: stale, harmless).
                await self._release(attempt, 0.0, CANCELLED_ERROR)
            elif task is None or task.cancelling():
                self._interrupted.append(attempt)  # the worker stops: _shutdown releases it
                raise
            else:  # a CancelledError of the handler's own: a failure
                self._on_suspend()
                await self._release(attempt, await self._retry_delay(attempt), describe(exc))
        except BaseException as exc:
            # Any other exception, a BaseException too (a library's own, GeneratorExit,
            # KeyboardInterrupt, SystemExit), fails this attempt only: one that left the
            # runner stopped the whole Worker and left the job reserved until its ttr.
            self._on_suspend()
            if attempt.stopped:  # raised once told to stop: back at once, as one that returned
                await self._release(attempt, 0.0, STOPPED_ERROR, refund=True)
            else:
                await self._release(attempt, await self._retry_delay(attempt), describe(exc))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)) and self._exit is None:
                # The handler asked the process to end: stop gracefully, then raise it.
                log.warning("job %r of topic %r raised %s: stopping", job.id, topic.name,
                            type(exc).__name__)  # fmt: skip
                self._exit = exc
                self._request_stop()
        else:
            if attempt.lost:
                log.warning("job %r of topic %r finished after its reservation was lost;"
                            " not acked", job.id, topic.name)  # fmt: skip
            elif attempt.cancelled:
                # It finished anyway (a sync handler, or an async one that swallowed the
                # cancellation): its result is not applied. Acked, a replaced job's old
                # attempt was recorded as done with its result.
                await self._release(attempt, 0.0, CANCELLED_ERROR)
            elif attempt.stopped:  # returned once told to stop: it may have cut its work short
                await self._release(attempt, 0.0, STOPPED_ERROR, refund=True)
            else:
                ok = True
                if result is not None:
                    attempt.result = _encode_result(result, job)
        finally:
            if attempt.cancelled and runner is not None and not self._runners_ended:
                while runner.cancelling():  # the handler swallowed its job's cancellation
                    runner.uncancel()
            self._finish(attempt, lessee, ok)

    def _finish(self, attempt: _Attempt, lessee: Lessee, ok: bool) -> None:
        """The attempt ended: ack it if ``ok`` (with the next round trip), free its handler slot."""
        attempt.finished = True
        if attempt not in self._active:  # a handler left behind by an earlier run(): no slot
            return
        self._active.discard(attempt)
        self._free += 1
        if self._free == 1:  # a topic waits for a slot only when it saw none free
            self._kick_starved()
        lessee.finish(attempt.job if ok else None, attempt.result if ok else None)
        if not self._active and self._stop_requested:
            self._idle.set()
            self._kick_all()  # the topic loops end now

    async def _release(
        self, attempt: _Attempt, delay: float, error: str, *, refund: bool = False
    ) -> None:
        """Give the job back after ``delay``; a job whose handler never started gets its
        attempt back, and so does one cut short by the stop (``refund``), so that stopping a
        worker never uses up a job's max_attempts."""
        job = attempt.job
        started = attempt.started
        if attempt.lost:
            log.warning("job %r of topic %r failed after its reservation was lost: %s",
                        job.id, job.topic, _summary(error))  # fmt: skip
            return
        try:
            async with self._side_calls:
                state = await self._client.release(  # never started: no error to keep
                    job, delay=delay, reason=error if started else None,
                    unstarted=refund or not started,
                )  # fmt: skip
        except StaleReservation:
            if not attempt.cancelled:  # a cancelled job was deleted or expired: expected
                log.warning("job %r of topic %r: release rejected, the reservation was lost",
                            job.id, job.topic)  # fmt: skip
        except BackendError as exc:
            log.warning("could not release job %r of topic %r (%s); it returns after its ttr",
                        job.id, job.topic, exc)  # fmt: skip
        else:
            summary = _summary(error)
            if state is JobState.DEAD:
                log.error("job %r of topic %r is dead after %d attempts: %s",
                          job.id, job.topic, job.attempts, summary)  # fmt: skip
            elif refund or not started:
                log.info("job %r of topic %r: given back (%s), its attempt not counted",
                         job.id, job.topic, summary)  # fmt: skip
            else:
                log.info("job %r of topic %r: attempt %d failed (%s); next in %.3g s",
                         job.id, job.topic, job.attempts, summary, delay)  # fmt: skip

    # -- keeping long reservations ----------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Extend the reservation of every handler that has run for half its ttr."""
        while True:
            self._shorter_ttr.clear()
            with contextlib.suppress(TimeoutError):
                tick = min(1.0, max(0.01, self._min_ttr / 4))
                await asyncio.wait_for(self._shorter_ttr.wait(), tick)
            now = time.monotonic()
            for attempt in [a for a in self._active if a.touch_at <= now and not a.lost]:
                attempt.touch_at = now + attempt.ttr / 2
                task = self._spawn(self._touch(attempt), "touch")
                self._touches.add(task)
                task.add_done_callback(self._touches.discard)

    async def _follow_partitions(self) -> None:
        """Serve the partitions of a topic partitioned while the Worker runs: its jobs go into
        them from then on, and its own name (still served) gets none. The counts are read
        every :data:`~redisched.partition_setting.REFRESH` seconds (one ``HGETALL``), as the
        HTTP service and the push dispatcher read them."""
        ops = self._client.ops
        while not self._stop_requested:
            await asyncio.sleep(REFRESH)
            try:
                counts = await self._client.execute(read_counts(ops), retry_for=0)
            except BackendError:  # Redis away: the lessees say so; read again next time
                continue
            for logical in sorted(self._logical):
                for name in names(logical, counts.get(logical)):
                    if name not in self._topics and not self._stop_requested:
                        await self._serve_partition(name, self._topics[logical])

    async def _serve_partition(self, name: str, like: _Topic) -> None:
        """Serve topic ``name`` (a partition of ``like``'s topic) with ``like``'s handler."""
        wakeups, limits, loops, unsubscribe = self._serving_parts
        topic = _Topic(name, like.handler, like.is_async)
        if isinstance(self._backoff, Backoff):
            topic.backoff = self._backoff  # else the topic's own, read at its first retry
        lessee = topic.lessee = Lessee(
            self._client, name, wakeups, ttr=self._ttr, limits=limits, clock=self._clock
        )
        try:
            await lessee.watch()  # subscribed before the first lease: no wake-up is lost
        except (RedisError, OSError) as exc:
            await lessee.close()
            log.warning("could not serve partition %r yet: %s", name, exc)
            return
        if self._stop_requested or name in self._topics:  # stopping meanwhile: not started
            await lessee.close()
            return
        self._topics[name] = topic
        unsubscribe.append(wakeups.on_abort(name, self._aborter(topic)))
        loops.append(self._spawn(self._topic_loop(topic), f"topic {name}"))
        log.info("worker serving %s too: its topic %r was partitioned", name, like.name)

    async def _touch(self, attempt: _Attempt) -> None:
        job = attempt.job
        try:
            async with self._side_calls:
                await self._client.touch(job, ttr=self._ttr)
        except StaleReservation:
            if not attempt.finished:
                attempt.lost = True
                log.warning("job %r of topic %r lost its reservation while running; its"
                            " result will not be applied", job.id, job.topic)  # fmt: skip
                # The wake-up that cancels it may never have come (a subscription dropped or
                # killed meanwhile): the handler stops now, not when it happens to end.
                self._cancel(attempt)
        except BackendError as exc:
            attempt.touch_at = time.monotonic()  # try again on the next tick
            log.warning("could not extend the reservation of job %r: %s", job.id, exc)


async def _cancellable(
    attempt: _Attempt, runner: asyncio.Task[Any] | None, handled: Awaitable[Any]
) -> Any:
    """Await a handler's coroutine with ``attempt`` cancellable meanwhile (through its
    runner). Only meanwhile: a cancellation that came later (the wake-up read during the
    release of a failed attempt) killed the runner, and with it a handler slot; the jobs
    leased for it stayed reserved, never run. One cancelled already (a sync handler that
    returned an awaitable, cancelled while its thread ran) is not run: closed, it raises the
    cancellation (a cancel of the runner would come at its next wait, perhaps after this)."""
    if attempt.cancelled:
        close = getattr(handled, "close", None)
        if close is not None:
            close()
        raise asyncio.CancelledError(CANCELLED_ERROR)
    attempt.task = runner
    try:
        return await handled
    finally:
        attempt.task = None


async def _bounded(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Await a stop's last ``calls`` while they make progress: cancel them once none has
    ended for :data:`STOP_CALLS_WAIT` seconds (Redis not answering), and say that the jobs
    they were for return after their ttr. Thousands of releases on a slow but healthy Redis
    all go through (one callback a call, not an ``asyncio.wait`` over all of them per end)."""
    progress = asyncio.Event()
    pending: set[asyncio.Future[None]] = set()

    def ended(task: asyncio.Future[None]) -> None:
        pending.discard(task)
        progress.set()
        if not task.cancelled() and task.exception() is not None:  # retrieved, and said
            log.warning("stopping: %r", task.exception())

    for call in calls:
        started = asyncio.ensure_future(call)
        pending.add(started)
        started.add_done_callback(ended)
    try:
        while pending:
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), STOP_CALLS_WAIT)
            except TimeoutError:
                log.warning(
                    "stopping: Redis did not answer within %g s; the jobs not yet released"
                    " or acked return after their ttr", STOP_CALLS_WAIT,
                )  # fmt: skip
                break
    finally:  # also when the stop itself is cancelled
        left = list(pending)
        for unfinished in left:
            unfinished.cancel()
        await asyncio.gather(*left, return_exceptions=True)


def _summary(error: str) -> str:
    """The last line of an error text (a traceback's exception), for a log line ("" if none:
    ``Retry(reason="")`` made an IndexError that stopped the Worker)."""
    lines = error.splitlines()
    return lines[-1] if lines else ""


def _call(handler: Handler, job: Job, attempt: _Attempt) -> tuple[object, BaseException | None]:
    """Run a sync handler (in its thread): what it returned, or what it raised.

    The exception comes back as a value for the runner to raise itself: set on the future, a
    GeneratorExit would be thrown into the runner task, which closes the coroutine it awaits.
    """
    attempt.started = True
    try:
        return handler(job), None
    except BaseException as exc:  # raised again by the runner
        return None, exc


def _encode_result(value: object, job: Job) -> bytes:
    """A handler's return value as the job's result (see :mod:`redisched.results`)."""
    try:
        return results.encode(value) or b""
    except InvalidArgument:  # the work is done: ack it, keeping what can be said of the value
        log.warning("job %r of topic %r returned a %s, kept as the JSON string of its repr",
                    job.id, job.topic, type(value).__name__)  # fmt: skip
        try:
            shown = repr(value)
        except Exception as exc:  # a __repr__ that raises, an int past Python's digit limit
            shown = f"<{type(value).__name__} whose repr failed: {type(exc).__name__}>"
        return json.dumps(shown).encode()
