"""On-disk record framing for the queue: ``MAGIC | length | crc32 | payload``.

A record is valid only if it is complete and its CRC matches; a crash while writing
leaves a torn tail that ``read_records`` stops at (that entry was never acknowledged).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

MAGIC = b"MXQ1"
_HEAD = struct.Struct(">4sII")
_HLEN = struct.Struct(">I")


def frame(payload: bytes) -> bytes:
    """One record holding PAYLOAD."""
    return _HEAD.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def message_payload(header: dict[str, Any], body: bytes) -> bytes:
    """A message record's payload: header JSON length, header JSON, raw body."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    return _HLEN.pack(len(raw)) + raw + body


def split_message(payload: bytes) -> tuple[dict[str, Any], bytes]:
    """Inverse of ``message_payload``."""
    (hlen,) = _HLEN.unpack_from(payload)
    header = json.loads(payload[_HLEN.size : _HLEN.size + hlen])
    return header, payload[_HLEN.size + hlen :]


def body_of(record: bytes) -> bytes:
    """The message body of a whole framed message record."""
    return split_message(record[_HEAD.size :])[1]


def read_records(stream: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """Yield (offset, record length, payload) of each valid record; stop at a torn tail."""
    offset = 0
    while True:
        head = stream.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        magic, length, crc = _HEAD.unpack(head)
        payload = stream.read(length) if magic == MAGIC else b""
        if magic != MAGIC or len(payload) < length or zlib.crc32(payload) != crc:
            return
        yield offset, _HEAD.size + length, payload
        offset += _HEAD.size + length
