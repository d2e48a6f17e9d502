"""Webhook deliveries/s from one dispatcher process to a local receiver.

The receiver is an aiohttp server in its own process (answers 200 to every POST). In the same
run, on the same receiver, the baseline is raw aiohttp POSTs of a similar JSON body from one
process with the same number of requests in flight: the ceiling of any Python dispatcher
(no Redis, no signing, no acks). Then ``--jobs`` due jobs are put, and one
:class:`~redisched.push.dispatcher.Dispatcher` delivers them (signed with one secret, acked
in Redis); the figure is jobs/s from its start until the topic is empty. A third run adds a
topic ``concurrency`` limit, so that the cost of the Redis-side slots shows.

Run: ``.venv/bin/python -m bench.bench_webhook [--jobs N] [--concurrency C]``; prints JSON.
Uses uvloop when installed, as ``redisched serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import emit, private_redis
from redisched import AsyncClient
from redisched.push.dispatcher import Dispatcher
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


async def dispatched(
    redis_url: str, url: str, jobs: int, concurrency: int, limit: int | None
) -> dict[str, Any]:
    """Deliveries/s of one Dispatcher emptying a topic of ``jobs`` due jobs."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topic = "hooks"
    async with AsyncClient.from_url(redis_url, prefix=prefix) as client:
        webhook = {"url": url, "secrets": ["whsec_YmVuY2htYXJrLXNlY3JldA=="], "timeout": 10}
        await client.configure(topic, webhook=webhook, concurrency=limit)
        for start in range(0, jobs, 1000):
            batch = [(f"j{i}", BODY) for i in range(start, min(jobs, start + 1000))]
            await client.put_many(topic, batch)
        wakeups = Wakeups(client.redis, prefix=prefix)  # type: ignore[arg-type]
        dispatcher = Dispatcher(
            client, wakeups, allow_private_webhooks=True, concurrency=concurrency
        )
        started, cpu = time.perf_counter(), time.process_time()
        await dispatcher.start()
        while True:
            stats = await client.stats(topic)
            if stats.scheduled + stats.ready + stats.reserved == 0:
                break
            await asyncio.sleep(0.02)
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


async def main(jobs: int, concurrency: int, loop: str) -> None:
    port = _free_port()
    receiver = multiprocessing.get_context("spawn").Process(
        target=_serve_receiver, args=(port,), daemon=True
    )
    receiver.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(f"{base}/count")
        await raw_posts(f"{base}/hook", 2000, concurrency)  # warm up both sides
        baseline = await raw_posts(f"{base}/hook", jobs, concurrency)
        with private_redis() as redis_server:
            free = await dispatched(redis_server.url, f"{base}/hook", jobs, concurrency, None)
            limited = await dispatched(redis_server.url, f"{base}/hook", jobs, concurrency, 50)
    finally:
        receiver.terminate()
        receiver.join(5)
    emit(
        "webhook",
        {
            "loop": loop,
            "jobs": jobs,
            "in_flight": concurrency,
            "body_bytes": len(BODY),
            "baseline_raw_aiohttp": baseline,
            "dispatcher": free,
            "dispatcher_topic_concurrency_50": limited,
            "ratio_to_baseline": round(free["deliveries_per_s"] / baseline["posts_per_s"], 3),
            "target_deliveries_per_s": 3000,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    arguments = parser.parse_args()
    loop_name = _loop_policy()
    asyncio.run(main(arguments.jobs, arguments.concurrency, loop_name))
