"""``redisched schedule | schedules | unschedule``: recurring schedules from the shell.

A schedule shows as over HTTP (:func:`redisched.shapes.schedule_out`). On a partitioned
topic a schedule lives in the partition its id routes to, as over HTTP.
"""

from __future__ import annotations

import click

from .. import partition_setting
from ..cli import _echo, body_text, client_for, url_option
from ..shapes import schedule_out


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
@click.option("--cron", help="A 5-field crontab, e.g. '0 9 * * MON'.")
@click.option("--every", type=float, help="Whole seconds between occurrences (>= 1).")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of --cron.")
@click.option(
    "--body", default="", callback=body_text, help="The body of every occurrence (UTF-8 text)."
)
@click.option("--ttr", type=float, help="Seconds a reservation of an occurrence lasts.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--max-attempts", type=int)
def schedule(
    redis_url: str | None, topic: str, id: str, cron: str | None, every: float | None, tz: str,
    body: str, ttr: float | None, priority: int, max_attempts: int | None,
) -> None:  # fmt: skip
    """Create or replace the recurring schedule ID of TOPIC."""
    client = client_for(redis_url)
    partition_setting.refuse_misrouted_name(client, topic, id, "schedule")
    created = client.schedule(
        partition_setting.schedule_route(client, topic, id), id, body, cron=cron, every=every,
        tz=tz, ttr=ttr, priority=priority, max_attempts=max_attempts,
    )  # fmt: skip
    _echo(schedule_out(created))


@click.command()
@url_option
@click.argument("topic")
def schedules(redis_url: str | None, topic: str) -> None:
    """List the schedules of TOPIC."""
    client = client_for(redis_url)
    count = client.execute(partition_setting.read_count(client.ops, topic))
    found = partition_setting.run(client, partition_setting.all_schedules(client.ops, topic, count))
    _echo([schedule_out(s) for s in found])


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
def unschedule(redis_url: str | None, topic: str, id: str) -> None:
    """Delete the schedule ID of TOPIC and its pending occurrence (exit 1 if absent)."""
    client = client_for(redis_url)
    where = partition_setting.schedule_route(client, topic, id)
    if not client.execute(client.ops.unschedule(where, id, own=True)):
        raise click.ClickException(f"no schedule {id!r} in topic {topic!r}")
    _echo({"unscheduled": id})
