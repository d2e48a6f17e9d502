"""The conversation between a Call and Redis, written once for both clients (sans I/O).

:func:`conversation` is a generator: it yields the batches of commands to send and receives
their replies, handling topic registration, NOSCRIPT (a restarted or failed-over server that
lost its script cache) and error wrapping. ``Client`` drives it with blocking I/O and
``AsyncClient`` with ``await``; neither holds any logic of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, RedisError

from . import scripts
from .durable import Durability, TopicFlags
from .errors import BackendError, RedischedError
from .models import PutResult
from .ops import Call, Lane, Operations, Step, command
from .registration import Registrations

T = TypeVar("T")
logger = logging.getLogger(__name__)

READ_ONLY = frozenset({"get", "stats", "jobs", "history", "finished", "feed", "get_schedule"})
"""Scripts that change nothing, so sending one again is harmless."""
READ_COMMANDS = frozenset({"ZRANGE", "HGET", "HGETALL", "HKEYS", "HEXISTS", "EXISTS", "SMEMBERS"})
"""Commands sent as plain steps that change nothing (a call's refill check is a ZRANGE)."""

Command = tuple[Any, ...]
Batch = list[Command]
"""Commands to send in one round trip; the reply list has one entry per command, an
exception instance in place of a reply that failed."""


def direct(
    call: Call[Any], registered: Registrations, durable_topics: TopicFlags | None = None
) -> Batch | None:
    """The batch of a call that needs no other round trip, or None: run :func:`conversation`.

    That is a one-step call (a put, a reserve, an ack) once its client knows the topic: no
    topic to register, no WAIT (neither the call nor the topic's cached setting asks for
    one), no second read and no housekeeping. Send the batch and give the replies to
    :func:`finish`; when it raises :class:`ScriptLost`, run the conversation instead (the
    lone step did nothing, so sending it again is safe).
    """
    steps, _, register, durability, then, after = call
    if then is not None or after is not None or len(steps) != 1:
        return None
    if not alone(register, durability, registered, durable_topics):
        return None
    return [command(steps[0])]


def put_lane(
    ops: Operations,
    registered: Registrations,
    durable_topics: TopicFlags | None,
    topic: object,
    id: object,
    body: object,
    replace: object,
    options: tuple[object, ...],
) -> Lane[PutResult] | None:
    """A put given no option but ``replace``, as the batch :func:`direct` would make of its
    Call, without making the Call (:meth:`Operations.lane_put`); None: make the Call.

    ``options`` are the put's other arguments, as given: delay, run_at, ttr, max_attempts,
    if_version and durable (each None when not given), then priority (0 when not given).
    Send the batch and give the replies to :func:`finish` with the lane's parse; when it
    raises :class:`ScriptLost`, or the batch fails, go on with the put's Call.
    """
    delay, run_at, ttr, max_attempts, if_version, durable, priority = options
    if (
        delay is not None or run_at is not None or ttr is not None or max_attempts is not None
        or if_version is not None or durable is not None or type(priority) is not int
        or priority != 0
    ):  # fmt: skip
        return None
    lane = ops.lane_put(topic, id, body, replace)
    if lane is None:
        return None
    made, prepared = lane
    if not alone(prepared.register, prepared.durability, registered, durable_topics):
        return None
    return [made], prepared.parse


def alone(
    register: tuple[str, str] | None,
    durability: Durability | None,
    registered: Registrations,
    durable_topics: TopicFlags | None,
) -> bool:
    """True when a call's commands need nothing sent before or after them: its topic is
    registered (or it registers none) and it waits for no replica (neither the call nor the
    topic's cached setting asks for one)."""
    if register is not None and register[1] not in registered:
        return False
    return durability is None or (
        durability.required is None
        and durable_topics is not None
        and durable_topics.get(durability.topic) is False
    )


class ScriptLoads(list[Command]):
    """The ``SCRIPT LOAD``s a :func:`conversation` sends after NOSCRIPT replies, with
    ``keys``: the first key of each step that met one, or None when one of them had no key.

    A server takes them as any batch. A cluster client loads them only on the primaries that
    own ``keys`` (every primary when None; see :func:`redisched.routing.load_scripts`): a
    primary that is down elsewhere does not fail the call.
    """

    def __init__(self, loads: Batch, keys: list[str] | None) -> None:
        super().__init__(loads)
        self.keys = keys


class ScriptLost(Exception):
    """The server had lost the script of a :func:`direct` batch (NOSCRIPT): the call did
    nothing; run it through the :func:`conversation`, which loads the script."""


def finish(parse: Callable[[list[Any]], T], replies: list[Any]) -> T:
    """The result of a :func:`direct` batch's replies, read by its call's ``parse`` (error
    replies raised as the conversation raises them; :class:`ScriptLost` when a script was
    missing)."""
    for reply in replies:
        if isinstance(reply, BaseException):
            if lost_script(replies):
                raise ScriptLost from reply
            _check(replies)
    return parse(replies)


def lost_script(replies: list[Any]) -> bool:
    """True when a reply says the server lost a script (NOSCRIPT): the call did nothing."""
    for reply in replies:  # noqa: SIM110 - a loop, not any(): no generator per call
        if isinstance(reply, NoScriptError):
            return True
    return False


def conversation(
    call: Call[T], registered: Registrations, durable_topics: TopicFlags | None = None
) -> Generator[Batch, list[Any], T]:
    """Run ``call``: yield batches, receive replies, return the parsed result.

    ``registered`` holds the topics the caller added to the topics set lately; another is
    added first (see :mod:`redisched.registration`). ``durable_topics`` caches each topic's
    ``durable`` setting; a durable call's batches end with WAIT (see :mod:`redisched.durable`).
    """
    if call.register_topic is not None:
        key, topic = call.register_topic
        if topic not in registered:
            _check((yield [("SADD", key, topic)]))
            registered.add(topic)
    if not call.steps:
        return call.parse([])
    durability = call.durability
    if durability is not None and durability.required is None:
        flags = TopicFlags() if durable_topics is None else durable_topics
        durable = flags.get(durability.topic)
        if durable is None:
            reply = yield [("HGET", durability.meta_key, "durable")]
            _check(reply)
            durable = reply[0] == b"1"
            flags.set(durability.topic, durable)
        if not durable:
            durability = None
    steps = call.steps
    if durability is None:
        wait = []
        replies = yield [command(steps[0])] if len(steps) == 1 else [command(s) for s in steps]
    else:
        wait = [durability.wait_command()]
        replies = yield [command(step) for step in steps] + wait
    acknowledged = replies.pop() if wait else None
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        names = sorted({s for i in missing if (s := call.steps[i].script) is not None})
        keyed = [call.steps[i].keys for i in missing]
        keys = [k[0] for k in keyed] if all(keyed) else None
        loads = [("SCRIPT", "LOAD", scripts.get(name).source) for name in names]
        _check((yield ScriptLoads(loads, keys)))
        # A read that ran after a missing step saw the state without it (a put's read-back
        # would find no job): read again, after the step.
        missing += [i for i in range(missing[0] + 1, len(replies))
                    if i not in missing and _reads(call.steps[i])]  # fmt: skip
        missing.sort()
        again = yield [command(call.steps[i]) for i in missing] + wait
        if wait:
            acknowledged = again.pop()
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    _check(replies)
    if call.then is not None:
        return (yield from conversation(call.then(replies), registered, durable_topics))
    result = call.parse(replies)
    if durability is not None:
        durability.check(acknowledged)
    if call.after is not None:
        try:
            follow = call.after(replies)
            while follow is not None:
                follow = yield from conversation(follow, registered, durable_topics)
        except RedischedError as exc:  # housekeeping: the next call tries again
            logger.warning("housekeeping after %s failed: %s", _names(call), exc)
    return result


def _reads(step: Step) -> bool:
    """True when sending ``step`` again is harmless: a read-only script or command."""
    return step.script in READ_ONLY if step.script else step.args[0] in READ_COMMANDS


def _names(call: Call[Any]) -> str:
    return "+".join(step.script or str(step.args[0]) for step in call.steps)


def _check(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, BaseException):
            if isinstance(reply, RedisError):
                raise BackendError(f"Redis error: {reply}") from reply
            raise reply
