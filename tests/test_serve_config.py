"""Settings: defaults, every REDISCHED_* variable, validation, exposure rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from redisched import InvalidArgument
from redisched.config import Settings, is_loopback


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.redis_url) == ("127.0.0.1", 7171, None)
    assert settings.data_dir == Path("redisched-data") and settings.tokens == ()
    assert settings.appendfsync == "everysec" and not settings.insecure


def test_every_setting_has_an_environment_variable() -> None:
    env = {
        "REDISCHED_HOST": "::1", "REDISCHED_PORT": "8080",
        "REDISCHED_REDIS_URL": "redis://127.0.0.1:7000/0", "REDISCHED_DATA_DIR": "/tmp/x",
        "REDISCHED_APPENDFSYNC": "always",
        "REDISCHED_API_TOKENS": "token-number-one, token-number-two token-number-three",
        "REDISCHED_INSECURE": "yes", "REDISCHED_ALLOW_PRIVATE_WEBHOOKS": "1",
        "REDISCHED_PREFIX": "rs", "REDISCHED_MAX_BODY_SIZE": "2048",
        "REDISCHED_MAX_REQUEST_SIZE": "4096", "REDISCHED_REQUEUE_INTERVAL": "0.5",
        "REDISCHED_ALLOWED_HOSTS": "jobs.internal, api.example",
        "REDISCHED_REDIS_PORT": "7379", "REDISCHED_WORKERS": "2",
        "REDISCHED_METRICS_TOPICS": "50",
    }  # fmt: skip
    assert set(Settings.ENV.values()) - set(env) <= {
        "REDISCHED_REDIS_CLUSTER", "REDISCHED_DURABLE_PUTS"
    }  # fmt: skip
    settings = Settings.from_env(env)
    assert settings == Settings(
        host="::1", port=8080, redis_url="redis://127.0.0.1:7000/0", data_dir=Path("/tmp/x"),
        appendfsync="always", tokens=("token-number-one", "token-number-two", "token-number-three"),
        insecure=True,
        allow_private_webhooks=True, prefix="rs", max_body_size=2048, max_request_size=4096,
        requeue_interval=0.5, allowed_hosts=("jobs.internal", "api.example"), redis_port=7379,
        workers=2, metrics_topics=50,
    )  # fmt: skip


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"REDISCHED_PORT": "8080"}, port=9090, host=None)
    assert settings.port == 9090 and settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value", "argument"),
    [
        ("REDISCHED_PORT", "http", "REDISCHED_PORT"),
        ("REDISCHED_PORT", "70000", "REDISCHED_PORT"),
        ("REDISCHED_INSECURE", "maybe", "REDISCHED_INSECURE"),
        ("REDISCHED_APPENDFSYNC", "no", "REDISCHED_APPENDFSYNC"),
        ("REDISCHED_REQUEUE_INTERVAL", "nan", "REDISCHED_REQUEUE_INTERVAL"),
        ("REDISCHED_MAX_BODY_SIZE", "10", "REDISCHED_MAX_BODY_SIZE"),
        ("REDISCHED_PORT", "8_080", "REDISCHED_PORT"),
        ("REDISCHED_REQUEUE_INTERVAL", "\u0661", "REDISCHED_REQUEUE_INTERVAL"),
        ("REDISCHED_REDIS_PORT", "65536", "REDISCHED_REDIS_PORT"),
        ("REDISCHED_API_TOKENS", "short-token", "REDISCHED_API_TOKENS"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, argument: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Settings.from_env({variable: value})
    assert caught.value.argument == argument


def test_exposure_needs_tokens_or_insecure() -> None:
    Settings(host="127.0.0.1").check_exposure()
    Settings(host="::1").check_exposure()
    with pytest.raises(InvalidArgument, match="--insecure"):
        Settings(host="0.0.0.0").check_exposure()
    Settings(host="0.0.0.0", tokens=("t" * 16,)).check_exposure()
    Settings(host="0.0.0.0", insecure=True).check_exposure()
    assert is_loopback("localhost") and is_loopback("127.1.2.3") and not is_loopback("10.0.0.1")


def test_a_body_limit_above_the_request_limit_says_both_values() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Settings(max_body_size=8_000_000)
    assert caught.value.argument == "max_request_size"
    assert "max_body_size (8000000)" in str(caught.value) and "4194304" in str(caught.value)
