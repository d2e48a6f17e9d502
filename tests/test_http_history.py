"""The history routes: a job's history, finished jobs, the event feed as JSON and as SSE."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard_server import serve
from tests.test_http_api import error_of, job_url, topic_url


async def _reserve_one(http: httpx.AsyncClient, topic: str) -> dict[str, Any]:
    reply = await http.post(topic_url(topic, "/reserve"), json={"count": 1})
    assert reply.status_code == 200
    job: dict[str, Any] = reply.json()["jobs"][0]
    return job


@pytest.mark.asyncio
async def test_history_of_an_acked_job_with_its_result(http: httpx.AsyncClient, topic: str) -> None:
    assert (await http.get(job_url(topic, "mail-1", "history"))).status_code == 404
    await http.put(job_url(topic, "mail-1"), json={"body": {"to": "ada"}})
    live = (await http.get(job_url(topic, "mail-1", "history"))).json()
    assert live["outcome"] is None and [e["kind"] for e in live["events"]] == ["put"]
    job = await _reserve_one(http, topic)
    acked = await http.post(
        job_url(topic, "mail-1", "ack"), json={"token": job["token"], "result": {"sent": True}}
    )
    assert acked.status_code == 204
    assert (await http.get(job_url(topic, "mail-1"))).status_code == 404
    done = (await http.get(job_url(topic, "mail-1", "history"))).json()
    assert done["outcome"] == "done" and done["result"] == {"sent": True}
    assert done["finished_at"] and done["attempts"] == 1 and done["version"] == 1
    assert [e["kind"] for e in done["events"]] == ["put", "reserved", "acked"]
    assert set(done["events"][0]) == {"at", "kind", "version", "attempt"}


@pytest.mark.asyncio
async def test_event_feed_pages_with_cursors(http: httpx.AsyncClient, topic: str) -> None:
    for name in ("a", "b", "c"):
        await http.put(job_url(topic, name), json={"body": 1})
    await http.delete(job_url(topic, "b"))
    first = (await http.get(topic_url(topic, "/events"), params={"limit": 2})).json()
    assert [(e["id"], e["kind"]) for e in first["events"]] == [("a", "put"), ("b", "put")]
    assert first["cursor"] == first["events"][-1]["cursor"]
    rest = (await http.get(topic_url(topic, "/events"), params={"after": first["cursor"]})).json()
    assert [(e["id"], e["kind"]) for e in rest["events"]] == [("c", "put"), ("b", "deleted")]
    empty = (await http.get(topic_url(topic, "/events"), params={"after": rest["cursor"]})).json()
    assert empty == {"events": [], "cursor": rest["cursor"]}


@pytest.mark.asyncio
async def test_finished_jobs_by_outcome(http: httpx.AsyncClient, topic: str) -> None:
    await http.put(job_url(topic, "gone"), json={"body": 1})
    await http.delete(job_url(topic, "gone"))
    await http.put(job_url(topic, "sent"), json={"body": 2})
    job = await _reserve_one(http, topic)
    await http.post(job_url(topic, "sent", "ack"), json={"token": job["token"]})
    page = (await http.get(topic_url(topic, "/finished"))).json()
    assert [(j["id"], j["outcome"]) for j in page["jobs"]] == [("sent", "done"),
                                                               ("gone", "cancelled")]  # fmt: skip
    done = (await http.get(topic_url(topic, "/finished"), params={"outcome": "done"})).json()
    assert [j["id"] for j in done["jobs"]] == ["sent"] and done["cursor"] is None


@pytest.mark.asyncio
async def test_an_aborted_job_reads_aborted_with_its_reason(
    http: httpx.AsyncClient, topic: str
) -> None:
    await http.put(job_url(topic, "run"), json={"body": 1})
    await http.put(job_url(topic, "wait"), json={"body": 2, "delay": 60})
    await _reserve_one(http, topic)
    aborted = await http.post(job_url(topic, "run", "abort"), json={"reason": "wrong order"})
    assert aborted.status_code == 204
    assert (await http.post(job_url(topic, "wait", "abort"))).status_code == 204
    running = (await http.get(job_url(topic, "run", "history"))).json()
    assert running["outcome"] == "aborted"
    assert running["events"][-1]["kind"] == "aborted"
    assert running["events"][-1]["detail"] == "wrong order; was running; cancel sent"
    waiting = (await http.get(job_url(topic, "wait", "history"))).json()
    assert (waiting["outcome"], waiting["events"][-1]["kind"]) == ("aborted", "aborted")
    page = (await http.get(topic_url(topic, "/finished"), params={"outcome": "aborted"})).json()
    assert [j["id"] for j in page["jobs"]] == ["wait", "run"]
    feed = (await http.get(topic_url(topic, "/events"))).json()["events"]
    assert [e["kind"] for e in feed if e["kind"] == "aborted"] == ["aborted", "aborted"]
    metrics = (await http.get("/metrics")).text
    assert f'redisched_finished_total{{outcome="aborted",topic="{topic}"}} 2.0' in metrics
    await http.put(job_url(topic, "kept"), json={"body": 3})
    bad = await http.post(job_url(topic, "kept", "abort"), json={"reason": 7})
    assert bad.status_code == 400 and error_of(bad)["field"] == "reason"
    assert (await http.get(job_url(topic, "kept"))).status_code == 200


@pytest.mark.asyncio
async def test_bad_history_input_is_400_naming_the_field(
    http: httpx.AsyncClient, topic: str
) -> None:
    await http.put(job_url(topic, "j"), json={"body": 1})
    before = (await http.get(topic_url(topic))).json()["config"]
    cases = [
        (http.get(topic_url(topic, "/events"), params={"after": "yesterday"}), "after"),
        # past a stream id's 64-bit parts, or digits of another script: Redis would refuse
        (http.get(topic_url(topic, "/events"), params={"after": "9" * 20 + "-0"}), "after"),
        (http.get(topic_url(topic, "/events"), params={"after": f"{2**64}-0"}), "after"),
        (http.get(topic_url(topic, "/events"), params={"after": f"0-{2**64}"}), "after"),
        (
            http.get(topic_url(topic, "/events"), params={"after": f"{2**64 - 1}-{2**64 - 1}"}),
            "after",
        ),
        (http.get(topic_url(topic, "/events"), params={"after": "\u0661-\u0660"}), "after"),
        (
            http.get(
                topic_url(topic, "/events"),
                headers={"accept": "text/event-stream", "last-event-id": f"{2**64}-0"},
            ),
            "Last-Event-ID",
        ),
        (http.get(topic_url(topic, "/events"), params={"limit": "0"}), "limit"),
        (http.get(topic_url(topic, "/finished"), params={"outcome": "exploded"}), "outcome"),
        (http.get(topic_url(topic, "/finished"), params={"cursor": "x"}), "cursor"),
        # digits of other scripts: isdigit() takes them, int() fails on some (a 500 once)
        (http.get(topic_url(topic, "/finished"), params={"cursor": "\u00b95"}), "cursor"),
        (http.get(topic_url(topic, "/finished"), params={"cursor": "\u0665"}), "cursor"),
        (http.patch(topic_url(topic), json={"keep_finished": -1}), "keep_finished"),
        (http.patch(topic_url(topic), json={"dedup_window": "soon"}), "dedup_window"),
        (http.patch(topic_url(topic), json={"history": "off"}), "history"),
    ]
    for request, field in cases:
        reply = await request
        assert reply.status_code == 400, (field, reply.text)
        assert error_of(reply)["field"] == field
    other = (await http.get(topic_url(topic + "-other", "/events"))).json()
    await http.put(job_url(topic + "-other", "x"), json={"body": 1})
    other = (await http.get(topic_url(topic + "-other", "/events"))).json()
    foreign = await http.get(topic_url(topic, "/events"), params={"after": other["cursor"]})
    assert foreign.status_code == 400 and error_of(foreign)["field"] == "after"
    assert (await http.get(topic_url(topic))).json()["config"] == before


@pytest.mark.asyncio
async def test_openapi_documents_the_history_routes(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "/v1/topics/{topic}/jobs/{id}/history" in paths
    assert "/v1/topics/{topic}/events" in paths and "/v1/topics/{topic}/finished" in paths


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("sse") / "data") as url:
        yield url


def _sse(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` SSE messages (id and decoded data) from a line iterator."""
    messages: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            messages.append(current)
            current = {}
            if len(messages) == count:
                return messages
    raise AssertionError("the stream ended early")


