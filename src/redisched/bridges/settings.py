"""The AMQP bridge's settings, each declared once (default, variable, option, help, parser).

Kept apart from :mod:`redisched.bridges.amqp` so that ``serve --help`` and
``bridge amqp --help`` need no broker library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .. import setting as setting_
from ..errors import InvalidArgument
from ..setting import Spec, integer, number, setting

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

AMQP_URL = Spec("REDISCHED_AMQP_URL", "RabbitMQ to consume from.", metavar="URL")
QUEUE = Spec(
    "REDISCHED_AMQP_QUEUE", "Queue of put/delete messages, declared durable.", option="--queue"
)
AMQP_QUEUE_OPTION = replace(QUEUE, option="--amqp-queue")
"""The queue as ``serve`` names its option."""
DEAD_LETTER_QUEUE = Spec(
    "REDISCHED_AMQP_DEAD_LETTER_QUEUE", "Where malformed messages go.", default_text="<queue>.dead"
)
PREFETCH = Spec(
    "REDISCHED_AMQP_PREFETCH", "Unacked messages held at most.", parse=integer(1, 65_535)
)
CONCURRENCY = Spec(
    "REDISCHED_AMQP_CONCURRENCY", "Batches committed at once.", parse=integer(1, 1000)
)
MAX_BATCH = Spec(
    "REDISCHED_AMQP_MAX_BATCH", "Messages one batch takes at most.", parse=integer(1, 10_000)
)
RETRY_INITIAL = Spec(
    "REDISCHED_AMQP_RETRY_INITIAL", "First backoff, in seconds, while Redis is unreachable.",
    parse=number(0), metavar="SECONDS",
)  # fmt: skip
RETRY_MAX = Spec(
    "REDISCHED_AMQP_RETRY_MAX", "Largest backoff, in seconds, while Redis is unreachable.",
    parse=number(0), metavar="SECONDS",
)  # fmt: skip
SHUTDOWN_GRACE = Spec(
    "REDISCHED_AMQP_SHUTDOWN_GRACE", "Seconds in-flight batches get to finish on stop.",
    parse=number(0), metavar="SECONDS",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """How the bridge connects and consumes.

    Attributes:
        amqp_url: the broker, ``amqp://user:password@host:port/vhost``.
        queue: the queue to consume (declared durable).
        dead_letter_queue: where malformed messages go (declared durable); None means
            ``<queue>.dead``.
        prefetch: unacked messages the broker hands this bridge at most.
        concurrency: batches processed at once.
        max_batch: messages one worker takes at once.
        retry_initial: first backoff, in seconds, while Redis is unreachable.
        retry_max: largest backoff, in seconds.
        shutdown_grace: seconds ``stop`` lets in-flight batches finish before returning
            them to the queue.
    """

    amqp_url: str = setting(DEFAULT_AMQP_URL, AMQP_URL)
    queue: str = setting("redisched", QUEUE)
    dead_letter_queue: str | None = setting(None, DEAD_LETTER_QUEUE)
    prefetch: int = setting(1000, PREFETCH)
    concurrency: int = setting(4, CONCURRENCY)
    max_batch: int = setting(500, MAX_BATCH)
    retry_initial: float = setting(0.1, RETRY_INITIAL)
    retry_max: float = setting(5.0, RETRY_MAX)
    shutdown_grace: float = setting(10.0, SHUTDOWN_GRACE)

    def __post_init__(self) -> None:
        _check_amqp_url(self.amqp_url)
        if not self.queue:
            raise InvalidArgument("queue", "must not be empty")
        if self.dead_letter_queue == self.queue:
            raise InvalidArgument("dead_letter_queue", "must differ from the queue")
        setting_.check_numbers(self)

    @property
    def dead_letters(self) -> str:
        """The dead-letter queue's name."""
        return self.dead_letter_queue or f"{self.queue}.dead"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BridgeSettings:
        """Settings from ``REDISCHED_AMQP_*`` variables in ``environ`` (default: the
        process's); keyword arguments (but None) win."""
        return setting_.from_env(cls, environ, overrides)


def _check_amqp_url(url: str) -> None:
    """Refuse a broker URL aio-pika cannot use: one that is no ``amqp://`` or ``amqps://`` URL
    with a host made the bridge retry it for ever, deaf to SIGTERM. yarl comes with aio-pika
    (the amqp extra): without it there is no bridge to run, and ``redisched --help`` (this
    module names the options) must not need it."""
    try:
        import yarl
    except ImportError:
        return
    try:
        parsed = yarl.URL(url)
        usable = parsed.scheme in ("amqp", "amqps") and bool(parsed.host) and parsed.port != 0
    except (ValueError, TypeError):
        usable = False
    if not usable:
        raise InvalidArgument(
            "amqp_url", "must be an amqp:// or amqps:// URL with a host, as "
            "amqp://user:password@host:5672/vhost",
        )  # fmt: skip


__all__ = ["DEFAULT_AMQP_URL", "BridgeSettings"]
