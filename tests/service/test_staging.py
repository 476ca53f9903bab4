"""Staging and commit through the service layer: invisible until commit, atomic, checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mxcluster.config.levels import Level
from mxcluster.errors import (
    ConflictError,
    PermissionDenied,
    StateError,
    UsageError,
    ValidationError,
)
from mxcluster.failpoints import FailpointHit
from mxcluster.service.machine import Machine
from mxcluster.service.session import Session
from mxcluster.users.roles import Role

ROUTE_A = [{"domain": "a.example", "hops": ["mx.a.example"]}]
ROUTE_B = [{"domain": "b.example", "hops": ["mx.b.example"]}]


def routes(machine: Machine) -> Any:
    return machine.effective("smtproutes").value


def test_staged_edit_is_invisible_until_commit(machine: Machine, admin: Session) -> None:
    """A staged block changes nothing stored or effective until the session commits."""
    vv = machine.store.version_vector()
    machine.stage_set(admin, "smtproutes", ROUTE_A)
    assert routes(machine) == [] and machine.store.version_vector() == vv
    assert machine.current(admin, "smtproutes") == ROUTE_A  # the session sees its own edit
    machine.commit(admin, "add route")
    assert routes(machine) == ROUTE_A
    assert not admin.dirty


def test_commit_is_one_changeset_with_author_and_comment(machine: Machine,
                                                          admin: Session) -> None:
    """Everything staged becomes one changeset carrying author, machine and comment."""
    machine.stage_set(admin, "smtproutes", ROUTE_A)
    machine.stage_set(admin, "bounceconfig", {"bounce_enabled": False})
    cid = machine.commit(admin, "two blocks")
    entry = machine.store.log_entry(cid)
    assert entry is not None
    assert (entry.author, entry.comment, entry.machine, entry.nops) == (
        "admin", "two blocks", machine.identity.name, 2)
    assert cid.origin == machine.identity.serial


def test_commit_ids_and_timestamps_increase(machine: Machine, admin: Session) -> None:
    """Successive commits get the next sequence number and a later clock reading."""
    ids = []
    for value in (ROUTE_A, ROUTE_B):
        machine.stage_set(admin, "smtproutes", value)
        ids.append(machine.commit(admin))
    assert ids[1].seq == ids[0].seq + 1
    first, second = (machine.store.log_entry(c) for c in ids)
    assert first is not None and second is not None and first.hlc < second.hlc


def test_clear_drops_the_staged_edits(machine: Machine, admin: Session) -> None:
    """After clearing, nothing is staged and commit says so."""
    machine.stage_set(admin, "smtproutes", ROUTE_A)
    admin.clear()
    with pytest.raises(StateError, match="no uncommitted changes"):
        machine.commit(admin)
    assert routes(machine) == []


def test_invalid_value_is_not_staged(machine: Machine, admin: Session) -> None:
    """A value that fails validation raises and leaves the session clean."""
    with pytest.raises(ValidationError):
        machine.stage_set(admin, "smtproutes", [{"domain": "bad..example", "hops": []}])
    assert not admin.dirty


def test_second_session_committing_the_same_block_gets_a_conflict(
        machine: Machine, session_for: Callable[..., Session]) -> None:
    """When a staged block changed underneath, commit refuses and names the block."""
    one, two = session_for(), session_for()
    machine.stage_set(one, "smtproutes", ROUTE_A)
    machine.stage_set(two, "smtproutes", ROUTE_B)
    machine.commit(one)
    vv = machine.store.version_vector()
    with pytest.raises(ConflictError) as err:
        machine.commit(two)
    assert f"smtproutes at machine:{machine.identity.name}" in str(err.value)
    assert "--force" in str(err.value)
    assert routes(machine) == ROUTE_A and machine.store.version_vector() == vv
    assert two.dirty  # the edits are kept for the operator to decide


def test_force_overwrites_the_block_changed_underneath(
        machine: Machine, session_for: Callable[..., Session]) -> None:
    """commit with force writes the session's version over the newer one."""
    one, two = session_for(), session_for()
    machine.stage_set(one, "smtproutes", ROUTE_A)
    machine.stage_set(two, "smtproutes", ROUTE_B)
    machine.commit(one)
    machine.commit(two, force=True)
    assert routes(machine) == ROUTE_B


def test_editing_different_blocks_is_no_conflict(
        machine: Machine, session_for: Callable[..., Session]) -> None:
    """Sessions that stage different blocks both commit."""
    one, two = session_for(), session_for()
    machine.stage_set(one, "smtproutes", ROUTE_A)
    machine.stage_set(two, "bounceconfig", {"bounce_enabled": False})
    machine.commit(one)
    machine.commit(two)
    assert routes(machine) == ROUTE_A
    assert machine.effective("bounceconfig").value["bounce_enabled"] is False


