"""Webhook signatures: the Standard Webhooks format, secret rotation, and what verify refuses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisched.push import signing
from redisched.push.signing import InvalidSignature, prepared, secret_key, sign_headers, verify

# The reference example of the Standard Webhooks specification and its libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_matches_the_reference_signature_of_the_specification() -> None:
    headers = sign_headers(SPEC_ID, SPEC_BODY, [secret_key(SPEC_SECRET)], timestamp=SPEC_TIMESTAMP)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    verify(SPEC_BODY, headers, SPEC_SECRET, now=SPEC_TIMESTAMP + 10)


def test_a_prepared_key_signs_as_its_raw_key_each_time() -> None:
    key = prepared(secret_key(SPEC_SECRET))
    for _ in range(2):  # the prepared key is copied, never consumed
        headers = sign_headers(SPEC_ID, SPEC_BODY, [key], timestamp=SPEC_TIMESTAMP)
        assert headers["webhook-signature"] == SPEC_SIGNATURE


def test_two_secrets_both_sign_during_rotation() -> None:
    old, new = "whsec_" + "b2xkLXNlY3JldC1rZXk=", "a-raw-string-secret"
    headers = sign_headers("msg_1", b"{}", [secret_key(old), secret_key(new)])
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(b"{}", headers, old)  # a receiver that still has only the old secret
    verify(b"{}", headers, [new])  # one that already switched
    verify(b"{}", headers, ["not-this-one", new])
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(b"{}", headers, ["whsec_" + "d3Jvbmc="])


def test_raw_secrets_use_their_utf8_bytes() -> None:
    assert secret_key("plain secret é") == "plain secret é".encode()
    assert secret_key("whsec_aGVsbG8=") == b"hello"
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not base64!")


def test_header_names_are_case_insensitive() -> None:
    headers = sign_headers("msg_1", b"x", [secret_key("k" * 16)])
    verify(b"x", {k.upper(): v for k, v in headers.items()}, "k" * 16)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: (h, b + b" "), "no signature matches"),
        (lambda h, b: ({**h, "webhook-id": "msg_2"}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),
         "no signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": "1"}, b), "too far"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not an integer"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][3:]}, b),
         "no signature matches"),
    ],
)  # fmt: skip
def test_verify_refuses_tampering_and_replays(change: object, message: str) -> None:
    secret = "whsec_c2VjcmV0LWtleS0xMjM="
    headers, body = change(sign_headers("msg_1", b'{"a":1}', [secret_key(secret)]), b'{"a":1}')  # type: ignore[operator]
    with pytest.raises(InvalidSignature, match=message):
        verify(body, headers, secret)


def test_without_secrets_no_signature_header_is_sent() -> None:
    headers = sign_headers("msg_1", b"x", [])
    assert set(headers) == {"webhook-id", "webhook-timestamp"}
    with pytest.raises(InvalidSignature, match="missing"):
        verify(b"x", headers, "whatever-secret")


SECRET = "whsec_c2VjcmV0LWtleS0xMjM="
NOW = 1_900_000_000


@st.composite
def _mutation(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """A signed request and one change to it: a byte of the body, the id or the timestamp, or
    a character of the signature."""
    body = draw(st.binary(max_size=64))
    msg_id = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                          max_size=20))  # fmt: skip
    headers = sign_headers(msg_id, body, [secret_key(SECRET)], timestamp=NOW)
    part = draw(st.sampled_from(["body", "webhook-id", "webhook-timestamp", "webhook-signature"]))
    if part == "body":
        if body and draw(st.booleans()):
            i = draw(st.integers(0, len(body) - 1))
            flip = draw(st.integers(1, 255))
            body = body[:i] + bytes([body[i] ^ flip]) + body[i + 1 :]
        else:
            body = body + draw(st.binary(min_size=1, max_size=4))
        return "body", body, headers
    value = headers[part]
    i = draw(st.integers(0, len(value) - 1))
    new = draw(
        st.characters(min_codepoint=32, max_codepoint=0x10FFFF).filter(lambda c: c != value[i])
    )
    return part, body, {**headers, part: value[:i] + new + value[i + 1 :]}


@settings(max_examples=2000, deadline=None)
@given(_mutation())
def test_no_single_change_of_a_signed_request_verifies(
    case: tuple[str, bytes, dict[str, str]],
) -> None:
    _part, body, headers = case
    with pytest.raises(InvalidSignature):
        verify(body, headers, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("skew", "ok"),
    [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86_400, False),
     (-86_400 * 365, False)],
)  # fmt: skip
def test_the_tolerance_boundary_in_the_past_and_the_future(skew: int, ok: bool) -> None:
    # skew > 0: the request says it was signed in the future
    headers = sign_headers("msg_1", b"x", [secret_key(SECRET)], timestamp=NOW + skew)
    if ok:
        verify(b"x", headers, SECRET, now=NOW)
    else:
        with pytest.raises(InvalidSignature, match="too far"):
            verify(b"x", headers, SECRET, now=NOW)


@pytest.mark.parametrize("stamp", ["1_900_000_000", " 1900000000", "+1900000000", "1900000000.0",
                                   "\u0661\u0669\u0660\u0660", "-1", ""])  # fmt: skip
def test_a_timestamp_must_be_plain_ascii_digits(stamp: str) -> None:
    headers = sign_headers("msg_1", b"x", [secret_key(SECRET)], timestamp=NOW)
    with pytest.raises(InvalidSignature):
        verify(b"x", {**headers, "webhook-timestamp": stamp}, SECRET, now=NOW)


def test_any_of_several_signatures_may_match_and_other_versions_are_ignored() -> None:
    good = sign_headers("msg_1", b"x", [secret_key(SECRET)], timestamp=NOW)
    signature = good["webhook-signature"]
    forged = "v1," + "A" * 43 + "="
    for header in (
        f"{forged} {signature}",
        f"{signature} {forged}",
        f"v2,abc {forged} {signature}",
    ):
        verify(b"x", {**good, "webhook-signature": header}, SECRET, now=NOW)
    for header in (f"{forged} v1,", "v2," + signature[3:], signature[3:], f"{forged} {forged}"):
        with pytest.raises(InvalidSignature, match="no signature matches"):
            verify(b"x", {**good, "webhook-signature": header}, SECRET, now=NOW)


def test_the_module_copied_out_of_the_package_imports_and_verifies(tmp_path: Path) -> None:
    # The README says a receiver may copy this module as it is; its `from ..errors import`
    # made the copy fail at import ("attempted relative import with no known parent package").
    shutil.copy(signing.__file__, tmp_path / "signing.py")
    script = """
from signing import InvalidSignature, secret_key, sign_headers, verify
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
headers = sign_headers("msg_1", b'{"id": 1}', [secret_key(secret)])
verify(b'{"id": 1}', headers, [secret])
try:
    verify(b'{"id": 2}', headers, [secret])
except InvalidSignature as exc:
    print("refused:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:")
