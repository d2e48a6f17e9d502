"""Bad input: every public method rejects each wrong value with InvalidArgument naming the
argument, before anything reaches Redis, and leaves stored jobs as they were; input that only
the scripts can refuse (forged tokens, wrong versions) is refused alike over Python and HTTP,
naming the field, with nothing changed."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import redisched
from redisched import InvalidArgument
from redisched.embedded import free_port
from tests.http_fixtures import asgi_client

T = "topic"
JOB = SimpleNamespace(topic=T, id="j", token="1")
NAIVE = datetime(2030, 1, 1)
CURSOR = "ready.1.1.YQ.00000000"  # well-formed: only its topic tag is wrong

Case = tuple[str, Callable[[Any], Any], str]
CASES: list[Case] = [
    # topic
    ("empty topic", lambda c: c.put("", "j", b""), "topic"),
    ("long topic", lambda c: c.put("t" * 201, "j", b""), "topic"),
    ("brace in topic", lambda c: c.get("a{b}", "j"), "topic"),
    ("control char in topic", lambda c: c.stats("a\nb"), "topic"),
    ("topic not str", lambda c: c.reserve(b"topic"), "topic"),
    # id
    ("empty id", lambda c: c.put(T, "", b""), "id"),
    ("id over 1024 bytes", lambda c: c.put(T, "é" * 513, b""), "id"),
    ("id not str", lambda c: c.get(T, 42), "id"),
    ("lone surrogate id", lambda c: c.delete(T, "\ud800"), "id"),
    # body
    ("body over limit", lambda c: c.put(T, "j", b"x" * (1024 * 1024 + 1)), "body"),
    ("body wrong type", lambda c: c.put(T, "j", {"a": 1}), "body"),
    ("body lone surrogate", lambda c: c.put(T, "j", "\udfff"), "body"),
    # times
    ("negative delay", lambda c: c.put(T, "j", b"", delay=-1), "delay"),
    ("nan delay", lambda c: c.put(T, "j", b"", delay=math.nan), "delay"),
    ("inf delay", lambda c: c.put(T, "j", b"", delay=math.inf), "delay"),
    ("bool delay", lambda c: c.put(T, "j", b"", delay=True), "delay"),
    ("str delay", lambda c: c.put(T, "j", b"", delay="5"), "delay"),
    ("negative timedelta", lambda c: c.put(T, "j", b"", delay=timedelta(seconds=-1)), "delay"),
    ("delay and run_at", lambda c: c.put(T, "j", b"", delay=1, run_at=1e9), "delay"),
    ("naive run_at", lambda c: c.put(T, "j", b"", run_at=NAIVE), "run_at"),
    ("nan run_at", lambda c: c.put(T, "j", b"", run_at=math.nan), "run_at"),
    ("negative run_at", lambda c: c.put(T, "j", b"", run_at=-5), "run_at"),
    # ints too large for a float: were OverflowError: int too large to convert to float
    ("int delay beyond a float", lambda c: c.put(T, "j", b"", delay=10**400), "delay"),
    ("int ttr beyond a float", lambda c: c.reserve(T, ttr=10**400), "ttr"),
    ("int run_at beyond a float", lambda c: c.put(T, "j", b"", run_at=-(10**400)), "run_at"),
    ("int every beyond a float", lambda c: c.schedule(T, "s", b"", every=10**400), "every"),
    ("int rate beyond a float", lambda c: c.configure(T, rate=10**400), "rate"),
    ("int webhook timeout beyond a float",
     lambda c: c.configure(T, webhook={"url": "http://h", "timeout": 10**400}), "webhook.timeout"),
    ("zero ttr", lambda c: c.put(T, "j", b"", ttr=0), "ttr"),
    ("negative ttr", lambda c: c.reserve(T, ttr=-1), "ttr"),
    ("huge ttr", lambda c: c.put(T, "j", b"", ttr=10**9), "ttr"),
    ("nan ttr", lambda c: c.touch(JOB, ttr=math.nan), "ttr"),
    # numbers
    ("float priority", lambda c: c.put(T, "j", b"", priority=1.5), "priority"),
    ("bool priority", lambda c: c.put(T, "j", b"", priority=False), "priority"),
    ("huge priority", lambda c: c.put(T, "j", b"", priority=2**40), "priority"),
    ("zero max_attempts", lambda c: c.put(T, "j", b"", max_attempts=0), "max_attempts"),
    ("str max_attempts", lambda c: c.put(T, "j", b"", max_attempts="3"), "max_attempts"),
    ("replace not bool", lambda c: c.put(T, "j", b"", replace="yes"), "replace"),
    ("zero if_version", lambda c: c.put(T, "j", b"", if_version=0), "if_version"),
    ("float if_version", lambda c: c.delete(T, "j", if_version=1.0), "if_version"),
    ("zero count", lambda c: c.reserve_many(T, 0), "count"),
    ("huge count", lambda c: c.reserve_many(T, 10**6), "count"),
    ("zero kick limit", lambda c: c.kick(T, limit=0), "limit"),
    ("zero requeue limit", lambda c: c.requeue(T, limit=0), "limit"),
    ("bad state", lambda c: c.jobs(T, "running"), "state"),
    ("bad cursor", lambda c: c.jobs(T, "ready", cursor="x1"), "cursor"),
    ("zero page", lambda c: c.jobs(T, "ready", limit=0), "limit"),
    # a well-formed cursor with a bad topic: was AttributeError / UnicodeEncodeError
    ("cursor with an int topic", lambda c: c.jobs(5, "ready", cursor=CURSOR), "topic"),
    ("cursor with a lone surrogate topic",
     lambda c: c.jobs("a\ud800", "ready", cursor=CURSOR), "topic"),
    ("finished cursor with an int topic",
     lambda c: c.finished(5, cursor="finished" + CURSOR[5:]), "topic"),
    # operating a topic
    ("empty prefix", lambda c: c.jobs(T, "ready", prefix=""), "prefix"),
    ("prefix not str", lambda c: c.jobs(T, "ready", prefix=5), "prefix"),
    ("delete_many no ids", lambda c: c.delete_many(T, []), "ids"),
    ("delete_many ids a str", lambda c: c.delete_many(T, "abc"), "ids"),
    ("delete_many bad id", lambda c: c.delete_many(T, ["ok", ""]), "ids[1]"),
    ("delete_many bad state", lambda c: c.delete_many(T, ["j"], state="gone"), "state"),
    ("kick id and ids", lambda c: c.kick(T, "j", ids=["j"]), "ids"),
    ("kick bad ids", lambda c: c.kick(T, ids=[5]), "ids[0]"),
    ("kick ids with a bad limit", lambda c: c.kick(T, ids=["j"], limit="x"), "limit"),
    ("kick id with a zero limit", lambda c: c.kick(T, "j", limit=0), "limit"),
    ("expire_many no ids", lambda c: c.expire_many(T, []), "ids"),
    ("purge reserved", lambda c: c.purge(T, "reserved"), "state"),
    ("purge bad state", lambda c: c.purge(T, "all"), "state"),
    ("delete_topic force not bool", lambda c: c.delete_topic(T, force="yes"), "force"),
    ("delete_topic bad topic", lambda c: c.delete_topic("a{b}"), "topic"),
    ("delete_topic progress not callable", lambda c: c.delete_topic(T, progress=5), "progress"),
    ("purge progress not callable", lambda c: c.purge(T, "dead", progress="yes"), "progress"),
    ("reschedule delay and run_at", lambda c: c.reschedule(T, "j", delay=1, run_at=5), "delay"),
    ("reschedule negative delay", lambda c: c.reschedule(T, "j", delay=-1), "delay"),
    ("reschedule bad priority", lambda c: c.reschedule(T, "j", priority=1.5), "priority"),
    ("reschedule bad state", lambda c: c.reschedule(T, "j", state="x"), "state"),
    ("run_now bad id", lambda c: c.run_now(T, ""), "id"),
    ("run_now_many no ids", lambda c: c.run_now_many(T, []), "ids"),
    # put_many
    ("put_many not pairs", lambda c: c.put_many(T, ["ab"]), "jobs[0]"),
    ("put_many bad id", lambda c: c.put_many(T, [("ok", b""), ("", b"")]), "jobs[1].id"),
    ("put_many bad body", lambda c: c.put_many(T, [("ok", 5)]), "jobs[0].body"),
    ("put_many not iterable", lambda c: c.put_many(T, 5), "jobs"),
    # reserved-job methods
    ("ack without token", lambda c: c.ack(SimpleNamespace(topic=T, id="j", token=None)), "job"),
    ("ack with an int token", lambda c: c.ack(SimpleNamespace(topic=T, id="j", token=7)),
     "job.token"),  # it said "has no token"
    ("ack not a job", lambda c: c.ack("j"), "job"),
    ("ack lone surrogate result", lambda c: c.ack(JOB, result="a\udc80"), "result"),
    ("release negative delay", lambda c: c.release(JOB, delay=-1), "delay"),
    ("release reason not str", lambda c: c.release(JOB, reason=5), "reason"),
    ("release huge reason", lambda c: c.release(JOB, reason="e" * 70_000), "reason"),
    ("release reason and error", lambda c: c.release(JOB, reason="a", error="b"), "error"),
    ("release unstarted not bool", lambda c: c.release(JOB, unstarted=1), "unstarted"),
    ("bury reason not str", lambda c: c.bury(JOB, reason=b"r"), "reason"),
    ("release lone surrogate reason", lambda c: c.release(JOB, reason="bad \udc80"), "reason"),
    ("bury lone surrogate reason", lambda c: c.bury(JOB, reason="\ud800"), "reason"),
    ("ack_many other topic", lambda c: c.ack_many("other", [JOB]), "jobs"),
    ("ack_many jobs None", lambda c: c.ack_many(T, None), "jobs"),
    ("ack_many one job, not a list", lambda c: c.ack_many(T, JOB), "jobs"),
    ("ack_many results not a list", lambda c: c.ack_many(T, [JOB], results=5), "results"),
    ("ack_many results a str", lambda c: c.ack_many(T, [JOB], results="r"), "results"),
    ("ack_and_lease done None", lambda c: c.ack_and_lease(T, None, 1), "jobs"),
    ("execute of no Call", lambda c: c.execute("GET x"), "call"),
    ("execute of a tuple", lambda c: c.execute(("GET", "x")), "call"),
    # topic settings
    ("config unknown", lambda c: c.configure(T, colour="red"), "colour"),
    ("config paused", lambda c: c.configure(T, paused=True), "paused"),
    ("config bad webhook url", lambda c: c.configure(T, webhook={"url": "ftp://x"}), "webhook.url"),
    ("config short secret", lambda c: c.configure(T, webhook={"url": "http://h", "secrets": ["s"]}),
     "webhook.secrets"),
    ("config lone surrogate secret",
     lambda c: c.configure(T, webhook={"url": "http://h", "secrets": ["\udc80" * 20]}),
     "webhook.secrets[0]"),
    ("config whsec_ secret not base64",
     lambda c: c.configure(T, webhook={"url": "http://h", "secrets": ["whsec_!!!!!!!!"]}),
     "webhook.secrets[0]"),
    ("config lone surrogate url",
     lambda c: c.configure(T, webhook={"url": "http://h/\ud800", "secrets": ["s" * 20]}),
     "webhook.url"),
    ("config bad rate", lambda c: c.configure(T, rate=-1), "rate"),
    ("config bad concurrency", lambda c: c.configure(T, concurrency=0), "concurrency"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "action", "argument"), CASES, ids=[c[0] for c in CASES])
def test_rejected_before_reaching_redis(
    label: str, action: Callable[[Any], Any], argument: str
) -> None:
    # Nothing listens on this port: a call that reached the network would raise BackendError.
    offline = redisched.Client.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with offline, pytest.raises(InvalidArgument) as err:
        action(offline)
    assert err.value.argument == argument, str(err.value)
    assert argument in str(err.value)


def test_stored_jobs_unchanged_after_bad_input(client: redisched.Client) -> None:
    client.put(T, "j", b"keep", delay=60, priority=2)
    before = client.get(T, "j")
    for _label, action, _argument in CASES:
        with pytest.raises(InvalidArgument):
            action(client)
    assert client.get(T, "j") == before
    client.delete(T, "j")


@pytest.mark.parametrize("method", ["ack", "release", "touch", "bury"])
def test_a_job_of_none_says_that_reserve_found_none(method: str) -> None:
    """``client.ack(client.reserve(t))`` with nothing due: the message was "must have .topic,
    .id and .token (no .topic)", which sends the reader looking for a wrong object."""
    offline = redisched.Client.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with offline, pytest.raises(InvalidArgument) as err:
        getattr(offline, method)(None)
    assert err.value.argument == "job"
    assert "None" in err.value.message and "reserve" in err.value.message


