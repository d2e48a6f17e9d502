"""When a schedule runs: cron expressions and intervals, time zones and DST (no I/O).

The scripts never see a time zone (DESIGN.md section 9). For ``every`` they compute the next
occurrence themselves from the interval and an anchor; for ``cron`` the glue hands them a short
list of upcoming UTC times computed here, and refills it when it runs low.

DST follows the Debian cron convention, which `cronsim` implements: a job whose minute and hour
fields are fixed numbers (``30 2 * * *``) runs once when a local time repeats (clocks go back)
and right after the jump when its local time does not exist (clocks go forward); a job with a
wildcard or a step in the minute or hour field (``*/15 * * * *``, ``0 * * * *``) keeps its real
time interval through both transitions, so it runs in both copies of a repeated hour.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import InvalidArgument

MAX_EVERY_MS = 100 * 365 * 86_400_000
UPCOMING = 48
"""How many cron times a schedule record holds."""
REFILL_BELOW = 16
"""The scripts ask for a refill when fewer cron times than this are left (``lua/*.lua``)."""
_LOOKAHEAD_YEARS = 50
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
"""A cron expression's fields, as cronsim names them in its refusals (``Bad minute``)."""
_LONG = re.compile(r"\d{4301}")


NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
"""Files of the tz database that are no zone: the host's own (``localtime``, whichever it is),
the POSIX default rules, the placeholder; with the ``posix/`` and ``right/`` copy trees they
are refused, as the Node glue (Intl) and the Go glue do: a schedule in one of them would
have its cron times computed differently, or not at all, by another glue (the refill)."""
_COPY_TREES = ("posix/", "right/")


def time_zone(value: object, argument: str = "tz") -> ZoneInfo:
    """An IANA time zone name (``Europe/Berlin``, ``UTC``) as a ZoneInfo, for a new schedule:
    a zone every glue knows (none of :data:`NOT_ZONES`)."""
    if isinstance(value, str) and (value in NOT_ZONES or value.startswith(_COPY_TREES)):
        raise InvalidArgument(argument, f"unknown time zone {value!r}")
    return stored_zone(value, argument)


def stored_zone(value: object, argument: str = "tz") -> ZoneInfo:
    """The ZoneInfo of a schedule's stored time zone name: as :func:`time_zone`, but a name
    refused for new schedules since (``localtime``...) still reads, so that a schedule an
    older version stored goes on getting its cron times."""
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"must be a time zone name, not {type(value).__name__}")
    if not value or len(value) > 64 or value.startswith("/") or ".." in value:
        raise InvalidArgument(argument, f"unknown time zone {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(argument, f"unknown time zone {value!r}") from None


MAX_CRON_LENGTH = 1024
"""Characters of a cron expression: every minute listed one by one (``0,1,...,59``) takes 170,
and every value of all five fields ~400; a 200 KB one was stored with its schedule."""


def cron_expression(value: object, tz: ZoneInfo, argument: str = "cron") -> str:
    """A 5-field crontab expression (``*/n``, ranges, lists, day and month names) that fires."""
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"must be a string, not {type(value).__name__}")
    if len(value) > MAX_CRON_LENGTH:
        raise InvalidArgument(argument, f"must be at most {MAX_CRON_LENGTH} characters")
    expr = " ".join(value.split())
    if len(expr.split(" ")) != 5:
        raise InvalidArgument(argument, "must have 5 fields: minute hour day month weekday")
    try:
        it = CronSim(expr, datetime(2000, 1, 1, tzinfo=tz))
        next(it)
    except CronSimError as exc:
        raise InvalidArgument(argument, f"invalid cron expression {value!r}: {exc}") from None
    except ValueError:  # a number longer than int() reads (4,300 digits): out of any range
        field = next(n for n, f in zip(_FIELDS, expr.split(" "), strict=True) if _LONG.search(f))
        raise InvalidArgument(argument, f"invalid cron expression {value!r}: Bad {field}") from None
    except StopIteration:
        raise InvalidArgument(argument, f"cron expression {value!r} never fires") from None
    return expr


def every_ms(value: object, argument: str = "every") -> int:
    """An interval of whole seconds (a number or a timedelta), at least 1 s, in ms."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # an int too large for a float (float(10**400) raises OverflowError) is out of range
        huge = isinstance(value, int) and abs(value) > MAX_EVERY_MS
        seconds = (MAX_EVERY_MS if value > 0 else -MAX_EVERY_MS) if huge else float(value)
    else:
        raise InvalidArgument(
            argument, f"must be seconds or a timedelta, not {type(value).__name__}"
        )
    if not math.isfinite(seconds):
        raise InvalidArgument(argument, "must be a finite number of seconds")
    if seconds < 1:
        raise InvalidArgument(argument, "must be at least 1 second")
    if seconds != int(seconds):
        raise InvalidArgument(argument, "must be a whole number of seconds")
    ms = int(seconds) * 1000
    if ms > MAX_EVERY_MS:
        raise InvalidArgument(argument, f"must be at most {MAX_EVERY_MS // 1000} seconds")
    return ms


def ceil_second(ms: int) -> int:
    """Round epoch milliseconds up to a whole second (occurrence ids name whole seconds)."""
    return -(-ms // 1000) * 1000


def cron_times(expr: str, tz: ZoneInfo, after_ms: int, count: int, end_ms: int | None) -> list[int]:
    """Up to ``count`` UTC epoch ms at which ``expr`` fires in ``tz``, all after ``after_ms``.

    Stops at ``end_ms`` (inclusive), at the end of the year 9999 (the last time a job can
    have) and looks no further than 50 years ahead.
    """
    horizon = after_ms + _LOOKAHEAD_YEARS * 365 * 86_400_000
    out: list[int] = []
    try:
        # (the local time of a moment late on 9999-12-31 east of UTC is past datetime's range)
        start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(tz)
        for moment in CronSim(expr, start):
            ms = round(moment.timestamp() * 1000)
            if ms <= after_ms:
                continue
            if (end_ms is not None and ms > end_ms) or ms > horizon:
                break
            out.append(ms)
            if len(out) >= count:
                break
    except (CronSimError, StopIteration, OverflowError):  # (past the year 9999: no more)
        pass
    except ValueError:  # a number past int()'s digits, in a schedule another glue stored
        pass
    return out


def occurrence_id(schedule_id: str, at_ms: int) -> str:
    """The id of a schedule's occurrence at ``at_ms``: ``<schedule>@<UTC time>``."""
    moment = datetime.fromtimestamp(at_ms // 1000, tz=UTC)
    return f"{schedule_id}@{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"
