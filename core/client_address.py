"""The client's address: the socket peer, or what trusted proxies say it is.

Behind a TLS proxy every request comes from the proxy, and the client's own address is only in
`X-Forwarded-For`, which anyone can write. Each proxy appends the address it received the request
from, so the header is read from the right: the socket peer is trusted if it is a configured
proxy, and then the entry it appended is believed; the walk goes on leftwards while the hops are
trusted proxies and stops at the first that is not. That one is the client. A forged entry a
client wrote itself sits to the left of everything a trusted proxy appended, so it is never
reached.

Trust comes from the settings, from the environment:
- `TRUSTED_PROXY_COUNT`: how many proxies stand in front of the app (e.g. 1 for one nginx or
  load balancer). Exactly that many hops are trusted, whatever their addresses.
- `TRUSTED_PROXY_NETWORKS`: addresses or CIDR networks of the proxies. Any number of hops inside
  them are trusted; a peer outside them is the client, and its `X-Forwarded-For` is ignored.
Both together: at most the count, each hop inside the networks. Neither (the default): the
socket peer is the client and `X-Forwarded-For` is ignored.

Why not django-ipware: it never asks whether the socket peer is a proxy at all (it trusts the
header from anyone who reaches the app directly), its `proxy_trusted_ips` are positional
patterns for the last hops rather than a set of networks, and unconfigured it picks the first
public address in a header the client wrote. Werkzeug's ProxyFix is count-only and rewrites
REMOTE_ADDR for the whole app, which the /metrics guard reads as the socket address on purpose.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, `1.2.3.4:port`, `[v6]` or `[v6]:port`."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 has at least two colons
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXY_NETWORKS has an entry that is not an address: {exc}") from None


def _trusted(hop: Address, networks: tuple[Network, ...]) -> bool:
    return not networks or any(hop.version == network.version and hop in network for network in networks)


def client_address(request: HttpRequest) -> Address | None:
    peer = parse_address(request.META.get("REMOTE_ADDR") or "")
    count: int = settings.TRUSTED_PROXY_COUNT
    networks = _networks(tuple(settings.TRUSTED_PROXY_NETWORKS))
    if peer is None or (not count and not networks):
        return peer
    # WSGI joins repeated X-Forwarded-For headers with commas, in the order they came.
    chain = [entry for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    client = peer
    trusted_hops = 0
    while chain and _trusted(client, networks) and not (count and trusted_hops >= count):
        reported = parse_address(chain.pop())
        if reported is None:
            break  # a trusted proxy would not write garbage: keep the last address we could believe
        client = reported
        trusted_hops += 1
    return client


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as text (device sessions, request logs, rate limits)."""
    address = client_address(request)
    return str(address) if address is not None else None


def client_key(request: HttpRequest) -> str:
    """What anonymous rate limits count by: the address, or for IPv6 its /64, since one
    subscriber gets a whole /64 and could otherwise take a fresh address for every request."""
    address = client_address(request)
    if address is None:
        return "unknown"
    return address_key(address)


def address_key(address: Address | str | None) -> str:
    if isinstance(address, str):
        address = parse_address(address)
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
