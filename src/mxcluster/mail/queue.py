"""The durable mail queue.

``put`` returns only after the message and its envelope are on disk (fsync). Writes are
group-committed: while one batch is being written and synced on the queue's I/O thread,
new messages gather and go together in the next batch with one fsync. State changes
(recipients done, retries, redirects) are appended to ``state.log``; losing the newest
of them in a crash only means a recipient is tried again (at-least-once delivery).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxcluster.mail import queuefiles, records
from mxcluster.mail.queuefiles import Placement, QueueFiles

log = logging.getLogger(__name__)


def new_mid() -> str:
    """A message id: time-ordered, unique, 19 upper-case hex digits."""
    return f"{time.time_ns() // 1000:013X}{secrets.token_hex(3).upper()}"


@dataclass
class QueuedMessage:
    """One queued message: immutable envelope plus mutable delivery state."""

    mid: str
    sender: str
    recipients: tuple[str, ...]
    received_at: float
    size: int
    info: dict[str, str]
    place: Placement = (0, 0, 0)
    pending: list[str] = field(default_factory=list)
    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    redirects: dict[str, str] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        return {
            "mid": self.mid, "sender": self.sender, "rcpts": list(self.recipients),
            "at": self.received_at, "size": self.size, "info": self.info,
        }

    @classmethod
    def from_header(cls, header: dict[str, Any], place: Placement) -> QueuedMessage:
        rcpts = tuple(header["rcpts"])
        return cls(
            mid=header["mid"], sender=header["sender"], recipients=rcpts,
            received_at=header["at"], size=header["size"], info=header.get("info", {}),
            place=place, pending=list(rcpts),
        )

    def apply(self, op: dict[str, Any]) -> None:
        """Apply one state record (idempotent: replaying it twice changes nothing)."""
        kind = op["op"]
        if kind == "done":
            gone = set(op["rcpts"])
            self.pending = [r for r in self.pending if r not in gone]
        elif kind == "gone":
            self.pending = []
        elif kind == "retry":
            self.attempts, self.next_attempt = op["attempts"], op["next"]
            self.last_error = op.get("error", "")
        elif kind == "redirect":
            self.redirects.update(dict.fromkeys(op["rcpts"], op["hop"]))

    def state_records(self) -> list[dict[str, Any]]:
        """The state records that rebuild this message's state from its header."""
        out: list[dict[str, Any]] = []
        done = [r for r in self.recipients if r not in self.pending]
        if done:
            out.append({"op": "done", "mid": self.mid, "rcpts": done})
        if self.attempts or self.last_error:
            out.append({"op": "retry", "mid": self.mid, "attempts": self.attempts,
                        "next": self.next_attempt, "error": self.last_error})
        for rcpt, hop in self.redirects.items():
            out.append({"op": "redirect", "mid": self.mid, "rcpts": [rcpt], "hop": hop})
        return out

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``showqueue`` prints."""
        return {
            "mid": self.mid, "sender": self.sender, "recipients": list(self.pending),
            "received_at": self.received_at, "size": self.size, "attempts": self.attempts,
            "next_attempt": self.next_attempt, "last_error": self.last_error,
            "redirects": dict(self.redirects),
        }


_Waiter = tuple[bytes, QueuedMessage, "asyncio.Future[QueuedMessage]"]


class MailQueue:
    """Queued messages in memory, backed by ``QueueFiles`` on one I/O thread."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self.files = QueueFiles(directory)
        self.messages: dict[str, QueuedMessage] = {}
        self._clock = clock
        self._live: Counter[int] = Counter()
        # Messages finished but still in a segment on disk, per segment: state.log must
        # keep saying they are gone, or a rewrite of it would bring them back.
        self._gone: defaultdict[int, set[str]] = defaultdict(set)
        self._io = ThreadPoolExecutor(1, thread_name_prefix="mxcluster-queue")
        self._waiting: list[_Waiter] = []
        self._states: list[bytes] = []
        self._flusher: asyncio.Task[None] | None = None
        #: Called with each message once it is durable, even if its client went away.
        self.on_stored: Callable[[QueuedMessage], None] = lambda msg: None

    async def open(self) -> list[QueuedMessage]:
        """Recover the queue from disk; returns the messages still to deliver."""
        await self._run(self._recover)
        return list(self.messages.values())

    def _recover(self) -> None:
        for number in self.files.segments():
            for place, header in self.files.scan_segment(number):
                msg = QueuedMessage.from_header(header, place)
                self.messages[msg.mid] = msg
        for op in self.files.scan_state():
            target = self.messages.get(op.get("mid", ""))
            if target is not None:
                target.apply(op)
        for msg in [m for m in self.messages.values() if not m.pending]:
            del self.messages[msg.mid]
            self._gone[msg.place[0]].add(msg.mid)
        self._live = Counter(m.place[0] for m in self.messages.values())
        for number in self.files.segments():
            if not self._live[number]:
                self.files.delete_segment(number)
                self._gone.pop(number, None)
        self.files.start(self._state_snapshot())

    def _state_snapshot(self) -> list[dict[str, Any]]:
        """State records that rebuild the whole queue state from the segments on disk."""
        state = [s for m in self.messages.values() for s in m.state_records()]
        state += [{"op": "gone", "mid": mid} for mids in self._gone.values() for mid in mids]
        return state

    async def put(
        self, sender: str, recipients: list[str], body: bytes, info: dict[str, str],
        mid: str | None = None,
    ) -> QueuedMessage:
        """Store a message durably (fsync) and return it; raises OSError on failure."""
        msg = QueuedMessage(
            mid=mid or new_mid(), sender=sender, recipients=tuple(recipients),
            received_at=self._clock(), size=len(body), info=info, pending=list(recipients),
        )
        record = records.frame(records.message_payload(msg.header(), body))
        future: asyncio.Future[QueuedMessage] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, msg, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Write everything waiting, one batch (one fsync) at a time."""
        while self._waiting or self._states:
            batch, self._waiting = self._waiting, []
            states, self._states = self._states, []
            try:
                places = await self._run(self.files.write_batch, [b[0] for b in batch], states)
            except OSError as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, msg, future), place in zip(batch, places, strict=True):
                msg.place = place
                self._live[place[0]] += 1
                self.messages[msg.mid] = msg
                self.on_stored(msg)
                if not future.done():
                    future.set_result(msg)
            if self.files.state_bytes > queuefiles.STATE_COMPACT_BYTES:
                await self._compact_state()

    async def _compact_state(self) -> None:
        # Taken after the batch above was written, so every state change made so far is in
        # this snapshot; changes made later are appended after it. Records are idempotent.
        try:
            await self._run(self.files.rewrite_state, self._state_snapshot())
        except OSError:
            log.exception("could not compact the queue state log")

    def _record(self, msg: QueuedMessage, op: dict[str, Any]) -> None:
        op["mid"] = msg.mid
        msg.apply(op)
        self._states.append(records.frame(json.dumps(op).encode()))
        self._kick()
        if not msg.pending:
            self._forget(msg)

    def _forget(self, msg: QueuedMessage) -> None:
        if self.messages.pop(msg.mid, None) is None:
            return
        number = msg.place[0]
        self._live[number] -= 1
        if self._live[number] <= 0 and number != self.files.current_segment:
            del self._live[number]
            self._gone.pop(number, None)
            self._io.submit(self.files.delete_segment, number)
        else:
            self._gone[number].add(msg.mid)

    def done(self, msg: QueuedMessage, rcpts: list[str]) -> None:
        """RCPTS need no further delivery (delivered, bounced, dropped or deleted)."""
        if rcpts:
            self._record(msg, {"op": "done", "rcpts": rcpts})

    def retry(self, msg: QueuedMessage, next_attempt: float, error: str) -> None:
        """Count a failed attempt; try again at NEXT_ATTEMPT."""
        self._record(msg, {"op": "retry", "attempts": msg.attempts + 1,
                           "next": next_attempt, "error": error})

    def redirect(self, msg: QueuedMessage, rcpts: list[str], hop: str) -> None:
        """Send RCPTS of MSG to HOP instead of their route."""
        self._record(msg, {"op": "redirect", "rcpts": rcpts, "hop": hop})

    async def body(self, msg: QueuedMessage) -> bytes:
        """The raw message (headers and body) of MSG."""
        return await self._run(self.files.read, msg.place)

    async def close(self) -> None:
        """Write what is pending and release the files."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._run(self.files.close)
        await asyncio.get_running_loop().run_in_executor(None, self._io.shutdown)

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, func, *args)
