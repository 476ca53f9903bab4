"""Listeners with real smtplib clients: access policy, limits, smuggling, live changes."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

import pytest

from mxcluster.mail import MailTunables

from .conftest import TEST_TUNABLES, MakeEngine, message
from .helpers import Sink, wait_until


def raw_session(port: int) -> socket.socket:
    """A raw client socket past the greeting and EHLO."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.recv(1024)
    sock.sendall(b"EHLO raw.test\r\n")
    read_reply(sock)
    return sock


def read_reply(sock: socket.socket) -> bytes:
    """Read one (possibly multi-line) SMTP reply."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        last = data.rstrip(b"\r\n").split(b"\r\n")[-1]
        if data.endswith(b"\r\n") and len(last) >= 4 and last[3:4] == b" ":
            return data


def test_public_listener_accepts_rat_and_delivers(make_engine: MakeEngine, sink: Sink) -> None:
    """A RAT recipient gets 250 with a queue id and reaches the next hop."""
    h = make_engine()
    with h.client() as smtp:
        smtp.ehlo()
        smtp.mail("a@sender.test")
        assert smtp.rcpt("u@example.com")[0] == 250
        code, text = smtp.data(message())
    assert code == 250 and b"queued as" in text
    assert sink.wait_for(1)[0].rcpts == ["u@example.com"]


def test_public_listener_refuses_other_domains(make_engine: MakeEngine) -> None:
    """A recipient outside the RAT is refused with 550 5.7.1."""
    h = make_engine()
    with h.client() as smtp:
        smtp.ehlo()
        smtp.mail("a@sender.test")
        code, text = smtp.rcpt("u@elsewhere.org")
    assert (code, text[:5]) == (550, b"5.7.1")


def test_reject_from_is_refused(make_engine: MakeEngine) -> None:
    """A client in reject_from is refused 550 5.7.1 even for a RAT domain."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][0]["reject_from"] = ["127.0.0.2/32"]
    h = make_engine(edit)
    with h.client(source="127.0.0.2") as smtp:
        smtp.ehlo()
        smtp.mail("a@sender.test")
        assert smtp.rcpt("u@example.com")[0] == 550
    with h.client(source="127.0.0.1") as smtp:
        smtp.ehlo()
        smtp.mail("a@sender.test")
        assert smtp.rcpt("u@example.com")[0] == 250


def test_private_listener_relays_only_for_relay_from(make_engine: MakeEngine,
                                                     sink: Sink) -> None:
    """A private listener relays any domain for relay_from clients, 550 5.7.1 for others."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][1]["relay_from"] = ["127.0.0.3/32"]
    h = make_engine(edit)
    with h.client("Outbound", source="127.0.0.3") as smtp:
        smtp.sendmail("a@sender.test", ["x@anywhere.org"], message())
    with h.client("Outbound", source="127.0.0.1") as smtp:
        smtp.ehlo()
        smtp.mail("a@sender.test")
        code, text = smtp.rcpt("x@anywhere.org")
    assert (code, text[:5]) == (550, b"5.7.1")
    assert sink.wait_for(1)[0].rcpts == ["x@anywhere.org"]


def test_message_size_limit(make_engine: MakeEngine) -> None:
    """Over max_message_bytes: 552 5.3.4 at MAIL (SIZE=) or after DATA; nothing queued."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][0]["max_message_bytes"] = 2000
    h = make_engine(edit)
    with h.client() as smtp, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.sendmail("a@sender.test", ["u@example.com"], message(size=5000))
    assert refused.value.smtp_code == 552 and refused.value.smtp_error.startswith(b"5.3.4")
    with h.client() as smtp, pytest.raises(smtplib.SMTPDataError) as err:
        smtp.helo()  # no ESMTP, so no SIZE= declared up front
        smtp.sendmail("a@sender.test", ["u@example.com"], message(size=5000))
    assert err.value.smtp_code == 552 and err.value.smtp_error.startswith(b"5.3.4")
    assert h.counter("received") == 0


def test_recipient_limit(make_engine: MakeEngine) -> None:
    """Recipients beyond max_recipients get 452 4.5.3; the accepted ones are kept."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][0]["max_recipients"] = 2
    h = make_engine(edit)
    with h.client() as smtp:
        smtp.ehlo()
        smtp.mail("a@sender.test")
        assert smtp.rcpt("a@example.com")[0] == 250
        assert smtp.rcpt("b@example.com")[0] == 250
        code, text = smtp.rcpt("c@example.com")
    assert (code, text[:5]) == (452, b"4.5.3")


def test_connection_limits_total_and_per_ip(make_engine: MakeEngine) -> None:
    """Connections beyond max_connections_per_ip, or max_connections, get 421 4.7.0."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][0].update(max_connections=3, max_connections_per_ip=2)
    h = make_engine(edit)
    first = [h.client(source="127.0.0.1") for _ in range(2)]
    with pytest.raises(smtplib.SMTPConnectError) as err:
        h.client(source="127.0.0.1")
    assert err.value.smtp_code == 421 and b"4.7.0" in err.value.smtp_error
    third = h.client(source="127.0.0.4")
    with pytest.raises(smtplib.SMTPConnectError):
        h.client(source="127.0.0.5")
    for smtp in [*first, third]:
        smtp.quit()
    wait_until(lambda: h.listener_state("Inbound")["sessions"] == 0)
    h.client(source="127.0.0.5").quit()


