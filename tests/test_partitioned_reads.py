"""A plain client's reads of a partitioned topic's own name say so (TopicPartitioned).

They read the topic itself, which holds nothing once it is partitioned: an app polling
``client.get("signup", id)`` after an operator partitioned ``signup`` saw "not found" for a job
that exists, and a worker reserving from ``signup`` idled forever. A job the topic itself holds
(put before the mark) is still read, leased and taken where it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

import redisched
from redisched import TopicPartitioned
from redisched.partition_setting import configure, run, run_async
from redisched.partitions import AsyncPartitionedTopic, PartitionedTopic
from tests.test_partition_setting import cli
from tests.unmarked import unmark


def _partitioned(client: redisched.Client, topic: str, count: int = 3) -> PartitionedTopic:
    run(client, configure(client.ops, topic, {"partitions": count}))
    return PartitionedTopic(client, topic, count)


def _reads(client: redisched.Client, topic: str) -> dict[str, Callable[[], Any]]:
    return {
        "get": lambda: client.get(topic, "k0"),
        "reserve": lambda: client.reserve(topic),
        "reserve_many": lambda: client.reserve_many(topic, 5),
        "lease": lambda: client.lease(topic, 5),
        "ack_and_lease": lambda: client.ack_and_lease(topic, [], 5),
        "pull": lambda: client.pull(topic),
        "stats": lambda: client.stats(topic),
        "timeline": lambda: client.timeline(topic),
        "jobs": lambda: client.jobs(topic, "scheduled"),
        "finished": lambda: client.finished(topic),
        "history": lambda: client.history(topic, "k0"),
        "events": lambda: client.events(topic),
        "get_schedule": lambda: client.get_schedule(topic, "nightly"),
        "schedules": lambda: client.schedules(topic),
    }


def test_every_read_of_a_partitioned_topic_itself_is_refused(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    hot = _partitioned(client, topic)
    hot.put("k0", b"due", delay=0)  # in its partition: the topic itself holds nothing
    for name, read in _reads(client, topic).items():
        with pytest.raises(TopicPartitioned) as refused:
            read()
        assert (refused.value.argument, refused.value.count) == ("topic", 3), name
        assert "3 partitions" in str(refused.value) and "PartitionedTopic" in str(refused.value)
    assert hot.get("k0") is not None  # nothing was taken: the job waits in its partition
    assert hot.reserve() is not None


def test_a_job_the_topic_itself_holds_is_still_read_where_it_is(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    _partitioned(client, topic)
    unmark(client, topic)  # as a process that did not know the count yet put into it
    client.put(topic, "old", b"1")
    client.put(topic, "gone", b"2")
    _partitioned(client, topic)  # the mark again
    assert client.get(topic, "old") is not None  # a hit reads as ever
    assert client.history(topic, "old") is not None
    pulled = client.pull(topic)
    leased = client.reserve(topic)
    assert pulled is not None and leased is not None
    assert {pulled.id, leased.id} == {"old", "gone"}
    with pytest.raises(TopicPartitioned):  # nothing left in the topic itself
        client.reserve(topic)
    with pytest.raises(TopicPartitioned):
        client.pull(topic)
    client.ack(leased)  # the token operations go to the job's topic as ever


def test_a_schedule_the_topic_itself_holds_is_still_read_where_it_is(
    redis_url: str, topic: str
) -> None:
    client = redisched.Client.from_url(redis_url)
    hot = _partitioned(client, topic)
    unmark(client, topic)  # as a process that did not know the count yet made it there
    client.schedule(topic, "old", b"o", every=3600)
    _partitioned(client, topic)  # the mark again
    assert client.get_schedule(topic, "old") is not None  # a hit reads as ever
    with pytest.raises(TopicPartitioned):  # a miss: it may be in its id's partition
        client.get_schedule(topic, "new")
    with pytest.raises(TopicPartitioned):  # a listing of the topic itself is a part of it
        client.schedules(topic)
    client.schedule(hot.partitions.route("new"), "new", b"n", every=3600)
    ops = client.ops
    assert [s.id for s in client.execute(ops.schedules(topic, own=True))] == ["old"]
    assert client.execute(ops.get_schedule(topic, "new", own=True)) is None
    assert client.get_schedule(hot.partitions.route("new"), "new") is not None


def test_a_partitioned_topic_makes_reads_and_deletes_its_schedules(
    redis_url: str, topic: str
) -> None:
    # TopicPartitioned points at PartitionedTopic, which had no schedule method at all
    client = redisched.Client.from_url(redis_url)
    hot = _partitioned(client, topic)
    unmark(client, topic)
    client.schedule(topic, "old", b"o", every=3600)  # made on the topic before the mark
    _partitioned(client, topic)
    made = hot.schedule("nightly", b"n", cron="0 3 * * *")
    assert made.topic == hot.partitions.route("nightly")
    assert client.get_schedule(made.topic, "nightly") is not None  # where the CLI puts it
    assert [(s.id, s.topic) for s in hot.schedules()] == [("nightly", made.topic), ("old", topic)]
    old = hot.get_schedule("old")
    assert old is not None and old.topic == topic
    assert hot.get_schedule("none") is None
    assert hot.unschedule("old") and hot.unschedule("nightly") and not hot.unschedule("none")
    assert hot.schedules() == []


def test_unschedule_on_a_partitioned_topics_own_name_says_so(redis_url: str, topic: str) -> None:
    # it answered False: the caller believed the schedule gone while it went on firing
    client = redisched.Client.from_url(redis_url)
    hot = _partitioned(client, topic)
    made = hot.schedule("s", b"x", every=60)
    for kwargs in ({}, {"if_version": 1}):
        with pytest.raises(TopicPartitioned):
            client.unschedule(topic, "s", **kwargs)
    assert [s.id for s in hot.schedules()] == ["s"]  # untouched
    assert client.execute(client.ops.unschedule(topic, "s", own=True)) is False
    assert hot.unschedule("s", if_version=made.version)
    assert hot.schedules() == []


def test_a_partitioned_topic_replaces_a_schedule_where_it_lives(redis_url: str, topic: str) -> None:
    # it made a second one in the id's partition beside the one the topic itself held
    client = redisched.Client.from_url(redis_url)
    hot = _partitioned(client, topic)
    unmark(client, topic)
    client.schedule(topic, "s", b"old", every=3600)
    _partitioned(client, topic)
    replaced = hot.schedule("s", b"new", every=60, if_version=1)
    assert (replaced.topic, replaced.version, replaced.body) == (topic, 2, b"new")
    assert [(s.id, s.topic) for s in hot.schedules()] == [("s", topic)]


async def test_an_async_partitioned_topic_does_too(redis_url: str, topic: str) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        hot = await AsyncPartitionedTopic(client, topic, 2).declare()
        made = await hot.schedule("tick", b"t", every=60)
        assert made.topic == hot.partitions.route("tick")
        found = await hot.get_schedule("tick")
        assert found is not None and found.version == made.version
        assert [s.id for s in await hot.schedules()] == ["tick"]
        assert await hot.unschedule("tick", if_version=made.version)
        assert await hot.get_schedule("tick") is None
        with pytest.raises(TopicPartitioned):
            await client.unschedule(topic, "tick")
        again = await hot.schedule("tick", b"t2", every=60)
        replaced = await hot.schedule("tick", b"t3", every=60)
        assert replaced.topic == again.topic == hot.partitions.route("tick")
        assert [s.version for s in await hot.schedules()] == [again.version + 1]


def test_own_reads_answer_as_before(redis_url: str, topic: str) -> None:
    # the code that serves a partitioned topic's own name as one of its members (the Worker,
    # the HTTP service, PartitionedTopic) reads it with own=True: nothing there is no error
    client = redisched.Client.from_url(redis_url)
    _partitioned(client, topic)
    ops = client.ops
    assert client.execute(ops.get(topic, "k0", own=True)) is None
    assert client.execute(ops.lease(topic, 5, own=True)).jobs == []
    assert client.execute(ops.reserve_many(topic, 5, own=True)) == []
    assert client.execute(ops.pull(topic, own=True)) is None
    assert client.execute(ops.stats(topic, own=True)).scheduled == 0
    assert client.execute(ops.jobs(topic, "ready", own=True)).jobs == []
    assert client.execute(ops.finished(topic, own=True)).jobs == []
    assert client.execute(ops.history(topic, "k0", own=True)) is None
    assert client.execute(ops.events(topic, own=True)) == []
    assert client.execute(ops.latest_events(topic, own=True)) == []
    assert client.execute(ops.timeline(topic, own=True)).counts == [0] * 60
    assert client.execute(ops.get_schedule(topic, "nightly", own=True)) is None
    assert client.execute(ops.schedules(topic, own=True)) == []


def test_reads_of_a_plain_topic_are_unchanged(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    assert client.get(topic, "nobody") is None
    assert client.reserve(topic) is None and client.pull(topic) is None
    assert client.lease(topic, 3).jobs == []
    assert client.stats(topic).ready == 0
    assert client.jobs(topic, "ready").jobs == [] and client.finished(topic).jobs == []
    assert client.history(topic, "nobody") is None and client.events(topic) == []
    assert client.get_schedule(topic, "nobody") is None and client.schedules(topic) == []


async def test_the_async_client_is_refused_alike(redis_url: str, topic: str) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await run_async(client, configure(client.ops, topic, {"partitions": 2}))
        reads: list[Callable[[], Any]] = [
            lambda: client.get(topic, "a"),
            lambda: client.reserve(topic),
            lambda: client.reserve_many(topic, 2),
            lambda: client.lease(topic, 2),
            lambda: client.pull(topic),
            lambda: client.stats(topic),
            lambda: client.jobs(topic, "ready"),
            lambda: client.finished(topic),
            lambda: client.history(topic, "a"),
            lambda: client.events(topic),
            lambda: client.timeline(topic),
            lambda: client.get_schedule(topic, "a"),
            lambda: client.schedules(topic),
        ]
        for read in reads:
            with pytest.raises(TopicPartitioned) as refused:
                await read()
            assert refused.value.count == 2


def test_a_paused_partitioned_topic_says_so_too(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    _partitioned(client, topic)
    client.pause(topic)
    with pytest.raises(TopicPartitioned):
        client.reserve(topic)
    with pytest.raises(TopicPartitioned):
        client.pull(topic)


def test_cli_events_of_a_partitioned_topic_merge_its_partitions(redis_url: str, topic: str) -> None:
    # it printed nothing: the topic's own feed is empty once it is partitioned
    client = redisched.Client.from_url(redis_url)
    hot = _partitioned(client, topic, 4)
    ids = [f"job-{i}" for i in range(8)]
    for job_id in ids:
        hot.put(job_id, b"")
        time.sleep(0.003)  # events are timed to the ms: each put its own
    homes = {job_id: hot.partitions.route(job_id) for job_id in ids}
    assert len(set(homes.values())) > 1
    shown = cli(["events", topic], redis_url)
    assert shown.exit_code == 0, shown.output
    lines = [json.loads(line) for line in shown.output.splitlines()]
    assert [(e["id"], e["kind"], e["topic"]) for e in lines] == [
        (job_id, "put", homes[job_id]) for job_id in ids
    ]
    # by time, not by text: an event on a whole second is written without a fraction
    times = [datetime.fromisoformat(e["at"]) for e in lines]
    assert times == sorted(times)
    few = cli(["events", topic, "--limit", "3"], redis_url)
    assert [json.loads(line)["id"] for line in few.output.splitlines()] == ids[:3]
    # a line's cursor goes on in its own feed, named by the line's topic
    first = lines[0]
    rest = cli(["events", first["topic"], "--after", first["cursor"]], redis_url)
    assert [json.loads(line)["id"] for line in rest.output.splitlines()] == [
        job_id for job_id in ids[1:] if homes[job_id] == first["topic"]
    ]
    refused = cli(["events", topic, "--after", first["cursor"]], redis_url)
    assert refused.exit_code == 2 and "4 partitions" in refused.output, refused.output
    assert f"{topic}~p0" in refused.output


def test_cli_events_of_a_plain_topic_are_unchanged(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "a", b"")
    shown = cli(["events", topic], redis_url)
    assert shown.exit_code == 0, shown.output
    (line,) = [json.loads(line) for line in shown.output.splitlines()]
    assert line["id"] == "a" and "topic" not in line
