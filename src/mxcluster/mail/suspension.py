"""Durable suspension state (``DATA_DIR/mail/suspend.json``).

A machine suspended before a restart or upgrade comes back suspended (SPEC §4).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mxcluster.mail.queuefiles import fsync_dir


@dataclass
class Suspension:
    """Which listeners, and whether delivery, are suspended."""

    all_listeners: bool = False
    listeners: set[str] = field(default_factory=set)
    delivery: bool = False

    def listener(self, name: str) -> bool:
        """Whether listener NAME is suspended."""
        return self.all_listeners or name in self.listeners

    def suspend(self, name: str | None) -> None:
        if name is None:
            self.all_listeners = True
        else:
            self.listeners.add(name)

    def resume(self, name: str | None, known: list[str]) -> None:
        if name is None:
            self.all_listeners, self.listeners = False, set()
            return
        if self.all_listeners:
            self.all_listeners, self.listeners = False, set(known)
        self.listeners.discard(name)


def load(path: Path) -> Suspension:
    """The saved state, or nothing suspended when there is none."""
    if not path.exists():
        return Suspension()
    data = json.loads(path.read_text())
    return Suspension(bool(data.get("all_listeners")), set(data.get("listeners", [])),
                      bool(data.get("delivery")))


def save(path: Path, state: Suspension) -> None:
    """Write STATE atomically and durably (write, fsync, rename, fsync directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = {"all_listeners": state.all_listeners, "listeners": sorted(state.listeners),
            "delivery": state.delivery}
    with tmp.open("w") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
