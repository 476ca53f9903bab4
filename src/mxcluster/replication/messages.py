"""Peer protocol messages: small frozen dataclasses with an explicit JSON form.

Every message is one JSON object with a ``type`` key. Decoding validates everything,
because peer input is untrusted: a malformed message raises ``ValidationError`` and
changes nothing (SPEC §8). ::

    hello   {serial, name, version, vv, hlc, wall_ms, states}    first message on a link
    chunk   {origin, seq, index, last, ops, header?}              part of one changeset
    ack     {origin, seq, index}                                  a chunk was processed
    want    {vv, wall_ms, digest}                                 periodic anti-entropy
    states  {states}                                              admin-state gossip

``hello``, ``states`` and ``want`` flow on every link: ``want`` carries a clock reading
and a digest of the sender's administrative states (a peer whose digest differs is sent
the full state map), and only between members of the same software version also asks
for missing changesets. ``chunk`` and ``ack`` are configuration traffic and flow only
between members of the same software version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mxcluster.config.changeset import Changeset, ChangesetId, Op, decode_op
from mxcluster.config.hlc import Timestamp
from mxcluster.errors import ValidationError
from mxcluster.membership.states import (
    StateRecord,
    check_hlc,
    check_serial,
    decode_states,
    encode_states,
)

#: largest number of operations one chunk may carry (a sender uses CHUNK_OPS)
MAX_CHUNK_OPS = 10_000
#: largest encoded message accepted from a peer
MAX_MESSAGE_BYTES = 16 << 20
_MAX_TEXT = 65_536


@dataclass(frozen=True)
class Header:
    """A changeset without its operations."""

    id: ChangesetId
    hlc: Timestamp
    author: str
    comment: str
    machine: str
    schema: int
    context: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, cs: Changeset) -> Header:
        return cls(cs.id, cs.hlc, cs.author, cs.comment, cs.machine, cs.schema,
                   dict(cs.context))

    def changeset(self, ops: Any) -> Changeset:
        """The changeset with OPS (an iterable, possibly a stream)."""
        return Changeset(self.id, self.hlc, self.author, self.comment, self.machine, ops,
                         self.schema, dict(self.context))

    def encode(self) -> dict[str, Any]:
        return {"origin": self.id.origin, "seq": self.id.seq, "hlc": self.hlc.encode(),
                "author": self.author, "comment": self.comment, "machine": self.machine,
                "schema": self.schema, "context": dict(self.context)}


@dataclass(frozen=True)
class Hello:
    """Who I am and what I have: sent first on every link, by both ends."""

    serial: str
    name: str
    version: str
    vv: Mapping[str, int]
    hlc: Timestamp
    wall_ms: int
    states: Mapping[str, StateRecord]


@dataclass(frozen=True)
class Chunk:
    """Part ``index`` of changeset (origin, seq); the first part carries the header."""

    origin: str
    seq: int
    index: int
    last: bool
    ops: tuple[Op, ...]
    header: Header | None = None

    @property
    def cid(self) -> ChangesetId:
        return ChangesetId(self.origin, self.seq)


#: the most chunks one ack may cover (untrusted input; the window is far smaller)
MAX_ACK_COUNT = 100_000


@dataclass(frozen=True)
class Ack:
    """Chunk ``index`` of (origin, seq) was processed (flow control, not a promise).

    ``count`` > 1 acknowledges that many chunks at once, this one the last of them: a
    receiver that took a backlog in one go answers it with one message.
    """

    origin: str
    seq: int
    index: int
    count: int = 1


@dataclass(frozen=True)
class Want:
    """Anti-entropy: 'this is what I have; send me what I lack'."""

    vv: Mapping[str, int]
    wall_ms: int
    #: ``states_digest`` of the sender's administrative states
    digest: str = ""


@dataclass(frozen=True)
class States:
    """Administrative-state records the sender learnt (gossip, control traffic)."""

    states: Mapping[str, StateRecord]


Message = Hello | Chunk | Ack | Want | States


def encode(msg: Message) -> dict[str, Any]:
    """The JSON object for MSG."""
    if isinstance(msg, Hello):
        return {"type": "hello", "serial": msg.serial, "name": msg.name,
                "version": msg.version, "vv": dict(msg.vv), "hlc": msg.hlc.encode(),
                "wall_ms": msg.wall_ms, "states": encode_states(msg.states)}
    if isinstance(msg, Chunk):
        out: dict[str, Any] = {"type": "chunk", "origin": msg.origin, "seq": msg.seq,
                               "index": msg.index, "last": msg.last,
                               "ops": [op.encode() for op in msg.ops]}
        if msg.header is not None:
            out["header"] = msg.header.encode()
        return out
    if isinstance(msg, Ack):
        out = {"type": "ack", "origin": msg.origin, "seq": msg.seq, "index": msg.index}
        if msg.count != 1:
            out["count"] = msg.count
        return out
    if isinstance(msg, Want):
        return {"type": "want", "vv": dict(msg.vv), "wall_ms": msg.wall_ms,
                "digest": msg.digest}
    return {"type": "states", "states": encode_states(msg.states)}


def states_digest(states: Mapping[str, StateRecord]) -> str:
    """A short fingerprint of a state map: equal maps, equal digests."""
    data = json.dumps(encode_states(states), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def to_bytes(msg: Message) -> bytes:
    """Compact UTF-8 JSON, one message (the I/O layer frames it)."""
    return json.dumps(encode(msg), separators=(",", ":")).encode()


def from_bytes(data: bytes) -> Message:
    """Decode one framed message; ValidationError when it is not a valid message."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValidationError([f"peer message of {len(data)} bytes is too large"])
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(["peer message is not JSON"]) from None
    return decode(obj)


