"""Three machines on three network hosts (Linux namespaces on one bridge): a partition
made by taking a link down, commits on both sides, heal and convergence; a SIGKILL in the
middle of applying a replicated changeset (SPEC §5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.cluster import (
    commits,
    domains,
    entries,
    form,
    ok,
    one,
    routes,
    states,
)
from tests.integration.conftest import MachineProc, wait_for
from tests.integration.netns import NetnsMachine, Network, machines
from tests.integration.test_crash import integrity

pytestmark = pytest.mark.slow

NAMES = ["mail1.example.com", "mail2.example.com", "mail3.example.com"]
#: a silent peer is noticed in about 8 s (peers.transport keepalives)
NOTICE = 15.0
#: links redial with back-off up to 15 s, then catch up
HEAL = 40.0
UNSUB_LINES = 2_000


def connected(m: MachineProc) -> bool:
    """Whether M lists every machine of the cluster, itself included, as connected."""
    return sorted(n for n, s in states(m).items() if s == "connected") == NAMES


def sees_down(m: MachineProc, others: list[NetnsMachine]) -> bool:
    seen = states(m)
    return all(seen[x.hostname] != "connected" for x in others)


def until(condition: Callable[[], bool], timeout: float, what: str,
          *show: MachineProc) -> None:
    """wait_for CONDITION; on a timeout, say how each machine of SHOW sees its links."""
    try:
        wait_for(condition, timeout, what)
    except AssertionError as exc:
        seen = {m.hostname: states(m) for m in show}
        raise AssertionError(f"{exc}; link states seen: {seen}") from None


def log_ids(m: MachineProc) -> list[str]:
    """The commit ids of M's commitlog, duplicates kept."""
    return [e["id"] for e in one(m, "commitlog --limit 1000")["commits"]]


def check(m: MachineProc) -> dict[str, Any]:
    doc: dict[str, Any] = one(m, "clustercheck")
    return doc


def converged(ms: list[MachineProc], want: set[str]) -> bool:
    """All connected, the same stored configuration, no differences, WANT everywhere."""
    if not all(connected(m) for m in ms):
        return False
    configs = [one(m, "showconfig") for m in ms]
    if any(c != configs[0] for c in configs[1:]):
        return False
    for m in ms:
        report = check(m)
        if report["differences"] or sorted(report["compared"]) != NAMES:
            return False
        if not want <= commits(m):
            return False
    return True


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[tuple[Network, list[NetnsMachine]]]:
    """Three machines, one namespace each, in cluster ``prod`` (mail1 created it)."""
    with machines(tmp_path, NAMES) as (net, ms):
        for m in ms:
            m.start()
        form(list(ms))
        yield net, ms


def test_partition_commits_on_both_sides_then_heal_converges(
        trio: tuple[Network, list[NetnsMachine]]) -> None:
    """Both sides of a partition accept commits; once healed every machine has both,
    the same configuration, and the concurrent change to one block as a conflict."""
    net, (a, b, c) = trio
    net.cut(c.index)
    until(lambda: sees_down(a, [c]) and sees_down(b, [c]), NOTICE, "{A,B} to lose C", a, b)
    until(lambda: sees_down(c, [a, b]), NOTICE, "C to lose A and B", c)

    on_a = ok(a, "bounceconfig setup --max-queue-lifetime 1111",
              "smtproutes new side-a.example --to 192.0.2.1",
              "unsubscribe new a@partition.example", "commit 'side A'")[-1]["committed"]
    on_c = ok(c, "destconfig default --max-connections 7",
              "smtproutes new side-c.example --to 192.0.2.3",
              "unsubscribe new c@partition.example", "commit 'side C'")[-1]["committed"]
    assert on_c not in commits(b) and on_a not in commits(c), "a commit crossed the cut"
    net.restore(c.index)

    until(lambda: converged([a, b, c], {on_a, on_c}), HEAL, "the cluster to converge", a, b, c)
    for m in (a, b, c):
        assert domains(m) == {"side-c.example"}, "the later change to smtproutes wins"
        assert one(m, "bounceconfig print")["bounceconfig"]["max_queue_lifetime"] == 1111
        assert one(m, "destconfig print")["destconfig"]["default"]["max_connections"] == 7
        assert set(entries(m)) == {"a@partition.example", "c@partition.example"}
        [conflict] = check(m)["conflicts"]
        assert (conflict["block"], conflict["level"]) == ("smtproutes", "cluster")
        assert conflict["winner"]["machine"] == c.hostname
        assert conflict["loser"]["machine"] == a.hostname
        assert [r["domain"] for r in conflict["loser"]["value"]] == ["side-a.example"]


def big_commit(m: NetnsMachine) -> list[str]:
    """A route and a 2,000-entry unsubscribe import in one commit (a chunked changeset)."""
    path = m.data_dir / "unsub.txt"
    path.write_text("".join(f"user{i}@apply.example\n" for i in range(UNSUB_LINES)))
    return ["smtproutes new apply.example --to 192.0.2.9", f"unsubscribe import {path}",
            "commit 'to be applied'"]


def test_sigkill_while_applying_a_changeset_then_restart_converges(
        trio: tuple[Network, list[NetnsMachine]]) -> None:
    """A machine killed before the fsync of a replicated changeset gets it again after a
    restart: exactly once, with a sound store and no differences left."""
    _, (a, b, c) = trio
    c.stop()
    c.start(MXCLUSTER_FAILPOINTS="commit.before_fsync=kill")
    until(lambda: connected(c) and connected(a), HEAL, "C to rejoin the mesh", a, c)

    cid = ok(a, *big_commit(a))[-1]["committed"]
    assert c.wait_dead(timeout=30) != 0, "C must die applying the changeset"
    c.start()

    until(lambda: converged([a, b, c], {cid}), HEAL, "C to catch up after its restart", a, b, c)
    integrity(c.data_dir)
    assert log_ids(c).count(cid) == 1
    for m in (a, b, c):
        assert [r["domain"] for r in routes(m)].count("apply.example") == 1
        assert one(m, "unsubscribe print --limit 1")["total"] == UNSUB_LINES
        assert check(m)["conflicts"] == []
