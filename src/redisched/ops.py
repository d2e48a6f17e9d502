"""The I/O-free core: build each script call and parse each reply.

``Client`` and ``AsyncClient`` are thin shells over :class:`Operations`: a method here
validates its arguments and returns a :class:`Call` (the Redis work to do and how to read the
answer); a client sends it and returns ``call.parse(replies)``. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, NamedTuple, NoReturn, TypeVar, overload

from . import cursors, history, results, schedule_ops, scripts, topic_config, validate
from . import throughput as tp
from .codes import (
    AckCode,
    BuryCode,
    DeleteCode,
    PutCode,
    ReleaseCode,
    RescheduleCode,
    TouchCode,
)
from .convert import stored_name, to_datetime
from .durable import DEFAULT_TIMEOUT_MS, Durability
from .errors import InvalidArgument, StaleReservation, TopicPartitioned, VersionConflict
from .keys import (
    DEFAULT_PREFIX,
    TopicKeys,
    TopicNames,
    deleted_topics_key,
    split_topic_names,
    topics_key,
    validate_topic,
)
from .models import (
    Cancellation,
    HistoryPage,
    Job,
    JobEvent,
    JobHistory,
    JobPage,
    JobState,
    Lease,
    PutResult,
    PutStatus,
    Schedule,
    Timeline,
    TopicStats,
)
from .topic_config import TopicConfig

T = TypeVar("T")
U = TypeVar("U")
Arg = str | bytes | int

DEFAULT_MAX_BODY_SIZE = 1 << 20
DEFAULT_PROMOTE_LIMIT = 1000
_PUT_STATUS: dict[int, PutStatus] = {
    PutCode.CREATED: PutStatus.CREATED,
    PutCode.EXISTS: PutStatus.EXISTS,
    PutCode.REPLACED: PutStatus.REPLACED,
    PutCode.PENDING: PutStatus.PENDING,
}
_RESCHEDULE_STATUS = {
    RescheduleCode.REPLACED: PutStatus.REPLACED,
    RescheduleCode.PENDING: PutStatus.PENDING,
}
SCAN_LIMIT = 2000
"""How many jobs one listing call with a prefix examines at most."""
PURGE_CHUNK = 100
"""How many jobs one purge call deletes at most (a few ms of Redis time with history on)."""
MAX_SEQ = 16**12 - 1
"""The largest sequence number a ready member holds (``%012x``, lua/README.md)."""
DELETE_CHUNK = 100
"""How many ids one delete_many script takes (as many as a purge chunk: the same work)."""


class Step(NamedTuple):
    """One Redis round-trip item: a script (by name) with keys and args, or a plain command.

    A named tuple rather than a frozen dataclass: it is made on every call, and a tuple is
    made several times faster (issue 17).
    """

    script: str | None
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    prepared: Prepared | None = None
    """Its command, or the command's first elements, made once (:func:`prepare`): the rest
    are the last of ``args``."""


class Prepared(tuple):  # type: ignore[type-arg]
    """A step's command, or its first elements, made once; a wire keeps their RESP bytes
    (``lead``) once it packed them. A call that is the same every time (a reserve under the
    server's clock, made once per topic) is neither made nor packed again; a put with a
    topic's usual options packs only its id and body (:class:`Headed`; issue 17)."""

    lead: tuple[int, bytes] | None = None
    """A command's length, and these elements in RESP under the array header of a command
    that long: the whole command when it is this one's length (one attribute: threads read
    both at once)."""


class Headed(tuple):  # type: ignore[type-arg]
    """A command whose first elements are a :class:`Prepared` (``head``)."""

    head: Prepared


_SHAS: dict[str, str] = {}
"""Script name -> SHA1, filled on first use (a dict lookup per command, issue 17)."""


def command(step: Step) -> tuple[Any, ...]:
    """The Redis command of a step: EVALSHA for a script, else the step's own command."""
    prepared = step.prepared
    if prepared is not None:
        rest = len(prepared) - 3 - len(step.keys)  # the args the prepared part holds
        if rest == len(step.args):
            return prepared
        made = Headed((*prepared, *step.args[rest:]))
        made.head = prepared
        return made
    name = step.script
    if name is None:
        return step.args
    sha = _SHAS.get(name)
    if sha is None:
        sha = _SHAS[name] = scripts.get(name).sha
    return ("EVALSHA", sha, len(step.keys), *step.keys, *step.args)


def prepare(step: Step) -> Prepared:
    """The command of ``step`` made once: all of a step sent as it is, or the head of steps
    that go on with more args (see :class:`Prepared`)."""
    return Prepared(command(step))


SWEEP_INTERVAL = 1.0
"""Seconds between the requeues that a client's ``reserve`` of a topic runs first
(:meth:`Operations.swept`)."""

Lane = tuple[list[tuple[Any, ...]], Callable[[list[Any]], T]]
"""A call made straight as its batch (one command), and the parse of its replies: what a
client sends for the commonest calls without making their :class:`Call` (issue 17)."""


class Call(NamedTuple, Generic[T]):
    """The Redis work of one client method and how to read its replies.

    Several steps go in one pipeline (one round trip). ``register_topic`` names a topic to add
    to the topics set first (the scripts never touch cross-topic keys, docs/design.md section 3).
    ``durability`` makes the steps wait for a replica (see :mod:`redisched.durable`).
    ``then`` reads the replies and returns a second call whose result is the result (a read in
    two round trips). ``after`` is housekeeping once the result is known: it returns calls to
    run next (their parse may return the next one), and their failure is only logged.

    A named tuple, like :class:`Step`: one is made per call, and a frozen dataclass takes
    several times longer to make (issue 17).
    """

    steps: tuple[Step, ...]
    parse: Callable[[list[Any]], T]
    register_topic: tuple[str, str] | None = None
    durability: Durability | None = None
    then: Callable[[list[Any]], Call[T]] | None = None
    after: Callable[[list[Any]], Call[Any] | None] | None = None

    @staticmethod
    def join(*calls: Call[Any]) -> Call[list[Any]]:
        """One call running ``calls`` in a single round trip; their results, in order.

        The steps are concatenated and each call parses its own slice of the replies. The
        registration and the durability of the parts carry over: a part that registers a
        topic registers it for the whole, and a part that must wait for a replica makes the
        whole wait (one ``WAIT`` after every step covers them all). Parts may register or
        wait for one topic at most.
        """
        if any(c.then is not None for c in calls):
            raise ValueError("Call.join: a part reads in two round trips (then)")
        register = _one("register", [c.register_topic for c in calls])
        durability = _merge_durability([c.durability for c in calls])
        sizes = [len(call.steps) for call in calls]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]

        def parse(replies: list[Any]) -> list[Any]:
            return [
                call.parse(replies[start : start + size])
                for call, start, size in zip(calls, starts, sizes, strict=True)
            ]

        parts = zip(calls, starts, sizes, strict=True)
        afters = [(c.after, start, size) for c, start, size in parts if c.after is not None]

        def after(replies: list[Any]) -> Call[Any] | None:
            follow = [a(replies[start : start + size]) for a, start, size in afters]
            found = [f for f in follow if f is not None]
            if len(found) <= 1:
                return found[0] if found else None
            return Call.join(*found)

        steps = tuple(step for call in calls for step in call.steps)
        return Call(steps, parse, register, durability, after=after if afters else None)

    def map(self, parse: Callable[[T], U]) -> Call[U]:
        """The same call with its result passed through ``parse``."""
        if self.then is not None:
            raise ValueError("Call.map: the call reads in two round trips (then)")
        inner = self.parse
        return Call(
            self.steps, lambda r: parse(inner(r)), self.register_topic, self.durability,
            after=self.after,
        )  # fmt: skip


def _one(what: str, values: Sequence[tuple[str, str] | None]) -> tuple[str, str] | None:
    found = {v for v in values if v is not None}
    if len(found) > 1:
        raise ValueError(f"Call.join: parts {what} different topics: {sorted(found)}")
    return next(iter(found), None)


def _merge_durability(values: Sequence[Durability | None]) -> Durability | None:
    found = [v for v in values if v is not None]
    if not found:
        return None
    if len({d.topic for d in found}) > 1:
        raise ValueError("Call.join: parts wait for replicas of different topics")
    # required=True (always wait) beats None (wait if the topic says so); the longest wait.
    strictest = max(found, key=lambda d: (d.required is True, d.timeout_ms, d.replicas))
    return strictest


def _unhashable_topic(topic: object, exc: TypeError, argument: str = "topic") -> NoReturn:
    """Raise InvalidArgument for a topic that cannot be a cache key (a list, a dict: no str);
    the per-topic caches look a topic up before it is validated."""
    validate_topic(topic, argument)
    raise exc


