"""Operating a topic from the dashboard, in headless Chromium against a real ``redisched serve``.

Every action of the jobs tab, the job page and the settings, with a screenshot of each step in
``docs/screenshots/`` (``make screenshots`` refreshes the README's pictures from these pages).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect

import redisched
from redisched import validate
from redisched.embedded import SOCKET
from tests import raw_scripts as raw
from tests.dashboard_server import recorded_page, serve
from tests.test_dashboard_browser import WAIT, assert_not_reloaded, job_path, open_dashboard

SHOTS = (
    Path(os.environ.get("REDISCHED_SCREENSHOTS", ""))
    if os.environ.get("REDISCHED_SCREENSHOTS")
    else None
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dash-operate") / "data"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    with serve(data_dir) as url:
        yield url


def _playwright_style(text: str) -> bool:
    """A full-page screenshot sets an inline style, which the page's CSP refuses and logs:
    Playwright's doing, not the page's (only when screenshots are taken)."""
    return SHOTS is not None and "Content Security Policy" in text


@pytest.fixture
def page(browser: Any, console: list[str]) -> Iterator[Page]:
    with recorded_page(browser, console, WAIT, ignore=_playwright_style) as opened:
        yield opened


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        yield client


@pytest.fixture
def topic() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}"


def shot(page: Page, name: str) -> None:
    """Save a screenshot when REDISCHED_SCREENSHOTS names a folder (make screenshots does)."""
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def put_many(http: httpx.Client, topic: str, ids: list[str], **options: Any) -> None:
    for job_id in ids:
        http.put(
            job_path(topic, job_id), json={"body": {"id": job_id}, **options}
        ).raise_for_status()


def bury(http: httpx.Client, topic: str, count: int) -> None:
    leased = http.post(f"/v1/topics/{topic}/reserve", json={"count": count}).json()["jobs"]
    for job in leased:
        path = job_path(topic, job["id"]) + "/bury"
        http.post(path, json={"token": job["token"], "reason": "boom"}).raise_for_status()


def open_topic(page: Page, server: str, topic: str, query: str = "") -> None:
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/topic/{topic}{query}'")
    expect(page.locator("#topic-view")).to_be_visible()


def tab(page: Page, state: str) -> Any:
    return page.locator(f'#jobs-panel a[data-tab="{state}"]')


def confirm(page: Page, expected: str) -> None:
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(expected)
    page.locator("#confirm-ok").click()
    expect(page.locator("#confirm")).to_be_hidden()


def test_tabs_count_page_and_filter_by_prefix(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, [f"order-{i:03d}" for i in range(60)], delay=3600)
    put_many(http, topic, [f"user-{i:03d}" for i in range(5)], delay=7200)
    put_many(http, topic, ["ready-1", "ready-2"])
    open_topic(page, server, topic, "?state=scheduled")
    expect(tab(page, "scheduled").locator(".count")).to_have_text("65")
    expect(tab(page, "ready").locator(".count")).to_have_text("2")
    expect(page.locator("#scheduled-list tbody tr")).to_have_count(50)
    shot(page, "operate-tabs")
    page.locator("#next-page").click()
    expect(page.locator("#scheduled-list tbody tr")).to_have_count(15)
    expect(page.locator("#scheduled-list tbody tr").first).to_have_attribute("data-id", "order-050")
    page.locator("#first-page").click()
    expect(page.locator("#scheduled-list tbody tr")).to_have_count(50)
    page.locator("#filter-form input[name=prefix]").fill("user-")
    page.locator("#filter-form button").click()
    expect(page.locator("#scheduled-list tbody tr")).to_have_count(5)
    shot(page, "operate-filter")
    tab(page, "ready").click()
    expect(page.locator("#ready-list tbody tr")).to_have_count(2)
    expect(tab(page, "ready")).to_have_class("tab state-ready active")
    assert_not_reloaded(page)
    assert console == []


def test_a_page_keeps_its_place_when_earlier_jobs_go(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    # The cursor is the last job of the page before: deleting jobs before it (another user's
    # bulk action, workers taking them) used to shift the page on at the next poll.
    put_many(http, topic, [f"order-{i:03d}" for i in range(120)], delay=3600)
    open_topic(page, server, topic, "?state=scheduled")
    page.locator("#next-page").click()
    rows = page.locator("#scheduled-list tbody tr")
    expect(rows.first).to_have_attribute("data-id", "order-050")
    gone = {"ids": [f"order-{i:03d}" for i in range(10)]}
    http.post(f"/v1/topics/{topic}/bulk/delete", json=gone).raise_for_status()
    expect(tab(page, "scheduled").locator(".count")).to_have_text("110")  # a poll came by
    expect(rows.first).to_have_attribute("data-id", "order-050")
    page.locator("#next-page").click()
    expect(rows.first).to_have_attribute("data-id", "order-100")
    expect(rows).to_have_count(20)
    assert_not_reloaded(page)
    assert console == []


def test_the_prefix_being_typed_outlives_the_polls(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    # The jobs panel is re-rendered every 2 s: the filter's text, typed and not yet submitted,
    # used to be replaced by the prefix last submitted (empty), under the user's fingers.
    put_many(http, topic, [f"order-{i:03d}" for i in range(3)], delay=3600)
    put_many(http, topic, [f"user-{i:03d}" for i in range(2)], delay=3600)
    open_topic(page, server, topic, "?state=scheduled")
    expect(tab(page, "scheduled").locator(".count")).to_have_text("5")
    prefix = page.locator("#filter-form input[name=prefix]")
    prefix.press_sequentially("user-")
    put_many(http, topic, ["user-002"], delay=3600)
    expect(tab(page, "scheduled").locator(".count")).to_have_text("6")  # a poll came by
    expect(prefix).to_have_value("user-")
    expect(prefix).to_be_focused()
    prefix.press_sequentially("00")  # the caret stayed at the end
    prefix.press("Enter")
    expect(page.locator("#scheduled-list tbody tr")).to_have_count(3)
    expect(prefix).to_have_value("user-00")
    assert console == []


def test_bulk_delete_of_a_stale_selection_says_how_many(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, [f"d{i}" for i in range(5)], max_attempts=1)
    bury(http, topic, 5)
    open_topic(page, server, topic, "?state=dead")
    expect(page.locator("#dead-list tbody tr")).to_have_count(5)
    for job_id in ("d0", "d1", "d2"):
        page.locator(f'#dead-list tr[data-id="{job_id}"] input.pick').check()
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    page.wait_for_timeout(2500)  # a poll re-renders the list: the selection stays
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    http.post(job_path(topic, "d0") + "/kick").raise_for_status()  # moves on meanwhile
    page.locator('#jobs-panel button[data-bulk="delete"]').click()
    expect(page.locator("#confirm-text")).to_contain_text("Delete 3 jobs")
    shot(page, "operate-confirm")
    confirm(page, "3 jobs")
    expect(page.locator("#flash")).to_contain_text("2 jobs deleted; 1 had moved on")
    expect(page.locator("#dead-list tbody tr")).to_have_count(2)
    assert http.get(job_path(topic, "d0")).json()["state"] == "ready"
    assert http.get(job_path(topic, "d1")).status_code == 404
    # select all, then kick
    page.locator("#select-all").check()
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    page.locator('#jobs-panel button[data-bulk="kick"]').click()
    expect(page.locator("#flash")).to_contain_text("Kick: 2 jobs kicked back to ready")
    expect(tab(page, "dead").locator(".count")).to_have_text("0")
    assert_not_reloaded(page)
    assert console == []


def test_run_now_release_and_all_dead_actions(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, ["later-1", "later-2"], delay=3600)
    put_many(http, topic, ["run-1", "run-2", "dead-1", "dead-2", "dead-3"], ttr=3600)
    held = http.post(f"/v1/topics/{topic}/reserve", json={"count": 5}).json()["jobs"]
    for job in held[2:]:
        path = job_path(topic, job["id"]) + "/bury"
        http.post(path, json={"token": job["token"], "reason": "x"}).raise_for_status()
    open_topic(page, server, topic, "?state=scheduled")
    page.locator('#scheduled-list tr[data-id="later-1"] input.pick').check()
    page.locator('#jobs-panel button[data-bulk="run-now"]').click()
    expect(page.locator("#flash")).to_contain_text("1 job made ready")
    page.locator('#scheduled-list tr[data-id="later-2"] button[data-act="run-now"]').click()
    expect(page.locator("#flash")).to_contain_text("Running later-2 now")
    expect(tab(page, "ready").locator(".count")).to_have_text("2")

    tab(page, "reserved").click()
    page.locator("#select-all").check()
    page.locator('#jobs-panel button[data-bulk="expire"]').click()
    expect(page.locator("#flash")).to_contain_text("2 jobs released")
    expect(tab(page, "reserved").locator(".count")).to_have_text("0")

    tab(page, "dead").click()
    page.locator('#jobs-panel button[data-all="kick"]').click()
    confirm(page, "Kick all 3 jobs")
    expect(page.locator("#flash")).to_contain_text("Kicked 3 jobs back to ready")
    expect(tab(page, "ready").locator(".count")).to_have_text("7")

    tab(page, "ready").click()
    page.locator('#jobs-panel button[data-all="purge"]').click()
    page.locator("#confirm-cancel").click()  # cancelling changes nothing
    expect(tab(page, "ready").locator(".count")).to_have_text("7")
    page.locator('#jobs-panel button[data-all="purge"]').click()
    confirm(page, "Delete all 7 jobs in ready")
    expect(tab(page, "ready").locator(".count")).to_have_text("0")
    assert_not_reloaded(page)
    assert console == []


def test_settings_are_shown_and_saved(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, ["j"])
    hook = {"url": "https://93.184.215.14/hook", "secrets": ["s" * 16], "timeout": 3}
    http.patch(f"/v1/topics/{topic}", json={"ttr": 30, "webhook": hook}).raise_for_status()
    open_topic(page, server, topic)
    form = page.locator("#settings-form")
    expect(form.locator("[name=ttr]")).to_have_value("30.0")
    expect(form.locator("[name=webhook_url]")).to_have_value(hook["url"])
    expect(form.locator("[name=webhook_secret]")).to_have_attribute(
        "placeholder", "1 set: blank keeps it"
    )
    assert "s" * 16 not in page.content()
    form.locator("[name=max_attempts]").fill("5")
    form.locator("[name=rate]").fill("2.5")
    form.locator("[name=durable]").check()
    page.wait_for_timeout(2500)  # polls skip the page while the form is edited
    expect(form.locator("[name=max_attempts]")).to_have_value("5")
    shot(page, "operate-settings")
    form.locator("button[type=submit]").click()
    expect(page.locator("#flash")).to_have_text("Settings saved")
    config = http.get(f"/v1/topics/{topic}").json()["config"]
    assert (config["max_attempts"], config["rate"], config["durable"]) == (5, 2.5, True)
    assert config["webhook"]["secret_count"] == 1 and config["ttr"] == 30
    # the browser refuses it; the API would too (set and checked in one step: the page
    # re-renders the form once after the save, which a fill may precede on a busy machine)
    refused = "el => { el.value = '-1'; return el.checkValidity(); }"
    assert form.locator("[name=ttr]").evaluate(refused) is False
    assert console == []


def test_job_page_reschedules_edits_and_runs_now(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    spec = {"body": {"amount": 7}, "delay": 3600, "priority": 2, "ttr": 45}
    http.put(job_path(topic, "invoice-7"), json=spec).raise_for_status()
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/job/{topic}/invoice-7'")
    expect(page.locator("#job-state")).to_have_text("scheduled")
    form = page.locator("#reschedule-form")
    form.locator("[name=delay]").fill("120")
    form.locator("[name=priority]").fill("-3")
    form.locator("button[type=submit]").click()
    expect(page.locator("#flash")).to_contain_text("Saved: version 2")
    job = http.get(job_path(topic, "invoice-7")).json()
    assert job["priority"] == -3 and job["body"] == {"amount": 7} and job["ttr"] == 45
    body = page.locator("#body-form textarea")
    expect(page.locator("#job-version")).to_contain_text("2")
    body.fill('{"amount": 8}')
    shot(page, "operate-job")
    page.locator("#body-form button[type=submit]").click()
    expect(page.locator("#flash")).to_contain_text("Saved: version 3")
    job = http.get(job_path(topic, "invoice-7")).json()
    assert job["body"] == {"amount": 8} and job["priority"] == -3 and job["state"] == "scheduled"
    # a replace that lost a race is refused (412) and says so, without a console error: the
    # edit starts first (polls pause while a form is edited, so the page keeps version 3),
    # then the job changes elsewhere (before the edit, a poll may show version 4 in time)
    body.fill('{"amount": 9}')
    http.post(job_path(topic, "invoice-7") + "/reschedule", json={"delay": 60}).raise_for_status()
    page.locator("#body-form button[type=submit]").click()
    expect(page.locator("#edit-result")).to_contain_text("changed meanwhile")
    page.locator("#body-form button[data-cancel-edit]").click()
    page.locator('#job-view button[data-act="run-now"]').click()
    expect(page.locator("#job-state")).to_have_text("ready")
    assert http.get(job_path(topic, "invoice-7")).json()["body"] == {"amount": 8}
    assert_not_reloaded(page)
    assert console == []


def test_a_body_typed_as_json_is_sent_as_typed(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    # The forms parsed the JSON typed and encoded it again: "Replace body" on a job holding
    # {"user": 9007199254740993}, unchanged, stored 9007199254740992 (a double's digits), and
    # a repeated key was dropped in silence instead of refused by the server.
    big = '{"user": 9007199254740993, "tags": ["a", {"n": 12345678901234567890}]}'
    response = http.put(
        job_path(topic, "big"), content=f'{{"body": {big}, "delay": 3600}}'.encode()
    )
    response.raise_for_status()
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/job/{topic}/big'")
    expect(page.locator("#job-body")).to_contain_text("9007199254740993")
    page.locator("#body-form button[type=submit]").click()  # the body as shown, unchanged
    expect(page.locator("#flash")).to_contain_text("Saved: version 2")
    stored = http.get(job_path(topic, "big")).content
    assert b'"user":9007199254740993' in stored and b'"n":12345678901234567890' in stored
    form = page.locator("#schedule-form")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=id]").fill("twice")
    form.locator("[name=body]").fill('{"to": "ada", "to": "bob"}')
    form.locator("button[type=submit]").click()
    expect(page.locator("#schedule-result")).to_contain_text("body.to")
    assert http.get(job_path(topic, "twice")).status_code == 404
    form.locator("[name=id]").fill("text")
    form.locator("[name=body]").fill('Hello, "Ada"')  # not JSON: its bytes, as they are
    form.locator("button[type=submit]").click()
    expect(page.locator("#schedule-result")).to_contain_text("created")
    assert http.get(job_path(topic, "text")).json()["body"] == 'Hello, "Ada"'
    assert console == []  # the form's refusal is no console error


def test_a_job_named_dot_dot_is_never_sent_in_a_path(
    page: Page,
    server: str,
    http: httpx.Client,
    topic: str,
    console: list[str],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The browser resolves DELETE /v1/topics/T/jobs/.. to DELETE /v1/topics/T: deleting the
    # job ".." from its row deleted the whole topic, every other job with it.
    put_many(http, topic, ["keep-1", "keep-2"])
    for name in ("..", "."):  # no new job takes such a name: stored by an older version
        answer = http.put(f"/v1/topics/{topic}/jobs/{name.replace('.', '%2E')}", json={"body": 1})
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "id"
    monkeypatch.setattr(validate, "new_name", lambda value, argument: value)
    with redisched.Client.from_url(f"unix://{data_dir / SOCKET}?db=0") as older:
        older.put_many(topic, [("..", b"1"), (".", b"1")])
    monkeypatch.undo()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    open_topic(page, server, topic, "?state=ready")
    expect(tab(page, "ready").locator(".count")).to_have_text("4")
    for name in ("..", "."):
        delete = page.locator(f'#ready-list tr[data-id="{name}"] button[data-act="delete"]')
        delete.click()
        delete.click()
        expect(page.locator("#flash")).to_contain_text("cannot be sent in a URL path")
    assert not [r for r in requests if r.startswith("DELETE") and "/v1/" in r]
    assert http.get(f"/v1/topics/{topic}").json()["counts"]["ready"] == 4
    # the bulk actions carry ids in the request body: they reach it
    page.locator('#ready-list tr[data-id=".."] input.pick').check()
    page.locator('button[data-bulk="delete"]').click()
    confirm(page, "Delete 1 job")
    expect(tab(page, "ready").locator(".count")).to_have_text("3")
    assert http.get(job_path(topic, "keep-1")).status_code == 200
    assert console == []


def test_delete_topic_and_the_missing_job_page(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, ["a", "b"])
    http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).raise_for_status()
    open_topic(page, server, topic)
    page.locator('button[data-all="delete-topic"]').click()
    confirm(page, "1 job running will be cut off")
    expect(page.locator("#overview")).to_be_visible()
    assert topic not in http.get("/v1/topics").json()["topics"]
    page.evaluate(f"location.hash = '#/job/{topic}/a'")
    expect(page.locator("#job-missing")).to_be_visible()
    # the side forms are prefilled with the topic on screen; a cancel of a missing job is a 404
    cancel = page.locator("#cancel-form")
    expect(cancel.locator("[name=topic]")).to_have_value(topic)
    cancel.locator("[name=id]").fill("nope")
    cancel.locator("button[type=submit]").click()
    expect(page.locator("#cancel-result")).to_have_text("no such job")
    # a refused id: the form's own line says so (it kept the previous "no such job")
    cancel.locator("[name=id]").fill("..")
    cancel.locator("button[type=submit]").click()
    expect(page.locator("#cancel-result")).to_contain_text("cannot be sent in a URL path")
    assert console == []


def test_usable_at_420_px(browser: Any, server: str, http: httpx.Client, topic: str) -> None:
    long_id = "customer-" + "x" * 60 + "-reminder"
    put_many(http, topic, [long_id, "short"], max_attempts=1)
    bury(http, topic, 2)
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    open_topic(page, server, topic, "?state=dead")
    cell = page.locator(f'#dead-list tr[data-id="{long_id}"] td.id')
    expect(cell).to_be_visible()
    box = cell.bounding_box()
    assert box is not None and box["width"] >= 100  # wraps in words' worth, not letter by letter
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 421)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)"
    )
    assert width <= 420, f"the page scrolls sideways: {width} px ({wide})"
    shot(page, "operate-narrow")
    context.close()


def overflow(page: Page) -> tuple[int, int, list[str]]:
    """The page's scroll width, its viewport width, and the first elements past its right edge."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    wide = page.evaluate(
        f"[...document.querySelectorAll('body *')]"
        f".filter(e => e.getBoundingClientRect().right > {client + 1})"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)"
    )
    return scroll, client, wide


