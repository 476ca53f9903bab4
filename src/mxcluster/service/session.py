"""An administration session: who is logged in, the current mode and staged edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mxcluster.config.levels import Level
from mxcluster.users.roles import Role

#: marker for a staged delete (the level inherits again)
DELETED = object()


@dataclass
class StagedBlock:
    """A staged value (or DELETED) and the store timestamp it was based on."""

    value: Any
    base_hlc: str | None


@dataclass
class StagedImport:
    """An unsubscribe file validated at staging time; re-read and checked at commit."""

    path: str
    sha256: str
    count: int


@dataclass
class StagedTable:
    """Staged per-entry edits of one level's unsubscribe table, in the order given."""

    edits: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, arg: Any = None) -> None:
        if kind == "clear":
            # the store applies a changeset's entry ops before its clear; a clear
            # supersedes whatever this session staged before it, so drop those edits
            self.edits.clear()
        self.edits.append((kind, arg))


@dataclass
class Session:
    """One login: user, role, mode, and the edits staged but not yet committed."""

    user: str
    role: Role
    mode: Level
    interactive: bool = False
    address: str = "local"
    blocks: dict[tuple[str, str], StagedBlock] = field(default_factory=dict)
    tables: dict[str, StagedTable] = field(default_factory=dict)

    @property
    def dirty(self) -> bool:
        return bool(self.blocks or self.tables)

    def clear(self) -> None:
        self.blocks.clear()
        self.tables.clear()

    def table(self, level: Level) -> StagedTable:
        return self.tables.setdefault(str(level), StagedTable())

    def summary(self) -> list[str]:
        out = [
            f"{'delete' if st.value is DELETED else 'set'} {block} at {level}"
            for (level, block), st in sorted(self.blocks.items())
        ]
        for level, table in sorted(self.tables.items()):
            out.append(f"{len(table.edits)} unsubscribe edit(s) at {level}")
        return out
