"""The push dispatcher stops a delivery whose job was aborted, deleted or replaced meanwhile
(docs/design.md sections 7 and 13): a real Redis and a real loopback receiver that holds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from redisched import AsyncClient
from redisched.history import cancel_sent
from redisched.models import EventKind, Outcome
from redisched.push.dispatch_metrics import Outcome as Delivered
from redisched.push.dispatcher import Dispatcher
from tests.test_dispatcher import (  # noqa: F401  (prefix, client, receiver, dispatchers)
    Call,
    Receiver,
    Recorded,
    client,
    configure,
    dispatchers,
    prefix,
    receiver,
    until,
)  # fmt: skip

HOLD = 4.0  # seconds the receiver keeps a held request open, unless its connection closes
TIMEOUT = 6.0  # the webhook timeout: far beyond what a cancellation may take


def holding(closed: dict[str, float]) -> Any:
    """A behaviour that holds the first attempt of version 1 of ids starting with ``held`` for
    :data:`HOLD` s and notes when the dispatcher closed their connection."""

    async def behaviour(r: Receiver, call: Call) -> web.StreamResponse:
        payload = call.payload
        if payload["id"].startswith("held") and (payload["version"], payload["attempt"]) == (1, 1):
            deadline = time.monotonic() + HOLD
            while time.monotonic() < deadline:
                transport = call.request.transport
                if transport is None or transport.is_closing():
                    closed[payload["id"]] = time.monotonic()
                    break
                await asyncio.sleep(0.005)
        return web.Response(status=200)

    return behaviour


async def _in_flight(hook: Receiver, job_id: str) -> float:
    """Wait until the receiver holds ``job_id``'s request; when it came (monotonic)."""
    await until(lambda: asyncio.sleep(0, bool(hook.of(job_id))))
    return hook.of(job_id)[0].at


@dataclass
class Held:
    """A started dispatcher with one place, its receiver holding requests of ids held*."""

    client: AsyncClient
    topic: str
    receiver: Receiver
    dispatcher: Dispatcher
    closed: dict[str, float]  # job id -> when the receiver saw its request's connection close
    metrics: Recorded


@pytest.fixture
async def held(client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any) -> Held:  # noqa: F811
    closed: dict[str, float] = {}
    receiver.behaviour = holding(closed)
    await configure(client, topic, receiver, webhook={"timeout": TIMEOUT})
    metrics = Recorded()
    dispatcher = await dispatchers(metrics=metrics, concurrency=1)
    return Held(client, topic, receiver, dispatcher, closed, metrics)


async def _freed(h: Held) -> bool:
    """Whether the topic's place no longer holds a request (its place under the limits)."""
    return not h.dispatcher._runners[h.topic].running


async def test_an_aborted_job_s_request_is_closed_at_once(held: Held) -> None:
    jobs, topic, hook = held.client, held.topic, held.receiver
    await jobs.put(topic, "held-a", b"{}")
    await _in_flight(hook, "held-a")
    aborted_at = time.monotonic()
    assert await jobs.abort(topic, "held-a", reason="wrong customer") is True
    await until(lambda: _freed(held), timeout=1.0)
    await until(lambda: asyncio.sleep(0, "held-a" in held.closed), timeout=1.0)
    assert held.closed["held-a"] - aborted_at < 0.5  # not after HOLD or TIMEOUT
    history = await jobs.history(topic, "held-a")
    assert history is not None and history.outcome is Outcome.ABORTED
    assert [e.kind for e in history.events] == [
        EventKind.PUT, EventKind.RESERVED, EventKind.ABORTED
    ]  # fmt: skip
    assert cancel_sent(history.events[-1])
    await until(lambda: asyncio.sleep(0, bool(held.metrics.outcomes)), timeout=1.0)
    assert held.metrics.outcomes == [(topic, Delivered.CANCELLED)]
    # the one place goes on with the next job: the cancellation was taken back
    await jobs.put(topic, "next", b"{}")
    await until(lambda: asyncio.sleep(0, hook.successes["next"] == 1), timeout=2.0)


