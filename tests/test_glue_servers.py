"""The Node.js and Go servers (clients/): the original routes, read back from Python, and push.

``/schedule/{topic}`` and ``/cancel/{topic}`` through each language's server, checked with the
Python client; their API tokens and loopback rule, as the Python service's; push deliveries to a
receiver here, their Standard Webhooks signatures checked with
:func:`redisched.push.signing.verify`.
"""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

import redisched
from redisched.config import MIN_TOKEN_LENGTH
from redisched.embedded import EmbeddedRedis
from redisched.json_body import to_stored
from redisched.push.signing import verify
from tests.glueproc import LANGUAGES, NODE_BIN, env, require_node, running, stop
from tests.workerproc import wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
Command = Callable[..., list[str]]


@pytest.fixture(params=LANGUAGES)
def server(request: pytest.FixtureRequest) -> Command:
    """A function building the command of a server (on a free port) in one language."""

    def node(
        *push: str,
        tokens: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        insecure: bool = False,
        allowed: tuple[str, ...] = (),
    ) -> list[str]:
        access = [*(f"--token={t}" for t in tokens), *(["--insecure"] if insecure else []),
                  *(f"--allowed-host={h}" for h in allowed)]  # fmt: skip
        return ["node", str(NODE_BIN), "serve", f"--host={host}", "--port=0",
                *(f"--push={p}" for p in push), f"--secret={SECRET}", "--timeout-ms=2000",
                *access]  # fmt: skip

    def go(
        *push: str,
        tokens: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        insecure: bool = False,
        allowed: tuple[str, ...] = (),
    ) -> list[str]:
        binary = request.getfixturevalue("go_cli")
        return [str(binary), "serve", f"-addr={host}:0", *(f"-push={p}" for p in push),
                f"-secret={SECRET}", "-timeout=2s", *(f"-token={t}" for t in tokens),
                *(["-insecure"] if insecure else []),
                *(f"-allowed-host={h}" for h in allowed)]  # fmt: skip

    if request.param == "node":
        require_node()
        return node
    return go


