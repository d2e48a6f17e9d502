"""The AMQP bridge end to end, on the machine's RabbitMQ and a redis-server of our own.

Each test declares its own queues (unique names) and deletes them afterwards; no other queue
is touched. A missing broker fails these tests: there is no skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import aio_pika
import httpx
import pamqp.encode
import pytest
import redis.exceptions as redis_errors
from aio_pika.abc import AbstractChannel
from prometheus_client import CollectorRegistry

from redisched import AsyncClient, JobState
from redisched.bridges import PrometheusMetrics
from redisched.bridges.amqp import ERROR_HEADER, AmqpBridge, BridgeSettings, _refused_for_good
from redisched.embedded import EmbeddedRedis, free_port
from redisched.errors import BackendError, RedischedError
from redisched.partition_setting import configure, run_async
from redisched.partitions import Partitions
from tests.test_http_partitions import _occurrence_away_from_its_partition
from tests.unmarked import unmark_async

AMQP_URL = os.environ.get("REDISCHED_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDISCHED = str(Path(sys.executable).parent / "redisched")


@pytest.fixture(scope="module")
def bridge_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server for this module (the bridge is not about Redis versions)."""
    with EmbeddedRedis(tmp_path_factory.mktemp("bridge-redis"), persistent=False) as server:
        yield server


@pytest.fixture
async def client(bridge_redis: EmbeddedRedis) -> AsyncIterator[AsyncClient]:
    async with AsyncClient.from_url(bridge_redis.url) as c:
        yield c


@pytest.fixture
async def channel() -> AsyncIterator[AbstractChannel]:
    """A channel with publisher confirms on the machine's RabbitMQ (fails if it is down)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


@pytest.fixture
async def settings(channel: AbstractChannel) -> AsyncIterator[BridgeSettings]:
    """Settings naming a queue and a dead-letter queue of this test only; both deleted after."""
    name = f"redisched-test-{uuid.uuid4().hex[:12]}"
    result = BridgeSettings(amqp_url=AMQP_URL, queue=name, retry_max=0.5, shutdown_grace=5)
    for queue in (result.queue, result.dead_letters):
        await channel.declare_queue(queue, durable=True)
    yield result
    for queue in (result.queue, result.dead_letters):
        await channel.queue_delete(queue)


async def publish(channel: AbstractChannel, queue: str, messages: list[Any]) -> None:
    """Publish (confirmed): dicts as JSON, bytes as they are, (data, message_id) pairs."""

    def build(item: Any) -> aio_pika.Message:
        data, message_id = item if isinstance(item, tuple) else (item, None)
        return aio_pika.Message(_encoded(data), message_id=message_id, delivery_mode=2)

    for start in range(0, len(messages), 500):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(build(m), routing_key=queue)
                for m in messages[start : start + 500]
            )
        )


def _encoded(data: Any) -> bytes:
    return data if isinstance(data, bytes) else json.dumps(data).encode()


async def ready_count(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in ``queue`` (not counting unacked ones)."""
    declared = await channel.declare_queue(queue, passive=True)
    count = declared.declaration_result.message_count
    assert count is not None
    return count


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


@asynccontextmanager
async def running(bridge: AmqpBridge) -> AsyncIterator[AmqpBridge]:
    """Run a bridge in this event loop; stop it cleanly on exit."""
    await bridge.start()
    await asyncio.wait_for(bridge.ready.wait(), 10)
    try:
        yield bridge
    finally:
        await asyncio.wait_for(bridge.stop(), 20)


async def all_jobs(client: AsyncClient, topic: str, state: str = "scheduled") -> list[Any]:
    jobs: list[Any] = []
    cursor = None
    while True:
        page = await client.jobs(topic, state, limit=1000, cursor=cursor)
        jobs += page.jobs
        if page.cursor is None:
            return jobs
        cursor = page.cursor


async def scheduled(client: AsyncClient, topic: str) -> int:
    return (await client.execute(client.ops.stats(topic, own=True))).scheduled


