"""Partitioned topics over HTTP: the ``partitions`` setting, routing by id, rotating reserves."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

import redisched
from redisched.http.metrics import by_topic
from redisched.models import TopicStats
from redisched.partitions import Partitions
from tests.test_http_api import error_of, job_url, topic_url
from tests.unmarked import unmark_async

pytestmark = pytest.mark.asyncio


async def partition(http: httpx.AsyncClient, topic: str, count: int) -> dict[str, Any]:
    answer = await http.patch(topic_url(topic), json={"partitions": count})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_partitions_is_a_setting_set_once(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await http.patch(topic_url(topic), json={"ttr": 12, "max_attempts": 3, "durable": False})
    shown = await partition(http, topic, 4)
    assert shown["config"]["partitions"] == 4 and shown["config"]["ttr"] == 12
    # the settings were copied to every partition (the scripts read them there)
    for name in Partitions(topic, 4).names:
        config = await py.config(name)
        assert (config.ttr, config.max_attempts) == (12, 3)
    assert (await partition(http, topic, 4))["config"]["partitions"] == 4  # the same: fine
    before = (await http.get(topic_url(topic))).json()
    for bad in (0, -1, "x", 1025, 3, None, 2.5, True):
        answer = await http.patch(topic_url(topic), json={"partitions": bad, "ttr": 99})
        assert answer.status_code in (400, 422), (bad, answer.text)
        assert error_of(answer)["field"] == "partitions", bad
    assert (await http.get(topic_url(topic))).json() == before  # nothing changed
    # later settings go to the topic and every partition
    await http.patch(topic_url(topic), json={"ttr": 40, "paused": True})
    for name in Partitions(topic, 4).names:
        assert (await py.config(name)).ttr == 40 and (
            await py.execute(py.ops.stats(name, own=True))
        ).paused
    shown = (await http.get(topic_url(topic))).json()
    assert shown["paused"] and shown["config"]["ttr"] == 40


async def test_durable_is_a_topic_setting(http: httpx.AsyncClient, topic: str) -> None:
    answer = await http.patch(topic_url(topic), json={"durable": True})
    assert answer.status_code == 200 and answer.json()["config"]["durable"] is True
    bad = await http.patch(topic_url(topic), json={"durable": "yes"})
    assert bad.status_code in (400, 422) and error_of(bad)["field"] == "durable"
    answer = await http.patch(topic_url(topic), json={"durable": None})
    assert answer.json()["config"]["durable"] is False


async def test_a_topic_with_jobs_cannot_be_partitioned(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await py.put(topic, "a", b"1")
    answer = await http.patch(topic_url(topic), json={"partitions": 2, "ttr": 5})
    assert answer.status_code == 400 and error_of(answer)["field"] == "partitions"
    assert "holds 1 job" in error_of(answer)["message"]
    assert (await py.config(topic)).ttr is None  # nothing changed


async def test_a_topic_with_finished_records_cannot_be_partitioned(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A finished id's next put goes on from its finished version; partitioned, that put
    went to a partition, which knows nothing of it, and started again at version 1."""
    await py.put(topic, "a", b"1")
    await py.delete(topic, "a")
    answer = await http.patch(topic_url(topic), json={"partitions": 2})
    assert answer.status_code == 400 and error_of(answer)["field"] == "partitions"
    assert "1 finished job record" in error_of(answer)["message"]
    from redisched import partition_setting

    assert await py.execute(partition_setting.read_count(py.ops, topic)) is None
    again = await py.put(topic, "a", b"2")
    assert again.version == 2


