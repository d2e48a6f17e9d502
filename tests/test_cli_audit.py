"""CLI defects found by an audit: ``config`` of a webhook as shown, ``kick`` on partitions."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

import redisched
from redisched.cli import main
from redisched.commands import operate
from redisched.partition_setting import configure, run
from redisched.partitions import Partitions

SECRET = "whsec_" + "c2VjcmV0LWtleS0xMjM0NTY3OA=="  # b"secret-key-12345678"
URL = "http://bob:hunter2@127.0.0.1:7451/cli?m=200"
SHOWN = "http://bob:***@127.0.0.1:7451/cli?m=200"


def _run(command: click.Command, args: list[str], redis_url: str) -> Any:
    return CliRunner().invoke(command, args, env={"REDISCHED_REDIS_URL": redis_url})


def test_config_of_the_webhook_as_shown_keeps_its_secrets_and_password(
    redis_url: str, topic: str
) -> None:
    """The URL as the CLI shows it (password ``***``) without secrets dropped the secrets
    and stored ``***`` as the password; PATCH keeps both, and so does the CLI now."""
    client = redisched.Client.from_url(redis_url)
    client.configure(topic, webhook={"url": URL, "secrets": [SECRET], "timeout": 2})
    hook = json.dumps({"url": SHOWN, "timeout": 5})
    allow = "--allow-private-webhooks"  # a receiver on loopback
    done = _run(main, ["config", topic, "--set", f"webhook={hook}", allow], redis_url)
    assert done.exit_code == 0, done.output
    assert "hunter2" not in done.output and SHOWN in done.output
    stored = client.config(topic).webhook
    assert stored is not None
    assert (stored.url, stored.secrets, stored.timeout) == (URL, (SECRET,), 5.0)
    # a new URL, or secrets given, replace them as PATCH does
    other_url = "http://127.0.0.1:7451/other"
    other = json.dumps({"url": other_url, "secrets": []})
    assert (
        _run(main, ["config", topic, "--set", f"webhook={other}", allow], redis_url).exit_code == 0
    )
    stored = client.config(topic).webhook
    assert stored is not None and (stored.url, stored.secrets) == (
        "http://127.0.0.1:7451/other",
        (),
    )


def _dead_in_partitions(redis_url: str, topic: str, ids: list[str]) -> Partitions:
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 2}))
    layout = Partitions(topic, 2)
    for job_id in ids:
        name = layout.route(job_id)
        client.put(name, job_id, b"{}")
        held = client.reserve(name)
        assert held is not None and held.id == job_id
        client.bury(held, reason="audit")
    return layout


def test_kick_by_id_finds_the_jobs_partition_and_exits_1_unless_it_is_dead(
    redis_url: str, topic: str
) -> None:
    layout = _dead_in_partitions(redis_url, topic, ["j1"])
    client = redisched.Client.from_url(redis_url)
    kicked = _run(operate.kick, [topic, "j1"], redis_url)
    assert kicked.exit_code == 0, kicked.output
    assert json.loads(kicked.output) == {"kicked": 1}
    job = client.get(layout.route("j1"), "j1")
    assert job is not None and job.state is redisched.JobState.READY
    again = _run(operate.kick, [topic, "j1"], redis_url)  # README: exit 1, not in the right state
    assert again.exit_code == 1 and "is ready, not dead" in again.output
    missing = _run(operate.kick, [topic, "nope"], redis_url)
    assert missing.exit_code == 1 and "no job 'nope'" in missing.output


def test_kick_with_a_limit_kicks_across_the_partitions(redis_url: str, topic: str) -> None:
    ids = [f"j{i}" for i in range(6)]
    layout = _dead_in_partitions(redis_url, topic, ids)
    assert len({layout.route(i) for i in ids}) == 2  # both partitions hold dead jobs
    first = _run(operate.kick, [topic, "--limit", "4"], redis_url)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"kicked": 4}
    rest = _run(operate.kick, [topic], redis_url)
    assert json.loads(rest.output) == {"kicked": 2}
    client = redisched.Client.from_url(redis_url)
    assert sum(client.stats(name).ready for name in layout.names) == 6


def _set_webhook(topic: str, url: str, redis_url: str, *more: str) -> Any:
    return _run(main, ["config", topic, "--set", f"webhook={json.dumps({'url': url})}", *more],
                redis_url)  # fmt: skip


@pytest.mark.asyncio
async def test_config_refuses_the_webhook_targets_patch_refuses(
    http: httpx.AsyncClient, redis_url: str, topic: str
) -> None:
    """The CLI stored a cloud metadata URL that PATCH refuses (400): it checks it as PATCH."""
    for url in ("http://169.254.169.254/x", "http://metadata.google.internal/x"):
        for allow in ((), ("--allow-private-webhooks",)):  # metadata: refused even so
            refused = _set_webhook(topic, url, redis_url, *allow)
            assert refused.exit_code == 2, refused.output
            assert "Error: --set webhook.url: " in refused.output and "metadata" in refused.output
        patched = await http.patch(f"/v1/topics/{topic}", json={"webhook": {"url": url}})
        assert patched.status_code == 400
        assert patched.json()["error"]["message"] in refused.output
    assert redisched.Client.from_url(redis_url).config(topic).webhook is None


def test_a_refused_webhook_is_not_echoed_with_its_secrets(redis_url: str, topic: str) -> None:
    """The refusal quoted the --set value as typed: its secrets and the URL's password went
    into terminal scrollback and CI logs, where nothing else ever shows them."""
    secret = "whsec_" + base64.b64encode(b"a secret of 24 bytes....").decode()
    for url, secrets in (
        ("http://user:hunter2@127.0.0.1:9/x", [secret]),  # a refused target
        ("https://user:hunter2@1.1.1.1/x", [secret, "short"]),  # a refused secret
    ):
        value = json.dumps({"url": url, "secrets": secrets})
        refused = _run(main, ["config", topic, "--set", f"webhook={value}"], redis_url)
        assert refused.exit_code == 2 and "Error: --set webhook." in refused.output
        assert secret not in refused.output and "hunter2" not in refused.output
    typed = _run(main, ["config", topic, "--set", "durable=1"], redis_url)  # others: echoed
    assert typed.exit_code == 2 and "(given '1')" in typed.output


def test_config_takes_a_private_webhook_target_only_when_allowed(
    redis_url: str, topic: str
) -> None:
    """As ``serve``: --allow-private-webhooks or REDISCHED_ALLOW_PRIVATE_WEBHOOKS."""
    client = redisched.Client.from_url(redis_url)
    private = "http://10.1.2.3:8080/hook"
    refused = _set_webhook(topic, private, redis_url)
    assert refused.exit_code == 2 and "10.1.2.3 is a private address" in refused.output
    assert "--allow-private-webhooks" in refused.output  # named as typed, not the setting
    assert client.config(topic).webhook is None
    assert _set_webhook(topic, private, redis_url, "--allow-private-webhooks").exit_code == 0
    stored = client.config(topic).webhook
    assert stored is not None and stored.url == private
    loopback = "http://127.0.0.1:7451/hook"
    done = CliRunner().invoke(
        main, ["config", topic, "--set", f"webhook={json.dumps({'url': loopback})}"],
        env={"REDISCHED_REDIS_URL": redis_url, "REDISCHED_ALLOW_PRIVATE_WEBHOOKS": "1"},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    stored = client.config(topic).webhook
    assert stored is not None and stored.url == loopback


def test_config_checks_webhook_targets_without_the_server_extra(redis_url: str, topic: str) -> None:
    """The check lives with the webhook sender (aiohttp, the server extra); the CLI is in the
    core package, so ``config`` must not need aiohttp or yarl to run it."""
    script = (
        "import sys; sys.modules['aiohttp'] = sys.modules['yarl'] = None\n"
        "from redisched.cli import run; sys.argv[0] = 'redisched'; run()"
    )

    def config(url: str) -> subprocess.CompletedProcess[str]:
        hook = json.dumps({"url": url})
        argv = [sys.executable, "-c", script, "config", topic, "--set", f"webhook={hook}"]
        env = {**os.environ, "REDISCHED_REDIS_URL": redis_url}
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

    refused = config("http://169.254.169.254/x")
    assert refused.returncode == 2 and "cloud metadata" in refused.stderr, refused.stderr
    public = "http://93.184.216.34/hook"  # an address literal: nothing to resolve
    done = config(public)
    assert done.returncode == 0, done.stderr
    stored = redisched.Client.from_url(redis_url).config(topic).webhook
    assert stored is not None and stored.url == public


_EXTRAS = ("aiohttp", "yarl", "aio_pika", "starlette", "uvicorn", "prometheus_client", "jinja2")


def test_the_core_install_runs_the_cli_and_names_the_missing_extra(tmp_path: Path) -> None:
    """``pip install redisched`` (no extra) has the CLI: ``--help`` lists every command
    (``bridge``'s settings once imported yarl, and it failed with a traceback), and ``serve``
    and ``bridge amqp`` say which extra they need, starting nothing."""
    blocked = " = ".join(f"sys.modules[{name!r}]" for name in _EXTRAS)
    script = f"import sys; {blocked} = None\nfrom redisched.cli import run; run()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", script, *args]
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )

    for args in (["--help"], ["serve", "--help"], ["bridge", "amqp", "--help"]):
        shown = cli(*args)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "serve" in cli("--help").stdout and "bridge" in cli("--help").stdout
    data = tmp_path / "data"
    serve = cli("serve", "--port", "0", "--data-dir", str(data))
    assert serve.returncode == 1, serve.stderr
    assert "serve needs the server extra" in serve.stderr
    assert "pip install 'redisched[server]'" in serve.stderr and "Traceback" not in serve.stderr
    bridge = cli("bridge", "amqp", "--data-dir", str(data))
    assert bridge.returncode == 1, bridge.stderr
    assert "pip install 'redisched[amqp]'" in bridge.stderr and "Traceback" not in bridge.stderr
    assert not data.exists()  # no embedded Redis was started


def test_serve_with_an_amqp_url_names_the_missing_amqp_extra(tmp_path: Path) -> None:
    """``pip install 'redisched[server]'`` then ``serve --amqp-url``: one line naming the
    extra, before an embedded Redis is started (it was a traceback from the app's startup)."""
    script = "import sys; sys.modules['aio_pika'] = None\nfrom redisched.cli import run; run()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}
    data = tmp_path / "data"
    argv = [
        sys.executable, "-c", script, "serve", "--port", "0", "--data-dir", str(data),
        "--amqp-url", "amqp://guest:guest@127.0.0.1:1/",
    ]  # fmt: skip
    serve = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert serve.returncode == 1, serve.stderr
    assert "--amqp-url needs the amqp extra" in serve.stderr
    assert "pip install 'redisched[amqp]'" in serve.stderr and "Traceback" not in serve.stderr
    assert not data.exists()
