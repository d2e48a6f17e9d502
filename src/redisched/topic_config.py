"""A topic's settings: defaults, requeue backoff, webhook, delivery limits, history retention.

They live in the topic's meta hash, next to the counters the scripts keep, so the scripts
read the defaults (``ttr``, ``max_attempts``, ``backoff_ms``, ``backoff_max_ms``) without a
round trip. Times are stored in milliseconds, the webhook as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from . import validate
from .errors import InvalidArgument
from .push.signing import secret_key

MAX_URL_LENGTH = 2048
MAX_WEBHOOK_TIMEOUT = 300.0

FIELDS = ("ttr", "max_attempts", "backoff_ms", "backoff_max_ms", "webhook", "concurrency",
          "rate", "paused", "durable", "history", "keep_finished", "keep_finished_for_ms",
          "dedup_window_ms", "keep_dead", "keep_dead_for_ms", "keep_events")  # fmt: skip

DEFAULT_KEEP_FINISHED = 10_000
"""Finished jobs whose history a topic keeps (BullMQ keeps every one; 10,000 bounds memory)."""
DEFAULT_KEEP_FINISHED_FOR = 7 * 86_400.0
"""Seconds a finished job's history is kept."""
DEFAULT_KEEP_DEAD = 10_000
"""Dead jobs a topic keeps before the oldest are removed (Sidekiq's dead set: 10,000)."""
DEFAULT_KEEP_DEAD_FOR = 180 * 86_400.0
"""Seconds a dead job is kept before it is removed (Sidekiq: six months)."""
DEFAULT_KEEP_EVENTS = 10_000
"""Entries of the topic's event feed kept (approximately: Redis trims whole stream nodes)."""
MAX_KEEP = 10_000_000
MAX_PARTITIONS = 1024
"""The most partitions a topic may be spread over."""
MAX_KEEP_FOR_MS = 3650 * 86_400_000
MIN_SECRET_KEY_BYTES = 16
"""The shortest HMAC key a new webhook secret may give (a 1-byte key is guessed at once)."""
MIN_RATE = 0.001
"""The lowest ``rate``, deliveries per second (one in 1,000 s)."""
MAX_RATE = 1_000_000
"""The highest ``rate``, deliveries per second."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where a topic's due jobs are POSTed.

    Attributes:
        url: an http(s) URL.
        secrets: signing secrets; the first signs, all are sent during a rotation.
        timeout: seconds to wait for the receiver's answer.
    """

    url: str
    secrets: tuple[str, ...] = ()
    timeout: float = 10.0

    def to_json(self) -> dict[str, Any]:
        """The webhook as JSON-ready data."""
        return {"url": self.url, "secrets": list(self.secrets), "timeout": self.timeout}

    @property
    def shown_url(self) -> str:
        """The URL as the API, the CLI and the dashboard show it: a password in it
        (``user:password@``, sent to the receiver as basic auth) is ``***``, as secrets are
        never shown. A new webhook given with this very URL keeps the stored password."""
        return shown_url(self.url)


