"""The embedded server's folder and port, as an audit found them broken: stale pid files,
a port another Redis holds, a deleted lock file, unusable folders, an empty --redis-url."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from redisched import cli
from redisched.embedded import (
    LOCKFILE,
    PIDFILE,
    DataDirBusy,
    DataDirUnusable,
    EmbeddedRedis,
    PortInUse,
    claim_data_dir,
    data_dir_lock,
    free_port,
)
from redisched.supervisor import Supervisor
from tests.test_serve import REDISCHED, _env


@pytest.fixture
def foreign(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server that is none of our data folder's: it works in another folder."""
    with EmbeddedRedis(tmp_path / "elsewhere", persistent=False, unix_socket=False) as server:
        yield server


def _answers(server: EmbeddedRedis) -> bool:
    with redis.Redis(port=server.port, socket_timeout=2) as conn:
        return bool(conn.ping())


def test_a_stale_pid_file_naming_another_redis_leaves_it_running(
    data_dir: Path, foreign: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    assert foreign.process is not None
    (data_dir / PIDFILE).write_text(f"{foreign.process.pid}\n")
    with caplog.at_level(logging.WARNING, "redisched.embedded"), claim_data_dir(data_dir):
        pass
    assert foreign.process.poll() is None and _answers(foreign)
    assert f"not stopping the redis-server (pid {foreign.process.pid})" in caplog.text
    assert "stopping the redis-server (pid" not in caplog.text.replace("not stopping", "")


def test_a_redis_left_working_in_the_folder_is_still_stopped(data_dir: Path) -> None:
    leftover = EmbeddedRedis(data_dir, persistent=False, unix_socket=False).start()
    try:
        assert leftover.process is not None
        with claim_data_dir(data_dir):
            assert leftover.process.wait(10) == 0  # SIGTERM: a clean exit
    finally:
        leftover.stop()


def test_another_redis_on_the_port_is_not_taken_for_ours(
    data_dir: Path, foreign: EmbeddedRedis
) -> None:
    ours = EmbeddedRedis(data_dir, port=foreign.port, persistent=False)
    with pytest.raises(PortInUse, match=r"Failed listening on port|Address already in use"):
        ours.start()
    assert ours.process is not None and ours.process.poll() is not None
    assert _answers(foreign)


def test_serve_on_a_taken_redis_port_exits_1_naming_the_option(
    tmp_path: Path, foreign: EmbeddedRedis
) -> None:
    command = [REDISCHED, "serve", "--port", str(free_port()), "--redis-port",
               str(foreign.port), "--data-dir", str(tmp_path / "data")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env(None))
    assert result.returncode == 1, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith(f"Error: --redis-port {foreign.port} is in use by another process")
    assert "Traceback" not in result.stderr and _answers(foreign)


def test_the_supervisor_does_not_take_a_foreign_redis_for_a_restart(
    data_dir: Path, tmp_path: Path
) -> None:
    server = EmbeddedRedis(data_dir, persistent=False).start()
    reasons: list[str] = []
    supervisor = Supervisor(server, give_up=reasons.append, retries=3, backoff=0.01)
    server.kill()
    elsewhere = EmbeddedRedis(tmp_path / "elsewhere", port=server.port, persistent=False)
    try:
        with elsewhere:  # takes the dead server's port before any restart
            asyncio.run(asyncio.wait_for(supervisor.run(), 30))  # returns once it gave up
            assert _answers(elsewhere)
    finally:
        server.stop()
    [reason] = reasons
    assert "could not be restarted after 3 attempts" in reason and supervisor.restarts == 0


def test_deleting_the_lock_file_does_not_free_the_folder(data_dir: Path) -> None:
    with data_dir_lock(data_dir):
        (data_dir / LOCKFILE).unlink()
        with pytest.raises(DataDirBusy), data_dir_lock(data_dir):
            pass
    with data_dir_lock(data_dir):  # free again once its owner let go
        assert (data_dir / LOCKFILE).read_text() == f"{os.getpid()}\n"


def _unusable_folders(tmp_path: Path) -> list[tuple[Path, str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [(a_file, "Not a directory"), (Path("/proc/redisched"), "No such file or directory")]
    if Path("/sys/kernel").is_dir():  # no file can be created there, even by root
        cases.append((Path("/sys/kernel"), f"Permission denied: /sys/kernel/{LOCKFILE}"))
    if os.geteuid() != 0:  # root writes in a read-only folder all the same
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        cases.append((read_only, "Permission denied"))
    return cases


def test_an_unusable_data_folder_is_one_error_naming_the_option(tmp_path: Path) -> None:
    for folder, reason in _unusable_folders(tmp_path):
        with pytest.raises(DataDirUnusable) as caught, claim_data_dir(folder):
            pass
        message = str(caught.value)
        assert message.startswith("--data-dir: cannot use ") and message.endswith(reason)


def test_serve_on_an_unusable_data_folder_exits_1_with_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    command = [REDISCHED, "serve", "--port", str(free_port()), "--data-dir", str(a_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env(None))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: --data-dir: cannot use {a_file} as the data folder: Not a directory"
    )


@pytest.mark.parametrize("command", [["get", "t", "j"], ["jobs", "t"], ["history", "t", "j"]])
def test_an_empty_redis_url_is_a_usage_error(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the empty URL taken for the default, this one would be tried: nothing listens there.
    monkeypatch.setattr(cli, "DEFAULT_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(cli.main, [*command, "--redis-url", ""], env=_env(None))
    assert result.exit_code == 2, result.output
    assert "Error: --redis-url: is empty" in result.output


def test_no_redis_url_is_the_default() -> None:
    with cli.client_for(None) as client:  # connects lazily: nothing is sent here
        address = client.redis.connection_pool.connection_kwargs
    assert (address["host"], address["port"], address["db"]) == ("127.0.0.1", 6379, 0)
