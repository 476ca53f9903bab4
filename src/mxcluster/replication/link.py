"""Per-peer link state of the replication core: vocabulary, tunables, transfer streams.

Outbound, each link has a FIFO of changeset ids to send (anti-entropy results and new
local commits, in that order, so a peer always receives changesets in causal order) and
streams one changeset at a time as chunks, with at most ``window`` unacknowledged chunks
and about ``window_bytes`` in flight: memory stays bounded however large the changeset or
the backlog, while a backlog of small commits travels many at a time (the receiver
applies what it has buffered in one transaction, ``Replicator.receive_many``).
Inbound, each link has at most one partial changeset (its chunks are spooled).
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.replication.messages import Chunk, Header, Hello, Want


class LinkState(enum.StrEnum):
    """The state of the link to one peer, as ``clusterconfig list/connstatus`` show it."""

    CONNECTED = "connected"
    """Up and exchanging configuration."""
    LINK_DOWN = "link-down"
    """No working connection to the peer (it is down or unreachable); retried."""
    DISCONNECTED = "disconnected"
    """Administratively detached (``clusterconfig disconnect``): control only."""
    VERSION_MISMATCH = "version-mismatch"
    """Up, but the peer runs another software version: control only, no configuration."""


@dataclass(frozen=True)
class Tunables:
    """Timing and sizing of the protocol (milliseconds, operations, bytes)."""

    #: how often each link re-runs anti-entropy (version vectors exchanged)
    anti_entropy_ms: int = 10_000
    #: an outbound transfer without an ack for this long is abandoned (the peer's next
    #: anti-entropy request restarts it)
    stall_ms: int = 30_000
    #: the least time between two requests for missing changesets on one link
    want_retry_ms: int = 1_000
    #: unacknowledged chunks in flight per link, and their approximate bytes (at least
    #: one chunk is always allowed): a few big chunks, or many small ones
    window: int = 256
    window_bytes: int = 8 << 20
    #: operations per chunk, and an approximate byte bound
    chunk_ops: int = 1_000
    chunk_bytes: int = 1 << 20


@dataclass(frozen=True)
class LinkInfo:
    """One row of the link view (``connstatus``) for one peer."""

    peer: str
    state: LinkState
    since_ms: int
    last_error: str
    clock_offset_ms: int
    clock_skewed: bool
    pending: int


#: reads changeset CID from the store: (header, ops stream), or None when absent
ChangesetReader = Callable[[ChangesetId], "tuple[Header, Iterable[Op]] | None"]


#: a chunk's own fields and a header, roughly, in bytes
_HEADER_SIZE = 400


def _op_size(op: Op) -> int:
    size = 48 + len(op.level) + len(op.block) + len(op.entry or "")
    if op.op == "set":
        size += len(json.dumps(op.value))
    return size


class _Stream:
    """One changeset being cut into chunks."""

    def __init__(self, header: Header, ops: Iterable[Op]) -> None:
        self.header = header
        self._ops: Iterator[Op] = iter(ops)
        self._next: Op | None = next(self._ops, None)
        self.index = 0

    def chunk(self, tunables: Tunables) -> tuple[Chunk, int]:
        """The next chunk and its approximate size in bytes."""
        ops: list[Op] = []
        size = 0
        while self._next is not None and len(ops) < tunables.chunk_ops and (
                not ops or size < tunables.chunk_bytes):
            ops.append(self._next)
            size += _op_size(self._next)
            self._next = next(self._ops, None)
        cid = self.header.id
        chunk = Chunk(cid.origin, cid.seq, self.index, self._next is None, tuple(ops),
                      self.header if self.index == 0 else None)
        self.index += 1
        return chunk, size + _HEADER_SIZE


class Outbound:
    """What one link still has to send, and the flow control of sending it."""

    def __init__(self) -> None:
        self.queue: deque[ChangesetId] = deque()
        self.queued: set[ChangesetId] = set()
        self.stream: _Stream | None = None
        #: sizes of the chunks in flight, oldest first (acks come back in order)
        self.sizes: deque[int] = deque()
        self.inflight_bytes = 0
        self.last_progress = 0

    @property
    def inflight(self) -> int:
        return len(self.sizes)

    @property
    def pending(self) -> int:
        return len(self.queue) + (self.stream is not None)

    def enqueue(self, cids: Iterable[ChangesetId], now: int) -> None:
        if not self.pending:
            self.last_progress = now
        for cid in cids:
            if cid not in self.queued:
                self.queue.append(cid)
                self.queued.add(cid)

    def replace(self, cids: list[ChangesetId], now: int, stall_ms: int) -> None:
        """Send exactly CIDS; a transfer under way of one of them is kept if it is moving."""
        keep = self.stream
        if keep is None or keep.header.id not in cids or self.stalled(now, stall_ms):
            keep = None
        sizes, inflight_bytes = self.sizes, self.inflight_bytes
        self.clear()
        if keep is not None:
            self.stream, self.sizes, self.inflight_bytes = keep, sizes, inflight_bytes
            cids = [c for c in cids if c != keep.header.id]
        self.enqueue(cids, now)

    def clear(self) -> None:
        self.queue.clear()
        self.queued.clear()
        self.stream = None
        self.sizes = deque()
        self.inflight_bytes = 0

    def acked(self, now: int, count: int = 1) -> None:
        for _ in range(min(count, len(self.sizes))):
            self.inflight_bytes -= self.sizes.popleft()
        self.last_progress = now

    def stalled(self, now: int, stall_ms: int) -> bool:
        return self.pending > 0 and now - self.last_progress > stall_ms

    def pump(self, read: ChangesetReader, tunables: Tunables) -> list[Chunk]:
        """The chunks that may go out now (window permitting)."""
        out: list[Chunk] = []
        while self._room(tunables):
            if self.stream is None and not self._open_next(read):
                break
            assert self.stream is not None
            chunk, size = self.stream.chunk(tunables)
            out.append(chunk)
            self.sizes.append(size)
            self.inflight_bytes += size
            if chunk.last:
                self.stream = None
        return out

    def _room(self, tunables: Tunables) -> bool:
        if not self.sizes:
            return True
        return len(self.sizes) < tunables.window and self.inflight_bytes < tunables.window_bytes

    def _open_next(self, read: ChangesetReader) -> bool:
        while self.queue:
            cid = self.queue.popleft()
            self.queued.discard(cid)
            opened = read(cid)
            if opened is not None:
                self.stream = _Stream(*opened)
                return True
        return False


@dataclass
class Inbound:
    """The changeset a link is receiving in several chunks (its ops are spooled)."""

    header: Header | None = None
    next_index: int = 0

    def reset(self) -> None:
        self.header = None
        self.next_index = 0


@dataclass
class Link:
    """One peer link as the core sees it (created by ``link_up``)."""

    peer: str
    hello: Hello
    since_ms: int
    clock_offset_ms: int = 0
    #: configuration flows on this link (same version, both members)
    config: bool = False
    last_want_ms: int = -(1 << 62)
    #: the peer's last request while configuration was shut on this link
    parked_want: Want | None = None
    last_error: str = ""
    outbound: Outbound = field(default_factory=Outbound)
    inbound: Inbound = field(default_factory=Inbound)
