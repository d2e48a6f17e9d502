"""Schema-driven fuzzing of a real ``redisched serve`` from its own ``/openapi.json``.

Schemathesis generates requests from the document, valid ones (whose answers must match the
documented status codes, content types and schemas) and invalid ones (wrong types, missing
fields, bad values): no answer may be a 5xx, and every error is the JSON error shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_serve import Served, start_serve, stop_leftover_redis

EXAMPLES = 30


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

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
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
