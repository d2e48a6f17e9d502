"""Listing cursors: the last job a page of a listing examined, as an opaque string.

``jobs.lua`` and ``finished.lua`` go on after a job's place in their order (its part of the
state's order, its score, its member), so a cursor names that job rather than a position:
jobs removed or added before it while paging shift nothing (docs/design.md section 10).

A cursor reads ``<listing>.<part>.<score>.<member>.<tag>``: the listing (a state's name, or
``finished``), the part of its order, the sorted-set score as Redis wrote it, the member in
URL-safe base64 and the topic's tag, so that a cursor of another topic or listing is an
:class:`~redisched.errors.InvalidArgument` rather than a page of the wrong jobs.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

from .errors import InvalidArgument

PARTS = {"scheduled": 1, "ready": 2, "reserved": 1, "dead": 1, "finished": 1}
"""How many parts (sorted sets read one after the other) each listing's order has."""
_SCORE = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?(e[+-]?[0-9]{1,3})?")
_MEMBER = re.compile(r"[A-Za-z0-9_-]{1,2000}")
_TAG = re.compile(r"[0-9a-f]{8}")

After = tuple[int, str, bytes]
"""Where a listing goes on: (part, score, member)."""


def topic_tag(topic: str) -> str:
    """A short tag of the topic carried in each cursor, so a cursor of another topic is caught."""
    return format(zlib.crc32(topic.encode("utf-8")), "08x")


def encode(topic: str, listing: str, after: After) -> str:
    """The cursor of ``listing`` of ``topic`` going on after ``after``."""
    part, score, member = after
    text = base64.urlsafe_b64encode(member).decode("ascii").rstrip("=")
    return f"{listing}.{part}.{score}.{text}.{topic_tag(topic)}"


def from_reply(topic: str, listing: str, after: Sequence[Any] | None) -> str | None:
    """The cursor for a script's ``after`` reply (``[part, score, member]``; None at the end)."""
    if after is None:
        return None
    part, score, member = after
    return encode(topic, listing, (int(part), bytes(score).decode("ascii"), bytes(member)))


def decode(topic: str, listing: str, value: object) -> After | None:
    """The (part, score, member) of a cursor of ``listing`` of ``topic`` (None: from the
    start); InvalidArgument naming ``cursor`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument("cursor", f"must be a cursor string, not {type(value).__name__}")
    name, _, rest = value.partition(".")
    part, _, rest = rest.partition(".")
    score, _, rest = rest.rpartition(".")  # a score may hold a "." itself
    score, _, member = score.rpartition(".")
    tag = rest
    if not (name in PARTS and _TAG.fullmatch(tag) and _MEMBER.fullmatch(member)):
        raise InvalidArgument("cursor", "must be a cursor returned by a previous page")
    if tag != topic_tag(topic):
        raise InvalidArgument("cursor", f"is a cursor of another topic, not of {topic!r}")
    if name != listing:
        raise InvalidArgument("cursor", f"is a cursor of the {name} listing, not of {listing}")
    if not (part.isascii() and part.isdigit() and 1 <= int(part) <= PARTS[name]):
        raise InvalidArgument("cursor", "must be a cursor returned by a previous page")
    # a score Redis wrote is finite: 1e999 passes the pattern but reads as inf, as "inf" would
    if not (_SCORE.fullmatch(score) and math.isfinite(float(score))):
        raise InvalidArgument("cursor", "must be a cursor returned by a previous page")
    try:
        raw = base64.urlsafe_b64decode(member + "=" * (-len(member) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument("cursor", "must be a cursor returned by a previous page") from None
    return int(part), score, raw