def test_unreachable_redis_is_a_backend_error() -> None:
    offline = redisched.Client.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with offline, pytest.raises(redisched.BackendError):
        offline.get(T, "j")


# -- input that passes the glue's checks and is refused by the scripts, Python and HTTP --------

REACHING = [
    # label, Python call on (client, topic, leased job), expected error, HTTP request, status, field
    ("ack with a forged token", lambda c, t, j: c.ack(SimpleNamespace(topic=t, id="j", token="1")),
     redisched.StaleReservation, ("POST", "j/ack", {"token": "1"}), 409, "token"),
    ("release with a forged token",
     lambda c, t, j: c.release(SimpleNamespace(topic=t, id="j", token="1"), reason="x"),
     redisched.StaleReservation, ("POST", "j/release", {"token": "1", "reason": "x"}), 409,
     "token"),
    ("touch with a forged token", lambda c, t, j: c.touch(SimpleNamespace(topic=t, id="j",
     token="1")), redisched.StaleReservation, ("POST", "j/touch", {"token": "1"}), 409, "token"),
    ("bury with a forged token", lambda c, t, j: c.bury(SimpleNamespace(topic=t, id="j",
     token="1")), redisched.StaleReservation, ("POST", "j/bury", {"token": "1"}), 409, "token"),
    ("delete at a wrong version", lambda c, t, j: c.delete(t, "j", if_version=99),
     redisched.VersionConflict, ("DELETE", "j", None), 412, "If-Match"),
    ("replace at a wrong version",
     lambda c, t, j: c.put(t, "j", b"new", replace=True, if_version=99),
     redisched.VersionConflict, ("PUT", "j", {"body": "new"}), 412, "If-Match"),
    ("ack of a job that is not reserved",
     lambda c, t, j: c.ack(SimpleNamespace(topic=t, id="other", token="1")),
     redisched.StaleReservation, ("POST", "other/ack", {"token": "1"}), 409, "token"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "action", "error", "request_", "status", "field"),
    REACHING,
    ids=[c[0] for c in REACHING],
)
async def test_refused_by_the_scripts_over_python_and_http(
    client: redisched.Client, topic: str, redis_url: str, label: str,
    action: Callable[..., Any], error: type[Exception], request_: tuple[str, str, Any],
    status: int, field: str,
) -> None:  # fmt: skip
    from urllib.parse import quote

    from redisched.config import Settings
    from redisched.http import create_app

    client.put(topic, "j", b"keep", ttr=600)
    client.put(topic, "other", b"keep", delay=600)
    leased = client.reserve(topic)
    assert leased is not None and leased.id == "j"
    before = [client.get(topic, i) for i in ("j", "other")]
    with pytest.raises(error):
        action(client, topic, leased)
    method, rest, body = request_
    headers = {"If-Match": '"99"'} if status == 412 else {}
    app = create_app(Settings(redis_url=redis_url))
    async with asgi_client(app) as http:
        url = f"/v1/topics/{quote(topic, safe='')}/jobs/{rest}"
        reply = await http.request(method, url, json=body, headers=headers)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["field"] == field
    assert [client.get(topic, i) for i in ("j", "other")] == before


