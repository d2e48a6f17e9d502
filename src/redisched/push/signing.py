"""Webhook signatures in the Standard Webhooks format (https://www.standardwebhooks.com).

Every push request carries three headers:

- ``webhook-id``: the message id, the same for every attempt of one job version (use it to
  drop duplicates);
- ``webhook-timestamp``: integer epoch seconds when the request was signed;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``f"{id}.{timestamp}.{body}"``, one
  per secret, separated by spaces.

A secret is either ``whsec_<base64>`` (the Standard Webhooks form: the key is the decoded
bytes) or any other string (the key is its UTF-8 bytes). A topic keeps up to two secrets:
during a rotation both sign every request, so a receiver that knows either one accepts it.

A receiver verifies a request in a few lines::

    from redisched.push.signing import verify, InvalidSignature

    try:
        verify(raw_body, request.headers, ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    except InvalidSignature:
        return 401

Only the standard library is used (``hmac``, ``base64``), so receivers can copy
this module as it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

try:
    from ..errors import RedischedError
except ImportError:  # this file copied out of the package, as the receivers may do
    RedischedError = Exception  # type: ignore[misc,assignment]

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300.0


class InvalidSignature(RedischedError):
    """A webhook request's signature headers are missing, malformed, stale or do not match."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: base64-decoded after ``whsec_``, else the UTF-8 bytes.

    Raises:
        ValueError: a ``whsec_`` secret whose rest is not valid base64.
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error as exc:
            raise ValueError("a whsec_ secret must be followed by base64") from exc
    return secret.encode("utf-8")


def prepared(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 object keyed with ``key``, to sign many messages: each signature then
    copies it instead of setting up the key again (about 30% less time per signature)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def signature(key: bytes | hmac.HMAC, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of a message under one key (raw or :func:`prepared`)."""
    return _signature(key, f"{msg_id}.{timestamp}.".encode(), body)


def _signature(key: bytes | hmac.HMAC, prefix: bytes, body: bytes) -> str:
    """:func:`signature` of ``prefix + body``; a prepared key takes the two parts in turn
    (the body is not copied into one message first)."""
    if isinstance(key, bytes):
        digest = hmac.digest(key, prefix + body, "sha256")  # one C call, unlike hmac.new()
    else:
        mac = key.copy()
        mac.update(prefix)
        mac.update(body)
        digest = mac.digest()
    return "v1," + binascii.b2a_base64(digest, newline=False).decode("ascii")


def sign_headers(
    msg_id: str,
    body: bytes,
    keys: Sequence[bytes | hmac.HMAC],
    *,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The Standard Webhooks headers of a request (no ``webhook-signature`` without keys).

    Args:
        msg_id: the message id (ASCII, no spaces).
        body: the exact request body.
        keys: HMAC keys (see :func:`secret_key`), raw or :func:`prepared`; each adds one
            signature.
        timestamp: epoch seconds; default now.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    stamp = str(ts)
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp}
    if keys:
        prefix = f"{msg_id}.{stamp}.".encode()
        headers["webhook-signature"] = " ".join([_signature(k, prefix, body) for k in keys])
    return headers


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a received request; return None if any signature matches any secret.

    Args:
        body: the raw request body, exactly as received.
        headers: the request headers (any mapping; names are matched case-insensitively).
        secrets: the secret, or the secrets accepted during a rotation.
        tolerance: the largest accepted difference between the timestamp and now, seconds
            (refuses replays of old requests).
        now: epoch seconds to compare against; default the current time.

    Raises:
        InvalidSignature: with the reason.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    given = lowered.get("webhook-signature")
    if not msg_id or not stamp or not given:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    # not int(): it also takes "1_0" and other scripts' digits
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 18):
        raise InvalidSignature("webhook-timestamp is not an integer")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("webhook-timestamp is too far from now (replayed or skewed)")
    try:
        candidates = [p.encode() for p in given.split(" ") if p.startswith("v1,")]
        for secret in [secrets] if isinstance(secrets, str) else secrets:
            expected = signature(secret_key(secret), msg_id, timestamp, body).encode()
            if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
                return
    except UnicodeEncodeError:  # a header a str caller built with lone surrogates
        raise InvalidSignature("webhook-id or webhook-signature is not valid text") from None
    raise InvalidSignature("no signature matches the secrets")
