"""Listing cursors name the last job seen: paging while jobs come and go skips and repeats
nothing (docs/design.md section 10, "Listing")."""

from __future__ import annotations

from typing import Any

import pytest

import redisched
from redisched import InvalidArgument, cursors
from redisched.partition_setting import configure, finished_page, jobs_page, run_async
from redisched.partitions import Partitions
from tests.conftest import FakeClock

pytestmark = pytest.mark.asyncio


async def test_deleting_each_page_skips_nothing(api: Any, topic: str) -> None:
    ids = [f"j{i:03d}" for i in range(250)]
    await api.put_many(topic, [(i, b"") for i in ids])  # all priority 0: one score
    seen: list[str] = []
    cursor = None
    while True:
        page = await api.jobs(topic, "ready", limit=100, cursor=cursor)
        seen += [job.id for job in page.jobs]
        await api.delete_many(topic, [job.id for job in page.jobs], state="ready")
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == ids


async def test_reserves_taking_listed_jobs_skip_nothing(api: Any, topic: str) -> None:
    ids = [f"r{i:02d}" for i in range(30)]
    await api.put_many(topic, [(i, b"") for i in ids])
    first = await api.jobs(topic, "ready", limit=10)
    await api.reserve_many(topic, 15)  # the first page and five jobs after it
    second = await api.jobs(topic, "ready", limit=10, cursor=first.cursor)
    assert [j.id for j in first.jobs + second.jobs] == ids[:10] + ids[15:25]


