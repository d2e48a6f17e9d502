"""The Worker's jobs/s as the topic's backlog of scheduled jobs grows (issue 17).

Each level (default 0, 100k, 1M, 10M) gets its own redis-server whose topic holds ``level``
jobs due tomorrow (100-byte bodies, written by ``put_many`` from ``--fillers`` processes at
once). Then, after a warm-up drain, round after round and level after level (in the opposite
order every other round, so that the drift of a shared machine falls on every level alike),
``--jobs`` ready jobs are put in the same topic and drained by one Worker (concurrency 1000,
a no-op async handler, as ``bench_worker``). Per level: the median
jobs/s, its same-round ratio to the empty topic (goal: >= 0.95), and Redis's own microseconds
per job (``INFO commandstats``: every EVALSHA of the drain over the jobs drained), which shows
what the scripts pay for the bigger topic without the client's noise. Both are wall-clock
times, which on a shared machine also count the time a process waited for a core; the CPU
time of Redis's main thread per job (``server_cpu_*``, Linux's schedstat) does not.

Then every jobs hash is settled (:func:`settle`: a backlog written just past a power of two,
as 10M is past 2^23, leaves Redis growing the hash's table, and the next ~8M commands on it
pay for that) and the rounds run again: ``settled_*`` is a topic that has lived a while,
the first set one just written. ``--no-settle`` skips the second set.

Run: ``python -m bench.bench_backlog [--levels 0,100000,1000000,10000000] [--jobs N]``; prints
one JSON line. 10M scheduled jobs take ~4 GB of Redis memory and a few minutes to write.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import time
from typing import Any

import redis

from bench.bench_burst import cpu_seconds, load
from bench.bench_worker import drain, fill, run_loop
from bench.common import emit, private_redis

TOPIC = "backlog"
FILL_BATCH = 5000


def _fill_range(url: str, start: int, stop: int) -> None:
    body = b"x" * 100
    from redisched import Client

    with Client.from_url(url) as client:
        for first in range(start, stop, FILL_BATCH):
            ids = range(first, min(stop, first + FILL_BATCH))
            client.put_many(TOPIC, [(f"later-{i:08d}", body) for i in ids], delay=86_400)


def fill_backlog(url: str, count: int, fillers: int) -> float:
    """Schedule ``count`` jobs a day ahead, from ``fillers`` processes; the seconds it took."""
    started = time.perf_counter()
    if count <= 200_000 or fillers <= 1:
        _fill_range(url, 0, count)
    else:
        share = -(-count // fillers)
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_fill_range, args=(url, i * share, min(count, (i + 1) * share)))
            for i in range(fillers)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            if worker.exitcode != 0:
                raise SystemExit(f"bench_backlog: a filler exited with {worker.exitcode}")
    return time.perf_counter() - started


def evalsha_usec(conn: redis.Redis) -> float:
    """Redis's total microseconds in EVALSHA since the last CONFIG RESETSTAT."""
    stats: dict[str, Any] = conn.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


class Level:
    """One redis-server whose topic holds ``level`` scheduled jobs."""

    def __init__(self, url: str, level: int, fillers: int) -> None:
        self.url = url
        self.level = level
        self.conn = redis.Redis.from_url(url)
        self.fill_s = fill_backlog(url, level, fillers)
        self.pid = int(self.conn.info("server")["process_id"])
        self.rates: list[float] = []
        self.server_us: list[float] = []
        self.server_cpu_us: list[float] = []

    def drain_once(self, tag: str, jobs: int, concurrency: int) -> None:
        """Put ``jobs`` ready jobs (ids ``tag-i``) and time one Worker draining them."""
        fill(self.url, TOPIC, tag, jobs)
        self.conn.config_resetstat()
        server_cpu = cpu_seconds(self.pid)
        seconds = run_loop(drain(self.url, TOPIC, jobs, concurrency))
        self.server_cpu_us.append(1e6 * (cpu_seconds(self.pid) - server_cpu) / jobs)
        self.rates.append(jobs / seconds)
        self.server_us.append(evalsha_usec(self.conn) / jobs)

    def check(self) -> None:
        """The backlog is all still there, scheduled."""
        scheduled = int(self.conn.zcard(f"redisched:{{{TOPIC}}}:scheduled"))
        if scheduled != self.level:
            raise SystemExit(f"bench_backlog: expected {self.level} scheduled, found {scheduled}")


PROBE = """
for i = 1, tonumber(ARGV[1]) do redis.call('HEXISTS', KEYS[1], ARGV[2] .. i) end
return 0
"""
"""Looks up missing fields of a hash: each lookup moves one bucket of a rehash along."""
PROBES_PER_CALL = 20_000


