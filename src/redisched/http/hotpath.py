"""The job routes served without the middleware layers and the router (issue 17).

Putting, reserving and acking jobs carry most requests. :class:`HotRoutes` sits in front of the
API's own middleware and serves those routes itself: the same-origin guard's and the bearer
token's checks run as plain calls, the route's handler runs, and an exception maps to its
answer through the API's exception handlers, as the full stack would do. Any other request,
a route with an escaped path (``%``, which :class:`~.paths.RawPathMiddleware` re-decodes),
and an error without a handler of its own (a 500: the outer ``ServerErrorMiddleware`` logs it)
go the usual way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Match, Route
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
        self.methods = frozenset(m for route in routes for m in route.methods or ())
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
        if scope["type"] != "http" or scope["method"] not in self.methods:
            return None
        if b"%" in scope.get("raw_path", b"%"):
            return None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                return route
        return None

    def _handler(self, exc: Exception) -> Any:
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None
