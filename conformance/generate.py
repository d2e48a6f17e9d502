"""Write the conformance vectors: run each scenario through the real scripts, record the replies.

Run from the repository root: ``.venv/bin/python -m conformance.generate`` (starts a throwaway
redis-server) or ``... -m conformance.generate --redis-url redis://127.0.0.1:PORT/0``. Read the
diff of ``conformance/vectors/`` before committing it: the replies are the spec.

A scenario is a list of steps written with the helpers below; ``Token("label", i)`` stands for
the token of the i-th job leased by the step labelled ``label`` and is written out as the
literal token, so the files need no variables.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from conformance import cron_vectors, webhook_vectors
from conformance.runner import VECTORS_DIR, job_fields, run_step

from redisched.keys import TopicKeys

NOW = 1_900_000_000_000
"""The fixed clock of every vector, in epoch milliseconds (2030-03-17)."""
SECOND = 1000
FEED_EPOCH = NOW * 1000
"""The epoch of a feed started at NOW: its clock in microseconds."""


@dataclass(frozen=True)
class Token:
    """The token of job ``index`` in the reply of the reserve step labelled ``label``."""

    label: str
    index: int = 0


@dataclass(frozen=True)
class After:
    """Item ``index`` of the ``after`` (the reply's first item) of the listing step labelled
    ``label``: where the next page goes on."""

    label: str
    index: int


def call(note: str, script: str, label: str | None = None, **args: Any) -> dict[str, Any]:
    """A step calling ``script`` with named arguments."""
    step: dict[str, Any] = {"note": note, "call": script, "args": args}
    if label:
        step["label"] = label
    return step


def meta(note: str, **fields: int | str) -> dict[str, Any]:
    """A step setting fields of the topic's meta hash (the glue's topic settings)."""
    return {"note": note, "meta": {k: str(v) for k, v in fields.items()}}


def put(
    note: str, *pairs: tuple[str, str], now: int = NOW, run_at: int | str = "", delay: int = 0,
    ttr: int | str = "", priority: int = 0, max_attempts: int | str = "", replace: int = 0,
    if_version: int | str = "",
) -> dict[str, Any]:  # fmt: skip
    """A put of ``(id, body)`` pairs sharing the options."""
    return call(
        note, "put", now_ms=now, run_at_ms=run_at, delay_ms=delay, ttr_ms=ttr,
        priority=priority, max_attempts=max_attempts, replace=replace, if_version=if_version,
        id=[p[0] for p in pairs], body=[p[1] for p in pairs],
    )  # fmt: skip


def get(note: str, id: str, now: int = NOW) -> dict[str, Any]:
    """A get by id."""
    return call(note, "get", now_ms=now, id=id)


def delete(note: str, id: str, if_version: int | str = "", now: int = NOW) -> dict[str, Any]:
    """A delete by id."""
    return call(note, "delete", id=id, if_version=if_version, now_ms=now, abort="", reason="")


def abort(note: str, id: str, reason: str = "", now: int = NOW) -> dict[str, Any]:
    """An abort by id: delete.lua that records an aborted event and outcome."""
    return call(note, "delete", id=id, if_version="", now_ms=now, abort="abort", reason=reason)


def reserve(
    note: str, label: str | None = None, now: int = NOW, count: int | str = 1,
    ttr: int | str = "", promote_limit: int = 1000, times: int | str = "",
) -> dict[str, Any]:  # fmt: skip
    """A reserve of up to ``count`` jobs."""
    return call(
        note, "reserve", label, now_ms=now, count=count, ttr_ms=ttr, promote_limit=promote_limit,
        times=times,
    )  # fmt: skip


def ack(
    note: str, *pairs: tuple[str, Token | str], now: int = NOW, results: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An ack of ``(id, token)`` pairs, with ``results`` (one per pair; none by default)."""
    return call(
        note, "ack", now_ms=now, id=[p[0] for p in pairs], token=[p[1] for p in pairs],
        result=list(results) or [""] * len(pairs),
    )  # fmt: skip


def history(note: str, id: str) -> dict[str, Any]:
    """A job's history, live or finished."""
    return call(note, "history", id=id)


def feed(
    note: str, after_id: str = "", after_index: int | str = "", limit: int = 10, latest: int = 0
) -> dict[str, Any]:
    """A read of the topic's event feed."""
    return call(
        note, "feed", after_id=after_id, after_index=after_index, limit=limit, latest=latest
    )


