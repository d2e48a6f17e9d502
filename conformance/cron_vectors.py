"""Cron-time vectors: when a cron schedule fires, as the glue computes it for ``schedule.lua``
and ``refill.lua`` (the scripts never see a time zone, DESIGN.md section 9), and which
expressions a schedule takes.

Each case gives an expression, an IANA zone, ``after_ms``, ``count`` and ``end_ms`` (0: none),
and ``times``: what :func:`redisched.recurrence.cron_times` answers (UTC epoch ms). A refused
expression gives ``cron``, ``tz`` and ``error``: why :func:`redisched.recurrence.cron_expression`
refuses it (cronsim's reason, ``Bad day-of-week``; ``never fires``; ``must have 5 fields``;
``must be at most 1024 characters``, counted as Python counts a str's characters). The
Node and Go glue compute the same lists and refuse the same expressions
(``clients/node/test/cron_times.test.js``, ``clients/go/cron_times_test.go``), and take the same
time zone names for a new schedule (``time_zones.json``: :data:`ZONES`, accepted or refused by
:func:`redisched.recurrence.time_zone`). Written by ``python -m conformance.generate``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redisched import recurrence
from redisched.errors import InvalidArgument

CRON_TIMES_FILE = Path(__file__).resolve().parent / "cron_times.json"
TIME_ZONES_FILE = Path(__file__).resolve().parent / "time_zones.json"


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
    ("L: the last day of the month, 29 February in a leap year",
     "0 0 L * *", "UTC", "2031-12-01T00:00:00", 4, ""),
    ("l and lw: lower case is taken",
     "0 6 l * *", "UTC", "2030-01-15T00:00:00", 2, ""),
    ("LW: the last weekday of the month (months ending on Saturday and Sunday)",
     "0 0 LW * *", "UTC", "2030-05-15T00:00:00", 6, ""),
    ("lw, lower case, local midnight",
     "0 0 lw * *", "Europe/Berlin", "2030-02-15T00:00:00", 3, ""),
    ("L in a step is L",
     "0 0 L/2 * *", "UTC", "2030-01-15T00:00:00", 2, ""),
    ("a list of L, LW and a day",
     "0 0 L,LW,15 * *", "UTC", "2030-08-01T00:00:00", 5, ""),
    ("5L: the last Friday of the month, lower case too",
     "0 12 * * 5l", "UTC", "2030-01-01T00:00:00", 3, ""),
    ("7L and 0L: the last Sunday",
     "0 1 * * 7L,0L", "UTC", "2030-01-01T00:00:00", 3, ""),
    ("#: the second Monday and the fifth Friday, named, lower case",
     "0 12 * * mon#2,FRI#5", "UTC", "2030-01-01T00:00:00", 5, ""),
    ("a fifth Monday in February: leap years whose February starts on a Monday",
     "0 0 * 2 1#5", "UTC", "2030-01-01T00:00:00", 2, ""),
    ("the last Sunday of March at 2:30 in Berlin: skipped by the clocks, runs at 3:00",
     "30 2 * 3 7L", "Europe/Berlin", "2030-01-01T00:00:00", 2, ""),
    ("a day and a weekday both restricted: either (the 13th, or the last Friday)",
     "0 0 13 * 5L", "UTC", "2030-01-01T00:00:00", 4, ""),
    ("a day field starting with * and a weekday: both (Debian cron)",
     "0 0 */2 * MON", "UTC", "2030-01-01T00:00:00", 4, ""),
    ("a weekday step from 1 runs to 7 (Sunday)",
     "0 0 * * 1/2", "UTC", "2030-01-01T00:00:00", 5, ""),
    ("weekdays 0-7 and SUN-SAT: every day",
     "0 0 * * 0-7", "UTC", "2030-01-01T00:00:00", 3, ""),
    ("a start with a step: from 5 to the field's end",
     "5/15 * * * *", "UTC", "2030-01-01T00:00:00", 5, ""),
    ("named months in a range with a step, mixed case",
     "0 0 1 jan-Jun/2 *", "UTC", "2030-01-01T00:00:00", 4, ""),
    ("lower-case weekday names across spring forward",
     "0 9 * * mon-fri", "America/New_York", "2030-03-08T00:00:00", 4, ""),
    ("Python's split: \\x1f, NBSP and the ideographic space separate fields",
     "0\x1f0\xa0*\u3000* *", "UTC", "2030-01-01T00:00:00", 2, ""),
    ("Python upper-cases as Unicode does: a dotless i in fri",
     "0 9 * * fr\u0131", "UTC", "2030-01-01T00:00:00", 2, ""),
    ("midnight skipped by Santiago's clocks: a fixed time runs at 1:00",
     "0 0 * * *", "America/Santiago", "2030-09-06T00:00:00", 3, ""),
    ("midnight skipped by Santiago's clocks: a minute step keeps real time",
     "*/30 0 * * *", "America/Santiago", "2030-09-06T00:00:00", 5, ""),
    ("the end of the year 9999: no more",
     "0 0 * * *", "UTC", "9999-12-29T00:00:00", 5, ""),
    ("the end of the year 9999 west of UTC",
     "0 * * * *", "America/New_York", "9999-12-31T20:00:00", 5, ""),
    ("before 1970: times round down (at 8:30 on a Monday, 9:00 is next)",
     "0 9 * * MON", "UTC", "1969-12-29T08:30:00", 3, ""),
    ("an expression of 1024 characters, the most taken",
     "0," * 507 + "0  * * * *", "UTC", "2030-05-05T00:00:00", 2, ""),
    ("1024 characters counted as characters, not UTF-8 bytes (3054 here)",
     "\u3000" * 1015 + "* * * * *", "UTC", "2030-05-05T00:00:00", 2, ""),
]  # fmt: skip

# (expression, zone): refused, and why
REFUSED: list[tuple[str, str]] = [
    ("0 0 * * L", "UTC"), ("0 0 * * FRIL", "UTC"), ("0 0 * * 5L/2", "UTC"),
    ("0 0 15W * *", "UTC"), ("0 0 W * *", "UTC"), ("0 0 1-L * *", "UTC"), ("0 0 LW-5 * *", "UTC"),
    ("0 0 * * 1#6", "UTC"), ("0 0 * * 1#0", "UTC"), ("0 0 * * 1#", "UTC"), ("0 0 * * 8#1", "UTC"),
    ("0 0 1#1 * *", "UTC"), ("0 0 * JAN#1 *", "UTC"), ("0 L * * *", "UTC"),
    ("0 0 * * MON-SUN", "UTC"), ("0 0 * * 5-1", "UTC"), ("0 0 * * monday", "UTC"),
    ("0 0 * * MON/TUE", "UTC"), ("*/0 * * * *", "UTC"), ("1,,2 * * * *", "UTC"),
    ("0 0 ? * *", "UTC"), ("0 0 * * ?", "UTC"), ("H 0 * * *", "UTC"),
    ("60 * * * *", "UTC"), ("0 24 * * *", "UTC"), ("0 0 0 * *", "UTC"), ("0 0 32 * *", "UTC"),
    ("0 0 * 13 *", "UTC"), ("0 0 * 0 *", "UTC"), ("0 0 * * 8", "UTC"),
    ("-1 * * * *", "UTC"), ("+1 * * * *", "UTC"), ("1.0 * * * *", "UTC"), ("0x1 * * * *", "UTC"),
    ("\u0663 * * * *", "UTC"), ("\uff11 * * * *", "UTC"),
    ("0 0 30 2 *", "UTC"), ("0 0 31 4,6 *", "UTC"), ("0 0 LW * */7", "Europe/Berlin"),
    ("@daily", "UTC"), ("* * * *", "UTC"), ("* * * * * *", "UTC"), (" ", "UTC"),
    ("0\ufeff0 * * *", "UTC"), ("1" * 5000 + " * * * *", "UTC"), ("0 0 * * " + "2" * 4400, "UTC"),
    ("*/" + "1" * 4301 + " * * * *", "UTC"), ("0" * 4301 + "5 * * * *", "UTC"),
    ("1-" + "1" * 4301 + " * * * *", "UTC"), ("0 0 * * 1#" + "0" * 4301 + "1", "UTC"),
    ("0," * 508 + "0 * * * *", "UTC"), ("1" * 1000 + " * * * *", "UTC"),
    ("\U0001f600" * 600 + " * * * *", "UTC"),
]  # fmt: skip


# time zone names a new schedule may give: any glue may refill its cron times, so every glue
# takes exactly those the Python client takes (ICU's case-blind and extra names, cleaned paths)
ZONES: list[str] = [
    "UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+5", "Asia/Calcutta", "US/Eastern", "GMT",
    "EST5EDT", "Etc/UTC", "UCT", "Asia/Kolkata",
    "utc", "europe/berlin", "America/new_york", "etc/gmt+5", "SystemV/AST4",
    "Canada/East-Saskatchewan", "US/Pacific-New", "Europe//Berlin", "Europe/./Berlin", "./UTC",
    "Europe/Berlin/", "/UTC", "/usr/share/zoneinfo/UTC", "../zoneinfo/UTC", "Europe/../UTC",
    "posix/UTC", "right/Europe/Berlin", "localtime", "posixrules", "Factory", "Local", "zone.tab",
    "tzdata.zi", "Europe", "", "Etc/" + "X" * 61,
]  # fmt: skip


def _refusal(expr: str, zone: str) -> str:
    """Why the Python client refuses ``expr`` for a schedule in ``zone``."""
    try:
        recurrence.cron_expression(expr, recurrence.time_zone(zone))
    except InvalidArgument as exc:
        if exc.message.endswith(" never fires"):
            return "never fires"
        if exc.message.startswith("must have 5 fields"):
            return "must have 5 fields"
        return exc.message.removeprefix(f"invalid cron expression {expr!r}: ")
    raise AssertionError(f"{expr!r} is taken")


def build() -> list[dict[str, Any]]:
    """Every case with the times the Python client computes, then every refusal with its
    reason."""
    out: list[dict[str, Any]] = []
    for note, expr, zone, after, count, end in CASES:
        after_ms, end_ms = _ms(after), _ms(end) if end else 0
        times = recurrence.cron_times(
            expr, recurrence.time_zone(zone), after_ms, count, end_ms or None
        )
        out.append({
            "note": note, "cron": expr, "tz": zone, "after_ms": after_ms, "count": count,
            "end_ms": end_ms, "times": times,
        })  # fmt: skip
    out += [{"cron": e, "tz": z, "error": _refusal(e, z)} for e, z in REFUSED]
    return out


def time_zones() -> dict[str, list[str]]:
    """Which of :data:`ZONES` the Python client takes for a new schedule, and which it refuses."""
    out: dict[str, list[str]] = {"accepted": [], "refused": []}
    for zone in ZONES:
        try:
            recurrence.time_zone(zone)
        except InvalidArgument:
            out["refused"].append(zone)
        else:
            out["accepted"].append(zone)
    return out


def dumps_zones() -> str:
    """:func:`time_zones` as JSON, one name per line."""
    return json.dumps(time_zones(), indent=1) + "\n"


def dumps(cases: list[dict[str, Any]]) -> str:
    """The cases as JSON, one per line."""
    return "[\n" + ",\n".join(f"  {json.dumps(c)}" for c in cases) + "\n]\n"


def write(path: Path = CRON_TIMES_FILE) -> None:
    """Write the cron-time vectors and the time zone vectors (next to them)."""
    path.write_text(dumps(build()), encoding="utf-8")
    path.with_name(TIME_ZONES_FILE.name).write_text(dumps_zones(), encoding="utf-8")
