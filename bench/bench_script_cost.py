"""Redis's own time per call of the hot scripts (put, reserve, ack), from INFO commandstats.

``usec_per_call`` of EVALSHA is the time Redis spends inside one script call, so neither the
client nor the round trip counts (``cpu_usec``: the main thread's CPU per call, pipelined).
The cases: put of one ready job, of one scheduled job, of 100 (put_many), a Worker's lease of
1 and ack of 1 (``ops.lease``, ``ops.ack_leased``), and of 100. Each runs in a topic holding
~20k jobs (half ready, half scheduled a day ahead) and a full feed, with the server's clock
(the scripts read TIME). ``--baseline DIR`` also measures the put/reserve/ack.lua of another
folder (e.g. ``git show main:...``), in its own topic of the same server, case by case right
after the current one (``ratio_cpu``: the median over blocks of current / baseline).
Run: ``.venv/bin/python -m bench.bench_script_cost [--baseline DIR] [--blocks N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any, cast

import redis

from bench.common import TRIVIAL_SCRIPT, emit, private_redis
from redisched.ops import Operations, Step, parse_lease_jobs

SCRIPTS = ("put", "reserve", "ack")
FILL, FILL_BATCH = 20_000, 100
DAY_S = 86_400


class Variant:
    """One set of scripts, loaded into the server, with its own topic."""

    def __init__(self, r: redis.Redis, label: str, folder: Path) -> None:
        self.r, self.label, self.topic = r, label, f"cost-{label}"
        self.shas = {name: r.script_load((folder / f"{name}.lua").read_text()) for name in SCRIPTS}

    def run_all(self, steps: Iterable[Step]) -> list[Any]:
        """Run script steps in one pipeline; their replies."""
        pipe = self.r.pipeline(transaction=False)
        for step in steps:
            assert step.script is not None
            pipe.evalsha(self.shas[step.script], len(step.keys), *step.keys, *step.args)
        return pipe.execute()


def cpu_ns(pid: int) -> int:
    """The CPU time of redis-server's main thread (where commands run), from schedstat."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0])


def per_call(r: redis.Redis, pid: int, calls: Callable[[], None]) -> tuple[float, float]:
    """Redis's mean µs per EVALSHA (commandstats) over the calls ``calls`` makes, and the
    main thread's CPU µs per call (the same, plus reading the command and writing the reply;
    a loaded machine does not inflate it)."""
    r.eval("collectgarbage('collect')", 0)  # no garbage of earlier calls to collect now
    r.config_resetstat()
    started = cpu_ns(pid)
    calls()
    cpu = cpu_ns(pid) - started
    stats = r.info("commandstats")["cmdstat_evalsha"]
    count = int(stats["calls"])
    return float(stats["usec"]) / count, cpu / 1000 / count


