"""One Pub/Sub listener per process that wakes the tasks waiting for a topic's work.

The scripts PUBLISH on a topic's wake channel when a job becomes ready with none ready before,
or when a job is scheduled ahead of the earliest one. Workers and long-polling HTTP requests
wait here instead of polling Redis, and all of them share a single connection.

To never miss a wake-up, read :meth:`Wakeups.generation` *before* asking Redis for work, then
pass it to :meth:`Wakeups.wait`: a message that arrived in between returns at once.

On a Redis Cluster a script's PUBLISH reaches every node, so the hub subscribes on one plain
connection to any node; when that node fails it moves to the next one (and wakes every
waiter, since messages may have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio
from redis.exceptions import RedisError

from .convert import stored_name
from .keys import TopicKeys
from .routing import NodeClients
from .timing import Alarm

CANCEL_PREFIX = b"c"
"""A wake message ``c<token>:<id>`` names a reservation to cancel: the job's id and the token
it held when a script took it away (delete, abort, purge, replace, reschedule, expiry). The
token is decimal digits, so the first ``:`` ends it and the id is every byte after it. The
scripts' other messages are numbers."""

LEGACY_CANCEL_PREFIX = b"x"
"""``x<id>``, the cancel message of scripts before the token was in it: ignored (it named no
reservation, so it could cancel a newer attempt of the same id); see docs/design.md s. 7."""

REMEMBERED_CANCELS = 10_000
"""Cancelled reservations kept per topic, for a lease read after its cancel (bounded: a
lease's reply is read within a round trip of the cancel, long before this many more come)."""

log = logging.getLogger(__name__)


