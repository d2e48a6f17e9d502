"""Send a batch to the cluster nodes it is for, over one connection to each.

A durable put ends its batch with WAIT, which only covers the writes of its own connection:
it must follow the scripts on the same connection to the same node. redis-py's cluster
pipeline routes keyless WAIT to a default node and, after a connection error, re-sends each
command on its own, so a durable batch bypasses it: the batch goes to the node that owns the
key's slot, in one plain pipeline. A redirection or a dead node refreshes the slot table and
raises, and the client's bounded retry sends the whole conversation again.

``SCRIPT LOAD``s go to the primaries that own the keys of the steps that met NOSCRIPT
(:class:`redisched.protocol.ScriptLoads`), not to every primary as redis-py sends them: one
primary down must not fail a call whose node is up. Loads of no call (a warm-up's) go to
every primary, each tried even when another fails.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.exceptions import AskError, ConnectionError, TimeoutError

from .durable import routing_key
from .protocol import ScriptLoads


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


def script_nodes(
    cluster: redis.RedisCluster | redis.asyncio.RedisCluster, batch: list[tuple[Any, ...]]
) -> list[Any]:
    """The primaries a batch of ``SCRIPT`` commands goes to: the owners of its steps' keys
    for :class:`ScriptLoads` that name them, else every primary."""
    keys = batch.keys if isinstance(batch, ScriptLoads) else None
    if keys is None:
        return list(cluster.get_primaries())
    nodes: dict[str, Any] = {}
    for key in keys:
        node: Any = cluster.get_node_from_key(_text(key))
        nodes[node.name] = node
    return list(nodes.values())


def _merged(replies: list[Any] | None, more: list[Any]) -> list[Any]:
    """One node's replies added to the others': a command failed if it failed on any node."""
    if replies is None:
        return more
    pairs = zip(replies, more, strict=True)
    return [mine if isinstance(mine, BaseException) else theirs for mine, theirs in pairs]


def load_scripts(cluster: redis.RedisCluster, batch: list[tuple[Any, ...]]) -> list[Any]:
    """Send a batch of ``SCRIPT`` commands to each of :func:`script_nodes`, in one pipeline
    to each; a node's lost connection is raised once every node was tried."""
    replies: list[Any] | None = None
    lost: BaseException | None = None
    for node in script_nodes(cluster, batch):
        pipe = cluster.get_redis_connection(node).pipeline(transaction=False)
        for cmd in batch:
            pipe.execute_command(*cmd)  # type: ignore[no-untyped-call]
        try:
            replies = _merged(replies, pipe.execute(raise_on_error=False))
        except (ConnectionError, TimeoutError, OSError) as exc:
            lost = lost or exc
    if lost is not None:
        cluster.nodes_manager.initialize()
        raise lost
    return replies or []


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


async def load_scripts_async(
    cluster: redis.asyncio.RedisCluster, batch: list[tuple[Any, ...]], nodes: NodeClients
) -> list[Any]:
    """The asyncio twin of :func:`load_scripts`."""
    replies: list[Any] | None = None
    lost: BaseException | None = None
    for node in script_nodes(cluster, batch):
        pipe = nodes.get(node).pipeline(transaction=False)
        for cmd in batch:
            pipe.execute_command(*cmd)
        try:
            replies = _merged(replies, await pipe.execute(raise_on_error=False))
        except (ConnectionError, TimeoutError, OSError) as exc:
            lost = lost or exc
    if lost is not None:
        await cluster.nodes_manager.initialize()
        raise lost
    return replies or []
