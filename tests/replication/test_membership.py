"""Membership as replicated data: the view, validated changes, and settings moves."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mxcluster.config.changeset import Changeset, ChangesetId, Op
from mxcluster.config.hlc import Timestamp
from mxcluster.config.store import Store
from mxcluster.errors import NotFoundError, StateError, UsageError
from mxcluster.membership import (
    MAIN_GROUP,
    Addressing,
    AdminState,
    Candidate,
    StateRecord,
    model,
    moves,
    ops,
)
from mxcluster.membership.states import effective, wins

ME = Candidate("m1.example.com", "AAA", "192.0.2.1", 2222, "SHA256:k1", "1.0")
OTHER = Candidate("m2.example.com", "BBB", "192.0.2.2", 2222, "SHA256:k2", "1.0")
OWN = "machine:m1.example.com"


class Box:
    """A store and a way to commit to it."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.seq = 0

    def apply(self, ops_: Iterable[Op]) -> None:
        self.seq += 1
        ts = Timestamp(1_700_000_000_000 + self.seq, 0, "AAA")
        self.store.apply(Changeset(ChangesetId("AAA", self.seq), ts, "admin", "", "m1", ops_,
                                   context=self.store.version_vector()))

    def view(self) -> model.Membership:
        return model.read(self.store)

    def value(self, level: str, block: str) -> Any:
        row = self.store.block(level, block)
        return None if row is None else row.value


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    """A standalone machine with some settings and unsubscribe entries."""
    b = Box(tmp_path / "m.db")
    b.apply([Op("set", OWN, "interfaces", [{"name": "Management", "ip": "192.0.2.1"}]),
             Op("set", OWN, "smtproutes", [{"domain": "ALL", "to": ["relay"]}]),
             Op("set", OWN, "users", [{"name": "admin"}]),
             Op("set", OWN, "unsubscribe", {"enabled": True}),
             Op("add", OWN, "unsubscribe", entry="a@x.test"),
             Op("add", OWN, "unsubscribe", entry="@y.test")])
    yield b
    b.store.close()


@pytest.fixture
def clustered(box: Box) -> Box:
    """The same machine after 'clusterconfig create prod'."""
    box.apply(moves.create_ops(box.store, box.view(), "prod", Addressing.IP, ME))
    return box


def test_standalone_store_has_no_cluster(box: Box) -> None:
    """A standalone machine's view has no cluster and no machines."""
    view = box.view()
    assert not view.clustered and view.machines == () and not view.is_member("AAA")


def test_create_moves_clusterable_settings_to_cluster_level(clustered: Box) -> None:
    """create: settings go to cluster level; machine-only ones stay; entries move too."""
    b = clustered
    assert b.value("cluster", "smtproutes") == [{"domain": "ALL", "to": ["relay"]}]
    assert b.value("cluster", "users") == [{"name": "admin"}]
    assert b.value(OWN, "smtproutes") is None and b.value(OWN, "users") is None
    assert b.value(OWN, "interfaces") is not None
    assert list(b.store.unsub_iter("cluster")) == ["@y.test", "a@x.test"]
    assert b.store.unsub_count(OWN) == 0
    view = b.view()
    assert (view.cluster, view.addressing, view.groups) == ("prod", Addressing.IP, (MAIN_GROUP,))
    (me,) = view.machines
    assert (me.name, me.group, me.state, me.fingerprint) == (
        ME.name, MAIN_GROUP, AdminState.MEMBER, "SHA256:k1")


def test_create_twice_is_refused(clustered: Box) -> None:
    """create on a machine already in a cluster is refused."""
    with pytest.raises(StateError, match="already in cluster prod"):
        moves.create_ops(clustered.store, clustered.view(), "x", Addressing.IP, ME)


def test_create_refuses_a_bad_name_or_address(box: Box) -> None:
    """create validates the cluster name and the address against the addressing mode."""
    with pytest.raises(UsageError, match="bad cluster name"):
        moves.create_ops(box.store, box.view(), "no spaces", Addressing.IP, ME)
    with pytest.raises(StateError, match="not a host name"):
        moves.create_ops(box.store, box.view(), "prod", Addressing.HOSTNAME, ME)


def test_join_admits_a_machine(clustered: Box) -> None:
    """join records the machine as a member of the first group by default."""
    clustered.apply(ops.join_ops(clustered.view(), OTHER, cluster_version="1.0"))
    other = clustered.view().find(OTHER.name)
    assert (other.serial, other.group, other.address, other.state) == (
        "BBB", MAIN_GROUP, "192.0.2.2", AdminState.MEMBER)


