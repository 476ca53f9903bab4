"""Rollback: returning blocks and unsubscribe entries to an earlier commit, as a new commit."""

from __future__ import annotations

from typing import Any

import pytest

from mxcluster.config.changeset import Changeset, ChangesetId, Op
from mxcluster.config.hlc import Timestamp
from mxcluster.config.store import Store
from mxcluster.errors import NotFoundError
from mxcluster.service.history import rollback_ops
from mxcluster.service.machine import Machine
from mxcluster.service.session import Session

ROUTE_A = {"domain": "a.example", "hops": ["mx.a.example"]}
ROUTE_B = {"domain": "b.example", "hops": ["mx.b.example"]}


def commit(machine: Machine, admin: Session, routes: list[Any] | None = None,
           add: tuple[str, ...] = (), remove: tuple[str, ...] = (),
           clear: bool = False) -> ChangesetId:
    level = machine.unsub_level(admin) if add or remove or clear else machine.self_level
    if routes is not None:
        machine.stage_set(admin, "smtproutes", routes)
    if clear:
        admin.table(level).add("clear")
    for entry in add:
        admin.table(level).add("add", entry)
    for entry in remove:
        admin.table(level).add("remove", entry)
    return machine.commit(admin)


def snapshot(machine: Machine) -> tuple[Any, Any, list[str]]:
    level = str(machine.self_level)
    return (machine.effective("smtproutes").value, machine.stored(machine.self_level,
            "unsubscribe"), list(machine.store.unsub_iter(level)))


def roll_back(machine: Machine, cid: ChangesetId) -> ChangesetId:
    return machine.apply_local("admin", f"rollback to {cid}", iter(rollback_ops(machine.store,
                                                                                 cid)))


def test_rollback_restores_blocks_and_entries(machine: Machine, admin: Session) -> None:
    """Rolling back to a commit restores its blocks and its unsubscribe table exactly."""
    commit(machine, admin, [ROUTE_A])
    target = commit(machine, admin, [ROUTE_A, ROUTE_B], add=("x@example.com", "y@example.com"))
    wanted = snapshot(machine)
    commit(machine, admin, [ROUTE_B], add=("z@example.com",), remove=("x@example.com",))
    commit(machine, admin, [], clear=True)
    roll_back(machine, target)
    assert snapshot(machine) == wanted


def test_rollback_before_a_block_existed_deletes_it(machine: Machine, admin: Session) -> None:
    """Blocks and tables first defined after the target commit are removed again."""
    target = commit(machine, admin, [ROUTE_A])
    commit(machine, admin, [ROUTE_B], add=("x@example.com",))
    roll_back(machine, target)
    assert snapshot(machine) == ([ROUTE_A], None, [])


def test_rollback_is_a_new_commit(machine: Machine, admin: Session) -> None:
    """Rollback adds a commit; the history before it stays in the log."""
    target = commit(machine, admin, [ROUTE_A])
    later = commit(machine, admin, [ROUTE_B])
    new = roll_back(machine, target)
    assert new.seq == later.seq + 1
    log = [e.id for e in machine.store.commitlog(100)]
    assert log[:3] == [new, later, target]


def test_roll_forward_after_rollback(machine: Machine, admin: Session) -> None:
    """A rollback can itself be undone by rolling back to the commit it reverted."""
    commit(machine, admin, [ROUTE_A])
    target = commit(machine, admin, [ROUTE_A], add=("x@example.com",))
    later = commit(machine, admin, [ROUTE_B], remove=("x@example.com",), add=("y@example.com",))
    wanted = snapshot(machine)
    roll_back(machine, target)
    roll_back(machine, later)
    assert snapshot(machine) == wanted


def test_rollback_with_nothing_changed_since_is_empty(machine: Machine,
                                                      admin: Session) -> None:
    """Rolling back to the latest commit has no operations."""
    latest = commit(machine, admin, [ROUTE_A])
    assert rollback_ops(machine.store, latest) == []


def test_rollback_of_an_unknown_commit_is_an_error(machine: Machine) -> None:
    """An id that is not in the log is NotFoundError pointing at commitlog."""
    with pytest.raises(NotFoundError, match="commitlog"):
        rollback_ops(machine.store, ChangesetId("NOPE", 1))


def test_rollback_replays_a_clear_like_the_store(bare_store: Store) -> None:
    """An add the clear had not seen survives it in the replay too: rolling back to the
    clear's own commit changes nothing in the table."""

    def cs(origin: str, seq: int, wall: int, ctx: dict[str, int], *ops: Op) -> Changeset:
        return Changeset(ChangesetId(origin, seq), Timestamp(wall, 0, origin), "a", "", "m",
                         list(ops), context=ctx)

    level = "cluster"
    add = Op("add", level, "unsubscribe", entry="e@example.com")
    bare_store.apply(cs("A", 1, 5, {}, add))                 # not seen by the clear
    bare_store.apply(cs("B", 1, 10, {}, add))
    bare_store.apply(cs("B", 2, 20, {"B": 1}, Op("clear", level, "unsubscribe",
                                                 context={"B": 1})))
    bare_store.apply(cs("B", 3, 30, {"A": 1, "B": 2},
                        Op("add", level, "unsubscribe", entry="later@example.com")))
    assert list(bare_store.unsub_iter(level)) == ["e@example.com", "later@example.com"]
    assert rollback_ops(bare_store, ChangesetId("B", 2)) == [
        Op("remove", level, "unsubscribe", entry="later@example.com")]