def finished(
    note: str, after: str | None = None, limit: int = 10, outcome: str = "",
    label: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A page of the topic's finished jobs (after the page labelled ``after``)."""
    score, member = (After(after, 0), After(after, 1)) if after else ("", "")
    return call(
        note, "finished", label, after_score=score, after_member=member, limit=limit,
        outcome=outcome,
    )  # fmt: skip


def release(
    note: str,
    id: str,
    token: Token | str,
    now: int = NOW,
    delay: int = 0,
    error: str = "",
    refund: int = 0,
) -> dict[str, Any]:
    """A release of one reservation."""
    return call(
        note, "release", now_ms=now, id=id, token=token, delay_ms=delay, error=error, refund=refund
    )


def touch(
    note: str, id: str, token: Token | str, now: int = NOW, ttr: int | str = ""
) -> dict[str, Any]:
    """A touch of one reservation."""
    return call(note, "touch", now_ms=now, id=id, token=token, ttr_ms=ttr)


def bury(
    note: str, id: str, token: Token | str, now: int = NOW, reason: str = ""
) -> dict[str, Any]:
    """A bury of one reservation."""
    return call(note, "bury", now_ms=now, id=id, token=token, reason=reason)


def kick(note: str, id: str = "", now: int = NOW, limit: int = 100) -> dict[str, Any]:
    """A kick of one dead job by id, or of the oldest ones."""
    return call(note, "kick", now_ms=now, id=id, limit=limit)


def requeue(note: str, now: int = NOW, limit: int = 1000) -> dict[str, Any]:
    """A requeue sweep."""
    return call(note, "requeue", now_ms=now, limit=limit)


def pull(note: str, now: int = NOW, promote_limit: int | str = 1000) -> dict[str, Any]:
    """A pull (at-most-once take)."""
    return call(note, "pull", now_ms=now, promote_limit=promote_limit)


def limit(
    note: str, now: int = NOW, want: int = 1, hold: int = SECOND, slots: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A request for delivery slots, freeing ``slots`` first."""
    return call(note, "limit", now_ms=now, want=want, hold_ms=hold, slot=list(slots))


def stats(note: str, now: int = NOW) -> dict[str, Any]:
    """The topic's counters."""
    return call(note, "stats", now_ms=now)


def jobs(
    note: str, state: str, now: int = NOW, after: str | None = None, limit: int = 100,
    prefix: str = "", scan: int = 2000, label: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A page of the topic's jobs in ``state`` (with ``prefix``: only ids starting with it),
    after the page labelled ``after``."""
    resume: tuple[Any, ...] = ("", "", "")
    if after:
        resume = (After(after, 0), After(after, 1), After(after, 2))
    part, score, member = resume
    return call(
        note, "jobs", label, now_ms=now, state=state, after_part=part, after_score=score,
        after_member=member, limit=limit, prefix=prefix, scan=scan,
    )  # fmt: skip


def schedule(
    note: str, id: str, body: str, *times: int, now: int = NOW, every: int = 0,
    anchor: int | str = "", start: int = 0, end: int = 0, ttr: int | str = "", priority: int = 0,
    max_attempts: int | str = "", cron: str = "", tz: str = "UTC", if_version: int | str = "",
) -> dict[str, Any]:  # fmt: skip
    """A schedule create/replace: ``every`` ms, or cron ``times`` (UTC ms) from the glue."""
    return call(
        note, "schedule", now_ms=now, id=id, if_version=if_version, every_ms=every,
        anchor_ms=anchor, start_ms=start, end_ms=end, ttr_ms=ttr, priority=priority,
        max_attempts=max_attempts, cron=cron, tz=tz, body=body, time=list(times),
    )  # fmt: skip


def get_schedule(note: str, *ids: str) -> dict[str, Any]:
    """A read of schedules by id."""
    return call(note, "get_schedule", id=list(ids))


S = SECOND
# One step per line reads like the vector files.
# fmt: off
SCENARIOS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "put_create_exists_replace": ("put is create-only by default; replace, CAS and batches", [
        put("create a job due in 60 s", ("j1", "v1"), delay=60 * S),
        get("the new job is scheduled, version 1", "j1"),
        put("create-only put on an existing id: exists, nothing changes", ("j1", "other")),
        get("body is still v1", "j1"),
        put("replace in place: new body, run_at and priority", ("j1", "v2"), delay=10 * S,
            priority=3, replace=1),
        get("version 2, run_at now+10 s, priority 3", "j1"),
        put("CAS with a stale version: conflict, current version returned", ("j1", "v3"),
            replace=1, if_version=1),
        put("CAS with the current version replaces", ("j1", "v3"), replace=1, if_version=2,
            delay=20 * S),
        put("CAS on a missing id: conflict, version 0", ("nope", "x"), if_version=1),
        get("the CAS miss created nothing", "nope"),
        put("two jobs in one call, run_at now: ready at once", ("a", "A"), ("b", "B"),
            run_at=NOW),
        get("a due job reads ready", "a"),
        put("replace a ready job", ("a", "A2"), replace=1),
        put("explicit ttr, max_attempts and a negative priority", ("c", "C"), ttr=5 * S,
            max_attempts=3, priority=-2),
        get("c carries its options", "c"),
        stats("1 scheduled, 3 ready; total_put counts the jobs put (created, replaced), "
              "not those refused (exists, version conflict)"),
    ]),
    "put_defaults_from_meta": ("empty ttr_ms / max_attempts take the topic defaults in meta", [
        put("no topic defaults: ttr 60000, unlimited attempts", ("plain", "p")),
        get("ttr 60000, max_attempts 0", "plain"),
        meta("topic defaults: ttr 5 s, 2 attempts", ttr=5 * S, max_attempts=2),
        put("empty ttr_ms and max_attempts", ("j", "x")),
        get("ttr 5000, max_attempts 2 from meta", "j"),
        put("explicit values win over the defaults", ("k", "y"), ttr=S, max_attempts=7),
        get("ttr 1000, max_attempts 7", "k"),
    ]),
    "put_replace_dead": ("a dead job: put says exists, replace schedules it anew", [
        put("one attempt only", ("j", "v1"), max_attempts=1),
        reserve("lease it", "r"),
        release("release with an error: attempts used up, dead", "j", Token("r"),
                error="boom"),
        get("dead with last_error", "j"),
        put("create-only put on a dead job: exists", ("j", "v2")),
        put("replace a dead job", ("j", "v2"), replace=1, max_attempts=1),
        get("ready again, attempts 0, last_error cleared", "j"),
        stats("no dead job left"),
    ]),
    "put_read_back": ("replace 2 (create-only) or 3 (replace) also answers the job as stored", [
        put("create, read back: the job array as get answers it", ("j", "v1"), delay=60 * S,
            replace=2, ttr=5 * S, priority=4),
        get("the same job", "j"),
        put("create-only on an existing id: exists, no job", ("j", "x"), replace=2),
        put("replace, read back: version 2, due now, ready", ("j", "v2"), replace=3,
            run_at=NOW),
        get("the same job", "j"),
        put("CAS conflict: no job", ("j", "v3"), replace=3, if_version=1),
        reserve("lease it", "r"),
        put("replace while reserved: pending, no job (read it with get)", ("j", "v3"),
            replace=3),
        put("two jobs with read back: bad arguments", ("a", "A"), ("b", "B"), replace=2),
    ]),
    "get_due_reads_ready": ("get, stats and jobs read a due scheduled job as ready", [
        get("no such job: nil", "missing"),
        put("due in 1 s", ("j", "x"), delay=S),
        get("scheduled", "j"),
        get("1 ms before run_at: scheduled", "j", now=NOW + S - 1),
        get("at run_at: ready, though not promoted yet", "j", now=NOW + S),
        stats("at NOW: 1 scheduled, next_due NOW+1 s"),
        stats("at run_at: 1 ready, next_due -1", now=NOW + S),
        jobs("listed as ready at run_at", "ready", now=NOW + S),
        jobs("and no longer as scheduled", "scheduled", now=NOW + S),
    ]),
    "delete": ("delete in every state, with if_version; holders of a deleted lease go stale", [
        delete("no such job", "j"),
        put("create", ("j", "x")),
        delete("if_version mismatch: conflict, nothing changes", "j", if_version=2),
        get("still there", "j"),
        delete("if_version match deletes", "j", if_version=1),
        get("gone", "j"),
        put("a job to lease", ("r", "x"), ttr=S),
        reserve("lease it", "lease"),
        delete("delete the reserved job", "r"),
        ack("the holder's ack is stale", ("r", Token("lease"))),
        release("so is its release", "r", Token("lease")),
        requeue("the sweep does not resurrect it", now=NOW + 2 * S),
        get("gone", "r"),
        put("a job to kill", ("d", "x"), max_attempts=1),
        reserve("lease it", "dl"),
        bury("bury it", "d", Token("dl"), reason="bad"),
        delete("delete a dead job", "d"),
        put("a job to replace while reserved", ("p", "v1")),
        reserve("lease it", "pl"),
        put("replacement waits: pending version 2", ("p", "v2"), replace=1),
        delete("if_version compares with the pending version", "p", if_version=1),
        delete("delete returns the pending version", "p", if_version=2),
        get("gone with its replacement", "p"),
        stats("nothing left"),
    ]),
    "abort": ("abort is a delete whose history says aborted, with its reason", [
        abort("no such job", "j"),
        put("a waiting job", ("w", "x")),
        abort("abort it with a reason", "w", reason="wrong customer"),
        get("gone", "w"),
        history("outcome aborted, an aborted event with the reason", "w"),
        put("a job to lease", ("r", "x"), ttr=S),
        reserve("lease it", "lease"),
        abort("abort the running job: its holder is sent the cancel", "r"),
        ack("the holder's ack is stale", ("r", Token("lease"))),
        history("outcome aborted, an aborted event 'was running; cancel sent'", "r"),
        put("another job to lease", ("q", "x"), ttr=S),
        reserve("lease it", "ql"),
        abort("abort it with a reason: the reason, then the note", "q", reason="duplicate"),
        history("the detail ends in the note", "q"),
        put("a job to kill", ("d", "x"), max_attempts=1),
        reserve("lease it", "dl"),
        bury("bury it", "d", Token("dl"), reason="bad"),
        abort("abort a dead job", "d"),
        history("it stays dead, with an aborted event", "d"),
        put("a job to delete", ("x", "x")),
        delete("a delete (abort empty) deletes", "x"),
        history("outcome cancelled, a deleted event", "x"),
        call("finished jobs by outcome aborted", "finished", after_score="", after_member="",
             limit=10, outcome="aborted"),
        stats("finished_aborted counts 3, finished_cancelled 1"),
    ]),
    "reserve_order": ("lowest priority first, then the order jobs became ready", [
        put("priority 5, ready", ("low", "x"), priority=5),
        put("priority 0, ready", ("first", "x")),
        put("priority 0, ready after first", ("second", "x")),
        put("due at +10 s", ("later", "x"), run_at=NOW + 10 * S),
        put("due at +5 s", ("sooner", "x"), run_at=NOW + 5 * S),
        put("due at +20 s, priority -1", ("urgent", "x"), run_at=NOW + 20 * S, priority=-1),
        reserve("lease up to 10: first, second, low", count=10),
        reserve("nothing ready: next_due +5 s, next_timeout +60 s"),
        reserve("at +20 s, one job: sooner (a reserve promotes as many due jobs as it leases, in "
                "run_at order)", now=NOW + 20 * S),
        reserve("at +20 s, ten jobs: urgent wins although promoted last, then later",
                now=NOW + 20 * S, count=10),
    ]),
    "reserve_promote_limit": ("promotion is bounded per call, in run_at order", [
        put("due at +1 s", ("a", "x"), run_at=NOW + S),
        put("due at +2 s", ("b", "x"), run_at=NOW + 2 * S),
        reserve("promote_limit 1: only a is promoted", now=NOW + 5 * S, count=5,
                promote_limit=1),
        reserve("the next call promotes b", now=NOW + 5 * S, count=5, promote_limit=1),
    ]),
    "reserve_without_times": ("times 0: the lease's times are not read (-2); promotion goes on", [
        put("due at +1 s", ("a", "x"), run_at=NOW + S),
        put("due at +60 s", ("b", "x"), run_at=NOW + 60 * S),
        reserve("at +5 s, times 0: a is promoted and leased; times -2", now=NOW + 5 * S,
                times=0),
        reserve("times 0, nothing due: no job, times -2", now=NOW + 5 * S, times=0),
        reserve("times 1: next_due +60 s, next_timeout a's deadline", now=NOW + 5 * S, times=1),
        call("pause", "pause"),
        reserve("paused, times 0: times -2", now=NOW + 5 * S, times=0),
        reserve("paused, times read", now=NOW + 5 * S),
    ]),
    "reserve_ttr_override": ("a reservation lasts the job's ttr, or the call's ttr_ms", [
        put("ttr 30 s", ("a", "x"), ttr=30 * S),
        put("ttr 30 s", ("b", "x"), ttr=30 * S),
        reserve("own ttr: reserved_until +30 s"),
        reserve("ttr_ms 5000 overrides", ttr=5 * S),
        get("reserved_until shown, token never shown by get", "b"),
        stats("2 reserved"),
    ]),
    "pause_resume": ("a paused topic leases nothing; put and get go on", [
        call("pause a running topic", "pause"),
        call("pause again: already paused", "pause"),
        put("put works while paused", ("j", "x")),
        reserve("paused: nothing leased"),
        pull("paused: nothing pulled"),
        stats("paused 1, 1 ready"),
        call("resume", "resume"),
        call("resume again: already running", "resume"),
        reserve("leases again"),
        stats("paused 0"),
    ]),
    "ack": ("ack with good, wrong and used tokens; several pairs per call", [
        put("two jobs in one call", ("a", "x"), ("b", "y")),
        put("a third", ("c", "z")),
        reserve("lease all three", "r", count=3),
        ack("a wrong token: stale, nothing changes", ("a", "999")),
        ack("the right token", ("a", Token("r", 0))),
        ack("the same token again: stale", ("a", Token("r", 0))),
        get("acked jobs are gone", "a"),
        ack("b and c with their tokens, a stale one among them",
            ("b", Token("r", 1)), ("a", Token("r", 0)), ("c", Token("r", 2))),
        put("a ready job", ("d", "w")),
        ack("a ready job's sequence number (7) is no token", ("d", "7")),
        ack("an unknown id", ("nope", "1")),
        stats("total_acked 3, total_reserved 3"),
    ]),
    "release": ("release with a delay, to dead when attempts are used up, stale tokens", [
        put("two attempts, ttr 10 s", ("j", "x"), max_attempts=2, ttr=10 * S),
        reserve("attempt 1", "r1"),
        release("back in 3 s, with an error", "j", Token("r1"), now=NOW + S, delay=3 * S,
                error="boom"),
        get("scheduled at +4 s, last_error kept", "j", now=NOW + S),
        release("the same token again: stale", "j", Token("r1"), now=NOW + S),
        reserve("not due yet", now=NOW + 4 * S - 1),
        reserve("attempt 2 sees the last error", "r2", now=NOW + 4 * S),
        release("attempts used up: dead", "j", Token("r2"), now=NOW + 5 * S, error="again"),
        get("dead, with the newest error", "j", now=NOW + 5 * S),
        put("unlimited attempts", ("k", "y"), now=NOW + 5 * S),
        reserve("lease it", "r3", now=NOW + 5 * S),
        release("no delay: ready at once", "k", Token("r3"), now=NOW + 5 * S),
        get("ready, attempts 1", "k", now=NOW + 5 * S),
        put("one attempt only", ("u", "z"), max_attempts=1, now=NOW + 5 * S),
        reserve("lease k", "r4", now=NOW + 5 * S),
        reserve("lease u", "r5", now=NOW + 5 * S),
        release("u never started: refund, not dead", "u", Token("r5"), now=NOW + 5 * S,
                delay=2 * S, refund=1),
        get("scheduled at +7 s, attempts 0, no error", "u", now=NOW + 5 * S),
        reserve("lease u again at +7 s", "r6", now=NOW + 7 * S),
        release("u cut short by a stop: refund with a reason, not dead", "u", Token("r6"),
                now=NOW + 7 * S, error="the worker stopped", refund=1),
        get("ready, attempts 0, the reason kept as last_error", "u", now=NOW + 7 * S),
        stats("total_released 5, total_dead 1", now=NOW + 7 * S),
    ]),
    "touch": ("touch extends a reservation; a stale token changes nothing", [
        put("ttr 10 s", ("j", "x"), ttr=10 * S),
        reserve("reserved until +10 s", "r"),
        touch("at +5 s with the job's ttr: until +15 s", "j", Token("r"), now=NOW + 5 * S),
        touch("at +6 s with ttr_ms 30 s: until +36 s", "j", Token("r"), now=NOW + 6 * S,
              ttr=30 * S),
        get("reserved_until +36 s", "j", now=NOW + 6 * S),
        requeue("at +15 s the touched lease has not timed out", now=NOW + 15 * S),
        touch("a wrong token", "j", "999", now=NOW + 15 * S),
        ack("ack", ("j", Token("r")), now=NOW + 16 * S),
        touch("after ack: stale", "j", Token("r"), now=NOW + 16 * S),
    ]),
    "bury_kick": ("bury moves a lease to dead with a reason; kick brings dead jobs back", [
        put("a", ("a", "x")),
        put("b", ("b", "y")),
        reserve("lease both", "r", count=2),
        bury("bury a with a reason", "a", Token("r", 0), now=NOW + S, reason="bad input"),
        bury("again: stale", "a", Token("r", 0), now=NOW + S),
        get("dead with the reason as last_error", "a", now=NOW + S),
        kick("b is reserved, not dead: nothing", "b", now=NOW + 2 * S),
        kick("kick a by id", "a", now=NOW + 2 * S),
        get("ready, attempts reset, last_error kept", "a", now=NOW + 2 * S),
        reserve("lease a again", "r2", now=NOW + 2 * S),
        bury("bury a without a reason", "a", Token("r2"), now=NOW + 3 * S),
        bury("bury b", "b", Token("r", 1), now=NOW + 4 * S, reason="worse"),
        jobs("dead, most recent first", "dead", now=NOW + 4 * S),
        kick("kick the oldest one (limit 1)", now=NOW + 5 * S, limit=1),
        jobs("a, which died first, is ready again", "ready", now=NOW + 5 * S),
        kick("kick the rest", now=NOW + 5 * S),
        kick("none left", now=NOW + 5 * S),
        stats("2 ready, total_dead 3", now=NOW + 5 * S),
    ]),
    "requeue": ("timed-out leases go back to ready, or to dead when attempts are used up", [
        put("two attempts, ttr 1 s", ("j", "x"), max_attempts=2, ttr=S),
        reserve("attempt 1, until +1 s", "r1"),
        requeue("1 ms early: nothing; next timeout +1 s", now=NOW + S - 1),
        requeue("timed out: requeued", now=NOW + S),
        get("ready, attempts 1, no error", "j", now=NOW + S),
        ack("the timed-out holder's ack is stale", ("j", Token("r1")), now=NOW + S),
        reserve("attempt 2", "r2", now=NOW + 2 * S),
        requeue("timed out with attempts used up: dead", now=NOW + 3 * S),
        get("dead, with the reason", "j", now=NOW + 3 * S),
        requeue("idempotent: nothing more", now=NOW + 3 * S),
        put("two more", ("x", "1"), ("y", "2"), ttr=S, now=NOW + 4 * S),
        reserve("lease both", now=NOW + 4 * S, count=2),
        requeue("limit 1: one at a time", now=NOW + 5 * S, limit=1),
        requeue("the other", now=NOW + 5 * S, limit=1),
        stats("total_requeued 3, total_dead 1", now=NOW + 5 * S),
    ]),
    "requeue_backoff": ("requeue delays by meta backoff_ms * 2^(attempts-1), capped", [
        meta("backoff 1 s, at most 3 s", backoff_ms=S, backoff_max_ms=3 * S),
        put("ttr 1 s", ("j", "x"), ttr=S),
        reserve("attempt 1"),
        requeue("timed out: back after 1 s", now=NOW + S),
        get("scheduled at +2 s", "j", now=NOW + S),
        reserve("attempt 2", now=NOW + 2 * S),
        requeue("back after 2 s", now=NOW + 3 * S),
        get("scheduled at +5 s", "j", now=NOW + 3 * S),
        reserve("attempt 3", now=NOW + 5 * S),
        requeue("4 s capped to 3 s", now=NOW + 6 * S),
        get("scheduled at +9 s", "j", now=NOW + 6 * S),
    ]),
    "replace_while_reserved": ("a replacement waits for the running attempt, whatever ends it", [
        put("v1", ("j", "v1")),
        reserve("attempt of v1", "r1"),
        put("replace while reserved: pending", ("j", "v2"), replace=1),
        get("still v1 reserved, pending_version 2", "j"),
        put("create-only put: exists with the pending version", ("j", "x")),
        put("CAS compares with the pending version", ("j", "v3"), replace=1, if_version=1),
        put("replace the pending version, due at +10 s", ("j", "v3"), replace=1,
            if_version=2, delay=10 * S),
        ack("ack of the old attempt", ("j", Token("r1")), now=NOW + S),
        get("v3 scheduled, attempts 0: the ack did not delete it", "j", now=NOW + S),
        reserve("attempt of v3", "r2", now=NOW + 10 * S),
        put("replace again", ("j", "v4"), replace=1, now=NOW + 10 * S),
        release("release ends the attempt: replaced, v4 ready", "j", Token("r2"),
                now=NOW + 11 * S, delay=5 * S, error="e"),
        get("v4 ready, no last_error", "j", now=NOW + 11 * S),
        reserve("attempt of v4", "r3", now=NOW + 11 * S),
        put("replace again", ("j", "v5"), replace=1, now=NOW + 11 * S),
        bury("bury ends the attempt: replaced, v5 ready", "j", Token("r3"), now=NOW + 12 * S,
             reason="x"),
        get("v5 ready", "j", now=NOW + 12 * S),
        reserve("attempt of v5, ttr 60 s", "r4", now=NOW + 12 * S),
        put("replace again", ("j", "v6"), replace=1, now=NOW + 12 * S),
        requeue("the timeout ends the attempt: v6 ready", now=NOW + 72 * S),
        get("v6 ready, attempts 0", "j", now=NOW + 72 * S),
        stats("1 ready, nothing dead", now=NOW + 72 * S),
    ]),
    "schedule_every": ("an interval schedule: each leased occurrence puts the next one", [
        schedule("every 60 s from now (rounded up to a second)", "sync", "b", every=60 * S,
                 now=NOW + 500),
        get("the first occurrence, at +1 s", "sync@2030-03-17T17:46:41Z"),
        reserve("nothing due yet", now=NOW + 500),
        reserve("lease it: the next one is put in the same step", "r1", now=NOW + S),
        get("the next occurrence", "sync@2030-03-17T17:47:41Z", now=NOW + S),
        get_schedule("next_ms and last_ms moved; an unknown id is nil", "sync", "nope"),
        ack("ack", ("sync@2030-03-17T17:46:41Z", Token("r1")), now=NOW + S),
        reserve("an hour later: one overdue occurrence", now=NOW + 3600 * S),
        reserve("not a burst", now=NOW + 3600 * S),
        get_schedule("the next one is the first future time", "sync"),
        put("a look-alike id is an ordinary job", ("sync@2030-03-17T18:48:41Z", "x"),
            now=NOW + 3600 * S),
        schedule("replace: 120 s, same anchor; the pending one is replaced", "sync", "c",
                 every=120 * S, now=NOW + 3600 * S),
        get("the pending one was replaced in place: version 2, the new body",
            "sync@2030-03-17T18:46:41Z", now=NOW + 3600 * S),
        get("the look-alike job is untouched", "sync@2030-03-17T18:48:41Z", now=NOW + 3600 * S),
        schedule("if_version mismatch", "sync", "d", every=60 * S, if_version=1),
        history("replaced in place: version 2, one replaced event", "sync@2030-03-17T18:46:41Z"),
        call("unschedule with a wrong version", "unschedule", id="sync", if_version=1,
             now_ms=NOW + 3600 * S),
        call("unschedule", "unschedule", id="sync", if_version=2, now_ms=NOW + 3600 * S),
        history("the waiting occurrence ended cancelled (unscheduled)",
                "sync@2030-03-17T18:46:41Z"),
        call("again: no such schedule", "unschedule", id="sync", if_version="",
             now_ms=NOW + 3600 * S),
        stats("unschedule deleted the pending one; the running lease and the look-alike remain",
              now=NOW + 3600 * S),
        schedule("every not whole seconds: error", "x", "b", every=1500),
        schedule("end_ms is now: ended, nothing stored", "late", "b", every=60 * S, end=NOW),
        schedule("end_ms in the past, with if_version: ended", "late", "b", every=60 * S,
                 start=NOW - 120 * S, end=NOW - 60 * S, if_version=3),
        schedule("its first time (the anchor) after end_ms: ended", "late", "b",
                 every=3600 * S, anchor=NOW + 7200 * S, start=NOW + 60 * S, end=NOW + 3600 * S),
        schedule("a cron schedule sent no time up to its end_ms: ended", "late", "b",
                 cron="0 0 1 1 *", end=NOW + 60 * S),
        get_schedule("the ended schedule was not stored", "late"),
        stats("and put no occurrence", now=NOW + 3600 * S),
    ]),
    "schedule_skip": ("deleting a pending occurrence skips one run; the schedule goes on", [
        schedule("every 60 s, the first at +1 s", "sync", "b", every=60 * S, now=NOW + 500),
        delete("delete the pending occurrence: the next one is put", "sync@2030-03-17T17:46:41Z",
               now=NOW + 500),
        get("the next occurrence, at +61 s", "sync@2030-03-17T17:47:41Z", now=NOW + 500),
        get_schedule("next_ms moved; last_ms is the skipped one", "sync"),
        history("the skipped one ended cancelled", "sync@2030-03-17T17:46:41Z"),
        reserve("at +1 s nothing runs", now=NOW + S),
        call("delete_many of the pending one: the next one is put", "delete_many",
             now_ms=NOW + S, state="scheduled", id=["sync@2030-03-17T17:47:41Z"]),
        get_schedule("next at +121 s", "sync"),
        put("an ordinary job an hour later", ("late", "x"), delay=3600 * S, now=NOW + S),
        call("purge scheduled 1 at a time: the latest first", "purge", now_ms=NOW + S,
             state="scheduled", limit=1, before="", up_to_seq=""),
        call("the next chunk, below the bound: the occurrence; the one it puts is above",
             "purge", now_ms=NOW + S, state="scheduled", limit=1, before=NOW + 3601 * S,
             up_to_seq=""),
        call("the next chunk: nothing left below the bound", "purge", now_ms=NOW + S,
             state="scheduled", limit=1, before=NOW + 121 * S, up_to_seq=""),
        get_schedule("next at +181 s", "sync"),
        reserve("lease it at +181 s: +241 s is put", "r1", now=NOW + 181 * S),
        abort("abort the running one: not the pending one, nothing more is put",
              "sync@2030-03-17T17:49:41Z", now=NOW + 181 * S),
        history("it ended aborted", "sync@2030-03-17T17:49:41Z"),
        get_schedule("still next at +241 s; last_ms the leased one", "sync"),
        put("an ordinary job named as the run at +301 s", ("sync@2030-03-17T17:51:41Z", "x"),
            now=NOW + 181 * S),
        call("delete_many of the pending one, then of that job: both go", "delete_many",
             now_ms=NOW + 181 * S, state="",
             id=["sync@2030-03-17T17:50:41Z", "sync@2030-03-17T17:51:41Z"]),
        get_schedule("the chain moved once: +301 s put again, as the pending one", "sync"),
        get("the run at +301 s, a new occurrence", "sync@2030-03-17T17:51:41Z",
            now=NOW + 181 * S),
        call("unschedule still ends it", "unschedule", id="sync", if_version="",
             now_ms=NOW + 181 * S),
        stats("nothing left", now=NOW + 181 * S),
    ]),
    "schedule_cron": ("a cron schedule runs on the glue's times; refill when low, and when dry", [
        schedule("three times from the glue, ttr 5 s, priority 2", "c", "b",
                 NOW + 60 * S, NOW + 120 * S, NOW + 180 * S, ttr=5 * S, priority=2,
                 cron="* * * * *", tz="UTC"),
        get_schedule("next_ms is the first; two left", "c"),
        reserve("lease the first: the second is put; few left: c joins refill", "r1",
                now=NOW + 60 * S),
        call("refill with more times", "refill", now_ms=NOW + 60 * S, id="c", version=1,
             time=[NOW + 180 * S, NOW + 240 * S]),
        get_schedule("one more time held", "c"),
        reserve("at +10 min the pending one (+2 min) is overdue", now=NOW + 600 * S),
        get_schedule("ran dry: no next occurrence", "c"),
        call("a stale version changes nothing", "refill", now_ms=NOW + 600 * S, id="c",
             version=7, time=[NOW + 660 * S]),
        call("refill: the past times are skipped, the first future one is put", "refill",
             now_ms=NOW + 600 * S, id="c", version=1,
             time=[NOW + 540 * S, NOW + 660 * S, NOW + 720 * S]),
        get_schedule("next at +11 min", "c"),
        schedule("cron times not ascending: error", "d", "b", NOW + 120 * S, NOW + 60 * S),
    ]),
    "schedule_far_ahead": ("a cron schedule goes on after a run moved past its times", [
        schedule("two times from the glue: +20 s and +80 s", "c", "b", NOW + 20 * S,
                 NOW + 80 * S, cron="* * * * *", tz="UTC"),
        call("move the pending occurrence an hour later, past both times", "reschedule",
             now_ms=NOW, id="c@2030-03-17T17:47:00Z", run_at_ms=NOW + 3600 * S, delay_ms="",
             priority="", state=""),
        delete("delete it: the times run out", "c@2030-03-17T17:47:00Z"),
        get_schedule("ran dry; last_ms is where the skipped run was moved", "c"),
        call("refill: the times up to last_ms are skipped, +3620 s is put", "refill",
             now_ms=NOW, id="c", version=1, time=[NOW + 80 * S, NOW + 3620 * S]),
        schedule("a replace with times from now, all before last_ms: times too early, nothing"
                 " changed; the time they must come after", "c", "b2", NOW + 20 * S,
                 NOW + 80 * S, cron="* * * * *", tz="UTC"),
        get_schedule("still version 1, next at +3620 s", "c"),
        schedule("the glue's times after it: replaced, the pending one in place", "c", "b2",
                 NOW + 3620 * S, NOW + 3680 * S, cron="* * * * *", tz="UTC"),
        get_schedule("version 2, next at +3620 s", "c"),
        get("the pending occurrence has the new body", "c@2030-03-17T18:47:00Z"),
    ]),
    "pull": ("pull takes the best due job and deletes it", [
        put("priority 1, ready", ("b", "x"), priority=1),
        put("priority 0, due at +1 s", ("a", "y"), run_at=NOW + S),
        put("priority 1, ready after b", ("c", "z"), priority=1),
        pull("a is not due: b"),
        pull("at +1 s the due a beats c", now=NOW + S),
        get("pulled jobs are gone", "a", now=NOW + S),
        pull("c", now=NOW + S),
        pull("empty: nil", now=NOW + S),
        stats("total_pulled 3", now=NOW + S),
    ]),
    "jobs_listing": ("pages of jobs per state", [
        put("due +3 s", ("s1", "x"), run_at=NOW + 3 * S),
        put("due +1 s", ("s2", "x"), run_at=NOW + S),
        put("due +2 s", ("s3", "x"), run_at=NOW + 2 * S),
        put("ready", ("r1", "x")),
        put("ready, priority -1", ("r2", "x"), priority=-1),
        put("ready", ("r3", "x")),
        put("ready, priority -9, one attempt", ("d", "x"), priority=-9, max_attempts=1),
        reserve("lease d and r2", "l", count=2),
        bury("bury d", "d", Token("l", 0), reason="no"),
        jobs("scheduled by run_at", "scheduled"),
        jobs("first page of 2: s2, s3; after is s3 (part 1, its run_at, its id)", "scheduled",
             limit=2, label="p1"),
        delete("delete s3, the last job listed", "s3"),
        jobs("second page: after s3's place although s3 is gone", "scheduled", after="p1",
             limit=2),
        jobs("ready in reserve order", "ready"),
        jobs("at +1 s the due s2 follows the ready ones", "ready", now=NOW + S),
        jobs("the first 2 at +1 s: after is r3 (its member is its sequence number, then its id)",
             "ready", now=NOW + S, limit=2, label="r"),
        put("a ready job put after the first page", ("r4", "x"), now=NOW + S),
        jobs("paging on: r4, put after the first page", "ready", now=NOW + S, after="r", limit=1,
             label="r2"),
        jobs("the last page: the due part (part 2), s2; after is nil", "ready", now=NOW + S,
             after="r2"),
        call("after_part 3 (ready has 2 parts): error", "jobs", now_ms=NOW, state="ready",
             after_part=3, after_score="0", after_member="r1", limit=10, prefix="", scan=2000),
        call("after_score not a number: error", "jobs", now_ms=NOW, state="ready", after_part=1,
             after_score="soon", after_member="r1", limit=10, prefix="", scan=2000),
        jobs("reserved by deadline", "reserved"),
        jobs("dead", "dead"),
        jobs("unknown state: error", "gone"),
        jobs("limit 0: error", "ready", limit=0),
        jobs("ids starting with s", "scheduled", prefix="s"),
        jobs("prefix r, 1 per page: after is r1", "ready", prefix="r", limit=1),
        jobs("scan 1: r3 is not examined, go on after r1", "ready", prefix="r3", limit=1,
             scan=1),
        jobs("scan below limit: error", "ready", limit=2, scan=1),
    ]),
    "operate": ("bulk delete by state, purge in chunks, reschedule keeping the body", [
        put("two scheduled", ("s1", "a"), ("s3", "c"), delay=60 * S),
        put("a third, a second later", ("s2", "b"), delay=61 * S),
        put("two ready", ("r1", "x"), ("r2", "y")),
        call("delete s1 and r1 if still scheduled: only s1", "delete_many", now_ms=NOW,
             state="scheduled", id=["s1", "r1", "missing"]),
        call("delete r1 in any state", "delete_many", now_ms=NOW, state="", id=["r1"]),
        call("purge scheduled 1 at a time, latest first: s2; 1 left, up to its run_at",
             "purge", now_ms=NOW, state="scheduled", limit=1, before="", up_to_seq=""),
        call("reschedule s3 to now, priority -1: replaced, version 2", "reschedule", now_ms=NOW,
             id="s3", run_at_ms="", delay_ms=0, priority=-1, state=""),
        get("s3 is ready with its body", "s3"),
        call("run s3 now only if scheduled: not in state", "reschedule", now_ms=NOW, id="s3",
             run_at_ms="", delay_ms=0, priority="", state="scheduled"),
        reserve("lease s3", "l"),
        call("reschedule a reserved job: pending, version 3", "reschedule", now_ms=NOW,
             id="s3", run_at_ms=NOW + 5 * S, delay_ms=0, priority="", state=""),
        call("no such job", "reschedule", now_ms=NOW, id="nope", run_at_ms="", delay_ms=0,
             priority="", state=""),
        call("purge ready up to sequence number 0: r2 came later, nothing taken, none left",
             "purge", now_ms=NOW, state="ready", limit=10, before="", up_to_seq=0),
        call("purge ready: r2, none left", "purge", now_ms=NOW, state="ready", limit=10,
             before="", up_to_seq=""),
        call("purge up_to_seq not a number: error", "purge", now_ms=NOW, state="ready",
             limit=1, before="", up_to_seq="x"),
        call("purge limit 0: error", "purge", now_ms=NOW, state="ready", limit=0, before="",
             up_to_seq=""),
        call("purge before not a number: error", "purge", now_ms=NOW, state="ready", limit=1,
             before="x", up_to_seq=""),
        stats("s3 reserved, nothing else"),
        history("s1: cancelled by delete_many", "s1"),
        history("s2: cancelled by purge, detail purged", "s2"),
        history("s3: its events kept; replaced twice, the second while running", "s3"),
        call("purge reserved: s3, its cancel sent", "purge", now_ms=NOW, state="reserved",
             limit=10, before="", up_to_seq=""),
        history("s3: cancelled while running, at its pending version", "s3"),
        put("two old scheduled jobs", ("o1", "a"), ("o2", "b"), delay=60 * S),
        call("purge scheduled 1 at a time: o2 (ids sort); up_to_seq is when it began",
             "purge", now_ms=NOW, state="scheduled", limit=1, before="", up_to_seq=""),
        put("a new one, put after the purge began, due at the old ones' run_at", ("n1", "c"),
            delay=59 * S, now=NOW + S),
        call("the next chunk passes over n1 and takes o1", "purge", now_ms=NOW + S,
             state="scheduled", limit=1, before=NOW + 60 * S, up_to_seq=NOW),
        call("the next chunk: n1 is read again (a tie at the bound), passed over, none taken",
             "purge", now_ms=NOW + S, state="scheduled", limit=1, before=NOW + 60 * S,
             up_to_seq=NOW),
        get("n1 is still scheduled", "n1"),
    ]),
    "limit": ("delivery slots: no more than the due jobs, then concurrency, then rate", [
        limit("no due job: nothing granted", want=3),
        put("three ready jobs", ("a", "x"), ("b", "y"), ("c", "z")),
        put("one due at +5 s", ("later", "x"), delay=5 * S),
        limit("no limits: as many as are due, no slot names", want=5),
        meta("at most 2 deliveries at once", concurrency=2),
        limit("2 of 3 granted, in named slots held 1 s; retry as one expires", want=3),
        limit("no free slot: retry when the first slot expires", want=1),
        limit("freeing slot 1 grants one more", want=1, slots=("1",)),
        limit("at +1 s the held slots expired", now=NOW + S, want=2),
        meta("a rate of 20/s: a bucket of 2 tokens", concurrency=100, rate=20),
        limit("the bucket holds 2: retry in 50 ms for the third", now=NOW + 2 * S, want=3),
        limit("25 ms later half a token: nothing, retry in 25 ms", now=NOW + 2 * S + 25),
        limit("50 ms later one token", now=NOW + 2 * S + 50),
        call("pause", "pause"),
        limit("a paused topic gets nothing", now=NOW + 3 * S),
        limit("want -1: error", want=-1),
        limit("hold_ms 0: error", hold=0),
    ]),
    "timeline": ("scheduled jobs per step ahead, and the oldest due time of ready jobs", [
        call("empty topic: no oldest, zero counts", "timeline", now_ms=NOW, width_ms=60 * S,
             limit=3),
        put("due +30 s", ("a", "x"), ("b", "x"), run_at=NOW + 30 * S),
        put("due +60 s: the end of the first step", ("c", "x"), run_at=NOW + 60 * S),
        put("due +61 s", ("d", "x"), run_at=NOW + 61 * S),
        put("due +10 min", ("e", "x"), run_at=NOW + 600 * S),
        call("counts per minute", "timeline", now_ms=NOW, width_ms=60 * S, limit=3),
        put("ready now", ("r", "x")),
        call("at +45 s: r (due +0 s) waited longest; c, d due next", "timeline",
             now_ms=NOW + 45 * S, width_ms=60 * S, limit=2),
        call("width 0: error", "timeline", now_ms=NOW, width_ms=0, limit=1),
        call("limit 0: error", "timeline", now_ms=NOW, width_ms=1, limit=0),
    ]),
    "bad_arguments": ("caller bugs get an error reply and change nothing", [
        put("a job", ("j", "x")),
        reserve("count 0", count=0),
        reserve("count not a number", count="x"),
        release("negative delay", "j", "1", delay=-1),
        kick("limit 0", limit=0),
        requeue("limit 0", limit=0),
        pull("negative promote_limit", promote_limit=-1),
        put("priority not a number", ("k", "x"), priority="x"),  # type: ignore[arg-type]
        put("no id/body pair"),
        ack("no id/token pair"),
        stats("still one ready job, nothing else"),
    ]),
    "history_done": ("events travel with the job; ack writes its finished record and result", [
        put("create a job due in 10 s", ("j", "v1"), delay=10 * S),
        history("a live job: outcome empty, one put event", "j"),
        reserve("lease it when due", "r", now=NOW + 10 * S),
        touch("a heartbeat", "j", Token("r"), now=NOW + 11 * S),
        touch("a second one updates the touched event", "j", Token("r"), now=NOW + 12 * S),
        ack("ack with a result", ("j", Token("r")), now=NOW + 13 * S, results=("42",)),
        history("done, with result, attempts 1 and four events", "j"),
        get("the job itself is gone", "j"),
        put("a create-only put of the finished id: created at version 2", ("j", "v2"),
            now=NOW + 14 * S),
        history("the new life's history", "j"),
        stats("finished_done counts 1"),
    ]),
    "feed": ("the topic feed: one entry per call, its events in order, read after a cursor", [
        put("two jobs in one call: one entry, two events", ("a", "A"), ("b", "B")),
        reserve("lease both: one entry, two events", "r", count=2),
        ack("ack a", ("a", Token("r", 0)), now=NOW + S, results=("ok",)),
        feed("everything, oldest first; an entry's id is <epoch>-<events in the feed up to its "
             "last>, a new feed's epoch the now_ms of its first call * 1000", limit=2),
        feed("the latest 2 events", limit=2, latest=1),
        feed(f"after a cursor: the events after index 0 of entry {FEED_EPOCH}-2",
             after_id=f"{FEED_EPOCH}-2", after_index=0, limit=10),
        feed("after an id of an earlier feed of the topic (started a ms before, deleted, the "
             "topic used again): every event", after_id=f"{FEED_EPOCH - 1000}-9", after_index=0,
             limit=10),
        feed("a limit of 0 is an error", limit=0),
    ]),
    "history_outcomes": ("delete cancels, pull pulls, a deleted dead job ends dead", [
        put("three jobs", ("a", "A"), ("b", "B"), ("c", "C"), max_attempts=1),
        delete("cancel a by id", "a", now=NOW + S),
        history("a: cancelled", "a"),
        pull("pull takes b", now=NOW + 2 * S),
        history("b: pulled, attempts 1", "b"),
        reserve("lease c", "r", now=NOW + 3 * S),
        release("fail it: its one attempt is used, dead", "c", Token("r"), now=NOW + 4 * S,
                error="boom"),
        delete("remove the dead job", "c", now=NOW + 5 * S),
        history("c: dead, last_error kept", "c"),
        finished("every finished job, most recent first"),
        finished("only the dead ones", outcome="dead"),
        finished("a page of one: after is c (its finished_at, its id)", limit=1, label="f1"),
        finished("the next page", after="f1", limit=1),
        finished("an unknown outcome is an error", outcome="exploded"),
        history("never seen: nil", "nobody"),
        stats("one finished per outcome"),
    ]),
    "history_retention": ("keep_finished, dedup_window_ms and the dead cap trim in the scripts", [
        meta("keep 2 finished jobs, dedup 60 s, keep 1 dead job", keep_finished=2,
             dedup_window_ms=60 * S, keep_dead=1),
        put("three jobs", ("a", "A"), ("b", "B"), ("c", "C")),
        delete("finish a", "a", now=NOW + 1),
        delete("finish b", "b", now=NOW + 2),
        delete("finish c: a is past keep_finished, but within the dedup window: kept", "c",
               now=NOW + 3),
        history("a is kept", "a"),
        history("b is kept", "b"),
        put("within the dedup window a create-only put answers exists", ("c", "again"),
            now=NOW + 30 * S),
        put("replace proceeds", ("c", "again"), now=NOW + 30 * S, replace=1),
        put("after the window it is created", ("b", "again"), now=NOW + 61 * S),
        put("two jobs to bury", ("d", "D"), ("e", "E"), now=NOW + 62 * S, run_at=NOW),
        reserve("lease all four ready jobs: c, b, d, e", "r", now=NOW + 62 * S, count=4),
        bury("bury d", "d", Token("r", 2), now=NOW + 63 * S, reason="bad"),
        bury("bury e: the dead cap ends d", "e", Token("r", 3), now=NOW + 64 * S),
        history("d ended dead with an expired event", "d"),
        history("a, past the window, was trimmed by the call that ended d", "a"),
        put("a again: its version goes on above every version trimmed away (version_floor)",
            ("a", "A2"), now=NOW + 65 * S),
        stats("one dead job left, c and b still reserved"),
    ]),
    "history_off_versions": ("with history off, versions of a reused id still never repeat", [
        meta("history off", history="0"),
        put("a job", ("a", "A")),
        put("replaced: version 2", ("a", "A2"), replace=1),
        reserve("lease it", "r"),
        ack("ack: it ends, no record kept; version_floor becomes 2", ("a", Token("r"))),
        put("a again: version 3, above every version that ended (and so is any new id)",
            ("a", "A3"), ("b", "B")),
        delete("delete a: version_floor 3", "a"),
        put("a once more: version 4", ("a", "A4")),
    ]),
    "partitioned_reads": ("a partitioned topic's own name says so where a read finds nothing", [
        put("a job put before the topic was partitioned", ("a", "A")),
        meta("partitioned: 3 partitions (the mark)", partitions=3),
        get("a job the topic itself holds is read as ever", "a"),
        get("no such job: the partition count instead of nil", "b"),
        put("a put of another id is refused: status 6, the count", ("b", "B")),
        delete("a delete that finds nothing: status 6, the count", "b"),
        reserve("the topic's own job is leased as ever", "r"),
        reserve("nothing leased: the count after the three times"),
        reserve("without times as well", times=0),
        pull("nothing to take: the count instead of nil"),
        stats("the count is stats' last value (0 when not partitioned)"),
    ]),
    "partitioned_schedules": ("a partitioned topic's own name says so where a schedule is not", [
        schedule("a schedule made before the topic was partitioned", "s", "S", every=3600 * S),
        get_schedule("no such schedule, not partitioned: nil", "t"),
        meta("partitioned: 3 partitions (the mark)", partitions=3),
        get_schedule("the topic's own schedule is read as ever; no such schedule: the "
                     "partition count instead of nil", "s", "t"),
        call("unschedule of no such schedule: 6 partitioned, the count (not 0: the glue "
             "raises, the schedule may be in its id's partition)", "unschedule", id="t",
             if_version="", now_ms=NOW),
        call("the topic's own schedule is unscheduled as ever", "unschedule", id="s",
             if_version="", now_ms=NOW),
    ]),
    "empty_optional_arguments": ("an empty string is every optional argument's default", [
        call("put: empty delay_ms 0, priority 0, replace 0 (and the other defaults)", "put",
             now_ms=NOW, run_at_ms="", delay_ms="", ttr_ms="", priority="", max_attempts="",
             replace="", if_version="", id=["a", "b"], body=["x", "y"]),
        get("due now, priority 0, ttr 60 s, unlimited attempts", "a"),
        call("jobs: empty after_*: from the start, limit 100, prefix none, scan 2000", "jobs",
             now_ms=NOW, state="ready", after_part="", after_score="", after_member="", limit="",
             prefix="", scan=""),
        call("timeline: empty width_ms 60000, limit 60 (60 counts)", "timeline", now_ms=NOW,
             width_ms="", limit=""),
        call("reserve: empty count 1, promote_limit 1000, times read", "reserve", "r", now_ms=NOW,
             count="", ttr_ms="", promote_limit="", times=""),
        call("release: empty delay_ms 0, refund 0 (the attempt counts)", "release", now_ms=NOW,
             id="a", token=Token("r"), delay_ms="", error="", refund=""),
        call("requeue: empty limit 1000", "requeue", now_ms=NOW, limit=""),
        call("kick: empty id and limit: up to 100 dead jobs", "kick", now_ms=NOW, id="",
             limit=""),
        call("pull: empty promote_limit 1000", "pull", now_ms=NOW, promote_limit=""),
        call("reschedule: empty run_at_ms and delay_ms: now", "reschedule", now_ms=NOW, id="a",
             run_at_ms="", delay_ms="", priority="", state=""),
        call("purge: empty limit 200, empty before: no bound", "purge", now_ms=NOW,
             state="ready", limit="", before="", up_to_seq=""),
    ]),
}
# fmt: on


def _resolve(value: Any, replies: dict[str, Any]) -> Any:
    if isinstance(value, Token):
        return replies[value.label][3 + value.index][job_fields().index("token")]
    if isinstance(value, After):
        return replies[value.label][0][value.index]
    if isinstance(value, list):
        return [_resolve(v, replies) for v in value]
    return value


def build(conn: redis.Redis, prefix: str = "redisched") -> dict[str, dict[str, Any]]:
    """Run every scenario on a fresh topic; the vectors with their replies, by name."""
    vectors = {}
    for name, (description, steps) in SCENARIOS.items():
        keys = TopicKeys(prefix, f"conformance-gen-{name}-{uuid.uuid4().hex[:8]}")
        labelled: dict[str, Any] = {}
        out = []
        for step in steps:
            step = dict(step)
            label = step.pop("label", None)
            if "args" in step:
                step["args"] = {k: _resolve(v, labelled) for k, v in step["args"].items()}
            step["reply"] = run_step(conn, keys, step)
            if label:
                labelled[label] = step["reply"]
            out.append(step)
        vectors[name] = {"name": name, "description": description, "steps": out}
    return vectors


def dumps(vector: dict[str, Any]) -> str:
    """A vector as JSON with one step per line, so that a diff shows the steps that changed."""
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in vector.items() if k != "steps"]
    lines.append('  "steps": [')
    steps = (f"    {json.dumps(step, ensure_ascii=False)}" for step in vector["steps"])
    lines.append(",\n".join(steps))
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write(vectors: dict[str, dict[str, Any]], folder: Path = VECTORS_DIR) -> None:
    """Write one file per vector and remove files of vectors that no longer exist."""
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("*.json"):
        if stale.stem not in vectors:
            stale.unlink()
    for name, vector in vectors.items():
        (folder / f"{name}.json").write_text(dumps(vector), encoding="utf-8")


def main() -> None:
    """Command line: generate the vectors on the given or a throwaway redis-server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="a server you own (default: start a throwaway one)")
    url = parser.parse_args().redis_url
    cron_vectors.write()
    webhook_vectors.write()
    if url:
        write(build(redis.Redis.from_url(url)))
        return
    from redisched.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory() as data, EmbeddedRedis(Path(data), persistent=False) as s:
        write(build(redis.Redis.from_url(s.url)))
    print(f"wrote {len(SCENARIOS)} vectors to {VECTORS_DIR}")


if __name__ == "__main__":
    main()
