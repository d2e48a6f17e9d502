"""One command over a pooled redis-py connection, without redis-py's per-command wrapper.

``Redis.execute_command`` costs ~25 µs of CPU a command in redis-py 8 (its retry wrapper,
operation metrics, argument packing in Python): about as much as Redis spends running a put.
A one-command call of a client (a put, a reserve, an ack) instead takes a connection from
the client's own pool, sends the command packed by hiredis and reads the reply; the pool
still checks the connection's health and reconnects it. When the connection fails, it is
dropped and :data:`AGAIN` tells the caller to send the command through ``execute_command``,
whose retries then apply as before. redis-py's operation metrics do not see these commands.

Only a plain ``redis.Redis`` / ``redis.asyncio.Redis`` takes this path (:func:`usable`): a
subclass may instrument ``execute_command``, a single-connection client serializes its
commands there, and hiredis encodes text as UTF-8 only.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .protocol import Command

AGAIN = object()
"""The reply of :func:`send` when the connection failed: send the command again through
``execute_command`` (it may have run: redis-py's own retry would send it again too)."""


def usable(client: object) -> bool:
    """True when ``client``'s one-command calls can go over :func:`send` / :func:`send_async`."""
    if type(client) is redis.Redis:
        single = client.connection is not None
    elif type(client) is redis.asyncio.Redis:
        single = client.single_connection_client
    else:
        return False
    encoding = str(client.connection_pool.connection_kwargs.get("encoding", "utf-8"))
    return not single and encoding.lower().replace("-", "").replace("_", "") == "utf8"


def send(client: Any, command: Command) -> Any:
    """The reply to one command (an error reply as its exception), or :data:`AGAIN`; ``client``
    is a ``redis.Redis`` that :func:`usable` accepted."""
    pool = client.connection_pool
    try:
        connection = pool.get_connection()
    except (ConnectionError, TimeoutError, OSError):
        return AGAIN
    try:
        connection.send_packed_command((hiredis.pack_command(command),))
        return connection.read_response()
    except ResponseError as exc:
        return exc
    except (ConnectionError, TimeoutError, OSError):
        connection.disconnect()
        return AGAIN
    finally:
        pool.release(connection)


async def send_async(client: Any, command: Command) -> Any:
    """As :func:`send`, on an asyncio client."""
    pool = client.connection_pool
    try:
        connection = await pool.get_connection()
    except (ConnectionError, TimeoutError, OSError):
        return AGAIN
    try:
        await connection.send_packed_command((hiredis.pack_command(command),))
        return await connection.read_response()
    except ResponseError as exc:
        return exc
    except (ConnectionError, TimeoutError, OSError):
        await connection.disconnect(nowait=True)
        return AGAIN
    finally:
        await pool.release(connection)
