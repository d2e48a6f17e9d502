"""Routes on topics: list, stats and settings, paged job listing, and reserve (long poll)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import partition_setting, validate
from ..leasing import Limits
from ..models import JobState
from ..ops import Call
from ..partition_setting import (
    fold,
    jobs_page,
    read_config,
    read_counts,
    read_stats,
    run_async,
)
from ..push.targets import TargetPolicy, check_url
from ..topic_config import Webhook, completed_webhook
from . import bodies, longpoll, partitioned, schemas
from .endpoint import Endpoint, Param, json_response
from .errors import ApiError
from .paths import path_param
from .reading import query_flag, read_json
from .runtime import Runtime, runtime

_RESERVE = msgspec.json.Decoder(schemas.Reserve)
_PATCH = msgspec.json.Decoder(schemas.TopicPatch)
_SETTINGS = tuple(n for n in schemas.TopicPatch.__struct_fields__ if n not in ("webhook", "paused"))
"""The PATCH fields passed on to ``configure`` as they are (the webhook is rebuilt, pause is
its own call)."""


async def list_topics(request: Request) -> Response:
    """GET /v1/topics[?partitions=true]: a partitioned topic once, or its partitions too."""
    rt = runtime(request)
    ops = rt.client.ops
    names, counts = await rt.client.execute(Call.join(ops.topics(), read_counts(ops)))
    if query_flag(request, "partitions"):
        return json_response(schemas.Topics(sorted({*names, *counts})))
    rt.partitions.load(counts)
    return json_response(schemas.Topics(fold(names, counts)))


async def _topic(rt: Runtime, topic: str) -> schemas.TopicOut:
    ops = rt.client.ops
    found = await partitioned.layout(rt, topic)
    count = None if found is None else found.count
    both = Call.join(read_config(ops, topic), read_stats(ops, topic, count))
    config, stats = await rt.client.execute(both)
    return bodies.topic_out(stats, config)


async def get_topic(request: Request) -> Response:
    """GET /v1/topics/{topic}."""
    rt = runtime(request)
    return json_response(await _topic(rt, path_param(request, "topic")))


def patch_changes(spec: schemas.TopicPatch, current: Webhook | None = None) -> dict[str, Any]:
    """The settings a PATCH changes, as ``AsyncClient.configure`` keywords.

    ``current`` is the topic's webhook: its secrets are kept when the new webhook gives none,
    and its URL when the new one is the URL as shown (its password hidden), so that a form
    sending back what it was shown changes neither.
    """
    changes: dict[str, Any] = {
        name: getattr(spec, name) for name in _SETTINGS if getattr(spec, name) is not msgspec.UNSET
    }
    if spec.webhook is not msgspec.UNSET:
        hook = spec.webhook
        if hook is None:
            changes["webhook"] = None
        else:
            given: dict[str, Any] = {"url": hook.url, "timeout": hook.timeout}
            if hook.secrets is not msgspec.UNSET:
                given["secrets"] = hook.secrets
            changes["webhook"] = completed_webhook(given, current)
    return changes


async def patch_topic(request: Request) -> Response:
    """PATCH /v1/topics/{topic}."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    spec = await read_json(request, _PATCH, rt.settings.max_request_size)
    current = None
    if isinstance(spec.webhook, schemas.WebhookIn):
        current = (await rt.client.config(topic)).webhook
    changes = patch_changes(spec, current)
    if isinstance(spec.webhook, schemas.WebhookIn):  # refuse private targets now, not at delivery
        policy = TargetPolicy.of(rt.settings.allow_private_webhooks)
        await check_url(changes["webhook"]["url"], policy, argument="webhook.url")
    ops = rt.client.ops
    config = await run_async(rt.client, partition_setting.configure(ops, topic, changes))
    rt.partitions.learn(topic, config.partitions)
    rt.limits.set(topic, Limits.of(config))  # this process's reserves see it at once
    if isinstance(spec.paused, bool):
        await rt.client.execute(partition_setting.pause(ops, topic, config.partitions, spec.paused))
    rt.topic_changed(topic)
    return json_response(await _topic(rt, topic))


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` within [low, high], else ``default``; 400 if bad."""
    text = request.query_params.get(name)
    if text is None:
        return default
    return validate.integer(validate.integer_text(text, name), name, low, high)


async def list_jobs(request: Request) -> Response:
    """GET /v1/topics/{topic}/jobs?state=&limit=&cursor=."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    state = request.query_params.get("state")
    if state is None:
        raise ApiError(400, "invalid", "give a state: " + ", ".join(bodies.STATE_NAMES), "state")
    limit = query_int(request, "limit", 100, 1, 1000)
    cursor = request.query_params.get("cursor") or None
    prefix = request.query_params.get("prefix") or None
    found = await partitioned.layout(rt, topic)
    if found is None:
        # own: a topic partitioned since the counts were read answers as before, until they are
        listing = rt.client.ops.jobs(
            topic, state, prefix=prefix, limit=limit, cursor=cursor, own=True
        )
        page = await rt.client.execute(listing)
    else:
        flow = jobs_page(rt.client.ops, found, state, prefix=prefix, limit=limit, cursor=cursor)
        page = await run_async(rt.client, flow)
    jobs = [bodies.job_out(job) for job in page.jobs]
    return json_response(schemas.JobPageOut(jobs, page.cursor))


async def reserve(request: Request) -> Response:
    """POST /v1/topics/{topic}/reserve."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    spec = await read_json(request, _RESERVE, rt.settings.max_request_size, empty=b"{}")
    rt.client.ops.keys(topic)  # a bad topic fails here, before anything waits
    jobs = await longpoll.reserve(rt, request.receive, topic, spec.count, spec.ttr, spec.wait)
    if not jobs:
        return Response(status_code=204)
    try:
        return json_response(schemas.Jobs([bodies.job_out(j, handed_out=True) for j in jobs]))
    except BaseException:  # nobody will get these jobs: their attempts are not spent
        await longpoll.give_back(rt, jobs)
        raise


_TOPIC = "/v1/topics/{topic}"
_STATE = {"type": "string", "enum": [s.value for s in JobState]}

ENDPOINTS = (
    Endpoint(
        "GET", "/v1/topics", list_topics,
        "List every topic (a partitioned topic once, unless partitions=true)",
        responses={200: schemas.Topics},
        params=(Param("partitions", "query", {"type": "boolean"},
                      description="Also list each partition of a partitioned topic."),),
        tag="topics",
    ),
    Endpoint(
        "GET", _TOPIC, get_topic, "A topic's counts, totals and settings",
        responses={200: schemas.TopicOut}, tag="topics",
    ),
    Endpoint(
        "PATCH", _TOPIC, patch_topic, "Change a topic's settings or pause it",
        schemas.TopicPatch, responses={200: schemas.TopicOut}, tag="topics",
    ),
    Endpoint(
        "GET", f"{_TOPIC}/jobs", list_jobs,
        "One page of a topic's jobs in one state, optionally by id prefix",
        responses={200: schemas.JobPageOut},
        params=(
            Param("state", "query", _STATE, required=True),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
            Param("cursor", "query", {"type": "string"}, description="From the last page."),
            Param("prefix", "query", {"type": "string"},
                  description="Only ids starting with this. A page examines a bounded number "
                  "of jobs, so it may be short or empty while its cursor is not null."),
        ),
        tag="topics",
    ),
    Endpoint(
        "POST", f"{_TOPIC}/reserve", reserve, "Lease due jobs, long-polling up to wait s",
        schemas.Reserve, body_required=False, responses={200: schemas.Jobs, 204: None},
    ),
)  # fmt: skip
"""The topic routes."""
