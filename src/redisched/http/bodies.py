"""How jobs and topics are shown by the HTTP API (bodies follow :mod:`redisched.json_body`)."""

from __future__ import annotations

from ..json_body import MARKER, to_json, to_stored
from ..models import Job, JobState, TopicStats
from ..topic_config import TopicConfig
from . import schemas

__all__ = ["MARKER", "job_out", "to_json", "to_stored", "topic_out"]

_CONFIG_FIELDS = tuple(n for n in schemas.TopicConfigOut.__struct_fields__ if n != "webhook")
"""The settings shown as :class:`~redisched.topic_config.TopicConfig` holds them."""


def job_out(job: Job, *, handed_out: bool = False) -> schemas.JobOut:
    """A job as the API shows it; ``handed_out`` adds the token of a fresh reservation."""
    out = schemas.JobOut(
        topic=job.topic,
        id=job.id,
        body=to_json(job.body),
        state=job.state,
        run_at=job.run_at,
        priority=job.priority,
        ttr=job.ttr,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        version=job.version,
        last_error=job.last_error,
    )
    if handed_out and job.token is not None:
        out.token = job.token
        if job.reserved_until is not None:
            out.reserved_until = job.reserved_until
    return out


def topic_out(stats: TopicStats, config: TopicConfig) -> schemas.TopicOut:
    """A topic's counts, totals and settings as the API shows them."""
    hook = config.webhook
    return schemas.TopicOut(
        topic=stats.topic,
        paused=stats.paused,
        counts=schemas.Counts(stats.scheduled, stats.ready, stats.reserved, stats.dead),
        next_due=stats.next_due,
        totals=schemas.Totals(
            put=stats.total_put,
            reserved=stats.total_reserved,
            acked=stats.total_acked,
            released=stats.total_released,
            requeued=stats.total_requeued,
            dead=stats.total_dead,
            pulled=stats.total_pulled,
        ),
        config=schemas.TopicConfigOut(
            webhook=None
            if hook is None
            else schemas.WebhookOut(hook.url, hook.timeout, len(hook.secrets)),
            **{name: getattr(config, name) for name in _CONFIG_FIELDS},
        ),
    )


STATE_NAMES = tuple(s.value for s in JobState)
