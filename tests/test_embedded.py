"""The embedded redis-server: AOF persistence across restarts and crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

import redisched
from redisched.embedded import EmbeddedRedis, EmbeddedRedisError, find_binary, server_version
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
