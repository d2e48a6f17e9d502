"""The schedule routes in-process (httpx over ASGI) on a real Redis."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest

import redisched
from redisched.partitions import Partitions
from tests.unmarked import unmark_async

pytestmark = pytest.mark.asyncio


def url(topic: str, sid: str | None = None) -> str:
    base = f"/v1/topics/{quote(topic, safe='')}/schedules"
    return base if sid is None else f"{base}/{quote(sid, safe='')}"


async def test_put_get_list_delete(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    spec = {"cron": "0 9 * * MON", "tz": "Europe/Berlin", "body": {"to": "all"}, "ttr": 30}
    created = await http.put(url(topic, "digest"), json=spec)
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    out = created.json()
    assert out["cron"] == "0 9 * * MON" and out["tz"] == "Europe/Berlin" and out["every"] is None
    assert out["body"] == {"to": "all"} and out["version"] == 1 and out["ttr"] == 30
    pending = out["next_run_at"]
    assert pending is not None
    occurrence_id = "digest@" + pending.replace("+00:00", "Z")
    job = await py.get(topic, occurrence_id)
    assert job is not None and job.body == b'{"to":"all"}'

    replaced = await http.put(
        url(topic, "digest"), json={"every": 60, "body": 1}, headers={"If-Match": '"1"'}
    )
    assert replaced.status_code == 200 and replaced.headers["etag"] == '"2"'
    assert replaced.json()["every"] == 60 and replaced.json()["cron"] is None
    stale = await http.put(url(topic, "digest"), json={"every": 5, "body": 1},
                           headers={"If-Match": '"1"'})  # fmt: skip
    assert stale.status_code == 412

    read = await http.get(url(topic, "digest"))
    assert read.status_code == 200 and read.json()["version"] == 2
    await http.put(url(topic, "another"), json={"every": 3600, "body": None})
    listed = await http.get(url(topic))
    assert [s["id"] for s in listed.json()["schedules"]] == ["another", "digest"]

    assert (await http.delete(url(topic, "digest"), headers={"If-Match": '"1"'})).status_code == 412
    assert (await http.delete(url(topic, "digest"))).status_code == 204
    assert (await http.delete(url(topic, "digest"))).status_code == 404
    assert (await http.get(url(topic, "digest"))).status_code == 404
    assert await py.get_schedule(topic, "digest") is None


async def test_http_reserve_advances_a_schedule(http: httpx.AsyncClient, topic: str) -> None:
    await http.put(url(topic, "s"), json={"every": 3600, "body": "x"})
    leased = await http.post(f"/v1/topics/{quote(topic, safe='')}/reserve", json={"wait": 5})
    [job] = leased.json()["jobs"]
    assert job["id"].startswith("s@")
    after = (await http.get(url(topic, "s"))).json()
    assert after["last_run_at"] == job["run_at"] and after["next_run_at"] > job["run_at"]


async def test_http_delete_of_the_pending_occurrence_skips_one_run(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    first = (await http.put(url(topic, "s"), json={"every": 3600, "body": "x"})).json()
    occurrence_id = "s@" + first["next_run_at"].replace("+00:00", "Z")
    path = f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(occurrence_id, safe='')}"
    assert (await http.delete(path)).status_code == 204
    after = (await http.get(url(topic, "s"))).json()
    assert after["last_run_at"] == first["next_run_at"]
    assert after["next_run_at"] > first["next_run_at"]  # the schedule goes on
    following = "s@" + after["next_run_at"].replace("+00:00", "Z")
    job = await py.get(topic, following)
    assert job is not None and job.body == b'"x"'


async def test_bad_input_names_the_field_and_changes_nothing(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await http.put(url(topic, "s"), json={"every": 60, "body": "keep"})
    before = await py.get_schedule(topic, "s")
    cases: list[tuple[Any, str | None]] = [
        ({"cron": "61 * * * *", "body": 1}, "cron"),
        ({"cron": "* * *", "body": 1}, "cron"),
        ({"cron": "* * * * *", "every": 5, "body": 1}, "cron"),
        ({"body": 1}, "cron"),
        ({"cron": "* * * * *", "tz": "Mars/Olympus", "body": 1}, "tz"),
        ({"every": 0.5, "body": 1}, "every"),
        ({"every": "often", "body": 1}, "every"),
        ({"every": 60, "start_at": 2_000_000_000, "end_at": 1_900_000_000, "body": 1}, "end_at"),
        ({"every": 60, "end_at": 1_000_000_000, "body": 1}, "end_at"),
        ({"every": 60, "end_at": 0, "body": 1}, "end_at"),
        ({"every": 60, "end_at": "1970-01-01T00:00:00Z", "body": 1}, "end_at"),
        ({"every": 60, "start_at": "tomorrow", "body": 1}, "start_at"),
        ({"every": 60, "body": 1, "ttr": 0}, "ttr"),
        ({"every": 60, "body": 1, "colour": "red"}, "colour"),
        ({"every": 60}, "body"),
    ]
    for payload, field in cases:
        response = await http.put(url(topic, "s"), content=msgspec.json.encode(payload))
        assert response.status_code == 400, (payload, response.text)
        error = response.json()["error"]
        assert set(error) == {"code", "message", "field"} and error["message"]
        assert error["field"] == field, (payload, error)
    assert await py.get_schedule(topic, "s") == before


async def test_schedules_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    one = doc["paths"]["/v1/topics/{topic}/schedules/{id}"]
    assert {"put", "get", "delete"} <= set(one)
    assert "get" in doc["paths"]["/v1/topics/{topic}/schedules"]
    schema = doc["components"]["schemas"]["PutSchedule"]
    assert {"cron", "every", "tz", "body", "start_at", "end_at"} <= set(schema["properties"])


async def test_a_partitioned_topics_schedule_runs_in_its_ids_partition(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    answer = await http.patch(f"/v1/topics/{topic}", json={"partitions": 4})
    assert answer.status_code == 200, answer.text
    held = Partitions(topic, 4).route("tick")
    created = await http.put(url(topic, "tick"), json={"every": 60, "body": 1})
    assert created.status_code == 201 and created.json()["topic"] == held, created.text
    own = py.ops.get_schedule(topic, "tick", own=True)
    assert await py.execute(own) is None  # not in the logical topic itself
    reserved = await http.post(f"/v1/topics/{topic}/reserve", json={"count": 4, "wait": 3})
    leased = reserved.json()["jobs"]
    assert [(j["topic"], j["id"].split("@")[0]) for j in leased] == [(held, "tick")]
    assert (await http.get(url(topic, "tick"))).json()["last_run_at"] is not None
    listed = (await http.get(url(topic))).json()["schedules"]
    assert [(s["topic"], s["id"]) for s in listed] == [(held, "tick")]
    assert (await http.delete(url(topic, "tick"), headers={"If-Match": '"1"'})).status_code == 204
    assert (await http.get(url(topic, "tick"))).status_code == 404
    assert (await http.get(url(topic))).json()["schedules"] == []


async def test_http_delete_of_an_occurrence_of_a_partitioned_topic_skips_one_run(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    partitioned = await http.patch(f"/v1/topics/{quote(topic, safe='')}", json={"partitions": 4})
    assert partitioned.status_code == 200, partitioned.text
    await unmark_async(py, topic)  # partitioned by an earlier version
    layout = Partitions(topic, 4)
    checked = 0
    for n in range(12):  # schedules made over HTTP (in their id's partition) and on the topic
        sid = f"s{n}"
        if n % 2:
            await py.schedule(topic, sid, b"x", every=3600)
            first = schedule_out_of(await py.get_schedule(topic, sid))
        else:
            first = (await http.put(url(topic, sid), json={"every": 3600, "body": "x"})).json()
        occurrence_id = f"{sid}@" + first["next_run_at"].replace("+00:00", "Z")
        if layout.route(occurrence_id) == layout.route(sid):
            continue  # the id's own partition holds it by chance: not the case under test
        checked += 1
        path = f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(occurrence_id, safe='')}"
        assert (await http.get(path)).status_code == 200, sid  # found where it lives
        assert (await http.delete(path)).status_code == 204, sid
        holder = topic if n % 2 else layout.route(sid)
        after = await py.get_schedule(holder, sid)
        assert after is not None and after.next_run_at is not None
        assert after.next_run_at.isoformat() > first["next_run_at"]  # the schedule goes on
    assert checked >= 2
    # an ordinary job whose id holds an "@" is still in its id's partition
    made = await http.put(job_url_of(topic, "user@example.org"), json={"body": 1})
    assert made.status_code in (200, 201), made.text
    assert await py.get(layout.route("user@example.org"), "user@example.org") is not None
    assert (await http.delete(job_url_of(topic, "user@example.org"))).status_code == 204


def schedule_out_of(schedule: Any) -> dict[str, str]:
    """The next_run_at of a schedule as the HTTP API shows it."""
    return {"next_run_at": schedule.next_run_at.isoformat()}


def job_url_of(topic: str, job_id: str) -> str:
    """The URL of a job by id."""
    return f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(job_id, safe='')}"


async def test_if_none_match_makes_a_schedule_put_create_only(
    http: httpx.AsyncClient, topic: str
) -> None:
    """The schedule PUT read only If-Match: `If-None-Match: *` replaced an existing schedule."""
    first = await http.put(url(topic, "s"), json={"body": 1, "every": 3600},
                           headers={"If-None-Match": "*"})  # fmt: skip
    assert first.status_code == 201, first.text
    again = await http.put(url(topic, "s"), json={"body": 2, "every": 60},
                           headers={"If-None-Match": "*"})  # fmt: skip
    assert again.status_code == 412 and again.headers["etag"] == '"1"', again.text
    assert again.json()["error"]["field"] == "If-None-Match"
    kept = (await http.get(url(topic, "s"))).json()
    assert (kept["body"], kept["every"], kept["version"]) == (1, 3600.0, 1)
    for headers in ({"If-None-Match": '"1"'}, {"If-None-Match": "*", "If-Match": '"1"'}):
        bad = await http.put(url(topic, "s"), json={"body": 3, "every": 60}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "If-None-Match"
    assert (await http.get(url(topic, "s"))).json()["version"] == 1