async def test_by_id_routes_go_to_the_ids_partition(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 3)
    layout = Partitions(topic, 3)
    ids = [f"job-{i}" for i in range(12)]
    for job_id in ids:
        created = await http.put(job_url(topic, job_id), json={"body": job_id, "delay": 600})
        assert created.status_code == 201 and created.json()["topic"] == layout.route(job_id)
        assert await py.get(layout.route(job_id), job_id) is not None
    assert await py.execute(py.ops.stats(topic, own=True)) == await py.execute(
        py.ops.stats(topic, own=True)
    )  # the logical topic holds nothing
    assert (await py.execute(py.ops.stats(topic, own=True))).scheduled == 0
    got = await http.get(job_url(topic, "job-5"))
    assert got.status_code == 200 and got.json()["id"] == "job-5"
    ran = await http.post(job_url(topic, "job-5", "run-now"))
    assert ran.status_code == 200 and ran.json()["state"] == "ready"
    moved = await http.post(job_url(topic, "job-6", "reschedule"), json={"delay": 1200})
    assert moved.status_code == 200
    assert (await http.delete(job_url(topic, "job-7"))).status_code == 204
    assert (await http.get(job_url(topic, "job-7"))).status_code == 404
    shown = (await http.get(topic_url(topic))).json()
    assert shown["counts"] == {"scheduled": 10, "ready": 1, "reserved": 0, "dead": 0}
    assert shown["totals"]["put"] == 12
    # the listing walks the partitions page by page
    seen: list[str] = []
    cursor = None
    while True:
        params = {"state": "scheduled", "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(topic_url(topic, "/jobs"), params=params)).json()
        assert len(page["jobs"]) <= 4
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(set(ids) - {"job-5", "job-7"})
    for cursor in ("9:", "\u00b9:", "\u0661:"):
        bad = await http.get(topic_url(topic, "/jobs"), params={"state": "ready", "cursor": cursor})
        assert bad.status_code == 400 and error_of(bad)["field"] == "cursor"
    bulk = await http.post(topic_url(topic, "/bulk/delete"), json={"ids": ids[:4]})
    assert bulk.json()["done"] == 4
    purged = await http.post(topic_url(topic, "/purge"), json={"state": "scheduled"})
    assert purged.json()["deleted"] == 6


async def test_reserve_rotates_and_ack_goes_by_partition_or_topic(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 4)
    for i in range(40):
        await http.put(job_url(topic, f"j{i}"), json={"body": i})
    firsts = Counter()
    for _ in range(8):
        got = (await http.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"]
        firsts[got[0]["topic"]] += 1
    assert set(firsts.values()) == {2}, firsts  # each partition served in turn
    many = (await http.post(topic_url(topic, "/reserve"), json={"count": 30})).json()["jobs"]
    assert len(many) == 30 and {j["topic"] for j in many} == set(Partitions(topic, 4).names)
    held = many[0]
    token = {"token": held["token"]}
    acked = await http.post(job_url(held["topic"], held["id"], "ack"), json=token)
    assert acked.status_code == 204  # by the partition's name
    other = many[1]
    acked = await http.post(job_url(topic, other["id"], "ack"), json={"token": other["token"]})
    assert acked.status_code == 204  # by the topic's name: routed by id
    touched = await http.post(
        job_url(topic, many[2]["id"], "touch"), json={"token": many[2]["token"], "ttr": 60}
    )
    assert touched.status_code == 200
    released = await http.post(
        job_url(topic, many[3]["id"], "release"), json={"token": many[3]["token"]}
    )
    assert released.status_code == 200
    token = {"token": many[4]["token"]}
    buried = await http.post(job_url(topic, many[4]["id"], "bury"), json=token)
    assert buried.status_code == 204
    counts = (await http.get(topic_url(topic))).json()["counts"]
    assert counts == {"scheduled": 0, "ready": 3, "reserved": 34, "dead": 1}
    assert (
        await py.execute(py.ops.stats(topic, own=True))
    ).reserved == 0  # nothing in the logical topic itself


async def test_long_poll_wakes_on_a_put_to_any_partition(
    http: httpx.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 3)
    waiter = asyncio.create_task(http.post(topic_url(topic, "/reserve"), json={"wait": 20}))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    await http.put(job_url(topic, "late"), json={"body": 1})
    answer = await asyncio.wait_for(waiter, 5)
    job = answer.json()["jobs"][0]
    assert job["id"] == "late" and job["topic"] == Partitions(topic, 3).route("late")


async def test_topics_list_the_logical_topic_once(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 2)
    await http.put(job_url(topic, "a"), json={"body": 1})
    names = (await http.get("/v1/topics")).json()["topics"]
    assert topic in names and not any(n.startswith(f"{topic}~p") for n in names)
    every = (await http.get("/v1/topics", params={"partitions": "true"})).json()["topics"]
    assert {topic, f"{topic}~p0", f"{topic}~p1"} <= set(every)
    bad = await http.get("/v1/topics", params={"partitions": "maybe"})
    assert bad.status_code == 400 and error_of(bad)["field"] == "partitions"
    # read as every flag of the API is (force=1 was taken, partitions=1 refused)
    for spelling in ("1", "TRUE", "True"):
        again = await http.get("/v1/topics", params={"partitions": spelling})
        assert set(again.json()["topics"]) == set(every), spelling
    busy = await http.post(topic_url(topic, "/reserve"))
    assert busy.status_code == 200
    refused = await http.delete(topic_url(topic))
    assert refused.status_code == 409
    deleted = await http.delete(topic_url(topic), params={"force": "true"})
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
    assert topic not in (await http.get("/v1/topics")).json()["topics"]
    again = await http.patch(topic_url(topic), json={"partitions": 5})  # a new start
    assert again.json()["config"]["partitions"] == 5


async def test_metrics_show_a_partitioned_topic_as_one_topic(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A user who partitioned a topic asks Prometheus about that topic: its series sum the
    partitions and the topic's own jobs, and no partition has series of its own."""
    await partition(http, topic, 3)
    for i in range(6):
        assert (await http.put(job_url(topic, f"p{i}"), json={"body": i})).status_code == 201
    await unmark_async(py, topic)  # partitioned by an earlier version: a job of its own
    await py.put(topic, "own", b"1")
    leased = await http.post(topic_url(topic, "/reserve"), json={"count": 2})
    assert len(leased.json()["jobs"]) == 2
    text = (await http.get("/metrics")).text
    assert f'redisched_jobs{{state="ready",topic="{topic}"}} 5.0' in text
    assert f'redisched_jobs{{state="reserved",topic="{topic}"}} 2.0' in text
    assert f'redisched_puts_total{{topic="{topic}"}} 7.0' in text
    assert f'redisched_reserves_total{{topic="{topic}"}} 2.0' in text
    assert f'redisched_topic_paused{{topic="{topic}"}} 0.0' in text
    assert f'topic="{topic}~p' not in text
    assert "redisched_unreadable_topics 0.0" in text


async def test_metrics_leave_out_a_partitioned_topic_one_of_whose_names_is_unreadable() -> None:
    """A sum short of a partition would make the topic's counters seem to go back."""

    def stats(name: str, ready: int) -> TopicStats:
        return TopicStats(name, 0, ready, 0, 0, False, None, ready, 0, 0, 0, 0, 0, 0)

    names = ["a", "a~p0", "a~p1", "b", "b~p0", "b~p1", "c~p0"]
    read = [stats("a", 1), stats("a~p0", 2), stats("a~p1", 3), None, stats("b~p0", 1), None]
    read.append(stats("c~p0", 4))  # c is not partitioned: c~p0 is a topic of its own
    shown, left_out = by_topic(names, read, {"a": 2, "b": 2})
    assert [(s.topic, s.ready, s.total_put) for s in shown] == [("a", 6, 6), ("c~p0", 4, 4)]
    assert left_out == 1


async def test_openapi_documents_partitions(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    patch = spec["components"]["schemas"]["TopicPatch"]["properties"]["partitions"]
    assert "set once" in str(patch)
    assert "partitions" in spec["components"]["schemas"]["TopicConfigOut"]["properties"]


async def test_the_original_calls_route_by_id(http: httpx.AsyncClient, topic: str) -> None:
    await partition(http, topic, 2)
    made = await http.post(f"/schedule/{topic}", json={"id": "s1", "contents": 1, "delay": 60})
    assert made.status_code == 201 and made.json()["topic"] == Partitions(topic, 2).route("s1")
    gone = await http.post(f"/cancel/{topic}", json={"id": "s1"})
    assert gone.status_code == 200


async def test_kick_all_and_partitions_of_a_partition(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 3)
    for i in range(12):
        await http.put(job_url(topic, f"k{i}"), json={"body": i})
    for job in (await http.post(topic_url(topic, "/reserve"), json={"count": 12})).json()["jobs"]:
        await http.post(job_url(topic, job["id"], "bury"), json={"token": job["token"]})
    kicked = await http.post(topic_url(topic, "/kick"), json={"limit": 5})
    assert kicked.json()["kicked"] == 5  # the limit holds across partitions
    assert (await http.get(topic_url(topic))).json()["counts"]["dead"] == 7
    nested = await http.patch(topic_url(f"{topic}~p1"), json={"partitions": 2})
    assert nested.status_code == 400 and error_of(nested)["field"] == "partitions"
    assert "is a partition of" in error_of(nested)["message"]


async def test_the_timeline_adds_the_partitions_up(web: httpx.AsyncClient, topic: str) -> None:
    assert (await web.patch(topic_url(topic), json={"partitions": 3})).status_code == 200
    for i in range(6):
        await web.put(job_url(topic, f"t{i}"), json={"body": i, "delay": 90})
    found = (await web.get(topic_url(topic, "/timeline"), params={"width": 60})).json()
    assert sum(found["counts"]) == 6


async def test_finished_jobs_of_a_partitioned_topic_page_partition_after_partition(
    web: httpx.AsyncClient, topic: str
) -> None:
    # The finished jobs are recorded in each partition: the topic's listing used to be empty.
    await partition(web, topic, 3)
    names = [f"f{i}" for i in range(7)]
    for name in names:
        await web.put(job_url(topic, name), json={"body": 1})
        assert (await web.delete(job_url(topic, name))).status_code == 204
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await web.get(topic_url(topic, "/finished"), params=params)).json()
        assert len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        assert all(job["outcome"] == "cancelled" for job in page["jobs"])
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == names
    done = await web.get(topic_url(topic, "/finished"), params={"outcome": "done"})
    assert done.json() == {"jobs": [], "cursor": None}
    bad = await web.get(topic_url(topic, "/finished"), params={"cursor": "4:"})  # 3: its own
    assert bad.status_code == 400 and error_of(bad)["field"] == "cursor"
    fragment = await web.get("/dashboard/finished", params={"topic": topic})
    assert fragment.status_code == 200 and all(name in fragment.text for name in names)


async def test_deleting_a_topic_partitioned_elsewhere_a_moment_ago_deletes_its_partitions(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """The service reads partition counts at most every 5 s; a DELETE of a topic that another
    process (`redisched config T --set partitions=N`) had just partitioned took it for a plain
    one: the count went, its partitions stayed, listed as topics with whatever they held."""
    from redisched import partition_setting

    assert (await http.get(topic_url(topic))).status_code == 200  # the map is read now
    await partition_setting.run_async(
        py, partition_setting.configure(py.ops, topic, {"partitions": 3})
    )
    deleted = await http.delete(topic_url(topic), params={"force": "true"})
    assert deleted.status_code == 200, deleted.text
    listed = (await http.get("/v1/topics", params={"partitions": "true"})).json()["topics"]
    assert not [name for name in listed if name.startswith(topic)], listed


async def partition_elsewhere(py: redisched.AsyncClient, topic: str, count: int) -> None:
    """Partition ``topic`` as another process does (`redisched config T --set partitions=N`):
    a service that read the counts before goes on taking ``topic`` for a plain one."""
    from redisched import partition_setting

    flow = partition_setting.configure(py.ops, topic, {"partitions": count})
    await partition_setting.run_async(py, flow)


async def test_a_job_put_while_the_count_was_stale_is_reserved_and_acked_over_http(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A put in the 5 s a service trusts the counts it read goes to the topic itself; once
    the service knew the count, its reserves visited only the partitions: the job stayed
    ready for ever to HTTP consumers."""
    assert (await http.get(topic_url(topic))).status_code == 200  # the counts are read now
    await partition_elsewhere(py, topic, 3)
    await unmark_async(py, topic)  # partitioned by an earlier version
    stray = await http.put(job_url(topic, "stray"), json={"body": "s"})
    assert stray.status_code == 201 and stray.json()["topic"] == topic  # the stale count
    assert (await http.get("/v1/topics")).status_code == 200  # reads the counts again
    for i in range(6):
        await http.put(job_url(topic, f"p{i}"), json={"body": i})
    got: list[dict[str, Any]] = []
    for _ in range(7):
        answer = await http.post(topic_url(topic, "/reserve"), json={"count": 1})
        got += answer.json()["jobs"] if answer.status_code == 200 else []  # 204: none
    assert sorted(j["id"] for j in got) == ["p0", "p1", "p2", "p3", "p4", "p5", "stray"]
    held = next(j for j in got if j["id"] == "stray")
    assert held["topic"] == topic
    shown = await http.get(job_url(topic, "stray"))  # by id, where it is
    assert shown.status_code == 200 and shown.json()["state"] == "reserved"
    touched = await http.post(
        job_url(held["topic"], "stray", "touch"), json={"token": held["token"], "ttr": 60}
    )
    assert touched.status_code == 200, touched.text
    acked = await http.post(job_url(held["topic"], "stray", "ack"), json={"token": held["token"]})
    assert acked.status_code == 204, acked.text
    again = await http.post(job_url(topic, "stray", "ack"), json={"token": held["token"]})
    assert again.status_code == 409  # acked already: the partition's answer, as before
    assert (await py.execute(py.ops.stats(topic, own=True))).total_acked == 1


async def test_reserves_still_start_at_each_partition_in_turn_with_the_topic_in_the_round(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 3)
    await unmark_async(py, topic)  # partitioned by an earlier version
    for i in range(3):
        await py.put(topic, f"own{i}", b"")  # a process that did not know the count
    for i in range(30):
        await http.put(job_url(topic, f"j{i}"), json={"body": i})
    firsts = Counter()
    for _ in range(12):
        got = (await http.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"]
        firsts[got[0]["topic"]] += 1
    # the partitions take their turns as before, one a reserve; the topic itself goes first
    # in one reserve out of four (3 + 1), ahead of the partition whose turn it is, which so
    # changes from round to round: 12 reserves, 3 each
    assert firsts == {topic: 3, **{name: 3 for name in Partitions(topic, 3).names}}, firsts


async def test_a_long_poll_wakes_on_a_put_into_the_topic_by_a_service_with_a_stale_count(
    redis_url: str, http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    from redisched.config import Settings
    from redisched.http import create_app
    from tests.http_fixtures import asgi_client

    assert (await http.get(topic_url(topic))).status_code == 200  # `http` reads the counts
    await partition_elsewhere(py, topic, 2)
    await unmark_async(py, topic)  # partitioned by an earlier version
    async with asgi_client(create_app(Settings(redis_url=redis_url))) as fresh:
        waiter = asyncio.create_task(fresh.post(topic_url(topic, "/reserve"), json={"wait": 20}))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        put = await http.put(job_url(topic, "late"), json={"body": 1})
        assert put.json()["topic"] == topic  # the stale service put it into the topic itself
        answer = await asyncio.wait_for(waiter, 5)
        assert [(j["id"], j["topic"]) for j in answer.json()["jobs"]] == [("late", topic)]
        delayed = await http.put(job_url(topic, "later"), json={"body": 2, "delay": 0.5})
        assert delayed.json()["topic"] == topic
        answer = await fresh.post(topic_url(topic, "/reserve"), json={"wait": 10})
        assert [j["id"] for j in answer.json()["jobs"]] == ["later"]  # woken when it fell due


async def test_the_topics_own_jobs_are_listed_with_its_partitions(
    web: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(web, topic, 2)
    await unmark_async(py, topic)  # partitioned by an earlier version
    await py.put(topic, "own", b"1")  # a process that did not know the count
    for i in range(3):
        await web.put(job_url(topic, f"j{i}"), json={"body": i})
    shown = (await web.get(topic_url(topic))).json()
    assert shown["counts"]["ready"] == 4
    seen: list[str] = []
    cursor = None
    while True:
        params = {"state": "ready", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await web.get(topic_url(topic, "/jobs"), params=params)).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["j0", "j1", "j2", "own"]
    fragment = await web.get("/dashboard/topic", params={"topic": topic, "state": "ready"})
    assert fragment.status_code == 200 and "own" in fragment.text
    assert 'id="partition-own"' in fragment.text  # a row of its own beside the partitions
    job_page = await web.get("/dashboard/job", params={"topic": topic, "id": "own"})
    assert job_page.status_code == 200 and "job-missing" not in job_page.text
    await py.delete(topic, "own")
    finished = (await web.get(topic_url(topic, "/finished"))).json()
    assert [job["id"] for job in finished["jobs"]] == ["own"]


async def test_every_by_id_route_finds_a_job_of_the_topic_itself(
    web: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A job put into the topic itself (by a process that did not know the count yet) was
    looked for in its id's partition only: 404 from every by-id route."""
    await partition(web, topic, 3)
    await unmark_async(py, topic)  # partitioned by an earlier version
    for name in ("a", "b", "c", "d", "e"):
        await py.put(topic, name, b"1", delay=600)
    moved = await web.post(job_url(topic, "a", "reschedule"), json={"delay": 1200})
    assert moved.status_code == 200 and moved.json()["topic"] == topic, moved.text
    ran = await web.post(job_url(topic, "a", "run-now"))
    assert ran.status_code == 200 and ran.json()["state"] == "ready", ran.text
    again = await web.post(job_url(topic, "a", "run-now"))
    assert again.status_code == 409, again.text  # found, not scheduled: not a 404
    not_dead = await web.post(job_url(topic, "a", "kick"))
    assert not_dead.status_code == 409, not_dead.text
    held = (await web.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"][0]
    assert held["id"] == "a"
    expired = await web.post(job_url(topic, "a", "expire"))
    assert expired.status_code == 200, expired.text
    held = (await web.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"][0]
    buried = await web.post(job_url(topic, "a", "bury"), json={"token": held["token"]})
    assert buried.status_code == 204, buried.text
    kicked = await web.post(job_url(topic, "a", "kick"))
    assert kicked.status_code == 200 and kicked.json()["kicked"] == 1, kicked.text
    held = (await web.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"][0]
    released = await web.post(job_url(topic, "a", "release"), json={"token": held["token"]})
    assert released.status_code == 200, released.text
    assert (await web.post(job_url(topic, "b", "abort"))).status_code == 204
    history = await web.get(job_url(topic, "b", "history"))
    assert history.status_code == 200 and history.json()["outcome"] == "aborted", history.text
    assert (await web.delete(job_url(topic, "c"))).status_code == 204
    cancelled = await web.post(f"/cancel/{topic}", json={"id": "d"})
    assert cancelled.status_code == 200, cancelled.text
    assert (await web.get(job_url(topic, "e"))).json()["topic"] == topic
    missing = await web.get(job_url(topic, "nope"))
    assert missing.status_code == 404
    assert f"{topic}~p" in error_of(missing)["message"]  # the miss of the id's partition
    assert {
        name: await py.execute(py.ops.get(topic, name, own=True)) is None for name in "abcde"
    } == {
        "a": False,
        "b": True,
        "c": True,
        "d": True,
        "e": False,
    }


async def test_schedule_routes_find_a_schedule_of_the_topic_itself(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A schedule made on a partitioned topic with a client lives in the topic itself; the
    by-id schedule routes looked in its id's partition only: GET and DELETE answered 404, and
    a PUT made a second schedule of that id, whose occurrences ran beside the first's."""
    await partition(http, topic, 3)
    await unmark_async(py, topic)  # partitioned by an earlier version
    await py.schedule(topic, "tick", b"old", every=3600)
    url = f"{topic_url(topic)}/schedules/tick"
    shown = await http.get(url)
    assert shown.status_code == 200 and shown.json()["topic"] == topic, shown.text
    replaced = await http.put(url, json={"every": 3600, "body": "new"})
    assert replaced.status_code == 200 and replaced.json()["version"] == 2, replaced.text
    listed = (await http.get(f"{topic_url(topic)}/schedules")).json()["schedules"]
    assert [(s["topic"], s["id"]) for s in listed] == [(topic, "tick")]
    assert (await http.delete(url)).status_code == 204
    assert (await http.get(url)).status_code == 404
    made = await http.put(url, json={"every": 3600, "body": "fresh"})  # a new one: its partition
    assert made.status_code == 201 and made.json()["topic"] == Partitions(topic, 3).route("tick")


def _occurrence_away_from_its_partition(topic: str, count: int) -> tuple[str, str]:
    """A schedule id whose first occurrence's id routes to another partition than the
    schedule's (where that occurrence lives), and that partition."""
    from datetime import UTC, datetime, timedelta

    layout = Partitions(topic, count)
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    for n in range(100):
        sid = f"tick{n}"
        if layout.route(f"{sid}@{at:%Y-%m-%dT%H:%M:%SZ}") != layout.route(sid):
            return sid, layout.route(sid)
    raise AssertionError("no such id in 100")


async def _pending(py: redisched.AsyncClient, topic: str, sid: str) -> str:
    """The id of the schedule's pending occurrence."""
    schedule = await py.get_schedule(topic, sid)
    assert schedule is not None and schedule.next_run_at is not None
    return f"{sid}@{schedule.next_run_at:%Y-%m-%dT%H:%M:%SZ}"


async def test_an_occurrences_history_and_bulk_actions_find_it_with_its_schedule(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """An occurrence lives with its schedule, not in its own id's partition: once finished,
    its history answered 404 through the topic's name, and the bulk routes grouped it by its
    id alone (`{"requested": 1, "done": 0}`)."""
    await partition(http, topic, 3)
    sid, home = _occurrence_away_from_its_partition(topic, 3)
    spec = {"cron": "0 * * * *", "body": "s"}
    made = await http.put(f"{topic_url(topic)}/schedules/{sid}", json=spec)
    assert made.status_code == 201 and made.json()["topic"] == home, made.text
    first = await _pending(py, home, sid)
    ran = await http.post(f"{topic_url(topic)}/bulk/run-now", json={"ids": [first]})
    assert ran.json() == {"action": "run-now", "requested": 1, "done": 1}, ran.text
    held = (await http.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"][0]
    assert held["id"] == first
    acked = await http.post(job_url(topic, first, "ack"), json={"token": held["token"]})
    assert acked.status_code == 204, acked.text
    history = await http.get(job_url(topic, first, "history"))
    assert history.status_code == 200 and history.json()["outcome"] == "done", history.text
    second = await _pending(py, home, sid)
    assert second != first
    gone = await http.post(f"{topic_url(topic)}/bulk/delete", json={"ids": [second, "nope"]})
    assert gone.json() == {"action": "delete", "requested": 2, "done": 1}, gone.text
    assert await py.get(home, second) is None


async def test_a_partitions_name_takes_only_its_own_ids_and_no_settings_of_its_own(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A partition's name is an ordinary topic for the jobs it holds (a reserved job's
    `topic`), but a put there of an id that routes to another partition made a second live
    job of that id, and a PATCH or DELETE on it changed one partition alone (a topic shown
    paused while its other partitions leased)."""
    await partition(http, topic, 3)
    layout = Partitions(topic, 3)
    routed = layout.route("q0")
    other = next(name for name in layout.names if name != routed)
    made = await http.put(job_url(topic, "q0"), json={"body": 0})
    assert made.json()["topic"] == routed
    wrong = await http.put(job_url(other, "q0"), json={"body": "direct"})
    assert wrong.status_code == 400 and error_of(wrong)["field"] == "id", wrong.text
    assert routed in error_of(wrong)["message"]
    right = await http.put(job_url(routed, "q0"), json={"body": "there"})
    assert right.status_code == 200 and right.json()["version"] == 2, right.text
    schedule = await http.put(f"{topic_url(other)}/schedules/q0", json={"body": 1, "every": 60})
    assert schedule.status_code == 400 and error_of(schedule)["field"] == "id"
    # the original project's route too (it made the second job, leased beside the first)
    seed = await http.post(f"/schedule/{other}", json={"id": "q0", "contents": 3})
    assert seed.status_code == 400 and error_of(seed)["field"] == "id", seed.text
    seed = await http.post(f"/schedule/{routed}", json={"id": "q0", "contents": "there"})
    assert seed.status_code == 200 and seed.json()["version"] == 3, seed.text
    paused = await http.patch(topic_url(other), json={"paused": True})
    assert paused.status_code == 400 and error_of(paused)["field"] == "topic", paused.text
    assert not (await py.stats(other)).paused
    gone = await http.delete(topic_url(other), params={"force": "true"})
    assert gone.status_code == 400 and error_of(gone)["field"] == "topic", gone.text
    assert [j.topic for j in (await py.jobs(routed, "ready")).jobs] == [routed]
    assert await py.get(other, "q0") is None
    reserved = (await http.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"]
    acked = await http.post(
        job_url(reserved[0]["topic"], "q0", "ack"), json={"token": reserved[0]["token"]}
    )
    assert acked.status_code == 204  # by the partition's name, as before


async def test_a_service_with_a_stale_count_puts_into_the_ids_partition(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A service that read the counts before another process partitioned the topic put into
    the topic itself for up to 5 s: a later put of the same id, routed, made a second job.
    Redis now refuses a put into the marked topic; the service learns the count from it."""
    assert (await http.get(topic_url(topic))).status_code == 200  # the counts are read now
    await partition_elsewhere(py, topic, 3)
    layout = Partitions(topic, 3)
    made = await http.put(job_url(topic, "late"), json={"body": "1"})
    assert made.status_code == 201 and made.json()["topic"] == layout.route("late"), made.text
    minimal = await http.put(
        job_url(topic, "late2"), json={"body": "2"}, headers={"Prefer": "return=minimal"}
    )
    assert minimal.status_code == 201 and minimal.json()["topic"] == layout.route("late2")
    sid = "tick"
    schedule = await http.put(
        f"{topic_url(topic)}/schedules/{sid}", json={"every": 3600, "body": "s"}
    )
    assert schedule.status_code == 201, schedule.text
    assert schedule.json()["topic"] == layout.route(sid)
    stats = await py.execute(py.ops.stats(topic, own=True))
    assert stats.scheduled + stats.ready == 0
    assert await py.execute(py.ops.schedules(topic, own=True)) == []
    again = await http.put(job_url(topic, "late"), json={"body": "3"})  # replaced, not a 2nd
    assert again.status_code == 200 and again.json()["version"] == 2, again.text


async def test_the_original_schedule_route_with_a_stale_count_puts_into_the_ids_partition(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    assert (await http.get(topic_url(topic))).status_code == 200  # the counts are read now
    await partition_elsewhere(py, topic, 3)
    seed = await http.post(f"/schedule/{topic}", json={"id": "late", "contents": 1, "delay": 9})
    assert seed.status_code == 201, seed.text  # it answered 400 naming topic
    assert seed.json()["topic"] == Partitions(topic, 3).route("late")


async def test_a_service_with_a_stale_count_finds_a_job_in_its_partition_by_id(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A service that read the counts before another process partitioned the topic sent a
    get, a delete or an ack of an id to the topic itself for up to 5 s: 404 or 409 for a job
    a fresh process had put into its partition. A miss there now reads the count afresh."""
    assert (await http.get(topic_url(topic))).status_code == 200  # the counts are read now
    await partition_elsewhere(py, topic, 3)
    layout = Partitions(topic, 3)
    for job_id in ("seen", "gone"):
        await py.put(layout.route(job_id), job_id, b'"b"')  # as a fresh process puts them
    seen = await http.get(job_url(topic, "seen"))
    assert seen.status_code == 200 and seen.json()["topic"] == layout.route("seen"), seen.text
    assert (await http.delete(job_url(topic, "gone"))).status_code == 204
    assert await py.get(layout.route("gone"), "gone") is None
    assert (await http.get(job_url(topic, "missing"))).status_code == 404  # still a 404


async def test_a_service_with_a_stale_count_acks_and_cancels_in_the_ids_partition(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    assert (await http.get(topic_url(topic))).status_code == 200  # the counts are read now
    await partition_elsewhere(py, topic, 3)
    layout = Partitions(topic, 3)
    await py.put(layout.route("held"), "held", b'"b"')
    await py.put(layout.route("cancelled"), "cancelled", b'"b"')
    lease = await py.reserve(layout.route("held"))
    assert lease is not None
    acked = await http.post(job_url(topic, "held", "ack"), json={"token": lease.token})
    assert acked.status_code == 204, acked.text
    assert (await py.stats(layout.route("held"))).total_acked == 1
    cancelled = await http.post(f"/cancel/{topic}", json={"id": "cancelled"})
    assert cancelled.status_code == 200, cancelled.text
    assert await py.get(layout.route("cancelled"), "cancelled") is None


async def test_a_stale_services_second_lookup_and_concurrent_requests_find_the_job(
    http: httpx.AsyncClient, web: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """A miss re-read the count only while this process took the topic for unpartitioned:
    a second lookup in one request (the get that tells 409 from 404 after a kick, run-now or
    expire), or a request routed before a concurrent one learnt the count, answered 404."""
    assert (await http.get(topic_url(topic))).status_code == 200  # the counts are read now
    assert (await web.get(topic_url(topic))).status_code == 200
    await partition_elsewhere(py, topic, 3)
    layout = Partitions(topic, 3)
    for i in range(20):
        await py.put(layout.route(f"j{i}"), f"j{i}", b'"b"')
    await py.put(layout.route("later"), "later", b'"b"', delay=3600)
    answers = await asyncio.gather(*(http.get(job_url(topic, f"j{i}")) for i in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    kicked = await http.post(job_url(topic, "later", "kick"), json={})
    assert kicked.status_code == 409, kicked.text  # not dead: as with a fresh count
    expired = await web.post(job_url(topic, "j0", "expire"), json={})
    assert expired.status_code == 409, expired.text  # not reserved


async def test_a_refused_delete_keeps_a_topic_partitioned_for_this_service(
    http: httpx.AsyncClient, topic: str
) -> None:
    """A DELETE refused as busy (409, nothing deleted) made the service forget the count:
    for up to 5 s it showed and reserved the topic as a plain one."""
    await partition(http, topic, 3)
    for i in range(4):
        assert (await http.put(job_url(topic, f"j{i}"), json={"body": i})).status_code == 201
    held = (await http.post(topic_url(topic, "/reserve"), json={"count": 1})).json()["jobs"]
    assert len(held) == 1
    refused = await http.delete(topic_url(topic))
    assert refused.status_code == 409, refused.text
    counts = (await http.get(topic_url(topic))).json()["counts"]
    assert counts == {"scheduled": 0, "ready": 3, "reserved": 1, "dead": 0}, counts
    got = (await http.post(topic_url(topic, "/reserve"), json={"count": 3})).json()["jobs"]
    assert len(got) == 3, got


async def test_an_occurrence_id_that_is_not_utf8_is_a_404_in_a_partitioned_topic(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    """Finding which topic holds an ``@`` id sent its surrogate-escaped text to Redis: a 500."""
    other = f"{topic}-b"
    assert (await http.get(topic_url(other))).status_code == 200  # the counts are read now
    await partition(http, topic, 3)
    assert (await http.get(f"{topic_url(topic)}/jobs/%FF@1")).status_code == 404
    await partition_elsewhere(py, other, 3)  # found by a miss's fresh read of the count
    assert (await http.delete(f"{topic_url(other)}/jobs/%FF@1")).status_code == 404


async def test_setting_the_count_again_marks_a_topic_partitioned_by_an_earlier_version(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    await partition(http, topic, 2)
    await unmark_async(py, topic)
    await py.put(topic, "stray", b"")  # an earlier version's window: still possible
    assert (await partition(http, topic, 2))["config"]["partitions"] == 2
    with pytest.raises(redisched.TopicPartitioned):
        await py.put(topic, "later", b"")
