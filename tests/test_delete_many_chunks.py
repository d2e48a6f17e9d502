"""A delete_many of a list gives the same result however many script calls the list takes."""

from __future__ import annotations

from datetime import UTC, datetime

import redisched
from redisched.ops import DELETE_CHUNK, Operations
from tests.conftest import FakeClock


def occurrence(schedule: str, when: datetime) -> str:
    """The job id of ``schedule``'s occurrence at ``when``."""
    return f"{schedule}@{when.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def test_delete_many_of_more_ids_than_a_call_takes_skips_one_run_as_a_short_list_does(
    redis_url: str, topic: str
) -> None:
    clock = FakeClock(datetime(2027, 5, 1, tzinfo=UTC).timestamp())
    first, second = datetime(2027, 5, 1, 0, 1, tzinfo=UTC), datetime(2027, 5, 1, 0, 2, tzinfo=UTC)
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        for schedule in ("short", "long"):
            client.schedule(topic, schedule, b"", every=60, start_at=first)
        padding = [f"plain-{i}" for i in range(150)]
        client.put_many(topic, [(i, b"") for i in padding], delay=30)
        # the caller names the next run too; it is not there yet, so it is not deleted
        short = [occurrence("short", first), occurrence("short", second)]
        assert client.delete_many(topic, short) == 1
        long = [occurrence("long", first), *padding, occurrence("long", second)]
        assert client.delete_many(topic, long) == 151  # in two calls of the script
        for schedule in ("short", "long"):
            s = client.get_schedule(topic, schedule)
            assert s is not None and s.next_run_at == second, schedule
            job = client.get(topic, occurrence(schedule, second))
            assert job is not None and job.state == "scheduled", schedule


def test_delete_many_sends_occurrences_last_and_the_latest_first() -> None:
    ops = Operations()
    ids = [
        "s@2027-05-01T00:01:00Z",
        *[f"p{i}" for i in range(DELETE_CHUNK)],
        "s@2027-05-01T00:02:00Z",
    ]
    call = ops.delete_many("t", ids)
    sent = [list(step.args[2:]) for step in call.steps]
    assert sent[0] == [f"p{i}" for i in range(DELETE_CHUNK)]
    assert sent[1] == ["s@2027-05-01T00:02:00Z", "s@2027-05-01T00:01:00Z"]
