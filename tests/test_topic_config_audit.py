"""Topic setting defects found by an audit: short webhook keys, the ``rate`` bounds."""

from __future__ import annotations

import base64
from typing import Any

import pytest

import redisched
from redisched import InvalidArgument
from redisched.topic_config import Webhook, completed_webhook, secret_problem, unusable_secret

URL = "http://127.0.0.1:7451/hook"


def _whsec(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


@pytest.mark.parametrize(
    "secret",
    ["whsec_AA==", _whsec(b"k" * 15), "fifteen-bytes!!", "ünïcödé-ab"],  # 1, 15, 15, 13 bytes
    ids=["1-byte", "15-byte", "plain-15", "plain-13-bytes"],
)
def test_a_secret_whose_key_is_under_16_bytes_is_refused(
    client: redisched.Client, topic: str, secret: str
) -> None:
    """``whsec_AA==`` (a 1-byte key) passed, as only the text's length (8+) was checked."""
    assert secret_problem(secret) is not None
    assert unusable_secret(secret) is None  # it signs: a topic stored with it is not held
    with pytest.raises(InvalidArgument, match=r"webhook\.secrets\[0\]: must give a key of at"):
        client.configure(topic, webhook={"url": URL, "secrets": [secret]})


@pytest.mark.parametrize("secret", [_whsec(b"k" * 16), "s" * 16, "ünïcödé-abcde"])
def test_a_secret_whose_key_is_16_bytes_or_more_is_taken(
    client: redisched.Client, topic: str, secret: str
) -> None:
    config = client.configure(topic, webhook={"url": URL, "secrets": [secret]})
    assert config.webhook is not None and config.webhook.secrets == (secret,)


@pytest.mark.parametrize("rate", [0, 1e-300, 0.0009, -1, 1_000_001])
def test_a_rate_out_of_bounds_is_refused_naming_the_real_bounds(
    client: redisched.Client, topic: str, rate: float
) -> None:
    """``rate=0`` was refused as "0 to 1e6" (0 is not allowed) and 1e-300 was taken."""
    with pytest.raises(InvalidArgument) as refused:
        client.configure(topic, rate=rate)
    assert refused.value.argument == "rate"
    assert "0.001 to 1e6" in refused.value.message


def test_the_lowest_rate_is_taken(client: redisched.Client, topic: str) -> None:
    assert client.configure(topic, rate=0.001).rate == 0.001


def test_completed_webhook_keeps_secrets_and_the_hidden_password() -> None:
    current = Webhook("http://u:pw@127.0.0.1/h", ("s" * 16,), 3.0)
    shown = {"url": "http://u:***@127.0.0.1/h", "timeout": 5}
    assert completed_webhook(shown, current) == {
        "url": "http://u:pw@127.0.0.1/h", "secrets": ["s" * 16], "timeout": 5,
    }  # fmt: skip
    given = {"url": "http://u:***@127.0.0.1/other", "secrets": []}
    assert completed_webhook(given, current) == given
    assert completed_webhook(shown, None) == shown


def test_a_dedup_window_with_history_off_is_refused(client: redisched.Client, topic: str) -> None:
    """With history off no finished record is kept: the window remembered nothing and a put
    of a finished id ran the job again."""
    with pytest.raises(InvalidArgument) as refused:
        client.configure(topic, history=False, dedup_window=3600)
    assert refused.value.argument == "dedup_window"
    assert client.config(topic).history is True  # nothing was changed


async def test_a_dedup_window_and_history_off_are_refused_across_calls(
    api: Any, topic: str
) -> None:
    """Set one call after the other, they made the same silent combination."""
    await api.configure(topic, dedup_window=3600)
    with pytest.raises(InvalidArgument) as refused:
        await api.configure(topic, history=False)
    assert refused.value.argument == "history"
    assert (await api.config(topic)).history is True  # nothing was changed
    off = await api.configure(topic, history=False, dedup_window=None)  # together: fine
    assert off.history is False and off.dedup_window is None
    with pytest.raises(InvalidArgument) as refused:
        await api.configure(topic, dedup_window=60)
    assert refused.value.argument == "dedup_window"
    assert (await api.config(topic)).dedup_window is None
    await api.configure(topic, dedup_window=0)  # no window: nothing to remember
    both = await api.configure(topic, history=True, dedup_window=60)
    assert both.history is True and both.dedup_window == 60
