"""Cluster management on one machine (SPEC §4 ``clusterconfig``): store-thread half.

Each function validates a request against the current membership, then commits the
operations at once as one changeset (``clusterconfig`` needs no ``commit``); the commit
hooks hand it to the replication core, which pushes it to every connected peer. The
network half of ``join`` and of requests to other machines lives in
``mxcluster.peers.control``; these functions never touch a socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.errors import StateError, UsageError, ValidationError
from mxcluster.membership import moves, ops
from mxcluster.membership.model import Addressing, MachineInfo, Membership
from mxcluster.membership.ops import Candidate
from mxcluster.membership.states import AdminState
from mxcluster.service.machine import Machine

#: candidate fields a joiner sends, with their types (untrusted input)
_CANDIDATE_FIELDS = {"name": str, "serial": str, "address": str, "ssh_port": int,
                     "fingerprint": str, "version": str}


def candidate(m: Machine, address: str | None = None, ssh_port: int | None = None) -> Candidate:
    """This machine as it introduces itself to a cluster."""
    ident = m.identity
    return Candidate(ident.name, ident.serial, address or ident.address,
                     ssh_port or ident.ssh_port, ident.fingerprint, m.version)


def candidate_from(data: Any) -> Candidate:
    """A Candidate from a joiner's JSON object; ValidationError when malformed."""
    if not isinstance(data, dict):
        raise ValidationError(["the join request must be a JSON object"])
    problems = [f"{k}: expected {t.__name__}" for k, t in _CANDIDATE_FIELDS.items()
                if not isinstance(data.get(k), t) or isinstance(data.get(k), bool)]
    if problems:
        raise ValidationError(problems)
    if not 0 < data["ssh_port"] < 65536:
        raise ValidationError([f"ssh_port: {data['ssh_port']} is not a TCP port"])
    return Candidate(**{k: data[k] for k in _CANDIDATE_FIELDS})


def commit_ops(m: Machine, author: str, comment: str, ops_: Iterable[Op]) -> ChangesetId:
    """Commit OPS now as one changeset (validation happened before)."""
    return m.apply_local(author, comment, iter(ops_))


def _require_member(m: Machine) -> Membership:
    view = m.membership()
    if m.standalone:
        raise StateError("this machine is not in a cluster",
                         hint="'clusterconfig create NAME' or 'clusterconfig join HOST'")
    return view


# -- becoming a cluster ---------------------------------------------------------------

def create(m: Machine, author: str, name: str, addressing: Addressing = Addressing.IP,
           address: str | None = None) -> ChangesetId:
    """Make this standalone machine the first member of cluster NAME."""
    if not m.standalone:
        raise StateError(f"this machine is already in cluster {m.cluster_name}",
                         hint="a machine is in one cluster at a time")
    _refuse_former_member(m)
    if address is None and addressing is Addressing.HOSTNAME:
        address = m.identity.name
    me = candidate(m, address)
    moves_ = moves.create_ops(m.store, Membership(), name, addressing, me)
    return commit_ops(m, author, f"clusterconfig create {name}", moves_)


def _refuse_former_member(m: Machine) -> None:
    """A removed machine keeps its old cluster's records (removal is final for its
    serial); it starts a new cluster only once set up afresh."""
    view = m.membership()
    if view.by_serial(m.identity.serial) is not None:
        raise StateError(
            f"this machine was removed from cluster {view.cluster}; its identity cannot "
            "start or join another cluster",
            hint="'saveconfig FILE', set the machine up afresh ('mxcluster setup' on a new "
            "data directory), then 'loadconfig FILE'")


def admit(m: Machine, author: str, joiner: Candidate, group: str | None = None) -> dict[str, Any]:
    """On a member: record JOINER as a member; returns what the joiner needs to link up."""
    view = _require_member(m)
    me = view.by_serial(m.identity.serial)
    assert me is not None
    admitted = ops.join_ops(view, joiner, cluster_version=m.version, group=group)
    cid = commit_ops(m, author, f"clusterconfig join {joiner.name}", admitted)
    return {"cluster": view.cluster, "admitted": str(cid), "member": _member_json(me)}


def admit_prepared(m: Machine, joiner: Candidate, key: str) -> dict[str, Any]:
    """Admit JOINER authenticated by its host KEY, which a ``prepjoin`` pre-authorised."""
    view = _require_member(m)
    ops.check_prepared(view, joiner.name, joiner.serial, key)
    return admit(m, "mxcluster-peer", joiner)