async def test_a_job_put_before_the_cursor_is_not_repeated(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put_many(topic, [(f"s{i:02d}", b"") for i in range(10)], delay=60)
    first = await api.jobs(topic, "scheduled", limit=4)
    await api.put(topic, "early", b"", delay=30)  # before every listed job
    rest = await api.jobs(topic, "scheduled", limit=100, cursor=first.cursor)
    assert [j.id for j in first.jobs + rest.jobs] == [f"s{i:02d}" for i in range(10)]
    ready = [f"p{i:02d}" for i in range(6)]
    await api.put_many(topic, [(i, b"") for i in ready])
    page = await api.jobs(topic, "ready", limit=3)
    await api.put(topic, "urgent", b"", priority=-5)  # reserve order: before every ready job
    rest = await api.jobs(topic, "ready", limit=100, cursor=page.cursor)
    assert [j.id for j in page.jobs + rest.jobs] == ready


async def test_dead_and_due_jobs_page_by_the_last_seen(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put_many(topic, [(f"d{i}", b"") for i in range(6)])
    for job in await api.reserve_many(topic, 6):
        clock.advance(1)
        await api.bury(job)
    first = await api.jobs(topic, "dead", limit=2)
    assert [j.id for j in first.jobs] == ["d5", "d4"]  # most recent death first
    await api.delete_many(topic, ["d5", "d4"])
    rest = await api.jobs(topic, "dead", limit=100, cursor=first.cursor)
    assert [j.id for j in rest.jobs] == ["d3", "d2", "d1", "d0"] and rest.cursor is None
    await api.put_many(topic, [(f"due{i}", b"") for i in range(4)], delay=5)
    await api.put(topic, "ready", b"")
    clock.advance(5)  # due, not promoted: listed after the ready job
    first = await api.jobs(topic, "ready", limit=2)
    assert [j.id for j in first.jobs] == ["ready", "due0"]
    await api.delete_many(topic, ["ready", "due0"])
    rest = await api.jobs(topic, "ready", limit=100, cursor=first.cursor)
    assert [j.id for j in rest.jobs] == ["due1", "due2", "due3"]


async def test_a_prefix_page_resumes_after_the_last_job_examined(api: Any, topic: str) -> None:
    await api.put_many(topic, [(f"a{i}", b"") for i in range(5)] + [("b0", b""), ("a5", b"")])
    first = await api.jobs(topic, "ready", prefix="a", limit=5)
    await api.delete_many(topic, [j.id for j in first.jobs])
    rest = await api.jobs(topic, "ready", prefix="a", limit=5, cursor=first.cursor)
    assert [j.id for j in rest.jobs] == ["a5"] and rest.cursor is None


async def test_finished_jobs_arriving_while_paging_are_not_repeated(
    api: Any, topic: str, clock: FakeClock
) -> None:
    for i in range(6):
        clock.advance(1)
        await api.put(topic, f"f{i}", b"")
        await api.delete(topic, f"f{i}")
    first = await api.finished(topic, limit=3)
    assert [h.id for h in first.jobs] == ["f5", "f4", "f3"]
    for i in range(6, 9):  # newer: before the cursor in most-recent-first order
        clock.advance(1)
        await api.put(topic, f"f{i}", b"")
        await api.delete(topic, f"f{i}")
    rest = await api.finished(topic, limit=3, cursor=first.cursor)
    assert [h.id for h in rest.jobs] == ["f2", "f1", "f0"] and rest.cursor is None


@pytest.mark.parametrize(
    "cursor", ["x1", "12", "", "ready.1.0", "ready.1.0.YQ.zzzzzzzz", "ready.9.0.YQ.00000000"]
)
async def test_garbage_cursors_are_refused(api: Any, topic: str, cursor: str) -> None:
    with pytest.raises(InvalidArgument, match="cursor"):
        await api.jobs(topic, "ready", cursor=cursor or "?")
    with pytest.raises(InvalidArgument, match="cursor"):
        await api.finished(topic, cursor=cursor or "?")


@pytest.mark.parametrize("score", ["1e999", "-1e999", "inf"])
async def test_a_cursor_whose_score_is_not_finite_is_refused(
    api: Any, topic: str, score: str
) -> None:
    """``1e999`` reads as inf as surely as ``inf`` does: both are forged, neither an empty page."""
    await api.put(topic, "a", b"")
    for listing in ("ready", "scheduled", "finished"):
        forged = cursors.encode(topic, listing, (1, score, b"a"))
        with pytest.raises(InvalidArgument, match="cursor"):
            if listing == "finished":
                await api.finished(topic, cursor=forged)
            else:
                await api.jobs(topic, listing, cursor=forged)


async def test_another_listings_cursor_is_refused(api: Any, topic: str) -> None:
    await api.put_many(topic, [("a", b""), ("b", b"")])
    page = await api.jobs(topic, "ready", limit=1)
    assert page.cursor is not None
    with pytest.raises(InvalidArgument, match="another topic"):
        await api.jobs(topic + "-other", "ready", cursor=page.cursor)
    with pytest.raises(InvalidArgument, match="cursor"):
        await api.jobs(topic, "scheduled", cursor=page.cursor)
    with pytest.raises(InvalidArgument, match="cursor"):
        await api.finished(topic, cursor=page.cursor)


async def test_a_partitioned_listing_deleted_page_by_page_skips_nothing(
    redis_url: str, topic: str
) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await run_async(client, configure(client.ops, topic, {"partitions": 3}))
        layout = Partitions(topic, 3)
        ids = [f"p{i:03d}" for i in range(60)]
        for job_id in ids:
            await client.put(layout.route(job_id), job_id, b"")
        seen: list[str] = []
        cursor = None
        while True:
            flow = jobs_page(client.ops, layout, "ready", limit=7, cursor=cursor)
            page = await run_async(client, flow)
            seen += [job.id for job in page.jobs]
            for job in page.jobs:
                await client.delete(layout.route(job.id), job.id)
            if page.cursor is None:
                break
            cursor = page.cursor
        assert sorted(seen) == ids and len(seen) == len(ids)
        finished: list[str] = []
        cursor = None
        while True:
            history = await run_async(
                client, finished_page(client.ops, layout, limit=7, cursor=cursor)
            )
            finished += [h.id for h in history.jobs]
            if history.cursor is None:
                break
            cursor = history.cursor
        assert sorted(finished) == ids and len(finished) == len(ids)  # each deleted once


async def test_equal_scores_resume_in_byte_order_after_a_deleted_job(api: Any, topic: str) -> None:
    # One run_at for all: the place of a deleted job is found among members of one score,
    # compared bytewise as Redis orders them (uppercase before lowercase, "_" between).
    ids = [f"{a}{b}" for a in ("B", "a", "_", "Z", "b", "0") for b in ("x", "Y", "-", "~")]
    await api.put_many(topic, [(i, b"") for i in ids], delay=60)
    seen = await pages_deleting_each_last_job(api, topic, "scheduled")
    assert seen == sorted(ids, key=str.encode)


async def test_dead_jobs_of_one_death_time_resume_in_reverse_byte_order(
    api: Any, topic: str
) -> None:
    ids = [f"{a}{b}" for a in ("B", "a", "_", "Z") for b in ("x", "Y", "-")]
    await api.put_many(topic, [(i, b"") for i in ids])
    for job in await api.reserve_many(topic, len(ids)):
        await api.bury(job)  # the clock stands still: one score
    seen = await pages_deleting_each_last_job(api, topic, "dead")
    assert seen == sorted(ids, key=str.encode, reverse=True)


async def pages_deleting_each_last_job(api: Any, topic: str, state: str) -> list[str]:
    """The ids listed page by page (5 a page), deleting each page's last job before the next."""
    seen: list[str] = []
    cursor = None
    while True:
        page = await api.jobs(topic, state, limit=5, cursor=cursor)
        seen += [job.id for job in page.jobs]
        await api.delete_many(topic, [page.jobs[-1].id] if page.jobs else [])
        if page.cursor is None:
            return seen
        cursor = page.cursor
