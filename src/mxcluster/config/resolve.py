"""Effective configuration: machine > group > cluster > built-in default (pure).

A block defined at a lower level replaces the block from above entirely, even when the
lower definition is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mxcluster.config.levels import Level
from mxcluster.config.registry import BlockSpec

#: (level, block) -> the stored value, or None when the block is not defined there
Lookup = Callable[[Level, str], Any]


@dataclass(frozen=True)
class Resolved:
    """The effective value of a block and where it came from (None: built-in default)."""

    block: str
    value: Any
    source: Level | None


def chain(machine: str, group: str | None, clustered: bool) -> list[Level]:
    """The levels consulted for MACHINE, most specific first."""
    levels = [Level.machine(machine)]
    if clustered:
        if group is not None:
            levels.append(Level.group(group))
        levels.append(Level.cluster())
    return levels


def resolve(
    spec: BlockSpec, levels: Sequence[Level], lookup: Lookup, *, standalone: bool = False
) -> Resolved:
    """The first level in LEVELS that defines the block, else the built-in default.

    Levels the block may not live at are skipped, except on a standalone machine, where
    every block lives at the machine's own level (SPEC §1).
    """
    for level in levels:
        if level.kind not in spec.levels and not standalone:
            continue
        value = lookup(level, spec.name)
        if value is not None:
            return Resolved(spec.name, value, level)
    return Resolved(spec.name, spec.default, None)
