"""The push dispatcher: POST each due job of every topic with a webhook, then ack or retry it.

One task per webhook topic leases due jobs and starts one delivery per job (see
:mod:`redisched.http.delivery`). The answer decides the job's fate: 2xx acks it, 202 leaves it
reserved for the receiver to ack or release with its token (the reservation is renewed for
the job's own ttr), 429/503 with Retry-After releases it after that delay, anything else
releases it with exponential backoff and jitter (the topic's ``backoff``/``backoff_max``, else
1 s doubling up to an hour), until its ``max_attempts`` send it to dead with the reason as
``last_error``.

No polling: a topic task sleeps until a wake-up (a put, a release, a freed slot in another
process) or until the next job or reservation deadline is due by the server's clock. Leases
carry tokens, so any number of dispatchers on one Redis never deliver a job twice unless its
reservation timed out. Per-topic ``concurrency`` and ``rate`` hold across processes: they
are enforced in Redis by limit.lua (see :mod:`redisched.http.limits`), in the same round trip
that acks finished deliveries.

Topics and their webhook settings are read again every ``refresh_interval`` seconds (two
commands per topic), or at once with :meth:`Dispatcher.refresh`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence

import aiohttp

from ..client import AsyncClient
from ..errors import BackendError, InvalidArgument, RedischedError, StaleReservation
from ..models import Job, JobState
from ..retry import Backoff
from ..topic_config import TopicConfig, Webhook
from ..wakeup import Wakeups
from . import delivery, signing
from .dispatch_metrics import DispatchMetrics, NullDispatchMetrics, Outcome
from .limits import Grant, ack_and_grant
from .targets import TargetPolicy, check_url, guarded_connector

log = logging.getLogger(__name__)

BATCH = 100  # jobs leased at most per round trip
HOLD_MARGIN = 10.0  # seconds a reservation and a slot outlast the webhook timeout
MAX_IDLE = 30.0  # seconds a topic task sleeps at most without any reason to wake
ACK_DELAY = 0.003  # seconds a busy topic task waits for more finished deliveries to batch
_REDIS_BACKOFF = (0.05, 5.0)


class Dispatcher:
    """Delivers the due jobs of every topic with a webhook.

    Args:
        client: the Redis client (server clock).
        wakeups: the process's wake-up hub.
        settings: optional ``redisched.config.Settings`` (or anything with the same
            attribute names): ``allow_private_webhooks`` and ``webhook_concurrency`` are read
            from it when the keyword below is not given.
        allow_private_webhooks: let webhooks reach private, loopback and link-local addresses.
        allow_networks: networks webhooks may always reach (e.g. ``["10.1.2.0/24"]``).
        concurrency: deliveries in flight per topic in this process (the topic's own
            ``concurrency`` setting holds across all processes on top of it).
        metrics: where to report deliveries; nothing by default.
        backoff: retry delays when a topic sets no ``backoff``; base 1 s, max 1 h, 20% jitter.
        refresh_interval: seconds between reads of the topics' webhook settings.
        grace: seconds :meth:`stop` waits for deliveries in flight before giving their jobs
            back.
        trace_configs: aiohttp trace configs for the webhook session (observability, tests).
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
    ) -> None:
        if allow_private_webhooks is None:
            allow_private_webhooks = bool(getattr(settings, "allow_private_webhooks", False))
        if concurrency is None:
            concurrency = int(getattr(settings, "webhook_concurrency", 100))
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
        self._retiring: set[asyncio.Task[None]] = set()
        self._discovery: asyncio.Task[None] | None = None
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
        """Open the HTTP session, read the topics once and start delivering."""
        if self._session is not None:
            return
        self._closing = False
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(self.policy, limit=0, keepalive_timeout=30),
            headers={"User-Agent": delivery.USER_AGENT},
            trace_configs=self._trace_configs or None,
        )
        try:
            await self.refresh()
        except BackendError as exc:
            log.warning("dispatcher could not read topics yet: %s", exc)
        self._discovery = asyncio.create_task(self._discover(), name="redisched-dispatch-discovery")

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
        await asyncio.gather(*(r.stop(self.grace) for r in runners), *self._retiring)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def refresh(self) -> None:
        """Read every topic's settings now; start, update or stop topic tasks to match."""
        async with self._refreshing:  # one at a time: each may start topic tasks
            await self._refresh()

    async def _refresh(self) -> None:
        names = await self.client.topics()
        configs = await asyncio.gather(*(self.client.config(t) for t in names))
        wanted = {t: c for t, c in zip(names, configs, strict=True) if c.webhook is not None}
        for topic, config in wanted.items():
            runner = self._runners.get(topic)
            assert config.webhook is not None
            if runner is None or runner.webhook.url != config.webhook.url:
                await self._check_target(topic, config.webhook.url)
            if runner is None:
                runner = self._runners[topic] = _TopicRunner(self, topic, config)
                runner.start()
            else:
                runner.configure(config)
        for topic in [t for t in self._runners if t not in wanted]:
            retiring = asyncio.create_task(self._runners.pop(topic).stop(self.grace))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)

    async def _check_target(self, topic: str, url: str) -> None:
        try:
            await check_url(url, self.policy)
        except InvalidArgument as exc:  # each delivery will fail with the reason too
            log.warning("topic %r: webhook %s is refused: %s", topic, url, exc.message)

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
    """Leases and delivers one topic's jobs in this process."""

    def __init__(self, dispatcher: Dispatcher, topic: str, config: TopicConfig) -> None:
        self.d = dispatcher
        self.topic = topic
        self.config = config
        self.keys: list[bytes] = []
        self.timeout = aiohttp.ClientTimeout()
        self.backoff = dispatcher.backoff
        self.inflight: dict[asyncio.Task[None], tuple[Job, str | None]] = {}
        # delivered, to ack with the next round trip: (job, seconds, result)
        self.done: list[tuple[Job, float, bytes]] = []
        self.freed: list[str] = []  # concurrency slots to give back with the next round trip
        self.interrupted: list[Job] = []  # deliveries cancelled by stop(): to release
        self.changed = asyncio.Event()
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
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
            self.keys = [signing.secret_key(s) for s in config.webhook.secrets]
        except ValueError as exc:
            log.error("topic %r: bad webhook secret (%s); sending unsigned", self.topic, exc)
            self.keys = []
        self.config = config
        self.timeout = aiohttp.ClientTimeout(total=config.webhook.timeout)
        base = self.d.backoff
        if config.backoff is not None or config.backoff_max is not None:
            b = base.base if config.backoff is None else max(config.backoff, 0.001)
            m = base.max if config.backoff_max is None else config.backoff_max
            self.backoff = Backoff(b, max(m, b), base.jitter)
        else:
            self.backoff = base

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"redisched-dispatch:{self.topic}")

    async def stop(self, grace: float) -> None:
        """Stop leasing, wait up to ``grace`` for deliveries, release what did not finish."""
        self.stopping = True
        self.changed.set()
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=grace)
        for task in list(self.inflight):
            task.cancel()
        if self.inflight:
            await asyncio.wait(set(self.inflight))
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout=max(grace, 1.0))
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:
                log.exception("topic %r: dispatcher task failed", self.topic)
        for job in self.interrupted:
            with contextlib.suppress(RedischedError):
                await self.d.client.release(job, error="dispatcher stopped during delivery")

    # -- the lease loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        wakeups, topic = self.d.wakeups, self.topic
        pause = _REDIS_BACKOFF[0]
        await wakeups.watch(topic)
        while True:
            self.changed.clear()
            if self.stopping and not (self.inflight or self.done or self.freed):
                return
            capacity = min(self.d.concurrency, self.config.concurrency or BATCH * 10)
            want = 0 if self.stopping else min(capacity - len(self.inflight), BATCH)
            if want <= 0 and not self.done and not self.freed:
                await self.changed.wait()
                continue
            if self.inflight and want < capacity // 2 and not self.stopping:
                # Busy: let a few more deliveries end, so that one round trip serves them all.
                await asyncio.sleep(ACK_DELAY)
                want = min(capacity - len(self.inflight), BATCH)
            since = wakeups.generation(topic)
            done, self.done = self.done, []
            freed, self.freed = self.freed, []
            try:
                grant, jobs = await self._round(done, freed, want)
            except Exception as exc:  # Redis down, or a bug: keep the acks, retry later
                if isinstance(exc, BackendError):
                    log.warning("topic %r: Redis failed (%s); retry in %.2f s", topic, exc, pause)
                else:
                    log.exception("topic %r: dispatch round failed; retry in %.2f s", topic, pause)
                self.done[:0] = done
                self.freed[:0] = freed
                await asyncio.sleep(pause)
                pause = min(pause * 2, _REDIS_BACKOFF[1])
                continue
            pause = _REDIS_BACKOFF[0]
            for index, job in enumerate(jobs):
                self._spawn(job, grant.slots[index] if index < len(grant.slots) else None)
            self.freed.extend(grant.slots[len(jobs) :])
            if self.stopping or (jobs and len(jobs) == grant.granted) or self.freed:
                continue  # more may be due, or spare slots go back at once
            if grant.next_timeout_ms is not None and grant.next_timeout_ms <= grant.now_ms:
                with contextlib.suppress(BackendError):
                    await self.d.client.requeue(topic)
                continue
            await self._sleep(since, self._idle_seconds(grant.now_ms, grant))

    async def _round(
        self, done: list[tuple[Job, float, bytes]], freed: list[str], want: int
    ) -> tuple[Grant, list[Job]]:
        """One exchange with Redis: ack ``done``, free ``freed``, lease up to ``want`` jobs.

        A topic without limits takes one round trip (ack_and_lease); with limits, the acks go
        with limit.lua and the lease follows for as many jobs as were granted.
        """
        client, topic = self.d.client, self.topic
        hold = self.webhook.timeout + HOLD_MARGIN
        jobs = [job for job, _, _ in done]
        results = [result for _, _, result in done]
        limited = self.config.concurrency is not None or self.config.rate is not None
        if want and not limited and not freed:
            acked, lease = await client.ack_and_lease(topic, jobs, want, ttr=hold, results=results)
            self._count_acks(done, acked)
            done.clear()
            grant = Grant(lease.now_ms, want, [], None, lease.next_due_ms, lease.next_timeout_ms)
            return grant, lease.jobs
        call = ack_and_grant(
            client.ops, topic, jobs, freed, want, round(hold * 1000), results=results
        )
        acked, grant = await client._run(call)
        self._count_acks(done, acked)
        done.clear()  # applied: a failure from here on must not send them again
        freed.clear()
        if not grant.granted:
            return grant, []
        try:
            lease = await client.lease(topic, grant.granted, ttr=hold)
        except BaseException:
            self.freed.extend(grant.slots)
            raise
        return grant, lease.jobs

    def _count_acks(self, done: list[tuple[Job, float, bytes]], acked: list[bool]) -> None:
        for (_, seconds, _), ok in zip(done, acked, strict=True):
            self.d.metrics.delivery(self.topic, Outcome.ACKED if ok else Outcome.STALE, seconds)

    @staticmethod
    def _idle_seconds(now_ms: int, grant: Grant) -> float:
        delays = [MAX_IDLE * 1000]
        if grant.retry_ms is not None:
            delays.append(grant.retry_ms)
        for at in (grant.next_due_ms, grant.next_timeout_ms):
            if at is not None:
                delays.append(max(0, at - now_ms) + 1)
        return float(min(delays)) / 1000

    async def _sleep(self, since: int, seconds: float) -> None:
        if self.changed.is_set():
            return
        woken = asyncio.ensure_future(self.d.wakeups.wait(self.topic, since, seconds))
        local = asyncio.ensure_future(self.changed.wait())
        try:
            await asyncio.wait({woken, local}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            local.cancel()

    # -- deliveries -------------------------------------------------------------------------

    def _spawn(self, job: Job, slot: str | None) -> None:
        task = asyncio.create_task(self._deliver(job))
        self.inflight[task] = (job, slot)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        job, slot = self.inflight.pop(task)
        if slot is not None:
            self.freed.append(slot)
        if task.cancelled():
            self.interrupted.append(job)
        elif task.exception() is not None:
            log.error("topic %r: delivery of %r failed", self.topic, job.id,
                      exc_info=task.exception())  # fmt: skip
        self.changed.set()

    async def _deliver(self, job: Job) -> None:
        self.d.metrics.lag(self.topic, time.time() - job.run_at.timestamp())
        result = await delivery.deliver(self.d.session, job, self.webhook, self.keys, self.timeout)
        if result.verdict is delivery.Verdict.DONE:
            # acked in the loop's next round trip, the answer kept as the job's result
            self.done.append((job, result.seconds, result.job_result()))
            return
        try:
            outcome = await self._settle(job, result)
        except StaleReservation:
            outcome = Outcome.STALE
        except BackendError as exc:
            log.warning("topic %r: could not settle job %r: %s", self.topic, job.id, exc)
            outcome = Outcome.ERROR
        self.d.metrics.delivery(self.topic, outcome, result.seconds)

    async def _settle(self, job: Job, result: delivery.Result) -> Outcome:
        client = self.d.client
        if result.verdict is delivery.Verdict.ACCEPTED:
            await client.touch(job)  # the receiver now has the job's own ttr to finish it
            return Outcome.ACCEPTED
        if result.verdict is delivery.Verdict.THROTTLED and result.retry_after is not None:
            delay = min(result.retry_after, self.backoff.max)
            state = await client.release(job, delay=delay, error=result.reason)
            return Outcome.DEAD if state is JobState.DEAD else Outcome.THROTTLED
        delay = self.backoff.delay(job.attempts)
        state = await client.release(job, delay=delay, error=result.reason)
        if state is JobState.DEAD:
            log.info("topic %r: job %r is dead: %s", self.topic, job.id, result.reason)
            return Outcome.DEAD
        return Outcome.RETRIED
