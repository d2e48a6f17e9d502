"""The settings of ``redisched worker``, each declared once (default, variable, option, help)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import setting as setting_
from .config import DEFAULT_URL, PREFIX, REDIS_CLUSTER, REDIS_URL
from .setting import Spec, integer, number, path, setting
from .validate import MAX_DELAY_MS, MAX_TTR_MS

LONGEST = MAX_DELAY_MS / 1000
"""The longest grace or backoff in seconds (a century), as the Worker checks it: bounded
here, an error names the option given rather than the Worker's argument."""

TOPIC = Spec(
    "REDISCHED_TOPIC", "A topic to serve (repeat for several; the variable takes them "
    "space-separated).", option="--topic", short="-t", multiple=True, metavar="TOPIC",
)  # fmt: skip
CONCURRENCY = Spec(
    "REDISCHED_CONCURRENCY", "Handlers running at once.", short="-c",
    parse=integer(1, 10_000),
)  # fmt: skip
TTR = Spec(
    "REDISCHED_TTR", "Seconds each lease lasts.", parse=number(0.001, MAX_TTR_MS / 1000),
    metavar="SECONDS", default_text="each job's ttr",
)  # fmt: skip
GRACE = Spec(
    "REDISCHED_GRACE", "Seconds running handlers get to finish on SIGTERM.",
    parse=number(0, LONGEST),
    metavar="SECONDS",
)  # fmt: skip
BACKOFF = Spec(
    "REDISCHED_BACKOFF", "Seconds before the first retry, doubled per attempt.",
    parse=number(0, LONGEST), metavar="SECONDS", default_text="the topic's, else 1",
)  # fmt: skip
BACKOFF_MAX = Spec(
    "REDISCHED_BACKOFF_MAX", "The longest retry delay, seconds.",
    parse=number(0, LONGEST),
    metavar="SECONDS", default_text="the topic's, else 3600",
)  # fmt: skip
APP_DIR = Spec(
    "REDISCHED_APP_DIR", "Folder added to the import path before loading HANDLER.",
    parse=path, metavar="DIRECTORY",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What ``redisched worker`` runs with besides its handler.

    Attributes:
        topics: the topics to serve.
        redis_url: the Redis to work on.
        redis_cluster: ``redis_url`` is a node of a Redis Cluster.
        prefix: the first part of every Redis key name.
        concurrency: handlers running at once.
        ttr: seconds each lease lasts (None: each job's own).
        grace: seconds running handlers get to finish on SIGTERM.
        backoff: seconds before the first retry (None: the topic's, else 1).
        backoff_max: the longest retry delay (None: the topic's, else 3600).
        app_dir: the folder added to the import path before loading the handler.
    """

    topics: tuple[str, ...] = setting((), TOPIC)
    redis_url: str = setting(DEFAULT_URL, Spec(REDIS_URL.env, "Redis to work on.", metavar="URL"))
    redis_cluster: bool = setting(False, REDIS_CLUSTER)
    prefix: str = setting("redisched", PREFIX)
    concurrency: int = setting(50, CONCURRENCY)
    ttr: float | None = setting(None, TTR)
    grace: float = setting(30.0, GRACE)
    backoff: float | None = setting(None, BACKOFF)
    backoff_max: float | None = setting(None, BACKOFF_MAX)
    app_dir: Path = setting(Path("."), APP_DIR)

    def __post_init__(self) -> None:
        setting_.check_numbers(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        """Settings from ``REDISCHED_*`` variables in ``environ`` (default: the process's),
        then ``overrides`` (None values ignored)."""
        if overrides.get("topics") is not None:
            overrides["topics"] = tuple(overrides["topics"])
        return setting_.from_env(cls, environ, overrides)
