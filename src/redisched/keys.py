"""The only place redisched builds Redis key names (docs/design.md section 3)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import InvalidArgument

_CONTROL = re.compile("[\x00-\x1f\x7f]")
DEFAULT_PREFIX = "redisched"
MAX_TOPIC_LENGTH = 200


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` is not a valid topic name, or None when it is.

    A topic is 1-200 characters of valid Unicode with no braces (they would change the hash
    tag) and no control characters (C0 and DEL).
    """
    if not 1 <= len(topic) <= MAX_TOPIC_LENGTH:
        return f"must be 1 to {MAX_TOPIC_LENGTH} characters long"
    if "{" in topic or "}" in topic:
        return "must not contain '{' or '}'"
    if _CONTROL.search(topic):
        return "must not contain control characters"
    if not topic.isascii():
        try:
            topic.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (no lone surrogates)"
    return None


def validate_topic(topic: object, argument: str = "topic") -> str:
    """Return ``topic`` if it is a valid topic name (see :func:`topic_problem`), else raise
    InvalidArgument."""
    if not isinstance(topic, str):
        raise InvalidArgument(argument, f"must be a string, not {type(topic).__name__}")
    problem = topic_problem(topic)
    if problem is not None:
        raise InvalidArgument(argument, problem)
    return topic


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The members of the topics set, split into usable names and ones no call accepts.

    A bad name can only get there by a write outside redisched (``redis-cli SADD``, an old
    or foreign client); readers skip it instead of failing on it.

    Attributes:
        valid: the valid names, sorted.
        invalid: the other members, as stored, sorted.
    """

    valid: list[str]
    invalid: list[bytes]


def split_topic_names(members: Iterable[bytes | str]) -> TopicNames:
    """Sort the members of the topics set into valid and invalid names."""
    valid: list[str] = []
    invalid: list[bytes] = []
    for member in members:
        raw = member.encode("utf-8", "surrogateescape") if isinstance(member, str) else member
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            invalid.append(raw)
            continue
        if topic_problem(name) is None:
            valid.append(name)
        else:
            invalid.append(raw)
    return TopicNames(sorted(valid), sorted(invalid))


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


def deleted_topics_key(prefix: str) -> str:
    """The sorted set of topics deleted lately under ``prefix`` (scored by the deletion's epoch
    ms), which the requeue sweep watches: a put that overtook the delete makes the sweep add
    its topic back to the topics set (see :mod:`redisched.registration`)."""
    return f"{prefix}:deleted_topics"


def wake_pattern(prefix: str) -> str:
    """A PSUBSCRIBE pattern matching every topic's wake channel under ``prefix``."""
    return f"{prefix}:{{*}}:wake"


def partitions_key(prefix: str) -> str:
    """The hash of declared partition counts under ``prefix`` (topic -> N)."""
    return f"{prefix}:partitions"


PARTITION_SEPARATOR = "~p"
"""Between a partitioned topic's name and a partition's index: ``orders~p3``."""


def partition_name(topic: str, index: int) -> str:
    """The topic name of partition ``index`` of ``topic``."""
    return f"{topic}{PARTITION_SEPARATOR}{index}"


def partition_owner(topic: str, counts: Mapping[str, int]) -> tuple[str, int] | None:
    """``(the partitioned topic, its count)`` when ``topic`` is one of its partitions
    (``counts``: every partitioned topic's count, as the partitions hash holds them), else
    None."""
    logical, separator, index = topic.rpartition(PARTITION_SEPARATOR)
    count = counts.get(logical) if separator and index.isascii() and index.isdigit() else None
    if count is None or int(index) >= count or partition_name(logical, int(index)) != topic:
        return None  # not a partition, one past the count, or "p01"
    return logical, count
