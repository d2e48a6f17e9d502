"""Jobs a raw script call stored with an id (or body, error, detail) that is not UTF-8.

The scripts are a contract any Redis client may call with EVALSHA (design section 3); the
glue of each language sends valid UTF-8, a raw caller need not. Every reader must still list,
show and run such a job: its id is the bytes decoded with ``surrogateescape`` in Python (so
get, delete and ack send the same bytes back), ``\\xNN`` in JSON, HTML and on a terminal.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
from click.testing import CliRunner

import redisched
from redisched import AsyncClient, Job, JobState, Outcome, Worker
from redisched.cli import main
from redisched.http import routes_history
from redisched.push import delivery
from tests import raw_scripts as raw

ODD = b"bad-\xff\xfe-id"
ODD_TEXT = ODD.decode("utf-8", "surrogateescape")
ODD_SHOWN = "bad-\\xff\\xfe-id"  # as JSON, HTML and the terminal show it


def store_odd(raw_redis: redis.Redis, topic: str, body: bytes = b'{"n": 1}') -> None:
    """A good job put by the glue and an odd one put by a raw script call."""
    redisched.Client(raw_redis).put(topic, "good", b"{}")
    raw.put(raw_redis, topic, ODD, body)


@pytest.mark.asyncio
async def test_a_listing_shows_the_odd_id_and_the_client_finds_it_again(
    api: Any, raw_redis: redis.Redis, topic: str
) -> None:
    store_odd(raw_redis, topic)
    page = await api.jobs(topic, "ready")
    assert sorted(job.id for job in page.jobs) == sorted(["good", ODD_TEXT])
    found = await api.get(topic, ODD_TEXT)
    assert found is not None and found.id == ODD_TEXT and found.body == b'{"n": 1}'
    assert (await api.history(topic, ODD_TEXT)).id == ODD_TEXT
    assert await api.delete(topic, ODD_TEXT)
    assert await api.get(topic, ODD_TEXT) is None
    assert raw_redis.hexists(f"redisched:{{{topic}}}:jobs", "good")


@pytest.mark.asyncio
async def test_a_new_job_still_needs_valid_unicode(api: Any, topic: str) -> None:
    with pytest.raises(redisched.InvalidArgument, match="no lone surrogates"):
        await api.put(topic, ODD_TEXT, b"{}")
    with pytest.raises(redisched.InvalidArgument, match="no lone surrogates"):
        await api.get(topic, "\ud800")  # not a byte's escape: no bytes to send


@pytest.mark.asyncio
async def test_a_lease_takes_the_odd_job_and_its_ack_finishes_it(
    api: Any, raw_redis: redis.Redis, topic: str
) -> None:
    store_odd(raw_redis, topic)
    jobs = await api.reserve_many(topic, 10)
    assert sorted(job.id for job in jobs) == sorted(["good", ODD_TEXT])
    assert [j.id for j in (await api.jobs(topic, "reserved")).jobs]
    odd = next(job for job in jobs if job.id == ODD_TEXT)
    await api.touch(odd)
    await api.ack(odd, result=b"ok")
    await api.ack_many(topic, [job for job in jobs if job is not odd])
    history = await api.history(topic, ODD_TEXT)
    assert history.outcome is Outcome.DONE and history.result == b"ok"
    finished = await api.finished(topic)
    assert sorted(h.id for h in finished.jobs) == sorted(["good", ODD_TEXT])
    events = await api.events(topic)
    assert {e.id for e in events} == {"good", ODD_TEXT}


@pytest.mark.asyncio
async def test_a_worker_runs_and_fails_the_odd_job_and_goes_on(
    raw_redis: redis.Redis, redis_url: str, topic: str
) -> None:
    raw.put(raw_redis, topic, ODD, b"{}", max_attempts=1)
    raw.put(raw_redis, topic, b"ok-\xff", b"{}")
    seen: list[str] = []

    async def handler(job: Job) -> None:
        seen.append(job.id)
        if job.id == ODD_TEXT:
            raise ValueError("no")

    async with AsyncClient.from_url(redis_url) as client:
        worker = Worker(client, {topic: handler}, handle_signals=False)
        task = asyncio.create_task(worker.run())
        try:
            for _ in range(1000):
                stats = await client.stats(topic)
                if stats.total_acked == 1 and stats.dead == 1:
                    break
                assert not task.done(), task
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"not finished: {stats}")
            await client.put(topic, "after", b"{}")  # the loop still runs
            for _ in range(1000):
                if "after" in seen:
                    break
                await asyncio.sleep(0.01)
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)
    assert sorted(seen) == sorted([ODD_TEXT, "ok-\udcff", "after"])
    dead = await asyncio.to_thread(redisched.Client(raw_redis).get, topic, ODD_TEXT)
    assert (
        dead is not None and dead.state is JobState.DEAD and "ValueError" in (dead.last_error or "")
    )


def _path(topic: str, rest: str = "") -> str:
    return f"/v1/topics/{quote(topic, safe='')}{rest}"


@pytest.mark.asyncio
async def test_the_http_api_lists_and_reads_the_odd_job(
    http: httpx.AsyncClient, raw_redis: redis.Redis, topic: str
) -> None:
    store_odd(raw_redis, topic, body=b"\xfe\xff")
    listing = await http.get(_path(topic, "/jobs"), params={"state": "ready"})
    assert listing.status_code == 200, listing.text
    jobs = {job["id"]: job for job in listing.json()["jobs"]}
    assert set(jobs) == {"good", ODD_SHOWN}
    assert jobs[ODD_SHOWN]["body"] == {"$base64": "/v8="}
    one = await http.get(_path(topic, "/jobs/bad-%FF%FE-id"))  # the id's bytes, %-encoded
    assert one.status_code == 200, one.text
    assert one.json()["id"] == ODD_SHOWN
    reserved = await http.post(_path(topic, "/reserve"), json={"count": 10})
    assert reserved.status_code == 200, reserved.text
    leased = {job["id"]: job for job in reserved.json()["jobs"]}
    assert set(leased) == {"good", ODD_SHOWN}
    token = leased[ODD_SHOWN]["token"]
    bury = await http.post(_path(topic, "/jobs/bad-%FF%FE-id/bury"), json={"token": token})
    assert bury.status_code in (200, 204), bury.text
    kick = await http.post(_path(topic, "/jobs/bad-%FF%FE-id/kick"), json={})
    assert kick.status_code in (200, 204), kick.text
    history = await http.get(_path(topic, "/jobs/bad-%FF%FE-id/history"))
    assert history.status_code == 200, history.text
    assert history.json()["id"] == ODD_SHOWN
    assert [e["kind"] for e in history.json()["events"]][-2:] == ["buried", "kicked"]
    events = await http.get(_path(topic, "/events"))
    assert events.status_code == 200, events.text
    assert {e["id"] for e in events.json()["events"]} == {"good", ODD_SHOWN}
    odd_event = redisched.Client(raw_redis).events(topic)[-1]
    assert json.dumps(ODD_SHOWN) in routes_history.sse_message(odd_event).decode()
    put = await http.put(_path(topic, "/jobs/new-%FF"), json={"body": 1})
    assert put.status_code == 400 and "UTF-8" in put.text  # a new job's id stays Unicode
    assert (await http.delete(_path(topic, "/jobs/bad-%FF%FE-id"))).status_code == 204
    gone = await http.get(_path(topic, "/jobs/bad-%FF%FE-id"))
    assert gone.status_code == 404
    assert "bad-\\xff\\xfe-id" in gone.json()["error"]["message"]  # shown, not \udcff
    finished = await http.get(_path(topic, "/finished"))
    assert finished.status_code == 200, finished.text
    assert [j["id"] for j in finished.json()["jobs"]] == [ODD_SHOWN]


@pytest.mark.asyncio
async def test_the_dashboard_shows_the_odd_job_escaped(
    web: httpx.AsyncClient, raw_redis: redis.Redis, topic: str
) -> None:
    store_odd(raw_redis, topic, body=b"\xfe\xff")
    client = redisched.Client(raw_redis)
    for state in ("ready", ""):
        page = await web.get("/dashboard/topic", params={"topic": topic, "state": state})
        assert page.status_code == 200, page.text
        assert "bad-\\xff\\xfe-id" in page.text and "good" in page.text
    job = client.reserve_many(topic, 10)
    client.ack_many(topic, job)
    for path in ("/dashboard/finished", "/dashboard/topic"):
        page = await web.get(path, params={"topic": topic})
        assert page.status_code == 200, page.text
        assert "bad-\\xff\\xfe-id" in page.text
    overview = await web.get("/dashboard/overview")
    assert overview.status_code == 200


@pytest.mark.asyncio
async def test_the_dashboards_links_and_buttons_reach_the_odd_job(
    web: httpx.AsyncClient, raw_redis: redis.Redis, topic: str
) -> None:
    # The pages wrote the id's link and buttons as the text they show (\\xNN): the job page
    # of that link said "No job", its buttons went to a job of other bytes.
    store_odd(raw_redis, topic)
    listing = await web.get("/dashboard/topic", params={"topic": topic, "state": "ready"})
    link = f"#/job/{quote(topic, safe='')}/bad-%FF%FE-id"
    assert f'href="{link}"' in listing.text
    assert 'data-id="bad-\\xff\\xfe-id" data-id-path="bad-%FF%FE-id"' in listing.text
    page = await web.get(f"/dashboard/job?topic={quote(topic)}&id=bad-%FF%FE-id")  # as app.js asks
    assert page.status_code == 200, page.text
    assert 'id="job-state">ready<' in page.text and "job-missing" not in page.text
    # a ready job: its Delete button, and the abort, reschedule and body forms
    assert page.text.count('data-id-path="bad-%FF%FE-id"') == 4
    assert (await web.delete(_path(topic, "/jobs/bad-%FF%FE-id"))).status_code == 204
    assert raw_redis.hkeys(f"redisched:{{{topic}}}:jobs") == [b"good"]
    gone = await web.get(f"/dashboard/job?topic={quote(topic)}&id=bad-%FF%FE-id")
    assert gone.status_code == 200 and 'id="job-outcome">cancelled<' in gone.text  # history
    for bad in ("", "%FF" * 1025, None):
        query = "" if bad is None else f"&id={bad}"
        refused = await web.get(f"/dashboard/job?topic={quote(topic)}{query}")
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "id", bad


@pytest.mark.asyncio
async def test_a_bulk_action_takes_the_odd_id_as_its_bytes(
    web: httpx.AsyncClient, raw_redis: redis.Redis, topic: str
) -> None:
    # A JSON string cannot hold bytes that are not UTF-8 (msgspec refuses lone surrogates):
    # the bulk routes take such an id as {"$base64": ...}, as a body is given.
    store_odd(raw_redis, topic)
    odd = {"$base64": base64.b64encode(ODD).decode()}
    bulk = _path(topic, "/bulk/delete")
    answer = await web.post(bulk, json={"ids": [odd, "good", odd], "state": "ready"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"action": "delete", "requested": 2, "done": 2}
    assert raw_redis.hlen(f"redisched:{{{topic}}}:jobs") == 0
    store_odd(raw_redis, topic)
    too_long = base64.b64encode(b"\xff" * 1025).decode()
    for bad in ({"$base64": "not base64!"}, {"$base64": "\u00fa"}, {"$base64": too_long},
                {"$base64": ""}, {"$base64": "QQ==", "extra": 1}, {"base64": "QQ=="}):  # fmt: skip
        refused = await web.post(bulk, json={"ids": ["good", bad]})
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["field"].startswith("ids"), (bad, refused.text)
    assert raw_redis.hlen(f"redisched:{{{topic}}}:jobs") == 2


def test_the_cli_prints_the_odd_job_escaped(raw_redis: redis.Redis, topic: str) -> None:
    store_odd(raw_redis, topic)
    url = "redis://{host}:{port}".format(**raw_redis.connection_pool.connection_kwargs)
    env = {"REDISCHED_REDIS_URL": url}
    runner = CliRunner()
    table = runner.invoke(main, ["jobs", topic], env=env)
    assert table.exit_code == 0, table.output
    assert "bad-\\xff\\xfe-id" in table.output and "good" in table.output
    listed = runner.invoke(main, ["jobs", topic, "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert {j["id"] for j in json.loads(listed.stdout)["jobs"]} == {"good", ODD_SHOWN}
    reserved = runner.invoke(main, ["reserve", topic, "--count", "10"], env=env)
    assert reserved.exit_code == 0, reserved.output
    assert {j["id"] for j in json.loads(reserved.stdout)} == {"good", ODD_SHOWN}
    for args in (["events", topic], ["history", topic, ODD_TEXT]):
        shown = runner.invoke(main, args, env=env)
        assert shown.exit_code == 0, (args, shown.output)
        assert json.dumps(ODD_SHOWN) in shown.output
    # Python decodes argv with surrogateescape: the shell's bytes name the job
    assert runner.invoke(main, ["delete", topic, ODD_TEXT], env=env).exit_code == 0
    finished = runner.invoke(main, ["history", topic, ODD_TEXT], env=env)
    assert finished.exit_code == 0, finished.output
    assert json.loads(finished.stdout)["outcome"] == "cancelled"


def test_a_webhook_payload_and_message_id_of_the_odd_job(
    raw_redis: redis.Redis, topic: str
) -> None:
    store_odd(raw_redis, topic)
    odd = redisched.Client(raw_redis).get(topic, ODD_TEXT)
    assert odd is not None
    assert json.loads(delivery.payload(odd))["id"] == ODD_SHOWN
    assert delivery.message_id(odd).startswith("msg_")


@pytest.mark.asyncio
async def test_a_schedule_with_an_odd_id_is_listed_read_and_removed(
    http: httpx.AsyncClient, raw_redis: redis.Redis, topic: str
) -> None:
    raw.call(raw_redis, topic, "schedule", {
        "id": b"sch-\xff", "every_ms": 60_000, "start_ms": 0, "end_ms": 0, "priority": 0,
        "body": b"{}", "time": [],
    })  # fmt: skip
    raw_redis.sadd("redisched:topics", topic)
    client = redisched.Client(raw_redis)
    sid = "sch-\udcff"
    assert [s.id for s in client.schedules(topic)] == [sid]
    found = client.get_schedule(topic, sid)
    assert found is not None and found.every is not None
    occurrence = client.jobs(topic, "scheduled").jobs
    assert [job.id.partition("@")[0] for job in occurrence] == [sid]
    listed = await http.get(_path(topic, "/schedules"))
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()["schedules"]] == ["sch-\\xff"]
    one = await http.get(_path(topic, "/schedules/sch-%FF"))
    assert one.status_code == 200 and one.json()["id"] == "sch-\\xff"
    assert (await http.delete(_path(topic, "/schedules/sch-%FF"))).status_code == 204
    assert client.schedules(topic) == [] and client.jobs(topic, "scheduled").jobs == []


def test_an_odd_id_is_sent_as_its_bytes_and_nothing_else_is_let_through() -> None:
    ops = redisched.ops.Operations()
    assert ops.get("t", ODD_TEXT).steps[0].args[-1] == ODD
    assert ops.delete_many("t", ["a", ODD_TEXT]).steps[0].args[-2:] == ("a", ODD)
    for bad, problem in [
        ("", "empty"),
        ("\ud800", "lone surrogates"),
        ("\udcc3\udca9", "lone surrogates"),  # escapes spelling UTF-8 ("é"): no stored id's
        ("\udcff" * 1025, "1024 bytes"),
        (7, "string"),
    ]:
        with pytest.raises(redisched.InvalidArgument, match=problem):
            ops.get("t", bad)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_free_texts_and_bodies_that_are_not_utf8_are_shown_safely(
    web: httpx.AsyncClient, raw_redis: redis.Redis, topic: str
) -> None:
    raw.put(raw_redis, topic, b"txt", b"\xfe\xff")
    token = raw.call(raw_redis, topic, "reserve", {"count": 1})[3][8]
    raw.call(raw_redis, topic, "release", {
        "id": b"txt", "token": token, "delay_ms": 0, "error": b"oops \xff",
    })  # fmt: skip
    got = await web.get(_path(topic, "/jobs/txt"))
    assert got.status_code == 200, got.text
    assert got.json()["last_error"] == "oops \ufffd" and got.json()["body"] == {"$base64": "/v8="}
    page = await web.get("/dashboard/job", params={"topic": topic, "id": "txt"})
    assert page.status_code == 200 and "fe ff" in page.text and "oops \ufffd" in page.text
    token = raw.call(raw_redis, topic, "reserve", {"count": 1})[3][8]
    raw.call(raw_redis, topic, "ack", {"id": [b"txt"], "token": [token], "result": [b"\xfe"]})
    raw.put(raw_redis, topic, b"gone", b"{}")
    raw.call(raw_redis, topic, "delete", {"id": b"gone", "abort": "abort", "reason": b"why \xff"})
    done = await web.get(_path(topic, "/jobs/txt/history"))
    assert done.status_code == 200 and done.json()["result"] == {"$base64": "/g=="}
    gone = await web.get(_path(topic, "/jobs/gone/history"))
    assert gone.status_code == 200, gone.text
    assert any((e.get("detail") or "").startswith("why \ufffd") for e in gone.json()["events"])
    for params in ({"topic": topic, "id": "txt"}, {"topic": topic, "id": "gone"}):
        page = await web.get("/dashboard/job", params=params)
        assert page.status_code == 200, page.text
    assert (await web.get("/dashboard/finished", params={"topic": topic})).status_code == 200


@pytest.mark.asyncio
async def test_an_abort_of_the_odd_job_cancels_its_running_handler(
    raw_redis: redis.Redis, redis_url: str, topic: str
) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: list[str] = []

    async def waiting(job: Job) -> None:
        await started.put(job.id)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise

    raw.put(raw_redis, topic, ODD, b"{}")
    async with AsyncClient.from_url(redis_url) as client:
        worker = Worker(client, {topic: waiting}, handle_signals=False)
        task = asyncio.create_task(worker.run())
        try:
            assert await asyncio.wait_for(started.get(), 5) == ODD_TEXT
            assert await client.abort(topic, ODD_TEXT, reason="stop")
            for _ in range(300):
                if cancelled:
                    break
                await asyncio.sleep(0.01)
            assert cancelled == [ODD_TEXT]  # the wake message named the same bytes
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)
    history = await asyncio.to_thread(redisched.Client(raw_redis).history, topic, ODD_TEXT)
    assert history is not None and history.outcome is Outcome.ABORTED
