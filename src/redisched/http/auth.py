"""Bearer-token authentication for every route but ``/healthz``."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

OPEN_PATHS = frozenset({"/healthz"})


class BearerAuth:
    """Answer 401 unless ``Authorization: Bearer <token>`` names one of ``tokens``.

    Every token is compared in constant time, whichever matches, so timing reveals neither
    a token nor which one was close.

    Args:
        app: the ASGI app to protect.
        tokens: the accepted tokens (at least one).
        open_paths: paths served without a token.
    """

    def __init__(
        self, app: ASGIApp, tokens: Iterable[str], open_paths: Iterable[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self.tokens = tuple(token.encode() for token in tokens)
        self.open_paths = frozenset(open_paths)
        if not self.tokens:
            raise ValueError("BearerAuth needs at least one token")

    def allows(self, header: bytes | None) -> bool:
        """True when an Authorization header value carries an accepted token."""
        presented = b""
        if header is not None and header[:7].lower() == b"bearer ":
            presented = header[7:].strip()
        matched = False
        for token in self.tokens:
            matched |= hmac.compare_digest(presented, token)
        return matched and bool(presented)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.refusal(scope)
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await problem(scope, receive, send)

    def refusal(self, scope: Scope) -> Response | None:
        """The 401 answer to a request without an accepted token, or None to serve it (an
        open path needs none)."""
        if scope["path"] in self.open_paths:
            return None
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if self.allows(header):
            return None
        return error_response(
            401, "unauthorized", "send Authorization: Bearer <token>", "Authorization",
            {"WWW-Authenticate": 'Bearer realm="redisched"'},
        )  # fmt: skip
