"""Membership changes as changeset operations, with validation (SPEC §4).

Each function checks the request against the current ``Membership`` view and returns
the operations that make the change; the caller commits them as one changeset (no
``commit`` command is needed for ``clusterconfig``). Errors say what is wrong and what
to do. Changes that move settings between levels (create, renamegroup, deletegroup)
live in ``moves``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mxcluster.config.changeset import Op
from mxcluster.config.levels import valid_name
from mxcluster.errors import NotFoundError, StateError, UsageError
from mxcluster.membership.model import (
    LEVEL,
    MAIN_GROUP,
    Addressing,
    MachineInfo,
    Membership,
    Prepjoin,
    block_name,
)
from mxcluster.membership.states import AdminState

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


@dataclass(frozen=True)
class Candidate:
    """A machine entering the cluster (by ``create`` or ``join``), as it describes itself."""

    name: str
    serial: str
    address: str
    ssh_port: int
    fingerprint: str
    version: str


def _set(kind: str, key: str, value: object) -> Op:
    return Op("set", LEVEL, block_name(kind, key), value)


def machine_ops(c: Candidate, group: str) -> list[Op]:
    """Every record of a new member C placed in GROUP."""
    return [
        _set("machine", c.serial, {"name": c.name, "serial": c.serial,
                                   "fingerprint": c.fingerprint}),
        _set("placement", c.serial, {"group": group}),
        _set("address", c.serial, {"address": c.address, "ssh_port": c.ssh_port}),
        _set("version", c.serial, {"version": c.version}),
        _set("state", c.serial, {"state": AdminState.MEMBER.value}),
    ]


def cluster_ops(name: str, addressing: Addressing, me: Candidate) -> list[Op]:
    """The membership records of a new cluster NAME whose first member is ME."""
    check_name(name, "cluster")
    check_address(addressing, me.address)
    return [
        _set("cluster", "", {"name": name, "addressing": addressing.value}),
        _set("group", MAIN_GROUP, {"name": MAIN_GROUP}),
        *machine_ops(me, MAIN_GROUP),
    ]


def join_ops(m: Membership, joiner: Candidate, *, cluster_version: str,
             group: str | None = None) -> list[Op]:
    """Admit JOINER (run on the member it contacted, whose version is CLUSTER_VERSION)."""
    _need_cluster(m)
    if joiner.version != cluster_version:
        raise StateError(
            f"{joiner.name} runs version {joiner.version}, the cluster runs {cluster_version}",
            hint="upgrade the joining machine to the cluster's version first")
    assert m.addressing is not None
    check_address(m.addressing, joiner.address)
    _check_free(m, joiner)
    target = group or m.groups[0]
    _need_group(m, target)
    ops = machine_ops(joiner, target)
    if m.prepjoin(joiner.name) is not None:
        ops.append(Op("delete", LEVEL, block_name("prepjoin", joiner.name)))
    return ops


def _check_free(m: Membership, joiner: Candidate) -> None:
    for other in m.machines:
        if other.serial == joiner.serial:
            raise StateError(f"{joiner.name} (serial {joiner.serial}) is already a member")
        if other.name == joiner.name:
            raise StateError(f"a machine named {joiner.name!r} is already a member",
                             hint="give the joining machine another name")


def check_prepared(m: Membership, name: str, serial: str, key: str) -> Prepjoin:
    """The authorisation for a ``join --prepared``; StateError when there is none that fits."""
    prep = m.prepjoin(name)
    if prep is None or prep.serial != serial or prep.key.split()[:2] != key.split()[:2]:
        raise StateError(f"{name} (serial {serial}) is not pre-authorised to join",
                         hint="on a member run 'clusterconfig prepjoin new NAME --serial S "
                         "--key KEY' with the output of 'prepjoin print' on the joiner")
    return prep


def prepjoin_new_ops(m: Membership, name: str, serial: str, key: str) -> list[Op]:
    _need_cluster(m)
    check_name(name, "machine")
    if not serial or not key.strip():
        raise UsageError("prepjoin needs the joiner's serial and host key",
                         hint="copy them from 'clusterconfig prepjoin print' on the joiner")
    if any(x.name == name for x in m.machines):
        raise StateError(f"a machine named {name!r} is already a member")
    return [_set("prepjoin", name, {"name": name, "serial": serial, "key": key.strip()})]


def prepjoin_delete_ops(m: Membership, name: str) -> list[Op]:
    if m.prepjoin(name) is None:
        raise NotFoundError(f"no prepared join for {name!r}",
                            hint="see 'clusterconfig prepjoin print'")
    return [Op("delete", LEVEL, block_name("prepjoin", name))]


def addgroup_ops(m: Membership, group: str) -> list[Op]:
    _need_cluster(m)
    check_name(group, "group")
    if group in m.groups:
        raise StateError(f"group {group!r} already exists")
    return [_set("group", group, {"name": group})]


def setgroup_ops(m: Membership, machine: str, group: str) -> list[Op]:
    target = _member(m, machine)
    _need_group(m, group)
    if target.group == group:
        raise StateError(f"{machine} is already in group {group}")
    return [_set("placement", target.serial, {"group": group})]


def setname_ops(m: Membership, name: str) -> list[Op]:
    _need_cluster(m)
    check_name(name, "cluster")
    assert m.addressing is not None
    return [_set("cluster", "", {"name": name, "addressing": m.addressing.value})]


def communication_ops(m: Membership, machine: str, address: str,
                      port: int | None = None) -> list[Op]:
    target = _member(m, machine)
    assert m.addressing is not None
    check_address(m.addressing, address)
    port = target.ssh_port if port is None else port
    if not 0 < port < 65536:
        raise UsageError(f"bad port {port}", hint="give a TCP port between 1 and 65535")
    return [_set("address", target.serial, {"address": address, "ssh_port": port})]


def version_ops(m: Membership, serial: str, version: str) -> list[Op]:
    """Record the software version SERIAL now runs (after an upgrade); [] if unchanged."""
    me = m.by_serial(serial)
    if me is None or me.version == version:
        return []
    return [_set("version", serial, {"version": version})]


def disconnect_ops(m: Membership, machine: str) -> list[Op]:
    target = _member(m, machine)
    if target.state is AdminState.DISCONNECTED:
        raise StateError(f"{machine} is already disconnected",
                         hint=f"'clusterconfig reconnect {machine}' re-attaches it")
    return [_set("state", target.serial, {"state": AdminState.DISCONNECTED.value})]


def reconnect_ops(m: Membership, machine: str, my_version: str,
                  its_version: str | None = None) -> list[Op]:
    """Re-attach MACHINE; refused unless it runs MY_VERSION (the version running this).

    ITS_VERSION is what MACHINE reports on its live link, when there is one (the
    recorded version of a disconnected machine may be out of date).
    """
    target = _member(m, machine)
    if target.state is not AdminState.DISCONNECTED:
        raise StateError(f"{machine} is not disconnected")
    its_version = its_version or target.version
    if its_version != my_version:
        raise StateError(
            f"{machine} runs version {its_version}, this machine runs {my_version}",
            hint="upgrade it (or run reconnect on a machine of its version) first")
    return [_set("state", target.serial, {"state": AdminState.MEMBER.value})]


def remove_ops(m: Membership, machine: str) -> list[Op]:
    """Remove MACHINE for good; it flattens itself when it learns of it.

    Removing the last machine dissolves the cluster: with no member left nobody is in
    it. The cluster record itself is kept: a view that is merely out of date (a
    partition) must never erase the cluster for machines it does not know about.
    """
    target = _member(m, machine)
    return [_set("removed", target.serial, {"state": AdminState.REMOVED.value})]


def check_name(name: str, what: str) -> None:
    if not valid_name(name):
        raise UsageError(f"bad {what} name {name!r}",
                         hint="use letters, digits, '.', '_' and '-' (start with a letter "
                         "or digit)")


def check_address(addressing: Addressing, address: str) -> None:
    """Refuse an address of the wrong kind: a cluster never mixes IPs and host names."""
    try:
        ipaddress.ip_address(address)
        is_ip = True
    except ValueError:
        is_ip = False
    if addressing is Addressing.IP and not is_ip:
        raise StateError(f"{address!r} is not an IP address; this cluster uses IP addressing",
                         hint="give the machine's IP address")
    if addressing is Addressing.HOSTNAME and (is_ip or not _HOSTNAME.match(address)):
        raise StateError(f"{address!r} is not a host name; this cluster uses host names",
                         hint="give a DNS name that resolves to the machine")


def _need_cluster(m: Membership) -> None:
    if not m.clustered:
        raise StateError("this machine is not in a cluster",
                         hint="'clusterconfig create NAME' or 'clusterconfig join HOST'")


def _need_group(m: Membership, group: str) -> None:
    if group not in m.groups:
        raise NotFoundError(f"no group {group!r}",
                            hint="groups: " + ", ".join(m.groups) + "; 'clusterconfig "
                            "addgroup NAME' creates one")


def _member(m: Membership, machine: str) -> MachineInfo:
    _need_cluster(m)
    return m.find(machine)
