"""The AMQP bridge: consume a RabbitMQ queue of put/delete messages into redisched.

Delivery is at-least-once: a message is acked only after Redis has committed its put or
delete, and since ids are the client's, a redelivered message of a job still stored changes
nothing (puts are create-only unless the message says ``"replace": true``; an ``exists``
result counts as done). A job that already ran and finished is another matter: a create-only
put of a finished id creates it again, so a message redelivered after a crash (committed,
not yet acked) can run its job twice. A topic's ``dedup_window`` closes that: within it, such
a put answers ``exists``. A malformed message is published to the dead-letter queue with the
reason in the ``x-redisched-error`` header, then acked: it is never requeued in a loop (its
headers are copied, a string that is not UTF-8 as a byte array; should they still fail to
encode, it goes without them, saying why in ``x-redisched-headers-dropped``). So is a message
Redis refuses with an error that retrying cannot cure (``WRONGTYPE``, a script's ``ERR``):
the reason is ``redis: `` and Redis's reply, and the rest of its batch goes on.
While Redis is unreachable (or refuses for the moment: loading, failing over, out of memory),
each worker retries its batch with a growing backoff and holds its messages unacked, so
consumption pauses at the prefetch limit and nothing is lost.

Messages arriving together are grouped: puts of one topic with the same options become one
``put_many``, and the groups of a batch run concurrently. Messages for the same id within a
batch keep their order; across ``concurrency`` workers, order is not guaranteed.

Embedding (``redisched serve --amqp-url``: the server's Service interface)::

    bridge = AmqpBridge(client, BridgeSettings(amqp_url=url))
    await bridge.start()  # runs in a background task; bridge.ready is set once consuming
    ...
    await bridge.stop()  # in-flight messages finish or return to the queue

or ``await bridge.run()`` until ``bridge.request_stop()`` (e.g. from a signal handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    DeliveryMode,
    HeadersType,
)
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from ..client import AsyncClient
from ..errors import (
    BackendError,
    InvalidArgument,
    NotReplicated,
    RedischedError,
    TopicPartitioned,
)
from ..ops import Call
from ..partition_setting import PartitionMap, holder, holders, read_count, refuse_misrouted
from ..partitions import SEPARATOR, Partitions
from ..preflight import redacted
from .acks import AckTracker
from .batch import by_topic, join, rounds
from .messages import Delete, Put, parse
from .metrics import BridgeMetrics, NullMetrics
from .settings import BridgeSettings

log = logging.getLogger(__name__)

__all__ = ["ERROR_HEADER", "AmqpBridge", "BridgeSettings"]

ERROR_HEADER = "x-redisched-error"
"""The header of a dead-lettered message that says why it was rejected."""
DROPPED_HEADER = "x-redisched-headers-dropped"
"""The header of a dead letter sent without the original's headers and properties (some
could not be encoded again), saying why."""
MAX_REASON_CHARS = 1000

# Reply errors that say the server cannot take writes from anyone for the moment, not that the
# message is wrong: a load finishes, a script is killed (BUSY), a failover ends (READONLY from
# a demoted primary, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, MOVED/ASK left over, NOREPLICAS),
# memory is freed (OOM), a failing disk is fixed (MISCONF), a script lost in a failover is
# loaded again (NOSCRIPT twice running). Held unacked and retried, like a lost connection or a
# timeout (which are not reply errors at all). Any other reply error (WRONGTYPE, ERR of any
# kind, a script's error, NOPERM) comes back however often the message is sent: retried, it
# would hold its batch, and the queue behind it, forever.
PASSING_CODES = frozenset({
    "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "OOM", "NOREPLICAS",
    "MISCONF", "MOVED", "ASK", "NOSCRIPT",
})  # fmt: skip
# redis-py's classes for some of those codes (it strips the code from their message)
PASSING_REPLIES = (
    BusyLoadingError, TryAgainError, ClusterDownError, ReadOnlyError, OutOfMemoryError, AskError,
    NoScriptError,
)  # fmt: skip
# Redis 6.2 wraps an error raised inside a script in ERR: "ERR Error running script (call to
# f_...): @user_script:1: @user_script: 1: -OOM command not allowed ..." names the real code.
SCRIPT_ERROR_CODE = re.compile(r"@user_script:\s*\d+:\s*-?([A-Z]+)\b")

Command = Put | Delete
Item = tuple[AbstractIncomingMessage, Command]


def _deletes_of(group: list[Item], ids: set[str]) -> list[Item]:
    """The group's deletes of ``ids``."""
    return [item for item in group if isinstance(item[1], Delete) and item[1].id in ids]


