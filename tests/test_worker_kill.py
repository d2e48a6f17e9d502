"""kill -9 a worker holding reservations, a hundred times: nothing is lost, nothing acked twice.

A survivor worker runs throughout; each round puts a few jobs, starts a victim worker, lets it
start handlers and SIGKILLs it at a random moment. Jobs it held come back when their ttr runs
out and the survivor (or the next victim) runs them again: delivery is at least once, and the
token makes every ack count exactly once.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import redisched
from redisched.embedded import EmbeddedRedis
from tests.conftest import BINARIES
from tests.workerproc import read_until, spawn, wait_for

ROUNDS = 100
JOBS_PER_ROUND = 12
TTR = 1.0
REDELIVERY_MARGIN_MS = 1000  # requeue is due at the deadline; the margin is for a busy machine


@pytest.fixture(scope="module")
def kill_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server (the newest available): the rounds test the worker, not Redis versions."""
    binary = BINARIES.get("redis7", BINARIES["redis6"])
    with EmbeddedRedis(tmp_path_factory.mktemp("kill"), binary=binary, persistent=False) as srv:
        yield srv.url


@pytest.mark.timeout(240)
def test_kill_9_at_random_points_loses_nothing_and_acks_once(
    kill_redis: str, topic: str, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    key = f"app-{topic}"
    raw = redis.Redis.from_url(kill_redis)
    client = redisched.Client.from_url(kill_redis)
    survivor = spawn(kill_redis, key, "record", "--topic", topic, "--concurrency", "4")
    read_until(survivor, "worker serving", 30)
    total = 0
    killed_holding = 0  # rounds whose victim had started handlers (its own leases, not all)
    victims: list[int] = []
    victim = None
    try:
        for round_ in range(ROUNDS):
            victim = spawn(kill_redis, key, "record", "--topic", topic, "--concurrency", "8")
            read_until(victim, "worker serving", 30)
            client.put_many(topic, [(f"r{round_}-{i}", b"x" * 100) for i in range(JOBS_PER_ROUND)],
                            ttr=TTR)  # fmt: skip
            total += JOBS_PER_ROUND
            alive = f"{key}:alive:{victim.pid}"
            wait_for(
                lambda: raw.exists(alive) or settled(client, topic),  # noqa: B023 - called here
                10, "the victim to start",
            )  # fmt: skip
            time.sleep(rng.uniform(0, 0.04))
            victim.kill()
            victim.communicate()
            victims.append(victim.pid)
        wait_for(lambda: settled(client, topic), 30, "every job to be acked")
    finally:
        if victim is not None and victim.poll() is None:
            victim.kill()
            victim.communicate()
        survivor.terminate()
        out = survivor.communicate(timeout=30)[1].decode(errors="replace")
    assert survivor.returncode == 0, out
    assert "Traceback" not in out, out

    stats = client.stats(topic)
    assert (stats.scheduled, stats.ready, stats.reserved, stats.dead) == (0, 0, 0, 0)
    assert stats.total_put == total
    assert stats.total_acked == total, f"seed {seed}: each job acked exactly once"
    # every acked job has exactly one done history, with exactly one acked event
    assert stats.finished_done == total, f"seed {seed}: one done record per job"
    for round_ in range(ROUNDS):
        for i in range(JOBS_PER_ROUND):
            history = client.history(topic, f"r{round_}-{i}")
            assert history is not None and history.outcome is not None, f"r{round_}-{i}"
            assert history.outcome.value == "done", f"seed {seed}: r{round_}-{i}"
            kinds = [e.kind.value for e in history.events]
            assert kinds.count("acked") == 1 and kinds[0] == "put", (seed, kinds)
    runs = {k.decode(): int(v) for k, v in raw.hgetall(f"{key}:runs").items()}
    assert len(runs) == total, f"seed {seed}: every job ran at least once"

    attempts: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    leases: dict[tuple[str, str], int] = defaultdict(int)  # (id, token) -> handler runs
    per_worker: dict[int, int] = defaultdict(int)  # pid -> handler runs (leases taken)
    lines = [line.decode().split() for line in raw.lrange(f"{key}:log", 0, -1)]
    for job_id, attempt, leased, until, _, pid, token in lines:
        attempts[job_id][int(attempt)] = (int(leased), int(until))
        leases[job_id, token] += 1
        per_worker[int(pid)] += 1
    twice = [lease for lease, n in leases.items() if n > 1]
    assert not twice, f"seed {seed}: one lease ran twice (a token acked twice?): {twice[:5]}"
    finished = [line.decode().split() for line in raw.lrange(f"{key}:finished", 0, -1)]
    assert len({(f[0], f[2]) for f in finished}) == len(finished), "a lease finished twice"
    assert sum(per_worker.values()) == len(lines) == sum(runs.values())
    killed_holding = sum(per_worker.get(pid, 0) > 0 for pid in victims)
    assert len(victims) == ROUNDS
    assert killed_holding >= ROUNDS // 2, "most kills should hit a worker holding reservations"
    # the jobs each victim was running when killed ran again under another lease
    finished_by = {(f[0], f[2]) for f in finished}
    cut = [(j, t) for j, _, _, _, _, pid, t in lines if int(pid) in victims]
    assert any(lease not in finished_by for lease in cut), "no kill cut a handler short"
    redelivered = 0
    for job_id, seen in attempts.items():
        for attempt, (_, until) in seen.items():
            if attempt + 1 in seen:
                redelivered += 1
                again = seen[attempt + 1][0]
                assert again >= until, f"{job_id} leased again before its lease ran out"
                assert again - until <= REDELIVERY_MARGIN_MS, (
                    f"{job_id} redelivered {again - until} ms after its ttr ran out (seed {seed})"
                )
    assert redelivered > 0 and sum(runs.values()) > total  # kills did cost re-runs


def settled(client: redisched.Client, topic: str) -> bool:
    """True when the topic holds no job in any state."""
    s = client.stats(topic)
    return s.scheduled + s.ready + s.reserved + s.dead == 0
