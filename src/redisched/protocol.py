"""The conversation between a Call and Redis, written once for both clients (sans I/O).

:func:`conversation` is a generator: it yields the batches of commands to send and receives
their replies, handling topic registration, NOSCRIPT (a restarted or failed-over server that
lost its script cache) and error wrapping. ``Client`` drives it with blocking I/O and
``AsyncClient`` with ``await``; neither holds any logic of its own.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, RedisError

from . import scripts
from .errors import BackendError
from .ops import Call, Step

T = TypeVar("T")

Command = tuple[Any, ...]
Batch = list[Command]
"""Commands to send in one round trip; the reply list has one entry per command, an
exception instance in place of a reply that failed."""


def command(step: Step) -> Command:
    """The Redis command of a step: EVALSHA for a script, else the step's own command."""
    if step.script is None:
        return step.args
    return ("EVALSHA", scripts.get(step.script).sha, len(step.keys), *step.keys, *step.args)


def conversation(call: Call[T], registered: set[str]) -> Generator[Batch, list[Any], T]:
    """Run ``call``: yield batches, receive replies, return the parsed result.

    ``registered`` is the caller's set of topics already added to the topics set; a new one
    is added first, once per client.
    """
    if call.register_topic is not None:
        key, topic = call.register_topic
        if topic not in registered:
            _check((yield [("SADD", key, topic)]))
            registered.add(topic)
    if not call.steps:
        return call.parse([])
    replies = yield [command(step) for step in call.steps]
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        names = sorted({s for i in missing if (s := call.steps[i].script) is not None})
        _check((yield [("SCRIPT", "LOAD", scripts.get(name).source) for name in names]))
        again = yield [command(call.steps[i]) for i in missing]
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    _check(replies)
    return call.parse(replies)


def _check(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, BaseException):
            if isinstance(reply, RedisError):
                raise BackendError(f"Redis error: {reply}") from reply
            raise reply
