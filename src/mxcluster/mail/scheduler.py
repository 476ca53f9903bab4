"""When each queued message is tried: a ready queue, retry timers, delivery workers.

A message is in at most one place: waiting on its retry timer, in the ready queue or in
flight with a worker, or parked while delivery is suspended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from mxcluster.mail.queue import QueuedMessage

log = logging.getLogger(__name__)

Attempt = Callable[[QueuedMessage], Awaitable[None]]


class Scheduler:
    """Runs ``attempt(msg)`` for due messages on N workers."""

    def __init__(self, attempt: Attempt, still_queued: Callable[[QueuedMessage], bool],
                 workers: int, clock: Callable[[], float] = time.time) -> None:
        self._attempt = attempt
        self._still_queued = still_queued
        self._clock = clock
        self._ready: asyncio.Queue[QueuedMessage] = asyncio.Queue()
        self._busy: set[str] = set()
        self._timers: dict[str, tuple[asyncio.TimerHandle, QueuedMessage]] = {}
        self._parked: dict[str, QueuedMessage] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._count = workers
        self.suspended = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work()) for _ in range(self._count)]

    async def stop(self) -> None:
        """Stop the workers (attempts in flight are abandoned; their messages stay queued)."""
        pending = set(self._workers)
        while pending:
            # Cancel again if needed: a library may swallow a cancellation (see _work).
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def schedule(self, msg: QueuedMessage) -> None:
        """Try MSG at its ``next_attempt`` time (now if that has passed)."""
        delay = msg.next_attempt - self._clock()
        if delay <= 0:
            self.ready(msg)
            return
        self.forget(msg.mid)
        handle = asyncio.get_running_loop().call_later(delay, self.ready, msg)
        self._timers[msg.mid] = (handle, msg)

    def ready(self, msg: QueuedMessage) -> None:
        """Try MSG as soon as a worker is free (or on resume, if suspended)."""
        self.forget(msg.mid)
        if msg.mid in self._busy:
            return
        if self.suspended:
            self._parked[msg.mid] = msg
            return
        self._busy.add(msg.mid)
        self._ready.put_nowait(msg)

    def forget(self, mid: str) -> None:
        """Drop a pending retry timer of MID (the message left the queue or is due now)."""
        timer = self._timers.pop(mid, None)
        if timer is not None:
            timer[0].cancel()
        self._parked.pop(mid, None)

    def waiting(self) -> list[QueuedMessage]:
        """Messages waiting for a retry timer or parked by suspension."""
        return [m for _, m in self._timers.values()] + list(self._parked.values())

    def suspend(self) -> None:
        self.suspended = True

    def resume(self) -> None:
        self.suspended = False
        for msg in list(self._parked.values()):
            self.ready(msg)

    async def _work(self) -> None:
        task = asyncio.current_task()
        while True:
            msg = await self._ready.get()
            try:
                if self.suspended:
                    self._busy.discard(msg.mid)
                    self._parked[msg.mid] = msg
                    continue
                await self._attempt(msg)
            except Exception:
                log.exception("delivery attempt of %s failed", msg.mid)
            finally:
                self._busy.discard(msg.mid)
            if task is not None and task.cancelling():
                # Some client libraries turn a cancellation into their own error; honour
                # the cancellation anyway or stop() would wait for ever.
                raise asyncio.CancelledError
            if self._still_queued(msg) and msg.mid not in self._parked:
                self.schedule(msg)
