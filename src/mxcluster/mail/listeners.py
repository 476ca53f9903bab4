"""Listener lifecycle: bind, admit, suspend, drain, and live reconfiguration.

A ``ListenerRuntime`` serves one listener on one listening socket; ``ListenerSet``
keeps one runtime per configured listener and applies a new snapshot by replacing only
the listeners whose effective definition changed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mxcluster.config.blocks import Listener
from mxcluster.mail import replies
from mxcluster.mail.handler import PolicyHandler
from mxcluster.mail.session import GatewaySMTP


class ListenerState:
    """Operator-facing listener states (``status``)."""

    #: Accepting connections.
    LISTENING = "listening"
    #: Suspended by ``suspendlistener``; sessions in progress may still be draining.
    SUSPENDED = "suspended"
    #: Cannot run on this machine (see ``reason``: missing interface or certificate).
    DISABLED = "disabled"
    #: Binding the socket failed (see ``reason``), e.g. the port is taken.
    FAILED = "failed"


@dataclass(frozen=True)
class ListenerPlan:
    """Everything a runtime is built from; equal plans need no restart."""

    spec: Listener
    ip: str | None
    hostname: str
    cert_pem: str | None
    key_pem: str | None
    disabled_reason: str | None
    idle_timeout: float
    session_timeout: float


class ListenerRuntime:
    """One listener: its listening socket and its sessions."""

    def __init__(self, plan: ListenerPlan, handler: PolicyHandler,
                 tls: ssl.SSLContext | None) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.hostname = plan.hostname
        self.session_timeout = plan.session_timeout
        self._handler = handler
        self._tls = tls
        self._server: asyncio.Server | None = None
        self.sessions: set[GatewaySMTP] = set()
        self._per_ip: Counter[str] = Counter()
        self.state = ListenerState.DISABLED if plan.disabled_reason else ListenerState.SUSPENDED
        self.reason = plan.disabled_reason or ""
        self._drain: asyncio.TimerHandle | None = None

    def _protocol(self) -> GatewaySMTP:
        return GatewaySMTP(
            self._handler, owner=self, hostname=self.hostname, ident="mxcluster ESMTP",
            data_size_limit=self.spec.max_message_bytes, tls_context=self._tls,
            require_starttls=self.spec.tls == "required" and self._tls is not None,
            timeout=self.plan.idle_timeout, loop=asyncio.get_running_loop(),
        )

    async def open(self) -> None:
        """Start accepting connections (no-op when disabled or already listening)."""
        if self.plan.disabled_reason or self._server is not None:
            return
        self._cancel_drain()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._protocol, host=self.plan.ip, port=self.spec.port, reuse_address=True)
        except OSError as exc:
            self.state, self.reason = ListenerState.FAILED, f"cannot bind: {exc.strerror}"
            return
        self.state, self.reason = ListenerState.LISTENING, ""

    def close(self, delay: float | None = None) -> None:
        """Stop accepting at once; cut sessions still open after DELAY seconds with 421."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.state != ListenerState.DISABLED:
            self.state, self.reason = ListenerState.SUSPENDED, ""
        if delay is not None:
            self._cancel_drain()
            self._drain = asyncio.get_running_loop().call_later(delay, self.cut_all)

    def cut_all(self) -> None:
        """Close every session in progress with 421 4.3.2."""
        reply = replies.SHUTTING_DOWN_421.format(host=self.hostname)
        for session in list(self.sessions):
            session.cut(reply)

    def _cancel_drain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    @property
    def port(self) -> int | None:
        """The bound port (useful when the configured port is 0: any free port)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    def admit(self, session: GatewaySMTP) -> str | None:
        """The 421 refusal for a new SESSION, or None after registering it."""
        ip = session.peer_ip
        if self._server is None:
            return replies.SHUTTING_DOWN_421.format(host=self.hostname)
        if (len(self.sessions) >= self.spec.max_connections
                or self._per_ip[ip] >= self.spec.max_connections_per_ip):
            return replies.TOO_MANY_CONNECTIONS_421.format(host=self.hostname)
        self.sessions.add(session)
        self._per_ip[ip] += 1
        return None

    def release(self, session: GatewaySMTP) -> None:
        """Forget a finished SESSION."""
        self.sessions.discard(session)
        ip = session.peer_ip
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]

    def status(self) -> dict[str, Any]:
        """This listener's line in ``status``."""
        return {
            "name": self.spec.name, "type": self.spec.type, "interface": self.spec.interface,
            "ip": self.plan.ip, "port": self.port or self.spec.port, "state": self.state,
            "reason": self.reason, "sessions": len(self.sessions),
        }


RuntimeFactory = Callable[[ListenerPlan], ListenerRuntime]
