"""A primary/replica pair watched by a real Sentinel (``redis-server --sentinel``), reached
through a ``redis+sentinel://`` URL: durable puts, then kill -9 the primary under load; the
client follows the promoted replica by itself, and no durable put is lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

import redisched
from redisched import BackendError, NotReplicated, PutStatus
from redisched.connect import parse_sentinel_url
from redisched.embedded import EmbeddedRedis, free_port
from tests.conftest import BINARIES

SERVICE = "jobs"


@dataclass
class SentinelPair:
    """A primary, its replica and one Sentinel, all on loopback."""

    primary: EmbeddedRedis
    replica: EmbeddedRedis
    sentinel: EmbeddedRedis

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the pair."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"

    def current_primary(self) -> int:
        """The port the Sentinel names as primary now."""
        with redis.Redis(port=self.sentinel.port) as conn:
            _host, port = conn.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def wait_synced(self, timeout: float = 20.0) -> None:
        """Wait until the current primary has a replica that acknowledges writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with redis.Redis(port=self.current_primary(), socket_timeout=2) as conn:
                    conn.set("sentinel-test:probe", 1)
                    if conn.execute_command("WAIT", 1, 500) >= 1:
                        return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise AssertionError("the pair never had a synced replica")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelPair]:
    """A fresh primary/replica/Sentinel trio (the newest binary) for this module."""
    binary = BINARIES.get("redis7", BINARIES["redis6"])
    root = tmp_path_factory.mktemp("sentinel")
    common = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
    primary = EmbeddedRedis(root / "a", binary=binary, persistent=False, extra_args=common)
    primary.start()
    replica = EmbeddedRedis(
        root / "b", binary=binary, persistent=False,
        extra_args=(*common, "--replicaof", "127.0.0.1", str(primary.port)),
    )  # fmt: skip
    replica.start()
    sentinel_dir = root / "s"
    sentinel_dir.mkdir()
    port = free_port()
    (sentinel_dir / "sentinel.conf").write_text(
        f"port {port}\nbind 127.0.0.1\ndir {sentinel_dir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
    )
    sentinel = EmbeddedRedis(sentinel_dir, port=port, binary=binary, persistent=False)
    sentinel.command = lambda: [  # type: ignore[method-assign]
        binary, str(sentinel_dir / "sentinel.conf"), "--sentinel",
        "--logfile", str(sentinel_dir / "redis.log"),
    ]  # fmt: skip
    sentinel.start()
    trio = SentinelPair(primary, replica, sentinel)
    try:
        trio.wait_synced()
        yield trio
    finally:
        for server in (sentinel, replica, primary):
            server.kill()


def test_sentinel_urls_are_parsed() -> None:
    address = parse_sentinel_url("redis+sentinel://u:p%40ss@127.0.0.1:26379,[::1]:26380/jobs/2")
    assert address.sentinels == (("127.0.0.1", 26379), ("::1", 26380))
    assert (address.service, address.db, address.username, address.password) == (
        "jobs", 2, "u", "p@ss",
    )  # fmt: skip
    for bad in ("redis+sentinel://127.0.0.1/jobs", "redis+sentinel://127.0.0.1:1/", "redis://x/1"):
        with pytest.raises(redisched.InvalidArgument):
            parse_sentinel_url(bad)


def test_the_client_follows_the_primary_through_a_failover(pair: SentinelPair) -> None:
    topic = f"sentinel-{time.time_ns()}"
    with redisched.Client.from_url(pair.url) as client:
        assert client.retry_for == 10.0  # a Sentinel URL rides out a failover by default
        assert client.put(topic, "before", b"x", durable=True).status is PutStatus.CREATED
        old = pair.current_primary()
        victim = pair.primary if pair.primary.port == old else pair.replica
        acknowledged, killed_at, resumed_at = ["before"], 0.0, 0.0
        for n in range(400):
            if n == 200:
                killed_at = time.monotonic()
                victim.kill()
            try:
                client.put(topic, f"j{n}", b"x")
            except BackendError as exc:
                raise AssertionError(f"no primary within retry_for: {exc}") from exc
            if killed_at and not resumed_at:
                resumed_at = time.monotonic()
            acknowledged.append(f"j{n}")
        new = pair.current_primary()
        assert new != old
        recovery = resumed_at - killed_at
        print(f"\nsentinel failover: puts resumed {recovery:.2f} s after kill -9 of the primary")
        assert recovery < 10
        with pytest.raises(NotReplicated):  # the new primary has no replica yet
            client.put(topic, "alone", b"x", durable=True)
        # The operator restarts the dead server as a replica of the new primary.
        victim.extra_args = (*victim.extra_args[:4], "--replicaof", "127.0.0.1", str(new))
        victim.start()
        pair.wait_synced()
        assert client.put(topic, "after", b"x", durable=True).status is PutStatus.CREATED
        missing = [i for i in [*acknowledged, "after"] if client.get(topic, i) is None]
        assert missing == [], missing
