"""Where a JSON text repeats an object key, and the paths of its values (no I/O).

msgspec, like most parsers, keeps the last of two equal keys; a request or message that says
two things must not be read as one of them. The HTTP API (:mod:`redisched.http.reading`) and
the AMQP bridge (:mod:`redisched.bridges.messages`) refuse such JSON naming the key.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs, in order (the json module's object_pairs_hook)."""


class _Repeating(dict[str, Any]):
    """A JSON object that has a key twice: ``repeated``, the first such key."""

    repeated = ""


def _repeated_key(pairs: list[tuple[str, Any]]) -> str | None:
    """The first key that ``pairs`` (an object's, in order) gives twice, if any."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


Link = tuple["Link | None", "str | int"]
"""Where a value sits: its parent's link and its key or index (a path, made only when
needed: a walk that made every path's text cost seconds on a large nested body)."""


def walk(text: bytes) -> Iterator[tuple[Any, Link | None]]:
    """Each object (as :class:`_Pairs`), key, string and number too large for a float (as
    ``inf``) of the JSON text with its link, in document order, iteratively (a body may nest
    512 levels); nothing when the json module refuses the text (what msgspec accepted, json
    may not: huge integers)."""
    try:
        tree = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return
    stack: list[tuple[Any, Link | None]] = [(tree, None)]
    while stack:
        value, link = stack.pop()
        if isinstance(value, _Pairs):
            yield value, link
            for key, item in reversed(value):
                stack += ((item, (link, key)), (key, (link, key)))  # the key comes first
        elif isinstance(value, list):
            stack.extend((item, (link, index)) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str) or (isinstance(value, float) and math.isinf(value)):
            yield value, link


_PLAIN_KEY = re.compile(r'[^.\[\]"\\]+')


def _step(step: str | int) -> str:
    """One step of a path: ``[0]``, ``.name``, or ``["a.b"]`` for a key that would read as
    more than one step (or not be printable), written as a JSON string (ASCII only)."""
    if isinstance(step, int):
        return f"[{step}]"
    if _PLAIN_KEY.fullmatch(step) and step.isprintable():
        return f".{step}"
    return f"[{json.dumps(step)}]"


def path(link: Link | None) -> str | None:
    """The field path of a link as the API names fields (``body.items[0].name``)."""
    parts: list[str] = []
    while link is not None:
        link, step = link
        parts.append(_step(step))
    return "".join(reversed(parts)).removeprefix(".") or None


PATH_SEARCH_BYTES = 256 * 1024
"""The largest request whose fault is located to its path: the walk that finds it takes
~0.1 s for this much JSON (a larger request names its free field, ``body``, instead)."""


_STRING = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")(\s*:)?')


def _may_repeat_a_key(data: bytes) -> bool:
    """False when no object key of the (valid) JSON text occurs twice, even in two objects.

    Without a backslash, the text split at its quotes alternates between the outside and the
    inside of strings, and a string is a key when a colon follows it. Otherwise one pass of a
    C regex over the string tokens, left to right (outside strings JSON has no quotes, so each
    match starts at an opening quote); a key written with escapes counts as a possible repeat.
    """
    if b"\\" not in data:
        parts = data.split(b'"')
        pairs = zip(parts[1::2], parts[2::2], strict=True)  # (string, what follows it)
        keys = [string for string, after in pairs if after.lstrip()[:1] == b":"]
        return len(set(keys)) != len(keys)
    keys = [string for string, colon in _STRING.findall(data) if colon]
    return len(set(keys)) != len(keys) or any(b"\\" in key for key in keys)


def repeated_key(data: bytes, free_field: str | None) -> tuple[str, str | None] | None:
    """The first key that a JSON object of ``data`` repeats and the field to name, or None.

    The exact check (the json module) runs only when a cheap scan finds a key twice in the
    text. A repeated top-level field is named as itself; one inside the free field (the
    job's ``body``, say) by its path, up to :data:`PATH_SEARCH_BYTES`, else as
    ``free_field``. Text that the json module refuses (huge integers) counts as no repeat.
    """
    if b"{" not in data or not _may_repeat_a_key(data):
        return None
    repeated: list[str] = []

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) == len(pairs):
            return found
        marked = _Repeating(found)
        marked.repeated = _repeated_key(pairs) or ""
        repeated.append(marked.repeated)
        return marked

    try:
        request = json.loads(data, object_pairs_hook=unique)
    except (ValueError, RecursionError):  # what msgspec accepted, json may not (huge ints)
        return None
    if not repeated:
        return None
    if isinstance(request, _Repeating):
        return request.repeated, request.repeated
    key, field = repeated[0], free_field
    if len(data) <= PATH_SEARCH_BYTES:  # only for a request refused anyway: a whole walk
        for value, link in walk(data):
            inner = _repeated_key(value) if isinstance(value, _Pairs) else None
            if inner is not None:
                return inner, path((link, inner))
    return key, field
