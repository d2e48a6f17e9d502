"""A partitioned topic's mark: Redis refuses to store a job or schedule in the topic itself."""

from __future__ import annotations

import pytest

import redisched
from redisched.partition_setting import configure, run, run_async
from redisched.partitions import PartitionedTopic


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
    stats = client.stats(topic)
    assert stats.scheduled + stats.ready + stats.total_put == 0
    assert client.schedules(topic) == []
    hot = PartitionedTopic(client, topic, 3)
    assert hot.put("a", b"1").version == 1  # each id's partition takes it


async def test_the_async_client_is_refused_alike(redis_url: str, topic: str) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await run_async(client, configure(client.ops, topic, {"partitions": 2}))
        with pytest.raises(redisched.TopicPartitioned):
            await client.put(topic, "a", b"1")
        assert (await client.get(topic, "a")) is None
