"""Operating a big topic: a listing page and a purge of a million jobs, with server times.

On a private redis-server, one topic is filled with ``--jobs`` scheduled jobs (1% of them
with the id prefix ``vip-``). Then:

- **Listing**: pages of 100 at the start, the middle and the end of the topic (the cursor of
  the job before each: ``page_us_*``; of a job deleted there: ``gone_page_us_middle``, the
  binary search), with and without a prefix; the server time of each ``jobs`` script is read
  from SLOWLOG (threshold 0). The baseline is the bare read of the same 100 records (ZRANGE +
  HMGET in one pipeline), its server time read the same way.
- **Purge**: the whole topic, with SLOWLOG logging every call and the LATENCY monitor at 10 ms,
  while a second client keeps putting jobs into another topic and times each put. Reports the
  purge calls' server times, how many Redis calls took over 10 ms (the target is none) and
  which, and the puts' round trips during the purge next to the same puts just before it.

Run: ``python -m bench.bench_operate [--jobs N]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any, cast

import redis

import redisched
from bench.common import emit, private_redis
from redisched import cursors, scripts
from redisched.keys import TopicKeys

TOPIC = "big"
OTHER = "neighbour"
FILL_BATCH = 5000
BODY = b'{"user": 12345, "kind": "reminder"}'


def fill(client: redisched.Client, count: int) -> None:
    """``count`` jobs due in an hour; every 100th id starts with ``vip-``."""
    for start in range(0, count, FILL_BATCH):
        ids = range(start, min(start + FILL_BATCH, count))
        jobs = [(f"vip-{i:07d}" if i % 100 == 0 else f"job-{i:07d}", BODY) for i in ids]
        client.put_many(TOPIC, jobs, delay=3600)


def server_us(conn: redis.Redis, command: str) -> list[int]:
    """Durations (µs) of the SLOWLOG entries of ``command``, then reset the log."""
    entries = conn.slowlog_get(100_000)
    conn.slowlog_reset()
    return [int(e["duration"]) for e in entries if e["command"].split(b" ")[0] == command.encode()]


def cursor_at(conn: redis.Redis, rank: int) -> tuple[str | None, str]:
    """The listing cursor of the scheduled job at ``rank`` (the page after it starts at
    ``rank + 1``; None for rank -1, the start) and the job's id."""
    if rank < 0:
        return None, ""
    key = TopicKeys("redisched", TOPIC).name("scheduled")
    found = conn.zrange(key, rank, rank, withscores=True, score_cast_func=bytes)
    [(member, score)] = cast(list[tuple[bytes, bytes]], found)
    return cursors.encode(TOPIC, "scheduled", (1, score.decode(), member)), member.decode()


