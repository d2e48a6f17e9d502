"""The benchmark orchestrator and report, on small fixed inputs (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import bench_instructions, render, run
from bench.results_doc import Results

MACHINE = {
    "nproc": 2, "cpu_model": "Test CPU", "python": "3.11.7", "redis_server": "7.0.15",
    "load_average_at_start": [0.1, 0.1, 0.1], "load_average_at_end": [0.2, 0.1, 0.1],
}  # fmt: skip


def entry(records: dict[str, Any], runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"module": "bench.x", "args": [], "status": "ok", "runs_ok": 1, "errors": [],
            "seconds": [1.0], "records": records, "runs": runs or [records]}  # fmt: skip


LATEST = {
    "command": "python -m bench.run --quick",
    "mode": "quick",
    "repeats": 3,
    "started_at": "2026-01-01T00:00:00+00:00",
    "machine": MACHINE,
    "benchmarks": {
        "baselines": entry({"baselines": {"evalsha_single_client_per_s": 40000,
                                          "evalsha_pipelined_per_s": 400000}}),
        "core": entry(
            {"core": {"put_per_s": 20000, "bare_evalsha_per_s": 23000, "put_many_per_s": 380000,
                      "memory_bytes_per_job": 300.0}},
            runs=[{"core": {"put_per_s": 19000, "bare_evalsha_per_s": 20000}},
                  {"core": {"put_per_s": 20000, "bare_evalsha_per_s": 40000}},
                  {"core": {"put_per_s": 23000, "bare_evalsha_per_s": 23000}}],
        ),
        "scale": entry({"scale": {"levels": [0, 100000], "ops": 2000, "put_us_at_0": 50.0,
                                  "put_us_ratio_at_0": 1.0, "put_us_at_100000": 60.0,
                                  "put_us_ratio_at_100000": 1.2}}),
        "failover": {"module": "bench.bench_failover", "args": ["--quick"], "status": "missing",
                     "runs_ok": 0, "errors": ["module bench.bench_failover not found"],
                     "seconds": [], "records": {}, "runs": []},
    },
}  # fmt: skip

PEERS = {
    "command": "python -m bench.run --peers",
    "repeats": 1,
    "machine": MACHINE,
    "benchmarks": {
        "redisched": entry({"peer-redisched": {"peer": "redisched", "version": "0.1.0",
                                               "explicit_ids": True, "jobs": 20000,
                                               "memory_jobs": 100000, "enqueue_per_s": 5000,
                                               "worker_jobs_per_s": 15000,
                                               "memory_bytes_per_job": 310, "config": "c1"}}),
        "rq": entry({"peer-RQ": {"peer": "RQ", "version": "3.0", "explicit_ids": True,
                                 "enqueue_per_s": 3000, "worker_jobs_per_s": 500,
                                 "memory_bytes_per_job": 1400, "config": "SimpleWorker"}}),
        "bullmq": {"module": "bench.peers.bullmq_peer", "args": [], "status": "failed",
                   "runs_ok": 0, "errors": ["exit 1: ModuleNotFoundError: bullmq"],
                   "seconds": [1.0], "records": {}, "runs": []},
    },
}  # fmt: skip


def rows(markdown: str, first_cell: str) -> list[list[str]]:
    """The cells of every table row whose first cell is ``first_cell``."""
    found = []
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            found.append(cells)
    return found


def test_report_judges_each_target_from_same_run_ratios() -> None:
    markdown = render.render(Results(LATEST), Results(PEERS), charts=False)
    [memory] = rows(markdown, "Redis memory per job (100-byte body; the topic's feed full)")
    assert memory[3:] == ["**met**", "9% under the target"]
    [batched] = rows(markdown, "Batched put (put_many) vs redis-benchmark EVALSHA, pipelined")
    assert batched[2].startswith("0.95 ") and batched[3] == "**met**"
    [single] = rows(markdown, "Single put vs redis-benchmark EVALSHA, 1 client unpipelined")
    assert single[2].startswith("0.50 ") and single[3:] == ["**not met**", "33% below the target"]
    [slowdown] = rows(markdown, "put cost at 1M scheduled vs none")
    assert "only 100,000 in this run" in slowdown[2] and slowdown[3] == "**not met**"
    [worker] = rows(markdown, "Worker jobs/s end to end")
    assert worker[2:] == ["not measured", "-", "-"]
    assert "busy machine" not in markdown


def test_report_tables_show_spread_peers_and_failures() -> None:
    markdown = render.render(Results(LATEST), Results(PEERS), charts=False)
    put_rows = rows(markdown, "put/s, 1 call per job")
    assert put_rows[0][1:3] == ["20,000", "19,000-23,000 (3 runs)"]
    # same benchmark: the median of the per-run ratios (0.95, 0.5, 1.0), not 20,000 / 23,000
    assert put_rows[0][-1] == "0.95"
    assert put_rows[1][3:] == ["redis-benchmark EVALSHA -c 1 -P 1", "40,000", "0.50"]
    [rq] = rows(markdown, "RQ")
    assert rq[3:] == ["3,000", "500", "1,400", "30.0x"]
    assert "- **bullmq**: failed: exit 1: ModuleNotFoundError" in markdown
    [failover] = rows(markdown, "failover")
    assert failover[3] == "missing"
    assert "![" not in markdown  # no charts asked for


def test_busy_machine_is_flagged() -> None:
    busy = {**LATEST, "machine": {**MACHINE, "load_average_at_start": [3.5, 3.0, 2.0]}}
    assert "**ours was measured on a busy machine**" in render.render(
        Results(busy), Results({}), charts=False
    )


def test_output_parsing_flattening_and_medians() -> None:
    lines = '{"benchmark": "a", "x": 1, "machine": {"cpus": 2}}\nnoise\n{"benchmark": "b"}\n'
    assert [r["benchmark"] for r in run.parse_output(lines)] == ["a", "b"]
    indented = json.dumps({"rate": 5, "nested": {"p50_ms": 0.5}}, indent=2)
    assert run.parse_output("starting...\n" + indented) == [{"rate": 5, "nested": {"p50_ms": 0.5}}]
    assert run.parse_output("Traceback ...") == []
    flat = run.flatten({"benchmark": "w", "machine": {}, "lag": {"p50_ms": 1, "d": {"x": 2}}})
    assert flat == {"lag.p50_ms": 1, "lag.d.x": 2}
    merged = run.medians([{"r": 1, "s": "a", "ok": True}, {"r": 5, "s": "b"}, {"r": 2}])
    assert merged == {"r": 2, "s": "a", "ok": True}


def test_run_records_missing_and_failing_modules_and_goes_on(tmp_path: Path) -> None:
    specs = (
        run.Spec("absent", "bench.no_such_benchmark"),
        run.Spec("silent", "json.tool", timeout=60),  # exits 0 having printed no JSON
        run.Spec("crash", "bench.baselines", quick=("--requests", "not-a-number"), timeout=60),
    )
    document = run.run_all(specs, quick=True, repeats=1, only=None)
    statuses = {name: b["status"] for name, b in document["benchmarks"].items()}
    assert statuses == {"absent": "missing", "silent": "failed", "crash": "failed"}
    assert "invalid int value" in document["benchmarks"]["crash"]["errors"][0]
    assert document["machine"]["nproc"] and document["machine"]["cpu_model"]
    run.write(document, tmp_path / "latest.json")
    again = Results.load(tmp_path / "latest.json")
    assert again.status("crash")[0] == "failed"
    assert "crash" in render.render(again, Results.load(tmp_path / "none.json"), charts=False)


def test_history_section_judges_issue_13_from_its_own_run() -> None:
    history = {
        "command": "python -m bench.run --quick --only history", "repeats": 1,
        "started_at": "2026-01-01T00:00:00+00:00", "machine": MACHINE,
        "benchmarks": {"history": entry({"history": {
            "put.ratio": 0.95, "reserve_ack.ratio": 0.85, "worker.ratio": 0.97,
            "memory.live_bytes_per_job_feed_off": 315.0, "memory.finished_bytes_per_job": 270.0,
        }})},
    }  # fmt: skip
    markdown = render.render(
        Results(LATEST), Results(PEERS), charts=False, history=Results(history)
    )
    assert "## History on vs off" in markdown
    [put] = rows(markdown, "put, history on vs off (same run)")
    assert put[3] == "**met**"
    [acks] = rows(markdown, "reserve+ack, history on vs off (same run)")
    assert acks[3] == "**not met**"
    [finished] = rows(markdown, "Finished job's record (no result)")
    assert finished[3] == "**not met**"
    assert "## History on vs off" not in render.render(Results(LATEST), Results(PEERS), False)


def test_one_call_targets_are_judged_on_the_same_run_ratios() -> None:
    doc = {
        **LATEST,
        "benchmarks": {
            **LATEST["benchmarks"],
            "core": entry({"core": {"put_ratio": 0.93, "reserve_ack_ratio": 0.5}}),
            "http": entry({"http": {"put_minimal_ratio": 0.95}}),
        },
    }
    markdown = render.render(Results(doc), Results({}), charts=False)
    [put] = rows(markdown, "`Client.put`, one call per job")
    assert put[1:] == [">= 0.9x", put[2], "**met**", "3% above the target"]
    assert put[2].startswith("0.93 (`core.put_ratio`")
    [reserve_ack] = rows(markdown, "`reserve` + `ack`, one job each")
    assert reserve_ack[3:] == ["**not met**", "44% below the target"]
    [minimal] = rows(markdown, "HTTP `PUT` with `Prefer: return=minimal`")
    assert minimal[3] == "**met**"
    [webhook] = rows(markdown, "webhook deliveries")
    assert webhook[2:] == ["not measured", "-", "-"]


def test_backlog_curve_comes_from_its_own_run_when_there_is_one() -> None:
    levels = [0, 100_000, 1_000_000, 10_000_000]
    record = {"levels": levels, "rounds": 5, "jobs": 20_000, "concurrency": 1000}
    for level, ratio in zip(levels, (1.0, 0.99, 0.98, 0.97), strict=True):
        record |= {f"jobs_per_s_at_{level}": 30_000 * ratio, f"ratio_at_{level}": ratio}
    backlog = {
        "command": "python -m bench.run --only backlog --repeats 1", "repeats": 1,
        "started_at": "2026-01-01T00:00:00+00:00", "machine": MACHINE,
        "benchmarks": {"backlog": entry({"backlog": record})},
    }  # fmt: skip
    markdown = render.render(Results(LATEST), Results(PEERS), False, backlog=Results(backlog))
    [row] = rows(markdown, "10,000,000")
    assert row[2] == "0.970"
    assert "from `python -m bench.run --only backlog --repeats 1`" in markdown
    assert "10,000,000 |" not in render.render(Results(LATEST), Results(PEERS), False)


def test_instruction_counts_show_per_call_with_their_ratio_to_the_bare_call() -> None:
    doc = json.loads(json.dumps(LATEST))
    counts = {"bare_per_job": 13234, "put_per_job": 205190, "put_vs_bare": 15.5,
              "worker_batch_per_job": 140098, "worker_batch_vs_bare": 10.59}  # fmt: skip
    doc["benchmarks"]["instructions"] = entry({"instructions": counts})
    markdown = render.render(Results(doc), Results({}), charts=False)
    assert "| `Client.put`, one job per call | 205,190 | 15.50 |" in markdown
    assert "| `EVALSHA` of `return 1`, no keys (the baseline of the ratios above) | 13,234 |" in (
        markdown
    )
    assert "`put_many`, 100 jobs per call" not in markdown  # not measured: no row
    assert "Not measured yet (`bench/bench_instructions.py`" in render.render(
        Results(LATEST), Results(PEERS), charts=False
    )


def test_backlog_work_says_whether_the_backlog_adds_work_or_only_memory() -> None:
    doc = json.loads(json.dumps(LATEST))
    counts = {
        "bare_per_job": 13234, "worker_batch_per_job": 110000, "backlog": 1_000_000,
        "worker_batch_backlog_per_job": 113300, "worker_batch_backlog_vs_empty": 1.03,
    }  # fmt: skip
    doc["benchmarks"]["instructions"] = entry({"instructions": counts})
    markdown = render.render(Results(doc), Results({}), charts=False)
    assert "beside 1,000,000 scheduled jobs are 1.030x the empty topic's" in markdown
    assert "the drain does about the same work" in markdown
    assert "| the same drain beside a backlog of jobs due tomorrow | 113,300 |" in markdown
    counts["worker_batch_backlog_vs_empty"] = 1.3
    doc["benchmarks"]["instructions"] = entry({"instructions": counts})
    markdown = render.render(Results(doc), Results({}), charts=False)
    assert "the backlog makes the drain do more work in Redis" in markdown
    del counts["worker_batch_backlog_vs_empty"]
    doc["benchmarks"]["instructions"] = entry({"instructions": counts})
    assert "scheduled jobs are" not in render.render(Results(doc), Results({}), charts=False)


def test_instruction_parts_show_each_share_of_its_call() -> None:
    doc = json.loads(json.dumps(LATEST))
    counts: dict[str, int] = {"bare_per_job": 13234, "put_per_job": 181000}
    for case, total in (("put", 174000), ("reserve_ack", 460000)):
        counts[f"by_part_{case}_total"] = total
        counts |= {f"by_part_{case}_{part}": total // 4 for part, _ in render.BY_PART_LABELS}
    counts["by_part_reserve_ack_garbage_collector"] = 78200
    doc["benchmarks"]["instructions"] = entry({"instructions": counts})
    markdown = render.render(Results(doc), Results({}), charts=False)
    [collector] = rows(markdown, "Lua's garbage collector")
    assert collector[1:] == ["43,500 (25%)", "78,200 (17%)"]
    [whole] = rows(markdown, "the whole call")
    assert whole[1:] == ["174,000", "460,000"]
    del doc["benchmarks"]["instructions"]["records"]["instructions"]["by_part_put_total"]
    assert "the whole call" not in render.render(Results(doc), Results({}), charts=False)


def test_instruction_parts_read_callgrind_inclusive_counts(tmp_path: Path) -> None:
    report = (
        "1,000,000 (100.0%)  PROGRAM TOTALS\n"
        "  900,000 (90.00%)  server.c:call [/bin/redis-server]\n"
        "  300,000 (30.00%)  server.c:call'2 [/bin/redis-server]\n"
        "  100,000 (10.00%)  ???:luaC_step [/bin/redis-server]\n"
        "   50,000 ( 5.00%)  ???:lua_gc [/bin/redis-server]\n"
        "   70,000 ( 7.00%)  scripting.c:luaSetGlobalArray [/bin/redis-server]\n"
    )
    counts = bench_instructions.split_report(report, jobs=100)
    assert counts["commands"] == 3000  # call'2: the scripts' commands, not the EVALSHA
    assert counts["garbage_collector"] == 1500
    assert counts["keys_argv_tables"] == 700
    assert counts["closure_upvalues"] == 0
    with pytest.raises(RuntimeError, match="no symbols"):
        bench_instructions.split_report(report.replace("luaSetGlobalArray", "0x13c1f0"), 100)


def test_ceiling_section_splits_the_unmet_ratios_into_their_parts() -> None:
    doc = json.loads(json.dumps(LATEST))
    core = {"put_ratio": 0.61, "plainest_put_ratio": 0.78, "put_script_to_plainest_ratio": 0.72,
            "plainest_reserve_ack_ratio": 0.86}  # fmt: skip
    doc["benchmarks"]["core"] = entry({"core": core})
    webhook = {"ratio_to_baseline": 0.63, "request_ratio": 0.78, "leasing_ratio": 0.81}
    doc["benchmarks"]["webhook"] = entry({"webhook": webhook})
    doc["benchmarks"]["webhook_processes"] = entry({"webhook_processes": {"ratio": 1.04}})
    markdown = render.render(Results(doc), Results({}), charts=False)
    labels = {(bench, key): label for bench, key, label in render.CEILING_ROWS}
    shown = {
        ("core", "plainest_put_ratio"): "0.78",
        ("core", "put_script_to_plainest_ratio"): "0.72",
        ("core", "plainest_reserve_ack_ratio"): "0.86",
        ("webhook", "request_ratio"): "0.78",
        ("webhook", "leasing_ratio"): "0.81",
        ("webhook_processes", "ratio"): "1.04",
    }
    for part, value in shown.items():
        [row] = rows(markdown, labels[part])
        assert row[1] == value, part
    assert "`reserve` + `ack` / redis-py" not in markdown  # not measured: no row
    heading = "### One job per call: where the ratios under their goals go\n\nNot measured yet."
    assert heading in render.render(Results({**doc, "benchmarks": {}}), Results({}), charts=False)
