"""``redisched worker`` as a process: SIGTERM, grace, env vars, bad handlers, a frozen worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest
import redis
from click.testing import CliRunner

import redisched
from redisched import AsyncClient, Job, JobState, Worker
from redisched.cli import main
from redisched.embedded import free_port
from tests.workerproc import read_until, spawn, wait_for


def finish(process: subprocess.Popen[bytes], timeout: float = 15) -> str:
    """Wait for the process to exit; its log."""
    return process.communicate(timeout=timeout)[1].decode(errors="replace")


def test_sigterm_lets_the_running_job_finish_then_exits_0(redis_url: str, topic: str) -> None:
    key = f"app-{topic}"
    raw = redis.Redis.from_url(redis_url)
    client = redisched.Client.from_url(redis_url)
    process = spawn(redis_url, key, "slow", "--topic", topic, extra_env={"WORKER_APP_SLOW": "0.5"})
    read_until(process, "worker serving", 30)
    client.put(topic, "j", b"")
    wait_for(lambda: raw.exists(f"{key}:alive:{process.pid}"), 10, "the handler to start")
    process.send_signal(signal.SIGTERM)
    log = finish(process)
    assert process.returncode == 0, log
    assert [f.split()[0] for f in raw.lrange(f"{key}:finished", 0, -1)] == [b"j"]
    stats = client.stats(topic)
    assert (stats.total_acked, stats.reserved, stats.ready) == (1, 0, 0)


def test_sigterm_releases_a_job_that_outlasts_the_grace_period(redis_url: str, topic: str) -> None:
    key = f"app-{topic}"
    raw = redis.Redis.from_url(redis_url)
    client = redisched.Client.from_url(redis_url)
    process = spawn(redis_url, key, "slow", "--topic", topic, "--grace", "0.2",
                    extra_env={"WORKER_APP_SLOW": "30"})  # fmt: skip
    read_until(process, "worker serving", 30)
    client.put(topic, "j", b"")
    wait_for(lambda: raw.exists(f"{key}:alive:{process.pid}"), 10, "the handler to start")
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    log = finish(process)
    assert process.returncode == 0, log
    assert time.monotonic() - stopped < 5
    job = client.get(topic, "j")
    assert job is not None and job.state is JobState.READY
    assert job.last_error == "the worker stopped before the handler finished"


@pytest.mark.parametrize("handler", ["stubborn", "stuck"])
def test_sigterm_exits_after_the_grace_period_even_if_a_handler_does_not_end(
    redis_url: str, topic: str, handler: str
) -> None:
    """An async handler that ignores its cancellation, or a sync one whose thread does not
    return: the worker used to wait for it forever after the grace period."""
    key = f"app-{topic}"
    raw = redis.Redis.from_url(redis_url)
    client = redisched.Client.from_url(redis_url)
    process = spawn(redis_url, key, handler, "--topic", topic, "--grace", "0.2")
    read_until(process, "worker serving", 30)
    client.put(topic, "j", b"")
    wait_for(lambda: raw.llen(f"{key}:started") == 1, 10, "the handler to start")
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    log = finish(process)
    assert process.returncode == 0, log
    assert time.monotonic() - stopped < 5, log
    assert "exiting without waiting for 1 handlers left behind" in log
    job = client.get(topic, "j")
    assert job is not None and job.state is JobState.READY
    assert job.last_error == "the worker stopped before the handler finished"


@pytest.mark.parametrize(("body", "status"), [(b"exit 3", 3), (b"interrupt", 1)])
def test_a_handler_that_exits_stops_the_worker_without_waiting_for_a_stuck_one(
    redis_url: str, topic: str, body: bytes, status: int
) -> None:
    """A handler raising SystemExit (or KeyboardInterrupt) stops the Worker gracefully, then
    raises it: the exit that skips a stuck thread was not taken, and the process waited for
    that thread (forever for one that never returns)."""
    key = f"app-{topic}"
    raw = redis.Redis.from_url(redis_url)
    client = redisched.Client.from_url(redis_url)
    process = spawn(redis_url, key, "stuck_or_exiting", "--topic", topic, "--grace", "0.2",
                    "--concurrency", "2")  # fmt: skip
    read_until(process, "worker serving", 30)
    client.put(topic, "stuck", b"")
    client.put(topic, "exits", body)
    stopped = time.monotonic()
    log = finish(process)
    assert process.returncode == status, log
    assert time.monotonic() - stopped < 8, log
    assert "exiting without waiting for 1 handlers left behind" in log
    assert raw.llen(f"{key}:started") == 1
    job = client.get(topic, "stuck")
    assert job is not None and job.state is JobState.READY


def test_options_come_from_environment_variables(redis_url: str, topic: str) -> None:
    key = f"app-{topic}"
    client = redisched.Client.from_url(redis_url)
    env = {"REDISCHED_TOPIC": f"{topic}-1 {topic}-2", "REDISCHED_CONCURRENCY": "3",
           "REDISCHED_BACKOFF": "0.05"}  # fmt: skip
    process = spawn(redis_url, key, "failing", extra_env=env)
    started = read_until(process, "worker serving", 30)
    assert f"serving {topic}-1, {topic}-2 with concurrency 3" in started
    for name in (f"{topic}-1", f"{topic}-2"):
        client.put(name, "j", b"", max_attempts=2)
    wait_for(
        lambda: client.stats(f"{topic}-1").dead + client.stats(f"{topic}-2").dead == 2,
        10, "both jobs to die",
    )  # fmt: skip
    process.send_signal(signal.SIGTERM)
    log = finish(process)
    assert process.returncode == 0, log
    job = client.get(f"{topic}-1", "j")
    assert job is not None and job.attempts == 2
    assert job.last_error is not None and "ValueError: cannot process j" in job.last_error


def test_a_topic_option_with_a_space_is_one_topic(redis_url: str, topic: str) -> None:
    # -t "a b" served the topics "a" and "b": a topic whose name holds a space had no worker
    key, name = f"app-{topic}", f"{topic} with spaces"
    client = redisched.Client.from_url(redis_url)
    process = spawn(redis_url, key, "failing", "--topic", name, "--backoff", "0.05")
    started = read_until(process, "worker serving", 30)
    assert f"serving {name} with concurrency" in started
    client.put(name, "j", b"", max_attempts=1)
    wait_for(lambda: client.stats(name).dead == 1, 10, "the job to die")
    process.send_signal(signal.SIGTERM)
    log = finish(process)
    assert process.returncode == 0, log


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("no_colon", "must look like module.path:function"),
        ("tests.no_such_module:f", "cannot import 'tests.no_such_module'"),
        ("tests.worker_app:missing", "has no attribute 'missing'"),
        ("tests.worker_app:_SLOW", "is not callable"),
    ],
)
def test_a_bad_handler_is_a_usage_error(handler: str, message: str) -> None:
    result = CliRunner().invoke(main, ["worker", handler, "--topic", "t"])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("topic", ["", "  "])
def test_a_blank_topic_is_a_missing_topic(topic: str) -> None:
    result = CliRunner().invoke(main, ["worker", "tests.worker_app:record", "--topic", topic])
    assert result.exit_code == 2, result.output
    assert "Missing option '--topic' / '-t' (or REDISCHED_TOPIC)." in result.output


def test_a_bad_topic_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["worker", "tests.worker_app:record", "--topic", "a{b"])
    assert result.exit_code == 2 and "must not contain '{' or '}'" in result.output


@pytest.mark.parametrize(
    ("option", "topic_backoff", "gaps"),
    [
        ("--backoff-max", 0.1, (0.08, 0.2)),  # the topic's first delay, the option's longest
        ("--backoff-max", None, (0.24, 0.3)),  # the built-in 1 s is capped by the option
        ("--backoff", None, (0.24, 0.3)),
    ],
)
def test_one_backoff_option_alone_keeps_the_topics_other_setting(
    redis_url: str, topic: str, option: str, topic_backoff: float | None, gaps: tuple[float, float]
) -> None:
    """--backoff-max alone took 1 s as the first delay, not the topic's backoff as --help
    says, and one below 1 was refused: "backoff.max: must be at least backoff.base"."""
    client = redisched.Client.from_url(redis_url)
    if topic_backoff is not None:
        client.configure(topic, backoff=topic_backoff)
    process = spawn(redis_url, f"app-{topic}", "failing", "--topic", topic, option, "0.3")
    read_until(process, "worker serving", 30)
    client.put(topic, "j", b"", max_attempts=2)
    wait_for(lambda: client.stats(topic).dead == 1, 10, "the job to die")
    process.send_signal(signal.SIGTERM)
    log = finish(process)
    assert process.returncode == 0, log
    history = client.history(topic, "j")
    assert history is not None
    retried, reserved = (
        [e.at for e in history.events if e.kind.value == kind] for kind in ("retried", "reserved")
    )
    gap = (reserved[1] - retried[0]).total_seconds()
    assert gaps[0] <= gap <= gaps[1] + 0.1, gap


def test_a_backoff_max_below_the_backoff_names_the_option() -> None:
    result = CliRunner().invoke(
        main, ["worker", "tests.worker_app:record", "-t", "t", "--backoff", "5",
               "--backoff-max", "1"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for --backoff-max: must be at least --backoff (5)" in result.output


def test_a_frozen_worker_late_ack_is_rejected_and_the_new_holder_acks(
    redis_url: str, topic: str
) -> None:
    """SIGSTOP a worker mid-job past its ttr; another worker takes the job over."""
    key = f"app-{topic}"
    raw = redis.Redis.from_url(redis_url)
    client = redisched.Client.from_url(redis_url)
    frozen = spawn(redis_url, key, "slow", "--topic", topic, extra_env={"WORKER_APP_SLOW": "0.3"})
    read_until(frozen, "worker serving", 30)
    client.put(topic, "j", b"", ttr=0.5)
    wait_for(lambda: raw.exists(f"{key}:alive:{frozen.pid}"), 10, "the handler to start")
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        asyncio.run(_take_over(redis_url, topic, frozen.pid))
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
        frozen.send_signal(signal.SIGTERM)
        log = finish(frozen)
    assert frozen.returncode == 0, log
    # Woken, the frozen worker either reads the requeue's cancel message first (the handler
    # is cancelled and never acks) or acks first and is refused.
    late = ("ack rejected", "lost its reservation", "cancelled while running")
    assert any(words in log for words in late), log
    stats = client.stats(topic)
    assert (stats.total_reserved, stats.total_acked) == (2, 1)
    assert client.get(topic, "j") is None


async def _take_over(redis_url: str, topic: str, frozen_pid: int) -> None:
    """Run a second worker until it holds the job, wake the frozen one, then let it ack."""
    holding = asyncio.Event()
    may_finish = asyncio.Event()

    async def handler(job: Job) -> None:
        assert job.attempts == 2
        holding.set()
        await may_finish.wait()

    async with AsyncClient.from_url(redis_url) as client:
        worker = Worker(client, {topic: handler}, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(holding.wait(), 10)  # requeued when the ttr ran out, leased
        os.kill(frozen_pid, signal.SIGCONT)  # the first handler finishes late and acks
        await asyncio.sleep(1.0)
        assert (await client.get(topic, "j")) is not None, "the late ack must change nothing"
        may_finish.set()
        for _ in range(200):
            if (await client.stats(topic)).total_acked == 1:
                break
            await asyncio.sleep(0.01)
        worker.stop()
        await asyncio.wait_for(task, 10)


def test_an_unreachable_redis_is_a_clean_error_at_start(topic: str) -> None:
    """Named as given: the variable (spawn sets REDISCHED_REDIS_URL), not an option the user
    never typed."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args, named in ((), "REDISCHED_REDIS_URL"), (("--redis-url", url), "--redis-url"):
        process = spawn(url, "unused", "record", "--topic", topic, *args)
        log = finish(process)
        assert process.returncode == 1
        assert f"Error: {named}: cannot reach Redis at 'redis://127.0.0.1:" in log
        assert "Connection refused" in log and "Traceback" not in log


@pytest.mark.parametrize(
    ("option", "value"),
    [("--backoff", "1e12"), ("--backoff-max", "1e12"), ("--grace", "1e12"), ("--ttr", "1e9")],
)
def test_a_duration_past_its_bound_names_the_option(option: str, value: str) -> None:
    """It said "Error: backoff.base: must be at most ..." (the Backoff's or the Worker's
    argument, not the option typed)."""
    result = CliRunner().invoke(
        main, ["worker", "tests.worker_app:record", "-t", "t", option, value]
    )
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': must be at most" in result.output
