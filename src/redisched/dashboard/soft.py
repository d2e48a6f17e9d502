"""Expected refusals answered as 200 to the dashboard, so the browser logs no console error.

The dashboard's page asks for things that may well be refused: a create-only put of an id
that exists (412), a cancel of a job that is gone (404), a run-now of a job that is no longer
scheduled (409), anything before it holds a token (401). Chromium logs every 4xx answer to
``fetch`` as a console error, which hides real errors among expected ones. A request that
carries :data:`HEADER` gets such an answer with status 200 and the real status in
:data:`STATUS_HEADER`; the body (the usual JSON error) is unchanged. Other callers see the
API unchanged.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-redisched-soft-status"
STATUS_HEADER = b"x-redisched-status"
SOFTENED = frozenset({401, 404, 409, 412})


class SoftStatusMiddleware:
    """Rewrite 401/404/409/412 to 200 (real status in a header) for requests that ask for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(k == HEADER for k, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return

        async def soft_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in SOFTENED:
                headers = [*message.get("headers", []), (STATUS_HEADER, b"%d" % message["status"])]
                message = {**message, "status": 200, "headers": headers}
            await send(message)

        await self.app(scope, receive, soft_send)
