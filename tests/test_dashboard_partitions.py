"""A partitioned topic in the dashboard, in headless Chromium against a real ``redisched serve``:
set once from the settings form, shown once on the overview, its partitions listed."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from playwright.sync_api import Page, expect

from redisched.partitions import Partitions
from tests.test_dashboard_browser import open_dashboard
from tests.test_dashboard_operate import (
    data_dir,
    http,
    open_topic,
    page,
    put_many,
    server,
    shot,
    tab,
    topic,
)

__all__ = ["data_dir", "http", "page", "server", "topic"]  # fixtures


def test_partitions_are_set_once_and_shown(
    page: Page, server: str, http: httpx.Client, topic: str, console: list[str]
) -> None:
    http.patch(f"/v1/topics/{topic}", json={"ttr": 30}).raise_for_status()
    open_topic(page, server, topic)
    form = page.locator("#settings-form")
    field = form.locator("[name=partitions]")
    expect(field).to_be_enabled()
    field.fill("3")
    form.locator("button[type=submit]").click()
    expect(page.locator("#flash")).to_have_text("Settings saved")
    assert http.get(f"/v1/topics/{topic}").json()["config"]["partitions"] == 3
    ids = [f"p{i}" for i in range(9)]
    put_many(http, topic, ids)
    layout = Partitions(topic, 3)
    expect(page.locator("#partition-list tbody tr")).to_have_count(3)
    expect(form.locator("[name=partitions]")).to_be_disabled()
    expect(form.locator("[name=partitions]")).to_have_value("3")
    expect(page.locator('[data-count="ready"]')).to_have_text("9")
    tab(page, "ready").click()
    rows = page.locator("#ready-list a[href^='#/job/']")
    expect(rows).to_have_count(9)
    hrefs = {rows.nth(i).get_attribute("href") for i in range(9)}
    assert hrefs == {f"#/job/{quote(layout.route(i), safe='')}/{i}" for i in ids}
    shot(page, "partitions")
    open_dashboard(page, server)
    expect(page.locator("#overview table.topics td.name a", has_text=topic)).to_have_count(1)
    names = page.locator("#overview table.topics td.name a").all_inner_texts()
    assert topic in names and not any(n.startswith(f"{topic}~p") for n in names)
    page.evaluate(f"location.hash = '#/job/{topic}/p4'")  # the logical name finds the job
    expect(page.get_by_text(layout.route("p4")).first).to_be_visible()
    # the live events are the partitions' feeds, merged (the topic's own was always empty)
    open_topic(page, server, topic)
    expect(page.locator("#event-feed")).to_contain_text("p4")
    assert console == []
    refused = http.get(f"/v1/topics/{topic}/events")  # one feed per partition: it answered []
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "topic"
    assert http.get(f"/v1/topics/{quote(layout.route('p4'), safe='')}/events").json()["events"]
