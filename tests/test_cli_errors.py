"""A bad value on the command line is a usage error naming the option or argument as typed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import redisched
from redisched.cli import main

T = "{topic}"
CASES = [
    (["put", T, "neg", "{}", "--delay", "-5"], "--delay: must be at least 0 seconds"),
    (["put", T, "neg", "{}", "--run-at", "yesterday"], "--run-at: must be RFC 3339"),
    (["put", T, "neg", "{}", "--max-attempts", "0"], "--max-attempts: must be between"),
    (["reschedule", T, "neg", "--run-at", "yesterday"], "--run-at: must be RFC 3339"),
    (["events", T, "--after", "garbage"], "--after: must be a cursor"),
    (["events", T, "--follow", "--interval", "0"], "--interval: must be at least 0.01"),
    (["schedule", T, "s", "--every", "60", "--tz", "Nowhere/Foo"], "--tz: unknown time zone"),
    (["schedule", T, "s", "--every", "1.5"], "--every: must be a whole number of seconds"),
    (["reserve", T, "--count", "0"], "--count: must be between 1 and 1000"),
    (["jobs", T, "--cursor", "zz"], "--cursor: must be a cursor"),
    (["release", T, "neg", "--token", "t", "--delay", "-1"], "--delay: must be at least 0"),
    (["config", T, "--set", "ttr=-5"], "--set ttr: must be at least 0.001 seconds"),
    (["put", T, "x" * 1025, "{}"], "ID: must be at most 1024 bytes"),  # positional: as click
    (["put", "", "neg", "{}"], "TOPIC: must be 1 to 200 characters"),
]


def _case_id(args: list[str], message: str) -> str:
    return f"{args[0]}_{message.split(':')[0].replace(' ', '_')}"


@pytest.mark.parametrize(("args", "message"), CASES, ids=[_case_id(*case) for case in CASES])
def test_a_bad_value_names_the_option_as_typed(
    redis_url: str, topic: str, args: list[str], message: str
) -> None:
    """Errors named the Python argument (``run_at: ...``, ``delay: ...``), not the option."""
    argv = [topic if a == T else a for a in args]
    done = CliRunner().invoke(main, argv, env={"REDISCHED_REDIS_URL": redis_url})
    assert done.exit_code == 2, done.output
    assert f"Error: {message}" in done.output
    assert "Usage: main " + argv[0] in done.output  # the subcommand's usage, as click's own
    with redisched.Client.from_url(redis_url) as client:  # nothing changed
        assert client.get(topic, "neg") is None and client.schedules(topic) == []
        assert client.config(topic).ttr is None
