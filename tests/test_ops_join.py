"""Call.join (no I/O): one round trip for several calls, registration and durability kept."""

from __future__ import annotations

import pytest

from redisched import PutStatus
from redisched.keys import topics_key
from redisched.ops import Call, Operations

OPS = Operations()


def test_join_concatenates_steps_and_slices_replies() -> None:
    put = OPS.put("t", "a", b"x")
    get = OPS.get("t", "missing")
    stats = OPS.kick("t", limit=5)
    call = Call.join(put, get, stats)
    assert call.steps == (*put.steps, *get.steps, *stats.steps)
    result, job, kicked = call.parse([[1, 1], None, 3])
    assert result.status is PutStatus.CREATED and job is None and kicked == 3


def test_join_keeps_registration_and_the_strictest_durability() -> None:
    durable = Operations(durable=True)
    call = Call.join(OPS.get("t", "a"), OPS.put("t", "a", b""), durable.put("t", "b", b""))
    assert call.register_topic == (topics_key(OPS.prefix), "t")
    assert call.durability is not None and call.durability.required is True
    assert Call.join(OPS.get("t", "a"), OPS.delete("t", "a")).durability is None
    assert Call.join(OPS.put("t", "a", b"")).durability.required is None  # type: ignore[union-attr]


def test_join_refuses_parts_for_two_topics_registration() -> None:
    with pytest.raises(ValueError, match="different topics"):
        Call.join(OPS.put("t", "a", b""), OPS.put("u", "a", b""))


def test_map_maps_the_result() -> None:
    call = OPS.kick("t").map(lambda n: n * 2)
    assert call.parse([4]) == 8


def test_ack_and_lease_is_a_join() -> None:
    call = OPS.ack_and_lease("t", [], 5)
    assert [s.script for s in call.steps] == ["reserve"]
    acked, lease = call.parse([[1000, -1, -1]])
    assert acked == [] and lease.jobs == [] and lease.now_ms == 1000
