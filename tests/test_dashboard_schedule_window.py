"""The recurring-schedule form's time window (start_at, end_at), in headless Chromium against
a real ``redisched serve``: an ended schedule edited with a new end, or none, and the API's
refusal shown next to the field it names.

The browser runs in Europe/Berlin, so the fields are shown to be read and sent in its time
zone, not in UTC.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard_server import recorded_page, serve
from tests.test_dashboard_browser import WAIT, assert_not_reloaded, open_dashboard

BROWSER_ZONE = "Europe/Berlin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("dash-window") / "data") as url:
        yield url


@pytest.fixture
def page(browser: Any, console: list[str]) -> Iterator[Page]:
    with recorded_page(browser, console, WAIT, timezone_id=BROWSER_ZONE) as opened:
        yield opened


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        yield client


@pytest.fixture
def topic() -> str:
    return f"window-{uuid.uuid4().hex[:8]}"


def iso(moment: datetime) -> str:
    """A UTC time as the API writes it (whole seconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_ended_schedule_is_edited_with_a_new_end_or_none(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    base = f"/v1/topics/{quote(topic, safe='')}/schedules"
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    spec = {"every": 3600, "body": "x", "priority": 4, "end_at": iso(end)}
    http.put(f"{base}/brief", json=spec).raise_for_status()
    open_dashboard(page, server)
    page.goto(f"{server}/#/topic/{quote(topic, safe='')}")
    form = page.locator("#recurring-form")
    end_field, end_error = form.locator("[name=end_at]"), form.locator('[data-error-for="end_at"]')
    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds() + 0.2))  # now it has ended

    # Edit fills the end in the browser's time zone (Berlin: UTC+1 or +2).
    page.locator('#schedule-list tr[data-schedule="brief"] button[data-edit-schedule]').click()
    shown = end.astimezone(ZoneInfo(BROWSER_ZONE)).strftime("%Y-%m-%dT%H:%M:%S")
    expect(end_field).to_have_value(shown.removesuffix(":00") if end.second == 0 else shown)
    expect(form.locator("[name=start_at]")).to_have_value("")

    # Saved unchanged, the past end is refused next to its field; nothing changes.
    form.locator("button[type=submit]").click()
    expect(end_error).to_contain_text("must be in the future")
    expect(end_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#recurring-result")).to_have_text("not saved: see Ends")
    assert http.get(f"{base}/brief").json()["version"] == 1

    # A new end, typed in Berlin time (summer: UTC+2), is saved as that instant.
    end_field.fill("2031-06-01T14:30")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 2")
    expect(end_error).to_be_empty()
    expect(end_field).not_to_have_attribute("aria-invalid", "true")
    saved = http.get(f"{base}/brief").json()
    assert saved["end_at"] == "2031-06-01T12:30:00Z" and saved["priority"] == 4
    assert saved["next_run_at"] is not None

    # Edit again shows it (the form blanked first, so that Edit is seen to fill it); cleared,
    # the schedule has no end.
    end_field.fill("")
    page.locator('#schedule-list tr[data-schedule="brief"] button[data-edit-schedule]').click()
    expect(end_field).to_have_value("2031-06-01T14:30")
    end_field.fill("")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 3")
    saved = http.get(f"{base}/brief").json()
    assert saved["end_at"] is None and saved["priority"] == 4
    assert console == []  # the refused save was the form's: no console error
    assert_not_reloaded(page)


def test_a_schedule_is_created_with_a_window_and_an_end_before_its_start_is_refused(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    base = f"/v1/topics/{quote(topic, safe='')}/schedules"
    open_dashboard(page, server)
    form = page.locator("#recurring-form")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=id]").fill("season")
    form.locator("[name=cron]").fill("0 9 * * *")
    form.locator("[name=start_at]").fill("2031-01-10T08:00")  # winter: UTC+1
    form.locator("[name=end_at]").fill("2031-01-05T08:00")
    form.locator("button[type=submit]").click()
    expect(form.locator('[data-error-for="end_at"]')).to_contain_text("must be after start_at")
    expect(form.locator('[data-error-for="start_at"]')).to_be_empty()
    assert http.get(f"{base}/season").status_code == 404

    form.locator("[name=end_at]").fill("2031-03-01T08:00:30")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("created: version 1")
    expect(form.locator('[data-error-for="end_at"]')).to_be_empty()
    saved = http.get(f"{base}/season").json()
    assert saved["start_at"] == "2031-01-10T07:00:00Z"
    assert saved["end_at"] == "2031-03-01T07:00:30Z"
    assert saved["next_run_at"] == "2031-01-10T09:00:00Z"
    assert console == []
    assert_not_reloaded(page)


def test_a_bad_cron_is_refused_beside_the_form_without_a_console_error(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    """The form's refusal (a 400 naming cron) logged "Failed to load resource: ... 400" in the
    console, where it hides real failures among the expected ones."""
    open_dashboard(page, server)
    form = page.locator("#recurring-form")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=id]").fill("nightly")
    form.locator("[name=cron]").fill("bogus cron")
    form.locator("button[type=submit]").click()
    result = page.locator("#recurring-result")
    expect(result).to_contain_text("must have 5 fields")
    expect(result).to_contain_text("(cron)")
    expect(result).to_have_class("result error")
    assert http.get(f"/v1/topics/{quote(topic, safe='')}/schedules/nightly").status_code == 404
    form.locator("[name=cron]").fill("0 3 * * *")  # the same form then saves: a real answer
    form.locator("button[type=submit]").click()
    expect(result).to_contain_text("created: version 1")
    assert console == []
    assert_not_reloaded(page)
