"""The dashboard in a real browser: headless Chromium against a real ``redisched serve``.

One server (with its embedded Redis in a temporary folder) per module, one browser per module,
a fresh page per test; each test works in its own topic. Nothing reloads the page once it is
open: a marker set on ``window`` at the start must still be there at the end.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard_server import recorded_page, serve

TOKEN = "dashboard-test-token-1"
WAIT = 8_000  # ms: several 2 s polls, with room for a loaded machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("dash") / "data") as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    with recorded_page(browser, [], WAIT) as opened:
        yield opened


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        yield client


@pytest.fixture
def topic() -> str:
    return f"dash-{uuid.uuid4().hex[:8]}"


def job_path(topic: str, job_id: str) -> str:
    return f"/v1/topics/{quote(topic, safe='')}/jobs/{quote(job_id, safe='')}"


def open_dashboard(page: Page, url: str) -> None:
    page.goto(url + "/")
    expect(page.locator("#overview")).to_be_visible()
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded") is True


def row(page: Page, topic: str) -> Any:
    return page.locator(f'#overview tr[data-topic="{topic}"]')


def test_schedule_count_timeline_find_delete(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    open_dashboard(page, server)
    form = page.locator("#schedule-form")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=id]").fill("welcome-ada")
    form.locator("[name=body]").fill('{"to": "ada@example.com", "n": [1, 2]}')
    form.locator("[name=delay]").fill("300")
    form.locator("button[type=submit]").click()
    expect(page.locator("#schedule-result")).to_contain_text("created: version 1")

    # Counted on the overview, which polls by itself; a put from elsewhere shows up too.
    expect(row(page, topic).locator('[data-state="scheduled"]')).to_have_text("1")
    http.put(job_path(topic, "second"), json={"body": "x", "delay": 3000}).raise_for_status()
    expect(row(page, topic).locator('[data-state="scheduled"]')).to_have_text("2")

    # The same id again: exists, nothing changed.
    form.locator("button[type=submit]").click()
    expect(page.locator("#schedule-result")).to_contain_text("exists: version 1")

    # On the timeline: one job due around +5 min, one at +50 min.
    row(page, topic).locator("a").click()
    minutes = page.locator("#topic-view svg.chart").first
    expect(minutes).to_have_attribute("data-total", "2")
    bars = minutes.locator("rect.bar")
    expect(bars).to_have_count(60)
    counts = [int(c) for c in bars.evaluate_all("rs => rs.map(r => r.dataset.count)")]
    assert counts[4] == 1 and counts[49] == 1 and sum(counts) == 2

    # Find by id: state, version, pretty-printed body.
    find = page.locator("#find-form")
    find.locator("[name=topic]").fill(topic)
    find.locator("[name=id]").fill("welcome-ada")
    find.locator("button[type=submit]").click()
    expect(page.locator("#job-state")).to_have_text("scheduled")
    expect(page.locator("#job-version")).to_contain_text("1")
    body = page.locator("#job-body").text_content()
    assert body == '{\n  "to": "ada@example.com",\n  "n": [\n    1,\n    2\n  ]\n}'

    # Delete asks for a second click.
    delete = page.locator('#job-view button[data-act="delete"]')
    delete.click()
    expect(delete).to_have_text("Click again to delete")
    assert http.get(job_path(topic, "welcome-ada")).status_code == 200
    delete.click()
    expect(page.locator("#job-outcome")).to_have_text("cancelled")  # its history remains
    assert http.get(job_path(topic, "welcome-ada")).status_code == 404

    # Back on the overview the count went down; cancel the other job from the form.
    page.locator("#nav-overview").click()
    expect(row(page, topic).locator('[data-state="scheduled"]')).to_have_text("1")
    cancel = page.locator("#cancel-form")
    cancel.locator("[name=topic]").fill(topic)
    cancel.locator("[name=id]").fill("second")
    cancel.locator("button[type=submit]").click()
    expect(page.locator("#cancel-result")).to_have_text("cancelled second")
    expect(row(page, topic).locator('[data-state="scheduled"]')).to_have_text("0")
    cancel.locator("button[type=submit]").click()
    expect(page.locator("#cancel-result")).to_have_text("no such job")
    assert_not_reloaded(page)


def test_dead_job_kicked_back_to_ready(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    http.put(job_path(topic, "fragile"), json={"body": {"a": 1}, "max_attempts": 1})
    leased = http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).json()["jobs"][0]
    reason = "boom: <b>not bold</b>"
    bury = http.post(job_path(topic, "fragile") + "/bury", json={"token": leased["token"],
                                                                 "reason": reason})  # fmt: skip
    assert bury.status_code == 204

    open_dashboard(page, server)
    expect(row(page, topic).locator('[data-state="dead"]')).to_have_text("1")
    row(page, topic).locator("a").click()
    dead = page.locator("#dead-list tr[data-id='fragile']")
    expect(dead.locator(".error-text")).to_have_text(reason)
    assert page.locator("#topic-view b").count() == 0
    dead.locator('button[data-act="kick"]').click()
    expect(page.locator("#flash")).to_contain_text("Kicked fragile back to ready")
    expect(page.locator("#dead-list")).to_have_count(0)
    expect(page.locator('#topic-view [data-count="ready"]')).to_have_text("1")
    assert http.get(job_path(topic, "fragile")).json()["state"] == "ready"
    assert_not_reloaded(page)


def test_stuck_reservation_released_and_topic_paused(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    http.put(job_path(topic, "stuck"), json={"body": 1, "ttr": 3600})
    http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).raise_for_status()
    open_dashboard(page, server)
    page.evaluate(f"location.hash = '#/job/{topic}/stuck'")
    expect(page.locator("#job-state")).to_have_text("reserved")
    page.locator('#job-view button[data-act="expire"]').click()
    expect(page.locator("#job-state")).to_have_text("ready")
    expect(page.locator("#job-attempts")).to_contain_text("1")

    page.locator(f'#job-view .crumbs a[href="#/topic/{topic}"]').click()
    page.locator('#topic-view button[data-act="pause"]').click()
    expect(page.locator("#topic-view .badge.paused")).to_be_visible()
    assert http.get(f"/v1/topics/{topic}").json()["paused"] is True
    page.locator('#topic-view button[data-act="resume"]').click()
    expect(page.locator("#topic-view .badge.paused")).to_have_count(0)
    assert http.get(f"/v1/topics/{topic}").json()["paused"] is False
    assert_not_reloaded(page)


SIDE_FORMS = ("#find-form", "#schedule-form", "#cancel-form")


def test_side_forms_take_the_topic_of_the_page_never_a_row_of_a_list(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    """The overview filled the side forms' topic with its first row's: a job was scheduled or
    cancelled in a topic the user never chose."""
    for name in (f"{topic}-a", f"{topic}-b"):
        http.put(job_path(name, "one"), json={"body": 1}).raise_for_status()
    open_dashboard(page, server)
    # a put rate ("\u2013" until then) needs two samples: two polls have settled, each
    # offering the forms a topic
    rate = row(page, f"{topic}-a").locator('[data-rate="put"]')
    expect(rate).not_to_have_text("\u2013")
    for form in SIDE_FORMS:
        expect(page.locator(f"{form} [name=topic]")).to_have_value("")
    page.evaluate(f"location.hash = '#/topic/{topic}-b'")
    expect(page.locator("#topic-view")).to_be_visible()
    for form in SIDE_FORMS:
        expect(page.locator(f"{form} [name=topic]")).to_have_value(f"{topic}-b")
    # back on the overview, what the topic page filled in goes (it stayed); what the user
    # typed stays
    page.locator("#cancel-form [name=topic]").fill("typed")
    page.locator("#cancel-form [name=topic]").blur()
    page.evaluate("location.hash = '#/'")
    expect(page.locator("#topic-view")).to_have_count(0)
    expect(page.locator("#find-form [name=topic]")).to_have_value("")
    expect(page.locator("#schedule-form [name=topic]")).to_have_value("")
    expect(page.locator("#cancel-form [name=topic]")).to_have_value("typed")
    assert_not_reloaded(page)


def test_job_data_is_shown_as_text(page: Page, server: str, http: httpx.Client, topic: str) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    script = "<script>alert(1)</script>"
    job_id = '<img src=x onerror="alert(2)">'
    raw = {"$base64": base64.b64encode(script.encode()).decode()}
    http.put(job_path(topic, job_id), json={"body": raw, "max_attempts": 1}).raise_for_status()
    leased = http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).json()["jobs"][0]
    http.post(job_path(topic, job_id) + "/bury",
              json={"token": leased["token"], "reason": script}).raise_for_status()  # fmt: skip

    open_dashboard(page, server)
    page.evaluate("([t, i]) => { location.hash = '#/job/' + encodeURIComponent(t) + '/' + "
                  "encodeURIComponent(i) }", [topic, job_id])  # fmt: skip
    expect(page.locator("#job-body")).to_have_text(script)
    expect(page.locator("#job-view h1.job-id")).to_have_text(job_id)
    expect(page.locator("#job-view .error-text")).to_have_text(script)
    page.locator(f'#job-view .crumbs a[href="#/topic/{topic}"]').click()
    expect(page.locator("#dead-list td.id a")).to_have_text(job_id)
    page.wait_for_timeout(2500)  # a poll re-renders the page: still nothing runs
    assert page.locator("#view img, #view script").count() == 0
    assert dialogs == []
    assert_not_reloaded(page)


def test_tokens_refuse_an_unauthenticated_visit(browser: Any, tmp_path: Path, topic: str) -> None:
    with serve(tmp_path / "data", tokens=(TOKEN,)) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        put = httpx.put(url + job_path(topic, "secret-job"), json={"body": 1}, headers=auth)
        assert put.status_code == 201
        for path in ("/dashboard/overview", f"/dashboard/topic?topic={topic}", "/v1/topics"):
            assert httpx.get(url + path).status_code == 401, path
            assert httpx.get(url + path, headers=auth).status_code == 200, path
        shell = httpx.get(url + "/")  # the page shell holds no data: it asks for the token
        assert shell.status_code == 200 and topic not in shell.text
        assert "script-src 'self'" in shell.headers["content-security-policy"]
        assert httpx.get(url + "/dashboard/static/app.js").status_code == 200

        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + "/")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#app")).to_be_hidden()
        page.locator("#login-token").fill("wrong-token")
        page.locator("#login-form button").click()
        expect(page.locator("#login-error")).to_contain_text("refused")
        expect(page.locator("#app")).to_be_hidden()
        assert topic not in page.content()
        page.locator("#login-token").fill(TOKEN)
        page.locator("#login-form button").click()
        expect(row(page, topic)).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('redisched.token')") == TOKEN
        page.locator("#logout").click()
        expect(page.locator("#login")).to_be_visible()
        assert topic not in page.locator("body").inner_text()
        # the refusals are expected: none shows as a console error (two 401s did each visit)
        assert errors == []
        context.close()


def test_finished_job_timeline_finished_tab_and_live_events(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    http.put(job_path(topic, "mail-7"), json={"body": {"to": "ada"}})
    leased = http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).json()["jobs"][0]
    result = {"sent": "<i>yes</i>"}
    acked = http.post(
        job_path(topic, "mail-7") + "/ack", json={"token": leased["token"], "result": result}
    )
    assert acked.status_code == 204
    http.put(job_path(topic, "gone"), json={"body": 1})
    http.delete(job_path(topic, "gone"))

    open_dashboard(page, server)
    find = page.locator("#find-form")
    find.locator("[name=topic]").fill(topic)
    find.locator("[name=id]").fill("mail-7")
    find.locator("button[type=submit]").click()
    expect(page.locator("#job-outcome")).to_have_text("done")  # find finds finished jobs
    expect(page.locator("#job-result")).to_contain_text('"sent": "<i>yes</i>"')
    timeline = page.locator("#job-timeline tbody tr")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(2)).to_contain_text("acked")
    assert page.locator("#job-view i").count() == 0  # shown as text, never as markup

    page.locator(f'#job-view .crumbs a[href="#/topic/{topic}"]').click()
    expect(page.locator("#finished-list tr[data-id='mail-7']")).to_contain_text("done")
    expect(page.locator("#event-feed")).to_contain_text("deleted")
    http.put(job_path(topic, "late"), json={"body": 1})  # the feed is live
    expect(page.locator("#event-feed")).to_contain_text("late")

    page.locator("#finished-link").click()
    expect(page.locator("#finished-view tbody tr")).to_have_count(2)
    page.locator('#outcome-tabs a:has-text("cancelled")').click()
    expect(page.locator("#finished-view tbody tr")).to_have_count(1)
    expect(page.locator("#finished-view tbody tr")).to_contain_text("gone")


@pytest.mark.parametrize(
    ("topic_typed", "id_typed", "field"),
    [("a{b}", "x", "topic"), ("t" * 201, "x", "topic"), ("ok", "i" * 1025, "id")],
    ids=["braces", "long-topic", "long-id"],
)
def test_find_says_what_is_wrong_with_a_topic_or_id_next_to_the_form(
    page: Page, server: str, console: list[str], topic_typed: str, id_typed: str, field: str
) -> None:
    # it opened the job page anyway: a blank view, a flash that stayed on later finds, and a
    # 400 in the console
    open_dashboard(page, server)
    find = page.locator("#find-form")
    find.locator("[name=topic]").fill(topic_typed)
    find.locator("[name=id]").fill(id_typed)
    find.locator("button[type=submit]").click()
    expect(page.locator("#find-result")).to_contain_text(f"({field})")
    expect(page.locator("#overview")).to_be_visible()  # still where it was
    assert console == []


def test_an_aborted_job_reads_aborted_not_deleted(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    http.put(job_path(topic, "run"), json={"body": 1})
    http.post(f"/v1/topics/{topic}/reserve", json={"count": 1}).raise_for_status()
    aborted = http.post(job_path(topic, "run") + "/abort", json={"reason": "by hand"})
    assert aborted.status_code == 204
    http.put(job_path(topic, "gone"), json={"body": 2})
    http.delete(job_path(topic, "gone"))

    open_dashboard(page, server)
    find = page.locator("#find-form")
    find.locator("[name=topic]").fill(topic)
    find.locator("[name=id]").fill("run")
    find.locator("button[type=submit]").click()
    outcome = page.locator("#job-outcome")
    expect(outcome).to_have_text("aborted")
    last = page.locator("#job-timeline tbody tr").nth(2)
    expect(last.locator(".badge")).to_have_text("aborted")
    expect(last).to_contain_text("by hand; was running; cancel sent")
    # its own colour, not the grey of a delete (nor the plain badge's)
    colour = "b => getComputedStyle(b).backgroundColor"
    assert (
        last.locator(".badge").evaluate(colour) == outcome.evaluate(colour) == "rgb(254, 243, 199)"
    )

    page.locator(f'#job-view .crumbs a[href="#/topic/{topic}"]').click()
    expect(page.locator("#event-feed")).to_contain_text("aborted")
    page.locator("#finished-link").click()
    expect(page.locator("#finished-view tbody tr")).to_have_count(2)
    page.locator('#outcome-tabs a:has-text("aborted")').click()
    expect(page.locator("#finished-view tbody tr")).to_have_count(1)
    expect(page.locator("#finished-view tbody tr")).to_contain_text("run")


def test_recurring_schedules_listed_created_edited_deleted(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    base = f"/v1/topics/{quote(topic, safe='')}/schedules"
    http.put(f"{base}/digest", json={"cron": "0 9 * * MON", "tz": "Europe/Berlin",
                                     "body": {"to": "all"}}).raise_for_status()  # fmt: skip
    open_dashboard(page, server)
    page.goto(f"{server}/#/topic/{quote(topic, safe='')}")
    listed = page.locator('#schedule-list tr[data-schedule="digest"]')
    expect(listed).to_contain_text("0 9 * * MON")
    expect(listed).to_contain_text("Europe/Berlin")
    expect(listed.locator("td").nth(3).locator("a")).to_contain_text("in ")

    # Create one from the form.
    form = page.locator("#recurring-form")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=id]").fill("sync")
    form.locator("[name=kind][value=every]").check()
    form.locator("[name=every]").fill("600")
    form.locator("[name=body]").fill('{"full": false}')
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("created: version 1")
    expect(page.locator('#schedule-list tr[data-schedule="sync"]')).to_contain_text("every 10")

    # Edit the cron one: the form is filled from the row, the change is saved as version 2.
    listed.locator("button[data-edit-schedule]").click()
    expect(form.locator("[name=cron]")).to_have_value("0 9 * * MON")
    expect(form.locator("[name=body]")).to_have_value('{"to":"all"}')
    form.locator("[name=cron]").fill("30 7 * * *")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 2")
    expect(listed).to_contain_text("30 7 * * *")
    assert http.get(f"{base}/digest").json()["cron"] == "30 7 * * *"

    # A bad expression is refused with the field named; nothing changes.
    form.locator("[name=cron]").fill("61 * * * *")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("(cron)")
    assert http.get(f"{base}/digest").json()["version"] == 2

    # Delete asks for a second click.
    delete = page.locator('#schedule-list tr[data-schedule="sync"] button[data-act="unschedule"]')
    delete.click()
    expect(delete).to_have_text("Click again to delete")
    delete.click()
    expect(page.locator('#schedule-list tr[data-schedule="sync"]')).to_have_count(0)
    assert http.get(f"{base}/sync").status_code == 404
    assert_not_reloaded(page)


def test_a_schedule_edited_keeps_the_digits_of_its_body(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    # "Edit" read the body with response.json(): {"user": 9007199254740993} filled the form
    # as ...992, and saving it changed every occurrence's body.
    base = f"/v1/topics/{quote(topic, safe='')}/schedules"
    body = b'{"user":9007199254740993}'
    spec = b'{"every": 600, "body": ' + body + b"}"
    http.put(f"{base}/big", content=spec).raise_for_status()
    open_dashboard(page, server)
    page.goto(f"{server}/#/topic/{quote(topic, safe='')}")
    page.locator('#schedule-list tr[data-schedule="big"] button[data-edit-schedule]').click()
    form = page.locator("#recurring-form")
    expect(form.locator("[name=body]")).to_have_value(body.decode())
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 2")
    assert body in http.get(f"{base}/big").content


def test_a_schedule_edited_keeps_the_fields_the_form_does_not_show(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    # "Edit" sent only cron/every, tz and body: the PUT reset priority, ttr, max_attempts,
    # start_at and end_at of the schedule (and of every occurrence) to their defaults. The
    # form now shows start_at and end_at (test_dashboard_schedule_window); the rest it carries.
    base = f"/v1/topics/{quote(topic, safe='')}/schedules"
    kept = {"priority": -5, "ttr": 7.5, "max_attempts": 3, "start_at": "2031-01-01T00:00:00Z",
            "end_at": "2032-01-01T00:00:00Z"}  # fmt: skip
    http.put(f"{base}/nightly", json={"cron": "0 2 * * *", "body": "x", **kept}).raise_for_status()
    open_dashboard(page, server)
    page.goto(f"{server}/#/topic/{quote(topic, safe='')}")
    page.locator('#schedule-list tr[data-schedule="nightly"] button[data-edit-schedule]').click()
    form = page.locator("#recurring-form")
    expect(form.locator("[name=body]")).to_have_value('"x"')  # the JSON text stored
    form.locator("[name=cron]").fill("0 3 * * *")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 2")
    saved = http.get(f"{base}/nightly").json()
    assert saved["cron"] == "0 3 * * *" and {k: saved[k] for k in kept} == kept
    # another id typed into the filled form is a new schedule: nothing is carried over
    form.locator("[name=id]").fill("other")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("created: version 1")
    assert http.get(f"{base}/other").json()["priority"] == 0
