"""Membership changes that move settings between levels (SPEC §4), and flattening.

* ``create``: the machine's clusterable settings become the cluster-level settings.
* ``join`` (on the joiner): its clusterable settings are dropped so the cluster's apply;
  machine-only settings (interfaces, hostname) stay.
* ``renamegroup`` / ``deletegroup``: group-level settings follow the group or vanish.
* ``flatten``: a removed machine writes every block it effectively used (machine >
  group > cluster, unsubscribe entries included) at its own level, so that as a
  standalone machine it behaves exactly as before.

Operations are generated lazily: an unsubscribe table of 1,000,000 entries is read page
by page while the store applies them, never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from mxcluster.config.changeset import Op
from mxcluster.config.levels import Level
from mxcluster.config.registry import BLOCKS
from mxcluster.config.resolve import chain, resolve
from mxcluster.config.store import BlockRow
from mxcluster.errors import StateError
from mxcluster.membership.model import (
    LEVEL,
    Addressing,
    Membership,
    block_name,
    is_membership_block,
)
from mxcluster.membership.ops import Candidate, _need_group, check_name, cluster_ops

TABLE_BLOCK = "unsubscribe"


class ConfigReader(Protocol):
    """The reads these functions need (``Store`` provides them)."""

    def block(self, level: str, block: str) -> BlockRow | None: ...

    def blocks_at(self, level: str) -> list[BlockRow]: ...

    def levels(self) -> list[str]: ...

    def unsub_count(self, level: str) -> int: ...

    def unsub_iter(self, level: str, page: int = 5_000) -> Iterator[str]: ...

    def version_vector(self) -> dict[str, int]: ...


def create_ops(cfg: ConfigReader, m: Membership, name: str, addressing: Addressing,
               me: Candidate) -> Iterator[Op]:
    """Make a cluster NAME of this standalone machine ME; its settings go to cluster level."""
    if m.clustered:
        raise StateError(f"this machine is already in cluster {m.cluster}",
                         hint="a machine is in one cluster at a time")
    first = cluster_ops(name, addressing, me)  # validates before anything is yielded
    return _create(cfg, me.name, first)


def _create(cfg: ConfigReader, machine: str, first: list[Op]) -> Iterator[Op]:
    own = str(Level.machine(machine))
    moving = [r.block for r in cfg.blocks_at(own) if _clusterable(r.block)]
    keep = {(LEVEL, op.block) for op in first} | {(LEVEL, b) for b in moving}
    # A former member keeps its old cluster's data: wipe it so it cannot resurface
    # (skipping what is about to be set: one changeset writes each block once).
    for level in cfg.levels():
        if level != own:
            yield from _wipe_level(cfg, level, keep)
    yield from first
    yield from _move(cfg, own, LEVEL, clusterable_only=True)


def _clusterable(block: str) -> bool:
    spec = BLOCKS.get(block)
    return spec is not None and not spec.machine_only


def join_local_ops(cfg: ConfigReader, machine: str) -> Iterator[Op]:
    """Run on the joiner MACHINE before it joins: drop its clusterable settings."""
    own = str(Level.machine(machine))
    foreign = [lv for lv in cfg.levels() if lv != own]
    if foreign:
        raise StateError(
            f"this machine still holds cluster data ({', '.join(foreign[:3])})",
            hint="a machine removed from a cluster must be set up afresh ('mxcluster setup') "
            "before it joins another one")
    return _drop(cfg, own)


def _drop(cfg: ConfigReader, level: str) -> Iterator[Op]:
    for row in cfg.blocks_at(level):
        if _clusterable(row.block):
            yield Op("delete", level, row.block)
    if cfg.unsub_count(level):
        yield _clear(cfg, level)


def renamegroup_ops(cfg: ConfigReader, m: Membership, old: str, new: str) -> Iterator[Op]:
    """Rename group OLD to NEW: its machines and its group-level settings follow."""
    _need_group(m, old)
    check_name(new, "group")
    if new in m.groups:
        raise StateError(f"group {new!r} already exists", hint="choose another name")
    ops = [Op("delete", LEVEL, block_name("group", old)),
           Op("set", LEVEL, block_name("group", new), {"name": new})]
    ops += [Op("set", LEVEL, block_name("placement", x.serial), {"group": new})
            for x in m.machines_in(old)]
    return _chain(ops, _move(cfg, str(Level.group(old)), str(Level.group(new))))


def deletegroup_ops(cfg: ConfigReader, m: Membership, group: str,
                    to: str | None = None) -> Iterator[Op]:
    """Delete GROUP; its machines go to TO (required when it has any)."""
    _need_group(m, group)
    if len(m.groups) == 1:
        raise StateError(f"{group} is the last group; a cluster always has one")
    members = m.machines_in(group)
    if to is None and members:
        raise StateError(f"group {group} still has machines "
                         f"({', '.join(x.name for x in members)})",
                         hint="give --to GROUP to move them")
    if to is not None:
        _need_group(m, to)
        if to == group:
            raise StateError("--to names the group being deleted")
    ops = [Op("delete", LEVEL, block_name("group", group))]
    ops += [Op("set", LEVEL, block_name("placement", x.serial), {"group": to})
            for x in members]
    return _chain(ops, _wipe_level(cfg, str(Level.group(group))))


def flatten_ops(cfg: ConfigReader, machine: str, group: str | None) -> Iterator[Op]:
    """Write every block MACHINE effectively uses at its own level (SPEC §4 removemachine)."""
    levels = chain(machine, group, True)
    own = levels[0]

    def lookup(level: Level, block: str) -> Any:
        row = cfg.block(str(level), block)
        return None if row is None else row.value

    for spec in BLOCKS.values():
        res = resolve(spec, levels, lookup)
        if res.source is None or res.source == own:
            continue
        yield Op("set", str(own), spec.name, res.value)
        if spec.table:
            yield from _copy_table(cfg, str(res.source), str(own))


def _move(cfg: ConfigReader, src: str, dst: str, *, clusterable_only: bool = False
          ) -> Iterator[Op]:
    """Set every settings block of SRC at DST and delete it at SRC (entries too)."""
    for row in cfg.blocks_at(src):
        if is_membership_block(row.block) or (
                clusterable_only and not _clusterable(row.block)):
            continue
        yield Op("set", dst, row.block, row.value)
        yield Op("delete", src, row.block)
        if row.block == TABLE_BLOCK:
            yield from _copy_table(cfg, src, dst)
    if cfg.unsub_count(src):
        yield _clear(cfg, src)


def _copy_table(cfg: ConfigReader, src: str, dst: str) -> Iterator[Op]:
    """DST's unsubscribe entries become exactly SRC's."""
    if cfg.unsub_count(dst):
        yield _clear(cfg, dst)
    for entry in cfg.unsub_iter(src):
        yield Op("add", dst, TABLE_BLOCK, entry=entry)


def _wipe_level(cfg: ConfigReader, level: str,
                keep: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset()
                ) -> Iterator[Op]:
    for row in cfg.blocks_at(level):
        if (level, row.block) not in keep:
            yield Op("delete", level, row.block)
    if cfg.unsub_count(level):
        yield _clear(cfg, level)


def _clear(cfg: ConfigReader, level: str) -> Op:
    return Op("clear", level, TABLE_BLOCK, context=cfg.version_vector())


def _chain(first: list[Op], rest: Iterator[Op]) -> Iterator[Op]:
    yield from first
    yield from rest
