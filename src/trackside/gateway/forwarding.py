"""Who the client is: forwarding headers, and the proxies trusted to set them.

A client can write `X-Forwarded-For: 10.9.8.7` as easily as any other header, so the address
in it means something only when the peer that sent it is a proxy the operator put in front of
the platform (`trusted_proxies`, empty by default). The gateway replaces what any other peer
sent with what it saw itself; the lifecycle reads the client address from `X-Forwarded-For` only
when the request came from a trusted proxy or from the platform's own gateway, and then takes the
rightmost address that is not a trusted proxy (everything left of it was written by someone
nobody vouches for).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The header the platform's own gateway adds to what it forwards to the lifecycle in `trackside up`,
# carrying a secret made at start; a client-sent one is never forwarded.
GATEWAY_SECRET_HEADER = "X-Trackside-Gateway"


def parse_network(entry: str) -> Network:
    """`10.0.0.7`, `10.0.0.0/8` or `fd00::/8`; ValueError names the entry."""
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.7 or 10.0.0.0/8)") from None


class TrustedProxies:
    """The operator's list of proxies allowed to say who the client is."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks = [parse_network(entry) for entry in entries]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not self.networks or not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)

    def client_address(self, forwarded_for: str, peer: str) -> str:
        """The client behind `peer` (a trusted proxy or our gateway), from its `X-Forwarded-For` chain.

        The rightmost hop that is not itself a trusted proxy; the leftmost one when every hop is.
        """
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else peer


def client_address(peer: str, headers: Mapping[str, str], trusted: TrustedProxies, gateway_secret: str | None) -> str:
    """Who sent a request that reached a component from `peer` with `headers`.

    The TCP peer, unless the peer is the platform's own gateway (it sends the secret `trackside up`
    gave it in GATEWAY_SECRET_HEADER) or an operator-trusted proxy; then the client its
    X-Forwarded-For chain names (`TrustedProxies.client_address`).
    """
    forwarded = headers.get("x-forwarded-for")
    if not forwarded:
        return peer
    sent = headers.get(GATEWAY_SECRET_HEADER.lower()) or headers.get(GATEWAY_SECRET_HEADER)
    from_our_gateway = (
        gateway_secret is not None
        and sent is not None
        and hmac.compare_digest(sent.encode("latin-1"), gateway_secret.encode())
    )
    if from_our_gateway or peer in trusted:
        return trusted.client_address(forwarded, peer)
    return peer
