"""The push dispatcher: POST each due job of every topic with a webhook, then ack or retry it.

One task per webhook topic leases due jobs and starts one delivery per job (see
:mod:`redisched.push.delivery`). The answer decides the job's fate: 2xx acks it, 202 leaves it
reserved for the receiver to ack or release with its token (the reservation is renewed for
the job's own ttr), 429/503 with Retry-After releases it after that delay, anything else
releases it with exponential backoff and jitter (the topic's ``backoff``/``backoff_max``, else
1 s doubling up to an hour), until its ``max_attempts`` send it to dead with the reason as
``last_error``.

Each topic task is a :class:`~redisched.leasing.Lessee` (the leasing loop shared with the
Worker and the HTTP long poll): no polling, it sleeps until a wake-up (a put, a release, a
freed slot in another process) or until the next job or reservation deadline is due by the
server's clock, to within a fraction of a millisecond. Leases carry tokens, so any number of
dispatchers on one Redis never deliver a job twice unless its reservation timed out. A topic
without limits leases a little ahead (:data:`AHEAD_SECONDS`), so that a finished delivery
starts the next job at once instead of waiting for the round trip that acks it; a job leased
ahead is given back unstarted (no attempt spent) if it waits too long or the dispatcher stops.
Per-topic ``concurrency`` and ``rate`` hold across every consumer (see
:mod:`redisched.limits`), in the same round trip that acks finished deliveries.

A topic whose stored webhook the target policy refuses (a private address without
``--allow-private-webhooks``) is *held*: nothing is leased or delivered, so no attempt is
spent, until the policy or the webhook changes; :attr:`Dispatcher.held` says why.
A 429 or 503 answer with Retry-After is back-pressure: the job is released after that delay
(at least :data:`MIN_RETRY_AFTER`, at most the topic's backoff_max) without spending an
attempt (counted as ``throttled``, and in the topic's ``total_throttled``:
:func:`redisched.limits.count_throttled`). A backoff_max under :data:`MIN_RETRY_AFTER` resends
sooner, and then the attempt is spent: no receiver keeps a job cycling faster for ever.

A job deleted, aborted, replaced, purged or expired during its delivery is announced on the
topic's wake channel (``c<token>:<id>``, the reservation taken away, routed by
:meth:`~redisched.wakeup.Wakeups.on_abort`): its request is closed at once and the attempt
released (stale, or for a replace the new version scheduled at once), counted as
``cancelled``; one still waiting for a place, or leased by a reply read after its cancel, is
never sent.

Topics and their webhook settings are read again every ``refresh_interval`` seconds (two
commands per topic, and the partition counts), or at once with :meth:`Dispatcher.refresh`.

Each partition of a partitioned topic is delivered as a topic of its own (to the topic's
webhook), but reported to :class:`DispatchMetrics` under the topic it belongs to
(:func:`~redisched.partition_setting.owner`), as ``/metrics`` shows the topic's job counts:
its counters add up, and the topic is held there while any of its partitions is.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

import aiohttp

from ..client import AsyncClient
from ..errors import BackendError, InvalidArgument, RedischedError, StaleReservation
from ..fanout import per_topic
from ..leasing import HOLD_MARGIN, Lessee, Limits, LimitsCache, Round
from ..limits import count_throttled
from ..models import Job, JobState
from ..ops import Call
from ..partition_setting import owner, read_counts
from ..retry import Backoff
from ..timing import ServerClock
from ..topic_config import TopicConfig, Webhook, unusable_secret
from ..wakeup import Wakeups
from ..warmup import warm_up_or_warn
from . import delivery, signing
from .deadlines import Deadlines
from .dispatch_metrics import DispatchMetrics, NullDispatchMetrics, Outcome
from .targets import TargetPolicy, check_url, guarded_connector

log = logging.getLogger(__name__)

BATCH = 800  # jobs leased at most per round trip
AHEAD_SECONDS = 0.1
"""The lease round trip that jobs leased ahead cover: a topic leases ahead what its places
deliver in that time at their recent pace (at most AHEAD_PER_PLACE jobs per place). On a
busy event loop a round trip that acks and leases a few hundred jobs takes 10-80 ms."""
AHEAD_PER_PLACE = 8
"""Jobs leased ahead per place at most. With one per place the places ran dry during each
round trip, and when its jobs came they all started at once: a burst of allocations that
made the garbage collector run ~4x as often as steady work does (~30 µs per delivery). With
three they still ran dry every second or third round trip at ~10k deliveries/s (300 jobs
are ~25 ms of work, a busy round trip that acks and leases a few hundred takes 10-25 ms)."""
MIN_RETRY_AFTER = 1.0
"""The least seconds a throttled job waits without spending an attempt: ``Retry-After: 0``
or a past date would otherwise resend it at once, forever. One second is the finest delay
Retry-After can ask. A topic's backoff_max under it wins, and the attempt is then spent."""
GIVE_BACK_CALLS = 100
"""Jobs given back (released unstarted) per round trip when a topic stops."""
MAX_WAIT = HOLD_MARGIN / 2
"""Seconds a job leased ahead may wait for a free place: started later, its request could
outlast its reservation (leased for the webhook's timeout + HOLD_MARGIN), so it is given back
unstarted instead."""