def listing(client: redisched.Client, conn: redis.Redis, count: int) -> dict[str, Any]:
    """Server µs of a page of 100 at several depths, with and without prefix, and the baseline."""
    keys = TopicKeys("redisched", TOPIC)
    conn.config_set("slowlog-log-slower-than", 0)
    conn.config_set("slowlog-max-len", 100_000)
    out: dict[str, Any] = {}
    for name, offset in (("start", 0), ("middle", count // 2), ("end", max(0, count - 100))):
        cursor, _ = cursor_at(conn, offset - 1)
        conn.slowlog_reset()
        for _ in range(20):
            page = client.jobs(TOPIC, "scheduled", limit=100, cursor=cursor)
            assert len(page.jobs) == min(100, count - offset)
        out[f"page_us_{name}"] = statistics.median(server_us(conn, "EVALSHA"))
    gone, gone_id = cursor_at(conn, count // 2)
    client.delete(TOPIC, gone_id)  # the page finds the gone job's place by search
    conn.slowlog_reset()
    for _ in range(20):
        page = client.jobs(TOPIC, "scheduled", limit=100, cursor=gone)
    out["gone_page_us_middle"] = statistics.median(server_us(conn, "EVALSHA"))
    client.put(TOPIC, gone_id, BODY, delay=3600)  # the purge counts every job
    conn.slowlog_reset()
    for _ in range(20):
        page = client.jobs(TOPIC, "scheduled", prefix="vip-", limit=100)
    out["prefix_page_us"] = statistics.median(server_us(conn, "EVALSHA"))
    out["prefix_page_jobs"] = len(page.jobs)
    for _ in range(20):  # the baseline: read the same 100 records with bare commands
        ids = cast(list[bytes], conn.zrange(keys.name("scheduled"), 0, 99))
        conn.hmget(keys.name("jobs"), ids)
    entries = conn.slowlog_get(100_000)
    conn.slowlog_reset()
    zrange = [int(e["duration"]) for e in entries if e["command"].startswith(b"ZRANGE")]
    hmget = [int(e["duration"]) for e in entries if e["command"].startswith(b"HMGET")]
    out["bare_read_us"] = statistics.median(zrange) + statistics.median(hmget)
    out["page_ratio_to_bare_read"] = round(out["page_us_middle"] / out["bare_read_us"], 2)
    out["target_page_us"] = 20_000
    return out


class Neighbour(threading.Thread):
    """Puts jobs into another topic, one at a time, timing each round trip."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redisched.Client.from_url(url)
        self.marks: list[tuple[float, float]] = []  # (when, seconds)
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            started = time.perf_counter()
            self.client.put(OTHER, f"n-{n}", b"x", delay=60)
            self.marks.append((started, time.perf_counter() - started))
            n += 1

    def between(self, start: float, end: float) -> list[float]:
        return sorted(s for t, s in self.marks if start <= t < end)


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


def purge(client: redisched.Client, conn: redis.Redis, url: str, count: int) -> dict[str, Any]:
    """Purge the topic while a neighbour puts; the longest Redis call and the puts' latency."""
    conn.config_set("slowlog-log-slower-than", 0)  # every call, to see the whole distribution
    conn.config_set("slowlog-max-len", 1_000_000)
    conn.config_set("latency-monitor-threshold", 10)
    conn.slowlog_reset()
    conn.execute_command("LATENCY", "RESET")  # type: ignore[no-untyped-call]
    neighbour = Neighbour(url)
    neighbour.start()
    time.sleep(2)
    before_end = time.perf_counter()
    deleted = client.purge(TOPIC, "scheduled")
    after = time.perf_counter()
    neighbour.stop.set()
    neighbour.join()
    # LATENCY first: reading 20,000 SLOWLOG entries is itself a command of over 10 ms.
    latency = conn.execute_command("LATENCY", "LATEST")  # type: ignore[no-untyped-call]
    slow = conn.slowlog_get(1_000_000)
    assert deleted == count, (deleted, count)
    durations = [int(e["duration"]) for e in slow]
    purge_sha = scripts.get("purge").sha.encode()
    put_sha = scripts.get("put").sha.encode()

    def kind(entry: dict[str, Any]) -> str:
        words: list[bytes] = entry["command"].split(b" ")
        if words[0] == b"EVALSHA" and len(words) > 1:
            return {purge_sha: "purge", put_sha: "put"}.get(words[1], "other script")
        return words[0].decode(errors="replace")

    over: dict[str, list[int]] = {}
    for entry in slow:
        if int(entry["duration"]) > 10_000:
            over.setdefault(kind(entry), []).append(int(entry["duration"]))
    purge_calls = sorted(int(e["duration"]) for e in slow if kind(e) == "purge")
    before = neighbour.between(before_end - 2, before_end)
    during = neighbour.between(before_end, after)
    return {
        "purged": deleted,
        "purge_seconds": round(after - before_end, 2),
        "purge_jobs_per_s": round(deleted / (after - before_end)),
        "calls_over_1ms": sum(1 for d in durations if d > 1000),
        "calls_over_10ms": sum(1 for d in durations if d > 10_000),
        "longest_call_us": max(durations, default=0),
        "calls_over_10ms_by_command": {k: len(v) for k, v in over.items()},
        "purge_calls": len(purge_calls),
        "purge_call_us_p50": purge_calls[len(purge_calls) // 2] if purge_calls else 0,
        "purge_call_us_p99": purge_calls[int(0.99 * len(purge_calls))] if purge_calls else 0,
        "purge_call_us_max": purge_calls[-1] if purge_calls else 0,
        "latency_events_over_10ms": len(latency),
        "latency_event_names": sorted(
            {
                str(e[0], "utf-8", "replace") if isinstance(e[0], bytes) else str(e[0])
                for e in latency
            }
        ),
        "neighbour_puts_during": len(during),
        "neighbour_put_ms_p50_before": _ms(before, 0.5),
        "neighbour_put_ms_p50_during": _ms(during, 0.5),
        "neighbour_put_ms_p99_during": _ms(during, 0.99),
        "neighbour_put_ms_max_during": _ms(during, 1.0),
        "target_longest_call_us": 10_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    with private_redis() as server:
        url = server.url
        client = redisched.Client.from_url(url)
        conn = redis.Redis.from_url(url)
        started = time.perf_counter()
        fill(client, args.jobs)
        filled = time.perf_counter() - started
        results: dict[str, Any] = {"jobs": args.jobs, "fill_seconds": round(filled, 1)}
        results.update(listing(client, conn, args.jobs))
        results.update(purge(client, conn, url, args.jobs))
        emit("operate", {"operate": results})


if __name__ == "__main__":
    main()
