"""Two folders of scripts do the same: every reply and every stored byte, under one workload.

A change made only for speed (``bench.bench_script_cost``) must change no reply and no stored
byte. This runs one seeded random workload (puts, replaces, leases, acks, releases, buries,
kicks, deletes, pulls, requeues, reschedules, purges, pauses, schedules, settings changes) with
a fixed clock against each folder's scripts, each on its own private redis-server, and
compares every reply, then now and then and at the end the ``DUMP`` of every key and the
feed's ``XRANGE``. A hash or set stored as a hashtable is compared by content and encoding:
its ``DUMP`` order follows the server's random hash seed. The next step of the workload
depends on the replies (the tokens leased), so the first difference stops it.
Run: ``python -m bench.script_equivalence DIR_A DIR_B [--seeds N] [--steps N]`` (for main's
scripts: ``git archive main src/redisched/lua | tar -x -C /tmp/main``).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any, cast

import redis

from bench.common import private_redis
from redisched import schedule_ops
from redisched.models import Job
from redisched.ops import Call, Operations, parse_lease_jobs

OPERATIONS = {  # operation: weight
    "put": 30, "put_many": 8, "lease": 25, "ack": 20, "release": 6, "bury": 3, "touch": 3,
    "kick": 3, "delete": 4, "pull": 2, "requeue": 3, "reschedule": 2, "delete_many": 1,
    "purge": 1, "pause": 1, "configure": 3, "schedule": 2, "unschedule": 1, "abort": 1,
    "expire": 1,
}  # fmt: skip
SETTINGS: list[tuple[str, object]] = [
    ("history", False), ("history", True), ("history", None), ("keep_events", 0),
    ("keep_events", 7), ("keep_events", 150), ("keep_events", None), ("keep_finished", 3),
    ("keep_finished", None), ("keep_finished_for", 20), ("keep_finished_for", None),
    ("keep_dead", 2), ("keep_dead", None), ("dedup_window", 5), ("dedup_window", None),
    ("ttr", 2), ("ttr", None), ("max_attempts", 2), ("max_attempts", None), ("backoff", 1),
    ("backoff", None), ("concurrency", 2), ("concurrency", None),
]  # fmt: skip


class Side:
    """One server running one folder's scripts."""

    def __init__(self, url: str, folder: Path) -> None:
        self.r = redis.Redis.from_url(url)
        self.r.flushall()
        self.shas = {p.stem: self.r.script_load(p.read_text()) for p in folder.glob("*.lua")}

    def run(self, call: Call[Any]) -> list[Any]:
        """The replies of the call's steps, one command at a time (an error is a reply)."""
        replies: list[Any] = []
        for step in call.steps:
            try:
                if step.script is None:
                    replies.append(self.r.execute_command(*step.args))  # type: ignore[no-untyped-call]
                else:
                    sha = self.shas[step.script]
                    replies.append(self.r.evalsha(sha, len(step.keys), *step.keys, *step.args))
            except redis.ResponseError as error:
                replies.append(("error", str(error)))
        return replies

    def state(self) -> dict[bytes, Any]:
        """Every key's DUMP (a hashtable's content), its encoding, and each stream's XRANGE."""
        found: dict[bytes, Any] = {}
        for key in sorted(cast(list[bytes], self.r.keys("*"))):
            encoding, kind = self.r.object("encoding", key), self.r.type(key)
            found[key + b" encoding"] = encoding
            if encoding == b"hashtable" and kind == b"hash":
                found[key] = sorted(self.r.hgetall(key).items())
            elif encoding == b"hashtable" and kind == b"set":
                found[key] = sorted(self.r.smembers(key))
            else:
                found[key] = self.r.dump(key)
            if kind == b"stream":
                found[key + b" XRANGE"] = self.r.xrange(key)
        return found


def compare_states(a: Side, b: Side, where: str) -> None:
    ours, theirs = a.state(), b.state()
    if ours != theirs:
        differing = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        raise AssertionError(f"{where}: stored data differs: {differing}")


