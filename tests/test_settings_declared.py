"""Settings declared once: each field has a variable and an option, read the same way."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
import pytest
from click.testing import CliRunner

from redisched.bridges.settings import BridgeSettings
from redisched.cli import main
from redisched.commands.bridge import amqp
from redisched.commands.options import chosen
from redisched.commands.serve import serve
from redisched.commands.worker import worker
from redisched.config import Settings
from redisched.setting import option_of, specs
from redisched.worker_settings import WorkerSettings

TOKENS = ("token-number-one", "token-number-two")
# For each settings class: its command, and for each field the text of a value other than
# the default (a flag's: 1; several values: separated as the variable takes them).
CASES: dict[type, tuple[click.Command, list[str], dict[str, Any]]] = {
    Settings: (serve, [], {
        "host": "::1", "port": "8080", "redis_url": "redis://127.0.0.1:7000/0",
        "redis_cluster": "1", "durable_puts": "1", "data_dir": "/tmp/x", "redis_port": "7379",
        "appendfsync": "always", "tokens": TOKENS, "insecure": "1",
        "allow_private_webhooks": "1", "allowed_hosts": ("jobs.internal", "api.example"),
        "prefix": "rs", "max_body_size": "2048", "max_request_size": "2097152",
        "requeue_interval": "0.5", "workers": "2", "metrics_topics": "50",
    }),
    WorkerSettings: (worker, ["json:dumps"], {
        "topics": ("emails", "sms"), "redis_url": "redis://127.0.0.1:7000/1",
        "redis_cluster": "1", "prefix": "rs", "concurrency": "3", "ttr": "2.5", "grace": "1",
        "backoff": "0.5", "backoff_max": "60", "app_dir": "/tmp",
    }),
    BridgeSettings: (amqp, [], {
        "amqp_url": "amqp://u:p@127.0.0.1:5673/", "queue": "jobs", "dead_letter_queue": "bad",
        "prefetch": "50", "concurrency": "3", "max_batch": "20", "retry_initial": "0.2",
        "retry_max": "2", "shutdown_grace": "1",
    }),
}  # fmt: skip


# What every case sets besides the setting under test (--redis-cluster needs a URL).
BASE = {Settings: {"REDISCHED_REDIS_URL": "redis://127.0.0.1:7001/0"}}


def _env_text(spec: Any, value: Any) -> str:
    if isinstance(value, tuple):
        return (spec.separator or " ").join(value)
    return str(value)


def _argv(name: str, spec: Any, value: Any) -> list[str]:
    option = option_of(name, spec)
    if spec.flag:
        return [option]
    if isinstance(value, tuple):
        return [part for item in value for part in (option, item)]
    return [option, str(value)]


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_every_field_has_a_variable_and_an_option(cls: type) -> None:
    command, _, samples = CASES[cls]
    declared = specs(cls)
    assert set(declared) == set(samples) == {f.name for f in dataclasses.fields(cls)}
    options = {opt for param in command.params for opt in param.opts}
    for name, spec in declared.items():
        assert spec.env.startswith("REDISCHED_") and spec.help
        assert option_of(name, spec) in options, name


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_the_variable_and_the_option_give_the_same_value(cls: type) -> None:
    command, head, samples = CASES[cls]
    for name, spec in specs(cls).items():
        value = samples[name]
        base = BASE.get(cls, {})
        from_env = cls.from_env({**base, spec.env: _env_text(spec, value)})  # type: ignore[attr-defined]
        context = command.make_context(command.name, [*head, *_argv(name, spec, value)])
        given = {k: v for k, v in chosen(context.params).items() if k in specs(cls)}
        from_option = cls.from_env(base, **given)  # type: ignore[attr-defined]
        assert getattr(from_env, name) == getattr(from_option, name), name
        default = cls.from_env(base)  # type: ignore[attr-defined]
        assert getattr(from_env, name) != getattr(default, name), name  # really read


@pytest.mark.parametrize(
    ("args", "variable", "value", "message"),
    [
        (["serve"], "REDISCHED_PORT", "http", "must be a whole number"),
        (["serve"], "REDISCHED_PORT", "70000", "must be between 0 and 65535"),
        (["serve"], "REDISCHED_INSECURE", "maybe", "must be one of 1/0"),
        (["serve"], "REDISCHED_API_TOKENS", "short", "at least 16 characters"),
        (["serve"], "REDISCHED_WORKERS", "0", "must be between 1 and"),
        (["serve"], "REDISCHED_WORKERS", "many", "must be a whole number"),
        (["worker", "json:dumps", "-t", "t"], "REDISCHED_CONCURRENCY", "0", "between 1 and"),
        (["worker", "json:dumps", "-t", "t"], "REDISCHED_GRACE", "soon", "must be a number"),
        (["bridge", "amqp"], "REDISCHED_AMQP_PREFETCH", "many", "must be a whole number"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(
    args: list[str], variable: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(main, args, env={variable: value})
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {variable}: ") and message in line


def test_a_bad_option_names_the_option() -> None:
    result = CliRunner().invoke(main, ["worker", "json:dumps", "-t", "t", "--concurrency", "x"])
    assert result.exit_code == 2 and "'-c' / '--concurrency'" in result.output
    assert "must be a whole number" in result.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["serve", "--port", "99999"], "Error: --port: must be between 0 and 65535"),
        (["serve", "--token", "short"], "Error: --token: each token must be at least 16"),
    ],
)
def test_an_option_the_setting_refuses_is_a_usage_error(args: list[str], line: str) -> None:
    """Exit 2 as for click's own type errors (the README's exit codes), not 1."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith(line)


def test_the_option_wins_over_the_variable() -> None:
    context = serve.make_context("serve", ["--port", "9090"])
    port = context.params["port"]
    assert Settings.from_env({"REDISCHED_PORT": "8080"}, port=port).port == 9090


def test_a_worker_needs_a_topic() -> None:
    result = CliRunner().invoke(main, ["worker", "json:dumps"], env={"REDISCHED_TOPIC": ""})
    assert result.exit_code == 2 and "--topic" in result.output


@pytest.mark.parametrize(
    ("cls", "name", "value", "message"),
    [
        (BridgeSettings, "prefetch", 0, "between 1 and 65535"),
        (BridgeSettings, "max_batch", True, "must be an integer"),
        (BridgeSettings, "concurrency", 2.5, "must be an integer"),
        (BridgeSettings, "retry_max", -1.0, "at least 0"),
        (WorkerSettings, "concurrency", 0, "between 1 and"),
        (WorkerSettings, "grace", "soon", "must be a number"),
    ],
)
def test_a_value_given_in_code_gets_the_bounds_of_its_text(
    cls: type, name: str, value: Any, message: str
) -> None:
    from redisched import InvalidArgument

    with pytest.raises(InvalidArgument, match=message) as caught:
        cls(**{name: value})
    assert caught.value.argument == name
