"""Moved to :mod:`redisched.limits` (the limits hold for every consumer, not only pushes)."""

from ..limits import Grant, ack_and_grant, limit_step, parse_grant

__all__ = ["Grant", "ack_and_grant", "limit_step", "parse_grant"]
