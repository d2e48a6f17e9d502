"""The webhook target guard: config-time URL checks and connect-time address checks.

Only loopback addresses are ever connected to: non-loopback addresses are tested as values,
and the connect-time guard is exercised with loopback targets it must refuse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from redisched import InvalidArgument
from redisched.push.targets import TargetPolicy, TargetRefused, check_url, guarded_connector

REFUSED = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.8.9.10", "0.0.0.0", "::1", "::",
    "169.254.1.1", "fe80::1", "224.0.0.1", "ff02::1", "100.64.0.1", "240.0.0.1", "198.18.0.1",
    "fc00::1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "2002:a00:1::1",
    "64:ff9b::a00:1", "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "fec0::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"]
METADATA = ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254",
            "168.63.129.16"]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    reason = TargetPolicy().problem(ipaddress.ip_address(address))
    assert reason is not None and address.split("::ffff:")[-1] in reason
    with pytest.raises(TargetRefused, match="webhook target refused"):
        TargetPolicy().check_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert TargetPolicy().problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", METADATA)
def test_metadata_stays_refused_with_allow_private(address: str) -> None:
    policy = TargetPolicy(allow_private=True)
    assert "metadata" in (policy.problem(ipaddress.ip_address(address)) or "")
    assert policy.problem(ipaddress.ip_address("10.0.0.1")) is None
    assert policy.problem(ipaddress.ip_address("::1")) is None


def test_allowed_networks_let_chosen_addresses_through() -> None:
    policy = TargetPolicy.of(False, ["127.0.0.1/32", "10.1.0.0/16"])
    assert policy.problem(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.problem(ipaddress.ip_address("10.1.200.3")) is None
    assert policy.problem(ipaddress.ip_address("10.2.0.1")) is not None
    assert policy.problem(ipaddress.ip_address("127.0.0.2")) is not None
    with pytest.raises(InvalidArgument, match=r"allow_networks\[0\]"):
        TargetPolicy.of(False, ["10.0.0.0/33"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/hook", "private"),
        ("https://[::1]:8443/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata host"),
        ("http://localhost:9/hook", "loopback"),  # resolved from /etc/hosts
        ("http://[::ffff:192.168.0.1]/", "private"),
        ("ftp://example.com/", "http:// or https://"),
        ("http:///no-host", "http:// or https://"),
    ],
)
async def test_check_url_refuses_at_configuration_time(url: str, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason) as caught:
        await check_url(url, TargetPolicy())
    assert caught.value.argument == "webhook.url"


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0177.0.0.1/",  # octal
        "http://0x7f.0.0.1/",  # hex
        "http://0x7f000001/",
        "http://127.1/",  # short form
        "http://8.8.8.8@127.0.0.1:9/",  # userinfo that looks like a host
        "http://user:pw@[::1]:9/",
        "http://\u24dbocalhost:9/",  # IDNA: circled l maps to localhost
        "http://LOCALHOST./",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:169.254.169.254]/",
    ],
)
async def test_check_url_refuses_every_spelling_of_a_private_host(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await check_url(url, TargetPolicy())
    assert caught.value.argument == "webhook.url"
    assert "loopback" in caught.value.message or "metadata" in caught.value.message


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://168.63.129.16/"])
async def test_metadata_refusal_names_no_setting_that_would_not_lift_it(url: str) -> None:
    for policy in (TargetPolicy(), TargetPolicy(allow_private=True)):
        with pytest.raises(InvalidArgument) as caught:
            await check_url(url, policy)
        assert "metadata" in caught.value.message
        assert "set allow_private_webhooks" not in caught.value.message


async def test_check_url_accepts_public_literals_and_allowed_private() -> None:
    await check_url("https://93.184.216.34/hook", TargetPolicy())
    await check_url("http://localhost:9/hook", TargetPolicy(allow_private=True))
    await check_url("http://127.0.0.1:9/hook", TargetPolicy.of(False, ["127.0.0.0/8"]))


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP server; yields its base URL and the paths it was asked for."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_connect_time_guard_refuses_before_any_packet(
    receiver: tuple[str, list[str]], host: str
) -> None:
    address, seen = receiver
    port = address.rsplit(":", 1)[1]
    async with aiohttp.ClientSession(connector=guarded_connector(TargetPolicy())) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.post(f"http://{host}:{port}/hook", data=b"x")
    assert "webhook target refused" in str(caught.value.os_error)
    assert seen == []  # the server never saw a request (the socket was never created)


async def test_connect_time_guard_lets_allowed_targets_through(
    receiver: tuple[str, list[str]],
) -> None:
    address, seen = receiver
    policy = TargetPolicy.of(False, ["127.0.0.1/32"])
    async with (
        aiohttp.ClientSession(connector=guarded_connector(policy)) as session,
        session.post(f"http://{address}/hook", data=b"x") as response,
    ):
        assert response.status == 200
    assert seen == ["/hook"]
