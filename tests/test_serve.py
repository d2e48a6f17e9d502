"""``redisched serve`` as a real process: embedded Redis, restarts, long polls, auth, exposure."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import redis

from redisched.embedded import PIDFILE, alive_redis, free_port
from redisched.keys import TopicKeys

REDISCHED = str(Path(sys.executable).parent / "redisched")
_EMBEDDED = re.compile(r"embedded redis-server on ((?:unix|redis)://\S+),")


@dataclass
class Served:
    """A running ``redisched serve`` process and what it printed."""

    process: subprocess.Popen[str]
    port: int
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_url(self) -> str:
        match = _EMBEDDED.search(self.output)
        if match is None:
            raise AssertionError(f"no embedded Redis URL in {self.output}")
        return match.group(1)

    @property
    def output(self) -> str:
        """What the process printed so far (stdout and stderr)."""
        return self.log.read_text()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL, as a crash would: the embedded redis-server is left running."""
        self.process.kill()
        self.process.wait()


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}
    return {**env, **(extra or {})}


def start_serve(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Served:
    """Start ``redisched serve`` on a free loopback port; return once /healthz answers 200."""
    port = free_port()
    # A file, not a pipe: a redis-server left behind by kill -9 would hold a pipe open.
    log = data_dir.parent / f"serve-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [REDISCHED, "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
            stdout=out, stderr=subprocess.STDOUT, env=_env(env),
        )  # fmt: skip
    served = Served(process, port, data_dir, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {served.output}")
        try:
            if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                while "listening on" not in served.output and time.monotonic() < deadline:
                    time.sleep(0.01)
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    served.kill()
    raise AssertionError(f"serve did not answer in {timeout}s: {served.output}")


def stop_leftover_redis(data_dir: Path) -> None:
    """Stop a redis-server our serve left behind (after a kill -9 or a failed test)."""
    try:
        pid = int((data_dir / PIDFILE).read_text())
    except (OSError, ValueError):
        return
    if alive_redis(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(500):
            if not alive_redis(pid):
                break
            time.sleep(0.01)


@pytest.fixture
def serve_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder; whatever serve left running on it is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    stop_leftover_redis(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the tests that only talk to it."""
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    server = start_serve(data_dir)
    yield server
    server.stop()
    stop_leftover_redis(data_dir)


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


def test_it_prints_where_it_listens_and_where_the_data_lives(served: Served) -> None:
    assert f"listening on http://127.0.0.1:{served.port}" in served.output
    assert f"data in {served.data_dir.resolve()}" in served.output
    assert list(served.data_dir.glob("appendonlydir/*")) or list(served.data_dir.glob("*.aof"))


def test_every_route_over_real_http(http: httpx.Client, topic: str) -> None:
    job = f"/v1/topics/{topic}/jobs/j"
    assert http.put(job, json={"body": {"n": 1}}).status_code == 201
    assert http.put(job, json={"body": {"n": 2}}).status_code == 200
    assert http.put(job, json={"body": 3}, headers={"If-None-Match": "*"}).status_code == 412
    assert http.put(job, json={"body": 3}, headers={"If-Match": '"9"'}).status_code == 412
    assert http.get(job).json()["body"] == {"n": 2}
    [held] = http.post(f"/v1/topics/{topic}/reserve", json={"count": 5}).json()["jobs"]
    assert http.put(job, json={"body": 4}).status_code == 202
    token = {"token": held["token"]}
    assert http.post(f"{job}/touch", json=token).status_code == 200
    assert http.post(f"{job}/ack", json=token).status_code == 204
    assert http.post(f"{job}/ack", json=token).status_code == 409
    [held] = http.post(f"/v1/topics/{topic}/reserve", json={}).json()["jobs"]
    assert held["body"] == 4
    token = {"token": held["token"]}
    assert http.post(f"{job}/release", json=token).json() == {"state": "ready"}
    [held] = http.post(f"/v1/topics/{topic}/reserve", json={}).json()["jobs"]
    assert http.post(f"{job}/bury", json={"token": held["token"]}).status_code == 204
    assert http.post(f"{job}/kick").json() == {"kicked": 1}
    assert http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).status_code == 200
    assert http.post(f"/v1/topics/{topic}/reserve", json={"wait": 0}).status_code == 204
    assert topic in http.get("/v1/topics").json()["topics"]
    assert http.get(f"/v1/topics/{topic}").json()["counts"]["reserved"] == 1
    assert http.patch(f"/v1/topics/{topic}", json={"ttr": 5}).json()["config"]["ttr"] == 5
    page = http.get(f"/v1/topics/{topic}/jobs", params={"state": "reserved"}).json()
    assert [j["id"] for j in page["jobs"]] == ["j"] and page["cursor"] is None
    assert http.delete(job).status_code == 204
    assert http.delete(job).status_code == 404
    assert http.get(job).status_code == 404
    assert http.post(f"/schedule/{topic}", json={"id": "s", "contents": "x"}).status_code == 201
    assert http.post(f"/cancel/{topic}", json={"id": "s"}).status_code == 200
    assert http.post(f"/cancel/{topic}", json={"id": "s"}).status_code == 404
    assert http.get("/healthz").json()["status"] == "ok"
    assert "redisched_jobs" in http.get("/metrics").text
    assert "/v1/topics/{topic}/reserve" in http.get("/openapi.json").json()["paths"]
    bad = http.put(job, content=b'{"body": 1, "nope": 2}')
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "nope"
    huge = http.put(job, content=b"[" * (5 << 20))
    assert huge.status_code == 413


def test_long_poll_wakes_on_put_within_milliseconds(served: Served, topic: str) -> None:
    result: dict[str, Any] = {}

    def wait() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            response = client.post(f"/v1/topics/{topic}/reserve", json={"wait": 20})
            result["at"] = time.monotonic()
            result["response"] = response

    waiter = threading.Thread(target=wait)
    waiter.start()
    with httpx.Client(base_url=served.url) as client:
        time.sleep(0.5)  # the waiter is parked on the Pub/Sub hub by now
        client.put(f"/v1/topics/{topic}/jobs/j", json={"body": "wake"})
        put_done = time.monotonic()
    waiter.join(25)
    latency = result["at"] - put_done
    print(f"long-poll wake-up latency after the put returned: {latency * 1000:.1f} ms")
    assert latency < 0.25  # typically 1-3 ms; the margin is for a loaded, shared machine
    assert result["response"].json()["jobs"][0]["body"] == "wake"


def test_long_poll_answers_204_after_wait(http: httpx.Client, topic: str) -> None:
    started = time.monotonic()
    response = http.post(f"/v1/topics/{topic}/reserve", json={"wait": 0.5})
    elapsed = time.monotonic() - started
    assert response.status_code == 204 and 0.45 <= elapsed < 3


def _raw_request(port: int, method: str, path: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def test_a_disconnecting_long_poll_client_strands_no_job(
    served: Served, http: httpx.Client, topic: str
) -> None:
    socks = [
        _raw_request(served.port, "POST", f"/v1/topics/{topic}/reserve", b'{"wait": 30}')
        for _ in range(5)
    ]
    time.sleep(0.3)
    for sock in socks:
        sock.close()
    time.sleep(0.3)
    for i in range(5):
        http.put(f"/v1/topics/{topic}/jobs/j{i}", json={"body": i})
    time.sleep(0.3)
    stats = http.get(f"/v1/topics/{topic}").json()
    assert stats["counts"] == {"scheduled": 0, "ready": 5, "reserved": 0, "dead": 0}
    assert stats["totals"]["reserved"] == 0


def test_long_polls_share_one_subscription_and_do_not_poll(served: Served, topic: str) -> None:
    import asyncio

    conn = redis.Redis.from_url(served.redis_url)
    channel = TopicKeys("redisched", topic).wake_channel

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            waiters = [
                asyncio.create_task(client.post(f"/v1/topics/{topic}/reserve", json={"wait": 20}))
                for _ in range(40)
            ]
            await asyncio.sleep(1.0)  # every waiter is parked by now
            commands = conn.info("stats")["total_commands_processed"]
            await asyncio.sleep(1.0)
            idle = conn.info("stats")["total_commands_processed"] - commands
            [(_, subscribers)] = conn.pubsub_numsub(channel)
            assert subscribers == 1  # one listener per process, whatever the number of waiters
            assert idle < 40  # waiters do not poll: only the requeue sweep and the dispatcher
            assert not [c for c in conn.client_list() if c["cmd"].startswith(("bl", "bz", "br"))]
            for i in range(40):
                await client.put(f"/v1/topics/{topic}/jobs/j{i}", json={"body": i})
            return await asyncio.gather(*waiters)

    try:
        responses = asyncio.run(main())
    finally:
        conn.close()
    ids = [r.json()["jobs"][0]["id"] for r in responses]
    assert sorted(ids) == sorted(f"j{i}" for i in range(40))


def test_restart_after_kill_9_keeps_every_job(serve_dir: Path) -> None:
    first = start_serve(serve_dir)
    with httpx.Client(base_url=first.url) as http:
        for i in range(40):
            http.put(f"/v1/topics/keep/jobs/j{i}", json={"body": {"i": i}, "delay": i % 2 * 3600})
        reserved = http.post("/v1/topics/keep/reserve", json={"count": 5}).json()["jobs"]
        http.post(
            f"/v1/topics/keep/jobs/{reserved[0]['id']}/bury", json={"token": reserved[0]["token"]}
        )
        http.put("/v1/topics/keep/jobs/bytes", json={"body": {"$base64": "/wD+"}})
        before = http.get(
            "/v1/topics/keep/jobs", params={"state": "scheduled", "limit": 1000}
        ).json()
        all_before = {
            state: http.get("/v1/topics/keep/jobs", params={"state": state, "limit": 1000}).json()
            for state in ("scheduled", "ready", "reserved", "dead")
        }
    assert len(before["jobs"]) == 20
    first.kill()

    second = start_serve(serve_dir)  # its redis-server followed the killed serve
    with httpx.Client(base_url=second.url) as http:
        all_after = {
            state: http.get("/v1/topics/keep/jobs", params={"state": state, "limit": 1000}).json()
            for state in ("scheduled", "ready", "reserved", "dead")
        }
        assert http.get("/v1/topics/keep/jobs/bytes").json()["body"] == {"$base64": "/wD+"}
    assert all_after == all_before
    assert sum(len(page["jobs"]) for page in all_after.values()) == 41
    assert second.stop() == 0


def test_sigterm_stops_the_embedded_redis(serve_dir: Path) -> None:
    served = start_serve(serve_dir)
    pid = int((serve_dir / PIDFILE).read_text())
    assert alive_redis(pid)
    assert served.stop() == 0
    assert not alive_redis(pid)


def test_a_data_dir_serves_one_server_at_a_time(served: Served) -> None:
    second = subprocess.run(
        [REDISCHED, "serve", "--port", str(free_port()), "--data-dir", str(served.data_dir)],
        capture_output=True, text=True, timeout=30, env=_env(None),
    )  # fmt: skip
    assert second.returncode == 1 and "another redisched serve" in second.stderr
    # the way to share it (another --data-dir would be another Redis)
    assert f"--redis-url unix://{served.data_dir}/redis.sock?db=0" in second.stderr


def test_a_non_loopback_bind_without_tokens_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [REDISCHED, "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, env=_env(None),
    )  # fmt: skip
    assert result.returncode == 2 and "--insecure" in result.stderr
    assert not (tmp_path / "d").exists()  # refused before starting anything


def test_tokens_from_the_environment_and_an_external_redis(redis_url: str, tmp_path: Path) -> None:
    served = start_serve(
        tmp_path / "unused", "--redis-url", redis_url, "--token", "flag-token-0123456",
        env={"REDISCHED_API_TOKENS": "ignored-when-the-flag-is-given"},
    )  # fmt: skip
    try:
        assert not (tmp_path / "unused").exists()
        assert f"Redis at {redis_url}" in served.output
        with httpx.Client(base_url=served.url) as http:
            assert http.get("/v1/topics").status_code == 401
            ok = http.get("/v1/topics", headers={"Authorization": "Bearer flag-token-0123456"})
            assert ok.status_code == 200
            assert http.get("/healthz").status_code == 200
    finally:
        served.stop()
    from_env = start_serve(
        tmp_path / "unused", "--redis-url", redis_url,
        env={"REDISCHED_API_TOKENS": "a-1-0123456789abc, b-2-0123456789abc"},
    )  # fmt: skip
    try:
        with httpx.Client(base_url=from_env.url) as http:
            assert http.get("/metrics").status_code == 401
            bearer = {"Authorization": "Bearer b-2-0123456789abc"}
            assert http.get("/metrics", headers=bearer).status_code == 200
    finally:
        from_env.stop()


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append({"body": json.loads(self.rfile.read(length)), **self.headers})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_serve_pushes_to_webhooks_and_reports_it(serve_dir: Path, topic: str) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    served = start_serve(serve_dir, "--allow-private-webhooks")
    try:
        with httpx.Client(base_url=served.url) as client:
            hook = {"url": f"http://127.0.0.1:{receiver.server_port}/hook", "secrets": ["s" * 24]}
            assert client.patch(f"/v1/topics/{topic}", json={"webhook": hook}).status_code == 200
            client.put(f"/v1/topics/{topic}/jobs/pushed", json={"body": {"hello": 1}})
            deadline = time.monotonic() + 10
            while client.get(f"/v1/topics/{topic}/jobs/pushed").status_code != 404:
                assert time.monotonic() < deadline, "the job was not delivered and acked"
                time.sleep(0.02)
            metrics = client.get("/metrics").text
        [delivery] = [r for r in _Receiver.received if r["body"]["id"] == "pushed"]
        assert delivery["body"]["body"] == {"hello": 1} and "webhook-signature" in delivery
        assert f'redisched_webhook_deliveries_total{{outcome="acked",topic="{topic}"}} 1.0' in (
            metrics
        )
        assert f'redisched_acks_total{{topic="{topic}"}} 1.0' in metrics
    finally:
        served.stop()
        receiver.shutdown()
        receiver.server_close()


def test_port_0_prints_the_port_it_bound(tmp_path: Path) -> None:
    """It printed http://127.0.0.1:0, which no client can use."""
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [REDISCHED, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
            stdout=out, stderr=subprocess.STDOUT, env=_env(None),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        found = None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
            time.sleep(0.05)
        assert found is not None, log.read_text()
        port = int(found.group(1))
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()