def webhook_session(
    policy: TargetPolicy, trace_configs: list[aiohttp.TraceConfig] | None = None
) -> aiohttp.ClientSession:
    """The HTTP session a dispatcher delivers through: every connection checked against
    ``policy``, no limit on connections (the places bound them), kept alive 30 s."""
    return aiohttp.ClientSession(
        connector=guarded_connector(policy, limit=0, keepalive_timeout=30),
        headers={"User-Agent": delivery.USER_AGENT},
        trace_configs=trace_configs or None,
    )


class Dispatcher:
    """Delivers the due jobs of every topic with a webhook.

    Args:
        client: the Redis client (server clock).
        wakeups: the process's wake-up hub.
        settings: optional ``redisched.config.Settings`` (or anything with the same
            attribute names): ``allow_private_webhooks`` is read from it when the keyword
            below is not given.
        allow_private_webhooks: let webhooks reach private, loopback and link-local addresses.
        allow_networks: networks webhooks may always reach (e.g. ``["10.1.2.0/24"]``).
        concurrency: deliveries in flight per topic in this process (the topic's own
            ``concurrency`` setting holds across all processes on top of it). A topic without
            limits also leases up to AHEAD_PER_PLACE times as many jobs ahead, see
            :data:`AHEAD_SECONDS`.
        metrics: where to report deliveries; nothing by default.
        backoff: retry delays when a topic sets no ``backoff``; base 1 s, max 1 h, 20% jitter.
        refresh_interval: seconds between reads of the topics' webhook settings.
        grace: seconds :meth:`stop` waits for deliveries in flight before giving their jobs
            back.
        trace_configs: aiohttp trace configs for the webhook session (observability, tests).
        clock: the server clock every topic's lessee shares, already read (the HTTP
            service's); None: one of the dispatcher's own, read at :meth:`start`, which
            loads every script on the server too (see :mod:`redisched.warmup`).
    """

    def __init__(
        self,
        client: AsyncClient,
        wakeups: Wakeups,
        settings: object = None,
        *,
        allow_private_webhooks: bool | None = None,
        allow_networks: Iterable[str] = (),
        concurrency: int | None = None,
        metrics: DispatchMetrics | None = None,
        backoff: Backoff | None = None,
        refresh_interval: float = 5.0,
        grace: float = 10.0,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        clock: ServerClock | None = None,
    ) -> None:
        if allow_private_webhooks is None:
            allow_private_webhooks = bool(getattr(settings, "allow_private_webhooks", False))
        if concurrency is None:
            concurrency = 100
        if not 1 <= concurrency <= 1000:
            raise RedischedError(f"concurrency must be 1 to 1000, not {concurrency}")
        self.client = client
        self.wakeups = wakeups
        self.policy = TargetPolicy.of(allow_private_webhooks, allow_networks)
        self.concurrency = concurrency
        self.metrics: DispatchMetrics = metrics or NullDispatchMetrics()
        self.backoff = backoff or Backoff()
        self.refresh_interval = refresh_interval
        self.grace = grace
        self._trace_configs = list(trace_configs)
        self._session: aiohttp.ClientSession | None = None
        self._runners: dict[str, _TopicRunner] = {}
        self.limits = LimitsCache()
        self.clock = clock or ServerClock()
        self._own_clock = clock is None  # a clock given was read by its owner
        self.held: dict[str, str] = {}
        """Topics whose webhook the target policy refuses -> why; their jobs wait."""
        self._counts: dict[str, int] = {}  # the partition counts last read
        self._held_labels: set[str] = set()  # the topics metrics were last told are held
        self._group: asyncio.TaskGroup | None = None  # discovery, topic runners, retirements
        self._main: asyncio.Task[None] | None = None  # the task that holds the group
        self._discovery: asyncio.Task[None] | None = None
        self._crash: str | None = None  # the first exception that escaped a task, and where
        self._stopped = asyncio.Event()
        self._refresh_now = asyncio.Event()
        self._refreshing = asyncio.Lock()
        self._closing = False

    @property
    def session(self) -> aiohttp.ClientSession:
        """The webhook HTTP session (pooled connections, guarded targets)."""
        if self._session is None:
            raise RedischedError("the dispatcher is not started")
        return self._session

    @property
    def topics(self) -> list[str]:
        """The topics being delivered now."""
        return sorted(self._runners)

    async def start(self) -> None:
        """Load the scripts and read the server clock (unless the clock was given), open the
        HTTP session, read the topics once and start delivering."""
        if self._session is not None:
            return
        self._closing, self._crash = False, None
        self._session = webhook_session(self.policy, self._trace_configs)
        self._stopped.clear()
        try:
            if self._own_clock:
                await warm_up_or_warn(self.client, self.clock, "the webhook dispatcher")
            started = asyncio.Event()
            self._main = asyncio.create_task(self._hold_tasks(started), name="redisched-dispatch")
            await started.wait()
            try:
                await self.refresh()
            except BackendError as exc:
                log.warning("dispatcher could not read topics yet: %s", exc)
        except BaseException:  # e.g. ClientClosed: nobody will stop what was started
            await self.stop()
            raise
        assert self._group is not None
        self._discovery = self._spawn(self._discover(), "redisched-dispatch-discovery")

    async def _hold_tasks(self, started: asyncio.Event) -> None:
        """Hold the dispatcher's tasks in one TaskGroup until :meth:`stop`: none outlives the
        dispatcher, and an escaped exception ends them all (``failure`` then says why)."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                started.set()
                await self._stopped.wait()
        finally:
            self._group = None

    async def stop(self) -> None:
        """Stop leasing; let deliveries in flight finish (up to ``grace``), give back the rest."""
        self._closing = True
        if self._discovery is not None:
            self._refresh_now.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discovery
            self._discovery = None
        async with self._refreshing:  # a refresh in progress may still start a topic task
            runners, self._runners = list(self._runners.values()), {}
        await asyncio.gather(*(r.stop(self.grace) for r in runners))
        self._stopped.set()  # the group then waits for the retiring runners
        if self._main is not None:
            main, self._main = self._main, None
            with contextlib.suppress(Exception):  # an escaped error: failure() said so
                await main
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def refresh(self) -> None:
        """Read every topic's settings now; start, update or stop topic tasks to match."""
        async with self._refreshing:  # one at a time: each may start topic tasks
            await self._refresh()

    async def _refresh(self) -> None:
        names = await self.client.topics()
        try:
            self._counts = await self.client.execute(read_counts(self.client.ops))
        except BackendError as exc:  # its node is down: the counts read last
            log.warning("dispatcher could not read the partition counts: %s", exc)
        try:
            await self._match(names)
        finally:
            self._report_held()

    async def _match(self, names: list[str]) -> None:
        """Start, update, hold or stop topic runners to match the topics' settings."""
        configs = await per_topic(names, self._config)
        unread = {t for t, c in zip(names, configs, strict=True) if c is None}
        wanted = {t: c for t, c in zip(names, configs, strict=True) if c is not None and c.webhook}
        for topic, config in wanted.items():
            runner = self._runners.get(topic)
            assert config.webhook is not None
            bad = next(filter(None, map(unusable_secret, config.webhook.secrets)), None)
            if bad is not None:  # stored before secrets were checked: never send unsigned
                self._hold(topic, f"a webhook secret is unusable: it {bad}")
                continue
            if runner is None or runner.webhook.url != config.webhook.url:
                refused = await self._check_target(topic, config.webhook.url)
                if refused is not None:
                    self._hold(topic, refused)
                    continue
                if self.held.pop(topic, None) is not None:
                    log.info("topic %r: webhook accepted again; delivering", topic)
            if runner is None:
                runner = self._runners[topic] = _TopicRunner(self, topic, config)
                runner.start()
            else:
                runner.configure(config)
            runner.label = self.label(topic)  # the counts may have come since it started
        for topic in [t for t in self.held if t not in wanted and t not in unread]:
            del self.held[topic]
        for topic in [t for t in self._runners if t not in wanted and t not in unread]:
            self._retire(topic)

    async def _config(self, topic: str) -> TopicConfig | None:
        """The topic's settings, or None when they cannot be read now: on a Redis Cluster
        with a primary down, one unreadable topic made the whole refresh fail, so topics on
        the healthy nodes that got a webhook meanwhile were never delivered. An unread topic
        keeps its runner (or its absence) until a later refresh reads it."""
        try:
            return await self.client.config(topic)
        except BackendError as exc:
            log.warning("could not read the settings of topic %r: %s", topic, exc)
            return None

    def _retire(self, topic: str) -> None:
        self._spawn(self._runners.pop(topic).stop(self.grace), f"redisched-retire:{topic}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``work`` in the dispatcher's task group."""
        if self._group is None:
            raise RedischedError("the dispatcher is not started")
        return self._group.create_task(self._watched(work), name=name)

    async def _watched(self, work: Coroutine[Any, Any, None]) -> None:
        # /healthz learns of an escaped exception at once, not only after the group has
        # cancelled every topic's runner (which may take their deliveries' timeouts)
        try:
            await work
        except Exception as exc:
            if self._crash is None:
                task = asyncio.current_task()
                self._crash = f"{task.get_name() if task else 'a task'} failed: {exc!r}"
            raise

    def label(self, topic: str) -> str:
        """The topic ``topic``'s deliveries are reported under: the partitioned topic it is a
        partition of (by the counts last read), else itself."""
        layout = owner(topic, self._counts)
        return topic if layout is None else layout.topic

    def _report_held(self) -> None:
        """Tell the metrics which topics are held now: a partitioned topic while any of its
        partitions (or itself) is. Only changes are told."""
        labels = {self.label(topic) for topic in self.held}
        for label in sorted(labels - self._held_labels):
            self.metrics.held(label, True)
        for label in sorted(self._held_labels - labels):
            self.metrics.held(label, False)
        self._held_labels = labels

    def _hold(self, topic: str, reason: str) -> None:
        """Deliver nothing for ``topic``: its webhook is refused, and a delivery would only
        spend an attempt of each job (a restart without --allow-private-webhooks must not
        dead-letter a topic's jobs)."""
        if topic not in self.held:
            log.warning("topic %r: holding deliveries, the webhook is refused: %s", topic, reason)
        self.held[topic] = reason
        if topic in self._runners:
            self._retire(topic)

    async def _check_target(self, topic: str, url: str) -> str | None:
        """Why the target policy refuses ``url``, or None when it may be reached."""
        try:
            await check_url(url, self.policy)
        except InvalidArgument as exc:
            return exc.message
        return None

    def failure(self) -> str | None:
        """Why topic discovery stopped although the dispatcher was not stopped, else None."""
        if self._closing:
            return None
        if self._crash is not None:
            return f"the webhook dispatcher's tasks stopped: {self._crash}"
        main = self._main
        if main is not None and main.done():
            exc = None if main.cancelled() else main.exception()
            return f"the webhook dispatcher's tasks stopped: {exc!r}"
        task = self._discovery
        if task is not None and task.done():
            exc = None if task.cancelled() else task.exception()
            return f"webhook topic discovery stopped: {exc!r}"
        return None

    def request_refresh(self) -> None:
        """Ask the discovery task to read the topics' settings soon (e.g. after a PATCH)."""
        self._refresh_now.set()

    async def _discover(self) -> None:
        while not self._closing:
            try:  # not wait_for: on 3.11 it can swallow a cancellation that races its timeout
                async with asyncio.timeout(self.refresh_interval):
                    await self._refresh_now.wait()
            except TimeoutError:
                pass
            self._refresh_now.clear()
            if self._closing:
                return
            try:
                await self.refresh()
            except BackendError as exc:
                log.warning("dispatcher could not read topics: %s", exc)
            except Exception:
                log.exception("dispatcher could not refresh its topics")


class _TopicRunner:
    """Leases and delivers one topic's jobs in this process (its capacity for the Lessee)."""

    def __init__(self, dispatcher: Dispatcher, topic: str, config: TopicConfig) -> None:
        self.d = dispatcher
        self.topic = topic
        self.label = dispatcher.label(topic)  # the topic its deliveries are reported under
        self.config = config
        self.keys: list[hmac.HMAC] = []  # the secrets' HMAC keys, prepared once
        self.deadlines = Deadlines()  # each request's webhook timeout, on one timer
        self.backoff = dispatcher.backoff
        self.lessee = Lessee(
            dispatcher.client, topic, dispatcher.wakeups, limits=dispatcher.limits,
            clock=dispatcher.clock, on_round=self._count_acks,
        )  # fmt: skip
        # A place is a task that delivers one job at a time, then the next waiting one: a
        # delivery costs no task of its own (a task per delivery made the garbage collector
        # run ~30x as often, ~30 µs per delivery). Places start as jobs come, up to places().
        self.place_tasks: set[asyncio.Task[None]] = set()
        # job id -> the place delivering it and the job's token
        self.running: dict[str, tuple[asyncio.Task[None], str | None]] = {}
        self.idle: collections.deque[asyncio.Future[None]] = collections.deque()
        # Jobs leased ahead, waiting for a place (with the monotonic time they came): each
        # finished delivery starts the next at once, while the lease round trip that refills
        # them is on its way. Without them every exchange is a bubble: the deliveries of a
        # round finish while it is in flight, and the topic waits on Redis with nothing sent.
        self.waiting: collections.deque[tuple[Job, float]] = collections.deque()
        self.pace = 1.0  # seconds a request takes, a moving average
        self.seconds: dict[str | None, float] = {}  # token -> request seconds, until acked
        self.interrupted: list[Job] = []  # deliveries cancelled by stop(): to release
        self.late: list[Job] = []  # leased ahead, waited past MAX_WAIT: to give back unstarted
        self.withdrawn: list[Job] = []  # leased ahead, cancelled (deleted...): to give back
        self.giving_back: asyncio.Task[None] | None = None
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.stop_listening: Callable[[], None] | None = None
        self.configure(config)

    @property
    def webhook(self) -> Webhook:
        assert self.config.webhook is not None
        return self.config.webhook

    def configure(self, config: TopicConfig) -> None:
        """Take new settings; deliveries started from now on use them."""
        if config.webhook is None:
            return
        try:
            self.keys = [signing.prepared(signing.secret_key(s)) for s in config.webhook.secrets]
        except ValueError as exc:
            log.error("topic %r: bad webhook secret (%s); sending unsigned", self.topic, exc)
            self.keys = []
        self.config = config
        hold = config.webhook.timeout + HOLD_MARGIN  # a reservation outlasts the request
        self.lessee.ttr = hold
        self.lessee.hold_ms = round(hold * 1000)
        self.d.limits.set(self.topic, Limits.of(config))
        base = self.d.backoff
        if config.backoff is not None or config.backoff_max is not None:
            b = base.base if config.backoff is None else max(config.backoff, 0.001)
            m = base.max if config.backoff_max is None else config.backoff_max
            self.backoff = Backoff(b, max(m, b), base.jitter)
        else:
            self.backoff = base

    def start(self) -> None:
        self.stop_listening = self.d.wakeups.on_abort(self.topic, self.cancel)
        self.task = self.d._spawn(self._run(), f"redisched-dispatch:{self.topic}")

    async def stop(self, grace: float) -> None:
        """Stop leasing, wait up to ``grace`` for deliveries, release what did not finish."""
        self.stopping = True
        self.lessee.kick.set()
        self._wake_idle()  # idle places end; busy ones end after their delivery
        if self.place_tasks:
            await asyncio.wait(set(self.place_tasks), timeout=grace)
        for task in list(self.place_tasks):
            task.cancel()
        if self.place_tasks:
            await asyncio.wait(set(self.place_tasks))
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout=max(grace, 1.0))
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:
                log.exception("topic %r: dispatcher task failed", self.topic)
        self.deadlines.close()
        if self.stop_listening is not None:
            self.stop_listening()
        await self.lessee.flush()  # deliveries that ended after the loop stopped
        await self.lessee.close()
        if self.giving_back is not None:
            await asyncio.wait([self.giving_back])
        # never started: given back without spending an attempt
        unstarted = [job for job, _ in self.waiting] + self.late
        self.waiting.clear()
        self.late = []
        await self._give_back_all(unstarted, "the dispatcher stopped")
        withdrawn, self.withdrawn = self.withdrawn, []
        await self._give_back_all(withdrawn, "cancelled before its delivery", lost=True)
        for job in self.interrupted:
            with contextlib.suppress(RedischedError):
                await self.d.client.release(job, reason="dispatcher stopped during delivery")

    # -- the capacity the lease loop fills ---------------------------------------------------

    def places(self) -> int:
        """Requests in flight at most."""
        return min(self.d.concurrency, self.config.concurrency or BATCH * 10)

    def ahead(self) -> int:
        """Jobs leased ahead at most: what the places deliver in AHEAD_SECONDS at the recent
        pace, so that a slow receiver's jobs do not wait here for long. None where a limit
        counts them (a topic's concurrency counts reserved jobs: a waiting one would take a
        place from a request)."""
        config = self.config
        if config.concurrency is not None or config.rate is not None:
            return 0
        places = self.places()
        return min(AHEAD_PER_PLACE * places, int(places * AHEAD_SECONDS / self.pace))

    def size(self) -> int:
        return self.places() + self.ahead()

    def want(self) -> int:
        if self.stopping:
            return 0
        return min(self.size() - len(self.running) - len(self.waiting), BATCH)

    def busy(self) -> bool:
        return bool(self.running)

    def take(self, count: int) -> None:
        pass  # counted as deliveries start

    def give(self, count: int) -> None:
        pass

    def start_jobs(self, lessee: Lessee, jobs: list[Job]) -> None:
        # a leased job holds its concurrency place as a reservation
        now = time.monotonic()
        cancelled, topic = self.d.wakeups.cancelled, self.topic
        doomed = [job for job in jobs if cancelled(topic, job.id, job.token)]
        if doomed:  # their cancel was read before this lease's reply: given back unsent
            self.withdrawn.extend(doomed)
            jobs = [job for job in jobs if job not in doomed]
            if self.giving_back is None and not self.stopping:
                self.giving_back = asyncio.create_task(self._give_back_queued())
        self.waiting.extend((job, now) for job in jobs)
        if self.stopping:
            return  # stop() gives them back
        count = len(jobs)
        idle = self.idle
        while count and idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1
        for _ in range(min(count, self.places() - len(self.place_tasks))):
            task = asyncio.create_task(self._place(), name=f"redisched-deliver:{self.topic}")
            self.place_tasks.add(task)

    async def _run(self) -> None:
        await self.lessee.watch()
        await self.lessee.run(_Capacity(self), lambda: self.stopping)

    def cancel(self, job_id: str, token: str) -> None:
        """The reservation ``token`` of the job was taken away: it was deleted, aborted,
        replaced, purged or expired (the wake channel's ``c<token>:<id>``). Close its request
        if one is in flight here (the place then releases the attempt), or give it back unsent
        if it waits for a place; another reservation of the id goes on."""
        held = self.running.get(job_id)
        if held is not None and held[1] == token:
            if self.deadlines.cut(held[0]):  # only while its request is in flight
                log.debug("topic %r: job %r cancelled during its delivery; closing the request",
                          self.topic, job_id)  # fmt: skip
            return
        waiting = self.waiting
        for index, (job, _) in enumerate(waiting):  # only for a job this process holds
            if job.id == job_id and job.token == token:
                del waiting[index]
                log.debug("topic %r: job %r cancelled while it waited for a place; not sent",
                          self.topic, job_id)  # fmt: skip
                self.withdrawn.append(job)
                if self.giving_back is None:
                    self.giving_back = asyncio.create_task(self._give_back_queued())
                return

    def _count_acks(self, result: Round) -> None:
        for job, ok in zip(result.done, result.acked, strict=True):
            seconds = self.seconds.pop(job.token, 0.0)
            self.d.metrics.delivery(self.label, Outcome.ACKED if ok else Outcome.STALE, seconds)

    # -- deliveries -------------------------------------------------------------------------

    async def _place(self) -> None:
        """Deliver waiting jobs one at a time; end when stopping, when no job waits and there
        are more places than :meth:`places` allows, or when cancelled (the job in flight is
        then released by :meth:`stop`)."""
        me = asyncio.current_task()
        assert me is not None
        deadlines, running = self.deadlines, self.running
        try:
            while not self.stopping and len(self.place_tasks) <= self.places():
                job = self._next_job()
                if job is None:
                    waiter = asyncio.get_running_loop().create_future()
                    self.idle.append(waiter)
                    await waiter
                    continue
                entry = running[job.id] = (me, job.token)
                answer: bytes | None = None
                try:
                    # the request is awaited here, not in a helper coroutine: one coroutine
                    # less to make and to resume at each of the request's steps
                    d, webhook = self.d, self.webhook
                    d.metrics.lag(self.label, time.time() - job.run_at.timestamp())
                    started = time.perf_counter()
                    deadlines.arm(me, webhook.timeout)
                    try:
                        result = await delivery.deliver(
                            d.session, job, webhook, self.keys, delivery.UNTIMED
                        )
                    except asyncio.CancelledError:
                        # cancelled for its deadline or cut short for its job (cancel()), and
                        # by nobody else: the request timed out, or its job was withdrawn
                        cut = deadlines.was_cut(me)
                        if not deadlines.disarm(me) or me.uncancel():
                            raise
                        seconds = time.perf_counter() - started
                        result = (delivery.cancelled(seconds) if cut
                                  else delivery.timed_out(webhook, seconds))  # fmt: skip
                    except BaseException:  # no stale deadline may cancel what the place does next
                        if deadlines.disarm(me):  # its cancellation, turned into this: take it back
                            me.uncancel()
                        raise
                    else:
                        if deadlines.disarm(me):  # the request ended as its deadline passed
                            me.uncancel()
                    answer = self._answered(job, result)
                    if answer is None:
                        await self._settle_failure(job, result)
                except asyncio.CancelledError:
                    self.interrupted.append(job)
                    raise
                except Exception:
                    log.exception("topic %r: delivery of %r failed", self.topic, job.id)
                finally:
                    holder = running.pop(job.id, entry)
                    if holder is not entry:  # the id leased again after an expiry: its own
                        running[job.id] = holder
                    # acked in the loop's next round trip, which frees its place under the
                    # concurrency; None: settled already (or failed), nothing to ack
                    self.lessee.finish(job if answer is not None else None, answer)
        finally:
            self.place_tasks.discard(me)

    def _next_job(self) -> Job | None:
        """The next waiting job; those that waited too long are given back unstarted."""
        waiting = self.waiting
        while waiting:
            job, since = waiting.popleft()
            if time.monotonic() - since <= MAX_WAIT:
                return job
            self.late.append(job)
            if self.giving_back is None:
                self.giving_back = asyncio.create_task(self._give_back_queued())
        return None

    def _wake_idle(self) -> None:
        while self.idle:
            waiter = self.idle.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _give_back_queued(self) -> None:
        """Release the jobs that waited too long, and those cancelled while they waited
        (a replaced one's new version is then scheduled), unstarted (no attempt spent)."""
        try:
            while self.late or self.withdrawn:  # more may come while a round trip gives back
                late, self.late = self.late, []
                withdrawn, self.withdrawn = self.withdrawn, []
                await self._give_back_all(late, "waited too long for a place")
                await self._give_back_all(withdrawn, "cancelled before its delivery", lost=True)
        finally:
            self.giving_back = None

    async def _give_back_all(self, jobs: list[Job], why: str, *, lost: bool = False) -> None:
        """Give back jobs never started, :data:`GIVE_BACK_CALLS` per round trip (a topic may
        hold hundreds leased ahead at stop); ``lost``: their reservations are expected to be
        gone (deleted, aborted), which is not worth a warning."""
        client = self.d.client
        for at in range(0, len(jobs), GIVE_BACK_CALLS):
            chunk = jobs[at : at + GIVE_BACK_CALLS]
            calls = [_stale_is_none(client.ops.release(job, unstarted=True)) for job in chunk]
            try:
                states = await client.execute(Call.join(*calls))
            except RedischedError as exc:  # their reservations lapse: back after their ttr
                log.warning("topic %r: could not give back %d jobs (%s): %s", self.topic,
                            len(chunk), why, exc)  # fmt: skip
                continue
            for job, state in zip(chunk, states, strict=True):
                if state is None and not lost:
                    log.warning("topic %r: could not give back job %r (%s): its reservation"
                                " was lost", self.topic, job.id, why)  # fmt: skip

    def _answered(self, job: Job, result: delivery.Result) -> bytes | None:
        """Learn the pace from a request; for a success, the answer to ack the job with (its
        result), else None (the failure is still to settle)."""
        self.pace += (max(result.seconds, 0.0001) - self.pace) * 0.1
        if result.verdict is delivery.Verdict.DONE:
            self.seconds[job.token] = result.seconds
            return result.job_result()
        return None

    async def _settle_failure(self, job: Job, result: delivery.Result) -> None:
        """Apply an answer other than success to the job (touch, release or dead) and count
        it."""
        try:
            outcome = await self._settle(job, result)
        except StaleReservation:
            outcome = Outcome.STALE
        except BackendError as exc:
            log.warning("topic %r: could not settle job %r: %s", self.topic, job.id, exc)
            outcome = Outcome.ERROR
        self.d.metrics.delivery(self.label, outcome, result.seconds)

    async def _settle(self, job: Job, result: delivery.Result) -> Outcome:
        client = self.d.client
        if result.verdict is delivery.Verdict.CANCELLED:
            # as the Worker does: stale for a delete, abort or expiry; for a replace, the new
            # version is scheduled at once (release.lua)
            with contextlib.suppress(StaleReservation):
                await client.release(job, reason=result.reason)
            return Outcome.CANCELLED
        if result.verdict is delivery.Verdict.ACCEPTED:
            await client.touch(job)  # the receiver now has the job's own ttr to finish it
            return Outcome.ACCEPTED
        if result.verdict is delivery.Verdict.THROTTLED and result.retry_after is not None:
            # Back-pressure, not failure: the attempt is given back and counted apart, in the
            # same round trip; its reason stays (last_error, the released event's detail).
            delay = min(max(result.retry_after, MIN_RETRY_AFTER), self.backoff.max)
            # a backoff_max under the floor resends sooner: then the attempt is spent, so that
            # a receiver answering Retry-After: 0 cannot keep the job cycling for ever
            refund = delay >= MIN_RETRY_AFTER
            release = client.ops.release(job, delay=delay, unstarted=refund, reason=result.reason)
            count = count_throttled(client.ops, self.topic)
            state, _ = await client.execute(Call.join(release, count))
            return Outcome.DEAD if state is JobState.DEAD else Outcome.THROTTLED
        delay = self.backoff.delay(job.attempts)
        state = await client.release(job, delay=delay, reason=result.reason)
        if state is JobState.DEAD:
            log.info("topic %r: job %r is dead: %s", self.topic, job.id, result.reason)
            return Outcome.DEAD
        return Outcome.RETRIED


def _stale_is_none(call: Call[JobState]) -> Call[JobState | None]:
    """``call`` (a release), whose parse gives None instead of raising StaleReservation: one
    lost reservation does not hide the outcome of the others joined with it."""
    parse = call.parse

    def tolerant(replies: list[Any]) -> JobState | None:
        try:
            return parse(replies)
        except StaleReservation:
            return None

    return Call(call.steps, tolerant, register_topic=call.register_topic,
                durability=call.durability, after=call.after)  # fmt: skip


class _Capacity:
    """A topic runner seen as a :class:`~redisched.leasing.Capacity`."""

    def __init__(self, runner: _TopicRunner) -> None:
        self.runner = runner
        self.want = runner.want
        self.size = runner.size
        self.busy = runner.busy
        self.take = runner.take
        self.give = runner.give
        self.start = runner.start_jobs
