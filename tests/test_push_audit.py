"""Push defects found by an audit, against a real Redis and a real loopback receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web

from redisched import AsyncClient
from tests.test_dispatcher import (
    Call,
    Receiver,
    client,
    configure,
    dispatchers,
    drained,
    prefix,
    receiver,
    until,
)

__all__ = ["client", "dispatchers", "prefix", "receiver"]  # fixtures

_PAST = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, "0"), (503, _PAST)], ids=["zero", "past-date"]
)
async def test_retry_after_now_does_not_resend_in_a_tight_loop(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any, status: int,
    retry_after: str,
) -> None:  # fmt: skip
    """``Retry-After: 0`` (or a past date) had the job resent at once, for ever: 1,175 POSTs
    in 2 s, no attempt spent. It now waits at least a second (backoff_max allowing)."""

    async def always_busy(r: Receiver, call: Call) -> web.StreamResponse:
        return web.Response(status=status, headers={"Retry-After": retry_after})

    receiver.behaviour = always_busy
    await configure(client, topic, receiver, backoff=0.01)
    await dispatchers()
    await client.put(topic, "j", b"{}")
    await asyncio.sleep(1.5)
    sent = receiver.of("j")
    assert 1 <= len(sent) <= 2, len(sent)
    if len(sent) == 2:
        assert sent[1].at - sent[0].at >= 0.95


async def test_retry_after_now_waits_no_longer_than_backoff_max(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    """The floor does not override the topic's documented cap, backoff_max; a throttle that
    resends under the floor spends its attempt (the second delivery is attempt 2)."""

    async def busy_once(r: Receiver, call: Call) -> web.StreamResponse:
        if len(r.of(call.payload["id"])) == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        return web.Response(status=204)

    receiver.behaviour = busy_once
    await configure(client, topic, receiver, backoff=0.01, backoff_max=0.3)
    await dispatchers()
    await client.put(topic, "j", b"{}")
    await until(lambda: drained(client, topic))
    first, second = receiver.of("j")
    assert 0.25 <= second.at - first.at < 0.9
    assert (first.payload["attempt"], second.payload["attempt"]) == (1, 2)


async def test_a_receiver_cannot_keep_a_job_cycling_under_the_floor_for_ever(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    """A topic whose backoff_max is under a second resent an always-throttled job that often
    for ever, its attempts refunded each time. Each such resend now spends an attempt, so the
    job goes dead after max_attempts, with the answer as its last error."""

    async def always_busy(r: Receiver, call: Call) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "0"})

    receiver.behaviour = always_busy
    await configure(client, topic, receiver, backoff=0.01, backoff_max=0.1)
    await dispatchers()
    await client.put(topic, "j", b"{}", max_attempts=3)
    await until(lambda: drained(client, topic))
    assert [call.payload["attempt"] for call in receiver.of("j")] == [1, 2, 3]
    job = await client.get(topic, "j")
    assert job is not None and job.state.value == "dead"
    assert job.last_error is not None and "429" in job.last_error
