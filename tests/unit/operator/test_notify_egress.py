"""The outbound-address guard: each built-in rule (IPv4 and IPv6), the API
server, the administrator's deny- and allow-lists."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from mediaflow_operator.notify.egress import (
    EgressPolicy,
    EgressRefused,
    GuardedResolver,
    check_host,
    refusal,
)
from mediaflow_operator.settings import Settings

pytestmark = pytest.mark.unit

DEFAULT = EgressPolicy.from_settings(environ={})


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_default_policy_refuses(address: str, rule: str) -> None:
    reason = refusal(ip(address), DEFAULT)
    assert reason is not None
    assert rule in reason
    assert address.removeprefix("::ffff:") in reason


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.5",
        "192.168.1.1",
        "100.64.0.1",
        "93.184.215.14",
        "fd12::1",
        "2606:4700::1",
    ],
)
def test_default_policy_allows_private_and_public(address: str) -> None:
    assert refusal(ip(address), DEFAULT) is None


def test_api_server_addresses_are_refused() -> None:
    policy = EgressPolicy.from_settings(
        api_server_addresses=["10.96.0.10", "fd00:10:96::1"],
        environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
    )
    for address in ("10.96.0.1", "10.96.0.10", "fd00:10:96::1"):
        reason = refusal(ip(address), policy)
        assert reason is not None
        assert "Kubernetes API server" in reason
    assert refusal(ip("10.96.0.2"), policy) is None


def test_deny_list_adds_and_allow_list_overrides() -> None:
    policy = EgressPolicy.from_settings(
        denied_cidrs=["10.0.0.0/8", "fd12::/16"],
        allowed_cidrs=["10.5.0.0/16", "127.0.0.0/8", "169.254.169.254/32"],
        environ={"KUBERNETES_SERVICE_HOST": "10.5.0.1"},
    )
    denied = refusal(ip("10.1.2.3"), policy)
    assert denied is not None
    assert "deny-list (10.0.0.0/8)" in denied
    assert refusal(ip("fd12::1"), policy) is not None
    # The allow-list wins over the deny-list, the built-in rules and the API server.
    assert refusal(ip("10.5.1.1"), policy) is None
    assert refusal(ip("10.5.0.1"), policy) is None
    assert refusal(ip("127.0.0.1"), policy) is None
    assert refusal(ip("169.254.169.254"), policy) is None
    # Only what it names: the rest of link-local and IPv6 loopback stay refused.
    assert refusal(ip("169.254.1.1"), policy) is not None
    assert refusal(ip("::1"), policy) is not None


def test_from_settings_names_a_bad_value() -> None:
    with pytest.raises(ValueError, match="egress allow-list: 'nope'"):
        EgressPolicy.from_settings(allowed_cidrs=["nope"], environ={})
    with pytest.raises(ValueError, match="API server addresses: 'kubernetes'"):
        EgressPolicy.from_settings(api_server_addresses=["kubernetes"], environ={})


class FixedResolver(AbstractResolver):
    """Answers every name with fixed addresses (the unit under test is the filter)."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=0, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


def test_resolver_drops_refused_addresses() -> None:
    resolver = GuardedResolver(DEFAULT, FixedResolver(["127.0.0.1", "10.0.0.7", "::1"]))
    results = asyncio.run(resolver.resolve("sink.example", 443))
    assert [r["host"] for r in results] == ["10.0.0.7"]


def test_resolver_raises_naming_host_and_reasons_when_none_is_left() -> None:
    resolver = GuardedResolver(DEFAULT, FixedResolver(["169.254.169.254", "::1"]))
    with pytest.raises(EgressRefused) as caught:
        asyncio.run(resolver.resolve("metadata.example", 80))
    assert caught.value.host == "metadata.example"
    assert "169.254.169.254" in str(caught.value)
    assert "loopback" in str(caught.value)


def test_check_host_judges_literals_and_real_names() -> None:
    with pytest.raises(EgressRefused, match="loopback"):
        asyncio.run(check_host("127.0.0.1", 4222, DEFAULT))
    with pytest.raises(EgressRefused, match="link-local"):
        asyncio.run(check_host("[fe80::1]", 4222, DEFAULT))
    # `localhost` through the system resolver: every answer is loopback.
    with pytest.raises(EgressRefused, match="localhost: address"):
        asyncio.run(check_host("localhost", 4222, DEFAULT))
    allowed = EgressPolicy.from_settings(allowed_cidrs=["127.0.0.0/8"], environ={})
    assert asyncio.run(check_host("localhost", 4222, allowed)) == ["127.0.0.1"]
    assert asyncio.run(check_host("10.0.0.1", 4222, DEFAULT)) == ["10.0.0.1"]


def test_the_operator_settings_feed_the_policy() -> None:
    settings = Settings.from_env(
        {
            "MEDIAFLOW_NOTIFY_ALLOWED_CIDRS": "127.0.0.0/8  fd00:ec2::254/128",
            "MEDIAFLOW_NOTIFY_DENIED_CIDRS": "10.0.0.0/8",
        }
    )
    policy = EgressPolicy.from_settings(
        allowed_cidrs=settings.notify_allowed_cidrs,
        denied_cidrs=settings.notify_denied_cidrs,
        environ={},
    )
    assert refusal(ip("127.0.0.1"), policy) is None
    assert refusal(ip("fd00:ec2::254"), policy) is None
    assert refusal(ip("10.0.0.1"), policy) is not None
    assert refusal(ip("192.168.0.1"), policy) is None
