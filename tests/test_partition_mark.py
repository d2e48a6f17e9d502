"""A partitioned topic's mark: Redis refuses to store a job or schedule in the topic itself."""

from __future__ import annotations

import json

import pytest

import redisched
from redisched import InvalidArgument
from redisched.keys import partitions_key
from redisched.partition_setting import configure, run, run_async
from redisched.partitions import PartitionedTopic, Partitions
from tests.test_partition_setting import cli
from tests.unmarked import unmark


def test_a_put_or_schedule_into_a_partitioned_topic_itself_is_refused(
    redis_url: str, topic: str
) -> None:
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    calls = {
        "put": lambda: client.put(topic, "a", b"1"),
        "replace": lambda: client.put(topic, "a", b"1", replace=True, delay=60),
        "put_many": lambda: client.put_many(topic, [("a", b"1"), ("b", b"2")]),
        "schedule": lambda: client.schedule(topic, "s", b"", every=60),
        "cron": lambda: client.schedule(topic, "c", b"", cron="0 9 * * *"),
    }
    for name, call in calls.items():
        with pytest.raises(redisched.TopicPartitioned) as refused:
            call()
        assert (refused.value.argument, refused.value.count) == ("topic", 3), name
        assert "3 partitions" in str(refused.value), name
    with pytest.raises(redisched.TopicPartitioned):  # its jobs live in the partitions
        client.stats(topic)
    stats = client.execute(client.ops.stats(topic, own=True))
    assert stats.scheduled + stats.ready + stats.total_put == 0
    assert client.execute(client.ops.schedules(topic, own=True)) == []  # nothing made there
    hot = PartitionedTopic(client, topic, 3)
    assert hot.put("a", b"1").version == 1  # each id's partition takes it


async def test_the_async_client_is_refused_alike(redis_url: str, topic: str) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await run_async(client, configure(client.ops, topic, {"partitions": 2}))
        with pytest.raises(redisched.TopicPartitioned):
            await client.put(topic, "a", b"1")
        with pytest.raises(redisched.TopicPartitioned):  # "a" lives in its partition
            await client.get(topic, "a")


def test_setting_the_count_again_finishes_a_set_cut_short(redis_url: str, topic: str) -> None:
    """A set killed after its claim left the partitions without the topic's settings and
    pause; setting the same count again wrote only the mark."""
    client = redisched.Client.from_url(redis_url)
    client.configure(topic, ttr=7, max_attempts=3)
    client.pause(topic)
    client.redis.hset(partitions_key(client.ops.prefix), topic, 2)  # the claim, and no more
    run(client, configure(client.ops, topic, {"partitions": 2}))
    for name in Partitions(topic, 2).names:
        config = client.config(name)
        assert (config.ttr, config.max_attempts) == (7, 3), name
        assert client.stats(name).paused, name
    with pytest.raises(redisched.TopicPartitioned):
        client.put(topic, "a", b"")


def test_a_topic_whose_partition_name_is_partitioned_cannot_be_partitioned(
    redis_url: str, topic: str
) -> None:
    client = redisched.Client.from_url(redis_url)
    inner = Partitions(topic, 2).names[1]
    run(client, configure(client.ops, inner, {"partitions": 2}))
    with pytest.raises(InvalidArgument, match="is partitioned") as refused:
        run(client, configure(client.ops, topic, {"partitions": 2}))
    assert refused.value.argument == "partitions"
    assert client.config(topic).partitions is None


def test_a_job_or_schedule_the_topic_itself_holds_is_replaced_where_it_is(
    redis_url: str, topic: str
) -> None:
    """Put before the mark (an earlier version's topic), then the mark written by setting the
    count again: the CLI's put and schedule found them in the topic and were refused there."""
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    unmark(client, topic)
    client.put(topic, "x", b"old")
    client.schedule(topic, "s", b"", every=600)
    run(client, configure(client.ops, topic, {"partitions": 3}))  # marks it
    replaced = cli(["put", topic, "x", "new", "--replace"], redis_url)
    assert replaced.exit_code == 0, replaced.output
    assert (json.loads(replaced.output)["topic"], json.loads(replaced.output)["version"]) == (
        topic, 2,
    )  # fmt: skip
    again = cli(["schedule", topic, "s", "--every", "300"], redis_url)
    assert again.exit_code == 0, again.output
    assert (json.loads(again.output)["topic"], json.loads(again.output)["version"]) == (topic, 2)
    with pytest.raises(redisched.TopicPartitioned):  # a new id of its own: refused
        client.put_many(topic, [("x", b"1"), ("new", b"2")], replace=True)
    got = client.get(topic, "x")
    assert got is not None and got.body == b"new"  # the refused call changed nothing


async def test_a_delete_by_id_on_a_partitioned_topic_itself_says_so(
    redis_url: str, topic: str
) -> None:
    # It answered False: an app cancelling its job by id after an operator partitioned the
    # topic believed there was nothing to cancel, and the job ran. A job the topic itself
    # holds (put before the mark) is still deleted where it is.
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    unmark(client, topic)
    client.put(topic, "old", b"")
    run(client, configure(client.ops, topic, {"partitions": 3}))
    hot = PartitionedTopic(client, topic, 3)
    hot.put("k0", b"")
    for cancel in (lambda: client.delete(topic, "k0"), lambda: client.abort(topic, "k0")):
        with pytest.raises(redisched.TopicPartitioned) as refused:
            cancel()
        assert refused.value.count == 3
    assert hot.get("k0") is not None  # nothing changed
    assert client.delete(topic, "old") is True
    async with redisched.AsyncClient.from_url(redis_url) as aio:
        with pytest.raises(redisched.TopicPartitioned):
            await aio.delete(topic, "k0")
    assert hot.delete("k0") is True