async def test_ten_thousand_messages_become_jobs_with_their_due_times(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    topics = (topic, f"{topic}-b")
    base = round(time.time()) + 86_400
    messages: list[Any] = []
    for i in range(10_000):
        message: dict[str, Any] = {"topic": topics[i % 2], "id": f"job-{i}", "body": {"n": i}}
        if i % 3 == 0:
            message["run_at"] = base + i  # each its own time: puts that cannot be grouped
        else:
            message["delay"] = 3600 + 60 * (i % 5)
        messages.append(message)
    await publish(channel, settings.queue, messages)
    started = time.time()
    async with running(AmqpBridge(client, settings)):

        async def done() -> bool:
            return sum([await scheduled(client, t) for t in topics]) == 10_000

        await wait_for(done, 60, "10,000 jobs")
        finished = time.time()
    assert await ready_count(channel, settings.queue) == 0
    assert await ready_count(channel, settings.dead_letters) == 0
    jobs = {job.id: job for t in topics for job in await all_jobs(client, t)}
    assert len(jobs) == 10_000
    for i, message in enumerate(messages):
        job = jobs[f"job-{i}"]
        assert (job.topic, json.loads(job.body), job.version) == (message["topic"], {"n": i}, 1)
        due = job.run_at.timestamp()
        if "run_at" in message:
            assert due == message["run_at"]
        else:
            assert started + message["delay"] - 1 <= due <= finished + message["delay"] + 1


async def test_malformed_messages_are_dead_lettered_with_reasons(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    bad: dict[str, Any] = {
        "not-json": b"{oops",
        "no-topic": {"id": "x"},
        "id-not-string": {"topic": topic, "id": 42},
        "wrong-type": {"topic": topic, "id": "x", "delay": "tomorrow"},
        "bad-topic": {"topic": "a{b}", "id": "x"},
        "too-big": {"topic": topic, "id": "x", "body": "x" * (1 << 20)},
        "typo": {"topic": topic, "id": "x", "dealy": 5},
        # the AMQP message_id never stands in for the id: clients invent random ones
        "message-id-only": {"topic": topic, "body": "via message_id", "delay": 600},
        # which id was meant? (msgspec keeps the last; the HTTP API refuses it too)
        "id-twice": b'{"topic": "%s", "id": "x", "id": "y"}' % topic.encode(),
        "body-key-twice": b'{"topic": "%s", "id": "x", "body": {"a": 1, "a": 2}}' % topic.encode(),
    }
    expected = {
        "not-json": "message: is not valid JSON",
        "no-topic": "topic: ",
        "id-not-string": "id: Expected `str | null`, got `int`",
        "wrong-type": "delay: ",
        "bad-topic": "topic: must not contain",
        "too-big": "body: is 1048578 bytes",
        "typo": "dealy: ",
        "message-id-only": "id: is missing",
        "id-twice": "id: the JSON object has the key 'id' twice",
        "body-key-twice": "body.a: the JSON object has the key 'a' twice",
    }
    good = [{"topic": topic, "id": f"ok-{i}", "delay": 600} for i in range(4)]
    messages: list[Any] = [
        (data, "m-1") if name == "message-id-only" else data for name, data in bad.items()
    ]
    await publish(channel, settings.queue, [*messages[:3], *good, *messages[3:]])
    registry = CollectorRegistry()
    async with running(AmqpBridge(client, settings, metrics=PrometheusMetrics(registry))):

        async def all_dead() -> bool:
            return await ready_count(channel, settings.dead_letters) == len(bad)

        await wait_for(all_dead, 20, "dead letters")
        await wait_for(lambda: _equals(scheduled(client, topic), 4), 10, "the good jobs")
    assert await ready_count(channel, settings.queue) == 0
    names = {_encoded(data): name for name, data in bad.items()}
    reasons: dict[str, str] = {}
    dead_queue = await channel.declare_queue(settings.dead_letters, passive=True)
    for _ in bad:
        message = await dead_queue.get(timeout=5)
        assert message is not None and message.headers is not None
        reasons[names[message.body]] = str(message.headers[ERROR_HEADER])  # body untouched
        assert message.headers["x-redisched-queue"] == settings.queue
        await message.ack()
    assert set(reasons) == set(bad)
    for name, start in expected.items():
        assert reasons[name].startswith(start), (name, reasons[name])
    assert (await client.execute(client.ops.get(topic, "ok-3", own=True))) is not None
    for job_id in ("x", "y", "m-1"):
        assert await client.execute(client.ops.get(topic, job_id, own=True)) is None

    def value(name: str) -> float | None:
        return registry.get_sample_value(
            f"redisched_bridge_messages_{name}_total", {"bridge": "amqp"}
        )

    assert (value("consumed"), value("put"), value("rejected"), value("deleted")) == (
        len(bad) + 4, 4, len(bad), 0,
    )  # fmt: skip


async def test_a_malformed_message_with_a_header_not_utf8_is_dead_lettered_once(
    client: AsyncClient,
    channel: AbstractChannel,
    settings: BridgeSettings,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pamqp reads a string header that is not UTF-8 as bytes, which it cannot encode: the
    # dead letter failed to publish and the message went back to the queue, every second,
    # forever
    encode = pamqp.encode.encode_table_value

    def raw_strings(value: Any) -> bytes:
        if isinstance(value, bytes):  # what another client may send: a long string as is
            return b"S" + struct.pack(">I", len(value)) + value
        return encode(value)

    with monkeypatch.context() as patch:
        patch.setattr(pamqp.encode, "encode_table_value", raw_strings)
        headers: dict[str, Any] = {"trace": b"\xff\xfe", "kept": {"n": [1, b"\xfe"]}}
        for data in (b"{oops", json.dumps({"topic": topic, "id": "fine"}).encode()):
            message = aio_pika.Message(data, headers=headers, delivery_mode=2)
            await channel.default_exchange.publish(message, routing_key=settings.queue)
    async with running(AmqpBridge(client, settings)):

        async def dead() -> bool:
            return await ready_count(channel, settings.dead_letters) == 1

        await wait_for(dead, 10, "the dead letter")

        async def put() -> bool:
            return await client.execute(client.ops.get(topic, "fine", own=True)) is not None

        await wait_for(put, 10, "the good job")
    assert await ready_count(channel, settings.queue) == 0
    dead_queue = await channel.declare_queue(settings.dead_letters, passive=True)
    letter = await dead_queue.get(timeout=5)
    assert letter is not None and letter.body == b"{oops" and letter.headers is not None
    assert str(letter.headers[ERROR_HEADER]).startswith("message: is not valid JSON")
    assert letter.headers["trace"] == b"\xff\xfe"  # the bytes kept, as a byte array
    assert letter.headers["kept"] == {"n": [1, b"\xfe"]}
    await letter.ack()


async def test_a_dead_letter_queue_deleted_while_running_is_declared_again(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings
) -> None:
    # the broker returned the dead letter unroutable, the bridge did not look, and acked the
    # malformed message: lost
    async with running(AmqpBridge(client, settings)):
        await channel.queue_delete(settings.dead_letters)
        await publish(channel, settings.queue, [b"{oops"])

        async def dead() -> bool:  # a passive declare of a missing queue closes its channel
            async with await aio_pika.connect(AMQP_URL) as connection:
                probe = await connection.channel()
                with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                    return await ready_count(probe, settings.dead_letters) == 1
            return False

        await wait_for(dead, 10, "the dead letter", every=0.2)
    assert await ready_count(channel, settings.queue) == 0


async def test_puts_and_deletes_of_a_partitioned_topic_go_to_each_ids_partition(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    # the bridge put into the topic itself and deleted there: a job put over HTTP (in its
    # partition) was not deleted, and one put by the bridge was not found by id
    await run_async(client, configure(client.ops, topic, {"partitions": 4}))
    layout = Partitions(topic, 4)
    await client.put(layout.route("old"), "old", b"1", delay=600)
    messages: list[Any] = [{"op": "delete", "topic": topic, "id": "old"}]
    messages += [{"topic": topic, "id": f"new-{i}", "delay": 600} for i in range(20)]
    await publish(channel, settings.queue, messages)
    async with running(AmqpBridge(client, settings)):

        async def done() -> bool:
            found = [await client.get(layout.route(f"new-{i}"), f"new-{i}") for i in range(20)]
            return None not in found

        await wait_for(done, 10, "the puts in their partitions")
        await wait_for(lambda: _is_none(client.get(layout.route("old"), "old")), 10, "delete")
    assert (
        await client.execute(client.ops.get(topic, "new-0", own=True)) is None
    )  # nothing in the topic itself
    assert (await client.execute(client.ops.stats(topic, own=True))).scheduled == 0


async def test_a_put_into_a_partitions_name_takes_only_the_ids_that_route_to_it(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    """A message naming a partition (``t~p1``) with an id that routes to another partition
    made a second live job of the id; it is dead-lettered naming ``id``, as the HTTP API and
    the CLI refuse it, and an id of that partition goes in."""
    await run_async(client, configure(client.ops, topic, {"partitions": 3}))
    layout = Partitions(topic, 3)
    home = layout.route("j")
    other = next(name for name in layout.names if name != home)
    mine = next(f"k{i}" for i in range(100) if layout.route(f"k{i}") == other)
    await publish(channel, settings.queue, [
        {"topic": other, "id": "j", "delay": 600}, {"topic": other, "id": mine, "delay": 600},
    ])  # fmt: skip
    async with running(AmqpBridge(client, settings)):

        async def dead() -> bool:
            return await ready_count(channel, settings.dead_letters) == 1

        await wait_for(dead, 10, "the misrouted put's dead letter")
        await wait_for(lambda: _is_some(client.get(other, mine)), 10, "the partition's own id")
    assert await client.get(other, "j") is None and await client.get(home, "j") is None
    dead_queue = await channel.declare_queue(settings.dead_letters, passive=True)
    letter = await dead_queue.get(timeout=5)
    assert letter is not None and letter.headers is not None
    reason = str(letter.headers[ERROR_HEADER])
    assert reason.startswith("id: ") and home in reason, reason
    await letter.ack()


async def test_a_topic_partitioned_while_the_bridge_runs_gets_puts_in_each_ids_partition(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    """The bridge trusts the counts it read for 5 s: in that time it put into the topic itself
    one partitioned elsewhere, beside the ids' partitions (a second job of an id). Redis now
    refuses those puts, and the bridge learns the count from the refusal."""
    async with running(AmqpBridge(client, settings)):
        await _counts_read(client, channel, settings, f"{topic}-other")
        await run_async(client, configure(client.ops, topic, {"partitions": 4}))
        layout = Partitions(topic, 4)
        puts = [{"topic": topic, "id": f"j{i}", "delay": 600} for i in range(8)]
        await publish(channel, settings.queue, puts)

        async def done() -> bool:
            found = [await client.get(layout.route(f"j{i}"), f"j{i}") for i in range(8)]
            return None not in found

        await wait_for(done, 10, "the puts in their partitions")
    assert (
        await client.execute(client.ops.stats(topic, own=True))
    ).scheduled == 0  # nothing in the topic itself
    assert await ready_count(channel, settings.dead_letters) == 0


async def test_a_delete_while_the_bridges_count_is_stale_deletes_in_the_ids_partition(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    """A delete in the 5 s the bridge trusts its counts went to the topic itself, found
    nothing there and was acked: the job a fresh process had put into its partition stayed.
    A delete that finds nothing now reads the count afresh."""
    async with running(AmqpBridge(client, settings)):
        await _counts_read(client, channel, settings, f"{topic}-other")
        await run_async(client, configure(client.ops, topic, {"partitions": 4}))
        layout = Partitions(topic, 4)
        for i in range(6):  # as a process that knows the count puts them
            await client.put(layout.route(f"d{i}"), f"d{i}", b"1", delay=600)
        deletes = [{"op": "delete", "topic": topic, "id": f"d{i}"} for i in range(6)]
        await publish(channel, settings.queue, deletes)

        async def done() -> bool:
            found = [await client.get(layout.route(f"d{i}"), f"d{i}") for i in range(6)]
            return found == [None] * 6

        await wait_for(done, 10, "the deletes in the ids' partitions")
    assert await ready_count(channel, settings.dead_letters) == 0


async def test_deletes_of_occurrences_go_where_their_schedules_are(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    """An occurrence (``<schedule>@<time>``) lives with its schedule, not in its own id's
    partition: the bridge deleted it there, found nothing and acked, and it ran."""
    known, stale = f"{topic}-known", f"{topic}-stale"
    await run_async(client, configure(client.ops, known, {"partitions": 3}))
    async with running(AmqpBridge(client, settings)):
        await _counts_read(client, channel, settings, f"{topic}-o")
        await run_async(client, configure(client.ops, stale, {"partitions": 3}))
        occurrences = []
        for name in (known, stale):
            sid, home = _occurrence_away_from_its_partition(name, 3)
            await client.schedule(home, sid, b"s", cron="0 * * * *")  # as HTTP and the CLI do
            schedule = await client.get_schedule(home, sid)
            assert schedule is not None and schedule.next_run_at is not None
            occurrence = f"{sid}@{schedule.next_run_at:%Y-%m-%dT%H:%M:%SZ}"
            assert await client.get(home, occurrence) is not None
            occurrences.append((name, home, occurrence))
        deletes = [{"op": "delete", "topic": name, "id": o} for name, _, o in occurrences]
        await publish(channel, settings.queue, deletes)

        async def gone() -> bool:
            found = [await client.get(home, o) for _, home, o in occurrences]
            return found == [None, None]

        await wait_for(gone, 10, "the occurrences deleted with their schedules")
    assert await ready_count(channel, settings.dead_letters) == 0


async def test_a_delete_finds_a_job_of_the_partitioned_topic_itself(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    """A job put into the topic itself (by a process that did not know the count, before the
    mark) was never deleted by the bridge, which looked in the id's partition only."""
    await run_async(client, configure(client.ops, topic, {"partitions": 3}))
    await unmark_async(client, topic)  # as an earlier version left it
    await client.put(topic, "stray", b"1", delay=600)
    async with running(AmqpBridge(client, settings)):
        await publish(channel, settings.queue, [{"op": "delete", "topic": topic, "id": "stray"}])
        await wait_for(
            lambda: _is_none(client.execute(client.ops.get(topic, "stray", own=True))),
            10,
            "the delete",
        )
    assert await ready_count(channel, settings.dead_letters) == 0


async def _counts_read(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, other: str
) -> None:
    """Wait until the running bridge has put a job into ``other``: it has read the partition
    counts by then, and trusts them for 5 s."""
    await publish(channel, settings.queue, [{"topic": other, "id": "first"}])
    await wait_for(lambda: _is_not_none(client.get(other, "first")), 10, "the counts read")


async def _is_not_none(value: Awaitable[Any]) -> bool:
    return await value is not None


async def _is_none(value: Awaitable[Any]) -> bool:
    return await value is None


async def _is_some(value: Awaitable[Any]) -> bool:
    return await value is not None


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_delete_and_replace_keep_message_order_for_one_id(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    await client.put(topic, "old", b"x", delay=600)
    await publish(channel, settings.queue, [
        {"topic": topic, "id": "a", "body": 1, "delay": 600},
        {"op": "delete", "topic": topic, "id": "a"},
        {"topic": topic, "id": "b", "body": 1, "delay": 600},
        {"topic": topic, "id": "b", "body": 2, "delay": 600},  # create-only: stays 1
        {"topic": topic, "id": "c", "body": 1, "delay": 600},
        {"topic": topic, "id": "c", "body": 2, "delay": 900, "replace": True},
        {"op": "delete", "topic": topic, "id": "old"},
        {"op": "delete", "topic": topic, "id": "never-existed"},
    ])  # fmt: skip
    one_worker = BridgeSettings(amqp_url=AMQP_URL, queue=settings.queue, concurrency=1)
    metrics = Counting()
    async with running(AmqpBridge(client, one_worker, metrics=metrics)):

        async def committed() -> bool:
            return metrics.counts["put"] + metrics.counts["deleted"] == 8

        await wait_for(committed, 10, "8 commits")
    assert metrics.counts == {"consumed": 8, "put": 5, "deleted": 3, "rejected": 0}
    assert await scheduled(client, topic) == 2
    assert (
        await client.execute(client.ops.get(topic, "a", own=True)) is None
        and await client.execute(client.ops.get(topic, "old", own=True)) is None
    )
    b, c = (
        await client.execute(client.ops.get(topic, "b", own=True)),
        await client.execute(client.ops.get(topic, "c", own=True)),
    )
    assert b is not None and (b.body, b.version) == (b"1", 1)
    assert c is not None and (c.body, c.version) == (b"2", 2)


class Counting:
    """BridgeMetrics that keeps its counts in a dict."""

    def __init__(self) -> None:
        self.counts = {"consumed": 0, "put": 0, "deleted": 0, "rejected": 0}

    def consumed(self, count: int) -> None:
        self.counts["consumed"] += count

    def put(self, count: int) -> None:
        self.counts["put"] += count

    def deleted(self, count: int) -> None:
        self.counts["deleted"] += count

    def rejected(self, count: int) -> None:
        self.counts["rejected"] += count


def start_bridge_process(
    redis_url: str, settings: BridgeSettings, log: IO[bytes], **env: str
) -> subprocess.Popen[bytes]:
    """``redisched bridge amqp`` on ``redis_url``, with ``env`` added to the environment."""
    return subprocess.Popen(
        [
            REDISCHED, "bridge", "amqp", "--redis-url", redis_url, "--queue", settings.queue,
            "--amqp-url", settings.amqp_url, "--prefetch", "100", "--concurrency", "2",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture
def bridge_log(tmp_path: Path) -> Iterator[IO[bytes]]:
    """A file for a bridge process's log (stderr)."""
    with open(tmp_path / "bridge.log", "w+b") as file:
        yield file


def log_text(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def stopped(process: subprocess.Popen[bytes], signum: int) -> int:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        return process.wait(20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_bridge_killed_mid_stream_loses_and_duplicates_nothing(
    client: AsyncClient,
    channel: AbstractChannel,
    settings: BridgeSettings,
    topic: str,
    bridge_redis: EmbeddedRedis,
    bridge_log: IO[bytes],
) -> None:
    total = 10_000
    await publish(channel, settings.queue, [
        {"topic": topic, "id": f"k-{i}", "body": i, "delay": 600} for i in range(total)
    ])  # fmt: skip
    process = start_bridge_process(bridge_redis.url, settings, bridge_log)
    try:
        await wait_for(lambda: _more_than(scheduled(client, topic), 1000), 30, "progress", 0.005)
    finally:
        assert stopped(process, signal.SIGKILL) == -signal.SIGKILL
    at_kill = await scheduled(client, topic)
    assert at_kill < total, "the bridge finished before it was killed: nothing was tested"
    process = start_bridge_process(bridge_redis.url, settings, bridge_log)
    try:
        await wait_for(lambda: _equals(scheduled(client, topic), total), 60, "all jobs")
        await wait_for(lambda: _equals(ready_count(channel, settings.queue), 0), 10, "drain")
    finally:
        assert stopped(process, signal.SIGTERM) == 0, log_text(bridge_log)
    jobs = await all_jobs(client, topic)
    assert sorted(int(job.body) for job in jobs) == list(range(total))
    assert {job.version for job in jobs} == {1}
    assert await ready_count(channel, settings.dead_letters) == 0


async def _more_than(value: Awaitable[int], bound: int) -> bool:
    return await value > bound


async def test_sigterm_returns_or_finishes_every_message(
    client: AsyncClient,
    channel: AbstractChannel,
    settings: BridgeSettings,
    topic: str,
    bridge_redis: EmbeddedRedis,
    bridge_log: IO[bytes],
) -> None:
    total = 10_000
    await publish(channel, settings.queue, [
        {"topic": topic, "id": f"s-{i}", "delay": 600} for i in range(total)
    ])  # fmt: skip
    process = start_bridge_process(bridge_redis.url, settings, bridge_log)
    try:
        await wait_for(lambda: _more_than(scheduled(client, topic), 1000), 30, "progress", 0.005)
    finally:
        assert stopped(process, signal.SIGTERM) == 0, log_text(bridge_log)
    jobs = await scheduled(client, topic)
    assert jobs < total, "the bridge finished before SIGTERM: nothing was tested"
    # Every message is either committed and acked, or back in the queue: none both, none lost.
    assert jobs + await ready_count(channel, settings.queue) == total


async def test_redis_outage_mid_stream_loses_nothing(
    channel: AbstractChannel, settings: BridgeSettings, topic: str, tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persistent=True)
    await asyncio.to_thread(server.start)
    total, chunk = 3000, 100
    try:
        async with AsyncClient.from_url(server.url) as client:
            messages = [
                {"topic": topic, "id": f"o-{i}", "body": i, "delay": 600} for i in range(total)
            ]

            outage = asyncio.Event()

            async def stream() -> None:
                for start in range(0, total, chunk):
                    if start == total // 2:  # the second half goes out while Redis is down
                        await outage.wait()
                    await publish(channel, settings.queue, messages[start : start + chunk])
                    await asyncio.sleep(0.1)

            async with running(AmqpBridge(client, settings)):
                publisher = asyncio.create_task(stream())
                await wait_for(lambda: _more_than(scheduled(client, topic), 300), 20, "progress")
                await asyncio.to_thread(server.stop)
                at_outage = time.monotonic()
                outage.set()
                await asyncio.sleep(3)
                await asyncio.to_thread(server.start)
                await publisher
                await wait_for(lambda: _equals(scheduled(client, topic), total), 30, "all jobs")
                assert time.monotonic() - at_outage < 30
            jobs = await all_jobs(client, topic)
            assert sorted(int(job.body) for job in jobs) == list(range(total))
            assert {job.version for job in jobs} == {1}
            assert {job.state for job in jobs} == {JobState.SCHEDULED}
            assert await ready_count(channel, settings.queue) == 0
            assert await ready_count(channel, settings.dead_letters) == 0
    finally:
        await asyncio.to_thread(server.stop)


async def test_durable_puts_are_acked_only_once_replicated(
    bridge_redis: EmbeddedRedis, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    """The bridge's puts honour durable mode (per client and per topic): on a server without
    replica a durable put is stored but never acknowledged by a replica, so its message stays
    in RabbitMQ (retried, never acked, never dead-lettered); a non-durable topic is acked."""
    durable_topic, plain_topic = f"{topic}-durable", f"{topic}-plain"
    async with AsyncClient.from_url(bridge_redis.url, durable_timeout=0.02) as client:
        await client.configure(durable_topic, durable=True)
        await publish(channel, settings.queue, [
            {"topic": durable_topic, "id": "d", "delay": 600},
            {"topic": plain_topic, "id": "p", "delay": 600},
        ])  # fmt: skip
        metrics = Counting()
        async with running(AmqpBridge(client, settings, metrics=metrics)):
            await wait_for(lambda: _equals(scheduled(client, plain_topic), 1), 10, "plain put")
            await wait_for(lambda: _equals(scheduled(client, durable_topic), 1), 10, "stored")
            await asyncio.sleep(0.5)  # several retries of the durable put
            assert metrics.counts["put"] == 1  # only the plain one counts as committed
        assert await ready_count(channel, settings.queue) == 1  # given back, not lost
        assert await ready_count(channel, settings.dead_letters) == 0
        stored = await client.get(durable_topic, "d")
        assert stored is not None and stored.version == 1  # retries by id changed nothing


def test_settings_reject_bad_values() -> None:
    from redisched import InvalidArgument

    with pytest.raises(InvalidArgument, match="prefetch"):
        BridgeSettings(prefetch=0)
    with pytest.raises(InvalidArgument, match="dead_letter_queue"):
        BridgeSettings(queue="q", dead_letter_queue="q")
    assert BridgeSettings(queue="q").dead_letters == "q.dead"


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDISCHED_AMQP_QUEUE", "jobs")
    monkeypatch.setenv("REDISCHED_AMQP_PREFETCH", "50")
    settings = BridgeSettings.from_env(concurrency=3)
    assert (settings.queue, settings.dead_letters, settings.prefetch, settings.concurrency) == (
        "jobs", "jobs.dead", 50, 3,
    )  # fmt: skip


async def test_the_cli_bridge_puts_under_the_key_prefix_of_redisched_prefix(
    channel: AbstractChannel,
    settings: BridgeSettings,
    topic: str,
    bridge_redis: EmbeddedRedis,
    bridge_log: IO[bytes],
) -> None:
    """``serve``'s bridge writes under serve's REDISCHED_PREFIX, but ``bridge amqp`` ignored
    the variable (and had no --prefix): its puts went under ``redisched``, where serve and
    the workers of that prefix never look."""
    prefix = f"p-{topic[-8:]}"
    process = start_bridge_process(bridge_redis.url, settings, bridge_log, REDISCHED_PREFIX=prefix)
    try:
        await publish(channel, settings.queue, [{"topic": topic, "id": "p", "delay": 60}])
        async with AsyncClient.from_url(bridge_redis.url, prefix=prefix) as mine:

            async def stored() -> bool:
                return await mine.get(topic, "p") is not None

            await wait_for(stored, 10, "the job under the prefix")
    finally:
        assert stopped(process, signal.SIGTERM) == 0, log_text(bridge_log)
    async with AsyncClient.from_url(bridge_redis.url) as default_prefix:
        assert await default_prefix.get(topic, "p") is None
    bad = subprocess.run(
        [REDISCHED, "bridge", "amqp", "--redis-url", bridge_redis.url],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "REDISCHED_AMQP_URL": AMQP_URL, "REDISCHED_PREFIX": "a{b}"},
    )  # fmt: skip
    assert bad.returncode == 1, bad
    assert "Error: REDISCHED_PREFIX: must not contain '{' or '}'" in bad.stderr


def test_cli_help_lists_the_options() -> None:
    out = subprocess.run([REDISCHED, "bridge", "amqp", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    options = ("--amqp-url", "--queue", "--dead-letter-queue", "--redis-url", "--prefix",
               "--prefetch")  # fmt: skip
    for option in options:
        assert option in out.stdout


def test_cli_with_an_empty_redis_url_is_a_usage_error(tmp_path: Path) -> None:
    """An empty --redis-url (an unset variable?) started an embedded Redis and consumed the
    queue into it; put, get and serve refuse it."""
    data_dir = tmp_path / "data"
    out = subprocess.run(
        [REDISCHED, "bridge", "amqp", "--redis-url", "", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "REDISCHED_AMQP_URL": AMQP_URL},
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "--redis-url" in out.stderr and "is empty" in out.stderr
    assert not data_dir.exists()  # nothing started


async def test_cli_without_redis_url_runs_an_embedded_redis(
    channel: AbstractChannel, settings: BridgeSettings, topic: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [REDISCHED, "bridge", "amqp", "--queue", settings.queue, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "REDISCHED_AMQP_URL": AMQP_URL},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)
        url = line.decode().split(" on ", 1)[1].split(",", 1)[0]
        await publish(channel, settings.queue, [{"topic": topic, "id": "e", "delay": 60}])
        async with AsyncClient.from_url(url) as client:

            async def stored() -> bool:
                return await client.execute(client.ops.get(topic, "e", own=True)) is not None

            await wait_for(stored, 10, "the job in the embedded Redis")
        redis_pid = int((data_dir / "redis.pid").read_text())
    finally:
        assert stopped(process, signal.SIGTERM) == 0
        if process.stdout is not None:
            process.stdout.close()
    assert (data_dir / "appendonly.aof").exists() or (data_dir / "appendonlydir").exists()
    assert not Path(f"/proc/{redis_pid}/cmdline").exists()  # stopped with the bridge


async def test_seed_scenario_rabbitmq_to_a_webhook_after_the_delay(
    client: AsyncClient,
    channel: AbstractChannel,
    settings: BridgeSettings,
    topic: str,
    bridge_redis: EmbeddedRedis,
    bridge_log: IO[bytes],
) -> None:
    """A message into RabbitMQ becomes a job, due after its delay, POSTed by `serve`: one
    process (`serve --amqp-url`) runs the bridge, the dispatcher and /metrics."""
    from aiohttp import web

    received: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((time.time(), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    hook_port, api_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    await client.configure(topic, webhook={"url": f"http://127.0.0.1:{hook_port}/hook"})
    server = subprocess.Popen(
        [
            REDISCHED, "serve", "--redis-url", bridge_redis.url, "--port", str(api_port),
            "--allow-private-webhooks", "--amqp-url", AMQP_URL,
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=bridge_log,
        env={**os.environ, "REDISCHED_AMQP_QUEUE": settings.queue},
    )  # fmt: skip
    try:
        published = time.time()
        await publish(channel, settings.queue, [{
            "topic": topic, "id": "need_some_help_email_42", "body": {"user": 42}, "delay": 2,
        }])  # fmt: skip
        arrived, request = await asyncio.wait_for(received.get(), 30)
        assert (request["id"], request["body"], request["attempt"]) == (
            "need_some_help_email_42", {"user": 42}, 1,
        )  # fmt: skip
        assert arrived >= published + 2 - 0.05  # not before its delay (clock granularity)
        assert arrived < published + 20
        await wait_for(lambda: _equals(_total_jobs(client, topic), 0), 10, "the ack")
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{api_port}/metrics")).text
        assert 'redisched_bridge_messages_put_total{bridge="amqp"} 1.0' in metrics
    finally:
        assert stopped(server, signal.SIGTERM) == 0, log_text(bridge_log)
        await runner.cleanup()


async def _total_jobs(client: AsyncClient, topic: str) -> int:
    stats = await client.execute(client.ops.stats(topic, own=True))
    return stats.scheduled + stats.ready + stats.reserved + stats.dead


async def dead_letters(channel: AbstractChannel, queue: str, count: int) -> dict[bytes, str]:
    """Take ``count`` dead letters off ``queue``: each body with its reason."""
    dead_queue = await channel.declare_queue(queue, passive=True)
    reasons: dict[bytes, str] = {}
    for _ in range(count):
        message = await dead_queue.get(timeout=5)
        assert message is not None and message.headers is not None
        reasons[message.body] = str(message.headers[ERROR_HEADER])
        await message.ack()
    return reasons


async def test_a_message_redis_refuses_for_good_is_dead_lettered_and_the_rest_go_on(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    # a put failing with WRONGTYPE was retried forever as if Redis were down, its message and
    # every good one behind it held unacked, until prefetch stopped consumption for good
    poison = f"{topic}-poison"
    await client.redis.set(f"redisched:{{{poison}}}:jobs", "x")  # a key of the wrong type
    bad: list[Any] = [
        {"topic": poison, "id": "p1", "body": 1},
        {"op": "delete", "topic": poison, "id": "p2"},
        {"topic": poison, "id": "p3", "body": 3, "delay": 60},
    ]
    good: list[Any] = [{"topic": topic, "id": f"g{i}", "delay": 600} for i in range(3)]
    await publish(channel, settings.queue, [bad[0], good[0], bad[1], good[1], bad[2], good[2]])
    metrics = Counting()
    async with running(AmqpBridge(client, settings, metrics=metrics)):

        async def all_dead() -> bool:
            return await ready_count(channel, settings.dead_letters) == len(bad)

        await wait_for(all_dead, 5, "the dead letters")
        await wait_for(lambda: _equals(scheduled(client, topic), len(good)), 5, "the good jobs")
    assert metrics.counts == {"consumed": 6, "put": 3, "deleted": 0, "rejected": 3}
    assert await ready_count(channel, settings.queue) == 0  # all acked: none came back
    reasons = await dead_letters(channel, settings.dead_letters, len(bad))
    assert set(reasons) == {_encoded(message) for message in bad}  # bodies untouched
    for reason in reasons.values():
        assert reason.startswith("redis: WRONGTYPE Operation against a key holding the wrong")
    assert await client.redis.get(f"redisched:{{{poison}}}:jobs") == b"x"


async def test_only_the_messages_redis_refuses_in_a_refused_group_are_dead_lettered(
    client: AsyncClient, channel: AbstractChannel, settings: BridgeSettings, topic: str
) -> None:
    # one topic's puts go as one call: the ids in a sound partition must not share the fate
    # of those in the broken one
    await run_async(client, configure(client.ops, topic, {"partitions": 2}))
    layout = Partitions(topic, 2)
    ids = [f"id-{i}" for i in range(20)]
    broken = layout.route(ids[0])
    await client.redis.set(f"redisched:{{{broken}}}:jobs", "x")
    await publish(channel, settings.queue, [{"topic": topic, "id": i, "delay": 600} for i in ids])
    refused = [i for i in ids if layout.route(i) == broken]
    stored = [i for i in ids if layout.route(i) != broken]
    assert refused and stored
    async with running(AmqpBridge(client, settings)):

        async def all_dead() -> bool:
            return await ready_count(channel, settings.dead_letters) == len(refused)

        await wait_for(all_dead, 5, "the dead letters")
        sound = layout.route(stored[0])
        await wait_for(lambda: _equals(scheduled(client, sound), len(stored)), 5, "the puts")
    assert await ready_count(channel, settings.queue) == 0
    reasons = await dead_letters(channel, settings.dead_letters, len(refused))
    assert sorted(json.loads(body)["id"] for body in reasons) == sorted(refused)
    assert all(reason.startswith("redis: WRONGTYPE") for reason in reasons.values())


async def test_a_put_refused_for_the_moment_waits_and_is_not_dead_lettered(
    channel: AbstractChannel, settings: BridgeSettings, topic: str, tmp_path: Path
) -> None:
    # OOM passes once memory is freed: the message must wait unacked, then be stored
    with EmbeddedRedis(tmp_path / "redis", persistent=False) as server:
        async with AsyncClient.from_url(server.url) as client:
            await client.redis.config_set("maxmemory", 1)  # every write refused with OOM
            await publish(channel, settings.queue, [{"topic": topic, "id": "m", "delay": 600}])
            async with running(AmqpBridge(client, settings)):
                await asyncio.sleep(1.5)  # several retries
                assert await ready_count(channel, settings.dead_letters) == 0
                await client.redis.config_set("maxmemory", 0)
                await wait_for(lambda: _equals(scheduled(client, topic), 1), 5, "the put")
            assert await ready_count(channel, settings.queue) == 0
            assert await ready_count(channel, settings.dead_letters) == 0


@pytest.mark.parametrize(
    ("reply", "for_good"),
    [
        (redis_errors.ResponseError("WRONGTYPE Operation against a key"), True),
        (redis_errors.ResponseError("ERR Error running script (call to f_1): @user_script:9: "
                                    "WRONGTYPE Operation against a key"), True),
        (redis_errors.ResponseError("ERR put_many: bad ttr"), True),
        (redis_errors.NoPermissionError("this user has no permissions"), True),
        (redis_errors.ResponseError("BUSY Redis is busy running a script"), False),
        (redis_errors.ResponseError("NOREPLICAS Not enough good replicas to write."), False),
        (redis_errors.ResponseError("MISCONF Redis is configured to save RDB snapshots"), False),
        # Redis 6.2 wraps a script's refusal in ERR
        (redis_errors.ResponseError("ERR Error running script (call to f_1): @user_script:3: "
                                    "@user_script: 3: -OOM command not allowed"), False),
        (redis_errors.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
         False),
        (redis_errors.ReadOnlyError("You can't write against a read only replica."), False),
        (redis_errors.MasterDownError("Link with MASTER is down"), False),
        (redis_errors.TryAgainError("Multiple keys request during rehashing of slot"), False),
        (redis_errors.BusyLoadingError("Redis is loading the dataset in memory"), False),
        (redis_errors.ConnectionError("Error 111 connecting"), False),
        (redis_errors.TimeoutError("Timeout reading from socket"), False),
    ],
)  # fmt: skip
def test_only_reply_errors_that_retrying_cannot_cure_count_as_refused_for_good(
    reply: Exception, for_good: bool
) -> None:
    wrapped = BackendError(f"Redis error: {reply}")
    wrapped.__cause__ = reply
    refusal = _refused_for_good(wrapped)
    assert (refusal is not None) == for_good, refusal
    if refusal is not None:
        assert str(reply) in refusal
    assert _refused_for_good(BackendError("no cause")) is None


async def test_the_bridge_writes_to_a_redis_cluster(
    redis_cluster: Any, channel: AbstractChannel, settings: BridgeSettings,
    bridge_log: IO[bytes],
) -> None:  # fmt: skip
    """`bridge amqp` had no --redis-cluster: a put for a topic on another master than the
    URL's failed with a MOVED reply, for ever."""
    topics = redis_cluster.topics_on_each_master(f"bridge-{uuid.uuid4().hex[:6]}", 1)
    process = subprocess.Popen(
        [
            REDISCHED, "bridge", "amqp", "--redis-url", redis_cluster.url, "--redis-cluster",
            "--queue", settings.queue, "--amqp-url", settings.amqp_url,
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=bridge_log,
    )  # fmt: skip
    try:
        await publish(channel, settings.queue, [{"topic": t, "id": "j", "body": 1} for t in topics])
        async with AsyncClient.from_url(redis_cluster.url, cluster=True) as cluster:

            async def stored() -> bool:
                return all([await cluster.get(t, "j") is not None for t in topics])

            await wait_for(stored, 15, "the puts on every master")
    finally:
        assert stopped(process, signal.SIGTERM) == 0, log_text(bridge_log)


async def test_a_queue_declared_otherwise_is_refused_in_one_clear_line(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    # a queue of that name that is not durable: the bridge exited with aiormq's traceback
    name = f"redisched-test-{uuid.uuid4().hex[:12]}"
    await channel.declare_queue(name, durable=False, auto_delete=True)
    try:
        settings = BridgeSettings(amqp_url=AMQP_URL, queue=name, retry_max=0.5)
        with pytest.raises(RedischedError, match=f"queue '{name}' exists with other settings"):
            await asyncio.wait_for(AmqpBridge(client, settings).run(), 20)
    finally:
        async with await aio_pika.connect(AMQP_URL) as connection:
            await (await connection.channel()).queue_delete(name)
