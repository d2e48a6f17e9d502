"""A cancel message names the reservation it cancels (docs/design.md section 7): ``c<token>:<id>``.

Each race of the old ``x<id>`` is driven here in a fixed order, for the Python Worker and the
push dispatcher: a job deleted between the lease that took it and the reading of that lease's
reply (the cancel read first) is never run or sent; a cancel of an older reservation of the id
(another process's expire, or the consumer's own requeue of a dead holder's job) read after
the new attempt started leaves that attempt alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
from aiohttp import web

from redisched import AsyncClient, Job, Worker
from redisched import wakeup as wakeup_module
from redisched.keys import TopicKeys
from redisched.leasing import Lessee, Round
from redisched.models import Outcome
from redisched.wakeup import Wakeups
from tests.test_dispatcher import (  # noqa: F401  (client, dispatchers, prefix, receiver)
    Call,
    Receiver,
    client,
    configure,
    dispatchers,
    prefix,
    receiver,
    until,
)  # fmt: skip
from tests.test_dispatcher_cancel import Held, held  # noqa: F401  (the fixture)
from tests.test_worker import serving, wait_until


@pytest.fixture
async def jobs(redis_url: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient.from_url(redis_url) as c:
        yield c


class Gate:
    """Holds the cancel messages every Wakeups reads until :meth:`open` (the hub reads them
    late, as a subscriber on a slower connection, or on another Cluster node, may)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held: list[tuple[Wakeups, str, bytes]] = []
        self.closed = True
        original = Wakeups._abort
        self._original = original

        def abort(hub: Wakeups, topic: str, data: bytes) -> None:
            if self.closed:
                self.held.append((hub, topic, data))
            else:
                original(hub, topic, data)

        monkeypatch.setattr(Wakeups, "_abort", abort)

    def open(self) -> None:
        self.closed = False
        waiting, self.held = self.held, []
        for hub, topic, data in waiting:
            self._original(hub, topic, data)


def delete_before_the_reply_is_read(
    monkeypatch: pytest.MonkeyPatch, jobs: AsyncClient, topic: str, job_id: str
) -> list[str]:
    """Make the lease that takes ``job_id`` of ``topic`` see it deleted before its reply is
    handed on, the cancel read meanwhile; returns the tokens it deleted."""
    original = Lessee.exchange
    deleted: list[str] = []

    async def exchange(self: Lessee, want: int, retry_for: float | None = None) -> Round:
        result = await original(self, want, retry_for)
        for job in result.jobs:
            if self.topic == topic and job.id == job_id and not deleted:
                assert job.token is not None
                deleted.append(job.token)
                assert await jobs.delete(topic, job_id)
                await asyncio.sleep(0.3)  # the hub reads the cancel on its own connection
        return result

    monkeypatch.setattr(Lessee, "exchange", exchange)
    return deleted


async def _done(value: bool) -> bool:
    return value


# -- the Worker -------------------------------------------------------------------------------


