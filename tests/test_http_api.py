"""The REST API in-process (httpx over ASGI) on a real Redis: every route and status code."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest
import redis

import redisched
from redisched.config import Settings
from redisched.http import create_app, schemas
from redisched.http.app import ENDPOINTS
from redisched.json_body import too_deep
from redisched.models import JobState
from tests.http_fixtures import asgi_client

pytestmark = pytest.mark.asyncio


def job_url(topic: str, job_id: str, action: str = "") -> str:
    url = f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(job_id, safe='')}"
    return f"{url}/{action}" if action else url


def topic_url(topic: str, rest: str = "") -> str:
    return f"/v1/topics/{quote(topic, safe='')}{rest}"


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    return error


async def refused_puts(
    http: httpx.AsyncClient, url: str, cases: tuple[tuple[bytes, str], ...]
) -> list[dict[str, Any]]:
    """PUT each raw request of ``cases`` to ``url``: each must be a 400 naming its field; the
    errors, in order."""
    errors = []
    for raw, field in cases:
        reply = await http.put(url, content=raw)
        assert reply.status_code == 400, raw[-40:]
        assert error_of(reply)["field"] == field, raw[-40:]
        errors.append(error_of(reply))
    return errors


JOB_FIELDS = {"topic", "id", "body", "state", "run_at", "priority", "ttr", "attempts",
              "max_attempts", "version", "last_error"}  # fmt: skip


async def test_put_creates_replaces_and_reads_back(http: httpx.AsyncClient, topic: str) -> None:
    url = job_url(topic, "need_some_help_email_42")
    created = await http.put(url, json={"body": {"to": "a@b.c"}, "delay": 3600, "priority": 2})
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    job = created.json()
    assert set(job) == JOB_FIELDS
    assert (job["body"], job["state"], job["priority"], job["version"]) == (
        {"to": "a@b.c"}, "scheduled", 2, 1,
    )  # fmt: skip
    replaced = await http.put(url, json={"body": [1, 2], "ttr": 5, "max_attempts": 3})
    assert replaced.status_code == 200 and replaced.headers["etag"] == '"2"'
    assert replaced.json()["state"] == "ready"
    got = await http.get(url)
    assert got.status_code == 200 and got.headers["etag"] == '"2"'
    assert {k: got.json()[k] for k in ("body", "ttr", "max_attempts", "version")} == {
        "body": [1, 2], "ttr": 5.0, "max_attempts": 3, "version": 2,
    }  # fmt: skip
    assert (await http.get(url, headers={"If-None-Match": '"2"'})).status_code == 304
    # compared weakly, as RFC 9110 says for GET; a bare version as If-Match takes one
    for matching in ('W/"2"', '"1", "2"', "*", "2", "1, 2"):
        unchanged = await http.get(url, headers={"If-None-Match": matching})
        assert unchanged.status_code == 304 and unchanged.headers["cache-control"] == "no-store"
    for other in ('"1"', "1", "02", '"02"'):
        assert (await http.get(url, headers={"If-None-Match": other})).status_code == 200
    # The version is no validator of a job's whole state (a reserve changes the state, not the
    # version): no answer may be kept by a browser's cache, which would revalidate it to a 304.
    reserved = await http.post(topic_url(topic, "/reserve"))
    assert reserved.headers["cache-control"] == "no-store"
    assert got.headers["cache-control"] == "no-store"


async def test_prefer_return_minimal_skips_the_read_back(
    http: httpx.AsyncClient, topic: str
) -> None:
    minimal = {"Prefer": "return=minimal"}
    created = await http.put(job_url(topic, "j"), json={"body": 1}, headers=minimal)
    assert created.status_code == 201 and created.headers["preference-applied"] == "return=minimal"
    assert created.json() == {"topic": topic, "id": "j", "version": 1, "status": "created"}
    replaced = await http.put(job_url(topic, "j"), json={"body": 2}, headers=minimal)
    assert replaced.status_code == 200 and replaced.json()["status"] == "replaced"
    assert replaced.headers["etag"] == '"2"'
    exists = await http.put(
        job_url(topic, "j"), json={"body": 3}, headers={**minimal, "If-None-Match": "*"}
    )
    assert exists.status_code == 412
    url = f"/schedule/{quote(topic, safe='')}"
    scheduled = await http.post(url, json={"id": "s", "contents": 1}, headers=minimal)
    assert scheduled.status_code == 201 and scheduled.json()["version"] == 1
    assert (await http.get(job_url(topic, "j"))).json()["body"] == 2


async def test_run_at_as_rfc3339_or_epoch(http: httpx.AsyncClient, topic: str) -> None:
    a = await http.put(job_url(topic, "a"), json={"body": 1, "run_at": "2999-01-02T03:04:05Z"})
    epoch = datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp() + 0.5
    b = await http.put(job_url(topic, "b"), json={"body": 1, "run_at": epoch})
    assert a.json()["run_at"] == "2999-01-02T03:04:05Z"
    assert b.json()["run_at"].startswith("2999-01-02T03:04:05.5")
    naive = await http.put(job_url(topic, "c"), json={"body": 1, "run_at": "2999-01-02T03:04:05"})
    assert naive.status_code == 400 and error_of(naive)["field"] == "run_at"


async def test_put_preconditions(http: httpx.AsyncClient, topic: str) -> None:
    url = job_url(topic, "j")
    assert (
        await http.put(url, json={"body": 1}, headers={"If-None-Match": "*"})
    ).status_code == 201
    exists = await http.put(url, json={"body": 2}, headers={"If-None-Match": "*"})
    assert exists.status_code == 412 and error_of(exists)["code"] == "exists"
    stale = await http.put(url, json={"body": 2}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412 and error_of(stale)["code"] == "version_conflict"
    assert stale.headers["etag"] == '"1"'
    ok = await http.put(url, json={"body": 3}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    bad = await http.put(url, json={"body": 4}, headers={"If-Match": "soon"})
    assert bad.status_code == 400 and error_of(bad)["field"] == "If-Match"
    # a weak tag never matches an If-Match (RFC 9110 compares strongly), * and lists are not
    # one version, and "02", '"2', '""2""' are no tag this server gave: each a 400, not a match
    for refused, says in (('W/"2"', "weak"), ("*", "one version"), ('"2", "3"', "one version"),
                          ('"02"', "job version"), ("02", "job version"), ('"2', "job version"),
                          ('""2""', "job version"), ("", "job version")):  # fmt: skip
        reply = await http.put(url, json={"body": 5}, headers={"If-Match": refused})
        assert reply.status_code == 400, refused
        assert error_of(reply)["field"] == "If-Match" and says in error_of(reply)["message"]
        assert reply.headers["cache-control"] == "no-store"
    assert (await http.put(url, json={"body": 3}, headers={"If-Match": "2"})).status_code == 200
    missing = await http.put(job_url(topic, "none"), json={"body": 1}, headers={"If-Match": "1"})
    assert missing.status_code == 412
    assert (await http.get(url)).json()["body"] == 3
    gone = await http.get(job_url(topic, "none"))
    assert gone.status_code == 404 and gone.headers["cache-control"] == "no-store"


async def test_versions_past_2_to_the_31_are_matched(
    http: httpx.AsyncClient, topic: str, raw_redis: redis.Redis
) -> None:
    # versions go on from version_floor, which grows about one per job a busy topic ends: an
    # If-Match past 2^31 - 1 was a 400, and such a job could no longer be changed conditionally
    raw_redis.hset(f"redisched:{{{topic}}}:meta", "version_floor", 2**31 + 5)
    url = job_url(topic, "j")
    made = await http.put(url, json={"body": 1})
    assert made.json()["version"] == 2**31 + 6 and made.headers["etag"] == f'"{2**31 + 6}"'
    ok = await http.put(url, json={"body": 2}, headers={"If-Match": f'"{2**31 + 6}"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2**31 + 7
    too_big = await http.delete(url, headers={"If-Match": f'"{2**53}"'})
    assert too_big.status_code == 400 and error_of(too_big)["field"] == "If-Match"
    assert (await http.delete(url, headers={"If-Match": f'"{2**31 + 7}"'})).status_code == 204


async def test_put_on_a_running_job_waits_for_the_attempt(
    http: httpx.AsyncClient, topic: str
) -> None:
    url = job_url(topic, "j")
    await http.put(url, json={"body": "v1"})
    [held] = (await http.post(topic_url(topic, "/reserve"), json={})).json()["jobs"]
    pending = await http.put(url, json={"body": "v2"})
    assert pending.status_code == 202 and pending.headers["etag"] == '"2"'
    # the running job, and the version its replacement waits as (the body showed version 1
    # under ETag "2", with nothing saying that a replacement waits)
    assert pending.json()["state"] == "reserved" and pending.json()["version"] == 1
    assert pending.json()["pending_version"] == 2
    # GET's ETag is the version If-Match compares with: the waiting replacement's (it said
    # "1", and a read-modify-write with it always failed with 412)
    shown = await http.get(url)
    assert shown.headers["etag"] == '"2"' and shown.json()["body"] == "v1"
    again = await http.put(url, json={"body": "v3"}, headers={"If-Match": shown.headers["etag"]})
    assert again.status_code == 202, again.text
    acked = await http.post(job_url(topic, "j", "ack"), json={"token": held["token"]})
    assert acked.status_code == 204
    job = (await http.get(url)).json()
    assert (job["body"], job["version"], job["state"]) == ("v3", 3, "ready")
    assert "pending_version" not in job


async def test_a_burst_beyond_the_pool_waits_for_connections(
    http: httpx.AsyncClient, topic: str
) -> None:
    """redis-py's plain pool refused the 101st call in flight at once: 300 GETs at the same
    time got 200 answers of 503 "Redis is unavailable: Too many connections"."""
    await http.put(job_url(topic, "a"), json={"body": 1})
    answers = await asyncio.gather(*(http.get(job_url(topic, "a")) for _ in range(300)))
    assert sorted({a.status_code for a in answers}) == [200], answers[-1].text


async def test_a_trailing_slash_is_a_json_404(http: httpx.AsyncClient, topic: str) -> None:
    """Starlette answered a bodiless 307 to the path without the slash."""
    await http.put(job_url(topic, "h1"), json={"body": 1})
    for method, path in (("GET", job_url(topic, "h1") + "/"), ("PUT", topic_url(topic, "/jobs/"))):
        answer = await http.request(method, path, json={"body": 2})
        assert answer.status_code == 404 and error_of(answer)["code"] == "not_found", answer.text
    assert (await http.get(job_url(topic, "h1"))).json()["body"] == 1


async def test_delete(http: httpx.AsyncClient, topic: str) -> None:
    url = job_url(topic, "j")
    await http.put(url, json={"body": 1})
    conflict = await http.delete(url, headers={"If-Match": '"9"'})
    assert conflict.status_code == 412
    assert (await http.delete(url, headers={"If-Match": '"1"'})).status_code == 204
    assert (await http.delete(url)).status_code == 404
    missing = await http.get(url)
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"


async def test_ids_and_topics_with_slashes_and_unicode(http: httpx.AsyncClient) -> None:
    topic, job_id = "mail/eu ✉", "https://example.com/a?b=c%20d#e"
    assert (await http.put(job_url(topic, job_id), json={"body": 1})).status_code == 201
    job = (await http.get(job_url(topic, job_id))).json()
    assert (job["topic"], job["id"]) == (topic, job_id)
    assert (await http.get(job_url(topic, "https:"))).status_code == 404


async def test_reserve_and_every_action(http: httpx.AsyncClient, topic: str) -> None:
    for name in ("a", "b", "c", "d"):
        await http.put(job_url(topic, name), json={"body": name})
    got = await http.post(topic_url(topic, "/reserve"), json={"count": 4, "ttr": 30})
    assert got.status_code == 200
    jobs = {job["id"]: job for job in got.json()["jobs"]}
    assert set(jobs) == {"a", "b", "c", "d"}
    assert all(j["state"] == "reserved" and j["token"] and j["ttr"] == 60 for j in jobs.values())
    tokens = {name: jobs[name]["token"] for name in jobs}

    touched = await http.post(job_url(topic, "a", "touch"), json={"token": tokens["a"], "ttr": 90})
    assert touched.status_code == 200 and "reserved_until" in touched.json()
    assert (
        await http.post(job_url(topic, "a", "ack"), json={"token": tokens["a"]})
    ).status_code == 204
    stale = await http.post(job_url(topic, "a", "ack"), json={"token": tokens["a"]})
    assert stale.status_code == 409
    assert error_of(stale) == {
        "code": "stale_token", "field": "token", "message": stale.json()["error"]["message"]
    }  # fmt: skip
    assert "no longer reserved" in error_of(stale)["message"]

    released = await http.post(
        job_url(topic, "b", "release"), json={"token": tokens["b"], "delay": 60, "reason": "busy"}
    )
    assert released.status_code == 200 and released.json() == {"state": "scheduled"}
    assert (await http.get(job_url(topic, "b"))).json()["last_error"] == "busy"

    buried = await http.post(
        job_url(topic, "c", "bury"), json={"token": tokens["c"], "reason": "x"}
    )
    assert buried.status_code == 204
    assert (await http.get(job_url(topic, "c"))).json()["state"] == "dead"
    kicked = await http.post(job_url(topic, "c", "kick"))
    assert kicked.status_code == 200 and kicked.json() == {"kicked": 1}
    not_dead = await http.post(job_url(topic, "c", "kick"), json={})
    assert not_dead.status_code == 409 and error_of(not_dead)["code"] == "not_dead"
    absent = await http.post(job_url(topic, "zz", "kick"))
    assert absent.status_code == 404

    for action in ("ack", "release", "touch", "bury"):
        wrong = await http.post(job_url(topic, "d", action), json={"token": "not-it"})
        assert wrong.status_code == 409, action
    assert (await http.get(job_url(topic, "d"))).json()["state"] == "reserved"


async def test_reserve_returns_204_when_nothing_is_due(http: httpx.AsyncClient, topic: str) -> None:
    await http.put(job_url(topic, "later"), json={"body": 1, "delay": 3600})
    assert (await http.post(topic_url(topic, "/reserve"))).status_code == 204
    started = asyncio.get_running_loop().time()
    waited = await http.post(topic_url(topic, "/reserve"), json={"wait": 0.3})
    elapsed = asyncio.get_running_loop().time() - started
    assert waited.status_code == 204 and 0.25 <= elapsed < 3


async def test_long_poll_wakes_on_put(http: httpx.AsyncClient, topic: str) -> None:
    loop = asyncio.get_running_loop()
    waiter = asyncio.create_task(http.post(topic_url(topic, "/reserve"), json={"wait": 20}))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    put_at = loop.time()
    await http.put(job_url(topic, "j"), json={"body": "now"})
    response = await waiter
    assert loop.time() - put_at < 1.0
    assert response.status_code == 200 and response.json()["jobs"][0]["body"] == "now"


async def test_a_put_wakes_its_topics_long_polls_without_a_lease_each(
    http: httpx.AsyncClient, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every waiter of a topic made a lease call for each put (250 waiters: 250 calls for one
    job, and 503s once the connections ran out); they now take turns, and a lease that found
    the topic drained spares the others theirs."""
    from redisched.leasing import Lessee

    exchanges = 0
    exchange = Lessee.exchange

    async def counted(self: Lessee, want: int) -> Any:
        nonlocal exchanges
        exchanges += 1
        return await exchange(self, want)

    monkeypatch.setattr(Lessee, "exchange", counted)
    waiters = [
        asyncio.create_task(http.post(topic_url(topic, "/reserve"), json={"wait": 3}))
        for _ in range(40)
    ]
    while exchanges < 40:  # each has made its first lease, and waits
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    first = exchanges
    for i in range(5):
        await http.put(job_url(topic, f"j{i}"), json={"body": i})
        await asyncio.sleep(0.1)
    answers = await asyncio.gather(*waiters)
    got = [a.json()["jobs"][0]["id"] for a in answers if a.status_code == 200]
    assert sorted(got) == [f"j{i}" for i in range(5)]  # each job once
    assert sorted({a.status_code for a in answers}) == [200, 204]
    assert exchanges - first <= 20, exchanges - first  # was 5 x 40


