"""CLI commands for operating a topic: list, purge, delete, reschedule, kick, settings, leases.

Each is what an HTTP route does, with the same names and JSON shapes (``--json``). Exit codes:
0 done; 1 refused or not found (a job that is not there, a topic with running jobs, a stale
token); 2 a usage error naming the option or argument at fault (nothing changed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from .. import partition_setting, setting
from ..cli import client_for, run_at_help, run_at_value, url_option
from ..client import Client
from ..config import ALLOW_PRIVATE_WEBHOOKS
from ..errors import InvalidArgument, StaleReservation, TopicBusy
from ..models import JobState, TopicStats
from ..operate import Progress
from ..ops import Call
from ..partitions import Partitions
from ..push.targets import TargetPolicy, check_url_blocking
from ..shapes import config_out, stats_out
from ..topic_config import TopicConfig, completed_webhook
from . import options
from .output import echo_json, echo_table, job_data, progress_bar

STATES = click.Choice([s.value for s in JobState])
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation named on the command line."""

    topic: str
    id: str
    token: str


@click.command()
@url_option
@click.argument("topic")
@click.option("--state", type=STATES, default="ready", show_default=True)
@click.option("--prefix", help="Only ids starting with this.")
@click.option("--limit", type=int, default=50, show_default=True, help="Jobs per page.")
@click.option("--cursor", help="Go on from a previous page's cursor.")
@json_option
def jobs(
    redis_url: str | None, topic: str, state: str, prefix: str | None, limit: int,
    cursor: str | None, as_json: bool,
) -> None:  # fmt: skip
    """List one page of a topic's jobs in one state."""
    client = client_for(redis_url)
    count = client.execute(partition_setting.read_count(client.ops, topic))
    if count is None:
        page = client.jobs(topic, state, prefix=prefix, limit=limit, cursor=cursor)
    else:  # partition after partition
        flow = partition_setting.jobs_page(
            client.ops, Partitions(topic, count), state, prefix=prefix, limit=limit, cursor=cursor
        )
        page = partition_setting.run(client, flow)
    if as_json:
        echo_json({"jobs": [job_data(j) for j in page.jobs], "cursor": page.cursor})
        return
    rows = [
        (j.id, j.state.value, j.run_at, j.priority, j.attempts, j.version, j.last_error)
        for j in page.jobs
    ]
    columns = ("id", "state", "run_at", "priority", "attempts", "version", "last_error")
    echo_table(f"{topic}: {state}", columns, rows)
    if page.cursor is not None:
        click.echo(f"more: --cursor {page.cursor}", err=True)


@click.command()
@url_option
@click.argument("topic", required=False)
@json_option
def stats(redis_url: str | None, topic: str | None, as_json: bool) -> None:
    """Counts per state of one topic, or of every topic."""
    client = client_for(redis_url)
    counts = client.execute(partition_setting.read_counts(client.ops))
    names = [topic] if topic is not None else partition_setting.fold(client.topics(), counts)
    found = [_stats(client, name, counts) for name in names]
    if as_json:
        echo_json(stats_out(found[0]) if topic is not None else [stats_out(s) for s in found])
        return
    rows = [
        (s.topic, s.scheduled, s.ready, s.reserved, s.dead, "yes" if s.paused else "", s.next_due)
        for s in found
    ]
    columns = ("topic", "scheduled", "ready", "reserved", "dead", "paused", "next_due")
    echo_table("topics", columns, rows)


def _stats(client: Client, topic: str, counts: dict[str, int]) -> TopicStats:
    """A topic's counts, its partitions' added in."""
    return client.execute(partition_setting.read_stats(client.ops, topic, counts.get(topic)))


def _partitions(client: Client, topic: str) -> list[str]:
    """The topic and its partitions (just the topic when it is not partitioned)."""
    count = client.execute(partition_setting.read_count(client.ops, topic))
    return partition_setting.names(topic, count)


