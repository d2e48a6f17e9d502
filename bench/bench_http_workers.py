"""HTTP put/s of ``redisched serve --workers 2`` against ``--workers 1``, in the same run.

Both servers run at once on one private redis-server (``--redis-url``), and ``wrk`` (64
connections, fresh job ids) drives them in turn, round by round, so that both see the same
machine load. The ratio 2 workers / 1 worker is what a second HTTP process adds on this
machine: on a machine whose cores are shared with redis-server and wrk, expect much less
than 2. The load average is read before and after.

Run: ``.venv/bin/python -m bench.bench_http_workers [--quick] [--duration S] [--rounds N]``;
prints JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_http import BODY, CONNECTIONS, MINIMAL, server, wrk
from bench.common import emit, private_redis
from redisched.embedded import free_port


def main() -> None:
    """Measure, then print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="the processes of the second")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed")
    duration, rounds = (3.0, 2) if options.quick else (options.duration, options.rounds)
    names = ("one", "many", "one_minimal", "many_minimal")
    runs: dict[str, list[float]] = {name: [] for name in names}
    redisched_bin = str(Path(sys.executable).parent / "redisched")
    load_before = os.getloadavg()
    with private_redis() as redis_server, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        one_port, many_port = free_port(), free_port()
        command = [redisched_bin, "serve", "--redis-url", redis_server.url, "--port"]
        many_cmd = [*command, str(many_port), "--workers", str(options.workers)]
        with (
            server([*command, str(one_port)], one_port) as one,
            server(many_cmd, many_port) as many,
        ):
            time.sleep(2)  # the extra workers bind the port a moment after the first process
            for url in (one, many):
                wrk(url, "PUT", BODY, 1, folder, "/v1/topics/warm/jobs/")
            for index in range(rounds):
                jobs = f"/v1/topics/r{index}/jobs/"
                pairs = ((one, "one"), (many, "many"))
                for url, name in pairs if index % 2 == 0 else reversed(pairs):
                    runs[name].append(wrk(url, "PUT", BODY, duration, folder, jobs))
                    runs[f"{name}_minimal"].append(
                        wrk(url, "PUT", BODY, duration, folder, jobs, MINIMAL)
                    )
    medians = {k: statistics.median(v) for k, v in runs.items()}
    emit(
        "http_workers",
        {
            "workers": options.workers,
            "put_per_s_1_worker": round(medians["one"]),
            f"put_per_s_{options.workers}_workers": round(medians["many"]),
            "put_ratio": round(medians["many"] / medians["one"], 3),
            "put_minimal_per_s_1_worker": round(medians["one_minimal"]),
            f"put_minimal_per_s_{options.workers}_workers": round(medians["many_minimal"]),
            "put_minimal_ratio": round(medians["many_minimal"] / medians["one_minimal"], 3),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "connections": CONNECTIONS,
            "duration_s": duration,
            "rounds": rounds,
            "runs": {k: [round(x) for x in v] for k, v in runs.items()},
        },
    )


if __name__ == "__main__":
    main()
