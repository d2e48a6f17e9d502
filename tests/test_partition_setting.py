"""The ``partitions`` topic setting outside HTTP: the CLI, the Worker, the push dispatcher,
and the process cache that keeps unpartitioned topics free of extra round trips."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

import redisched
import redisched.partition_setting
import redisched.worker
from redisched import AsyncClient
from redisched.cli import main
from redisched.partition_setting import PartitionMap, configure, fold, run, served_topics
from redisched.partitions import AsyncPartitionedTopic, PartitionedTopic, Partitions
from redisched.push.dispatch_metrics import PrometheusDispatchMetrics
from tests.conftest import both_clients
from tests.test_dispatcher import (
    Receiver,
    client,
    dispatchers,
    prefix,
    receiver,
    until,
)
from tests.test_dispatcher import configure as set_webhook
from tests.unmarked import unmark, unmark_async

__all__ = ["client", "dispatchers", "prefix", "receiver"]  # fixtures


def cli(args: list[str], redis_url: str) -> Any:
    return CliRunner().invoke(main, args, env={"REDISCHED_REDIS_URL": redis_url})


def test_cli_config_sets_partitions_once(redis_url: str, topic: str) -> None:
    done = cli(["config", topic, "--set", "partitions=3", "--set", "ttr=7"], redis_url)
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert shown["config"]["partitions"] == 3 and shown["config"]["ttr"] == 7
    client = redisched.Client.from_url(redis_url)
    assert all(client.config(name).ttr == 7 for name in Partitions(topic, 3).names)
    for bad in ("0", "-1", "x", "1025", "4", "null", "2.5"):
        refused = cli(["config", topic, "--set", f"partitions={bad}", "--set", "ttr=9"], redis_url)
        assert refused.exit_code == 2 and "partitions" in refused.output, (bad, refused.output)
    assert client.config(topic).ttr == 7  # nothing changed
    assert json.loads(cli(["config", topic], redis_url).output)["config"]["partitions"] == 3


def test_cli_commands_route_by_id_and_stats_add_up(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 2}))
    layout = Partitions(topic, 2)
    for i in range(6):
        client.put(layout.route(f"j{i}"), f"j{i}", b"x", delay=600)
    assert cli(["run-now", topic, "j1"], redis_url).exit_code == 0
    job = client.reserve(layout.route("j1"))
    assert job is not None
    acked = cli(["ack", topic, "j1", "--token", str(job.token)], redis_url)
    assert acked.exit_code == 0, acked.output
    assert json.loads(acked.output)["topic"] == layout.route("j1")
    shown = cli(["history", topic, "j1"], redis_url)  # the finished job, in its partition
    assert shown.exit_code == 0 and json.loads(shown.output)["outcome"] == "done", shown.output
    stats = json.loads(cli(["stats", "--json"], redis_url).output)
    mine = [s for s in stats if s["topic"].startswith(topic)]
    assert [s["topic"] for s in mine] == [topic] and mine[0]["counts"]["scheduled"] == 5
    purged = cli(["purge", topic, "--state", "scheduled", "--yes"], redis_url)
    assert purged.exit_code == 0 and json.loads(purged.output)["deleted"] == 5
    deleted = cli(["delete-topic", topic, "--yes"], redis_url)
    assert deleted.exit_code == 0, deleted.output
    assert client.execute(redisched.partition_setting.read_count(client.ops, topic)) is None


async def test_worker_serves_every_partition(redis_url: str, topic: str) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        await redisched.partition_setting.run_async(
            client, configure(client.ops, topic, {"partitions": 3})
        )
        await unmark_async(client, topic)  # partitioned by an earlier version
        layout = Partitions(topic, 3)
        done: list[str] = []
        worker = redisched.Worker(
            client, {topic: lambda job: done.append(job.topic)}, handle_signals=False
        )
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        for i in range(30):
            await client.put(layout.route(f"w{i}"), f"w{i}", b"")
        await client.put(topic, "stray", b"")  # put by a process that did not know yet
        for _ in range(1000):  # 20 s at most, for a loaded machine
            if len(done) == 31:
                break
            await asyncio.sleep(0.02)
        worker.stop()
        await task
        assert set(done) == {topic, *layout.names} and len(done) == 31


async def test_worker_serves_the_partitions_of_a_topic_partitioned_while_it_runs(
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it idled on the topic's own name until restarted: every new job went into a partition
    monkeypatch.setattr(redisched.worker, "REFRESH", 0.05)  # the counts are read every 5 s
    async with AsyncClient.from_url(redis_url) as client:
        done: list[str] = []
        worker = redisched.Worker(
            client, {topic: lambda job: done.append(job.topic)}, handle_signals=False
        )
        task = asyncio.create_task(worker.run())
        await worker.wait_started()  # on the topic alone: not partitioned yet (and empty)
        await redisched.partition_setting.run_async(
            client, configure(client.ops, topic, {"partitions": 3})
        )
        layout = Partitions(topic, 3)
        for i in range(30):
            await client.put(layout.route(f"w{i}"), f"w{i}", b"")
        for _ in range(1000):  # 20 s at most, for a loaded machine
            if len(done) == 30:
                break
            await asyncio.sleep(0.02)
        worker.stop()
        await task
        assert set(done) == set(layout.names) and len(done) == 30


async def test_a_stopped_worker_leaves_no_partition_loop_behind(
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the loops of partitions added while it ran were neither cancelled nor awaited: after
    # run() returned they went on leasing jobs that nothing ran (a stubborn handler kept
    # them from ending on their own)
    monkeypatch.setattr(redisched.worker, "REFRESH", 0.05)
    async with AsyncClient.from_url(redis_url) as client:
        started = asyncio.Event()

        async def stubborn(job: redisched.Job) -> None:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await asyncio.sleep(1.5)  # ignores its cancellation for a while

        worker = redisched.Worker(client, {topic: stubborn}, grace=0.1, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        await redisched.partition_setting.run_async(
            client, configure(client.ops, topic, {"partitions": 2})
        )
        layout = Partitions(topic, 2)
        await client.put(layout.route("a"), "a", b"")
        await asyncio.wait_for(started.wait(), 20)
        worker.stop()
        await task
        left = [t.get_name() for t in asyncio.all_tasks() if "worker topic" in t.get_name()]
        assert left == []


async def test_dispatcher_delivers_partitions_with_the_topics_webhook(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    await set_webhook(client, topic, receiver)
    await redisched.partition_setting.run_async(
        client, configure(client.ops, topic, {"partitions": 2})
    )
    await unmark_async(client, topic)  # partitioned by an earlier version
    await dispatchers()
    layout = Partitions(topic, 2)
    for i in range(8):
        await client.put(layout.route(f"h{i}"), f"h{i}", b"{}")
    await client.put(topic, "stray", b"{}")  # put by a process that did not know the count

    async def delivered() -> bool:
        return len(receiver.successes) == 9

    await until(delivered)
    assert {c.payload["topic"] for c in receiver.calls} == {topic, *layout.names}


async def test_dispatcher_metrics_name_the_partitioned_topic_not_its_partitions(
    client: AsyncClient, topic: str, receiver: Receiver, dispatchers: Any
) -> None:
    """A Prometheus user who partitioned a topic asks about that topic: its deliveries, lag
    and held gauge are labelled with it (no ``~p`` label), and it is held while any of its
    partitions is."""
    await set_webhook(client, topic, receiver)
    await redisched.partition_setting.run_async(
        client, configure(client.ops, topic, {"partitions": 3})
    )
    await unmark_async(client, topic)  # partitioned by an earlier version
    registry = CollectorRegistry()
    dispatcher = await dispatchers(metrics=PrometheusDispatchMetrics(registry))
    layout = Partitions(topic, 3)
    for i in range(8):
        await client.put(layout.route(f"m{i}"), f"m{i}", b"{}")
    await client.put(topic, "stray", b"{}")  # the topic's own job counts with its partitions
    mine = {"topic": topic}

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {**mine, **labels})

    async def acked() -> bool:
        return sample("redisched_webhook_deliveries_total", outcome="acked") == 9

    await until(acked)
    assert sample("redisched_webhook_latency_seconds_count") == 9
    assert sample("redisched_dispatch_lag_seconds_count") == 9
    assert f"{topic}~p" not in generate_latest(registry).decode()

    meta = client.ops.keys(layout.name(1)).name("meta")
    stored = await client.redis.hget(meta, "webhook")
    bad = {"url": receiver.url, "secrets": ["whsec_!!not-base64"], "timeout": 2.0}
    await client.redis.hset(meta, "webhook", json.dumps(bad))  # stored before secrets were checked
    dispatcher.request_refresh()

    async def held(value: float) -> bool:
        return sample("redisched_webhook_held") == value

    await until(lambda: held(1))
    assert sorted(dispatcher.held) == [layout.name(1)]  # one partition held: the topic is
    await client.redis.hset(meta, "webhook", stored)
    dispatcher.request_refresh()
    await until(lambda: held(0))
    assert f"{topic}~p" not in generate_latest(registry).decode()


async def test_the_cache_reads_once_then_in_the_background(redis_url: str, topic: str) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        now = [0.0]
        cache = PartitionMap(refresh=5, clock=lambda: now[0])
        assert (await cache.current(client)).get(topic) is None
        await redisched.partition_setting.run_async(
            client, configure(client.ops, topic, {"partitions": 2})
        )
        assert (await cache.current(client)).get(topic) is None  # trusted for 5 s
        now[0] = 6
        await cache.current(client)  # starts the background read, answers from memory
        await cache.close()
        found = cache.get(topic)
        assert found is not None and found.count == 2
        found.rotation()
        cache.load({topic: 2})
        assert cache.get(topic) is found  # the reserve rotation carries over


def test_fold_hides_partitions_only() -> None:
    names = ["a", "a~p0", "a~p1", "a~p2", "b~p0", "c~p01"]
    assert fold(names, {"a": 2}) == ["a", "a~p2", "b~p0", "c~p01"]
    assert fold([], {"x": 3}) == ["x"]


async def test_served_topics_leave_unpartitioned_topics_alone(redis_url: str, topic: str) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        assert await served_topics(client, [topic]) == {topic: topic}


def test_cli_put_get_reserve_delete_and_topics(redis_url: str, topic: str) -> None:
    assert cli(["config", topic, "--set", "partitions=2"], redis_url).exit_code == 0
    layout = Partitions(topic, 2)
    put = cli(["put", topic, "a", "hello"], redis_url)
    assert put.exit_code == 0 and json.loads(put.output)["topic"] == layout.route("a")
    again = cli(["put", topic, "a", "hello"], redis_url)
    assert again.exit_code == 1  # exists, in its partition
    got = cli(["get", topic, "a"], redis_url)
    assert got.exit_code == 0 and json.loads(got.output)["topic"] == layout.route("a")
    listed = json.loads(cli(["topics"], redis_url).output)
    assert topic in listed and layout.route("a") not in listed
    page = json.loads(cli(["jobs", topic, "--state", "ready", "--json"], redis_url).output)
    assert [j["id"] for j in page["jobs"]] == ["a"]
    reserved = json.loads(cli(["reserve", topic], redis_url).output)
    assert [j["id"] for j in reserved] == ["a"]
    assert cli(["delete", topic, "a"], redis_url).exit_code == 0
    assert cli(["get", topic, "a"], redis_url).exit_code == 1


def test_cli_pause_and_the_timeline_cover_the_partitions(redis_url: str, topic: str) -> None:
    assert cli(["config", topic, "--set", "partitions=2"], redis_url).exit_code == 0
    client = redisched.Client.from_url(redis_url)
    assert cli(["pause", topic], redis_url).exit_code == 0
    assert all(
        client.execute(client.ops.stats(name, own=True)).paused
        for name in [topic, *Partitions(topic, 2).names]
    )
    assert cli(["resume", topic], redis_url).exit_code == 0
    assert not any(
        client.execute(client.ops.stats(name, own=True)).paused
        for name in [topic, *Partitions(topic, 2).names]
    )


def test_cli_schedules_go_to_the_ids_partition(redis_url: str, topic: str) -> None:
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    held = Partitions(topic, 3).route("tick")
    made = cli(["schedule", topic, "tick", "--every", "60"], redis_url)
    assert made.exit_code == 0 and json.loads(made.output)["topic"] == held, made.output
    assert client.get_schedule(held, "tick") is not None
    assert client.execute(client.ops.get_schedule(topic, "tick", own=True)) is None
    listed = json.loads(cli(["schedules", topic], redis_url).output)
    assert [(s["topic"], s["id"]) for s in listed] == [(held, "tick")]
    assert cli(["unschedule", topic, "tick"], redis_url).exit_code == 0
    assert client.get_schedule(held, "tick") is None
    assert json.loads(cli(["schedules", topic], redis_url).output) == []


def test_cli_puts_into_a_partitions_name_only_the_ids_that_route_to_it(
    redis_url: str, topic: str
) -> None:
    """``redisched put t~p1 ID`` of an id that routes to another partition made a second live
    job of the id (the HTTP API refuses it, naming ``id``), and so did ``schedule``."""
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    layout = Partitions(topic, 3)
    home = layout.route("j")
    other = next(name for name in layout.names if name != home)
    assert cli(["put", topic, "j", "1"], redis_url).exit_code == 0
    for args in (["put", other, "j", "2"], ["schedule", other, "j", "--every", "60"]):
        refused = cli(args, redis_url)
        said = refused.output
        assert refused.exit_code == 2 and "Error: ID:" in said and home in said, (args, said)
    assert client.get(other, "j") is None and client.get_schedule(other, "j") is None
    again = cli(["put", home, "j", "3", "--replace"], redis_url)
    assert again.exit_code == 0 and json.loads(again.output)["version"] == 2, again.output
    # a topic whose name only looks like a partition's takes any id
    assert cli(["put", f"{topic}x~p1", "j", "4"], redis_url).exit_code == 0


def test_cli_schedule_commands_find_a_schedule_of_the_topic_itself(
    redis_url: str, topic: str
) -> None:
    """A schedule made on a partitioned topic with a client lives in the topic itself: the
    CLI looked in its id's partition only (unschedule exit 1, schedule made a second one)."""
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    unmark(client, topic)  # partitioned by an earlier version
    client.schedule(topic, "tick", b"old", every=3600)
    made = cli(["schedule", topic, "tick", "--every", "60"], redis_url)
    assert made.exit_code == 0, made.output
    assert (json.loads(made.output)["topic"], json.loads(made.output)["version"]) == (topic, 2)
    listed = json.loads(cli(["schedules", topic], redis_url).output)
    assert [(s["topic"], s["id"]) for s in listed] == [(topic, "tick")]
    assert cli(["unschedule", topic, "tick"], redis_url).exit_code == 0
    assert json.loads(cli(["schedules", topic], redis_url).output) == []


