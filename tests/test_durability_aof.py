"""Broker crash on a single node with AOF: kill -9 redis-server under full load, restart it,
several times, then check the whole history.

Producers put (and sometimes delete) and consumers reserve and ack at full rate; the client
retries through the outages. Afterwards: every acknowledged put was delivered or deleted;
nothing was delivered that was never put; no lease was acked twice; no job acked after its
put was acknowledged came back; the queue ends empty.

An answer lost with the connection makes the client send the call again: a put again
answers ``exists`` (or creates the job anew if it was consumed meanwhile), an ack or a delete
again may answer "stale" or False although the first one took effect. So acks and deletes
count as attempts here, not as proof.

A process crash loses nothing with ``appendfsync always`` nor ``everysec``: Redis writes the
AOF before it replies, and the kernel keeps what a killed process wrote. The two differ on a
machine crash (power loss), which this test cannot cause.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from redisched import AsyncClient, BackendError, Job
from redisched.embedded import EmbeddedRedis
from tests.conftest import BINARIES

CRASHES = 3


@dataclass
class History:
    """Everything the producers and consumers were told, in order of the answers."""

    attempted: set[str] = field(default_factory=set)
    put: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    acked_leases: set[tuple[str, str | None]] = field(default_factory=set)
    double_acks: int = 0
    acked_again: int = 0
    errors: int = 0
    clock: itertools.count[int] = field(default_factory=itertools.count)
    put_answered: dict[str, int] = field(default_factory=dict)
    first_ack: dict[str, int] = field(default_factory=dict)


async def produce(
    client: AsyncClient, topic: str, name: str, h: History, stop: asyncio.Event
) -> None:
    n = 0
    while not stop.is_set():
        job_id = f"{name}-{n}"
        h.attempted.add(job_id)
        try:
            await client.put(topic, job_id, b"payload")
            h.put.add(job_id)
            h.put_answered[job_id] = next(h.clock)
            if n % 10 == 0:
                h.deleted.add(job_id)
                await client.delete(topic, job_id)
        except BackendError:
            h.errors += 1
            await asyncio.sleep(0.01)
            continue  # the same id again: a put by id is safe to repeat
        n += 1


async def consume(client: AsyncClient, topic: str, h: History, stop: asyncio.Event) -> None:
    pending: list[Job] = []  # reserved jobs whose ack has not been confirmed yet
    while not stop.is_set():
        try:
            if not pending:
                pending = await client.reserve_many(topic, 20, ttr=1)
                h.delivered.update(job.id for job in pending)
                if not pending:
                    await client.requeue(topic)
                    await asyncio.sleep(0.005)
                    continue
            flags = await client.ack_many(topic, pending)
        except BackendError:
            h.errors += 1
            await asyncio.sleep(0.01)
            continue  # ack the same leases again: a stale one answers False
        for job, ok in zip(pending, flags, strict=True):
            if ok:
                if (job.id, job.token) in h.acked_leases:
                    h.double_acks += 1
                # Acked, then delivered again: only a put retried after a lost answer (which
                # creates the job anew once it is gone) may do that, never the AOF.
                if job.id in h.acked and h.put_answered[job.id] < h.first_ack[job.id]:
                    h.acked_again += 1
                h.first_ack.setdefault(job.id, next(h.clock))
                h.acked_leases.add((job.id, job.token))
                h.acked.add(job.id)
        pending = []


@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
async def test_kill_and_restart_under_load(tmp_path: Path, appendfsync: str) -> None:
    binary = BINARIES.get("redis7", BINARIES["redis6"])
    server = EmbeddedRedis(tmp_path / "data", binary=binary, appendfsync=appendfsync).start()
    topic = f"crash-{appendfsync}"
    h = History()
    stop_producing, stop_consuming = asyncio.Event(), asyncio.Event()
    outages = []
    try:
        async with AsyncClient.from_url(server.url, retry_for=10) as client:
            tasks = [
                *(
                    asyncio.create_task(produce(client, topic, f"p{i}", h, stop_producing))
                    for i in range(2)
                ),
                *(asyncio.create_task(consume(client, topic, h, stop_consuming)) for _ in range(2)),
            ]
            for _ in range(CRASHES):
                await asyncio.sleep(0.7)
                killed = time.monotonic()
                server.kill()
                await asyncio.sleep(0.1)
                await asyncio.to_thread(server.start)
                outages.append(time.monotonic() - killed)
            await asyncio.sleep(0.7)
            stop_producing.set()
            await asyncio.gather(*tasks[:2])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                stats = await client.stats(topic)
                if stats.ready == stats.reserved == stats.scheduled == 0:
                    break
                await asyncio.sleep(0.1)
            stop_consuming.set()
            await asyncio.gather(*tasks[2:])
            final = await client.stats(topic)
    finally:
        server.stop()

    lost = h.put - h.delivered - h.deleted
    figures = {
        "appendfsync": appendfsync,
        "crashes": CRASHES,
        "restart_s": [round(o, 2) for o in outages],
        "puts_acknowledged": len(h.put),
        "acked": len(h.acked),
        "delete_attempted": len(h.deleted),
        "delivered": len(h.delivered),
        "lost": len(lost),
        "retried_after_errors": h.errors,
        "acked_again": h.acked_again,
    }
    print(f"\nAOF crash figures: {json.dumps(figures)}")
    assert len(h.put) > 500, figures
    assert not lost, f"acknowledged puts lost: {sorted(lost)[:10]}"
    assert h.delivered <= h.attempted, "delivered a job that was never put"
    assert h.double_acks == 0, "a lease was acked twice"
    assert h.acked_again == 0, "an acked job came back after a crash"
    assert (final.ready, final.reserved, final.scheduled) == (0, 0, 0)
