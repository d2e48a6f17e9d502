"""scripts/setup (what ``make test`` and CI run first) and the Chromium lookup of the browser
tests: quick when everything is there, precise about what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.dashboard_server import CHROMIUM_NAMES, find_chromium

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup"
HIDDEN = {"go", "chromium", "chromium-browser", "google-chrome"}


def _setup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SETUP), *args], capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _path_without(tmp_path: Path, hidden: set[str]) -> str:
    """A PATH with every command of this machine's PATH but ``hidden``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = folder / entry.name
            if entry.name not in hidden and not target.exists():
                target.symlink_to(entry.path)
    return str(folder)


def test_setup_is_quick_and_changes_nothing_when_everything_is_there() -> None:
    assert _setup().returncode == 0  # the first run may install
    started = time.monotonic()
    again = _setup()
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert again.stdout == again.stderr == ""
    assert elapsed < 1.0


def test_check_names_what_is_missing_and_the_command_to_run(tmp_path: Path) -> None:
    env = {"PATH": _path_without(tmp_path, HIDDEN), "REDISCHED_CHROMIUM": ""}
    result = _setup("--check", env=env)
    assert result.returncode == 1
    assert "Debian packages chromium golang-go" in result.stderr
    assert "sudo apt-get install -y chromium golang-go" in result.stderr
    assert "npm ci" not in result.stderr  # node_modules is current


def test_a_stale_node_modules_or_go_build_is_noticed(tmp_path: Path) -> None:
    assert _setup().returncode == 0  # the stamps of a set-up that did the work
    state = tmp_path / "state"  # no stamps: as after a change to package-lock.json or go.mod
    result = _setup("--check", env={"REDISCHED_SETUP_STATE": str(state)})
    assert result.returncode == 1
    assert "cd clients/node && npm ci" in result.stderr
    assert "cd clients/go && GOPROXY=off go build ./..." in result.stderr
    assert "Debian packages" not in result.stderr
    for stamp in ("npm", "go"):  # what a run that did the work leaves
        (state / stamp).write_text((ROOT / ".venv" / ".setup" / stamp).read_text())
    assert _setup("--check", env={"REDISCHED_SETUP_STATE": str(state)}).returncode == 0


def test_chromium_is_found_on_path_or_named(tmp_path: Path) -> None:
    found = find_chromium()
    assert os.access(found, os.X_OK)
    assert Path(found).name in CHROMIUM_NAMES or "REDISCHED_CHROMIUM" in os.environ
    fake = tmp_path / "google-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium({"PATH": str(tmp_path)}) == str(fake)
    assert find_chromium({"PATH": "", "REDISCHED_CHROMIUM": str(fake)}) == str(fake)
    with pytest.raises(FileNotFoundError, match="scripts/setup"):
        find_chromium({"PATH": str(tmp_path / "nowhere")})
    with pytest.raises(FileNotFoundError, match="REDISCHED_CHROMIUM"):
        find_chromium({"PATH": "", "REDISCHED_CHROMIUM": str(tmp_path / "missing")})
    assert shutil.which(found)
