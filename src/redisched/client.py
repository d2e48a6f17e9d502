"""``Client`` (blocking) and ``AsyncClient`` (asyncio): the same methods over one core.

Each method is one line: ``ops.Operations`` builds the call, ``protocol.conversation`` runs
it, and the client only moves bytes. A test checks that both expose identical signatures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import redis
import redis.asyncio
from redis.exceptions import RedisClusterException, RedisError

from . import connect, operate, partition_setting, routing, validate, wire
from .durable import DEFAULT_TIMEOUT_MS, TopicFlags, is_pinned
from .errors import BackendError, ClientClosed, InvalidArgument
from .keys import topic_problem
from .models import (
    HistoryPage,
    Job,
    JobEvent,
    JobHistory,
    JobPage,
    JobState,
    Lease,
    PutResult,
    Schedule,
    Timeline,
    TopicStats,
)
from .operate import Progress
from .ops import DEFAULT_MAX_BODY_SIZE, DEFAULT_PROMOTE_LIMIT, Call, Lane, Operations
from .protocol import Batch, ScriptLost, conversation, direct, finish, put_lane
from .registration import Registrations
from .throughput import Throughput
from .topic_config import TopicConfig

T = TypeVar("T")
MAX_BODY_SIZE_LIMIT = 512 << 20
"""The largest ``max_body_size`` a client takes: the largest string Redis stores."""
MAX_PROMOTE_LIMIT = 1_000_000
"""The largest ``promote_limit`` a client takes."""


def _operations(
    prefix: str,
    clock: Callable[[], float] | None,
    max_body_size: int,
    promote_limit: int,
    durable: object = False,
    durable_timeout: object = DEFAULT_TIMEOUT_MS / 1000,
) -> Operations:
    if not isinstance(prefix, str):
        raise InvalidArgument("prefix", f"must be a string, not {type(prefix).__name__}")
    problem = topic_problem(prefix)  # braces would put every topic under one hash tag
    if problem is not None:
        raise InvalidArgument("prefix", problem)
    if clock is not None and not callable(clock):
        kind = type(clock).__name__
        raise InvalidArgument("clock", f"must be None or a function of epoch seconds, not {kind}")
    validate.integer(max_body_size, "max_body_size", 0, MAX_BODY_SIZE_LIMIT)
    validate.integer(promote_limit, "promote_limit", 1, MAX_PROMOTE_LIMIT)
    if not isinstance(durable, bool):
        raise InvalidArgument("durable", f"must be a bool, not {type(durable).__name__}")
    return Operations(
        prefix=prefix, clock=clock, max_body_size=max_body_size, promote_limit=promote_limit,
        durable=durable, durable_timeout_ms=validate.duration_ms(
            durable_timeout, "durable_timeout", minimum_ms=1, maximum_ms=60_000
        ),
    )  # fmt: skip


def _connection(value: object, client: str) -> None:
    """Raise TypeError unless ``value`` is a redis-py connection of the kind ``client`` uses,
    and InvalidArgument for one that decodes replies (``decode_responses=True``) or encodes
    text in another encoding than UTF-8.

    Without this a URL string (or an asyncio connection given to the blocking client) is
    taken and fails on the first call with an AttributeError far from the mistake.
    """
    if client == "Client":
        wanted: tuple[type, ...] = (redis.Redis, redis.RedisCluster)
        mismatched: tuple[type, ...] = (redis.asyncio.Redis, redis.asyncio.RedisCluster)
        names, other = "redis.Redis or redis.RedisCluster", "redisched.AsyncClient for an asyncio"
    else:
        wanted = (redis.asyncio.Redis, redis.asyncio.RedisCluster)
        mismatched = (redis.Redis, redis.RedisCluster)
        names = "redis.asyncio.Redis or redis.asyncio.RedisCluster"
        other = "redisched.Client for a blocking"
    if isinstance(value, wanted):
        encoder = value.get_encoder()  # type: ignore[attr-defined]
        if encoder.decode_responses:  # a reserve would take a job and fail reading it
            raise InvalidArgument(
                "redis", "must be a connection made with decode_responses=False (bodies are bytes)"
            )
        if str(encoder.encoding).lower().replace("-", "").replace("_", "") != "utf8":
            # ids and topics are UTF-8 in Redis: others would be unreadable, or other keys
            raise InvalidArgument(
                "redis", f"must be a connection encoding text as UTF-8, not {encoder.encoding}"
            )
        return
    kind = type(value).__qualname__
    if type(value).__module__ != "builtins":
        kind = f"{type(value).__module__}.{kind}"
    if isinstance(value, (str, bytes)):
        hint = f"; to connect to a URL, use {client}.from_url(url)"
    elif isinstance(value, mismatched):
        hint = f"; use {other} connection"
    else:
        hint = f" (or connect with {client}.from_url(url))"
    raise TypeError(f"{client}(redis): must be a {names} connection, not {kind}{hint}")


def _check_url(url: object, cluster: object) -> None:
    """Refuse a ``from_url`` URL that is no str, and a ``cluster`` that is no bool."""
    if not isinstance(url, str):
        kind = type(url).__name__
        raise InvalidArgument("url", f"must be a string such as redis://host:6379/0, not {kind}")
    if not isinstance(cluster, bool):
        raise InvalidArgument("cluster", f"must be a bool, not {type(cluster).__name__}")


def _connected(connection: Callable[..., T], url: str, cluster: bool) -> T:
    """``connection(url, cluster=cluster)``: a URL redis-py cannot read (a ValueError such
    as "Redis URL must specify one of the following schemes") is an InvalidArgument naming
    url, and a cluster whose nodes cannot be reached (the blocking client asks them at once)
    a BackendError."""
    try:
        return connection(url, cluster=cluster)
    except InvalidArgument:
        raise
    except ValueError as exc:
        raise InvalidArgument("url", str(exc)) from exc
    except (RedisError, RedisClusterException, OSError) as exc:
        raise BackendError(f"Redis is unavailable: {exc}") from exc


def _call(value: Call[T]) -> Call[T]:
    """``value`` if it is a Call, else InvalidArgument (it would fail mid-send, unpacked)."""
    if not isinstance(value, Call):
        kind = type(value).__name__
        raise InvalidArgument("call", f"must be a Call built with client.ops, not {kind}")
    return value


def _keep_connections(value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument("keep_connections", f"must be a bool, not {type(value).__name__}")


def _retry_for(value: object) -> float:
    return validate.duration_ms(value, "retry_for", maximum_ms=3_600_000) / 1000


def _retry_delay(exc: BaseException, attempt: int, deadline: float) -> float:
    """Seconds to wait before running a call again after ``exc``; raises BackendError to give
    up (``exc`` itself, or a cluster error wrapped)."""
    if connect.is_retryable(exc):
        delay = connect.backoff(attempt)
        if time.monotonic() + delay <= deadline:
            return delay
    if isinstance(exc, BackendError):
        raise exc
    raise BackendError(f"Redis Cluster is unavailable: {exc}") from exc


class Client:
    """A blocking redisched client over a ``redis.Redis`` (or ``RedisCluster``) connection.

    Safe to share between threads.

    A partitioned topic's jobs live in its partitions: a call naming the partitioned topic
    itself raises :class:`~redisched.TopicPartitioned` for a put or schedule, for a get,
    get_schedule, history, delete, reserve, lease or pull that finds nothing there, and for
    its stats, timeline, listings and schedules (use
    :class:`~redisched.partitions.PartitionedTopic`).

    Args:
        redis: a connection made with ``decode_responses=False`` (bodies are bytes).
        prefix: the first part of every key name (1-200 characters, as a topic name: no
            braces, which would put every topic under one hash tag, nor control characters).
        clock: None (the Redis server's clock) or a function returning epoch seconds.
        max_body_size: the largest body accepted, in bytes (at most 512 MiB).
        promote_limit: how many due jobs one reserve moves to ready at most (at least 1).
        durable: make every put wait for a replica (``WAIT``), unless a call says
            ``durable=False``; see :mod:`redisched.durable`.
        durable_timeout: seconds a durable put waits for a replica before NotReplicated.
        retry_for: seconds to keep retrying a call through connection errors, redirections
            and cluster failovers (with backoff) from its first failure before raising
            BackendError; 0 = never.
        keep_connections: keep the pool's connections that script calls used between calls
            (one per thread or task calling at the same time), which makes a one-job call
            ~10% faster (:mod:`redisched.wire`). The pool counts them as in use: leave it
            False when your own commands share ``redis``'s pool and may need all of its
            ``max_connections``. :meth:`from_url`, whose pool is the client's own, sets it;
            :meth:`close` gives the connections back.
    """

    def __init__(
        self,
        redis: redis.Redis | redis.RedisCluster,
        *,
        prefix: str = "redisched",
        clock: Callable[[], float] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        promote_limit: int = DEFAULT_PROMOTE_LIMIT,
        durable: bool = False,
        durable_timeout: float = 1.0,
        retry_for: float = 0.0,
        keep_connections: bool = False,
    ) -> None:
        _connection(redis, "Client")
        self.redis = redis
        self.ops = _operations(
            prefix, clock, max_body_size, promote_limit, durable, durable_timeout
        )
        self.retry_for = _retry_for(retry_for)
        _keep_connections(keep_connections)
        self._registered = Registrations()
        self._durable_topics = TopicFlags()
        self._wire = (
            wire.Wire(redis, keep_connections)  # type: ignore[arg-type]
            if wire.usable(redis)
            else None
        )
        self._open = True  # False once close() began (see _send)

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, **options: Any) -> Client:
        """Connect to ``url``; options as __init__.

        ``redis://``, ``rediss://`` and ``unix://`` reach one server (``cluster=True``: a
        node of a Redis Cluster); ``redis+sentinel://host:port[,host:port]/service`` the
        primary the Sentinels name (see :mod:`redisched.connect`). On a cluster or Sentinel
        ``retry_for`` defaults to 10 seconds, enough to ride out a failover.
        """
        _check_url(url, cluster)
        options.setdefault("retry_for", connect.default_retry_for(url, cluster))
        options.setdefault("keep_connections", True)  # the pool is the client's own
        connection = _connected(connect.sync_connection, url, cluster)
        try:
            return cls(connection, **options)
        except BaseException:  # a bad option: the pool (a cluster's sockets) is nobody's
            connection.close()
            raise

    def close(self) -> None:
        """Close the connection pool; a later call raises ClientClosed (closing again is
        harmless)."""
        self._run = self._closed  # type: ignore[method-assign]  # see _closed
        self._open = False
        self._shut()

    def _shut(self) -> None:
        if self._wire is not None:
            self._wire.close()
        self.redis.close()

    def _closed(self, call: Call[Any], retry_for: float | None = None) -> NoReturn:
        """What ``_run`` is once the client is closed (every call goes through ``_run``): an
        open client's calls check nothing for it (``_send`` checks ``_open`` after each round
        trip, for the calls in flight at close())."""
        raise ClientClosed("this Client is closed: make a new one")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: Call[T], retry_for: float | None = None) -> T:
        batch = direct(call, self._registered, self._durable_topics)
        try:
            if batch is not None:  # the common case: one command, nothing before or after
                try:
                    return finish(call.parse, self._send(batch))
                except ScriptLost:
                    pass
            return self._converse(call)
        except (BackendError, RedisClusterException) as exc:
            return self._retry(call, exc, retry_for)

    def _run_lane(self, lane: Lane[T], again: Callable[[], Call[T]]) -> T:
        """``_run`` for a call made straight as its batch (:func:`put_lane`); ``again`` makes
        its Call, for what the batch alone can't do (load a lost script, retry)."""
        try:
            try:
                return finish(lane[1], self._send(lane[0]))
            except ScriptLost:
                pass
            return self._converse(again())
        except (BackendError, RedisClusterException) as exc:
            return self._retry(again(), exc, None)

    def _retry(self, call: Call[T], failed: BaseException, retry_for: float | None) -> T:
        # Retrying through connection errors for retry_for seconds from the first failure
        # (read no clock until a call fails).
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        attempt = 0
        while True:
            time.sleep(_retry_delay(failed, attempt, deadline))
            attempt += 1
            try:
                return self._converse(call)
            except (BackendError, RedisClusterException) as exc:
                failed = exc

    def _converse(self, call: Call[T]) -> T:
        chat = conversation(call, self._registered, self._durable_topics)
        try:
            batch = next(chat)
            while True:
                try:
                    replies = self._send(batch)
                except BackendError as exc:  # the conversation decides: housekeeping goes on
                    batch = chat.throw(exc)
                    continue
                batch = chat.send(replies)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _send(self, batch: Batch) -> list[Any]:
        try:
            if type(self.redis) is not redis.Redis and isinstance(self.redis, redis.RedisCluster):
                # (a Protocol class: isinstance costs about a microsecond, so Redis first)
                if is_pinned(batch):
                    return routing.send_pinned(self.redis, batch)
                if batch[0][0] == "SCRIPT":  # to the primaries it is for: not a cluster pipeline
                    return routing.load_scripts(self.redis, batch)
            if self._wire is not None:
                replies = self._wire.send(batch)
                if replies is not wire.AGAIN:
                    return replies  # type: ignore[return-value]
                self._wire.close()  # redis-py's path below takes from the pool: the kept too
            if len(batch) == 1:
                try:
                    return [self.redis.execute_command(*batch[0])]  # type: ignore[no-untyped-call]
                except (RedisError, OSError) as exc:
                    if _is_transport_error(exc):
                        raise
                    return [exc]
            pipe = self.redis.pipeline(transaction=False)
            for cmd in batch:
                pipe.execute_command(*cmd)
            return pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            if not self._open:  # a call in flight at close()
                raise ClientClosed("this Client was closed during the call") from None
            raise BackendError(f"Redis is unavailable: {exc}") from exc
        finally:
            if not self._open:  # a call in flight at close(): its connection is closed too
                self._shut()

    def execute(self, call: Call[T], *, retry_for: float | Any = None) -> T:
        """Run a call built with ``self.ops`` (several can be joined into one round trip).

        ``retry_for``: seconds (or a timedelta) to retry through connection errors, for this
        call only (None: the client's :attr:`retry_for`; 0: fail at the first).
        """
        if retry_for is None:
            return self._run(_call(call))
        return self._run(_call(call), _retry_for(retry_for))

    def put(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        delay: float | Any = None,
        run_at: datetime | float | None = None,
        ttr: float | Any = None,
        priority: int = 0,
        max_attempts: int | None = None,
        replace: bool = False,
        if_version: int | None = None,
        durable: bool | None = None,
    ) -> PutResult:
        """Create a job (or replace it with ``replace=True``); see docs/design.md section 2.

        Args:
            topic: the queue the job lives in.
            id: the job's id, chosen by you; any non-empty string up to 1024 UTF-8 bytes.
            body: bytes, or a str stored as UTF-8.
            delay: seconds (or a timedelta) from now until the job is due.
            run_at: an aware datetime or epoch seconds at which the job is due.
            ttr: seconds a reservation lasts before the job is requeued (default: the
                topic's, else 60).
            priority: lower runs first among due jobs.
            max_attempts: reservations before the job goes dead (None: the topic's default,
                else 25, :data:`redisched.DEFAULT_MAX_ATTEMPTS`).
            replace: replace an existing job instead of leaving it as it is.
            if_version: only act if the job is at this version (else VersionConflict).
            durable: True to return only once a replica has the job (else NotReplicated);
                None follows the client's and the topic's ``durable`` setting.
        """
        options = (delay, run_at, ttr, max_attempts, if_version, durable, priority)
        lane = put_lane(self.ops, self._registered, self._durable_topics, topic, id, body,
                        replace, options) if self._open else None  # fmt: skip
        if lane is not None:
            return self._run_lane(lane, lambda: self.ops.put(topic, id, body, replace=replace))
        return self._run(
            self.ops.put(
                topic, id, body, delay=delay, run_at=run_at, ttr=ttr, priority=priority,
                max_attempts=max_attempts, replace=replace, if_version=if_version,
                durable=durable,
            )
        )  # fmt: skip

    def put_many(
        self,
        topic: str,
        jobs: Iterable[tuple[str, bytes | str]],
        *,
        delay: float | Any = None,
        run_at: datetime | float | None = None,
        ttr: float | Any = None,
        priority: int = 0,
        max_attempts: int | None = None,
        replace: bool = False,
        durable: bool | None = None,
    ) -> list[PutResult]:
        """Put many ``(id, body)`` jobs sharing the same options, in one round trip."""
        return self._run(
            self.ops.put_many(
                topic, jobs, delay=delay, run_at=run_at, ttr=ttr, priority=priority,
                max_attempts=max_attempts, replace=replace, durable=durable,
            )
        )  # fmt: skip

    def get(self, topic: str, id: str) -> Job | None:
        """The job with this id, or None."""
        return self._run(self.ops.get(topic, id))

    def delete(self, topic: str, id: str, *, if_version: int | None = None) -> bool:
        """Delete a job in any state; True if it existed.

        Deleting a schedule's pending occurrence skips that run: the schedule goes on.
        """
        return self._run(self.ops.delete(topic, id, if_version=if_version))

    def abort(self, topic: str, id: str, *, reason: str | None = None) -> bool:
        """Stop a job: cancel its running handler (any Worker), or keep it from running; True
        if it existed. Its history ends ``aborted``, with ``reason`` in the ``aborted`` event."""
        return self._run(self.ops.abort(topic, id, reason=reason))

    def reserve(self, topic: str, *, ttr: float | Any = None) -> Job | None:
        """Lease the next due job (lowest priority number first), or None."""
        return self._run(self.ops.reserve(topic, ttr=ttr))

    def reserve_many(self, topic: str, count: int, *, ttr: float | Any = None) -> list[Job]:
        """Lease up to ``count`` due jobs."""
        return self._run(self.ops.reserve_many(topic, count, ttr=ttr))

    def lease(self, topic: str, count: int, *, ttr: float | Any = None) -> Lease:
        """Lease up to ``count`` jobs and learn when the next job or timeout is due."""
        return self._run(self.ops.lease(topic, count, ttr=ttr))

    def ack(self, job: Any, *, result: object = None) -> None:
        """Finish a reserved job, keeping ``result`` (bytes, str or JSON data) in its history.

        Raises StaleReservation if its lease was lost.
        """
        if result is None and self._open:
            lane = self.ops.lane_ack(job)
            if lane is not None:
                return self._run_lane(lane, lambda: self.ops.ack(job))
        return self._run(self.ops.ack(job, result=result))

    def ack_many(
        self, topic: str, jobs: Sequence[Any], *, results: Sequence[object] | None = None
    ) -> list[bool]:
        """Finish several reserved jobs of one topic (``results``: one per job); False for
        each stale one."""
        return self._run(self.ops.ack_many(topic, jobs, results=results))

    def ack_and_lease(
        self,
        topic: str,
        done: Sequence[Any],
        count: int,
        *,
        ttr: float | Any = None,
        results: Sequence[object] | None = None,
    ) -> tuple[list[bool], Lease]:
        """Ack ``done`` (with ``results``) and lease up to ``count`` more jobs in one round trip."""
        return self._run(self.ops.ack_and_lease(topic, done, count, ttr=ttr, results=results))

    def release(
        self,
        job: Any,
        *,
        delay: float | Any = 0,
        reason: str | None = None,
        unstarted: bool = False,
        error: str | None = None,
    ) -> JobState:
        """Give a reserved job back, due after ``delay``; the state it is in now.

        A job whose ``max_attempts`` are used up goes to dead instead. ``reason`` is kept as the
        job's ``last_error`` (``error`` is its deprecated old name). ``unstarted=True`` gives
        the attempt back: the job was leased but never handed to anyone, or cut short by the
        consumer for its own reason, such as a stop (see :meth:`Operations.release`).
        """
        return self._run(
            self.ops.release(job, delay=delay, reason=reason, unstarted=unstarted, error=error)
        )

    def touch(self, job: Any, *, ttr: float | Any = None) -> datetime:
        """Move a reservation's deadline to now + ``ttr`` (default: the job's ttr); the new
        deadline. A ``ttr`` shorter than the time left shortens the reservation."""
        return self._run(self.ops.touch(job, ttr=ttr))

    def bury(self, job: Any, *, reason: str | None = None) -> None:
        """Move a reserved job to dead, keeping ``reason`` as its last error."""
        return self._run(self.ops.bury(job, reason=reason))

    def kick(
        self,
        topic: str,
        id: str | None = None,
        *,
        ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> int:
        """Move dead jobs back to ready (one by id, those of ``ids`` that are dead, else up to
        ``limit``); how many."""
        return self._run(self.ops.kick(topic, id, ids=ids, limit=limit))

    def pull(self, topic: str) -> Job | None:
        """Take the next due job and delete it at once (at-most-once), or None."""
        return self._run(self.ops.pull(topic))

    def requeue(self, topic: str, *, limit: int = 1000) -> int:
        """Return timed-out reservations to the queue (or dead); how many moved."""
        return self._run(self.ops.requeue(topic, limit=limit))

    def stats(self, topic: str) -> TopicStats:
        """Counts of the topic's jobs per state, and totals."""
        return self._run(self.ops.stats(topic))

    def timeline(self, topic: str, *, width: float | Any = 60, buckets: int = 60) -> Timeline:
        """Scheduled jobs falling due per ``width`` seconds over the next ``buckets`` steps."""
        return self._run(self.ops.timeline(topic, width=width, buckets=buckets))

    def expire(self, topic: str, id: str) -> bool:
        """End a stuck reservation now, as if its ttr had run out; True if it was reserved."""
        return self._run(self.ops.expire(topic, id))

    def topics(self) -> list[str]:
        """Every topic listed, sorted: a topic is listed from its first put, schedule, setting or
        pause until :meth:`delete_topic`."""
        return self._run(self.ops.topics())

    def jobs(
        self,
        topic: str,
        state: JobState | str,
        *,
        prefix: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the topic's jobs in ``state``; pass ``page.cursor`` for the next.

        The cursor names the last job the page examined: jobs deleted, reserved or added
        before it meanwhile make the next page skip or repeat nothing. ``prefix`` keeps the
        ids starting with it; each call then examines a bounded number of jobs, so a page can
        be short (even empty) while its cursor is not None.
        """
        return self._run(self.ops.jobs(topic, state, prefix=prefix, limit=limit, cursor=cursor))

    def pause(self, topic: str) -> bool:
        """Stop the topic from leasing jobs; True if it was running."""
        return self._drive(partition_setting.pause_topic(self.ops, topic, True))

    def resume(self, topic: str) -> bool:
        """Let a paused topic lease jobs again; True if it was paused."""
        return self._drive(partition_setting.pause_topic(self.ops, topic, False))

    def delete_many(
        self, topic: str, ids: Sequence[str], *, state: JobState | str | None = None
    ) -> int:
        """Delete jobs by id (with ``state``: only those still in it); how many were deleted."""
        return self._run(self.ops.delete_many(topic, ids, state=state))

    def expire_many(self, topic: str, ids: Sequence[str]) -> int:
        """End the reservations of ``ids`` now, as if their ttr had run out; how many."""
        return self._run(self.ops.expire_many(topic, ids))

    def purge(self, topic: str, state: JobState | str, *, progress: Progress | None = None) -> int:
        """Delete every job in ``state`` (not reserved: expire those), in bounded chunks.

        The purge takes the jobs that were in ``state`` when it began, not those that come
        meanwhile (but for a scheduled job on a topic with history off, whose record cannot
        say when it came), so it ends while jobs are put. ``progress(done, left)`` is called
        after each chunk (for ready and scheduled, ``left`` may count newer jobs too). Returns
        how many were deleted.
        """
        return self._drive(operate.purge(self.ops, topic, state, progress=progress))

    def delete_topic(
        self, topic: str, *, force: bool = False, progress: Progress | None = None
    ) -> int:
        """Delete a topic with its jobs, settings and counters; how many jobs it held.

        Raises TopicBusy while jobs are reserved, unless ``force=True``.
        """
        try:
            return self._drive(
                operate.delete_topic(self.ops, topic, force=force, progress=progress)
            )
        finally:
            self._registered.discard(topic)  # a put from now on adds it to the set again

    def reschedule(
        self,
        topic: str,
        id: str,
        *,
        delay: float | Any = None,
        run_at: datetime | float | None = None,
        priority: int | None = None,
        state: JobState | str | None = None,
    ) -> PutResult | None:
        """Give a job a new due time (and priority), keeping its body: a replace.

        ``delay`` or ``run_at`` as in :meth:`put` (neither: now). With ``state``, only if the
        job is in that state. None when there is no such job (or it is in another state).
        """
        return self._run(
            self.ops.reschedule(
                topic, id, delay=delay, run_at=run_at, priority=priority, state=state
            )
        )

    def run_now(self, topic: str, id: str) -> bool:
        """Make a scheduled job ready at once; False when it is not scheduled."""
        return self._run(self.ops.run_now(topic, id))

    def run_now_many(self, topic: str, ids: Sequence[str]) -> int:
        """Make the scheduled jobs of ``ids`` ready at once; how many were scheduled."""
        return self._run(self.ops.run_now_many(topic, ids))

    def _drive(self, flow: operate.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(self._run(call))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def throughput(self, topic: str | None = None) -> Throughput:
        """Puts, acks, failures and deaths per minute over the last day (None: every topic),
        as sampled once a minute by ``redisched serve``."""
        return self._run(self.ops.throughput(topic))

    def history(self, topic: str, id: str) -> JobHistory | None:
        """What happened to a job, live or finished: its events, outcome and result.

        None when the id was never seen or its history aged out (see ``keep_finished``).
        """
        return self._run(self.ops.history(topic, id))

    def events(self, topic: str, *, after: str | None = None, limit: int = 100) -> list[JobEvent]:
        """The topic's feed of events, oldest first; ``after`` is the last ``cursor`` seen."""
        return self._run(self.ops.events(topic, after=after, limit=limit))

    def finished(
        self,
        topic: str,
        *,
        outcome: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """One page of the topic's finished jobs, most recent first (``outcome``: done,
        cancelled, dead or pulled; None for all); pass ``page.cursor`` (the last job looked
        at) for the next: jobs finishing meanwhile are not repeated."""
        return self._run(self.ops.finished(topic, outcome=outcome, limit=limit, cursor=cursor))

    def schedule(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        start_at: datetime | float | None = None,
        end_at: datetime | float | None = None,
        ttr: float | timedelta | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        if_version: int | None = None,
    ) -> Schedule:
        """Create or replace (by id) a recurring schedule; exactly one of ``cron`` and ``every``.

        Each occurrence is an ordinary job ``<id>@<UTC time>`` (e.g.
        ``digest@2027-03-29T07:00:00Z``) with this body and options; the next one is put in
        the step that reserves the current one. ``cron`` is a 5-field crontab read in ``tz``
        (Debian cron DST rules); ``every`` is whole seconds (>= 1) from ``start_at`` (default:
        now; an interval replaced without ``start_at`` keeps its anchor). A replacement takes
        effect from the next occurrence not yet reserved. An ``end_at`` not after
        ``start_at``, or already past by the Redis server's clock, is an InvalidArgument.
        ``if_version`` makes it conditional (VersionConflict on a mismatch).
        """
        return self._run(
            self.ops.schedule(
                topic, id, body, cron=cron, every=every, tz=tz, start_at=start_at,
                end_at=end_at, ttr=ttr, priority=priority, max_attempts=max_attempts,
                if_version=if_version,
            )
        )  # fmt: skip

    def get_schedule(self, topic: str, id: str) -> Schedule | None:
        """A schedule by id, or None (TopicPartitioned on a partitioned topic's own name when
        it holds no such schedule: a schedule made over HTTP or the CLI lives in its id's
        partition)."""
        return self._run(self.ops.get_schedule(topic, id))

    def schedules(self, topic: str) -> list[Schedule]:
        """Every schedule of the topic, sorted by id (TopicPartitioned on a partitioned
        topic's own name: its schedules are spread over its partitions)."""
        return self._run(self.ops.schedules(topic))

    def unschedule(self, topic: str, id: str, *, if_version: int | None = None) -> bool:
        """Delete a schedule and its pending occurrence (a running one is left alone);
        True if it existed (TopicPartitioned on a partitioned topic's own name when it holds no
        such schedule: a schedule made over HTTP or the CLI lives in its id's partition)."""
        return self._run(self.ops.unschedule(topic, id, if_version=if_version))

    def config(self, topic: str) -> TopicConfig:
        """The topic's settings (default ttr, max_attempts, backoff, webhook, limits, and how
        many partitions it is spread over)."""
        return self._run(partition_setting.read_config(self.ops, topic))

    def configure(self, topic: str, **changes: Any) -> TopicConfig:
        """Change the topic's settings; a value of None restores the default.

        Keywords: ttr, max_attempts, backoff, backoff_max (seconds or timedelta), webhook
        (a Webhook, a mapping with url/secrets/timeout, or None), concurrency, rate, durable
        (every put waits for a replica), history (False records no events or finished jobs),
        keep_finished, keep_finished_for, keep_dead, keep_dead_for, keep_events (retention)
        and dedup_window (seconds a finished id stays taken for create-only puts).

        A webhook URL's form is checked, not its target: a private or cloud metadata address
        is the service's to refuse (``PATCH`` and ``redisched config`` refuse it when
        configured; the dispatcher holds a topic whose target it refuses, and refuses every
        connection to such an address). Check it first with
        :func:`redisched.push.targets.check_url` when the URL comes from someone else.
        """
        return self._drive(partition_setting.configure_settings(self.ops, topic, changes))


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same methods and arguments, awaitable."""

    def __init__(
        self,
        redis: redis.asyncio.Redis | redis.asyncio.RedisCluster,
        *,
        prefix: str = "redisched",
        clock: Callable[[], float] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        promote_limit: int = DEFAULT_PROMOTE_LIMIT,
        durable: bool = False,
        durable_timeout: float = 1.0,
        retry_for: float = 0.0,
        keep_connections: bool = False,
    ) -> None:
        _connection(redis, "AsyncClient")
        self.redis = redis
        self.ops = _operations(
            prefix, clock, max_body_size, promote_limit, durable, durable_timeout
        )
        self.retry_for = _retry_for(retry_for)
        _keep_connections(keep_connections)
        self._registered = Registrations()
        self._durable_topics = TopicFlags()
        self._nodes = routing.NodeClients()
        self._cluster_ready = False
        self._cluster_lock = asyncio.Lock()
        self._wire = (
            wire.AsyncWire(redis, keep_connections)  # type: ignore[arg-type]
            if wire.usable(redis)
            else None
        )
        self._open = True  # False once close() began (see _send)

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, **options: Any) -> AsyncClient:
        """Connect to ``url``; options as __init__ (URL forms as :meth:`Client.from_url`)."""
        _check_url(url, cluster)
        options.setdefault("retry_for", connect.default_retry_for(url, cluster))
        options.setdefault("keep_connections", True)  # the pool is the client's own
        return cls(_connected(connect.async_connection, url, cluster), **options)

    async def close(self) -> None:
        """Close the connection pool; a later call raises ClientClosed (closing again is
        harmless)."""
        self._run = self._closed  # type: ignore[method-assign]  # see _closed
        self._open = False
        await self._shut()

    async def aclose(self) -> None:
        """:meth:`close`, by the name asyncio's closers use (``contextlib.aclosing``,
        redis-py's asyncio clients)."""
        await self.close()

    async def _shut(self) -> None:
        if self._wire is not None:
            await self._wire.close()
        await self._nodes.close()
        await self.redis.aclose()

    async def _closed(self, call: Call[Any], retry_for: float | None = None) -> NoReturn:
        """As :meth:`Client._closed`."""
        raise ClientClosed("this AsyncClient is closed: make a new one")

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, call: Call[T], retry_for: float | None = None) -> T:
        batch = direct(call, self._registered, self._durable_topics)
        try:
            if batch is not None:  # the common case: one command, nothing before or after
                try:
                    return finish(call.parse, await self._send(batch))
                except ScriptLost:
                    pass
            return await self._converse(call)
        except (BackendError, RedisClusterException) as exc:
            return await self._retry(call, exc, retry_for)

    async def _run_lane(self, lane: Lane[T], again: Callable[[], Call[T]]) -> T:
        """As :meth:`Client._run_lane`."""
        try:
            try:
                return finish(lane[1], await self._send(lane[0]))
            except ScriptLost:
                pass
            return await self._converse(again())
        except (BackendError, RedisClusterException) as exc:
            return await self._retry(again(), exc, None)

    async def _retry(self, call: Call[T], failed: BaseException, retry_for: float | None) -> T:
        # Retrying through connection errors for retry_for seconds from the first failure
        # (read no clock until a call fails).
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        attempt = 0
        while True:
            await asyncio.sleep(_retry_delay(failed, attempt, deadline))
            attempt += 1
            try:
                return await self._converse(call)
            except (BackendError, RedisClusterException) as exc:
                failed = exc

    async def _converse(self, call: Call[T]) -> T:
        chat = conversation(call, self._registered, self._durable_topics)
        try:
            batch = next(chat)
            while True:
                try:
                    replies = await self._send(batch)
                except BackendError as exc:  # the conversation decides: housekeeping goes on
                    batch = chat.throw(exc)
                    continue
                batch = chat.send(replies)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _send(self, batch: Batch) -> list[Any]:
        try:
            if type(self.redis) is not redis.asyncio.Redis and isinstance(
                self.redis, redis.asyncio.RedisCluster
            ):
                if not self._cluster_ready:
                    await self._initialize_cluster(self.redis)
                if is_pinned(batch):
                    return await routing.send_pinned_async(self.redis, batch, self._nodes)
                if batch[0][0] == "SCRIPT":  # to the primaries it is for: not a cluster pipeline
                    return await routing.load_scripts_async(self.redis, batch, self._nodes)
            if self._wire is not None:
                replies = await self._wire.send(batch)
                if replies is not wire.AGAIN:
                    return replies  # type: ignore[return-value]
                await self._wire.close()  # redis-py's path below takes from the pool: the kept too
            if len(batch) == 1:
                try:
                    return [await self.redis.execute_command(*batch[0])]
                except (RedisError, OSError) as exc:
                    if _is_transport_error(exc):
                        raise
                    return [exc]
            pipe = self.redis.pipeline(transaction=False)
            for cmd in batch:
                pipe.execute_command(*cmd)
            return await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            if not self._open:  # a call in flight at close()
                raise ClientClosed("this AsyncClient was closed during the call") from None
            raise BackendError(f"Redis is unavailable: {exc}") from exc
        except (AttributeError, TypeError) as exc:
            if not connect.closed_mid_write(exc):
                raise
            if not self._open:  # a call in flight at close()
                raise ClientClosed("this AsyncClient was closed during the call") from None
            lost = redis.exceptions.ConnectionError(f"connection closed mid-write: {exc!r}")
            lost.__cause__ = exc
            raise BackendError(f"Redis is unavailable: {lost}") from lost
        finally:
            if not self._open:  # a call in flight at close(): its connection is closed too
                await self._shut()

    async def execute(self, call: Call[T], *, retry_for: float | Any = None) -> T:
        """Run a call built with ``self.ops`` (several can be joined into one round trip);
        ``retry_for`` as :meth:`Client.execute`."""
        if retry_for is None:
            return await self._run(_call(call))
        return await self._run(_call(call), _retry_for(retry_for))

    async def _initialize_cluster(self, cluster: redis.asyncio.RedisCluster) -> None:
        # Concurrent first commands each start redis-py's lazy cluster discovery, and the
        # discoveries race (a command then writes to a connection being replaced): discover
        # once, before any command.
        async with self._cluster_lock:
            if not self._cluster_ready:
                await cluster.initialize()
                self._cluster_ready = True

    async def put(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        delay: float | Any = None,
        run_at: datetime | float | None = None,
        ttr: float | Any = None,
        priority: int = 0,
        max_attempts: int | None = None,
        replace: bool = False,
        if_version: int | None = None,
        durable: bool | None = None,
    ) -> PutResult:
        """Create a job (or replace it with ``replace=True``); see docs/design.md section 2."""
        options = (delay, run_at, ttr, max_attempts, if_version, durable, priority)
        lane = put_lane(self.ops, self._registered, self._durable_topics, topic, id, body,
                        replace, options) if self._open else None  # fmt: skip
        if lane is not None:
            again = lambda: self.ops.put(topic, id, body, replace=replace)  # noqa: E731
            return await self._run_lane(lane, again)
        return await self._run(
            self.ops.put(
                topic, id, body, delay=delay, run_at=run_at, ttr=ttr, priority=priority,
                max_attempts=max_attempts, replace=replace, if_version=if_version,
                durable=durable,
            )
        )  # fmt: skip

    async def put_many(
        self,
        topic: str,
        jobs: Iterable[tuple[str, bytes | str]],
        *,
        delay: float | Any = None,
        run_at: datetime | float | None = None,
        ttr: float | Any = None,
        priority: int = 0,
        max_attempts: int | None = None,
        replace: bool = False,
        durable: bool | None = None,
    ) -> list[PutResult]:
        """Put many ``(id, body)`` jobs sharing the same options, in one round trip."""
        return await self._run(
            self.ops.put_many(
                topic, jobs, delay=delay, run_at=run_at, ttr=ttr, priority=priority,
                max_attempts=max_attempts, replace=replace, durable=durable,
            )
        )  # fmt: skip

    async def get(self, topic: str, id: str) -> Job | None:
        """The job with this id, or None."""
        return await self._run(self.ops.get(topic, id))

    async def delete(self, topic: str, id: str, *, if_version: int | None = None) -> bool:
        """Delete a job in any state; True if it existed.

        Deleting a schedule's pending occurrence skips that run: the schedule goes on.
        """
        return await self._run(self.ops.delete(topic, id, if_version=if_version))

    async def abort(self, topic: str, id: str, *, reason: str | None = None) -> bool:
        """Stop a job: cancel its running handler (any Worker), or keep it from running; True
        if it existed. Its history ends ``aborted``, with ``reason`` in the ``aborted`` event."""
        return await self._run(self.ops.abort(topic, id, reason=reason))

    async def reserve(self, topic: str, *, ttr: float | Any = None) -> Job | None:
        """Lease the next due job (lowest priority number first), or None."""
        return await self._run(self.ops.reserve(topic, ttr=ttr))

    async def reserve_many(self, topic: str, count: int, *, ttr: float | Any = None) -> list[Job]:
        """Lease up to ``count`` due jobs."""
        return await self._run(self.ops.reserve_many(topic, count, ttr=ttr))

    async def lease(self, topic: str, count: int, *, ttr: float | Any = None) -> Lease:
        """Lease up to ``count`` jobs and learn when the next job or timeout is due."""
        return await self._run(self.ops.lease(topic, count, ttr=ttr))

    async def ack(self, job: Any, *, result: object = None) -> None:
        """Finish a reserved job, keeping ``result`` (bytes, str or JSON data) in its history.

        Raises StaleReservation if its lease was lost.
        """
        if result is None and self._open:
            lane = self.ops.lane_ack(job)
            if lane is not None:
                return await self._run_lane(lane, lambda: self.ops.ack(job))
        return await self._run(self.ops.ack(job, result=result))

    async def ack_many(
        self, topic: str, jobs: Sequence[Any], *, results: Sequence[object] | None = None
    ) -> list[bool]:
        """Finish several reserved jobs of one topic (``results``: one per job); False for
        each stale one."""
        return await self._run(self.ops.ack_many(topic, jobs, results=results))

    async def ack_and_lease(
        self,
        topic: str,
        done: Sequence[Any],
        count: int,
        *,
        ttr: float | Any = None,
        results: Sequence[object] | None = None,
    ) -> tuple[list[bool], Lease]:
        """Ack ``done`` (with ``results``) and lease up to ``count`` more jobs in one round trip."""
        return await self._run(self.ops.ack_and_lease(topic, done, count, ttr=ttr, results=results))

    async def release(
        self,
        job: Any,
        *,
        delay: float | Any = 0,
        reason: str | None = None,
        unstarted: bool = False,
        error: str | None = None,
    ) -> JobState:
        """Give a reserved job back, due after ``delay``; the state it is in now."""
        return await self._run(
            self.ops.release(job, delay=delay, reason=reason, unstarted=unstarted, error=error)
        )

    async def touch(self, job: Any, *, ttr: float | Any = None) -> datetime:
        """Move a reservation's deadline to now + ``ttr`` (default: the job's ttr); the new
        deadline. A ``ttr`` shorter than the time left shortens the reservation."""
        return await self._run(self.ops.touch(job, ttr=ttr))

    async def bury(self, job: Any, *, reason: str | None = None) -> None:
        """Move a reserved job to dead, keeping ``reason`` as its last error."""
        return await self._run(self.ops.bury(job, reason=reason))

    async def kick(
        self,
        topic: str,
        id: str | None = None,
        *,
        ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> int:
        """Move dead jobs back to ready (one by id, those of ``ids`` that are dead, else up to
        ``limit``); how many."""
        return await self._run(self.ops.kick(topic, id, ids=ids, limit=limit))

    async def pull(self, topic: str) -> Job | None:
        """Take the next due job and delete it at once (at-most-once), or None."""
        return await self._run(self.ops.pull(topic))

    async def requeue(self, topic: str, *, limit: int = 1000) -> int:
        """Return timed-out reservations to the queue (or dead); how many moved."""
        return await self._run(self.ops.requeue(topic, limit=limit))

    async def stats(self, topic: str) -> TopicStats:
        """Counts of the topic's jobs per state, and totals."""
        return await self._run(self.ops.stats(topic))

    async def timeline(self, topic: str, *, width: float | Any = 60, buckets: int = 60) -> Timeline:
        """Scheduled jobs falling due per ``width`` seconds over the next ``buckets`` steps."""
        return await self._run(self.ops.timeline(topic, width=width, buckets=buckets))

    async def expire(self, topic: str, id: str) -> bool:
        """End a stuck reservation now, as if its ttr had run out; True if it was reserved."""
        return await self._run(self.ops.expire(topic, id))

    async def topics(self) -> list[str]:
        """Every topic listed, sorted: a topic is listed from its first put, schedule, setting or
        pause until :meth:`delete_topic`."""
        return await self._run(self.ops.topics())

    async def jobs(
        self,
        topic: str,
        state: JobState | str,
        *,
        prefix: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the topic's jobs in ``state``; pass ``page.cursor`` for the next.

        The cursor names the last job the page examined: jobs deleted, reserved or added
        before it meanwhile make the next page skip or repeat nothing. ``prefix`` keeps the
        ids starting with it; each call then examines a bounded number of jobs, so a page can
        be short (even empty) while its cursor is not None.
        """
        return await self._run(
            self.ops.jobs(topic, state, prefix=prefix, limit=limit, cursor=cursor)
        )

    async def pause(self, topic: str) -> bool:
        """Stop the topic from leasing jobs; True if it was running."""
        return await self._drive(partition_setting.pause_topic(self.ops, topic, True))

    async def resume(self, topic: str) -> bool:
        """Let a paused topic lease jobs again; True if it was paused."""
        return await self._drive(partition_setting.pause_topic(self.ops, topic, False))

    async def delete_many(
        self, topic: str, ids: Sequence[str], *, state: JobState | str | None = None
    ) -> int:
        """Delete jobs by id (with ``state``: only those still in it); how many were deleted."""
        return await self._run(self.ops.delete_many(topic, ids, state=state))

    async def expire_many(self, topic: str, ids: Sequence[str]) -> int:
        """End the reservations of ``ids`` now, as if their ttr had run out; how many."""
        return await self._run(self.ops.expire_many(topic, ids))

    async def purge(
        self, topic: str, state: JobState | str, *, progress: Progress | None = None
    ) -> int:
        """Delete every job in ``state`` (not reserved: expire those), in bounded chunks.

        The purge takes the jobs that were in ``state`` when it began, not those that come
        meanwhile (but for a scheduled job on a topic with history off, whose record cannot
        say when it came), so it ends while jobs are put. ``progress(done, left)`` is called
        after each chunk (for ready and scheduled, ``left`` may count newer jobs too). Returns
        how many were deleted.
        """
        return await self._drive(operate.purge(self.ops, topic, state, progress=progress))

    async def delete_topic(
        self, topic: str, *, force: bool = False, progress: Progress | None = None
    ) -> int:
        """Delete a topic with its jobs, settings and counters; how many jobs it held.

        Raises TopicBusy while jobs are reserved, unless ``force=True``.
        """
        try:
            return await self._drive(
                operate.delete_topic(self.ops, topic, force=force, progress=progress)
            )
        finally:
            self._registered.discard(topic)  # a put from now on adds it to the set again

    async def reschedule(
        self,
        topic: str,
        id: str,
        *,
        delay: float | Any = None,
        run_at: datetime | float | None = None,
        priority: int | None = None,
        state: JobState | str | None = None,
    ) -> PutResult | None:
        """Give a job a new due time (and priority), keeping its body: a replace.

        ``delay`` or ``run_at`` as in :meth:`put` (neither: now). With ``state``, only if the
        job is in that state. None when there is no such job (or it is in another state).
        """
        return await self._run(
            self.ops.reschedule(
                topic, id, delay=delay, run_at=run_at, priority=priority, state=state
            )
        )

    async def run_now(self, topic: str, id: str) -> bool:
        """Make a scheduled job ready at once; False when it is not scheduled."""
        return await self._run(self.ops.run_now(topic, id))

    async def run_now_many(self, topic: str, ids: Sequence[str]) -> int:
        """Make the scheduled jobs of ``ids`` ready at once; how many were scheduled."""
        return await self._run(self.ops.run_now_many(topic, ids))

    async def _drive(self, flow: operate.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._run(call))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def throughput(self, topic: str | None = None) -> Throughput:
        """Puts, acks, failures and deaths per minute over the last day (None: every topic),
        as sampled once a minute by ``redisched serve``."""
        return await self._run(self.ops.throughput(topic))

    async def history(self, topic: str, id: str) -> JobHistory | None:
        """What happened to a job, live or finished: its events, outcome and result.

        None when the id was never seen or its history aged out (see ``keep_finished``).
        """
        return await self._run(self.ops.history(topic, id))

    async def events(
        self, topic: str, *, after: str | None = None, limit: int = 100
    ) -> list[JobEvent]:
        """The topic's feed of events, oldest first; ``after`` is the last ``cursor`` seen."""
        return await self._run(self.ops.events(topic, after=after, limit=limit))

    async def finished(
        self,
        topic: str,
        *,
        outcome: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """One page of the topic's finished jobs, most recent first (``outcome``: done,
        cancelled, dead or pulled; None for all); pass ``page.cursor`` (the last job looked
        at) for the next: jobs finishing meanwhile are not repeated."""
        return await self._run(
            self.ops.finished(topic, outcome=outcome, limit=limit, cursor=cursor)
        )

    async def schedule(
        self,
        topic: str,
        id: str,
        body: bytes | str,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        start_at: datetime | float | None = None,
        end_at: datetime | float | None = None,
        ttr: float | timedelta | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        if_version: int | None = None,
    ) -> Schedule:
        """Create or replace (by id) a recurring schedule; exactly one of ``cron`` and ``every``.

        Each occurrence is an ordinary job ``<id>@<UTC time>`` (e.g.
        ``digest@2027-03-29T07:00:00Z``) with this body and options; the next one is put in
        the step that reserves the current one. ``cron`` is a 5-field crontab read in ``tz``
        (Debian cron DST rules); ``every`` is whole seconds (>= 1) from ``start_at`` (default:
        now; an interval replaced without ``start_at`` keeps its anchor). A replacement takes
        effect from the next occurrence not yet reserved. An ``end_at`` not after
        ``start_at``, or already past by the Redis server's clock, is an InvalidArgument.
        ``if_version`` makes it conditional (VersionConflict on a mismatch).
        """
        return await self._run(
            self.ops.schedule(
                topic, id, body, cron=cron, every=every, tz=tz, start_at=start_at,
                end_at=end_at, ttr=ttr, priority=priority, max_attempts=max_attempts,
                if_version=if_version,
            )
        )  # fmt: skip

    async def get_schedule(self, topic: str, id: str) -> Schedule | None:
        """A schedule by id, or None (TopicPartitioned on a partitioned topic's own name when
        it holds no such schedule: a schedule made over HTTP or the CLI lives in its id's
        partition)."""
        return await self._run(self.ops.get_schedule(topic, id))

    async def schedules(self, topic: str) -> list[Schedule]:
        """Every schedule of the topic, sorted by id (TopicPartitioned on a partitioned
        topic's own name: its schedules are spread over its partitions)."""
        return await self._run(self.ops.schedules(topic))

    async def unschedule(self, topic: str, id: str, *, if_version: int | None = None) -> bool:
        """Delete a schedule and its pending occurrence (a running one is left alone);
        True if it existed (TopicPartitioned on a partitioned topic's own name when it holds no
        such schedule: a schedule made over HTTP or the CLI lives in its id's partition)."""
        return await self._run(self.ops.unschedule(topic, id, if_version=if_version))

    async def config(self, topic: str) -> TopicConfig:
        """The topic's settings (default ttr, max_attempts, backoff, webhook, limits)."""
        return await self._run(partition_setting.read_config(self.ops, topic))

    async def configure(self, topic: str, **changes: Any) -> TopicConfig:
        """Change the topic's settings; a value of None restores the default."""
        return await self._drive(partition_setting.configure_settings(self.ops, topic, changes))


def _is_transport_error(exc: BaseException) -> bool:
    return isinstance(exc, wire.TRANSPORT_ERRORS)
