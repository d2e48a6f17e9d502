"""How the CLI shows jobs, topics and settings: the HTTP API's representation, or a table.

``--json`` output is the HTTP API's representation (:mod:`redisched.shapes`: times in UTC
with ``Z``, bodies as in :mod:`redisched.json_body`), so a script can read either. Tables use
rich, imported only when a table is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
import msgspec

from .. import shapes
from ..convert import shown
from ..models import Job
from ..shapes import JobOut, job_out

_ENCODER = msgspec.json.Encoder()


def job_data(job: Job) -> JobOut:
    """A job as the HTTP API shows it, with its token (a fresh reservation's) and, while it
    is reserved, its deadline (an operator's view: ``get`` shows it too)."""
    out = job_out(job, handed_out=True)
    if job.reserved_until is not None:
        out.reserved_until = job.reserved_until
    return out


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (times as RFC 3339 with ``Z``)."""
    click.echo(msgspec.json.format(shapes.encode(_ENCODER, data), indent=2).decode())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return shown(str(value))  # an id stored as bytes that are not UTF-8: \xNN


def echo_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table: on a terminal, long ids fold (they never push the other columns off
    screen); into a pipe or a file, each row is one line, whole (``| grep id`` finds it)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, not str: rich reads "[...]" in a str as markup ("job[1]" would show as "job")
    table = Table(title=Text(title), title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(_cell(v)) for v in row))
    console = Console()
    if not console.is_terminal:  # rich would fold to 80 columns
        console = Console(width=1 << 16)
    console.print(table)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields the ``progress(done, left)`` callback to update it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(  # off a terminal, not drawn (a transient one still left an empty line)
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=total)

        def update(done: int, left: int) -> None:
            bar.update(task, completed=done, total=max(total, done + left))

        yield update
