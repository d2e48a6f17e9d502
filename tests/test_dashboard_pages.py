"""The dashboard without a browser: chart layout, body display, fragments and JSON endpoints.

The HTTP tests run the real app in process (httpx over ASGI, lifespan started) on the session
Redis; the browser tests are in test_dashboard_browser.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import quote

import httpx
import pytest
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

import redisched
from redisched.config import Settings
from redisched.dashboard import ENDPOINTS, OPEN_PATHS, ROUTES
from redisched.dashboard.chart import layout, nice_ceiling
from redisched.dashboard.data import duration, relative, show_body
from redisched.dashboard.soft import SoftStatusMiddleware
from redisched.http import create_app
from redisched.models import Timeline

STATIC = resources.files("redisched.dashboard") / "static"


def test_vendored_htmx_matches_its_recorded_hash() -> None:
    notes = (STATIC / "VENDORED.md").read_text(encoding="utf-8")
    recorded = re.search(r"`htmx\.min\.js`.*?\| ([\d.]+) \| `([0-9a-f]{64})`", notes)
    assert recorded is not None
    data = (STATIC / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == recorded.group(2)
    assert recorded.group(1).startswith("2.")


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 9, 11, 57, 356, 1001)] == [
        1, 1, 3, 8, 10, 20, 60, 400, 2000,
    ]  # fmt: skip


def test_chart_layout_scales_bars_to_the_peak() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    chart = layout(Timeline("t", now, 60, [0, 3, 6, 0], None), label_every=2)
    assert [b.count for b in chart.bars] == [0, 3, 6, 0]
    assert chart.total == 9 and chart.peak == 6
    tallest, half = chart.bars[2], chart.bars[1]
    assert tallest.y == chart.top and abs(tallest.height - 2 * half.height) < 1e-9
    assert chart.bars[0].height == 0
    assert [t.label for t in chart.x_ticks] == ["now", "+2m", "+4m"]
    assert [t.label for t in chart.y_ticks] == ["0", "3", "6"]
    assert "3 jobs due +1m to +2m" in chart.bars[1].title
    hours = layout(Timeline("t", now, 3600, [1] * 24, None), label_every=6)
    assert [t.label for t in hours.x_ticks] == ["now", "+6h", "+12h", "+18h", "+24h"]


def test_show_body() -> None:
    assert show_body(b'{"a":[1,"<b>"]}').text == '{\n  "a": [\n    1,\n    "<b>"\n  ]\n}'
    assert show_body(b"<script>alert(1)</script>").kind == "text"
    binary = show_body(b"\xff\x00")
    assert (binary.kind, binary.text, binary.size) == ("binary", "ff 00", 2)


def test_a_body_that_would_not_read_back_as_stored_shows_as_text() -> None:
    """The job page's body form starts from the shown text: a repeated key, ``1E2`` or a
    long decimal were shown (and so saved back) as ``{"a": 2}``, ``100.0`` and ``0.1``."""
    for stored in (b'{"a":1,"a":2}', b"1E2", b"0.1000000000000000055511151231257827", b"-0"):
        shown = show_body(stored)
        assert (shown.kind, shown.text) == ("text", stored.decode()), stored
    assert show_body(b'{"n": [1.5, -2, 10]}').kind == "json"  # read back as written


def test_durations() -> None:
    assert [duration(s) for s in (0, 59.9, 61, 3599, 3600 * 5 + 60, 86_400 * 3 + 7200)] == [
        "0s", "59s", "1m 01s", "59m 59s", "5h 01m", "3d 2h",
    ]  # fmt: skip
    now = datetime(2030, 1, 1, tzinfo=UTC)
    later = datetime(2030, 1, 1, 0, 2, 5, tzinfo=UTC)
    assert (relative(later, now), relative(now, later), relative(now, now)) == (
        "in 2m 05s", "2m 05s ago", "now",
    )  # fmt: skip


def test_open_paths_are_the_shell_and_static_files_only() -> None:
    assert "/" in OPEN_PATHS
    assert {p for p in OPEN_PATHS if p != "/"} == {
        f"/dashboard/static/{name}"
        for name in ("htmx.min.js", "app.js", "style.css", "favicon.svg", "VENDORED.md")
    }


def _path(topic: str, job_id: str = "") -> str:
    base = f"/v1/topics/{quote(topic, safe='')}"
    return base + (f"/jobs/{quote(job_id, safe='')}" if job_id else "")


async def test_fragments_escape_job_data(web: httpx.AsyncClient, topic: str) -> None:
    job_id = "<i>x</i>&amp;"
    body = {"$base64": "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="}  # <script>alert(1)</script>
    assert (await web.put(_path(topic, job_id), json={"body": body})).status_code == 201
    page = await web.get("/dashboard/job", params={"topic": topic, "id": job_id})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "<i>x</i>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;i&gt;x&lt;/i&gt;&amp;amp;" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    overview = await web.get("/dashboard/overview")
    assert f'data-topic="{topic}"' in overview.text
    topic_page = await web.get("/dashboard/topic", params={"topic": topic})
    assert topic_page.status_code == 200 and topic_page.text.count('<svg class="chart"') == 2


async def test_fragments_reject_bad_input(web: httpx.AsyncClient) -> None:
    missing = await web.get("/dashboard/topic")
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "topic"
    bad = await web.get("/dashboard/topic", params={"topic": "a{b}"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "topic"
    empty_id = await web.get("/dashboard/job", params={"topic": "t", "id": ""})
    assert empty_id.status_code == 400 and empty_id.json()["error"]["field"] == "id"


async def test_timeline_endpoint(web: httpx.AsyncClient, topic: str) -> None:
    for n, delay in enumerate((30, 90, 95, 7200)):
        await web.put(_path(topic, f"j{n}"), json={"body": n, "delay": delay})
    reply = await web.get(_path(topic) + "/timeline", params={"width": 60, "buckets": 3})
    assert reply.status_code == 200
    found = reply.json()
    assert found["counts"] == [1, 2, 0] and found["width"] == 60
    assert found["oldest_ready"] is None and found["topic"] == topic
    hourly = (await web.get(_path(topic) + "/timeline", params={"width": 3600})).json()
    assert len(hourly["counts"]) == 60 and sum(hourly["counts"]) == 4
    bad_params = [
        ({"width": "x"}, "width"),
        ({"width": 0}, "width"),
        ({"buckets": 1.5}, "buckets"),
        ({"buckets": 5000}, "buckets"),
    ]
    for params, field in bad_params:
        bad = await web.get(_path(topic) + "/timeline", params=params)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == field, params
    document = (await web.get("/openapi.json")).json()
    assert "/v1/topics/{topic}/timeline" in document["paths"]
    assert "post" in document["paths"]["/v1/topics/{topic}/jobs/{id}/expire"]


async def test_expire_endpoint(web: httpx.AsyncClient, topic: str) -> None:
    await web.put(_path(topic, "j"), json={"body": 1, "ttr": 3600})
    held = (await web.post(_path(topic) + "/reserve", json={"count": 1})).json()["jobs"][0]
    reply = await web.post(_path(topic, "j") + "/expire")
    assert reply.status_code == 200 and reply.json() == {"expired": True, "state": "ready"}
    stale = await web.post(_path(topic, "j") + "/ack", json={"token": held["token"]})
    assert stale.status_code == 409
    again = await web.post(_path(topic, "j") + "/expire")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_reserved"
    missing = await web.post(_path(topic, "nope") + "/expire")
    assert missing.status_code == 404
    extra = await web.post(_path(topic, "j") + "/expire", json={"x": 1})
    assert extra.status_code == 400


def test_models_are_exported() -> None:
    assert redisched.Timeline is Timeline


async def test_a_held_topic_and_throttled_deliveries_are_shown(redis_url: str, topic: str) -> None:
    """A serve without --allow-private-webhooks holds a topic whose webhook is private: the
    topic page and /metrics say so; the page counts throttled deliveries apart."""
    from redisched.commands.serve_app import dispatcher_service

    settings = Settings(redis_url=redis_url, allow_private_webhooks=False)
    app = create_app(
        settings, extra_routes=ROUTES, extra_endpoints=ENDPOINTS, services=[dispatcher_service]
    )
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        await rt.client.configure(topic, webhook={"url": "http://127.0.0.1:9/hook"})
        await rt.client.put(topic, "j", b"{}")
        await rt.client.redis.hset(rt.client.ops.keys(topic).name("meta"), "total_throttled", 3)
        rt.topic_changed(topic)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as web:
            for _ in range(200):
                if topic in rt.held:
                    break
                await asyncio.sleep(0.02)
            page = await web.get("/dashboard/topic", params={"topic": topic})
            assert 'id="held"' in page.text and "loopback" in page.text
            assert '<span class="value small" data-count="throttled">3</span>' in page.text
            metrics = (await web.get("/metrics")).text
            assert f'redisched_webhook_held{{topic="{topic}"}} 1.0' in metrics
        job = await rt.client.get(topic, "j")
        assert job is not None and job.attempts == 0  # held, not spent


@pytest.mark.parametrize(
    ("status", "asked", "seen"),
    [(404, "1", 200), (412, "1", 200), (400, "1", 400), (422, "1", 422),
     (400, "form", 200), (422, "form", 200), (409, "form", 200),
     (500, "form", 500), (503, "form", 503), (400, None, 400), (404, None, 404)],
)  # fmt: skip
async def test_soft_statuses_are_the_expected_refusals_only(
    status: int, asked: str | None, seen: int
) -> None:
    """A form's validation refusal (400, 422) is softened like the other expected refusals;
    a 400 to anything else, a server's failure and every other caller's answer stay errors."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(b"{}", status, media_type="application/json")(scope, receive, send)

    transport = httpx.ASGITransport(app=SoftStatusMiddleware(answer))
    headers = {} if asked is None else {"X-Redisched-Soft-Status": asked}
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as web:
        response = await web.put("/v1/topics/t/schedules/s", headers=headers)
    assert response.status_code == seen
    real = response.headers.get("x-redisched-status")
    assert real == (str(status) if seen != status else None)