def pending_occurrence(
    client: redisched.Client, topic: str, sid: str
) -> tuple[redisched.Schedule, str]:
    """Schedule ``sid`` of ``topic`` and the id of its pending occurrence."""
    schedule = client.get_schedule(topic, sid)
    assert schedule is not None and schedule.next_run_at is not None
    return schedule, f"{sid}@{schedule.next_run_at:%Y-%m-%dT%H:%M:%SZ}"


def test_cli_history_finds_a_finished_occurrence_with_its_schedule(
    redis_url: str, topic: str
) -> None:
    """A finished occurrence's record stays with its schedule: `redisched history` looked in
    the live jobs only, then in the id's partition and the topic (exit 1)."""
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 4}))
    layout, checked = Partitions(topic, 4), 0
    for n in range(12):
        sid = f"tick{n}"
        assert cli(["schedule", topic, sid, "--every", "3600"], redis_url).exit_code == 0
        home = layout.route(sid)
        _, occurrence = pending_occurrence(client, home, sid)
        if layout.route(occurrence) == home:
            continue  # its own id's partition holds it by chance: not the case under test
        checked += 1
        client.run_now(home, occurrence)
        # the occurrences of the schedules skipped above may be due in the same partition
        for _ in range(12):
            job = client.reserve(home)
            assert job is not None
            client.ack(job)
            if job.id == occurrence:
                break
        assert job.id == occurrence
        shown = cli(["history", topic, occurrence], redis_url)
        assert shown.exit_code == 0 and json.loads(shown.output)["outcome"] == "done", shown.output
    assert checked >= 2