def test_restaging_keeps_the_first_base(machine: Machine,
                                        session_for: Callable[..., Session]) -> None:
    """Editing a staged block again still detects a change made before the first edit."""
    one, two = session_for(), session_for()
    machine.stage_set(two, "smtproutes", ROUTE_B)
    machine.stage_set(one, "smtproutes", ROUTE_A)
    machine.commit(one)
    machine.stage_set(two, "smtproutes", ROUTE_B + ROUTE_A[:0])
    with pytest.raises(ConflictError):
        machine.commit(two)


def test_failpoint_before_fsync_commits_nothing_and_next_commit_works(
        machine: Machine, admin: Session, failpoint: Callable[[str], None],
        state: Callable[[], Any]) -> None:
    """A commit stopped right before its fsync leaves the store as it was; retrying works."""
    before = state()
    machine.stage_set(admin, "smtproutes", ROUTE_A)
    failpoint("commit.before_fsync=raise")
    with pytest.raises(FailpointHit):
        machine.commit(admin)
    assert state() == before
    failpoint("")
    machine.commit(admin)
    assert routes(machine) == ROUTE_A


def test_import_whose_file_changed_fails_the_whole_commit(
        machine: Machine, admin: Session, data_file: Callable[[str, str], Path],
        state: Callable[[], Any]) -> None:
    """If an imported file changed before commit, no op of the changeset is applied."""
    path = data_file("list.txt", "a@example.com\nb@example.com\n")
    machine.stage_set(admin, "smtproutes", ROUTE_A)  # applied before the import's ops
    assert machine.stage_import(admin, path) == 2
    path.write_text("a@example.com\nc@example.com\n")
    before = state()
    with pytest.raises(StateError, match="changed since it was imported"):
        machine.commit(admin)
    assert state() == before
    admin.clear()
    machine.stage_import(admin, path)
    machine.commit(admin)
    assert list(machine.store.unsub_iter(str(machine.self_level))) == [
        "a@example.com", "c@example.com"]


def test_only_admin_may_stage_users(machine: Machine,
                                    session_for: Callable[..., Session]) -> None:
    """The user database refuses every role but admin, whichever path stages it."""
    operator = session_for("op", Role.OPERATOR)
    users = machine.current(operator, "users")
    with pytest.raises(PermissionDenied):
        machine.stage_set(operator, "users", users)
    with pytest.raises(PermissionDenied):
        machine.stage_delete(operator, "users", machine.self_level)
    assert not operator.dirty


def test_standalone_machine_has_only_its_own_level(machine: Machine, admin: Session) -> None:
    """On a standalone machine, staging at cluster or another machine is refused."""
    for level in (Level.cluster(), Level.machine("other.example.com")):
        with pytest.raises(StateError, match="standalone"):
            machine.stage_set(admin, "smtproutes", ROUTE_A, level)
    assert not admin.dirty


def test_table_edits_apply_in_the_order_given(machine: Machine, admin: Session) -> None:
    """add then clear leaves the table empty; clear then add keeps the new entry."""
    level = machine.unsub_level(admin)
    machine.stage_set(admin, "unsubscribe", {"enabled": True, "action": "drop"}, level)
    admin.table(level).add("add", "a@example.com")
    admin.table(level).add("clear")
    admin.table(level).add("add", "b@example.com")
    machine.commit(admin)
    assert list(machine.store.unsub_iter(str(level))) == ["b@example.com"]


class TestClustered:
    """Edits in a cluster (the machine is the only member; see the ``clustered`` fixture)."""

    def test_block_inherited_from_above_is_refused_with_a_hint(self, clustered: Machine,
                                                               admin: Session) -> None:
        """Editing at machine level a block defined at cluster level needs an explicit copy."""
        assert admin.mode == Level.cluster()
        clustered.stage_set(admin, "smtproutes", ROUTE_A)
        clustered.commit(admin)
        with pytest.raises(StateError) as err:
            clustered.current(admin, "smtproutes", clustered.self_level)
        assert "inherits from cluster" in str(err.value)
        assert "clusterset copy smtproutes" in str(err.value)

    def test_block_at_a_level_it_cannot_live_at_is_refused(self, clustered: Machine,
                                                          admin: Session) -> None:
        """A machine-only block cannot be set at cluster level (exit code 2)."""
        with pytest.raises(UsageError) as err:
            clustered.stage_set(admin, "interfaces", [], Level.cluster())
        assert err.value.exit_code == 2
        assert "it lives at: machine" in str(err.value)

    def test_machine_override_resolution(self, clustered: Machine, admin: Session) -> None:
        """machine > cluster > default; an empty machine override wins; deleting it inherits."""
        mine = clustered.self_level
        assert clustered.effective("smtproutes").source is None
        clustered.stage_set(admin, "smtproutes", ROUTE_A, Level.cluster())
        clustered.commit(admin)
        assert clustered.effective("smtproutes").value == ROUTE_A
        clustered.stage_set(admin, "smtproutes", [], mine)
        clustered.commit(admin)
        res = clustered.effective("smtproutes")
        assert (res.value, res.source) == ([], mine)
        clustered.stage_delete(admin, "smtproutes", mine)
        clustered.commit(admin)
        res = clustered.effective("smtproutes")
        assert (res.value, res.source) == (ROUTE_A, Level.cluster())
