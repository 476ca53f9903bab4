"""``clustercheck``: conflicts and blocks that differ between machines (SPEC §4, §5).

Each machine summarises its settings as digests (one per defined block, one per
unsubscribe table); the machine running the check compares its own with those of the
connected members, and lists the conflict records (concurrent changes whose loser was
kept). Resolving writes the chosen version as a new commit that has seen both versions:
it replicates, wins everywhere, and settles the conflict records on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mxcluster.config import registry
from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.config.levels import Level
from mxcluster.config.store import BlockRow
from mxcluster.errors import NotFoundError, UsageError
from mxcluster.membership.model import is_membership_block
from mxcluster.service.machine import Machine

TABLE_SUFFIX = "#entries"


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _last(m: Machine, origin: str, seq: int, hlc: str) -> dict[str, Any]:
    """When, by whom and on which machine the version (ORIGIN, SEQ) was committed."""
    entry = m.store.log_entry(ChangesetId(origin, seq))
    return {"commit": f"{origin}-{seq}", "hlc": hlc,
            "when": _iso(entry.hlc.wall_ms) if entry else "",
            "author": entry.author if entry else "", "machine": entry.machine if entry else ""}


def _iso(wall_ms: int) -> str:
    return datetime.fromtimestamp(wall_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digests(m: Machine) -> dict[str, dict[str, Any]]:
    """``"LEVEL BLOCK"`` -> digest and last change, for every defined settings block."""
    out: dict[str, dict[str, Any]] = {}
    for level in m.store.levels():
        for row in m.store.blocks_at(level):
            if row.value is None or is_membership_block(row.block):
                continue
            out[f"{level} {row.block}"] = {"sha": _sha(row.value),
                                           **_last(m, row.origin, row.seq, row.hlc)}
        if m.store.unsub_count(level):
            h = hashlib.sha256()
            for entry in m.store.unsub_iter(level):
                h.update(entry.encode() + b"\n")
            out[f"{level} unsubscribe{TABLE_SUFFIX}"] = {"sha": h.hexdigest()[:16]}
    return out


def conflicts(m: Machine) -> list[dict[str, Any]]:
    """The unresolved conflict records, each version with when, who and where."""
    out = []
    for c in m.store.conflicts():
        for side in ("winner", "loser"):
            origin, _, seq = c[side]["commit"].rpartition("-")
            c[side].update(_last(m, origin, int(seq), c[side]["hlc"]))
        out.append(c)
    return out


def differences(mine: str, local: Mapping[str, Any],
                remote: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Blocks whose digest is not the same on every machine (absent counts as a value)."""
    every = {mine: local, **remote}
    keys = sorted(set().union(*(d.keys() for d in every.values())))
    out = []
    for key in keys:
        shas = {name: (d.get(key) or {}).get("sha") for name, d in every.items()}
        if len(set(shas.values())) > 1:
            level, _, block = key.partition(" ")
            out.append({"level": level, "block": block,
                        "machines": {name: d.get(key) for name, d in sorted(every.items())}})
    return out


def resolve(m: Machine, author: str, block: str, level: Level, value: Any,
            chosen: str) -> ChangesetId:
    """Commit VALUE (None: delete) for BLOCK at LEVEL, having seen every version of it."""
    spec = registry.get(block)
    m.check_level(spec, level)
    op = (Op("delete", str(level), block) if value is None
          else Op("set", str(level), block, spec.validate(value)))
    cid = m.apply_local(author, f"clustercheck: {block} at {level} resolved ({chosen})",
                        iter([op]))
    m.store.resolve_conflicts(str(level), block)
    return cid


def version_from(m: Machine, block: str, level: Level, machine_name: str,
                 serial_of: Mapping[str, str]) -> tuple[bool, Any]:
    """The version of BLOCK at LEVEL made on MACHINE_NAME, from the conflict records.

    (True, value) when a record holds one; (False, None) when none does (the caller
    then asks that machine for its current value).
    """
    serial = serial_of.get(machine_name)
    if serial is None:
        raise NotFoundError(f"no machine {machine_name!r} in this cluster")
    for c in m.store.conflicts():
        if c["level"] != str(level) or c["block"] != block:
            continue
        for side in ("loser", "winner"):
            if c[side]["commit"].rpartition("-")[0] == serial:
                return True, c[side]["value"]
    return False, None


def current(m: Machine, level: str, block: str) -> Any:
    """This machine's stored value of BLOCK at LEVEL (None when not defined)."""
    if block not in registry.BLOCKS:
        raise UsageError(f"unknown block {block!r}")
    row: BlockRow | None = m.store.block(level, block)
    return None if row is None else row.value