def test_a_partitioned_topics_stats_add_up_every_finished_count(redis_url: str, topic: str) -> None:
    # merge_stats added the per-state counts and the totals but not the finished_* counts:
    # a partitioned topic showed 0 done, cancelled, dead, pulled and aborted for ever.
    client = redisched.Client.from_url(redis_url)
    layout = PartitionedTopic(client, topic, 2).declare()
    ids = [f"j{i}" for i in range(8)]
    for job_id in ids:
        layout.put(job_id, b"x")
    for job_id in ids[:4]:
        job = client.reserve(layout.partitions.route(job_id))
        assert job is not None
        client.ack(job)
    client.delete(layout.partitions.route(ids[4]), ids[4])
    client.abort(layout.partitions.route(ids[5]), ids[5])
    stats = layout.stats()
    assert (stats.finished_done, stats.finished_cancelled, stats.finished_aborted) == (4, 1, 1)
    assert stats.ready == 2


def test_cli_get_and_delete_find_an_occurrence_with_its_schedule(
    redis_url: str, topic: str
) -> None:
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 4}))
    unmark(client, topic)  # partitioned by an earlier version
    layout, checked = Partitions(topic, 4), 0
    for n in range(12):  # made by the CLI (in its id's partition) and on the topic itself
        sid = f"tick{n}"
        if n % 2:
            client.schedule(topic, sid, b"", every=3600)
            holder = topic
        else:
            assert cli(["schedule", topic, sid, "--every", "3600"], redis_url).exit_code == 0
            holder = layout.route(sid)
        first, occurrence = pending_occurrence(client, holder, sid)
        if layout.route(occurrence) == holder:
            continue  # its own id's partition holds it by chance: not the case under test
        checked += 1
        shown = cli(["get", topic, occurrence], redis_url)
        assert shown.exit_code == 0 and json.loads(shown.output)["id"] == occurrence, shown.output
        assert cli(["delete", topic, occurrence], redis_url).exit_code == 0
        after = client.get_schedule(holder, sid)
        assert after is not None and after.next_run_at is not None
        assert after.next_run_at > first.next_run_at  # the run is skipped, the schedule goes on
    assert checked >= 2