def _listed(values: object, argument: str, what: str) -> list[Any]:
    """``values`` as a list, when it is a list, a tuple or another iterable of values (not a
    str or bytes, whose items are characters); else InvalidArgument."""
    if not isinstance(values, (str, bytes, bytearray, memoryview)):
        try:
            return list(values)  # type: ignore[call-overload, no-any-return]
        except TypeError:
            pass
    raise InvalidArgument(argument, f"must be a list of {what}, not {type(values).__name__}")


def _occurrences_latest_first(ids: list[str]) -> list[str]:
    """``ids`` for delete_many's calls: those that may name a schedule's occurrence
    (``<schedule>@<time>``) last, latest time first.

    A call that deletes a schedule's pending occurrence puts the next one, later than it.
    Sent in this order, no later call of the same delete_many meets that one, whatever the
    caller listed: the result is the one call's, whose deletions come before the occurrences
    it puts, however many calls the list takes.
    """
    plain = [i for i in ids if "@" not in i]
    named = sorted((i for i in ids if "@" in i), key=lambda i: i.rpartition("@")[2], reverse=True)
    return plain + named


def _zero(ids: Sequence[str]) -> list[Arg]:
    return [v for job_id in ids for v in (0, _wire(job_id))]


def _wire(job_id: str) -> Arg:
    """A checked id as sent: ASCII as it is, else :func:`validate.stored_id`'s form."""
    return job_id if job_id.isascii() else validate.stored_id(job_id)


_PUT_RESULTS: dict[tuple[int, int], PutResult] = {
    (code, version): PutResult(status, version)
    for code, status in _PUT_STATUS.items()
    for version in range(1, 16)
}
"""The results of most puts, made once (PutResult is frozen, so they can be shared)."""


def put_result(code: int, version: int) -> PutResult:
    """The PutResult of a put.lua status code and version."""
    made = _PUT_RESULTS.get((code, version))
    return PutResult(_PUT_STATUS[code], version) if made is None else made


READ_BACK = 2
"""Added to put.lua's ``replace`` argument: the reply also holds the job as stored."""
_STATES = {state.value.encode(): state for state in JobState}


class _JobBuilder:
    """A mutable twin of :class:`Job` (the same slots, in the same order): a job is built as
    one of these, with plain attribute stores, then becomes a Job by taking its class.

    Job's frozen ``__init__`` goes through ``object.__setattr__`` per field, and even its
    slot descriptors called one by one take twice as long as this; a Worker, a lease and an
    HTTP PUT read every job they return here (issue 17).
    """

    __slots__ = Job.__slots__

    def __init__(
        self,
        topic: str,
        id: str,
        body: bytes,
        state: JobState,
        run_at: datetime,
        priority: int,
        ttr: float,
        attempts: int,
        max_attempts: int | None,
        version: int,
        token: str | None,
        reserved_until: datetime | None,
        last_error: str | None,
        pending_version: int | None,
        cancellation: Cancellation | None,
    ) -> None:
        self.topic = topic
        self.id = id
        self.body = body
        self.state = state
        self.run_at = run_at
        self.priority = priority
        self.ttr = ttr
        self.attempts = attempts
        self.max_attempts = max_attempts
        self.version = version
        self.token = token
        self.reserved_until = reserved_until
        self.last_error = last_error
        self.pending_version = pending_version
        self.cancellation = cancellation


_JOB_FIELDS = (
    "topic", "id", "body", "state", "run_at", "priority", "ttr", "attempts", "max_attempts",
    "version", "token", "reserved_until", "last_error", "pending_version", "cancellation",
)  # fmt: skip
if (
    tuple(f.name for f in dataclasses.fields(Job)) != _JOB_FIELDS
    or Job.__slots__ != _JOB_FIELDS
    or _JobBuilder.__init__.__code__.co_varnames[1:16] != _JOB_FIELDS
):  # pragma: no cover
    raise ImportError("redisched.ops.parse_job: models.Job's fields changed; update it")


def parse_job(
    topic: str,
    reply: Sequence[Any],
    cancellation: Cancellation | None = None,
    times: dict[int, datetime] | None = None,
) -> Job:
    """Read the job array that get, reserve, pull and jobs return (see get.lua).

    ``times`` shares the datetimes made for the other jobs of one reply (the jobs of a lease
    share their ``reserved_until``, and often their ``run_at``).
    """
    (job_id, state, version, attempts, priority, ttr, max_attempts, run_at, token,
     reserved_until, last_error, body, pending_version) = reply  # fmt: skip
    try:
        if times is None:
            run_at_time = _from_ms(run_at / 1000, UTC)
            until = None if reserved_until is None else _from_ms(reserved_until / 1000, UTC)
        else:  # shared, inline (a helper function's two calls cost a tenth of parse_job)
            found = times.get(run_at)
            if found is None:
                found = times[run_at] = _from_ms(run_at / 1000, UTC)
            run_at_time = found
            if reserved_until is None:
                until = None
            else:
                until = times.get(reserved_until)
                if until is None:
                    until = times[reserved_until] = _from_ms(reserved_until / 1000, UTC)
    except (ValueError, OverflowError, OSError):  # past the year 9999: as to_datetime reads it
        run_at_time = to_datetime(run_at)
        until = None if reserved_until is None else to_datetime(reserved_until)
    try:
        job_text = job_id.decode()
    except UnicodeDecodeError:  # stored by a raw script call: only then the slower way
        job_text = stored_name(job_id)
    job: Any = _JobBuilder(
        topic,
        job_text,
        body if type(body) is bytes else bytes(body),
        _STATES.get(state) or JobState(state.decode()),
        run_at_time,
        priority,
        ttr / 1000,
        attempts,
        max_attempts or None,
        version,
        None if token is None else token.decode("utf-8", "replace"),
        until,
        None if last_error is None else last_error.decode("utf-8", "replace"),
        pending_version or None,
        cancellation,
    )
    job.__class__ = Job  # the values are those Job(...) would get, checked by its tests
    return job  # type: ignore[no-any-return]


_from_ms = datetime.fromtimestamp


def _optional_ms(value: int) -> int | None:
    return None if value < 0 else value


class _LeaseBuilder:
    """A mutable twin of :class:`Lease`, as :class:`_JobBuilder` is of Job."""

    __slots__ = Lease.__slots__

    def __init__(
        self,
        jobs: list[Job],
        now_ms: int,
        next_due_ms: int | None,
        next_timeout_ms: int | None,
    ) -> None:
        self.jobs = jobs
        self.now_ms = now_ms
        self.next_due_ms = next_due_ms
        self.next_timeout_ms = next_timeout_ms


if Lease.__slots__ != _LeaseBuilder.__init__.__code__.co_varnames[1:5]:  # pragma: no cover
    raise ImportError("redisched.ops.parse_lease: models.Lease's fields changed; update it")


def parse_lease(topic: str, reply: Sequence[Any], own: bool = False) -> Lease:
    """Read the reply of reserve.lua (``own``: as :func:`parse_lease_jobs`)."""
    next_due, next_timeout = reply[1], reply[2]
    lease: Any = _LeaseBuilder(
        parse_lease_jobs(topic, reply, own),  # the Worker adds a cancel flag
        reply[0],
        None if next_due < 0 else next_due,
        None if next_timeout < 0 else next_timeout,
    )
    lease.__class__ = Lease  # as a Job is made in parse_job
    return lease  # type: ignore[no-any-return]


def parse_lease_jobs(topic: str, reply: Sequence[Any], own: bool = False) -> list[Job]:
    """The jobs of a reserve.lua reply (their datetimes shared: one lease's jobs have the same
    ``reserved_until``, and often the same ``run_at``).

    Raises:
        TopicPartitioned: the lease was empty and the topic is partitioned (unless ``own``:
            the topic's own name is being served as one of its members).
    """
    if len(reply) == 4:
        job = reply[3]
        if type(job) is int:  # no job, and the count of a partitioned topic
            return _partitioned(topic, job, own, [])
        return [parse_job(topic, job)]
    times: dict[int, datetime] = {}
    return [parse_job(topic, job, None, times) for job in reply[3:]]


def _partitioned(topic: str, count: int, own: bool, empty: T) -> T:
    """``empty``, the answer of a read that found nothing on a partitioned topic's own name,
    when ``own``; else TopicPartitioned (the reads of a plain client say so, as a delete does,
    rather than answer a quiet nothing: docs/design.md section 11)."""
    if own:
        return empty
    raise TopicPartitioned(topic, count)


def _lease_parser(topic: str) -> Callable[[list[Any]], Lease]:
    return lambda replies: parse_lease(topic, replies[0])


def _own_lease_parser(topic: str) -> Callable[[list[Any]], Lease]:
    return lambda replies: parse_lease(topic, replies[0], True)


def _reserve_many_parser(topic: str) -> Callable[[list[Any]], list[Job]]:
    return lambda replies: parse_lease_jobs(topic, replies[0])


