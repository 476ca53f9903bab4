"""The membership view: who is in the cluster, read from replicated blocks (pure).

Membership is configuration data like any other, kept in reserved blocks at level
``cluster`` so that it replicates, merges and is audited exactly like settings. One block
per fact that may change independently, so concurrent changes to different machines (or
to different facts of one machine) never conflict::

    _membership.cluster             {"name", "addressing"}
    _membership.group.G             {"name"}                      one per group
    _membership.machine.SERIAL      {"name", "serial", "fingerprint"}
    _membership.placement.SERIAL    {"group"}
    _membership.address.SERIAL      {"address", "ssh_port"}
    _membership.version.SERIAL      {"version"}
    _membership.state.SERIAL        {"state"}       member | disconnected, see ``states``
    _membership.removed.SERIAL      {"state"}       "removed": final, never undone
    _membership.prepjoin.NAME       {"name", "serial", "key"}

Reading never fails: whatever concurrent edits merged into, the view is well formed
(a machine placed in a group deleted concurrently keeps that group listed, so nothing
is silently moved; an administrator sees it and fixes it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mxcluster.config.store import BlockRow
from mxcluster.errors import NotFoundError
from mxcluster.membership.states import (
    AdminState,
    MetaStore,
    StateRecord,
    effective,
    load_notices,
    records_from_rows,
)

PREFIX = "_membership."
LEVEL = "cluster"
MAIN_GROUP = "Main_Group"
DEFAULT_SSH_PORT = 2222


class Addressing(enum.StrEnum):
    """How peers reach each other; one mode per cluster, never mixed (SPEC §4)."""

    IP = "ip"
    """Machines are reached at IP addresses."""
    HOSTNAME = "hostname"
    """Machines are reached at host names resolved through DNS."""


def block_name(kind: str, key: str = "") -> str:
    """The reserved block name for one membership fact."""
    return f"{PREFIX}{kind}.{key}" if key else f"{PREFIX}{kind}"


def is_membership_block(block: str) -> bool:
    """True for the reserved blocks that hold membership (not settings)."""
    return block.startswith(PREFIX)


@dataclass(frozen=True)
class MachineInfo:
    """One machine as the cluster knows it."""

    name: str
    serial: str
    group: str
    address: str
    ssh_port: int
    fingerprint: str
    version: str
    state: AdminState


@dataclass(frozen=True)
class Prepjoin:
    """A pre-authorised join: the joiner's name, serial and SSH host key."""

    name: str
    serial: str
    key: str


@dataclass(frozen=True)
class Membership:
    """The cluster as one machine currently sees it."""

    cluster: str | None = None
    addressing: Addressing | None = None
    groups: tuple[str, ...] = ()
    #: every machine ever known, removed ones included, by name
    all_machines: tuple[MachineInfo, ...] = ()
    prepjoins: tuple[Prepjoin, ...] = ()
    states: Mapping[str, StateRecord] = field(default_factory=dict)

    @property
    def clustered(self) -> bool:
        return self.cluster is not None

    def is_member(self, serial: str) -> bool:
        """True when SERIAL belongs to this cluster (connected or not); False when it
        was removed or never joined: such a machine is standalone."""
        return self.clustered and self.state_of(serial) in (
            AdminState.MEMBER, AdminState.DISCONNECTED)

    @property
    def machines(self) -> tuple[MachineInfo, ...]:
        """The machines that are listed: everything but removed ones."""
        return tuple(m for m in self.all_machines if m.state is not AdminState.REMOVED)

    def find(self, name: str) -> MachineInfo:
        """The listed machine NAME, or NotFoundError naming the machines there are."""
        for m in self.machines:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.machines) or "none"
        raise NotFoundError(f"no machine {name!r} in this cluster",
                            hint=f"machines: {known} (see 'clusterconfig list')")

    def by_serial(self, serial: str) -> MachineInfo | None:
        return next((m for m in self.all_machines if m.serial == serial), None)

    def state_of(self, serial: str) -> AdminState | None:
        """The effective administrative state of SERIAL; None when never a member."""
        rec = self.states.get(serial)
        return None if rec is None else rec.state

    def group_of(self, name: str) -> str | None:
        return next((m.group for m in self.machines if m.name == name), None)

    def machines_in(self, group: str) -> list[MachineInfo]:
        return [m for m in self.machines if m.group == group]

    def prepjoin(self, name: str) -> Prepjoin | None:
        return next((p for p in self.prepjoins if p.name == name), None)


class BlockSource(MetaStore, Protocol):
    """What the view is read from: the store (or anything with the same reads)."""

    def blocks_at(self, level: str) -> list[BlockRow]: ...


def read(store: BlockSource) -> Membership:
    """The membership held in STORE, state notices included."""
    rows = [r for r in store.blocks_at(LEVEL) if is_membership_block(r.block)]
    return from_rows(rows, load_notices(store))


def from_rows(rows: Iterable[BlockRow], notices: Mapping[str, StateRecord]) -> Membership:
    """The membership view from its reserved blocks and the state notices (pure)."""
    facts: dict[str, dict[str, Any]] = {}
    state_rows = []
    for row in rows:
        kind, _, key = row.block[len(PREFIX):].partition(".")
        if kind in ("state", "removed"):
            state_rows.append((key, row.value, row.hlc))
        elif isinstance(row.value, dict):
            facts.setdefault(kind, {})[key] = row.value
    states = effective(records_from_rows(state_rows), notices)
    cluster = facts.get("cluster", {}).get("")
    machines = _machines(facts, states)
    return Membership(
        cluster=_str(cluster, "name") or None,
        addressing=_addressing(cluster),
        groups=_groups(facts.get("group", {}), machines),
        all_machines=machines,
        prepjoins=tuple(
            Prepjoin(k, _str(v, "serial"), _str(v, "key"))
            for k, v in sorted(facts.get("prepjoin", {}).items())
        ),
        states=states,
    )


def _machines(facts: dict[str, dict[str, Any]],
              states: Mapping[str, StateRecord]) -> tuple[MachineInfo, ...]:
    out = []
    for serial, ident in facts.get("machine", {}).items():
        addr = facts.get("address", {}).get(serial, {})
        rec = states.get(serial)
        out.append(MachineInfo(
            name=_str(ident, "name"), serial=serial,
            group=_str(facts.get("placement", {}).get(serial), "group") or MAIN_GROUP,
            address=_str(addr, "address"),
            ssh_port=_int(addr, "ssh_port", DEFAULT_SSH_PORT),
            fingerprint=_str(ident, "fingerprint"),
            version=_str(facts.get("version", {}).get(serial), "version"),
            state=AdminState.MEMBER if rec is None else rec.state,
        ))
    return tuple(sorted(out, key=lambda m: (m.name, m.serial)))


def _groups(declared: Mapping[str, Any], machines: Iterable[MachineInfo]) -> tuple[str, ...]:
    """Declared groups plus any a listed machine still sits in; Main_Group first."""
    names = set(declared)
    names.update(m.group for m in machines if m.state is not AdminState.REMOVED)
    return tuple(sorted(names, key=lambda g: (g != MAIN_GROUP, g)))


def _addressing(cluster: Any) -> Addressing | None:
    try:
        return Addressing(_str(cluster, "addressing"))
    except ValueError:
        return None


def _str(value: Any, key: str) -> str:
    item = value.get(key) if isinstance(value, dict) else None
    return item if isinstance(item, str) else ""


def _int(value: Any, key: str, default: int) -> int:
    item = value.get(key) if isinstance(value, dict) else None
    return item if isinstance(item, int) and not isinstance(item, bool) else default
