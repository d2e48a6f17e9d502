"""``delete_topic`` against a second process: each flow is a generator of calls, driven here
one call at a time on a real Redis, the other process acting between two of them."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
from click.testing import CliRunner

import redisched
from redisched import operate
from redisched import partition_setting as ps
from redisched.cli import main
from redisched.ops import Call
from redisched.partitions import Partitions

Flow = Generator[Call[Any], Any, int]


def run_until(client: redisched.Client, flow: Flow, stop: Callable[[Call[Any]], bool]) -> Call[Any]:
    """Drive ``flow`` up to the first call that ``stop`` picks (returned, not run yet)."""
    call = next(flow)
    while not stop(call):
        call = flow.send(client._run(call))
    return call


def finish(client: redisched.Client, flow: Flow, call: Call[Any]) -> int:
    try:
        while True:
            call = flow.send(client._run(call))
    except StopIteration as done:
        return int(done.value)


def stats_rounds() -> Callable[[Call[Any]], bool]:
    """Picks the second call made of stats alone: the check after every purge."""
    seen = 0

    def stop(call: Call[Any]) -> bool:
        nonlocal seen
        if call.steps and all(step.script == "stats" for step in call.steps):
            seen += 1
        return seen == 2

    return stop


def test_a_job_reserved_during_the_delete_leaves_every_partition_as_it_was(
    client: redisched.Client, topic: str
) -> None:
    """Each partition's keys went as soon as its jobs had: a job reserved in the last one
    then made a TopicBusy with the topic still partitioned and the partitions already gone
    without their settings and pause (their new jobs ran though the topic showed paused)."""
    ps.run(client, ps.configure(client.ops, topic, {"partitions": 3, "ttr": 77}))
    layout = Partitions(topic, 3)
    for name in [topic, *layout.names]:
        client.pause(name)  # as a pause of the topic (over HTTP or the CLI) does
    flow = operate.delete_topic(client.ops, topic)
    check = run_until(client, flow, stats_rounds())  # every partition's jobs purged
    last = layout.names[-1]
    client.put(last, "late", b"1")
    client.resume(last)  # so that a worker can take it
    assert client.reserve(last) is not None
    client.pause(last)
    with pytest.raises(redisched.TopicBusy):
        finish(client, flow, check)
    assert client.execute(ps.read_count(client.ops, topic)) == 3
    for name in [topic, *layout.names]:
        assert (
            client.config(name).ttr == 77
            and client.execute(client.ops.stats(name, own=True)).paused
        ), name


def test_a_topic_partitioned_while_its_plain_delete_runs_stays_partitioned(
    client: redisched.Client, redis_url: str, topic: str
) -> None:
    """The delete read the topic as plain, then removed the count another process had set
    meanwhile, and the mark with the topic's meta: the partitions, holding that process's
    jobs, were left as plain topics while it went on putting into them."""
    client.configure(topic, ttr=30)
    flow = operate.delete_topic(client.ops, topic)
    call = next(flow)  # the counts' read
    call = flow.send(client._run(call))  # read: a plain topic
    layout = Partitions(topic, 3)
    with redisched.Client.from_url(redis_url) as other:
        ps.run(other, ps.configure(other.ops, topic, {"partitions": 3}))
        other.put(layout.route("k"), "k", b"1")
    assert finish(client, flow, call) == 0
    assert client.execute(ps.read_count(client.ops, topic)) == 3
    assert client.get(layout.route("k"), "k") is not None
    with pytest.raises(redisched.TopicPartitioned):  # the mark is there again
        client.put(topic, "j", b"1")


def test_a_deleted_topics_partitions_are_registered_again_by_the_next_put(
    client: redisched.Client, topic: str
) -> None:
    """The client forgot only the topic's own registration: for 2 s, its put into a name
    that had been a partition skipped the SADD, and the new plain topic was never listed."""
    ps.run(client, ps.configure(client.ops, topic, {"partitions": 2}))
    first = Partitions(topic, 2).name(0)
    client.put(first, "a", b"1")
    client.delete_topic(topic)
    client.put(first, "b", b"1")
    assert first in client.topics()


def test_the_cli_refuses_to_delete_a_partition_before_asking(
    client: redisched.Client, redis_url: str, topic: str
) -> None:
    ps.run(client, ps.configure(client.ops, topic, {"partitions": 2}))
    done = CliRunner().invoke(
        main, ["delete-topic", Partitions(topic, 2).name(1)], input="n\n",
        env={"REDISCHED_REDIS_URL": redis_url},
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    assert "Delete topic" not in done.output and "partition of" in done.output
