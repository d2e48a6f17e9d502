"""Acks in delivery order: one ``multiple`` ack per contiguous run of finished messages.

Acking each message costs a frame and a Python round of aio-pika for every message; acking
with ``multiple=True`` settles every earlier delivery too, which is only right once all of
them are finished. :class:`AckTracker` waits for that: a message finished out of order is
acked when every delivery before it on its channel is finished (or settled otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from aio_pika.abc import AbstractIncomingMessage

log = logging.getLogger(__name__)

__all__ = ["AckTracker", "settle"]


class AckTracker:
    """Tracks one consumer's deliveries; call :meth:`received` for each, in any order."""

    def __init__(self) -> None:
        self._channel: object = None
        self._next = 1  # delivery tags on a channel count up from 1
        self._finished: dict[int, AbstractIncomingMessage | None] = {}

    def received(self, message: AbstractIncomingMessage) -> None:
        """Note a delivery; a new channel (after a reconnect) starts the count afresh."""
        channel = _channel(message)
        if channel is not None and channel is not self._channel:
            self._channel, self._next, self._finished = channel, 1, {}

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """Ack ``message`` once every earlier delivery on its channel is finished."""
        if self._unfinished(message):
            await self._finish(message, message)

    async def nack(self, message: AbstractIncomingMessage) -> None:
        """Return ``message`` to the queue now."""
        if self._unfinished(message):
            # Sent before it counts as finished, so no multiple ack can cover it first.
            await settle(message.nack(requeue=True))
            await self._finish(message, None)

    def _unfinished(self, message: AbstractIncomingMessage) -> bool:
        """True for a delivery of the live channel not yet acked or nacked (settling one
        twice would make the broker close the channel); a dead channel's are redelivered."""
        tag = message.delivery_tag
        return (
            tag is not None
            and tag >= self._next
            and tag not in self._finished
            and _channel(message) is self._channel
        )

    async def _finish(
        self, message: AbstractIncomingMessage, to_ack: AbstractIncomingMessage | None
    ) -> None:
        assert message.delivery_tag is not None
        self._finished[message.delivery_tag] = to_ack
        last = None
        while self._next in self._finished:
            last = self._finished.pop(self._next) or last
            self._next += 1
        if last is not None:
            # Acks every unsettled delivery up to ``last``: all of them are finished.
            await settle(last.ack(multiple=True))


def _channel(message: AbstractIncomingMessage) -> object:
    try:
        return message.channel
    except Exception:  # aio-pika raises when the channel is closed
        return None


async def settle(action: Awaitable[None]) -> None:
    """Await an ack or nack; if the channel was lost meanwhile, the broker redelivers."""
    try:
        await action
    except Exception as exc:  # aio-pika raises several types for a closed channel
        log.debug("ack/nack lost with the channel (%s); the broker will redeliver", exc)
