"""Script calls over connections a client keeps, without redis-py's per-command wrapper.

``Redis.execute_command`` costs ~25 µs of CPU a command in redis-py 8 (its retry wrapper,
operation metrics, argument packing in Python), and taking a connection from its pool and
giving it back costs as much again (a lock, two ``getpid``, metrics and event dispatch): each
as much as Redis spends running a put. A client's round trip of script calls (a put, a
reserve, an ack, the Worker's ack and lease) instead goes through its :class:`Wire`, which
keeps the connections it used between calls (one per thread or task that calls at the same
time), sends the commands packed by hiredis in one write and reads the replies.

What the pool does for a connection still happens: before each use, a kept connection whose
socket is readable (the server closed it, or sent data nobody asked for) or whose parser holds
unread data goes through the pool's own ``ensure_connection``, which reconnects it (one
``poll(0)`` tells, :func:`_ready`), and redis-py's timeouts apply to every command. A sync
kept connection that passed the check is written and read by the wire itself, with its parser's
own hiredis reader (:func:`_read_replies`; one with a health check keeps redis-py's path).
When the connection fails, it is dropped and :data:`AGAIN` tells the
caller to send the batch through ``execute_command`` or a pipeline, whose retries then apply as
before. redis-py's operation metrics do not see these commands.

Only a plain ``redis.Redis`` / ``redis.asyncio.Redis`` takes this path (:func:`usable`): a
subclass may instrument ``execute_command``, a single-connection client serializes its
commands there, and hiredis encodes text as UTF-8 only. A response callback set for
``EVALSHA`` (``set_response_callback``) is not applied to these replies. Connections are kept
only from a plain ``ConnectionPool`` (or the asyncio ``BlockingConnectionPool`` that
:func:`redisched.connect.async_connection` makes: its other users wait for the half the wire
never keeps) without client-side caching or a credential provider (:func:`keeps`): a
provider re-authenticates connections as they go back to the pool. Other pools lend a connection per
call, as before. A client keeps connections only when told to (``keep_connections``, set by
``from_url``, whose pool is the client's own); a wire keeps them only while at most half the
pool's ``max_connections`` is in use; and the clients give the kept ones back
(:meth:`Wire.close`) before any command of theirs that takes redis-py's path.
"""

from __future__ import annotations

import os
import select
import socket
import weakref
from typing import Any

import hiredis
import redis
import redis._parsers
import redis.asyncio
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .ops import Headed, Prepared
from .protocol import Batch

TRANSPORT_ERRORS = (ConnectionError, TimeoutError, OSError)
"""The connection failed (redis-py's errors and the socket's), as opposed to an error reply."""

AGAIN = object()
"""What a send answers when the batch is not for it, or the connection failed once the
batch was on its way and the connection's retry policy resends (:func:`resends`): send the
batch through redis-py instead (it may have run once: redis-py's own retry would send it
again too). A failure to get a connection (Redis down, a full pool) is raised as it is: the
pool already connected with redis-py's retries."""


def usable(client: object) -> bool:
    """True when ``client``'s script calls can go over a :class:`Wire` / :class:`AsyncWire`."""
    if type(client) is redis.Redis:
        single = client.connection is not None
    elif type(client) is redis.asyncio.Redis:
        single = client.single_connection_client
    else:
        return False
    encoding = str(client.connection_pool.connection_kwargs.get("encoding", "utf-8"))
    return not single and encoding.lower().replace("-", "").replace("_", "") == "utf8"


def keeps(pool: object) -> bool:
    """True when a wire may keep ``pool``'s connections between calls."""
    pools = (
        redis.ConnectionPool,
        redis.asyncio.ConnectionPool,
        redis.asyncio.BlockingConnectionPool,
    )
    if type(pool) not in pools:
        return False
    options = pool.connection_kwargs  # type: ignore[attr-defined]
    return (
        getattr(pool, "cache", None) is None
        and options.get("credential_provider") is None
        # redis-py 5.3 has neither (its sync pool no ensure_connection)
        and hasattr(pool, "ensure_connection")
        and hasattr(pool.connection_class, "should_reconnect")  # type: ignore[attr-defined]
    )


def _keep(kept: _Kept, connection: Any) -> bool:
    """True when ``connection`` may stay with the wire after a call.

    The pool counts a kept connection as in use against its ``max_connections`` (100 by
    default in redis-py 8), so the wire keeps one only while at most half the limit is in
    use: the other half stays free for the pool's other users (commands outside the wire,
    the application's own), who would otherwise get ``MaxConnectionsError``.
    """
    if not kept.keeps or connection.should_reconnect():
        return False
    pool = kept.pool
    return bool(2 * len(pool._in_use_connections) <= pool.max_connections)


