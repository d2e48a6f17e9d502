"""Process CPU time per job of one Worker draining 8,000 ready jobs (3 drains).

CPU time is steadier than wall time on a shared machine. Compare two versions by running it
under each: ``.venv/bin/python -m bench.bench_cpu_per_job`` (this tree) and
``PYTHONPATH=<other src>:. .venv/bin/python -m bench.bench_cpu_per_job``; prints JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.bench_worker import drain, fill, run_loop
from redisched.embedded import EmbeddedRedis


def main(jobs: int = 8000, drains: int = 3) -> None:
    """Fill and drain ``drains`` times; print µs of CPU per job for each drain."""
    with (
        tempfile.TemporaryDirectory(prefix="redisched-bench-") as folder,
        EmbeddedRedis(Path(folder), persistent=False) as server,
    ):
        per_job = []
        for run in range(drains):
            fill(server.url, "bench-cpu", f"r{run}", jobs)
            started = time.process_time()
            run_loop(drain(server.url, "bench-cpu", jobs, 500))
            per_job.append(round((time.process_time() - started) / jobs * 1e6, 1))
    print(json.dumps({"benchmark": "cpu_per_job", "jobs": jobs, "cpu_us_per_job": per_job}))


if __name__ == "__main__":
    main()
