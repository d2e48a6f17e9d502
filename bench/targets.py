"""The figures issues 8 and 17 aim at, each read from a results document and judged met or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.results_doc import Results

Measure = Callable[[Results], tuple[float, str] | None]


@dataclass(frozen=True)
class Target:
    """One aim: a figure, its limit, and how to read the figure from the results."""

    figure: str
    goal: str
    limit: float
    higher_is_better: bool
    measure: Measure

    def judge(self, results: Results) -> tuple[str, str, str]:
        """(measured, met?, by how much) for the report."""
        found = self.measure(results)
        if found is None:
            return "not measured", "-", "-"
        value, how = found
        met = value >= self.limit if self.higher_is_better else value <= self.limit
        if not self.limit:  # a count that should be zero: no margin to speak of
            return how, "**met**" if met else "**not met**", "-"
        if self.higher_is_better:
            margin = value / self.limit - 1
        else:
            margin = (self.limit - value) / self.limit if self.limit else 0.0
        words = "above" if (margin >= 0) == self.higher_is_better else "below"
        if not self.higher_is_better:
            words = "under" if margin >= 0 else "over"
        return how, "**met**" if met else "**not met**", f"{abs(margin):.0%} {words} the target"


def ratio(
    num: tuple[str, str], den: tuple[str, str], label: str
) -> Callable[[Results], tuple[float, str] | None]:
    """A same-run ratio of two medians, shown with both values."""

    def measure(results: Results) -> tuple[float, str] | None:
        top, bottom = results.value(*num), results.value(*den)
        if top is None or not bottom:
            return None
        return top / bottom, f"{top / bottom:.2f} ({top:,.0f} / {bottom:,.0f} {label})"

    return measure


def single(bench: str, keys: tuple[str, ...], unit: str) -> Measure:
    """One median, the first of ``keys`` present."""

    def measure(results: Results) -> tuple[float, str] | None:
        found = results.first(bench, *keys)
        if found is None:
            return None
        return found[1], f"{found[1]:,.3g} {unit} (`{bench}.{found[0]}`)"

    return measure


def slowdown(kind: str) -> Measure:
    """Cost per op at the largest scheduled level over the cost at none."""

    def measure(results: Results) -> tuple[float, str] | None:
        levels = results.record("scale").get("levels") or []
        if len(levels) < 2:
            return None
        top = max(levels)
        value = results.value("scale", f"{kind}_us_ratio_at_{top}")
        if value is None:
            return None
        server = results.value("scale", f"{kind}_server_us_ratio_at_{top}")
        note = f"; Redis-side {server:.2f}x" if server is not None else ""
        quick = "" if top >= 1_000_000 else f" (only {top:,} in this run)"
        return value, f"{value:.2f}x at {top:,} scheduled{quick}{note}"

    return measure


def worker_rate(results: Results) -> tuple[float, str] | None:
    """bench_worker's jobs/s, else the peer workload's redisched figure."""
    found = results.first("worker", "throughput.jobs_per_s", "jobs_per_s")
    if found is not None:
        return found[1], f"{found[1]:,.0f} jobs/s (`worker.{found[0]}`)"
    return None


TARGETS = (
    Target("Worker jobs/s end to end", ">= 18,000 jobs/s", 18_000, True, worker_rate),
    Target(
        "Batched put (put_many) vs redis-benchmark EVALSHA, pipelined", ">= 0.9x", 0.9, True,
        ratio(("core", "put_many_per_s"), ("baselines", "evalsha_pipelined_per_s"),
              "jobs/s vs EVALSHA/s"),
    ),
    Target(
        "Single put vs redis-benchmark EVALSHA, 1 client unpipelined", ">= 0.75x", 0.75, True,
        ratio(("core", "put_per_s"), ("baselines", "evalsha_single_client_per_s"),
              "puts/s vs EVALSHA/s"),
    ),
    Target("Dispatch lag p50, scheduled ahead", "<= 1 ms", 1.0, False,
           single("worker", ("lag_future.p50_ms",), "ms")),
    Target("Dispatch lag p99, scheduled ahead", "<= 2 ms", 2.0, False,
           single("worker", ("lag_future.p99_ms",), "ms")),
    Target("Dispatch lag p50, due now", "<= 1 ms", 1.0, False,
           single("worker", ("lag_due_now.vs_run_at.p50_ms", "lag_due_now.p50_ms"), "ms")),
    Target("Dispatch lag p99, due now", "<= 2 ms", 2.0, False,
           single("worker", ("lag_due_now.vs_run_at.p99_ms", "lag_due_now.p99_ms"), "ms")),
    Target("Redis memory per job (100-byte body; the topic's feed full)", "<= 330 bytes", 330,
           False,
           single("core", ("memory_bytes_per_job",), "bytes")),
    Target("put cost at 1M scheduled vs none", "<= 1.10x", 1.10, False, slowdown("put")),
    Target("reserve+ack cost at 1M scheduled vs none", "<= 1.10x", 1.10, False,
           slowdown("reserve_ack")),
    Target("Schedule (every): reserve+ack of an occurrence vs a plain job", "<= 1.10x", 1.10,
           False, single("schedules", ("every_reserve_ack_ratio",), "x")),
    Target("Schedule (cron): reserve+ack of an occurrence vs a plain job", "<= 1.10x", 1.10,
           False, single("schedules", ("cron_reserve_ack_ratio",), "x")),
    Target("Schedule (every): Redis time of the reserve script vs a plain job", "<= 1.10x",
           1.10, False, single("schedules", ("every_server_cost_ratio",), "x")),
    Target("Schedule (cron): Redis time of the reserve script vs a plain job", "<= 1.10x",
           1.10, False, single("schedules", ("cron_server_cost_ratio",), "x")),
)  # fmt: skip
"""Every aim of issue 8, in the order BENCHMARKS.md lists them."""

HISTORY_TARGETS = (
    Target("put, history on vs off (same run)", ">= 0.9x", 0.9, True,
           single("history", ("put.ratio",), "x")),
    Target("reserve+ack, history on vs off (same run)", ">= 0.9x", 0.9, True,
           single("history", ("reserve_ack.ratio",), "x")),
    Target("Worker jobs/s, history on vs off (same run)", ">= 0.9x", 0.9, True,
           single("history", ("worker.ratio",), "x")),
    Target("Live job, history on, feed off (100-byte body)", "<= 330 bytes", 330, False,
           single("history", ("memory.live_bytes_per_job_feed_off",), "bytes")),
    Target("Finished job's record (no result)", "<= 250 bytes", 250, False,
           single("history", ("memory.finished_bytes_per_job",), "bytes")),
)  # fmt: skip
"""The aims of issue 13 (history), judged on ``bench/results/history.json``."""


def _purge_over(results: Results) -> tuple[float, str] | None:
    """Purge script calls over 10 ms (none listed by command: none)."""
    if results.value("operate", "operate.calls_over_10ms") is None:
        return None
    found = results.value("operate", "operate.calls_over_10ms_by_command.purge") or 0.0
    calls = results.value("operate", "operate.purge_calls") or 0.0
    return found, f"{found:,.0f} of {calls:,.0f} purge calls"


OPERATE_TARGETS = (
    Target("Listing page of 100 mid-topic, Redis server time", "< 20,000 µs", 20_000, False,
           single("operate", ("operate.page_us_middle",), "µs")),
    Target("Longest Redis call while purging the topic", "<= 10,000 µs", 10_000, False,
           single("operate", ("operate.longest_call_us",), "µs")),
    Target("Purge calls over 10 ms", "0", 0, False, lambda r: _purge_over(r)),
)  # fmt: skip
"""The aims of issue 16 (bench/bench_operate.py, ``make bench-operate``)."""


def same_run(bench: str, key: str, label: str) -> Measure:
    """A ratio the benchmark computed itself, from two figures of the same run."""

    def measure(results: Results) -> tuple[float, str] | None:
        value = results.value(bench, key)
        if value is None:
            return None
        return value, f"{value:.2f} (`{bench}.{key}`: {label})"

    return measure


ONE_CALL_TARGETS = (
    Target("HTTP `PUT` a job (returns the job)", ">= 0.9x", 0.9, True,
           same_run("http", "put_ratio", "vs a bare Starlette endpoint doing one EVALSHA")),
    Target("HTTP `PUT` with `Prefer: return=minimal`", ">= 0.95x", 0.95, True,
           same_run("http", "put_minimal_ratio", "vs the same bare endpoint")),
    Target("HTTP reserve", ">= 0.95x", 0.95, True,
           same_run("http", "reserve_ratio", "vs a bare endpoint doing one EVALSHA")),
    Target("`Client.put`, one call per job", ">= 0.9x", 0.9, True,
           same_run("core", "put_ratio", "vs a bare redis-py EVALSHA loop")),
    Target("`reserve` + `ack`, one job each", ">= 0.9x", 0.9, True,
           same_run("core", "reserve_ack_ratio", "vs half the bare EVALSHA loop")),
    Target("webhook deliveries", ">= 0.7x", 0.7, True,
           same_run("webhook", "ratio_to_baseline", "vs raw aiohttp POSTs")),
    Target("`put_many`, 100 per call", ">= 0.9x", 0.9, True,
           same_run("core", "put_many_ratio", "vs bare pipelined EVALSHA x100")),
)  # fmt: skip
"""The one-call paths of issue 17: each a same-run ratio to the plainest correct baseline."""

BURST_TARGETS = (
    Target("Burst of jobs due in one second: drain rate vs steady", ">= 0.9x", 0.9, True,
           same_run("burst", "burst_ratio", "vs the same Worker draining ready jobs")),
    Target("Burst: first job late by", "<= 5 ms", 5.0, False,
           single("burst", ("first_job_late_ms",), "ms")),
    Target("Burst: slowest Redis command while promoting", "<= 5,000 µs", 5000, False,
           single("burst", ("slowlog.slowest_us",), "µs")),
)  # fmt: skip
"""The burst of issue 17 (``bench/bench_burst.py``)."""

LAG_TARGETS = (
    Target("Dispatch lag p50, as a user measures it (asyncio)", "<= 1 ms", 1.0, False,
           single("lag", ("asyncio.vs_run_at.p50_ms",), "ms")),
    Target("Dispatch lag p99, as a user measures it (asyncio)", "<= 2 ms", 2.0, False,
           single("lag", ("asyncio.vs_run_at.p99_ms",), "ms")),
    Target("Dispatch lag p50, as a user measures it (uvloop)", "<= 1 ms", 1.0, False,
           single("lag", ("uvloop.vs_run_at.p50_ms",), "ms")),
    Target("Dispatch lag p99, as a user measures it (uvloop)", "<= 2 ms", 2.0, False,
           single("lag", ("uvloop.vs_run_at.p99_ms",), "ms")),
)  # fmt: skip
"""Dispatch lag with the Worker alone in its process (``bench/bench_lag.py``, issue 17); the
same figure from ``bench_worker`` (producer and Worker in one process) is in issue 8's table."""


def backlog_ratio(level: int) -> Measure:
    """The Worker's jobs/s with ``level`` scheduled jobs in the topic over none (same rounds)."""

    def measure(results: Results) -> tuple[float, str] | None:
        value = results.value("backlog", f"ratio_at_{level}")
        if value is None:
            return None
        rate = results.value("backlog", f"jobs_per_s_at_{level}") or 0.0
        server = results.value("backlog", f"server_ratio_at_{level}")
        note = f"; Redis-side {server:.2f}" if server is not None else ""
        return value, f"{value:.2f} ({rate:,.0f} jobs/s at {level:,} scheduled{note})"

    return measure


BACKLOG_TARGETS = (
    Target("Worker jobs/s, 1,000,000 scheduled vs none", ">= 0.95x", 0.95, True,
           backlog_ratio(1_000_000)),
)  # fmt: skip
"""The scheduled backlog of issue 17 (``bench/bench_backlog.py``); the whole curve is in its
own table."""

ISSUE_17_TARGETS = (*ONE_CALL_TARGETS, *BACKLOG_TARGETS, *LAG_TARGETS, *BURST_TARGETS)
"""Every ratio and limit of issue 17, in the order of the issue."""
