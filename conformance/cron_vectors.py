"""Cron-time vectors: when a cron schedule fires, as the glue computes it for ``schedule.lua``
and ``refill.lua`` (the scripts never see a time zone, DESIGN.md section 9).

Each case gives an expression, an IANA zone, ``after_ms``, ``count`` and ``end_ms`` (0: none),
and ``times``: what :func:`redisched.recurrence.cron_times` answers (UTC epoch ms). The Node and
Go glue compute the same lists (``clients/node/test/cron_times.test.js``,
``clients/go/cron_times_test.go``). Written by ``python -m conformance.generate``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redisched import recurrence

CRON_TIMES_FILE = Path(__file__).resolve().parent / "cron_times.json"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# (note, expression, zone, after, count, end)
CASES: list[tuple[str, str, str, str, int, str]] = [
    ("a fixed time in the spring-forward gap runs right after the jump",
     "30 2 * * *", "Europe/Berlin", "2030-03-30T00:00:00", 3, ""),
    ("a fixed time in the repeated autumn hour runs once",
     "30 2 * * *", "Europe/Berlin", "2030-10-26T00:00:00", 3, ""),
    ("a list of fixed times across the gap: each runs once",
     "0,30 2 * * *", "Europe/Berlin", "2030-03-30T00:00:00", 4, ""),
    ("a wildcard hour keeps its real interval through the repeated hour",
     "0 * * * *", "Europe/Berlin", "2030-10-26T23:00:00", 5, ""),
    ("a step in the minute field keeps its real interval",
     "*/20 * * * *", "America/New_York", "2030-11-03T05:00:00", 7, ""),
    ("a fixed time in New York's repeated hour runs once",
     "30 1 * * *", "America/New_York", "2030-11-02T00:00:00", 3, ""),
    ("weekdays, named, in Los Angeles across spring forward",
     "0 9 * * MON-FRI", "America/Los_Angeles", "2030-03-07T00:00:00", 6, ""),
    ("day of month or day of week (both restricted: either matches)",
     "0 12 13 * FRI", "UTC", "2030-09-01T00:00:00", 6, ""),
    ("end_at stops the list (inclusive)",
     "0 0 1,15 * *", "UTC", "2030-01-01T00:00:00", 10, "2030-03-01T00:00:00"),
    ("29 February: leap years only",
     "0 0 29 2 *", "UTC", "2030-01-01T00:00:00", 2, ""),
    ("a half-hour zone, named months",
     "5 4 * JAN,JUL *", "Asia/Kolkata", "2030-06-30T00:00:00", 3, ""),
    ("Lord Howe moves its clocks by 30 minutes",
     "15 2 * * *", "Australia/Lord_Howe", "2030-10-05T00:00:00", 3, ""),
    ("ranges with steps",
     "10-50/20 8-10/2 * * *", "Asia/Tokyo", "2030-05-05T00:00:00", 6, ""),
]  # fmt: skip


def build() -> list[dict[str, Any]]:
    """Every case with the times the Python client computes."""
    out = []
    for note, expr, zone, after, count, end in CASES:
        after_ms, end_ms = _ms(after), _ms(end) if end else 0
        times = recurrence.cron_times(
            expr, recurrence.time_zone(zone), after_ms, count, end_ms or None
        )
        out.append({
            "note": note, "cron": expr, "tz": zone, "after_ms": after_ms, "count": count,
            "end_ms": end_ms, "times": times,
        })  # fmt: skip
    return out


def dumps(cases: list[dict[str, Any]]) -> str:
    """The cases as JSON, one per line."""
    return "[\n" + ",\n".join(f"  {json.dumps(c)}" for c in cases) + "\n]\n"


def write(path: Path = CRON_TIMES_FILE) -> None:
    """Write the cron-time vectors."""
    path.write_text(dumps(build()), encoding="utf-8")
