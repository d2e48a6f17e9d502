"""The settings of ``redisched serve``: one frozen dataclass, each field also from the environment.

Every field has a ``REDISCHED_*`` environment variable (``Settings.ENV`` lists them); command
line options override the environment, which overrides the defaults.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from . import validate
from .errors import InvalidArgument

MIN_TOKEN_LENGTH = 16
"""The shortest API token accepted."""
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgument(name, f"must be one of 1/0, true/false, yes/no, on/off, not {text!r}")


def _number(name: str, text: str) -> float:
    return validate.number_text(text.strip(), name)


def _integer(name: str, text: str) -> int:
    return validate.integer_text(text.strip(), name)


def _tokens(name: str, text: str) -> tuple[str, ...]:
    return tuple(t for t in (part.strip() for part in text.replace(",", " ").split()) if t)


def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine only (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``redisched serve`` and ``create_app`` need to know.

    Attributes:
        host: the address to listen on.
        port: the TCP port to listen on.
        redis_url: the Redis to use; None starts an embedded redis-server. A
            ``redis+sentinel://host:port[,host:port]/service`` URL follows a Sentinel-watched
            primary.
        redis_cluster: ``redis_url`` is a node of a Redis Cluster.
        durable_puts: every put waits for a replica (``WAIT``) unless a call opts out.
        data_dir: where the embedded redis-server keeps its append-only file.
        redis_port: the embedded redis-server's TCP port on 127.0.0.1; 0 picks a free one
            (it listens on ``redis.sock`` in ``data_dir`` as well).
        appendfsync: ``everysec`` or ``always`` (embedded server only).
        tokens: API tokens (each at least MIN_TOKEN_LENGTH characters); when any is set,
            every route but /healthz needs one.
        insecure: allow a non-loopback ``host`` without tokens.
        allow_private_webhooks: let webhooks target private, loopback and link-local addresses.
        allowed_hosts: host names the API answers for besides IP addresses, ``localhost`` and
            ``host`` (a ``Host`` header naming any other is refused: DNS rebinding); ``*``
            answers any.
        prefix: the first part of every Redis key name.
        max_body_size: the largest stored job body, in bytes.
        max_request_size: the largest HTTP request body read, in bytes (413 beyond).
        requeue_interval: seconds between sweeps returning timed-out reservations.
    """

    host: str = "127.0.0.1"
    port: int = 7171
    redis_url: str | None = None
    redis_cluster: bool = False
    durable_puts: bool = False
    data_dir: Path = field(default_factory=lambda: Path("redisched-data"))
    redis_port: int = 0
    appendfsync: str = "everysec"
    tokens: tuple[str, ...] = ()
    insecure: bool = False
    allow_private_webhooks: bool = False
    allowed_hosts: tuple[str, ...] = ()
    prefix: str = "redisched"
    max_body_size: int = 1 << 20
    max_request_size: int = 4 << 20
    requeue_interval: float = 1.0

    ENV: ClassVar[Mapping[str, str]] = {
        "host": "REDISCHED_HOST",
        "port": "REDISCHED_PORT",
        "redis_url": "REDISCHED_REDIS_URL",
        "redis_cluster": "REDISCHED_REDIS_CLUSTER",
        "durable_puts": "REDISCHED_DURABLE_PUTS",
        "data_dir": "REDISCHED_DATA_DIR",
        "redis_port": "REDISCHED_REDIS_PORT",
        "appendfsync": "REDISCHED_APPENDFSYNC",
        "tokens": "REDISCHED_API_TOKENS",
        "insecure": "REDISCHED_INSECURE",
        "allow_private_webhooks": "REDISCHED_ALLOW_PRIVATE_WEBHOOKS",
        "allowed_hosts": "REDISCHED_ALLOWED_HOSTS",
        "prefix": "REDISCHED_PREFIX",
        "max_body_size": "REDISCHED_MAX_BODY_SIZE",
        "max_request_size": "REDISCHED_MAX_REQUEST_SIZE",
        "requeue_interval": "REDISCHED_REQUEUE_INTERVAL",
    }

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``REDISCHED_*`` variables, then ``overrides`` (None values ignored).

        ``REDISCHED_API_TOKENS`` holds tokens separated by commas or spaces; flags take
        1/0, true/false, yes/no or on/off.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in cls.ENV.items():
            text = env.get(variable)
            if text is not None and text.strip():
                values[name] = _PARSERS[name](variable, text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InvalidArgument(sorted(unknown)[0], "is not a setting")
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        for name in ("tokens", "allowed_hosts"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def check(self) -> None:
        """Raise InvalidArgument naming the first setting that is out of range."""
        if not 0 <= self.port <= 65535:
            raise InvalidArgument("port", "must be between 0 and 65535")
        if not 0 <= self.redis_port <= 65535:
            raise InvalidArgument("redis_port", "must be between 0 and 65535")
        if self.redis_cluster and not self.redis_url:
            raise InvalidArgument("redis_cluster", "needs the URL of a cluster node (redis_url)")
        if self.appendfsync not in ("everysec", "always"):
            raise InvalidArgument("appendfsync", "must be 'everysec' or 'always'")
        if any(not t or len(t) > 4096 or not t.isprintable() for t in self.tokens):
            raise InvalidArgument("tokens", "each token must be 1 to 4096 printable characters")
        if any(len(t) < MIN_TOKEN_LENGTH for t in self.tokens):
            raise InvalidArgument(
                "tokens",
                f"each token must be at least {MIN_TOKEN_LENGTH} characters, so that it cannot "
                "be guessed (try: python3 -c 'import secrets; print(secrets.token_urlsafe())')",
            )
        if not 1024 <= self.max_body_size <= 512 << 20:
            raise InvalidArgument("max_body_size", "must be between 1 KiB and 512 MiB")
        if not self.max_body_size <= self.max_request_size <= 1 << 30:
            raise InvalidArgument("max_request_size", "must be between max_body_size and 1 GiB")
        if not 0.01 <= self.requeue_interval <= 3600:
            raise InvalidArgument("requeue_interval", "must be between 0.01 and 3600 seconds")

    def check_exposure(self) -> None:
        """Refuse a non-loopback ``host`` without tokens unless ``insecure`` is set."""
        if not is_loopback(self.host) and not self.tokens and not self.insecure:
            raise InvalidArgument(
                "host",
                f"{self.host} is reachable from other machines: set API tokens (--token or "
                "REDISCHED_API_TOKENS), or pass --insecure to serve without authentication",
            )


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "host": lambda _n, t: t.strip(),
    "port": _integer,
    "redis_url": lambda _n, t: t.strip(),
    "redis_cluster": _flag,
    "durable_puts": _flag,
    "data_dir": lambda _n, t: Path(t),
    "redis_port": _integer,
    "appendfsync": lambda _n, t: t.strip(),
    "tokens": _tokens,
    "insecure": _flag,
    "allow_private_webhooks": _flag,
    "allowed_hosts": _tokens,
    "prefix": lambda _n, t: t.strip(),
    "max_body_size": _integer,
    "max_request_size": _integer,
    "requeue_interval": _number,
}
