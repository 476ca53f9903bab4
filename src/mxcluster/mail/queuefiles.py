"""Synchronous file I/O of the durable queue; runs on the queue's own I/O thread.

Layout under ``DATA_DIR/queue/``::

    seg-00000001.log   message records (header JSON + body), append-only, one per run
    state.log          per-message state changes (recipients done, retries, redirects)

A segment is deleted once none of its messages is still queued. ``state.log`` is
rewritten from memory at start-up so it never grows without bound.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mxcluster import failpoints
from mxcluster.mail import records

SEGMENT_BYTES = 64 * 1024 * 1024
#: Rewrite state.log from memory once it is this big (it only holds live messages then).
STATE_COMPACT_BYTES = 32 * 1024 * 1024
Placement = tuple[int, int, int]  # segment number, offset, record length


def fsync_dir(path: Path) -> None:
    """Make the entries of directory PATH durable (new, renamed or deleted files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class QueueFiles:
    """The queue's files; every method blocks and must run off the event loop."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segment = 0
        self._seg_file: Any = None
        self._state_file: Any = None
        self._readers: dict[int, int] = {}
        #: Size of state.log; the queue rewrites it from memory when it grows too big.
        self.state_bytes = 0

    def segment_path(self, number: int) -> Path:
        return self.dir / f"seg-{number:08d}.log"

    def segments(self) -> list[int]:
        """Numbers of the segments on disk, oldest first."""
        names = (p.name for p in self.dir.glob("seg-*.log"))
        return sorted(int(n[4:12]) for n in names if n[4:12].isdigit())

    def scan_segment(self, number: int) -> Iterator[tuple[Placement, dict[str, Any]]]:
        """Each complete message of a segment: placement and header; a torn tail ends it."""
        with self.segment_path(number).open("rb") as stream:
            for offset, length, payload in records.read_records(stream):
                header, _ = records.split_message(payload)
                yield (number, offset, length), header

    def scan_state(self) -> Iterator[dict[str, Any]]:
        """Each complete state record, oldest first."""
        path = self.dir / "state.log"
        if not path.exists():
            return
        with path.open("rb") as stream:
            for _, _, payload in records.read_records(stream):
                yield json.loads(payload)

    def start(self, state: Iterable[dict[str, Any]]) -> None:
        """Rewrite state.log with STATE, then open a fresh segment for this run."""
        self.rewrite_state(state)
        self._segment = max(self.segments(), default=0)
        self._rotate()

    def rewrite_state(self, state: Iterable[dict[str, Any]]) -> None:
        """Replace state.log by STATE (the live messages' state), atomically."""
        tmp = self.dir / "state.log.tmp"
        with tmp.open("wb") as out:
            out.write(b"".join(records.frame(json.dumps(s).encode()) for s in state))
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(tmp, self.dir / "state.log")
        fsync_dir(self.dir)
        if self._state_file is not None:
            self._state_file.close()
        self._state_file = (self.dir / "state.log").open("ab")
        self.state_bytes = size

    def _rotate(self) -> None:
        if self._seg_file is not None:
            self._seg_file.close()
        self._segment += 1
        self._seg_file = self.segment_path(self._segment).open("ab")
        fsync_dir(self.dir)

    @property
    def current_segment(self) -> int:
        return self._segment

    def write_batch(self, messages: list[bytes], states: list[bytes]) -> list[Placement]:
        """Append framed MESSAGES and STATES, fsync, and return where each message went."""
        places: list[Placement] = []
        if messages:
            if self._seg_file.tell() > SEGMENT_BYTES:
                self._rotate()
            for rec in messages:
                places.append((self._segment, self._seg_file.tell(), len(rec)))
                self._seg_file.write(rec)
            self._seg_file.flush()
            failpoints.hit("queue.before_fsync")
            os.fdatasync(self._seg_file.fileno())
            failpoints.hit("queue.after_fsync")
        if states:
            blob = b"".join(states)
            self._state_file.write(blob)
            self.state_bytes += len(blob)
            self._state_file.flush()
            os.fdatasync(self._state_file.fileno())
        return places

    def read(self, place: Placement) -> bytes:
        """The body of the message stored at PLACE."""
        number, offset, length = place
        fd = self._readers.get(number)
        if fd is None:
            fd = self._readers[number] = os.open(self.segment_path(number), os.O_RDONLY)
        return records.body_of(os.pread(fd, length, offset))

    def delete_segment(self, number: int) -> None:
        """Remove a segment none of whose messages is queued any more."""
        fd = self._readers.pop(number, None)
        if fd is not None:
            os.close(fd)
        self.segment_path(number).unlink(missing_ok=True)

    def close(self) -> None:
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()
        for f in (self._seg_file, self._state_file):
            if f is not None:
                f.close()
        self._seg_file = self._state_file = None