def test_command_line_too_long(make_engine: MakeEngine) -> None:
    """A command line over 512 octets (RFC 5321 §4.5.3.1.4) gets 500 5.5.2."""
    h = make_engine()
    sock = raw_session(h.port("Inbound"))
    sock.sendall(b"MAIL FROM:<" + b"a" * 600 + b"@x.test>\r\n")
    assert read_reply(sock).startswith(b"500 5.5.2")
    sock.close()


def test_text_line_too_long(make_engine: MakeEngine) -> None:
    """A message line over 1000 octets (RFC 5321 §4.5.3.1.6) is refused with 500."""
    h = make_engine()
    sock = raw_session(h.port("Inbound"))
    for line in (b"MAIL FROM:<a@s.test>\r\n", b"RCPT TO:<u@example.com>\r\n", b"DATA\r\n"):
        sock.sendall(line)
        read_reply(sock)
    sock.sendall(b"Subject: x\r\n\r\n" + b"y" * 1500 + b"\r\n.\r\n")
    assert read_reply(sock).startswith(b"500 5.5.2")
    sock.close()


def test_idle_and_total_session_timeouts(make_engine: MakeEngine) -> None:
    """An idle session, and one open too long, are closed with 421 4.4.2."""
    h = make_engine(tunables=MailTunables(idle_timeout=0.3, session_timeout=60,
                                          disk_margin_bytes=1))
    sock = raw_session(h.port("Inbound"))
    assert read_reply(sock).startswith(b"421 4.4.2")
    h.stop()
    h.tunables = MailTunables(idle_timeout=10, session_timeout=0.5, disk_margin_bytes=1)
    h.start()
    sock = raw_session(h.port("Inbound"))
    sock.sendall(b"NOOP\r\n")
    read_reply(sock)
    assert read_reply(sock).startswith(b"421 4.4.2")


def test_low_disk_space_refuses_mail(make_engine: MakeEngine) -> None:
    """Below the free-disk safety margin, MAIL gets 452 4.3.1."""
    h = make_engine(tunables=MailTunables(disk_margin_bytes=1 << 62))
    with h.client() as smtp:
        smtp.ehlo()
        code, text = smtp.mail("a@sender.test")
    assert (code, text[:5]) == (452, b"4.3.1")


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"])
def test_smuggling_never_yields_second_message(make_engine: MakeEngine, sink: Sink,
                                               smuggle: bytes) -> None:
    """Bare-LF end-of-data variants never end the message: one message, not two."""
    h = make_engine()
    sock = raw_session(h.port("Inbound"))
    for line in (b"MAIL FROM:<a@s.test>\r\n", b"RCPT TO:<u@example.com>\r\n", b"DATA\r\n"):
        sock.sendall(line)
        read_reply(sock)
    sock.sendall(b"Subject: one\r\n\r\nbody" + smuggle
                 + b"MAIL FROM:<evil@s.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
                 + b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
    reply = read_reply(sock)
    sock.sendall(b"QUIT\r\n")
    sock.close()
    assert reply.count(b"250 2.0.0") == 1
    h.wait_counter("delivered", 1)
    assert [m.rcpts for m in sink.messages] == [["u@example.com"]]
    assert h.counter("received") == 1


def test_listener_without_interface_is_disabled(make_engine: MakeEngine) -> None:
    """A listener naming an interface this machine lacks is disabled; status says why."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][1]["interface"] = "Missing"
    h = make_engine(edit)
    state = h.listener_state("Outbound")
    assert state["state"] == "disabled" and "Missing" in state["reason"]
    with pytest.raises(OSError):
        h.client("Outbound")


def test_apply_keeps_sessions_on_unchanged_listeners(make_engine: MakeEngine,
                                                     sink: Sink) -> None:
    """Live reconfiguration: a session on an unchanged listener survives; changes apply."""
    h = make_engine()
    smtp = h.client("Inbound")
    smtp.ehlo()
    blocks = dict(h.blocks)
    blocks["listeners"] = [dict(h.blocks["listeners"][0]),
                           {**h.blocks["listeners"][1], "relay_from": ["10.0.0.0/8"]}]
    h.apply(blocks)
    smtp.sendmail("a@sender.test", ["u@example.com"], message())
    smtp.quit()
    with h.client("Outbound") as out:
        out.ehlo()
        out.mail("a@sender.test")
        assert out.rcpt("x@anywhere.org")[0] == 550
    outbound_port = h.port("Outbound")
    h.apply({**blocks, "listeners": blocks["listeners"][:1]})
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", outbound_port, timeout=5)
    assert [x["name"] for x in h.status()["listeners"]] == ["Inbound"]
    sink.wait_for(1)


def test_tunables_default_is_sane() -> None:
    """The test tunables keep a positive disk margin (guards the fixture itself)."""
    assert TEST_TUNABLES.disk_margin_bytes > 0
