"""Crash safety of commits: SIGKILL inside a commit never leaves half a commit behind,
and every acknowledged commit is there after a restart (SPEC §5, brief rule 4)."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from pathlib import Path

import pytest
from tests.integration.conftest import MachineProc

pytestmark = pytest.mark.slow

IMPORT_LINES = 5_000


def routes(machine: MachineProc) -> list[str]:
    out = machine.cli("smtproutes print", json=True)
    assert out.returncode == 0, out.stderr
    return [r["domain"] for r in json.loads(out.stdout)["smtproutes"]]


def integrity(data_dir: Path) -> None:
    """The database is sound and every changeset has exactly the ops it announces."""
    db = sqlite3.connect(data_dir / "mxcluster.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        bad = db.execute(
            "SELECT c.origin, c.seq FROM changesets c LEFT JOIN ops o "
            "ON o.origin = c.origin AND o.seq = c.seq GROUP BY c.origin, c.seq "
            "HAVING count(o.idx) != c.nops").fetchall()
        orphans = db.execute(
            "SELECT count(*) FROM ops o WHERE NOT EXISTS (SELECT 1 FROM changesets c "
            "WHERE c.origin = o.origin AND c.seq = o.seq)").fetchone()[0]
    finally:
        db.close()
    assert bad == [] and orphans == 0


def big_commit(machine: MachineProc) -> list[str]:
    """Stage a route and a 5,000-entry unsubscribe import, then commit (one changeset)."""
    path = machine.data_dir / "unsub.txt"
    path.write_text("".join(f"user{i}@crash.example\n" for i in range(IMPORT_LINES)))
    return ["smtproutes new crash.example --to 192.0.2.7", f"unsubscribe import {path}",
            "commit 'crash'"]


def unsub_total(machine: MachineProc) -> int:
    out = machine.cli("unsubscribe print --limit 1", json=True)
    assert out.returncode == 0, out.stderr
    return int(json.loads(out.stdout)["total"])


def test_kill_before_fsync_leaves_no_trace_of_the_commit(new_machine: MachineProc) -> None:
    """Killed before the commit's fsync: after restart neither route nor entries exist."""
    new_machine.start(MXCLUSTER_FAILPOINTS="commit.before_fsync=kill")
    out = new_machine.cli(*big_commit(new_machine))
    assert out.returncode != 0, "the commit must not be acknowledged"
    assert new_machine.wait_dead() != 0
    new_machine.start()
    integrity(new_machine.data_dir)
    assert "crash.example" not in routes(new_machine)
    assert unsub_total(new_machine) == 0
    again = new_machine.cli("smtproutes new after.example --to 192.0.2.8", "commit")
    assert again.returncode == 0, again.stderr


def test_kill_after_fsync_keeps_the_whole_commit(new_machine: MachineProc) -> None:
    """Killed after the fsync but before the reply: after restart the whole commit is there."""
    new_machine.start(MXCLUSTER_FAILPOINTS="commit.after_fsync=kill")
    out = new_machine.cli(*big_commit(new_machine))
    assert out.returncode != 0, "the process died before it could acknowledge"
    assert new_machine.wait_dead() != 0
    new_machine.start()
    integrity(new_machine.data_dir)
    assert "crash.example" in routes(new_machine)
    assert unsub_total(new_machine) == IMPORT_LINES


def test_acknowledged_commits_survive_sigkill_at_a_random_moment(
        new_machine: MachineProc) -> None:
    """Commits run back to back; SIGKILL at a random moment; every acknowledged one survives."""
    new_machine.start()
    acked: list[str] = []
    stop = threading.Event()

    def committer() -> None:
        for i in range(200):
            if stop.is_set():
                return
            domain = f"d{i}.example"
            out = new_machine.cli(f"smtproutes new {domain} --to 192.0.2.9", "commit")
            if out.returncode != 0:
                return
            acked.append(domain)

    worker = threading.Thread(target=committer)
    worker.start()
    rng = random.Random()
    target = rng.randint(3, 12)
    from tests.integration.conftest import wait_for

    wait_for(lambda: len(acked) >= target or not worker.is_alive(), timeout=120,
             what=f"{target} acknowledged commits")
    new_machine.kill()
    stop.set()
    worker.join(timeout=60)
    new_machine.start()
    integrity(new_machine.data_dir)
    present = set(routes(new_machine))
    assert set(acked) <= present, f"lost: {sorted(set(acked) - present)}"
    assert len(acked) >= target
