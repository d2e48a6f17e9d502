"""A burst: N jobs falling due within one second (a campaign at 09:00), drained by one Worker.

Three goals of issue 17, each measured here against the same Worker's steady rate in the same
run:

- the burst drains at >= 0.9x the Worker's steady jobs/s (N ready jobs, the same Worker);
- the first job starts <= 5 ms after its run_at (handler start minus ``job.run_at``);
- no Redis command takes over 5 ms while the burst is promoted (``SLOWLOG`` entries over
  5,000 µs and ``LATENCY LATEST`` with ``latency-monitor-threshold 5``).

The jobs are put beforehand with ``put_many`` (5,000 per call), their run_at spread evenly over
one second that starts a few seconds after the last put; the Worker is already waiting when
the second begins. Drain rate: N / (last ack - first run_at).

``--rounds`` rounds each drain N ready jobs and a burst of N, in the opposite order every other
round (the drift of a shared machine falls on both alike); the ratio is the median of the
rounds' own ratios. Redis's own microseconds per job (``INFO commandstats``: every EVALSHA of
a drain over its jobs) show what the burst costs the server without the client's noise. The
slowest commands are named (script and jobs per call) so that a slow call's size can be told
from a machine that paused the server (the load average is printed with the figures).

Run: ``python -m bench.bench_burst [--jobs N] [--rounds R]`` (``make bench`` uses 100,000; the
issue's 1,000,000 with ``--jobs 1000000``, ~300 MB of Redis memory); prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from typing import Any

import redis

from bench.bench_worker import drain, fill, run_loop
from bench.common import emit, private_redis
from redisched import AsyncClient, Client, Job, Worker
from redisched.ops import DEFAULT_PROMOTE_LIMIT
from redisched.scripts import load_all

SLOW_US = 5000
BATCH = 5000


def fill_burst(url: str, topic: str, count: int, lead: float, prefix: str = "b") -> float:
    """Put ``count`` jobs due over one second starting ``lead`` s after the puts; that start."""
    body = b"x" * 100
    batches = max(1, (count + BATCH - 1) // BATCH)
    # time one batch (in another topic), so that the second starts after the last put
    started = time.time()
    fill(url, "probe", f"{prefix}-p", min(count, BATCH), delay=86_400)
    begin = time.time() + (time.time() - started) * batches * 1.5 + lead
    with Client.from_url(url) as client:
        for index in range(batches):
            ids = range(index * BATCH, min(count, (index + 1) * BATCH))
            run_at = begin + index / batches
            client.put_many(topic, [(f"{prefix}-{i}", body) for i in ids], run_at=run_at)
    if time.time() > begin:
        raise SystemExit("bench_burst: the puts ran into the burst second; raise --lead")
    return begin


async def burst(
    url: str, topic: str, count: int, begin: float, concurrency: int, promote_limit: int
) -> dict[str, Any]:
    """Run one Worker through the burst; lateness of the first job and the drain time."""
    done = 0
    first_late_ms: float | None = None
    last_ack = 0.0

    async def handler(job: Job) -> None:
        nonlocal done, first_late_ms, last_ack
        if first_late_ms is None:
            first_late_ms = time.time() * 1000 - job.run_at.timestamp() * 1000
        done += 1
        if done == count:
            last_ack = time.time()
            worker.stop()

    async with AsyncClient.from_url(url, promote_limit=promote_limit) as client:
        acked_before = (await client.stats(topic)).total_acked
        worker = Worker(client, {topic: handler}, concurrency=concurrency, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        await asyncio.wait_for(task, max(60.0, begin - time.time() + count / 1000))
        stats = await client.stats(topic)
    if stats.total_acked - acked_before != count:
        raise SystemExit(f"bench_burst: {topic} not fully acked: {stats}")
    return {"first_job_late_ms": first_late_ms, "drain_s": last_ack - begin}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


SCRIPT_NAMES = {script.sha: name for name, script in load_all().items()}


def describe(command: bytes | str) -> str:
    """A SLOWLOG entry's command as ``script (N jobs)`` (reserve: its count; ack: its jobs)."""
    text = _text(command)
    hidden = 0
    more = re.search(r" \.\.\. \((\d+) more arguments\)$", text)  # SLOWLOG keeps 32 words
    if more:
        text, hidden = text[: more.start()], int(more.group(1))
    words = text.split(" ")
    if words[0].upper() != "EVALSHA" or len(words) < 3:
        return text[:60]
    name = SCRIPT_NAMES.get(words[1], words[1][:8])
    argv = words[3 + int(words[2]) :]
    if name == "reserve" and len(argv) > 1:
        return f"reserve (count {argv[1]})"
    if name == "ack":
        return f"ack ({(len(argv) + hidden - 1) // 3} jobs)"
    return f"{name} ({len(argv) + hidden} args)"


