"""Members of the topics set that are no valid name: skipped and reported, never fatal.

A bad name can only get into the set from outside redisched (``redis-cli SADD``, a foreign
client). Each test uses its own key prefix, so the session's topics set stays clean.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis

import redisched
from redisched.config import Settings
from redisched.dashboard import ENDPOINTS, ROUTES
from redisched.errors import InvalidArgument
from redisched.http import create_app
from redisched.keys import split_topic_names, topic_problem, validate_topic
from tests.http_fixtures import asgi_client

BAD_NAMES = [b"\xff\xfe-not-utf8", b"ctl\x01name", b"nl\nname", b"a{b}", b"", b"x" * 201]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ok", None),
        ("é" * 200, None),
        ("", "1 to 200"),
        ("a" * 201, "1 to 200"),
        ("a{b", "'{'"),
        ("t\x00", "control"),
        ("t\x7f", "control"),
        ("t\ud800", "surrogates"),
    ],
)
def test_topic_problem(name: str, problem: str | None) -> None:
    found = topic_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)
    if problem is not None:
        with pytest.raises(InvalidArgument) as caught:
            validate_topic(name)
        assert caught.value.argument == "topic"


def test_split_topic_names_sorts_valid_and_invalid() -> None:
    names = split_topic_names([b"b", b"a", *BAD_NAMES])
    assert names.valid == ["a", "b"]
    assert names.invalid == sorted(BAD_NAMES)


@pytest.fixture
def prefix(raw_redis: redis.Redis) -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def web(redis_url: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(redis_url=redis_url, prefix=prefix, requeue_interval=0.05)
    app = create_app(settings, extra_routes=ROUTES, extra_endpoints=ENDPOINTS)
    async with asgi_client(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def test_bad_names_do_not_stop_the_sweep_or_any_reader(
    web: httpx.AsyncClient, raw_redis: redis.Redis, redis_url: str, prefix: str
) -> None:
    async with redisched.AsyncClient.from_url(redis_url, prefix=prefix) as py:
        # sorted after every bad name, so a sweep that stops at one never reaches it
        topic = "\U0010ffff-last"
        await py.put(topic, "j", b"1", ttr=0.05)
        raw_redis.sadd(f"{prefix}:topics", *BAD_NAMES)
        reserved = await py.reserve(topic)
        assert reserved is not None and reserved.id == "j"
        for _ in range(100):
            await asyncio.sleep(0.05)
            job = await py.get(topic, "j")
            if job is not None and job.state == "ready":
                break
        assert job is not None and job.state == "ready" and job.attempts == 1
        assert await py.topics() == [topic]
    listed = await web.get("/v1/topics")
    assert listed.status_code == 200 and listed.json() == {"topics": [topic]}
    metrics = await web.get("/metrics")
    assert metrics.status_code == 200
    assert f"redisched_invalid_topic_names {float(len(BAD_NAMES))}" in metrics.text
    assert (await web.get("/dashboard/overview")).status_code == 200
    assert (await web.get("/healthz")).status_code == 200


async def test_healthz_answers_503_when_the_requeue_loop_died(web: httpx.AsyncClient) -> None:
    assert (await web.get("/healthz")).status_code == 200
    runtime = web.app.state.runtime  # type: ignore[attr-defined]
    loop = runtime.services[0]
    loop._task.cancel()  # what an escaped exception or a stray cancel leaves behind
    with pytest.raises(asyncio.CancelledError):
        await loop._task
    health = await web.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable" and "requeue" in health.json()["redis"]
