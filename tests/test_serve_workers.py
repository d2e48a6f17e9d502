"""``redisched serve --workers N``: extra HTTP processes on the same port (SO_REUSEPORT),
the background services once, in the first process. Real processes, loopback only."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest
from click.testing import CliRunner

from redisched.cli import main
from redisched.config import MAX_WORKERS
from redisched.embedded import PIDFILE, alive_redis
from tests.test_serve import REDISCHED, Served, _env, start_serve, stop_leftover_redis


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder; whatever serve left running on it is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    stop_leftover_redis(path)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _workers(served: Served) -> list[int]:
    """The extra HTTP processes of ``served`` (its children other than the redis-server)."""
    children = psutil.Process(served.process.pid).children()
    found = []
    for child in children:
        try:
            if "redisched.commands.serve_worker" in child.cmdline() and _alive(child.pid):
                found.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def _start(data_dir: Path, *args: str, workers: int = 2) -> tuple[Served, list[int]]:
    served = start_serve(data_dir, "--workers", str(workers), *args)
    _wait(lambda: len(_workers(served)) == workers - 1, 20, "the workers")
    return served, _workers(served)


def _answered_by(conn: http.client.HTTPConnection, port: int, pids: list[int]) -> int:
    """The process holding the server side of ``conn`` (one request was answered on it)."""
    assert conn.sock is not None
    local = conn.sock.getsockname()[1]
    for pid in pids:
        for c in psutil.Process(pid).net_connections(kind="tcp"):
            if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == local:
                return pid
    raise AssertionError(f"no process of {pids} holds the connection from port {local}")


def _call(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any = None
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _connection_to(served: Served, pid: int, timeout: float = 20) -> http.client.HTTPConnection:
    """A keep-alive connection that process ``pid`` accepted."""
    pids = [served.process.pid, *_workers(served)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        assert _call(conn, "GET", "/healthz")[0] == 200
        if _answered_by(conn, served.port, pids) == pid:
            return conn
        conn.close()
    raise AssertionError(f"no connection reached pid {pid}")


def test_every_process_puts_gets_and_reserves(data_dir: Path, topic: str) -> None:
    served, [worker] = _start(data_dir)
    try:
        pids = [served.process.pid, worker]
        seen: Counter[int] = Counter()
        for i in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
            try:
                path = f"/v1/topics/{topic}/jobs/j{i}"
                assert _call(conn, "PUT", path, {"body": i})[0] == 201
                status, got = _call(conn, "GET", path)
                assert status == 200 and json.loads(got)["body"] == i
                status, got = _call(conn, "POST", f"/v1/topics/{topic}/reserve", {"wait": 0})
                assert status == 200 and [j["id"] for j in json.loads(got)["jobs"]] == [f"j{i}"]
                seen[_answered_by(conn, served.port, pids)] += 1
            finally:
                conn.close()
            if len(seen) == 2 and i >= 20:
                break
        assert set(seen) == set(pids), seen
        assert "2 HTTP processes share the port (SO_REUSEPORT)" in served.output
    finally:
        assert served.stop() == 0


def test_a_long_poll_in_a_worker_wakes_on_a_put_in_the_other(data_dir: Path, topic: str) -> None:
    served, [worker] = _start(data_dir)
    try:
        waiting = _connection_to(served, worker)
        putting = _connection_to(served, served.process.pid)
        result: dict[str, Any] = {}

        def wait() -> None:
            result["reply"] = _call(waiting, "POST", f"/v1/topics/{topic}/reserve", {"wait": 20})
            result["at"] = time.monotonic()

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.5)  # parked on the worker's own wake-up listener by now
        assert _call(putting, "PUT", f"/v1/topics/{topic}/jobs/w", {"body": "wake"})[0] == 201
        put_done = time.monotonic()
        waiter.join(25)
        status, body = result["reply"]
        assert status == 200 and json.loads(body)["jobs"][0]["body"] == "wake"
        assert result["at"] - put_done < 1.0  # typically a few ms; margin for a loaded machine
        waiting.close()
        putting.close()
    finally:
        assert served.stop() == 0


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length))["id"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_dispatcher_runs_once_in_the_first_process(data_dir: Path, topic: str) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    served, [worker, _] = _start(data_dir, "--allow-private-webhooks", workers=3)
    try:
        main_conn = _connection_to(served, served.process.pid)
        worker_conn = _connection_to(served, worker)
        hook = {"url": f"http://127.0.0.1:{receiver.server_port}/hook", "secrets": ["s" * 24]}
        # Set over a worker: the first process's dispatcher reads it at its next refresh.
        status, _ = _call(worker_conn, "PATCH", f"/v1/topics/{topic}", {"webhook": hook})
        assert status == 200
        ids = [f"p{i}" for i in range(30)]
        for i, job in enumerate(ids):
            conn = (main_conn, worker_conn)[i % 2]
            assert _call(conn, "PUT", f"/v1/topics/{topic}/jobs/{job}", {"body": i})[0] == 201

        def delivered() -> bool:
            return all(
                _call(main_conn, "GET", f"/v1/topics/{topic}/jobs/{j}")[0] == 404 for j in ids
            )

        _wait(delivered, 20, "every job delivered and acked")
        time.sleep(1)  # a second dispatcher would deliver again by now
        counts = Counter(j for j in _Receiver.received if j in ids)
        assert counts == Counter(ids), counts
        main_metrics = _call(main_conn, "GET", "/metrics")[1].decode()
        worker_conn.close()  # idle past uvicorn's keep-alive timeout by now
        worker_conn = _connection_to(served, worker)
        worker_metrics = _call(worker_conn, "GET", "/metrics")[1].decode()
        acked = f'redisched_webhook_deliveries_total{{outcome="acked",topic="{topic}"}} 30.0'
        assert acked in main_metrics
        assert "redisched_webhook_deliveries_total" not in worker_metrics
        main_conn.close()
        worker_conn.close()
    finally:
        assert served.stop() == 0
        receiver.shutdown()
        receiver.server_close()


def test_kill_9_of_serve_leaves_no_worker_and_no_redis(data_dir: Path) -> None:
    served, workers = _start(data_dir, workers=3)
    redis_pid = int((data_dir / PIDFILE).read_text())
    served.process.kill()
    served.process.wait()
    _wait(lambda: not any(_alive(p) for p in workers), 20, "the workers to die with serve")
    _wait(lambda: not alive_redis(redis_pid), 20, "the redis-server to die with serve")


def test_sigterm_stops_every_process_with_status_0(data_dir: Path) -> None:
    served, workers = _start(data_dir, workers=3)
    redis_pid = int((data_dir / PIDFILE).read_text())
    assert served.stop() == 0  # SIGTERM, then the exit status
    assert not any(_alive(p) for p in workers)
    assert not alive_redis(redis_pid)
    assert "redisched stopped" in served.output


def test_a_worker_that_dies_is_started_again(data_dir: Path, topic: str) -> None:
    served, [worker] = _start(data_dir)
    try:
        os.kill(worker, signal.SIGKILL)
        _wait(lambda: _workers(served) not in ([], [worker]), 20, "a new worker")
        [again] = _workers(served)
        conn = _connection_to(served, again)
        assert _call(conn, "PUT", f"/v1/topics/{topic}/jobs/after", {"body": 1})[0] == 201
        conn.close()
        assert served.process.poll() is None
        assert f"(pid {worker}) exited with status -9; starting it again" in served.output
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize("value", ["0", str(MAX_WORKERS + 1), "two"])
def test_a_bad_worker_count_is_one_line_naming_the_option(value: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", value])
    assert result.exit_code == 2, result.output
    assert "'--workers'" in result.output and value in result.output


def test_a_port_another_program_listens_on_is_not_shared(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even one that would share
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [REDISCHED, "serve", "--workers", "2", "--port", str(port)]
        result = subprocess.run(
            [*command, "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=60, env=_env(None),
        )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"could not listen on 127.0.0.1:{port}" in result.stderr
