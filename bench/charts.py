"""PNG charts of the results, with matplotlib (installed in the bench environment only).

Each chart carries, under its plot, the command that produced its figures and the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results_doc import Results
from bench.targets import ISSUE_17_TARGETS

RATE_BARS = (
    # (label, benchmark, key)
    ("put, 1 call per job", "core", "put_per_s"),
    ("  bare redis-py EVALSHA loop", "core", "bare_evalsha_per_s"),
    ("  redis-benchmark EVALSHA -c 1 -P 1", "baselines", "evalsha_single_client_per_s"),
    ("put_many, 100 per call", "core", "put_many_per_s"),
    ("  bare redis-py EVALSHA pipelined", "core", "bare_evalsha_pipelined_per_s"),
    ("  redis-benchmark EVALSHA -c 1 -P 16", "baselines", "evalsha_pipelined_per_s"),
    ("reserve+ack, 1 job per call", "core", "reserve_ack_per_s"),
    ("ack_and_lease, 100 per call", "core", "ack_and_lease_batched_per_s"),
    ("worker end to end", "worker", "throughput.jobs_per_s"),
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, caption: str, path: Path) -> None:
    fig.text(0.01, 0.01, caption.replace("`", ""), fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def rates_chart(results: Results, path: Path) -> bool:
    """Our operation rates next to their baselines (log scale); False if nothing to plot."""
    bars = [(label, results.value(bench, key)) for label, bench, key in RATE_BARS]
    shown = [(label, value) for label, value in bars if value]
    if not shown:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(shown) + 1.4))
    labels = [label for label, _ in shown][::-1]
    values = [value for _, value in shown][::-1]
    colors = ["#9aa5b1" if label.startswith("  ") else "#1f6feb" for label in labels]
    ax.barh([label.strip() for label in labels], values, color=colors)
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 4)  # room for the value labels
    ax.set_xlabel("operations per second (median; grey = baseline of the bar above)")
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.set_title("redisched operation rates and their same-run baselines")
    _save(fig, results.caption(), path)
    plt.close(fig)
    return True


def scale_chart(results: Results, path: Path) -> bool:
    """Cost per operation against the number of scheduled jobs."""
    levels = results.record("scale").get("levels") or []
    if not levels:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    top = 0.0
    for key, label, style in (
        ("put_us", "put (client wall clock)", "-o"),
        ("reserve_ack_us", "reserve+ack (client wall clock)", "-s"),
        ("put_server_us", "put (Redis, per EVALSHA)", "--o"),
        ("reserve_ack_server_us", "reserve+ack (Redis, 2 EVALSHA)", "--s"),
    ):
        points = [(lvl, results.value("scale", f"{key}_at_{lvl}")) for lvl in levels]
        xs = [max(lvl, 1) for lvl, v in points if v is not None]
        ys = [v for _, v in points if v is not None]
        ax.plot(xs, ys, style, label=label)
        top = max([top, *ys])
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_xticks([max(lvl, 1) for lvl in levels], [f"{lvl:,}" for lvl in levels])
    ax.set_xlabel("jobs scheduled in the future, same topic")
    ax.set_ylabel("microseconds per operation (median)")
    ax.set_ylim(0, top * 1.45)  # room for the legend above the lines
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.set_title("Cost per operation as scheduled jobs grow")
    _save(fig, results.caption(), path)
    plt.close(fig)
    return True


def peers_chart(peers: Results, path: Path) -> bool:
    """Worker jobs/s, enqueue/s and memory per job of every peer that ran."""
    rows = []
    for name in peers.benchmarks:
        record = peers.record(name)
        if record.get("worker_jobs_per_s"):
            rows.append(record)
    if not rows:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.5 * len(rows) + 2))
    labels = [str(r["peer"]) for r in rows][::-1]
    for ax, key, title, log in (
        (axes[0], "worker_jobs_per_s", "worker jobs/s (drain, 1 process)", True),
        (axes[1], "enqueue_per_s", "enqueue/s (1 call per job)", True),
        (axes[2], "memory_bytes_per_job", "memory per delayed job, bytes", False),
    ):
        values = [float(r.get(key) or 0) for r in rows][::-1]
        colors = ["#1f6feb" if label == "redisched" else "#9aa5b1" for label in labels]
        ax.barh(labels, values, color=colors)
        if log:
            ax.set_xscale("log")
            ax.set_xlim(right=max(values) * 6)
        else:
            ax.set_xlim(right=max(values) * 1.3)
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        ax.set_title(title, fontsize=10)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.suptitle("The same workload on each job queue (20k jobs, 100-byte bodies)")
    _save(fig, peers.caption(), path)
    plt.close(fig)
    return True


def issue17_chart(results: Results, path: Path) -> bool:
    """Issue 17 at a glance: each same-run ratio against its goal, and each lag in ms against
    its limit (blue: met, red: not met, | = goal)."""
    ratios: list[tuple[str, float, float, bool]] = []
    limits: list[tuple[str, float, float, bool]] = []
    for target in ISSUE_17_TARGETS:
        found = target.measure(results)
        if found is None or target.limit == 0:
            continue
        row = (target.figure.replace("`", ""), found[0], target.limit, target.higher_is_better)
        (ratios if target.higher_is_better and target.limit < 2 else limits).append(row)
    if not ratios and not limits:
        return False
    plt = _pyplot()
    height = 0.42 * max(len(ratios), len(limits), 1) + 1.6
    fig, axes = plt.subplots(1, 2, figsize=(14, height), gridspec_kw={"width_ratios": [3, 2]})
    for ax, rows, title, unit in (
        (axes[0], ratios, "ours / baseline, same run (higher is better)", ""),
        (axes[1], limits, "ms or µs against a limit (lower is better)", ""),
    ):
        if not rows:
            ax.set_axis_off()
            continue
        labels = [r[0] for r in rows][::-1]
        values = [r[1] for r in rows][::-1]
        goals = [r[2] for r in rows][::-1]
        better = [r[3] for r in rows][::-1]
        if ax is axes[1]:  # one scale for ms and µs: each bar as a share of its limit
            values = [v / g for v, g in zip(values, goals, strict=True)]
            shown = [r[1] for r in rows][::-1]
            goals = [1.0] * len(values)
        else:
            shown = values
        met = [(v >= g) if b else (v <= g) for v, g, b in zip(values, goals, better, strict=True)]
        ax.barh(labels, values, color=["#1f6feb" if m else "#d1242f" for m in met])
        ax.scatter(goals, range(len(goals)), marker="|", s=400, color="black", zorder=3)
        for y, (value, label) in enumerate(zip(values, shown, strict=True)):
            ax.text(value, y, f" {label:,.2f}{unit}", va="center", fontsize=8)
        ax.set_xlim(0, max([1.1, *values]) * 1.15)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    axes[1].set_xlabel("measured / limit (the figure itself beside each bar)")
    axes[0].set_xlabel("ratio (| = goal)")
    fig.suptitle("Issue 17: every ratio and limit (blue: met, red: not met)")
    _save(fig, results.caption(), path)
    plt.close(fig)
    return True


def backlog_chart(results: Results, path: Path) -> bool:
    """The Worker's jobs/s ratio (and Redis's per-job cost ratio) against scheduled jobs."""
    record = results.record("backlog")
    levels = record.get("levels") or []
    if len(levels) < 2:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    xs = list(range(len(levels)))  # evenly spaced: 0 has no place on a log scale
    top = 1.2
    for key, label, style in (
        ("ratio_at_", "Worker jobs/s, ratio to none (same rounds), as written", "-o"),
        ("settled_ratio_at_", "Worker jobs/s, the topic settled", "-^"),
        ("server_ratio_at_", "Redis cost per job, none's over this one's", "--s"),
    ):
        ys = [record.get(f"{key}{level}") for level in levels]
        ax.plot([x for x, y in zip(xs, ys, strict=True) if y is not None],
                [y for y in ys if y is not None], style, label=label)  # fmt: skip
        top = max([top, *(y + 0.1 for y in ys if y is not None)])
    ax.axhline(0.95, color="black", linewidth=0.8, linestyle=":", label="goal 0.95")
    ax.set_xticks(xs, [f"{level:,}" for level in levels])
    ax.set_ylim(0.5, top)
    ax.set_xlabel("jobs scheduled for tomorrow in the Worker's topic")
    ax.set_ylabel("ratio to the empty topic")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("The Worker with a backlog of scheduled jobs")
    _save(fig, results.caption(), path)
    plt.close(fig)
    return True