async def test_long_poll_wakes_when_a_scheduled_job_falls_due(
    http: httpx.AsyncClient, topic: str
) -> None:
    await http.put(job_url(topic, "j"), json={"body": 1, "delay": 0.3})
    response = await http.post(topic_url(topic, "/reserve"), json={"wait": 20})
    assert response.status_code == 200 and response.json()["jobs"][0]["id"] == "j"


async def test_a_lease_for_a_vanished_consumer_is_released(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    from redisched.http import longpoll

    await http.put(job_url(topic, "j"), json={"body": 1})
    rt = http._transport.app.state.runtime  # type: ignore[attr-defined]

    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    assert await longpoll.reserve(rt, gone, topic, 1, None, 5.0) == []
    job = await py.get(topic, "j")
    assert job is not None and job.state == "ready"
    assert (job.attempts, job.last_error) == (0, None)  # never delivered: the attempt is given back


async def test_a_job_leased_at_once_for_a_vanished_consumer_is_released(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """The same once the topic's limits are known (no limits: the lease is one call)."""
    from redisched.http import longpoll

    await http.put(job_url(topic, "first"), json={"body": 1})
    assert (await http.post(topic_url(topic, "/reserve"))).status_code == 200
    await http.put(job_url(topic, "j"), json={"body": 1})
    rt = http._transport.app.state.runtime  # type: ignore[attr-defined]
    assert rt.limits.get(topic) is not None  # the reserve above read them

    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    assert await longpoll.reserve(rt, gone, topic, 1, None, 5.0) == []
    job = await py.get(topic, "j")
    assert job is not None and (job.state, job.attempts, job.last_error) == ("ready", 0, None)


async def test_topics_stats_config_and_pause(http: httpx.AsyncClient, topic: str) -> None:
    await http.put(job_url(topic, "j"), json={"body": 1})
    assert topic in (await http.get("/v1/topics")).json()["topics"]
    info = (await http.get(topic_url(topic))).json()
    assert info["counts"] == {"scheduled": 0, "ready": 1, "reserved": 0, "dead": 0}
    assert info["totals"]["put"] == 1 and info["paused"] is False
    patch = {
        "ttr": 12, "max_attempts": 4, "backoff": 1.5, "backoff_max": 60, "concurrency": 3,
        "rate": 2.5, "paused": True, "durable": True,
        "keep_finished": 50, "dedup_window": 3600,
        "webhook": {"url": "https://93.184.215.14/x", "secrets": ["s" * 16], "timeout": 3},
    }  # fmt: skip
    changed = await http.patch(topic_url(topic), json=patch)
    assert changed.status_code == 200
    body = changed.json()
    assert body["paused"] is True
    assert body["config"] == {
        "ttr": 12.0, "max_attempts": 4, "backoff": 1.5, "backoff_max": 60.0, "concurrency": 3,
        "rate": 2.5, "durable": True,
        "webhook": {"url": "https://93.184.215.14/x", "timeout": 3.0, "secret_count": 1},
        "history": True, "keep_finished": 50, "keep_finished_for": None, "dedup_window": 3600.0,
        "keep_dead": None, "keep_dead_for": None, "keep_events": None, "partitions": None,
    }  # fmt: skip
    assert (await http.post(topic_url(topic, "/reserve"))).status_code == 204
    restored = await http.patch(
        topic_url(topic), json={"webhook": None, "ttr": None, "paused": False, "durable": None}
    )
    assert restored.json()["config"]["webhook"] is None
    assert restored.json()["config"]["ttr"] is None and restored.json()["paused"] is False
    assert restored.json()["config"]["durable"] is False
    assert (await http.post(topic_url(topic, "/reserve"))).status_code == 200


async def test_private_webhook_targets_are_refused_unless_allowed(
    redis_url: str, topic: str
) -> None:
    for allowed in (False, True):
        app = create_app(Settings(redis_url=redis_url, allow_private_webhooks=allowed))
        async with asgi_client(app) as http:
            for url in ("http://127.0.0.1:9/hook", "http://10.0.0.8/x", "http://[::1]/x"):
                patch = {"webhook": {"url": url}}
                response = await http.patch(topic_url(topic), json=patch)
                if allowed:
                    assert response.status_code == 200
                else:
                    assert response.status_code == 400
                    assert error_of(response)["field"] == "webhook.url"
            metadata = {"webhook": {"url": "http://169.254.169.254/latest"}}
            assert (await http.patch(topic_url(topic), json=metadata)).status_code == 400


BAD_WEBHOOK_URLS = (
    "http://[::1/hook",  # unclosed IPv6 host: was a 500
    "http://[::1]x/hook",  # the HTTP client refuses it: every delivery failed
    "http://127.0.0.1:99999/hook",  # was stored, and every delivery failed
    "http://127.0.0.1:abc/hook",
    "http://127.0.0.1:0/hook",
    "http://127.0.0.1:9/ok\nX-Injected: 1",  # the HTTP client drops the newline: /okX-...
    "http://127.0.0.1:9/a b",
)


async def test_a_webhook_url_no_request_could_reach_is_refused_and_changes_nothing(
    redis_url: str, topic: str
) -> None:
    app = create_app(Settings(redis_url=redis_url, allow_private_webhooks=True))
    good = {"url": "http://127.0.0.1:9/hook", "timeout": 10.0, "secret_count": 0}
    async with asgi_client(app) as http:
        hook = {"url": good["url"]}
        assert (await http.patch(topic_url(topic), json={"webhook": hook})).status_code == 200
        for url in BAD_WEBHOOK_URLS:
            response = await http.patch(topic_url(topic), json={"webhook": {"url": url}})
            assert response.status_code == 400, url
            assert error_of(response)["field"] == "webhook.url", url
        stored = (await http.get(topic_url(topic))).json()["config"]["webhook"]
        assert stored == good
    client = redisched.AsyncClient.from_url(redis_url)
    try:
        for url in BAD_WEBHOOK_URLS[:1] + BAD_WEBHOOK_URLS[2:]:  # without aiohttp's parser
            with pytest.raises(redisched.InvalidArgument, match=r"webhook\.url"):
                await client.configure(topic, webhook={"url": url})
    finally:
        await client.close()


async def test_job_listing_is_paged(http: httpx.AsyncClient, topic: str) -> None:
    for i in range(5):
        await http.put(job_url(topic, f"j{i}"), json={"body": i, "delay": 100 + i})
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"state": "scheduled", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await http.get(topic_url(topic, "/jobs"), params=params)).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == [f"j{i}" for i in range(5)]
    bad_params: list[dict[str, str]] = [
        {}, {"state": "gone"}, {"state": "ready", "limit": "0"}, {"state": "ready", "limit": "x"},
        {"state": "ready", "cursor": "abc"},
    ]  # fmt: skip
    for params in bad_params:
        bad = await http.get(topic_url(topic, "/jobs"), params=params)
        assert bad.status_code == 400, params
        assert error_of(bad)["field"] in ("state", "limit", "cursor")


async def test_seed_routes(http: httpx.AsyncClient, topic: str) -> None:
    url = f"/schedule/{quote(topic, safe='')}"
    created = await http.post(url, json={"id": "e42", "contents": "hello", "delay": 60})
    assert created.status_code == 201 and created.json()["state"] == "scheduled"
    again = await http.post(url, json={"id": "e42", "contents": {"new": 1}, "delay": 30})
    assert again.status_code == 200 and again.json()["body"] == {"new": 1}
    cancel = f"/cancel/{quote(topic, safe='')}"
    assert (await http.post(cancel, json={"id": "e42"})).json() == {"id": "e42", "cancelled": True}
    assert (await http.post(cancel, json={"id": "e42"})).status_code == 404


DEEP_JSON = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (b"\xff\x00binary", {"$base64": "/wBiaW5hcnk="}),
        (b'{"$base64": "AAAA"}', {"$base64": "eyIkYmFzZTY0IjogIkFBQUEifQ=="}),
        (b"[1, 2,  3]", [1, 2, 3]),
        (b'"x"', "x"),
        (b"", ""),
        (b"plain text \xc3\xbc", "plain text \u00fc"),
        (b"{not json", "{not json"),
        (DEEP_JSON, DEEP_JSON.decode()),
        (b"[" * 5000, "[" * 5000),
    ],
    ids=["binary", "marker-json", "spaced-json", "json-string", "empty", "text", "broken-json",
         "deep-json", "deep-unclosed"],
)  # fmt: skip
async def test_python_bytes_read_back_over_http_by_the_body_rule(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str, stored: bytes, shown: Any
) -> None:
    await py.put(topic, "j", stored)
    got = await http.get(job_url(topic, "j"))
    assert got.status_code == 200 and got.json()["body"] == shown
    listed = await http.get(topic_url(topic, "/jobs"), params={"state": "ready"})
    assert listed.status_code == 200 and listed.json()["jobs"][0]["body"] == shown
    reserved = await http.post(topic_url(topic, "/reserve"))
    assert reserved.status_code == 200 and reserved.json()["jobs"][0]["body"] == shown
    # JSON and $base64 read back are written back as the same bytes (or the same JSON);
    # text read back as a string is written back as that JSON string (documented).
    await http.put(job_url(topic, "k"), json={"body": shown})
    again = await py.get(topic, "k")
    assert again is not None
    if isinstance(shown, dict):
        assert again.body == stored
    elif isinstance(shown, str) and stored[:1] != b'"':
        assert again.body == msgspec.json.encode(stored.decode())
    else:
        assert msgspec.json.decode(again.body) == msgspec.json.decode(stored)


