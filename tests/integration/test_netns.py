"""Three machines on three network hosts (Linux namespaces on one bridge): a partition
made by taking a link down, commits on both sides, heal and convergence; a SIGKILL in the
middle of applying a replicated changeset (SPEC §5).

Every poll asks each machine everything it needs in one cli session (a cli process costs
most of a second of CPU), the three machines at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.integration.cluster import form, ok, states
from tests.integration.conftest import MachineProc, wait_for
from tests.integration.netns import NetnsMachine, Network, machines
from tests.integration.test_crash import integrity

pytestmark = pytest.mark.slow
T = TypeVar("T")

NAMES = ["mail1.example.com", "mail2.example.com", "mail3.example.com"]
#: a silent peer is noticed in about 8 s (peers.transport keepalives)
NOTICE = 20.0
#: links redial with back-off up to 15 s, then catch up
HEAL = 45.0
UNSUB_LINES = 2_000
#: what ``view`` asks for, in one session
VIEW = {"list": "clusterconfig list", "log": "commitlog --limit 1000",
        "config": "showconfig", "check": "clustercheck", "routes": "smtproutes print",
        "bounce": "bounceconfig print", "dest": "destconfig print",
        "unsub": "unsubscribe print --limit 10000"}


def view(m: MachineProc) -> dict[str, Any]:
    """M's links, commit log, stored configuration, clustercheck and a few blocks."""
    return dict(zip(VIEW, ok(m, *VIEW.values()), strict=True))


def each(ms: Sequence[MachineProc], fn: Callable[[MachineProc], T]) -> list[T]:
    """FN on every machine of MS at once."""
    with ThreadPoolExecutor(len(ms)) as pool:
        return list(pool.map(fn, ms))


def linked(v: dict[str, Any]) -> set[str]:
    """The machines a view lists as connected."""
    return {x["name"] for x in v["list"]["machines"] if x["state"] == "connected"}


def ids(v: dict[str, Any]) -> list[str]:
    """The commit ids of a view's commit log, duplicates kept."""
    return [e["id"] for e in v["log"]["commits"]]


def domains(v: dict[str, Any]) -> list[str]:
    return [r["domain"] for r in v["routes"]["smtproutes"]]


def connected(m: MachineProc) -> bool:
    """Whether M lists every machine, itself included, as connected."""
    return set(states(m).values()) == {"connected"}


def sees_cut(m: MachineProc, cut: MachineProc) -> bool:
    """Whether M has noticed that CUT is cut off (CUT itself: from every other machine)."""
    seen = states(m)
    lost = [n for n in NAMES if n != m.hostname] if m is cut else [cut.hostname]
    return all(seen[n] != "connected" for n in lost)


def converged(ms: Sequence[MachineProc], want: set[str]) -> list[dict[str, Any]] | None:
    """The machines' views once all are linked, hold WANT, store the same configuration
    and find no differences; None before."""
    views = each(ms, view)
    for v in views:
        if linked(v) != set(NAMES) or not want <= set(ids(v)):
            return None
        if v["config"] != views[0]["config"] or v["check"]["differences"]:
            return None
        if sorted(v["check"]["compared"]) != NAMES:
            return None
    return views


def until_converged(ms: Sequence[MachineProc], want: set[str],
                    what: str) -> list[dict[str, Any]]:
    """Poll ``converged``; on a timeout, say how each machine sees its links."""
    views: list[dict[str, Any]] = []

    def done() -> bool:
        views[:] = converged(ms, want) or []
        return bool(views)

    try:
        wait_for(done, HEAL, what)
    except AssertionError as exc:
        links = {m.hostname: states(m) for m in ms}
        raise AssertionError(f"{exc}; links seen: {links}") from None
    return views


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[tuple[Network, list[NetnsMachine]]]:
    """Three machines, one namespace each, in cluster ``prod`` (mail1 created it)."""
    with machines(tmp_path, NAMES) as (net, ms):
        each(ms, lambda m: m.start())
        form(list(ms))
        yield net, ms


