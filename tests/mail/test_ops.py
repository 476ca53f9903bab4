"""Queue management, status and the mail log (findevent)."""

from __future__ import annotations

import pytest

from mxcluster.errors import UsageError, ValidationError
from mxcluster.mail.maillog import format_line, parse_line

from .conftest import MakeEngine
from .helpers import Sink, wait_until


def queued(h: object, count: int) -> list[dict[str, object]]:
    from .conftest import Harness
    assert isinstance(h, Harness)
    return wait_until(lambda: len(h.lt.call(h.e.show_queue)) == count and
                      h.lt.call(h.e.show_queue))


def test_showqueue_and_delivernow(make_engine: MakeEngine, sink: Sink) -> None:
    """showqueue lists held mail; delivernow DOMAIN sends it once delivery runs."""
    h = make_engine()
    h.lt.run(h.e.suspend_delivery())
    h.send(["u@example.com"])
    (entry,) = queued(h, 1)
    assert entry["recipients"] == ["u@example.com"] and entry["sender"] == "a@sender.test"
    h.lt.run(h.e.resume_delivery())
    assert h.lt.call(h.e.deliver_now, "example.com") in (0, 1)
    sink.wait_for(1)


def test_delete_recipients_by_domain(make_engine: MakeEngine, sink: Sink) -> None:
    """deleterecipients --domain removes only those recipients, silently."""
    h = make_engine()
    h.lt.run(h.e.suspend_delivery())
    h.send(["a@example.com", "b@x.sub.example.com"])
    queued(h, 1)
    assert h.lt.call(lambda: h.e.delete_recipients(domain="example.com")) == 1
    h.lt.run(h.e.resume_delivery())
    assert sink.wait_for(1)[0].rcpts == ["b@x.sub.example.com"]
    assert h.counter("deleted") == 1


def test_bounce_recipients_by_sender(make_engine: MakeEngine, sink: Sink) -> None:
    """bouncerecipients --sender bounces (DSN) and removes that sender's mail."""
    h = make_engine()
    h.lt.run(h.e.suspend_delivery())
    h.send(["a@example.com"], sender="who@sender.test")
    queued(h, 1)
    assert h.lt.run(h.e.bounce_recipients(sender="who@sender.test")) == 1
    h.lt.run(h.e.resume_delivery())
    dsn = sink.wait_for(1)[0]
    assert dsn.rcpts == ["who@sender.test"] and b"5.3.0" in dsn.data


def test_redirect_recipients(make_engine: MakeEngine, sink: Sink) -> None:
    """redirectrecipients sends matching mail to another host instead of its route."""
    other = Sink()
    try:
        h = make_engine()
        h.lt.run(h.e.suspend_delivery())
        h.send(["a@example.com"])
        queued(h, 1)
        assert h.lt.call(lambda: h.e.redirect_recipients(other.hop, recipient="a@example.com"))
        h.lt.run(h.e.resume_delivery())
        assert other.wait_for(1)[0].rcpts == ["a@example.com"]
        with pytest.raises(ValidationError):
            h.lt.call(lambda: h.e.redirect_recipients("bad host!", domain="x"))
    finally:
        other.stop()


def test_queue_ops_need_a_criterion(make_engine: MakeEngine) -> None:
    """delete/bounce/redirect without recipient, domain or sender is a usage error."""
    h = make_engine()
    with pytest.raises(UsageError):
        h.lt.call(h.e.delete_recipients)


def test_findevent_and_status(make_engine: MakeEngine, sink: Sink) -> None:
    """Each message has received/delivered log lines findable by to, from and id."""
    h = make_engine()
    h.send(["u@example.com"], sender="from@sender.test")
    h.wait_counter("delivered", 1)
    by_to = h.lt.call(lambda: h.e.find_events(to="U@example.com"))
    assert [e["event"] for e in by_to] == ["received", "delivered"]
    mid = by_to[0]["mid"]
    assert h.lt.call(lambda: h.e.find_events(from_="from@sender.test")) == by_to
    assert h.lt.call(lambda: h.e.find_events(mid=mid)) == by_to
    assert by_to[1]["relay"] == sink.hop
    counters = h.status()["counters"]
    assert counters["received"] == 1 and counters["delivered"] == 1


def test_maillog_line_roundtrip() -> None:
    """A mail-log line parses back to its fields, quoting values with spaces."""
    line = format_line(0.5, "delivered", {"mid": "ABC", "to": "<u@x>", "reply": "250 2.0.0 Ok"})
    assert line.startswith("1970-01-01T00:00:00.500Z delivered mid=ABC")
    assert parse_line(line) == {"time": "1970-01-01T00:00:00.500Z", "event": "delivered",
                                "mid": "ABC", "to": "<u@x>", "reply": "250 2.0.0 Ok"}
