"""Test helpers for the mail path: event-loop thread, sink next hop, unsubscribe set."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mxcluster.mail.policy import literal_ip, split_address

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll CONDITION until it is truthy; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


class LoopThread:
    """An asyncio loop in a thread, so blocking smtplib clients can run in the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            self.loop.call_soon_threadsafe(self._dump_tasks)
            time.sleep(0.5)
            raise

    def _dump_tasks(self) -> None:
        """Print every task's stack, to diagnose a hang."""
        for task in asyncio.all_tasks(self.loop):
            task.print_stack(limit=8)

    def call(self, func: Callable[..., T], *args: Any) -> T:
        async def _call() -> T:
            return func(*args)
        return self.run(_call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Received:
    sender: str
    rcpts: list[str]
    data: bytes
    peer: str


@dataclass
class SinkHandler:
    """Records what arrives; refuses recipients listed in ``reject`` with their reply."""

    messages: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)
    defer_rcpt: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    max_active: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address in self.reject:
            return self.reject[address]
        if self.defer_rcpt.get(address, 0) > 0:
            self.defer_rcpt[address] -= 1
            return "450 4.2.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content, session.peer[0]))
        return "250 2.0.0 Ok: sunk"


class CountingSMTP(SMTP):
    """Sink protocol that counts concurrent connections."""

    def connection_made(self, transport: Any) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            handler: SinkHandler = self.event_handler
            handler.active += 1
            handler.max_active = max(handler.max_active, handler.active)

    def connection_lost(self, exc: Exception | None) -> None:
        self.event_handler.active -= 1
        super().connection_lost(exc)


class SinkController(Controller):
    def factory(self) -> SMTP:
        return CountingSMTP(self.handler, hostname="sink.test")


class Sink:
    """A real aiosmtpd next hop on 127.0.0.1 (threaded; it is not the code under test)."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self._controller = SinkController(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    @property
    def hop(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def rcpts(self) -> list[str]:
        return [r for m in self.messages for r in m.rcpts]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        wait_until(lambda: len(self.messages) >= count, timeout, f"{count} messages at sink")
        return self.messages

    def stop(self) -> None:
        self._controller.stop()


class SetUnsubscribe:
    """Global Unsubscribe entries (SPEC §2) matched from plain sets."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.addresses: set[str] = set()
        self.locals: set[str] = set()
        self.domains: set[str] = set()
        self.subdomains: set[str] = set()
        self.ips: set[str] = set()
        for entry in entries:
            self._add(entry.strip().lower())

    def _add(self, entry: str) -> None:
        try:
            self.ips.add(str(ipaddress.ip_address(entry)))
            return
        except ValueError:
            pass
        if entry.startswith("@."):
            self.subdomains.add(entry[2:])
        elif entry.startswith("@"):
            self.domains.add(entry[1:])
        elif entry.endswith("@"):
            self.locals.add(entry[:-1])
        else:
            self.addresses.add(entry)

    def __call__(self, recipient: str, next_hop_ip: str | None) -> bool:
        local, domain = split_address(recipient.lower())
        literal = literal_ip(domain)
        if next_hop_ip in self.ips or (literal is not None and literal in self.ips):
            return True
        if recipient.lower() in self.addresses or local in self.locals:
            return True
        if domain in self.domains:
            return True
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self.subdomains for i in range(1, len(labels)))
