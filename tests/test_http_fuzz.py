"""Schema-driven fuzzing of a real ``redisched serve`` from its own ``/openapi.json``.

Schemathesis generates requests from the document, valid ones (whose answers must match the
documented status codes, content types and schemas) and invalid ones (wrong types, missing
fields, bad values): no answer may be a 5xx, and every error is the JSON error shape.

Runs are random (not derandomized): the seed is printed, and ``REDISCHED_FUZZ_SEED=<seed>``
replays a run; failing examples are kept in Hypothesis' example database (``.hypothesis/``)
and tried first next time. Hand-written strategies add what a schema does not generate: deep
nesting, duplicate keys, digits of other scripts, percent escapes, and the dashboard's HTML
fragments over stored bodies of any bytes.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import redisched
from tests.test_serve import Served, start_serve, stop_leftover_redis

EXAMPLES = 50
SEED = int(os.environ.get("REDISCHED_FUZZ_SEED") or random.randrange(2**32))


def test_print_the_seed() -> None:
    print(f"fuzz seed: REDISCHED_FUZZ_SEED={SEED}")  # shown with -s, and in a failure's report


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    server = start_serve(data_dir)
    yield server
    server.stop()
    stop_leftover_redis(data_dir)


def _error_shape(response: schemathesis.Response) -> None:
    if response.status_code >= 400:
        error = json.loads(response.content)["error"]
        assert set(error) == {"code", "message", "field"}, response.content


@pytest.mark.timeout(600)  # 50 examples of each of ~20 operations against a live server
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(fuzzed: Served, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks += [status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    calls = 0
    for operation in operations:

        @seed(SEED)
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # shrinking a live server's case is slow
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            body = case.body
            wait = body.get("wait") if isinstance(body, dict) else None
            if isinstance(body, dict) and type(wait) in (int, float) and 0.05 < wait <= 60:
                body["wait"] = 0.05  # long polls are tested elsewhere
            response = case.call_and_validate(base_url=fuzzed.url, checks=checks, timeout=30)
            _error_shape(response)

        try:
            fuzz()
        except Unsatisfiable:  # nothing in this operation can be made invalid (no inputs)
            assert mode is GenerationMode.NEGATIVE
    assert calls >= len(operations) * EXAMPLES // 2


# -- hand-written strategies ---------------------------------------------------------------

OTHER_DIGITS = st.sampled_from("\u00b2\u00b9\u0661\u0662\u06f3\u0967\uff15\U0001d7d8_")
LOOSE_NUMBER = st.text(OTHER_DIGITS | st.sampled_from("0123456789-.e+ "), min_size=1, max_size=6)
TEXT = st.text(max_size=12) | st.sampled_from(["%", "%%32F", "%2F", "a{b}", "\x00", ".."])
DEPTH = st.integers(1, 3000)


def _nested(depth: int, closed: bool, inner: bytes) -> bytes:
    return b"[" * depth + inner + (b"]" * depth if closed else b"")


def _fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip


def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.url, response.text[:300])
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        assert set(response.json()["error"]) == {"code", "message", "field"}


def test_deep_and_duplicate_json_never_gets_a_server_error(fuzzed: Served) -> None:
    with httpx.Client(base_url=fuzzed.url, timeout=30) as http:

        @seed(SEED)
        @given(
            depth=DEPTH, closed=st.booleans(), inner=st.sampled_from([b"", b"1", b'{"a":1,"a":2}']),
            where=st.sampled_from(["body", "envelope", "patch", "reserve"]),
        )  # fmt: skip
        @_fuzz_settings(EXAMPLES)
        def fuzz(depth: int, closed: bool, inner: bytes, where: str) -> None:
            nested = _nested(depth, closed, inner)
            if where == "body":
                reply = http.put("/v1/topics/fz-deep/jobs/j", content=b'{"body": ' + nested + b"}")
            elif where == "envelope":
                reply = http.put("/v1/topics/fz-deep/jobs/j", content=nested)
            elif where == "patch":
                reply = http.patch("/v1/topics/fz-deep", content=b'{"webhook": ' + nested + b"}")
            else:
                reply = http.post("/v1/topics/fz-deep/reserve", content=b'{"count": ' + nested)
            _no_server_error(reply)
            if depth > 512 or not closed:
                assert reply.status_code == 400

        fuzz()


def test_loose_numbers_and_escapes_in_queries_and_paths(fuzzed: Served) -> None:
    with httpx.Client(base_url=fuzzed.url, timeout=30) as http:

        @seed(SEED)
        @given(number=LOOSE_NUMBER, text=TEXT, raw=st.booleans())
        @_fuzz_settings(EXAMPLES)
        def fuzz(number: str, text: str, raw: bool) -> None:
            segment = text if raw else quote(text, safe="")
            for path, params in (
                ("/v1/topics/fz-q/jobs", {"state": "ready", "cursor": number}),
                ("/v1/topics/fz-q/jobs", {"state": "ready", "limit": number}),
                ("/v1/topics/fz-q/timeline", {"width": number, "buckets": number}),
            ):
                reply = http.get(path, params=params)
                _no_server_error(reply)
                if not number.isascii() or "_" in number or " " in number:
                    assert reply.status_code == 400, (path, params)
            try:
                reply = http.get(f"/v1/topics/fz-q/jobs/{segment}")
            except httpx.InvalidURL:
                return
            _no_server_error(reply)

        fuzz()


def test_dashboard_fragments_survive_any_stored_body_and_any_names(fuzzed: Served) -> None:
    with (
        httpx.Client(base_url=fuzzed.url, timeout=30) as http,
        redisched.Client.from_url(fuzzed.redis_url) as client,  # written around the API
    ):

        @seed(SEED)
        @given(
            body=st.binary(max_size=64)
            | st.builds(_nested, DEPTH, st.booleans(), st.just(b""))
            | st.text(max_size=32).map(str.encode),
            topic=TEXT, job_id=TEXT,
        )  # fmt: skip
        @_fuzz_settings(EXAMPLES)
        def fuzz(body: bytes, topic: str, job_id: str) -> None:
            client.put("fz-dash", "j", body, replace=True)
            for path, params in (
                ("/dashboard/job", {"topic": "fz-dash", "id": "j"}),
                ("/dashboard/topic", {"topic": "fz-dash"}),
                ("/dashboard/overview", {}),
                ("/dashboard/job", {"topic": topic, "id": job_id}),
                ("/dashboard/topic", {"topic": topic}),
            ):
                reply = http.get(path, params=params)
                _no_server_error(reply)
            got = http.get("/v1/topics/fz-dash/jobs/j")
            assert got.status_code == 200

        fuzz()
