"""Start the Node.js and Go glue (clients/) as subprocesses: workers, servers, their readiness.

The fixtures ``go_cli`` and ``go_testworker`` (the Go binaries, built once per session) are
registered in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from redisched.commands.scripts import lua_dir

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "clients" / "node"
GO_DIR = ROOT / "clients" / "go"
NODE_BIN = NODE_DIR / "bin" / "redisched-node"
NODE_HANDLERS = NODE_DIR / "testing" / "recording.js"
LANGUAGES = ("node", "go")


def env(redis_url: str = "", **extra: str) -> dict[str, str]:
    """The environment of a glue process: the installed scripts, no Go module proxy."""
    out = {**os.environ, "REDISCHED_LUA_DIR": str(lua_dir()), "GOPROXY": "off", **extra}
    if redis_url:
        out["REDISCHED_REDIS_URL"] = redis_url
    return out


def require_node() -> None:
    """Fail (never skip) when Node or the glue's dependencies are missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed (.ci/run installs it)")
    if not (NODE_DIR / "node_modules" / "ioredis").is_dir():
        pytest.fail("clients/node has no node_modules: run `npm ci` there (.ci/run does)")


@pytest.fixture(scope="session")
def go_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``redisched-go`` (the Go glue's command), built once per session."""
    return go_build("./cmd/redisched-go", tmp_path_factory.mktemp("go") / "redisched-go")


@pytest.fixture(scope="session")
def go_testworker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go worker with the recording handler, built once per session."""
    return go_build("./internal/testworker", tmp_path_factory.mktemp("go") / "testworker")


def go_build(package: str, output: Path) -> Path:
    """``go build`` one package of clients/go into ``output``."""
    if shutil.which("go") is None:
        pytest.fail("go is not installed (.ci/run installs it)")
    proc = subprocess.run(
        ["go", "build", "-o", str(output), package],
        cwd=GO_DIR, env=env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return output


def read_ready(process: subprocess.Popen[bytes], timeout: float = 30) -> dict[str, Any]:
    """Read the process's stdout until its JSON "ready" line; that line."""
    stream: IO[bytes] | None = process.stdout
    assert stream is not None
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            for line in seen.splitlines():
                if line.startswith(b"{") and b'"ready"' in line:
                    return dict(json.loads(line))
            if not selector.select(timeout):
                raise AssertionError(f"not ready within {timeout}s: {seen!r}")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                err = process.stderr.read() if process.stderr else b""
                raise AssertionError(f"exited before ready: {seen!r} {err!r}")
            seen += chunk


@contextmanager
def running(
    command: list[str], redis_url: str, cwd: Path = ROOT, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a glue process, wait for its ready line; kill it on the way out if still running."""
    proc = subprocess.Popen(
        command, cwd=cwd, env=env(redis_url, **extra), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        proc.ready = read_ready(proc)  # type: ignore[attr-defined]
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """SIGTERM and wait; the exit code."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)
