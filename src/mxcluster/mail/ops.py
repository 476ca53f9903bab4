"""Queue management commands (SPEC §4): showqueue, delivernow, delete/bounce/redirect
recipients, findevent. Mixed into ``MailEngine``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mxcluster.config.blocks import _hop
from mxcluster.errors import UsageError, ValidationError
from mxcluster.mail.policy import domain_matches, split_address

if TYPE_CHECKING:
    from mxcluster.mail.maillog import MailLog
    from mxcluster.mail.queue import MailQueue, QueuedMessage
    from mxcluster.mail.runner import Counters, DeliveryRunner
    from mxcluster.mail.scheduler import Scheduler

Selection = list[tuple["QueuedMessage", list[str]]]


def _criteria(recipient: str | None, domain: str | None, sender: str | None) -> None:
    if recipient is None and domain is None and sender is None:
        raise UsageError("give --recipient, --domain or --sender",
                         hint="e.g. 'deleterecipients --domain example.com'")


def _rcpt_matches(rcpt: str, recipient: str | None, domain: str | None) -> bool:
    if recipient is not None and rcpt.lower() != recipient.lower():
        return False
    if domain is not None:
        pattern = domain.lower()
        return domain_matches(pattern, split_address(rcpt)[1])
    return True


class QueueOps:
    """Operator actions on the queue; each returns how many recipients it touched."""

    queue: MailQueue
    scheduler: Scheduler
    runner: DeliveryRunner
    maillog: MailLog
    counters: Counters

    def show_queue(self) -> list[dict[str, Any]]:
        """Every queued message with its pending recipients, oldest first."""
        msgs = sorted(self.queue.messages.values(), key=lambda m: m.received_at)
        return [m.as_dict() for m in msgs]

    def deliver_now(self, domain: str | None = None) -> int:
        """Try now the messages with a pending recipient in DOMAIN (all if None)."""
        count = 0
        for msg in list(self.queue.messages.values()):
            if domain is None or any(_rcpt_matches(r, None, domain) for r in msg.pending):
                self.scheduler.ready(msg)
                count += 1
        return count

    def select(self, recipient: str | None = None, domain: str | None = None,
               sender: str | None = None) -> Selection:
        """Pending recipients matching every given criterion, per message."""
        _criteria(recipient, domain, sender)
        found: Selection = []
        for msg in list(self.queue.messages.values()):
            if sender is not None and msg.sender.lower() != sender.lower():
                continue
            rcpts = [r for r in msg.pending if _rcpt_matches(r, recipient, domain)]
            if rcpts:
                found.append((msg, rcpts))
        return found

    def delete_recipients(self, recipient: str | None = None, domain: str | None = None,
                          sender: str | None = None) -> int:
        """Remove matching recipients from the queue without notice."""
        selection = self.select(recipient, domain, sender)
        for msg, rcpts in selection:
            for rcpt in rcpts:
                self.maillog.event("deleted", msg.mid, to=f"<{rcpt}>", reason="operator")
            self.counters.deleted += len(rcpts)
            self._settle_manual(msg, rcpts)
        return sum(len(r) for _, r in selection)

    async def bounce_recipients(self, recipient: str | None = None, domain: str | None = None,
                                sender: str | None = None) -> int:
        """Bounce matching recipients to their senders (DSN) and remove them."""
        selection = self.select(recipient, domain, sender)
        reason = "550 5.3.0 Bounced by the administrator"
        for msg, rcpts in selection:
            body = await self.queue.body(msg)
            for rcpt in rcpts:
                self.maillog.event("bounced", msg.mid, to=f"<{rcpt}>", reply=reason)
            self.counters.bounced += len(rcpts)
            await self.runner.bounce(msg, [(r, reason) for r in rcpts], body)
            self._settle_manual(msg, rcpts)
        return sum(len(r) for _, r in selection)

    def redirect_recipients(self, host: str, recipient: str | None = None,
                            domain: str | None = None, sender: str | None = None) -> int:
        """Send matching recipients to HOST[:PORT] instead of their route, now."""
        try:
            hop = _hop(host)
        except ValueError as exc:
            raise ValidationError([f"redirect host: {exc}"]) from None
        selection = self.select(recipient, domain, sender)
        for msg, rcpts in selection:
            self.queue.redirect(msg, rcpts, hop)
            for rcpt in rcpts:
                self.maillog.event("redirected", msg.mid, to=f"<{rcpt}>", relay=hop)
            self.scheduler.ready(msg)
        return sum(len(r) for _, r in selection)

    def _settle_manual(self, msg: QueuedMessage, rcpts: list[str]) -> None:
        self.queue.done(msg, rcpts)
        if msg.mid not in self.queue.messages:
            self.scheduler.forget(msg.mid)

    def find_events(self, to: str | None = None, from_: str | None = None,
                    mid: str | None = None) -> list[dict[str, Any]]:
        """``findevent``: every mail-log event of the messages matching the criteria."""
        if to is None and from_ is None and mid is None:
            raise UsageError("give --to, --from or --id")
        return self.maillog.find(to=to, from_=from_, mid=mid)
