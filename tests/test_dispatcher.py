"""The push dispatcher against a real Redis and a real loopback webhook receiver."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import web
from prometheus_client import CollectorRegistry

from redisched import AsyncClient, InvalidArgument, JobState
from redisched.models import EventKind
from redisched.models import Outcome as HistoryOutcome
from redisched.push.dispatch_metrics import Outcome, PrometheusDispatchMetrics
from redisched.push.dispatcher import Dispatcher
from redisched.push.signing import verify
from redisched.wakeup import Wakeups
from tests import raw_scripts

SECRET = "whsec_" + base64.b64encode(b"the-current-secret").decode()
OLD_SECRET = "an-old-raw-secret"


@dataclass
class Call:
    """One request the receiver got."""

    at: float
    payload: dict[str, Any]
    headers: dict[str, str]
    raw: bytes
    request: web.Request


Behaviour = Callable[["Receiver", Call], Awaitable[web.StreamResponse]]


async def ok(receiver: Receiver, call: Call) -> web.StreamResponse:
    return web.Response(status=200)


@dataclass
class Receiver:
    """A webhook receiver on a free loopback port that records what it got."""

    behaviour: Behaviour = ok
    calls: list[Call] = field(default_factory=list)
    successes: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        call = Call(time.monotonic(), json.loads(raw), dict(request.headers), raw, request)
        self.calls.append(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.behaviour(self, call)
        finally:
            self.in_flight -= 1
        if 200 <= response.status < 300 and response.status != 202:
            self.successes[call.payload["id"]] += 1
        return response

    def of(self, job_id: str) -> list[Call]:
        return [c for c in self.calls if c.payload["id"] == job_id]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A started receiver; set ``receiver.behaviour`` to change its answers."""
    r = await Receiver().start()
    yield r
    assert r.runner is not None
    await r.runner.cleanup()


@dataclass
class Recorded:
    """A metrics recorder for the tests."""

    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)

    def delivery(self, topic: str, outcome: Outcome, seconds: float) -> None:
        self.outcomes.append((topic, outcome))

    def lag(self, topic: str, seconds: float) -> None:
        self.lags.append(seconds)


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so that its dispatchers see only its topics."""
    return f"rsd-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[AsyncClient]:
    """An async client on the server clock, under the test's prefix."""
    async with AsyncClient.from_url(redis_url, prefix=prefix) as c:
        yield c


@pytest.fixture
async def dispatchers(
    redis_url: str, prefix: str
) -> AsyncIterator[Callable[..., Awaitable[Dispatcher]]]:
    """Start dispatchers (each with its own connections, like separate processes)."""
    started: list[tuple[Dispatcher, Wakeups, AsyncClient]] = []

    async def start(**options: Any) -> Dispatcher:
        c = AsyncClient.from_url(redis_url, prefix=prefix)
        wakeups = Wakeups(c.redis, prefix=prefix)  # type: ignore[arg-type]
        options.setdefault("allow_private_webhooks", True)
        options.setdefault("refresh_interval", 0.2)
        dispatcher = Dispatcher(c, wakeups, **options)
        await dispatcher.start()
        started.append((dispatcher, wakeups, c))
        return dispatcher

    yield start
    for dispatcher, wakeups, c in started:
        await dispatcher.stop()
        await wakeups.close()
        await c.close()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def drained(client: AsyncClient, topic: str) -> bool:
    stats = await client.stats(topic)
    return stats.scheduled + stats.ready + stats.reserved == 0


async def configure(client: AsyncClient, topic: str, receiver: Receiver, **options: Any) -> None:
    webhook = {"url": receiver.url, "secrets": [SECRET], "timeout": 2.0}
    webhook.update(options.pop("webhook", {}))
    await client.configure(topic, webhook=webhook, **options)


# -- delivery and the request ------------------------------------------------------------------
async def test_a_job_a_raw_script_call_stored_with_an_id_not_utf8_is_delivered_and_acked(
    client: AsyncClient,
    topic: str,
    receiver: Receiver,
    dispatchers: Any,
    prefix: str,
    raw_redis: redis.Redis,
) -> None:
    await configure(client, topic, receiver)
    await dispatchers()
    raw_scripts.put(raw_redis, topic, b"odd-\xff", b"{}", prefix=prefix)
    await client.put(topic, "good", b"{}")
    await until(lambda: drained(client, topic))
    assert sorted(receiver.successes) == ["good", "odd-\\xff"]  # JSON shows the byte as \xff
    history = await client.history(topic, "odd-\udcff")
    assert history is not None and history.outcome is HistoryOutcome.DONE


