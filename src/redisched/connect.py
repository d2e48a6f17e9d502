"""Open redis-py connections from a URL (one server, a cluster, a Sentinel-watched primary),
and tell which failures are worth retrying while a cluster or a primary fails over.

URL forms:

- ``redis://host:port/db``, ``rediss://...``, ``unix:///path``: one server (``cluster=True``
  treats the server as a seed of a Redis Cluster and discovers the other nodes).
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``: the primary
  that the Sentinels at those addresses name ``service``; after a failover the connection
  follows the new primary.
"""

from __future__ import annotations

import asyncio
import builtins
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.sentinel
from redis.exceptions import (
    AskError,
    ClusterError,
    ConnectionError,
    ReadOnlyError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)
from redis.utils import HIREDIS_AVAILABLE

from .errors import InvalidArgument

if HIREDIS_AVAILABLE:  # redis-py's test: hiredis installed, and recent enough
    import hiredis

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_RETRY_FOR = 10.0
"""Seconds a cluster or Sentinel client keeps retrying through a failover before giving up."""

RETRYABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, a node loading its AOF, no primary known to Sentinel
    TimeoutError,
    OSError,
    ClusterError,  # CLUSTERDOWN, MASTERDOWN, redirections exhausted
    AskError,  # MOVED and ASK left over after redis-py's own redirections
    TryAgainError,
    ReadOnlyError,  # a demoted primary answering as a replica
    RedisClusterException,  # a slot no node covers while the cluster reshapes
)


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def connection_options(self) -> dict[str, Any]:
        """Options for the primary's connections (db and credentials)."""
        options: dict[str, Any] = {"db": self.db}
        if self.username:
            options["username"] = self.username
        if self.password:
            options["password"] = self.password
        return options


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Read ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise InvalidArgument("url", f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise InvalidArgument("url", f"{item!r} is not a host:port Sentinel address")
        sentinels.append((host.strip("[]"), int(port)))
    path = [unquote(p) for p in parts.path.split("/") if p]
    if (
        not path
        or len(path) > 2
        or (len(path) == 2 and not (path[1].isascii() and path[1].isdigit()))
    ):
        raise InvalidArgument("url", "give the service name, and optionally a db number")
    return SentinelAddress(
        tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0,
        unquote(username) or None, unquote(password) or None,
    )  # fmt: skip


def is_sentinel_url(url: str) -> bool:
    """True for a ``redis+sentinel://`` URL."""
    return url.startswith(SENTINEL_SCHEME + "://")


def check_database(url: str, *, cluster: bool = False) -> None:
    """InvalidArgument naming ``url`` when its database is no number: redis-py reads
    ``/abc`` as database 0 and ``/1/2`` as 12, so the jobs went to another database than
    the one meant. A cluster has database 0 only (redis-py drops any other)."""
    parts = urlsplit(url)
    given = [unquote(parts.path).strip("/")] if parts.scheme in ("redis", "rediss") else []
    given += [value for key, value in parse_qsl(parts.query) if key == "db"]
    for db in (text for text in given if text):
        if not (db.isascii() and db.isdigit()):
            raise InvalidArgument("url", f"the database must be a number, not {db!r}")
        if cluster and int(db) != 0:
            raise InvalidArgument("url", f"a Redis Cluster has database 0 only, not {db}")


def sync_connection(url: str, *, cluster: bool = False) -> redis.Redis | redis.RedisCluster:
    """A blocking connection to ``url`` (see the module docstring for the forms)."""
    if is_sentinel_url(url):
        address = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(list(address.sentinels), socket_timeout=5)  # type: ignore[no-untyped-call, unused-ignore]
        primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]
            address.service, **address.connection_options()
        )
        return primary
    check_database(url, cluster=cluster)
    if cluster:
        # Not RedisCluster.from_url: redis-py 8.1 leaves the seed node's socket open there.
        return redis.RedisCluster(**cluster_options(url))
    return redis.Redis.from_url(url)


def async_connection(
    url: str, *, cluster: bool = False
) -> redis.asyncio.Redis | redis.asyncio.RedisCluster:
    """An asyncio connection to ``url`` (see the module docstring for the forms)."""
    if is_sentinel_url(url):
        address = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(list(address.sentinels), socket_timeout=5)  # type: ignore[no-untyped-call, unused-ignore]
        primary: redis.asyncio.Redis = sentinel.master_for(
            address.service, **address.connection_options()
        )
        return pack_with_hiredis(primary)
    check_database(url, cluster=cluster)
    if cluster:
        return redis.asyncio.RedisCluster.from_url(url)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT
    )
    return pack_with_hiredis(redis.asyncio.Redis.from_pool(pool))


MAX_CONNECTIONS = 100
"""Connections of an asyncio client's pool (redis-py's default size)."""
POOL_WAIT = 20.0
"""Seconds a call waits for a connection of a full pool before it fails. A blocking pool:
redis-py's plain one refuses the 101st call in flight at once ("Too many connections"), so
the HTTP service answered a burst of 300 requests with 200 503s while Redis was idle."""


AsyncRedis = TypeVar("AsyncRedis", bound=redis.asyncio.Redis)


