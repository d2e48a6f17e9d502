"""Webhook vectors: which webhook settings the Python service takes, and why it refuses the rest.

Each case gives ``webhook`` (``{"url", "secrets", "timeout"}``, a field left out takes its
default) and, when :func:`redisched.topic_config.validate_webhook` refuses it, ``field`` (as
``webhook.url``, ``webhook.secrets``, ``webhook.secrets[1]``, ``webhook.timeout``) and
``error``, its message. The Node and Go glue take webhooks on their own (``serve --push
TOPIC=URL --secret S``, ``webhookHandler`` / ``WebhookHandler``) and must take and refuse the
same, with the same field and message (``clients/node/test/webhooks.test.js``,
``clients/go/webhooks_test.go``). Written by ``python -m conformance.generate``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from redisched.errors import InvalidArgument
from redisched.topic_config import MAX_URL_LENGTH, validate_webhook

WEBHOOKS_FILE = Path(__file__).resolve().parent / "webhooks.json"

URL = "https://example.com/hook"
GOOD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + base64.b64encode(bytes(range(16))).decode()


def _whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(b"k" * size).decode()


def _url(size: int) -> str:
    return "https://example.com/" + "a" * (size - len("https://example.com/"))


# (note, webhook)
CASES: list[tuple[str, dict[str, Any]]] = [
    ("an https URL alone", {"url": URL}),
    ("every field", {"url": "http://127.0.0.1:8080/x?y=1#z", "secrets": [GOOD], "timeout": 10}),
    ("two secrets during a rotation", {"url": URL, "secrets": [GOOD, OTHER]}),
    ("no secrets", {"url": URL, "secrets": []}),
    ("the scheme and host in capitals", {"url": "HTTPS://Example.COM/hook"}),
    ("an IPv6 host with a port", {"url": "http://[::1]:9000/hook"}),
    ("a user and password (sent as basic auth)", {"url": "https://user:pw@example.com/"}),
    ("an empty port is none", {"url": "http://example.com:/hook"}),
    ("a port with leading zeros", {"url": "http://example.com:0080/"}),
    ("the longest port", {"url": "http://example.com:65535/"}),
    ("a URL of the longest length", {"url": _url(MAX_URL_LENGTH)}),
    ("a URL one character too long", {"url": _url(MAX_URL_LENGTH + 1)}),
    ("long in bytes, not in characters", {"url": "https://example.com/" + "é" * 2000}),
    ("a URL that is not a string", {"url": 5}),
    ("no URL", {}),
    ("another scheme", {"url": "ftp://example.com/hook"}),
    ("no scheme", {"url": "example.com/hook"}),
    ("no scheme, a host", {"url": "//example.com/hook"}),
    ("a scheme but no //", {"url": "http:/example.com/hook"}),
    ("no host", {"url": "http://"}),
    ("a user but no host", {"url": "http://user@/hook"}),
    ("a port but no host", {"url": "https://:80/hook"}),
    ("a space", {"url": "http://exa mple.com/"}),
    ("a tab", {"url": "http://example.com/\thook"}),
    ("a newline", {"url": "http://example.com/hook\n"}),
    ("DEL", {"url": "http://example.com/\x7f"}),
    ("a no-break space", {"url": "http://example.com/\u00a0"}),
    ("a next-line character", {"url": "http://example.com/\u0085"}),
    ("an ideographic space", {"url": "http://example.com/\u3000"}),
    ("a byte order mark is not a space", {"url": "http://example.com/\ufeff"}),
    ("an unclosed IPv6 host", {"url": "http://[::1/hook"}),
    ("an unopened IPv6 host", {"url": "http://::1]/hook"}),
    ("an unclosed IPv6 host, another scheme", {"url": "ftp://[::1"}),
    ("an IPv4 address in brackets", {"url": "http://[127.0.0.1]/"}),
    ("brackets around a name", {"url": "http://[abc]/"}),
    ("a bad IPvFuture host", {"url": "http://[vz]/"}),
    ("an IPv4-mapped IPv6 host", {"url": "http://[::ffff:127.0.0.1]/"}),
    ("an IPv4 address with a leading zero, in brackets", {"url": "http://[01.2.3.4]/"}),
    ("two :: in an IPv6 host", {"url": "http://[1::2::3]/"}),
    ("an empty IPv6 zone", {"url": "http://[fe80::1%]/"}),
    ("brackets in the user part", {"url": "http://u[x]@example.com/"}),
    ("a full-width slash in the host", {"url": "http://example\uff0fcom/"}),
    ("a full-width at in the host", {"url": "http://user\uff20example.com/"}),
    ("port 0", {"url": "http://example.com:0/"}),
    ("a port over 65535", {"url": "http://example.com:65536/"}),
    ("a port that is not a number", {"url": "http://example.com:http/"}),
    ("a signed port", {"url": "http://example.com:+80/"}),
    ("a negative port", {"url": "http://example.com:-1/"}),
    ("a port of non-ASCII digits", {"url": "http://example.com:\u0668\u0660/"}),
    ("secrets as a string", {"url": URL, "secrets": GOOD}),
    ("secrets null", {"url": URL, "secrets": None}),
    ("three secrets", {"url": URL, "secrets": [GOOD, OTHER, GOOD]}),
    ("a secret that is not a string", {"url": URL, "secrets": [GOOD, 5]}),
    ("a secret of 7 characters", {"url": URL, "secrets": ["abcdefg"]}),
    ("a secret of 8 characters, an 8-byte key", {"url": URL, "secrets": ["abcdefgh"]}),
    ("a secret of 16 characters", {"url": URL, "secrets": ["x" * 16]}),
    ("a secret of 512 characters", {"url": URL, "secrets": ["x" * 512]}),
    ("a secret of 513 characters", {"url": URL, "secrets": ["x" * 513]}),
    ("16 bytes in 4 characters", {"url": URL, "secrets": ["\U0001f600" * 4]}),
    ("16 bytes in 8 characters", {"url": URL, "secrets": ["é" * 8]}),
    ("a whsec_ key of 15 bytes", {"url": URL, "secrets": [_whsec(15)]}),
    ("a whsec_ key of 16 bytes", {"url": URL, "secrets": [_whsec(16)]}),
    ("whsec_ and no base64", {"url": URL, "secrets": ["whsec_!!!!!!!!"]}),
    ("whsec_ and non-ASCII", {"url": URL, "secrets": ["whsec_\u00e9\u00e9"]}),
    ("whsec_ alone", {"url": URL, "secrets": ["whsec_"]}),
    ("whsec_ base64 missing its padding", {"url": URL, "secrets": ["whsec_" + "A" * 22]}),
    ("whsec_ base64 of a bad length", {"url": URL, "secrets": ["whsec_" + "A" * 21]}),
    ("the second secret refused", {"url": URL, "secrets": [GOOD, _whsec(8)]}),
    ("a bad URL is named before bad secrets", {"url": "ftp://x/", "secrets": ["short"]}),
    ("the shortest timeout", {"url": URL, "timeout": 0.001}),
    ("the longest timeout", {"url": URL, "timeout": 300}),
    ("timeout 0", {"url": URL, "timeout": 0}),
    ("a negative timeout", {"url": URL, "timeout": -1}),
    ("a timeout too long", {"url": URL, "timeout": 300.5}),
    ("a timeout that is a string", {"url": URL, "timeout": "10"}),
    ("a timeout that is a boolean", {"url": URL, "timeout": True}),
    ("a timeout null", {"url": URL, "timeout": None}),
    ("bad secrets are named before a bad timeout", {"url": URL, "secrets": [5], "timeout": 0}),
]


def _case(note: str, webhook: dict[str, Any]) -> dict[str, Any]:
    case: dict[str, Any] = {"note": note, "webhook": webhook}
    try:
        validate_webhook(webhook)
    except InvalidArgument as exc:
        case.update(field=exc.argument, error=exc.message)
    return case


def build() -> list[dict[str, Any]]:
    """Every case, with the field and message of the Python service's refusal (if any)."""
    return [_case(note, webhook) for note, webhook in CASES]


def dumps(cases: list[dict[str, Any]]) -> str:
    """The cases as JSON, one per line."""
    return "[\n" + ",\n".join(f"  {json.dumps(c)}" for c in cases) + "\n]\n"


def write(path: Path = WEBHOOKS_FILE) -> None:
    """Write the webhook vectors."""
    path.write_text(dumps(build()), encoding="utf-8")
