"""CLI defects found by probing it as a user: the key prefix, a partitioned topic's events,
a time without an offset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import redisched
from redisched.cli import main


def _run(args: list[str], redis_url: str, **env: str) -> Any:
    return CliRunner().invoke(main, args, env={"REDISCHED_REDIS_URL": redis_url, **env})


def test_job_commands_work_under_the_key_prefix_of_redisched_prefix(
    redis_url: str, topic: str
) -> None:
    """``serve`` and ``worker`` keep their keys under REDISCHED_PREFIX, but the job commands
    ignored it: with the variable exported for all three, a put went under ``redisched``,
    where neither serve nor the worker looks, and purge or delete-topic acted there."""
    prefix = f"p-{topic[-8:]}"
    assert _run(["put", topic, "a", "x"], redis_url, REDISCHED_PREFIX=prefix).exit_code == 0
    assert redisched.Client.from_url(redis_url, prefix=prefix).get(topic, "a") is not None
    assert redisched.Client.from_url(redis_url).get(topic, "a") is None
    shown = _run(["jobs", topic, "--json"], redis_url, REDISCHED_PREFIX=prefix)
    assert shown.exit_code == 0 and '"id": "a"' in shown.output
    bad = _run(["get", topic, "a"], redis_url, REDISCHED_PREFIX="a{b}")
    assert bad.exit_code == 2, bad.output
    assert "REDISCHED_PREFIX: must not contain '{' or '}'" in bad.output
    assert "--redis-url" not in bad.output.splitlines()[-1]


def test_a_bad_redisched_prefix_is_named_by_the_worker_as_the_variable(
    redis_url: str, topic: str
) -> None:
    """The worker blamed ``--prefix`` (exit 2, a usage error) for the variable's value; a
    refused REDISCHED_* variable exits 1 naming it, as serve does."""
    done = CliRunner().invoke(
        main, ["worker", "tests.worker_app:record", "-t", topic],
        env={"REDISCHED_PREFIX": "a{b}", "REDISCHED_REDIS_URL": redis_url},
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "Error: REDISCHED_PREFIX: must not contain '{' or '}'" in done.output
    option = CliRunner().invoke(
        main, ["worker", "tests.worker_app:record", "-t", topic, "--prefix", "a{b}"]
    )
    assert option.exit_code == 2 and "--prefix" in option.output, option.output


@pytest.mark.parametrize("command", [["put", "{topic}", "a", "x"], ["reschedule", "{topic}", "a"]])
def test_a_run_at_without_an_offset_says_so_in_the_clis_terms(
    redis_url: str, topic: str, command: list[str]
) -> None:
    """It said "must be timezone-aware (e.g. tzinfo=timezone.utc)": Python's terms, not the
    command line's."""
    argv = [topic if a == "{topic}" else a for a in command]
    done = _run([*argv, "--run-at", "2031-01-01T09:00:00"], redis_url)
    assert done.exit_code == 2, done.output
    assert "--run-at: must be RFC 3339 with an offset" in done.output
    assert "tzinfo" not in done.output


@pytest.mark.parametrize(
    "command", [["purge", "{topic}", "--state", "ready"], ["delete-topic", "{topic}"]]
)
def test_a_progress_bar_off_a_terminal_leaves_stderr_empty(
    redis_url: str, topic: str, command: list[str]
) -> None:
    """Off a terminal (a script, a log) the bar is not drawn, but it left an empty line on
    stderr."""
    redisched.Client.from_url(redis_url).put(topic, "a", b"x")
    argv = [topic if a == "{topic}" else a for a in command]
    done = _run([*argv, "--yes"], redis_url)
    assert done.exit_code == 0, done.output
    assert '"deleted": 1' in done.stdout
    assert done.stderr == ""


def test_put_reads_a_body_of_bytes_from_a_file_or_stdin(
    redis_url: str, topic: str, tmp_path: Path
) -> None:
    """A body past the 128 KiB one argument may hold could not be put at all (and ``-``
    stored the text "-")."""
    data = bytes(range(256)) * 1024  # 256 KiB, not UTF-8
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    assert _run(["put", topic, "f", "--body-file", str(path)], redis_url).exit_code == 0
    piped = CliRunner().invoke(
        main, ["put", topic, "s", "--body-file", "-"], input=b'{"a": 1}',
        env={"REDISCHED_REDIS_URL": redis_url},
    )  # fmt: skip
    assert piped.exit_code == 0, piped.output
    client = redisched.Client.from_url(redis_url)
    stored, piped_job = client.get(topic, "f"), client.get(topic, "s")
    assert stored is not None and stored.body == data
    assert piped_job is not None and piped_job.body == b'{"a": 1}'
    both = _run(["put", topic, "b", "text", "--body-file", str(path)], redis_url)
    neither = _run(["put", topic, "n"], redis_url)
    for refused in (both, neither):
        assert refused.exit_code == 2 and "give the body as BODY or --body-file" in refused.output
    path.write_bytes(b"x" * (2 << 20))
    too_big = _run(["put", topic, "big", "--body-file", str(path)], redis_url)
    assert too_big.exit_code == 2 and "Error: --body-file: is 2097152 bytes" in too_big.output
    assert {client.get(topic, i) for i in ("b", "n", "big")} == {None}
