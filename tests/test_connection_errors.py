"""redis-py's asyncio connection leaks TypeError/AttributeError when it writes to a connection
the peer just closed (redis-py #4287); those count as a dropped connection, nothing else does."""

from __future__ import annotations

import pytest

from redisched import connect


def _raised_in(filename: str, error: type[Exception]) -> BaseException:
    code = compile(
        f"raise {error.__name__}('NoneType has no attribute writelines')", filename, "exec"
    )
    try:
        exec(code, {})
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    "filename",
    [
        "/venv/lib/python3.11/site-packages/redis/asyncio/connection.py",
        "/usr/lib/python3.11/asyncio/streams.py",
        "/usr/lib/python3.11/asyncio/selector_events.py",
    ],
)
@pytest.mark.parametrize("error", [AttributeError, TypeError])
def test_a_write_on_a_closed_transport_is_a_dropped_connection(
    filename: str, error: type[Exception]
) -> None:
    assert connect.closed_mid_write(_raised_in(filename, error))


def test_other_errors_are_not_mistaken_for_it() -> None:
    assert not connect.closed_mid_write(_raised_in("/app/redisched/ops.py", AttributeError))
    assert not connect.closed_mid_write(_raised_in("/venv/redis/asyncio/connection.py", ValueError))
    assert not connect.closed_mid_write(AttributeError("never raised"))