def test_a_partitioned_topic_reserves_the_jobs_put_into_the_topic_itself(
    redis_url: str, topic: str
) -> None:
    """A process that read no count (or an old one) puts into the topic itself; reserves
    visited only the partitions, so such jobs waited for ever."""
    client = redisched.Client.from_url(redis_url)
    hot = PartitionedTopic(client, topic, 3).declare()
    unmark(client, topic)  # partitioned by an earlier version
    client.put(topic, "stray", b"s")
    hot.put_many([(f"j{i}", b"") for i in range(6)])
    served = [job for job in iter(hot.reserve, None)]
    assert sorted(j.id for j in served) == ["j0", "j1", "j2", "j3", "j4", "j5", "stray"]
    stray = next(j for j in served if j.id == "stray")
    assert stray.topic == topic
    client.ack(stray)  # the reserved job's topic holds it
    assert hot.stats().total_acked == 1
    client.put(topic, "later", b"", delay=60)
    lease = hot.lease(5)
    assert lease.jobs == [] and lease.next_due_ms is not None  # its next due counts too


async def test_an_async_partitioned_topic_reserves_the_jobs_put_into_the_topic_itself(
    redis_url: str, topic: str
) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        hot = await AsyncPartitionedTopic(client, topic, 2).declare()
        await unmark_async(client, topic)  # partitioned by an earlier version
        await client.put(topic, "stray", b"s")
        await hot.put("j0", b"")
        jobs = await hot.reserve_many(5)
        assert sorted((j.id, j.topic) for j in jobs) == [
            ("j0", hot.partitions.route("j0")),
            ("stray", topic),
        ]