async def test_due_job_is_posted_signed_and_acked(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    await configure(client, topic, receiver, webhook={"secrets": [SECRET, OLD_SECRET]})
    metrics = Recorded()
    await dispatchers(metrics=metrics)
    await client.put(topic, "order-1", b'{"total": 12.5, "items": ["a"]}')
    await client.put(topic, "raw", b"\xff\x00 not json")
    await until(lambda: drained(client, topic))
    assert sorted(receiver.successes.items()) == [("order-1", 1), ("raw", 1)]
    first = receiver.of("order-1")[0]
    assert first.payload["body"] == {"total": 12.5, "items": ["a"]}
    assert first.payload["topic"] == topic
    assert (first.payload["attempt"], first.payload["version"]) == (1, 1)
    assert first.payload["token"] and first.payload["run_at"].endswith("Z")
    raw_body = receiver.of("raw")[0].payload["body"]["$base64"]
    assert base64.b64decode(raw_body) == b"\xff\x00 not json"
    for call in receiver.calls:  # either secret verifies during the rotation
        verify(call.raw, call.headers, SECRET)
        verify(call.raw, call.headers, [OLD_SECRET])
        assert call.headers["Content-Type"] == "application/json"
    # counted when the ack's reply is read, which may come just after Redis shows it
    await until(lambda: asyncio.sleep(0, len(metrics.outcomes) == 2))
    assert [o for _, o in metrics.outcomes] == [Outcome.ACKED, Outcome.ACKED]
    assert len(metrics.lags) == 2 and all(-1 < lag < 5 for lag in metrics.lags)


async def test_future_job_is_delivered_when_due_without_polling(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    await configure(client, topic, receiver)
    await dispatchers()
    await asyncio.sleep(0.3)  # the topic task is idle now
    put_at = time.monotonic()
    await client.put(topic, "soon", b"1", delay=0.6)
    await client.put(topic, "now", b"2")
    await until(lambda: drained(client, topic))
    arrivals = {c.payload["id"]: c.at - put_at for c in receiver.calls}
    assert arrivals["now"] < 0.3  # a wake-up, not a poll interval
    assert 0.58 <= arrivals["soon"] < 1.0  # on time by the server clock, not early


# -- failures, retries, dead -------------------------------------------------------------------


async def test_failed_deliveries_back_off_then_the_job_dies_with_the_reason(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def failing(r: Receiver, call: Call) -> web.StreamResponse:
        return web.Response(status=500, text="database is down")

    receiver.behaviour = failing
    await configure(client, topic, receiver, backoff=0.2, backoff_max=10)
    await dispatchers()
    await client.put(topic, "j", b"{}", max_attempts=4)
    await until(lambda: drained(client, topic))
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.DEAD and job.attempts == 4
    assert job.last_error == "webhook answered HTTP 500: database is down"
    times = [c.at for c in receiver.of("j")]
    assert [c.payload["attempt"] for c in receiver.of("j")] == [1, 2, 3, 4]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, ceiling in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert ceiling * 0.8 - 0.02 <= gap <= ceiling + 0.5, gaps  # 20% jitter, margins


async def test_a_request_that_outlasts_the_webhook_timeout_is_cut_short(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def slow_then_fast(r: Receiver, call: Call) -> web.StreamResponse:
        if call.payload["id"] == "slow":
            await asyncio.sleep(3)
        return web.Response(status=200)

    receiver.behaviour = slow_then_fast
    await configure(client, topic, receiver, webhook={"timeout": 0.3}, backoff=10)
    metrics = Recorded()
    await dispatchers(metrics=metrics)
    await client.put(topic, "slow", b"{}", max_attempts=1)
    await until(lambda: asyncio.sleep(0, bool(metrics.outcomes)))
    assert time.monotonic() - receiver.of("slow")[0].at < 1.5  # not after the receiver's 3 s
    job = await client.get(topic, "slow")
    assert job is not None and job.state is JobState.DEAD
    assert job.last_error == "webhook timed out after 0.3 s"
    assert metrics.outcomes == [(topic, Outcome.DEAD)]
    # the place that timed out delivers the next job: its cancellation was taken back
    await client.put(topic, "fast", b"{}")
    await until(lambda: asyncio.sleep(0, receiver.successes["fast"] == 1))
    await until(lambda: drained(client, topic))


async def test_a_delivery_that_raises_leaves_no_deadline_to_cancel_the_place_later(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from redisched.push import dispatcher as module

    real = module.delivery.deliver

    async def deliver(session: Any, job: Any, *args: Any) -> Any:
        if job.id == "boom":
            raise RuntimeError("a bug in a delivery")
        return await real(session, job, *args)

    monkeypatch.setattr(module.delivery, "deliver", deliver)
    await configure(client, topic, receiver, webhook={"timeout": 0.3})
    dispatcher = await dispatchers(concurrency=1)
    await client.put(topic, "boom", b"{}", ttr=1000)
    runner = dispatcher._runners[topic]
    await until(lambda: asyncio.sleep(0, "boom" not in runner.running
                                      and bool(runner.place_tasks)))  # fmt: skip
    assert len(runner.deadlines) == 0  # disarmed: the timer cannot cancel the place later
    await asyncio.sleep(0.5)  # past the deadline the request armed
    await client.put(topic, "next", b"{}")
    await until(lambda: asyncio.sleep(0, receiver.successes["next"] == 1))


async def test_a_delivery_that_its_deadline_makes_raise_leaves_no_cancellation_behind(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A deadline's cancellation that the request turns into another exception is taken back
    too: else it stays counted on the place, and the place's next timeout reads as a stop()."""
    from redisched.push import dispatcher as module

    real = module.delivery.deliver

    async def deliver(session: Any, job: Any, *args: Any) -> Any:
        if job.id == "boom":
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:  # e.g. a library that wraps what cut it short
                raise RuntimeError("the request was cut short") from None
        return await real(session, job, *args)

    async def slow(r: Receiver, call: Call) -> web.StreamResponse:
        if call.payload["id"] == "slow":
            await asyncio.sleep(3)
        return web.Response(status=200)

    monkeypatch.setattr(module.delivery, "deliver", deliver)
    receiver.behaviour = slow
    await configure(client, topic, receiver, webhook={"timeout": 0.3}, backoff=10)
    metrics = Recorded()
    dispatcher = await dispatchers(concurrency=1, metrics=metrics)
    runner = dispatcher._runners[topic]
    await client.put(topic, "boom", b"{}", ttr=1000)
    await until(lambda: asyncio.sleep(0, "boom" not in runner.running
                                      and bool(runner.place_tasks)))  # fmt: skip
    assert [t.cancelling() for t in runner.place_tasks] == [0]
    # the same place times out its next request: a timeout, not a stop
    await client.put(topic, "slow", b"{}", max_attempts=1)
    await until(lambda: asyncio.sleep(0, bool(metrics.outcomes)), timeout=2)
    job = await client.get(topic, "slow")
    assert job is not None and job.state is JobState.DEAD
    assert job.last_error == "webhook timed out after 0.3 s"
    assert runner.interrupted == []


@pytest.mark.parametrize(
    ("status", "retry_after", "options", "gap"),
    [
        (429, "1", {}, (0.98, 2.0)),  # honoured as asked
        # too large to count: 400 digits made OverflowError escape the delivery, the job sat
        # reserved until its lease lapsed; 5000, int() refused it, a failure spending an
        # attempt. Both wait the topic's backoff_max (1 s: one under the 1 s floor spends
        # the attempt, test_push_audit).
        (503, "9" * 400, {"backoff_max": 1.0}, (0.95, 2.5)),
        (503, "9" * 5000, {"backoff_max": 1.0}, (0.95, 2.5)),
    ],
    ids=["seconds", "400-digits", "5000-digits"],
)
async def test_retry_after_waits_without_spending_an_attempt(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any, status: int,
    retry_after: str, options: dict[str, float], gap: tuple[float, float],
) -> None:  # fmt: skip
    async def busy_once(r: Receiver, call: Call) -> web.StreamResponse:
        if len(r.of(call.payload["id"])) == 1:
            return web.Response(status=status, headers={"Retry-After": retry_after})
        return web.Response(status=204)

    receiver.behaviour = busy_once
    await configure(client, topic, receiver, backoff=0.01, **options)
    await dispatchers()
    await client.put(topic, "j", b"{}")
    await until(lambda: drained(client, topic))
    first, second = receiver.of("j")
    assert gap[0] <= second.at - first.at < gap[1]
    # Back-pressure is not a failure: the attempt is given back, and counted apart.
    assert second.payload["attempt"] == 1
    meta = client.ops.keys(topic).name("meta")
    assert await client.redis.hget(meta, "total_throttled") == b"1"
    # its history says why it waited (it said "never started", though it was sent)
    history = await client.history(topic, "j")
    assert history is not None
    released = [e for e in history.events if e.kind == "released"]
    assert [e.detail for e in released] == [f"webhook answered HTTP {status} (Retry-After)"], (
        history.events
    )


async def test_every_job_is_delivered_or_dead_with_a_flaky_receiver(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    chance = random.Random(7)

    async def flaky(r: Receiver, call: Call) -> web.StreamResponse:
        roll = chance.random()
        if roll < 0.12:
            return web.Response(status=503, text="overloaded")  # no Retry-After: backoff
        if roll < 0.22:
            await asyncio.sleep(2.0)  # longer than the webhook timeout
            return web.Response(status=500)
        if roll < 0.32:
            assert call.request.transport is not None
            call.request.transport.abort()  # a connection reset, no answer
            return web.Response(status=599)
        return web.Response(status=200)

    receiver.behaviour = flaky
    await configure(
        client, topic, receiver, webhook={"timeout": 1.0}, backoff=0.02, backoff_max=0.1
    )
    metrics = Recorded()
    await dispatchers(metrics=metrics)
    await dispatchers(metrics=metrics)
    ids = [f"job-{i}" for i in range(150)]
    await client.put_many(topic, [(i, json.dumps({"n": i}).encode()) for i in ids], max_attempts=4)
    await until(lambda: drained(client, topic), timeout=40)
    dead = {job.id for job in (await client.jobs(topic, "dead", limit=1000)).jobs}
    stats = await client.stats(topic)
    assert stats.dead == len(dead) and stats.total_acked == len(ids) - len(dead)  # none lost
    for job_id in set(ids) - dead:
        assert await client.get(topic, job_id) is None
        assert receiver.successes[job_id] >= 1 and len(receiver.of(job_id)) <= 4
    for job_id in dead:
        job = await client.get(topic, job_id)
        assert job is not None and job.attempts == 4 and job.last_error
        assert len(receiver.of(job_id)) == 4
    kinds = Counter(o for _, o in metrics.outcomes)
    assert kinds[Outcome.RETRIED] > 0 and kinds[Outcome.ACKED] == len(ids) - len(dead)


# -- 202: the receiver finishes later ---------------------------------------------------------


async def test_202_leaves_the_job_reserved_until_the_receiver_acks(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def accepted(r: Receiver, call: Call) -> web.StreamResponse:
        return web.Response(status=202)

    receiver.behaviour = accepted
    await configure(client, topic, receiver)
    metrics = Recorded()
    await dispatchers(metrics=metrics)
    await client.put(topic, "long", b"{}", ttr=30)
    await until(lambda: asyncio.sleep(0, bool(metrics.outcomes)))
    await asyncio.sleep(0.3)
    job = await client.get(topic, "long")
    assert job is not None and job.state is JobState.RESERVED
    assert job.reserved_until is not None and job.reserved_until.timestamp() > time.time() + 25
    assert len(receiver.calls) == 1 and metrics.outcomes == [(topic, Outcome.ACCEPTED)]
    token = receiver.calls[0].payload["token"]
    await client.ack(SimpleNamespace(topic=topic, id="long", token=token))
    assert await client.get(topic, "long") is None


# -- limits across processes ------------------------------------------------------------------


async def test_concurrency_limit_holds_across_two_dispatchers(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def slow(r: Receiver, call: Call) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(status=200)

    receiver.behaviour = slow
    await configure(client, topic, receiver, concurrency=3)
    await dispatchers(concurrency=10)
    await dispatchers(concurrency=10)
    await client.put_many(topic, [(f"j{i}", b"{}") for i in range(60)])
    started = time.monotonic()
    await until(lambda: drained(client, topic), timeout=20)
    assert receiver.max_in_flight in (2, 3)
    assert time.monotonic() - started >= 60 * 0.05 / 3 * 0.9
    assert len(receiver.successes) == 60 and set(receiver.successes.values()) == {1}


async def test_rate_limit_holds_across_two_dispatchers(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    await configure(client, topic, receiver, rate=20.0)  # a burst of 2, then 20/s
    await dispatchers()
    await dispatchers()
    await client.put_many(topic, [(f"j{i}", b"{}") for i in range(30)])
    await until(lambda: drained(client, topic), timeout=20)
    times = sorted(c.at for c in receiver.calls)
    assert len(times) == 30
    assert times[-1] - times[0] >= (30 - 2) / 20 * 0.9
    for i, start in enumerate(times):  # no second holds more than the rate plus the burst
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 20 + 2 + 1


async def test_two_dispatchers_never_deliver_a_job_twice(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    await configure(client, topic, receiver)
    await dispatchers()
    await dispatchers()
    await client.put_many(topic, [(f"j{i}", b"{}") for i in range(300)])
    await until(lambda: drained(client, topic), timeout=20)
    assert len(receiver.calls) == 300 and set(receiver.successes.values()) == {1}


# -- targets (SSRF) ---------------------------------------------------------------------------


async def test_a_refused_webhook_holds_its_topic_without_spending_attempts(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    """A serve without --allow-private-webhooks must not dead-letter the jobs of a topic whose
    stored webhook is private: it holds them, says so, and a serve that may reach the
    target delivers them later with their attempts intact."""
    registry = CollectorRegistry()
    await configure(client, topic, receiver, backoff=0.01)  # stored without a config check
    strict = await dispatchers(
        allow_private_webhooks=False, metrics=PrometheusDispatchMetrics(registry)
    )
    await client.put(topic, "j", b"{}", max_attempts=2)
    await until(lambda: _true(topic in strict.held))
    assert "loopback" in strict.held[topic]
    assert registry.get_sample_value("redisched_webhook_held", {"topic": topic}) == 1
    await asyncio.sleep(0.5)  # several refreshes
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.READY and job.attempts == 0
    assert receiver.calls == []  # nothing reached the receiver
    await strict.stop()
    await dispatchers()  # allowed: delivers the held job on its first attempt
    await until(lambda: drained(client, topic))
    assert [c.payload["attempt"] for c in receiver.of("j")] == [1]


async def test_a_stored_secret_that_signs_nothing_holds_its_topic_never_sending_unsigned(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    """A ``whsec_`` secret whose rest is not base64 was accepted, and the dispatcher then
    sent every request unsigned. configure refuses it now; one stored before is held."""
    bad = "whsec_!!not-base64"
    with pytest.raises(InvalidArgument, match=r"webhook\.secrets\[1\]: must be whsec_"):
        await configure(client, topic, receiver, webhook={"secrets": [SECRET, bad]})
    hook = {"url": receiver.url, "secrets": [bad], "timeout": 2.0}
    await client.redis.hset(client.ops.keys(topic).name("meta"), "webhook", json.dumps(hook))
    dispatcher = await dispatchers()
    await client.put(topic, "j", b"{}")
    await until(lambda: _true(topic in dispatcher.held))
    assert "secret" in dispatcher.held[topic]
    await asyncio.sleep(0.5)  # several refreshes
    assert receiver.calls == []
    await configure(client, topic, receiver)  # a good secret: delivered, signed
    await until(lambda: drained(client, topic))
    (call,) = receiver.of("j")
    verify(call.raw, call.headers, [SECRET])
    assert topic not in dispatcher.held


async def _true(value: bool) -> bool:
    return value


async def test_redirects_are_not_followed(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def redirect(r: Receiver, call: Call) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "http://169.254.169.254/latest/"})

    receiver.behaviour = redirect
    connections: list[str] = []

    async def on_request(session: object, context: object, params: Any) -> None:
        connections.append(str(params.url.host))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request)
    await configure(client, topic, receiver, backoff=0.01)
    await dispatchers(
        allow_private_webhooks=False, allow_networks=["127.0.0.1/32"], trace_configs=[trace]
    )
    await client.put(topic, "j", b"{}", max_attempts=1)
    await until(lambda: drained(client, topic))
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.DEAD
    assert job.last_error == (
        "webhook answered HTTP 307 redirect to 'http://169.254.169.254/latest/', not followed"
    )
    assert connections == ["127.0.0.1"] and len(receiver.calls) == 1


# -- lifecycle --------------------------------------------------------------------------------


async def test_topics_and_settings_are_picked_up_and_dropped(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    dispatcher = await dispatchers()
    await client.put(topic, "pull-only", b"{}")
    await dispatcher.refresh()
    assert dispatcher.topics == []  # no webhook: left to pull consumers
    await configure(client, topic, receiver)
    await until(lambda: asyncio.sleep(0, topic in dispatcher.topics))
    await until(lambda: drained(client, topic))
    await client.configure(topic, webhook=None)
    await dispatcher.refresh()
    await client.put(topic, "after", b"{}")
    await asyncio.sleep(0.3)
    assert dispatcher.topics == [] and (await client.get(topic, "after")) is not None


async def test_stop_gives_back_jobs_whose_delivery_did_not_finish(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def hanging(r: Receiver, call: Call) -> web.StreamResponse:
        await asyncio.sleep(3)
        return web.Response(status=200)

    receiver.behaviour = hanging
    await configure(client, topic, receiver, webhook={"timeout": 5.0})
    dispatcher = await dispatchers(grace=0.2)
    await client.put(topic, "j", b"{}")
    await until(lambda: asyncio.sleep(0, bool(receiver.calls)))
    started = time.monotonic()
    await dispatcher.stop()
    assert time.monotonic() - started < 2.0
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.READY
    assert job.last_error == "dispatcher stopped during delivery"


async def _fast_then(receiver: Receiver, hang: float) -> None:
    """Answer jobs whose id starts with ``warm`` at once, the others after ``hang`` s."""

    async def behaviour(r: Receiver, call: Call) -> web.StreamResponse:
        if not call.payload["id"].startswith("warm"):
            await asyncio.sleep(hang)
        return web.Response(status=200)

    receiver.behaviour = behaviour


async def test_stop_gives_back_jobs_leased_ahead_without_spending_an_attempt(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from redisched.push import dispatcher as module

    monkeypatch.setattr(module, "AHEAD_PER_PLACE", 1)  # two places, two jobs ahead
    await _fast_then(receiver, 3.0)
    await configure(client, topic, receiver, webhook={"timeout": 5.0})
    dispatcher = await dispatchers(grace=0.2, concurrency=2)
    await client.put_many(topic, [(f"warm{i}", b"{}") for i in range(30)])
    await until(lambda: drained(client, topic))  # fast answers: it now leases ahead
    await client.put_many(topic, [(f"slow{i}", b"{}") for i in range(6)])
    await until(lambda: _reserved(client, topic, 4))
    await dispatcher.stop()
    sent = {c.payload["id"] for c in receiver.calls if c.payload["id"].startswith("slow")}
    assert len(sent) == 2  # two places: two requests; two more jobs waited for a place
    for i in range(6):
        job = await client.get(topic, f"slow{i}")
        assert job is not None and job.state is JobState.READY
        if job.id in sent:
            assert job.last_error == "dispatcher stopped during delivery"
        else:
            assert job.attempts == 0 and job.last_error is None


async def _reserved(client: AsyncClient, topic: str, count: int) -> bool:
    return (await client.stats(topic)).reserved == count


async def test_a_job_leased_ahead_that_waited_too_long_is_given_back_unstarted(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from redisched.push import dispatcher as module

    monkeypatch.setattr(module, "MAX_WAIT", 0.3)
    await _fast_then(receiver, 1.0)
    await configure(client, topic, receiver, webhook={"timeout": 5.0})
    await dispatchers(concurrency=2)
    await client.put_many(topic, [(f"warm{i}", b"{}") for i in range(30)])
    await until(lambda: drained(client, topic))
    await client.put_many(topic, [(f"slow{i}", b"{}") for i in range(4)])
    await until(lambda: drained(client, topic))
    given_back = 0
    for i in range(4):
        calls = receiver.of(f"slow{i}")
        assert len(calls) == 1 and calls[0].payload["attempt"] == 1  # no attempt was spent
        history = await client.history(topic, f"slow{i}")
        assert history is not None and history.attempts == 1
        given_back += sum(e.kind is EventKind.RELEASED for e in history.events)
    assert given_back == 2  # the two that waited for the two places


async def test_delivery_keeps_the_answer_as_the_result(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    async def answer(receiver: Receiver, call: Call) -> web.StreamResponse:
        return web.Response(status=201, text="queued as #7 " + "x" * 5000)

    receiver.behaviour = answer
    await configure(client, topic, receiver)
    await dispatchers()
    await client.put(topic, "mail-1", b"{}")
    await until(lambda: drained(client, topic))
    history = None
    for _ in range(100):
        history = await client.history(topic, "mail-1")
        if history is not None and history.outcome is not None:
            break
        await asyncio.sleep(0.05)
    assert history is not None and history.outcome is not None
    assert history.outcome.value == "done"
    kept = json.loads(history.result or b"")
    assert kept["status"] == 201 and kept["body"].startswith("queued as #7 xxx")
    assert len(kept["body"]) == 1024


async def test_refresh_reads_hundreds_of_topics_within_the_connection_pool(
    client: AsyncClient, prefix: str, receiver: Receiver, dispatchers: Any
) -> None:
    # redis-py's asyncio pool refuses a 101st connection: one read per topic, all at once,
    # failed with "Too many connections" past 100 topics.
    names = [f"many-{i}" for i in range(250)]
    for name in names:
        await client.put(name, "j", b"x", delay=3600)
    await configure(client, names[-1], receiver)
    dispatcher = await dispatchers()
    await dispatcher.refresh()
    assert dispatcher.failure() is None


async def test_giving_back_many_jobs_joins_their_releases_and_skips_a_lost_one(
    client: AsyncClient, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    from redisched.push import dispatcher as module

    await client.put_many(topic, [(f"j{i}", b"{}") for i in range(5)])
    jobs = await client.reserve_many(topic, 5)
    assert len(jobs) == 5
    await client.release(jobs[2])  # its reservation is gone: the give-back finds it stale
    runner = SimpleNamespace(d=SimpleNamespace(client=client), topic=topic)
    await module._TopicRunner._give_back_all(runner, jobs, "the dispatcher stopped")  # type: ignore[arg-type]
    for i, job in enumerate(jobs):
        stored = await client.get(topic, job.id)
        assert stored is not None and stored.state is JobState.READY
        if i != 2:
            assert stored.attempts == 0  # unstarted: no attempt spent
    assert "could not give back job 'j2'" in caplog.text


async def test_a_topic_whose_settings_cannot_be_read_holds_up_no_other(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any, monkeypatch: Any
) -> None:
    """One topic's settings unreadable (its Redis Cluster primary down) failed the whole
    refresh: a topic given a webhook meanwhile, on a healthy node, was never delivered."""
    from redisched import BackendError

    other = f"{topic}-other"
    dispatcher = await dispatchers()
    read = dispatcher.client.config

    async def config(name: str) -> Any:
        if name == topic:
            raise BackendError("Redis is unavailable: Connection refused (a primary is down)")
        return await read(name)

    monkeypatch.setattr(dispatcher.client, "config", config)
    await client.put(topic, "stuck", b"{}")  # registers the topic
    await configure(client, topic, receiver)
    await configure(client, other, receiver)
    await client.put(other, "a", b"{}")
    await until(lambda: drained(client, other))  # delivered though the refresh met a failure
    assert receiver.of("stuck") == []
    monkeypatch.undo()  # the primary is back: the topic is read, and delivered
    await until(lambda: drained(client, topic))
    assert len(receiver.of("stuck")) == 1
