"""The embedded redis-server: AOF persistence across restarts and crashes."""

from __future__ import annotations

import asyncio
import logging
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest

import redisched
from redisched.embedded import (
    EmbeddedRedis,
    EmbeddedRedisError,
    claim_data_dir,
    find_binary,
    remove_stale_socket_folder,
    server_version,
)
from redisched.supervisor import Supervisor
from tests.conftest import BINARIES


@pytest.mark.parametrize("version", sorted(BINARIES))
def test_jobs_survive_a_clean_restart(data_dir: Path, version: str) -> None:
    server = EmbeddedRedis(data_dir, binary=BINARIES[version])
    with server, redisched.Client.from_url(server.url) as client:
        client.put("emails", "need_some_help_email_42", b"hi", delay=3 * 86400)
    assert list(data_dir.glob("appendonly*")), "no AOF written"
    restarted = EmbeddedRedis(data_dir, binary=BINARIES[version])
    with restarted as again, redisched.Client.from_url(again.url) as client:
        job = client.get("emails", "need_some_help_email_42")
    assert job is not None and job.body == b"hi"


def test_jobs_survive_kill_9_with_appendfsync_always(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir, appendfsync="always").start()
    with redisched.Client.from_url(server.url) as client:
        client.put_many("t", [(f"j{i}", b"x") for i in range(100)])
    server.kill()
    with EmbeddedRedis(data_dir) as again, redisched.Client.from_url(again.url) as client:
        assert client.stats("t").ready == 100


def test_find_binary_prefers_a_recent_one() -> None:
    assert server_version(find_binary())[:2] >= (6, 2)


def test_bad_appendfsync_is_refused(data_dir: Path) -> None:
    with pytest.raises(EmbeddedRedisError):
        EmbeddedRedis(data_dir, appendfsync="no").start()


def test_a_failing_server_reports_its_log(data_dir: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match=r"redis\.log"):
        EmbeddedRedis(data_dir, extra_args=("--no-such-option", "1")).start()


def test_the_supervisor_brings_a_killed_server_back_with_its_jobs(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir, appendfsync="always", die_with_owner=True).start()
    reasons: list[str] = []
    supervisor = Supervisor(server, give_up=reasons.append, poll_interval=0.02)

    async def main() -> None:
        watch = asyncio.create_task(supervisor.run())
        first = server.process
        assert first is not None
        server.kill()  # SIGKILL; reaped by kill() here, as poll() does in serve
        deadline = time.monotonic() + 20
        while supervisor.restarts == 0:
            assert time.monotonic() < deadline and not watch.done()
            await asyncio.sleep(0.02)
        assert server.process is not first and server.process is not None
        assert server.process.poll() is None
        watch.cancel()

    try:
        with redisched.Client.from_url(server.url) as client:
            client.put("t", "kept", b"x")
        asyncio.run(main())
        with redisched.Client.from_url(server.url) as client:
            job = client.get("t", "kept")
        assert job is not None and job.body == b"x" and reasons == []
    finally:
        server.stop()


def test_the_supervisor_gives_up_with_the_cause(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir, persistent=False).start()
    reasons: list[str] = []
    supervisor = Supervisor(server, give_up=reasons.append, retries=2, backoff=0.01)
    server.extra_args = ("--no-such-option", "1")  # every restart now fails at once
    server.kill()
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(supervisor.run(), 30))  # returns once it gave up
    assert time.monotonic() - started < 30
    [reason] = reasons
    assert reason.startswith("the embedded redis-server was killed by SIGKILL and could not be")
    assert "after 2 attempts" in reason and supervisor.restarts == 0
    assert server.process is not None and server.process.poll() is not None  # reaped


