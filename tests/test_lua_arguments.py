"""Raw EVALSHA callers get an error reply for a bad number argument or key count, and nothing
changes (src/redisched/lua/README.md, "Every argument's default"; docs/design.md section 3).

The glue of each language validates what it sends; a raw caller need not. Before these checks a
number that did not parse was taken for the default (an ``if_version`` of ``abc`` made a
conditional write unconditional, a ``now_ms`` of ``abc`` read the server clock), ``inf`` made
``timeline`` loop forever, and a call one key short failed after it had written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from redisched import scripts
from redisched.keys import TopicKeys
from tests.raw_scripts import Value, call

NOW = 1_900_000_000_000
LATER = NOW + 3_600_000  # every reservation of the setup has expired by then
KEY_NAMES = sorted({p.name for s in scripts.load_all().values() for p in s.keys})
"""Every key a script names: together, all the keys of a topic."""

Args = dict[str, Value | list[Value]]


def _valid_args(token: str, kick_id: str) -> dict[str, Args]:
    """For each script, a call that is valid on the topic made by ``filled``: most of them
    would write, so a check that came after a write would show in the snapshot."""
    return {
        "put": {
            "now_ms": NOW,
            "delay_ms": 0,
            "priority": 0,
            "replace": 1,
            "id": ["a"],
            "body": ["new"],
        },
        "reserve": {"now_ms": NOW, "count": 1, "promote_limit": 1000},
        "release": {"now_ms": NOW, "id": "c", "token": token, "delay_ms": 0, "refund": 0},
        "touch": {"now_ms": NOW, "id": "c", "token": token},
        "bury": {"now_ms": NOW, "id": "c", "token": token},
        "ack": {"now_ms": NOW, "id": ["c"], "token": [token], "result": [""]},
        "delete": {"id": "a", "now_ms": NOW},
        "delete_many": {"now_ms": NOW, "id": ["a"]},
        "unschedule": {"id": "s", "now_ms": NOW},
        "schedule": {
            "now_ms": NOW,
            "id": "s2",
            "every_ms": 60000,
            "start_ms": 0,
            "end_ms": 0,
            "priority": 0,
            "body": "x",
            "time": [],
        },
        "refill": {"now_ms": NOW, "id": "s", "version": 1, "time": []},
        "kick": {"now_ms": NOW, "id": kick_id, "limit": 100},
        "requeue": {"now_ms": LATER},
        "reschedule": {"now_ms": NOW, "id": "b", "delay_ms": 0},
        "pull": {"now_ms": NOW},
        "purge": {"now_ms": NOW, "state": "ready"},
        "timeline": {"now_ms": NOW},
        "feed": {"limit": 10, "latest": 0},
        "finished": {"limit": 10},
        "jobs": {"now_ms": NOW, "state": "ready"},
        "limit": {"now_ms": NOW, "want": 1, "hold_ms": 1000, "slot": []},
        "get": {"now_ms": NOW, "id": "a"},
        "stats": {"now_ms": NOW},
    }


NUMBER_ARGS = [
    (name, p.name)
    for name in sorted(_valid_args("", ""))
    for p in scripts.get(name).argv
    if p.type.startswith("int")
]
"""Every (script, argument) that the header types as a number."""

MAY_BE_NEGATIVE = {
    ("put", "priority"),
    ("reschedule", "priority"),
    ("schedule", "priority"),
    ("schedule", "anchor_ms"),
    ("refill", "version"),
}
NOT_NUMBERS = ("nan", "inf", "-inf", "1.5", "abc")


def _bad_values(script: str, argument: str) -> list[str]:
    values = list(NOT_NUMBERS)
    if (script, argument) not in MAY_BE_NEGATIVE:
        values.append("-1")
    return values


CASES = [
    pytest.param(script, argument, value, id=f"{script}-{argument}-{value}")
    for script, argument in NUMBER_ARGS
    for value in _bad_values(script, argument)
]


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    """A plain connection with every script loaded (a test may send EVALSHA first)."""
    connection = redis.Redis.from_url(redis_url)
    for script in scripts.load_all().values():
        connection.script_load(script.source)
    yield connection
    connection.close()


@pytest.fixture
def filled(conn: redis.Redis, topic: str) -> dict[str, Args]:
    """A topic with a job in every state and a schedule; each script's valid arguments."""
    put = {"now_ms": NOW, "delay_ms": 0, "priority": 0, "replace": 0}
    call(conn, topic, "put", {**put, "id": ["c", "d"], "body": ["x", "y"]})
    leased = call(conn, topic, "reserve", {"now_ms": NOW, "count": 2, "promote_limit": 1000})
    tokens = {job[0]: job[8].decode() for job in leased[3:]}
    call(conn, topic, "bury", {"now_ms": NOW, "id": "d", "token": tokens[b"d"]})
    call(conn, topic, "put", {**put, "id": ["a"], "body": ["x"]})
    call(conn, topic, "put", {**put, "delay_ms": 60000, "id": ["b"], "body": ["x"]})
    schedule = _valid_args("", "")["schedule"]
    call(conn, topic, "schedule", {**schedule, "id": "s"})
    return _valid_args(tokens[b"c"], "d")