def test_cli_by_id_commands_find_a_job_of_the_topic_itself(redis_url: str, topic: str) -> None:
    """The CLI looked for a job in its id's partition only; one put into the topic itself
    (by a process that did not know the count yet) was not found, nor acked once reserved."""
    client = redisched.Client.from_url(redis_url)
    run(client, configure(client.ops, topic, {"partitions": 3}))
    unmark(client, topic)  # partitioned by an earlier version
    client.put(topic, "own", b"x")
    got = cli(["get", topic, "own"], redis_url)
    assert got.exit_code == 0 and json.loads(got.output)["topic"] == topic, got.output
    replaced = cli(["put", topic, "own", "y", "--replace"], redis_url)  # where it is
    assert replaced.exit_code == 0 and json.loads(replaced.output)["topic"] == topic
    reserved = json.loads(cli(["reserve", topic, "--count", "5"], redis_url).output)
    assert [(j["id"], j["topic"]) for j in reserved] == [("own", topic)]
    acked = cli(["ack", topic, "own", "--token", reserved[0]["token"]], redis_url)
    assert acked.exit_code == 0, acked.output
    shown = cli(["history", topic, "own"], redis_url)
    assert shown.exit_code == 0 and json.loads(shown.output)["outcome"] == "done", shown.output
    made = cli(["put", topic, "new", "z"], redis_url)  # a new job: its id's partition
    assert json.loads(made.output)["topic"] == Partitions(topic, 3).route("new")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_plain_clients_configure_and_pause_reach_the_partitions(
    kind: str, redis_url: str, topic: str
) -> None:
    """Client.configure and pause changed the partitioned topic's own meta hash only: jobs put
    into its partitions still got the old defaults, and they went on leasing while paused."""
    async with both_clients(kind, redis_url, None) as client:
        with redisched.Client.from_url(redis_url) as setup:
            run(setup, configure(setup.ops, topic, {"partitions": 3}))
        layout = Partitions(topic, 3)
        config = await client.configure(topic, max_attempts=3, ttr=30)
        assert config.partitions == 3 and (await client.config(topic)).partitions == 3
        for name in layout.names:
            partition = await client.config(name)
            assert (partition.max_attempts, partition.ttr) == (3, 30.0)
        with pytest.raises(redisched.InvalidArgument) as refused:
            await client.configure(layout.name(1), ttr=5)  # a partition only through its topic
        assert refused.value.argument == "topic"
        with pytest.raises(redisched.InvalidArgument) as refused:
            await client.configure(topic, partitions=4)
        assert refused.value.argument == "partitions"
        assert await client.pause(topic) is True
        await client.put(layout.route("j"), "j", b"1")
        assert await client.reserve(layout.route("j")) is None  # its partition is paused too
        assert await client.resume(topic) is True
        job = await client.reserve(layout.route("j"))
        assert job is not None and job.max_attempts == 3


