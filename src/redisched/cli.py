"""The ``redisched`` command: job operations from the shell, and the long-running services.

``serve``, ``worker``, ``bridge`` and ``scripts`` live in ``redisched.commands`` and are
imported only when used, so ``redisched get`` stays quick.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from . import partition_setting, setting
from .client import Client
from .config import DEFAULT_URL, PREFIX
from .errors import InvalidArgument, RedischedError
from .models import Job, PutStatus
from .partitions import PartitionedTopic

if TYPE_CHECKING:
    from .shapes import JobOut

_OPERATE = ("jobs", "stats", "purge", "delete-topic", "reschedule", "run-now", "pause", "resume",
            "config", "ack", "release", "touch", "bury", "kick")  # fmt: skip
LAZY_COMMANDS = {
    **{name: f"redisched.commands.operate:{name.replace('-', '_')}" for name in _OPERATE},
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


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, _, attribute = LAZY_COMMANDS[name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)

    def _usage_of(self, ctx: click.Context) -> click.Context:
        """The context whose usage line a usage error shows: the subcommand's."""
        name = ctx.invoked_subcommand
        command = None if name is None else self.get_command(ctx, name)
        return ctx if command is None else click.Context(command, ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a bad value is a usage error (exit 2) naming the option or
        argument as typed, a refusal from redisched a plain error (exit 1)."""
        try:
            return super().invoke(ctx)
        except InvalidArgument as exc:
            usage = self._usage_of(ctx)
            name = as_typed(usage.command, exc.argument)
            raise click.UsageError(f"{name}: {exc.message}", usage) from exc
        except RedischedError as exc:
            raise click.ClickException(str(exc)) from exc


def as_typed(command: click.Command, argument: str) -> str:
    """How the command line names the parameter an error names by its Python name: an
    option as its long form (``run_at`` -> ``--run-at``), a positional argument as its
    metavar (``id`` -> ``ID``); other names (``--redis-url``, ``webhook.url``) as they are."""
    for param in command.params:
        if param.name != argument:
            continue
        if isinstance(param, click.Option):
            return next((o for o in param.opts if o.startswith("--")), param.opts[0])
        return param.human_readable_name
    return argument


def configure_logging(verbose: bool) -> None:
    """Log to stderr: INFO by default, DEBUG with --verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@click.group(cls=_LazyGroup, context_settings={"auto_envvar_prefix": "REDISCHED"})
@click.version_option(package_name="redisched")
def main() -> None:
    """redisched: delayed jobs on Redis, each with an id you choose.

    The job commands work on the Redis of --redis-url (or REDISCHED_REDIS_URL), under the
    key prefix of REDISCHED_PREFIX (default redisched), as serve and worker do.
    """


def client_for(url: str | None) -> Client:
    """A client for url_option's value (--redis-url or REDISCHED_REDIS_URL), else the default,
    with the key prefix of REDISCHED_PREFIX (as ``serve`` and ``worker``), else the default.

    Raises:
        InvalidArgument: the URL is empty or no Redis URL (``argument`` is ``--redis-url``),
            or REDISCHED_PREFIX is no key prefix (``argument`` is the variable).
    """
    if url == "":  # given, but empty: a mistake (an unset variable?), not a wish for the default
        raise InvalidArgument(
            "--redis-url", f"is empty: give a Redis URL, or leave the option out for {DEFAULT_URL}"
        )
    context = click.get_current_context(silent=True)
    cluster = bool(context and context.meta.get(_CLUSTER))
    prefix = setting.env_value(PREFIX)  # the keys serve and worker use, checked before the URL
    options: dict[str, str] = {} if prefix is None else {"prefix": prefix}
    try:
        return Client.from_url(url or DEFAULT_URL, cluster=cluster, **options)
    except (ValueError, TypeError) as exc:  # InvalidArgument, or redis-py's parse errors
        from .preflight import not_a_redis_url

        reason = exc.message if isinstance(exc, InvalidArgument) else str(exc).rstrip(".")
        raise not_a_redis_url(url or DEFAULT_URL, reason) from None


def job_json(job: Job) -> JobOut:
    """A job as the HTTP API shows it (with its token while reserved)."""
    from .commands.output import job_data

    return job_data(job)


def _echo(data: Any) -> None:
    from .commands.output import echo_json

    echo_json(data)


F = TypeVar("F", bound=Callable[..., Any])
_CLUSTER = "redisched.cluster"  # the click context's meta key of --redis-cluster


def _remember_cluster(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[_CLUSTER] = value
    return value


_url = click.option(
    "--redis-url",
    envvar="REDISCHED_REDIS_URL",
    metavar="URL",
    help="Redis to work on (`serve` prints its own). "
    f"[env REDISCHED_REDIS_URL; default {DEFAULT_URL}]",
)
# kept in the context, not passed: every job command takes it without a parameter of its own
_cluster = click.option(
    "--redis-cluster",
    envvar="REDISCHED_REDIS_CLUSTER",
    is_flag=True,
    expose_value=False,
    callback=_remember_cluster,
    help="--redis-url is a node of a Redis Cluster. [env REDISCHED_REDIS_CLUSTER]",
)


def url_option(command: F) -> F:
    """``--redis-url`` and ``--redis-cluster`` (read by :func:`client_for`)."""
    return _url(_cluster(command))


def body_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A body given on the command line, which the CLI stores as UTF-8 text: a usage error
    naming it when its bytes are not UTF-8 (Python decoded them as lone surrogates)."""
    if value is None:  # (an optional BODY not given)
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        where = ""  # unless the text is argv's bytes, decoded with surrogateescape
        try:
            value.encode("utf-8", "surrogateescape").decode("utf-8")
        except UnicodeEncodeError:
            pass
        except UnicodeDecodeError as exc:
            where = f" (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        message = (
            f"is not valid UTF-8 text{where}; the CLI stores a body as text: put bytes with "
            'put --body-file, the HTTP API (a body of {"$base64": "..."}) or Client.put'
        )
        raise click.BadParameter(message, ctx, param) from None
    return value


run_at_help = "When the job is due: RFC 3339 with an offset, or epoch seconds."


def run_at_value(text: str | None) -> datetime | float | None:
    """A ``--run-at`` value: epoch seconds, or an RFC 3339 time (``Z`` or an offset)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    msg = "must be RFC 3339 with an offset, or epoch seconds"
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument("run_at", msg) from None
    if when.tzinfo is None:  # which zone was meant? (the client's message speaks of tzinfo)
        raise InvalidArgument("run_at", f"{msg} (no offset given: add Z or +02:00, say)")
    return when


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
@click.argument("body", callback=body_text, required=False)
@click.option(
    "--body-file", type=click.File("rb"),
    help="Read the body from this file (- for stdin), as bytes, instead of BODY: a body past "
    "the 128 KiB a command-line argument may hold, or one that is not text.",
)  # fmt: skip
@click.option("--delay", type=float, help="Seconds until the job is due.")
@click.option("--run-at", help=run_at_help)
@click.option("--ttr", type=float, help="Seconds a reservation lasts.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option(
    "--max-attempts",
    type=int,
    help="Attempts before the job goes dead. [default: the topic's, else 25]",
)
@click.option(
    "--replace", is_flag=True,
    help="Replace an existing job with this id (else putting one exits 1 and changes nothing).",
)  # fmt: skip
def put(
    redis_url: str | None, topic: str, id: str, body: str | None, body_file: IO[bytes] | None,
    delay: float | None, run_at: str | None, ttr: float | None, priority: int,
    max_attempts: int | None, replace: bool,
) -> None:  # fmt: skip
    """Put a job (BODY is stored as UTF-8 text; --body-file stores the file's bytes)."""
    if (body is None) == (body_file is None):
        raise click.UsageError("give the body as BODY or --body-file, one of them")
    data = body_file.read() if body_file is not None else body or ""
    when = run_at_value(run_at)
    client = client_for(redis_url)
    topic = partition_setting.put_route(client, topic, id)
    try:
        result = client.put(
            topic, id, data, delay=delay, run_at=when, ttr=ttr, priority=priority,
            max_attempts=max_attempts, replace=replace,
        )  # fmt: skip
    except InvalidArgument as exc:  # the file's bytes, named as given
        if body_file is None or exc.argument != "body":
            raise
        raise InvalidArgument("body_file", exc.message) from exc
    _echo({"topic": topic, "id": id, "version": result.version, "status": result.status.value})
    if result.status is PutStatus.EXISTS:
        raise click.ClickException(f"job {id!r} already exists in topic {topic!r} (use --replace)")


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
def get(redis_url: str | None, topic: str, id: str) -> None:
    """Show a job by id (exit 1 if absent)."""
    client = client_for(redis_url)
    routed = partition_setting.route(client, topic, id)
    job = client.execute(client.ops.get(routed, id, own=True))
    if job is None:
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    _echo(job_json(job))


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
def delete(redis_url: str | None, topic: str, id: str) -> None:
    """Delete a job by id (exit 1 if absent)."""
    client = client_for(redis_url)
    if not client.delete(partition_setting.route(client, topic, id), id):
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    _echo({"deleted": id})


@main.command()
@url_option
@click.argument("topic")
@click.argument("id")
@click.option("--reason", help="Why, kept in the job's aborted event (at most 200 bytes).")
def abort(redis_url: str | None, topic: str, id: str, reason: str | None) -> None:
    """Stop a job by id: its running handler is cancelled, or it never runs; its history ends
    aborted (exit 1 if absent)."""
    client = client_for(redis_url)
    if not client.abort(partition_setting.route(client, topic, id), id, reason=reason):
        raise click.ClickException(f"no job {id!r} in topic {topic!r}")
    _echo({"aborted": id})


@main.command()
@url_option
@click.argument("topic")
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--ttr", type=float)
def reserve(redis_url: str | None, topic: str, count: int, ttr: float | None) -> None:
    """Reserve due jobs and print them with their tokens."""
    client = client_for(redis_url)
    found = client.execute(partition_setting.read_count(client.ops, topic))
    jobs = (
        client.reserve_many(topic, count, ttr=ttr) if found is None
        else PartitionedTopic(client, topic, found).reserve_many(count, ttr=ttr)
    )  # fmt: skip
    _echo([job_json(job) for job in jobs])


@main.command()
@url_option
def topics(redis_url: str | None) -> None:
    """List every topic (a partitioned topic once)."""
    client = client_for(redis_url)
    counts = client.execute(partition_setting.read_counts(client.ops))
    _echo(partition_setting.fold(client.topics(), counts))


def run() -> None:
    """Entry point: turns redisched errors into a clean message and exit code 1."""
    try:
        main(standalone_mode=True)
    except RedischedError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
