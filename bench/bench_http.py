"""HTTP put/s and reserve/s of ``redisched serve``, each against a bare Starlette endpoint.

Both servers run as their own uvicorn process (uvloop + httptools, no access log) on one private
redis-server, and ``wrk`` drives each with 64 connections, alternating between them round by
round so that both see the same machine load:

* ours: ``redisched serve --redis-url ...`` as shipped (API, requeue sweep, dispatcher), with
  ``PUT /v1/topics/{topic}/jobs/{id}`` (JSON body, replace semantics, the job read back in the
  same round trip; and again with ``Prefer: return=minimal``, which skips the read-back) and
  ``POST /v1/topics/{topic}/reserve`` (``{"count": 1}``);
* baseline: a Starlette app whose two endpoints do one EVALSHA each of the same scripts
  (put.lua with the raw request body, reserve.lua) and answer a small JSON: no validation, no
  job parsing, no errors. The ratio ours / baseline is the cost of the API layer (target 0.9).
* for context, the same bare app answering one EVALSHA of ``return 1`` (the HTTP ceiling).

Beside each rate, the server process's CPU time per request is read from /proc around each wrk
run: the CPU ratios (baseline / ours) are what a machine with a core to spare would show, and
move far less with a shared machine's load than the rates do.

Reserve runs on topics preloaded with more ready jobs than a round can take, so that every
request leases a job (the output says so in ``exhausted``).

Run: ``.venv/bin/python -m bench.bench_http [--quick] [--duration S] [--rounds N]``; prints JSON.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import emit, private_redis
from redisched import Client
from redisched.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 64
MINIMAL = {"Prefer": "return=minimal"}
JOB = b'{"order":12345,"items":["a","b","c"],"note":"ship it"}'
BODY = b'{"body":' + JOB + b"}"
PUT_LUA = """
local prefix = "%s"
local counter = 0
function setup(thread)
  thread:set("id", tostring(math.random(1, 1000000000)))
end
function request()
  counter = counter + 1
  return wrk.format("PUT", prefix .. id .. "-" .. counter, nil, wrk.body)
end
"""
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: .*")
_REQUESTS = re.compile(r"(\d+) requests in")
PIDS: dict[str, int] = {}
"""Base URL -> pid of the server process answering it."""
CPU_US: dict[str, list[float]] = {}
"""Run name -> the server process's CPU microseconds per request, one per run."""


# -- the baseline app ---------------------------------------------------------------------------


def baseline_app(redis_url: str) -> Any:
    """A bare Starlette app: each endpoint does one EVALSHA (used with ``--serve-baseline``)."""
    import redis
    import redis.asyncio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from redisched import scripts
    from redisched.keys import TopicKeys

    conn = redis.asyncio.Redis.from_url(redis_url)
    put, reserve = scripts.get("put"), scripts.get("reserve")
    with redis.Redis.from_url(redis_url) as sync:
        trivial_sha = sync.script_load("return 1")

    def keys(script: scripts.Script, topic: str) -> list[str]:
        names = TopicKeys("benchbase", topic)
        return [names.name(p.name) for p in script.keys]

    async def put_job(request: Request) -> Response:
        topic, job_id = request.path_params["topic"], request.path_params["id"]
        body = await request.body()
        args = ("", "", 0, "", 0, "", 1, "", job_id, body)
        status, version = await conn.evalsha(put.sha, len(put.keys), *keys(put, topic), *args)
        return Response(b'{"status":%d,"version":%d}' % (status, version), 201,
                        media_type="application/json")  # fmt: skip

    async def reserve_job(request: Request) -> Response:
        await request.body()
        topic = request.path_params["topic"]
        reply = await conn.evalsha(
            reserve.sha, len(reserve.keys), *keys(reserve, topic), "", 1, "", 1000, ""
        )
        if len(reply) <= 3:
            return Response(status_code=204)
        job = reply[3]
        return Response(b'{"jobs":[{"id":"%s","token":"%s"}]}' % (job[0], job[8]), 200,
                        media_type="application/json")  # fmt: skip

    async def trivial(request: Request) -> Response:
        await request.body()
        await conn.evalsha(trivial_sha, 0)
        return Response(b'{"ok":1}', 200, media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/topics/{topic}/jobs/{id}", put_job, methods=["PUT"]),
            Route("/v1/topics/{topic}/reserve", reserve_job, methods=["POST"]),
            Route("/trivial", trivial, methods=["POST", "PUT"]),
        ]
    )