@pytest.mark.parametrize(("joiner", "match"), [
    (Candidate("m2", "BBB", "192.0.2.2", 2222, "k", "2.0"), "runs version 2.0"),
    (Candidate("m2", "BBB", "m2.example.com", 2222, "k", "1.0"), "not an IP address"),
    (Candidate("m1.example.com", "BBB", "192.0.2.2", 2222, "k", "1.0"), "already a member"),
    (Candidate("m2", "AAA", "192.0.2.2", 2222, "k", "1.0"), "already a member"),
])
def test_join_is_refused_with_a_reason(clustered: Box, joiner: Candidate, match: str) -> None:
    """A join with another version, the other addressing, or a taken name/serial is refused."""
    with pytest.raises(StateError, match=match):
        ops.join_ops(clustered.view(), joiner, cluster_version="1.0")


def test_join_into_unknown_group_is_refused(clustered: Box) -> None:
    """Joining into a group that does not exist names the groups there are."""
    with pytest.raises(NotFoundError, match="no group 'G9'"):
        ops.join_ops(clustered.view(), OTHER, cluster_version="1.0", group="G9")


def test_joiner_drops_clusterable_settings(box: Box) -> None:
    """The joiner keeps interfaces but drops its clusterable settings and entries."""
    box.apply(moves.join_local_ops(box.store, ME.name))
    assert box.value(OWN, "interfaces") is not None
    assert box.value(OWN, "smtproutes") is None and box.value(OWN, "users") is None
    assert box.store.unsub_count(OWN) == 0


def test_former_member_cannot_join_without_setup(clustered: Box) -> None:
    """A machine holding another cluster's data must be set up afresh before joining."""
    with pytest.raises(StateError, match="still holds cluster data"):
        list(moves.join_local_ops(clustered.store, ME.name))


def test_prepared_join(clustered: Box) -> None:
    """prepjoin new authorises name+serial+key; the join consumes it; others are refused."""
    b = clustered
    b.apply(ops.prepjoin_new_ops(b.view(), OTHER.name, "BBB", "ssh-ed25519 AAAAC3 m2"))
    ops.check_prepared(b.view(), OTHER.name, "BBB", "ssh-ed25519 AAAAC3")
    with pytest.raises(StateError, match="not pre-authorised"):
        ops.check_prepared(b.view(), OTHER.name, "CCC", "ssh-ed25519 AAAAC3")
    b.apply(ops.join_ops(b.view(), OTHER, cluster_version="1.0"))
    assert b.view().prepjoins == ()
    with pytest.raises(NotFoundError):
        ops.prepjoin_delete_ops(b.view(), OTHER.name)


def test_group_housekeeping(clustered: Box) -> None:
    """addgroup, setgroup and their refusals."""
    b = clustered
    b.apply(ops.addgroup_ops(b.view(), "G2"))
    with pytest.raises(StateError, match="already exists"):
        ops.addgroup_ops(b.view(), "G2")
    b.apply(ops.setgroup_ops(b.view(), ME.name, "G2"))
    assert b.view().group_of(ME.name) == "G2"
    with pytest.raises(NotFoundError, match="no machine 'nope'"):
        ops.setgroup_ops(b.view(), "nope", "G2")
    with pytest.raises(StateError, match="already in group G2"):
        ops.setgroup_ops(b.view(), ME.name, "G2")


def test_renamegroup_carries_machines_and_settings(clustered: Box) -> None:
    """renamegroup moves the group's machines and its group-level settings and entries."""
    b = clustered
    b.apply(ops.addgroup_ops(b.view(), "G2"))
    b.apply(ops.setgroup_ops(b.view(), ME.name, "G2"))
    b.apply([Op("set", "group:G2", "listeners", [{"name": "in"}]),
             Op("set", "group:G2", "unsubscribe", {"enabled": True}),
             Op("add", "group:G2", "unsubscribe", entry="z@z.test")])
    b.apply(moves.renamegroup_ops(b.store, b.view(), "G2", "Edge"))
    assert b.view().groups == (MAIN_GROUP, "Edge")
    assert b.view().group_of(ME.name) == "Edge"
    assert b.value("group:Edge", "listeners") == [{"name": "in"}]
    assert b.value("group:G2", "listeners") is None
    assert list(b.store.unsub_iter("group:Edge")) == ["z@z.test"]
    assert b.store.unsub_count("group:G2") == 0


