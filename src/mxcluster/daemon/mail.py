"""Wiring of the mail engine: snapshots of the effective configuration, live refresh.

The engine (``mxcluster.mail``) never reads the store: it gets an immutable snapshot,
built on the store thread, and a fresh one after every commit, local or replicated.
Unsubscribe matching reads through its own read-only SQLite connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mxcluster.config.reader import UnsubReader
from mxcluster.mail import MailEngine, MailSnapshot
from mxcluster.service.machine import Machine
from mxcluster.unsubscribe import candidates

log = logging.getLogger("mxcluster.daemon")

MAIL_BLOCKS = ("hostname", "interfaces", "listeners", "smtproutes", "destconfig",
               "bounceconfig", "certificates", "unsubscribe")


def snapshot(machine: Machine, reader: UnsubReader) -> MailSnapshot:
    """This machine's effective mail configuration (store thread)."""
    effective = machine.effective_all()
    blocks: dict[str, Any] = {name: effective[name].value for name in MAIL_BLOCKS}
    blocks["hostname"] = machine.hostname()
    source = effective["unsubscribe"].source
    level = str(source) if source is not None else None

    def unsubscribed(recipient: str, next_hop_ip: str | None) -> bool:
        if level is None:
            return False
        return reader.contains_any(level, candidates(recipient, next_hop_ip)) is not None

    return MailSnapshot.from_json(blocks, unsubscribed)


class MailWiring:
    """Starts the engine and keeps its snapshot current."""

    def __init__(self, machine: Machine, run_in_store: Callable[[Callable[[], Any]],
                                                                 Awaitable[Any]]) -> None:
        self.machine = machine
        self.run_in_store = run_in_store
        self.reader = UnsubReader(machine.store.path)
        self.engine: MailEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._again = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        snap = await self.run_in_store(lambda: snapshot(self.machine, self.reader))
        self.engine = MailEngine(self.machine.identity.data_dir, snap)
        await self.engine.start()
        self.machine.runtime["mail"] = self.engine
        self.machine.commit_hooks.append(lambda cid: self.changed())

    async def stop(self) -> None:
        self.machine.runtime.pop("mail", None)
        if self.engine is not None:
            await self.engine.stop()
        self.reader.close()

    def changed(self) -> None:
        """The configuration changed (any thread): apply a new snapshot soon."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._again = True  # one more pass after the running one
            return
        self._refresh = asyncio.ensure_future(self._apply())

    async def _apply(self) -> None:
        while True:
            self._again = False
            try:
                snap = await self.run_in_store(lambda: snapshot(self.machine, self.reader))
                assert self.engine is not None
                await self.engine.apply(snap)
            except Exception:
                log.exception("could not apply the new configuration to the mail engine")
            if not self._again:
                return
