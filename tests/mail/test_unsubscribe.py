"""Global Unsubscribe right before delivery: each entry form, drop and bounce."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MakeEngine
from .helpers import SetUnsubscribe, Sink, wait_until

# (entry, recipient it must catch, recipient it must spare)
FORMS = [
    ("user@listed.org", "user@listed.org", "other@listed.org"),
    ("user@", "user@any.org", "someone@any.org"),
    ("@listed.org", "x@listed.org", "x@unlisted.org"),
    ("@.listed.org", "x@a.listed.org", "x@listed.org"),
    ("192.0.2.1", "x@[192.0.2.1]", "x@[192.0.2.2]"),
    ("2001:db8::1", "x@[IPv6:2001:db8::1]", "x@[IPv6:2001:db8::2]"),
]


def action(kind: str, enabled: bool = True) -> Any:
    def edit(b: dict[str, Any]) -> None:
        b["unsubscribe"] = {"enabled": enabled, "action": kind}
    return edit


@pytest.mark.parametrize(("entry", "caught", "spared"), FORMS)
def test_unsubscribe_drop(make_engine: MakeEngine, sink: Sink, entry: str, caught: str,
                          spared: str) -> None:
    """action=drop: the matching recipient is dropped and counted; the other delivered."""
    h = make_engine(action("drop"), unsubscribed=SetUnsubscribe([entry]))
    h.send([caught, spared], listener="Outbound")
    h.wait_queue_empty()
    assert sink.rcpts() == [spared]
    assert h.counter("dropped_unsubscribe") == 1
    assert "dropped" in [e["event"] for e in h.lt.call(h.e.find_events, caught)]


@pytest.mark.parametrize(("entry", "caught", "spared"), FORMS)
def test_unsubscribe_bounce(make_engine: MakeEngine, sink: Sink, entry: str, caught: str,
                            spared: str) -> None:
    """action=bounce: the matching recipient is hard-bounced (DSN to the sender)."""
    h = make_engine(action("bounce"), unsubscribed=SetUnsubscribe([entry]))
    h.send([caught, spared], listener="Outbound")
    dsn = wait_until(lambda: [m for m in sink.messages if m.rcpts == ["a@sender.test"]])
    assert caught.encode() in dsn[0].data and b"5.7.1" in dsn[0].data
    assert spared in sink.rcpts() and caught not in sink.rcpts()
    assert h.counter("dropped_unsubscribe") == 1


def test_unsubscribe_next_hop_ip(make_engine: MakeEngine, sink: Sink) -> None:
    """An IP entry also matches any delivery whose next hop is that IP."""
    h = make_engine(action("drop"), unsubscribed=SetUnsubscribe(["127.0.0.1"]))
    h.send(["u@example.com"])
    h.wait_counter("dropped_unsubscribe", 1)
    h.wait_queue_empty()
    assert sink.messages == []


def test_unsubscribe_disabled(make_engine: MakeEngine, sink: Sink) -> None:
    """With unsubscribe disabled, listed recipients are delivered."""
    h = make_engine(action("drop", enabled=False), unsubscribed=SetUnsubscribe(["u@example.com"]))
    h.send(["u@example.com"])
    assert sink.wait_for(1)[0].rcpts == ["u@example.com"]
    assert h.counter("dropped_unsubscribe") == 0