def pack_with_hiredis(client: AsyncRedis) -> AsyncRedis:
    """Make ``client``'s new connections pack commands with hiredis (C), as redis-py's
    blocking connections already do; returns ``client``.

    redis-py 8's asyncio connections pack every command in Python, argument by argument
    (about 40% of a Worker's CPU in a profile; ~10x hiredis.pack_command for a put). The
    bytes on the wire are the same. Nothing changes without hiredis, or when the
    connections encode strings other than as strict UTF-8.
    """
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if not HIREDIS_AVAILABLE or not _utf8(kwargs.get("encoding"), kwargs.get("encoding_errors")):
        return client
    pool.connection_class = _hiredis_class(pool.connection_class)
    return client


def _utf8(encoding: object, errors: object) -> bool:
    name = "utf-8" if encoding is None else str(encoding).lower().replace("_", "-")
    return name in ("utf-8", "utf8") and errors in (None, "strict")


_HIREDIS_CLASSES: dict[type[Any], type[Any]] = {}


def _hiredis_class(base: type[Any]) -> type[Any]:
    """``base`` (an asyncio connection class) with :class:`HiredisPacking` first."""
    if issubclass(base, HiredisPacking):
        return base
    made = _HIREDIS_CLASSES.get(base)
    if made is None:
        made = _HIREDIS_CLASSES[base] = type(f"Hiredis{base.__name__}", (HiredisPacking, base), {})
    return made


class HiredisPacking(redis.asyncio.connection.AbstractConnection):
    """Mixed into an asyncio connection class: pack with hiredis, else as redis-py does; and
    write without a task of its own (:meth:`send_packed_command`)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        """The command as RESP bytes (one chunk)."""
        first = args[0] if args else None
        if type(first) is str and " " not in first:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a bytearray, or a bad type: redis-py's DataError
                pass
        return super().pack_command(*args)

    # Python 3.12's wait_for makes no task (it is asyncio.timeout inside): redis-py's own
    # method is kept there, and this copy of it lives only as long as 3.11 is supported.
    if sys.version_info < (3, 12):

        async def send_packed_command(
            self, command: str | bytes | Iterable[bytes], check_health: bool = True
        ) -> None:
            """redis-py 8.1's, with its write timeout as ``asyncio.timeout`` (same timeout, same
            errors). Its ``asyncio.wait_for`` makes a task on Python 3.11: the bytes left one
            event loop turn later and the call returned a turn after that, so on a busy loop
            (a dispatcher with 100 requests in flight: turns of ~10 ms) each round trip waited
            ~15 ms (p50; p90 40 ms) before anything reached Redis."""
            if not self.is_connected:
                await self.connect_check_health(check_health=False)
            if check_health:
                await self.check_health()  # type: ignore[no-untyped-call, unused-ignore]
            try:
                if isinstance(command, str):
                    command = command.encode()
                if isinstance(command, bytes):
                    command = [command]
                if self.socket_timeout:
                    async with asyncio.timeout(self.socket_timeout):
                        await self._send_packed_command(command)
                else:
                    self._writer.writelines(command)  # type: ignore[union-attr]
                    await self._writer.drain()  # type: ignore[union-attr]
            except builtins.TimeoutError:  # asyncio.timeout's (the name here is redis-py's)
                await self.disconnect(nowait=True)
                raise TimeoutError("Timeout writing to socket") from None
            except OSError as e:
                await self.disconnect(nowait=True)
                if len(e.args) == 1:
                    err_no, errmsg = "UNKNOWN", e.args[0]
                else:
                    err_no, errmsg = e.args[0], e.args[1]
                raise ConnectionError(f"Error {err_no} while writing to socket. {errmsg}.") from e
            except BaseException:
                # as redis-py: a write cut short leaves the connection in an unknown state
                await self.disconnect(nowait=True)
                raise


def cluster_options(url: str) -> dict[str, Any]:
    """RedisCluster keyword arguments for a seed node's ``redis://`` or ``rediss://`` URL."""
    options: dict[str, Any] = dict(redis.connection.parse_url(url))  # type: ignore[no-untyped-call, unused-ignore]
    options.pop("db", None)  # a cluster has database 0 only
    if options.pop("connection_class", None) is redis.connection.SSLConnection:
        options["ssl"] = True
    return options


def default_retry_for(url: str, cluster: bool) -> float:
    """How long to retry through failures: ``DEFAULT_RETRY_FOR`` where a failover can happen
    (a cluster, a Sentinel URL), 0 for one server (an outage is reported at once)."""
    return DEFAULT_RETRY_FOR if cluster or is_sentinel_url(url) else 0.0


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it wraps) is a failure a failover can cause."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RETRYABLE):
            return True
        seen = seen.__cause__
    return False


def closed_mid_write(exc: BaseException) -> bool:
    """True for the TypeError/AttributeError that redis-py's asyncio connection leaks when it
    writes to a connection the peer just closed (redis-py issue #4287), instead of a
    ConnectionError: the failure is a dropped connection and is as retryable as one."""
    if not isinstance(exc, (AttributeError, TypeError)) or exc.__traceback__ is None:
        return False
    frame = exc.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    origin = frame.tb_frame.f_code.co_filename.replace("\\", "/")
    return origin.endswith(("/redis/asyncio/connection.py", "/asyncio/streams.py")) or (
        "/asyncio/" in origin and "_events.py" in origin
    )


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = the first): 50 ms doubling to
    1 s, with jitter so that many clients do not retry in step."""
    return float(min(1.0, 0.05 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2))
