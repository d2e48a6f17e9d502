"""Jobs cross languages: Node.js, Go and Python share one Redis and the same scripts."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

import redisched
from tests.glueproc import NODE_BIN, NODE_DIR, NODE_HANDLERS, env, require_node, running, stop
from tests.workerproc import wait_for

NODE_PRELUDE = """
const Redis = require('ioredis');
const { Scheduler } = require('./redisched');
const [url, topic, token] = process.argv.slice(1);
const redis = new Redis(url);
const s = new Scheduler(redis);
(async () => {
  const out = await (%s);
  console.log(JSON.stringify(out));
  await redis.quit();
})().catch((err) => { console.error(err); process.exit(1); });
"""


def node(expression: str, *args: str) -> Any:
    """Evaluate a JS expression (awaited) with ``s`` = a Scheduler; its value as JSON."""
    require_node()
    proc = subprocess.run(
        ["node", "-e", NODE_PRELUDE % expression, "--", *args],
        cwd=NODE_DIR, env=env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def go(binary: Path, redis_url: str, *args: str) -> Any:
    """Run the Go command against ``redis_url``; its output as JSON."""
    proc = subprocess.run(
        [str(binary), *args],
        env=env(redis_url), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_job_put_from_node_is_reserved_and_acked_from_python(
    redis_url: str, topic: str, client: redisched.Client
) -> None:
    put = "s.put(topic, 'from-node', Buffer.from([0, 255, 104, 105]), {priority: 2, ttrMs: 5000, maxAttempts: 3})"  # noqa: E501
    assert node(put, redis_url, topic) == {"status": "created", "version": 1}
    assert topic in client.topics()
    job = client.reserve(topic)
    assert job is not None
    assert (job.id, job.body, job.priority, job.ttr, job.max_attempts, job.attempts) == (
        "from-node", b"\x00\xffhi", 2, 5.0, 3, 1,
    )  # fmt: skip
    client.ack(job)
    assert client.get(topic, "from-node") is None
    assert client.stats(topic).total_acked == 1


def test_job_put_from_python_is_read_from_go(
    redis_url: str, topic: str, client: redisched.Client, go_cli: Path
) -> None:
    body = b"\x00\xff binary \xe2\x82\xac"
    client.put(topic, "from-python", body, delay=3600, priority=-3, ttr=12.5, max_attempts=4)
    stored = client.get(topic, "from-python")
    assert stored is not None
    assert go(go_cli, redis_url, "get", topic, "from-python") == {
        "topic": topic, "id": "from-python", "state": "scheduled", "version": 1, "attempts": 0,
        "priority": -3, "ttr_ms": 12500, "max_attempts": 4,
        "run_at_ms": round(stored.run_at.timestamp() * 1000), "token": "",
        "reserved_until_ms": 0, "last_error": "", "body": base64.b64encode(body).decode(),
        "pending_version": 0,
    }  # fmt: skip
    assert go(go_cli, redis_url, "get", topic, "missing") is None


def test_lease_taken_in_go_is_acked_from_node_and_stale_in_python(
    redis_url: str, topic: str, client: redisched.Client, go_cli: Path
) -> None:
    client.put(topic, "j", b"work")
    [job] = go(go_cli, redis_url, "reserve", topic)
    assert (job["id"], job["state"], job["attempts"]) == ("j", "reserved", 1)
    ack = "s.ack({topic, id: 'j', token}).then(() => 'acked')"
    assert node(ack, redis_url, topic, job["token"]) == "acked"
    assert client.get(topic, "j") is None
    with pytest.raises(redisched.StaleReservation):
        client.ack(SimpleNamespace(topic=topic, id="j", token=job["token"]))


def test_job_put_from_python_runs_on_the_go_worker_and_from_go_on_the_node_worker(
    redis_url: str, topic: str, client: redisched.Client, go_cli: Path, go_testworker: Path
) -> None:
    client.put(topic, "from-python", b"p")
    assert go(go_cli, redis_url, "put", topic, "from-go", "g")["status"] == "created"
    with running([str(go_testworker), "-concurrency=1", topic], redis_url) as proc:
        wait_for(lambda: client.stats(topic).total_acked == 2, 10, "the Go worker's acks")
        assert stop(proc) == 0
    assert go(go_cli, redis_url, "put", topic, "go-to-node", "n")["status"] == "created"
    require_node()
    command = ["node", str(NODE_BIN), "worker", str(NODE_HANDLERS)]
    with running(command, redis_url, GLUE_TOPICS=topic) as proc:
        wait_for(lambda: client.stats(topic).total_acked == 3, 10, "the Node worker's ack")
        assert stop(proc) == 0
    runs = [r.decode().split()[0] for r in redis.Redis.from_url(redis_url).lrange(
        f"gluetest:{topic}:runs", 0, -1)]  # fmt: skip
    assert sorted(runs[:2]) == ["from-go", "from-python"] and runs[2:] == ["go-to-node"]


def test_lease_taken_in_node_is_stale_in_python_after_it_times_out(
    redis_url: str, topic: str, client: redisched.Client
) -> None:
    client.put(topic, "j", b"work")
    lease = "s.lease(topic, {ttrMs: 200}).then((l) => l.jobs.map((j) => j.token))"
    [token] = node(lease, redis_url, topic)
    time.sleep(0.3)
    assert client.requeue(topic) == 1
    with pytest.raises(redisched.StaleReservation):
        client.ack(SimpleNamespace(topic=topic, id="j", token=token))
    job = client.reserve(topic)
    assert job is not None and job.attempts == 2 and job.token != token
    client.ack(job)
