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

    def drain_once(self, round_no: int, jobs: int, concurrency: int) -> None:
        """Put ``jobs`` ready jobs and time one Worker draining them."""
        fill(self.url, TOPIC, f"r{round_no}", jobs)
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


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every level on its own server, drained in interleaved rounds."""
    levels = [int(level) for level in args.levels.split(",")]
    result: dict[str, Any] = {"jobs": args.jobs, "concurrency": args.concurrency,
                              "rounds": args.rounds, "levels": levels}  # fmt: skip
    with contextlib.ExitStack() as stack:
        states = []
        for level in levels:
            server = stack.enter_context(private_redis())
            states.append(Level(server.url, level, args.fillers))
        states[0].drain_once(-1, min(args.jobs, 2000), args.concurrency)  # warm-up, dropped
        states[0].rates.clear()
        states[0].server_us.clear()
        states[0].server_cpu_us.clear()
        for round_no in range(args.rounds):  # the order flips each round: no level always first
            for state in states if round_no % 2 == 0 else states[::-1]:
                state.drain_once(round_no, args.jobs, args.concurrency)
        base = states[0]
        for state in states:
            state.check()
            ratios = [ours / empty for ours, empty in zip(state.rates, base.rates, strict=True)]
            server = [empty / ours for ours, empty in zip(state.server_us, base.server_us,
                                                          strict=True)]  # fmt: skip
            at = f"at_{state.level}"
            result[f"jobs_per_s_{at}"] = round(statistics.median(state.rates))
            result[f"ratio_{at}"] = round(statistics.median(ratios), 3)
            result[f"server_us_per_job_{at}"] = round(statistics.median(state.server_us), 2)
            result[f"server_ratio_{at}"] = round(statistics.median(server), 3)
            cpu = [empty / ours for ours, empty in zip(state.server_cpu_us, base.server_cpu_us,
                                                       strict=True)]  # fmt: skip
            result[f"server_cpu_us_per_job_{at}"] = round(statistics.median(state.server_cpu_us), 2)
            result[f"server_cpu_ratio_{at}"] = round(statistics.median(cpu), 3)
            result[f"rounds_server_cpu_us_{at}"] = [round(us, 1) for us in state.server_cpu_us]
            result[f"rounds_jobs_per_s_{at}"] = [round(rate) for rate in state.rates]
            result[f"rounds_server_us_{at}"] = [round(us, 1) for us in state.server_us]
            result[f"fill_s_{at}"] = round(state.fill_s, 1)
            result[f"used_memory_mb_{at}"] = round(
                int(state.conn.info("memory")["used_memory"]) / 1e6
            )
    top = levels[-1]
    result["largest_level"] = top
    result["ratio_at_largest"] = result[f"ratio_at_{top}"]
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
    args = parser.parse_args()  # fmt: skip
    started = load()
    result = measure(args)
    emit("backlog", {**result, "load_before": started, "load_after": load()})


if __name__ == "__main__":
    main()
