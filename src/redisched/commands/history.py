"""``redisched history TOPIC ID`` and ``redisched events TOPIC [--follow]``: the HTTP API's
shapes (:mod:`redisched.shapes`), events one JSON a line (a partitioned topic's feeds merged)."""

from __future__ import annotations

import json
import time

import click
import msgspec

from .. import partition_setting
from ..cli import _echo, client_for, url_option
from ..client import Client
from ..models import JobEvent
from ..ops import Call
from ..shapes import event_out, history_out, readable
from ..validate import duration_ms


def event_line(event: JobEvent, topic: str | None = None) -> str:
    """An event of the feed as one line of JSON, in the HTTP API's shape; with the ``topic``
    whose feed holds it, when given (a partitioned topic's merged feeds)."""
    shown = readable(msgspec.to_builtins(event_out(event)))
    if topic is not None:
        shown["topic"] = topic
    return json.dumps(shown, ensure_ascii=False)


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
    """A topic's events, oldest first; --follow tails the feed like ``tail -f`` (Ctrl-C ends it).

    A partitioned topic's partitions (and the topic itself) each keep a feed: they are read
    together and merged by time, each line naming its ``topic`` (give that name and the
    line's cursor to ``--after`` to go on in that feed alone).
    """
    pause = duration_ms(interval, "interval", minimum_ms=10, maximum_ms=3_600_000) / 1000
    client = client_for(redis_url)
    count = client.execute(partition_setting.read_count(client.ops, topic))
    if count is not None and after is not None:
        raise click.UsageError(
            f"--after: topic {topic!r} is spread over {count} partitions, each with its own "
            f"feed: give a cursor with the partition that printed it ({topic}~p0 ... "
            f"{topic}~p{count - 1}, or {topic} itself)"
        )
    names = partition_setting.names(topic, count)
    cursors: dict[str, str | None] = dict.fromkeys(names, after)
    try:
        while True:
            page = _merged(client, cursors, limit)
            for name, event in page:
                click.echo(event_line(event, name if count else None))
                cursors[name] = event.cursor
            if not follow:
                return
            if len(page) < limit:
                time.sleep(pause)
    except KeyboardInterrupt:
        if not follow:
            raise
        # Ctrl-C is how a follow ends: no "Aborted!", status 0


def _merged(
    client: Client, cursors: dict[str, str | None], limit: int
) -> list[tuple[str, JobEvent]]:
    """The ``limit`` oldest events after each feed's cursor, of every feed named in
    ``cursors`` (a partitioned topic's, each read with ``own``), merged by time: the oldest
    ``limit`` of all are among each feed's oldest ``limit``. One round trip."""
    names = list(cursors)
    calls = [client.ops.events(n, after=cursors[n], limit=limit, own=True) for n in names]
    feeds: list[list[JobEvent]] = client.execute(Call.join(*calls))
    merged = [(name, event) for name, feed in zip(names, feeds, strict=True) for event in feed]
    if len(feeds) > 1:
        merged.sort(key=lambda found: found[1].at)  # stable: a feed's order is kept
    return merged[:limit]