def snapshot(conn: redis.Redis, topic: str) -> dict[str, Any]:
    """Every key of the topic, as DUMP gives it (None for a key that does not exist); a hash
    stored as a hashtable by its encoding and content, as a lookup may move its DUMP's order
    (a step of an incremental rehash)."""
    keys = TopicKeys("redisched", topic)
    found: dict[str, Any] = {}
    for name in KEY_NAMES:
        key = keys.name(name)
        if conn.object("encoding", key) == b"hashtable" and conn.type(key) == b"hash":
            found[name] = ("hashtable", sorted(conn.hgetall(key).items()))
        else:
            found[name] = conn.dump(key)
    return found


def raw_call(conn: redis.Redis, topic: str, script: str, args: Args, keys: int = 0) -> Any:
    """The script's reply, or the error reply's text; ``keys`` more or fewer keys than its
    header lists (the last ones dropped, or the first repeated)."""
    try:
        if keys == 0:
            return call(conn, topic, script, args)
        return _call_with_keys(conn, topic, script, args, keys)
    except redis.ResponseError as error:
        return f"ERR {error}"  # redis-py strips the ERR code


def _call_with_keys(conn: redis.Redis, topic: str, name: str, args: Args, extra: int) -> Any:
    script = scripts.get(name)
    keys = [TopicKeys("redisched", topic).name(p.name) for p in script.keys]
    keys = keys[:extra] if extra < 0 else keys + keys[:extra]
    argv: list[Value] = []
    for p in script.argv:
        value = args.get(p.name, "")
        argv.extend(value if isinstance(value, list) else [value])
    return conn.execute_command("EVALSHA", script.sha, len(keys), *keys, *argv)


@pytest.mark.parametrize("script", sorted(_valid_args("", "")))
def test_the_valid_calls_are_valid(
    conn: redis.Redis, topic: str, filled: dict[str, Args], script: str
) -> None:
    reply = raw_call(conn, topic, script, filled[script])
    assert not (isinstance(reply, str) and reply.startswith("ERR")), reply


@pytest.mark.parametrize(("script", "argument", "value"), CASES)
def test_a_bad_number_is_refused_and_changes_nothing(
    conn: redis.Redis, topic: str, filled: dict[str, Args], script: str, argument: str, value: str
) -> None:
    args = dict(filled[script])
    repeated = next(p.repeats for p in scripts.get(script).argv if p.name == argument)
    args[argument] = [value] if repeated else value
    before = snapshot(conn, topic)
    reply = raw_call(conn, topic, script, args)
    assert isinstance(reply, str), reply
    assert reply.startswith(f"ERR {script}: "), reply
    assert snapshot(conn, topic) == before


