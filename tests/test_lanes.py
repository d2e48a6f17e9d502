"""The lanes: a put given no option but ``replace``, or an ack without a result, once its
topic is known, is sent as its command straight from the topic's prepared head
(``Operations.lane_put``, ``Operations.lane_ack``), without the Call that ``Operations.put`` or
``Operations.ack`` makes; it keeps every outcome and every recovery of that Call."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import redis

import redisched
from redisched import (
    BackendError,
    ClientClosed,
    InvalidArgument,
    PutStatus,
    StaleReservation,
    TopicPartitioned,
)
from redisched.keys import TopicKeys
from redisched.ops import Operations


@pytest.fixture
def made_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the puts that made ``Operations.put``'s Call (those the lane did not take)."""
    made: list[str] = []
    long_way = Operations.put

    def put(self: Operations, topic: str, id: str, *args: Any, **kwargs: Any) -> Any:
        made.append(id)
        return long_way(self, topic, id, *args, **kwargs)

    monkeypatch.setattr(Operations, "put", put)
    return made


@pytest.fixture
def made_acks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the acks that made ``Operations.ack``'s Call."""
    made: list[str] = []
    long_way = Operations.ack

    def ack(self: Operations, job: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(job, "id", "?"))
        return long_way(self, job, *args, **kwargs)

    monkeypatch.setattr(Operations, "ack", ack)
    return made


async def test_puts_after_the_first_take_the_lane_with_every_outcome(
    server_api: Any, topic: str, made_calls: list[str]
) -> None:
    api = server_api
    assert (await api.put(topic, "first", b"1")).status is PutStatus.CREATED
    assert made_calls == ["first"]  # the first put prepares the topic
    created = await api.put(topic, "job-1", b"a")
    exists = await api.put(topic, "job-1", b"b")
    replaced = await api.put(topic, "job-1", b"c", replace=True)
    assert (created.status, created.version) == (PutStatus.CREATED, 1)
    assert (exists.status, exists.version) == (PutStatus.EXISTS, 1)
    assert (replaced.status, replaced.version) == (PutStatus.REPLACED, 2)
    job = await api.reserve(topic)
    assert job.id == "first"
    pending = await api.put(topic, "first", b"2", replace=True)
    assert (pending.status, pending.version) == (PutStatus.PENDING, 2)
    assert made_calls == ["first"]
    stored = await api.get(topic, "job-1")
    assert (stored.body, stored.version, stored.state.value) == (b"c", 2, "ready")


async def test_a_put_with_any_option_or_an_unusual_id_or_body_takes_the_long_way(
    server_api: Any, topic: str, made_calls: list[str]
) -> None:
    api = server_api
    await api.put(topic, "first", b"1")
    await api.put(topic, "delayed", b"", delay=60)
    await api.put(topic, "urgent", b"", priority=-1)
    await api.put(topic, "ttr", b"", ttr=5)
    await api.put(topic, "tries", b"", max_attempts=3)
    await api.put(topic, "first", b"", if_version=1, replace=True)
    await api.put(topic, "text", "a str body")
    await api.put(topic, "nön-ascii", b"")
    await api.put(topic, "ab", b"")  # two characters: "." and ".." are checked the long way
    assert made_calls == ["first", "delayed", "urgent", "ttr", "tries", "first", "text",
                          "nön-ascii", "ab"]  # fmt: skip
    assert (await api.get(topic, "nön-ascii")).id == "nön-ascii"
    assert (await api.get(topic, "text")).body == b"a str body"


async def test_a_lane_put_loads_a_lost_script(
    server_api: Any, topic: str, raw_redis: redis.Redis, made_calls: list[str]
) -> None:
    api = server_api
    await api.put(topic, "first", b"1")
    raw_redis.script_flush()
    result = await api.put(topic, "after-flush", b"2")
    assert (result.status, result.version) == (PutStatus.CREATED, 1)
    assert (await api.get(topic, "after-flush")).body == b"2"
    assert made_calls == ["first", "after-flush"]  # the lane's NOSCRIPT: the Call loads it