def test_client_delete_topic_deletes_its_partitions(redis_url: str, topic: str) -> None:
    """A plain Client.delete_topic deleted the topic's keys and its count but left every
    partition, and their jobs, behind as ordinary topics."""
    with redisched.Client.from_url(redis_url) as client:
        run(client, configure(client.ops, topic, {"partitions": 3, "ttr": 30}))
        layout = Partitions(topic, 3)
        for i in range(9):
            client.put(layout.route(f"j{i}"), f"j{i}", b"1", delay=600)
        client.put(layout.route("busy"), "busy", b"1")
        assert client.reserve(layout.route("busy")) is not None
        with pytest.raises(redisched.TopicBusy) as busy:
            client.delete_topic(topic)
        assert busy.value.reserved == 1 and client.stats(layout.route("j0")).scheduled >= 1
        with pytest.raises(redisched.InvalidArgument) as partition:
            client.delete_topic(layout.name(1))
        assert partition.value.argument == "topic" and "partition of" in str(partition.value)
        seen: list[tuple[int, int]] = []
        assert client.delete_topic(topic, force=True, progress=lambda *p: seen.append(p)) == 10
        assert seen[-1] == (10, 0)
        assert topic not in client.topics()
        assert not [name for name in client.topics() if name.startswith(f"{topic}~p")]
        assert client.execute(redisched.partition_setting.read_count(client.ops, topic)) is None
        for name in layout.names:
            assert (
                client.execute(client.ops.stats(name, own=True)).scheduled == 0
                and client.config(name).ttr is None
            )


