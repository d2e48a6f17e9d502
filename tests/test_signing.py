"""Webhook signatures: the Standard Webhooks format, secret rotation, and what verify refuses."""

from __future__ import annotations

import pytest

from redisched.http.signing import InvalidSignature, secret_key, sign_headers, verify

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