def test_job_finished_and_schedule_tables_scroll_inside_their_card_at_420_px(
    browser: Any, server: str, http: httpx.Client, topic: str
) -> None:
    """A job's timeline, the finished jobs and the schedules were tables as wide as their
    columns: at 420 px the job page was 628 px wide (its attempt and detail columns cut off),
    the finished page 682 and a topic page with schedules 537."""
    put_many(http, topic, ["mail-7"], max_attempts=5)
    for attempt in (1, 2):
        leased = http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).json()["jobs"][0]
        reason = f"smtp.example.com refused the connection on attempt {attempt}"
        release = {"token": leased["token"], "reason": reason}
        http.post(job_path(topic, "mail-7") + "/release", json=release).raise_for_status()
    leased = http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).json()["jobs"][0]
    ack = {"token": leased["token"], "result": {"sent": True, "server": "smtp.example.com"}}
    http.post(job_path(topic, "mail-7") + "/ack", json=ack).raise_for_status()
    put_many(http, topic, ["welcome-ada-lovelace", "welcome-grace-hopper"])
    for job_id in ("welcome-ada-lovelace", "welcome-grace-hopper"):
        http.delete(job_path(topic, job_id)).raise_for_status()
    schedules = {
        "weekly-digest": {"cron": "0 9 * * MON", "tz": "America/Argentina/Buenos_Aires"},
        "sync": {"every": 600},
    }
    for schedule_id, spec in schedules.items():
        path = f"/v1/topics/{topic}/schedules/{schedule_id}"
        http.put(path, json={**spec, "body": 1}).raise_for_status()
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    open_dashboard(page, server)
    shown_by = {
        f"#/job/{topic}/mail-7": "#job-timeline tbody tr >> nth=6",  # put ... acked
        f"#/finished/{topic}": "#finished-view tbody tr >> nth=2",
        f"#/topic/{topic}": '#schedule-list tr[data-schedule="weekly-digest"]',
    }
    sideways = {}
    for view, shown in shown_by.items():
        page.evaluate(f"location.hash = '{view}'")
        expect(page.locator(shown)).to_be_visible()
        scroll, client, wide = overflow(page)
        if scroll > client + 1:
            sideways[view] = f"{scroll} px wide for {client} ({wide})"
    context.close()
    assert sideways == {}