def test_timeline_refuses_an_infinite_limit_at_once(
    conn: redis.Redis, topic: str, filled: dict[str, Args]
) -> None:
    started = time.monotonic()
    reply = raw_call(conn, topic, "timeline", {"now_ms": NOW, "limit": "inf"})
    assert reply == "ERR timeline: width_ms must be an integer, limit an integer from 1 to 1440"
    assert time.monotonic() - started < 1
    assert raw_call(conn, topic, "timeline", {"now_ms": NOW, "limit": 1441}).startswith("ERR")
    assert len(raw_call(conn, topic, "timeline", {"now_ms": NOW, "limit": 1440})) == 1442


@pytest.mark.parametrize("script", ["put", "delete"])
def test_an_unreadable_if_version_is_not_unconditional(
    conn: redis.Redis, topic: str, filled: dict[str, Args], script: str
) -> None:
    before = snapshot(conn, topic)
    reply = raw_call(conn, topic, script, {**filled[script], "if_version": "abc"})
    assert reply == f"ERR {script}: if_version must be an integer >= 1 or empty"
    assert snapshot(conn, topic) == before
    assert conn.hexists(TopicKeys("redisched", topic).name("jobs"), "a")


def test_an_unreadable_now_is_not_the_server_clock(
    conn: redis.Redis, topic: str, filled: dict[str, Args]
) -> None:
    reply = raw_call(conn, topic, "put", {**filled["put"], "now_ms": "abc"})
    assert reply == "ERR put: now_ms must be an integer >= 0"


@pytest.mark.parametrize("extra", [-1, 1])
@pytest.mark.parametrize("script", scripts.names())
def test_a_wrong_number_of_keys_is_refused_and_changes_nothing(
    conn: redis.Redis, topic: str, filled: dict[str, Args], script: str, extra: int
) -> None:
    args = filled.get(script, {"id": ["s"]} if script == "get_schedule" else {"id": "a"})
    before = snapshot(conn, topic)
    reply = raw_call(conn, topic, script, args, keys=extra)
    expected = len(scripts.get(script).keys)
    assert reply == f"ERR {script}: expected {expected} key{'s' if expected > 1 else ''}"
    assert snapshot(conn, topic) == before


def test_the_usual_texts_still_work(conn: redis.Redis, topic: str) -> None:
    """The hot paths' texts ('' / '0' / '1' / '1000') and parsed numbers in range are taken."""
    reply = call(
        conn,
        topic,
        "put",
        {
            "now_ms": NOW,
            "delay_ms": "0",
            "priority": "-5",
            "max_attempts": "0",
            "replace": "",
            "id": ["j"],
            "body": ["x"],
        },
    )
    assert reply == [1, 1]
    leased = call(
        conn,
        topic,
        "reserve",
        {"now_ms": NOW, "count": "1", "ttr_ms": "500", "promote_limit": "1000", "times": "1"},
    )
    assert leased[3][0] == b"j"
    assert leased[3][9] == NOW + 500


STALE_REPLIES: dict[str, Any] = {"ack": [0], "bury": [0], "release": [0, b""], "touch": [0, 0]}
"""Each script taking a token: its reply to a token that is not the job's reservation."""


@pytest.mark.parametrize("spelling", [" {}", "{} ", "0{}", "+{}", "{}.0", "{}e0", "0x{:x}"])
@pytest.mark.parametrize("script", sorted(STALE_REPLIES))
def test_a_token_is_only_the_text_reserve_gave(
    conn: redis.Redis, topic: str, filled: dict[str, Args], script: str, spelling: str
) -> None:
    """Another text of the same number (``" 3"``, ``"3.0"``, ``"0x3"``) is a stale token, not
    the reservation ``"3"``: tokens are compared as text (lua/README.md)."""
    args = dict(filled[script])
    token = filled[script]["token"]
    assert isinstance(token, list | str)
    exact = token[0] if isinstance(token, list) else token
    other = spelling.format(int(exact))
    args["token"] = [other] if isinstance(token, list) else other
    before = snapshot(conn, topic)
    assert raw_call(conn, topic, script, args) == STALE_REPLIES[script]
    assert snapshot(conn, topic) == before
    assert raw_call(conn, topic, script, filled[script]) != STALE_REPLIES[script]
