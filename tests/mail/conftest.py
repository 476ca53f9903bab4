"""Fixtures for the mail path: loop thread -> sink -> engine harness -> smtplib clients."""

from __future__ import annotations

import copy
import smtplib
import time
from collections.abc import Callable, Iterator
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from mxcluster.mail import MailEngine, MailSnapshot, MailTunables, StaticResolver
from mxcluster.mail.snapshot import UnsubscribeCheck, never_unsubscribed

from .helpers import LoopThread, Sink, free_port, wait_until

TEST_TUNABLES = MailTunables(idle_timeout=10, session_timeout=60, disk_margin_bytes=1 << 20,
                             delivery_workers=8, delivery_timeout=5, pool_idle=1)


def message(subject: str = "test", body: str = "hello\r\n", size: int = 0) -> bytes:
    """A small RFC 5322 message with a unique Message-ID."""
    filler = ("x" * 70 + "\r\n") * (size // 72)
    return (f"From: a@sender.test\r\nTo: b@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: {make_msgid(domain='test')}\r\n\r\n{body}{filler}").encode()


def base_blocks(sink_hop: str, ports: dict[str, int]) -> dict[str, Any]:
    """A loopback machine: public Inbound (RAT example.com), private Outbound, ALL->sink."""
    return {
        "hostname": "mx1.test",
        "interfaces": [{"name": "Loopback", "ip": "127.0.0.1"}],
        "listeners": [
            {"name": "Inbound", "type": "public", "interface": "Loopback",
             "port": ports["Inbound"], "rat": ["example.com", ".sub.example.com"]},
            {"name": "Outbound", "type": "private", "interface": "Loopback",
             "port": ports["Outbound"], "relay_from": ["127.0.0.0/8"]},
        ],
        "smtproutes": [{"domain": "ALL", "hops": [sink_hop]}],
        "bounceconfig": {"retry_schedule": [1], "max_queue_lifetime": 3600,
                         "bounce_enabled": True},
        "unsubscribe": {"enabled": True, "action": "drop"},
    }


class Harness:
    """One MailEngine on the loop thread, with helpers to talk to it."""

    def __init__(self, lt: LoopThread, data_dir: Path, blocks: dict[str, Any],
                 unsubscribed: UnsubscribeCheck, resolver: Any, tunables: MailTunables,
                 clock: Callable[[], float]) -> None:
        self.lt, self.data_dir, self.blocks = lt, data_dir, blocks
        self.unsubscribed, self.resolver = unsubscribed, resolver
        self.tunables, self.clock = tunables, clock
        self.engine: MailEngine | None = None

    def snapshot(self) -> MailSnapshot:
        return MailSnapshot.from_json(self.blocks, self.unsubscribed)

    def start(self) -> Harness:
        self.engine = MailEngine(self.data_dir, self.snapshot(), clock=self.clock,
                                 resolver=self.resolver, tunables=self.tunables)
        self.lt.run(self.engine.start())
        return self

    def stop(self) -> None:
        if self.engine is not None:
            self.lt.run(self.engine.stop())
            self.engine = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def e(self) -> MailEngine:
        assert self.engine is not None
        return self.engine

    def apply(self, blocks: dict[str, Any]) -> None:
        self.blocks = blocks
        self.lt.run(self.e.apply(self.snapshot()))

    def port(self, listener: str) -> int:
        return next(int(x["port"]) for x in self.blocks["listeners"] if x["name"] == listener)

    def client(self, listener: str = "Inbound", source: str = "127.0.0.1") -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port(listener), local_hostname="client.test",
                            source_address=(source, 0), timeout=10)

    def send(self, rcpts: list[str], sender: str = "a@sender.test", listener: str = "Inbound",
             data: bytes | None = None) -> dict[str, Any]:
        with self.client(listener) as smtp:
            return smtp.sendmail(sender, rcpts, data or message())

    def status(self) -> dict[str, Any]:
        return self.lt.call(self.e.status)

    def counter(self, name: str) -> int:
        return int(self.status()["counters"][name])

    def wait_counter(self, name: str, value: int, timeout: float = 10.0) -> None:
        wait_until(lambda: self.counter(name) >= value, timeout, f"counter {name} >= {value}")

    def wait_queue_empty(self, timeout: float = 10.0) -> None:
        wait_until(lambda: self.counter("queued") == 0, timeout, "empty queue")

    def listener_state(self, name: str) -> dict[str, Any]:
        return next(x for x in self.status()["listeners"] if x["name"] == name)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.stop()


MakeEngine = Callable[..., Harness]


@pytest.fixture
def make_engine(tmp_path: Path, loop_thread: LoopThread, sink: Sink) -> Iterator[MakeEngine]:
    """Factory: ``make_engine(edit=lambda blocks: ..., unsubscribed=..., ...)``."""
    made: list[Harness] = []

    def make(edit: Callable[[dict[str, Any]], None] | None = None,
             unsubscribed: UnsubscribeCheck = never_unsubscribed, resolver: Any = None,
             tunables: MailTunables = TEST_TUNABLES,
             clock: Callable[[], float] = time.time) -> Harness:
        blocks = base_blocks(sink.hop, {"Inbound": free_port(), "Outbound": free_port()})
        if edit is not None:
            edit(blocks)
        harness = Harness(loop_thread, tmp_path / f"data{len(made)}", copy.deepcopy(blocks),
                          unsubscribed, resolver or StaticResolver(), tunables, clock)
        made.append(harness)
        return harness.start()

    yield make
    for harness in made:
        harness.stop()
