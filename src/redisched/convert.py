"""Conversions of Redis reply values shared by the parsers: epoch ms and bytes to Python."""

from __future__ import annotations

from datetime import UTC, datetime


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def text(value: bytes | None) -> str | None:
    """A reply's bytes as text (undecodable bytes replaced), None kept."""
    return None if value is None else value.decode("utf-8", "replace")