def test_a_long_topic_name_wraps_on_the_job_page(
    browser: Any, server: str, http: httpx.Client, topic: str
) -> None:
    """The breadcrumb of a job page did not wrap a long topic name: the page ran 1567 px wide
    at 1280 and the link ran under the sidebar."""
    long_topic = f"{topic}-".ljust(200, "T")  # the longest topic name
    put_many(http, long_topic, ["I" * 300])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/job/{long_topic}/{'I' * 300}'")
    expect(page.locator("#job-state")).to_have_text("ready")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"the page scrolls sideways: {width} px"
    context.close()


def test_expected_refusals_are_soft_only_for_the_dashboard(http: httpx.Client, topic: str) -> None:
    missing = job_path(topic, "missing")
    assert http.delete(missing).status_code == 404  # the API is unchanged for everyone else
    soft = http.delete(missing, headers={"X-Redisched-Soft-Status": "1"})
    assert soft.status_code == 200 and soft.headers["x-redisched-status"] == "404"
    assert soft.json()["error"]["code"] == "not_found"
    bad = http.post(f"/v1/topics/{topic}/purge", json={}, headers={"X-Redisched-Soft-Status": "1"})
    assert bad.status_code == 400  # a bad request stays an error: the page's own bug
    # ...but a form's submission expects the refusal of what the user typed
    schedule, spec = f"/v1/topics/{topic}/schedules/s", {"cron": "bogus", "body": 1}
    typed = http.put(schedule, json=spec, headers={"X-Redisched-Soft-Status": "form"})
    assert typed.status_code == 200 and typed.headers["x-redisched-status"] == "400"
    assert typed.json()["error"]["field"] == "cron"
    assert http.put(schedule, json=spec).status_code == 400