def cases(ops: Operations, v: Variant, block: int, n: int) -> dict[str, Callable[[], None]]:
    """The measured cases of one block: each makes ``n`` script calls (unique ids), pipelined
    so that reading and answering commands costs Redis little besides the scripts."""
    leased: list[Any] = []

    def put(kind: str, delay: int | None) -> Callable[[], None]:
        def calls() -> None:
            v.run_all(
                ops.put(v.topic, f"{kind}-{block}-{i}", b"x" * 100, delay=delay).steps[0]
                for i in range(n)
            )

        return calls

    def put_many() -> None:
        v.run_all(
            ops.put_many(
                v.topic, [(f"many-{block}-{i}-{k}", b"x" * 100) for k in range(100)], batch_size=100
            ).steps[0]
            for i in range(n // 10)
        )

    def reserve() -> None:
        for reply in v.run_all(ops.lease(v.topic, 1).steps[0] for _ in range(n)):
            leased.extend(parse_lease_jobs(v.topic, reply))

    def ack() -> None:
        v.run_all(ops.ack_leased(v.topic, [job]).steps[0] for job in leased)
        leased.clear()

    def reserve_many() -> None:
        for reply in v.run_all(ops.lease(v.topic, 100).steps[0] for _ in range(n // 100)):
            leased.extend(parse_lease_jobs(v.topic, reply))

    def ack_many() -> None:
        v.run_all(
            ops.ack_leased(v.topic, leased[first : first + 100]).steps[0]
            for first in range(0, len(leased), 100)
        )
        leased.clear()

    return {
        "put_ready": put("ready", None),
        "put_scheduled": put("scheduled", DAY_S),
        "put_many_100": put_many,
        "reserve_1": reserve,
        "ack_1": ack,
        "reserve_100": reserve_many,
        "ack_100": ack_many,
    }


def tidy(ops: Operations, v: Variant, block: int, n: int) -> None:
    """Takes out the jobs one block added, raw (no feed events), so that every block meets a
    topic of the same size: the newest ready ones (put last) and the scheduled ones."""
    keys = ops.keys(v.topic)
    ready, jobs = keys.name("ready"), keys.name("jobs")
    popped = cast(list[tuple[bytes, float]], v.r.zpopmax(ready, n // 10 * 100))
    if popped:
        v.r.hdel(jobs, *(member[12:] for member, _ in popped))
    ids = [f"scheduled-{block}-{i}" for i in range(n)]
    v.r.hdel(jobs, *ids)
    v.r.zrem(keys.name("scheduled"), *ids)


def fill(ops: Operations, v: Variant) -> None:
    """~20k jobs, half ready and half scheduled; their put events overflow the feed."""
    v.run_all(
        ops.put_many(
            v.topic,
            [(f"fill-{i}", b"x" * 100) for i in range(first, first + FILL_BATCH)],
            delay=DAY_S if first % (2 * FILL_BATCH) else None,
            batch_size=FILL_BATCH,
        ).steps[0]
        for first in range(0, FILL, FILL_BATCH)
    )


def main(baseline: Path | None, blocks: int = 5, n: int = 300) -> None:
    """Measure the installed scripts (and ``baseline``'s); print the medians over blocks."""
    ops = Operations()
    ours_dir = Path(str(resources.files("redisched") / "lua"))
    with private_redis() as server:
        r = redis.Redis.from_url(server.url)
        variants = [Variant(r, "current", ours_dir)]
        if baseline is not None:
            variants.append(Variant(r, "baseline", baseline))
        for v in variants:
            fill(ops, v)
        trivial = r.script_load(TRIVIAL_SCRIPT)

        def trivial_calls() -> None:
            pipe = r.pipeline(transaction=False)
            for _ in range(n):
                pipe.evalsha(trivial, 0)
            pipe.execute()

        assert server.process is not None
        pid = server.process.pid
        floor = per_call(r, pid, trivial_calls)
        figures: dict[str, dict[str, list[tuple[float, float]]]] = {v.label: {} for v in variants}
        for block in range(-1, blocks):  # block -1 warms up and is not counted
            order = variants if block % 2 == 0 else variants[::-1]
            made = {v.label: cases(ops, v, block, n) for v in order}
            for name in made[order[0].label]:  # each case of each variant in turn: the same load
                for v in order:
                    measured = per_call(r, pid, made[v.label][name])
                    if block >= 0:
                        figures[v.label].setdefault(name, []).append(measured)
            for v in order:
                tidy(ops, v, block, n)
        r.close()
    emit(
        "script_cost",
        {
            "load_average": os.getloadavg(),
            "return_1": {"usec": round(floor[0], 2), "cpu_usec": round(floor[1], 2)},
            **{label: summary(cases_) for label, cases_ in figures.items()},
            **({"ratio_cpu": ratios(figures["current"], figures["baseline"])} if baseline else {}),
        },
    )


def ratios(
    ours: dict[str, list[tuple[float, float]]], theirs: dict[str, list[tuple[float, float]]]
) -> dict[str, float]:
    """Per case, the median over blocks of current / baseline CPU µs per call (each block's
    pair ran back to back, so a machine's changing load falls on both)."""
    return {
        name: round(
            statistics.median(o[1] / t[1] for o, t in zip(runs, theirs[name], strict=True)), 3
        )
        for name, runs in ours.items()
    }


def summary(runs: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """The median over blocks of each case's µs per call (commandstats) and CPU µs per call."""
    return {
        name: {
            "usec": round(statistics.median(u for u, _ in figures), 2),
            "cpu_usec": round(statistics.median(c for _, c in figures), 2),
        }
        for name, figures in runs.items()
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a folder of put/reserve/ack.lua")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    main(args.baseline, args.blocks)
