"""``MailEngine``: one machine's mail path, wired together.

    listeners (aiosmtpd, policy hooks) --put--> queue (fsync) --> scheduler
        --> runner --> deliverer (routes, unsubscribe, aiosmtplib) --> next hops
    everything --> mail log; suspension state --> DATA_DIR/mail/suspend.json

The daemon owns the engine: it builds a ``MailSnapshot`` from the effective
configuration, calls ``start``, ``apply`` on every configuration change, and ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mxcluster.errors import NotFoundError, StateError
from mxcluster.mail import suspension
from mxcluster.mail.delivery import Deliverer
from mxcluster.mail.handler import PolicyHandler, Submission
from mxcluster.mail.listeners import ListenerPlan, ListenerRuntime
from mxcluster.mail.listenerset import ListenerSet, plan_listeners
from mxcluster.mail.maillog import MailLog
from mxcluster.mail.ops import QueueOps
from mxcluster.mail.pool import ConnectionPool
from mxcluster.mail.queue import MailQueue
from mxcluster.mail.resolver import DnsResolver, Resolver
from mxcluster.mail.runner import Counters, DeliveryRunner
from mxcluster.mail.scheduler import Scheduler
from mxcluster.mail.snapshot import MailSnapshot, MailTunables
from mxcluster.mail.tls import server_context

DEFAULT_SUSPEND_DELAY = 30.0


class MailEngine(QueueOps):
    """Listeners, queue and delivery of one machine (SPEC §6)."""

    def __init__(self, data_dir: Path, snapshot: MailSnapshot, *,
                 clock: Callable[[], float] = time.time, resolver: Resolver | None = None,
                 tunables: MailTunables | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.snapshot = snapshot
        self.tunables = tunables or MailTunables()
        self._clock = clock
        self.counters = Counters()
        self.queue = MailQueue(self.data_dir / "queue", clock)
        self.maillog = MailLog(self.data_dir / "logs" / "mail.log", clock)
        self._state_path = self.data_dir / "mail" / "suspend.json"
        self.suspension = suspension.Suspension()
        self._pool = ConnectionPool(self.tunables.pool_idle)
        deliverer = Deliverer(lambda: self.snapshot, resolver or DnsResolver(), self._pool,
                              self.tunables)
        self.runner = DeliveryRunner(self.queue, deliverer, self.maillog, self.counters,
                                     lambda: self.snapshot, self.accept, clock)
        self.scheduler = Scheduler(self.runner.attempt, lambda m: m.mid in self.queue.messages,
                                   self.tunables.delivery_workers, clock)
        self.listeners = ListenerSet(self._build_listener, self.suspension.listener)
        self._started_at: float | None = None
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Recover the queue, restore suspension, open listeners, start delivering."""
        if self._started_at is not None:
            raise StateError("the mail engine is already running")
        self.suspension = await asyncio.to_thread(suspension.load, self._state_path)
        self.listeners = ListenerSet(self._build_listener, self.suspension.listener)
        self.queue.on_stored = self.scheduler.ready
        recovered = await self.queue.open()
        self.scheduler.suspended = self.suspension.delivery
        self.scheduler.start()
        for msg in sorted(recovered, key=lambda m: m.received_at):
            self.scheduler.schedule(msg)
        await self.listeners.apply(plan_listeners(self.snapshot, self.tunables))
        self._reaper = asyncio.get_running_loop().create_task(self._reap())
        self._started_at = self._clock()

    async def stop(self) -> None:
        """Close listeners and sessions, stop delivery, flush the queue. Mail stays queued."""
        self.listeners.close_all()
        await self.scheduler.stop()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._pool.close()
        await self.queue.close()
        self.maillog.close()
        self._started_at = None

    async def apply(self, snapshot: MailSnapshot) -> None:
        """Switch to a new configuration; unchanged listeners keep their sessions."""
        self.snapshot = snapshot
        await self.listeners.apply(plan_listeners(snapshot, self.tunables))

    def _build_listener(self, plan: ListenerPlan) -> ListenerRuntime:
        tls = None
        if plan.cert_pem and plan.key_pem:
            tls = server_context(plan.cert_pem, plan.key_pem, self.data_dir / "mail" / "tls")
        handler = PolicyHandler(plan.spec, plan.hostname, self.accept, self.disk_ok)
        return ListenerRuntime(plan, handler, tls)

    async def accept(self, sub: Submission) -> None:
        """Queue SUB durably (returns after fsync) and log it as received."""
        await self.queue.put(sub.sender, sub.recipients, sub.body, sub.info, mid=sub.mid)
        self.counters.received += 1
        self.maillog.event(
            "received", sub.mid, **{"from": f"<{sub.sender}>"},
            to=",".join(f"<{r}>" for r in sub.recipients), size=len(sub.body),
            client=sub.info.get("client") or None, listener=sub.info.get("listener") or None,
            bounce_of=sub.info.get("bounce_of"), msgid=_message_id(sub.body),
        )

    def disk_ok(self) -> bool:
        """Whether free space in the data directory is above the safety margin."""
        try:
            return shutil.disk_usage(self.data_dir).free >= self.tunables.disk_margin_bytes
        except OSError:
            return False

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._pool.reap()

    # -- suspend / resume (SPEC §4) ---------------------------------------------------

    def _check_listener(self, name: str | None) -> None:
        if name is not None and self.snapshot.listener(name) is None:
            raise NotFoundError(f"no listener named {name!r}",
                                hint="'listenerconfig print' lists the listeners")

    async def _save(self) -> None:
        await asyncio.to_thread(suspension.save, self._state_path, self.suspension)

    async def suspend_listener(self, name: str | None = None,
                               delay: float = DEFAULT_SUSPEND_DELAY) -> None:
        """Stop accepting at once (NAME or all); cut sessions after DELAY seconds."""
        self._check_listener(name)
        self.listeners.suspend(name, delay)
        self.suspension.suspend(name)
        await self._save()

    async def resume_listener(self, name: str | None = None) -> None:
        """Accept connections again on NAME (or all listeners)."""
        self._check_listener(name)
        self.suspension.resume(name, [x.name for x in self.snapshot.listeners])
        await self._save()
        await self.listeners.resume(name)

    async def suspend_delivery(self) -> None:
        """Pause delivery; mail keeps being accepted and queued."""
        self.suspension.delivery = True
        self.scheduler.suspend()
        await self._save()

    async def resume_delivery(self) -> None:
        """Resume delivery of everything due."""
        self.suspension.delivery = False
        await self._save()
        self.scheduler.resume()

    async def suspend(self, delay: float = DEFAULT_SUSPEND_DELAY) -> None:
        """``suspend``: all listeners and delivery."""
        await self.suspend_listener(None, delay)
        await self.suspend_delivery()

    async def resume(self) -> None:
        """``resume``: all listeners and delivery."""
        await self.resume_listener(None)
        await self.resume_delivery()

    def status(self) -> dict[str, Any]:
        """Listener states, counters, queue size, suspension and uptime (``status``)."""
        uptime = 0.0 if self._started_at is None else self._clock() - self._started_at
        return {
            "listeners": self.listeners.status(),
            "delivery": "suspended" if self.suspension.delivery else "active",
            "counters": {**self.counters.as_dict(), "queued": len(self.queue.messages)},
            "uptime": round(uptime, 3),
        }


def _message_id(body: bytes) -> str | None:
    """The Message-ID header of a raw message, if any (for the mail log)."""
    head = body[: body.find(b"\r\n\r\n")] if b"\r\n\r\n" in body else body[:8192]
    for line in head.split(b"\r\n"):
        if line[:11].lower() == b"message-id:":
            return line[11:].strip().decode("ascii", "replace") or None
    return None

