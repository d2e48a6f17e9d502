"""Send a batch to the one cluster node that owns its key, over one connection.

A durable put ends its batch with WAIT, which only covers the writes of its own connection:
it must follow the scripts on the same connection to the same node. redis-py's cluster
pipeline routes keyless WAIT to a default node and, after a connection error, re-sends each
command on its own, so a durable batch bypasses it: the batch goes to the node that owns the
key's slot, in one plain pipeline. A redirection or a dead node refreshes the slot table and
raises, and the client's bounded retry sends the whole conversation again.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.exceptions import AskError, ConnectionError, TimeoutError

from .durable import routing_key


def _text(key: str | bytes) -> str:
    return key if isinstance(key, str) else key.decode("utf-8", "surrogateescape")


def _needs_refresh(replies: list[Any]) -> BaseException | None:
    for reply in replies:
        if isinstance(reply, (AskError, ConnectionError, TimeoutError)):
            return reply
    return None


def send_pinned(cluster: redis.RedisCluster, batch: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``batch`` to the primary owning its key, in one pipeline on one connection."""
    node = cluster.get_node_from_key(_text(routing_key(batch)))  # type: ignore[no-untyped-call]
    conn = cluster.get_redis_connection(node)
    pipe = conn.pipeline(transaction=False)
    for cmd in batch:
        pipe.execute_command(*cmd)  # type: ignore[no-untyped-call]
    try:
        replies: list[Any] = pipe.execute(raise_on_error=False)
    except (ConnectionError, TimeoutError, OSError):
        cluster.nodes_manager.initialize()
        raise
    failed = _needs_refresh(replies)
    if failed is not None:
        cluster.nodes_manager.initialize()
        raise failed
    return replies


class NodeClients:
    """Plain asyncio connections to single cluster nodes, one pool per node, made on demand."""

    def __init__(self) -> None:
        self._clients: dict[str, redis.asyncio.Redis] = {}

    def get(self, node: Any) -> redis.asyncio.Redis:
        """A connection to ``node`` (an asyncio ``ClusterNode``), made with its options."""
        client = self._clients.get(node.name)
        if client is None:
            options = {k: v for k, v in node.connection_kwargs.items() if k != "event_dispatcher"}
            pool = redis.asyncio.ConnectionPool(connection_class=node.connection_class, **options)
            client = self._clients[node.name] = redis.asyncio.Redis.from_pool(pool)
        return client

    async def close(self) -> None:
        """Close every connection."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def send_pinned_async(
    cluster: redis.asyncio.RedisCluster, batch: list[tuple[Any, ...]], nodes: NodeClients
) -> list[Any]:
    """The asyncio twin of :func:`send_pinned`."""
    if not cluster.get_nodes():
        await cluster.initialize()
    node = cluster.get_node_from_key(_text(routing_key(batch)))
    pipe = nodes.get(node).pipeline(transaction=False)
    for cmd in batch:
        pipe.execute_command(*cmd)
    try:
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    except (ConnectionError, TimeoutError, OSError):
        await cluster.nodes_manager.initialize()
        raise
    failed = _needs_refresh(replies)
    if failed is not None:
        await cluster.nodes_manager.initialize()
        raise failed
    return replies
