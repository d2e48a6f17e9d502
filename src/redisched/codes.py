"""The integer status codes the scripts reply with, mirrored once from their Lua constants.

Each script names its codes in a ``local NAME, ... = 1, ...`` line at its top; a contract test
(tests/test_scripts_contract.py) checks that every such line matches the enum here.
"""

from __future__ import annotations

import enum


class PutCode(enum.IntEnum):
    """put.lua: one per job."""

    CREATED = 1
    EXISTS = 2
    REPLACED = 3
    PENDING = 4
    VERSION_CONFLICT = 5
    PARTITIONED = 6


class DeleteCode(enum.IntEnum):
    """delete.lua."""

    NOT_FOUND = 0
    DELETED = 1
    VERSION_CONFLICT = 5
    PARTITIONED = 6


class AckCode(enum.IntEnum):
    """ack.lua: one per (id, token) pair."""

    STALE = 0
    ACKED = 1


class ReleaseCode(enum.IntEnum):
    """release.lua."""

    STALE = 0
    RELEASED = 1
    WENT_DEAD = 2
    REPLACED = 3


class TouchCode(enum.IntEnum):
    """touch.lua."""

    STALE = 0
    TOUCHED = 1


class BuryCode(enum.IntEnum):
    """bury.lua."""

    STALE = 0
    BURIED = 1
    REPLACED = 3


class RescheduleCode(enum.IntEnum):
    """reschedule.lua."""

    NOT_FOUND = 0
    REPLACED = 3
    PENDING = 4
    NOT_IN_STATE = 6


class ScheduleCode(enum.IntEnum):
    """schedule.lua."""

    CREATED = 1
    REPLACED = 2
    VERSION_CONFLICT = 5
    ENDED = 6
    TIMES_TOO_EARLY = 7
    PARTITIONED = 8


class UnscheduleCode(enum.IntEnum):
    """unschedule.lua."""

    NOT_FOUND = 0
    DELETED = 1
    VERSION_CONFLICT = 5
    PARTITIONED = 6


class RefillCode(enum.IntEnum):
    """refill.lua."""

    STALE = 0
    REFILLED = 1


BY_SCRIPT: dict[str, type[enum.IntEnum]] = {
    "put": PutCode,
    "delete": DeleteCode,
    "ack": AckCode,
    "release": ReleaseCode,
    "touch": TouchCode,
    "bury": BuryCode,
    "reschedule": RescheduleCode,
    "schedule": ScheduleCode,
    "unschedule": UnscheduleCode,
    "refill": RefillCode,
}
"""The scripts whose replies carry a status code, and the enum of each."""
