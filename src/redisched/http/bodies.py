"""How jobs and topics are shown by the HTTP API (bodies follow :mod:`redisched.json_body`).

The shapes themselves are :mod:`redisched.shapes`, shared with the CLI.
"""

from __future__ import annotations

from ..json_body import MARKER, to_json, to_stored
from ..models import JobState
from ..shapes import job_out, topic_out

__all__ = ["MARKER", "job_out", "to_json", "to_stored", "topic_out"]

STATE_NAMES = tuple(s.value for s in JobState)