def settle(state: Level) -> float:
    """Let Redis finish growing the topic's jobs hash; the seconds it took.

    Redis grows a hash's table at each power of two of its size and moves the entries over
    incrementally, one bucket per command on the hash; until it is done every lookup searches
    two tables and moves a bucket. A backlog written just past a power of two (10M is past
    2^23) is left mid-way, and its first ~8M commands pay for it: a live topic's own puts,
    reserves and acks finish it. One lookup of a missing field per job does it here (a fill
    not past a power of two pays the lookups and nothing else).
    """
    started = time.perf_counter()
    probe = state.conn.register_script(PROBE)
    key = f"redisched:{{{TOPIC}}}:jobs"
    for first in range(0, state.level, PROBES_PER_CALL):
        probe(keys=[key], args=[min(PROBES_PER_CALL, state.level - first), f"probe-{first}-"])
    return time.perf_counter() - started


def rounds(states: list[Level], args: argparse.Namespace, tag: str) -> None:
    """``args.rounds`` drains per level, the order of the levels flipped each round."""
    for state in states:
        state.rates.clear()
        state.server_us.clear()
        state.server_cpu_us.clear()
    for round_no in range(args.rounds):  # no level always first
        for state in states if round_no % 2 == 0 else states[::-1]:
            state.drain_once(f"{tag}{round_no}", args.jobs, args.concurrency)


def summarize(states: list[Level], prefix: str) -> dict[str, Any]:
    """Per level, the medians of its rounds and their same-round ratios to the first level."""
    result: dict[str, Any] = {}
    base = states[0]
    for state in states:
        ratios = [ours / empty for ours, empty in zip(state.rates, base.rates, strict=True)]
        server = [empty / ours for ours, empty in zip(state.server_us, base.server_us,
                                                      strict=True)]  # fmt: skip
        cpu = [empty / ours for ours, empty in zip(state.server_cpu_us, base.server_cpu_us,
                                                   strict=True)]  # fmt: skip
        at = f"at_{state.level}"
        result[f"{prefix}jobs_per_s_{at}"] = round(statistics.median(state.rates))
        result[f"{prefix}ratio_{at}"] = round(statistics.median(ratios), 3)
        result[f"{prefix}server_us_per_job_{at}"] = round(statistics.median(state.server_us), 2)
        result[f"{prefix}server_ratio_{at}"] = round(statistics.median(server), 3)
        result[f"{prefix}server_cpu_us_per_job_{at}"] = round(
            statistics.median(state.server_cpu_us), 2
        )
        result[f"{prefix}server_cpu_ratio_{at}"] = round(statistics.median(cpu), 3)
        result[f"{prefix}rounds_jobs_per_s_{at}"] = [round(rate) for rate in state.rates]
        result[f"{prefix}rounds_server_us_{at}"] = [round(us, 1) for us in state.server_us]
        result[f"{prefix}rounds_server_cpu_us_{at}"] = [round(us, 1) for us in state.server_cpu_us]
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every level on its own server, drained in interleaved rounds: as written, then settled."""
    levels = [int(level) for level in args.levels.split(",")]
    result: dict[str, Any] = {"jobs": args.jobs, "concurrency": args.concurrency,
                              "rounds": args.rounds, "levels": levels}  # fmt: skip
    with contextlib.ExitStack() as stack:
        states = []
        for level in levels:
            server = stack.enter_context(private_redis())
            states.append(Level(server.url, level, args.fillers))
        states[0].drain_once("warm", min(args.jobs, 2000), args.concurrency)  # dropped
        rounds(states, args, "r")
        result.update(summarize(states, ""))
        if args.settle:
            for state in states:
                result[f"settle_s_at_{state.level}"] = round(settle(state), 1)
            rounds(states, args, "s")
            result.update(summarize(states, "settled_"))
        for state in states:
            state.check()
            result[f"fill_s_at_{state.level}"] = round(state.fill_s, 1)
            result[f"used_memory_mb_at_{state.level}"] = round(
                int(state.conn.info("memory")["used_memory"]) / 1e6
            )
    top = levels[-1]
    result["largest_level"] = top
    result["ratio_at_largest"] = result[f"ratio_at_{top}"]
    if args.settle:
        result["settled_ratio_at_largest"] = result[f"settled_ratio_at_{top}"]
    return result


def main() -> None:
    """Parse the options, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels",
        default="0,100000,1000000,10000000",
        help="scheduled jobs per server, the first one the reference",
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="ready jobs per drain")
    parser.add_argument("--rounds", type=int, default=5, help="drains per level (median)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--fillers", type=int, default=2, help="processes writing the backlog")
    parser.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="skip the second set of rounds, after the jobs hashes settle",
    )
    args = parser.parse_args()  # fmt: skip
    started = load()
    result = measure(args)
    emit("backlog", {**result, "load_before": started, "load_after": load()})


if __name__ == "__main__":
    main()
