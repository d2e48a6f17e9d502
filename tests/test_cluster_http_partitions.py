"""The partitioned-topic HTTP tests again on a real Redis Cluster, where each partition lives
under its own hash tag (so on its own slot) and the topic's calls span slots."""

from __future__ import annotations

import inspect

from tests import test_http_partitions
from tests.test_cluster_http import http, py

__all__ = ["http", "py"]  # fixtures on the cluster

_ONLY = {"http", "py", "topic"}
for _name, _test in vars(test_http_partitions).items():
    if (
        _name.startswith("test_")
        and inspect.iscoroutinefunction(_test)
        and set(inspect.signature(_test).parameters) <= _ONLY
    ):
        globals()[_name] = _test


def test_the_partition_suite_runs_here() -> None:
    names = [n for n in globals() if n.startswith("test_") and n in vars(test_http_partitions)]
    assert len(names) >= 8, names