async def test_async_client_delete_topic_deletes_its_partitions(redis_url: str, topic: str) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        await redisched.partition_setting.run_async(
            client, configure(client.ops, topic, {"partitions": 2})
        )
        layout = Partitions(topic, 2)
        await client.put(layout.route("a"), "a", b"1", delay=600)
        assert await client.delete_topic(topic) == 1
        assert await client.get(layout.route("a"), "a") is None
        assert not [name for name in await client.topics() if name.startswith(topic)]


def test_a_topic_whose_partition_name_holds_jobs_cannot_be_partitioned(
    redis_url: str, topic: str
) -> None:
    """Partitioning took over a plain topic named like one of its partitions (``t~p0``), jobs
    and all: a later put of one of its ids, routed to another partition, made a second job."""
    layout = Partitions(topic, 2)
    with redisched.Client.from_url(redis_url) as client:
        client.put(layout.name(0), "k", b"old")
        with pytest.raises(redisched.InvalidArgument) as refused:
            run(client, configure(client.ops, topic, {"partitions": 2}))
        assert refused.value.argument == "partitions"
        assert f"{layout.name(0)!r}" in str(refused.value)
        assert client.execute(redisched.partition_setting.read_count(client.ops, topic)) is None
        assert client.get(layout.name(0), "k") is not None  # untouched
        client.delete(layout.name(0), "k")  # a finished record stays: still refused
        with pytest.raises(redisched.InvalidArgument, match="finished job records"):
            run(client, configure(client.ops, topic, {"partitions": 2}))
        client.delete_topic(layout.name(0))
        assert run(client, configure(client.ops, topic, {"partitions": 2})) is not None


def _one_bad_body(layout: Partitions) -> tuple[list[tuple[str, Any]], int]:
    """Jobs for 4 partitions, the body of one in a later partition than the first job's bad."""
    jobs: list[tuple[str, Any]] = [(f"j{i}", b"ok") for i in range(8)]
    first = layout.route("j0")
    bad = next(i for i, (job_id, _) in enumerate(jobs) if layout.route(job_id) != first)
    jobs[bad] = (jobs[bad][0], 5)
    return jobs, bad


@pytest.mark.parametrize(
    ("jobs", "options", "argument"),
    [
        (None, {}, "jobs[{bad}].body"),  # the bad job's place in the list, not in its partition
        ([("j0", b""), ("j1", b""), (".", b"")], {}, "jobs[2].id"),
        ([("j0", b""), ("j1", b"")], {"delay": -1}, "delay"),
        (5, {}, "jobs"),  # was a TypeError
    ],
)
async def test_a_partitioned_put_many_checks_every_job_before_putting_any(
    redis_url: str, topic: str, jobs: Any, options: dict[str, Any], argument: str
) -> None:
    """The partitions' put_many ran one after the other, each checking its own jobs: a bad
    body in a later partition came after the earlier partitions' jobs were stored, and was
    named by its place in its partition (``jobs[0]`` for the second job)."""
    layout = Partitions(topic, 4)
    bad = 0
    if jobs is None:
        jobs, bad = _one_bad_body(layout)
    with redisched.Client.from_url(redis_url) as client:
        hot = PartitionedTopic(client, topic, 4).declare()
        with pytest.raises(redisched.InvalidArgument) as refused:
            hot.put_many(jobs, **options)
        assert refused.value.argument == argument.format(bad=bad)
        assert hot.stats().total_put == 0
    async with AsyncClient.from_url(redis_url) as aclient:
        ahot = AsyncPartitionedTopic(aclient, topic, 4)
        with pytest.raises(redisched.InvalidArgument) as refused:
            await ahot.put_many(jobs, **options)
        assert refused.value.argument == argument.format(bad=bad)
        assert (await ahot.stats()).total_put == 0