class Wakeups:
    """Fans a process's single Pub/Sub subscription out to any number of waiting tasks.

    Args:
        redis: an asyncio Redis connection (the listener takes one connection of its pool), or
            an asyncio RedisCluster (the listener connects to one of its nodes).
        prefix: the key prefix of the topics.
    """

    def __init__(
        self, redis: redis.asyncio.Redis | redis.asyncio.RedisCluster, prefix: str = "redisched"
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._nodes = NodeClients()
        self._node_index = 0
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[bytes, str] = {}
        self._generation: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._alarm: Alarm | None = None
        self._aborts: dict[str, list[Callable[[str, str], None]]] = {}
        # topic -> the recently cancelled reservations (id, token), oldest first
        self._cancelled: dict[str, dict[tuple[str, str], None]] = {}

    @property
    def alarm(self) -> Alarm:
        """The process's alarm thread, for waking at precise instants (started on first use)."""
        if self._alarm is None:
            self._alarm = Alarm()
            self._alarm.start()
        return self._alarm

    def on_abort(self, topic: str, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``callback(job_id, token)`` when the reservation ``token`` of a job of ``topic``
        was taken from its holder (the job was deleted, replaced, expired, purged or aborted):
        the attempt holding that token must stop, and no other attempt of the id. Returns a
        function that stops the calls. Call :meth:`watch` for the topic too; a lease read
        after the cancel asks :meth:`cancelled`."""
        callbacks = self._aborts.setdefault(topic, [])
        callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)

        return remove

    def cancelled(self, topic: str, job_id: str, token: str | None) -> bool:
        """Whether the reservation ``token`` of ``job_id`` was cancelled by a message read
        already (one of the last :data:`REMEMBERED_CANCELS` of the topic): a lease whose reply
        is read after its cancel must not start the job."""
        remembered = self._cancelled.get(topic)
        return remembered is not None and (job_id, token) in remembered

    async def watch(self, topic: str) -> None:
        """Subscribe to the topic's wake channel (once); returns when the subscription holds."""
        channel = TopicKeys(self._prefix, topic).wake_channel.encode()
        if channel in self._channels:
            return
        async with self._lock:
            if channel in self._channels:
                return
            if self._pubsub is None:
                self._pubsub = await self._open_pubsub()
            try:
                await self._pubsub.subscribe(channel)
                self._channels[channel] = topic
            except (RedisError, OSError):
                if not isinstance(self._redis, redis.asyncio.RedisCluster):
                    raise
                await self._subscribe_elsewhere(self._redis, channel, topic)
            self._generation.setdefault(topic, 0)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="redisched-wakeups")

    def generation(self, topic: str) -> int:
        """A counter that moves each time the topic is woken; read it before asking for work."""
        return self._generation.get(topic, 0)

    def notify(self, topic: str) -> None:
        """Wake the topic's waiters from inside this process (e.g. after a local put)."""
        self._generation[topic] = self._generation.get(topic, 0) + 1
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def wait(self, topic: str, since: int, timeout: float | None) -> bool:
        """Wait until the topic is woken after generation ``since``, or ``timeout`` seconds.

        Returns True if woken, False on timeout.
        """
        if self._generation.get(topic, 0) != since:
            return True
        event = self._events.get(topic)
        if event is None:
            event = self._events[topic] = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _open_pubsub(self) -> Any:
        if isinstance(self._redis, redis.asyncio.Redis):
            return self._redis.pubsub(ignore_subscribe_messages=True)
        if not self._redis.get_nodes():
            await self._redis.initialize()
        nodes = sorted(self._redis.get_nodes(), key=lambda n: n.name)
        node = nodes[self._node_index % len(nodes)]
        self._node_index += 1
        log.debug("wake-ups subscribe on cluster node %s", node.name)
        return self._nodes.get(node).pubsub(ignore_subscribe_messages=True)

    async def _subscribe_elsewhere(
        self, cluster: redis.asyncio.RedisCluster, channel: bytes, topic: str
    ) -> None:
        """(Cluster) the node subscribed on cannot serve (its primary down): every channel,
        ``channel`` too, on the next nodes in turn until one takes them (a message published
        on any node reaches every node's subscribers); the last failure when none does."""
        self._channels[channel] = topic
        tries = len(cluster.get_nodes())
        for attempt in range(tries):
            try:
                await self._move_to_another_node()
                return
            except (RedisError, OSError):
                if attempt == tries - 1:
                    del self._channels[channel]
                    raise

    async def _move_to_another_node(self) -> None:
        """(Cluster) drop the failed node's subscription and subscribe on the next node."""
        old, self._pubsub = self._pubsub, None
        with contextlib.suppress(Exception):
            await old.aclose()
        await self._nodes.close()
        pubsub = await self._open_pubsub()
        try:
            await pubsub.subscribe(*self._channels)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub

    async def _read(self) -> None:
        backoff = 0.05
        while True:
            try:
                if self._pubsub is None:
                    await self._move_to_another_node()
                message = await self._pubsub.get_message(timeout=None)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped: resubscribe and wake everyone
                log.warning("wake-up listener lost its connection (%s); reconnecting", exc)
                if isinstance(self._redis, redis.asyncio.RedisCluster):
                    # redis-py would reconnect to the same, perhaps dead, node
                    with contextlib.suppress(Exception):
                        await self._move_to_another_node()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                for topic in list(self._generation):
                    self.notify(topic)
                continue
            if message is not None and message.get("type") == "message":
                woken = self._channels.get(message["channel"])
                if woken is None:
                    continue
                data = message.get("data")
                if isinstance(data, bytes) and data.startswith(CANCEL_PREFIX):
                    self._abort(woken, data)
                elif not (isinstance(data, bytes) and data.startswith(LEGACY_CANCEL_PREFIX)):
                    self.notify(woken)

    def _abort(self, topic: str, data: bytes) -> None:
        token, colon, job_id = data[len(CANCEL_PREFIX) :].partition(b":")
        if not colon or not token.isdigit():
            log.warning("malformed cancel message on the wake channel of %r: %r", topic, data)
            return
        name = stored_name(job_id)  # as the lease parsed the job's id
        lease = token.decode()  # as the lease parsed the token
        remembered = self._cancelled.setdefault(topic, {})
        remembered[name, lease] = None
        if len(remembered) > REMEMBERED_CANCELS:
            del remembered[next(iter(remembered))]
        for callback in list(self._aborts.get(topic, ())):
            try:
                callback(name, lease)
            except Exception:
                log.exception("abort callback failed for job %r of %r", name, topic)

    async def close(self) -> None:
        """Stop listening and release the connection."""
        if self._alarm is not None:
            self._alarm.close()
            self._alarm = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        await self._nodes.close()
        self._channels.clear()
