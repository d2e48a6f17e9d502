"""AckTracker: one multiple-ack per contiguous run of finished deliveries, never too early."""

from __future__ import annotations

from typing import Any

from redisched.bridges.acks import AckTracker


class Delivery:
    """Stands in for an aio-pika IncomingMessage: records what was sent for it."""

    def __init__(self, channel: object, tag: int, log: list[tuple[str, int]]) -> None:
        self.channel, self.delivery_tag, self.log = channel, tag, log

    async def ack(self, multiple: bool = False) -> None:
        self.log.append(("ack*" if multiple else "ack", self.delivery_tag))

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        assert requeue and not multiple
        self.log.append(("nack", self.delivery_tag))


def deliveries(tracker: AckTracker, count: int, channel: object = None) -> tuple[list[Any], Any]:
    log: list[tuple[str, int]] = []
    channel = channel or object()
    messages = [Delivery(channel, tag, log) for tag in range(1, count + 1)]
    for message in reversed(messages):  # arrival order does not matter
        tracker.received(message)  # type: ignore[arg-type]
    return messages, log


async def test_acks_wait_for_every_earlier_delivery() -> None:
    tracker = AckTracker()
    m, log = deliveries(tracker, 6)
    await tracker.ack(m[2])
    await tracker.ack(m[1])
    assert log == []  # delivery 1 is still in flight
    await tracker.ack(m[0])
    assert log == [("ack*", 3)]
    await tracker.ack(m[4])
    await tracker.ack(m[3])
    assert log == [("ack*", 3), ("ack*", 5)]


async def test_nacked_delivery_is_never_covered_by_a_multiple_ack() -> None:
    tracker = AckTracker()
    m, log = deliveries(tracker, 3)
    await tracker.ack(m[0])
    await tracker.nack(m[1])
    assert log == [("ack*", 1), ("nack", 2)]
    await tracker.nack(m[2])
    assert log == [("ack*", 1), ("nack", 2), ("nack", 3)]  # nothing left to ack


async def test_settling_twice_sends_nothing_more() -> None:
    tracker = AckTracker()
    m, log = deliveries(tracker, 2)
    await tracker.ack(m[0])
    await tracker.nack(m[0])
    await tracker.ack(m[1])
    await tracker.ack(m[1])
    assert log == [("ack*", 1), ("ack*", 2)]


async def test_a_new_channel_starts_afresh_and_the_old_ones_are_left_to_the_broker() -> None:
    tracker = AckTracker()
    old, log = deliveries(tracker, 2)
    new, new_log = deliveries(tracker, 1, channel=object())
    await tracker.ack(old[0])
    await tracker.ack(new[0])
    assert (log, new_log) == ([], [("ack*", 1)])