def test_the_socket_url_of_a_folder_with_url_characters_reaches_it(tmp_path: Path) -> None:
    """`serve` printed unix:///…/odd#dir%41/redis.sock?db=0 as it was: the '#' cut the path
    and '%41' read as 'A', so a worker given that URL could not connect."""
    folder = tmp_path / "odd#dir%41 x"
    with EmbeddedRedis(folder, persistent=False) as server:
        assert server.socket_url is not None and "#" not in server.socket_url
        with redisched.Client.from_url(server.socket_url) as client:
            client.put("t", "j", b"via the socket")
            assert client.get("t", "j") is not None


def test_the_server_listens_on_a_unix_socket_in_its_folder(data_dir: Path) -> None:
    with EmbeddedRedis(data_dir, persistent=False) as server:
        assert server.socket_url == f"unix://{data_dir / 'redis.sock'}?db=0"
        with redisched.Client.from_url(server.socket_url) as client:
            client.put("t", "j", b"via the socket")
        with redisched.Client.from_url(server.url) as client:
            job = client.get("t", "j")
        assert job is not None and job.body == b"via the socket"
    deep = data_dir / ("d" * 100)
    assert EmbeddedRedis(deep).socket_url is None  # too long for a socket: TCP only


def test_a_socket_only_server_in_a_deep_folder_gets_a_private_socket_folder(
    data_dir: Path,
) -> None:
    deep = data_dir / ("d" * 100)
    server = EmbeddedRedis(deep, persistent=False, tcp=False)
    with server:
        socket_path = server.socket_path
        assert socket_path is not None and not socket_path.is_relative_to(deep)
        assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
        assert server.url == server.socket_url
        with redisched.Client.from_url(server.url) as client:
            client.put("t", "j", b"deep")
            assert client.get("t", "j") is not None
    assert not socket_path.parent.exists()  # removed with the server


def test_the_private_socket_folder_a_killed_owner_left_is_removed_at_the_next_start(
    data_dir: Path, tmp_path: Path
) -> None:
    # a killed serve (kill -9: no stop()) left one redisched-* folder in $TMPDIR per crash
    deep = data_dir / ("d" * 100)
    crashed = EmbeddedRedis(deep, persistent=False, tcp=False).start()
    left = crashed.socket_path
    assert left is not None
    crashed.kill()  # its owner never ran stop(): the folder and its socket file stay
    assert left.exists()
    # folders spawn did not make, named in a forged note: one holding a file of its own, one
    # outside the temporary folder
    mine = Path(tempfile.mkdtemp(prefix="redisched-"))
    (mine / "keep").write_text("x")
    elsewhere = tmp_path / "redisched-elsewhere"
    elsewhere.mkdir()
    with EmbeddedRedis(deep, persistent=False, tcp=False) as server:
        assert not left.parent.exists()  # the stale one went before the new one was made
        assert server.socket_path is not None and server.socket_path.exists()
        (deep / "socket-folder").write_text(str(mine))
    assert not (deep / "socket-folder").exists()  # stop() removed its own note
    try:
        for forged in (mine, elsewhere):
            (deep / "socket-folder").write_text(str(forged))
            with EmbeddedRedis(deep, persistent=False, tcp=False):
                assert forged.exists()  # not one spawn made: left alone
        assert (mine / "keep").exists()
    finally:
        shutil.rmtree(mine)
    live = EmbeddedRedis(deep, persistent=False, tcp=False).start()
    try:
        assert live.socket_path is not None
        (deep / "socket-folder").write_text(str(live.socket_path.parent))
        remove_stale_socket_folder(deep)
        assert live.ping()  # a server answers there: left alone
    finally:
        live.stop()


def test_a_data_folder_other_users_can_read_is_named_in_a_warning(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir.chmod(0o755)
    with caplog.at_level(logging.WARNING), claim_data_dir(data_dir):
        pass
    assert f"the data folder {data_dir.resolve()} can be read by other users (mode 755)" in (
        caplog.text
    )
    fresh = data_dir.parent / "fresh"
    with claim_data_dir(fresh):
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def test_a_server_needs_somewhere_to_listen(data_dir: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="needs a unix socket or a TCP port"):
        EmbeddedRedis(data_dir, tcp=False, unix_socket=False)
