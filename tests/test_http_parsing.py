"""Text the API parses itself: query numbers, cursors and percent-encoded path segments.

Each case is one an attack found: Python's ``int``/``float``/``isdigit`` take far more than
the ASCII digits a client means, and a path must be decoded exactly once.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import httpx
import pytest
from starlette.requests import Request

import redisched
from redisched import cursors
from redisched.config import Settings
from redisched.errors import InvalidArgument
from redisched.history import parse_cursor, topic_tag
from redisched.http import reading
from redisched.http.errors import ApiError
from redisched.http.paths import routing_path
from redisched.validate import duration_ms, integer_text, number_text

NOT_NUMBERS = ["1_0", "\u0661\u0662", "\u00b2", " 5", "5 ", "+5", "nan", "inf", "1e999", "0x10",
               "", "-", "1.", ".5", "\uff15"]  # fmt: skip


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_number_and_integer_text_take_ascii_json_numbers_only(text: str) -> None:
    with pytest.raises(InvalidArgument):
        number_text(text, "x")
    with pytest.raises(InvalidArgument):
        integer_text(text, "x")


def test_number_and_integer_text_accept_plain_numbers() -> None:
    assert [number_text(t, "x") for t in ("0", "-2", "1.5", "2e3")] == [0, -2, 1.5, 2000]
    assert [integer_text(t, "x") for t in ("0", "-2", "007")] == [0, -2, 7]


@pytest.mark.parametrize("text", ["1_0", "\u0661\u0662", "inf"])
def test_settings_from_the_environment_refuse_loose_numbers(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Settings.from_env({"REDISCHED_PORT": text})
    assert "PORT" in caught.value.argument.upper()


def test_routing_path_decodes_each_escape_once() -> None:
    assert routing_path(b"/v1/topics/a%%32Fb") == "/v1/topics/a%252Fb"
    assert routing_path(b"/v1/topics/a%2Fb") == "/v1/topics/a%2Fb"
    assert routing_path(b"/v1/topics/a%252Fb") == "/v1/topics/a%252Fb"
    assert routing_path(b"/v1/topics/%C3%BC") == "/v1/topics/\u00fc"


@pytest.mark.parametrize("cursor", ["\u00b2", "\u0661\u0662", "1_0", "-1", "99999999999999999"])
async def test_a_bad_cursor_is_a_400_naming_it(web: httpx.AsyncClient, cursor: str) -> None:
    reply = await web.get("/v1/topics/t/jobs", params={"state": "ready", "cursor": cursor})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize("score", ["1e999", "-1e999"])
async def test_a_cursor_whose_score_overflows_is_a_400_naming_it(
    web: httpx.AsyncClient, score: str
) -> None:
    cursor = cursors.encode("t", "ready", (1, score, b"a"))
    reply = await web.get("/v1/topics/t/jobs", params={"state": "ready", "cursor": cursor})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/topics/t/jobs", {"state": "ready", "limit": "1_0"}, "limit"),
        ("/v1/topics/t/jobs", {"state": "ready", "limit": "\u0661"}, "limit"),
        ("/v1/topics/t/timeline", {"width": "6_0"}, "width"),
        ("/v1/topics/t/timeline", {"width": "\u0666\u0660"}, "width"),
        ("/v1/topics/t/timeline", {"buckets": "1_0"}, "buckets"),
    ],
)
async def test_loose_query_numbers_are_a_400_naming_them(
    web: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    reply = await web.get(path, params=params)
    assert reply.status_code == 400 and reply.json()["error"]["field"] == field


async def test_a_path_segment_is_decoded_once(
    web: httpx.AsyncClient, redis_url: str, topic: str
) -> None:
    url = f"/v1/topics/{quote(topic, safe='')}/jobs/a%%32Fb"
    assert (await web.put(url, json={"body": 1})).status_code == 201
    async with redisched.AsyncClient.from_url(redis_url) as py:
        assert await py.get(topic, "a%2Fb") is not None
        assert await py.get(topic, "a/b") is None
    escaped = f"/v1/topics/{quote(topic, safe='')}/jobs/{quote('x%2Fy', safe='')}"
    assert (await web.put(escaped, json={"body": 1})).status_code == 201
    async with redisched.AsyncClient.from_url(redis_url) as py:
        assert await py.get(topic, "x%2Fy") is not None


def test_an_events_cursor_says_what_is_wrong_with_it() -> None:
    ours = f"1-0:0.{topic_tag('t')}"
    assert parse_cursor("t", ours) == ("1-0", 0)
    for value, message in (
        ("1.5", "a read of the events returned"),
        ("1-0:0.zz", "a read of the events returned"),
        ("1-1\n", "a read of the events returned"),  # "$" took a line's end
        (f"1-0:0\n.{topic_tag('t')}", "a read of the events returned"),
        (f"1-0:0.{topic_tag('u')}", "another topic"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            parse_cursor("t", value)


def test_a_minimum_of_one_second_is_said_in_the_singular() -> None:
    with pytest.raises(InvalidArgument, match=r"at least 1 second$"):
        duration_ms(0.5, "width", minimum_ms=1000)


async def test_a_body_that_stops_arriving_is_a_408(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sent 9 of the 100 bytes its Content-Length promised held its connection
    for ever: a body in parts that pauses longer than BODY_IDLE_TIMEOUT is answered 408."""
    monkeypatch.setattr(reading, "BODY_IDLE_TIMEOUT", 0.2)
    parts = [{"type": "http.request", "body": b'{"body": 1', "more_body": True}]

    async def receive() -> dict[str, object]:
        if parts:
            return parts.pop()
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "PUT", "headers": [(b"content-length", b"100")]}
    request = Request(scope, receive)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        await reading.read_body(request, 1000)
    assert refused.value.status == 408 and refused.value.code == "request_timeout"
    assert time.monotonic() - started < 2