def workload(seed: int, steps: int, a: Side, b: Side) -> int:
    """Runs ``steps`` random operations on both sides; the number of replies compared."""
    rnd = random.Random(seed)
    clock = [1_767_225_600.0 + seed]
    ops = Operations(clock=lambda: clock[0], promote_limit=rnd.choice([1000, 3]))
    topics = ["t1", "t2"]
    ids = [f"job-{i}" for i in range(40)] + [f"s{i}@x" for i in range(3)]
    held: dict[str, list[Job]] = {t: [] for t in topics}
    compared = 0

    def both(call: Call[Any], what: str) -> list[Any]:
        nonlocal compared
        ours, theirs = a.run(call), b.run(call)
        if ours != theirs:
            raise AssertionError(f"seed {seed}, reply {compared} ({what}):\n{ours}\n{theirs}")
        compared += 1
        return ours

    def body() -> bytes:
        return rnd.randbytes(rnd.choice([0, 5, 100, 100, 3000]))

    names, weights = list(OPERATIONS), list(OPERATIONS.values())
    call: Call[Any]
    for _ in range(steps):
        clock[0] += rnd.choice([0, 0, 0, 0.001, 0.5, 2, 30, 700])
        topic = rnd.choice(topics)
        mine = held[topic]
        op = rnd.choices(names, weights)[0]
        if op in ("ack", "release", "bury", "touch", "abort", "expire") and not mine:
            op = "lease"
        if op == "put":
            call = ops.put(
                topic, rnd.choice(ids), body(), delay=rnd.choice([None, None, 0, 1, 5, 60]),
                ttr=rnd.choice([None, None, 1, 30]), priority=rnd.choice([0, 0, 1, 5]),
                max_attempts=rnd.choice([None, None, 1, 3]), replace=rnd.random() < 0.3,
                if_version=rnd.choice([None, None, None, 1, 2, 3]), read_back=rnd.random() < 0.2,
            )  # fmt: skip
            both(call, op)
        elif op == "put_many":
            jobs = [(rnd.choice(ids), body()) for _ in range(rnd.randint(1, 12))]
            call = ops.put_many(
                topic, jobs, delay=rnd.choice([None, 0, 3, 60]), replace=rnd.random() < 0.3,
                priority=rnd.choice([0, 2]), batch_size=rnd.choice([5, 100]),
            )  # fmt: skip
            both(call, op)
        elif op == "lease":
            count, ttr = rnd.choice([1, 1, 1, 2, 5]), rnd.choice([None, 1, 20])
            # lease reads next_due_ms / next_timeout_ms, reserve_many does not (times 0)
            lease = ops.lease if rnd.random() < 0.5 else ops.reserve_many
            reply = both(lease(topic, count, ttr=ttr), op)[0]
            if isinstance(reply, list):
                mine.extend(parse_lease_jobs(topic, reply))
        elif op == "ack":
            picked = rnd.sample(mine, rnd.randint(1, min(len(mine), 4)))
            if rnd.random() < 0.1:
                picked.append(picked[0])  # the same job twice in one call
            if len(picked) == 1 and rnd.random() < 0.5:
                big = rnd.random() < 0.05  # a result over 65536 bytes is truncated
                result = rnd.randbytes(70_000) if big else rnd.choice([None, b"", b"ok"])
                both(ops.ack(picked[0], result=result), op)
            else:
                both(ops.ack_leased(topic, picked), op)
            for job in picked:
                if job in mine and rnd.random() < 0.8:
                    mine.remove(job)  # the rest go on to stale acks and releases
        elif op in ("release", "bury", "touch", "abort", "expire"):
            job = rnd.choice(mine)
            if op == "release":
                call = ops.release(
                    job, delay=rnd.choice([0, 0, 2]), reason=rnd.choice([None, "boom"]),
                    unstarted=rnd.random() < 0.2,
                )  # fmt: skip
            elif op == "bury":
                call = ops.bury(job, reason=rnd.choice([None, "bad"]))
            elif op == "touch":
                call = ops.touch(job, ttr=rnd.choice([None, 10]))
            elif op == "abort":
                call = ops.abort(topic, job.id)
            else:
                call = ops.expire(topic, job.id)
            both(call, op)
            if op != "touch" and rnd.random() < 0.7:
                mine.remove(job)
        elif op == "kick":
            both(ops.kick(topic, rnd.choice([None, rnd.choice(ids)])), op)
        elif op == "delete":
            both(ops.delete(topic, rnd.choice(ids), if_version=rnd.choice([None, None, 1])), op)
        elif op == "pull":
            both(ops.pull(topic), op)
        elif op == "requeue":
            both(ops.requeue(topic), op)
        elif op == "reschedule":
            both(ops.reschedule(topic, rnd.choice(ids), delay=rnd.choice([0, 5])), op)
        elif op == "delete_many":
            state = rnd.choice([None, "ready", "scheduled"])
            both(ops.delete_many(topic, rnd.sample(ids, 5), state=state), op)
        elif op == "purge":
            both(ops.purge_chunk(topic, rnd.choice(["ready", "scheduled", "dead"])), op)
        elif op == "pause":
            both(ops.pause(topic) if rnd.random() < 0.5 else ops.resume(topic), op)
        elif op == "configure":
            name, value = rnd.choice(SETTINGS)
            both(ops.configure(topic, {name: value}), op)
        elif op == "schedule":
            call = schedule_ops.schedule(
                ops, topic, f"s{rnd.randint(0, 2)}", body(), every=rnd.choice([1, 2, 60]),
                priority=rnd.choice([0, 1]),
            )  # fmt: skip
            both(call, op)
        else:
            both(ops.unschedule(topic, f"s{rnd.randint(0, 2)}"), op)
        if rnd.random() < 0.02:
            compare_states(a, b, f"seed {seed}, after reply {compared}")
    compare_states(a, b, f"seed {seed}, at the end")
    return compared


def main(first: Path, second: Path, seeds: int, steps: int) -> None:
    total = 0
    with private_redis() as one, private_redis() as two:
        for seed in range(seeds):
            a, b = Side(one.url, first), Side(two.url, second)
            total += workload(seed, steps, a, b)
            keys = len(a.r.keys("*"))
            a.r.close()
            b.r.close()
            print(f"seed {seed}: {total} replies equal so far; {keys} keys equal", flush=True)
    print(f"OK: {total} replies, and every key of every seed, equal")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a folder of .lua scripts")
    parser.add_argument("second", type=Path, help="another folder of .lua scripts")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    main(args.first, args.second, args.seeds, args.steps)