def test_sse_tail_is_live_and_resumes_with_last_event_id(server: str, topic: str) -> None:
    headers = {"Accept": "text/event-stream"}
    with httpx.Client(base_url=server, timeout=10) as http:
        http.put(job_url(topic, "first"), json={"body": 1})
        with http.stream("GET", topic_url(topic, "/events"), headers=headers) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            [put] = _sse(lines, 1)
            assert put["data"]["kind"] == "put" and put["data"]["id"] == "first"
            started = time.monotonic()
            http.delete(job_url(topic, "first"))  # arrives live, within a poll interval
            [deleted] = _sse(lines, 1)
            assert deleted["data"]["kind"] == "deleted" and time.monotonic() - started < 5
        http.put(job_url(topic, "second"), json={"body": 2})
        resumed = {**headers, "Last-Event-ID": deleted["id"]}
        with http.stream("GET", topic_url(topic, "/events"), headers=resumed) as stream:
            [after] = _sse(stream.iter_lines(), 1)
            assert after["data"]["id"] == "second" and after["id"] == after["data"]["cursor"]
        # A browser reconnects to the URL it was given, ?after= included, with the id of the
        # last event it received: the events in between used to be sent again.
        http.put(job_url(topic, "third"), json={"body": 3})
        with http.stream(
            "GET", topic_url(topic, "/events"), params={"after": put["id"]},
            headers={**headers, "Last-Event-ID": after["id"]},
        ) as stream:  # fmt: skip
            [latest] = _sse(stream.iter_lines(), 1)
            assert latest["data"]["id"] == "third"


