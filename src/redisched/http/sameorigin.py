"""The same-origin guard: refuse requests for other host names and cross-site writes.

Without API tokens the service trusts whoever can reach it, so a web page must not be able
to use a visitor's browser as that someone:

* **DNS rebinding** - a page on ``attacker.example`` re-points its name at 127.0.0.1 and
  reads the API as same-origin. Its requests carry ``Host: attacker.example``: a ``Host``
  that is no IP address, not ``localhost``, not the bound host and not a configured allowed
  host is answered 400.
* **Cross-site writes** - a ``text/plain`` form or ``fetch`` POST from another origin needs
  no CORS preflight. A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin``
  is not the service's own (same host and port as its ``Host``), or whose ``Sec-Fetch-Site``
  is ``cross-site``, is answered 403.

A request without those headers (curl, the SDKs, other servers) is not affected: only
browsers send them, and browsers always do on the requests that matter here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def host_name(host: str) -> str:
    """The name part of a ``Host`` value (no port, no brackets, lower case, no final dot)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _netloc(host: str, default_port: int) -> tuple[str, int]:
    """(name, port) of a Host header value or an Origin's netloc."""
    parts = urlsplit("//" + host.strip().lower())
    try:
        port = parts.port or default_port
    except ValueError:
        port = -1
    return (parts.hostname or "").rstrip("."), port


class SameOriginGuard:
    """ASGI middleware applying the two rules of this module.

    Args:
        app: the app to guard.
        allowed_hosts: host names answered besides IP addresses, ``localhost`` and the bound
            host; ``*`` allows any (behind a proxy that checks ``Host`` itself).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str] = ()) -> None:
        self.app = app
        names = {host_name(h) for h in allowed_hosts}
        self.any_host = "*" in names
        self.allowed = frozenset(names | LOOPBACK_NAMES)
        self._seen: dict[str, bool] = {}  # Host value -> allowed (clients send a few)

    def host_allowed(self, host: str) -> bool:
        """True when a request with this ``Host`` value is for this service."""
        known = self._seen.get(host)
        if known is None:
            name = host_name(host)
            known = self.any_host or name in self.allowed or _is_ip(name)
            if len(self._seen) >= 1024:
                self._seen.clear()
            self._seen[host] = known
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.refusal(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
        else:
            await problem(scope, receive, send)

    def refusal(self, scope: Scope) -> Response | None:
        """The answer refusing an HTTP request under the two rules, or None to serve it."""
        host = origin = fetch_site = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"sec-fetch-site":
                fetch_site = value.decode("latin-1").strip().lower()
        problem: Response | None = None
        if host is None and scope.get("http_version") == "1.1":  # RFC 9112 3.2: a MUST
            problem = error_response(400, "bad_host", "an HTTP/1.1 request needs a Host", "Host")
        elif host is not None and not self.host_allowed(host):
            problem = error_response(
                400, "bad_host", f"this service does not answer for host {host_name(host)!r} "
                "(add it with --allowed-host)", "Host",
            )  # fmt: skip
        elif scope["method"] not in SAFE_METHODS:
            if fetch_site == "cross-site":
                problem = _cross_site("Sec-Fetch-Site", "the request comes from another site")
            elif origin is not None and not _same_origin(origin, host, scope):
                problem = _cross_site("Origin", f"origin {origin!r} is not this service's own")
        return problem


def _cross_site(field: str, why: str) -> Response:
    return error_response(403, "cross_site", f"{why}: state-changing requests are refused", field)


def _same_origin(origin: str, host: str | None, scope: Scope) -> bool:
    """True when ``origin`` names the host and port the request was sent to.

    A port left out is the default of the Origin's scheme on both sides: behind a TLS proxy
    the browser's ``https://name`` and ``Host: name`` still match.
    """
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # "null" (sandboxed frames, file: pages) and anything unparsable
    if host is None:
        server = scope.get("server")
        if not server:
            return False
        name = str(server[0])
        host = f"[{name}]:{server[1]}" if ":" in name else f"{name}:{server[1]}"
    default = 443 if parts.scheme == "https" else 80
    return _netloc(parts.netloc, default) == _netloc(host, default)
