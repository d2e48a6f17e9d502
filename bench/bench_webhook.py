"""Webhook deliveries/s from one dispatcher process to a local receiver.

The receiver is an aiohttp server in its own process (answers 200 to every POST). In the same
run, on the same receiver, the baseline is raw aiohttp POSTs of a similar JSON body from one
process with the same number of requests in flight: the ceiling of any Python dispatcher
(no Redis, no signing, no acks). For the dispatcher, due jobs are put, and one
:class:`~redisched.push.dispatcher.Dispatcher` delivers them (signed with one secret, acked
in Redis); the figure is jobs/s from its start until its last ack applied. A third series
adds a topic ``concurrency`` limit, so that the cost of the Redis-side slots shows. A fourth,
``signed_no_redis``, sends the dispatcher's own requests (:func:`~redisched.push.delivery.deliver`
on a session made as the dispatcher makes its own: the payload built from a reserved job, its
message id, signature and headers, the answer read and classified) with no Redis and no lease
loop, from ``concurrency`` coroutines as the baseline does: with it ``ratio_to_baseline``
splits into ``request_ratio`` (what a delivery's request costs over a bare POST) times
``leasing_ratio`` (what leasing, acking and the places cost over those requests).

The three run in ``--blocks`` alternating blocks of ``--jobs`` requests each (baseline,
dispatcher, limited, baseline...), and each figure is the median of its blocks: on a shared
machine the load changes within seconds, and a ratio of runs made at different times would
measure the load, not the code. Each dispatcher block pays its start (session, topic reads,
subscription: ~10 ms), so a block should stay thousands of jobs long.

Run: ``.venv/bin/python -m bench.bench_webhook [--jobs N] [--concurrency C] [--blocks B]``;
prints JSON. Uses uvloop when installed, as ``redisched serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import emit, private_redis
from redisched import AsyncClient, Job, JobState
from redisched.push import delivery, signing
from redisched.push.dispatch_metrics import Outcome
from redisched.push.dispatcher import Dispatcher, webhook_session
from redisched.push.targets import TargetPolicy
from redisched.topic_config import Webhook
from redisched.wakeup import Wakeups

HEADERS = {"content-type": "application/json"}
BODY = json.dumps({"order": 12345, "items": ["a", "b", "c"], "note": "x" * 40}).encode()


def _loop_policy() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_receiver(port: int) -> None:
    """The receiver process: 200 to every POST /hook (body read), its count at GET /count."""
    _loop_policy()
    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        return web.Response(status=200)

    async def counted(request: web.Request) -> web.Response:
        return web.json_response({"count": count})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", counted)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the receiver did not start")


async def raw_posts(url: str, requests: int, concurrency: int) -> dict[str, int]:
    """POSTs/s of a bare aiohttp client with ``concurrency`` requests in flight."""
    left = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with session.post(
                url, data=BODY, headers={"content-type": "application/json"}
            ) as r:
                await r.read()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return {
            "posts_per_s": round(requests / seconds),
            "client_cpu_us_per_post": round(cpu / requests * 1e6),
        }


SECRET = "whsec_YmVuY2htYXJrLXNlY3JldA=="


async def signed_posts(url: str, requests: int, concurrency: int) -> dict[str, int]:
    """Requests/s of the dispatcher's own deliveries (:func:`delivery.deliver`: payload,
    message id, signature, the answer read and classified) with ``concurrency`` in flight and
    no Redis: jobs made beforehand as a lease makes them, a session as the dispatcher's."""
    webhook = Webhook(url=url, secrets=(SECRET,), timeout=10)
    keys = [signing.prepared(signing.secret_key(secret)) for secret in webhook.secrets]
    now = datetime.now(UTC)
    jobs = [
        Job(
            topic="hooks",
            id=f"j{i}",
            body=BODY,
            state=JobState.RESERVED,
            run_at=now,
            priority=0,
            ttr=20.0,
            attempts=1,
            max_attempts=25,
            version=1,
            token=f"{i}",
            reserved_until=now,
            last_error=None,
        )
        for i in range(requests)
    ]
    left = requests
    failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            result = await delivery.deliver(session, jobs[left], webhook, keys, delivery.UNTIMED)
            failed += result.verdict is not delivery.Verdict.DONE

    async with webhook_session(TargetPolicy.of(allow_private=True)) as session:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if failed:
        raise RuntimeError(f"{failed} signed requests failed")
    return {
        "requests_per_s": round(requests / seconds),
        "client_cpu_us_per_request": round(cpu / requests * 1e6),
    }


