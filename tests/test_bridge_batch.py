"""Bridge batching (no I/O): rounds keep per-id order; one call per topic and round."""

from __future__ import annotations

import pytest

from redisched.bridges.batch import Applied, by_topic, join, rounds
from redisched.bridges.messages import Delete, Put, PutOptions
from redisched.keys import topics_key
from redisched.ops import Operations

OPS = Operations()
LATER = PutOptions(delay=60)


def test_rounds_split_only_where_an_id_repeats() -> None:
    items = [
        (1, Put("t", "a", b"", LATER)), (2, Put("t", "b", b"", LATER)),
        (3, Delete("t", "a")), (4, Put("u", "a", b"", LATER)), (5, Put("t", "a", b"", LATER)),
    ]  # fmt: skip
    assert [[n for n, _ in r] for r in rounds(items)] == [[1, 2], [3, 4], [5]]
    assert rounds([]) == []


def test_by_topic_keeps_first_appearance_order() -> None:
    items = [(1, Delete("b", "x")), (2, Delete("a", "x")), (3, Delete("b", "y"))]
    assert [[n for n, _ in g] for g in by_topic(items)] == [[1, 3], [2]]


def test_join_groups_puts_by_options_in_one_pipeline() -> None:
    call = join(OPS, [
        Put("t", "a", b"1", LATER), Put("t", "b", b"2", PutOptions(run_at=2e9)),
        Put("t", "c", b"3", LATER), Delete("t", "d"),
    ])  # fmt: skip
    assert [step.script for step in call.steps] == ["put", "put", "delete"]
    assert call.steps[0].args[-4:] == ("a", b"1", "c", b"3")  # a and c share one script call
    assert call.register_topic == (topics_key(OPS.prefix), "t")
    assert call.parse([[1, 1, 2, 1], [1, 1], [0, 0]]) == Applied(3, 1, ("d",))  # d: not found
    assert call.parse([[1, 1, 2, 1], [1, 1], [1, 1]]) == Applied(3, 1, ())


def test_join_takes_one_topic() -> None:
    with pytest.raises(ValueError, match="one topic"):
        join(OPS, [Delete("t", "a"), Delete("u", "a")])


def test_join_keeps_the_durability_of_its_puts() -> None:
    durable = Operations(durable=True)
    call = join(durable, [Put("t", "a", b"1", LATER), Delete("t", "b")])
    assert call.durability is not None and call.durability.required is True
    topic_setting = join(OPS, [Put("t", "a", b"1", LATER)])
    assert topic_setting.durability is not None and topic_setting.durability.required is None
    assert join(OPS, [Delete("t", "a")]).durability is None  # deletes never wait
