"""Configuration levels: ``cluster``, ``group:NAME`` and ``machine:NAME`` (SPEC §1)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from mxcluster.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


class LevelKind(enum.Enum):
    """Where a setting lives; lower levels override higher ones block by block."""

    CLUSTER = "cluster"
    """Shared by every machine of the cluster."""
    GROUP = "group"
    """Shared by the machines of one group; overrides cluster level."""
    MACHINE = "machine"
    """One machine only; overrides group and cluster level."""


@dataclass(frozen=True, order=True)
class Level:
    """One level, written ``cluster``, ``group:NAME`` or ``machine:NAME``."""

    kind: LevelKind
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> Level:
        """Parse the written form; raise UsageError naming the accepted forms."""
        text = text.strip()
        if text == "cluster":
            return cls(LevelKind.CLUSTER)
        kind, sep, name = text.partition(":")
        if sep and kind in ("group", "machine") and _NAME.match(name):
            return cls(LevelKind(kind), name)
        raise UsageError(
            f"bad level {text!r}",
            hint="write 'cluster', 'group:NAME' or 'machine:NAME'",
        )

    @classmethod
    def cluster(cls) -> Level:
        return cls(LevelKind.CLUSTER)

    @classmethod
    def group(cls, name: str) -> Level:
        return cls(LevelKind.GROUP, name)

    @classmethod
    def machine(cls, name: str) -> Level:
        return cls(LevelKind.MACHINE, name)

    def __str__(self) -> str:
        if self.kind is LevelKind.CLUSTER:
            return "cluster"
        return f"{self.kind.value}:{self.name}"


def valid_name(name: str) -> bool:
    """True when NAME may name a group or machine."""
    return bool(_NAME.match(name))
