"""The webhook target guard: which addresses push requests may reach (SSRF protection).

A webhook URL comes from whoever may configure a topic, and the server POSTs to it from inside
your network. So by default a target must be a public (globally routable) address: private,
loopback, link-local, multicast, reserved, shared (CGNAT), unspecified and cloud metadata
addresses are refused. The check runs twice:

- at configuration time, :func:`check_url` (:func:`check_url_blocking` in the CLI) parses
  the URL and resolves its host name, so that a bad URL is refused with a precise error
  before it is stored;
- at connect time, :func:`guarded_connector` checks every address the HTTP client is about to
  connect to, after DNS resolution and right before the socket is created. A host name that
  resolves differently later (DNS rebinding) is refused before any packet is sent.

The dispatcher never follows redirects (a 3xx is a failed delivery), so a receiver cannot
bounce a request to an internal address either.

``allow_private=True`` (``--allow-private-webhooks``) lifts the private-address rule, for
receivers on your own network or on this machine. Cloud metadata addresses stay refused even
then. ``allow_networks`` lets chosen networks through (metadata included, if you ask for it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, RedischedError
from ..topic_config import check_webhook_url

if TYPE_CHECKING:
    import aiohttp

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer (platform agent, DNS, health probes)
    )
)
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
     "instance-data.ec2.internal", "metadata.azure.internal"}
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(RedischedError, OSError):
    """A webhook target address is not allowed by the policy; nothing was sent to it."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which addresses webhook requests may reach.

    Attributes:
        allow_private: also allow private, loopback, link-local and other non-public
            addresses (not cloud metadata).
        allow_networks: networks always allowed, whatever else this policy says.
    """

    allow_private: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, allow_private: bool = False, allow_networks: Iterable[str] = ()) -> TargetPolicy:
        """A policy from plain values; networks as strings such as ``"10.1.0.0/16"``."""
        networks = []
        for index, text in enumerate(allow_networks):
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise InvalidArgument(f"allow_networks[{index}]", str(exc)) from None
        return cls(bool(allow_private), tuple(networks))

    def problem(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None when it is allowed."""
        if any(address in net for net in self.allow_networks if net.version == address.version):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            inner = _embedded_ipv4(address)
            if inner is not None:
                reason = self.problem(inner)
                return None if reason is None else f"{address} embeds {inner}: {reason}"
        if address in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if self.allow_private:
            return None
        for flag, kind in (
            ("is_loopback", "loopback"),
            ("is_link_local", "link-local"),
            # fec0::/10: deprecated (RFC 3879) but still routed inside some networks, and
            # Python 3.11's ipaddress counts it as global
            ("is_site_local", "site-local"),
            ("is_multicast", "multicast"),
            ("is_unspecified", "unspecified"),
            ("is_reserved", "reserved"),
            ("is_private", "private"),
        ):
            if getattr(address, flag, False):  # (is_site_local: IPv6 only)
                return f"{address} is a {kind} address"
        if not address.is_global:
            return f"{address} is not a public address"
        return None

    def check_address(self, address: str) -> None:
        """Raise TargetRefused unless the IP address (text) is allowed."""
        try:
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise TargetRefused(f"webhook target {address!r} is not an IP address") from None
        reason = self.problem(parsed)
        if reason is not None:
            raise TargetRefused(f"webhook target refused: {reason}")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def check_url(url: str, policy: TargetPolicy, *, argument: str = "webhook.url") -> None:
    """Refuse a webhook URL whose host is, or resolves to, an address the policy refuses.

    Run at configuration time (e.g. in the API's topic PATCH). Connect-time checks still apply
    later, since DNS answers change.

    Raises:
        InvalidArgument: naming ``argument``, with the reason.
    """
    target = _named(url, policy, argument)
    if target is None:
        return
    host, port = target
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _unresolved(host, exc, argument) from None
    _judge(_addresses(found), policy, argument)


def check_url_blocking(url: str, policy: TargetPolicy, *, argument: str = "webhook.url") -> None:
    """:func:`check_url` for synchronous code (the CLI): the name is resolved in this thread.

    Raises:
        InvalidArgument: naming ``argument``, with the reason.
    """
    target = _named(url, policy, argument)
    if target is None:
        return
    host, port = target
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _unresolved(host, exc, argument) from None
    _judge(_addresses(found), policy, argument)


def _named(url: str, policy: TargetPolicy, argument: str) -> tuple[str, int] | None:
    """The URL's host name and port to resolve; None when its host is an address, which is
    judged here (InvalidArgument naming ``argument`` when the policy refuses it)."""
    host, port = _host(url, argument)
    literal = _literal(host)
    if literal is not None:
        _judge([literal], policy, argument)
        return None
    return host, port


def _host(url: str, argument: str) -> tuple[str, int]:
    """The host (lower case, no final dot) and port of a well-formed webhook URL whose host
    is no cloud metadata name."""
    parts = check_webhook_url(url, argument)
    _check_with_yarl(url, argument)
    host = parts.hostname
    assert host is not None
    name = host.rstrip(".").lower()
    if name in METADATA_HOSTS:
        raise InvalidArgument(argument, f"{host} is a cloud metadata host")
    return name, parts.port or (443 if parts.scheme == "https" else 80)


def _unresolved(host: str, exc: Exception, argument: str) -> InvalidArgument:
    return InvalidArgument(argument, f"host {host} does not resolve: {exc}")


def _addresses(found: list[tuple[Any, ...]]) -> list[IPAddress]:
    """The addresses of getaddrinfo's answer (an IPv6 address without its zone)."""
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]


def _judge(addresses: list[IPAddress], policy: TargetPolicy, argument: str) -> None:
    """Refuse the first of ``addresses`` the policy refuses, saying what would allow it."""
    for address in addresses:
        reason = policy.problem(address)
        if reason is not None:
            raise InvalidArgument(argument, f"{reason} ({_remedy(address)})")


def _check_with_yarl(url: str, argument: str) -> None:
    """Refuse a URL the HTTP client will not parse (it refuses a few hosts urlsplit takes);
    without the server extra (``redisched config`` alone) yarl may be missing: the dispatcher
    that delivers has it, and holds a topic whose URL it cannot use."""
    try:
        import yarl
    except ImportError:
        return
    try:
        yarl.URL(url)
    except ValueError as exc:
        raise InvalidArgument(argument, f"is not a valid URL: {exc}") from None


def _remedy(address: IPAddress) -> str:
    """The setting that would let ``address`` through, for the refusal message."""
    inner = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if address in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
        return "cloud metadata addresses are refused even with --allow-private-webhooks"
    return (
        "start the service (or run the command) with --allow-private-webhooks or"
        " REDISCHED_ALLOW_PRIVATE_WEBHOOKS=1 to allow such targets"
    )


def guarded_connector(policy: TargetPolicy, **options: Any) -> aiohttp.TCPConnector:
    """An aiohttp connector that refuses, before creating the socket, any address the policy
    refuses: the connect-time check, applied to every connection the session opens.

    Args:
        policy: the target policy.
        options: more TCPConnector options (``limit``, ``keepalive_timeout``...).
    """

    import aiohttp  # the server extra: the CLI checks URLs with this module without it

    def socket_factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        policy.check_address(str(sockaddr[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return aiohttp.TCPConnector(socket_factory=socket_factory, **options)