def test_partition_commits_on_both_sides_then_heal_converges(
        trio: tuple[Network, list[NetnsMachine]]) -> None:
    """Both sides of a partition accept commits; once healed every machine has both,
    the same configuration, and the concurrent change to one block as a conflict."""
    net, (a, b, c) = trio
    net.cut(c.index)
    wait_for(lambda: all(each([a, b, c], lambda m: sees_cut(m, c))), NOTICE,
             "both sides to notice the partition")

    on_a = ok(a, "bounceconfig setup --max-queue-lifetime 1111",
              "smtproutes new side-a.example --to 192.0.2.1",
              "unsubscribe new a@partition.example", "commit 'side A'")[-1]["committed"]
    on_c = ok(c, "destconfig default --max-connections 7",
              "smtproutes new side-c.example --to 192.0.2.3",
              "unsubscribe new c@partition.example", "commit 'side C'")[-1]["committed"]
    assert on_c not in ids(view(b)) and on_a not in ids(view(c)), "a commit crossed the cut"
    net.restore(c.index)

    for v in until_converged([a, b, c], {on_a, on_c}, "the cluster to converge"):
        assert domains(v) == ["side-c.example"], "the later change to smtproutes wins"
        assert v["bounce"]["bounceconfig"]["max_queue_lifetime"] == 1111
        assert v["dest"]["destconfig"]["default"]["max_connections"] == 7
        assert set(v["unsub"]["entries"]) == {"a@partition.example", "c@partition.example"}
        [conflict] = v["check"]["conflicts"]
        assert (conflict["block"], conflict["level"]) == ("smtproutes", "cluster")
        assert conflict["winner"]["machine"] == c.hostname
        assert conflict["loser"]["machine"] == a.hostname
        assert [r["domain"] for r in conflict["loser"]["value"]] == ["side-a.example"]


def big_commit(m: MachineProc) -> list[str]:
    """A route and a 2,000-entry unsubscribe import in one commit (a chunked changeset)."""
    path = m.data_dir / "unsub.txt"
    path.write_text("".join(f"user{i}@apply.example\n" for i in range(UNSUB_LINES)))
    return ["smtproutes new apply.example --to 192.0.2.9", f"unsubscribe import {path}",
            "commit 'to be applied'"]


def stored(m: MachineProc, cid: str) -> bool:
    """Whether commit CID is in M's store, read from its database (M is not running)."""
    origin, _, seq = cid.rpartition("-")
    db = sqlite3.connect(m.data_dir / "mxcluster.db")
    try:
        row = db.execute("SELECT 1 FROM changesets WHERE origin = ? AND seq = ?",
                         (origin, int(seq))).fetchone()
    finally:
        db.close()
    return row is not None


def test_sigkill_while_applying_a_changeset_then_restart_converges(
        trio: tuple[Network, list[NetnsMachine]]) -> None:
    """A machine killed before the fsync of a replicated changeset gets it again after a
    restart: exactly once, with a sound store and no differences left."""
    _, (a, b, c) = trio
    c.stop()
    c.start(MXCLUSTER_FAILPOINTS="commit.before_fsync=kill")
    wait_for(lambda: all(each([a, c], connected)), HEAL, "C to rejoin the mesh")

    cid = ok(a, *big_commit(a))[-1]["committed"]
    assert c.wait_dead(timeout=30) != 0, "C must die applying the changeset"
    integrity(c.data_dir)
    assert not stored(c, cid), "killed before the fsync, C must not keep the changeset"
    c.start()

    for v in until_converged([a, b, c], {cid}, "C to catch up after its restart"):
        assert ids(v).count(cid) == 1
        assert domains(v).count("apply.example") == 1
        assert v["unsub"]["total"] == UNSUB_LINES
        assert v["check"]["conflicts"] == []
    integrity(c.data_dir)
