"""The workload every peer runs, and the driver that times it the same way for all.

Workload (issue 8): ``--jobs`` jobs (20k) with 100-byte bodies and explicit ids where the
peer supports them, enqueued one call per job; then one worker process with a no-op handler
drains them. Then, on a fresh server, ``--memory-jobs`` jobs (100k) scheduled a day ahead, and
the server's memory growth per job (Redis ``used_memory``, or the RSS of beanstalkd);
``--memory-jobs 0`` skips that part.

Timing is done from outside the worker, identically for every peer: the driver polls the
peer's count of unfinished jobs every few milliseconds; the clock starts at the first job
seen finished and stops when none is left, so the worker's start-up (imports, connections)
is not counted against it.

Each peer module subclasses :class:`Peer` and ends with ``main(PeerClass())``; it is run as
``python -m bench.peers.<module> [--jobs N] [--memory-jobs N]`` (prints one JSON line) and,
by the driver, as ``python -m bench.peers.<module> worker <target>`` for the worker process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import redis

from bench.common import emit, private_redis

BODY = b"x" * 100
POLL = 0.005
DRAIN_TIMEOUT = 600.0


class PeerError(Exception):
    """A peer did not finish the workload."""


class Peer:
    """One job queue under test; by default one backed by a private redis-server.

    Subclasses set ``name``, ``package`` and ``config`` (how it is configured, for the
    report) and implement the enqueue, schedule, remaining and work steps.
    """

    name = "peer"
    package = ""
    config = ""
    explicit_ids = True

    def __init__(self) -> None:
        self._connections: dict[str, redis.Redis] = {}

    def redis(self, target: str) -> redis.Redis:
        """A connection to the Redis at ``target``, made once per target."""
        if target not in self._connections:
            self._connections[target] = redis.Redis.from_url(target)
        return self._connections[target]

    def version(self) -> str:
        """The installed version of the peer's package."""
        return importlib.metadata.version(self.package) if self.package else ""

    @contextlib.contextmanager
    def server(self) -> Iterator[str]:
        """A fresh server for one phase; yields the target string the other steps take."""
        with private_redis() as server:
            yield server.url

    def memory_used(self, target: str) -> int:
        """Bytes the server uses now."""
        info: dict[str, Any] = self.redis(target).info("memory")
        return int(info["used_memory"])

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """Enqueue one job per id, due now, one call each."""
        raise NotImplementedError

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """Schedule one job per id a day ahead (batched or concurrent where possible)."""
        raise NotImplementedError

    def remaining(self, target: str, total: int) -> int:
        """How many of the ``total`` enqueued jobs are not finished yet."""
        raise NotImplementedError

    def work(self, target: str) -> None:
        """Run one worker with a no-op handler until terminated (in the worker process)."""
        raise NotImplementedError


def ids_for(prefix: str, count: int) -> list[str]:
    """``count`` distinct job ids."""
    return [f"{prefix}-{i:07d}" for i in range(count)]


def drain(peer: Peer, target: str, total: int) -> tuple[float, float]:
    """Start the worker process and time it: (jobs per second, seconds to first job)."""
    module = type(peer).__module__
    if module == "__main__":  # run with -m: the worker needs the real module name
        spec = sys.modules["__main__"].__spec__
        module = spec.name if spec else module
    # The worker's output goes to a file, not a pipe: a chatty worker must never block.
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", module, "worker", target],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            first_at, left_at_first, now = watch(peer, target, total, process)
        except PeerError:
            stop(process)
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            raise PeerError(f"worker exit {process.returncode}; its output ends: {tail}") from None
        finally:
            stop(process)
    if now <= first_at:
        raise PeerError("the drain ended within one poll: too few --jobs to time it")
    # Jobs finished before the first poll saw any are not timed: count from that poll.
    return left_at_first / (now - first_at), first_at - started


def watch(
    peer: Peer, target: str, total: int, process: subprocess.Popen[bytes]
) -> tuple[float, int, float]:
    """Poll until no job is left: (first time one was seen finished, left then, last poll)."""
    first_at, left_at_first = 0.0, total
    deadline = time.perf_counter() + DRAIN_TIMEOUT
    while True:
        left = peer.remaining(target, total)
        now = time.perf_counter()
        if not first_at and left < total:
            first_at, left_at_first = now, left
        if left == 0:
            return first_at, left_at_first, now
        if process.poll() is not None:
            raise PeerError(f"the worker exited with {left} jobs left")
        if now > deadline:
            raise PeerError(f"{left} jobs left after {DRAIN_TIMEOUT} s")
        time.sleep(POLL)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker, SIGKILL it if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(peer: Peer, jobs: int, memory_jobs: int) -> dict[str, Any]:
    """The whole workload on ``peer``; the figures as a dict."""
    result: dict[str, Any] = {
        "peer": peer.name, "version": peer.version(), "config": peer.config,
        "explicit_ids": peer.explicit_ids, "jobs": jobs,
    }  # fmt: skip
    with peer.server() as target:
        ids = ids_for("job", jobs)
        started = time.perf_counter()
        peer.enqueue(target, ids, BODY)
        result["enqueue_per_s"] = round(jobs / (time.perf_counter() - started))
        if (left := peer.remaining(target, jobs)) != jobs:
            raise PeerError(f"{left} jobs waiting after enqueueing {jobs}")
        rate, startup = drain(peer, target, jobs)
        result["worker_jobs_per_s"] = round(rate)
        result["worker_startup_s"] = round(startup, 3)
    if not memory_jobs:  # memory does not vary between runs: bench.run measures it once
        return result
    result["memory_jobs"] = memory_jobs
    with peer.server() as target:
        peer.schedule(target, ["warmup"], BODY)  # create the peer's structures first
        before = peer.memory_used(target)
        peer.schedule(target, ids_for("later", memory_jobs), BODY)
        result["memory_bytes_per_job"] = round((peer.memory_used(target) - before) / memory_jobs)
    return result


def main(peer: Peer) -> None:
    """Command line of a peer module: run the workload, or be its worker process."""
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        peer.work(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=f"The peer workload on {peer.name}.")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--memory-jobs", type=int, default=100_000)
    args = parser.parse_args()
    emit(f"peer-{peer.name}", run(peer, args.jobs, args.memory_jobs))