def test_a_client_of_a_url_string_names_from_url(redis_url: str) -> None:
    # Client("redis://...") used to be taken and fail on the first call with
    # AttributeError: 'str' object has no attribute 'execute_command'.
    for cls in (redisched.Client, redisched.AsyncClient):
        with pytest.raises(TypeError, match=rf"use {cls.__name__}\.from_url\(url\)"):
            cls(redis_url)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=rf"{cls.__name__}\.from_url"):
            cls(None)  # type: ignore[arg-type]


async def test_a_client_of_the_other_kind_of_connection_is_refused(redis_url: str) -> None:
    import redis
    import redis.asyncio

    blocking = redis.Redis.from_url(redis_url)
    asynchronous = redis.asyncio.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match=r"use redisched\.AsyncClient for an asyncio connection"):
        redisched.Client(asynchronous)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"use redisched\.Client for a blocking connection"):
        redisched.AsyncClient(blocking)  # type: ignore[arg-type]
    with redisched.Client(blocking) as right:
        assert right.get(T, "absent") is None
    async with redisched.AsyncClient(asynchronous) as right_async:
        assert await right_async.get(T, "absent") is None


CONSTRUCTOR_CASES = [
    ({"prefix": None}, "prefix"),
    ({"prefix": ""}, "prefix"),
    ({"prefix": "{app}"}, "prefix"),
    ({"prefix": "app\n"}, "prefix"),
    ({"clock": 5}, "clock"),
    ({"max_body_size": "1"}, "max_body_size"),
    ({"max_body_size": -1}, "max_body_size"),
    ({"promote_limit": 0}, "promote_limit"),
    ({"promote_limit": 1.5}, "promote_limit"),
    ({"keep_connections": "yes"}, "keep_connections"),
]


