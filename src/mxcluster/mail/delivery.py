"""One delivery attempt of one queued message: routes, failover, unsubscribe, SMTP.

``Deliverer.attempt`` returns a result per pending recipient; it never touches the
queue. What to do with the results (log, bounce, retry) is the engine's business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiosmtplib import (
    SMTP,
    SMTPConnectResponseError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientsRefused,
    SMTPResponseException,
)

from mxcluster.mail.policy import (
    DEVNULL,
    Hop,
    dest_limits,
    is_ip,
    literal_ip,
    parse_hop,
    route_for,
    split_address,
)
from mxcluster.mail.pool import ConnectionPool, Slot, Target
from mxcluster.mail.queue import QueuedMessage
from mxcluster.mail.resolver import DnsPermanentError, DnsTemporaryError, Resolver
from mxcluster.mail.snapshot import MailSnapshot, MailTunables


class Outcome:
    """What happened to one recipient in one attempt."""

    #: The next hop accepted it (2xx).
    DELIVERED = "delivered"
    #: Permanent failure (5xx, no such domain): bounce.
    BOUNCED = "bounced"
    #: Temporary failure: keep it queued and retry.
    DEFERRED = "deferred"
    #: Matched Global Unsubscribe with action ``drop``.
    UNSUB_DROPPED = "unsubscribe-drop"
    #: Matched Global Unsubscribe with action ``bounce``.
    UNSUB_BOUNCED = "unsubscribe-bounce"
    #: Routed to ``/dev/null``.
    DEVNULL = "devnull"


UNSUBSCRIBED_REPLY = "550 5.7.1 Recipient unsubscribed (Global Unsubscribe)"


@dataclass(frozen=True)
class RcptResult:
    rcpt: str
    outcome: str
    detail: str = ""
    relay: str = ""


@dataclass(frozen=True)
class Group:
    """Recipients of one message that share a destination domain and next hops."""

    domain: str
    rcpts: tuple[str, ...]
    hops: tuple[Hop, ...] | None  # None: look up MX; empty: /dev/null


def plan_groups(msg: QueuedMessage, snapshot: MailSnapshot, mx_port: int = 25) -> list[Group]:
    """Group the pending recipients of MSG by domain and next hops (pure)."""
    groups: dict[tuple[str, tuple[Hop, ...] | None], list[str]] = {}
    for rcpt in msg.pending:
        domain = split_address(rcpt)[1]
        hops = _hops_for(rcpt, domain, msg, snapshot, mx_port)
        groups.setdefault((domain, hops), []).append(rcpt)
    return [Group(d, tuple(r), h) for (d, h), r in groups.items()]


def _hops_for(rcpt: str, domain: str, msg: QueuedMessage, snapshot: MailSnapshot,
              mx_port: int) -> tuple[Hop, ...] | None:
    if rcpt in msg.redirects:
        return (parse_hop(msg.redirects[rcpt]),)
    route = route_for(snapshot.routes, domain)
    if route is not None:
        return () if route.hops == [DEVNULL] else tuple(parse_hop(h) for h in route.hops)
    ip = literal_ip(domain)
    return (Hop(ip, mx_port),) if ip else None


class Deliverer:
    """Runs delivery attempts against next hops."""

    def __init__(self, snapshot: Callable[[], MailSnapshot], resolver: Resolver,
                 pool: ConnectionPool, tunables: MailTunables) -> None:
        self._snapshot = snapshot
        self._resolver = resolver
        self._pool = pool
        self._tunables = tunables

    async def attempt(self, msg: QueuedMessage, body: bytes) -> list[RcptResult]:
        """Try every pending recipient of MSG once."""
        results: list[RcptResult] = []
        for group in plan_groups(msg, self._snapshot(), self._tunables.mx_port):
            results += await self._group(msg.sender, group, body)
        return results

    async def _group(self, sender: str, group: Group, body: bytes) -> list[RcptResult]:
        if group.hops == ():
            return [RcptResult(r, Outcome.DEVNULL, DEVNULL) for r in group.rcpts]
        rcpts, results = self._screen(list(group.rcpts), None)
        try:
            hops = group.hops or await self._mx_hops(group.domain)
        except DnsPermanentError as exc:
            return results + [RcptResult(r, Outcome.BOUNCED, f"550 5.1.2 {exc}") for r in rcpts]
        except DnsTemporaryError as exc:
            return results + [RcptResult(r, Outcome.DEFERRED, f"451 4.4.3 {exc}") for r in rcpts]
        error = "451 4.4.1 no next hop could be reached"
        for target in await self._targets(hops):
            rcpts, screened = self._screen(rcpts, target[0])
            results += screened
            if not rcpts:
                return results
            sent, failure = await self._send(group.domain, target, sender, rcpts, body)
            if failure is None:
                return results + sent
            error = failure
        return results + [RcptResult(r, Outcome.DEFERRED, error) for r in rcpts]

    async def _mx_hops(self, domain: str) -> tuple[Hop, ...]:
        port = self._tunables.mx_port
        return tuple(Hop(host, port) for host in await self._resolver.mx(domain))

    async def _targets(self, hops: tuple[Hop, ...]) -> list[Target]:
        """(IP, port) of each hop in order; unresolvable hops are skipped."""
        targets: list[Target] = []
        for hop in hops:
            try:
                ips = [hop.host] if is_ip(hop.host) else await self._resolver.addresses(hop.host)
            except DnsTemporaryError:
                continue
            targets += [(ip, hop.port) for ip in ips]
        return targets

    def _screen(self, rcpts: list[str], ip: str | None) -> tuple[list[str], list[RcptResult]]:
        """Split RCPTS into those to deliver and Global Unsubscribe matches."""
        snap = self._snapshot()
        if not snap.unsubscribe.enabled:
            return rcpts, []
        outcome = Outcome.UNSUB_BOUNCED if snap.unsubscribe.action == "bounce" \
            else Outcome.UNSUB_DROPPED
        keep: list[str] = []
        hits: list[RcptResult] = []
        for rcpt in rcpts:
            if snap.unsubscribed(rcpt, ip):
                hits.append(RcptResult(rcpt, outcome, UNSUBSCRIBED_REPLY, ip or ""))
            else:
                keep.append(rcpt)
        return keep, hits

    async def _send(self, domain: str, target: Target, sender: str, rcpts: list[str],
                    body: bytes) -> tuple[list[RcptResult], str | None]:
        """Results per recipient, or ([], error) when the next hop should be tried."""
        relay = f"{target[0]}:{target[1]}"
        slot = await self._pool.acquire(domain, dest_limits(self._snapshot().destconfig, domain))
        healthy = False
        try:
            results = await self._transaction(slot, target, sender, rcpts, body, relay)
            healthy = True
            return results, None
        except SMTPResponseException as exc:
            reply = f"{exc.code} {exc.message}"
            if exc.code >= 500 and not isinstance(exc, _CONNECT_ERRORS):
                healthy = True
                return [RcptResult(r, Outcome.BOUNCED, reply, relay) for r in rcpts], None
            return [], f"{relay} said: {reply}"
        except (TimeoutError, SMTPException, OSError) as exc:
            return [], f"451 4.4.1 {relay}: {exc or type(exc).__name__}"
        finally:
            self._pool.release(domain, slot, healthy)

    async def _transaction(self, slot: Slot, target: Target, sender: str, rcpts: list[str],
                           body: bytes, relay: str) -> list[RcptResult]:
        reused = slot.usable_for(target)
        client = slot.client if reused and slot.client else await self._connect(slot, target)
        errors: Mapping[str, tuple[int, str]]
        try:
            errors, reply = await client.sendmail(sender, rcpts, body)
        except SMTPRecipientsRefused as exc:
            errors = {e.recipient: (e.code, e.message) for e in exc.recipients}
            reply = ""
        except (SMTPException, ConnectionError) as exc:
            if not reused or isinstance(exc, SMTPResponseException):
                raise
            client = await self._connect(slot, target)  # the pooled one went stale
            errors, reply = await client.sendmail(sender, rcpts, body)
        slot.used += 1
        return [_result(r, errors.get(r), reply, relay) for r in rcpts]

    async def _connect(self, slot: Slot, target: Target) -> SMTP:
        if slot.client is not None:
            slot.client.close()
        slot.client = slot.target = None
        client = SMTP(hostname=target[0], port=target[1], timeout=self._tunables.delivery_timeout,
                      local_hostname=self._snapshot().hostname, start_tls=None,
                      validate_certs=False)
        await client.connect()
        slot.client, slot.target, slot.used = client, target, 0
        return client


#: A 5xx greeting or EHLO reply condemns the hop, not the message: try the next hop.
_CONNECT_ERRORS = (SMTPConnectResponseError, SMTPHeloError)


def _result(rcpt: str, error: tuple[int, str] | None, reply: str, relay: str) -> RcptResult:
    if error is None:
        return RcptResult(rcpt, Outcome.DELIVERED, reply, relay)
    code, text = int(error[0]), str(error[1])
    outcome = Outcome.BOUNCED if code >= 500 else Outcome.DEFERRED
    return RcptResult(rcpt, outcome, f"{code} {text}", relay)
