"""Read access to a results document written by ``bench.run``: medians, spreads, machine."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Results:
    """One results document (``latest.json`` or ``peers.json``); empty when absent."""

    doc: dict[str, Any]
    path: str = ""

    @classmethod
    def load(cls, path: Path) -> Results:
        """The document at ``path``, or an empty one if the file does not exist."""
        if not path.exists():
            return cls({}, str(path))
        return cls(json.loads(path.read_text()), str(path))

    def __bool__(self) -> bool:
        return bool(self.doc)

    @property
    def benchmarks(self) -> dict[str, Any]:
        """Benchmark name -> its entry (status, records, runs, errors)."""
        return dict(self.doc.get("benchmarks", {}))

    @property
    def machine(self) -> dict[str, Any]:
        """What the run was measured on."""
        return dict(self.doc.get("machine", {}))

    def record(self, bench: str, record: str | None = None) -> dict[str, Any]:
        """The medians of one record of ``bench`` (its first record if ``record`` is None)."""
        records = self.benchmarks.get(bench, {}).get("records", {})
        if record is None:
            return dict(next(iter(records.values()), {}))
        return dict(records.get(record, {}))

    def value(self, bench: str, key: str, record: str | None = None) -> float | None:
        """A numeric median, or None when it was not measured."""
        found = self.record(bench, record).get(key)
        if isinstance(found, bool) or not isinstance(found, int | float):
            return None
        return float(found)

    def first(self, bench: str, *keys: str) -> tuple[str, float] | None:
        """The first of ``keys`` that ``bench`` measured, with its value."""
        for key in keys:
            found = self.value(bench, key)
            if found is not None:
                return key, found
        return None

    def spread(self, bench: str, key: str, record: str | None = None) -> tuple[float, float, int]:
        """(lowest, highest, how many) of one field over the raw runs."""
        entry = self.benchmarks.get(bench, {})
        records = entry.get("records", {})
        name = record if record is not None else next(iter(records), None)
        values = [
            float(run[name][key])
            for run in entry.get("runs", [])
            if name in run and isinstance(run[name].get(key), int | float)
        ]
        if not values:
            return 0.0, 0.0, 0
        return min(values), max(values), len(values)

    def ratio(self, bench: str, key: str, base_bench: str, base_key: str) -> float | None:
        """``key`` over ``base_key``: within one benchmark, the median of the per-run ratios
        (both figures come from the same process); across two, the ratio of the medians."""
        if bench == base_bench:
            pairs = [
                (run[name].get(key), run[name].get(base_key))
                for run in self.benchmarks.get(bench, {}).get("runs", [])
                for name in run
            ]
            ratios = [a / b for a, b in pairs if isinstance(a, int | float) and b]
            if ratios:
                return float(statistics.median(ratios))
        top, bottom = self.value(bench, key), self.value(base_bench, base_key)
        return top / bottom if top is not None and bottom else None

    def status(self, bench: str) -> tuple[str, list[str]]:
        """(ok | partial | failed | missing | not run, the errors)."""
        entry = self.benchmarks.get(bench)
        if entry is None:
            return "not run", []
        return str(entry.get("status", "unknown")), list(entry.get("errors", []))

    def caption(self) -> str:
        """The command and machine of this run, on one line."""
        m = self.machine
        load = m.get("load_average_at_start", ["?"])[0]
        return (
            f"`{self.doc.get('command', '?')}` on {m.get('nproc', '?')} x {m.get('cpu_model', '?')}"
            f", Python {m.get('python', '?')}, Redis {m.get('redis_server', '?')}"
            f", {self.doc.get('started_at', '?')}, load average {load} at the start"
        )