def join_local(m: Machine, author: str, cluster: str) -> ChangesetId | None:
    """On the joiner, once admitted: drop its clusterable settings so the cluster's apply."""
    dropped = list(moves.join_local_ops(m.store, m.identity.name))
    if not dropped:
        return None
    return commit_ops(m, author, f"clusterconfig join {cluster}: local settings dropped",
                      dropped)


def check_can_join(m: Machine) -> None:
    """Refuse early, before any network work, when this machine cannot join."""
    if not m.standalone:
        raise StateError(f"this machine is already in cluster {m.cluster_name}",
                         hint="remove it from that cluster first ('clusterconfig "
                         "removemachine')")
    _refuse_former_member(m)
    list(moves.join_local_ops(m.store, m.identity.name))  # raises for a former member


def record_version(m: Machine) -> ChangesetId | None:
    """After an upgrade: record the version this member now runs (None if unchanged)."""
    if m.standalone:
        return None
    recorded = ops.version_ops(m.membership(), m.identity.serial, m.version)
    if not recorded:
        return None
    return commit_ops(m, "mxcluster", f"now running version {m.version}", recorded)


# -- views --------------------------------------------------------------------------

def _member_json(x: MachineInfo) -> dict[str, Any]:
    return {"name": x.name, "serial": x.serial, "group": x.group, "address": x.address,
            "ssh_port": x.ssh_port, "version": x.version, "fingerprint": x.fingerprint}


def link_state(m: Machine, x: MachineInfo) -> str:
    """``connected``, ``link-down``, ``disconnected`` or ``version-mismatch`` for X."""
    core = m.runtime.get("replication")
    if core is not None:
        return str(core.link_state(x.serial).value)
    if AdminState.DISCONNECTED in (x.state, m.membership().state_of(m.identity.serial)):
        return "disconnected"
    return "connected" if x.serial == m.identity.serial else "link-down"


def running_version(m: Machine, x: MachineInfo) -> str:
    """The version X runs: as its live link says, else as last recorded."""
    core = m.runtime.get("replication")
    link = core.links.get(x.serial) if core is not None else None
    if x.serial == m.identity.serial:
        return m.version
    return str(link.hello.version) if link is not None else x.version


def listing(m: Machine) -> dict[str, Any]:
    """The ``clusterconfig list --json`` document (SPEC §4)."""
    if m.standalone:
        return {"cluster": None, "addressing": None, "groups": [], "machines": []}
    view = m.membership()
    machines = [
        {"name": x.name, "serial": x.serial, "group": x.group, "address": x.address,
         "ssh_port": x.ssh_port, "version": running_version(m, x),
         "state": link_state(m, x)}
        for x in view.machines
    ]
    groups = [{"name": g, "machines": [x.name for x in view.machines_in(g)]}
              for g in view.groups]
    return {"cluster": view.cluster,
            "addressing": view.addressing.value if view.addressing else None,
            "groups": groups, "machines": machines}


def connstatus(m: Machine) -> list[dict[str, Any]]:
    """Per peer of this machine: state, since when, last error, clock offset."""
    view = _require_member(m)
    core = m.runtime.get("replication")
    names = {x.serial: x.name for x in view.all_machines}
    if core is None:
        return [{"machine": x.name, "serial": x.serial, "state": link_state(m, x),
                 "since_ms": 0, "last_error": "", "clock_offset_ms": 0,
                 "clock_skewed": False, "pending": 0}
                for x in view.machines if x.serial != m.identity.serial]
    rows = []
    for info in core.link_info():
        if view.state_of(info.peer) is AdminState.REMOVED or info.peer not in names:
            continue
        rows.append({"machine": names[info.peer], "serial": info.peer,
                     "state": info.state.value, "since_ms": info.since_ms,
                     "last_error": info.last_error, "clock_offset_ms": info.clock_offset_ms,
                     "clock_skewed": info.clock_skewed, "pending": info.pending})
    return rows


def peer_of(m: Machine, name: str) -> MachineInfo:
    """The member NAME (not this machine), for requests over the peer link."""
    view = _require_member(m)
    target = view.find(name)
    if target.serial == m.identity.serial:
        raise UsageError(f"{name} is this machine")
    return target


def members(m: Machine) -> Iterator[MachineInfo]:
    """The other listed machines."""
    view = _require_member(m)
    return (x for x in view.machines if x.serial != m.identity.serial)