def _own_reserve_many_parser(topic: str) -> Callable[[list[Any]], list[Job]]:
    return lambda replies: parse_lease_jobs(topic, replies[0], True)


def _reserve_parser(topic: str) -> Callable[[list[Any]], Job | None]:
    def parse(replies: list[Any]) -> Job | None:  # parse_lease's, without the Lease
        reply = replies[0]
        if len(reply) <= 3:
            return None
        job = reply[3]
        if type(job) is int:  # no job, and the count of a partitioned topic
            raise TopicPartitioned(topic, job)
        return parse_job(topic, job)

    return parse


def _found(topic: str, reply: Any, own: bool) -> Job | None:
    """The job of a get.lua or pull.lua reply: None for nil, and for a partitioned topic's
    count when ``own`` (else TopicPartitioned)."""
    if reply is None:
        return None
    if type(reply) is int:
        return _partitioned(topic, reply, own, None)
    return parse_job(topic, reply)


class _PreparedPut(NamedTuple):
    """The parts of a put call that depend on its topic only (see ``Operations._puts``)."""

    topic: str
    keys: tuple[str, ...]
    register: tuple[str, str]
    durability: Durability | None
    heads: tuple[Prepared, ...] | None
    """The command of a put with the usual options (``_USUAL_PUT_OPTIONS``: create-only, then
    replace) up to its id and body, made once: a put then packs only those."""
    parse: Callable[[list[Any]], PutResult]
    """The parse of a put without ``if_version`` or ``read_back`` (one per topic)."""


_USUAL_PUT_OPTIONS = (("", "", 0, "", 0, "", 0), ("", "", 0, "", 0, "", 1))
"""A put's options (now_ms .. replace) when only the defaults are given under the server's
clock, create-only and replace: ``_put_options`` answers with these very tuples."""


def _put_parser(
    topic: str, job_id: str, expected: int | None, read_back: bool
) -> Callable[[list[Any]], Any]:
    """The parse of a put's reply: a PutResult, or with ``read_back`` (PutResult, Job | None)."""

    def parse(replies: list[Any]) -> PutResult:
        status, version = replies[0]
        if status == PutCode.VERSION_CONFLICT:
            raise VersionConflict(topic, job_id, expected or 0, version)
        if status == PutCode.PARTITIONED:
            raise TopicPartitioned(topic, version)
        return put_result(status, version)

    def parse_read_back(replies: list[Any]) -> tuple[PutResult, Job | None]:
        reply = replies[0]
        status, version = reply[0], reply[1]
        if status == PutCode.VERSION_CONFLICT:
            raise VersionConflict(topic, job_id, expected or 0, version)
        if status == PutCode.PARTITIONED:
            raise TopicPartitioned(topic, version)
        stored = reply[2] if len(reply) > 2 else None
        return put_result(status, version), None if stored is None else parse_job(topic, stored)

    return parse_read_back if read_back else parse


