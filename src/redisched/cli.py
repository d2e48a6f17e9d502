"""The ``redisched`` command: job operations from the shell, and the long-running services.

``serve``, ``worker``, ``bridge`` and ``scripts`` live in ``redisched.commands`` and are
imported only when used, so ``redisched get`` stays quick.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from typing import Any

import click

from .client import Client
from .errors import RedischedError
from .models import Job

LAZY_COMMANDS = {
    "serve": "redisched.commands.serve:serve",
    "worker": "redisched.commands.worker:worker",
    "bridge": "redisched.commands.bridge:bridge",
    "scripts": "redisched.commands.scripts:scripts",
    "history": "redisched.commands.history:history",
    "events": "redisched.commands.history:events",
    "schedule": "redisched.commands.schedule:schedule",
    "schedules": "redisched.commands.schedule:schedules",
    "unschedule": "redisched.commands.schedule:unschedule",
}
DEFAULT_URL = "redis://127.0.0.1:6379/0"


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, _, attribute = LAZY_COMMANDS[name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


def configure_logging(verbose: bool) -> None:
    """Log to stderr: INFO by default, DEBUG with --verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@click.group(cls=_LazyGroup, context_settings={"auto_envvar_prefix": "REDISCHED"})
@click.version_option(package_name="redisched")
def main() -> None:
    """redisched: delayed jobs on Redis, each with an id you choose."""


def _client(url: str | None) -> Client:
    return Client.from_url(url or os.environ.get("REDISCHED_REDIS_URL") or DEFAULT_URL)


def job_json(job: Job) -> dict[str, Any]:
    """A job as JSON-ready data (body as text when it is UTF-8, else base64)."""
    import base64

    try:
        body: Any = job.body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(job.body).decode(), "base64"
    return {
        "topic": job.topic, "id": job.id, "state": job.state.value, "body": body,
        "body_encoding": encoding, "run_at": job.run_at.isoformat(), "priority": job.priority,
        "ttr": job.ttr, "attempts": job.attempts, "max_attempts": job.max_attempts,
        "version": job.version, "token": job.token, "last_error": job.last_error,
    }  # fmt: skip


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


url_option = click.option("--redis-url", envvar="REDISCHED_REDIS_URL", help="Redis URL.")


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
@click.argument("body")
@click.option("--delay", type=float, help="Seconds until the job is due.")
@click.option("--ttr", type=float, help="Seconds a reservation lasts.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option(
    "--max-attempts",
    type=int,
    help="Attempts before the job goes dead. [default: the topic's, else 25]",
)
@click.option("--replace", is_flag=True, help="Replace an existing job with this id.")
def put(
    redis_url: str | None, topic: str, id: str, body: str, delay: float | None,
    ttr: float | None, priority: int, max_attempts: int | None, replace: bool,
) -> None:  # fmt: skip
    """Put a job (BODY is stored as UTF-8 text)."""
    result = _client(redis_url).put(
        topic, id, body, delay=delay, ttr=ttr, priority=priority,
        max_attempts=max_attempts, replace=replace,
    )  # fmt: skip
    _echo({"status": result.status.value, "version": result.version})


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
def get(redis_url: str | None, topic: str, id: str) -> None:
    """Show a job by id (exit 1 if absent)."""
    job = _client(redis_url).get(topic, id)
    if job is None:
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    _echo(job_json(job))


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
def delete(redis_url: str | None, topic: str, id: str) -> None:
    """Delete a job by id (exit 1 if absent)."""
    if not _client(redis_url).delete(topic, id):
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    _echo({"deleted": id})


@main.command()
@url_option
@click.argument("topic")
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--ttr", type=float)
def reserve(redis_url: str | None, topic: str, count: int, ttr: float | None) -> None:
    """Reserve due jobs and print them with their tokens."""
    _echo([job_json(job) for job in _client(redis_url).reserve_many(topic, count, ttr=ttr)])


@main.command()
@url_option
@click.argument("topic")
def stats(redis_url: str | None, topic: str) -> None:
    """Counts of a topic's jobs per state."""
    s = _client(redis_url).stats(topic)
    _echo({
        "topic": s.topic, "scheduled": s.scheduled, "ready": s.ready, "reserved": s.reserved,
        "dead": s.dead, "paused": s.paused,
        "next_due": s.next_due.isoformat() if s.next_due else None,
    })  # fmt: skip


@main.command()
@url_option
def topics(redis_url: str | None) -> None:
    """List every topic."""
    _echo(_client(redis_url).topics())


@main.command()
@url_option
@click.argument("topic")
@click.argument("id", required=False)
@click.option("--limit", type=int, default=100, show_default=True)
def kick(redis_url: str | None, topic: str, id: str | None, limit: int) -> None:
    """Move dead jobs back to ready: one by id, or up to --limit."""
    _echo({"kicked": _client(redis_url).kick(topic, id, limit=limit)})


def run() -> None:
    """Entry point: turns redisched errors into a clean message and exit code 1."""
    try:
        main(standalone_mode=True)
    except RedischedError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
