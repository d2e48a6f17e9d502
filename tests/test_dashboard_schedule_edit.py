"""Editing a recurring schedule from the dashboard, in headless Chromium against a real
``redisched serve``: a save keeps the body's bytes, applies only over the version Edit read,
and a new schedule never replaces one with its id.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.test_dashboard_browser import assert_not_reloaded, open_dashboard
from tests.test_dashboard_operate import data_dir, http, page, server, topic

__all__ = ["data_dir", "http", "page", "server", "topic"]  # fixtures


def stored(http: httpx.Client, path: str) -> tuple[bytes, dict[str, Any]]:
    """A schedule's body bytes (read with ?body=base64) and the rest of it."""
    got = http.get(path, params={"body": "base64"})
    got.raise_for_status()
    data = got.json()
    return base64.b64decode(data["body"]["$base64"]), data


def edit(page: Page, schedule_id: str) -> None:
    row = page.locator(f'#schedule-list tr[data-schedule="{schedule_id}"]')
    row.locator("button[data-edit-schedule]").click()


@pytest.mark.parametrize(
    "body", [b'"quoted"', b'{"n": 1.0, "s": "\\u00e9"}', b" 42 ", b"plain text"]
)
def test_a_schedule_saved_from_edit_keeps_its_body_as_stored(
    page: Page, server: str, http: httpx.Client, topic: str, body: bytes
) -> None:
    # Edit showed the body the API parsed: a JSON string lost its quotes and a JSON text its
    # spacing and number forms, and Save sent that back, even with the body untouched.
    path = f"/v1/topics/{quote(topic, safe='')}/schedules/nightly"
    spec = b'{"cron": "0 2 * * *", "body": {"$base64": "%s"}}' % base64.b64encode(body)
    http.put(path, content=spec, headers={"content-type": "application/json"}).raise_for_status()
    open_dashboard(page, server)
    page.goto(f"{server}/#/topic/{quote(topic, safe='')}")
    edit(page, "nightly")
    form = page.locator("#recurring-form")
    expect(form.locator("[name=body]")).to_have_value(body.decode())
    form.locator("[name=cron]").fill("0 4 * * *")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 2")
    kept, data = stored(http, path)
    assert kept == body and data["cron"] == "0 4 * * *"
    assert_not_reloaded(page)


def test_a_save_over_a_schedule_changed_meanwhile_is_refused(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    path = f"/v1/topics/{quote(topic, safe='')}/schedules/nightly"
    http.put(path, json={"cron": "0 2 * * *", "body": {"report": "A"}}).raise_for_status()
    open_dashboard(page, server)
    page.goto(f"{server}/#/topic/{quote(topic, safe='')}")
    edit(page, "nightly")
    form = page.locator("#recurring-form")
    expect(form.locator("[name=body]")).to_have_value('{"report":"A"}')
    other = {"cron": "0 3 * * *", "tz": "Europe/Berlin", "body": {"report": "B"}}
    http.put(path, json=other).raise_for_status()  # another writer: version 2
    form.locator("[name=cron]").fill("0 4 * * *")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("changed meanwhile (now version 2)")
    body, data = stored(http, path)
    assert body == b'{"report":"B"}' and data["tz"] == "Europe/Berlin" and data["version"] == 2

    # Edit again reads the new version, and its save applies.
    edit(page, "nightly")
    expect(form.locator("[name=tz]")).to_have_value("Europe/Berlin")
    form.locator("[name=cron]").fill("0 4 * * *")
    form.locator("button[type=submit]").click()
    expect(page.locator("#recurring-result")).to_contain_text("replaced: version 3")
    assert stored(http, path)[1]["cron"] == "0 4 * * *"


def test_a_new_schedule_never_replaces_one_with_its_id(
    page: Page, server: str, http: httpx.Client, topic: str
) -> None:
    path = f"/v1/topics/{quote(topic, safe='')}/schedules/billing"
    spec = {"every": 3600, "body": {"charge": "all"}, "ttr": 900, "priority": -5}
    http.put(path, json=spec).raise_for_status()
    open_dashboard(page, server)
    form = page.locator("#recurring-form")
    form.locator("[name=topic]").fill(topic)
    form.locator("[name=id]").fill("billing")
    form.locator("[name=cron]").fill("*/5 * * * *")
    form.locator("[name=body]").fill("test")
    form.locator("button[type=submit]").click()
    result = page.locator("#recurring-result")
    expect(result).to_contain_text("A schedule billing exists (version 1)")
    body, data = stored(http, path)
    assert body == b'{"charge":"all"}' and data["every"] == 3600 and data["priority"] == -5


def test_the_api_reads_a_schedule_body_as_its_exact_bytes_or_refuses_the_option(
    http: httpx.Client, topic: str
) -> None:
    path = f"/v1/topics/{quote(topic, safe='')}/schedules/s"
    spec = b'{"every": 60, "body": {"$base64": "%s"}}' % base64.b64encode(b'{"n": 1.0}')
    http.put(path, content=spec, headers={"content-type": "application/json"}).raise_for_status()
    assert http.get(path).content.count(b'"body":{"n": 1.0}') == 1  # the JSON text, as stored
    assert stored(http, path)[0] == b'{"n": 1.0}'
    refused = http.get(path, params={"body": "hex"})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "body"
