"""One push delivery: the request a job becomes, signing, sending, and what the answer means.

The request is ``POST <webhook url>`` with the JSON body::

    {"topic": ..., "id": ..., "body": <the job body>, "attempt": 1, "version": 3,
     "token": "...", "run_at": "2026-01-01T00:00:00Z"}

``body`` is the job's body as the HTTP API shows it (:func:`redisched.http.bodies.to_json`):
the JSON value when its bytes are a JSON text, else ``{"$base64": "<standard base64>"}``.
The headers are those of :mod:`redisched.push.signing`. Redirects are not followed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import msgspec

from .. import shapes
from ..http import bodies
from ..models import Job
from ..topic_config import Webhook
from . import signing
from .targets import TargetRefused

USER_AGENT = "redisched-webhook/1"
MAX_REASON_CHARS = 300
ANSWER_CHARS = 1024
"""Characters of a receiver's answer kept as an acked job's result."""
_READ_LIMIT = 64 * 1024
UNTIMED = aiohttp.ClientTimeout()
"""No aiohttp timeout at all: for a caller that times its requests itself (the dispatcher's
:class:`~redisched.push.deadlines.Deadlines`), as aiohttp's own costs ~10% of a delivery."""
_encoder = msgspec.json.Encoder()


class Verdict(enum.StrEnum):
    """What a receiver's answer asks the dispatcher to do with the job."""

    DONE = "done"  # 2xx but 202: ack
    ACCEPTED = "accepted"  # 202: the receiver acks or releases later with the token
    THROTTLED = "throttled"  # 429/503 with Retry-After: release after that delay
    FAILED = "failed"  # anything else: release with backoff (or dead)
    CANCELLED = "cancelled"  # cut short, the job deleted, aborted, replaced or expired: release


class Result(msgspec.Struct, frozen=True, gc=False):
    """The outcome of one request (a Struct: made ~6x faster than a frozen dataclass).

    Attributes:
        verdict: what to do with the job.
        status: the HTTP status, None when no answer came.
        retry_after: seconds asked for by Retry-After (THROTTLED only).
        reason: a short text for the job's last_error (empty on success).
        seconds: how long the request took.
        answer: the first ANSWER_CHARS of the response body (kept as the job's result).
    """

    verdict: Verdict
    status: int | None
    retry_after: float | None
    reason: str
    seconds: float
    answer: str = ""

    def job_result(self) -> bytes:
        """What an acked delivery keeps as the job's result: the status and the answer's start."""
        return _encoder.encode(_Answer(self.status, self.answer))


class _Answer(msgspec.Struct, gc=False):
    status: int | None
    body: str


class _Payload(msgspec.Struct, gc=False):
    """The request body, its fields in this order (a Struct encodes ~2x faster than a dict;
    untracked by the garbage collector, as it holds no containers)."""

    topic: str
    id: str
    body: msgspec.Raw
    attempt: int
    version: int
    token: str | None
    run_at: datetime


def payload(job: Job) -> bytes:
    """The JSON request body for a reserved job (an id that is not UTF-8 as
    :func:`redisched.convert.shown` shows it)."""
    data = _Payload(job.topic, job.id, bodies.to_json(job.body), job.attempts, job.version,
                    job.token, job.run_at)  # fmt: skip
    try:  # shapes.encode, inlined: every delivery comes here
        return _encoder.encode(data)
    except UnicodeEncodeError:
        return _encoder.encode(shapes.readable(data))


_SHA256 = hashlib.sha256()
"""An empty SHA-256 each message id copies: in a busy dispatcher a copy costs ~0.7 µs, a new
hash object ~2.2 µs (OpenSSL sets one up from scratch)."""


def message_id(job: Job) -> str:
    """The ``webhook-id``: the same for every attempt of one job version, header-safe."""
    sha = _SHA256.copy()
    text = f"{job.topic}\0{job.id}\0{job.version}"
    try:
        sha.update(text.encode())
    except UnicodeEncodeError:  # an id stored as bytes that are not UTF-8: those bytes
        sha.update(text.encode("utf-8", "surrogateescape"))
    return f"msg_{sha.hexdigest()[:32]}"


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), or None.

    A number too large for a float is ``inf`` (the dispatcher waits its topic's
    ``backoff_max`` at most); int() would raise past 4,300 digits, and turning a 309-digit
    int into a float raises OverflowError.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def classify(status: int, headers: Any, text: str, seconds: float) -> Result:
    """The verdict on an HTTP answer."""
    if status == 202:
        return Result(Verdict.ACCEPTED, status, None, "", seconds)
    if 200 <= status < 300:
        return Result(Verdict.DONE, status, None, "", seconds, text[:ANSWER_CHARS])
    snippet = " ".join(text.split())[:200]
    reason = f"webhook answered HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in (429, 503):
        delay = retry_after(headers.get("Retry-After"))
        if delay is not None:
            return Result(Verdict.THROTTLED, status, delay, f"{reason} (Retry-After)", seconds)
    if 300 <= status < 400:
        location = str(headers.get("Location", ""))[:200]
        reason = f"webhook answered HTTP {status} redirect to {location!r}, not followed"
    return Result(Verdict.FAILED, status, None, reason, seconds)


def _refused(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return str(seen)
        if isinstance(seen, aiohttp.ClientConnectorError) and (
            isinstance(seen.os_error, TargetRefused) or "target refused" in str(seen.os_error)
        ):
            return str(seen.os_error)
        seen = seen.__cause__
    return None


async def deliver(
    session: aiohttp.ClientSession,
    job: Job,
    webhook: Webhook,
    keys: Sequence[bytes | hmac.HMAC],
    timeout: aiohttp.ClientTimeout | None = None,
) -> Result:
    """POST a job to its webhook and classify the answer. Never raises for network errors.

    ``timeout`` defaults to the webhook's (pass one made once, to save its creation, or
    :data:`UNTIMED` to time the request yourself, then :func:`timed_out` is the result of one
    cut short); ``keys`` are the secrets' HMAC keys, best :func:`~redisched.push.signing.prepared`
    once per topic.
    """
    data = payload(job)
    headers = signing.sign_headers(message_id(job), data, keys)
    headers["content-type"] = "application/json"
    started = time.perf_counter()
    try:
        async with session.post(
            webhook.url,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=timeout or aiohttp.ClientTimeout(total=webhook.timeout),
        ) as response:
            if response.content_length is not None and response.content_length <= _READ_LIMIT:
                raw = await response.read()
            else:
                raw = await response.content.read(1024)
            text = raw.decode("utf-8", "replace")
            return classify(response.status, response.headers, text, time.perf_counter() - started)
    except TimeoutError:
        return timed_out(webhook, time.perf_counter() - started)
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        refused = _refused(exc)
        reason = refused or f"webhook request failed: {type(exc).__name__}: {exc}"
    return Result(
        Verdict.FAILED, None, None, reason[:MAX_REASON_CHARS], time.perf_counter() - started
    )


CANCELLED_REASON = "cancelled: the job was deleted, replaced, expired or aborted during delivery"


def cancelled(seconds: float) -> Result:
    """The result of a request cut short after ``seconds`` because its job was deleted,
    aborted, replaced or expired meanwhile (the dispatcher is told on the wake channel)."""
    return Result(Verdict.CANCELLED, None, None, CANCELLED_REASON, seconds)


def timed_out(webhook: Webhook, seconds: float) -> Result:
    """The result of a request cut short by the webhook's timeout after ``seconds``."""
    return Result(
        Verdict.FAILED, None, None, f"webhook timed out after {webhook.timeout:g} s", seconds
    )
