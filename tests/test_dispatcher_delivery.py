"""One delivery's pieces without I/O: the request body, the message id, reading the answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from prometheus_client import CollectorRegistry

from redisched.models import Job, JobState
from redisched.push.delivery import Verdict, classify, message_id, payload, retry_after
from redisched.push.dispatch_metrics import Outcome, PrometheusDispatchMetrics

NOW = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def job(body: bytes, version: int = 3) -> Job:
    return Job(
        topic="emails", id="need_some_help_email_42", body=body, state=JobState.RESERVED,
        run_at=NOW, priority=0, ttr=60.0, attempts=2, max_attempts=5, version=version,
        token="123", reserved_until=None, last_error=None,
    )  # fmt: skip


def test_payload_carries_the_job_with_its_body_as_json() -> None:
    sent = json.loads(payload(job(b'{"to": "a@example.com"}')))
    assert sent == {
        "topic": "emails", "id": "need_some_help_email_42", "body": {"to": "a@example.com"},
        "attempt": 2, "version": 3, "token": "123", "run_at": "2030-01-02T03:04:05.678000Z",
    }  # fmt: skip
    assert json.loads(payload(job(b"\x00\xff")))["body"] == {"$base64": "AP8="}
    assert json.loads(payload(job(b"plain text")))["body"] == "plain text"
    deep = b"[" * 5000
    assert json.loads(payload(job(deep)))["body"] == deep.decode()


def test_message_id_is_stable_per_version_and_header_safe() -> None:
    first = message_id(job(b"", version=1))
    assert first == message_id(job(b"other body", version=1))  # the same across attempts
    assert first != message_id(job(b"", version=2))
    assert first.startswith("msg_") and first.isascii() and " " not in first
    # the id's form is fixed: a receiver that drops duplicates by it must see the same id for
    # a retry sent by a newer redisched
    assert first == "msg_604361a9720ad5d6964d72943b260206"


@pytest.mark.parametrize(
    ("status", "headers", "verdict", "delay"),
    [
        (200, {}, Verdict.DONE, None),
        (204, {}, Verdict.DONE, None),
        (202, {}, Verdict.ACCEPTED, None),
        (429, {"Retry-After": "7"}, Verdict.THROTTLED, 7.0),
        (503, {"Retry-After": "0"}, Verdict.THROTTLED, 0.0),
        (429, {}, Verdict.FAILED, None),
        (503, {"Retry-After": "soon"}, Verdict.FAILED, None),
        (500, {"Retry-After": "7"}, Verdict.FAILED, None),
        (404, {}, Verdict.FAILED, None),
        (301, {"Location": "http://10.0.0.1/"}, Verdict.FAILED, None),
    ],
)
def test_classify(status: int, headers: dict[str, str], verdict: Verdict, delay: float) -> None:
    result = classify(status, headers, "  some\n error  ", 0.01)
    assert (result.verdict, result.retry_after, result.status) == (verdict, delay, status)
    if verdict is Verdict.FAILED:
        assert result.reason.startswith(f"webhook answered HTTP {status}")


def test_retry_after_reads_http_dates() -> None:
    when = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert retry_after(format_datetime(when, usegmt=True), now=when.timestamp() - 30) == 30.0
    assert retry_after(format_datetime(when, usegmt=True), now=when.timestamp() + 5) == 0.0
    assert retry_after(None) is None
    assert retry_after("-3") is None
    assert retry_after("\u00b2") is None and retry_after("\u0665") is None  # other digits


def test_prometheus_metrics_expose_outcomes_latency_and_lag() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusDispatchMetrics(registry)
    metrics.delivery("emails", Outcome.ACKED, 0.02)
    metrics.delivery("emails", Outcome.DEAD, 0.5)
    metrics.lag("emails", 0.003)
    value = registry.get_sample_value
    assert value("redisched_webhook_deliveries_total", {"topic": "emails", "outcome": "acked"}) == 1
    assert value("redisched_webhook_latency_seconds_count", {"topic": "emails"}) == 2
    assert value("redisched_dispatch_lag_seconds_bucket", {"topic": "emails", "le": "0.005"}) == 1
