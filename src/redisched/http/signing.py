"""Moved to :mod:`redisched.push.signing`; this name stays for receivers that import it."""

from ..push.signing import InvalidSignature, secret_key, sign_headers, verify

__all__ = ["InvalidSignature", "secret_key", "sign_headers", "verify"]
