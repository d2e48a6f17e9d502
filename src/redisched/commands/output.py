"""How the CLI shows jobs, topics and settings: the HTTP API's representation, or a table.

``--json`` output has the HTTP API's field names and shapes (times in UTC with ``Z``, bodies
as in :mod:`redisched.json_body`), so a script can read either. Tables use rich, imported only
when a table is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
import msgspec

from ..json_body import to_json
from ..models import Job, TopicStats
from ..topic_config import TopicConfig

_ENCODER = msgspec.json.Encoder()


def job_data(job: Job) -> dict[str, Any]:
    """A job as the HTTP API shows it (with the token and deadline of a fresh reservation)."""
    data: dict[str, Any] = {
        "topic": job.topic, "id": job.id, "body": to_json(job.body), "state": job.state.value,
        "run_at": job.run_at, "priority": job.priority, "ttr": job.ttr,
        "attempts": job.attempts, "max_attempts": job.max_attempts, "version": job.version,
        "last_error": job.last_error,
    }  # fmt: skip
    if job.token is not None:
        data["token"] = job.token
    if job.reserved_until is not None:
        data["reserved_until"] = job.reserved_until
    return data


def config_data(config: TopicConfig) -> dict[str, Any]:
    """A topic's settings as the HTTP API shows them (webhook secrets counted, never shown)."""
    hook = config.webhook
    return {
        "ttr": config.ttr, "max_attempts": config.max_attempts, "backoff": config.backoff,
        "backoff_max": config.backoff_max,
        "webhook": None if hook is None else {
            "url": hook.url, "timeout": hook.timeout, "secret_count": len(hook.secrets)
        },
        "concurrency": config.concurrency, "rate": config.rate, "durable": config.durable,
        "partitions": config.partitions,
    }  # fmt: skip


def topic_data(stats: TopicStats, config: TopicConfig | None = None) -> dict[str, Any]:
    """A topic's counts and totals (and settings) as ``GET /v1/topics/{topic}`` shows them."""
    data: dict[str, Any] = {
        "topic": stats.topic, "paused": stats.paused,
        "counts": {"scheduled": stats.scheduled, "ready": stats.ready,
                   "reserved": stats.reserved, "dead": stats.dead},
        "next_due": stats.next_due,
        "totals": {"put": stats.total_put, "reserved": stats.total_reserved,
                   "acked": stats.total_acked, "released": stats.total_released,
                   "requeued": stats.total_requeued, "dead": stats.total_dead,
                   "pulled": stats.total_pulled},
    }  # fmt: skip
    if config is not None:
        data["config"] = config_data(config)
    return data


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (times as RFC 3339 with ``Z``)."""
    click.echo(msgspec.json.format(_ENCODER.encode(data), indent=2).decode())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def echo_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table (long ids fold, they never push the other columns off screen)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    Console().print(table)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields the ``progress(done, left)`` callback to update it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=total)

        def update(done: int, left: int) -> None:
            bar.update(task, completed=done, total=max(total, done + left))

        yield update
