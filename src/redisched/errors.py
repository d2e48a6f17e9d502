"""The exceptions redisched raises, all under one root.

```
RedischedError
 ├── InvalidArgument      a caller passed a bad value; nothing reached Redis
 │    └── TopicPartitioned  a call named a partitioned topic, not a partition
 ├── StaleReservation     the token is not the job's current reservation
 ├── VersionConflict      if_version did not match the stored version
 ├── TopicBusy            delete_topic on a topic with running jobs, without force
 ├── NotReplicated        a durable put was not acknowledged by a replica in time
 ├── ClientClosed         a call on a Client or AsyncClient after its close()
 └── BackendError         Redis failed or could not be reached
```
"""

from __future__ import annotations


class RedischedError(Exception):
    """Root of every error redisched raises."""


class InvalidArgument(RedischedError, ValueError):
    """A caller passed a bad value. Raised before anything reaches Redis.

    Attributes:
        argument: the name of the offending argument (``"ttr"``, ``"id"``...).
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.message = message


class TopicPartitioned(InvalidArgument):
    """A call named a partitioned topic itself, whose jobs and schedules live in their ids'
    partitions (docs/design.md section 11): Redis refused a put or schedule, and nothing
    changed; a delete, get, get_schedule, history, reserve, lease or pull found nothing there
    (a job or schedule the topic itself holds, made before it was partitioned, is still found
    where it is); stats, timeline and the listings of jobs, finished jobs, events and
    schedules would show the topic's own name alone.
    :class:`~redisched.partitions.PartitionedTopic`, the HTTP API, the CLI and the AMQP bridge
    route by id and add the partitions up; they meet this only when another process
    partitioned the topic a moment ago, and go on in the id's partition.

    Attributes:
        topic: the partitioned topic.
        count: how many partitions it is spread over.
    """

    def __init__(self, topic: str, count: int) -> None:
        super().__init__(
            "topic",
            f"topic {topic!r} is spread over {count} partitions: each job lives in its id's "
            f"partition (redisched.partitions.PartitionedTopic(client, {topic!r}, {count}) "
            "routes it)",
        )
        self.topic = topic
        self.count = count


class StaleReservation(RedischedError):
    """The token is not the job's current reservation (requeued, re-reserved, deleted, acked)."""

    def __init__(self, topic: str, id: str) -> None:
        super().__init__(
            f"job {id!r} in topic {topic!r} is not reserved under this token (a wrong token,"
            " or it is no longer reserved: it timed out and was requeued, was deleted, or was"
            " already acked)"
        )
        self.topic = topic
        self.id = id


class VersionConflict(RedischedError):
    """A conditional put or delete found another version than the one expected.

    Attributes:
        current_version: the job's (or schedule's) version now (0 when it does not exist).
    """

    def __init__(
        self, topic: str, id: str, expected: int, current_version: int, what: str = "job"
    ) -> None:
        super().__init__(
            f"{what} {id!r} in topic {topic!r} is at version {current_version}, not {expected}"
        )
        self.topic = topic
        self.id = id
        self.expected = expected
        self.current_version = current_version


class TopicBusy(RedischedError):
    """``delete_topic`` was refused: the topic has reserved (running) jobs and no ``force``.

    Attributes:
        reserved: how many jobs were reserved.
    """

    def __init__(self, topic: str, reserved: int) -> None:
        super().__init__(
            f"topic {topic!r} has {reserved} reserved job(s): expire them, wait for them to end,"
            " or delete with force"
        )
        self.topic = topic
        self.reserved = reserved


class NotReplicated(RedischedError):
    """A durable write was stored on the primary but no replica acknowledged it in time."""


class ClientClosed(RedischedError):
    """A call on a Client or AsyncClient after its ``close()`` (or the end of its ``with``).

    redis-py would open new connections for it, behind the back of whoever closed the client
    (its pool and kept connections leak past their owner's end); make a new client instead.
    Nothing was sent, unless the call was already in flight when close() came: then it may
    have run, and its connection is closed as it ends.
    """


class BackendError(RedischedError):
    """Redis answered with an error or could not be reached."""