@dataclass(frozen=True, slots=True)
class Operations:
    """Builds every call of the public API. Holds settings only; safe to share.

    Args:
        prefix: the first part of every key name.
        clock: None to use the Redis server's clock (the default, and what production wants),
            or a function returning epoch seconds, so that tests can move days ahead.
        max_body_size: the largest body accepted, in bytes.
        promote_limit: how many due jobs one reserve moves to ready at most.
        durable: make every put durable unless the call says ``durable=False``.
        durable_timeout_ms: how long a durable put waits for a replica.
    """

    prefix: str = DEFAULT_PREFIX
    clock: Callable[[], float] | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    promote_limit: int = DEFAULT_PROMOTE_LIMIT
    durable: bool = False
    durable_timeout_ms: int = DEFAULT_TIMEOUT_MS
    _keys: dict[str, TopicKeys] = field(default_factory=dict, compare=False, repr=False)
    _script_keys: dict[tuple[str, str], tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _topic_durability: dict[str, Durability | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _puts: dict[str, _PreparedPut] = field(default_factory=dict, compare=False, repr=False)
    _acks: dict[str, Prepared] = field(default_factory=dict, compare=False, repr=False)
    _leases: dict[tuple[object, str, int], Call[Any]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _swept_at: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def keys(self, topic: str) -> TopicKeys:
        """The validated keys of a topic (cached: key names are built once per topic)."""
        try:
            keys = self._keys.get(topic)
        except TypeError as exc:
            _unhashable_topic(topic, exc)
        if keys is None:
            keys = TopicKeys(self.prefix, validate_topic(topic))
            if len(self._keys) < 10_000:
                self._keys[topic] = keys
        return keys

    def _reserved(self, job: Any) -> tuple[str, str | bytes, str]:
        """The (topic, id as sent, token) of a reserved job, checked as
        :func:`validate.reserved_job` checks them; a Job of a topic this process already checked
        takes the short way. Callers use ``job.id`` as text (the id as sent may be bytes:
        :func:`validate.stored_id`)."""
        try:
            known = type(job) is Job and job.topic in self._keys
        except TypeError as exc:
            _unhashable_topic(job.topic, exc, "job.topic")
        if known:
            job_id, token = job.id, job.token
            if (
                type(job_id) is str and 0 < len(job_id) <= validate.MAX_ID_BYTES
                and job_id.isascii() and type(token) is str and token
            ):  # fmt: skip
                return job.topic, job_id, token
        return validate.reserved_job(job)

    def _now(self) -> Arg:
        return "" if self.clock is None else self.clock_ms()

    def clock_ms(self) -> int:
        """The client's ``clock`` (set) in epoch milliseconds; InvalidArgument naming
        ``clock`` when it gives no epoch seconds from 1970 to the year 9999 (milliseconds, a
        datetime), which would store jobs no reader could show."""
        assert self.clock is not None
        return round(validate.clock_ms(self.clock()))

    def _step(self, script: str, topic: str, *args: Arg) -> Step:
        try:
            names = self._script_keys.get((script, topic))
        except TypeError as exc:
            _unhashable_topic(topic, exc)
        if names is None:  # built once per script and topic, from the script's header
            keys = self.keys(topic)
            names = tuple(keys.name(p.name) for p in scripts.get(script).keys)
            if len(self._script_keys) < 100_000:
                self._script_keys[(script, topic)] = names
        return Step(script, names, args)

    def _refilling(self, topic: str, call: Call[T], when: bool = True) -> Call[T]:
        """``call``, checking in the same round trip whether a cron schedule needs more times
        (only when ``when``: a call on a schedule's occurrence, or a periodic one)."""
        return schedule_ops.with_refill(self, topic, call) if when else call

    def _refusing(
        self, topic: str, call: Call[T], own: bool, miss: Callable[[T], bool] | None = None
    ) -> Call[T]:
        """``call`` with the topic's partition mark (meta field ``partitions``) read in the
        same round trip: TopicPartitioned when the topic is partitioned (only when ``miss``
        says the result found nothing, if given), as the reads whose scripts do not read it
        themselves; ``call`` as it is when ``own`` (as :meth:`get`)."""
        if own:
            return call
        mark = Step(None, (), ("HGET", self.keys(topic).name("meta"), "partitions"))
        inner = call.parse

        def parse(replies: list[Any]) -> T:
            result = inner(replies[:-1])
            count = replies[-1]
            if count is not None and (miss is None or miss(result)):
                raise TopicPartitioned(topic, int(count))
            return result

        return Call((*call.steps, mark), parse, call.register_topic, call.durability)

    def _register(self, topic: str) -> tuple[str, str]:
        """The topics set's member for ``topic`` (a checked name), which a call that creates
        jobs, a schedule or settings adds: such a topic must not be ``.`` or ``..``."""
        return (topics_key(self.prefix), validate.new_name(topic, "topic"))

    def _durability(self, keys: TopicKeys, durable: object) -> Durability | None:
        if durable is None:  # the common case: the client's and the topic's setting, per topic
            try:
                return self._topic_durability[keys.topic]
            except KeyError:
                made = self._make_durability(keys, None)
                if len(self._topic_durability) < 10_000:
                    self._topic_durability[keys.topic] = made
                return made
        return self._make_durability(keys, durable)

    def _make_durability(self, keys: TopicKeys, durable: object) -> Durability | None:
        if durable is not None and not isinstance(durable, bool):
            kind = type(durable).__name__
            raise InvalidArgument("durable", f"must be a bool or None, not {kind}")
        if durable is False:
            return None
        required = True if durable or self.durable else None  # None: the topic's setting
        return Durability(keys.topic, keys.name("meta"), required, self.durable_timeout_ms)

    # -- put, get, delete -------------------------------------------------------------------

    def _put_options(
        self,
        delay: object,
        run_at: object,
        ttr: object,
        priority: object,
        max_attempts: object,
        replace: object,
    ) -> tuple[Arg, ...]:
        if (  # the common case, checked as the long way would: only the defaults given
            delay is None and run_at is None and ttr is None and max_attempts is None
            and type(priority) is int and priority == 0 and type(replace) is bool
        ):  # fmt: skip
            if self.clock is None:
                return _USUAL_PUT_OPTIONS[replace]
            return (self._now(), "", 0, "", 0, "", int(replace))
        if delay is not None and run_at is not None:
            raise InvalidArgument("delay", "give delay or run_at, not both")
        run_at_arg: Arg = "" if run_at is None else validate.epoch_ms(run_at)
        delay_arg = 0 if delay is None else validate.duration_ms(delay, "delay")
        ttr_arg: Arg = "" if ttr is None else validate.ttr_ms(ttr)
        attempts = validate.optional_positive(max_attempts, "max_attempts")
        if not isinstance(replace, bool):
            raise InvalidArgument("replace", f"must be a bool, not {type(replace).__name__}")
        return (
            self._now(),
            run_at_arg,
            delay_arg,
            ttr_arg,
            validate.priority(priority),
            "" if attempts is None else attempts,
            int(replace),
        )

    @overload
    def put(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        delay: object = None,
        run_at: object = None,
        ttr: object = None,
        priority: object = 0,
        max_attempts: object = None,
        replace: object = False,
        if_version: object = None,
        durable: object = None,
        read_back: Literal[False] = False,
    ) -> Call[PutResult]: ...

    @overload
    def put(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        delay: object = None,
        run_at: object = None,
        ttr: object = None,
        priority: object = 0,
        max_attempts: object = None,
        replace: object = False,
        if_version: object = None,
        durable: object = None,
        read_back: Literal[True],
    ) -> Call[tuple[PutResult, Job | None]]: ...

    @overload
    def put(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        delay: object = None,
        run_at: object = None,
        ttr: object = None,
        priority: object = 0,
        max_attempts: object = None,
        replace: object = False,
        if_version: object = None,
        durable: object = None,
        read_back: bool,
    ) -> Call[PutResult] | Call[tuple[PutResult, Job | None]]: ...

    def put(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        delay: object = None,
        run_at: object = None,
        ttr: object = None,
        priority: object = 0,
        max_attempts: object = None,
        replace: object = False,
        if_version: object = None,
        durable: object = None,
        read_back: object = False,
    ) -> Call[Any]:
        """Create a job, or replace it with ``replace=True`` (docs/design.md section 2).

        ``read_back=True``: the call also answers the job as stored, in the same script: the
        job is None when nothing was stored (exists, a version conflict, or pending: read a
        pending job with :meth:`get`).
        """
        try:
            prepared = self._puts.get(topic) if durable is None else None
        except TypeError as exc:
            _unhashable_topic(topic, exc)
        if prepared is None:
            prepared = self._prepare_put(topic, durable)
        if type(id) is str and 2 < len(id) <= validate.MAX_ID_BYTES and id.isascii():
            job_id = id  # the common case, as validate.new_job_id would pass it (ASCII: no
            # surrogates; longer than 2: not "." or "..")
        else:
            job_id = validate.new_job_id(id)
        if type(body) is bytes and len(body) <= self.max_body_size:
            data = body
        else:
            data = validate.body(body, self.max_body_size)
        options = self._put_options(delay, run_at, ttr, priority, max_attempts, replace)
        expected = validate.optional_version(if_version, "if_version")
        if read_back is not False:
            if read_back is not True:
                kind = type(read_back).__name__
                raise InvalidArgument("read_back", f"must be a bool, not {kind}")
            *head, flag = options
            options = (*head, int(flag) + READ_BACK)
        args = (*options, "" if expected is None else expected, job_id, data)
        heads, made = prepared.heads, None
        if heads is not None and expected is None:  # the usual options: the head made once
            usual = _USUAL_PUT_OPTIONS
            made = heads[0] if options is usual[0] else heads[1] if options is usual[1] else None
        step = Step("put", prepared.keys, args, made)
        parse = _put_parser(prepared.topic, job_id, expected, bool(read_back))
        return Call((step,), parse, prepared.register, prepared.durability)

    def lane_put(
        self, topic: object, id: object, body: object, replace: object
    ) -> tuple[Headed, _PreparedPut] | None:
        """The command of :meth:`put` with no option but ``replace`` given, made straight from
        its topic's prepared head, and that prepared put (its ``parse`` reads the reply; its
        ``register`` and ``durability`` say whether the command may go alone, as
        :func:`redisched.protocol.direct` decides). None unless an earlier put prepared the
        topic under the server's clock and ``id`` and ``body`` are as :meth:`put` sends them
        unchanged (an ASCII id of 3 to 1024 characters, bytes within ``max_body_size``): then
        make :meth:`put`'s Call, which checks and converts them.

        It skips the Call, the Step and the parser :meth:`put` makes per call (issue 17: a
        put's whole client-side work is a few µs, and each of those costs about one).
        """
        prepared = self._puts.get(topic) if type(topic) is str else None
        if (
            prepared is None
            or prepared.heads is None
            or type(id) is not str
            or not 2 < len(id) <= validate.MAX_ID_BYTES
            or not id.isascii()
            or type(body) is not bytes
            or len(body) > self.max_body_size
            or type(replace) is not bool
        ):
            return None
        head = prepared.heads[replace]
        made = Headed((*head, id, body))
        made.head = head
        return made, prepared

    def _prepare_put(self, topic: str, durable: object) -> _PreparedPut:
        """What every put in ``topic`` shares: its keys, registration and durability (cached
        per topic for ``durable=None``, the common case)."""
        keys = self.keys(topic)
        durability = self._durability(keys, durable)
        names = self._step("put", topic).keys
        heads = None
        if durable is None and self.clock is None:  # kept for the topic's next puts
            heads = tuple(prepare(Step("put", names, (*o, ""))) for o in _USUAL_PUT_OPTIONS)
        parse = _put_parser(keys.topic, "", None, False)
        register = self._register(keys.topic)
        prepared = _PreparedPut(keys.topic, names, register, durability, heads, parse)
        if durable is None and len(self._puts) < 10_000:
            self._puts[topic] = prepared
        return prepared

    def put_many(
        self,
        topic: str,
        jobs: Iterable[tuple[str, bytes | str]],
        *,
        delay: object = None,
        run_at: object = None,
        ttr: object = None,
        priority: object = 0,
        max_attempts: object = None,
        replace: object = False,
        batch_size: int = 500,
        durable: object = None,
    ) -> Call[list[PutResult]]:
        """Put many ``(id, body)`` jobs with shared options, in one round trip.

        The jobs go in scripts of ``batch_size`` each, pipelined, so that one huge call does
        not hold Redis for long.
        """
        keys = self.keys(topic)
        durability = self._durability(keys, durable)
        options = self._put_options(delay, run_at, ttr, priority, max_attempts, replace)
        size = validate.integer(batch_size, "batch_size", 1, 10_000)
        if isinstance(jobs, (str, bytes)):
            raise InvalidArgument("jobs", "must be an iterable of (id, body) pairs")
        pairs: list[Arg] = []
        append, job_id, body, limit = (
            pairs.append,
            validate.new_job_id,
            validate.body,
            self.max_body_size,
        )
        try:
            for index, item in enumerate(jobs):
                if not isinstance(item, tuple) or len(item) != 2:
                    raise InvalidArgument(f"jobs[{index}]", "must be an (id, body) pair")
                try:
                    append(job_id(item[0]))
                    append(body(item[1], limit))
                except InvalidArgument:  # again, to name the job in the error (no f-string per job)
                    job_id(item[0], f"jobs[{index}].id")
                    body(item[1], limit, f"jobs[{index}].body")
                    raise
        except TypeError as exc:
            raise InvalidArgument("jobs", "must be an iterable of (id, body) pairs") from exc
        steps = tuple(
            self._step("put", topic, *options, "", *pairs[start : start + 2 * size])
            for start in range(0, len(pairs), 2 * size)
        )

        def parse(replies: list[Any]) -> list[PutResult]:
            if replies and replies[0][0] == PutCode.PARTITIONED:  # every job of the call
                raise TopicPartitioned(keys.topic, replies[0][1])
            flat = [value for reply in replies for value in reply]
            return [put_result(s, v) for s, v in zip(flat[::2], flat[1::2], strict=True)]

        if not steps:
            return Call(steps, parse)
        return Call(steps, parse, self._register(keys.topic), durability)

    def get(self, topic: str, id: str, *, own: bool = False) -> Call[Job | None]:
        """Read a job by id; None when it does not exist.

        Raises TopicPartitioned when there is no such job and ``topic`` is partitioned (its
        jobs live in their ids' partitions), unless ``own``: for the code that serves a
        partitioned topic's own name as one of its members (jobs put there before the mark).
        """
        step = self._step("get", topic, self._now(), validate.stored_id(id))
        return Call((step,), lambda r: _found(topic, r[0], own))

    def delete(self, topic: str, id: str, *, if_version: object = None) -> Call[bool]:
        """Delete a job by id in any state; True if it existed (a schedule's pending occurrence:
        its next one is put, so that run alone is skipped)."""
        return self._delete(topic, id, if_version, "", "")

    def _delete(
        self, topic: str, id: str, if_version: object, abort: str, reason: str
    ) -> Call[bool]:
        """delete.lua's call: ``abort`` is "abort" for abort, "" for a delete."""
        job_id = validate.stored_id(id)
        expected = validate.optional_version(if_version, "if_version")
        version: Arg = "" if expected is None else expected
        step = self._step("delete", topic, job_id, version, self._now(), abort, reason)

        def parse(replies: list[Any]) -> bool:
            status, version = replies[0]
            if status == DeleteCode.VERSION_CONFLICT:
                raise VersionConflict(topic, id, expected or 0, version)
            if status == DeleteCode.PARTITIONED:
                raise TopicPartitioned(topic, version)
            return bool(status == DeleteCode.DELETED)

        # deleting a cron schedule's pending occurrence may leave it short of times (refill)
        return self._refilling(topic, Call((step,), parse), "@" in id)

    def abort(self, topic: str, id: str, *, reason: object = None) -> Call[bool]:
        """Stop a job for good: a running one has its handler cancelled (the Worker running it
        learns through the topic's wake channel), a waiting one never runs; True if it existed.

        The job is removed like ``delete`` does (its holder's ack is then stale; a schedule's
        pending occurrence: that run alone is skipped), but its history says so: an
        ``aborted`` event whose detail is ``reason`` (and, for a running job, "was running;
        cancel sent") and the outcome ``aborted`` (``dead`` for a dead job).
        """
        reason_text = "" if reason is None else validate.text(reason, "reason")
        return self._delete(topic, id, None, "abort", reason_text)

    # -- leases -----------------------------------------------------------------------------

    def lease(
        self, topic: str, count: object, *, ttr: object = None, own: bool = False
    ) -> Call[Lease]:
        """Reserve up to ``count`` jobs and learn when the next work is due.

        An empty lease of a partitioned topic raises TopicPartitioned, unless ``own`` (as
        :meth:`get`): the Worker, the push dispatcher, the HTTP reserves and PartitionedTopic
        serve the topic's own name beside its partitions.
        """
        parser = _own_lease_parser if own else _lease_parser
        return self._lease_call(parser, topic, count, ttr)

    def _lease_step(self, topic: str, count: object, ttr: object, times: bool = True) -> Step:
        """reserve.lua's step; ``times=False`` for a reader that drops the lease's
        ``next_due_ms`` / ``next_timeout_ms``, which then cost the script nothing."""
        ttr_arg: Arg = "" if ttr is None else validate.ttr_ms(ttr)
        return self._step(
            "reserve", topic, self._now(), validate.count(count), ttr_arg, self.promote_limit,
            "" if times else 0,
        )  # fmt: skip

    def _lease_call(
        self,
        parser: Callable[[str], Callable[[list[Any]], Any]],
        topic: str,
        count: object,
        ttr: object,
    ) -> Call[Any]:
        """A reserve.lua call read by ``parser(topic)``. With the server's clock and the
        topic's ttr every such call is the same: made once per topic, count and reader."""
        times = parser is _lease_parser or parser is _own_lease_parser  # else the jobs alone
        if ttr is None and self.clock is None and type(count) is int:
            key = (parser, topic, count)
            try:
                call = self._leases.get(key)
            except TypeError as exc:
                _unhashable_topic(topic, exc)
            if call is None:
                step = self._lease_step(topic, count, None, times)
                call = Call((step._replace(prepared=prepare(step)),), parser(topic))
                if len(self._leases) < 10_000:
                    self._leases[key] = call
            return call
        return Call((self._lease_step(topic, count, ttr, times),), parser(topic))

    def reserve(self, topic: str, *, ttr: object = None) -> Call[Job | None]:
        """Lease the next ready job, or None (timed-out reservations requeued first, see
        :meth:`swept`)."""
        return self.swept(topic, self._lease_call(_reserve_parser, topic, 1, ttr))

    def reserve_many(
        self,
        topic: str,
        count: object,
        *,
        ttr: object = None,
        sweep: bool = True,
        own: bool = False,
    ) -> Call[list[Job]]:
        """Lease up to ``count`` ready jobs (timed-out reservations requeued first, see
        :meth:`swept`; ``sweep=False`` for a process that runs its own requeue loop; ``own``
        as :meth:`lease`)."""
        parser = _own_reserve_many_parser if own else _reserve_many_parser
        call = self._lease_call(parser, topic, count, ttr)
        return self.swept(topic, call) if sweep else call

    def swept(self, topic: str, call: Call[T]) -> Call[T]:
        """``call`` after a requeue of the topic's timed-out reservations, in the same round
        trip, at most once per :data:`SWEEP_INTERVAL` per topic (else ``call`` as it is).

        A consumer that only calls ``reserve`` runs no requeue loop (a Worker, the push
        dispatcher and ``redisched serve`` do): without this, a job whose holder died stayed
        reserved until something else requeued it, and its ``reserve`` got None meanwhile.
        A client on its own ``clock`` (a test that moves time) requeues only when told to, so
        that what it sees does not depend on how fast it runs.
        """
        if self.clock is not None:
            return call
        now = time.monotonic()
        last = self._swept_at.get(topic)
        if last is not None and now - last < SWEEP_INTERVAL:
            return call
        if len(self._swept_at) >= 10_000:
            self._swept_at.clear()
        self._swept_at[topic] = now
        return Call.join(self.requeue(topic), call).map(lambda results: results[1])

    def ack(self, job: Any, *, result: object = None) -> Call[None]:
        """Finish a reserved job, keeping ``result`` in its history (bytes, str or JSON data);
        StaleReservation if the token is no longer current."""
        topic, job_id, token = self._reserved(job)
        data = b"" if result is None else self._result(result, "result")

        def parse(replies: list[Any]) -> None:
            if replies[0][0] != AckCode.ACKED:
                raise StaleReservation(topic, job.id)

        step = self._step("ack", topic, self._now(), job_id, token, data)
        if self.clock is None and topic not in self._acks and len(self._acks) < 10_000:
            self._acks[topic] = prepare(step._replace(args=()))  # for the topic's lane_ack
        return self._refilling(topic, Call((step,), parse), "@" in job.id)

    def lane_ack(self, job: object) -> Lane[None] | None:
        """The batch of :meth:`ack` without a result, and its parse, made straight from the
        topic's prepared head (an earlier ack of the topic under the server's clock made it):
        no Step or Call. None unless ``job`` is a :class:`Job` whose id and token
        :meth:`ack` would send unchanged (an ASCII id, not a schedule's occurrence, which
        also checks the schedule's refill): then make :meth:`ack`'s Call."""
        if type(job) is not Job:
            return None
        topic, job_id, token = job.topic, job.id, job.token
        head = self._acks.get(topic) if type(topic) is str else None
        if (
            head is None
            or type(job_id) is not str
            or not 0 < len(job_id) <= validate.MAX_ID_BYTES
            or not job_id.isascii()
            or "@" in job_id
            or type(token) is not str
            or not token
        ):
            return None
        made = Headed((*head, "", job_id, token, b""))
        made.head = head

        def parse(replies: list[Any]) -> None:
            if replies[0][0] != AckCode.ACKED:
                raise StaleReservation(topic, job_id)

        return [made], parse

    def _result(self, value: object, argument: str) -> bytes:
        data = results.encode(value, argument) or b""
        return data[: self.max_body_size]  # the script keeps RESULT_LIMIT bytes and says so

    def ack_many(
        self, topic: str, jobs: Sequence[Any], *, results: Sequence[object] | None = None
    ) -> Call[list[bool]]:
        """Finish several reserved jobs of one topic; one flag per job (False = stale).

        ``results``, when given, holds one result per job (None for none).
        """
        call, occurrence = self._ack_many(topic, jobs, results)
        return self._refilling(topic, call, occurrence)

    def ack_leased(
        self, topic: str, jobs: Sequence[Job], *, results: Sequence[object] | None = None
    ) -> Call[list[bool]]:
        """:meth:`ack_many` for jobs this process leased itself (a Worker's, a dispatcher's).

        Their ids and tokens came from Redis in the lease reply, so they are not checked again
        one by one (a Worker acks every job it runs); each must still be of ``topic`` and hold
        a token. Jobs from anywhere else go through :meth:`ack_many`.
        """
        call, occurrence = self._ack_many(topic, jobs, results, leased=True)
        return self._refilling(topic, call, occurrence)

    def _ack_many(
        self,
        topic: str,
        jobs: Sequence[Any],
        results: Sequence[object] | None,
        *,
        leased: bool = False,
    ) -> tuple[Call[list[bool]], bool]:
        """The ack call, and whether it names a job id that may be a schedule's occurrence."""
        validate_topic(topic)
        if type(jobs) is not list:
            jobs = _listed(jobs, "jobs", "reserved jobs")
        if results is not None:
            if type(results) is not list:
                results = _listed(results, "results", "results, one per job")
            if len(results) != len(jobs):
                raise InvalidArgument("results", "must hold one result per job")
        args: list[Arg] = []
        occurrence = False
        for index, job in enumerate(jobs):
            if leased:
                job_topic, job_id, token = job.topic, job.id, job.token
                if not token:
                    raise InvalidArgument("jobs", f"job {job_id!r} has no token")
                if not job_id.isascii():  # (str.isascii reads a flag)
                    job_id = validate.stored_id(job_id, "jobs")
            else:
                job_topic, job_id, token = self._reserved(job)
            occurrence = occurrence or "@" in job.id
            if job_topic != topic:
                raise InvalidArgument("jobs", f"job {job.id!r} is in topic {job_topic!r}")
            data = b"" if results is None else self._result(results[index], f"results[{index}]")
            args += (job_id, token, data)
        if not args:
            return Call((), lambda r: []), False
        step = self._step("ack", topic, self._now(), *args)
        return Call((step,), lambda r: [s == AckCode.ACKED for s in r[0]]), occurrence

    def ack_and_lease(
        self,
        topic: str,
        done: Sequence[Any],
        count: object,
        *,
        ttr: object = None,
        results: Sequence[object] | None = None,
    ) -> Call[tuple[list[bool], Lease]]:
        """Ack finished jobs (with their ``results``) and lease the next ones in one round trip."""
        acks, occurrence = self._ack_many(topic, done, results)
        lease = self._lease_step(topic, count, ttr)

        def parse(replies: list[Any]) -> tuple[list[bool], Lease]:
            acked = acks.parse(replies[:-1])
            return acked, parse_lease(topic, replies[-1])

        return self._refilling(topic, Call((*acks.steps, lease), parse), occurrence)

    def release(
        self,
        job: Any,
        *,
        delay: object = 0,
        reason: object = None,
        unstarted: object = False,
        error: object = None,
    ) -> Call[JobState]:
        """Return a reserved job to the queue after ``delay``; the state it went to.

        ``reason`` is kept as the job's ``last_error`` (the same name as in ``bury``, ``Retry``
        and the HTTP API; ``error`` is its deprecated alias). ``unstarted=True`` gives the
        attempt back (it does not count toward max_attempts): the job was leased but never
        handed to anyone (no ``reason``: its released event says "never started"), or the
        consumer cut it short for a reason of its own, such as a stop (the ``reason`` is kept
        as for any release, and is the released event's detail).
        """
        topic, job_id, token = self._reserved(job)
        delay_ms = validate.duration_ms(delay, "delay")
        argument = "reason"
        if error is not None:
            if reason is not None:
                raise InvalidArgument("error", "give reason or its old name error, not both")
            warnings.warn(
                "release(error=...) is deprecated: use release(reason=...)",
                DeprecationWarning,
                stacklevel=3,
            )
            reason, argument = error, "error"
        error_text = "" if reason is None else validate.text(reason, argument)
        if not isinstance(unstarted, bool):
            raise InvalidArgument("unstarted", f"must be a bool, not {type(unstarted).__name__}")
        step = self._step(
            "release", topic, self._now(), job_id, token, delay_ms, error_text, int(unstarted)
        )

        def parse(replies: list[Any]) -> JobState:
            status, state = replies[0]
            if status == ReleaseCode.STALE:
                raise StaleReservation(topic, job.id)
            return JobState(state.decode())

        return self._refilling(topic, Call((step,), parse), "@" in job.id)

    def touch(self, job: Any, *, ttr: object = None) -> Call[datetime]:
        """Move a reservation's deadline to now + ``ttr`` (default: the job's); the new
        deadline (a ``ttr`` shorter than the time left shortens it)."""
        topic, job_id, token = self._reserved(job)
        ttr_arg: Arg = "" if ttr is None else validate.ttr_ms(ttr)
        step = self._step("touch", topic, self._now(), job_id, token, ttr_arg)

        def parse(replies: list[Any]) -> datetime:
            status, until = replies[0]
            if status == TouchCode.STALE:
                raise StaleReservation(topic, job.id)
            return to_datetime(until)

        return Call((step,), parse)

    def bury(self, job: Any, *, reason: object = None) -> Call[None]:
        """Move a reserved job to dead, keeping ``reason`` as its last error."""
        topic, job_id, token = self._reserved(job)
        reason_text = "" if reason is None else validate.text(reason, "reason")
        step = self._step("bury", topic, self._now(), job_id, token, reason_text)

        def parse(replies: list[Any]) -> None:
            if replies[0][0] == BuryCode.STALE:
                raise StaleReservation(topic, job.id)

        return self._refilling(topic, Call((step,), parse), "@" in job.id)

    # -- housekeeping -----------------------------------------------------------------------

    def kick(
        self,
        topic: str,
        id: str | None = None,
        *,
        ids: Sequence[str] | None = None,
        limit: object = 100,
    ) -> Call[int]:
        """Move dead jobs back to ready: one by id, those of ``ids`` that are dead, else up to
        ``limit`` of them (those that died first); how many moved."""
        most = validate.integer(limit, "limit", 1, 10_000)  # checked even when unused
        if ids is not None:
            if id is not None:
                raise InvalidArgument("ids", "give id or ids, not both")
            steps = tuple(
                self._step("kick", topic, self._now(), _wire(job_id), 1)
                for job_id in validate.job_ids(ids)
            )
            return Call(steps, lambda r: sum(int(n) for n in r))
        job_id = "" if id is None else validate.stored_id(id)
        step = self._step("kick", topic, self._now(), job_id, most)
        return Call((step,), lambda r: int(r[0]))

    def pull(self, topic: str, *, own: bool = False) -> Call[Job | None]:
        """Take the next ready job and delete it at once (at-most-once delivery); none on a
        partitioned topic raises TopicPartitioned, unless ``own`` (as :meth:`get`)."""
        step = self._step("pull", topic, self._now(), self.promote_limit)
        call = Call((step,), lambda r: _found(topic, r[0], own))
        return self._refilling(topic, call)

    def requeue(self, topic: str, *, limit: object = 1000) -> Call[int]:
        """Return timed-out reservations to the queue (or dead); how many moved."""
        step = self._requeue_step(topic, limit)
        return self._refilling(topic, Call((step,), lambda r: int(r[0][0]) + int(r[0][1])))

    def requeue_due(self, topic: str, *, limit: object = 1000) -> Call[int | None]:
        """Requeue, and return the next reservation deadline in ms (None: none left)."""
        step = self._requeue_step(topic, limit)
        return self._refilling(topic, Call((step,), lambda r: _optional_ms(r[0][2])))

    def _requeue_step(self, topic: str, limit: object) -> Step:
        return self._step(
            "requeue", topic, self._now(), validate.integer(limit, "limit", 1, 10_000)
        )

    def stats(self, topic: str, *, own: bool = False) -> Call[TopicStats]:
        """Counts per state and totals.

        A partitioned topic raises TopicPartitioned (its jobs live in its partitions: these
        would be its own name's counts alone), unless ``own`` (as :meth:`get`).
        """
        step = self._step("stats", topic, self._now())

        def parse(replies: list[Any]) -> TopicStats:
            _, scheduled, ready, reserved, dead, paused, next_due, *totals, partitions = replies[0]
            if partitions and not own:
                raise TopicPartitioned(topic, partitions)
            return TopicStats(
                topic, scheduled, ready, reserved, dead, bool(paused),
                None if next_due < 0 else to_datetime(next_due), *totals,
            )  # fmt: skip

        return Call((step,), parse)

    def timeline(
        self, topic: str, *, width: object = 60, buckets: object = 60, own: bool = False
    ) -> Call[Timeline]:
        """Scheduled jobs falling due per ``width`` seconds over the next ``buckets`` steps
        (TopicPartitioned on a partitioned topic, unless ``own``: as :meth:`stats`)."""
        width_ms = validate.duration_ms(width, "width", minimum_ms=1000, maximum_ms=86_400_000)
        count = validate.integer(buckets, "buckets", 1, 1440)
        step = self._step("timeline", topic, self._now(), width_ms, count)

        def parse(replies: list[Any]) -> Timeline:
            now, oldest, *counts = replies[0]
            oldest_ready = None if oldest < 0 else to_datetime(oldest)
            return Timeline(topic, to_datetime(now), width_ms / 1000, counts, oldest_ready)

        return self._refusing(topic, Call((step,), parse), own)

    def expire(self, topic: str, id: str) -> Call[bool]:
        """End a reservation now, as if its time to run had run out; True if it was reserved.

        For a stuck reservation (a worker that hangs): the deadline is set in the past and the
        requeue sweep runs, so the job goes back to the queue (or to dead when its attempts are
        used up) at once, and its holder's ack or release is stale from then on.
        """
        keys = self.keys(topic)
        job_id = validate.stored_id(id)
        expire = Step(None, (), ("ZADD", keys.name("reserved"), "XX", "CH", 0, job_id))
        return Call((expire, self._requeue_step(topic, 1000)), lambda r: bool(r[0]))

    def topics(self) -> Call[list[str]]:
        """Every topic that has had a put, sorted (members that are no valid name skipped)."""
        step = Step(None, (), ("SMEMBERS", topics_key(self.prefix)))
        return Call((step,), lambda r: split_topic_names(r[0]).valid)

    def topic_names(self) -> Call[TopicNames]:
        """The topics set split into valid names and members no call accepts (to report)."""
        step = Step(None, (), ("SMEMBERS", topics_key(self.prefix)))
        return Call((step,), lambda r: split_topic_names(r[0]))

    def deleted_topics(self) -> Call[list[tuple[str, int]]]:
        """The topics deleted lately, each with its deletion's time (epoch ms by the Redis
        server's clock), which the requeue sweep watches (see :mod:`redisched.registration`)."""
        step = Step(None, (), ("ZRANGE", deleted_topics_key(self.prefix), 0, -1, "WITHSCORES"))

        def parse(replies: list[Any]) -> list[tuple[str, int]]:
            reply = replies[0]
            if reply and isinstance(reply[0], list):  # RESP3: [member, score] pairs
                pairs = [(member, score) for member, score in reply]
            else:
                pairs = list(zip(reply[::2], reply[1::2], strict=True))
            found = []
            for member, score in pairs:
                for name in split_topic_names([member]).valid:  # not a name: skipped
                    found.append((name, int(float(score))))
            return found

        return Call((step,), parse)

    def forget_deletions(self, before_ms: int) -> Call[None]:
        """Drop the deleted topics' entries older than ``before_ms`` (epoch ms)."""
        key = deleted_topics_key(self.prefix)
        step = Step(None, (), ("ZREMRANGEBYSCORE", key, "-inf", f"({before_ms}"))
        return Call((step,), lambda r: None)

    def holds_jobs(self, topic: str) -> Call[bool]:
        """True when the topic holds jobs or recurring schedules."""
        keys = self.keys(topic)
        step = Step(None, (), ("EXISTS", keys.name("jobs"), keys.name("schedules")))
        return Call((step,), lambda r: r[0] > 0)

    def relist(self, topic: str) -> Call[bool]:
        """Add the topic to the topics set; True when it was missing."""
        step = Step(None, (), ("SADD", topics_key(self.prefix), topic))
        return Call((step,), lambda r: r[0] == 1)

    def jobs(
        self,
        topic: str,
        state: object,
        *,
        prefix: str | None = None,
        limit: object = 100,
        cursor: str | None = None,
        own: bool = False,
    ) -> Call[JobPage]:
        """One page of a topic's jobs in ``state``; pass the page's cursor for the next.

        With ``prefix``, only ids starting with it; one call then examines at most
        :data:`SCAN_LIMIT` jobs of the state, so a page may hold fewer than ``limit`` jobs (or
        none) and still have a cursor: keep paging until the cursor is None. The cursor names
        the last job examined (:mod:`redisched.cursors`), so jobs removed or added before it
        while paging skip or repeat nothing. A partitioned topic raises TopicPartitioned (its
        jobs live in its partitions), unless ``own`` (as :meth:`get`).
        """
        job_state = validate.state(state)
        page_size = validate.integer(limit, "limit", 1, 1000)
        wanted = "" if prefix is None else validate.id_prefix(prefix)
        after = cursors.decode(self.keys(topic).topic, job_state.value, cursor)  # topic checked
        resume: tuple[Arg, ...] = ("", "", b"") if after is None else after
        step = self._step(
            "jobs", topic, self._now(), job_state.value, *resume, page_size, wanted,
            max(page_size, SCAN_LIMIT),
        )  # fmt: skip

        def parse(replies: list[Any]) -> JobPage:
            last, *jobs = replies[0]
            found = [parse_job(topic, j) for j in jobs]
            return JobPage(found, cursors.from_reply(topic, job_state.value, last))

        return self._refusing(topic, Call((step,), parse), own)

    def pause(self, topic: str) -> Call[bool]:
        """Stop the topic from leasing jobs; True if it was running."""
        step = self._step("pause", topic)
        return Call((step,), lambda r: bool(r[0]), self._register(topic))

    def resume(self, topic: str) -> Call[bool]:
        """Let the topic lease jobs again; True if it was paused."""
        step = self._step("resume", topic)
        return Call((step,), lambda r: bool(r[0]))

    # -- operating a topic: bulk actions, purge, reschedule ---------------------------------

    def delete_many(self, topic: str, ids: Sequence[str], *, state: object = None) -> Call[int]:
        """Delete jobs by id; with ``state``, only those still in it. How many were deleted."""
        wanted = "" if state is None else validate.state(state).value
        job_ids = _occurrences_latest_first(validate.job_ids(ids))
        steps = tuple(
            self._step(
                "delete_many",
                topic,
                self._now(),
                wanted,
                *map(_wire, job_ids[i : i + DELETE_CHUNK]),
            )
            for i in range(0, len(job_ids), DELETE_CHUNK)
        )
        call = Call(steps, lambda r: sum(int(n) for n in r))
        return self._refilling(topic, call, any("@" in i for i in job_ids))

    def expire_many(self, topic: str, ids: Sequence[str]) -> Call[int]:
        """End the reservations of ``ids`` now (see :meth:`expire`); how many were reserved."""
        keys = self.keys(topic)
        job_ids = validate.job_ids(ids)
        steps = [Step(None, (), ("ZADD", keys.name("reserved"), "XX", "CH", *_zero(job_ids)))]
        steps.append(self._requeue_step(topic, 10_000))
        return Call(tuple(steps), lambda r: int(r[0]))

    def purge_chunk(
        self,
        topic: str,
        state: object,
        *,
        limit: object = PURGE_CHUNK,
        force: bool = False,
        before: int | None = None,
        up_to_seq: int | None = None,
    ) -> Call[tuple[int, int, int, int]]:
        """Delete up to ``limit`` jobs in ``state``: (deleted, left, before, up_to_seq).

        A reserved job is running: it is purged only with ``force`` (for delete_topic); else
        end its lease with :meth:`expire`. ``before`` and ``up_to_seq`` are None for a purge's
        first chunk, then the ones the previous chunk returned: they hold the purge to the jobs
        it began with (purge.lua; for scheduled, ``up_to_seq`` is the time it began), so it
        ends while jobs are put, and the next occurrence a deleted one's schedule puts is not
        purged too. ``left`` is how many of those are left (for ready and scheduled, at most
        that many).
        """
        job_state = validate.state(state)
        if job_state is JobState.RESERVED and not force:
            raise InvalidArgument(
                "state", "reserved jobs are running: expire their leases instead of purging"
            )
        size = validate.integer(limit, "limit", 1, 10_000)
        bound: Arg = (
            "" if before is None else validate.integer(before, "before", 0, validate.MAX_EPOCH_MS)
        )
        seq: Arg = "" if up_to_seq is None else validate.integer(up_to_seq, "up_to_seq", 0, MAX_SEQ)
        step = self._step("purge", topic, self._now(), job_state.value, size, bound, seq)
        call = Call((step,), lambda r: (int(r[0][0]), int(r[0][1]), int(r[0][2]), int(r[0][3])))
        return self._refilling(topic, call, job_state in (JobState.SCHEDULED, JobState.READY))

    def reschedule(
        self,
        topic: str,
        id: str,
        *,
        delay: object = None,
        run_at: object = None,
        priority: object = None,
        state: object = None,
    ) -> Call[PutResult | None]:
        """Give a job a new due time (and priority), keeping its body: a replace.

        None when there is no such job, or (with ``state``) when it is not in that state.
        """
        job_id = validate.stored_id(id)
        if delay is not None and run_at is not None:
            raise InvalidArgument("delay", "give delay or run_at, not both")
        run_at_arg: Arg = "" if run_at is None else validate.epoch_ms(run_at)
        delay_arg = 0 if delay is None else validate.duration_ms(delay, "delay")
        priority_arg: Arg = "" if priority is None else validate.priority(priority)
        wanted = "" if state is None else validate.state(state).value
        step = self._step(
            "reschedule", topic, self._now(), job_id, run_at_arg, delay_arg, priority_arg, wanted
        )

        def parse(replies: list[Any]) -> PutResult | None:
            status, version = replies[0]
            if status in (RescheduleCode.NOT_FOUND, RescheduleCode.NOT_IN_STATE):
                return None
            return PutResult(_RESCHEDULE_STATUS[status], version)

        return Call((step,), parse)

    def run_now(self, topic: str, id: str) -> Call[bool]:
        """Make a scheduled job ready at once; False when it is not scheduled."""
        call = self.reschedule(topic, id, delay=0, state=JobState.SCHEDULED)
        return Call(call.steps, lambda r: call.parse(r) is not None)

    def run_now_many(self, topic: str, ids: Sequence[str]) -> Call[int]:
        """Make the scheduled jobs of ``ids`` ready at once; how many were scheduled."""
        calls = [self.run_now(topic, job_id) for job_id in validate.job_ids(ids)]
        steps = tuple(step for call in calls for step in call.steps)
        return Call(
            steps, lambda r: sum(call.parse([reply]) for call, reply in zip(calls, r, strict=True))
        )

    def topic_key_names(self, topic: str) -> list[str]:
        """Every key of the topic that any script uses (from the script headers)."""
        keys = self.keys(topic)
        parts = {
            p.name
            for name in scripts.names()
            for p in scripts.get(name).keys
            if p.type != "channel"
        }
        return sorted(keys.name(part) for part in parts)

    # -- throughput over time (see redisched.throughput) --------------------------------------

    def minute(self) -> Call[int]:
        """The current minute since the epoch, by the Redis clock (or the client's override)."""
        if self.clock is not None:
            now_ms = self.clock_ms
            return Call((), lambda r: now_ms() // 60_000)
        return Call((Step(None, (), ("TIME",)),), lambda r: tp.now_minute(r[0]))

    def server_time_ms(self) -> Call[float]:
        """The Redis clock in milliseconds, to the microsecond (or the client's override)."""
        if self.clock is not None:
            clock = self.clock
            return Call((), lambda r: validate.clock_ms(clock()))
        return Call((Step(None, (), ("TIME",)),), lambda r: _time_ms(r[0]))

    def load_scripts(self) -> Call[None]:
        """Load every script on the server (each primary of a cluster), so that no call
        meets NOSCRIPT until the server restarts or fails over."""
        load = [("SCRIPT", "LOAD", script.source) for script in scripts.load_all().values()]
        return Call(tuple(Step(None, (), args) for args in load), lambda r: None)

    def _throughput_key(self, topic: str | None) -> str:
        if topic is None:
            return tp.all_topics_key(self.prefix)
        return tp.topic_key(self.keys(topic))

    def record_throughput(self, minute: int, stats: Sequence[TopicStats]) -> Call[None]:
        """Sample the totals of ``stats`` (and their sum) for ``minute``; trim what is older
        than a day."""
        steps: list[Step] = []
        oldest = f"({minute - tp.KEEP_MINUTES}"
        summed = [0, 0, 0, 0]
        targets: list[tuple[str | None, Sequence[int]]] = []
        for one in stats:
            sample = tp.totals(one)
            summed = [a + b for a, b in zip(summed, sample, strict=True)]
            targets.append((one.topic, sample))
        targets.append((None, summed))
        for topic, counts in targets:
            key = self._throughput_key(topic)
            steps.append(Step(None, (), ("ZADD", key, minute, tp.member(minute, counts))))
            steps.append(Step(None, (), ("ZREMRANGEBYSCORE", key, "-inf", oldest)))
        return Call(tuple(steps), lambda r: None)

    def throughput(self, topic: str | None = None) -> Call[tp.Throughput]:
        """Puts, acks, failures and deaths per minute over the last day (None: every topic)."""
        read = Step(None, (), ("ZRANGEBYSCORE", self._throughput_key(topic), "-inf", "+inf"))
        minute = self.minute()

        def parse(replies: list[Any]) -> tp.Throughput:
            return tp.parse(topic, replies[0], minute.parse(replies[1:]))

        return Call((read, *minute.steps), parse)

    # -- history ----------------------------------------------------------------------------

    def history(self, topic: str, id: str, *, own: bool = False) -> Call[JobHistory | None]:
        """A job's events and, once it ended, its outcome and result; None if never seen
        (or its history aged out). One lookup: O(log n + the job's events). None on a
        partitioned topic raises TopicPartitioned, unless ``own`` (as :meth:`get`)."""
        job_id = validate.stored_id(id)
        step = self._step("history", topic, job_id)
        call = Call((step,), lambda r: history.parse_history(topic, id, r[0]))
        return self._refusing(topic, call, own, lambda found: found is None)

    def events(
        self, topic: str, *, after: object = None, limit: object = 100, own: bool = False
    ) -> Call[list[JobEvent]]:
        """The topic's feed of events, oldest first, after the cursor ``after``. A partitioned
        topic raises TopicPartitioned (each partition has its feed), unless ``own``."""
        count = validate.integer(limit, "limit", 1, 1000)
        entry, index = ("", None) if after is None else history.parse_cursor(topic, after)
        step = self._step("feed", topic, entry, "" if index is None else index, count, 0)
        return self._refusing(topic, Call((step,), lambda r: history.parse_feed(topic, r[0])), own)

    def latest_events(
        self, topic: str, limit: object = 20, *, own: bool = False
    ) -> Call[list[JobEvent]]:
        """The topic's ``limit`` most recent events, oldest first (for the dashboard); as
        :meth:`events` on a partitioned topic."""
        count = validate.integer(limit, "limit", 1, 1000)
        step = self._step("feed", topic, "", "", count, 1)
        return self._refusing(topic, Call((step,), lambda r: history.parse_feed(topic, r[0])), own)

    def finished(
        self,
        topic: str,
        *,
        outcome: object = None,
        limit: object = 100,
        cursor: str | None = None,
        own: bool = False,
    ) -> Call[HistoryPage]:
        """One page of the topic's finished jobs, most recent first, of one ``outcome`` or all
        (TopicPartitioned on a partitioned topic, unless ``own``: as :meth:`jobs`)."""
        wanted = history.outcome(outcome)
        page_size = validate.integer(limit, "limit", 1, 100)
        after = cursors.decode(self.keys(topic).topic, "finished", cursor)  # topic checked
        _, score, member = (0, "", b"") if after is None else after
        step = self._step(
            "finished", topic, score, member, page_size, "" if wanted is None else wanted.value
        )
        call = Call((step,), lambda r: history.parse_finished(topic, r[0]))
        return self._refusing(topic, call, own)

    # -- schedules --------------------------------------------------------------------------

    schedule = schedule_ops.schedule
    """Create or replace a recurring schedule by id (see ``Client.schedule``)."""

    def get_schedule(self, topic: str, id: str, *, own: bool = False) -> Call[Schedule | None]:
        """Read one schedule; None when there is none (TopicPartitioned on a partitioned
        topic's own name, unless ``own``: as :meth:`get`)."""
        return schedule_ops.get_schedule(self, topic, id, own=own)

    def schedules(self, topic: str, *, own: bool = False) -> Call[list[Schedule]]:
        """Every schedule of a topic, sorted by id (TopicPartitioned when the topic is
        partitioned, unless ``own``: the schedules its own name holds)."""
        return schedule_ops.schedules(self, topic, own=own)

    def unschedule(
        self, topic: str, id: str, *, if_version: object = None, own: bool = False
    ) -> Call[bool]:
        """Delete a schedule and its pending occurrence; True if it existed (TopicPartitioned
        on a partitioned topic's own name when it holds no such schedule, unless ``own``)."""
        return schedule_ops.unschedule(self, topic, id, if_version=if_version, own=own)

    # -- topic settings ---------------------------------------------------------------------

    def config(self, topic: str) -> Call[TopicConfig]:
        """The topic's settings."""
        meta = self.keys(topic).name("meta")
        step = Step(None, (), ("HMGET", meta, *topic_config.FIELDS))
        return Call((step,), lambda r: topic_config.decode(r[0]))

    def configure(self, topic: str, changes: dict[str, object]) -> Call[TopicConfig]:
        """Change some of the topic's settings (None restores a default); the settings after."""
        meta = self.keys(topic).name("meta")
        to_set, to_delete = topic_config.encode_changes(changes)
        steps: list[Step] = []
        if to_set:
            steps.append(Step(None, (), ("HSET", meta, *(v for kv in to_set.items() for v in kv))))
        if to_delete:
            steps.append(Step(None, (), ("HDEL", meta, *to_delete)))
        steps.append(Step(None, (), ("HMGET", meta, *topic_config.FIELDS)))
        return Call(tuple(steps), lambda r: topic_config.decode(r[-1]), self._register(topic))

    def meta_fields(self, topic: str, names: Sequence[str]) -> Call[list[bytes | None]]:
        """Some fields of the topic's meta hash, as stored (None when absent)."""
        meta = self.keys(topic).name("meta")
        return Call((Step(None, (), ("HMGET", meta, *names)),), lambda r: list(r[0]))


def _time_ms(reply: Any) -> float:
    seconds, microseconds = reply
    return int(seconds) * 1000 + int(microseconds) / 1000
