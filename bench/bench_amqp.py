"""Messages/s from RabbitMQ to committed jobs through one ``redisched bridge amqp`` process.

Baselines measured in the same run, on the same broker: the broker's own publish rate
(persistent messages, publisher confirms) and a bare consumer that only acks (no Redis), the
ceiling any bridge could reach. Two message shapes: every message due after the same delay
(grouped into ``put_many``), and every message with its own ``run_at`` (one put each).

Run: ``.venv/bin/python -m bench.bench_amqp [--messages N]``; prints JSON. Uses the machine's
RabbitMQ on 127.0.0.1:5672 (queues named ``redisched-bench-*``, deleted at the end) and an
embedded redis-server (AOF everysec, as ``redisched serve`` runs it) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from redisched import AsyncClient
from redisched.embedded import EmbeddedRedis

AMQP_URL = os.environ.get("REDISCHED_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
WINDOW = 1000  # publishes in flight at once


def messages(topic: str, count: int, grouped: bool) -> list[bytes]:
    """JSON put messages; grouped ones share their options, the others each have a run_at."""
    base = time.time() + 86_400
    return [
        json.dumps({
            "topic": topic, "id": f"m-{i}", "body": {"n": i, "text": "hello"},
            **({"delay": 3600} if grouped else {"run_at": round(base + i, 3)}),
        }).encode()
        for i in range(count)
    ]  # fmt: skip


async def publish(channel: AbstractChannel, queue: str, bodies: list[bytes]) -> float:
    """Publish with confirms, ``WINDOW`` at a time; seconds taken."""
    started = time.perf_counter()
    exchange = channel.default_exchange
    for start in range(0, len(bodies), WINDOW):
        await asyncio.gather(*(
            exchange.publish(aio_pika.Message(body, delivery_mode=2), routing_key=queue)
            for body in bodies[start : start + WINDOW]
        ))  # fmt: skip
    return time.perf_counter() - started


async def bare_consume(channel: AbstractChannel, queue: str, count: int, prefetch: int) -> float:
    """Consume and ack ``count`` messages doing nothing else (the ceiling); seconds taken."""
    await channel.set_qos(prefetch_count=prefetch)
    declared = await channel.declare_queue(queue, passive=True)
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        seen += 1
        if seen % 100 == 0 or seen == count:  # acks as the bridge does: many at once
            await message.ack(multiple=True)
        if seen == count:
            done.set()

    started = time.perf_counter()
    tag = await declared.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - started
    await declared.cancel(tag)
    return elapsed


async def bridge_drain(
    channel: AbstractChannel, client: AsyncClient, redis_url: str, queue: str, topic: str,
    count: int, prefetch: int,
) -> float:  # fmt: skip
    """Start one bridge process on a filled queue; seconds from its first consume to the last
    committed job."""
    declared = await channel.declare_queue(queue, passive=True)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "redisched"), "bridge", "amqp",
            "--redis-url", redis_url, "--amqp-url", AMQP_URL, "--queue", queue,
            "--prefetch", str(prefetch),
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while True:  # the consumer is registered: the clock starts
            await declared.declare()
            if declared.declaration_result.consumer_count:
                break
            await asyncio.sleep(0.002)
        started = time.perf_counter()
        while (await client.stats(topic)).scheduled < count:
            await asyncio.sleep(0.005)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(30)


async def main(count: int, prefetch: int) -> dict[str, Any]:
    """Run every measurement and return the figures."""
    run = uuid.uuid4().hex[:8]
    queues = [f"redisched-bench-{run}-{name}" for name in ("bare", "grouped", "single")]
    result: dict[str, Any] = {"messages": count, "prefetch": prefetch}
    with tempfile.TemporaryDirectory() as folder, EmbeddedRedis(Path(folder)) as server:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection, AsyncClient.from_url(server.url) as client:
            channel = await connection.channel(publisher_confirms=True)
            for queue in queues:
                await channel.declare_queue(queue, durable=True)
            try:
                seconds = await publish(channel, queues[0], messages("bare", count, True))
                result["broker_publish_per_s"] = round(count / seconds)
                seconds = await bare_consume(channel, queues[0], count, prefetch)
                result["broker_consume_ack_per_s"] = round(count / seconds)
                for queue, grouped in ((queues[1], True), (queues[2], False)):
                    shape = "grouped" if grouped else "single"
                    topic = f"bench-{run}-{shape}"
                    await publish(channel, queue, messages(topic, count, grouped))
                    seconds = await bridge_drain(
                        channel, client, server.url, queue, topic, count, prefetch
                    )
                    result[f"bridge_{shape}_per_s"] = round(count / seconds)
                    result[f"bridge_{shape}_vs_publish"] = round(
                        result[f"bridge_{shape}_per_s"] / result["broker_publish_per_s"], 2
                    )
                    result[f"bridge_{shape}_vs_consume_ack"] = round(
                        result[f"bridge_{shape}_per_s"] / result["broker_consume_ack_per_s"], 2
                    )
            finally:
                for queue in queues:
                    await channel.queue_delete(queue)
                    await channel.queue_delete(f"{queue}.dead")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--prefetch", type=int, default=1000)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.messages, options.prefetch)), indent=2))
