"""One Pub/Sub listener per process that wakes the tasks waiting for a topic's work.

The scripts PUBLISH on a topic's wake channel when a job becomes ready with none ready before,
or when a job is scheduled ahead of the earliest one. Workers and long-polling HTTP requests
wait here instead of polling Redis, and all of them share a single connection.

To never miss a wake-up, read :meth:`Wakeups.generation` *before* asking Redis for work, then
pass it to :meth:`Wakeups.wait`: a message that arrived in between returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio

from .keys import TopicKeys

log = logging.getLogger(__name__)


class Wakeups:
    """Fans a process's single Pub/Sub subscription out to any number of waiting tasks.

    Args:
        redis: an asyncio Redis connection (the listener takes one connection of its pool).
        prefix: the key prefix of the topics.
    """

    def __init__(self, redis: redis.asyncio.Redis, prefix: str = "redisched") -> None:
        self._redis = redis
        self._prefix = prefix
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[bytes, str] = {}
        self._generation: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()

    async def watch(self, topic: str) -> None:
        """Subscribe to the topic's wake channel (once); returns when the subscription holds."""
        channel = TopicKeys(self._prefix, topic).wake_channel.encode()
        if channel in self._channels:
            return
        async with self._lock:
            if channel in self._channels:
                return
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.subscribe(channel)
            self._channels[channel] = topic
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

    async def _read(self) -> None:
        backoff = 0.05
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped: resubscribe and wake everyone
                log.warning("wake-up listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                for topic in list(self._generation):
                    self.notify(topic)
                continue
            if message is not None and message.get("type") == "message":
                woken = self._channels.get(message["channel"])
                if woken is not None:
                    self.notify(woken)

    async def close(self) -> None:
        """Stop listening and release the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        self._channels.clear()