async def test_a_deleted_job_s_request_is_closed_at_once(held: Held) -> None:
    jobs, topic = held.client, held.topic
    await jobs.put(topic, "held-d", b"{}")
    await _in_flight(held.receiver, "held-d")
    deleted_at = time.monotonic()
    assert await jobs.delete(topic, "held-d") is True
    await until(lambda: _freed(held), timeout=1.0)
    await until(lambda: asyncio.sleep(0, "held-d" in held.closed), timeout=1.0)
    assert held.closed["held-d"] - deleted_at < 0.5
    history = await jobs.history(topic, "held-d")
    assert history is not None and history.outcome is Outcome.CANCELLED
    assert history.events[-1].kind is EventKind.DELETED and cancel_sent(history.events[-1])
    assert await jobs.get(topic, "held-d") is None
    await until(lambda: asyncio.sleep(0, bool(held.metrics.outcomes)), timeout=1.0)
    assert held.metrics.outcomes == [(topic, Delivered.CANCELLED)]


async def test_an_expired_or_bulk_deleted_job_s_request_is_closed_at_once(held: Held) -> None:
    jobs, topic, hook = held.client, held.topic, held.receiver
    await jobs.put(topic, "held-e", b"{}")
    await _in_flight(hook, "held-e")
    expired_at = time.monotonic()
    assert await jobs.expire(topic, "held-e") is True  # an operator's expire: requeued
    # the receiver answers the closed request too: two answers, the second one heard
    await until(lambda: asyncio.sleep(0, hook.successes["held-e"] == 2), timeout=1.5)
    assert held.closed["held-e"] - expired_at < 0.5
    assert [c.payload["attempt"] for c in hook.of("held-e")] == [1, 2]
    await jobs.put(topic, "held-m", b"{}")
    await _in_flight(hook, "held-m")
    deleted_at = time.monotonic()
    assert await jobs.delete_many(topic, ["held-m", "absent"]) == 1
    await until(lambda: asyncio.sleep(0, "held-m" in held.closed), timeout=1.0)
    assert held.closed["held-m"] - deleted_at < 0.5
    await until(lambda: asyncio.sleep(0, len(held.metrics.outcomes) == 3), timeout=1.0)
    assert [o for _, o in held.metrics.outcomes] == [
        Delivered.CANCELLED, Delivered.ACKED, Delivered.CANCELLED
    ]  # fmt: skip


async def test_a_replaced_job_s_request_is_closed_and_the_new_version_delivered(
    held: Held,
) -> None:
    jobs, topic, hook = held.client, held.topic, held.receiver
    await jobs.put(topic, "held-r", b'{"v": 1}')
    await _in_flight(hook, "held-r")
    replaced_at = time.monotonic()
    await jobs.put(topic, "held-r", b'{"v": 2}', replace=True)
    await until(lambda: asyncio.sleep(0, len(hook.of("held-r")) == 2), timeout=1.5)
    assert time.monotonic() - replaced_at < 1.0  # the new version did not wait for HOLD
    assert "held-r" in held.closed and held.closed["held-r"] - replaced_at < 0.5
    calls = hook.of("held-r")
    assert [(c.payload["version"], c.payload["body"]) for c in calls] == [
        (1, {"v": 1}), (2, {"v": 2})
    ]  # fmt: skip
    assert calls[1].payload["attempt"] == 1  # a fresh version: its own first attempt
    await until(lambda: asyncio.sleep(0, len(held.metrics.outcomes) == 2), timeout=1.0)
    assert [o for _, o in held.metrics.outcomes] == [Delivered.CANCELLED, Delivered.ACKED]
    history = await jobs.history(topic, "held-r")
    assert history is not None and history.outcome is Outcome.DONE
    kinds = [e.kind for e in history.events]
    assert EventKind.REPLACED in kinds and kinds[-1] is EventKind.ACKED


async def test_a_job_deleted_while_leased_ahead_is_never_posted(held: Held) -> None:
    jobs, topic, hook = held.client, held.topic, held.receiver
    await jobs.put_many(topic, [(f"warm{i}", b"{}") for i in range(60)])
    await until(lambda: asyncio.sleep(0, sum(hook.successes.values()) == 60))
    # one place: held-1 goes out, the two others wait leased ahead behind it
    await jobs.put_many(topic, [("held-1", b"{}"), ("wait-2", b"{}"), ("wait-3", b"{}")])
    await _in_flight(hook, "held-1")
    waiting = held.dispatcher._runners[topic].waiting
    await until(lambda: asyncio.sleep(0, len(waiting) == 2))
    assert await jobs.delete(topic, "wait-2") is True
    assert await jobs.abort(topic, "held-1") is True
    await until(lambda: asyncio.sleep(0, hook.successes["wait-3"] == 1), timeout=2.0)
    assert hook.of("wait-2") == []
    assert await jobs.get(topic, "wait-2") is None
    history = await jobs.history(topic, "wait-2")
    assert history is not None and history.outcome is Outcome.CANCELLED
    assert "held-1" in held.closed