async def test_a_job_deleted_before_its_lease_is_read_never_runs(
    jobs: AsyncClient, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    deleted = delete_before_the_reply_is_read(monkeypatch, jobs, topic, "doomed")
    async with serving(Worker(jobs, {topic: handler}, handle_signals=False)):
        await jobs.put(topic, "doomed", b"")
        await wait_until(lambda: _done(bool(deleted)))
        await jobs.put(topic, "next", b"")  # the worker goes on
        await wait_until(lambda: _done("next" in ran))
    assert ran == ["next"]
    assert await jobs.get(topic, "doomed") is None
    history = await jobs.history(topic, "doomed")
    assert history is not None and history.outcome is Outcome.CANCELLED


async def _expire_running_again(
    jobs: AsyncClient, topic: str, gate: Gate, own_requeue: bool, ttr: float
) -> tuple[list[tuple[str, str]], asyncio.Event]:
    """Another consumer holds job "j" (token T1); T1 ends and the Worker leases "j" anew (T2),
    its cancel read only once the new attempt started. Returns the handler's (token, how it
    ended) and an event set when it started."""
    ended: list[tuple[str, str]] = []
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(0.6)
        except asyncio.CancelledError:
            ended.append((job.token or "", "cancelled"))
            raise
        ended.append((job.token or "", "done"))

    await jobs.put(topic, "j", b"", ttr=ttr)
    other = await jobs.reserve(topic)  # a consumer that will die, or lose the job to expire
    assert other is not None and other.token is not None
    async with serving(Worker(jobs, {topic: handler}, handle_signals=False)):
        if not own_requeue:
            assert await jobs.expire(topic, "j")  # another process ends T1: cancel(T1)
        # else the Worker requeues the expired T1 itself at its deadline
        await asyncio.wait_for(started.wait(), 10)
        assert gate.held, "the cancel of the old reservation was published"
        gate.open()  # cancel(T1) read after the attempt of T2 started
        await wait_until(lambda: _done(bool(ended)))
    assert ended[0][0] != other.token
    return ended, started


@pytest.mark.parametrize(
    ("own_requeue", "ttr"),
    [(False, 60), (True, 0.3)],
    ids=["another_process_s_expire", "the_worker_s_own_requeue"],
)
async def test_a_cancel_read_late_leaves_the_new_attempt_alone(
    jobs: AsyncClient, topic: str, monkeypatch: pytest.MonkeyPatch, own_requeue: bool, ttr: float
) -> None:
    gate = Gate(monkeypatch)
    ended, _ = await _expire_running_again(jobs, topic, gate, own_requeue=own_requeue, ttr=ttr)
    assert [how for _, how in ended] == ["done"]
    history = await jobs.history(topic, "j")
    assert history is not None and history.outcome is Outcome.DONE


async def test_the_cancel_of_the_running_reservation_still_stops_it(
    jobs: AsyncClient, topic: str
) -> None:
    ended: list[str] = []
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    async with serving(Worker(jobs, {topic: handler}, handle_signals=False)):
        await jobs.put(topic, "j", b"", ttr=60)
        await asyncio.wait_for(started.wait(), 5)
        assert await jobs.expire(topic, "j")
        await wait_until(lambda: _done(bool(ended)))
    assert ended[0] == "cancelled"


# -- the hub ----------------------------------------------------------------------------------


async def test_the_hub_parses_token_and_id_and_ignores_the_old_message(
    redis_url: str, topic: str, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeup_module, "REMEMBERED_CANCELS", 3)
    hub = Wakeups(redis.asyncio.Redis.from_url(redis_url))
    heard: list[tuple[str, str]] = []
    hub.on_abort(topic, lambda job_id, token: heard.append((job_id, token)))
    await hub.watch(topic)
    channel = TopicKeys("redisched", topic).wake_channel
    try:
        generation = hub.generation(topic)
        for message in (b"c12:a:1:2", b"x7", b"c3:", b"c4:\xff:", b"c:nope", b"c5", b"c6:b"):
            raw_redis.publish(channel, message)
        await wait_until(lambda: _done(len(heard) == 4))
        assert heard == [("a:1:2", "12"), ("", "3"), ("\udcff:", "4"), ("b", "6")]
        assert hub.generation(topic) == generation  # neither a cancel nor x<id> wakes anyone
        assert hub.cancelled(topic, "b", "6") and not hub.cancelled(topic, "b", "5")
        assert not hub.cancelled(topic, "a:1:2", "12")  # the oldest of more than 3: forgotten
        assert hub.cancelled(topic, "", "3") and not hub.cancelled(f"{topic}x", "b", "6")
        raw_redis.publish(channel, b"0")
        await wait_until(lambda: _done(hub.generation(topic) != generation))
    finally:
        await hub.close()


# -- the push dispatcher ----------------------------------------------------------------------


async def test_the_dispatcher_never_sends_a_job_deleted_before_its_lease_is_read(
    held: Held,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs, topic, hook = held.client, held.topic, held.receiver
    await jobs.put(topic, "first", b"{}")  # the dispatcher's first lease is read
    await until(lambda: asyncio.sleep(0, hook.successes["first"] == 1), timeout=3.0)
    deleted = delete_before_the_reply_is_read(monkeypatch, jobs, topic, "doomed")
    await jobs.put(topic, "doomed", b"{}")
    await until(lambda: asyncio.sleep(0, bool(deleted)), timeout=5.0)
    await jobs.put(topic, "next", b"{}")
    await until(lambda: asyncio.sleep(0, hook.successes["next"] == 1), timeout=3.0)
    assert hook.of("doomed") == []
    assert await jobs.get(topic, "doomed") is None


def holding_any_attempt(closed: dict[str, float]) -> Callable[[Receiver, Call], Any]:
    """Hold every request of ids starting with ``keep`` for 1.5 s, noting a closed one."""

    async def behaviour(r: Receiver, call: Call) -> web.StreamResponse:
        if call.payload["id"].startswith("keep"):
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                transport = call.request.transport
                if transport is None or transport.is_closing():
                    closed[call.payload["id"]] = time.monotonic()
                    break
                await asyncio.sleep(0.005)
        return web.Response(status=200)

    return behaviour


async def test_the_dispatcher_keeps_a_delivery_an_older_cancel_names(
    client: AsyncClient,  # noqa: F811
    topic: str,
    receiver: Receiver,  # noqa: F811
    dispatchers: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = Gate(monkeypatch)
    closed: dict[str, float] = {}
    receiver.behaviour = holding_any_attempt(closed)
    await configure(client, topic, receiver, webhook={"timeout": 6.0})
    await client.put(topic, "keep", b"{}")
    other = await client.reserve(topic)  # another consumer takes it first (T1)
    assert other is not None
    dispatcher = await dispatchers(concurrency=1)
    subscribed = dispatcher.wakeups._channels.values()
    await until(lambda: asyncio.sleep(0, topic in subscribed), timeout=5.0)
    assert await client.expire(topic, "keep")  # cancel(T1): read only once T2 is in flight
    await until(lambda: asyncio.sleep(0, bool(receiver.of("keep"))), timeout=5.0)
    assert gate.held
    gate.open()
    await until(lambda: asyncio.sleep(0, receiver.successes["keep"] == 1), timeout=5.0)
    assert "keep" not in closed
    history = await client.history(topic, "keep")
    assert history is not None and history.outcome is Outcome.DONE