def slow_commands(conn: redis.Redis) -> dict[str, Any]:
    """The slowest commands SLOWLOG kept, how many went over 5 ms, and LATENCY LATEST."""
    entries = conn.slowlog_get(1024)
    over = [e for e in entries if e["duration"] > SLOW_US]
    slowest = sorted(entries, key=lambda e: -e["duration"])[:5]
    latest = conn.execute_command("LATENCY", "LATEST")  # type: ignore[no-untyped-call]
    return {
        "over_5ms": len(over),
        "slowest_us": slowest[0]["duration"] if slowest else 0,
        "slowest_command": describe(slowest[0]["command"]) if slowest else "",
        "slowest": [f"{e['duration']} µs {describe(e['command'])}" for e in slowest],
        "latency_latest_max_ms": max((int(row[2]) for row in latest), default=0),
    }


def evalsha_usec(conn: redis.Redis) -> float:
    """Redis's total microseconds in EVALSHA since the last CONFIG RESETSTAT."""
    stats: dict[str, Any] = conn.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


def cpu_seconds(pid: int) -> float:
    """CPU seconds the main thread of process ``pid`` ran (Linux's schedstat; else 0.0)."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except OSError:
        return 0.0


class Meter:
    """Redis's EVALSHA µs, Redis's CPU µs and this process's CPU µs over one drain, per job.

    CPU time is what a drain costs whatever the machine's load: the wall-clock figures of a
    shared machine also hold the time a process waited for a core.
    """

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self.pid = int(conn.info("server")["process_id"])

    def start(self) -> None:
        """Reset the counters."""
        self.conn.config_resetstat()
        self.server_cpu = cpu_seconds(self.pid)
        self.client_cpu = time.process_time()

    def per_job(self, jobs: int) -> tuple[float, float, float]:
        """(EVALSHA µs, Redis CPU µs, client CPU µs) per job since :meth:`start`."""
        client = time.process_time() - self.client_cpu
        server = cpu_seconds(self.pid) - self.server_cpu
        return evalsha_usec(self.conn) / jobs, 1e6 * server / jobs, 1e6 * client / jobs


def load() -> str:
    """The load averages (1, 5, 15 min), as ``uptime`` prints them."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


