"""The listeners' policy hooks (aiosmtpd handler): who may send what, and queueing.

Lifecycle (sockets, limits on connections, suspension) lives in ``listeners``; this
module only answers MAIL, RCPT and DATA with the replies of ``replies``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from mxcluster.config.blocks import Listener
from mxcluster.mail import replies
from mxcluster.mail.policy import recipient_reply
from mxcluster.mail.queue import new_mid

NULL_SENDER = "<>"


@dataclass(frozen=True)
class Submission:
    """A message a client handed over, ready to be queued."""

    mid: str
    sender: str
    recipients: list[str]
    body: bytes
    info: dict[str, str] = field(default_factory=dict)


#: Stores a submission durably; returns when it is on disk, raises OSError otherwise.
Accept = Callable[[Submission], Awaitable[None]]


def received_header(sub_mid: str, helo: str, client_ip: str, hostname: str, tls: bool,
                    when: float) -> bytes:
    """The trace header we prepend (RFC 5321 §4.4)."""
    proto = "ESMTPS" if tls else "ESMTP"
    return (
        f"Received: from {helo or 'unknown'} ([{client_ip}])\r\n"
        f"\tby {hostname} (mxcluster) with {proto} id {sub_mid};\r\n"
        f"\t{formatdate(when)}\r\n"
    ).encode("ascii", "replace")


class PolicyHandler:
    """aiosmtpd handler of one listener."""

    def __init__(self, listener: Listener, hostname: str, accept: Accept,
                 disk_ok: Callable[[], bool]) -> None:
        self.listener = listener
        self.hostname = hostname
        self._accept = accept
        self._disk_ok = disk_ok

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        # aiosmtpd reads commands one line at a time, so pipelined commands are safe to
        # accept; saying so (RFC 2920) saves clients a round trip per command.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if not self._disk_ok():
            return replies.DISK_FULL_452
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.listener.max_recipients:
            return replies.TOO_MANY_RECIPIENTS_452
        refusal = recipient_reply(self.listener, session.peer[0], address)
        if refusal is not None:
            return refusal
        if address not in envelope.rcpt_tos:
            envelope.rcpt_tos.append(address)
        return replies.RECIPIENT_OK

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self._disk_ok():
            return replies.DISK_FULL_452
        mid = new_mid()
        client_ip = session.peer[0]
        trace = received_header(mid, session.host_name or "", client_ip, self.hostname,
                                session.ssl is not None, time.time())
        sender = "" if envelope.mail_from == NULL_SENDER else envelope.mail_from
        info = {"client": client_ip, "listener": self.listener.name,
                "helo": session.host_name or ""}
        submission = Submission(mid, sender, list(envelope.rcpt_tos),
                                trace + envelope.original_content, info)
        try:
            await self._accept(submission)
        except OSError:
            return replies.QUEUE_ERROR_451
        return replies.QUEUED.format(mid=mid)