def serve_baseline(port: int, redis_url: str) -> None:
    """Run the baseline app as ``redisched serve`` runs ours."""
    import uvicorn

    from redisched import scripts

    with Client.from_url(redis_url) as client:
        for name in ("put", "reserve"):
            client.redis.script_load(scripts.get(name).source)
    uvicorn.run(
        baseline_app(redis_url), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        access_log=False, log_level="warning",
    )  # fmt: skip


# -- processes ----------------------------------------------------------------------------------


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.post(f"{url}/trivial", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


@contextmanager
def server(command: list[str], port: int) -> Iterator[str]:
    """Run a server process on ``port``; yield its base URL (its pid goes in ``PIDS``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    PIDS[url] = process.pid
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- wrk ----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, method: str, body: bytes, duration: float, folder: Path, path: str = "",
    headers: dict[str, str] | None = None, name: str = "",
) -> float:  # fmt: skip
    """Requests/s of ``wrk`` with 64 connections; PUTs get a fresh id per request.

    With a ``name``, the server's CPU time per request goes in ``CPU_US[name]``: unlike the
    rate, it hardly moves with the machine's load.
    """
    script = folder / f"{method.lower()}-{abs(hash((url, path, str(headers))))}.lua"
    if method == "PUT":
        script.write_text(PUT_LUA % path)
        target = url
    else:
        script.write_text(f'wrk.method = "{method}"\n')
        target = url + path
    body_file = folder / "body.json"
    body_file.write_bytes(body)
    script.write_text(
        script.read_text()
        + f'wrk.body = io.open("{body_file}"):read("*a")\n'
        + 'wrk.headers["Content-Type"] = "application/json"\n'
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    )
    threads = "2"
    cpu_before = cpu_seconds(PIDS[url])
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(CONNECTIONS), "-d", f"{duration:g}s", "-s", str(script),
         target],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cpu = cpu_seconds(PIDS[url]) - cpu_before
    match, count = _RATE.search(out), _REQUESTS.search(out)
    if match is None or count is None:
        raise RuntimeError(f"no rate in wrk output: {out}")
    if name:
        CPU_US.setdefault(name, []).append(cpu / int(count.group(1)) * 1e6)
    bad = _NON_2XX.search(out)
    if bad and int(bad.group(1)):
        raise RuntimeError(f"{bad.group(1)} non-2xx answers from {target}: {out}")
    return float(match.group(1))


# -- the benchmark ------------------------------------------------------------------------------


def preload(redis_url: str, prefix: str, topic: str, jobs: int) -> None:
    """Put ``jobs`` ready jobs in ``topic`` under ``prefix``."""
    with Client.from_url(redis_url, prefix=prefix) as client:
        for start in range(0, jobs, 5000):
            batch = [(f"p{i}", JOB) for i in range(start, min(jobs, start + 5000))]
            client.put_many(topic, batch)


def ready(redis_url: str, prefix: str, topic: str) -> int:
    """Jobs still ready in a preloaded topic."""
    with Client.from_url(redis_url, prefix=prefix) as client:
        return client.stats(topic).ready


def main() -> None:
    """Measure, then print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-baseline", nargs=2, metavar=("PORT", "REDIS_URL"))
    options = parser.parse_args()
    if options.serve_baseline:
        serve_baseline(int(options.serve_baseline[0]), options.serve_baseline[1])
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed")
    duration, rounds = (3.0, 2) if options.quick else (options.duration, options.rounds)
    runs: dict[str, list[float]] = {
        k: []
        for k in ("put", "put_minimal", "baseline_put", "reserve", "baseline_reserve", "trivial")
    }
    exhausted = False
    stock = int(duration * 30_000)  # more than a round can reserve at any plausible rate
    redisched_bin = str(Path(sys.executable).parent / "redisched")
    with private_redis() as redis_server, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url = redis_server.url
        ours_port, base_port = free_port(), free_port()
        ours_cmd = [redisched_bin, "serve", "--redis-url", url, "--port", str(ours_port)]
        base_cmd = [sys.executable, "-m", "bench.bench_http", "--serve-baseline",
                    str(base_port), url]  # fmt: skip
        with server(ours_cmd, ours_port) as ours, server(base_cmd, base_port) as base:
            wrk(ours, "PUT", BODY, 1, folder, "/v1/topics/warm/jobs/")  # warm up both
            wrk(base, "PUT", BODY, 1, folder, "/v1/topics/warm/jobs/")
            for index in range(rounds):
                topic = f"r{index}"
                preload(url, "redisched", topic, stock)
                preload(url, "benchbase", topic, stock)
                path = f"/v1/topics/{topic}"
                jobs, body = path + "/jobs/", b'{"count":1}'
                runs["baseline_put"].append(
                    wrk(base, "PUT", BODY, duration, folder, jobs, name="baseline_put")
                )
                runs["put"].append(wrk(ours, "PUT", BODY, duration, folder, jobs, name="put"))
                runs["put_minimal"].append(
                    wrk(ours, "PUT", BODY, duration, folder, jobs, MINIMAL, name="put_minimal")
                )
                runs["reserve"].append(
                    wrk(ours, "POST", body, duration, folder, path + "/reserve", name="reserve")
                )
                runs["baseline_reserve"].append(
                    wrk(base, "POST", body, duration, folder, path + "/reserve",
                        name="baseline_reserve")
                )  # fmt: skip
                runs["trivial"].append(
                    wrk(base, "POST", b"{}", duration, folder, "/trivial", name="trivial")
                )
                exhausted |= not ready(url, "redisched", topic) or not ready(
                    url, "benchbase", topic
                )
    medians = {k: statistics.median(v) for k, v in runs.items()}
    cpu = {k: statistics.median(v) for k, v in CPU_US.items()}
    emit(
        "http",
        {
            "put_per_s": round(medians["put"]),
            "baseline_put_per_s": round(medians["baseline_put"]),
            "put_ratio": round(medians["put"] / medians["baseline_put"], 3),
            "put_minimal_per_s": round(medians["put_minimal"]),
            "put_minimal_ratio": round(medians["put_minimal"] / medians["baseline_put"], 3),
            "reserve_per_s": round(medians["reserve"]),
            "baseline_reserve_per_s": round(medians["baseline_reserve"]),
            "reserve_ratio": round(medians["reserve"] / medians["baseline_reserve"], 3),
            "baseline_trivial_evalsha_per_s": round(medians["trivial"]),
            # the server's CPU per request, and the baseline's / ours: the ratio a machine
            # with a core to spare would show, steadier than the rates on a loaded machine
            "cpu_us_per_request": {k: round(v, 1) for k, v in cpu.items()},
            "put_cpu_ratio": round(cpu["baseline_put"] / cpu["put"], 3),
            "put_minimal_cpu_ratio": round(cpu["baseline_put"] / cpu["put_minimal"], 3),
            "reserve_cpu_ratio": round(cpu["baseline_reserve"] / cpu["reserve"], 3),
            "connections": CONNECTIONS,
            "duration_s": duration,
            "rounds": rounds,
            "exhausted": exhausted,
            "runs": {k: [round(x) for x in v] for k, v in runs.items()},
        },
    )


if __name__ == "__main__":
    main()
