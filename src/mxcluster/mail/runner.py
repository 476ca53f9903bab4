"""Runs delivery attempts and settles their results: log, count, bounce, retry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from mxcluster.mail.delivery import Deliverer, Outcome, RcptResult
from mxcluster.mail.dsn import build_dsn
from mxcluster.mail.handler import Submission
from mxcluster.mail.maillog import MailLog
from mxcluster.mail.queue import MailQueue, QueuedMessage, new_mid
from mxcluster.mail.snapshot import MailSnapshot


@dataclass
class Counters:
    """Event counters since the engine started (``status``); recipients unless noted."""

    received: int = 0  # messages
    delivered: int = 0
    bounced: int = 0
    dropped_unsubscribe: int = 0
    dropped_devnull: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_LOG_EVENT = {
    Outcome.DELIVERED: "delivered", Outcome.BOUNCED: "bounced", Outcome.DEFERRED: "deferred",
    Outcome.UNSUB_DROPPED: "dropped", Outcome.UNSUB_BOUNCED: "bounced",
    Outcome.DEVNULL: "dropped",
}
_REASON = {Outcome.UNSUB_DROPPED: "unsubscribe", Outcome.UNSUB_BOUNCED: "unsubscribe",
           Outcome.DEVNULL: "/dev/null"}


class DeliveryRunner:
    """Attempt, then settle: the glue between queue, deliverer and mail log."""

    def __init__(self, queue: MailQueue, deliverer: Deliverer, maillog: MailLog,
                 counters: Counters, snapshot: Callable[[], MailSnapshot],
                 accept: Callable[[Submission], Awaitable[None]],
                 clock: Callable[[], float]) -> None:
        self.queue = queue
        self._deliverer = deliverer
        self._log = maillog
        self._counters = counters
        self._snapshot = snapshot
        self._accept = accept
        self._clock = clock

    async def attempt(self, msg: QueuedMessage) -> None:
        """Try MSG once and record what happened."""
        body = await self.queue.body(msg)
        results = await self._deliverer.attempt(msg, body)
        await self.settle(msg, results, body)

    async def settle(self, msg: QueuedMessage, results: list[RcptResult], body: bytes) -> None:
        """Log and count RESULTS; bounce failures; schedule a retry for the deferred."""
        results = [r for r in results if r.rcpt in msg.pending]  # an operator may have acted
        deferred = [r for r in results if r.outcome == Outcome.DEFERRED]
        if deferred and self._expired(msg):
            deferred = []
            results = [_expire(r) for r in results]
        for result in results:
            self._record(msg, result)
        failures = [(r.rcpt, r.detail) for r in results
                    if r.outcome in (Outcome.BOUNCED, Outcome.UNSUB_BOUNCED)]
        if failures:
            await self.bounce(msg, failures, body)
        self.queue.done(msg, [r.rcpt for r in results if r.outcome != Outcome.DEFERRED])
        if deferred and msg.mid in self.queue.messages:
            self.queue.retry(msg, self._clock() + self._retry_delay(msg), deferred[0].detail)

    def _record(self, msg: QueuedMessage, r: RcptResult) -> None:
        event = _LOG_EVENT[r.outcome]
        self._log.event(event, msg.mid, to=f"<{r.rcpt}>", relay=r.relay or None,
                        reason=_REASON.get(r.outcome), reply=r.detail or None)
        if r.outcome == Outcome.DELIVERED:
            self._counters.delivered += 1
        elif r.outcome == Outcome.BOUNCED:
            self._counters.bounced += 1
        elif r.outcome == Outcome.DEVNULL:
            self._counters.dropped_devnull += 1
        elif r.outcome in (Outcome.UNSUB_DROPPED, Outcome.UNSUB_BOUNCED):
            self._counters.dropped_unsubscribe += 1

    def _expired(self, msg: QueuedMessage) -> bool:
        lifetime = self._snapshot().bounceconfig.max_queue_lifetime
        return self._clock() - msg.received_at >= lifetime

    def _retry_delay(self, msg: QueuedMessage) -> float:
        schedule = self._snapshot().bounceconfig.retry_schedule
        return float(schedule[min(msg.attempts, len(schedule) - 1)])

    async def bounce(self, msg: QueuedMessage, failures: list[tuple[str, str]],
                     body: bytes) -> None:
        """Queue a DSN to the sender of MSG (unless bounces are off or the sender is <>)."""
        snap = self._snapshot()
        if not snap.bounceconfig.bounce_enabled or not msg.sender:
            return
        dsn = build_dsn(snap.hostname, msg.mid, msg.sender, failures, body, self._clock())
        info = {"client": "", "listener": "", "bounce_of": msg.mid}
        await self._accept(Submission(new_mid(), "", [msg.sender], dsn, info))


def _expire(result: RcptResult) -> RcptResult:
    if result.outcome != Outcome.DEFERRED:
        return result
    detail = f"554 5.4.7 Delivery time expired (last error: {result.detail})"
    return RcptResult(result.rcpt, Outcome.BOUNCED, detail, result.relay)
