"""``clusterconfig removemachine`` with real machines: flattening, unreachable, last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.integration.cluster import entries, form, listing, machines, ok, one, states
from tests.integration.conftest import MachineProc, wait_for

pytestmark = pytest.mark.slow


def effective(m: MachineProc) -> dict[str, Any]:
    """Block -> effective value (sources differ by design after flattening)."""
    return {k: v["value"] for k, v in one(m, "showconfig --effective").items()}


def standalone(m: MachineProc) -> bool:
    return listing(m)["cluster"] is None


def test_removed_machine_keeps_its_effective_configuration(tmp_path: Path) -> None:
    """Group and cluster settings, unsubscribe entries included, are flattened into the
    removed machine's own level; it is refused by the remaining members afterwards."""
    a, b, c = machines(tmp_path, 3, start=31)
    try:
        form([a, b, c])
        ok(a, "clusterconfig addgroup edge", f"clusterconfig setgroup {c.hostname} edge")
        ok(a, "smtproutes new base.example --to 10.0.0.5", "commit",
           "clustermode group edge",
           "clusterset copy smtproutes --from cluster --to group:edge",
           "smtproutes new edge.example --to 10.9.9.9",
           "clustermode cluster", "unsubscribe new gone@example.com",
           "unsubscribe new @example.net", "commit")
        wait_for(lambda: "gone@example.com" in entries(c), 15, "the entries on mail3")
        before = effective(c)
        assert any(r["domain"] == "edge.example" for r in before["smtproutes"])
        one(b, f"clusterconfig removemachine {c.hostname}")
        wait_for(lambda: standalone(c), 20, "mail3 to become standalone")
        assert effective(c) == before
        assert sorted(entries(c)) == ["@example.net", "gone@example.com"]
        assert one(c, "showconfig --effective")["smtproutes"]["source"] == (
            f"machine:{c.hostname}")
        for m in (a, b):
            wait_for(lambda m=m: c.hostname not in states(m), 15, "mail3 unlisted")
        # its key is revoked: a commit on the cluster no longer reaches it
        ok(a, "smtproutes new after.example --to 10.0.0.1", "commit")
        wait_for(lambda: "refused unknown machine key" in a.log() + b.log()
                 or "removed from the cluster" in c.log(), 20, "mail3 refused")
        assert "after.example" not in {r["domain"] for r in effective(c)["smtproutes"]}
    finally:
        for m in (a, b, c):
            m.kill()


def test_unreachable_machine_flattens_itself_when_it_returns(tmp_path: Path) -> None:
    """Removing a machine that is down works; it learns of it on its next link."""
    a, b = machines(tmp_path, 2, start=34)
    try:
        form([a, b])
        ok(a, "unsubscribe new old@example.com", "commit")
        wait_for(lambda: "old@example.com" in entries(b), 15, "the entry on mail2")
        before = effective(b)
        b.stop()
        one(a, f"clusterconfig removemachine {b.hostname}")
        assert b.hostname not in states(a)
        b.start()
        wait_for(lambda: standalone(b), 30, "mail2 to learn of its removal")
        assert effective(b) == before and entries(b) == ["old@example.com"]
        r = b.cli("clusterconfig create again")  # its identity stays removed
        assert r.returncode == 1 and "afresh" in r.stderr
        assert b.cli("status").returncode == 0  # and everyone can still log in
    finally:
        for m in (a, b):
            m.kill()


def test_removing_the_last_machine_dissolves_the_cluster(tmp_path: Path) -> None:
    """The only member removes itself: standalone again, behaving as before."""
    (a,) = machines(tmp_path, 1, start=36)
    try:
        one(a, "clusterconfig create solo")
        ok(a, "smtproutes new solo.example --to 10.0.0.1", "commit")
        before = effective(a)
        one(a, f"clusterconfig removemachine {a.hostname}")
        wait_for(lambda: standalone(a), 15, "standalone")
        assert effective(a) == before
        ok(a, "smtproutes new later.example --to 10.0.0.2", "commit")  # still configurable
    finally:
        a.kill()
