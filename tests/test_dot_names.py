"""No new job, schedule or topic is named ``.`` or ``..``: a URL path carrying one bare is
resolved to its parent by browsers and curl. One stored by an older version stays readable and
removable."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

import redisched
from redisched import validate
from redisched.errors import InvalidArgument

DOTS = [".", ".."]


def _topic() -> str:
    return f"dots-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("name", DOTS)
async def test_the_clients_refuse_a_new_job_or_schedule_id(api: Any, name: str) -> None:
    topic = _topic()
    calls = {
        "put": lambda: api.put(topic, name, b"x"),
        "put_many": lambda: api.put_many(topic, [("ok", b"x"), (name, b"y")]),
        "schedule": lambda: api.schedule(topic, name, b"x", every=60),
    }
    for what, call in calls.items():
        with pytest.raises(InvalidArgument) as caught:
            await call()
        assert caught.value.argument in ("id", "jobs[1].id"), what
        assert "'.' or '..'" in str(caught.value), what
    assert await api.get(topic, "ok") is None  # put_many stored nothing


@pytest.mark.parametrize("name", DOTS)
async def test_the_clients_refuse_a_new_topic(api: Any, name: str) -> None:
    calls = {
        "put": lambda: api.put(name, "a", b"x"),
        "put_many": lambda: api.put_many(name, [("a", b"x")]),
        "schedule": lambda: api.schedule(name, "s", b"x", every=60),
        "configure": lambda: api.configure(name, ttr=5),
        "pause": lambda: api.pause(name),
    }
    for what, call in calls.items():
        with pytest.raises(InvalidArgument) as caught:
            await call()
        assert caught.value.argument == "topic", what
        assert "'.' or '..'" in str(caught.value), what
    assert name not in await api.topics()


async def test_an_older_versions_dot_names_stay_readable_and_removable(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as older:  # an older version had no such check
        older.setattr(validate, "new_name", lambda value, argument: value)
        await api.put("..", "..", b"old")
        await api.put("..", ".", b"old")
    job = await api.get("..", "..")
    assert job is not None and job.body == b"old"
    assert await api.delete("..", "..")
    assert await api.delete_many("..", ["."]) == 1
    assert await api.get("..", ".") is None
    await api.delete_topic("..")
    assert ".." not in await api.topics()


@pytest.mark.parametrize("name", DOTS)
async def test_the_http_api_refuses_them_naming_the_field(
    http: httpx.AsyncClient, name: str
) -> None:
    encoded = name.replace(".", "%2E")
    topic = _topic()
    schedule = {"body": "x", "every": 60}
    answers = {
        "id": [
            await http.put(f"/v1/topics/{topic}/jobs/{encoded}", json={"body": "x"}),
            await http.put(f"/v1/topics/{topic}/schedules/{encoded}", json=schedule),
        ],
        "topic": [
            await http.put(f"/v1/topics/{encoded}/jobs/a", json={"body": "x"}),
            await http.patch(f"/v1/topics/{encoded}", json={"ttr": 5}),
        ],
    }
    for field, got in answers.items():
        for answer in got:
            assert answer.status_code == 400, answer.text
            error = answer.json()["error"]
            assert error["field"] == field and "'.' or '..'" in error["message"]


def test_put_keeps_its_fast_path_for_short_ids(client: redisched.Client) -> None:
    topic = _topic()
    for name in ("a", "ab", "abc", ".a", "..."):
        client.put(topic, name, b"x")
    assert sorted(j.id for j in client.jobs(topic, "ready").jobs) == [
        "...", ".a", "a", "ab", "abc",
    ]  # fmt: skip


@pytest.mark.parametrize(("topic", "id", "field"), [("..", "a", "topic"), ("t", ".", "id")])
def test_a_bridge_message_putting_one_is_refused(topic: str, id: str, field: str) -> None:
    from redisched.bridges import Delete, parse
    from redisched.ops import Operations

    message = {"topic": topic, "id": id, "body": "x"}
    with pytest.raises(InvalidArgument) as caught:
        parse(json.dumps(message).encode(), Operations())
    assert caught.value.argument == field
    deleting = parse(json.dumps({"op": "delete", "topic": topic, "id": id}).encode(), Operations())
    assert isinstance(deleting, Delete)  # an older version's job stays removable


@pytest.mark.parametrize("name", DOTS)
def test_partitioning_or_resuming_one_as_a_new_topic_is_refused(
    client: redisched.Client, raw_redis: Any, name: str
) -> None:
    """partition_setting writes the partitions hash and the topics set itself (not through
    Operations._register): the HTTP PATCH and the CLI's config command go that way."""
    from redisched import partition_setting

    for changes in ({"partitions": 2}, {"partitions": 2, "ttr": 5}):
        with pytest.raises(InvalidArgument) as caught:
            partition_setting.run(client, partition_setting.configure(client.ops, name, changes))
        assert caught.value.argument == "topic"
    with pytest.raises(InvalidArgument) as caught:
        client.execute(partition_setting.pause(client.ops, name, None, False))
    assert caught.value.argument == "topic"
    assert not raw_redis.hexists("redisched:partitions", name)
    assert not raw_redis.sismember("redisched:topics", name)
    assert name not in client.topics()


@pytest.mark.parametrize("name", DOTS)
async def test_the_http_patch_of_one_as_a_new_topic_is_refused(
    http: httpx.AsyncClient, name: str
) -> None:
    encoded = name.replace(".", "%2E")
    for change in ({"partitions": 2}, {"paused": False}, {"paused": True}):
        answer = await http.patch(f"/v1/topics/{encoded}", json=change)
        assert answer.status_code == 400, (change, answer.text)
        assert answer.json()["error"]["field"] == "topic"
    listed = (await http.get("/v1/topics", params={"partitions": "true"})).json()
    assert name not in json.dumps(listed)