def shown_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part (if any) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not (sep and at and colon and password):
        return url
    return f"{scheme}://{user}:***@{host}{rest[end:]}"


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """A topic's settings; None means the built-in default.

    Attributes:
        ttr: default seconds a reservation lasts (built-in: 60).
        max_attempts: default reservations before a job goes dead (built-in: 25,
            :data:`redisched.DEFAULT_MAX_ATTEMPTS`).
        backoff: base seconds of the requeue delay after a timed-out reservation, doubled per
            attempt (built-in: 0, requeue at once).
        backoff_max: the largest requeue delay, seconds (built-in: 3600).
        webhook: where due jobs are pushed, or None for pull only.
        concurrency: webhook deliveries in flight at once, across every server process.
        rate: webhook deliveries per second, across every server process.
        paused: a paused topic leases nothing (set with pause/resume).
        durable: every put waits for a replica (see :mod:`redisched.durable`).
        history: record events and finished jobs (built-in: True); False records nothing.
        keep_finished: finished jobs whose history is kept (built-in: 10,000).
        keep_finished_for: seconds a finished job's history is kept (built-in: 7 days).
        dedup_window: seconds after a job finished during which a create-only put of its id
            answers ``exists`` (built-in: none; a put creates a new version at once). The
            finished records within it are kept past ``keep_finished`` and
            ``keep_finished_for``; with history off there are none, and it does nothing.
        keep_dead: dead jobs kept; the oldest beyond it end with outcome ``dead``
            (built-in: 10,000).
        keep_dead_for: seconds a dead job is kept (built-in: 180 days).
        keep_events: the newest events of the topic's feed that are kept, at least
            (built-in: 10,000; 0 turns the feed off). The feed is trimmed in whole stream nodes
            (up to 100 entries), so it holds a few more.
        partitions: how many partitions the topic is spread over (None: not partitioned);
            kept in the partitions hash (and marked in the topic's meta hash, where the
            put and schedule scripts read it): :mod:`redisched.partition_setting` sets it,
            ``Client.config`` and ``configure`` read it.
    """

    ttr: float | None = None
    max_attempts: int | None = None
    backoff: float | None = None
    backoff_max: float | None = None
    webhook: Webhook | None = None
    concurrency: int | None = None
    rate: float | None = None
    paused: bool = False
    durable: bool = False
    history: bool = True
    keep_finished: int | None = None
    keep_finished_for: float | None = None
    dedup_window: float | None = None
    keep_dead: int | None = None
    keep_dead_for: float | None = None
    keep_events: int | None = None
    partitions: int | None = None


def partitions_count(value: object) -> int:
    """A partition count: an integer from 1 to :data:`MAX_PARTITIONS`."""
    return validate.integer(value, "partitions", 1, MAX_PARTITIONS)


def as_changes(config: TopicConfig) -> dict[str, object]:
    """The settings of ``config`` as ``configure`` keywords (to copy them to another topic)."""
    return {
        "ttr": config.ttr, "max_attempts": config.max_attempts, "backoff": config.backoff,
        "backoff_max": config.backoff_max, "webhook": config.webhook,
        "concurrency": config.concurrency, "rate": config.rate, "durable": config.durable,
        "history": config.history, "keep_finished": config.keep_finished,
        "keep_finished_for": config.keep_finished_for, "dedup_window": config.dedup_window,
        "keep_dead": config.keep_dead, "keep_dead_for": config.keep_dead_for,
        "keep_events": config.keep_events,
    }  # fmt: skip


