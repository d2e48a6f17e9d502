"""Core figures: put/s and reserve+ack/s through ``Client``, and Redis memory per job.

Each rate is reported next to a bare redis-py EVALSHA of a trivial script on the same
redis-server in the same run (the ceiling of any Lua-based queue from Python), as a ratio.
The two are measured in alternating blocks (ours, baseline, ours, ...), so that both see the
same load on a shared machine; the ratios are the figures issue 17 sets goals for:
``put_ratio`` (one put per call vs one EVALSHA), ``reserve_ack_ratio`` (a reserve and an ack
per job vs two EVALSHAs) and ``put_many_ratio`` (100 jobs per call vs 100 pipelined EVALSHAs).

Those ratios count the scripts' own work in Redis against ``return 1``. The ``*_script_ratio``
figures isolate what the client adds: the same calls against redis-py EVALSHAs of the same
scripts (put.lua, reserve.lua then ack.lua) with plain arguments on a topic of their own, in
alternating blocks too.

``plainest_put_ratio`` is the least a put can do under this design (``PLAINEST_PUT_SCRIPT``:
TIME, HSET, ZADD) against ``return 1``, both through redis-py; ``put_script_to_plainest_ratio``
is put.lua against it, both through redis-py too. With ``put_script_ratio`` (``Client.put``
against put.lua) the three split ``put_ratio`` into the job's storing, put.lua's own work and
the client (their product is about ``put_ratio``; each pairing is measured on its own).
``plainest_reserve_ack_ratio`` is the same context figure for a reserve and an ack
(``PLAINEST_RESERVE_SCRIPT`` then ``PLAINEST_ACK_SCRIPT``: pop, hold, read; end, delete)
against two ``return 1`` calls, and ``reserve_ack_to_plainest_ratio`` is the scripts' pair
against it, both through redis-py.

``memory_bytes_per_job`` is what one more job delayed by a day adds to Redis's ``used_memory``
once its topic's event feed is full (:func:`memory_per_job`); ``memory_feed_bytes`` is that
feed, a size per topic.

Run: ``python -m bench.bench_core [--jobs N] [--memory-jobs N]``
"""

from __future__ import annotations

import argparse
from typing import Any

import redis

import redisched
from bench.common import (
    PLAINEST_ACK_SCRIPT,
    PLAINEST_PUT_SCRIPT,
    PLAINEST_RESERVE_SCRIPT,
    TRIVIAL_SCRIPT,
    emit,
    median_rate,
    paired_rates,
    private_redis,
)
from redisched import scripts
from redisched.keys import TopicKeys

BODY = b"x" * 100
FEED_EVENTS = 10_000
"""The events a topic's feed keeps by default (its ``keep_events``)."""


def memory_per_job(url: str, jobs: int) -> dict[str, float]:
    """Bytes of Redis memory each scheduled job adds (100-byte body, 10-char id), with the
    topic's event feed already full, and the feed's own bytes.

    The feed keeps a topic's newest ``keep_events`` events (10,000 by default): a size per
    topic, which its first 10,000 puts fill and no later put grows. Those are put first, so
    ``memory_bytes_per_job`` is what one more waiting job costs. Counted in the jobs instead,
    the feed (~420 kB) would add 21 bytes a job at 20,000 jobs and 0.4 at 1,000,000.
    """
    conn = redis.Redis.from_url(url)
    client = redisched.Client(conn)
    client.put("warmup", "w", b"")  # create the topics set and load the scripts first
    batch = 1000

    def put(prefix: str, count: int) -> None:
        for start in range(0, count, batch):
            ids = range(start, min(count, start + batch))
            client.put_many("memory", [(f"{prefix}-{i:06d}", BODY) for i in ids], delay=86400)

    put("fill", FEED_EVENTS + batch)
    before: int = conn.info("memory")["used_memory"]
    put("job", jobs)
    after: int = conn.info("memory")["used_memory"]
    feed = conn.memory_usage(TopicKeys("redisched", "memory").name("feed"), samples=0)
    return {"memory_bytes_per_job": (after - before) / jobs, "memory_feed_bytes": feed or 0}