@click.command()
@url_option
@click.argument("topic")
@click.option("--state", type=click.Choice(["scheduled", "ready", "dead"]), required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(redis_url: str | None, topic: str, state: str, yes: bool) -> None:
    """Delete every job of a topic in one state (running jobs are never purged)."""
    client = client_for(redis_url)
    names = _partitions(client, topic)
    found = client.execute(Call.join(*(client.ops.stats(name, own=True) for name in names)))
    count = sum(getattr(stats, state) for stats in found)
    if count == 0:  # nothing to ask about
        echo_json({"topic": topic, "deleted": 0, "state": state})
        return
    if not yes:
        click.confirm(f"Delete {count} {state} job(s) of {topic!r}?", abort=True, err=True)
    deleted = 0
    with progress_bar(f"purging {state}", count) as progress:
        for name in names:
            deleted += client.purge(name, state, progress=_after(progress, deleted, count))
    echo_json({"topic": topic, "deleted": deleted, "state": state})


def _after(progress: Progress, done: int, total: int) -> Progress:
    """``progress`` of one partition's work, after ``done`` of ``total`` jobs."""
    return lambda n, left: progress(done + n, max(0, total - done - n))


@click.command("delete-topic")
@url_option
@click.argument("topic")
@click.option("--force", is_flag=True, help="Delete even while jobs are reserved.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_topic(redis_url: str | None, topic: str, force: bool, yes: bool) -> None:
    """Delete a topic: its jobs, settings and counters."""
    client = client_for(redis_url)
    counts = client.execute(partition_setting.read_counts(client.ops))
    partition_setting.refuse_partition(topic, counts, "delete")  # before asking
    s = client.execute(partition_setting.read_stats(client.ops, topic, counts.get(topic)))
    count = s.scheduled + s.ready + s.reserved + s.dead
    if s.reserved and not force:
        raise TopicBusy(topic, s.reserved)
    if not yes:
        click.confirm(f"Delete topic {topic!r} and its {count} job(s)?", abort=True, err=True)
    with progress_bar(f"deleting {topic}", count) as progress:
        deleted = client.delete_topic(topic, force=force, progress=progress)
    echo_json({"topic": topic, "deleted": deleted, "state": None})


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
@click.option("--delay", type=float, help="Seconds from now.")
@click.option("--run-at", help=run_at_help)
@click.option("--priority", type=int, help="A new priority (default: keep it).")
def reschedule(
    redis_url: str | None, topic: str, id: str, delay: float | None, run_at: str | None,
    priority: int | None,
) -> None:  # fmt: skip
    """Give a job a new due time (and priority), keeping its body."""
    if delay is None and run_at is None:
        raise click.UsageError("give --delay or --run-at")
    when = run_at_value(run_at)
    client = client_for(redis_url)
    topic = partition_setting.route(client, topic, id)
    result = client.reschedule(topic, id, delay=delay, run_at=when, priority=priority)
    if result is None:
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    _show(client, topic, id)


def _show(client: Any, topic: str, id: str) -> None:
    job = client.execute(client.ops.get(topic, id, own=True))  # topic: routed
    if job is None:
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    echo_json(job_data(job))


@click.command("run-now")
@url_option
@click.argument("topic")
@click.argument("id")
def run_now(redis_url: str | None, topic: str, id: str) -> None:
    """Make a scheduled job ready at once (exit 1 if it is not scheduled)."""
    client = client_for(redis_url)
    topic = partition_setting.route(client, topic, id)
    if not client.run_now(topic, id):
        raise _not_in_state(client, topic, id, "scheduled")
    _show(client, topic, id)


def _not_in_state(client: Client, topic: str, id: str, wanted: str) -> click.ClickException:
    """Why a by-id action found the job missing or in another state than ``wanted`` (exit 1)."""
    job = client.execute(client.ops.get(topic, id, own=True))  # topic: routed
    if job is None:
        return click.ClickException(f"no job {id!r} in topic {topic!r}")
    return click.ClickException(f"job {id!r} is {job.state.value}, not {wanted}")


@click.command()
@url_option
@click.argument("topic")
@click.argument("id", required=False)
@click.option("--limit", type=int, default=100, show_default=True)
def kick(redis_url: str | None, topic: str, id: str | None, limit: int) -> None:
    """Move dead jobs back to ready: one by id (exit 1 if it is not dead), or up to --limit."""
    client = client_for(redis_url)
    if id is None:
        echo_json({"kicked": _kick_up_to(client, topic, limit)})
        return
    topic = partition_setting.route(client, topic, id)
    if not client.kick(topic, id):
        raise _not_in_state(client, topic, id, "dead")
    echo_json({"kicked": 1})


def _kick_up_to(client: Client, topic: str, limit: int) -> int:
    """Kick up to ``limit`` dead jobs of the topic, then of each partition; how many."""
    kicked = 0
    for name in _partitions(client, topic):
        kicked += client.kick(name, limit=limit - kicked)
        if kicked >= limit:
            break
    return kicked


@click.command()
@url_option
@click.argument("topic")
def pause(redis_url: str | None, topic: str) -> None:
    """Stop a topic from leasing jobs."""
    echo_json(
        {"topic": topic, "paused": True, "changed": _pause(client_for(redis_url), topic, True)}
    )


@click.command()
@url_option
@click.argument("topic")
def resume(redis_url: str | None, topic: str) -> None:
    """Let a paused topic lease jobs again."""
    echo_json(
        {"topic": topic, "paused": False, "changed": _pause(client_for(redis_url), topic, False)}
    )


def _pause(client: Client, topic: str, paused: bool) -> bool:
    """Pause or resume the topic and its partitions; True if the topic itself changed."""
    count = client.execute(partition_setting.read_count(client.ops, topic))
    return client.execute(partition_setting.pause(client.ops, topic, count, paused))


def _setting(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--set")
    if value in ("", "null", "default"):
        return name, None
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


@click.command()
@url_option
@click.argument("topic")
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE",
    help="Change a setting (JSON values; null restores the default). Repeatable.",
)  # fmt: skip
@options.option(
    "allow_private_webhooks", ALLOW_PRIVATE_WEBHOOKS,
    help="Let --set webhook= name a private or loopback address, as `serve` does with this "
    "flag (cloud metadata addresses stay refused).",
)  # fmt: skip
def config(
    redis_url: str | None, topic: str, settings: tuple[str, ...],
    allow_private_webhooks: bool | None,
) -> None:  # fmt: skip
    """Show a topic's settings, or change some with --set ttr=30 --set webhook=null.

    A webhook URL is checked as PATCH /v1/topics/{topic} checks it: a private, loopback or
    link-local target is refused unless --allow-private-webhooks, a cloud metadata one always.
    """
    if allow_private_webhooks is None:
        allow_private_webhooks = bool(setting.env_value(ALLOW_PRIVATE_WEBHOOKS))
    policy = TargetPolicy.of(allow_private_webhooks)
    client = client_for(redis_url)
    changes = dict(_setting(text) for text in settings)
    given = {name: value for name, _, value in (text.partition("=") for text in settings)}
    if changes:
        try:
            found = _configure(client, topic, changes, policy)
        except InvalidArgument as exc:  # a setting's name, given as --set NAME=...
            # the value as typed: the message may speak of the JSON value it was read as
            # ("must be a bool, not int" for durable=1)
            name = exc.argument.partition(".")[0]
            # never a webhook's: it holds secrets (and maybe a URL's password), never shown
            typed = None if name == "webhook" else given.get(name)
            said = exc.message if typed is None else f"{exc.message} (given {typed!r})"
            raise InvalidArgument(f"--set {exc.argument}", said) from exc
    else:
        found = client.execute(partition_setting.read_config(client.ops, topic))
    echo_json({"topic": topic, "paused": found.paused, "config": config_out(found)})


def _configure(
    client: Client, topic: str, changes: dict[str, Any], policy: TargetPolicy
) -> TopicConfig:
    """Change the topic's settings (and its partitions'), as PATCH does."""
    given = changes.get("webhook")
    if isinstance(given, dict):  # as PATCH does: what the CLI showed changes nothing
        current = client.config(topic).webhook
        changes["webhook"] = completed_webhook(given, current)
        url = changes["webhook"].get("url")
        if isinstance(url, str):  # refused now, not at delivery (configure checks the rest)
            check_url_blocking(url, policy, argument="webhook.url")
    return partition_setting.run(client, partition_setting.configure(client.ops, topic, changes))


def _token(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value:
        raise click.BadParameter("must be the token reserve returned, not empty", ctx, param)
    return value


token_option = click.option(
    "--token", required=True, callback=_token, help="The token reserve returned."
)


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
@token_option
def ack(redis_url: str | None, topic: str, id: str, token: str) -> None:
    """Finish a reserved job (exit 1 if the token is stale)."""
    client = client_for(redis_url)
    topic = partition_setting.route(client, topic, id)
    _stale_is_an_error(lambda: client.ack(Held(topic, id, token)))
    echo_json({"topic": topic, "id": id, "acked": True})


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
@token_option
@click.option("--delay", type=float, default=0, show_default=True)
@click.option("--reason", help="Recorded as the job's last error.")
def release(
    redis_url: str | None, topic: str, id: str, token: str, delay: float, reason: str | None
) -> None:
    """Give a reserved job back, due after --delay seconds."""
    client = client_for(redis_url)
    topic = partition_setting.route(client, topic, id)
    state = _stale_is_an_error(
        lambda: client.release(Held(topic, id, token), delay=delay, reason=reason)
    )
    echo_json({"state": state.value})


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
@token_option
@click.option("--ttr", type=float, help="Seconds from now (default: the job's ttr).")
def touch(redis_url: str | None, topic: str, id: str, token: str, ttr: float | None) -> None:
    """Extend a reservation."""
    client = client_for(redis_url)
    topic = partition_setting.route(client, topic, id)
    until = _stale_is_an_error(lambda: client.touch(Held(topic, id, token), ttr=ttr))
    echo_json({"reserved_until": until})


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
@token_option
@click.option("--reason", help="Recorded as the job's last error.")
def bury(redis_url: str | None, topic: str, id: str, token: str, reason: str | None) -> None:
    """Move a reserved job to dead."""
    client = client_for(redis_url)
    topic = partition_setting.route(client, topic, id)
    _stale_is_an_error(lambda: client.bury(Held(topic, id, token), reason=reason))
    echo_json({"topic": topic, "id": id, "state": "dead"})


def _stale_is_an_error(action: Any) -> Any:
    try:
        return action()
    except StaleReservation as exc:
        raise click.ClickException(str(exc)) from exc