class Rounds:
    """One server; per round a steady drain and a burst of the same size, and their figures."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.conn = redis.Redis.from_url(url)
        self.meter = Meter(self.conn)
        self.rates: dict[str, list[float]] = {"steady": [], "burst": []}
        self.costs: dict[str, list[tuple[float, float, float]]] = {"steady": [], "burst": []}
        self.late: list[float] = []
        self.slow: list[dict[str, Any]] = []
        self.slow_steady: list[dict[str, Any]] = []  # the control: the same log, no burst

    def watch_slow(self) -> None:
        """Log commands over a fifth of SLOW_US (the near misses too) from now on."""
        conn = self.conn
        conn.config_set("slowlog-log-slower-than", SLOW_US // 5)
        conn.config_set("latency-monitor-threshold", SLOW_US // 1000)
        conn.slowlog_reset()
        conn.execute_command("LATENCY", "RESET")  # type: ignore[no-untyped-call]

    def slow_since(self) -> dict[str, Any]:
        """The slow commands since :meth:`watch_slow`; logging stops."""
        slow = slow_commands(self.conn)
        self.conn.config_set("slowlog-log-slower-than", -1)
        self.conn.config_set("latency-monitor-threshold", 0)
        return slow

    def run_steady(self, round_no: int) -> None:
        """Drain N ready jobs (SLOWLOG too: a command slowed by the machine, not the burst,
        shows here as well)."""
        n = self.args.jobs
        fill(self.url, "steady", f"s{round_no}", n)
        self.watch_slow()
        self.meter.start()
        seconds = run_loop(drain(self.url, "steady", n, self.args.concurrency))
        self.slow_steady.append(self.slow_since())
        self.costs["steady"].append(self.meter.per_job(n))
        self.rates["steady"].append(n / seconds)

    def run_burst(self, round_no: int) -> None:
        """Drain N jobs falling due within one second; SLOWLOG and LATENCY while they do."""
        args = self.args
        begin = fill_burst(self.url, "burst", args.jobs, args.lead, prefix=f"b{round_no}")
        self.watch_slow()
        self.meter.start()
        run = burst(self.url, "burst", args.jobs, begin, args.concurrency, args.promote_limit)
        result = run_loop(run)
        self.costs["burst"].append(self.meter.per_job(args.jobs))
        self.slow.append(self.slow_since())
        self.rates["burst"].append(args.jobs / result["drain_s"])
        self.late.append(result["first_job_late_ms"])

    def summary(self) -> dict[str, Any]:
        """The figures of every round: medians, and the worst of the slow commands."""
        steady, burst = self.rates["steady"], self.rates["burst"]
        ratios = [b / s for b, s in zip(burst, steady, strict=True)]
        pairs = list(zip(self.costs["steady"], self.costs["burst"], strict=True))
        worst = max(self.slow, key=lambda slow: slow["slowest_us"])
        out: dict[str, Any] = {
            "steady_jobs_per_s": round(statistics.median(steady)),
            "burst_jobs_per_s": round(statistics.median(burst)),
            "burst_ratio": round(statistics.median(ratios), 3),
            "rounds_burst_ratio": [round(r, 3) for r in ratios],
            "first_job_late_ms": round(max(self.late), 2),
            "rounds_first_job_late_ms": [round(ms, 2) for ms in self.late],
        }
        for index, what in enumerate(("evalsha_us", "server_cpu_us", "client_cpu_us")):
            for kind in ("steady", "burst"):
                values = [cost[index] for cost in self.costs[kind]]
                out[f"{what}_per_job_{kind}"] = round(statistics.median(values), 1)
        # steady over burst CPU per job (Redis + this process): the ratio on an idle machine,
        # where the Worker's loop waits for Redis and Redis for the loop in turn
        out["cpu_ratio"] = round(statistics.median(
            (s[1] + s[2]) / (b[1] + b[2]) for s, b in pairs), 3)  # fmt: skip
        out["server_cpu_ratio"] = round(statistics.median(s[1] / b[1] for s, b in pairs), 3)
        out["slowlog"] = {
            **worst,
            "over_5ms": sum(slow["over_5ms"] for slow in self.slow),
            "latency_latest_max_ms": max(s["latency_latest_max_ms"] for s in self.slow),
        }
        control = max(self.slow_steady, key=lambda slow: slow["slowest_us"])
        out["slowlog_steady"] = {
            "slowest_us": control["slowest_us"],
            "slowest": control["slowest"],
            "over_5ms": sum(slow["over_5ms"] for slow in self.slow_steady),
        }
        return out


def main() -> None:
    """Measure the steady rate and the burst in alternating rounds; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--promote-limit", type=int, default=DEFAULT_PROMOTE_LIMIT)
    parser.add_argument("--lead", type=float, default=2.0, help="seconds between puts and burst")
    args = parser.parse_args()
    started = load()
    with private_redis() as server:
        rounds = Rounds(server.url, args)
        for round_no in range(args.rounds):  # the order flips each round
            order = (rounds.run_steady, rounds.run_burst)
            for run in order if round_no % 2 == 0 else order[::-1]:
                run(round_no)
        summary = rounds.summary()
        rounds.conn.close()
    emit(
        "burst",
        {
            "jobs": args.jobs,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "promote_limit": args.promote_limit,
            **summary,
            "load_before": started,
            "load_after": load(),
        },
    )


if __name__ == "__main__":
    main()
