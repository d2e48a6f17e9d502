"""Helpers shared by the benchmarks: a private redis-server, timing, JSON output."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redisched.embedded import EmbeddedRedis

TRIVIAL_SCRIPT = "return 1"


@contextmanager
def private_redis(binary: str | None = None) -> Iterator[EmbeddedRedis]:
    """A fresh redis-server without persistence, for one benchmark."""
    with (
        tempfile.TemporaryDirectory(prefix="redisched-bench-") as folder,
        EmbeddedRedis(Path(folder), binary=binary, persistent=False) as server,
    ):
        yield server


def rate(operations: int, action: Callable[[], Any]) -> float:
    """Operations per second of one call of ``action`` that performs ``operations``."""
    started = time.perf_counter()
    action()
    return operations / (time.perf_counter() - started)


def median_rate(operations: int, action: Callable[[], Any], repeats: int = 3) -> float:
    """The median of ``repeats`` measurements of ``rate``."""
    return statistics.median(rate(operations, action) for _ in range(repeats))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def emit(name: str, results: dict[str, Any]) -> None:
    """Print one benchmark's results as a JSON line on stdout."""
    json.dump({"benchmark": name, "machine": machine(), **results}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
