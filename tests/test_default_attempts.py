"""The default max_attempts: a failing job dead-letters after 25 attempts, not never."""

from __future__ import annotations

import re
from importlib import resources

import redisched
from redisched import DEFAULT_MAX_ATTEMPTS


def test_python_mirrors_the_scripts_default() -> None:
    for script in ("put.lua", "schedule.lua"):  # a schedule's occurrences: the same default
        text = (resources.files("redisched") / "lua" / script).read_text(encoding="utf-8")
        found = re.search(r"DEFAULT_TTR_MS, DEFAULT_MAX_ATTEMPTS = \d+, (\d+)", text)
        assert found is not None and int(found.group(1)) == DEFAULT_MAX_ATTEMPTS == 25, script


def test_a_job_without_max_attempts_goes_dead_after_the_default(
    client: redisched.Client, topic: str
) -> None:
    client.put(topic, "j", b"x")
    job = client.get(topic, "j")
    assert job is not None and job.max_attempts == DEFAULT_MAX_ATTEMPTS
    states = []
    for n in range(DEFAULT_MAX_ATTEMPTS):
        leased = client.reserve(topic)
        assert leased is not None, n
        states.append(client.release(leased, reason=f"failure {n + 1}"))
    assert states[:-1] == ["ready"] * (DEFAULT_MAX_ATTEMPTS - 1) and states[-1] == "dead"
    dead = client.get(topic, "j")
    assert dead is not None and dead.attempts == 25 and dead.last_error == "failure 25"


def test_the_topic_default_and_the_put_still_win(client: redisched.Client, topic: str) -> None:
    client.put(topic, "a", b"x", max_attempts=3)
    client.configure(topic, max_attempts=7)
    client.put(topic, "b", b"x")
    assert [client.get(topic, i).max_attempts for i in "ab"] == [3, 7]  # type: ignore[union-attr]
