"""How the worker calls a job's handler: sync or async, and what a failure leaves behind."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from .models import Job

Handler = Callable[[Job], Awaitable[object]] | Callable[[Job], object]
"""A job handler: ``async def handle(job)`` or a plain function (run in a thread pool)."""

MAX_ERROR_TEXT = 8000


class Watched:
    """Awaits a coroutine and calls ``on_suspend`` the first time it has to wait.

    It drives the coroutine exactly as ``await`` would (sending None and throwing what the
    task throws), only noticing the first suspension.
    """

    __slots__ = ("_coro", "_on_suspend")

    def __init__(self, coro: Coroutine[Any, Any, Any], on_suspend: Callable[[], None]) -> None:
        self._coro = coro
        self._on_suspend = on_suspend

    def __await__(self) -> Generator[Any, None, Any]:
        coro = self._coro
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            return done.value
        self._on_suspend()
        while True:
            try:
                yield waiting
            except BaseException as exc:  # passed on, as await would
                try:
                    waiting = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting = coro.send(None)
                except StopIteration as done:
                    return done.value


def is_async(handler: Handler) -> bool:
    """True for an ``async def`` function (or partial), or an object with an async __call__."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    return inspect.iscoroutinefunction(call)


def describe(exc: BaseException) -> str:
    """An exception with its traceback, as a job's ``last_error``. A very long one keeps the
    start of the exception's own line (its type: the end alone of a huge message lost it),
    then the end of the whole.

    A lone surrogate (an undecodable file name's ``surrogateescape``) is written as its
    ``\\udcXX`` escape: it has no UTF-8, and a release refuses it.
    """
    text = _ascii_safe("".join(traceback.format_exception(exc)).strip())
    if len(text) <= MAX_ERROR_TEXT:
        return text
    half = MAX_ERROR_TEXT // 2
    summary = _ascii_safe("".join(traceback.format_exception_only(exc)).strip())
    return f"{summary[:half]}\n...\n{text[-half:]}"


def _ascii_safe(text: str) -> str:
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")