def main() -> None:
    """Run and print the core benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--memory-jobs", type=int, default=100_000)
    args = parser.parse_args()
    n = args.jobs
    with private_redis() as server:
        conn = redis.Redis.from_url(server.url)
        client = redisched.Client.from_url(server.url)  # as a user makes one: its own pool
        counter = iter(range(10**9))
        sha = conn.script_load(TRIVIAL_SCRIPT)
        plainest_sha = conn.script_load(PLAINEST_PUT_SCRIPT)
        plainest_reserve_sha = conn.script_load(PLAINEST_RESERVE_SCRIPT)
        plainest_ack_sha = conn.script_load(PLAINEST_ACK_SCRIPT)
        for name in ("put", "reserve", "ack"):
            conn.script_load(scripts.get(name).source)

        def bare(count: int) -> None:
            for _ in range(count):
                conn.evalsha(sha, 0)

        def script_call(name: str, *args: Any) -> Any:
            script = scripts.get(name)
            names = TopicKeys("redisched", "raw")
            keys = [names.name(p.name) for p in script.keys]
            return conn.evalsha(script.sha, len(keys), *keys, *args)

        def raw_puts(count: int) -> None:
            for _ in range(count):
                script_call("put", "", "", 0, "", 0, "", 0, "", f"r{next(counter)}", BODY)

        def raw_reserve_ack(count: int) -> None:
            for _ in range(count):
                job = script_call("reserve", "", 1, "", 1000, "")[3]
                script_call("ack", "", job[0], job[8], b"")

        def plainest_puts(count: int) -> None:
            for _ in range(count):
                conn.evalsha(plainest_sha, 2, "{plain}:jobs", "{plain}:ready",
                             f"p{next(counter)}", BODY)  # fmt: skip

        def plainest_fill(count: int) -> None:
            """Ready jobs for the plainest pairs: ids in the ready zset, bodies in the hash."""
            for start in range(0, count, 1000):
                pipe = conn.pipeline(transaction=False)
                ids = [f"q{i}" for i in range(start, min(count, start + 1000))]
                pipe.hset("{plain}:jobs", mapping=dict.fromkeys(ids, BODY))
                pipe.zadd("{plain}:ready", dict.fromkeys(ids, 0))
                pipe.execute()

        def plainest_reserve_ack(count: int) -> None:
            for _ in range(count):
                job_id, _body = conn.evalsha(plainest_reserve_sha, 3, "{plain}:ready",
                                             "{plain}:reserved", "{plain}:jobs", 60000)  # fmt: skip
                conn.evalsha(plainest_ack_sha, 2, "{plain}:reserved", "{plain}:jobs", job_id)

        def bare_pipelined(count: int) -> None:
            for start in range(0, count, 100):
                pipe = conn.pipeline(transaction=False)
                for _ in range(min(100, count - start)):
                    pipe.evalsha(sha, 0)
                pipe.execute()

        def single_puts(count: int) -> None:
            for _ in range(count):
                client.put("single", f"j{next(counter)}", BODY)

        def batched_puts(count: int) -> None:
            for _ in range(0, count, 100):
                client.put_many("batched", [(f"b{next(counter)}", BODY) for _j in range(100)])

        def reserve_ack(count: int) -> None:
            for _ in range(count):
                client.ack(client.reserve("single"))

        def reserve_ack_batched() -> None:
            done: list[redisched.Job] = []
            for _ in range(n // 100):
                _, lease = client.ack_and_lease("batched", done, 100)
                done = lease.jobs
            client.ack_many("batched", done)

        bare_put, put = paired_rates(n, bare, single_puts)
        bare_piped, put_many = paired_rates(n, bare_pipelined, batched_puts)
        bare_ra, ra = paired_rates(n, bare, reserve_ack)
        raw_put, put_again = paired_rates(n, raw_puts, single_puts)
        raw_ra, ra_again = paired_rates(n, raw_reserve_ack, reserve_ack)
        bare_plain, plainest = paired_rates(n, bare, plainest_puts)
        plainest_again, raw_put_again = paired_rates(n, plainest_puts, raw_puts)
        plainest_fill(3 * n * 2)  # paired_rates runs 3 * n of each side; two pairings
        raw_puts(n)  # a margin for raw_reserve_ack: the raw puts so far match its leases
        bare_pairs, plainest_pairs = paired_rates(n, bare, plainest_reserve_ack)
        plainest_pairs_again, raw_ra_again = paired_rates(n, plainest_reserve_ack, raw_reserve_ack)
        results = {
            "bare_evalsha_per_s": bare_put,
            "bare_evalsha_pipelined_per_s": bare_piped,
            "put_per_s": put,
            "put_many_per_s": put_many,
            "reserve_ack_per_s": ra,
            "bare_evalsha_per_s_beside_reserve_ack": bare_ra,
            "ack_and_lease_batched_per_s": median_rate(n, reserve_ack_batched),
            "put_ratio": put / bare_put,
            "put_many_ratio": put_many / bare_piped,
            # a reserve and an ack are two calls: the baseline is half the bare EVALSHA rate
            "reserve_ack_ratio": ra / (bare_ra / 2),
            "raw_put_script_per_s": raw_put,
            "raw_reserve_ack_scripts_per_s": raw_ra,
            "put_script_ratio": put_again / raw_put,
            "reserve_ack_script_ratio": ra_again / raw_ra,
            "plainest_put_per_s": plainest,
            "plainest_put_ratio": plainest / bare_plain,
            "put_script_to_plainest_ratio": raw_put_again / plainest_again,
            "plainest_reserve_ack_per_s": plainest_pairs,
            # as reserve_ack_ratio: a pair is two calls, its baseline half the bare rate
            "plainest_reserve_ack_ratio": plainest_pairs / (bare_pairs / 2),
            "reserve_ack_to_plainest_ratio": raw_ra_again / plainest_pairs_again,
        }
    with private_redis() as server:
        results.update(memory_per_job(server.url, args.memory_jobs))
        results["memory_jobs"] = args.memory_jobs
    emit("core", {"jobs": n, **{k: round(v, 3) for k, v in results.items()}})


if __name__ == "__main__":
    main()
