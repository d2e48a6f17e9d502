"""Calls of the Lua scripts as any Redis client may make them: EVALSHA with bytes arguments.

The glue of each language validates what it sends; a raw caller need not, so these store
what no glue would (an id that is not UTF-8), as the conformance runner calls the scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from redis.exceptions import NoScriptError

from redisched import scripts
from redisched.keys import TopicKeys, topics_key

Value = bytes | str | int


def call(
    conn: redis.Redis,
    topic: str,
    name: str,
    args: Mapping[str, Value | list[Value]],
    prefix: str = "redisched",
) -> Any:
    """Run script ``name`` on ``topic`` with its ARGV given by header name (a repeated group as
    lists of one length); an argument left out is empty."""
    script = scripts.get(name)
    keys = TopicKeys(prefix, topic)
    names = [keys.name(p.name) for p in script.keys]
    argv: list[Value] = [_one(args.get(p.name, "")) for p in script.argv if not p.repeats]
    group = [args[p.name] for p in script.argv if p.repeats]
    for row in zip(*group, strict=True):  # type: ignore[call-overload]
        argv.extend(row)
    try:
        return conn.execute_command("EVALSHA", script.sha, len(names), *names, *argv)
    except NoScriptError:
        return conn.execute_command("EVAL", script.source, len(names), *names, *argv)


def _one(value: Value | list[Value]) -> Value:
    if isinstance(value, list):
        raise ValueError("only a repeated argument takes a list")
    return value


def put(
    conn: redis.Redis,
    topic: str,
    job_id: bytes,
    body: bytes = b"{}",
    prefix: str = "redisched",
    **args: Value,
) -> None:
    """Store one job under ``job_id`` (any bytes) and list its topic, as a glue would."""
    call(conn, topic, "put", {**args, "id": [job_id], "body": [body]}, prefix)
    conn.sadd(topics_key(prefix), topic)