def post(port: int, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return call(port, path, body, headers)[:2]


def call(
    port: int, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, str | None]:
    """POST ``body`` (GET without one) to ``path``: the status, the JSON reply and its
    WWW-Authenticate header."""
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method="GET" if data is None else "POST",
        headers={"content-type": "application/json", **(headers or {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("WWW-Authenticate")


def test_schedule_and_cancel_read_back_from_python(
    server: Command, redis_url: str, topic: str, client: redisched.Client
) -> None:
    with running(server(), redis_url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        before = time.time()
        status, written = post(port, f"/schedule/{topic}", {"id": "j", "contents": {"to": "ada"},
                                                           "delay": 30})  # fmt: skip
        assert (status, written) == (201, {"topic": topic, "id": "j", "version": 1,
                                           "status": "created"})  # fmt: skip
        job = client.get(topic, "j")
        assert job is not None and job.body == b'{"to":"ada"}'
        assert job.state == redisched.JobState.SCHEDULED
        assert before + 29 <= job.run_at.timestamp() <= time.time() + 31
        status, written = post(port, f"/schedule/{topic}", {"id": "j", "contents": {
            "$base64": "AP8="}})  # fmt: skip
        assert (status, written["status"], written["version"]) == (200, "replaced", 2)
        job = client.get(topic, "j")
        assert job is not None and job.body == b"\x00\xff" and job.state == "ready"
        assert topic in client.topics()
        assert post(port, f"/cancel/{topic}", {"id": "j"}) == (200, {"id": "j", "cancelled": True})
        assert client.get(topic, "j") is None
        status, error = post(port, f"/cancel/{topic}", {"id": "j"})
        assert status == 404 and error["error"]["code"] == "not_found"
        assert error["error"]["field"] == "id"
        assert stop(proc) == 0


def test_a_unix_socket_url_as_redisched_serve_prints_it(
    server: Command, redis_server: EmbeddedRedis, topic: str, client: redisched.Client
) -> None:
    """The README has the servers use ``$REDISCHED_REDIS_URL``, set to the embedded Redis's
    ``unix://…/redis.sock?db=0``: the Go server refused it (redigo reads redis:// only)."""
    url = redis_server.socket_url
    assert url is not None
    with running(server(), url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        status, written = post(port, f"/schedule/{topic}", {"id": "u", "contents": 1, "delay": 30})
        assert status == 201 and written["status"] == "created", written
        assert client.get(topic, "u") is not None
        assert stop(proc) == 0


BAD_INPUT: list[tuple[str, Any, str | None]] = [
    ("/schedule/{topic}", {"contents": 1}, "id"),
    ("/schedule/{topic}", {"id": "", "contents": 1}, "id"),
    ("/schedule/{topic}", {"id": "x"}, "contents"),
    ("/schedule/{topic}", {"id": "x", "contents": 1, "delay": -1}, "delay"),
    ("/schedule/{topic}", {"id": "x", "contents": 1, "delay": "soon"}, "delay"),
    ("/schedule/{topic}", {"id": "x", "contents": 1, "extra": 1}, "extra"),
    ("/schedule/{topic}", {"id": "x", "contents": {"$base64": "!!"}}, "contents.$base64"),
    ("/schedule/{topic}", {"id": "x", "contents": {"$base64": None}}, "contents.$base64"),
    ("/schedule/{topic}", {"id": "x", "contents": {"$base64": "/w==\n"}}, "contents.$base64"),
    ("/schedule/bad%7Btopic", {"id": "x", "contents": 1}, "topic"),
    # a URL path resolves "." and ".." (a topic of them, even as %2E%2E, never reaches a route:
    # Node's URL and Go's ServeMux resolve it, a 404)
    ("/schedule/{topic}", {"id": "..", "contents": 1}, "id"),
    ("/schedule/{topic}", {"id": ".", "contents": 1}, "id"),
    ("/cancel/{topic}", {"id": 7}, "id"),
    ("/schedule/{topic}", b'{"id": "a\\ud800", "contents": 1}', "id"),  # a lone surrogate
    ("/cancel/{topic}", b'{"id": "\\udc00"}', "id"),
    ("/schedule/{topic}", b"{not json", None),
    ("/schedule/{topic}", b'{"id": "a\xff", "contents": 1}', None),  # not UTF-8
]


def test_bad_input_names_the_field_and_stores_nothing(
    server: Command, redis_url: str, topic: str, client: redisched.Client
) -> None:
    with running(server(), redis_url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        for path, body, field in BAD_INPUT:
            status, error = post(port, path.format(topic=topic), body)
            assert status == 400, (path, body, error)
            assert error["error"]["field"] == field and error["error"]["message"], (body, error)
        assert client.stats(topic).total_put == 0
        assert stop(proc) == 0


def test_the_request_limit_is_apart_from_the_body_limit_as_the_python_service(
    server: Command, redis_url: str, topic: str, client: redisched.Client
) -> None:
    """A 900 KiB binary body is a 1.2 MB request as $base64: taken (the request limit is 4 MiB,
    as max_request_size); a body over 1 MiB and a request over 4 MiB are 413."""
    body = bytes(range(256)) * (900 * 4)
    with running(server(), redis_url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        marker = {"$base64": base64.b64encode(body).decode()}
        status, written = post(port, f"/schedule/{topic}", {"id": "big", "contents": marker})
        assert (status, written.get("status")) == (201, "created"), written
        job = client.get(topic, "big")
        assert job is not None and job.body == body
        over = {"$base64": base64.b64encode(b"x" * ((1 << 20) + 1)).decode()}
        status, error = post(port, f"/schedule/{topic}", {"id": "over", "contents": over})
        assert (status, error["error"]["code"], error["error"]["field"]) == (
            413, "payload_too_large", "contents")  # fmt: skip
        assert (
            error["error"]["message"]
            == f"the body is {(1 << 20) + 1} bytes; the limit is {1 << 20}"
        )
        huge = {"id": "huge", "contents": "x" * (4 << 20)}
        status, error = post(port, f"/schedule/{topic}", huge)
        assert (status, error["error"]["code"]) == (413, "payload_too_large")
        assert client.get(topic, "over") is None and client.get(topic, "huge") is None
        assert stop(proc) == 0


def test_escaped_ids_read_back_exactly(
    server: Command, redis_url: str, topic: str, client: redisched.Client
) -> None:
    """A surrogate pair and an escaped backslash before "ud800" are ids like any other."""
    with running(server(), redis_url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        for raw, expected in [(rb'"\ud83d\ude00"', "\U0001f600"), (rb'"\\ud800"', "\\ud800")]:
            status, written = post(port, f"/schedule/{topic}", b'{"id": %s, "contents": 1}' % raw)
            assert (status, written["id"]) == (201, expected), raw
            assert client.get(topic, expected) is not None
        assert stop(proc) == 0


# contents sent, each to be stored as the Python service stores it (json_body.to_stored of the
# value msgspec reads): integers of any length exactly and keys in the order sent (Node's
# JSON.parse stored 12345678901234567890123 as 1.2345678901234568e+22 and put the key "1" first)
EXACT_CONTENTS = [
    b'{"order": 12345678901234567890123}',
    b"[9007199254740993, -12345678901234567890123, 1%s]" % (b"0" * 4299),
    b'{"b": 1, "1": 2, "0": {"2": [], "x": null}}',
]
# and what msgspec writes otherwise than it was sent: floats, -0 as 0, strings' escapes (Go's
# json.Compact kept all three as sent)
REWRITTEN_CONTENTS = [
    b"[1e5, 1.0, 1.50, -0.0, 1E22, 1e16, 12345678901234567890123e0, 2.5e-5, 1e-7, 1e-400]",
    b"[1.7976931348623157e308, -1e-400, 5e-324, 1e15, 0.000001, -123.456e-2]",
    b'[-0, {"a": -0}]',
    b'["\\u00e9\\/\\u001F \\ud83d\\ude00 \\u003c\\u2028", {"\\u0031": "k\\n"}]',
]


def test_contents_are_stored_as_the_python_service_stores_them(
    server: Command,
    redis_url: str,
    topic: str,
    client: redisched.Client,
) -> None:
    stored: dict[bytes, bytes] = {}
    with running(server(), redis_url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        for i, contents in enumerate(EXACT_CONTENTS + REWRITTEN_CONTENTS):
            body = b'{"id": "n%d", "contents": %s}' % (i, contents)
            status, written = post(port, f"/schedule/{topic}", body)
            assert status == 201, (contents, written)
            job = client.get(topic, f"n{i}")
            assert job is not None
            stored[contents] = job.body
        assert stop(proc) == 0
    for contents in EXACT_CONTENTS + REWRITTEN_CONTENTS:
        assert stored[contents] == to_stored(msgspec.json.decode(contents)), contents


TOKENS = ("glue-token-one-0123456789", "glue-token-two-abcdefghij")
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "send Authorization: Bearer <token>",
                          "field": "Authorization"}}  # fmt: skip
EXPOSED = ("0.0.0.0 is reachable from other machines: set API tokens ({option} or "
           "REDISCHED_API_TOKENS), or pass {insecure} to serve without authentication")  # fmt: skip
NO_ACCESS_ENV = {"REDISCHED_API_TOKENS": "", "REDISCHED_INSECURE": ""}


def test_tokens_guard_every_route_but_healthz_as_the_python_service(
    server: Command, redis_url: str, topic: str, client: redisched.Client
) -> None:
    client.put(topic, "kept", b"x", delay=60)
    with running(server(tokens=TOKENS), redis_url, **NO_ACCESS_ENV) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        refused = [None, "", f"Bearer {TOKENS[0]}x", f"Bearer {TOKENS[0][:-1]}", TOKENS[0],
                   f"Basic {TOKENS[0]}", "Bearer ", f"Token {TOKENS[1]}",
                   "Bearer wrong-token-0123456789"]  # fmt: skip
        routes = [(f"/schedule/{topic}", {"id": "refused", "contents": 1}),
                  (f"/cancel/{topic}", {"id": "kept"}), ("/nowhere", None)]  # fmt: skip
        for authorization in refused:
            headers = {} if authorization is None else {"Authorization": authorization}
            for path, body in routes:
                got = call(port, path, body, headers)
                assert got == (401, UNAUTHORIZED, 'Bearer realm="redisched"'), (authorization, path)
        assert client.get(topic, "refused") is None
        assert client.get(topic, "kept") is not None
        assert client.stats(topic).total_put == 1
        for i, token in enumerate(TOKENS):
            auth = {"Authorization": f"Bearer {token}"}
            status, written = post(port, f"/schedule/{topic}", {"id": f"j{i}", "contents": i}, auth)
            assert (status, written["status"]) == (201, "created")
            assert client.get(topic, f"j{i}") is not None
            assert post(port, f"/cancel/{topic}", {"id": f"j{i}"}, auth)[0] == 200
        assert call(port, "/healthz")[:2] == (200, {"status": "ok", "redis": "ok"})
        assert stop(proc) == 0


def test_foreign_hosts_and_cross_site_writes_are_refused_as_the_python_service(
    server: Command, redis_url: str, topic: str, client: redisched.Client
) -> None:
    """DNS rebinding (a foreign Host) is 400 bad_host, a cross-site POST 403 cross_site."""
    client.put(topic, "kept", b"x", delay=60)
    with running(server(allowed=("sched.example",)), redis_url, REDISCHED_ALLOWED_HOSTS="") as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        schedule = {"id": "refused", "contents": 1}
        rebound = {"Host": f"attacker.example:{port}"}
        status, error = post(port, f"/schedule/{topic}", schedule, rebound)
        assert status == 400 and error == {"error": {"code": "bad_host", "field": "Host", "message":
            "this service does not answer for host 'attacker.example' (add it with --allowed-host)"
        }}  # fmt: skip
        routes = [(f"/schedule/{topic}", schedule), (f"/cancel/{topic}", {"id": "kept"})]
        for headers, field in [({"Origin": "https://evil.example"}, "Origin"),
                               ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site")]:  # fmt: skip
            for path, body in routes:
                status, error = post(port, path, body, headers)
                assert (status, error["error"]["code"]) == (403, "cross_site"), (headers, path)
                assert error["error"]["field"] == field
        assert client.get(topic, "refused") is None and client.get(topic, "kept") is not None
        for host in [f"sched.example:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]:
            assert call(port, "/healthz", headers={"Host": host})[0] == 200, host
        own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
        assert post(port, f"/schedule/{topic}", {"id": "j", "contents": 1}, own)[0] == 201
        assert stop(proc) == 0


def refusal(command: list[str], redis_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run a server command that must not start (killed after 10 s if it does)."""
    return subprocess.run(
        command, env=env(redis_url, **{**NO_ACCESS_ENV, **extra}), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip


def test_a_short_token_is_a_usage_error_naming_the_option(
    request: pytest.FixtureRequest, server: Command, redis_url: str
) -> None:
    option = "--token" if request.node.callspec.params["server"] == "node" else "-token"
    short = "x" * (MIN_TOKEN_LENGTH - 1)
    words = f"each token must be at least {MIN_TOKEN_LENGTH} characters"
    for command, extra, named in [
        (server(tokens=(short,)), {}, option),
        (server(tokens=(TOKENS[0], short)), {}, f"{option} #2"),
        (server(), {"REDISCHED_API_TOKENS": f"{TOKENS[0]},{short}"}, "REDISCHED_API_TOKENS #2"),
    ]:
        proc = refusal(command, redis_url, **extra)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert f"{named}: {words}" in proc.stderr


def test_a_non_loopback_address_needs_tokens_or_insecure(
    request: pytest.FixtureRequest, server: Command, redis_url: str
) -> None:
    node = request.node.callspec.params["server"] == "node"
    option, insecure = ("--token", "--insecure") if node else ("-token", "-insecure")
    proc = refusal(server(host="0.0.0.0"), redis_url)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    named = "--host" if node else "-addr"
    assert f"{named}: {EXPOSED.format(option=option, insecure=insecure)}" in proc.stderr
    # accepted with a token, --insecure or either variable; stopped as soon as it is ready
    for command, extra in [
        (server(host="0.0.0.0", tokens=TOKENS[:1]), {}),
        (server(host="0.0.0.0", insecure=True), {}),
        (server(host="0.0.0.0"), {"REDISCHED_API_TOKENS": TOKENS[0]}),
        (server(host="0.0.0.0"), {"REDISCHED_INSECURE": "1"}),
    ]:
        with running(command, redis_url, **{**NO_ACCESS_ENV, **extra}) as started:
            assert stop(started) == 0, (command, extra)


class Receiver:
    """A webhook receiver: records each verified delivery, answers by the job id."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.unsigned: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["content-length"]))
                try:
                    verify(data, dict(self.headers), SECRET)
                except Exception as exc:
                    receiver.unsigned.append(str(exc))
                    self.send_response(401)
                    self.end_headers()
                    return
                delivery = json.loads(data)
                delivery["webhook-id"] = self.headers["webhook-id"]
                receiver.deliveries.append(delivery)
                job_id, attempt = delivery["id"], delivery["attempt"]
                status = 200
                if job_id == "flaky" and attempt == 1:
                    status = 500
                elif job_id == "later":
                    status = 202
                elif job_id == "busy" and attempt == 1:
                    status = 429
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def ids(self) -> list[tuple[str, int]]:
        return sorted((d["id"], d["attempt"]) for d in self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.mark.timeout(60)
def test_push_delivers_signed_requests_acks_2xx_and_retries_errors(
    server: Command, redis_url: str, topic: str, client: redisched.Client, receiver: Receiver
) -> None:
    client.configure(topic, backoff=0.2)  # the retry after a 500 comes quickly
    client.put(topic, "ok", b'{"n":1}')
    client.put(topic, "flaky", b"\x00\xff")
    client.put(topic, "later", b"x")
    client.put(topic, "busy", b"x")
    with running(server(f"{topic}={receiver.url}"), redis_url) as proc:
        wait_for(lambda: client.stats(topic).total_acked == 3, 15, "3 acks")
        assert stop(proc) == 0
    assert receiver.unsigned == []
    assert receiver.ids() == [("busy", 1), ("busy", 2), ("flaky", 1), ("flaky", 2), ("later", 1),
                              ("ok", 1)]  # fmt: skip
    first = next(d for d in receiver.deliveries if d["id"] == "ok")
    assert first["body"] == {"n": 1} and first["topic"] == topic and first["version"] == 1
    assert first["webhook-id"].startswith("msg_") and first["run_at"].endswith("Z")
    flaky = [d for d in receiver.deliveries if d["id"] == "flaky"]
    assert flaky[0]["body"] == {"$base64": "AP8="}
    assert flaky[0]["webhook-id"] == flaky[1]["webhook-id"]  # one message, two attempts
    # 202: the job stays reserved until the receiver acks it with the token.
    later = client.get(topic, "later")
    assert later is not None and later.state == redisched.JobState.RESERVED
    token = next(d["token"] for d in receiver.deliveries if d["id"] == "later")
    client.ack(SimpleNamespace(topic=topic, id="later", token=token))
    assert client.get(topic, "later") is None
