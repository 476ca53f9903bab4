"""The mail log: ``DATA_DIR/logs/mail.log``, one line per event.

Format (logfmt; values with spaces or quotes are JSON-quoted)::

    2025-11-25T20:36:00.123Z received mid=0194F3A2B1C4D5E6F7 from=<a@example.org> \
to=<b@example.com>,<c@example.com> size=1234 client=192.0.2.7 listener=InboundMail \
msgid=<x@y>
    2025-11-25T20:36:00.456Z delivered mid=0194F3A2B1C4D5E6F7 to=<b@example.com> \
relay=192.0.2.9:25 reply="250 2.0.0 Ok"

Events: received, delivered, deferred, bounced, dropped, deleted, redirected.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

EVENTS = ("received", "delivered", "deferred", "bounced", "dropped", "deleted", "redirected")
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_PLAIN = re.compile(r"^[^\s\"=]*$")


def _quote(value: object) -> str:
    text = str(value)
    return text if _PLAIN.match(text) else json.dumps(text)


def format_line(when: float, event: str, fields: dict[str, object]) -> str:
    """One mail-log line (without newline)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    millis = int(when * 1000) % 1000
    pairs = " ".join(f"{k}={_quote(v)}" for k, v in fields.items() if v is not None)
    return f"{stamp}.{millis:03d}Z {event} {pairs}"


def parse_line(line: str) -> dict[str, Any] | None:
    """A mail-log line as a dict (``time``, ``event`` and the fields), or None."""
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) < 2 or parts[1] not in EVENTS:
        return None
    out: dict[str, Any] = {"time": parts[0], "event": parts[1]}
    for key, value in _PAIR.findall(parts[2] if len(parts) > 2 else ""):
        out[key] = json.loads(value) if value.startswith('"') else value
    return out


def addresses(value: str) -> list[str]:
    """``<a@x>,<b@y>`` -> [``a@x``, ``b@y``] (lower-case)."""
    return [a.strip("<>").lower() for a in value.split(",") if a]


class MailLog:
    """Appends events to the mail log and searches it."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._file: TextIO | None = path.open("a", buffering=1, encoding="utf-8")

    def event(self, event: str, mid: str, **fields: object) -> None:
        """Write one EVENT line for message MID."""
        if self._file is not None:
            line = format_line(self._clock(), event, {"mid": mid, **fields})
            self._file.write(line + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def lines(self) -> Iterator[dict[str, Any]]:
        """Every parseable event, oldest first."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as stream:
            for line in stream:
                parsed = parse_line(line)
                if parsed is not None:
                    yield parsed

    def find(self, to: str | None = None, from_: str | None = None,
             mid: str | None = None) -> list[dict[str, Any]]:
        """All events of the messages matching every given criterion (``findevent``)."""
        wanted: set[str] = set()
        found: list[dict[str, Any]] = []
        for entry in self.lines():
            entry_mid = entry.get("mid", "")
            if entry["event"] == "received" and _matches(entry, to, from_, mid):
                wanted.add(entry_mid)
            if entry_mid in wanted:
                found.append(entry)
        return found


def _matches(entry: dict[str, Any], to: str | None, from_: str | None,
             mid: str | None) -> bool:
    if mid is not None and entry.get("mid", "").upper() != mid.upper():
        return False
    if from_ is not None and from_.lower() not in addresses(entry.get("from", "")):
        return False
    return to is None or to.lower() in addresses(entry.get("to", ""))
