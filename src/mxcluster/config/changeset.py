"""Changesets: the unit of commit, audit and replication (SPEC §5).

A changeset has an id (origin machine serial, sequence number), a hybrid-logical-clock
timestamp, author, comment, schema version and operations. Operations are per block
(``set`` a block at a level, ``delete`` it so the level inherits) except for table data
(the unsubscribe entries), which uses per-entry ``add`` / ``remove`` and ``clear``.

``clear`` carries the causal context it ran in (origin -> highest sequence applied), and
removes only entries written by changesets inside that context, so entries added
concurrently elsewhere survive.

The JSON encoding here is the wire and disk format; ``SCHEMA_VERSION`` is bumped when it
changes and ``decode_op`` keeps reading every earlier version.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mxcluster.config.hlc import Timestamp
from mxcluster.errors import ValidationError

SCHEMA_VERSION = 1

OP_KINDS = ("set", "delete", "add", "remove", "clear")


@dataclass(frozen=True)
class Op:
    """One operation; ``entry`` for add/remove, ``value`` for set, ``context`` for clear."""

    op: str
    level: str
    block: str
    value: Any = None
    entry: str | None = None
    context: dict[str, int] | None = None

    @property
    def key(self) -> str:
        """What this op writes: the block, or the table entry."""
        return self.entry if self.entry is not None else ""

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "level": self.level, "block": self.block}
        if self.op == "set":
            out["value"] = self.value
        if self.entry is not None:
            out["entry"] = self.entry
        if self.context is not None:
            out["context"] = self.context
        return out


def decode_op(data: Any) -> Op:
    """Decode one op, refusing anything malformed (peer messages are untrusted)."""
    if not isinstance(data, dict) or data.get("op") not in OP_KINDS:
        raise ValidationError([f"malformed operation {data!r}"])
    if not isinstance(data.get("level"), str) or not isinstance(data.get("block"), str):
        raise ValidationError([f"operation without level/block: {data!r}"])
    kind = data["op"]
    if kind in ("add", "remove") and not isinstance(data.get("entry"), str):
        raise ValidationError([f"{kind} operation without entry: {data!r}"])
    if kind == "clear" and not isinstance(data.get("context"), dict):
        raise ValidationError([f"clear operation without context: {data!r}"])
    return Op(
        kind, data["level"], data["block"], data.get("value"), data.get("entry"),
        data.get("context"),
    )


@dataclass(frozen=True)
class ChangesetId:
    """(origin machine serial, sequence number); written ``SERIAL-SEQ``."""

    origin: str
    seq: int

    def __str__(self) -> str:
        return f"{self.origin}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> ChangesetId:
        origin, sep, seq = text.strip().rpartition("-")
        if not sep or not origin or not seq.isdigit():
            from mxcluster.errors import UsageError

            raise UsageError(f"bad commit id {text!r}", hint="see 'commitlog' for ids (SERIAL-SEQ)")
        return cls(origin, int(seq))


@dataclass
class Changeset:
    """Header plus an iterable of ops (may be a stream for very large changesets)."""

    id: ChangesetId
    hlc: Timestamp
    author: str
    comment: str
    machine: str
    ops: Iterable[Op] = field(default_factory=list)
    schema: int = SCHEMA_VERSION
    #: causal context: origin -> highest sequence applied where this changeset was made
    context: dict[str, int] = field(default_factory=dict)

    def covers(self, cid: ChangesetId) -> bool:
        """True when CID happened before this changeset (it was in its causal context)."""
        return (cid.origin == self.id.origin and cid.seq < self.id.seq) or (
            self.context.get(cid.origin, 0) >= cid.seq
        )

    def header(self) -> dict[str, Any]:
        return {
            "origin": self.id.origin,
            "seq": self.id.seq,
            "hlc": self.hlc.encode(),
            "author": self.author,
            "comment": self.comment,
            "machine": self.machine,
            "schema": self.schema,
            "context": self.context,
        }


def iter_ops(ops: Iterable[Op]) -> Iterator[tuple[int, Op]]:
    """Number ops from 0, in order."""
    return enumerate(ops)
