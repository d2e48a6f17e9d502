"""The job commands of the ``redisched`` CLI against a real Redis."""

from __future__ import annotations

import json

from click.testing import CliRunner

import redisched
from redisched.cli import main


def test_cli_round_trip(redis_url: str, topic: str) -> None:
    runner = CliRunner()
    env = {"REDISCHED_REDIS_URL": redis_url}
    put = runner.invoke(main, ["put", topic, "j1", "hello", "--delay", "0"], env=env)
    assert put.exit_code == 0 and '"created"' in put.output
    got = runner.invoke(main, ["get", topic, "j1"], env=env)
    assert got.exit_code == 0 and '"hello"' in got.output
    assert topic in runner.invoke(main, ["topics"], env=env).output
    reserved = runner.invoke(main, ["reserve", topic], env=env)
    assert '"token"' in reserved.output
    assert '"reserved": 1' in runner.invoke(main, ["stats", topic], env=env).output
    assert runner.invoke(main, ["delete", topic, "j1"], env=env).exit_code == 0
    missing = runner.invoke(main, ["get", topic, "j1"], env=env)
    assert missing.exit_code == 1 and "no job" in missing.output
    assert redisched.Client.from_url(redis_url).get(topic, "j1") is None


def test_cli_history_and_events(redis_url: str, topic: str) -> None:
    runner = CliRunner()
    env = {"REDISCHED_REDIS_URL": redis_url}
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "mail", b"hi")
    client.ack(client.reserve(topic), result=b"sent")
    shown = runner.invoke(main, ["history", topic, "mail"], env=env)
    assert shown.exit_code == 0 and '"outcome": "done"' in shown.output
    assert '"result": "sent"' in shown.output and '"kind": "acked"' in shown.output
    missing = runner.invoke(main, ["history", topic, "nobody"], env=env)
    assert missing.exit_code == 1 and "no history" in missing.output
    events = runner.invoke(main, ["events", topic, "--limit", "2"], env=env)
    lines = events.output.splitlines()
    assert events.exit_code == 0 and len(lines) == 2 and '"kind": "put"' in lines[0]
    cursor = json.loads(lines[-1])["cursor"]
    rest = runner.invoke(main, ["events", topic, "--after", cursor], env=env)
    assert [json.loads(line)["kind"] for line in rest.output.splitlines()] == ["acked"]
    bad = runner.invoke(main, ["events", topic, "--after", "nope"], env=env)
    assert bad.exit_code != 0


def test_cli_schedules(redis_url: str, topic: str) -> None:
    runner = CliRunner()
    env = {"REDISCHED_REDIS_URL": redis_url}
    made = runner.invoke(
        main,
        ["schedule", topic, "digest", "--cron", "0 9 * * MON", "--tz", "Europe/Berlin",
         "--body", "send"],
        env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert '"cron": "0 9 * * MON"' in made.output and '"tz": "Europe/Berlin"' in made.output
    listed = runner.invoke(main, ["schedules", topic], env=env)
    assert listed.exit_code == 0 and '"id": "digest"' in listed.output
    bad = runner.invoke(main, ["schedule", topic, "x", "--cron", "* * * * *", "--tz", "Nowhere"],
                        env=env)  # fmt: skip
    assert isinstance(bad.exception, redisched.InvalidArgument) and bad.exception.argument == "tz"
    gone = runner.invoke(main, ["unschedule", topic, "digest"], env=env)
    assert gone.exit_code == 0
    again = runner.invoke(main, ["unschedule", topic, "digest"], env=env)
    assert again.exit_code == 1 and "no schedule" in again.output
    with redisched.Client.from_url(redis_url) as client:
        assert client.schedules(topic) == []
