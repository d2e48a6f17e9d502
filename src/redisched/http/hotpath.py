"""The job routes served without the middleware layers and the router (issue 17).

Putting, reserving and acking jobs carry most requests. :class:`HotRoutes` sits in front of the
API's own middleware and serves those routes itself: the same-origin guard's and the bearer
token's checks run as plain calls, the route's handler runs, and an exception maps to its
answer through the API's exception handlers, as the full stack would do. Any other request,
a route with an escaped path (``%``, which :class:`~.paths.RawPathMiddleware` re-decodes),
and an error without a handler of its own (a 500: the outer ``ServerErrorMiddleware`` logs it)
go the usual way.

Routes are matched by comparing path segments (a route's ``{param}`` segment takes any
non-empty segment, as Starlette's default ``str`` convertor does), not by the routes' regular
expressions in turn.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import BearerAuth
from .sameorigin import SameOriginGuard


class HotRoutes:
    """ASGI middleware serving ``routes`` directly, with the guard and the token check.

    Args:
        app: the rest of the stack, for every other request.
        routes: the routes to serve directly.
        allowed_hosts: as :class:`~.sameorigin.SameOriginGuard`.
        tokens: the API tokens (empty: no authentication), as :class:`~.auth.BearerAuth`.
        open_paths: paths served without a token.
        handlers: exception class -> handler, as Starlette's ``exception_handlers``
            (``Exception`` itself is left to the outer stack).
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[Route],
        allowed_hosts: Collection[str],
        tokens: Collection[str],
        open_paths: Collection[str],
        handlers: Mapping[Any, Any],
    ) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.table: dict[tuple[str, int], list[tuple[Route, Shape]]] = {}
        for route in self.routes:
            shape = _shape(route.path)
            for method in route.methods or ():
                self.table.setdefault((method, len(shape)), []).append((route, shape))
        self.guard = SameOriginGuard(app, allowed_hosts)
        self.auth = BearerAuth(app, tokens, open_paths) if tokens else None
        self.handlers = {k: v for k, v in handlers.items() if k is not Exception}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._match(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        problem = self.guard.refusal(scope)
        if problem is None and self.auth is not None:
            problem = self.auth.refusal(scope)
        if problem is not None:
            await problem(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _match(self, scope: Scope) -> Route | None:
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        if b"%" in scope.get("raw_path", b"%"):
            return None
        parts = scope["path"].split("/")
        candidates = self.table.get((scope["method"], len(parts)))
        if candidates is None:
            return None
        for route, shape in candidates:
            params = _params(shape, parts)
            if params is not None:
                scope["endpoint"] = route.endpoint
                scope["path_params"] = params
                return route
        return None

    def _handler(self, exc: Exception) -> Any:
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None


Shape = tuple[tuple[bool, str], ...]
"""A route template's segments: (True, parameter name) or (False, literal text)."""


def _shape(template: str) -> Shape:
    if ":" in template:
        raise ValueError(f"HotRoutes serves plain {{name}} parameters only: {template}")
    return tuple(
        (True, part[1:-1]) if part.startswith("{") and part.endswith("}") else (False, part)
        for part in template.split("/")
    )


def _params(shape: Shape, parts: list[str]) -> dict[str, str] | None:
    """The path parameters when ``parts`` (the path's segments) fit ``shape``, else None."""
    params: dict[str, str] = {}
    for (is_param, text), part in zip(shape, parts, strict=True):
        if is_param:
            if not part:
                return None
            params[text] = part
        elif part != text:
            return None
    return params