def _owned(kept: _Kept, connection: Any) -> bool:
    """False once the pool forgot ``connection`` (``reset()``, a fork): it can't go back
    (redis-py's asyncio pool raises ``KeyError``). A pool that does not say is trusted."""
    in_use = getattr(kept.pool, "_in_use_connections", None)
    return in_use is None or connection in in_use


class _Kept:
    """The connections a wire keeps between calls, forgotten in a forked child."""

    def __init__(self, pool: Any, keep: bool) -> None:
        self.pool = pool
        self.keeps = keep and keeps(pool)
        self.idle: list[Any] = []  # list.pop / append: atomic, no lock needed
        self.watched: dict[Any, _Watch] = {}  # see _ready
        _kept.add(self)

    def forget(self) -> None:
        """In a forked child: the parent's sockets are not ours (the pool resets itself)."""
        self.idle = []
        self.watched = {}


class _Watch:
    """What a wire knows of a kept connection's socket, made once per socket (:func:`_ready`)."""

    __slots__ = ("buffer", "direct", "handle_push", "poll", "reader", "sock", "waiting")

    def __init__(self, connection: Any, sock: Any) -> None:
        self.sock = sock
        self.poll: Any = None
        if sock is not None and hasattr(select, "poll") and not hasattr(sock, "pending"):
            self.poll = select.poll()
            self.poll.register(sock, select.POLLIN)
        parser = getattr(connection, "_parser", None)
        self.reader: Any = getattr(parser, "_reader", None)
        self.handle_push: Any = getattr(parser, "handle_push_response", None)
        self.direct = _plain(connection, parser) and (_PUSH is None or self.handle_push is not None)
        self.waiting: Any = None  # the reader's answer while a reply is incomplete (_ready)
        self.buffer = bytearray(65536) if self.direct else None


def _plain(connection: Any, parser: Any) -> bool:
    """True when redis-py's ``send_packed_command`` and ``read_response`` of ``connection``
    do nothing but write the bytes and read replies with its hiredis reader (see
    :func:`_read_replies`): no health check, no method of the connection or of its parser
    overridden."""
    kind, parsing = type(connection), type(parser)
    return (
        _HIREDIS is not None
        and kind.send_packed_command is _SEND
        and kind.read_response is _READ
        and parsing.read_response is _HIREDIS.read_response
        and parsing.read_from_socket is _HIREDIS.read_from_socket
        and not getattr(connection, "health_check_interval", 0)
    )


_SEND = getattr(redis.connection.AbstractConnection, "send_packed_command", None)
_READ = getattr(redis.connection.AbstractConnection, "read_response", None)
_HIREDIS: Any = getattr(redis._parsers, "_HiredisParser", None)

_PUSH = getattr(hiredis, "PushNotification", None)  # a RESP3 push message, as hiredis reads it


def _ready(kept: _Kept, connection: Any) -> _Watch | None:
    """The watch of a kept ``connection`` that can take a command as it is: connected, with
    nothing unread in its socket or its parser. None: the pool's ``ensure_connection`` decides.

    It is the check ``ensure_connection`` makes, without its cost (~6 µs of CPU a call in
    redis-py 8: a retry wrapper around ``connect()``, a new ``select.poll`` each time): one
    ``poll(0)`` on a poll object made once per socket. A TLS socket (decrypted bytes may
    wait above the socket) and a parser without hiredis always take the pool's check.
    """
    sock: Any = getattr(connection, "_sock", None)
    watch = kept.watched.get(connection)
    try:
        if watch is None or watch.sock is not sock:  # new, or reconnected: a new reader too
            watch = kept.watched[connection] = _Watch(connection, sock)
        reader = watch.reader
        if watch.poll is None or reader is None or watch.poll.poll(0) or reader.has_data():
            return None  # readable (unasked data, or closed), or a reply waits in the parser
        if watch.direct and watch.waiting is None:
            watch.waiting = reader.gets()  # with nothing buffered: what it says for "wait"
    except (ValueError, OSError):  # closed meanwhile (pool.disconnect() in another thread)
        return None
    return watch


def _read_replies(watch: _Watch, count: int) -> list[Any]:
    """Read ``count`` replies on a watched socket, as redis-py's ``read_response`` does,
    without its layers (1.7-3.9 µs of CPU a round trip, measured): an error reply comes back
    in place as redis-py's exception; one that redis-py raises as a connection error
    (``LOADING``, ``NOAUTH``, "max number of clients") is raised. A RESP3 push message goes
    to redis-py's handlers."""
    sock, reader, waiting, buffer = watch.sock, watch.reader, watch.waiting, watch.buffer
    replies: list[Any] = []
    for _ in range(count):
        while True:
            reply = reader.gets()
            while reply is waiting:
                read = sock.recv_into(buffer)
                if not read:
                    raise ConnectionError(_SERVER_CLOSED)
                reader.feed(buffer, 0, read)
                reply = reader.gets()
            if _PUSH is None or type(reply) is not _PUSH:
                break
            watch.handle_push(reply)  # (RESP3) to redis-py's handlers, as its parser does
        if isinstance(reply, ConnectionError):
            raise reply
        if isinstance(reply, list) and reply and isinstance(reply[0], ConnectionError):
            raise reply[0]
        replies.append(reply)
    return replies


