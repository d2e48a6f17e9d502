"""The dashboard's pages: the page shell at ``/`` and the HTML fragments htmx polls.

The shell and the static files hold no job data, so they are served without a token (the
shell shows the login form); every fragment needs the API token like any API route, and the
browser sends it as a Bearer header (see ``static/app.js``). Every value from job data goes
through Jinja2's autoescaping, and a strict Content-Security-Policy forbids inline scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .. import validate
from ..convert import shown
from ..http import partitioned
from ..http.errors import ApiError
from ..http.runtime import runtime
from ..keys import validate_topic
from ..models import DEFAULT_MAX_ATTEMPTS
from ..partition_setting import finished_page, run_async
from ..topic_config import MAX_PARTITIONS
from . import chart, data

STATIC_PREFIX = "/dashboard/static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_paths() -> frozenset[str]:
    """The URL of every shipped static file."""
    folder = resources.files("redisched.dashboard") / "static"
    return frozenset(
        f"{STATIC_PREFIX}/{entry.name}" for entry in folder.iterdir() if entry.is_file()
    )


def open_paths() -> frozenset[str]:
    """Paths served without a token: the page shell and the static files (no job data)."""
    return frozenset({"/"}) | static_paths()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("redisched.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(["html", "svg"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["component"] = _component
    env.filters["duration"] = data.duration
    env.filters["utc"] = data.utc
    env.globals["relative"] = data.relative
    env.globals["default_max_attempts"] = DEFAULT_MAX_ATTEMPTS
    return env


def _shown(value: Any) -> Any:
    """A str as the page shows it (an id stored as bytes that are not UTF-8: ``\\xNN``,
    :func:`redisched.convert.shown`); anything else as it is."""
    return shown(value) if isinstance(value, str) else value


def _component(value: Any) -> str:
    """``value`` as one URL component: its UTF-8 bytes percent-encoded. An id stored as bytes
    that are not UTF-8 (shown as ``\\xNN``) is written as those bytes: its link reaches it."""
    text = str(value)
    try:
        return quote(text.encode("utf-8", "surrogateescape"), safe="")
    except UnicodeEncodeError:  # a lone surrogate of another kind: no bytes to send
        return quote(shown(text), safe="")


def _stored_id(request: Request) -> str:
    """The ``id`` query parameter of a stored job, with bytes that are not UTF-8 kept (decoded
    with ``surrogateescape``, as :func:`_component` wrote them; Starlette's parser would
    replace them with U+FFFD and name another job)."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    values = [value for key, value in pairs if key == "id"]
    if not values:
        raise ApiError(400, "invalid", "give id as a query parameter", "id")
    return validate.stored_text(values[-1])


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise ApiError(400, "invalid", f"give {name} as a query parameter", name)
    return value


@dataclass(eq=False)
class Dashboard:
    """The dashboard's handlers around one template environment."""

    templates: Jinja2Templates

    @classmethod
    def create(cls) -> Dashboard:
        """A dashboard with its templates loaded from the package."""
        return cls(Jinja2Templates(env=_environment()))

    def _render(self, request: Request, name: str, context: dict[str, Any]) -> Response:
        return self.templates.TemplateResponse(request, name, context, headers=HEADERS)

    async def index(self, request: Request) -> Response:
        """GET /: the page shell (login form, navigation, forms); data comes in fragments."""
        return self._render(request, "index.html", {"static": STATIC_PREFIX})

    async def overview(self, request: Request) -> Response:
        """GET /dashboard/overview: every topic with its counts (those Redis cannot serve now
        marked unreachable)."""
        rt = runtime(request)
        found = await data.overview(rt.client, rt.unreadable)
        lines = None if found.throughput is None else chart.lines(found.throughput)
        context = {"overview": found, "throughput": lines}
        return self._render(request, "overview.html", context)

    async def topic(self, request: Request) -> Response:
        """GET /dashboard/topic?topic=&state=&prefix=&cursor=: counts, timelines, settings and
        one page of jobs in one state."""
        name = validate_topic(_query(request, "topic"))
        query = request.query_params
        state = validate.state(query["state"]) if query.get("state") else None
        prefix = validate.id_prefix(query["prefix"]) if query.get("prefix") else None
        cursor = query.get("cursor") or None
        rt = runtime(request)
        page = await data.topic_page(rt.client, name, state, prefix, cursor, rt.held.get(name))
        context = {
            "topic": name,
            "page": page,
            "now": page.minutes.now,
            "minutes": chart.layout(page.minutes, label_every=10),
            "hours": chart.layout(page.hours, label_every=4),
            "throughput": chart.lines(page.throughput),
            "max_partitions": MAX_PARTITIONS,
        }
        return self._render(request, "topic.html", context)

    async def job(self, request: Request) -> Response:
        """GET /dashboard/job?topic=&id=: one job, with its actions."""
        wanted = _stored_id(request)
        rt = runtime(request)
        topic = validate_topic(_query(request, "topic"))
        # a page: the look is cheap; a finished job's record counts (its history shows)
        name = await partitioned.route(rt, topic, wanted, itself=True, finished=True)
        client = rt.client
        found, history, timeline = await client.execute(
            data.joined([
                client.ops.get(name, wanted, own=True),  # name: maybe the topic's own
                client.ops.history(name, wanted, own=True),
                client.ops.timeline(name, buckets=1, own=True),
            ])
        )  # fmt: skip
        result = None if history is None else history.result
        context = {
            "topic": name,
            "id": wanted,
            "job": found,
            "history": history,
            "now": timeline.now,
            "body": None if found is None else data.show_body(found.body),
            "result": None if result is None else data.show_body(result),
        }
        return self._render(request, "job.html", context)

    async def finished(self, request: Request) -> Response:
        """GET /dashboard/finished?topic=&outcome=&cursor=: a page of finished jobs."""
        name = validate_topic(_query(request, "topic"))
        outcome = request.query_params.get("outcome") or None
        cursor = request.query_params.get("cursor") or None
        rt = runtime(request)
        found = await partitioned.layout(rt, name)
        if found is None:
            page = await rt.client.finished(name, outcome=outcome, limit=25, cursor=cursor)
        else:  # partition after partition, as the HTTP route
            flow = finished_page(rt.client.ops, found, outcome=outcome, limit=25, cursor=cursor)
            page = await run_async(rt.client, flow)
        context = {"topic": name, "outcome": outcome or "", "page": page, "cursor": cursor}
        return self._render(request, "finished.html", context)

    def routes(self) -> list[BaseRoute]:
        """The Starlette routes: the shell, the fragments and the static files."""
        return [
            Route("/", self.index, methods=["GET"], name="dashboard"),
            Route("/dashboard/overview", self.overview, methods=["GET"]),
            Route("/dashboard/topic", self.topic, methods=["GET"]),
            Route("/dashboard/job", self.job, methods=["GET"]),
            Route("/dashboard/finished", self.finished, methods=["GET"]),
            Mount(
                STATIC_PREFIX,
                StaticFiles(packages=[("redisched.dashboard", "static")]),
                name="dashboard-static",
            ),
        ]
