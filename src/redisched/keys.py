"""The only place redisched builds Redis key names (docs/design.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidArgument

DEFAULT_PREFIX = "redisched"
MAX_TOPIC_LENGTH = 200


def validate_topic(topic: object, argument: str = "topic") -> str:
    """Return ``topic`` if it is a valid topic name, else raise InvalidArgument.

    A topic is 1-200 characters with no braces (they would change the hash tag) and no
    control characters.
    """
    if not isinstance(topic, str):
        raise InvalidArgument(argument, f"must be a string, not {type(topic).__name__}")
    if not 1 <= len(topic) <= MAX_TOPIC_LENGTH:
        raise InvalidArgument(argument, f"must be 1 to {MAX_TOPIC_LENGTH} characters long")
    if "{" in topic or "}" in topic:
        raise InvalidArgument(argument, "must not contain '{' or '}'")
    if any(ord(c) < 32 or ord(c) == 127 for c in topic):
        raise InvalidArgument(argument, "must not contain control characters")
    return topic


@dataclass(frozen=True, slots=True)
class TopicKeys:
    """The keys of one topic, all under one hash tag so a script's keys share a cluster slot."""

    prefix: str
    topic: str

    def name(self, part: str) -> str:
        """The full name of one of the topic's keys, e.g. ``redisched:{emails}:jobs``."""
        return f"{self.prefix}:{{{self.topic}}}:{part}"

    @property
    def wake_channel(self) -> str:
        """The Pub/Sub channel on which scripts announce newly due work."""
        return self.name("wake")


def topics_key(prefix: str) -> str:
    """The set of every topic name under ``prefix`` (written by the glue, not the scripts)."""
    return f"{prefix}:topics"


def wake_pattern(prefix: str) -> str:
    """A PSUBSCRIBE pattern matching every topic's wake channel under ``prefix``."""
    return f"{prefix}:{{*}}:wake"
