"""The Python runner of the conformance vectors: replays them through redis-py.

The format is described in ``conformance/README.md``. Keys are built from the ``KEYS[i] name``
lines of each script's header and arguments are ordered by its ``ARGV[i] name`` lines, both
read through :mod:`redisched.scripts`, exactly as the Node and Go runners read them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import NoScriptError, ResponseError

from redisched import scripts
from redisched.keys import TopicKeys

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"

Reply = Any
"""A reply as JSON data: int, str, None, a list of replies, or ``{"error": "ERR ..."}``."""


def load_vectors(folder: Path = VECTORS_DIR) -> list[dict[str, Any]]:
    """Every vector file in ``folder``, sorted by file name."""
    vectors = []
    for path in sorted(folder.glob("*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        if vector.get("name") != path.stem:
            raise ValueError(f"{path.name}: name must be {path.stem!r}")
        vectors.append(vector)
    return vectors


def job_fields() -> list[str]:
    """The names of the job array's entries, as get.lua's header lists them."""
    match = re.search(r"the job array \[([^\]]+)\]", scripts.get("get").returns)
    if match is None:
        raise ValueError("get.lua's Returns: must list 'the job array [id, state, ...]'")
    return [name.strip() for name in match.group(1).split(",")]


def build_args(script: scripts.Script, named: Mapping[str, Any]) -> list[str]:
    """The ARGV list of one call from named arguments, in the order of the script's header.

    Every parameter must be given (an empty string for an empty one). The parameters marked
    ``type...`` form a repeated group at the end: each takes a list, all of the same length,
    and they are interleaved (``id1, body1, id2, body2``).
    """
    known = {p.name for p in script.argv}
    unknown = sorted(set(named) - known)
    if unknown:
        raise ValueError(f"{script.name}: unknown argument(s) {unknown}")
    args: list[str] = []
    group = [p for p in script.argv if p.repeats]
    for param in script.argv:
        if param.repeats:
            continue
        if param.name not in named:
            raise ValueError(f"{script.name}: missing argument {param.name!r}")
        args.append(_arg(named[param.name]))
    if group:
        columns = [named.get(p.name) for p in group]
        if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
            names = [p.name for p in group]
            raise ValueError(f"{script.name}: {names} must be lists of one length")
        for row in zip(*columns, strict=True):
            args.extend(_arg(value) for value in row)
    return args


def _arg(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"an argument must be an integer or a string, not {value!r}")
    return str(value)


def to_json(reply: Any) -> Reply:
    """A redis-py reply as JSON data (bulk strings decoded as UTF-8)."""
    if isinstance(reply, bytes):
        return reply.decode("utf-8")
    if isinstance(reply, list):
        return [to_json(item) for item in reply]
    if isinstance(reply, ResponseError):
        return {"error": _error_line(reply)}
    return reply


def _error_line(error: ResponseError) -> str:
    # redis-py strips the "ERR " code from the error line; the vectors keep the whole line.
    return f"ERR {error}"


def run_step(conn: redis.Redis, keys: TopicKeys, step: Mapping[str, Any]) -> Reply:
    """Send one step and return its reply as JSON data."""
    if "meta" in step:
        fields = [str(v) for item in step["meta"].items() for v in item]
        return to_json(conn.execute_command("HSET", keys.name("meta"), *fields))
    script = scripts.get(step["call"])
    names = [keys.name(p.name) for p in script.keys]
    args = build_args(script, step["args"])
    try:
        try:
            reply = conn.execute_command("EVALSHA", script.sha, len(names), *names, *args)
        except NoScriptError:
            reply = conn.execute_command("EVAL", script.source, len(names), *names, *args)
    except ResponseError as exc:
        return to_json(exc)
    return to_json(reply)


def run_vector(
    conn: redis.Redis, vector: Mapping[str, Any], topic: str, prefix: str = "redisched"
) -> list[Reply]:
    """Run every step of a vector on ``topic`` (which must be fresh); the replies in order."""
    keys = TopicKeys(prefix, topic)
    return [run_step(conn, keys, step) for step in vector["steps"]]


def mismatches(vector: Mapping[str, Any], replies: Sequence[Reply]) -> list[str]:
    """A readable line per step whose reply differs from the expected one."""
    lines = []
    for index, (step, reply) in enumerate(zip(vector["steps"], replies, strict=True)):
        if reply != step["reply"]:
            label = step.get("call", "meta")
            lines.append(
                f"{vector['name']} step {index} ({label}: {step.get('note', '')}): "
                f"expected {json.dumps(step['reply'])}, got {json.dumps(reply)}"
            )
    return lines
