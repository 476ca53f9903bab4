"""The peer protocol's wire format: round trips, and refusal of malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.config.hlc import Timestamp
from mxcluster.errors import ValidationError
from mxcluster.membership import AdminState, StateRecord
from mxcluster.replication.messages import (
    MAX_CHUNK_OPS,
    Ack,
    Chunk,
    Header,
    Hello,
    States,
    Want,
    decode,
    encode,
    from_bytes,
    to_bytes,
)

TS = Timestamp(1_700_000_000_000, 3, "S01")
REC = StateRecord(TS.encode(), AdminState.DISCONNECTED)
HEADER = Header(ChangesetId("S01", 4), TS, "admin", "why", "m1", 1, {"S00": 2})

MESSAGES = [
    Hello("S01", "m1.example.com", "1.0", {"S00": 3}, TS, 1_700_000_000_123, {"S02": REC}),
    Chunk("S01", 4, 0, False, (Op("set", "cluster", "smtproutes", {"v": [1]}),), HEADER),
    Chunk("S01", 4, 1, True, (Op("add", "cluster", "unsubscribe", entry="a@b"),
                               Op("clear", "group:G", "unsubscribe", context={"S01": 3}))),
    Ack("S01", 4, 1),
    Want({"S00": 1, "S01": 9}, 5, "abc"),
    States({"S01": REC}),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: Any) -> None:
    """Every message decodes to what was encoded."""
    assert from_bytes(to_bytes(msg)) == msg


def good_chunk() -> dict[str, Any]:
    return encode(MESSAGES[1])


BAD = [
    ("not an object", []),
    ("unknown type", {"type": "exec"}),
    ("seq is a bool", {**encode(MESSAGES[3]), "seq": True}),
    ("negative index", {**encode(MESSAGES[3]), "index": -1}),
    ("seq zero", {**encode(MESSAGES[3]), "seq": 0}),
    ("serial with a dot", {**encode(MESSAGES[3]), "origin": "a.b"}),
    ("vv with a negative seq", {"type": "want", "vv": {"S00": -1}, "wall_ms": 1}),
    ("vv not a dict", {"type": "want", "vv": [1], "wall_ms": 1}),
    ("bad hlc", {**encode(MESSAGES[0]), "hlc": "yesterday"}),
    ("bad state", {"type": "states", "states": {"S01": ["boss", TS.encode()]}}),
    ("chunk 0 without header", {**good_chunk(), "header": None}),
    ("header at index 1", {**good_chunk(), "index": 1}),
    ("header of another changeset", {**good_chunk(), "seq": 5}),
    ("ops not a list", {**good_chunk(), "ops": "set"}),
    ("malformed op", {**good_chunk(), "ops": [{"op": "drop"}]}),
    ("add without entry", {**good_chunk(), "ops": [{"op": "add", "level": "cluster",
                                                    "block": "unsubscribe"}]}),
    ("too many ops", {**good_chunk(), "ops": [{"op": "delete", "level": "cluster",
                                               "block": "x"}] * (MAX_CHUNK_OPS + 1)}),
    ("last missing", {k: v for k, v in good_chunk().items() if k != "last"}),
    ("digest not text", {"type": "want", "vv": {}, "wall_ms": 1, "digest": 5}),
]


@pytest.mark.parametrize(("why", "data"), BAD, ids=[b[0] for b in BAD])
def test_malformed_message_is_refused(why: str, data: Any) -> None:
    """A malformed peer message raises ValidationError naming the problem."""
    with pytest.raises(ValidationError):
        decode(data)


def test_non_json_is_refused() -> None:
    """Bytes that are not JSON are refused, not crashed on."""
    with pytest.raises(ValidationError, match="not JSON"):
        from_bytes(b"\xff{")


def test_encoding_is_compact_json() -> None:
    """The wire form is one compact JSON object with a type key."""
    data = json.loads(to_bytes(MESSAGES[3]))
    assert data == {"type": "ack", "origin": "S01", "seq": 4, "index": 1}