class AmqpBridge:
    """Consumes ``settings.queue`` and commits each message to Redis through ``client``.

    Args:
        client: the AsyncClient jobs are put with (its body size limit applies).
        settings: broker, queues, prefetch and concurrency.
        metrics: counters to keep (consumed, put, deleted, rejected); none by default.
    """

    def __init__(
        self,
        client: AsyncClient,
        settings: BridgeSettings | None = None,
        *,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or BridgeSettings()
        self.metrics: BridgeMetrics = metrics or NullMetrics()
        self.ready = asyncio.Event()
        """Set once the queues are declared and the bridge is consuming."""
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._acks = AckTracker()
        self._partitions = PartitionMap()  # partitioned topics: ids go to their partition
        # Bounds the Redis connections used at once (one per topic of a round in flight).
        self._redis_slots = asyncio.Semaphore(2 * self.settings.concurrency)

    def request_stop(self) -> None:
        """Ask :meth:`run` to finish: safe from a signal handler, any number of times."""
        self._stopping.set()

    async def start(self) -> None:
        """Run in a background task (the server's Service interface); returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self.run())
            self._task.add_done_callback(_report_failure)

    async def stop(self) -> None:
        """Stop the task :meth:`start` began and wait until it has finished."""
        self.request_stop()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        """Consume until stopped; then finish or return in-flight messages and close."""
        connection = await self._connect()
        if connection is None:
            return
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self.settings.prefetch)
            queue = await _declare(channel, self.settings.queue)
            await _declare(channel, self.settings.dead_letters)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

            async def receive(message: AbstractIncomingMessage) -> None:
                self._acks.received(message)
                await inbox.put(message)

            tag = await queue.consume(receive, no_ack=False)
            workers = [
                asyncio.create_task(self._work(inbox, channel))
                for _ in range(self.settings.concurrency)
            ]
            log.info(
                "bridge consuming %s (dead letters: %s)",
                self.settings.queue,
                self.settings.dead_letters,
            )
            self.ready.set()
            await self._stopping.wait()
            log.info("bridge stopping")
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=self.settings.shutdown_grace)
            while not inbox.empty():
                await self._acks.nack(inbox.get_nowait())
        finally:
            # Anything still unacked goes back to the queue when the channel closes.
            await connection.close()
            await self._partitions.close()
            log.info("bridge stopped")

    async def _connect(self) -> AbstractRobustConnection | None:
        """Connect, retrying with backoff until the broker answers (None if stopped first)."""
        delay = self.settings.retry_initial
        while True:
            try:
                return await aio_pika.connect_robust(self.settings.amqp_url)
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning(
                    "cannot reach the broker at %s (%s); retrying in %.1fs",
                    redacted(self.settings.amqp_url), exc, delay,
                )  # fmt: skip
            if await self._sleep(delay):
                return None
            delay = min(delay * 2, self.settings.retry_max)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, cut short by stop(); True if stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _work(
        self, inbox: asyncio.Queue[AbstractIncomingMessage], channel: AbstractChannel
    ) -> None:
        while True:
            batch = [await inbox.get()]
            while len(batch) < self.settings.max_batch and not inbox.empty():
                batch.append(inbox.get_nowait())
            # Shielded: stop() cancels idle workers, never a batch half committed.
            task = asyncio.create_task(self._handle(batch, channel))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug, not bad input: return the batch rather than hold it unacked.
                log.exception("bridge failed on a batch; returning it to the queue")
                await self._sleep(1.0)
                for message in batch:
                    await self._acks.nack(message)

    async def _handle(
        self, batch: Sequence[AbstractIncomingMessage], channel: AbstractChannel
    ) -> None:
        self.metrics.consumed(len(batch))
        items: list[Item] = []
        for message in batch:
            try:
                command = parse(message.body, self.client.ops)
                if isinstance(command, Put) and SEPARATOR in command.topic:
                    await self._refuse_misrouted(command)
                items.append((message, command))
            except InvalidArgument as exc:
                await self._dead_letter(message, str(exc), channel)
        rounds_ = rounds(items)
        for index, round_ in enumerate(rounds_):
            if not await self._commit(round_, channel):
                for later in rounds_[index + 1 :]:
                    for message, _ in later:
                        await self._acks.nack(message)
                return

    async def _refuse_misrouted(self, put: Put) -> None:
        """InvalidArgument naming ``id`` for a put into a partition of a partitioned topic
        whose id routes to another partition (a second job of the id would be made), as the
        HTTP API and the CLI refuse it. With Redis down before the counts were first read,
        the put goes through as it would to any topic."""
        try:
            layouts = await self._partitions.current(self.client)
        except BackendError:
            return
        layout = layouts.owner(put.topic)
        if layout is not None:
            refuse_misrouted(layout, put.topic, put.id)

    async def _commit(self, items: list[Item], channel: AbstractChannel) -> bool:
        """Commit a round (ids all distinct), retrying while Redis is down; False if stopped.

        A topic's group that Redis refuses for good (see :func:`_refused_for_good`) is sent
        again one message at a time, and only the messages refused alone are dead-lettered."""
        delay = self.settings.retry_initial
        pending = by_topic(items)
        while pending:
            outcomes = await asyncio.gather(
                *(self._apply(group) for group in pending), return_exceptions=True
            )
            failed: list[list[Item]] = []
            alone: list[list[Item]] = []
            cause = ""
            for group, outcome in zip(pending, outcomes, strict=True):
                refusal = _refused_for_good(outcome)
                if refusal is not None and len(group) > 1:
                    # which of them? any that did commit is put again by id (harmless)
                    alone += [[item] for item in group]
                elif refusal is not None:
                    await self._dead_letter(group[0][0], f"redis: {refusal}", channel)
                elif isinstance(outcome, (BackendError, NotReplicated)):
                    # Not replicated: stored on the primary only; put again by id (harmless)
                    # until a replica acknowledges, the message waiting unacked meanwhile.
                    failed.append(group)
                    cause = cause or str(outcome)
                elif isinstance(outcome, BaseException):
                    log.error("bridge could not commit a message", exc_info=outcome)
                    for message, _ in group:
                        await self._dead_letter(message, f"internal error: {outcome!r}", channel)
                else:
                    for message, _ in group:
                        await self._acks.ack(message)
            pending = alone + failed
            if failed and not alone:  # (with messages to try alone, at once: no wait)
                log.warning(
                    "Redis unavailable (%s); %d messages wait unacked, retrying in %.1fs",
                    cause,
                    sum(len(group) for group in pending),
                    delay,
                )
                if await self._sleep(delay):
                    for group in pending:
                        for message, _ in group:
                            await self._acks.nack(message)
                    return False
                delay = min(delay * 2, self.settings.retry_max) * random.uniform(0.8, 1.0)
        return True

    async def _apply(self, group: list[Item]) -> None:
        """Commit one topic's commands in one round trip, or one per partition when the topic
        is partitioned (each id to its partition, as every other way in routes it)."""
        try:
            routed, missed = await self._apply_routed(group)
        except TopicPartitioned as refused:  # partitioned elsewhere since the counts were read
            # Redis stored none of the puts; the deletes found nothing of the ids in the topic
            # itself (or what a put raced into it before the mark): all are made again, routed
            self._partitions.learn(refused.topic, refused.count)
            await self._apply_routed(group)
            return
        if missed and routed:
            await self._delete_in_topic_itself(group, missed)
        elif missed:
            await self._delete_moved(group, missed)

    async def _delete_in_topic_itself(self, group: list[Item], missed: set[str]) -> None:
        """After deletes routed to a partitioned topic's partitions found nothing of
        ``missed``: those deletes in the topic itself, which holds what a process put there
        before it knew the count (as the HTTP by-id routes look there after a miss)."""
        again = [command for _, command in _deletes_of(group, missed)]
        async with self._redis_slots:
            await self.client.execute(join(self.client.ops, again))

    async def _delete_moved(self, group: list[Item], missed: set[str]) -> None:
        """After deletes in a topic this bridge takes for unpartitioned found nothing of
        ``missed``: when its count, read afresh, says another process partitioned it since
        the counts were read, those deletes are made again in the ids' partitions (else they
        would be acked, and the jobs a fresh process put there kept)."""
        topic = group[0][1].topic
        count = await self.client.execute(read_count(self.client.ops, topic))
        if count is None:
            return
        self._partitions.learn(topic, count)
        await self._apply_routed(_deletes_of(group, missed), counted=False)

    async def _apply_routed(
        self, group: list[Item], *, counted: bool = True
    ) -> tuple[bool, set[str]]:
        """Commit the group, routed by the counts this bridge holds (``counted``: its puts
        and deletes added to the metrics): whether the topic is partitioned by those counts
        (its ids routed), and the ids of its deletes that found nothing."""
        layouts = await self._partitions.current(self.client)
        layout = layouts.get(group[0][1].topic)
        homes = {} if layout is None else await self._occurrence_homes(layout, group)
        parts: dict[str, list[Command]] = {}
        for _, command in group:
            if layout is not None:
                home = homes.get(command.id) or layout.route(command.id)
                command = dataclasses.replace(command, topic=home)
            parts.setdefault(command.topic, []).append(command)
        async with self._redis_slots:
            applied = await asyncio.gather(
                *(self.client.execute(join(self.client.ops, part)) for part in parts.values())
            )
        if counted:
            self.metrics.put(sum(done.puts for done in applied))
            self.metrics.deleted(sum(done.deletes for done in applied))
        return layout is not None, {job_id for done in applied for job_id in done.missed}

    async def _occurrence_homes(self, layout: Partitions, group: list[Item]) -> dict[str, str]:
        """Where each ``@`` id of the group lives (a schedule's occurrence lives with its
        schedule, not in its own id's partition), found as the HTTP service finds it: one
        round trip for all of them; none for a group without such ids."""
        ids = list(dict.fromkeys(command.id for _, command in group if "@" in command.id))
        if not ids:
            return {}
        ops = self.client.ops
        calls = [holder(ops, holders(layout, job_id), job_id) for job_id in ids]
        async with self._redis_slots:
            found: list[str] = await self.client.execute(Call.join(*calls))
        return dict(zip(ids, found, strict=True))

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: str, channel: AbstractChannel
    ) -> None:
        reason = reason[:MAX_REASON_CHARS]
        log.info("dead-lettering message %s: %s", message.message_id or "", reason)
        ours: HeadersType = {ERROR_HEADER: reason, "x-redisched-queue": self.settings.queue}
        copy = aio_pika.Message(
            body=message.body,
            headers={**_encodable(dict(message.headers or {})), **ours},
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            timestamp=message.timestamp,
            delivery_mode=DeliveryMode.PERSISTENT,
        )
        try:
            try:
                await self._publish_dead(copy, channel)
            except (TypeError, ValueError) as exc:
                # a property or header that cannot be encoded again: nothing was sent, so
                # send the body with the reason alone rather than return it to the queue
                # (where it would come back, and fail here again, forever)
                log.warning("dead-lettering message %s without its headers: %s",
                            message.message_id or "", exc)  # fmt: skip
                ours[DROPPED_HEADER] = str(exc)[:MAX_REASON_CHARS]
                bare = aio_pika.Message(
                    body=message.body, headers=ours, delivery_mode=DeliveryMode.PERSISTENT
                )
                await self._publish_dead(bare, channel)
        except Exception as exc:  # any failure: keep the original, the broker redelivers it
            log.warning("cannot dead-letter (%s); returning the message to the queue", exc)
            await self._sleep(1.0)
            await self._acks.nack(message)
            return
        self.metrics.rejected(1)
        await self._acks.ack(message)

    async def _publish_dead(self, letter: aio_pika.Message, channel: AbstractChannel) -> None:
        """Publish a dead letter, confirmed by the broker. One returned unroutable (its queue
        was deleted while the bridge runs: the broker would drop it, and its message be acked
        and lost) declares the queue again and goes once more.

        Raises:
            UnroutableDeadLetter: returned again; aio-pika's errors for a failed publish.
        """
        name = self.settings.dead_letters
        for first in (True, False):
            result = await channel.default_exchange.publish(letter, name)
            if not isinstance(result, aiormq.abc.DeliveredMessage):  # a return is one
                return
            if first:
                log.warning("the dead-letter queue %s is gone; declaring it again", name)
                await channel.declare_queue(name, durable=True)
        raise UnroutableDeadLetter(f"the broker returned it unroutable to queue {name!r}")


async def _declare(channel: AbstractChannel, name: str) -> AbstractQueue:
    """Declare the durable queue ``name``; a queue of that name declared otherwise (not
    durable, other arguments) is a RedischedError saying so, not the broker's traceback."""
    try:
        return await channel.declare_queue(name, durable=True)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise RedischedError(
            f"queue {name!r} exists with other settings than the bridge's (a durable queue "
            f"with no arguments): use another --queue, or delete it ({exc})"
        ) from None


class UnroutableDeadLetter(RedischedError):
    """A dead letter the broker returned: no queue took it."""


def _refused_for_good(outcome: object) -> str | None:
    """Redis's reply error behind a failed commit when retrying cannot cure it (see
    ``PASSING_CODES``), as the reason to dead-letter with; None for anything else (success,
    a lost connection, a timeout, a passing refusal, an error not from Redis)."""
    if not isinstance(outcome, BackendError):
        return None
    cause = outcome.__cause__
    while cause is not None and not isinstance(cause, ResponseError):
        cause = cause.__cause__
    if cause is None or isinstance(cause, PASSING_REPLIES):
        return None
    text = str(cause)
    codes = {text.split(" ", 1)[0], *SCRIPT_ERROR_CODE.findall(text)}
    if codes & PASSING_CODES:
        return None
    return text if type(cause) is ResponseError else f"{type(cause).__name__}: {text}"


def _encodable(value: Any) -> Any:
    """A header value as it can be published again: the AMQP library decodes a string that
    is not UTF-8 as ``bytes``, which it cannot encode; a ``bytearray`` (a byte array) keeps
    those bytes."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {key: _encodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    return value


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the AMQP bridge stopped on an error", exc_info=task.exception())
