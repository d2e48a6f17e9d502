"""Regenerate docs/dashboard-overview.png and docs/dashboard-topic.png (``make screenshots``).

Starts a real ``redisched serve`` with its embedded Redis in a temporary folder, fills it with
sample topics through the HTTP API, keeps a little traffic going so that the rates show, and
photographs two pages with headless Chromium.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dashboard_server import launch, serve  # noqa: E402

DOCS = ROOT / "docs"


def put(http: httpx.Client, topic: str, job_id: str, body: object, **options: object) -> None:
    """Create a job (create-only)."""
    spec = {"body": body, **options}
    response = http.put(f"/v1/topics/{topic}/jobs/{job_id}", json=spec)
    response.raise_for_status()


def seed(http: httpx.Client) -> None:
    """Sample topics: a busy one with reserved and dead jobs, a daily one, a paused one."""
    rng = random.Random(7)
    for n in range(4):
        put(http, "emails", f"welcome-{1000 + n}", {"to": f"user{n}@example.com"}, max_attempts=1)
    leased = http.post("/v1/topics/emails/reserve", json={"count": 4, "ttr": 900}).json()["jobs"]
    reasons = ["SMTP 550 5.1.1: mailbox unavailable", "timed out after 30 s talking to smtp:587"]
    for job, reason in zip(leased[:2], reasons, strict=True):
        path = f"/v1/topics/emails/jobs/{job['id']}/bury"
        http.post(path, json={"token": job["token"], "reason": reason}).raise_for_status()
    for n in range(23):
        put(http, "emails", f"digest-{n}", {"user": n, "kind": "digest"})
    for n in range(180):  # a spike twenty minutes ahead
        minute = rng.gauss(20, 2.5) if n % 3 else rng.uniform(0.2, 60)
        put(http, "emails", f"reminder-{n}", {"user": n}, delay=round(minute * 60, 1))
    for n in range(150):  # the rest of the day, busier in the morning
        hour = rng.gauss(9, 3) % 24 if n % 2 else rng.uniform(1, 24)
        put(http, "emails", f"newsletter-{n}", {"user": n}, delay=round(hour * 3600))
    for n in range(140):
        put(
            http, "invoices", f"inv-2026-{n:04d}", {"amount": n * 10}, delay=rng.uniform(60, 86_000)
        )
    for n in range(300):
        put(http, "invoices", f"due-{n}", {"amount": n})
    for n in range(30):
        put(http, "reports", f"weekly-{n}", {"team": n}, delay=rng.uniform(600, 80_000))
    http.patch("/v1/topics/reports", json={"paused": True}).raise_for_status()
    for n in range(25):
        put(http, "push.orders", f"order-{n}", {"order": n}, delay=rng.uniform(30, 3000))
    hook = {
        "webhook": {"url": "https://93.184.215.14/orders", "secrets": ["whsec-demo-secret"]}
    }
    http.patch("/v1/topics/push.orders", json=hook).raise_for_status()


def traffic(url: str, stop: threading.Event) -> None:
    """Puts on emails and reserve + ack on invoices, so that the rate columns show numbers."""
    with httpx.Client(base_url=url) as http:
        n = 0
        while not stop.is_set():
            for _ in range(4):
                put(http, "emails", f"signup-{n}", {"n": n}, delay=90 + n % 600)
                n += 1
            reply = http.post("/v1/topics/invoices/reserve", json={"count": 1})
            for job in reply.json()["jobs"] if reply.status_code == 200 else []:
                ack = f"/v1/topics/invoices/jobs/{job['id']}/ack"
                http.post(ack, json={"token": job["token"]}).raise_for_status()
            time.sleep(0.2)


def main() -> None:
    """Take both screenshots."""
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp) / "data") as url:
        with httpx.Client(base_url=url) as http:
            seed(http)
        stop = threading.Event()
        worker = threading.Thread(target=traffic, args=(url, stop))
        worker.start()
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url + "/")
                page.wait_for_selector("tr[data-topic='emails']")
                time.sleep(4.5)  # two more polls: the rates are measured between them
                page.screenshot(path=str(DOCS / "dashboard-overview.png"))
                page.click("a[href='#/topic/emails']")
                page.wait_for_selector("#topic-view svg.chart")
                page.screenshot(path=str(DOCS / "dashboard-topic.png"), full_page=True)
                browser.close()
        finally:
            stop.set()
            worker.join()
    print("wrote docs/dashboard-overview.png and docs/dashboard-topic.png")


if __name__ == "__main__":
    main()
