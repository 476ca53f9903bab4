"""Pure policy: access rules, routes, destination limits, hops."""

from __future__ import annotations

from mxcluster.config.blocks import DestConfig, Listener, Route
from mxcluster.mail import replies
from mxcluster.mail.policy import (
    Hop,
    dest_limits,
    literal_ip,
    parse_hop,
    recipient_reply,
    route_for,
    split_address,
)

PUBLIC = Listener(name="In", type="public", interface="I", rat=["example.com", ".sub.example.com"],
                  reject_from=["192.0.2.0/24"])
PRIVATE = Listener(name="Out", type="private", interface="I", relay_from=["10.0.0.0/8"])


def test_public_accepts_rat_domains_only() -> None:
    """A public listener accepts RAT domains (exact and .subdomain) and refuses others."""
    assert recipient_reply(PUBLIC, "198.51.100.1", "u@example.com") is None
    assert recipient_reply(PUBLIC, "198.51.100.1", "u@a.sub.example.com") is None
    assert recipient_reply(PUBLIC, "198.51.100.1", "u@sub.example.com") == replies.RELAY_DENIED_550
    assert recipient_reply(PUBLIC, "198.51.100.1", "u@other.org") == replies.RELAY_DENIED_550


def test_public_refuses_reject_from() -> None:
    """Clients in reject_from are refused even for RAT domains."""
    assert recipient_reply(PUBLIC, "192.0.2.5", "u@example.com") == replies.RELAY_DENIED_550


def test_private_relays_for_relay_from_only() -> None:
    """A private listener relays any domain for relay_from clients, nothing for others."""
    assert recipient_reply(PRIVATE, "10.1.2.3", "u@anywhere.org") is None
    assert recipient_reply(PRIVATE, "172.16.0.1", "u@anywhere.org") == replies.RELAY_DENIED_550


def test_route_prefers_exact_then_longest_suffix_then_all() -> None:
    """Route matching: exact domain, then the most specific .subdomain, then ALL."""
    routes = (Route(domain="ALL", hops=["a"]), Route(domain=".example.com", hops=["b"]),
              Route(domain=".x.example.com", hops=["c"]), Route(domain="example.com", hops=["d"]))
    assert route_for(routes, "example.com").hops == ["d"]  # type: ignore[union-attr]
    assert route_for(routes, "y.x.example.com").hops == ["c"]  # type: ignore[union-attr]
    assert route_for(routes, "m.example.com").hops == ["b"]  # type: ignore[union-attr]
    assert route_for(routes, "other.org").hops == ["a"]  # type: ignore[union-attr]
    assert route_for(routes[1:], "other.org") is None


def test_dest_limits_fall_back_to_default() -> None:
    """destconfig: the domain's entry if any, else the default."""
    config = DestConfig.model_validate({"default": {"max_connections": 7},
                                        "domains": [{"domain": "big.com", "max_connections": 2}]})
    assert dest_limits(config, "big.com").max_connections == 2
    assert dest_limits(config, "small.com").max_connections == 7


def test_hops_and_addresses_parse() -> None:
    """Hops parse with optional port (and bracketed IPv6); literals yield their IP."""
    assert parse_hop("mx.example.com") == Hop("mx.example.com", 25)
    assert parse_hop("127.0.0.1:2525") == Hop("127.0.0.1", 2525)
    assert parse_hop("[2001:db8::1]:26") == Hop("2001:db8::1", 26)
    assert split_address("User@Example.COM") == ("User", "example.com")
    assert literal_ip("[192.0.2.1]") == "192.0.2.1"
    assert literal_ip("[IPv6:2001:db8::1]") == "2001:db8::1"
    assert literal_ip("example.com") is None
