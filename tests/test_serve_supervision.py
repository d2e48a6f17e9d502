"""``redisched serve``'s embedded redis-server under attack: killed with -9, left behind,
unable to come back; and serve killed with -9. Real processes throughout."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import redisched
from redisched.embedded import PIDFILE, alive_redis, find_binary, free_port
from tests.test_serve import REDISCHED, _env, start_serve, stop_leftover_redis


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder; whatever serve left running on it is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    stop_leftover_redis(path)


def _redis_pid(data_dir: Path) -> int:
    return int((data_dir / PIDFILE).read_text())


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _zombies(parent: int) -> list[int]:
    """Children of ``parent`` that ended and were not reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def test_a_killed_redis_is_restarted_from_its_data_folder(data_dir: Path) -> None:
    served = start_serve(data_dir, "--appendfsync", "always")
    try:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            for i in range(20):
                assert http.put(f"/v1/topics/t/jobs/j{i}", json={"body": i}).status_code == 201
            first = _redis_pid(data_dir)
            os.kill(first, signal.SIGKILL)
            _wait(lambda: not alive_redis(first), 5, "the kill")

            def back() -> bool:
                try:
                    return http.get("/healthz").status_code == 200 and _redis_pid(data_dir) != first
                except (httpx.TransportError, OSError, ValueError):
                    return False

            _wait(back, 20, "serve to bring its redis-server back")
            second = _redis_pid(data_dir)
            assert alive_redis(second) and served.process.poll() is None
            assert not _zombies(served.process.pid)
            # Every job is still there (a pooled connection to the old server may answer one
            # 503 first), and the long-poll listener is back on the new server.
            _wait(lambda: http.get("/v1/topics/t").status_code == 200, 5, "the topic")
            assert http.get("/v1/topics/t").json()["counts"]["ready"] == 20
            result: dict[str, Any] = {}

            def wait() -> None:
                with httpx.Client(base_url=served.url, timeout=30) as client:
                    result["r"] = client.post("/v1/topics/w/reserve", json={"wait": 15})

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(0.5)
            http.put("/v1/topics/w/jobs/after", json={"body": 1})
            waiter.join(20)
            assert result["r"].status_code == 200
            assert result["r"].json()["jobs"][0]["id"] == "after"
        output = served.output
        assert f"(pid {first}) was killed by SIGKILL; restarting it from" in output
        assert f"is back on unix://{data_dir.resolve() / 'redis.sock'}?db=0" in output
    finally:
        assert served.stop() == 0
    assert not alive_redis(second)


def test_serve_exits_non_zero_when_its_redis_cannot_come_back(data_dir: Path) -> None:
    served = start_serve(data_dir, "--appendfsync", "always")
    with httpx.Client(base_url=served.url, timeout=30) as http:
        assert http.put("/v1/topics/t/jobs/j", json={"body": 1}).status_code == 201
    # Garbage in the append-only file: the restarted server refuses to load it.
    aofs = list(data_dir.glob("appendonlydir/*.incr.aof")) or list(data_dir.glob("*.aof"))
    assert aofs
    for aof in aofs:
        with aof.open("ab") as handle:
            handle.write(b"this is not a Redis command\r\n")
    pid = _redis_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    code = served.process.wait(60)
    output = served.output
    assert code == 1, output
    assert "restart 1/5 of the embedded redis-server failed" in output
    assert "restart 5/5 of the embedded redis-server failed" in output
    assert "Bad file format" in output  # the cause, from the server's log
    assert "was killed by SIGKILL and could not be restarted after 5 attempts" in output
    assert not alive_redis(_redis_pid(data_dir))


def test_killing_serve_takes_its_redis_down(data_dir: Path) -> None:
    served = start_serve(data_dir)
    pid = _redis_pid(data_dir)
    assert alive_redis(pid)
    served.kill()
    _wait(lambda: not alive_redis(pid), 10, "the redis-server to follow serve")
    again = start_serve(data_dir)  # the folder is free at once
    assert "stopping the redis-server" not in again.output
    assert again.stop() == 0


def test_a_redis_left_on_the_folder_is_stopped_first(data_dir: Path) -> None:
    # A server no serve owns (as a serve killed on a system without PDEATHSIG leaves one).
    data_dir.mkdir(parents=True)
    leftover = subprocess.Popen(
        [find_binary(), "--port", str(free_port()), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(data_dir), "--pidfile", str(data_dir / PIDFILE), "--appendonly", "yes"],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait(lambda: (data_dir / PIDFILE).exists(), 10, "the leftover's pidfile")
        served = start_serve(data_dir)
        assert f"stopping the redis-server (pid {leftover.pid}) left running" in served.output
        assert leftover.wait(10) == 0  # stopped with SIGTERM: it wrote its AOF and exited
        assert served.stop() == 0
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_by_default_only_the_owner_can_reach_the_embedded_redis(data_dir: Path) -> None:
    served = start_serve(data_dir)
    try:
        socket_path = data_dir.resolve() / "redis.sock"
        assert f"embedded redis-server on unix://{socket_path}?db=0," in served.output
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # the AOF's folder
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o700
        with redis.Redis(unix_socket_path=str(socket_path)) as conn:
            assert conn.config_get("port") == {"port": "0"}  # no TCP port for other users
        pid = _redis_pid(data_dir)
        assert not _tcp_listening(pid), "the embedded redis-server listens on TCP"
    finally:
        assert served.stop() == 0


def _tcp_listening(pid: int) -> bool:
    """True if process ``pid`` holds a listening TCP socket (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return True
    return False


def test_a_fixed_port_and_a_unix_socket_for_workers(data_dir: Path) -> None:
    port = free_port()
    served = start_serve(data_dir, "--redis-port", str(port))
    try:
        socket_url = f"unix://{data_dir.resolve() / 'redis.sock'}?db=0"
        assert f"workers connect with REDISCHED_REDIS_URL={socket_url}" in served.output
        assert f"embedded redis-server on redis://127.0.0.1:{port}/0" in served.output
        with httpx.Client(base_url=served.url) as http:
            http.put("/v1/topics/t/jobs/j", json={"body": 1})
        for url in (socket_url, f"redis://127.0.0.1:{port}/0"):
            with redis.Redis.from_url(url) as conn:
                assert conn.ping() and conn.exists("redisched:{t}:jobs")
            with redisched.Client.from_url(url) as client:  # what a worker does with it
                job = client.get("t", "j")
                assert job is not None and job.body == b"1"
    finally:
        assert served.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_says_when_it_stops(data_dir: Path, sig: signal.Signals) -> None:
    served = start_serve(data_dir)
    served.process.send_signal(sig)
    assert served.process.wait(20) == 0
    assert f"redisched: {sig.name}, stopping" in served.output
    assert served.output.rstrip().endswith("redisched stopped")


def test_the_embedded_redis_port_must_be_a_port(tmp_path: Path) -> None:
    result = subprocess.run(
        [REDISCHED, "serve", "--redis-port", "70000", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, env=_env(None),
    )  # fmt: skip
    assert result.returncode == 2  # a usage error, as every refused value
    assert result.stderr.strip().endswith("\nError: --redis-port: must be between 0 and 65535")
    assert result.stderr.startswith("Usage: redisched serve [OPTIONS]")
