"""The script headers are the contract: check them against the bodies and against ops.py."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from redisched import codes, ops, schedule_ops, scripts
from redisched.cursors import encode
from redisched.ops import Call, Operations

ALL = scripts.load_all()
EXPECTED = {
    "ack", "bury", "delete", "delete_many", "get", "jobs", "kick", "pause", "pull", "purge",
    "put", "release", "requeue", "reschedule", "reserve", "resume", "stats", "touch",
}  # fmt: skip


def _body(script: scripts.Script) -> str:
    return "\n".join(line for line in script.source.splitlines() if not line.startswith("--"))


def test_every_operation_has_its_script() -> None:
    assert set(ALL) >= EXPECTED


@pytest.mark.parametrize("name", sorted(ALL))
def test_header_is_complete(name: str) -> None:
    script = ALL[name]
    assert script.summary and script.returns and script.complexity.startswith("O(")
    assert all(
        p.type in {"hash", "zset", "channel", "string", "set", "list", "stream"}
        for p in script.keys
    )


@pytest.mark.parametrize("name", sorted(ALL))
def test_body_uses_exactly_the_declared_keys_and_args(name: str) -> None:
    script, body = ALL[name], _body(ALL[name])
    used_keys = {int(n) for n in re.findall(r"KEYS\[(\d+)\]", body)}
    assert used_keys == {p.index for p in script.keys}
    used_args = {int(n) for n in re.findall(r"ARGV\[(\d+)\]", body)}
    fixed = {p.index for p in script.argv if not p.repeats}
    assert used_args <= {p.index for p in script.argv}
    assert fixed <= used_args | {p.index for p in script.argv if p.repeats}
    repeated = [p for p in script.argv if p.repeats]
    if repeated:  # repeated groups are read in a loop that starts at the group's first index
        assert re.search(rf"for i = {repeated[0].index}, #ARGV, {len(repeated)} do", body)


@pytest.mark.parametrize("name", sorted(ALL))
def test_body_never_builds_keys_or_scans(name: str) -> None:
    body = _body(ALL[name])
    assert not re.search(r"redis\.call\('(KEYS|SCAN|FLUSH(ALL|DB))'", body)
    assert "redis.call('EVAL" not in body
    # every key argument of a command is a KEYS-bound local, never a concatenation
    assert not re.search(r"redis\.call\('\w+', *[^,)]*\.\.", body)


RECORD_FIELDS = "STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY"
STATES = "local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4"


@pytest.mark.parametrize("name", sorted(ALL))
def test_body_names_states_and_record_fields(name: str) -> None:
    body = _body(ALL[name])
    # no bare state numbers, no positional record packing or field picking
    assert not re.search(r"\bstate\s*[~=]=\s*\d", body, re.IGNORECASE)
    assert not re.search(r"\[STATE\]\s*[~=]=\s*\d", body)
    assert not re.search(r"cmsgpack\.pack\(\s*\d", body)
    assert not re.search(r"select\(\s*\d+\s*,\s*cmsgpack", body)
    assert not re.search(r"local\s+(state|_)\s*,.*=\s*cmsgpack\.unpack", body)
    if "cmsgpack.pack(" in body:  # a script that writes records names every field
        assert f"local {RECORD_FIELDS} =" in body and STATES in body


def _lua_constants(body: str) -> dict[str, int]:
    """Every ``local NAME, ... = 1, ...`` line of upper-case names and integers."""
    found: dict[str, int] = {}
    pattern = r"^local ([A-Z_][A-Z_0-9]*(?:, [A-Z_][A-Z_0-9]*)*) =\s*([\d, \n]+)$"
    for names, values in re.findall(pattern, body, re.MULTILINE):
        numbers = [int(v) for v in values.replace("\n", " ").split(",")]
        found.update(zip(names.split(", "), numbers, strict=True))
    return found


@pytest.mark.parametrize("name", sorted(codes.BY_SCRIPT))
def test_status_codes_are_mirrored_once(name: str) -> None:
    constants = _lua_constants(_body(ALL[name]))
    enum = codes.BY_SCRIPT[name]
    assert {m.name: m.value for m in enum} == {k: constants[k] for k in enum.__members__}
    record = _lua_constants(f"local {RECORD_FIELDS} =\n  1, 2, 3, 4, 5, 6, 7, 8, 9")
    assert {k: v for k, v in constants.items() if k in record} in ({}, record)


def test_parser_rejects_a_broken_header() -> None:
    with pytest.raises(scripts.HeaderError):
        scripts.parse("x", "-- x: fine\n-- KEYS[2] jobs hash\n-- Returns: 1\n-- Complexity: O(1)\n")
    with pytest.raises(scripts.HeaderError):
        scripts.parse("x", "-- y: wrong name\n-- Returns: 1\n-- Complexity: O(1)\n")
    with pytest.raises(scripts.HeaderError):
        scripts.parse("x", "-- x: no complexity\n-- Returns: 1\n")


EMPTY_GROUP_OK = {"schedule", "refill"}
"""Scripts whose repeated group may be empty (an interval schedule has no cron times)."""
JOB = SimpleNamespace(topic="orders", id="o-1", token="42")
AFTER = (1, "1900000000000", b"o-9")  # a dead listing resumed after o-9


def _calls(o: Operations) -> list[Call[object]]:
    """One call of every kind that ops builds."""
    return [
        o.put("orders", "o-1", b"x", delay=timedelta(days=3), if_version=2),
        o.put_many("orders", [("a", b"1"), ("b", b"2")], ttr=5),
        o.get("orders", "o-1"),
        o.delete("orders", "o-1", if_version=1),
        o.reserve("orders", ttr=9),
        o.reserve_many("orders", 5),
        o.lease("orders", 3),
        o.ack(JOB),
        o.ack_many("orders", [JOB, JOB]),
        o.ack_and_lease("orders", [JOB], 4),
        o.release(JOB, delay=3, reason="e"),
        o.touch(JOB, ttr=4),
        o.bury(JOB, reason="r"),
        o.kick("orders", "o-1"),
        o.pull("orders"),
        o.requeue("orders"),
        o.stats("orders"),
        o.jobs("orders", "ready"),
        o.jobs("orders", "dead", prefix="o-", limit=5, cursor=encode("orders", "dead", AFTER)),
        o.delete_many("orders", ["a", "b"], state="dead"),
        o.kick("orders", ids=["a", "b"]),
        o.purge_chunk("orders", "scheduled", limit=10),
        o.reschedule("orders", "o-1", delay=5, priority=2, state="scheduled"),
        o.run_now("orders", "o-1"),
        o.run_now_many("orders", ["a", "b"]),
        o.pause("orders"),
        o.resume("orders"),
        o.schedule("orders", "s", b"x", cron="0 9 * * MON", tz="Europe/Berlin"),
        o.schedule("orders", "s", b"x", every=60, if_version=1),
        o.get_schedule("orders", "s"),
        o.unschedule("orders", "s"),
        _refill_writes(o),
    ]


def _refill_writes(o: Operations) -> Call[object]:
    """The refill.lua calls the glue sends after reading a schedule that runs low."""
    read = schedule_ops.refill(o, "orders", [b"s"])
    assert read is not None
    entry = [b"s", 1, b"* * * * *", b"UTC", 0, 0, 0, 60_000, 0, 0, 60_000, 0, b"x", 3, 240_000]
    writes: Call[object] = read.parse([[entry], [b"1900000000", b"0"]])
    return writes


@pytest.mark.parametrize("call", _calls(Operations()), ids=lambda c: c.steps[0].script or "cmd")
def test_ops_calls_match_the_headers(call: Call[object]) -> None:
    for step in call.steps:
        if step.script is None:  # a plain command beside the scripts: on the topic's keys
            keys = [a for a in step.args if "{" in str(a)]
            # a listing reads the partition mark beside its script (Operations._refusing)
            assert keys in (["redisched:{orders}:refill"], ["redisched:{orders}:meta"])
            continue
        script = ALL[step.script]
        assert step.keys == tuple(f"redisched:{{orders}}:{p.name}" for p in script.keys)
        fixed = [p for p in script.argv if not p.repeats]
        group = len(script.argv) - len(fixed)
        if group:
            least = len(fixed) if step.script in EMPTY_GROUP_OK else len(fixed) + 1
            assert len(step.args) >= least and (len(step.args) - len(fixed)) % group == 0
        else:
            assert len(step.args) == len(script.argv)


def test_every_script_is_called_by_ops() -> None:
    used = {step.script for call in _calls(Operations()) for step in call.steps}
    assert used >= EXPECTED


_NEW_NAME = lambda name: name not in (".", "..")  # noqa: E731 (no new job or topic takes them)
topic_names = st.text(
    st.characters(blacklist_characters="{}", blacklist_categories=("Cc", "Cs")),
    min_size=1, max_size=200,
).filter(_NEW_NAME)  # fmt: skip
job_ids = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(
    _NEW_NAME
)


@settings(max_examples=2000, deadline=None)
@given(topic=topic_names, job_id=job_ids)
def test_every_key_of_a_call_hashes_to_one_slot(topic: str, job_id: str) -> None:
    o = Operations()
    job = SimpleNamespace(topic=topic, id=job_id, token="1")
    other = SimpleNamespace(topic=topic, id="another id", token="1")
    for call in (o.put(topic, job_id, b""), o.ack(job), o.reserve(topic), o.requeue(topic)):
        keys = [k for step in call.steps for k in step.keys]
        keys += [a for step in call.steps if step.script is None for a in step.args[1:2]]
        assert len({key_slot(str(k).encode()) for k in keys}) == 1
    # ids travel in ARGV only: the keys of a call do not depend on the id
    assert o.put(topic, job_id, b"").steps[0].keys == o.put(topic, "x", b"").steps[0].keys
    assert o.ack(job).steps[0].keys == o.ack(other).steps[0].keys


def test_keys_of_different_topics_never_collide() -> None:
    a = ops.Operations().keys("a:b").name("jobs")
    b = ops.Operations().keys("a").name("b:jobs")
    assert a != b
