"""Which address a request comes from, believing X-Forwarded-For only from trusted proxies.

Anyone can send an ``X-Forwarded-For`` header, so it is ignored unless the connection comes
from a configured proxy (``server.trusted_proxies``). Then the header is read from the right
(the hop the proxy itself appended) leftwards, past further trusted proxies, and the first
address that is not a trusted proxy is the client: entries further left were written by the
client and prove nothing.
"""

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _ip(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51000"
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, trusted: tuple[Network, ...]) -> bool:
    if address is None:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` (the socket's), or what trusted proxies say it was."""
    if not trusted or not _trusted(_ip(peer), trusted):
        return peer
    hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            # A trusted proxy wrote something that is no address: fall back on the proxy.
            return peer
        if not _trusted(address, trusted):
            return str(address)
    return peer
