"""beanstalkd (Debian's package, the C server) with the greenstalk client, through the peer
workload.

Configuration: ``beanstalkd -l 127.0.0.1 -p PORT`` without a binlog (in memory, like the
private redis-servers of the other peers, which run without AOF). beanstalkd chooses job ids
itself, so the workload's explicit ids are not sent. ``Client.put(body)`` one call per job;
the worker process is one greenstalk client looping ``reserve`` + ``delete`` (what a
beanstalkd worker does; greenstalk has no worker framework). A job counts as finished when the
tube has it neither ready nor reserved. Memory: ``put(body, delay=1 day)``, one call per job,
and the growth of the server's resident set (``VmRSS``), as beanstalkd has no memory counter.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import greenstalk

from bench.peers.base import Peer, PeerError, main
from redisched.embedded import free_port

BINARY = "beanstalkd"


def address(target: str) -> tuple[str, int]:
    """``host:port`` as greenstalk's address tuple."""
    host, port = target.rsplit(":", 1)
    return host, int(port)


class BeanstalkdPeer(Peer):
    """beanstalkd over loopback."""

    name = "beanstalkd"
    package = "greenstalk"
    config = "beanstalkd without binlog; greenstalk reserve+delete loop; server-chosen ids"
    explicit_ids = False

    def __init__(self) -> None:
        super().__init__()
        self._servers: dict[str, subprocess.Popen[bytes]] = {}
        self._clients: dict[str, greenstalk.Client[Any]] = {}

    def version(self) -> str:
        """The server's version, and the client's."""
        path = shutil.which(BINARY)
        if path is None:
            raise PeerError("beanstalkd not found (apt-get install beanstalkd)")
        out = subprocess.run([path, "-v"], capture_output=True, text=True, check=True).stdout
        return f"{out.split()[-1]} (greenstalk {super().version()})"

    @contextlib.contextmanager
    def server(self) -> Iterator[str]:
        """A fresh beanstalkd on a free loopback port."""
        port = free_port()
        process = subprocess.Popen(
            [BINARY, "-l", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL
        )
        target = f"127.0.0.1:{port}"
        self._servers[target] = process
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self._clients[target] = greenstalk.Client(address(target))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield target
        finally:
            if target in self._clients:
                self._clients.pop(target).close()
            process.terminate()
            process.wait(10)

    def memory_used(self, target: str) -> int:
        """The server's resident set, in bytes."""
        status = Path(f"/proc/{self._servers[target].pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kib) * 1024

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """One ``put`` per job (the ids are not sent: beanstalkd assigns its own)."""
        client = self._clients[target]
        for _ in ids:
            client.put(body)

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """``put(delay=1 day)`` per job."""
        client = self._clients[target]
        for _ in ids:
            client.put(body, delay=86_400)

    def remaining(self, target: str, total: int) -> int:
        """Jobs ready or reserved in the default tube."""
        stats = self._clients[target].stats_tube("default")
        return int(stats["current-jobs-ready"]) + int(stats["current-jobs-reserved"])

    def work(self, target: str) -> None:
        """reserve + delete, one job at a time, until SIGTERM."""
        with greenstalk.Client(address(target), encoding=None) as client:
            while True:
                client.delete(client.reserve())


if __name__ == "__main__":
    main(BeanstalkdPeer())
