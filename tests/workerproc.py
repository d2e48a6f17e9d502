"""Start ``redisched worker`` subprocesses for the tests and read their logs."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def spawn(
    redis_url: str, key: str, handler: str, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``redisched worker tests.worker_app:<handler> *args``, logs on a pipe (stderr)."""
    env = {**os.environ, "REDISCHED_REDIS_URL": redis_url, "WORKER_APP_KEY": key}
    env.update(extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-c", "from redisched.cli import run; run()", "worker",
         f"tests.worker_app:{handler}", *args],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def read_until(process: subprocess.Popen[bytes], text: str, timeout: float) -> str:
    """Read the process's stderr until a line contains ``text``; all read so far."""
    stream: IO[bytes] | None = process.stderr
    assert stream is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while text.encode() not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError(
                    f"no {text!r} in the worker's log within {timeout}s:\n{seen!r}"
                )
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"the worker exited before logging {text!r}:\n{seen!r}")
            seen += chunk
    return seen.decode(errors="replace")


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` every 5 ms until it is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)