def check_webhook_url(url: str, argument: str = "webhook.url") -> SplitResult:
    """The parts of a webhook URL that a request can reach as it is written.

    Refused: a scheme other than http(s), no host, a malformed host (``http://[::1``), a port
    that is not a number from 1 to 65535, and whitespace or control characters (the HTTP
    client drops tabs and newlines silently, so the URL reached would not be the one stored).

    Raises:
        InvalidArgument: naming ``argument``, with the reason.
    """
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidArgument(argument, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # an unclosed [ of an IPv6 host
        raise InvalidArgument(argument, f"is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidArgument(argument, "must be an http:// or https:// URL with a host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidArgument(argument, "must have a port from 1 to 65535 (or none)")
    return parts


def unusable_secret(secret: str) -> str | None:
    """Why ``secret`` signs nothing, or None: a ``whsec_`` secret must be followed by base64
    (the Standard Webhooks form, whose key is the decoded bytes)."""
    try:
        key = secret_key(secret)
    except ValueError:
        key = b""
    if not key:
        return "must be whsec_ followed by base64 (Standard Webhooks), or not start with whsec_"
    return None


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is refused as a new webhook secret, or None: it must sign (see
    :func:`unusable_secret`) with a key of at least :data:`MIN_SECRET_KEY_BYTES` bytes (the
    base64-decoded rest of a ``whsec_`` secret, else its UTF-8 bytes)."""
    problem = unusable_secret(secret)
    if problem is None and len(secret_key(secret)) < MIN_SECRET_KEY_BYTES:
        return (
            f"must give a key of at least {MIN_SECRET_KEY_BYTES} bytes (whsec_ and the base64 "
            f"of {MIN_SECRET_KEY_BYTES} bytes or more, or {MIN_SECRET_KEY_BYTES}+ UTF-8 bytes)"
        )
    return problem


def _encodable(text: str) -> bool:
    """True when ``text`` has a UTF-8 form (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_webhook(value: object, argument: str = "webhook") -> Webhook | None:
    """A Webhook, a mapping ``{"url", "secrets", "timeout"}``, or None."""
    if value is None or isinstance(value, Webhook):
        data: Mapping[str, Any] = {} if value is None else value.to_json()
        if value is None:
            return None
    elif isinstance(value, Mapping):
        data = value
    else:
        raise InvalidArgument(argument, "must be an object with url, secrets and timeout")
    unknown = set(data) - {"url", "secrets", "timeout"}
    if unknown:
        raise InvalidArgument(f"{argument}.{sorted(unknown)[0]}", "is not a webhook field")
    url = data.get("url")
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"{argument}.url", f"must be a URL of at most {MAX_URL_LENGTH} chars")
    if not _encodable(url):
        raise InvalidArgument(f"{argument}.url", "must be valid Unicode (no lone surrogates)")
    check_webhook_url(url, f"{argument}.url")
    secrets = data.get("secrets", ())
    if isinstance(secrets, str) or not isinstance(secrets, Sequence):
        raise InvalidArgument(f"{argument}.secrets", "must be a list of strings")
    if len(secrets) > 2 or not all(isinstance(s, str) and 8 <= len(s) <= 512 for s in secrets):
        raise InvalidArgument(
            f"{argument}.secrets", "must hold at most 2 secrets of 8 to 512 characters"
        )
    for index, secret in enumerate(secrets):
        if not _encodable(secret):  # a secret is signed with as UTF-8
            raise InvalidArgument(
                f"{argument}.secrets[{index}]", "must be valid Unicode (no lone surrogates)"
            )
        problem = secret_problem(secret)
        if problem is not None:
            raise InvalidArgument(f"{argument}.secrets[{index}]", problem)
    timeout = data.get("timeout", 10.0)
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not 0 < timeout <= MAX_WEBHOOK_TIMEOUT  # first: isfinite(10**400) overflows
        or not math.isfinite(timeout)
    ):
        raise InvalidArgument(f"{argument}.timeout", f"must be 0 to {MAX_WEBHOOK_TIMEOUT} seconds")
    return Webhook(url, tuple(secrets), float(timeout))


def completed_webhook(given: Mapping[str, Any], current: Webhook | None) -> dict[str, Any]:
    """A new webhook's fields ``given`` as a client sends them, completed from the topic's
    ``current`` webhook: its secrets are kept when ``secrets`` is absent (they are never shown,
    so they cannot be sent back), and its URL when the URL given is the one shown (its password
    ``***``), so that sending back what was shown changes neither."""
    completed = dict(given)
    if current is not None:
        completed.setdefault("secrets", list(current.secrets))
        if completed.get("url") == current.shown_url:
            completed["url"] = current.url
    return completed


def encode_changes(changes: Mapping[str, object]) -> tuple[dict[str, str], list[str]]:
    """Validate config changes; return (fields to set, fields to delete) of the meta hash.

    A value of None restores the built-in default.
    """
    to_set: dict[str, str] = {}
    to_delete: list[str] = []
    for name, value in changes.items():
        if name == "paused":
            raise InvalidArgument("paused", "use pause() and resume(), which wake workers")
        if name == "partitions":
            raise InvalidArgument(
                "partitions", "is set with redisched.partition_setting.configure (or the "
                "HTTP API, the CLI's config command, PartitionedTopic.declare)",
            )  # fmt: skip
        field_name, encoded = _encode(name, value)
        if encoded is None:
            to_delete.append(field_name)
        else:
            to_set[field_name] = encoded
    check_dedup_needs_history(to_set, to_delete)
    return to_set, to_delete


DEDUP_FIELDS = ("history", "dedup_window_ms")
"""The meta fields :func:`check_dedup_needs_history` reads before a change that sets one."""


def check_dedup_needs_history(
    to_set: Mapping[str, str],
    to_delete: Sequence[str],
    stored: Sequence[bytes | None] = (None, None),
) -> None:
    """Refuse a change that leaves a topic with history off and a dedup window: with history
    off it keeps no finished job to remember an id by, and the window would silently do
    nothing. ``stored``: the :data:`DEDUP_FIELDS` before the change.

    Raises:
        InvalidArgument: naming the setting the change sets (``dedup_window`` when both).
    """
    history, window = (None if value is None else value.decode() for value in stored)
    history = None if "history" in to_delete else to_set.get("history", history)
    window = None if "dedup_window_ms" in to_delete else to_set.get("dedup_window_ms", window)
    if history != "0" or window in (None, "0"):
        return
    if "dedup_window_ms" in to_set:
        raise InvalidArgument(
            "dedup_window", "needs history: a topic with history off keeps no finished job to "
            "remember its id by",
        )  # fmt: skip
    raise InvalidArgument(
        "history", "cannot be off while the topic has a dedup_window, which remembers ids by "
        "their finished jobs: set dedup_window to None in the same call",
    )  # fmt: skip


def _encode(name: str, value: object) -> tuple[str, str | None]:
    if name == "ttr":
        return "ttr", None if value is None else str(validate.ttr_ms(value, "ttr"))
    if name == "max_attempts":
        return "max_attempts", None if value is None else str(
            validate.integer(value, "max_attempts", 1, 2**31 - 1)
        )
    if name in ("backoff", "backoff_max"):
        ms = None if value is None else validate.duration_ms(value, name, maximum_ms=86_400_000)
        return f"{name}_ms", None if ms is None else str(ms)
    if name == "webhook":
        webhook = validate_webhook(value)
        return "webhook", None if webhook is None else json.dumps(webhook.to_json())
    if name == "concurrency":
        return "concurrency", None if value is None else str(
            validate.integer(value, "concurrency", 1, 10_000)
        )
    if name == "rate":
        if value is None:
            return "rate", None
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not MIN_RATE <= value <= MAX_RATE  # first: isfinite(10**400) overflows
            or not math.isfinite(value)
        ):
            raise InvalidArgument(
                "rate", f"must be a number of deliveries per second, {MIN_RATE} to 1e6"
            )
        return "rate", repr(float(value))
    if name == "durable":
        if value is not None and not isinstance(value, bool):
            raise InvalidArgument("durable", f"must be a bool, not {type(value).__name__}")
        return "durable", "1" if value else None
    if name == "history":
        if value is not None and not isinstance(value, bool):
            raise InvalidArgument("history", f"must be a bool, not {type(value).__name__}")
        return "history", "0" if value is False else None
    if name in ("keep_finished", "keep_dead", "keep_events"):
        return name, None if value is None else str(validate.integer(value, name, 0, MAX_KEEP))
    if name in ("keep_finished_for", "keep_dead_for", "dedup_window"):
        if value is None:
            return f"{name}_ms", None
        return f"{name}_ms", str(validate.duration_ms(value, name, maximum_ms=MAX_KEEP_FOR_MS))
    raise InvalidArgument(name, "is not a topic setting")


