"""Topics partitioned as redisched did before the mark: the count in the partitions hash only.

Since the mark (``partitions`` in the topic's own meta hash, see
:mod:`redisched.partition_setting`), Redis refuses a put or schedule into a partitioned topic
itself. A topic partitioned by an earlier version has no mark until its count is set again, so
a process that did not know the count yet could put into the topic itself, and such jobs and
schedules must still be served and found: the tests of that make one with :func:`unmark`.
"""

from __future__ import annotations

import redisched


def _meta(client: redisched.Client | redisched.AsyncClient, topic: str) -> str:
    return client.ops.keys(topic).name("meta")


def unmark(client: redisched.Client, topic: str) -> None:
    """Take the mark off a partitioned ``topic``, as an earlier version left it."""
    assert client.redis.hdel(_meta(client, topic), "partitions") == 1


async def unmark_async(client: redisched.AsyncClient, topic: str) -> None:
    """:func:`unmark`, through an AsyncClient."""
    assert await client.redis.hdel(_meta(client, topic), "partitions") == 1
