"""suspendlistener / resumelistener / suspenddel / resumedel, and their durability."""

from __future__ import annotations

import smtplib
import time

import pytest

from mxcluster.errors import NotFoundError

from .conftest import MakeEngine, message
from .helpers import Sink, wait_until


def refused(port: int) -> bool:
    try:
        smtplib.SMTP("127.0.0.1", port, timeout=2).close()
    except (ConnectionRefusedError, smtplib.SMTPConnectError):
        return True
    return False


def test_new_connections_refused_within_one_second(make_engine: MakeEngine) -> None:
    """After suspendlistener, new connections are refused in under a second."""
    h = make_engine()
    started = time.monotonic()
    h.lt.run(h.e.suspend_listener("Inbound", delay=30))
    wait_until(lambda: refused(h.port("Inbound")), timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert h.listener_state("Inbound")["state"] == "suspended"
    assert not refused(h.port("Outbound"))


def test_session_finishing_within_delay_is_accepted(make_engine: MakeEngine,
                                                    sink: Sink) -> None:
    """A session in progress that finishes within the delay gets 250 and is delivered."""
    h = make_engine()
    smtp = h.client()
    smtp.ehlo()
    smtp.mail("a@sender.test")
    smtp.rcpt("u@example.com")
    h.lt.run(h.e.suspend_listener(None, delay=5))
    code, _ = smtp.data(message())
    smtp.quit()
    assert code == 250
    assert sink.wait_for(1)[0].rcpts == ["u@example.com"]


def test_session_cut_at_delay_gets_no_250(make_engine: MakeEngine) -> None:
    """A session still in DATA when the delay ends is closed with 421, never 250."""
    h = make_engine()
    smtp = h.client()
    smtp.ehlo()
    smtp.mail("a@sender.test")
    smtp.rcpt("u@example.com")
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354
    smtp.send(b"Subject: slow\r\n\r\nfirst part\r\n")
    h.lt.run(h.e.suspend_listener("Inbound", delay=0.3))
    wait_until(lambda: h.listener_state("Inbound")["sessions"] == 0, timeout=5)
    try:
        smtp.send(b"rest\r\n.\r\n")
        code, text = smtp.getreply()
    except smtplib.SMTPServerDisconnected:
        code, text = 0, b""
    assert code in (0, 421) and (not code or text.startswith(b"4.3.2"))
    assert h.counter("received") == 0


def test_suspension_survives_restart_and_resume_restores(make_engine: MakeEngine,
                                                         sink: Sink) -> None:
    """Suspended listeners and delivery stay suspended across a restart until resume."""
    h = make_engine()
    h.lt.run(h.e.suspend_delivery())
    h.send(["u@example.com"])
    h.lt.run(h.e.suspend_listener(None, delay=0))
    h.restart()
    status = h.status()
    assert status["delivery"] == "suspended" and status["counters"]["queued"] == 1
    assert {x["state"] for x in status["listeners"]} == {"suspended"}
    assert refused(h.port("Inbound"))
    h.lt.run(h.e.resume())
    assert sink.wait_for(1)[0].rcpts == ["u@example.com"]
    h.send(["v@example.com"])
    sink.wait_for(2)


def test_resume_one_listener_after_suspending_all(make_engine: MakeEngine) -> None:
    """resumelistener NAME after suspendlistener all reopens only NAME."""
    h = make_engine()
    h.lt.run(h.e.suspend_listener(None, delay=0))
    h.lt.run(h.e.resume_listener("Outbound"))
    assert not refused(h.port("Outbound"))
    assert refused(h.port("Inbound"))


def test_unknown_listener_is_an_error(make_engine: MakeEngine) -> None:
    """Suspending a listener that does not exist raises NotFoundError."""
    h = make_engine()
    with pytest.raises(NotFoundError):
        h.lt.run(h.e.suspend_listener("Nope"))
