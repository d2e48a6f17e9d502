"""A purge deletes the jobs that were in its state when it began, and ends under any producer."""

from __future__ import annotations

from datetime import UTC, datetime

import redisched
from redisched.operate import purge
from tests.conftest import FakeClock

ROUNDS_ALLOWED = 40  # a purge still going after this many chunks would never end


def ids_in(client: redisched.Client, topic: str, state: str) -> set[str]:
    """Every id the listing shows in ``state``."""
    found: set[str] = set()
    cursor = None
    while True:
        page = client.jobs(topic, state, cursor=cursor, limit=500)
        found |= {job.id for job in page.jobs}
        if page.cursor is None:
            return found
        cursor = page.cursor


def test_a_ready_purge_takes_the_jobs_ready_at_its_start_under_a_fast_producer(
    redis_url: str, topic: str
) -> None:
    clock = FakeClock()
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        for priority in (0, 5):
            client.put_many(
                topic, [(f"old-{priority}-{i}", b"") for i in range(4)], priority=priority
            )
        client.put(topic, "old-due", b"", delay=5)
        clock.advance(10)  # old-due is due, not promoted: ready as listed
        start = clock.now
        rounds: list[int] = []

        def producer(done: int, left: int) -> None:
            # between chunks: more new ready jobs than a chunk takes, in front of, among and
            # behind the old ones; a put with a run_at before the purge began; one that falls
            # due after it began
            n = len(rounds)
            rounds.append(done)
            assert n < ROUNDS_ALLOWED, "the purge keeps taking jobs put after it began"
            for priority in (-5, 0, 5):
                client.put_many(
                    topic, [(f"new-{n}-{priority}-{i}", b"") for i in range(2)], priority=priority
                )
            client.put(
                topic, f"new-past-{n}", b"", run_at=datetime.fromtimestamp(start - 3600, UTC)
            )
            client.put(topic, f"new-soon-{n}", b"", delay=0.5)
            clock.advance(1)

        deleted = client._drive(purge(client.ops, topic, "ready", chunk=3, progress=producer))
        assert deleted == 9
        # left counts newer jobs too: after the third chunk, a fourth finds nothing of its own
        assert rounds == [3, 6, 9, 9]
        left = ids_in(client, topic, "ready")
        assert not {i for i in left if i.startswith("old-")}
        assert len(left) == len(rounds) * (6 + 2)  # every job put while it ran is still there


def test_a_dead_purge_takes_the_jobs_dead_at_its_start(redis_url: str, topic: str) -> None:
    clock = FakeClock()
    with redisched.Client.from_url(redis_url, clock=clock) as client:

        def kill(prefix: str, count: int) -> None:
            client.put_many(topic, [(f"{prefix}-{i}", b"") for i in range(count)])
            for job in client.reserve_many(topic, count):
                client.bury(job, reason="x")

        kill("old", 5)
        clock.advance(1)
        rounds: list[int] = []

        def producer(done: int, left: int) -> None:
            rounds.append(done)
            assert len(rounds) < ROUNDS_ALLOWED, "the purge keeps taking jobs that died after it"
            clock.advance(0.001)  # a job that died in the purge's first millisecond is its
            kill(f"new-{len(rounds)}", 3)

        deleted = client._drive(purge(client.ops, topic, "dead", chunk=2, progress=producer))
        assert deleted == 5
        left = ids_in(client, topic, "dead")
        assert not {i for i in left if i.startswith("old-")} and len(left) == 3 * len(rounds)


def test_a_scheduled_purge_spares_jobs_put_meanwhile_wherever_they_fall_due(
    redis_url: str, topic: str
) -> None:
    # old jobs due in 1 to 3 hours; between chunks, new ones due sooner than all of them,
    # among them (at an old one's very run_at too), later than all, a replacement of an old
    # one and an old one released back after a reserve: only the old ones still as they were
    # go
    clock = FakeClock()
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        start = clock.now
        for hour in (1, 2, 3):
            client.put_many(topic, [(f"old-{hour}-{i}", b"") for i in range(4)], delay=3600 * hour)
        client.put(topic, "old-replaced", b"before", delay=5400)
        clock.advance(1)
        rounds: list[int] = []

        def producer(done: int, left: int) -> None:
            n = len(rounds)
            rounds.append(done)
            assert n < ROUNDS_ALLOWED, "the purge keeps going"
            clock.advance(1)
            for delay in (60, 5400, 9000):
                client.put(topic, f"new-{n}-{delay}", b"", delay=delay)
            client.put(topic, f"new-tie-{n}", b"", run_at=datetime.fromtimestamp(start + 3600, UTC))
            if n == 0:
                client.put(topic, "old-replaced", b"after", delay=5400, replace=True)

        deleted = client._drive(purge(client.ops, topic, "scheduled", chunk=3, progress=producer))
        left = ids_in(client, topic, "scheduled")
        assert deleted == 12
        assert left == {f"new-{n}-{d}" for n in range(len(rounds)) for d in (60, 5400, 9000)} | {
            f"new-tie-{n}" for n in range(len(rounds))
        } | {"old-replaced"}
        replaced = client.get(topic, "old-replaced")
        assert replaced is not None and replaced.body == b"after"
        assert len(rounds) < 8  # it ended, one chunk at a time


def test_a_scheduled_purge_reads_past_more_jobs_put_meanwhile_than_a_chunk(
    redis_url: str, topic: str
) -> None:
    # after the first chunk, ten new jobs at the old ones' very run_at (ties with the four old
    # ones left), more than a chunk of 3: each call reads past them and still takes a whole
    # chunk of old ones, so the purge neither stops early nor loops
    clock = FakeClock()
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        due = datetime.fromtimestamp(clock.now + 3600, UTC)
        client.put_many(topic, [(f"old-{i}", b"") for i in range(7)], run_at=due)
        clock.advance(1)
        rounds: list[int] = []

        def producer(done: int, left: int) -> None:
            rounds.append(done)
            assert len(rounds) < ROUNDS_ALLOWED, "the purge keeps going"
            if len(rounds) == 1:
                clock.advance(1)
                client.put_many(topic, [(f"new-{i}", b"") for i in range(10)], run_at=due)

        assert client._drive(purge(client.ops, topic, "scheduled", chunk=3, progress=producer)) == 7
        assert rounds == [3, 6, 7]
        assert ids_in(client, topic, "scheduled") == {f"new-{i}" for i in range(10)}


def test_a_purge_advances_a_schedule_once_when_it_deletes_a_job_named_as_its_next_run(
    redis_url: str, topic: str
) -> None:
    # the pending occurrence at 00:01 and an ordinary job put under the name of the one at
    # 00:02 go in one chunk; the chain puts 00:02 again (its id is free), and that new one is
    # the pending occurrence: the deleted job of that name was not, and advances nothing
    clock = FakeClock(datetime(2027, 5, 1, tzinfo=UTC).timestamp())
    first, second = datetime(2027, 5, 1, 0, 1, tzinfo=UTC), datetime(2027, 5, 1, 0, 2, tzinfo=UTC)
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.schedule(topic, "s", b"", every=60, start_at=first)
        client.put(topic, f"s@{second:%Y-%m-%dT%H:%M:%SZ}", b"mine")  # ready at once
        clock.advance(61)  # the occurrence at 00:01 is due
        assert client.purge(topic, "ready") == 2
        s = client.get_schedule(topic, "s")
        assert s is not None and s.next_run_at == second
        assert client.stats(topic).scheduled == 1  # one run waits, not two
