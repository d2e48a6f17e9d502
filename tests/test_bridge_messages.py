"""Bridge message parsing: what is accepted, and a precise field-naming error for the rest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from redisched import InvalidArgument
from redisched.bridges import Delete, Put, PutOptions, parse
from redisched.ops import Operations

OPS = Operations(max_body_size=100)


def parse_json(message: Any) -> Put | Delete:
    return parse(json.dumps(message).encode(), OPS)


def test_put_with_every_option() -> None:
    command = parse_json({
        "op": "put", "topic": "emails", "id": "w-1", "body": {"to": "a@b.c", "n": [1, 2]},
        "delay": 3600, "ttr": 30.5, "priority": -2, "max_attempts": 5, "replace": True,
    })  # fmt: skip
    assert command == Put(
        "emails", "w-1", b'{"to":"a@b.c","n":[1,2]}',
        PutOptions(delay=3600, ttr=30.5, priority=-2, max_attempts=5, replace=True),
    )  # fmt: skip


def test_op_defaults_to_put_and_body_to_empty() -> None:
    assert parse_json({"topic": "t", "id": "j"}) == Put("t", "j", b"", PutOptions())


@pytest.mark.parametrize(
    ("body", "stored"),
    [("hi", b'"hi"'), (None, b"null"), (7, b"7"), ([], b"[]"), ({"a": "é"}, '{"a":"é"}'.encode())],
)
def test_body_is_stored_as_compact_json(body: Any, stored: bytes) -> None:
    command = parse(f'{{"topic": "t", "id": "j", "body": {json.dumps(body)} }}'.encode(), OPS)
    assert isinstance(command, Put) and command.body == stored


def test_base64_marker_stores_bytes_as_the_http_api_does() -> None:
    binary = parse_json({"topic": "t", "id": "j", "body": {"$base64": "AAH/"}})
    assert isinstance(binary, Put) and binary.body == b"\x00\x01\xff"
    two_keys = parse_json({"topic": "t", "id": "j", "body": {"$base64": "AAH/", "x": 1}})
    assert isinstance(two_keys, Put) and two_keys.body == b'{"$base64":"AAH/","x":1}'


def test_run_at_as_epoch_or_rfc3339() -> None:
    epoch = parse_json({"topic": "t", "id": "j", "run_at": 1_900_000_000.5})
    text = parse_json({"topic": "t", "id": "j", "run_at": "2030-01-02T03:04:05+01:00"})
    assert isinstance(epoch, Put) and epoch.options.run_at == 1_900_000_000.5
    assert isinstance(text, Put)
    assert text.options.run_at == datetime(2030, 1, 2, 2, 4, 5, tzinfo=UTC)


def test_a_message_without_an_id_is_refused() -> None:
    for message in ({"topic": "t"}, {"op": "delete", "topic": "t"}):
        with pytest.raises(InvalidArgument) as caught:
            parse_json(message)
        assert caught.value.argument == "id" and "is missing" in caught.value.message


def test_deep_nesting_is_refused_naming_the_body() -> None:
    deep = b'{"topic": "t", "id": "j", "body": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(InvalidArgument) as caught:
        parse(deep, OPS)
    assert caught.value.argument == "body"
    unclosed = b'{"topic": "t", "id": "j", "body": ' + b"[" * 5000
    with pytest.raises(InvalidArgument):
        parse(unclosed, OPS)


def test_delete() -> None:
    assert parse_json({"op": "delete", "topic": "t", "id": "j"}) == Delete("t", "j")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"{not json", "message"),
        (b'"a string"', "message"),
        (b"[1, 2]", "message"),
        (b"", "message"),
        (b"\xff\xfe", "message"),
        (b'{"topic": "t", "id": "a", "id": "b"}', "id"),
        (b'{"topic": "t", "id": "a", "body": {"k": [{"x": 1, "x": 2}]}}', "body.k[0].x"),
        ({"id": "j"}, "topic"),
        ({"topic": "t"}, "id"),
        ({"topic": 5, "id": "j"}, "topic"),
        ({"topic": "t", "id": 5}, "id"),
        ({"topic": "", "id": "j"}, "topic"),
        ({"topic": "a{b}", "id": "j"}, "topic"),
        ({"topic": "t" * 201, "id": "j"}, "topic"),
        ({"topic": "t", "id": ""}, "id"),
        ({"topic": "t", "id": "x" * 1025}, "id"),
        ({"topic": "t", "id": "j", "op": "upsert"}, "op"),
        ({"topic": "t", "id": "j", "delay": "soon"}, "delay"),
        ({"topic": "t", "id": "j", "delay": -1}, "delay"),
        ({"topic": "t", "id": "j", "delay": 1, "run_at": 2}, "delay"),
        ({"topic": "t", "id": "j", "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ({"topic": "t", "id": "j", "run_at": True}, "run_at"),
        ({"topic": "t", "id": "j", "ttr": 0}, "ttr"),
        ({"topic": "t", "id": "j", "priority": 1.5}, "priority"),
        ({"topic": "t", "id": "j", "priority": 2**31}, "priority"),
        ({"topic": "t", "id": "j", "max_attempts": 0}, "max_attempts"),
        ({"topic": "t", "id": "j", "replace": "yes"}, "replace"),
        ({"topic": "t", "id": "j", "dealy": 60}, "dealy"),
        ({"topic": "t", "id": "j", "body": "x" * 99}, "body"),
        ({"topic": "t", "id": "j", "body": {"$base64": 5}}, "body.$base64"),
        ({"topic": "t", "id": "j", "body": {"$base64": "!!"}}, "body.$base64"),
        ({"topic": "t", "id": "j", "body": {"$base64": "A" * 200}}, "body"),
        ({"op": "delete", "topic": "t", "id": "j", "body": 1}, "body"),
        ({"op": "delete", "topic": "t", "id": "j", "delay": 5}, "delay"),
        ({"op": "delete", "topic": "t", "id": "j", "replace": True}, "replace"),
    ],
)
def test_malformed_message_names_the_field(data: Any, field: str) -> None:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(InvalidArgument) as error:
        parse(raw, OPS)
    assert error.value.argument == field, str(error.value)
    assert str(error.value).startswith(f"{field}: ") and len(error.value.message) > 5


def test_huge_message_is_rejected_before_decoding() -> None:
    with pytest.raises(InvalidArgument, match=r"message: .* over the body size limit"):
        parse(b" " * (6 * 100 + 65_537), OPS)
