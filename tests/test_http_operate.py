"""The operator's HTTP routes: bulk actions, purge, topic deletion, reschedule, run now."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import redisched
from redisched import JobState
from tests.test_http_api import error_of, job_url, topic_url

pytestmark = pytest.mark.asyncio


async def snapshot(py: redisched.AsyncClient, topic: str) -> list[Any]:
    """Every job of the topic with its state and version, to check that nothing changed."""
    jobs = []
    for state in JobState:
        jobs += [(j.id, j.state, j.version) for j in (await py.jobs(topic, state)).jobs]
    return sorted(jobs)


async def test_listing_by_prefix(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put_many(topic, [("order-1", b"1"), ("user-1", b"2"), ("order-2", b"3")])
    page = (
        await http.get(topic_url(topic, "/jobs"), params={"state": "ready", "prefix": "order-"})
    ).json()
    assert [j["id"] for j in page["jobs"]] == ["order-1", "order-2"] and page["cursor"] is None
    bad = await http.get(topic_url(topic, "/jobs"), params={"state": "ready", "cursor": "x"})
    assert bad.status_code == 400 and error_of(bad)["field"] == "cursor"


async def test_bulk_actions_say_how_many_they_acted_on(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put_many(topic, [(f"d{i}", b"") for i in range(4)])
    for job in await py.reserve_many(topic, 3):
        await py.bury(job)
    kicked = await http.post(
        topic_url(topic, "/bulk/kick"), json={"ids": ["d0", "d1", "d3"], "state": "dead"}
    )
    assert kicked.json() == {"action": "kick", "requested": 3, "done": 2}
    # a stale selection: d0 and d1 were listed as dead but are ready now
    deleted = await http.post(
        topic_url(topic, "/bulk/delete"), json={"ids": ["d0", "d1", "d2"], "state": "dead"}
    )
    assert deleted.json() == {"action": "delete", "requested": 3, "done": 1}
    assert await py.get(topic, "d2") is None and await py.get(topic, "d0") is not None
    await py.put(topic, "later", b"", delay=600)
    ran = await http.post(topic_url(topic, "/bulk/run-now"), json={"ids": ["later", "d0"]})
    assert ran.json()["done"] == 1 and (await py.get(topic, "later")).state is JobState.READY
    held = await py.reserve_many(topic, 10)
    expired = await http.post(topic_url(topic, "/bulk/expire"), json={"ids": [j.id for j in held]})
    assert expired.json()["done"] == len(held) == 4
    assert (await py.stats(topic)).reserved == 0


async def test_purge_and_delete_topic(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put_many(topic, [(f"s{i}", b"") for i in range(2500)], delay=60)
    await py.put_many(topic, [("r1", b""), ("r2", b"")])
    purged = await http.post(topic_url(topic, "/purge"), json={"state": "scheduled"})
    assert purged.json() == {"topic": topic, "deleted": 2500, "state": "scheduled"}
    held = await py.reserve(topic)
    busy = await http.delete(topic_url(topic))
    assert busy.status_code == 409 and error_of(busy)["field"] == "force"
    assert (await py.stats(topic)).ready == 1
    gone = await http.delete(topic_url(topic), params={"force": "true"})
    assert gone.json() == {"topic": topic, "deleted": 2, "state": None}
    assert topic not in (await http.get("/v1/topics")).json()["topics"]
    assert held is not None and await py.get(topic, held.id) is None
    # put, deleted and put again through the service: listed again (the service used to
    # trust its first registration of the topic for ever)
    for attempt in ("first", "again"):
        put = await http.put(f"{topic_url(topic)}/jobs/{attempt}", json={"body": 1})
        assert put.status_code == 201
        assert topic in (await http.get("/v1/topics")).json()["topics"]
        if attempt == "first":
            await http.delete(topic_url(topic))
            assert topic not in (await http.get("/v1/topics")).json()["topics"]


async def test_reschedule_and_run_now(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put(topic, "job", b'{"a": 1}', delay=3600)
    moved = await http.post(job_url(topic, "job", "reschedule"), json={"delay": 60, "priority": 4})
    assert moved.status_code == 200 and moved.headers["etag"] == '"2"'
    assert moved.json()["body"] == {"a": 1} and moved.json()["priority"] == 4
    now = await http.post(job_url(topic, "job", "run-now"))
    assert now.status_code == 200 and now.json()["state"] == "ready"
    again = await http.post(job_url(topic, "job", "run-now"))
    assert again.status_code == 409 and error_of(again)["code"] == "not_scheduled"
    missing = await http.post(job_url(topic, "nope", "reschedule"), json={})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "params", "field"),
    [
        ("post", "/bulk/delete", {"ids": []}, None, "ids"),
        ("post", "/bulk/delete", {"ids": ["a"], "state": "running"}, None, "state"),
        ("post", "/bulk/delete", {"ids": [""]}, None, "ids[0]"),
        ("post", "/bulk/kick", {"ids": ["a"], "state": "ready"}, None, "state"),
        ("post", "/bulk/kick", {"ids": ["a"], "extra": 1}, None, "extra"),
        ("post", "/purge", {"state": "reserved"}, None, "state"),
        ("post", "/purge", {}, None, "state"),
        ("delete", "", None, {"force": "maybe"}, "force"),
        ("post", "/jobs/job/reschedule", {"delay": 1, "run_at": 5}, None, "delay"),
        ("post", "/jobs/job/reschedule", {"priority": "high"}, None, "priority"),
        ("post", "/jobs/job/reschedule", {"delay": -1}, None, "delay"),
    ],
)
async def test_bad_input_names_the_field_and_changes_nothing(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str, method: str, path: str,
    body: Any, params: Any, field: str,
) -> None:  # fmt: skip
    await py.put_many(topic, [("a", b""), ("job", b"")])
    await py.put(topic, "s", b"", delay=60)
    before = await snapshot(py, topic)
    options: dict[str, Any] = {"params": params}
    if body is not None:
        options["json"] = body
    response = await getattr(http, method)(topic_url(topic, path), **options)
    assert response.status_code == 400, response.text
    assert error_of(response)["field"] == field
    assert await snapshot(py, topic) == before


async def test_the_new_operations_are_documented(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    for action in ("delete", "kick", "run-now", "expire"):
        assert "post" in paths[f"/v1/topics/{{topic}}/bulk/{action}"]
    assert "delete" in paths["/v1/topics/{topic}"] and "post" in paths["/v1/topics/{topic}/purge"]
    assert "post" in paths["/v1/topics/{topic}/jobs/{id}/reschedule"]
    assert "post" in paths["/v1/topics/{topic}/jobs/{id}/run-now"]
    params = {p["name"] for p in paths["/v1/topics/{topic}/jobs"]["get"]["parameters"]}
    assert "prefix" in params


async def test_a_webhook_patch_without_secrets_keeps_them(
    http: httpx.AsyncClient, topic: str
) -> None:
    hook = {"url": "https://93.184.215.14/a", "secrets": ["s" * 16, "t" * 16]}
    await http.patch(topic_url(topic), json={"webhook": hook})
    moved = await http.patch(topic_url(topic), json={"webhook": {"url": "https://93.184.215.14/b"}})
    assert moved.json()["config"]["webhook"]["secret_count"] == 2
    cleared = await http.patch(
        topic_url(topic), json={"webhook": {"url": "https://93.184.215.14/b", "secrets": []}}
    )
    assert cleared.json()["config"]["webhook"]["secret_count"] == 0


async def test_kick_all_dead_of_a_topic(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put_many(topic, [(f"d{i}", b"") for i in range(5)])
    for job in await py.reserve_many(topic, 5):
        await py.bury(job)
    kicked = await http.post(topic_url(topic, "/kick"), json={"limit": 3})
    assert kicked.json() == {"kicked": 3} and (await py.stats(topic)).dead == 2
    bad = await http.post(topic_url(topic, "/kick"), json={"limit": 0})
    assert bad.status_code == 400 and error_of(bad)["field"] == "limit"
