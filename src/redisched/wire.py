"""Script calls over a pooled redis-py connection, without redis-py's per-command wrapper.

``Redis.execute_command`` costs ~25 µs of CPU a command in redis-py 8 (its retry wrapper,
operation metrics, argument packing in Python): about as much as Redis spends running a put.
A client's round trip of script calls (a put, a reserve, an ack, the Worker's ack and lease)
instead takes a connection from the client's own pool, sends the commands packed by hiredis
in one write and reads the replies; the pool still checks the connection's health and
reconnects it. When the connection fails, it is dropped and :data:`AGAIN` tells the caller to
send the batch through ``execute_command`` or a pipeline, whose retries then apply as before.
redis-py's operation metrics do not see these commands.

Only a plain ``redis.Redis`` / ``redis.asyncio.Redis`` takes this path (:func:`usable`): a
subclass may instrument ``execute_command``, a single-connection client serializes its
commands there, and hiredis encodes text as UTF-8 only. A response callback set for
``EVALSHA`` (``set_response_callback``) is not applied to these replies.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .protocol import Batch

TRANSPORT_ERRORS = (ConnectionError, TimeoutError, OSError)
"""The connection failed (redis-py's errors and the socket's), as opposed to an error reply."""

AGAIN = object()
"""What :func:`send` answers when the batch is not for it, or the connection failed once the
batch was on its way and the connection's retry policy resends (:func:`resends`): send the
batch through redis-py instead (it may have run once: redis-py's own retry would send it
again too). A failure to get a connection (Redis down, a full pool) is raised as it is:
``get_connection`` already connected with redis-py's retries."""


def usable(client: object) -> bool:
    """True when ``client``'s script calls can go over :func:`send` / :func:`send_async`."""
    if type(client) is redis.Redis:
        single = client.connection is not None
    elif type(client) is redis.asyncio.Redis:
        single = client.single_connection_client
    else:
        return False
    encoding = str(client.connection_pool.connection_kwargs.get("encoding", "utf-8"))
    return not single and encoding.lower().replace("-", "").replace("_", "") == "utf8"


def send(client: Any, batch: Batch) -> list[Any] | object:
    """The replies to a batch of script calls (an error reply as its exception), in one round
    trip, or :data:`AGAIN`. ``client`` is a ``redis.Redis`` that :func:`usable` accepted.

    Only ``EVALSHA`` batches are sent here: redis-py parses the replies of some other commands
    (``HGETALL`` into a dict, ``SCRIPT EXISTS`` into bools), and a script's reply it does not.
    """
    if not scripted(batch):
        return AGAIN
    pool = client.connection_pool
    # a failure here is redis-py's own (connect and its retries, a full pool): raised as it is
    connection = pool.get_connection()
    try:
        connection.send_packed_command((packed(batch),))
        replies: list[Any] = []
        for _ in batch:
            try:
                replies.append(connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except TRANSPORT_ERRORS:
        connection.disconnect()
        if not resends(connection):
            raise
        return AGAIN
    except BaseException:  # replies may be left unread (Sentinel's read_response keeps them)
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


async def send_async(client: Any, batch: Batch) -> list[Any] | object:
    """As :func:`send`, on an asyncio client."""
    if not scripted(batch):
        return AGAIN
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command((packed(batch),))
        replies: list[Any] = []
        for _ in batch:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except TRANSPORT_ERRORS:
        await connection.disconnect(nowait=True)
        if not resends(connection):
            raise
        return AGAIN
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)


def resends(connection: Any) -> bool:
    """True when ``connection``'s redis-py retry policy sends a command again after a
    connection error: only then does a batch cut short go again (through redis-py)."""
    retry = getattr(connection, "retry", None)
    if retry is None:
        return False
    count = retry.get_retries() if hasattr(retry, "get_retries") else retry._retries  # redis<6
    return int(count) > 0


def scripted(batch: Batch) -> bool:
    """True when every command of ``batch`` is an ``EVALSHA``."""
    return all(command[0] == "EVALSHA" for command in batch)


def packed(batch: Batch) -> bytes:
    """The commands of ``batch`` in RESP, in one buffer (one write)."""
    return b"".join([hiredis.pack_command(command) for command in batch])
