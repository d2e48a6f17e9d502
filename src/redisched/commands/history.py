"""``redisched history TOPIC ID`` and ``redisched events TOPIC [--follow]``."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from .. import partition_setting
from ..cli import _echo, client_for, url_option
from ..json_body import to_json
from ..models import JobEvent, JobHistory
from ..shapes import readable
from ..validate import duration_ms
from .output import utc_text


def event_json(event: JobEvent) -> dict[str, Any]:
    """An event as JSON-ready data."""
    data: dict[str, Any] = {
        "at": utc_text(event.at), "kind": event.kind.value, "version": event.version,
        "attempt": event.attempt, "detail": event.detail,
    }  # fmt: skip
    if event.id is not None:
        data["id"], data["cursor"] = event.id, event.cursor
    return data


def history_json(history: JobHistory) -> dict[str, Any]:
    """A job's history as the HTTP API shows it (the result follows the body rule: a JSON
    text as its value, other UTF-8 text as a string, else a ``$base64`` marker)."""
    return {
        "topic": history.topic, "id": history.id,
        "outcome": None if history.outcome is None else history.outcome.value,
        "finished_at": utc_text(history.finished_at),
        "version": history.version, "attempts": history.attempts,
        "result": None if history.result is None else to_json(history.result),
        "last_error": history.last_error,
        "events": [event_json(e) for e in history.events],
    }  # fmt: skip


@click.command()
@url_option
@click.argument("topic")
@click.argument("id")
def history(redis_url: str | None, topic: str, id: str) -> None:
    """What happened to a job, live or finished (exit 1 if never seen or aged out)."""
    client = client_for(redis_url)
    held = partition_setting.route(client, topic, id, finished=True)
    found = client.history(held, id)
    if found is None and held != topic:  # a finished job of the partitioned topic itself
        found = client.history(topic, id)
    if found is None:
        raise click.ClickException(f"no history of job {id!r} in topic {topic!r}")
    _echo(history_json(found))


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
    try:
        while True:
            page = client.events(topic, after=after, limit=limit)
            for event in page:
                click.echo(json.dumps(readable(event_json(event)), ensure_ascii=False))
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
