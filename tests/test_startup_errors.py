"""The long-running commands at start: a bad or unreachable Redis, a short token, the
options and variables ``--help`` lists, and ``serve --amqp-queue`` against real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from pathlib import Path

import aio_pika
import httpx
import pytest

from redisched.embedded import PIDFILE, free_port
from redisched.preflight import redacted
from tests.test_serve import REDISCHED, _env, start_serve, stop_leftover_redis

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "worker": ["worker", "json:dumps", "--topic", "t"],
    "bridge": ["bridge", "amqp", "--amqp-url", AMQP_URL],
}


def _run(
    args: list[str], cwd: Path, timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REDISCHED, *args], capture_output=True, text=True, timeout=timeout, env=_env(env),
        cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("foo", "must specify one of the following schemes"),
        ("redis://127.0.0.1:notaport/0", "Port could not be cast to integer"),
        ("redis://127.0.0.1:70000/0", "Port out of range"),
        ("redis+sentinel://nohostport/svc", "is not a host:port Sentinel address"),
    ],
)
def test_a_bad_redis_url_is_one_line_naming_the_option(
    command: str, url: str, cause: str, tmp_path: Path
) -> None:
    result = _run([*COMMANDS[command], "--redis-url", url], tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: --redis-url: {url!r} is not a Redis URL: ")
    assert cause in line
    assert not list(tmp_path.iterdir())  # nothing started, no data folder made


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreachable_redis_fails_fast(command: str, tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = _run([*COMMANDS[command], "--redis-url", url], tmp_path)
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "listening" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: --redis-url: cannot reach Redis at 'redis://:***@127.0.0.1:")
    assert "Connection refused" in last and "hunter2" not in result.stderr


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    result = _run(["serve", "--token", "short", "--data-dir", str(tmp_path / "d")], tmp_path)
    assert result.returncode == 2  # given as an option: a usage error
    assert "\nError: --token: each token must be at least 16 characters" in result.stderr
    assert not (tmp_path / "d").exists()
    env = _run(["serve", "--data-dir", str(tmp_path / "d")], tmp_path,
               env={"REDISCHED_API_TOKENS": "short"})  # fmt: skip
    assert env.returncode == 1  # from the environment: one line
    assert env.stderr.startswith("Error: REDISCHED_API_TOKENS: each token must be at least 16")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://user:s3cret@[::1:6390/0", "s3cret"),  # the parser refuses the host
        ("redis://:pa#ss@localhost:1/0", "pa#ss"),  # '#' starts a fragment for the parser
        ("redis://:s3/cret@localhost:1/0", "s3/cret"),
        ("redis://:p?x@localhost:1/0", "p?x"),
        ("redis://:sec/ret@127.0.0.1:1", "sec"),  # the parser names 'sec' as the port
        ("redis+sentinel://:sec/ret@127.0.0.1:26379/svc", "sec"),
        ("redis://127.0.0.1:1?password=secret", "secret"),  # redis-py reads it
        ("unix:///tmp/none.sock?db=0&password=secret", "secret"),
    ],
)
def test_a_url_the_parser_reads_in_part_keeps_its_password_hidden(
    tmp_path: Path, url: str, secret: str
) -> None:
    assert secret not in redacted(url) and "***" in redacted(url)
    for command in (["stats"], ["serve"]):
        result = _run([*command, "--redis-url", url], tmp_path)
        assert result.returncode in (1, 2) and secret not in result.stdout + result.stderr


def test_help_lists_every_environment_variable(tmp_path: Path) -> None:
    bridge = _run(["bridge", "amqp", "--help"], tmp_path).stdout
    for variable in (
        "REDISCHED_AMQP_URL", "REDISCHED_AMQP_QUEUE", "REDISCHED_AMQP_DEAD_LETTER_QUEUE",
        "REDISCHED_REDIS_URL", "REDISCHED_DATA_DIR", "REDISCHED_AMQP_PREFETCH",
        "REDISCHED_AMQP_CONCURRENCY",
    ):  # fmt: skip
        assert variable in bridge
    serve = _run(["serve", "--help"], tmp_path).stdout
    for text in ("--amqp-queue", "REDISCHED_AMQP_QUEUE", "--redis-port", "REDISCHED_REDIS_PORT"):
        assert text in serve


def test_serve_amqp_queue_names_the_bridge_queue(tmp_path: Path) -> None:
    queue = f"redisched-test-{uuid.uuid4().hex[:12]}"

    async def publish() -> None:
        async with await aio_pika.connect(AMQP_URL) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue(queue, durable=True)
            message = {"op": "put", "topic": "amqp", "id": "via-queue", "body": {"n": 1}}
            await channel.default_exchange.publish(
                aio_pika.Message(json.dumps(message).encode()), routing_key=queue
            )

    async def delete() -> None:
        async with await aio_pika.connect(AMQP_URL) as connection:
            channel = await connection.channel()
            for name in (queue, f"{queue}.dead"):
                await channel.queue_delete(name)

    data_dir = tmp_path / "data"
    served = start_serve(data_dir, "--amqp-url", AMQP_URL, "--amqp-queue", queue)
    try:
        asyncio.run(publish())
        with httpx.Client(base_url=served.url) as http:
            deadline = time.monotonic() + 20
            while (got := http.get("/v1/topics/amqp/jobs/via-queue")).status_code != 200:
                assert time.monotonic() < deadline, served.output
                time.sleep(0.1)
            assert got.json()["body"] == {"n": 1}
    finally:
        assert served.stop() == 0
        stop_leftover_redis(data_dir)
        asyncio.run(delete())


def test_a_port_in_use_is_one_error_line_and_status_1(tmp_path: Path) -> None:
    # `make serve` on a taken port: uvicorn exited with status 3 and only its own log line,
    # while --workers 2 said "could not listen" with status 1.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")]
        result = _run(args, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"Error: could not listen on 127.0.0.1:{port}: Address already in use"
    assert not (tmp_path / "data" / PIDFILE).exists()  # the embedded redis-server was stopped


@pytest.mark.parametrize("url", ["foo", "amqp://", "http://127.0.0.1:5672/", "amqp://host:0/"])
@pytest.mark.parametrize("where", ["option", "variable"])
@pytest.mark.parametrize("command", ["serve", "bridge"])
def test_a_bad_amqp_url_is_one_line_naming_it(
    tmp_path: Path, url: str, where: str, command: str
) -> None:
    """A malformed broker URL was retried for ever, and `serve` then ignored SIGTERM."""
    args = ["serve", "--port", "0"] if command == "serve" else ["bridge", "amqp"]
    env = {"REDISCHED_AMQP_URL": url} if where == "variable" else {}
    if where == "option":
        args += ["--amqp-url", url]
    done = _run([*args, "--data-dir", str(tmp_path / "data")], tmp_path, timeout=20, env=env)
    named = "--amqp-url" if where == "option" else "REDISCHED_AMQP_URL"
    assert done.returncode in (1, 2), done.stderr
    assert f"{named}: must be an amqp:// or amqps:// URL" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