def _redis_error(exc: BaseException, connection: Any, written: bool) -> BaseException:
    """The error redis-py's ``send_packed_command`` (before ``written``) or ``read_response``
    raises for ``exc``, an error of the socket (others are returned as they are)."""
    if not isinstance(exc, OSError):
        return exc
    host = getattr(connection, "_host_error", None)
    where = host() if host else "socket"
    if isinstance(exc, socket.timeout) and exc.errno is None:  # Python's own timeout
        return TimeoutError(f"Timeout reading from {where}" if written else _WRITE_TIMEOUT)
    if not written:
        errno, message = ("UNKNOWN", exc.args[0]) if len(exc.args) == 1 else exc.args[:2]
        return ConnectionError(f"Error {errno} while writing to socket. {message}.")
    if isinstance(exc, socket.timeout):  # ETIMEDOUT from the system: the connection is dead
        return ConnectionError(f"Error while reading from socket: {exc.args}")
    return ConnectionError(f"Error while reading from {where} : {exc.args}")


_WRITE_TIMEOUT = "Timeout writing to socket"  # redis-py's words, as its own errors say them
_SERVER_CLOSED = "Connection closed by server."


_kept: weakref.WeakSet[_Kept] = weakref.WeakSet()


def _forget_in_child() -> None:
    for kept in list(_kept):
        kept.forget()


os.register_at_fork(after_in_child=_forget_in_child)