def test_sse_tail_goes_on_through_a_topic_deleted_and_used_again(server: str, topic: str) -> None:
    # The re-used topic's feed started its ids at 0-1 again: a tail that had read 0-4 of the
    # old feed skipped the new one's first four events (it now starts after the old ids).
    headers = {"Accept": "text/event-stream"}
    with httpx.Client(base_url=server, timeout=5) as http:
        for name in ("a", "b"):
            http.put(job_url(topic, name), json={"body": 1})
        with http.stream("GET", topic_url(topic, "/events"), headers=headers) as stream:
            lines = stream.iter_lines()
            for name in ("a", "b"):  # the topic is left empty: its delete adds no event
                http.delete(job_url(topic, name))
            assert [m["data"]["kind"] for m in _sse(lines, 4)] == ["put"] * 2 + ["deleted"] * 2
            assert http.delete(topic_url(topic)).status_code == 200
            for name in ("x", "y"):
                http.put(job_url(topic, name), json={"body": 2})
            assert [m["data"]["id"] for m in _sse(lines, 2)] == ["x", "y"]


def test_sse_tail_ends_when_the_server_stops(tmp_path: Path, topic: str) -> None:
    # An open tail used to hold a graceful stop for its whole 10 s grace, then be cancelled
    # with a traceback in the log ("timeout graceful shutdown exceeded").
    with contextlib.ExitStack() as stack:
        with serve(tmp_path / "data") as url:
            http = stack.enter_context(httpx.Client(base_url=url, timeout=10))
            headers = {"Accept": "text/event-stream"}
            stream = stack.enter_context(
                http.stream("GET", topic_url(topic, "/events"), headers=headers)
            )
            lines = stream.iter_lines()
            assert next(lines) == "retry: 1000"
            started = time.monotonic()
        assert time.monotonic() - started < 5  # serve (SIGTERM) has exited
        assert [line for line in lines if line] == []  # the stream ended cleanly
    [log] = tmp_path.glob("serve-*.log")
    assert "graceful shutdown exceeded" not in log.read_text()


async def test_sse_tail_rides_out_a_redis_outage(py: Any, topic: str) -> None:
    """A read of the feed that failed (the embedded redis-server killed and restarted) cut
    every open tail mid-chunk, with two tracebacks each in the log ("Caught handled
    exception, but response already started"). The tail now goes on reading."""
    import asyncio

    from redisched.errors import BackendError
    from redisched.http.routes_history import _tail

    class Outage:
        """The client, but its first read of the feed fails as in an outage."""

        failed = False

        async def events(self, *args: Any, **kwargs: Any) -> Any:
            if not self.failed:
                self.failed = True
                raise BackendError("Redis is unavailable: Connection refused")
            return await py.events(*args, **kwargs)

    await py.put(topic, "after", b"1")
    stream = _tail(Outage(), topic, [], None, 10, asyncio.Event())  # type: ignore[arg-type]
    messages = [await anext(stream) for _ in range(2)]
    assert messages[0] == b"retry: 1000\n\n" and b'"id":"after"' in messages[1]


def test_a_head_of_the_sse_tail_ends(server: str, topic: str) -> None:
    # HEAD sends no body, so the tail behind it never ended: the keep-alive connection hung
    # (and the tail read the feed four times a second) until the client went.
    with httpx.Client(base_url=server, timeout=3) as http:
        head = http.head(topic_url(topic, "/events"), headers={"Accept": "text/event-stream"})
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert http.get("/healthz").status_code == 200  # on the same connection
