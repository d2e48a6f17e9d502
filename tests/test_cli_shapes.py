"""The CLI's JSON is the HTTP API's: schedules, a job's history and a topic's events."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

import redisched
from redisched.cli import main

pytestmark = pytest.mark.asyncio


def _cli(redis_url: str, *args: str) -> str:
    done = CliRunner().invoke(main, list(args), env={"REDISCHED_REDIS_URL": redis_url})
    assert done.exit_code == 0, done.output
    return done.stdout


def _topic_url(topic: str) -> str:
    return f"/v1/topics/{quote(topic, safe='')}"


async def test_schedules_show_their_bodies_as_http_does(
    http: httpx.AsyncClient, redis_url: str, topic: str
) -> None:
    """The CLI printed a schedule's body as its raw text (a JSON body as a quoted string,
    bytes that are not UTF-8 as U+FFFD); HTTP's body rule holds now."""
    made = json.loads(_cli(redis_url, "schedule", topic, "s1", "--every", "600",
                           "--body", '{"a": 1}'))  # fmt: skip
    assert made["body"] == {"a": 1}
    over_http = await http.put(
        f"{_topic_url(topic)}/schedules/s2", json={"every": 3600, "body": "weekly digest"}
    )
    assert over_http.status_code == 201, over_http.text
    redisched.Client.from_url(redis_url).schedule(topic, "s3", b"\xff\x00", every=60)
    listed = json.loads(_cli(redis_url, "schedules", topic))
    bodies = {s["id"]: s["body"] for s in listed}
    assert bodies == {"s1": {"a": 1}, "s2": "weekly digest", "s3": {"$base64": "/wA="}}
    assert listed == (await http.get(f"{_topic_url(topic)}/schedules")).json()["schedules"]


async def test_every_is_whole_seconds_over_http_and_in_the_cli(
    http: httpx.AsyncClient, redis_url: str, topic: str
) -> None:
    """``every`` came back as a float (``3600.0``) though it is always whole seconds."""
    made = await http.put(f"{_topic_url(topic)}/schedules/s", json={"every": 3600, "body": 1})
    assert made.status_code == 201 and '"every":3600,' in made.text
    listed = await http.get(f"{_topic_url(topic)}/schedules")
    assert '"every":3600,' in listed.text
    assert '"every": 3600,' in _cli(redis_url, "schedules", topic)
    created = _cli(redis_url, "schedule", topic, "t", "--every", "2")
    assert '"every": 2,' in created
    schema = (await http.get("/openapi.json")).json()["components"]["schemas"]["ScheduleOut"]
    every = schema["properties"]["every"]
    assert [branch["type"] for branch in every["anyOf"]] == ["integer", "null"], every


def _job_with_a_history(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "mail", b'{"to": "ada"}')
    held = client.reserve(topic)
    assert held is not None
    client.release(held, reason="smtp down")  # an event with a detail, beside those without
    held = client.reserve(topic)
    assert held is not None
    client.ack(held, result=b"sent")


async def test_history_is_the_http_apis(
    http: httpx.AsyncClient, redis_url: str, topic: str
) -> None:
    """The CLI's events carried ``"detail": null`` where HTTP leaves the key out."""
    _job_with_a_history(redis_url, topic)
    shown: dict[str, Any] = json.loads(_cli(redis_url, "history", topic, "mail"))
    assert shown["events"][0] == {
        key: shown["events"][0][key] for key in ("at", "kind", "version", "attempt")
    }
    over_http = await http.get(f"{_topic_url(topic)}/jobs/mail/history")
    assert shown == over_http.json()
    assert any(e.get("detail") == "smtp down" for e in shown["events"])


async def test_events_are_the_http_apis(
    http: httpx.AsyncClient, redis_url: str, topic: str
) -> None:
    _job_with_a_history(redis_url, topic)
    lines = [json.loads(line) for line in _cli(redis_url, "events", topic).splitlines()]
    assert "detail" not in lines[0] and lines[0]["kind"] == "put"
    assert lines == (await http.get(f"{_topic_url(topic)}/events")).json()["events"]
