"""The mail path inside a real daemon: configured through the cli, fed by smtplib,
delivering to a real SMTP sink; unsubscribe and durable suspension end to end."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from tests.integration.conftest import MachineProc, free_port, wait_for

pytestmark = pytest.mark.slow


class Sink:
    """Collects every message delivered to it."""

    def __init__(self) -> None:
        self.rcpts: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.rcpts += list(envelope.rcpt_tos)  # type: ignore[attr-defined]
        return "250 2.0.0 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    """A real aiosmtpd server on loopback standing in for the next hop."""
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def send(port: int, rcpt: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@sender.example", rcpt, "test"
    msg.set_content("hello")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg)


def status(machine: MachineProc) -> dict:  # type: ignore[type-arg]
    out = machine.cli("status", json=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_mail_flows_unsubscribe_drops_and_suspension_survives_restart(
        machine: MachineProc, sink: tuple[Sink, int]) -> None:
    """Configure by cli, relay to the sink, drop an unsubscribed recipient, and keep a
    suspension across a restart until resume."""
    handler, sink_port = sink
    port = free_port()
    out = machine.cli(
        f"listenerconfig new In --type public --interface Management --port {port} "
        "--rat example.com", f"smtproutes new example.com --to 127.0.0.1:{sink_port}",
        "unsubscribe new gone@example.com", "commit 'mail path'")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: not refused(port), what="the listener to open")
    send(port, "bob@example.com")
    send(port, "gone@example.com")
    wait_for(lambda: "bob@example.com" in handler.rcpts, what="delivery to the sink")
    wait_for(lambda: status(machine)["counters"]["dropped_unsubscribe"] == 1,
             what="the unsubscribed recipient to be dropped")
    assert "gone@example.com" not in handler.rcpts
    assert machine.cli("suspend --delay 0").returncode == 0
    wait_for(lambda: refused(port), timeout=5, what="the listener to refuse connections")
    machine.stop()
    machine.start()
    assert all(li["state"] == "suspended" for li in status(machine)["listeners"])
    assert refused(port)
    assert machine.cli("resume").returncode == 0
    wait_for(lambda: not refused(port), what="the listener to accept again")
    found = machine.cli("findevent --to bob@example.com", json=True)
    events = [e["event"] for e in json.loads(found.stdout)["events"]]
    assert "received" in events and "delivered" in events
