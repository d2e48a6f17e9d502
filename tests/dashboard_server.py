"""A real ``redisched serve`` in a subprocess (embedded Redis in a temporary folder), and a
headless Chromium: what the dashboard tests and ``docs/screenshots.py`` drive."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from redisched.embedded import free_port

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
"""Looked up on PATH in this order without ``REDISCHED_CHROMIUM`` (as scripts/setup does)."""
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@contextlib.contextmanager
def serve(
    data_dir: Path, *, tokens: tuple[str, ...] = (), redis_cluster: str | None = None
) -> Iterator[str]:
    """Run ``redisched serve`` on a free loopback port; yields its base URL.

    ``redis_cluster``: the URL of a Redis Cluster node to serve from, instead of an embedded
    Redis in ``data_dir`` (which then only holds the log).
    """
    port = free_port()
    command = [str(Path(sys.executable).parent / "redisched"), "serve", "--port", str(port)]
    if redis_cluster is None:
        command += ["--data-dir", str(data_dir)]
    else:
        command += ["--redis-url", redis_cluster, "--redis-cluster"]
        data_dir.mkdir(parents=True, exist_ok=True)
    for token in tokens:
        command += ["--token", token]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}
    log = (data_dir.parent / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"redisched serve exited with {proc.returncode}: see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"redisched serve did not start: see {log.name}")
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def find_chromium(environ: dict[str, str] | None = None) -> str:
    """The Chromium to drive: ``$REDISCHED_CHROMIUM``, else the first of CHROMIUM_NAMES on PATH.

    Raises:
        FileNotFoundError: naming the command that installs one.
    """
    env = os.environ if environ is None else environ
    chosen = env.get("REDISCHED_CHROMIUM")
    if chosen:
        if shutil.which(chosen, path=env.get("PATH")) is None:
            raise FileNotFoundError(f"REDISCHED_CHROMIUM={chosen} is not an executable")
        return chosen
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found
    raise FileNotFoundError(
        f"no Chromium on PATH ({', '.join(CHROMIUM_NAMES)}): run scripts/setup (as root it "
        "installs Debian's chromium) or set REDISCHED_CHROMIUM"
    )


def launch(playwright: Any) -> Any:
    """Chromium (see :func:`find_chromium`), headless, with no network chatter of its own."""
    return playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A launched Chromium (:func:`launch`) for a module's tests, closed after them
    (registered in ``conftest.py``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


@pytest.fixture
def console() -> list[str]:
    """The console errors and warnings a test's page logged (:func:`recorded_page`)."""
    return []


@contextlib.contextmanager
def recorded_page(
    browser: Any,
    console: list[str],
    wait_ms: int,
    ignore: Callable[[str], bool] = lambda text: False,
    **context: Any,
) -> Iterator[Any]:
    """A page in a fresh browser context (1400 x 1000, plus ``context``'s options) whose console
    errors and warnings, but those ``ignore`` names, and uncaught errors go into ``console``."""
    page_context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context)
    page = page_context.new_page()
    page.set_default_timeout(wait_ms)

    def record(message: Any) -> None:
        if message.type in ("error", "warning") and not ignore(message.text):
            console.append(message.text)

    page.on("console", record)
    page.on("pageerror", lambda exc: console.append(str(exc)))
    yield page
    page_context.close()
