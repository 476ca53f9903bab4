"""Delivery to real next hops: routes, failover, /dev/null, MX, retries, bounces, limits."""

from __future__ import annotations

import dataclasses
import time
from email import message_from_bytes
from typing import Any

from mxcluster.mail import StaticResolver

from .conftest import TEST_TUNABLES, MakeEngine, message
from .helpers import Sink, free_port, wait_until


def routes(*pairs: tuple[str, list[str]]) -> Any:
    def edit(b: dict[str, Any]) -> None:
        b["smtproutes"] = [{"domain": d, "hops": h} for d, h in pairs]
    return edit


def dsn_to(sink: Sink, sender: str) -> bytes:
    """The bounce that reached SENDER at the sink (null envelope sender)."""
    msgs = wait_until(lambda: [m for m in sink.messages if m.rcpts == [sender]], 10, "DSN")
    assert msgs[0].sender in ("<>", "")
    return msgs[0].data


def test_routes_by_exact_subdomain_and_all(make_engine: MakeEngine, sink: Sink) -> None:
    """example.com, .sub routes and ALL each send to their own next hop."""
    other = Sink()
    try:
        h = make_engine(routes(("exact.org", [other.hop]), (".deep.org", [other.hop]),
                               ("ALL", [sink.hop])))
        h.send(["a@exact.org", "b@x.deep.org", "c@misc.org"], listener="Outbound")
        other.wait_for(1)
        sink.wait_for(1)
        assert sorted(other.rcpts()) == ["a@exact.org", "b@x.deep.org"]
        assert sink.rcpts() == ["c@misc.org"]
    finally:
        other.stop()


def test_failover_to_next_hop(make_engine: MakeEngine, sink: Sink) -> None:
    """When the first hop refuses connections, the next hop of the route gets the mail."""
    h = make_engine(routes(("ALL", [f"127.0.0.1:{free_port()}", sink.hop])))
    h.send(["u@example.com"])
    assert sink.wait_for(1)[0].rcpts == ["u@example.com"]


def test_devnull_route_drops(make_engine: MakeEngine, sink: Sink) -> None:
    """A /dev/null route drops the recipient, logged and counted; others are delivered."""
    h = make_engine(routes(("void.org", ["/dev/null"]), ("ALL", [sink.hop])))
    h.send(["x@void.org", "y@real.org"], listener="Outbound")
    h.wait_queue_empty()
    assert sink.rcpts() == ["y@real.org"]
    assert h.counter("dropped_devnull") == 1


def test_mx_lookup_without_route(make_engine: MakeEngine, sink: Sink) -> None:
    """No matching route: the MX (through the injected resolver) is used."""
    resolver = StaticResolver(mx={"mxd.org": ["mx1.mxd.org"]}, hosts={"mx1.mxd.org": ["127.0.0.1"]})
    tunables = dataclasses.replace(TEST_TUNABLES, mx_port=sink.port)
    h = make_engine(routes(), resolver=resolver, tunables=tunables)
    h.send(["u@mxd.org"], listener="Outbound")
    assert sink.wait_for(1)[0].rcpts == ["u@mxd.org"]


def test_unknown_domain_bounces(make_engine: MakeEngine, sink: Sink) -> None:
    """A domain that does not exist in DNS bounces at once (5.1.2) to the sender."""
    h = make_engine(routes(("sender.test", [sink.hop])))
    h.send(["u@nowhere.invalid"], listener="Outbound")
    assert b"5.1.2" in dsn_to(sink, "a@sender.test")
    assert h.counter("bounced") == 1


def test_permanent_failure_bounces_with_dsn(make_engine: MakeEngine, sink: Sink) -> None:
    """A 5xx from the next hop bounces that recipient with a multipart/report DSN."""
    sink.handler.reject["bad@example.com"] = "550 5.1.1 No such user"
    h = make_engine()
    h.send(["bad@example.com", "good@example.com"])
    dsn = message_from_bytes(dsn_to(sink, "a@sender.test"))
    assert dsn.get_content_type() == "multipart/report"
    assert "5.1.1" in dsn.as_string() and "bad@example.com" in dsn.as_string()
    assert "good@example.com" in sink.rcpts()
    h.wait_queue_empty()


def test_temporary_failure_is_retried(make_engine: MakeEngine, sink: Sink) -> None:
    """A 4xx defers the recipient; it is retried per retry_schedule and delivered."""
    sink.handler.defer_rcpt["slow@example.com"] = 1
    h = make_engine()
    h.send(["slow@example.com"])
    wait_until(lambda: h.lt.call(h.e.show_queue) and h.lt.call(h.e.show_queue)[0]["attempts"])
    assert sink.wait_for(1, timeout=10)[0].rcpts == ["slow@example.com"]
    events = [e["event"] for e in h.lt.call(h.e.find_events, "slow@example.com")]
    assert events == ["received", "deferred", "delivered"]


def test_queue_lifetime_expiry_bounces(make_engine: MakeEngine, sink: Sink) -> None:
    """A recipient still deferred after max_queue_lifetime is bounced (5.4.7)."""
    now = [time.time()]
    sink.handler.defer_rcpt["never@example.com"] = 10**6
    h = make_engine(clock=lambda: now[0])
    h.send(["never@example.com"])
    wait_until(lambda: h.lt.call(h.e.show_queue)[0]["attempts"] >= 1)
    now[0] += 4000
    h.lt.call(h.e.deliver_now)
    assert b"5.4.7" in dsn_to(sink, "a@sender.test")
    h.wait_queue_empty()


def test_null_sender_never_bounced(make_engine: MakeEngine, sink: Sink) -> None:
    """A failing message with the null sender <> is dropped without a DSN (no loops)."""
    sink.handler.reject["bad@example.com"] = "550 5.1.1 No such user"
    h = make_engine()
    h.send(["bad@example.com"], sender="")
    h.wait_counter("bounced", 1)
    h.wait_queue_empty()
    assert sink.messages == []


def test_destconfig_limits_connections(make_engine: MakeEngine, sink: Sink) -> None:
    """destconfig max_connections=1 holds the machine to one connection per domain."""
    def edit(b: dict[str, Any]) -> None:
        b["destconfig"] = {"default": {"max_connections": 1, "max_messages_per_connection": 3}}
    h = make_engine(edit)
    with h.client() as smtp:
        for _ in range(8):
            smtp.sendmail("a@sender.test", ["u@example.com"], message())
    sink.wait_for(8)
    assert sink.handler.max_active == 1


def test_stop_is_prompt_while_next_hop_hangs(make_engine: MakeEngine) -> None:
    """stop() returns promptly with attempts stuck on a silent next hop; mail stays queued."""
    import socket
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)  # accepts TCP, never says a word
    try:
        hop = f"127.0.0.1:{blackhole.getsockname()[1]}"
        h = make_engine(routes(("ALL", [hop])))
        h.send(["a@example.com"])
        h.send(["b@example.com"])
        started = time.monotonic()
        h.stop()
        assert time.monotonic() - started < 3
        h.start()
        assert h.counter("queued") == 2
    finally:
        blackhole.close()
