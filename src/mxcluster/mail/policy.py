"""Pure mail policy: addresses, listener access rules, routes and destination limits.

No I/O here; the listeners and the delivery code ask these functions what to do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mxcluster.config.blocks import DestConfig, DestLimits, Listener, Route
from mxcluster.mail import replies

DEVNULL = "/dev/null"
DEFAULT_SMTP_PORT = 25


def split_address(address: str) -> tuple[str, str]:
    """``user@Example.COM`` -> (``user``, ``example.com``); no ``@`` -> (address, '')."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address, ""
    return local, domain.lower()


def literal_ip(domain: str) -> str | None:
    """The IP of an address-literal domain (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``)."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    text = domain[1:-1]
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def domain_matches(pattern: str, domain: str) -> bool:
    """Whether DOMAIN matches a route/RAT pattern: exact, ``.suffix`` or ``ALL``."""
    if pattern == "ALL":
        return True
    if pattern.startswith("."):
        return domain.endswith(pattern)
    return domain == pattern


def ip_in(ip: str, networks: Iterable[str]) -> bool:
    """Whether IP lies in any of the CIDR NETWORKS."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in networks)


def recipient_reply(listener: Listener, client_ip: str, recipient: str) -> str | None:
    """The refusal for RECIPIENT from CLIENT_IP on LISTENER, or None to accept (SPEC §2).

    Public: RAT recipient domains from anyone not in reject_from. Private: any recipient
    for clients in relay_from (and not in reject_from). Anything else: 550 5.7.1.
    """
    if ip_in(client_ip, listener.reject_from):
        return replies.RELAY_DENIED_550
    if listener.type == "private":
        return None if ip_in(client_ip, listener.relay_from) else replies.RELAY_DENIED_550
    _, domain = split_address(recipient)
    if domain and any(domain_matches(p, domain) for p in listener.rat):
        return None
    return replies.RELAY_DENIED_550


def _specificity(pattern: str, domain: str) -> int:
    """Higher is more specific; -1 when PATTERN does not match DOMAIN."""
    if not domain_matches(pattern, domain):
        return -1
    if pattern == "ALL":
        return 0
    return 100_000 if pattern == domain else len(pattern)


def best_match(patterns: Sequence[str], domain: str) -> int | None:
    """Index of the most specific pattern for DOMAIN: exact, longest ``.suffix``, ``ALL``."""
    best, best_score = None, -1
    for index, pattern in enumerate(patterns):
        score = _specificity(pattern, domain)
        if score > best_score:
            best, best_score = index, score
    return best


def route_for(routes: Sequence[Route], domain: str) -> Route | None:
    """The route for a recipient DOMAIN, or None (deliver by MX lookup)."""
    index = best_match([r.domain for r in routes], domain)
    return None if index is None else routes[index]


def dest_limits(config: DestConfig, domain: str) -> DestLimits:
    """The destconfig limits for a recipient DOMAIN (its entry, else the default)."""
    index = best_match([d.domain for d in config.domains], domain)
    return config.default if index is None else config.domains[index]


@dataclass(frozen=True)
class Hop:
    """A next hop: host name or IP, and port."""

    host: str
    port: int = DEFAULT_SMTP_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_hop(text: str) -> Hop:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 -> Hop."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return Hop(host, int(rest[1:]) if rest.startswith(":") else DEFAULT_SMTP_PORT)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return Hop(host, int(port))
    return Hop(text)


def is_ip(host: str) -> bool:
    """Whether HOST is an IPv4/IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