def decode(values: Sequence[bytes | None]) -> TopicConfig:
    """Read the meta hash fields of FIELDS, in that order, into a TopicConfig."""
    raw = dict(zip(FIELDS, (None if v is None else v.decode() for v in values), strict=True))

    def number(name: str) -> float | None:
        text = raw[name]
        return None if text is None else float(text)

    webhook = None
    if raw["webhook"]:
        data = json.loads(raw["webhook"])
        webhook = Webhook(data["url"], tuple(data.get("secrets", ())), data.get("timeout", 10.0))
    ttr, backoff, backoff_max = number("ttr"), number("backoff_ms"), number("backoff_max_ms")
    return TopicConfig(
        ttr=None if ttr is None else ttr / 1000,
        max_attempts=None if raw["max_attempts"] is None else int(raw["max_attempts"]),
        backoff=None if backoff is None else backoff / 1000,
        backoff_max=None if backoff_max is None else backoff_max / 1000,
        webhook=webhook,
        concurrency=None if raw["concurrency"] is None else int(raw["concurrency"]),
        rate=number("rate"),
        paused=raw["paused"] == "1",
        durable=raw["durable"] == "1",
        history=raw["history"] != "0",
        keep_finished=_count(raw["keep_finished"]),
        keep_finished_for=_seconds(raw["keep_finished_for_ms"]),
        dedup_window=_seconds(raw["dedup_window_ms"]),
        keep_dead=_count(raw["keep_dead"]),
        keep_dead_for=_seconds(raw["keep_dead_for_ms"]),
        keep_events=_count(raw["keep_events"]),
    )


def _count(text: str | None) -> int | None:
    return None if text is None else int(text)


def _seconds(text: str | None) -> float | None:
    return None if text is None else int(text) / 1000
