"""Four real processes consume one every-second schedule for a minute; one is killed (-9).

Two ``redisched worker`` processes, one ``redisched serve`` pushing to a webhook and one bare
reserve loop share the topic. Each occurrence is put by whichever process leased the previous
one, in the same script call, so no process is special: the property is that every second of
the minute ran exactly once, with no gap and no double, although the bare loop dies by SIGKILL
half-way. The victim records a run and acks it in one MULTI, so that a kill cannot split them
(a handler killed between its work and its ack runs again: that at-least-once redelivery is the
subject of test_worker_kill.py, not of schedules).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import redis

import redisched
from redisched.embedded import EmbeddedRedis, free_port
from tests.conftest import BINARIES
from tests.workerproc import ROOT, read_until, spawn, wait_for

RUN_SECONDS = 60
KILL_AFTER = 30
TTR = 3

BARE_LOOP = """
import os, sys, time
import redis
import redisched
from redisched import scripts
from redisched.protocol import command

url, topic, key = sys.argv[1:4]
client = redisched.Client.from_url(url)
raw = redis.Redis.from_url(url)
raw.script_load(scripts.get("ack").source)
print("bare loop serving", flush=True)
while True:
    job = client.reserve(topic)
    if job is None:
        time.sleep(0.02)
        continue
    pipe = raw.pipeline(transaction=True)
    pipe.hincrby(key + ":runs", job.id, 1)
    for step in client.ops.ack(job).steps[:1]:
        pipe.execute_command(*command(step))
    pipe.execute()
"""


class _Receiver(BaseHTTPRequestHandler):
    """The webhook: records the occurrence it got, answers 200 (the dispatcher then acks)."""

    conn: ClassVar[redis.Redis]
    key: ClassVar[str]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.conn.hincrby(f"{self.key}:runs", body["id"], 1)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def proc_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server (the newest available) for the processes."""
    binary = BINARIES.get("redis7", BINARIES["redis6"])
    with EmbeddedRedis(tmp_path_factory.mktemp("sched"), binary=binary, persistent=False) as srv:
        yield srv.url


def _serve(redis_url: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}
    env.update(REDISCHED_REDIS_URL=redis_url, REDISCHED_ALLOW_PRIVATE_WEBHOOKS="1")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from redisched.cli import run; run()", "serve", "--port",
             str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@pytest.mark.timeout(240)
def test_four_processes_run_every_occurrence_once_through_a_kill_9(
    proc_redis: str, topic: str, tmp_path: Path
) -> None:
    key = f"sched-{topic}"
    raw = redis.Redis.from_url(proc_redis)
    _Receiver.conn, _Receiver.key = raw, key
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    client = redisched.Client.from_url(proc_redis)
    client.configure(topic, webhook={"url": f"http://127.0.0.1:{receiver.server_port}/hook"})
    workers = [spawn(proc_redis, key, "record", "--topic", topic) for _ in range(2)]
    serve, _ = _serve(proc_redis, tmp_path / "serve.log")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    victim = subprocess.Popen(
        [sys.executable, "-c", BARE_LOOP, proc_redis, topic, key], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for worker in workers:
            read_until(worker, "worker serving", 30)
        assert victim.stdout is not None and b"serving" in victim.stdout.readline()
        start = datetime.fromtimestamp(int(time.time()) + 2, tz=UTC)
        client.schedule(topic, "tick", b"t", every=1, start_at=start, ttr=TTR)
        time.sleep(max(0.0, start.timestamp() + KILL_AFTER - time.time()))
        victim.kill()
        victim.communicate()
        time.sleep(max(0.0, start.timestamp() + RUN_SECONDS - time.time()))
        assert client.unschedule(topic, "tick")
        end = datetime.now(UTC)

        def settled() -> bool:
            stats = client.stats(topic)
            return stats.scheduled + stats.ready + stats.reserved == 0

        wait_for(settled, 3 * TTR + 10, "the last occurrences to finish")
        time.sleep(0.5)  # the dispatcher's receiver records before its ack
    finally:
        for process in (*workers, serve):
            process.terminate()
        logs = [worker.communicate(timeout=30)[1].decode(errors="replace") for worker in workers]
        serve.wait(30)
        if victim.poll() is None:
            victim.kill()
            victim.communicate()
        receiver.shutdown()
        receiver.server_close()
        client.close()
    assert all("Traceback" not in log for log in logs), logs
    runs = {k.decode(): int(v) for k, v in raw.hgetall(f"{key}:runs").items()}
    times = sorted(
        datetime.strptime(i, "tick@%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for i in runs
    )
    assert times[0] == start
    expected = []
    moment = start
    while moment <= times[-1]:
        expected.append(moment)
        moment += timedelta(seconds=1)
    assert times == expected, "an occurrence is missing"
    assert times[-1] >= end - timedelta(seconds=3)
    doubled = {i: n for i, n in runs.items() if n != 1}
    assert not doubled, f"occurrences run more than once: {doubled}"
    assert len(runs) >= RUN_SECONDS - 2
    # all four consumers took part
    by_worker = raw.lrange(f"{key}:log", 0, -1)
    pids = {line.split()[-1] for line in by_worker}
    assert len(pids) == 2, "both workers ran occurrences"
    assert len(runs) > len(by_worker), "the dispatcher and the bare loop ran some too"
    raw.close()