async def test_a_lane_put_into_a_topic_partitioned_meanwhile_is_refused(
    server_api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    api = server_api
    await api.put(topic, "first", b"1")
    raw_redis.hset(TopicKeys("redisched", topic).name("meta"), "partitions", 3)
    with pytest.raises(TopicPartitioned) as refused:
        await api.put(topic, "new", b"2")
    assert refused.value.count == 3
    assert (await api.put(topic, "first", b"3", replace=True)).version == 2  # held: replaced


async def test_a_lane_put_on_a_closed_client_is_refused(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "first", b"1")
    client.close()
    with pytest.raises(ClientClosed):
        client.put(topic, "second", b"2")
    aclient = redisched.AsyncClient.from_url(redis_url)
    await aclient.put(topic, "third", b"3")
    await aclient.close()
    with pytest.raises(ClientClosed):
        await aclient.put(topic, "fourth", b"4")
    with redisched.Client.from_url(redis_url) as fresh:
        assert fresh.get(topic, "second") is None and fresh.get(topic, "fourth") is None


def test_a_lane_put_that_failed_is_retried_as_its_call(
    client: redisched.Client, topic: str, monkeypatch: pytest.MonkeyPatch, made_calls: list[str]
) -> None:
    client.put(topic, "first", b"1")
    client.retry_for = 5.0
    send = client._send
    sent: list[Any] = []

    def failing_once(batch: Any) -> Any:
        sent.append(batch)
        if len(sent) == 1:
            lost = redis.ConnectionError("a test's failure")
            raise BackendError(f"Redis is unavailable: {lost}") from lost
        return send(batch)

    monkeypatch.setattr(client, "_send", failing_once)
    result = client.put(topic, "second", b"2")
    assert (result.status, result.version) == (PutStatus.CREATED, 1)
    assert len(sent) == 2 and sent[0][0] == sent[1][0]  # the same EVALSHA, sent again
    assert made_calls == ["first", "second"]  # the lane's failure: its Call was made to retry
    client.retry_for = 0.0
    sent.clear()
    with pytest.raises(BackendError):  # retry_for 0: the first failure is the answer
        client.put(topic, "third", b"3")
    assert len(sent) == 1


async def test_an_async_lane_put_that_failed_is_retried_as_its_call(
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch, made_calls: list[str]
) -> None:
    async with redisched.AsyncClient.from_url(redis_url, retry_for=5) as client:
        await client.put(topic, "first", b"1")
        send = client._send
        sent: list[Any] = []

        async def failing_once(batch: Any) -> Any:
            sent.append(batch)
            if len(sent) == 1:
                lost = redis.ConnectionError("a test's failure")
                raise BackendError(f"Redis is unavailable: {lost}") from lost
            return await send(batch)

        monkeypatch.setattr(client, "_send", failing_once)
        result = await client.put(topic, "second", b"2")
        assert (result.status, result.version) == (PutStatus.CREATED, 1)
        assert len(sent) == 2 and sent[0][0] == sent[1][0]
        assert made_calls == ["first", "second"]


async def test_acks_after_the_first_take_the_lane_and_a_stale_one_is_refused(
    server_api: Any, topic: str, made_acks: list[str]
) -> None:
    api = server_api
    for i in range(4):
        await api.put(topic, f"job-{i}", b"")
    await api.ack(await api.reserve(topic))
    assert made_acks == ["job-0"]  # the first ack prepares the topic's head
    second = await api.reserve(topic)
    await api.ack(second)
    assert (await api.get(topic, "job-1")) is None  # acked: finished, no longer a job
    with pytest.raises(StaleReservation) as stale:
        await api.ack(second)
    assert stale.value.id == "job-1"
    third = await api.reserve(topic)
    await api.release(third)
    with pytest.raises(StaleReservation):
        await api.ack(third)  # its token is no longer current
    assert made_acks == ["job-0"]
    fourth = await api.reserve(topic)
    await api.ack(fourth, result={"sent": True})  # a result: the long way
    assert made_acks == ["job-0", fourth.id]
    assert (await api.history(topic, fourth.id)).result == b'{"sent":true}'


async def test_a_lane_ack_loads_a_lost_script(
    server_api: Any, topic: str, raw_redis: redis.Redis, made_acks: list[str]
) -> None:
    api = server_api
    await api.put(topic, "a", b"")
    await api.put(topic, "b", b"")
    await api.ack(await api.reserve(topic))
    job = await api.reserve(topic)
    raw_redis.script_flush()
    await api.ack(job)
    assert (await api.get(topic, "b")) is None
    assert made_acks == ["a", "b"]  # the lane's NOSCRIPT: the Call loads it


async def test_a_job_the_lane_cannot_send_as_it_is_takes_the_long_way(
    server_api: Any, topic: str, made_acks: list[str]
) -> None:
    api = server_api
    await api.put(topic, "a", b"")
    await api.ack(await api.reserve(topic))
    await api.put(topic, "nön-ascii", b"")
    await api.ack(await api.reserve(topic))
    assert made_acks == ["a", "nön-ascii"]
    made = await api.put(topic, "b", b"")
    assert made.version == 1
    job = await api.reserve(topic)
    forged = dataclasses.replace(job, id=123)  # a Job built by hand, with no str id
    with pytest.raises(InvalidArgument, match=r"job\.id"):
        await api.ack(forged)
    no_token = dataclasses.replace(job, token=None)
    with pytest.raises(InvalidArgument, match="no token"):
        await api.ack(no_token)
    await api.ack(job)