@pytest.mark.parametrize(("options", "argument"), CONSTRUCTOR_CASES)
async def test_client_options_are_checked_at_construction(
    redis_url: str, options: dict[str, Any], argument: str
) -> None:
    # These were taken as they were: prefix=None wrote under "None:{topic}:...", braces put
    # every topic under one hash tag, and the others failed on a later call (TypeError,
    # or a BackendError from the script for a promote_limit of 0).
    with pytest.raises(InvalidArgument) as err:
        redisched.Client.from_url(redis_url, **options)
    assert err.value.argument == argument
    with pytest.raises(InvalidArgument) as err_async:
        redisched.AsyncClient.from_url(redis_url, **options)
    assert str(err_async.value) == str(err.value)


def test_a_settings_prefix_is_checked_as_the_clients_check_it() -> None:
    from redisched.config import Settings

    with pytest.raises(InvalidArgument, match="prefix: must not contain"):
        Settings(redis_url="redis://127.0.0.1:1/0", prefix="{app}")


@pytest.mark.parametrize(
    ("url", "options", "argument"),
    [
        (None, {}, "url"),
        (b"redis://127.0.0.1:1/0", {}, "url"),
        ("http://127.0.0.1:1/0", {}, "url"),
        ("redis://127.0.0.1:99999/0", {}, "url"),
        ("redis://127.0.0.1:1/0", {"cluster": "yes"}, "cluster"),
    ],
)
def test_from_url_names_a_bad_url_or_cluster(
    url: object, options: dict[str, Any], argument: str
) -> None:
    # These raised AttributeError ('NoneType' object has no attribute 'startswith'),
    # TypeError, or redis-py's ValueError naming no argument; cluster="yes" was taken.
    for cls in (redisched.Client, redisched.AsyncClient):
        with pytest.raises(InvalidArgument) as err:
            cls.from_url(url, **options)  # type: ignore[arg-type]
        assert err.value.argument == argument, str(err.value)