def test_job_page_aborts_a_running_job_with_a_reason(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, ["export-1"], ttr=3600)
    http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).raise_for_status()
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/job/{topic}/export-1'")
    expect(page.locator("#job-state")).to_have_text("reserved")
    form = page.locator("#abort-form")
    form.locator("[name=reason]").fill("duplicate export")
    form.locator("button[type=submit]").click()
    page.locator("#confirm-cancel").click()  # cancelling changes nothing
    assert http.get(job_path(topic, "export-1")).json()["state"] == "reserved"
    form.locator("button[type=submit]").click()
    confirm(page, "Abort export-1")
    expect(page.locator("#flash")).to_contain_text("Aborted export-1")
    expect(page.locator("#job-outcome")).to_have_text("aborted")  # shown as a finished job
    history = http.get(job_path(topic, "export-1") + "/history").json()
    assert history["outcome"] == "aborted"
    assert history["events"][-1]["detail"] == "duplicate export; was running; cancel sent"
    assert_not_reloaded(page)
    assert console == []


def test_job_page_shows_why_an_abort_was_refused(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    put_many(http, topic, ["gone"], delay=3600)
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/job/{topic}/gone'")
    expect(page.locator("#job-state")).to_have_text("scheduled")
    form = page.locator("#abort-form")
    form.locator("[name=reason]").fill("x" * 70_000)  # typing pauses the polls
    form.locator("button[type=submit]").click()
    confirm(page, "Abort gone")
    expect(page.locator("#edit-result")).to_contain_text("(reason)")
    assert http.get(job_path(topic, "gone")).json()["state"] == "scheduled"
    http.delete(job_path(topic, "gone")).raise_for_status()  # meanwhile, elsewhere
    form.locator("[name=reason]").fill("too late")
    form.locator("button[type=submit]").click()
    confirm(page, "Abort gone")
    expect(page.locator("#edit-result")).to_contain_text("no job")
    assert console == []  # the form's refusal is no console error


def test_a_job_whose_id_is_not_utf8_opens_from_its_link_and_is_deleted_from_its_page(
    page: Page, server: str, http: httpx.Client, data_dir: Path, topic: str
) -> None:
    # A raw script call may store any bytes as an id (docs/design.md section 3). The pages
    # showed such a job as \xNN, but wrote its link and buttons with that text: its page
    # said "No job" and its Delete answered that the job was not found.
    put_many(http, topic, ["good"])
    with redis.Redis(unix_socket_path=str(data_dir / SOCKET)) as conn:
        raw.put(conn, topic, b"bad-\xff-id")
        open_topic(page, server, topic, "?state=ready")
        page.locator("#ready-list td.id a", has_text="bad-\\xff-id").click()
        expect(page.locator("#job-state")).to_have_text("ready")
        expect(page.locator("#job-view h1.job-id")).to_have_text("bad-\\xff-id")
        delete = page.locator('#job-view button[data-act="delete"]')
        delete.click()
        delete.click()
        expect(page.locator("#flash")).to_contain_text("Deleted bad-\\xff-id")
        expect(page.locator("#job-outcome")).to_have_text("cancelled")  # its history, found too
        assert conn.hkeys(f"redisched:{{{topic}}}:jobs") == [b"good"]
    assert_not_reloaded(page)


def test_a_job_whose_id_is_not_utf8_is_deleted_with_a_bulk_action(
    page: Page, server: str, http: httpx.Client, data_dir: Path, topic: str
) -> None:
    # The selection went out as the text the page shows (\\xNN), which names no job: now as
    # the id's bytes, {"$base64": ...}.
    put_many(http, topic, ["good", "other"])
    with redis.Redis(unix_socket_path=str(data_dir / SOCKET)) as conn:
        raw.put(conn, topic, b"bad-\xff-id")
        open_topic(page, server, topic, "?state=ready")
        expect(tab(page, "ready").locator(".count")).to_have_text("3")
        for shown in ("bad-\\xff-id", "good"):
            page.locator("#ready-list tbody tr", has_text=shown).locator("input.pick").check()
        page.locator('button[data-bulk="delete"]').click()
        confirm(page, "2 jobs")
        expect(page.locator("#flash")).to_contain_text("Delete: 2 jobs deleted")
        assert conn.hkeys(f"redisched:{{{topic}}}:jobs") == [b"other"]
    assert_not_reloaded(page)


def test_ids_that_show_alike_are_told_apart_by_checkboxes_and_schedule_deletes(
    page: Page, server: str, http: httpx.Client, data_dir: Path, topic: str
) -> None:
    # The id stored as the bytes b"twin-\xff" shows as twin-\xff, as the text "twin-\\xff"
    # does. The selection was keyed by the shown text: ticking one ticked both and a bulk
    # delete took both. A schedule row's buttons named the shown text too: Delete on the raw
    # one's row deleted the other schedule.
    put_many(http, topic, ["twin-\\xff"])
    schedules = f"/v1/topics/{topic}/schedules"
    http.put(f"{schedules}/sch-%5Cxff", json={"every": 120, "body": "literal"}).raise_for_status()
    with redis.Redis(unix_socket_path=str(data_dir / SOCKET)) as conn:
        raw.put(conn, topic, b"twin-\xff")
        raw.call(conn, topic, "schedule", {
            "id": b"sch-\xff", "every_ms": 60000, "start_ms": 0, "end_ms": 0, "priority": 0,
            "body": b"{}", "time": [],
        })  # fmt: skip
        open_topic(page, server, topic, "?state=ready")
        expect(page.locator('#ready-list input.pick[data-id-path="twin-%FF"]')).to_have_count(1)
        page.locator('#ready-list input.pick[data-id-path="twin-%5Cxff"]').check()
        expect(page.locator("#selection-count")).to_have_text("1 selected")
        expect(page.locator("#ready-list input.pick:checked")).to_have_count(1)
        page.locator('button[data-bulk="delete"]').click()
        confirm(page, "Delete 1 job")
        expect(page.locator("#flash")).to_contain_text("Delete: 1 job deleted")
        left = set(conn.hkeys(f"redisched:{{{topic}}}:jobs"))
        assert b"twin-\xff" in left and b"twin-\\xff" not in left

        unschedule = '#schedule-list button[data-act="unschedule"]'
        delete = page.locator(f'{unschedule}[data-id-path="sch-%FF"]')
        delete.click()
        other = page.locator(f'{unschedule}[data-id-path="sch-%5Cxff"]')
        expect(other).to_have_text("Delete")  # the first click armed this row's button only
        delete.click()
        expect(page.locator("#flash")).to_contain_text("Deleted the schedule")
        assert conn.hkeys(f"redisched:{{{topic}}}:schedules") == [b"sch-\\xff"]
    assert_not_reloaded(page)
