"""/metrics past ``metrics_topics``: the other topics add up under topic="{other}"."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

import redisched
from redisched.http.metrics import OTHER, Metrics


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redisched.AsyncClient]:
    """A client on a prefix of its own: its topics set holds only this test's topics."""
    async with redisched.AsyncClient.from_url(redis_url, prefix=f"m{uuid.uuid4().hex}") as c:
        yield c


def samples(text: bytes) -> dict[tuple[str, str, str], float]:
    """(sample name, topic, state or outcome) -> value, for every sample with a topic."""
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if "topic" in sample.labels:
                label = sample.labels.get("state", sample.labels.get("outcome", ""))
                found[sample.name, sample.labels["topic"], label] = sample.value
    return found


def gauge(text: bytes, name: str) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"no {name}")


async def fill(client: redisched.AsyncClient, topic: str, jobs: int) -> None:
    await client.put_many(topic, [(f"j{i}", b"x") for i in range(jobs)])


async def test_topics_past_the_cap_add_up_under_other(client: redisched.AsyncClient) -> None:
    for topic, jobs in (("big", 5), ("bigger", 9), ("small", 1), ("tiny", 2)):
        await fill(client, topic, jobs)
    await client.pause("small")
    text = await Metrics(max_topics=2).render(client)
    found = samples(text)
    topics = {topic for _, topic, _ in found}
    assert topics == {"big", "bigger", OTHER}  # the most jobs keep series of their own
    assert found["redisched_jobs", "bigger", "ready"] == 9
    assert found["redisched_jobs", OTHER, "ready"] == 3  # small + tiny
    assert found["redisched_puts_total", OTHER, ""] == 3
    assert found["redisched_topic_paused", OTHER, ""] == 1  # how many of them are
    assert gauge(text, "redisched_other_topics") == 2


async def test_the_topics_with_series_stay_while_topics_come_and_go(
    client: redisched.AsyncClient,
) -> None:
    metrics = Metrics(max_topics=2)
    for topic, jobs in (("a", 3), ("b", 2), ("c", 1)):
        await fill(client, topic, jobs)
    await metrics.render(client)
    await fill(client, "huge", 50)  # comes later: adds to {other}, takes no place
    found = samples(await metrics.render(client))
    assert {topic for _, topic, _ in found} == {"a", "b", OTHER}
    assert found["redisched_puts_total", OTHER, ""] == 51
    await client.delete_topic("a")  # a place frees up: the biggest of the others takes it
    found = samples(await metrics.render(client))
    assert {topic for _, topic, _ in found} == {"b", "huge", OTHER}
    assert found["redisched_jobs", OTHER, "ready"] == 1


async def test_under_the_cap_there_is_no_other(client: redisched.AsyncClient) -> None:
    await fill(client, "one", 1)
    text = await Metrics(max_topics=1).render(client)
    assert {topic for _, topic, _ in samples(text)} == {"one"}
    assert gauge(text, "redisched_other_topics") == 0
    everything_folded = samples(await Metrics(max_topics=0).render(client))
    assert {topic for _, topic, _ in everything_folded} == {OTHER}