class _Finished:
    """Dispatch metrics that wake the bench when every job has ended (acked or dead): no
    polling of the topic, which would cost the dispatcher and Redis while they are timed."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.ended = 0
        self.done = asyncio.Event()

    def delivery(self, topic: str, outcome: Outcome, seconds: float) -> None:
        if outcome in (Outcome.ACKED, Outcome.DEAD):
            self.ended += 1
            if self.ended >= self.jobs:
                self.done.set()

    def lag(self, topic: str, seconds: float) -> None:
        pass

    def held(self, topic: str, held: bool) -> None:
        pass


async def dispatched(
    redis_url: str, url: str, jobs: int, concurrency: int, limit: int | None
) -> dict[str, Any]:
    """Deliveries/s of one Dispatcher emptying a topic of ``jobs`` due jobs."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topic = "hooks"
    async with AsyncClient.from_url(redis_url, prefix=prefix) as client:
        webhook = {"url": url, "secrets": [SECRET], "timeout": 10}
        await client.configure(topic, webhook=webhook, concurrency=limit)
        for start in range(0, jobs, 1000):
            batch = [(f"j{i}", BODY) for i in range(start, min(jobs, start + 1000))]
            await client.put_many(topic, batch)
        wakeups = Wakeups(client.redis, prefix=prefix)
        finished = _Finished(jobs)
        dispatcher = Dispatcher(
            client, wakeups, allow_private_webhooks=True, concurrency=concurrency,
            metrics=finished,
        )  # fmt: skip
        started, cpu = time.perf_counter(), time.process_time()
        await dispatcher.start()
        await asyncio.wait_for(finished.done.wait(), timeout=max(60.0, jobs / 100))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        await dispatcher.stop()
        await wakeups.close()
        stats = await client.stats(topic)
        return {
            "deliveries_per_s": round(jobs / seconds),
            "dispatcher_cpu_us_per_delivery": round(cpu / jobs * 1e6),
            "acked": stats.total_acked,
            "dead": stats.dead,
            "topic_concurrency": limit,
        }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the blocks (counts summed)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [run[key] for run in runs]
        if key in ("acked", "dead"):
            out[key] = sum(values)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round(statistics.median(values))
        else:
            out[key] = value
    return out


async def main(jobs: int, concurrency: int, blocks: int, loop: str) -> None:
    port = _free_port()
    receiver = multiprocessing.get_context("spawn").Process(
        target=_serve_receiver, args=(port,), daemon=True
    )
    receiver.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(f"{base}/count")
        await raw_posts(f"{base}/hook", 2000, concurrency)  # warm up both sides
        per_block = jobs
        baselines, signeds, frees, limiteds = [], [], [], []
        with private_redis() as redis_server:
            for _ in range(blocks):
                hook = f"{base}/hook"
                baselines.append(await raw_posts(hook, per_block, concurrency))
                signeds.append(await signed_posts(hook, per_block, concurrency))
                frees.append(await dispatched(redis_server.url, hook, per_block, concurrency, None))
                limiteds.append(
                    await dispatched(redis_server.url, hook, per_block, concurrency, 50)
                )
    finally:
        receiver.terminate()
        receiver.join(5)
    baseline, free, limited = _median(baselines), _median(frees), _median(limiteds)
    signed = _median(signeds)
    emit(
        "webhook",
        {
            "loop": loop,
            "jobs_per_block": per_block,
            "blocks": blocks,
            "in_flight": concurrency,
            "body_bytes": len(BODY),
            "baseline_raw_aiohttp": baseline,
            "dispatcher": free,
            "dispatcher_topic_concurrency_50": limited,
            "signed_no_redis": signed,
            "ratio_to_baseline": round(free["deliveries_per_s"] / baseline["posts_per_s"], 3),
            "request_ratio": round(signed["requests_per_s"] / baseline["posts_per_s"], 3),
            "leasing_ratio": round(free["deliveries_per_s"] / signed["requests_per_s"], 3),
            "block_ratios": [
                round(f["deliveries_per_s"] / b["posts_per_s"], 3)
                for f, b in zip(frees, baselines, strict=True)
            ],
            "target_deliveries_per_s": 3000,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000, help="requests per block and series")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=3, help="alternating blocks (default 3)")
    arguments = parser.parse_args()
    loop_name = _loop_policy()
    asyncio.run(main(arguments.jobs, arguments.concurrency, arguments.blocks, loop_name))
