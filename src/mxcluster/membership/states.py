"""Administrative states of machines: member, disconnected, removed (SPEC §4, §5).

A machine's state is a last-writer-wins register (member or disconnected), except that
removal is final: a removal record beats every other record whatever its timestamp, so
a reconnect racing a removal cannot bring a removed machine back. The durable, audited
form is the replicated blocks ``_membership.state.SERIAL`` and, once removed,
``_membership.removed.SERIAL`` at level ``cluster``; but a disconnected or
removed machine exchanges no configuration, so it could never learn of its own state
from replication alone. Every machine therefore also gossips its state records over
*control* traffic (hello and ``States`` messages, which flow on every link), and keeps
the records it heard as **notices** in its store's metadata. The effective state of a
machine is the winning record (``wins``) among the replicated blocks and the notice: the
same rule on every machine, so all converge on the same answer.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mxcluster.errors import ValidationError

#: meta key holding the notices heard over control traffic (JSON: serial -> [state, hlc])
NOTICES_META = "membership.notices"

_HLC = re.compile(r"\A[0-9]{16}\.[0-9]{5}\.[!-~]{0,64}\Z")

#: upper bound on the number of machines in a gossiped state map (untrusted input)
MAX_MACHINES = 10_000


class AdminState(enum.StrEnum):
    """What an administrator decided about a machine."""

    MEMBER = "member"
    """Takes part in the cluster: exchanges configuration with the other members."""
    DISCONNECTED = "disconnected"
    """Temporarily detached (``clusterconfig disconnect``): keeps working and can be
    configured locally, but no configuration flows to or from it until ``reconnect``."""
    REMOVED = "removed"
    """Permanently removed (``clusterconfig removemachine``): refused by every member;
    it flattens its configuration and becomes standalone."""


@dataclass(frozen=True, order=True)
class StateRecord:
    """One write of a machine's state; orders by timestamp (the encoded HLC)."""

    hlc: str
    state: AdminState

    def encode(self) -> list[str]:
        return [self.state.value, self.hlc]


class MetaStore(Protocol):
    """The part of the store that notices live in."""

    def meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


def wins(a: StateRecord, b: StateRecord) -> bool:
    """True when record A supersedes B: removal first, then the later timestamp."""
    return (a.state is AdminState.REMOVED, a.hlc) > (b.state is AdminState.REMOVED, b.hlc)


def effective(
    replicated: Mapping[str, StateRecord], notices: Mapping[str, StateRecord]
) -> dict[str, StateRecord]:
    """Per serial, the winning record among the replicated blocks and the notices."""
    out = dict(replicated)
    for serial, rec in notices.items():
        if serial not in out or wins(rec, out[serial]):
            out[serial] = rec
    return out


def newer(
    current: Mapping[str, StateRecord], incoming: Mapping[str, StateRecord]
) -> dict[str, StateRecord]:
    """The records of INCOMING that supersede what CURRENT holds."""
    return {s: r for s, r in incoming.items() if s not in current or wins(r, current[s])}


def diff(old: Mapping[str, StateRecord], new: Mapping[str, StateRecord]) -> dict[str, StateRecord]:
    """Records of NEW that differ from OLD (what to gossip after a change)."""
    return {s: r for s, r in new.items() if old.get(s) != r}


def load_notices(store: MetaStore) -> dict[str, StateRecord]:
    """The notices kept in STORE (empty when none); a corrupt value reads as none."""
    raw = store.meta(NOTICES_META)
    if raw is None:
        return {}
    try:
        return decode_states(json.loads(raw))
    except (ValueError, ValidationError):
        return {}


def save_notices(store: MetaStore, notices: Mapping[str, StateRecord]) -> None:
    store.set_meta(NOTICES_META, json.dumps(encode_states(notices), sort_keys=True))


def encode_states(states: Mapping[str, StateRecord]) -> dict[str, list[str]]:
    """Wire form: ``{serial: [state, hlc]}``."""
    return {serial: rec.encode() for serial, rec in sorted(states.items())}


def decode_states(data: Any) -> dict[str, StateRecord]:
    """Decode a state map from untrusted input; ValidationError when malformed."""
    if not isinstance(data, dict) or len(data) > MAX_MACHINES:
        raise ValidationError([f"malformed state map {_short(data)}"])
    out = {}
    for serial, item in data.items():
        out[check_serial(serial)] = _decode_record(item)
    return out


def _decode_record(item: Any) -> StateRecord:
    if (not isinstance(item, list) or len(item) != 2
            or not all(isinstance(x, str) for x in item)):
        raise ValidationError([f"malformed state record {_short(item)}"])
    try:
        state = AdminState(item[0])
    except ValueError:
        raise ValidationError([f"unknown machine state {item[0]!r}"]) from None
    check_hlc(item[1])
    return StateRecord(item[1], state)


def check_serial(value: Any) -> str:
    """A machine serial from untrusted input: 1-64 printable characters, no dots."""
    if (not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable()
            or "." in value or " " in value):
        raise ValidationError([f"malformed machine serial {_short(value)}"])
    return value


def check_hlc(value: Any) -> str:
    """An encoded HLC timestamp from untrusted input (``WALL.COUNTER.NODE``)."""
    if not isinstance(value, str) or not _HLC.match(value):
        raise ValidationError([f"malformed timestamp {_short(value)}"])
    return value


def records_from_rows(rows: Iterable[tuple[str, Any, str]]) -> dict[str, StateRecord]:
    """Winning records from replicated (serial, block value, hlc) rows; bad values skipped."""
    out: dict[str, StateRecord] = {}
    for serial, value, hlc in rows:
        raw = value.get("state") if isinstance(value, dict) else None
        try:
            state = AdminState(raw) if isinstance(raw, str) else None
        except ValueError:
            state = None
        rec = None if state is None else StateRecord(hlc, state)
        if rec is not None and (serial not in out or wins(rec, out[serial])):
            out[serial] = rec
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
