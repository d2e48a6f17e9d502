"""A bounded red-team pass against a real ``redisched serve`` on a loopback port.

Starts a private redis-server and ``redisched serve --redis-url`` on free loopback ports, puts a
set of jobs it keeps as *acknowledged* (2xx answers only), then sends a seeded stream of
hostile requests mixed with ordinary ones, and hostile writes straight into Redis (bad topic
names in the topics set, deep/binary/text bodies). At the end it checks:

* ``5xx``: answers 500 or over (0 expected);
* ``lost``: acknowledged jobs that are gone or changed (0 expected) - no hostile request may
  delete, replace, lease or pause them (cross-site and foreign-Host requests are refused);
* ``leased_and_kept``: jobs reserved now that no reserve answer handed out (0 expected);
* that the requeue sweep still runs (a lease whose ttr ran out comes back) and ``/healthz``
  still answers 200.

Run: ``.venv/bin/python -m bench.redteam [--requests N] [--seed S]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.common import emit, private_redis
from redisched.embedded import free_port

REDISCHED = str(Path(sys.executable).with_name("redisched"))
KEPT = "redteam-kept"  # the acknowledged jobs live here; attacks aim at it too
POISON = "redteam-poison"  # bodies written around the API


def _job(topic: str, job_id: str, action: str = "") -> str:
    url = f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(job_id, safe='')}"
    return f"{url}/{action}" if action else url


def _deep(depth: int, closed: bool = True) -> bytes:
    return b"[" * depth + (b"]" * depth if closed else b"")


def attacks(rng: random.Random, kept: list[str]) -> list[tuple[str, str, dict[str, str], bytes]]:
    """A shuffled list of (method, path, headers, body): hostile and ordinary requests."""
    victim = rng.choice(kept)
    evil = {"Origin": "http://attacker.example", "Content-Type": "text/plain"}
    foreign = {"Host": "attacker.example"}
    out: list[tuple[str, str, dict[str, str], bytes]] = []
    for n in range(8):
        # cross-site and foreign-Host writes aimed at acknowledged jobs: must change nothing
        out += [
            ("DELETE", _job(KEPT, victim), evil, b""),
            ("PUT", _job(KEPT, victim), evil, b'{"body": "overwritten"}'),
            ("POST", f"/v1/topics/{KEPT}/reserve", evil, b'{"count": 1000}'),
            ("POST", f"/v1/topics/{KEPT}/reserve", {"Sec-Fetch-Site": "cross-site"}, b"{}"),
            ("PATCH", f"/v1/topics/{KEPT}", evil, b'{"paused": true}'),
            ("DELETE", _job(KEPT, victim), {"Origin": "null"}, b""),
            ("GET", _job(KEPT, victim), foreign, b""),
            ("DELETE", _job(KEPT, victim), foreign, b""),
            ("PUT", _job(KEPT, rng.choice(kept)), {"Origin": "http://localhost:1"}, b'{"body":1}'),
        ]
        # deep nesting, duplicate keys, loose numbers, cursors, escapes, junk
        scratch = f"redteam-scratch-{n}"
        out += [
            ("PUT", _job(scratch, "deep"), {}, b'{"body": ' + _deep(rng.randint(500, 9000)) + b"}"),
            ("PUT", _job(scratch, "open"), {}, b'{"body": ' + _deep(5000, closed=False)),
            ("PUT", _job(scratch, "dup"), {}, b'{"body": 1, "delay": 5, "delay": 0}'),
            ("PUT", _job(scratch, "num"), {}, b'{"body": 1_0}'),
            ("GET", f"/v1/topics/{scratch}/jobs?state=ready&cursor=\u00b2", {}, b""),
            ("GET", f"/v1/topics/{scratch}/jobs?state=ready&cursor=\u0661\u0662", {}, b""),
            ("GET", f"/v1/topics/{scratch}/jobs?state=ready&limit=1_0", {}, b""),
            ("GET", f"/v1/topics/{scratch}/timeline?width=6_0", {}, b""),
            ("GET", f"/v1/topics/{scratch}/jobs/a%%32Fb", {}, b""),
            ("GET", "/v1/topics/%ff%fe/jobs/x", {}, b""),
            ("GET", "/v1/topics/a%7Bb%7D", {}, b""),
            ("PUT", _job(scratch, "x" * 2000), {}, b'{"body": 1}'),
            ("PUT", _job(scratch, "bad"), {}, bytes(rng.getrandbits(8) for _ in range(64))),
            ("PUT", _job(scratch, "ok"), {"Content-Type": "application/json"}, b'{"body": 1}'),
            ("POST", f"/v1/topics/{scratch}/reserve", {}, b'{"count": 10, "wait": 0}'),
            ("POST", _job(scratch, "ok", "release"), {}, b'{"token": "forged", "reason": 5}'),
            ("PATCH", f"/v1/topics/{scratch}", {},
             b'{"webhook": {"url": "http://168.63.129.16/"}}'),
            ("PATCH", f"/v1/topics/{scratch}", {}, b'{"webhook": {"url": "http://0x7f.1/"}}'),
        ]  # fmt: skip
        # readers of the poisoned topic and of every topic
        out += [
            ("GET", f"/v1/topics/{POISON}/jobs?state=ready", {}, b""),
            ("POST", f"/v1/topics/{POISON}/reserve", {}, b'{"count": 10}'),
            ("GET", "/v1/topics", {}, b""),
            ("GET", "/metrics", {}, b""),
            ("GET", "/dashboard/overview", {}, b""),
            ("GET", f"/dashboard/topic?topic={POISON}", {}, b""),
        ]
    rng.shuffle(out)
    return out


BAD_TOPIC_NAMES = (b"\xff\xfe", b"ctl\x01name", b"a{b}", b"")


async def main_async(requests: int, seed: int, url: str, redis_url: str) -> dict[str, Any]:
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        kept = [f"kept-{n}" for n in range(200)]
        acknowledged: dict[str, int] = {}
        for job_id in kept:
            reply = await http.put(_job(KEPT, job_id), json={"body": {"n": job_id}, "delay": 3600})
            if reply.is_success:
                acknowledged[job_id] = int(reply.headers["etag"].strip('"'))
        from redisched import AsyncClient

        async with AsyncClient.from_url(redis_url) as py:
            bodies = {"deep": _deep(5000), "open": _deep(5000, False), "binary": b"\xff\x00",
                      "text": b"plain text", "marker": b'{"$base64": "AA=="}'}  # fmt: skip
            for name, data in bodies.items():
                await py.put(POISON, name, data, max_attempts=1)
            await py.redis.sadd("redisched:topics", *BAD_TOPIC_NAMES)
        sent = 0
        handed: set[str] = set()
        gate = asyncio.Semaphore(16)

        async def send(method: str, path: str, headers: dict[str, str], body: bytes) -> None:
            nonlocal sent
            async with gate:
                try:
                    reply = await http.request(method, path, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    failures.append(f"{method} {path[:60]}: {exc!r}")
                    return
                sent += 1
                statuses[reply.status_code] += 1
                if reply.status_code == 200 and path.endswith(f"{POISON}/reserve"):
                    handed.update(job["id"] for job in reply.json()["jobs"])
                if reply.status_code >= 500:
                    failures.append(f"{method} {path[:60]} -> {reply.status_code}")

        while sent < requests:
            batch = attacks(rng, kept)[: requests - sent]
            await asyncio.gather(*(send(*request) for request in batch))
            await send("PUT", f"/v1/topics/{POISON}/jobs/again", {}, b'{"body": 1}')

        async def get(path: str) -> Any:
            try:
                reply = await http.get(path)
            except httpx.HTTPError:
                return None
            return reply.json() if reply.status_code == 200 else None

        lost = []
        for job_id, version in acknowledged.items():
            job = await get(_job(KEPT, job_id))
            if job is None or job["version"] != version or job["state"] != "scheduled":
                lost.append(job_id)
        # poisoned jobs leased by reserves and answered: none may be stuck in reserved
        async with AsyncClient.from_url(redis_url) as py:
            await py.put("redteam-requeue", "r", b"1", ttr=0.2)
            leased = await py.reserve("redteam-requeue")
            reserved = await py.jobs(POISON, "reserved", limit=1000)
            stuck = len({job.id for job in reserved.jobs} - handed)
        requeued = False
        for _ in range(50):
            await asyncio.sleep(0.1)
            job = await get(_job("redteam-requeue", "r"))
            if job is not None and job["state"] == "ready":
                requeued = True
                break
        health = (await http.get("/healthz")).status_code
        paused = ((await get(f"/v1/topics/{KEPT}")) or {}).get("paused")
    return {
        "seed": seed,
        "requests": sent,
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
        "transport_errors": len([f for f in failures if "->" not in f]),
        "acknowledged_puts": len(acknowledged),
        "lost": len(lost),
        "kept_topic_paused": paused,
        "leased_and_kept": stuck,
        "requeue_sweep_alive": requeued and leased is not None,
        "healthz": health,
        "failures": failures[:20],
        "load_average": os.getloadavg(),
    }


def run(requests: int, seed: int) -> dict[str, Any]:
    """Start redis and serve, attack, stop both; the findings."""
    with private_redis() as server, tempfile.TemporaryDirectory(prefix="redteam-") as folder:
        port = free_port()
        log = Path(folder) / "serve.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [REDISCHED, "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--redis-url", server.url, "--data-dir", str(Path(folder) / "data")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"serve did not start:\n{log.read_text()}")
                time.sleep(0.1)
            result = asyncio.run(main_async(requests, seed, url, server.url))
            result["serve_log_tracebacks"] = log.read_text().count("Traceback")
            return result
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            shutil.copy(log, Path(tempfile.gettempdir()) / "redteam-serve.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = random.randrange(2**32) if args.seed is None else args.seed
    emit("redteam", run(args.requests, seed))


if __name__ == "__main__":
    main()