def test_from_url_of_an_unreachable_cluster_is_a_backend_error() -> None:
    # The blocking cluster client asks its nodes at once: that raised redis-py's
    # RedisClusterUnreachableError, not the BackendError every other outage is.
    with pytest.raises(redisched.BackendError):
        redisched.Client.from_url(f"redis://127.0.0.1:{free_port()}/0", cluster=True)


async def test_a_connection_decoding_replies_or_not_utf8_is_refused(
    redis_url: str, topic: str
) -> None:
    # A decode_responses=True connection was taken: a put worked, and a reserve then leased
    # the job and failed reading it (AttributeError: 'str' object has no attribute 'decode'),
    # leaving it reserved until its ttr ran out.
    import redis
    import redis.asyncio

    with redisched.Client.from_url(redis_url) as good:
        good.put(topic, "j", b"keep")
        with pytest.raises(InvalidArgument, match="decode_responses=False") as err:
            redisched.Client(redis.Redis.from_url(redis_url, decode_responses=True))
        assert err.value.argument == "redis"
        decoding = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        with pytest.raises(InvalidArgument, match="decode_responses=False"):
            redisched.AsyncClient(decoding)
        await decoding.aclose()
        with pytest.raises(InvalidArgument, match="decode_responses=False"):
            redisched.Client.from_url(f"{redis_url}?decode_responses=True")
        # latin-1: a put of id "é" stored b"\xe9", and its reserve failed with
        # UnicodeDecodeError once it had leased the job
        with pytest.raises(InvalidArgument, match="UTF-8, not latin-1") as err:
            redisched.Client(redis.Redis.from_url(redis_url, encoding="latin-1"))
        assert err.value.argument == "redis"
        job = good.get(topic, "j")
        assert job is not None and job.state is redisched.JobState.READY
