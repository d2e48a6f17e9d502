"""The lease loop against the code before it (issue 12), in the same run, as ratios.

Two variants of the package run the same workloads, interleaved round by round on this machine:
``baseline`` (the sources of a git revision, default ``main``, extracted to a temporary folder
and put first on ``PYTHONPATH``) and ``current`` (the installed package). Figures:

- ``worker``: ``bench.bench_worker --quick`` (jobs/s of one Worker, dispatch lag of future and
  due-now jobs); ``current`` also with a topic ``concurrency`` limit set high enough not to
  bind (the cost of the grant round trip).
- ``push``: webhook delivery lag, run_at -> the receiver's arrival, for jobs due at random
  instants over a few seconds (one Dispatcher, a local aiohttp receiver in another process).

Run: ``.venv/bin/python -m bench.bench_leasing [--rounds 3] [--baseline main]``; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _receiver(port: int, arrivals: Any) -> None:
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        now = time.time() * 1000
        payload = await request.json()
        body = payload["body"]  # a JSON body arrives as JSON
        body = json.loads(body) if isinstance(body, str) else body
        arrivals.put(now - float(body["run_at_ms"]))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def push_lag(jobs: int, spread: float) -> dict[str, float]:
    """Deliver ``jobs`` jobs due at random instants; run_at -> arrival percentiles (ms)."""
    from bench.common import private_redis
    from redisched import AsyncClient
    from redisched.embedded import free_port
    from redisched.push.dispatcher import Dispatcher
    from redisched.wakeup import Wakeups

    port = free_port()
    arrivals: Any = multiprocessing.get_context("spawn").Queue()
    receiver = multiprocessing.get_context("spawn").Process(
        target=_receiver, args=(port, arrivals), daemon=True
    )
    receiver.start()
    deadline = time.time() + 30
    while True:  # the receiver listens before any job falls due
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    lags: list[float] = []
    try:
        with private_redis() as server:
            async with AsyncClient.from_url(server.url) as client:
                topic = "bench-push-lag"
                await client.configure(topic, webhook={"url": f"http://127.0.0.1:{port}/hook"})
                wakeups = Wakeups(client.redis)
                dispatcher = Dispatcher(client, wakeups, allow_private_webhooks=True)
                await dispatcher.start()
                await asyncio.sleep(1.0)  # the receiver is up, the topic task subscribed
                begin = time.time() + 1.0
                for i in range(jobs):
                    run_at = begin + random.uniform(0, spread)
                    body = json.dumps({"run_at_ms": round(run_at * 1000, 3)})
                    await client.put(topic, str(i), body, run_at=run_at)
                deadline = time.time() + spread + 30
                while len(lags) < jobs and time.time() < deadline:
                    while not arrivals.empty():
                        lags.append(arrivals.get())
                    await asyncio.sleep(0.05)
                await dispatcher.stop()
                await wakeups.close()
    finally:
        receiver.terminate()
        receiver.join()
    ordered = sorted(lags)
    return {
        "jobs": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def _run(env_path: str | None, *args: str) -> dict[str, Any]:
    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = f"{env_path}{os.pathsep}{ROOT}"
    out = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _worker_figures(report: dict[str, Any]) -> dict[str, float]:
    return {
        "jobs_per_s": report["throughput"]["jobs_per_s"],
        "lag_future_p50_ms": report["lag_future"]["p50_ms"],
        "lag_future_p99_ms": report["lag_future"]["p99_ms"],
        "lag_due_now_p50_ms": report["lag_due_now"]["vs_run_at"]["p50_ms"],
        "lag_due_now_p99_ms": report["lag_due_now"]["vs_run_at"]["p99_ms"],
    }


def main() -> None:
    """Run both variants ``--rounds`` times, interleaved; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git revision of the baseline")
    parser.add_argument("--push-jobs", type=int, default=1000)
    parser.add_argument("--push-lag", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.push_lag:
        print(json.dumps(asyncio.run(push_lag(args.push_jobs, 3.0))))
        return
    worker = ["-m", "bench.bench_worker", "--quick", "--jobs", "10000", "--lag-jobs", "300"]
    push = ["-m", "bench.bench_leasing", "--push-lag", "--push-jobs", str(args.push_jobs)]
    with tempfile.TemporaryDirectory(prefix="redisched-baseline-") as folder:
        archive = subprocess.run(
            ["git", "archive", args.baseline, "src"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        base_src = str(Path(folder) / "src")
        samples: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            runs: dict[str, Callable[[], dict[str, Any]]] = {
                "baseline": lambda: _worker_figures(_run(base_src, *worker)),
                "current": lambda: _worker_figures(_run(None, *worker)),
                "current_limited": lambda: _worker_figures(
                    _run(None, *worker, "--topic-concurrency", "10000")
                ),
                "push_baseline": lambda: _run(base_src, *push),
                "push_current": lambda: _run(None, *push),
            }
            for name, run in runs.items():
                samples.setdefault(name, []).append(run())
    medians = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    base, cur, lim = medians["baseline"], medians["current"], medians["current_limited"]
    report = {
        "benchmark": "leasing",
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "medians": medians,
        "ratios": {
            "worker_jobs_per_s": round(cur["jobs_per_s"] / base["jobs_per_s"], 3),
            "worker_jobs_per_s_with_limits": round(lim["jobs_per_s"] / base["jobs_per_s"], 3),
            "lag_future_p50": round(cur["lag_future_p50_ms"] / base["lag_future_p50_ms"], 3),
            "lag_due_now_p50": round(cur["lag_due_now_p50_ms"] / base["lag_due_now_p50_ms"], 3),
            "push_lag_p50": round(
                medians["push_current"]["p50_ms"] / medians["push_baseline"]["p50_ms"], 3
            ),
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