def test_deletegroup_rules(clustered: Box) -> None:
    """The last group stays; a group with machines needs --to; its settings go with it."""
    b = clustered
    with pytest.raises(StateError, match="last group"):
        moves.deletegroup_ops(b.store, b.view(), MAIN_GROUP)
    b.apply(ops.addgroup_ops(b.view(), "G2"))
    b.apply(ops.setgroup_ops(b.view(), ME.name, "G2"))
    b.apply([Op("set", "group:G2", "listeners", [])])
    with pytest.raises(StateError, match="--to"):
        moves.deletegroup_ops(b.store, b.view(), "G2")
    b.apply(moves.deletegroup_ops(b.store, b.view(), "G2", to=MAIN_GROUP))
    assert b.view().groups == (MAIN_GROUP,)
    assert b.view().group_of(ME.name) == MAIN_GROUP
    assert b.value("group:G2", "listeners") is None


def test_view_keeps_a_group_a_machine_still_sits_in(clustered: Box) -> None:
    """A group deleted while a machine sits in it stays listed (nothing moves silently)."""
    b = clustered
    b.apply(ops.addgroup_ops(b.view(), "G2"))
    b.apply(ops.setgroup_ops(b.view(), ME.name, "G2"))
    b.apply([Op("delete", "cluster", model.block_name("group", "G2"))])
    assert b.view().groups == (MAIN_GROUP, "G2")


def test_communication_checks_the_address(clustered: Box) -> None:
    """communication accepts an address of the cluster's kind and a valid port."""
    b = clustered
    b.apply(ops.communication_ops(b.view(), ME.name, "192.0.2.77", 2200))
    me = b.view().find(ME.name)
    assert (me.address, me.ssh_port) == ("192.0.2.77", 2200)
    with pytest.raises(StateError, match="not an IP address"):
        ops.communication_ops(b.view(), ME.name, "mail.example.com")
    with pytest.raises(UsageError, match="bad port"):
        ops.communication_ops(b.view(), ME.name, "192.0.2.7", 70000)


def test_disconnect_and_reconnect_rules(clustered: Box) -> None:
    """disconnect twice, reconnect of a connected machine, or across versions are refused."""
    b = clustered
    with pytest.raises(StateError, match="not disconnected"):
        ops.reconnect_ops(b.view(), ME.name, "1.0")
    b.apply(ops.disconnect_ops(b.view(), ME.name))
    assert b.view().find(ME.name).state is AdminState.DISCONNECTED
    with pytest.raises(StateError, match="already disconnected"):
        ops.disconnect_ops(b.view(), ME.name)
    with pytest.raises(StateError, match=r"runs version 1\.0"):
        ops.reconnect_ops(b.view(), ME.name, "2.0")
    b.apply(ops.reconnect_ops(b.view(), ME.name, "1.0"))
    assert b.view().find(ME.name).state is AdminState.MEMBER


def test_removal_is_final(clustered: Box) -> None:
    """A removal beats any state record, even a later reconnect; removed machines are unlisted."""
    b = clustered
    b.apply(ops.join_ops(b.view(), OTHER, cluster_version="1.0"))
    b.apply(ops.remove_ops(b.view(), OTHER.name))
    b.apply([Op("set", "cluster", model.block_name("state", "BBB"), {"state": "member"})])
    view = b.view()
    assert view.state_of("BBB") is AdminState.REMOVED and not view.is_member("BBB")
    assert [m.name for m in view.machines] == [ME.name]
    early_removal = StateRecord("0000000000000001.00000.X", AdminState.REMOVED)
    late_member = StateRecord("0000000000000009.00000.X", AdminState.MEMBER)
    assert wins(early_removal, late_member)
    assert effective({"S": late_member}, {"S": early_removal})["S"] is early_removal


def test_flatten_writes_the_effective_config_at_machine_level(clustered: Box) -> None:
    """flatten: every block used (machine > group > cluster) lands at the machine's level."""
    b = clustered
    b.apply([Op("set", "group:Main_Group", "listeners", [{"name": "g"}]),
             Op("set", OWN, "bounceconfig", {"bounce": False})])
    b.apply(moves.flatten_ops(b.store, ME.name, MAIN_GROUP))
    assert b.value(OWN, "listeners") == [{"name": "g"}]
    assert b.value(OWN, "smtproutes") == [{"domain": "ALL", "to": ["relay"]}]
    assert b.value(OWN, "users") == [{"name": "admin"}]
    assert b.value(OWN, "bounceconfig") == {"bounce": False}
    assert list(b.store.unsub_iter(OWN)) == ["@y.test", "a@x.test"]
    assert b.value(OWN, "destconfig") is None  # never defined: the default applies
