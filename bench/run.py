"""Run every benchmark N times as subprocesses and keep the medians in one JSON file.

``python -m bench.run --quick`` (``make bench``: minutes, small sizes) or ``python -m bench.run``
(``make bench-full``) runs our benchmarks and writes ``bench/results/latest.json``;
``python -m bench.run --peers`` (``make bench-peers``, from the bench environment that has the
peers installed) runs the peer workload on each job queue and writes
``bench/results/peers.json``. ``python -m bench.render`` turns both into BENCHMARKS.md.

Each benchmark module prints JSON (one object per line, or one indented object). A module that
is missing, exits non-zero or prints no JSON is recorded as such, with the tail of its error
output, and the run goes on. Nested objects are flattened to dotted keys; every numeric field
is the median over the runs that succeeded, and the raw runs are kept beside the medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Spec:
    """One benchmark module and its arguments in quick and full mode."""

    name: str
    module: str
    quick: tuple[str, ...] = ()
    full: tuple[str, ...] = ()
    timeout: float = 1800.0
    again: tuple[str, ...] = ()
    """Arguments added to every run after the first, e.g. to measure memory only once."""
    once: bool = False
    """Run once whatever ``--repeats`` says: the benchmark takes its own medians over rounds
    it interleaves (and a second run would only repeat a long fill)."""
    quick_once: bool = False
    """Run once in quick mode (it repeats inside, or its figures are not ratios), so that
    ``make bench`` stays under ~10 minutes."""


OURS = (
    Spec("baselines", "bench.baselines", ("--requests", "50000"), ("--requests", "200000")),
    Spec("core", "bench.bench_core", ("--jobs", "5000", "--memory-jobs", "20000"),
         ("--jobs", "20000", "--memory-jobs", "100000")),
    Spec("scale", "bench.bench_scale", ("--levels", "0,100000", "--ops", "2000", "--repeats", "3"),
         ("--levels", "0,100000,1000000", "--ops", "5000")),
    Spec("worker", "bench.bench_worker", ("--quick",)),
    Spec("history", "bench.bench_history", ("--repeats", "5"),
         ("--repeats", "9", "--memory-jobs", "100000"), quick_once=True),
    Spec("backlog", "bench.bench_backlog",
         ("--levels", "0,100000,1000000", "--jobs", "10000", "--rounds", "3"),
         ("--levels", "0,100000,1000000,10000000", "--jobs", "20000", "--rounds", "5"),
         timeout=3600.0, once=True),
    Spec("burst", "bench.bench_burst", ("--jobs", "100000"), ("--jobs", "1000000")),
    Spec("lag", "bench.bench_lag", ("--jobs", "300", "--spread", "3")),
    Spec("glue", "bench.bench_glue", ("--quick",)),
    Spec("http", "bench.bench_http", ("--quick",)),
    Spec("http_workers", "bench.bench_http_workers", ("--quick",), (), once=True),
    Spec("webhook", "bench.bench_webhook", ("--jobs", "5000")),
    Spec("webhook_processes", "bench.bench_webhook_processes", ("--quick",), (), once=True),
    Spec("amqp", "bench.bench_amqp", ("--messages", "5000")),
    Spec("failover", "bench.bench_failover", ("--quick",), quick_once=True),
    Spec("operate", "bench.bench_operate", ("--jobs", "200000"), ("--jobs", "1000000"),
         once=True),
    Spec("schedules", "bench.bench_schedules", ("--ops", "1000"), ("--ops", "3000")),
    Spec("instructions", "bench.bench_instructions", ("--jobs", "1000"), ("--jobs", "2000"),
         once=True),
)  # fmt: skip

PEERS = tuple(
    Spec(
        name, f"bench.peers.{name}_peer", ("--jobs", "5000", "--memory-jobs", "20000"),
        ("--jobs", "20000", "--memory-jobs", "100000"), again=("--memory-jobs", "0"),
    )
    for name in ("redisched", "beanstalkd", "rq", "arq", "saq", "bullmq")
)  # fmt: skip


@dataclass
class Outcome:
    """What the runs of one benchmark produced."""

    spec: Spec
    args: tuple[str, ...]
    runs: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    missing: bool = False


def parse_output(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects a benchmark printed: one per line, else the whole output as one."""
    objects = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                objects.append(json.loads(line))
            except json.JSONDecodeError:
                objects = []
                break
    if objects:
        return objects
    start = stdout.find("{")
    if start < 0:
        return []
    try:
        whole = json.loads(stdout[start:])
    except json.JSONDecodeError:
        return []
    return [whole] if isinstance(whole, dict) else []


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys; the ``machine`` block is left out (it is in the run)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if not prefix and key in ("machine", "benchmark"):
            continue
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def is_number(value: Any) -> bool:
    """True for ints and floats, not bools."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Field by field: the median of the numbers, else the first run's value."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for run in runs for k in run):
        values = [run[key] for run in runs if key in run]
        numbers = [v for v in values if is_number(v)]
        if numbers and len(numbers) == len(values):
            middle = statistics.median(numbers)
            merged[key] = round(middle, 4) if isinstance(middle, float) else middle
        else:
            merged[key] = values[0]
    return merged


def run_once(python: str, spec: Spec, args: tuple[str, ...], outcome: Outcome) -> None:
    """One subprocess run of ``spec``; its records or its error go into ``outcome``."""
    command = [python, "-m", spec.module, *args]
    log.info("running %s", " ".join(command))
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=spec.timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        outcome.errors.append(f"timed out after {spec.timeout:.0f} s")
        return
    outcome.seconds.append(round(time.perf_counter() - started, 1))
    records = parse_output(done.stdout)
    if done.returncode != 0 or not records:
        tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
        outcome.errors.append(f"exit {done.returncode}: " + "\n".join(tail))
        return
    run: dict[str, dict[str, Any]] = {}
    for record in records:
        run[str(record.get("benchmark", spec.name))] = flatten(record)
    outcome.runs.append(run)


def summarize(outcome: Outcome) -> dict[str, Any]:
    """The JSON entry of one benchmark: status, medians per record, raw runs, errors."""
    names = list(dict.fromkeys(name for run in outcome.runs for name in run))
    if outcome.missing:
        status = "missing"
    elif not outcome.runs:
        status = "failed"
    else:
        status = "partial" if outcome.errors else "ok"
    return {
        "module": outcome.spec.module,
        "args": list(outcome.args),
        "status": status,
        "runs_ok": len(outcome.runs),
        "errors": outcome.errors,
        "seconds": outcome.seconds,
        "records": {n: medians([run[n] for run in outcome.runs if n in run]) for n in names},
        "runs": outcome.runs,
    }


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def redis_versions() -> dict[str, str]:
    """Versions of the redis-server the benchmarks start and of redis-benchmark."""
    from bench.baselines import benchmark_binary
    from redisched.embedded import find_binary, server_version

    versions: dict[str, str] = {}
    try:
        binary = find_binary()
        versions["redis_server"] = ".".join(map(str, server_version(binary)))
        versions["redis_server_binary"] = binary
    except Exception as exc:  # the report says what went wrong instead
        versions["redis_server"] = f"unknown ({exc})"
    try:
        out = subprocess.run(
            [benchmark_binary(), "--version"], capture_output=True, text=True, check=False
        ).stdout
        versions["redis_benchmark"] = out.strip()
    except Exception as exc:
        versions["redis_benchmark"] = f"unknown ({exc})"
    return versions


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was when the run started."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        **redis_versions(),
    }


def run_all(
    specs: tuple[Spec, ...], quick: bool, repeats: int, only: set[str] | None
) -> dict[str, Any]:
    """Run the chosen specs ``repeats`` times each; the whole results document."""
    started = time.time()
    document: dict[str, Any] = {
        "command": "python -m bench.run " + " ".join(sys.argv[1:]),
        "mode": "quick" if quick else "full",
        "repeats": repeats,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "benchmarks": {},
    }
    for spec in specs:
        if only and spec.name not in only:
            continue
        args = spec.quick if quick else spec.full
        outcome = Outcome(spec, args)
        if importlib.util.find_spec(spec.module) is None:
            outcome.missing = True
            outcome.errors.append(f"module {spec.module} not found")
        else:
            once = spec.once or (quick and spec.quick_once)
            for attempt in range(1 if once else repeats):
                more = spec.again if attempt else ()
                run_once(sys.executable, spec, (*args, *more), outcome)
        document["benchmarks"][spec.name] = summarize(outcome)
        status = document["benchmarks"][spec.name]["status"]
        log.info("%s: %s in %s s", spec.name, status, outcome.seconds)
    document["seconds"] = round(time.time() - started, 1)
    document["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return document


def write(document: dict[str, Any], path: Path) -> None:
    """Write the document atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1) + "\n")
    temporary.replace(path)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes")
    parser.add_argument("--peers", action="store_true", help="the peer workload instead")
    parser.add_argument("--repeats", type=int, default=3, help="runs per benchmark (median)")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--output", type=Path, help="default: bench/results/{latest,peers}.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    specs = PEERS if args.peers else OURS
    only = set(args.only.split(",")) if args.only else None
    document = run_all(specs, args.quick, args.repeats, only)
    output = args.output or RESULTS / ("peers.json" if args.peers else "latest.json")
    write(document, output)
    log.info("wrote %s", output)


if __name__ == "__main__":
    main()
