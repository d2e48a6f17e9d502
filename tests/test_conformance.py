"""The conformance vectors (conformance/): replayed by the Python, Node.js and Go runners.

The vectors are the spec of the scripts for any language. The Python runner replays them here
on both session redis-servers; the Node and Go runners run as subprocesses against the same
servers and must pass every vector, compute the cron times of conformance/cron_times.json
(when a cron schedule fires, which the glue hands to the scripts) as the Python client does, and
take and refuse the webhooks of conformance/webhooks.json as the Python service does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conformance import cron_vectors, webhook_vectors
from conformance.generate import build
from conformance.runner import VECTORS_DIR, load_vectors, mismatches, run_vector

from redisched import scripts
from tests.glueproc import GO_DIR, NODE_DIR, env, require_node

VECTORS = load_vectors()
NAMES = [v["name"] for v in VECTORS]


def _steps(script: str) -> Iterator[dict[str, Any]]:
    for vector in VECTORS:
        yield from (step for step in vector["steps"] if step.get("call") == script)


def test_vectors_call_every_script_with_the_header_arguments() -> None:
    called = {step["call"] for vector in VECTORS for step in vector["steps"] if "call" in step}
    missing = sorted(set(scripts.load_all()) - called)
    assert not missing, f"no vector calls {missing}: add a scenario to conformance/generate.py"
    for vector in VECTORS:
        for step in vector["steps"]:
            if "call" in step:
                header = [p.name for p in scripts.get(step["call"]).argv]
                assert list(step["args"]) == header, (vector["name"], step["note"])


@pytest.mark.parametrize(
    ("script", "codes"),
    [
        ("put", {1, 2, 3, 4, 5, 6}),
        ("delete", {0, 1, 5, 6}),
        ("release", {0, 1, 2, 3}),
        ("bury", {0, 1, 3}),
        ("touch", {0, 1}),
        ("ack", {0, 1}),
    ],
)
def test_vectors_cover_every_status_code(script: str, codes: set[int]) -> None:
    seen: set[int] = set()
    for step in _steps(script):
        reply = step["reply"]
        if isinstance(reply, list):
            # put and ack reply per job (a put's read back adds the job after its one pair);
            # the others reply [status, ...].
            pairs = reply[:2] if script == "put" and len(reply) % 2 else reply
            seen.update(pairs[::2] if script == "put" else reply if script == "ack" else reply[:1])
    assert seen == codes


def test_vectors_cover_errors_nil_and_tokens() -> None:
    replies = [step["reply"] for vector in VECTORS for step in vector["steps"]]
    assert any(isinstance(r, dict) and r["error"].startswith("ERR ") for r in replies)
    assert None in replies
    leased = [r for r in (s["reply"] for s in _steps("reserve")) if len(r) > 3]
    assert len(leased) >= 10


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_python_runner_passes_vector(
    raw_redis: redis.Redis, topic: str, vector: dict[str, Any]
) -> None:
    assert mismatches(vector, run_vector(raw_redis, vector, topic)) == []


def test_generator_output_is_committed(raw_redis: redis.Redis) -> None:
    # A changed script or scenario needs `python -m conformance.generate` and a reviewed diff.
    assert build(raw_redis) == {v["name"]: v for v in VECTORS}


def test_cron_time_vectors_are_committed() -> None:
    # A changed case or recurrence.py needs `python -m conformance.generate` and a reviewed diff.
    committed = cron_vectors.CRON_TIMES_FILE.read_text("utf-8")
    assert committed == cron_vectors.dumps(cron_vectors.build())
    assert all(case.get("times") or case.get("error") for case in cron_vectors.build())
    assert cron_vectors.TIME_ZONES_FILE.read_text("utf-8") == cron_vectors.dumps_zones()


def test_webhook_vectors_are_committed() -> None:
    # A changed case or webhook rule needs `python -m conformance.generate` and a reviewed diff.
    cases = webhook_vectors.build()
    assert webhook_vectors.WEBHOOKS_FILE.read_text("utf-8") == webhook_vectors.dumps(cases)
    fields = {case.get("field") for case in cases}
    assert {None, "webhook.url", "webhook.secrets", "webhook.secrets[0]"} <= fields
    assert {"webhook.secrets[1]", "webhook.timeout"} <= fields


def _run(command: list[str], cwd: Path, redis_url: str) -> str:
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is not installed (.ci/run installs it)")
    extra = {"REDISCHED_TEST_REDIS_URL": redis_url, "REDISCHED_VECTORS_DIR": str(VECTORS_DIR)}
    proc = subprocess.run(
        command, cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=240
    )
    output = proc.stdout + proc.stderr
    # the failing subtests first (a TAP "not ok" block), then the end: the end alone hid which
    # of 120 Node tests failed
    failed = [part for part in output.split("# Subtest") if "not ok" in part]
    assert proc.returncode == 0, "".join(failed)[-6000:] + output[-2000:]
    return output


def test_node_runner_passes_every_vector(redis_url: str) -> None:
    # Also runs test/scheduler.test.js, the glue's typed methods on a fixed clock.
    require_node()
    output = _run(["node", "--test", "--test-reporter=tap", "test/"], NODE_DIR, redis_url)
    passed = set(re.findall(r"^\s*ok \d+ - (\S+)$", output, re.MULTILINE))
    assert set(NAMES) <= passed, (sorted(set(NAMES) - passed), _failed_tap_blocks(output))
    assert re.search(r"^\s*ok \d+ - cron times$", output, re.MULTILINE)
    assert re.search(r"^\s*ok \d+ - cron refusals$", output, re.MULTILINE)
    assert re.search(r"^\s*ok \d+ - time zones$", output, re.MULTILINE)
    assert re.search(r"^\s*ok \d+ - webhooks$", output, re.MULTILINE)
    assert re.search(r"^# fail 0$", output, re.MULTILINE), _failed_tap_blocks(output)


def _failed_tap_blocks(output: str) -> str:
    """The TAP report of each failed Node test, so a failure in CI says which and why."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("not ok ")]
    return "\n".join("\n".join(lines[i : i + 40]) for i in starts) or output[-4000:]


def test_go_runner_passes_every_vector(redis_url: str) -> None:
    # Also runs TestClientLifecycle, the glue's typed methods on a fixed clock.
    output = _run(["go", "test", "-count=1", "-v", "./..."], GO_DIR, redis_url)
    passed = set(re.findall(r"--- PASS: TestVectors/(\S+) ", output))
    assert set(NAMES) <= passed, sorted(set(NAMES) - passed)
    assert "--- PASS: TestHeaders" in output and "--- PASS: TestClientLifecycle" in output
    assert "--- PASS: TestCronTimeVectors" in output
    assert "--- PASS: TestTimeZoneVectors" in output
    assert "--- PASS: TestWebhookVectors" in output
    assert "--- PASS: TestCronScheduleRefill" in output
