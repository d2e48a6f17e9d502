"""The job commands of the ``redisched`` CLI against a real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import redisched
from redisched.cli import main


def test_cli_round_trip(redis_url: str, topic: str) -> None:
    runner = CliRunner()
    env = {"REDISCHED_REDIS_URL": redis_url}
    put = runner.invoke(main, ["put", topic, "j1", '"hello"', "--delay", "0"], env=env)
    assert put.exit_code == 0 and '"created"' in put.output
    got = runner.invoke(main, ["get", topic, "j1"], env=env)
    assert got.exit_code == 0 and '"body": "hello"' in got.output
    assert topic in runner.invoke(main, ["topics"], env=env).output
    reserved = runner.invoke(main, ["reserve", topic], env=env)
    assert '"token"' in reserved.output
    assert '"reserved": 1' in runner.invoke(main, ["stats", topic, "--json"], env=env).output
    assert runner.invoke(main, ["delete", topic, "j1"], env=env).exit_code == 0
    missing = runner.invoke(main, ["get", topic, "j1"], env=env)
    assert missing.exit_code == 1 and "no job" in missing.output
    assert redisched.Client.from_url(redis_url).get(topic, "j1") is None


def _run(args: list[str], redis_url: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, args, env={"REDISCHED_REDIS_URL": redis_url}, input=input)


def test_put_of_an_existing_id_exits_non_zero_unless_replace(redis_url: str, topic: str) -> None:
    assert _run(["put", topic, "j", "1"], redis_url).exit_code == 0
    again = _run(["put", topic, "j", "2"], redis_url)
    assert again.exit_code == 1 and "already exists" in again.output
    replaced = _run(["put", topic, "j", "3", "--replace"], redis_url)
    assert replaced.exit_code == 0 and json.loads(replaced.stdout)["status"] == "replaced"


def test_jobs_lists_a_table_or_the_http_representation(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put_many(topic, [("order-1", b'{"n": 1}'), ("user-1", b"2"), ("order-2", b"3")])
    table = _run(["jobs", topic, "--state", "ready", "--prefix", "order-"], redis_url)
    assert table.exit_code == 0 and "order-1" in table.output and "user-1" not in table.output
    raw = _run(["jobs", topic, "--prefix", "order-", "--limit", "1", "--json"], redis_url)
    page = json.loads(raw.stdout)
    assert [j["id"] for j in page["jobs"]] == ["order-1"] and page["cursor"] is not None
    job = page["jobs"][0]
    assert job["body"] == {"n": 1} and job["run_at"].endswith("Z")
    http_fields = {"topic", "id", "body", "state", "run_at", "priority", "ttr", "attempts",
                   "max_attempts", "version", "last_error"}  # fmt: skip
    assert set(job) == http_fields
    bad = _run(["jobs", topic, "--limit", "0"], redis_url)
    assert bad.exit_code == 2 and "limit" in bad.output


def test_abort_stops_a_job_with_its_reason_and_stats_count_it(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "j", b"")
    held = client.reserve(topic)
    assert held is not None
    done = _run(["abort", topic, "j", "--reason", "duplicate order"], redis_url)
    assert done.exit_code == 0 and json.loads(done.stdout) == {"aborted": "j"}
    history = client.history(topic, "j")
    assert history is not None and history.outcome == "aborted"
    assert history.events[-1].detail == "duplicate order; was running; cancel sent"
    missing = _run(["abort", topic, "j"], redis_url)
    assert missing.exit_code == 1 and "no job 'j'" in missing.output
    bad = _run(["abort", topic, "k", "--reason", "x" * 65537], redis_url)
    assert bad.exit_code == 2 and "reason" in bad.output
    stats = json.loads(_run(["stats", topic, "--json"], redis_url).stdout)
    assert stats["finished"] == {"done": 0, "cancelled": 0, "dead": 0, "pulled": 0, "aborted": 1}


def test_stats_of_every_topic(redis_url: str, topic: str) -> None:
    redisched.Client.from_url(redis_url).put(topic, "j", b"")
    out = _run(["stats", "--json"], redis_url)
    assert any(t["topic"] == topic and t["counts"]["ready"] == 1 for t in json.loads(out.stdout))
    assert topic[:12] in _run(["stats"], redis_url).output  # long names fold, never cut


def test_purge_and_delete_topic_confirm_and_report(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put_many(topic, [(f"j{i}", b"") for i in range(2500)], delay=60)
    declined = _run(["purge", topic, "--state", "scheduled"], redis_url, input="n\n")
    assert declined.exit_code == 1 and "Delete 2500 scheduled" in declined.output
    assert client.stats(topic).scheduled == 2500
    done = _run(["purge", topic, "--state", "scheduled", "--yes"], redis_url)
    assert done.exit_code == 0 and json.loads(done.stdout)["deleted"] == 2500
    client.put_many(topic, [("a", b""), ("b", b"")])
    held = client.reserve(topic)
    busy = _run(["delete-topic", topic, "--yes"], redis_url)
    assert busy.exit_code == 1 and "reserved" in busy.output
    forced = _run(["delete-topic", topic, "--yes", "--force"], redis_url)
    assert forced.exit_code == 0 and json.loads(forced.stdout)["deleted"] == 2
    assert held is not None and topic not in client.topics()
    bad = _run(["purge", topic, "--state", "reserved", "--yes"], redis_url)
    assert bad.exit_code == 2 and "--state" in bad.output


def test_purge_of_nothing_asks_nothing(redis_url: str, topic: str) -> None:
    """It asked "Delete 0 dead job(s)?" (and a no aborted with exit 1)."""
    empty = _run(["purge", topic, "--state", "dead"], redis_url)  # no input: no prompt
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output) == {"topic": topic, "deleted": 0, "state": "dead"}


def test_reschedule_run_now_and_leases(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    client.put(topic, "j", b"[1]", delay=3600)
    moved = _run(["reschedule", topic, "j", "--delay", "60", "--priority", "3"], redis_url)
    assert moved.exit_code == 0 and json.loads(moved.stdout)["priority"] == 3
    at = _run(["reschedule", topic, "j", "--run-at", "2031-01-01T00:00:00Z"], redis_url)
    assert json.loads(at.stdout)["run_at"] == "2031-01-01T00:00:00Z"
    assert _run(["reschedule", topic, "j"], redis_url).exit_code == 2
    assert _run(["reschedule", topic, "j", "--run-at", "soon"], redis_url).exit_code == 2
    assert _run(["reschedule", topic, "nope", "--delay", "1"], redis_url).exit_code == 1
    now = _run(["run-now", topic, "j"], redis_url)
    assert now.exit_code == 0 and json.loads(now.stdout)["state"] == "ready"
    assert _run(["run-now", topic, "j"], redis_url).exit_code == 1
    job = client.reserve(topic)
    assert job is not None and job.token is not None
    stale = _run(["ack", topic, "j", "--token", "999"], redis_url)
    assert stale.exit_code == 1 and "no longer reserved" in stale.output
    touched = _run(["touch", topic, "j", "--token", job.token, "--ttr", "30"], redis_url)
    assert json.loads(touched.stdout)["reserved_until"].endswith("Z")
    released = _run(["release", topic, "j", "--token", job.token, "--reason", "x"], redis_url)
    assert json.loads(released.stdout) == {"state": "ready"}
    job = client.reserve(topic)
    assert job is not None and job.token is not None
    assert _run(["bury", topic, "j", "--token", job.token], redis_url).exit_code == 0
    assert client.stats(topic).dead == 1


def test_pause_resume_and_config(redis_url: str, topic: str) -> None:
    paused = _run(["pause", topic], redis_url)
    assert json.loads(paused.stdout) == {"topic": topic, "paused": True, "changed": True}
    assert json.loads(_run(["resume", topic], redis_url).stdout)["changed"] is True
    changed = _run(["config", topic, "--set", "ttr=30", "--set", "durable=true"], redis_url)
    config = json.loads(changed.stdout)["config"]
    assert config["ttr"] == 30 and config["durable"] is True
    shown = json.loads(_run(["config", topic], redis_url).stdout)["config"]
    assert shown == config
    bad = _run(["config", topic, "--set", "ttr=-1"], redis_url)
    assert bad.exit_code == 2 and "ttr" in bad.output
    # the message names the value as typed, not only the JSON type it was read as
    for typed in ("durable=1", "ttr=inf", "keep_events=1e3"):
        bad = _run(["config", topic, "--set", typed], redis_url)
        assert bad.exit_code == 2 and f"(given {typed.partition('=')[2]!r})" in bad.output, (
            bad.output
        )
    assert json.loads(_run(["config", topic], redis_url).stdout)["config"]["ttr"] == 30
    assert _run(["config", topic, "--set", "nonsense"], redis_url).exit_code == 2


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


def test_cli_history_of_an_aborted_job(redis_url: str, topic: str) -> None:
    env = {"REDISCHED_REDIS_URL": redis_url}
    with redisched.Client.from_url(redis_url) as client:
        client.put(topic, "mail", b"hi")
        client.reserve(topic)
        client.abort(topic, "mail", reason="sent by hand")
    shown = json.loads(CliRunner().invoke(main, ["history", topic, "mail"], env=env).output)
    assert shown["outcome"] == "aborted"
    assert shown["events"][-1]["kind"] == "aborted"
    assert shown["events"][-1]["detail"] == "sent by hand; was running; cancel sent"
    events = CliRunner().invoke(main, ["events", topic], env=env).output.splitlines()
    assert json.loads(events[-1])["kind"] == "aborted"


def test_cli_history_shows_the_result_as_the_http_api_does(redis_url: str, topic: str) -> None:
    # The result was a string of its bytes plus a "result_encoding" the HTTP API has not:
    # a JSON result read back as '{"sent":true}' (a string), and binary as bare base64.
    client = redisched.Client.from_url(redis_url)
    results = {"json": {"sent": True}, "text": "sent", "binary": b"\xff\x00"}
    for job_id, result in results.items():
        client.put(topic, job_id, b"x")
        client.ack(client.reserve(topic), result=result)
    shown = {
        job_id: json.loads(_run(["history", topic, job_id], redis_url).stdout) for job_id in results
    }
    assert shown["json"]["result"] == {"sent": True}
    assert shown["text"]["result"] == "sent"
    assert shown["binary"]["result"] == {"$base64": "/wA="}
    assert all("result_encoding" not in data for data in shown.values())


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
    assert bad.exit_code == 2 and "tz: unknown time zone" in bad.output
    gone = runner.invoke(main, ["unschedule", topic, "digest"], env=env)
    assert gone.exit_code == 0
    again = runner.invoke(main, ["unschedule", topic, "digest"], env=env)
    assert again.exit_code == 1 and "no schedule" in again.output
    with redisched.Client.from_url(redis_url) as client:
        assert client.schedules(topic) == []


def test_a_malformed_redis_url_is_a_usage_error_without_a_traceback() -> None:
    # a database that is no number went to another one: /abc to 0, /1/2 to 12
    for url in ("bogus://x", "redis://127.0.0.1:notaport/0", "redis://127.0.0.1:1/abc",
                "redis://127.0.0.1:1/1/2", "unix:///tmp/r.sock?db=x"):  # fmt: skip
        result = CliRunner().invoke(main, ["stats"], env={"REDISCHED_REDIS_URL": url})
        assert result.exit_code == 2, result.output
        assert f"--redis-url: '{url}' is not a Redis URL" in result.output
        assert "Traceback" not in result.output and result.exception is not None


def test_a_usage_error_shows_the_subcommands_usage(redis_url: str, topic: str) -> None:
    result = _run(["put", topic, "x", "y", "--delay", "-5"], redis_url)
    assert result.exit_code == 2
    assert "Usage: main put [OPTIONS] TOPIC ID [BODY]" in result.output  # CliRunner: "main"
    assert "delay: must be at least 0 seconds" in result.output
    empty = _run(["ack", topic, "x", "--token", ""], redis_url)
    assert empty.exit_code == 2 and "Invalid value for '--token'" in empty.output


def test_a_body_that_is_not_utf8_is_named_as_such(redis_url: str, topic: str) -> None:
    """Python decodes argv's bytes that are not UTF-8 as lone surrogates; the user gave bytes,
    and is told that BODY is not UTF-8 text, where, and how to put such a body."""
    body = os.fsdecode(b"caf\xe9")  # Latin-1, as a shell in a Latin-1 locale sends it
    schedule = ["schedule", topic, "s", "--every", "60", "--body", body]
    for args in (["put", topic, "j", body], schedule):
        result = _run(args, redis_url)
        assert result.exit_code == 2, result.output
        assert "is not valid UTF-8 text (byte 0xe9 at offset 3)" in result.output
        assert "$base64" in result.output and "surrogate" not in result.output
    client = redisched.Client.from_url(redis_url)
    assert client.get(topic, "j") is None and client.get_schedule(topic, "s") is None


def test_put_at_a_time_and_times_shown_with_z(redis_url: str, topic: str) -> None:
    put = _run(["put", topic, "later", "b", "--run-at", "2031-01-01T00:00:00+01:00"], redis_url)
    assert put.exit_code == 0, put.output
    shown = json.loads(_run(["get", topic, "later"], redis_url).stdout)
    assert shown["run_at"] == "2030-12-31T23:00:00Z"
    assert _run(["put", topic, "x", "b", "--run-at", "soon"], redis_url).exit_code == 2
    events = _run(["events", topic], redis_url)
    assert json.loads(events.output.splitlines()[0])["at"].endswith("Z")
    history = json.loads(_run(["history", topic, "later"], redis_url).stdout)
    assert all(event["at"].endswith("Z") for event in history["events"])
    made = _run(["schedule", topic, "daily", "--every", "86400"], redis_url)
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["next_run_at"].endswith("Z")


def test_every_job_command_names_where_its_redis_url_comes_from() -> None:
    # `make serve` starts its own Redis, not the one at the default URL: a command's --help
    # said only "Redis URL.", leaving a new user to find the variable and the default.
    from redisched.cli import LAZY_COMMANDS
    from redisched.config import DEFAULT_URL

    runner = CliRunner()
    names = [*main.commands, *LAZY_COMMANDS]
    shown = 0
    for name in names:
        text = " ".join(runner.invoke(main, [name, "--help"]).output.split())
        if "--redis-url URL" in text and name not in ("serve", "worker"):
            assert f"[env REDISCHED_REDIS_URL; default {DEFAULT_URL}]" in text, name
            shown += 1
    assert shown >= 24


def test_a_table_shows_brackets_as_they_are(redis_url: str, topic: str) -> None:
    # rich read "[...]" in a cell as markup: an id "job[bold]" showed as "job", a topic
    # "t[x]" as "t", a last_error "KeyError: [red]" lost its key.
    name = f"{topic}[bold]"
    client = redisched.Client.from_url(redis_url)
    client.put(name, "job[1][red]", b"")
    client.bury(client.reserve(name), reason="KeyError: [blue]")
    listed = _run(["jobs", name, "--state", "dead"], redis_url).stdout
    assert f"{name}: dead" in listed
    assert "job[1][red]" in listed and "KeyError: [blue]" in listed
    assert name in _run(["stats"], redis_url).stdout


def test_a_table_into_a_pipe_keeps_each_row_whole(redis_url: str, topic: str) -> None:
    # Out of a terminal rich folded the table to 80 columns: "welcome-42" came out as
    # "welcome-4" and "2" on the next line, and so did every date, so `| grep` missed them.
    client = redisched.Client.from_url(redis_url)
    job_id = "need_some_help_email_42"
    client.put(topic, job_id, b"", run_at=datetime(2031, 1, 1, 9, tzinfo=UTC))
    listed = _run(["jobs", topic, "--state", "scheduled"], redis_url)
    assert listed.exit_code == 0
    [line] = [line for line in listed.stdout.splitlines() if job_id in line]
    assert "scheduled" in line and "2031-01-01 09:00:00Z" in line
    stats = _run(["stats"], redis_url).stdout
    assert any(topic in line and "2031-01-01 09:00:00Z" in line for line in stats.splitlines())


def test_events_follow_refuses_a_bad_interval_and_ends_quietly_on_ctrl_c(
    redis_url: str, topic: str
) -> None:
    for interval, message in (("-1", "at least 0.01 seconds"), ("nan", "finite")):
        refused = _run(["events", topic, "-f", "--interval", interval], redis_url)
        assert refused.exit_code == 2 and message in refused.output  # (was a traceback)
    redisched.Client.from_url(redis_url).put(topic, "j", b"x")
    env = {**os.environ, "REDISCHED_REDIS_URL": redis_url}
    follow = subprocess.Popen(
        [str(Path(sys.executable).parent / "redisched"), "events", topic, "-f"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert follow.stdout is not None and '"kind": "put"' in follow.stdout.readline()
    follow.send_signal(signal.SIGINT)
    _, err = follow.communicate(timeout=10)
    assert follow.returncode == 0 and "Aborted" not in err, err  # (was "Aborted!", status 1)


def test_events_follow_goes_on_through_a_topic_deleted_and_used_again(
    redis_url: str, topic: str
) -> None:
    # The re-used topic's feed restarted at 0-1: a follow that had read 0-3 of the old feed
    # printed nothing of the new one's first three events.
    client = redisched.Client.from_url(redis_url)
    for name in ("a", "b", "c"):
        client.put(topic, name, b"")
    env = {**os.environ, "REDISCHED_REDIS_URL": redis_url}
    command = [str(Path(sys.executable).parent / "redisched"), "events", topic, "-f"]
    follow = subprocess.Popen(
        [*command, "--interval", "0.05"], env=env, stdout=subprocess.PIPE, text=True
    )
    stop = threading.Timer(10, follow.kill)  # a follow that misses "y" ends the test, not hangs
    stop.start()
    try:
        assert follow.stdout is not None
        puts = [json.loads(follow.stdout.readline())["id"] for _ in range(3)]
        client.delete_topic(topic)  # the deleted events of its purge may go with the old feed
        for name in ("x", "y"):
            client.put(topic, name, b"")
        while puts[-1] != "y" and (line := follow.stdout.readline()):
            event = json.loads(line)
            if event["kind"] == "put":
                puts.append(event["id"])
        assert puts == ["a", "b", "c", "x", "y"]
    finally:
        stop.cancel()
        follow.send_signal(signal.SIGINT)
        follow.communicate(timeout=10)
        client.close()
