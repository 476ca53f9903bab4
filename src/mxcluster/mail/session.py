"""The SMTP protocol of our listeners: aiosmtpd's ``SMTP`` with gateway limits.

Adds, per connection: admission (listener and per-IP connection limits, suspension),
a total session deadline, 421 replies instead of silent closes, and our named replies
in place of aiosmtpd's texts.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, AnyStr, Protocol

from aiosmtpd.smtp import SMTP

from mxcluster.mail import replies

#: RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
COMMAND_LINE_LIMIT = 512


class SessionOwner(Protocol):
    """What a session asks of its listener."""

    hostname: str
    session_timeout: float

    def admit(self, session: GatewaySMTP) -> str | None: ...

    def release(self, session: GatewaySMTP) -> None: ...


class GatewaySMTP(SMTP):
    """One client connection on one of our listeners."""

    def __init__(self, handler: Any, *, owner: SessionOwner, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        # aiosmtpd keeps these limits in a class-level dict shared by all sessions and
        # grows it at each EHLO; keep a private one per session instead.
        self.command_size_limits = collections.defaultdict(lambda: COMMAND_LINE_LIMIT)
        self._owner = owner
        self._refusal: str | None = None
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def peer_ip(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if peer else ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None and self._original_transport is None
        super().connection_made(transport)
        if not first:
            return  # STARTTLS: same session, new transport
        self._refusal = self._owner.admit(self)
        self._admitted = self._refusal is None
        if self._admitted:
            timeout = replies.TIMEOUT_421.format(host=self._owner.hostname)
            self._deadline = self.loop.call_later(
                self._owner.session_timeout, self.cut, timeout)

    def connection_lost(self, error: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._admitted:
            self._admitted = False
            self._owner.release(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            await self.push(self._refusal)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(replies.REWRITES.get(status, status))
        else:
            await super().push(status)

    def _timeout_cb(self) -> None:
        self.cut(replies.TIMEOUT_421.format(host=self._owner.hostname))

    def cut(self, reply: str) -> None:
        """Send REPLY (a 421) and close the connection, whatever the session is doing."""
        transport = self.transport
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return
        transport.write(reply.encode() + b"\r\n")
        transport.close()