class Wire:
    """Script calls of one ``redis.Redis`` (that :func:`usable` accepted)."""

    def __init__(self, client: redis.Redis, keep: bool = True) -> None:
        self._kept = _Kept(client.connection_pool, keep)

    def send(self, batch: Batch) -> list[Any] | object:
        """The replies to a batch of script calls (an error reply as its exception), in one
        round trip, or :data:`AGAIN`.

        Only :func:`sendable` batches are sent here: redis-py parses the replies of some other
        commands (``HGETALL`` into a dict, ``SCRIPT EXISTS`` into bools), and a script's reply
        it does not.
        """
        if not sendable(batch):
            return AGAIN
        connection, watch = self._take()
        written = False
        try:
            data = packed(batch)
            # (a pool.disconnect() in another thread since the check: redis-py's reconnects)
            if watch is not None and watch.waiting is not None and connection._sock is watch.sock:
                watch.sock.sendall(data)
                written = True
                replies = _read_replies(watch, len(batch))
            else:
                connection.send_packed_command((data,))
                written = True
                replies = []
                for _ in batch:
                    try:
                        replies.append(connection.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
        except TRANSPORT_ERRORS as exc:
            self._drop(connection)
            if not resends(connection):
                error = _redis_error(exc, connection, written)
                if error is exc:
                    raise
                raise error from exc
            return AGAIN
        except BaseException:  # replies may be left unread (Sentinel's read_response keeps them)
            self._drop(connection)
            raise
        kept = self._kept
        if _keep(kept, connection):
            kept.idle.append(connection)
        else:
            self._give_back(connection)
        return replies

    def _take(self) -> tuple[Any, _Watch | None]:
        """A connection, and its watch when it is a kept one ready as it is."""
        kept = self._kept
        try:
            connection = kept.idle.pop()
        except IndexError:
            # a failure here is redis-py's own (connect and its retries, a full pool)
            return kept.pool.get_connection(), None
        # the pool was reset (close it), or a maintenance notice marked it: take a new one
        if not _owned(kept, connection) or connection.should_reconnect():
            self._give_back(connection)
            return kept.pool.get_connection(), None
        try:
            watch = _ready(kept, connection)
            if watch is None:
                kept.pool.ensure_connection(connection)
        except BaseException:
            self._give_back(connection)
            raise
        return connection, watch

    def _drop(self, connection: Any) -> None:
        connection.disconnect()
        self._give_back(connection)

    def _give_back(self, connection: Any) -> None:
        kept = self._kept
        kept.watched.pop(connection, None)
        if _owned(kept, connection):
            kept.pool.release(connection)
        else:
            connection.disconnect()

    def close(self) -> None:
        """Give the kept connections back to the pool (later calls keep connections again):
        before a command outside the wire, so that the pool can lend them."""
        kept = self._kept
        idle, kept.idle = kept.idle, []
        for connection in idle:
            self._give_back(connection)


class AsyncWire:
    """Script calls of one ``redis.asyncio.Redis`` (that :func:`usable` accepted)."""

    def __init__(self, client: redis.asyncio.Redis, keep: bool = True) -> None:
        self._kept = _Kept(client.connection_pool, keep)

    async def send(self, batch: Batch) -> list[Any] | object:
        """As :meth:`Wire.send`."""
        if not sendable(batch):
            return AGAIN
        connection = await self._take()
        try:
            await connection.send_packed_command((packed(batch),))
            replies: list[Any] = []
            for _ in batch:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        except TRANSPORT_ERRORS:
            await self._drop(connection)
            if not resends(connection):
                raise
            return AGAIN
        except BaseException:
            await self._drop(connection)
            raise
        kept = self._kept
        if _keep(kept, connection):
            kept.idle.append(connection)
        else:
            await self._give_back(connection)
        return replies

    async def _take(self) -> Any:
        kept = self._kept
        try:
            connection = kept.idle.pop()
        except IndexError:
            return await kept.pool.get_connection()
        if not _owned(kept, connection):  # as Wire._take
            await self._give_back(connection)
            return await kept.pool.get_connection()
        try:
            await kept.pool.ensure_connection(connection)
        except BaseException:
            await self._give_back(connection)
            raise
        return connection

    async def _drop(self, connection: Any) -> None:
        try:
            await connection.disconnect(nowait=True)
        finally:
            await self._give_back(connection)

    async def _give_back(self, connection: Any) -> None:
        if _owned(self._kept, connection):
            await self._kept.pool.release(connection)
        else:
            await connection.disconnect()

    async def close(self) -> None:
        """As :meth:`Wire.close`."""
        kept = self._kept
        idle, kept.idle = kept.idle, []
        for connection in idle:
            await self._give_back(connection)


def resends(connection: Any) -> bool:
    """True when ``connection``'s redis-py retry policy sends a command again after a
    connection error: only then does a batch cut short go again (through redis-py)."""
    retry = getattr(connection, "retry", None)
    if retry is None:
        return False
    count = retry.get_retries() if hasattr(retry, "get_retries") else retry._retries  # redis<6
    return int(count) > 0


def sendable(batch: Batch) -> bool:
    """True when a wire may send ``batch``: every command is an ``EVALSHA``, whose reply
    redis-py returns as it reads it, or one of the two other commands that ride with script
    calls:

    - ``ZRANGE key start stop`` (no option), the refill check of an occurrence's ack, a pull and
      a requeue (:func:`redisched.schedule_ops.with_refill`): redis-py returns it as read too
      (``WITHSCORES`` would pair members with scores);
    - ``TIME``: redis-py makes ints of its two texts and the wire leaves them texts; each caller
      (a refill's clock, ``Operations.minute`` and ``server_time_ms``) takes ``int()`` of both.
    """
    for command in batch:
        name = command[0]
        if (
            name != "EVALSHA"
            and (len(command) != 4 or name != "ZRANGE")
            and (len(command) != 1 or name != "TIME")
        ):
            return False
    return True


def _lead(head: Prepared, total: int) -> bytes:
    """The RESP bytes of ``head``'s elements under the array header of a command ``total``
    elements long (the whole command when ``total`` is its length), packed once."""
    known = head.lead
    if known is not None and known[0] == total:
        return known[1]
    elements: bytes = hiredis.pack_command(head)
    lead = b"*%d\r\n" % total + elements[elements.index(b"\n") + 1 :]
    head.lead = (total, lead)
    return lead


def _headed(command: Headed) -> bytes:
    """A :class:`~redisched.ops.Headed` command in RESP: its head's bytes, packed once, then
    the rest packed (~1 µs less a put than the whole command). A put's rest, a str id and a
    bytes body, is written here: ~0.8 µs less than through hiredis."""
    head = command.head
    lead = _lead(head, len(command))
    if len(command) - len(head) == 2:
        key, value = command[-2], command[-1]
        if type(key) is str and type(value) is bytes and len(value) <= 65536:
            text = key.encode()  # as hiredis encodes it: UTF-8, strict
            return lead + b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(text), text, len(value), value)
    rest: bytes = hiredis.pack_command(command[len(head) :])
    start = rest.index(b"\n") + 1  # after the array header hiredis gave the rest
    if len(rest) <= 65536:
        return lead + rest[start:]
    return b"".join((lead, memoryview(rest)[start:]))  # a large body copied once, not twice


def packed(batch: Batch) -> bytes:
    """The commands of ``batch`` in RESP, in one buffer (one write); a prepared command's
    bytes are made once (:class:`~redisched.ops.Prepared`)."""
    if len(batch) == 1:
        command = batch[0]
        if type(command) is Prepared:  # a whole command made once
            return _lead(command, len(command))
        if type(command) is Headed:
            return _headed(command)
        return hiredis.pack_command(command)  # type: ignore[no-any-return]
    return b"".join([hiredis.pack_command(command) for command in batch])
