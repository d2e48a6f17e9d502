"""The settings of ``redisched serve``: one frozen dataclass, each field declared once.

Each field is declared with :func:`redisched.setting.setting`: its default, its
``REDISCHED_*`` environment variable (``Settings.ENV`` lists them), its ``serve`` option and
help, and its parser. Command line options override the environment, which overrides the
defaults.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from . import setting as setting_
from .errors import InvalidArgument
from .keys import topic_problem
from .setting import Spec, choice, integer, number, path, setting

MIN_TOKEN_LENGTH = 16
"""The shortest API token accepted."""

# The settings that several commands share (serve, worker, bridge) are declared here once.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
"""The Redis of the job commands and ``worker`` when no URL is given."""
REDIS_URL = Spec(
    "REDISCHED_REDIS_URL", "Redis to use; none starts an embedded one.", metavar="URL"
)  # fmt: skip


def redis_url_argument(option: object) -> str:
    """What an error about the Redis URL names: ``REDISCHED_REDIS_URL`` when the variable
    alone gave it (the option was not given), else ``--redis-url`` (given, or its default)."""
    return REDIS_URL.env if option is None and setting_.env_value(REDIS_URL) else "--redis-url"


REDIS_CLUSTER = Spec(
    "REDISCHED_REDIS_CLUSTER", "--redis-url is a node of a Redis Cluster.", flag=True
)


def key_prefix(name: str, value: str) -> str:
    """A key prefix, refused (naming the variable or option) as the clients refuse it."""
    prefix = value.strip()
    problem = topic_problem(prefix)  # braces would put every topic under one hash tag
    if problem is not None:
        raise InvalidArgument(name, problem)
    return prefix


PREFIX = Spec("REDISCHED_PREFIX", "The first part of every Redis key name.", parse=key_prefix)
DATA_DIR = Spec(
    "REDISCHED_DATA_DIR", "Embedded Redis data folder.", parse=path, metavar="DIRECTORY",
    default_text="./redisched-data",
)  # fmt: skip

HOST = Spec("REDISCHED_HOST", "Address to listen on.")
PORT = Spec("REDISCHED_PORT", "Port to listen on.", parse=integer())
DURABLE_PUTS = Spec("REDISCHED_DURABLE_PUTS", "Every put waits for a replica (WAIT).", flag=True)
REDIS_PORT = Spec(
    "REDISCHED_REDIS_PORT",
    "Also serve the embedded Redis on this TCP port of 127.0.0.1, open to every local user "
    "(it always listens on <data-dir>/redis.sock, which only its owner may open).",
    parse=integer(), default_text="none",
)  # fmt: skip
APPENDFSYNC = Spec(
    "REDISCHED_APPENDFSYNC", "Embedded Redis AOF fsync policy.",
    parse=choice("everysec", "always"),
)  # fmt: skip
TOKENS = Spec(
    "REDISCHED_API_TOKENS", "API token, at least 16 characters (repeatable; the variable "
    "takes them comma-separated).", option="--token", multiple=True, separator=",",
    metavar="TOKEN", default_text="none",
)  # fmt: skip
INSECURE = Spec("REDISCHED_INSECURE", "Allow a non-loopback --host without tokens.", flag=True)
ALLOW_PRIVATE_WEBHOOKS = Spec(
    "REDISCHED_ALLOW_PRIVATE_WEBHOOKS", "Let webhooks reach private/loopback addresses.",
    flag=True,
)  # fmt: skip
ALLOWED_HOSTS = Spec(
    "REDISCHED_ALLOWED_HOSTS", "A host name the API answers for besides IPs, localhost and "
    "--host (repeatable; * for any). Others get 400 (DNS rebinding).",
    option="--allowed-host", multiple=True, separator=",", metavar="HOST", default_text="none",
)  # fmt: skip
MAX_BODY_SIZE = Spec(
    "REDISCHED_MAX_BODY_SIZE", "The largest stored job body, in bytes.", parse=integer()
)
MAX_REQUEST_SIZE = Spec(
    "REDISCHED_MAX_REQUEST_SIZE", "The largest HTTP request body read, in bytes (413 beyond).",
    parse=integer(),
)  # fmt: skip
REQUEUE_INTERVAL = Spec(
    "REDISCHED_REQUEUE_INTERVAL", "Seconds between sweeps returning timed-out reservations.",
    parse=number(), metavar="SECONDS",
)  # fmt: skip

METRICS_TOPICS = Spec(
    "REDISCHED_METRICS_TOPICS", "Topics with series of their own in /metrics; past it, new "
    "topics add up under topic=\"{other}\" (0: every topic does).", parse=integer(0, 1_000_000),
    metavar="N",
)  # fmt: skip

MAX_WORKERS = 4 * (os.cpu_count() or 1)
"""The most ``serve`` processes accepted: four per core."""
WORKERS = Spec(
    "REDISCHED_WORKERS", "HTTP server processes sharing the port (SO_REUSEPORT); the "
    "background services run in the first only.", parse=integer(1, MAX_WORKERS),
)  # fmt: skip


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
        redis_port: a TCP port on 127.0.0.1 where the embedded redis-server listens too,
            open to every local user; 0 (the default): none, only ``redis.sock`` in
            ``data_dir``, which only its owner may open.
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
        workers: the HTTP server processes of ``serve`` (1..MAX_WORKERS), all on ``port``
            through ``SO_REUSEPORT``; the embedded Redis and the background services (push
            dispatcher, requeue sweep, throughput sampler, bridge) run once, in the first.
        metrics_topics: how many topics get series of their own in ``/metrics``: the most
            jobs at the first scrape past it, then kept; the others add up under
            ``topic="{other}"`` (0: all of them).
    """

    host: str = setting("127.0.0.1", HOST)
    port: int = setting(7171, PORT)
    redis_url: str | None = setting(None, REDIS_URL)
    redis_cluster: bool = setting(False, REDIS_CLUSTER)
    durable_puts: bool = setting(False, DURABLE_PUTS)
    data_dir: Path = setting(Path("redisched-data"), DATA_DIR)
    redis_port: int = setting(0, REDIS_PORT)
    appendfsync: str = setting("everysec", APPENDFSYNC)
    tokens: tuple[str, ...] = setting((), TOKENS)
    insecure: bool = setting(False, INSECURE)
    allow_private_webhooks: bool = setting(False, ALLOW_PRIVATE_WEBHOOKS)
    allowed_hosts: tuple[str, ...] = setting((), ALLOWED_HOSTS)
    prefix: str = setting("redisched", PREFIX)
    max_body_size: int = setting(1 << 20, MAX_BODY_SIZE)
    max_request_size: int = setting(4 << 20, MAX_REQUEST_SIZE)
    requeue_interval: float = setting(1.0, REQUEUE_INTERVAL)
    workers: int = setting(1, WORKERS)
    metrics_topics: int = setting(1000, METRICS_TOPICS)

    ENV: ClassVar[Mapping[str, str]]
    """Each setting's environment variable, by field name (generated from the fields)."""

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``REDISCHED_*`` variables, then ``overrides`` (None values ignored).

        ``REDISCHED_API_TOKENS`` holds tokens separated by commas or spaces; flags take
        1/0, true/false, yes/no or on/off.
        """
        values = dict(overrides)
        if values.get("data_dir") is not None:
            values["data_dir"] = Path(values["data_dir"])
        for name in ("tokens", "allowed_hosts"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return setting_.from_env(cls, environ, values)

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
        prefix_problem = topic_problem(self.prefix)  # as the clients check it
        if prefix_problem is not None:
            raise InvalidArgument("prefix", prefix_problem)
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
            raise InvalidArgument(
                "max_request_size",
                f"must be between max_body_size ({self.max_body_size}) and 1 GiB (it is "
                f"{self.max_request_size}): a request must hold the largest body it may carry",
            )
        if not 0 <= self.metrics_topics <= 1_000_000:
            raise InvalidArgument("metrics_topics", "must be between 0 and 1000000")
        if not 0.01 <= self.requeue_interval <= 3600:
            raise InvalidArgument("requeue_interval", "must be between 0.01 and 3600 seconds")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise InvalidArgument("workers", f"must be between 1 and {MAX_WORKERS}")

    def check_exposure(self) -> None:
        """Refuse a non-loopback ``host`` without tokens unless ``insecure`` is set."""
        if not is_loopback(self.host) and not self.tokens and not self.insecure:
            raise InvalidArgument(
                "host",
                f"{self.host} is reachable from other machines: set API tokens (--token or "
                "REDISCHED_API_TOKENS), or pass --insecure to serve without authentication",
            )


Settings.ENV = MappingProxyType(setting_.env_names(Settings))