async def test_deep_json_put_over_http_is_refused_naming_the_body(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    for depth in (513, 1000, 5000, 100_000):
        nested = b"[" * depth + b"]" * depth
        reply = await http.put(job_url(topic, "deep"), content=b'{"body": ' + nested + b"}")
        assert reply.status_code == 400, depth
        assert error_of(reply)["field"] == "body" and error_of(reply)["code"] == "too_deep"
    ok = b"[" * 512 + b"]" * 512
    assert (
        await http.put(job_url(topic, "ok"), content=b'{"body": ' + ok + b"}")
    ).status_code == 201
    assert await py.get(topic, "deep") is None


async def test_an_unterminated_string_of_escaped_quotes_is_read_in_one_pass(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """The depth check's string pattern failed on an unterminated string and was tried again
    from each quote inside it: a 64 KB body of escaped quotes held the event loop 12 s, and
    one stored through ``$base64`` did so again on every read of the job. Both are read in
    one pass now; a megabyte of them would take the old pattern about an hour."""
    body = b"[" * 513 + b'"' + b'\\"' * 500_000  # 1 MB
    started = time.perf_counter()
    assert too_deep(b'{"body":' + body)
    reply = await http.put(job_url(topic, "q"), content=b'{"body":' + body + b"}")
    assert reply.status_code == 400 and error_of(reply)["field"] == "body"
    stored = {"body": {"$base64": base64.b64encode(body).decode()}, "delay": 3600}
    assert (await http.put(job_url(topic, "b64"), json=stored)).status_code == 201
    shown = (await http.get(job_url(topic, "b64"))).json()["body"]
    assert shown == body.decode()  # UTF-8 text that is no JSON reads back as a string
    assert time.perf_counter() - started < 30  # a guard against the quadratic scan, not a bench
    assert await py.get(topic, "q") is None
    # strings still hide their brackets; a terminated one ends where it should
    assert not too_deep(b"[" * 512 + b'"[[[\\"]]]' + b"]" * 512)
    assert too_deep(b"[" * 512 + b'"x\\\\"[' + b"]" * 513)


async def test_a_write_refuses_a_precondition_it_does_not_honour(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A DELETE with If-None-Match deleted the job, a reschedule with a stale If-Match was
    applied, and of two If-Match headers the first was used: each is a 400 naming the header
    now, and the job is untouched."""
    await http.put(job_url(topic, "e"), json={"body": 1, "delay": 60})
    await http.put(job_url(topic, "e"), json={"body": 2, "delay": 60})  # version 2
    cases = [
        ("DELETE", job_url(topic, "e"), {"If-None-Match": "*"}, None, "If-None-Match"),
        ("POST", job_url(topic, "e", "reschedule"), {"If-Match": '"1"'}, {"delay": 5},
         "If-Match"),
        ("POST", job_url(topic, "e", "run-now"), {"If-Match": '"1"'}, None, "If-Match"),
    ]  # fmt: skip
    for method, url, headers, body, field in cases:
        reply = await http.request(method, url, headers=headers, json=body)
        assert reply.status_code == 400, (method, url, reply.text)
        assert error_of(reply)["field"] == field
    twice = [("If-Match", '"999"'), ("If-Match", '"2"')]
    reply = await http.request("DELETE", job_url(topic, "e"), headers=twice)
    assert reply.status_code == 400 and error_of(reply)["field"] == "If-Match", reply.text
    job = await py.get(topic, "e")
    assert job is not None and job.version == 2 and job.state == JobState.SCHEDULED
    # honoured where declared: a DELETE with the current version deletes
    assert (await http.delete(job_url(topic, "e"), headers={"If-Match": '"2"'})).status_code == 204


async def test_duplicate_json_keys_are_refused_naming_the_key(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    cases = (
        (b'{"body": 1, "delay": 5, "delay": 0}', "delay"),
        (b'{"body": {"a": 1, "a": 2}}', "body.a"),
        (b'{"body": [{"x": 1}, {"y": 1, "y": 1}]}', "body[1].y"),
        (b'{"body": {"x": [{"a": 1, "a": 2}]}}', "body.x[0].a"),
        (b'{"body": {"x\\"": 1, "x\\"": 2}}', 'body["x\\""]'),
        (b'{"body": {"a.b": {"c": 1, "c": 2}}}', 'body["a.b"].c'),
        (b'{"body": {"a": {"b": 1}, "a[0]": [{"d": 1, "d": 2}]}}', 'body["a[0]"][0].d'),
        (b'{"body": {"": {"e": 1, "e": 2}}}', 'body[""].e'),
    )
    await refused_puts(http, job_url(topic, "dup"), cases)
    assert await py.get(topic, "dup") is None
    assert (await http.put(job_url(topic, "ok"), content=b'{"body": {"a": {"a": 1}}}')).is_success


async def test_a_number_no_float_holds_is_refused_naming_where_it_is(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    # msgspec says only `$[...][...]`: the field was "body[...]"
    cases = (
        (b'{"body": {"n": 1e400}}', "body.n"),
        (b'{"body": [1, {"x": [-1e999]}]}', "body[1].x[0]"),
        (b'{"body": 1, "delay": 1e400}', "delay"),
    )
    await refused_puts(http, job_url(topic, "huge"), cases)
    assert await py.get(topic, "huge") is None
    filler = b'"' + b"x" * 300_000 + b'"'
    await refused_puts(http, job_url(topic, "huge"), ((b'{"body": [' + filler + b", 1e400]}",
                                                       "body"),))  # fmt: skip


async def test_a_large_request_names_its_fault_without_walking_it(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """Past PATH_SEARCH_BYTES the path is not searched (a walk of a few MiB took seconds of
    the event loop): the free field, or the repeated top-level key, is named."""
    filler = b'"' + b"x" * 300_000 + b'"'
    cases = (
        (b'{"body": [' + filler + b', {"a": 1, "a": 2}]}', "body"),
        (b'{"body": [' + filler + b', "\\ud800"]}', "body"),
        (b'{"delay": 1, "body": [' + filler + b'], "delay": 2}', "delay"),
        (b'{"delay": 1, "body": [' + filler + b', {"x": 1, "x": 2}], "delay": 2}', "delay"),
    )
    await refused_puts(http, job_url(topic, "big"), cases)
    assert await py.get(topic, "big") is None
    await py.put(topic, "held", b"1")
    held = await py.reserve(topic)
    assert held is not None and held.token is not None
    token = held.token.encode()
    for result in (b"[" + filler + b', {"x": 1, "x": 2}]', b"[" * 600 + b"]" * 600):
        raw = b'{"token": "' + token + b'", "result": ' + result + b"}"
        reply = await http.post(job_url(topic, "held", "ack"), content=raw)
        assert reply.status_code == 400 and error_of(reply)["field"] == "result"
    assert (await py.get(topic, "held")).state is JobState.RESERVED


async def test_a_lone_surrogate_is_refused_naming_where_it_is(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    cases = (
        (b'{"body": "\\ud800"}', "body"),
        (b'{"body": {"k": ["ok", "a\\udfff"]}}', "body.k[1]"),
        (b'{"body": {"\\ud83d": 1}}', 'body["\\ud83d"]'),
    )
    for error in await refused_puts(http, job_url(topic, "s"), cases):
        assert "no lone surrogates" in error["message"]
    assert await py.get(topic, "s") is None
    pair = await http.put(job_url(topic, "s"), content=b'{"body": "\\ud83d\\ude00"}')
    assert pair.status_code == 201  # a whole pair is one character
    assert (await py.get(topic, "s")).body == '"\U0001f600"'.encode()


async def test_an_error_echoing_a_lone_surrogate_is_still_json() -> None:
    from redisched.http.errors import error_response

    reply = error_response(400, "invalid", "id \ud800 is bad", "body.\udc80")
    assert msgspec.json.decode(reply.body) == {
        "error": {"code": "invalid", "message": "id \\ud800 is bad", "field": "body.\\udc80"}
    }


async def test_http_bodies_are_stored_as_compact_json(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    value = {"a": [1, 2.5, None, True], "b": "ü ✉", "n": 12345678901234567890123}
    await http.put(job_url(topic, "j"), content=msgspec.json.encode({"body": value}))
    job = await py.get(topic, "j")
    assert job is not None and job.body == msgspec.json.encode(value)
    assert (await http.get(job_url(topic, "j"))).json()["body"] == value


async def test_bad_input_gets_a_precise_error_and_changes_nothing(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    url = job_url(topic, "j")
    await http.put(url, json={"body": "keep"})
    [held] = (await http.post(topic_url(topic, "/reserve"))).json()["jobs"]
    before = await py.get(topic, "j")
    cases: list[tuple[str, str, Any, int, str | None]] = [
        ("PUT", url, b"{", 400, None),
        ("PUT", url, b"\xff\xfe", 400, None),
        ("PUT", url, b"", 400, None),
        ("PUT", url, {"body": 1, "colour": "red"}, 400, "colour"),
        ("PUT", url, {"delay": 1}, 400, "body"),
        ("PUT", url, {"body": 1, "delay": -1}, 400, "delay"),
        ("PUT", url, {"body": 1, "delay": "soon"}, 400, "delay"),
        ("PUT", url, {"body": 1, "delay": 1, "run_at": 5}, 400, "delay"),
        ("PUT", url, {"body": 1, "ttr": 0}, 400, "ttr"),
        ("PUT", url, {"body": 1, "priority": 2**40}, 400, "priority"),
        ("PUT", url, {"body": 1, "priority": 1.5}, 400, "priority"),
        ("PUT", url, {"body": 1, "max_attempts": 0}, 400, "max_attempts"),
        ("PUT", url, {"body": 1, "run_at": "yesterday"}, 400, "run_at"),
        ("PUT", url, b'{"body": 1e400}', 400, "body"),
        ("PUT", url, {"body": {"$base64": "***"}}, 400, "body.$base64"),
        ("PUT", url, {"body": {"$base64": 5}}, 400, "body.$base64"),
        ("PUT", job_url(topic, "x" * 1025), {"body": 1}, 400, "id"),
        ("PUT", job_url(topic, "é" * 600), {"body": 1}, 400, "id"),
        ("PUT", job_url("a{b}", "j"), {"body": 1}, 400, "topic"),
        ("PUT", job_url("x" * 201, "j"), {"body": 1}, 400, "topic"),
        ("PUT", "/v1/topics/a/jobs/%FF", {"body": 1}, 400, "id"),
        ("PUT", url, {"body": "x" * (1 << 20)}, 413, "body"),
        ("POST", topic_url(topic, "/reserve"), {"count": 0}, 400, "count"),
        ("POST", topic_url(topic, "/reserve"), {"count": 1001}, 400, "count"),
        ("POST", topic_url(topic, "/reserve"), {"wait": 61}, 400, "wait"),
        ("POST", topic_url(topic, "/reserve"), [], 400, None),
        ("POST", job_url(topic, "j", "ack"), {}, 400, "token"),
        ("POST", job_url(topic, "j", "ack"), {"token": ""}, 400, "token"),
        ("POST", job_url(topic, "j", "ack"), {"token": 5}, 400, "token"),
        ("POST", job_url(topic, "j", "release"), {"token": held["token"], "delay": -5}, 400,
         "delay"),
        ("POST", job_url(topic, "j", "touch"), {"token": held["token"], "ttr": "x"}, 400, "ttr"),
        ("POST", job_url(topic, "j", "bury"), {"token": held["token"], "reason": 5}, 400,
         "reason"),
        ("POST", job_url(topic, "j", "kick"), {"force": True}, 400, "force"),
        ("POST", job_url(topic, "j", "explode"), {}, 404, None),
        ("PATCH", topic_url(topic), {"ttr": -1}, 400, "ttr"),
        ("PATCH", topic_url(topic), {"paused": "yes"}, 400, "paused"),
        ("PATCH", topic_url(topic), {"webhook": {"url": "ftp://x"}}, 400, "webhook.url"),
        ("PATCH", topic_url(topic), {"webhook": {"url": "https://x", "secrets": ["short"]}}, 400,
         "webhook.secrets[0]"),
        ("PATCH", topic_url(topic), {"webhook": {"url": "https://x", "extra": 1}}, 400,
         "webhook.extra"),
        ("PATCH", topic_url(topic), {"rate": 0}, 400, "rate"),
        ("POST", f"/schedule/{quote(topic, safe='')}", {"id": "", "contents": 1}, 400, "id"),
        ("POST", f"/cancel/{quote(topic, safe='')}", {"id": 5}, 400, "id"),
        ("DELETE", url, None, 400, "If-Match"),
        ("GET", "/v1/nothing", None, 404, None),
        ("POST", "/v1/topics", None, 405, None),
    ]  # fmt: skip
    for method, target, payload, status, field in cases:
        kwargs: dict[str, Any] = {}
        if isinstance(payload, bytes):
            kwargs["content"] = payload
        elif payload is not None:
            kwargs["content"] = msgspec.json.encode(payload)
        headers = {"If-Match": "nope"} if method == "DELETE" else {}
        response = await http.request(method, target, headers=headers, **kwargs)
        assert response.status_code == status, (method, target, payload, response.text)
        error = error_of(response)
        assert error["message"]
        if field is not None:
            assert error["field"] == field, (payload, error)
    after = await py.get(topic, "j")
    assert after == before
    config = (await http.get(topic_url(topic))).json()["config"]
    assert config["ttr"] is None and config["webhook"] is None


async def test_oversized_request_is_refused_before_it_is_read(redis_url: str, topic: str) -> None:
    app = create_app(Settings(redis_url=redis_url, max_body_size=2048, max_request_size=4096))
    chunks_read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        for _ in range(100):
            chunks_read += 1
            yield b" " * 1024

    async with asgi_client(app) as http:
        declared = await http.put(
            job_url(topic, "j"), content=b"{}", headers={"Content-Length": "999999"}
        )
        assert declared.status_code == 413 and error_of(declared)["code"] == "payload_too_large"
        chunked = await http.put(job_url(topic, "j"), content=body())
        assert chunked.status_code == 413
        assert chunks_read < 10
        assert (await http.get(job_url(topic, "j"))).status_code == 404


async def test_auth_guards_every_route_but_healthz(redis_url: str, topic: str) -> None:
    tokens = ("s3cret-token-0123", "second-token-0123")
    app = create_app(Settings(redis_url=redis_url, tokens=tokens))
    async with asgi_client(app) as http:
        good = {"Authorization": "Bearer second-token-0123"}
        for endpoint in ENDPOINTS:
            url = endpoint.path.format(topic=quote(topic, safe=""), id="j")
            for headers in ({}, {"Authorization": "Bearer wrong"},
                                {"Authorization": "s3cret-token-0123"},
                                {"Authorization": "Bearer "}):  # fmt: skip
                denied = await http.request(endpoint.method, url, headers=headers)
                if endpoint.path == "/healthz":
                    assert denied.status_code == 200
                else:
                    assert denied.status_code == 401, (endpoint.path, headers)
                    assert error_of(denied)["code"] == "unauthorized"
                    assert denied.headers["www-authenticate"].startswith("Bearer")
            allowed = await http.request(endpoint.method, url, headers=good, json={})
            assert allowed.status_code != 401, endpoint.path
        doc = (await http.get("/openapi.json", headers=good)).json()
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_openapi_is_generated_from_the_request_types(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    _, components = msgspec.json.schema_components(
        [schemas.PutJob, schemas.Reserve, schemas.TopicPatch],
        ref_template="#/components/schemas/{name}",
    )
    for name in ("PutJob", "Reserve", "TopicPatch"):
        assert doc["components"]["schemas"][name] == components[name]
    put = doc["paths"]["/v1/topics/{topic}/jobs/{id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PutJob"
    }
    assert {"201", "200", "202", "412"} <= set(put["responses"])
    assert {e.path for e in ENDPOINTS} == set(doc["paths"])


async def test_healthz_and_metrics(http: httpx.AsyncClient, topic: str) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok", "redis": "ok"}
    await http.put(job_url(topic, "j"), json={"body": 1})
    await http.post(topic_url(topic, "/reserve"))
    text = (await http.get("/metrics")).text
    assert f'redisched_jobs{{state="reserved",topic="{topic}"}} 1.0' in text
    assert f'redisched_puts_total{{topic="{topic}"}} 1.0' in text
    assert f'redisched_reserves_total{{topic="{topic}"}} 1.0' in text
    for name in ("acks", "releases", "dead", "requeues"):
        assert f'redisched_{name}_total{{topic="{topic}"}} 0.0' in text
    await http.delete(job_url(topic, "j"))
    text = (await http.get("/metrics")).text
    assert f'redisched_finished_total{{outcome="cancelled",topic="{topic}"}} 1.0' in text
    assert f'redisched_finished_total{{outcome="done",topic="{topic}"}} 0.0' in text


async def test_requeue_sweep_returns_timed_out_jobs(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await http.put(job_url(topic, "j"), json={"body": 1, "ttr": 0.05})
    assert (await http.post(topic_url(topic, "/reserve"))).status_code == 200
    for _ in range(100):
        await asyncio.sleep(0.05)
        job = await py.get(topic, "j")
        if job is not None and job.state == "ready":
            break
    assert job is not None and job.state == "ready" and job.attempts == 1


async def test_topic_limits_hold_for_http_reserves(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """concurrency=2: a reserve of 5 gets 2; an ack through the API frees one slot at once."""
    await py.configure(topic, concurrency=2)
    for i in range(5):
        await http.put(job_url(topic, f"j{i}"), json={"body": i})
    first = await http.post(topic_url(topic, "/reserve"), json={"count": 5})
    assert first.status_code == 200 and len(first.json()["jobs"]) == 2
    assert (await http.post(topic_url(topic, "/reserve"), json={"count": 5})).status_code == 204
    held = first.json()["jobs"][0]
    acked = await http.post(job_url(topic, held["id"], "ack"), json={"token": held["token"]})
    assert acked.status_code == 204
    again = await http.post(topic_url(topic, "/reserve"), json={"count": 5, "wait": 1})
    assert again.status_code == 200 and len(again.json()["jobs"]) == 1
    assert (await py.stats(topic)).reserved == 2


async def test_limits_set_while_known_to_be_none_hold_for_http_reserves(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A reserve takes one lease call while the topic is known to have no limits; limits set
    over the API hold at once, set by another client within LIMITS_TTL."""
    from redisched.leasing import LIMITS_TTL

    for i in range(6):
        await http.put(job_url(topic, f"j{i}"), json={"body": i})
    assert len((await http.post(topic_url(topic, "/reserve"))).json()["jobs"]) == 1
    patched = await http.patch(topic_url(topic), json={"concurrency": 2})
    assert patched.status_code == 200
    held = await http.post(topic_url(topic, "/reserve"), json={"count": 5})
    assert len(held.json()["jobs"]) == 1  # 2 reserved now: the one above and this one
    assert (await http.post(topic_url(topic, "/reserve"), json={"count": 5})).status_code == 204
    await py.configure(topic, concurrency=None)
    await asyncio.sleep(LIMITS_TTL + 0.2)
    freed = await http.post(topic_url(topic, "/reserve"), json={"count": 5})
    assert len(freed.json()["jobs"]) == 4


async def test_abort_stops_a_job(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await http.put(job_url(topic, "a"), json={"body": 1})
    got = await http.post(topic_url(topic, "/reserve"))
    token = got.json()["jobs"][0]["token"]
    assert (await http.post(job_url(topic, "a", "abort"))).status_code == 204
    assert await py.get(topic, "a") is None
    assert (await http.post(job_url(topic, "a", "ack"), json={"token": token})).status_code == 409
    missing = await http.post(job_url(topic, "a", "abort"), json={})
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    bad = await http.post(job_url(topic, "a", "abort"), json={"nope": 1})
    assert bad.status_code == 400
    shown = (await http.get(topic_url(topic))).json()  # each outcome counted in the topic
    assert shown["finished"] == {"done": 0, "cancelled": 0, "dead": 0, "pulled": 0, "aborted": 1}


async def test_a_reserve_answer_that_fails_to_build_gives_the_jobs_back(
    redis_url: str, py: redisched.AsyncClient, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        await py.put(topic, f"j{n}", b"1", max_attempts=1)

    def broken(job: Any, **_: Any) -> Any:
        raise RuntimeError("the answer could not be built")

    monkeypatch.setattr("redisched.http.bodies.job_out", broken)
    app = create_app(Settings(redis_url=redis_url))
    async with asgi_client(app, raise_app_exceptions=False) as client:
        reply = await client.post(topic_url(topic, "/reserve"), json={"count": 10})
    assert reply.status_code == 500
    for n in range(3):  # back in the queue, attempt given back: not dead after one try
        job = await py.get(topic, f"j{n}")
        assert job is not None and (job.state, job.attempts) == ("ready", 0)


async def test_an_unknown_or_repeated_query_parameter_is_refused_naming_it(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put(topic, "j", b"1")
    listing = topic_url(topic, "/jobs")
    for query, field in (
        ("state=scheduled&bogus=1", "bogus"),  # a misspelt filter must not list everything
        ("state=dead&state=ready", "state"),
        ("sate=ready", "sate"),
    ):
        reply = await http.get(f"{listing}?{query}")
        assert reply.status_code == 400, query
        assert error_of(reply)["field"] == field
    assert "accepted: cursor, limit, prefix, state" in error_of(reply)["message"]
    put = await http.put(f"{job_url(topic, 'j')}?replace=true", json={"body": 2})
    assert put.status_code == 400 and error_of(put)["field"] == "replace"
    assert (await py.get(topic, "j")).body == b"1"  # nothing changed
    ok = await http.get(f"{listing}?state=ready&limit=5")
    assert ok.status_code == 200 and [j["id"] for j in ok.json()["jobs"]] == ["j"]
    for probe in ("/healthz?cachebust=1", "/metrics?name[]=x", "/openapi.json?v=2"):
        assert (await http.get(probe)).status_code == 200, probe  # monitors add their own
