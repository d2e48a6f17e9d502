"""Expected refusals answered as 200 to the dashboard, so the browser logs no console error.

The dashboard's page asks for things that may well be refused: a create-only put of an id
that exists (412), a cancel of a job that is gone (404), a run-now of a job that is no longer
scheduled (409), anything before it holds a token (401). A form sends what the user typed, so
its validation refusal (400 or 422, naming the field) is expected too, and the form shows it.
Chromium logs every 4xx answer to ``fetch`` as a console error, which hides real errors among
expected ones. A request that carries :data:`HEADER` gets such an answer with status 200 and
the real status in :data:`STATUS_HEADER`; the body (the usual JSON error) is unchanged. A 400
is softened only when the header's value is :data:`FORM`: one from a button or a fragment is
the page's own mistake and stays an error, as do 5xx answers. Other callers see the API
unchanged.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-redisched-soft-status"
STATUS_HEADER = b"x-redisched-status"
FORM = b"form"
"""The value of :data:`HEADER` on a form's submission."""
SOFTENED = frozenset({401, 404, 409, 412})
SOFTENED_FOR_FORMS = SOFTENED | {400, 422}


def softened(value: bytes) -> frozenset[int]:
    """The statuses softened for a request whose :data:`HEADER` has ``value``."""
    return SOFTENED_FOR_FORMS if value.strip().lower() == FORM else SOFTENED


class SoftStatusMiddleware:
    """Rewrite expected refusals (:func:`softened`) to 200, the real status in a header, for
    requests that ask for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asked = None
        if scope["type"] == "http":
            asked = next((value for key, value in scope["headers"] if key == HEADER), None)
        if asked is None:
            await self.app(scope, receive, send)
            return
        soft = softened(asked)

        async def soft_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in soft:
                headers = [*message.get("headers", []), (STATUS_HEADER, b"%d" % message["status"])]
                message = {**message, "status": 200, "headers": headers}
            await send(message)

        await self.app(scope, receive, soft_send)