def decode(data: Any) -> Message:
    """Decode a message object from untrusted input."""
    kind = data.get("type") if isinstance(data, dict) else None
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise ValidationError([f"unknown peer message type {kind!r}"])
    return decoder(data)


def _hello(d: dict[str, Any]) -> Hello:
    return Hello(check_serial(d.get("serial")), _text(d, "name"), _text(d, "version"),
                 _vv(d.get("vv")), _timestamp(d.get("hlc")), _int(d, "wall_ms"),
                 decode_states(d.get("states")))


def _chunk(d: dict[str, Any]) -> Chunk:
    ops = d.get("ops")
    if not isinstance(ops, list) or len(ops) > MAX_CHUNK_OPS:
        raise ValidationError([f"chunk without a list of at most {MAX_CHUNK_OPS} ops"])
    last = d.get("last")
    if not isinstance(last, bool):
        raise ValidationError(["chunk without 'last' flag"])
    origin, seq, index = check_serial(d.get("origin")), _int(d, "seq", 1), _int(d, "index")
    header = None if d.get("header") is None else _header(d["header"])
    if (index == 0) != (header is not None) or (
            header is not None and header.id != ChangesetId(origin, seq)):
        raise ValidationError(["chunk header missing, misplaced or for another changeset"])
    return Chunk(origin, seq, index, last, tuple(_op(o) for o in ops), header)


def _header(d: Any) -> Header:
    if not isinstance(d, dict):
        raise ValidationError(["malformed changeset header"])
    context = _vv(d.get("context"))
    return Header(ChangesetId(check_serial(d.get("origin")), _int(d, "seq", 1)),
                  _timestamp(d.get("hlc")), _text(d, "author"), _text(d, "comment"),
                  _text(d, "machine"), _int(d, "schema", 1), context)


def _ack(d: dict[str, Any]) -> Ack:
    count = _int(d, "count", 1) if "count" in d else 1
    if count > MAX_ACK_COUNT:
        raise ValidationError([f"an ack may cover at most {MAX_ACK_COUNT} chunks"])
    return Ack(check_serial(d.get("origin")), _int(d, "seq", 1), _int(d, "index"), count)


def _want(d: dict[str, Any]) -> Want:
    digest = d.get("digest", "")
    if not isinstance(digest, str) or len(digest) > 128:
        raise ValidationError(["malformed state digest"])
    return Want(_vv(d.get("vv")), _int(d, "wall_ms"), digest)


def _states(d: dict[str, Any]) -> States:
    return States(decode_states(d.get("states")))


_DECODERS: dict[str, Callable[[dict[str, Any]], Message]] = {
    "hello": _hello, "chunk": _chunk, "ack": _ack, "want": _want, "states": _states,
}


def _op(data: Any) -> Op:
    op = decode_op(data)
    if len(op.level) > 300 or len(op.block) > 300 or len(op.entry or "") > 1024:
        raise ValidationError(["operation with an over-long level, block or entry"])
    if op.context is not None:
        _vv(op.context)
    return op


def _timestamp(value: Any) -> Timestamp:
    return Timestamp.decode(check_hlc(value))


def _vv(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > 10_000:
        raise ValidationError(["malformed version vector"])
    for origin, seq in value.items():
        check_serial(origin)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValidationError([f"malformed sequence number {seq!r} in version vector"])
    return dict(value)


def _int(d: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < 2**63:
        raise ValidationError([f"field {key!r} must be an integer >= {minimum}"])
    return value


def _text(d: dict[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise ValidationError([f"field {key!r} must be a string"])
    return value
