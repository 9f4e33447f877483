"""Where the operator may send requests: the outbound-address guard.

A Workflow's author chooses the URL of a webhook, and the operator sends from
inside the cluster with its own network position. Without a guard the URL could
point at the node's loopback services, the cloud metadata endpoint (instance
credentials) or the Kubernetes API server. The guard refuses those by default;
private RFC 1918 ranges stay allowed because in-cluster sinks (a Knative Broker,
an Argo Events webhook source) live there. An administrator's allow-list
overrides every refusal, a deny-list adds to them.

The check is applied to the addresses a name *resolves to*, inside the HTTP
client's resolver (``GuardedResolver``), so the connection goes to exactly an
address that was checked: a DNS answer that changes between a check and the
connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance-metadata endpoints outside the link-local range, or inside a
# range that is otherwise allowed: AWS's IPv6 endpoint sits in fc00::/7 (private),
# Alibaba's in 100.64.0.0/10 (shared address space, allowed).
METADATA_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)


class EgressRefused(Exception):
    """No address of ``host`` may be reached; ``reason`` says which rule refused it.

    Deliberately not an ``OSError``: callers must not treat it as a network
    failure worth retrying.
    """

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


def _networks(values: Iterable[str], what: str) -> tuple[IPNetwork, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{what}: {value!r} is not a CIDR network ({exc})") from None
    return tuple(networks)


def _addresses(values: Iterable[str], what: str) -> tuple[IPAddress, ...]:
    addresses = []
    for value in values:
        try:
            addresses.append(ipaddress.ip_address(value.strip().strip("[]")))
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not an IP address") from None
    return tuple(addresses)


@dataclass(frozen=True)
class EgressPolicy:
    """The administrator's adjustments to the built-in rules, and the API server.

    ``allowed`` overrides every refusal (built-in, ``denied`` and the API server);
    ``denied`` adds refusals; ``api_server`` are the cluster's API server
    addresses (the ``kubernetes`` Service's ClusterIP and its endpoints).
    """

    denied: tuple[IPNetwork, ...] = ()
    allowed: tuple[IPNetwork, ...] = ()
    api_server: tuple[IPAddress, ...] = ()

    @classmethod
    def from_settings(
        cls,
        *,
        allowed_cidrs: Iterable[str] = (),
        denied_cidrs: Iterable[str] = (),
        api_server_addresses: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> EgressPolicy:
        """A policy from settings-like strings.

        ``api_server_addresses`` are the discovered addresses of
        ``kubernetes.default``; ``KUBERNETES_SERVICE_HOST`` (read from ``environ``,
        default ``os.environ``) is added when it is an IP address. Raises
        ValueError naming the first value that is not a CIDR / address.
        """
        env = os.environ if environ is None else environ
        api = list(api_server_addresses)
        service_host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
        if service_host:
            api.append(service_host)
        return cls(
            denied=_networks(denied_cidrs, "egress deny-list"),
            allowed=_networks(allowed_cidrs, "egress allow-list"),
            api_server=tuple(dict.fromkeys(_addresses(api, "API server addresses"))),
        )


def _builtin_refusal(ip: IPAddress, policy: EgressPolicy) -> str | None:
    """The name of the first built-in or administrator rule that refuses ``ip``."""
    if ip in policy.api_server:
        return "the Kubernetes API server"
    for network in METADATA_NETWORKS:
        if ip in network:
            return f"a cloud metadata endpoint ({network})"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (includes cloud metadata endpoints)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        # Includes 240.0.0.0/4 and so the broadcast address 255.255.255.255.
        return "a reserved range"
    for network in policy.denied:
        if ip.version == network.version and ip in network:
            return f"the administrator's deny-list ({network})"
    return None


def refusal(ip: IPAddress, policy: EgressPolicy) -> str | None:
    """Why the operator must not connect to ``ip``, or None when it may.

    The reason names the address and the rule. An IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``) is judged as the IPv4 address it reaches.
    """
    judged: IPAddress = ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        judged = ip.ipv4_mapped
    for network in policy.allowed:
        if judged.version == network.version and judged in network:
            return None
    rule = _builtin_refusal(judged, policy)
    if rule is None:
        return None
    shown = f"{ip} (IPv4 {judged})" if judged is not ip else str(ip)
    return f"address {shown} is refused: {rule} (an administrator may allow it with the allow-list)"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_literal(host: str, policy: EgressPolicy) -> None:
    """Raise EgressRefused when ``host`` is an IP literal the policy refuses.

    HTTP clients connect to a literal without asking their resolver, so this is
    the check for those; names go through ``GuardedResolver``.
    """
    ip = _literal(host)
    if ip is not None:
        reason = refusal(ip, policy)
        if reason is not None:
            raise EgressRefused(host, reason)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that only returns addresses the policy allows.

    It wraps the default resolver; refused addresses are dropped, and when none
    is left it raises EgressRefused naming the host and the reasons.
    """

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        # Made on first use: the default (threaded) resolver binds the running loop.
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and keep the allowed addresses."""
        if self._inner is None:
            self._inner = DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            ip = _literal(result["host"])
            # The default resolver returns numeric hosts; anything else is refused
            # because it cannot be checked.
            reason = refusal(ip, self.policy) if ip is not None else "not an IP address"
            if reason is None:
                kept.append(result)
            elif reason not in reasons:
                reasons.append(reason)
        if not kept:
            raise EgressRefused(host, "; ".join(reasons) or "the name has no addresses")
        return kept

    async def close(self) -> None:
        """Release the wrapped resolver."""
        if self._inner is not None:
            await self._inner.close()


async def check_host(host: str, port: int, policy: EgressPolicy) -> list[str]:
    """The addresses of ``host`` the policy allows, for clients without a resolver hook.

    Raises EgressRefused when none is allowed. The caller should connect to one
    of the returned addresses (not the name again) to leave no rebinding gap.
    """
    check_literal(host, policy)
    if _literal(host) is not None:
        return [host.strip("[]")]
    resolver = GuardedResolver(policy)
    try:
        results = await resolver.resolve(host, port, socket.AF_UNSPEC)
    finally:
        await resolver.close()
    return list(dict.fromkeys(result["host"] for result in results))


__all__ = [
    "METADATA_NETWORKS",
    "EgressPolicy",
    "EgressRefused",
    "GuardedResolver",
    "check_host",
    "check_literal",
    "refusal",
]