@pytest.mark.parametrize(
    ("stored", "kind"),
    [(b"[" * 5000 + b"]" * 5000, "text"), (b"[" * 5000, "text"), (b"\xff\xfe", "binary"),
     (b"[" * 400 + b"]" * 400, "json")],
    ids=["deep-json", "deep-unclosed", "binary", "nested-400"],
)  # fmt: skip
async def test_pages_survive_any_stored_body(
    web: httpx.AsyncClient, redis_url: str, topic: str, stored: bytes, kind: str
) -> None:
    assert show_body(stored).kind == kind
    async with redisched.AsyncClient.from_url(redis_url) as py:
        await py.put(topic, "deep", stored)
        await py.put(topic, "dead", stored, max_attempts=1)
        job = await py.reserve(topic)
        assert job is not None
        await py.bury(job, reason="x")
    for path, params in (
        ("/dashboard/job", {"topic": topic, "id": "deep"}),
        ("/dashboard/topic", {"topic": topic}),
        ("/dashboard/overview", {}),
    ):
        assert (await web.get(path, params=params)).status_code == 200, path


async def test_a_webhook_urls_password_is_never_shown_and_a_form_round_trip_keeps_it(
    web: httpx.AsyncClient, py: redisched.AsyncClient, redis_url: str, topic: str
) -> None:
    from click.testing import CliRunner

    from redisched.cli import main

    url = "https://bob:hunter2pw@93.184.216.34/hook?x=1"
    shown = "https://bob:***@93.184.216.34/hook?x=1"
    patched = await web.patch(_path(topic), json={"webhook": {"url": url}})
    assert patched.status_code == 200 and "hunter2pw" not in patched.text
    assert patched.json()["config"]["webhook"]["url"] == shown
    read = await web.get(_path(topic))
    assert read.json()["config"]["webhook"]["url"] == shown
    page = await web.get("/dashboard/topic", params={"topic": topic})
    overview = await web.get("/dashboard/overview")
    assert shown in page.text and "hunter2pw" not in page.text + overview.text
    cli = CliRunner().invoke(main, ["config", topic], env={"REDISCHED_REDIS_URL": redis_url})
    assert cli.exit_code == 0 and shown in cli.output and "hunter2pw" not in cli.output
    # the settings form sends back the URL it was shown: the password stays
    again = await web.patch(_path(topic), json={"webhook": {"url": shown, "timeout": 5}})
    assert again.status_code == 200
    hook = (await py.config(topic)).webhook
    assert hook is not None and (hook.url, hook.timeout) == (url, 5.0)
    # a URL that differs is taken as it is
    other = "https://bob:***@93.184.216.34/other"
    assert (await web.patch(_path(topic), json={"webhook": {"url": other}})).status_code == 200
    hook = (await py.config(topic)).webhook
    assert hook is not None and hook.url == other


async def test_the_job_page_finds_an_occurrence_of_a_partitioned_topic(
    web: httpx.AsyncClient, topic: str
) -> None:
    from redisched.partitions import Partitions

    partitioned = await web.patch(_path(topic), json={"partitions": 4})
    assert partitioned.status_code == 200, partitioned.text
    layout, checked = Partitions(topic, 4), 0
    for n in range(8):
        sid = f"s{n}"
        made = await web.put(f"{_path(topic)}/schedules/{sid}", json={"every": 3600, "body": 1})
        occurrence = f"{sid}@" + made.json()["next_run_at"].replace("+00:00", "Z")
        if layout.route(occurrence) == layout.route(sid):
            continue  # its own id's partition holds it by chance: not the case under test
        checked += 1
        page = await web.get("/dashboard/job", params={"topic": topic, "id": occurrence})
        assert page.status_code == 200 and "never created" not in page.text, sid
        assert f"topic={quote(layout.route(sid), safe='')}" in page.text  # where it lives
    assert checked >= 2
