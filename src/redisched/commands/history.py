"""``redisched history TOPIC ID`` and ``redisched events TOPIC [--follow]``: the HTTP API's
shapes (:mod:`redisched.shapes`), events one JSON a line."""

from __future__ import annotations

import json
import time

import click
import msgspec

from .. import partition_setting
from ..cli import _echo, client_for, url_option
from ..models import JobEvent
from ..partitions import Partitions
from ..shapes import event_out, history_out, readable
from ..validate import duration_ms


def event_line(event: JobEvent) -> str:
    """An event of the feed as one line of JSON, in the HTTP API's shape."""
    return json.dumps(readable(msgspec.to_builtins(event_out(event))), ensure_ascii=False)


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
def history(redis_url: str | None, topic: str, id: str) -> None:
    """What happened to a job, live or finished (exit 1 if never seen or aged out)."""
    client = client_for(redis_url)
    held = partition_setting.route(client, topic, id, finished=True)
    found = client.execute(client.ops.history(held, id, own=True))
    if found is None and held != topic:  # a finished job of the partitioned topic itself
        found = client.execute(client.ops.history(topic, id, own=True))
    if found is None:
        raise click.ClickException(f"no history of job {id!r} in topic {topic!r}")
    _echo(history_out(found))


@click.command()
@url_option
@click.argument("topic")
@click.option("--after", help="The cursor of the last event seen.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events (one JSON a line).")
@click.option("--interval", type=float, default=0.5, show_default=True,
              help="Seconds (0.01 to 3600) between reads of an idle feed (--follow).")  # fmt: skip
def events(
    redis_url: str | None, topic: str, after: str | None, limit: int, follow: bool,
    interval: float,
) -> None:  # fmt: skip
    """A topic's events, oldest first; --follow tails the feed like ``tail -f`` (Ctrl-C ends it)."""
    pause = duration_ms(interval, "interval", minimum_ms=10, maximum_ms=3_600_000) / 1000
    client = client_for(redis_url)
    count = client.execute(partition_setting.read_count(client.ops, topic))
    if count is not None:  # as over HTTP: its partitions' feeds, not the topic's, hold events
        raise partition_setting.no_feed(Partitions(topic, count))
    try:
        while True:
            page = client.events(topic, after=after, limit=limit)
            for event in page:
                click.echo(event_line(event))
            if page:
                after = page[-1].cursor
            if not follow:
                return
            if len(page) < limit:
                time.sleep(pause)
    except KeyboardInterrupt:
        if not follow:
            raise
        # Ctrl-C is how a follow ends: no "Aborted!", status 0
