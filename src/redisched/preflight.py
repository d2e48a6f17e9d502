"""Check a Redis URL once at start, so a bad one is a one-line error and not a traceback.

``serve``, ``worker`` and ``bridge`` call :func:`check_redis` before they begin: a malformed
URL or a Redis that does not answer ends the command at once with a message naming the
option and the cause. Outages after a successful start are ridden out by the clients.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from .connect import check_database, cluster_options, is_sentinel_url, parse_sentinel_url
from .errors import BackendError, InvalidArgument

CONNECT_TIMEOUT = 5.0
"""Seconds the check waits for Redis to answer."""


_USERINFO = re.compile(r"^([^:/?#]*://)(.*)@", re.DOTALL)
_PASSWORD_PARAM = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)


def redacted(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, fit for a log or an error.

    A URL the parser reads only in part (a ``#``, ``/`` or ``?`` in the password, a malformed
    host) has everything between ``://`` and its last ``@`` hidden instead; a ``password=``
    query parameter (redis-py reads one) is hidden too.
    """
    url = _PASSWORD_PARAM.sub(r"\1***", url)
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return _USERINFO.sub(r"\1***@", url)
    if url.count("@") != parts.netloc.count("@"):  # an '@' the netloc did not get
        return _USERINFO.sub(r"\1***@", url)
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _connection(url: str, cluster: bool) -> Any:
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": CONNECT_TIMEOUT,
    }
    if is_sentinel_url(url):
        address = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(list(address.sentinels), **timeouts)  # type: ignore[no-untyped-call, unused-ignore]
        return sentinel.master_for(address.service, **address.connection_options(), **timeouts)  # type: ignore[no-untyped-call, unused-ignore]
    check_database(url, cluster=cluster)
    if cluster:
        return redis.RedisCluster(**cluster_options(url), **timeouts)
    return redis.Redis.from_url(url, **timeouts)


def _cause(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")


def safe_cause(url: str, cause: str) -> str:
    """``cause`` (a parser's or a connection's words about ``url``), or a hint instead when
    it quotes any piece of the URL's user info or password (a parser that misreads a password
    with a ``/`` in it names a piece of it as the port)."""
    found = _USERINFO.match(url)
    secret = (found.group(2) if found else "") + " ".join(
        value for _, value in _PASSWORD_PARAM.findall(url)
    )
    pieces = [p for p in re.split(r"[:/?#@\[\]\s]+", secret) if len(p) >= 3]
    if any(piece in cause for piece in pieces):
        return "check its form (a '#', '/', '?', '@' or ':' in a password must be percent-encoded)"
    return cause


def not_a_redis_url(url: str, cause: str, argument: str = "--redis-url") -> InvalidArgument:
    """The error of a ``--redis-url`` (or whatever ``argument`` names) that is no Redis URL:
    the URL without its password, and ``cause`` unless it quotes a piece of the password (see
    :func:`safe_cause`)."""
    shown = repr(redacted(url))
    return InvalidArgument(argument, f"{shown} is not a Redis URL: {safe_cause(url, cause)}")


def unreachable(url: str, cause: str, argument: str = "--redis-url") -> BackendError:
    """The error of a ``--redis-url`` (or ``argument``) whose Redis did not answer (password
    hidden as above)."""
    shown = repr(redacted(url))
    return BackendError(f"{argument}: cannot reach Redis at {shown}: {safe_cause(url, cause)}")


def check_redis(url: str, *, cluster: bool = False, argument: str = "--redis-url") -> None:
    """Connect to ``url`` once and PING it; ``argument`` names where the URL came from (the
    option, or ``REDISCHED_REDIS_URL`` when only the variable gave it).

    Raises:
        InvalidArgument: ``url`` is not a Redis URL (its ``argument`` is ``argument``).
        BackendError: Redis did not answer; the message names ``argument``, the URL (without
            its password) and the cause.
    """
    try:
        connection = _connection(url, cluster)
    except InvalidArgument as exc:
        raise not_a_redis_url(url, exc.message, argument) from exc
    except (ValueError, TypeError) as exc:
        raise not_a_redis_url(url, _cause(exc), argument) from exc
    except (redis.RedisError, RedisClusterException) as exc:  # a cluster connects at once
        raise unreachable(url, _cause(exc), argument) from exc
    try:
        if isinstance(connection, redis.RedisCluster):  # the node that answered: a PING of
            # every node failed for one primary down, though its other topics can be served
            connection.ping(target_nodes=connection.get_default_node())  # type: ignore[no-untyped-call]
        else:
            connection.ping()
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        raise unreachable(url, _cause(exc), argument) from exc
    except (ValueError, TypeError) as exc:
        raise not_a_redis_url(url, _cause(exc), argument) from exc
    finally:
        connection.close()
