"""The ack of jobs a consumer leased itself (no I/O): the same step as ack_many, fewer checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from redisched import Job
from redisched.errors import InvalidArgument
from redisched.ops import Operations, parse_lease

OPS = Operations()
NOW = 1_764_660_000_000


def leased(topic: str, *ids: str) -> list[Job]:
    """Jobs as ``reserve.lua`` hands them out: same run_at, same deadline."""
    rows = [
        [i.encode(), b"reserved", 1, 1, 0, 30_000, 25, NOW, f"tok-{i}".encode(), NOW + 30_000,
         None, b"body", 0]
        for i in ids
    ]  # fmt: skip
    return parse_lease(topic, [NOW, -1, NOW + 30_000, *rows]).jobs


def test_ack_leased_sends_what_ack_many_sends() -> None:
    jobs = leased("t", "a", "b")
    fast = OPS.ack_leased("t", jobs, results=[b"done", None])
    checked = OPS.ack_many("t", jobs, results=[b"done", None])
    assert [s.args[1:] for s in fast.steps] == [s.args[1:] for s in checked.steps]
    assert fast.steps[0].args[1:] == ("a", "tok-a", b"done", "b", "tok-b", b"")
    assert fast.parse([[1, 0]]) == [True, False]


def test_ack_leased_still_refuses_another_topic_or_a_job_without_token() -> None:
    (job,) = leased("t", "a")
    with pytest.raises(InvalidArgument, match="is in topic 'u'"):
        OPS.ack_leased("t", leased("u", "a"))
    with pytest.raises(InvalidArgument, match="has no token"):
        OPS.ack_leased("t", [replace(job, token=None)])
    with pytest.raises(InvalidArgument, match="topic"):
        OPS.ack_leased("a{b}", [job])


def test_an_occurrence_ack_checks_its_schedule_in_the_same_call() -> None:
    plain = OPS.ack_leased("t", leased("t", "a"))
    occurrence = OPS.ack_leased("t", leased("t", "daily@1764633600"))
    assert len(occurrence.steps) > len(plain.steps)
    assert len(OPS.ack_many("t", leased("t", "daily@1764633600")).steps) == len(occurrence.steps)


def test_the_jobs_of_one_lease_share_their_datetimes() -> None:
    first, second = leased("t", "a", "b")
    assert first.run_at is second.run_at and first.reserved_until is second.reserved_until
    assert first.run_at.timestamp() * 1000 == NOW and first.run_at.tzinfo is not None
