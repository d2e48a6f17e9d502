"""The same-origin guard: other host names (DNS rebinding) and cross-site writes refused.

Requests without ``Origin`` / ``Sec-Fetch-Site`` (curl, the SDKs) must keep working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

import redisched
from redisched.config import Settings
from redisched.http import create_app
from redisched.http.sameorigin import SameOriginGuard, host_name
from tests.http_fixtures import asgi_client


async def _app(scope: object, receive: object, send: object) -> None:  # never called
    raise AssertionError


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True), ("LOCALHOST.:7171", True), ("127.0.0.1:7171", True),
        ("[::1]:7171", True), ("10.1.2.3", True), ("jobs.internal", True),
        ("JOBS.internal:80", True), ("attacker.example", False),
        ("localhost.attacker.example", False), ("127.0.0.1.nip.io", False), ("", False),
    ],
)  # fmt: skip
def test_host_allowed(host: str, allowed: bool) -> None:
    guard = SameOriginGuard(_app, allowed_hosts=["jobs.internal"])
    assert guard.host_allowed(host) is allowed
    assert SameOriginGuard(_app, allowed_hosts=["*"]).host_allowed(host)


def test_host_name() -> None:
    assert [host_name(h) for h in ("A.b:80", "[::1]:9", "x.", "::1")] == ["a.b", "::1", "x", "::1"]


@pytest.fixture
async def http(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(redis_url=redis_url, allowed_hosts=("jobs.internal",))
    app = create_app(settings)
    async with asgi_client(app) as client:
        yield client


def _job(topic: str, job_id: str, action: str = "") -> str:
    url = f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(job_id, safe='')}"
    return f"{url}/{action}" if action else url


async def test_a_foreign_host_name_is_refused_for_reads_too(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put(topic, "j", b"secret")
    refused = await http.get(_job(topic, "j"), headers={"Host": "attacker.example:7171"})
    assert refused.status_code == 400 and "secret" not in refused.text
    assert refused.json()["error"]["field"] == "Host"
    for host in ("localhost:7171", "127.0.0.1:7171", "[::1]:7171", "jobs.internal"):
        assert (await http.get(_job(topic, "j"), headers={"Host": host})).status_code == 200


CROSS_SITE = [
    {"Origin": "http://attacker.example"},
    {"Origin": "null"},
    {"Origin": "http://localhost:8000"},  # another port is another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_cross_site_writes_are_refused_and_change_nothing(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str, headers: dict[str, str]
) -> None:
    await py.put(topic, "j", b"1")
    text_plain = {**headers, "Content-Type": "text/plain"}
    attempts = [
        ("PUT", _job(topic, "new"), b'{"body": 1}'),
        ("DELETE", _job(topic, "j"), b""),
        ("POST", f"/v1/topics/{quote(topic, safe='')}/reserve", b"{}"),
        ("POST", _job(topic, "j", "kick"), b"{}"),
        ("PATCH", f"/v1/topics/{quote(topic, safe='')}", b'{"paused": true}'),
    ]
    for method, url, content in attempts:
        reply = await http.request(method, url, content=content, headers=text_plain)
        assert reply.status_code == 403, (method, url)
        assert reply.json()["error"]["code"] == "cross_site"
    job = await py.get(topic, "j")
    assert job is not None and job.state == "ready" and job.attempts == 0
    assert await py.get(topic, "new") is None
    assert not (await py.stats(topic)).paused


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"},
     {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}],
)  # fmt: skip
async def test_same_origin_and_headerless_writes_are_accepted(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str, headers: dict[str, str]
) -> None:
    reply = await http.put(_job(topic, "j"), json={"body": 1}, headers=headers)
    assert reply.status_code == 201
    assert (await http.delete(_job(topic, "j"), headers=headers)).status_code == 204


async def test_origin_matches_the_host_port_behind_a_tls_proxy(http: httpx.AsyncClient) -> None:
    headers = {"Host": "jobs.internal", "Origin": "https://jobs.internal"}
    assert (await http.put(_job("t", "p"), json={"body": 1}, headers=headers)).is_success
    headers = {"Host": "jobs.internal:7171", "Origin": "http://jobs.internal:7171"}
    assert (await http.delete(_job("t", "p"), headers=headers)).status_code == 204


def test_an_http_1_1_request_without_host_is_refused() -> None:
    # RFC 9112 3.2: a server MUST answer 400 (it answered 200); HTTP/1.0 may leave it out
    guard = SameOriginGuard(lambda scope, receive, send: None)  # type: ignore[arg-type,return-value]
    bare = {"type": "http", "method": "GET", "headers": [], "http_version": "1.1"}
    refused = guard.refusal(bare)
    assert refused is not None and refused.status_code == 400
    assert b'"field":"Host"' in refused.body
    assert guard.refusal({**bare, "http_version": "1.0"}) is None
    assert guard.refusal({**bare, "headers": [(b"host", b"localhost:7171")]}) is None
