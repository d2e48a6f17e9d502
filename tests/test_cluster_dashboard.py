"""The dashboard's overview on a Redis Cluster with one primary down: the topics Redis cannot
serve are marked unreachable and the others shown (it answered 503 as a whole)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from redisched.config import Settings
from redisched.dashboard import ENDPOINTS, ROUTES
from redisched.http import create_app
from redisched.keys import TopicKeys
from tests.cluster import LocalCluster
from tests.dashboard_server import recorded_page, serve
from tests.http_fixtures import asgi_client

WAIT = 45_000
"""ms: the first overview with the primary down waits out the server's retries (10 s), twice."""


@pytest.fixture
async def web(redis_cluster: LocalCluster) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the dashboard, in this process, on the cluster."""
    settings = Settings(redis_url=redis_cluster.url, redis_cluster=True)
    app = create_app(settings, extra_routes=ROUTES, extra_endpoints=ENDPOINTS)
    async with asgi_client(app) as client:
        yield client


def _lost_and_kept(cluster: LocalCluster, prefix: str) -> tuple[int, str, list[str]]:
    """A primary holding neither registry key, a new topic on it, and one on each other."""
    shared = cluster.registry_masters()
    on = {
        cluster.master_of(TopicKeys("redisched", t).name("jobs")): t
        for t in cluster.topics_on_each_master(f"{prefix}-{os.getpid()}", 1)
    }
    lost = next(port for port in sorted(on) if port not in shared)
    return lost, on[lost], [t for port, t in on.items() if port != lost]


def _row(html: str, topic: str) -> str:
    start = html.index(f'<tr data-topic="{topic}"')
    return html[start : html.index("</tr>", start)]


async def test_the_overview_marks_the_topics_of_a_primary_redis_cannot_serve(
    web: httpx.AsyncClient, redis_cluster: LocalCluster
) -> None:
    lost, gone, kept = _lost_and_kept(redis_cluster, "ov")
    for t in [gone, *kept]:
        assert (await web.put(f"/v1/topics/{t}/jobs/j", json={"body": 1})).is_success
    with redis_cluster.refusing(lost):
        answer = await web.get("/dashboard/overview")
        assert answer.status_code == 200, answer.text
        started = time.monotonic()
        again = await web.get("/dashboard/overview")  # the lost topic is passed over now
        # nothing waits out the client's retries (10 s) again: the lost topic and, when its
        # key lives there, the throughput chart's samples are passed over
        assert time.monotonic() - started < 5
    assert again.status_code == 200, again.text
    for html in (answer.text, again.text):
        assert "data-unreachable" in _row(html, gone) and "unreachable</span>" in _row(html, gone)
        for t in kept:
            row = _row(html, t)
            assert "data-unreachable" not in row and '<td class="num" data-state="ready">1<' in row
        assert 'id="unreachable-topics"' in html
    back = await web.get("/dashboard/overview")  # not tried for a while: still marked
    assert "data-unreachable" in _row(back.text, gone)


async def test_the_overview_names_the_list_of_topics_when_that_cannot_be_read(
    web: httpx.AsyncClient, redis_cluster: LocalCluster, topic: str
) -> None:
    assert (await web.put(f"/v1/topics/{topic}/jobs/j", json={"body": 1})).is_success
    with redis_cluster.refusing(redis_cluster.master_of("redisched:topics")):
        answer = await web.get("/dashboard/overview")
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "backend_unavailable"
    assert "the list of topics (redisched:topics, redisched:partitions)" in error["message"]


@pytest.fixture(scope="module")
def server(redis_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("dash") / "data", redis_cluster=redis_cluster.url) as url:
        yield url


def test_the_page_shows_an_unreachable_topic_as_such(
    browser: Any, server: str, redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    lost, gone, kept = _lost_and_kept(redis_cluster, "ovb")
    for t in [gone, *kept]:
        httpx.put(f"{server}/v1/topics/{t}/jobs/j", json={"body": 1}).raise_for_status()
    console: list[str] = []
    with recorded_page(browser, console, WAIT) as page, redis_cluster.refusing(lost):
        page.goto(server + "/")
        row = page.locator(f'#overview tr[data-topic="{gone}"]')
        expect(row.locator(".badge.unreachable")).to_have_text("unreachable", timeout=WAIT)
        expect(row).to_contain_text("Redis cannot serve this topic now")
        for t in kept:
            ready = page.locator(f'#overview tr[data-topic="{t}"] [data-state="ready"]')
            expect(ready).to_have_text("1")
        expect(page.locator("#unreachable-topics")).to_be_visible()
    assert console == []
