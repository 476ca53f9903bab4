"""Focused behaviours of the replication core over the simulated cluster."""

from __future__ import annotations

from typing import Any

import pytest

from mxcluster.config.changeset import Op
from mxcluster.errors import StateError
from mxcluster.membership import AdminState, ops
from mxcluster.membership.states import save_notices
from mxcluster.replication import effects as fx
from mxcluster.replication.link import LinkState
from mxcluster.replication.messages import Chunk, Hello, States, Want, from_bytes

from . import checks
from .sim import TUNABLES, Cluster, Node


def commit(cluster: Cluster, node: Node, *ops_: Op) -> None:
    cluster.run(node, node.commit(list(ops_))[1])


def admin(cluster: Cluster, node: Node, make: Any) -> None:
    cluster.run(node, node.commit(make(node.membership()))[1])


def value(node: Node, block: str = "smtproutes", level: str = "cluster") -> Any:
    row = node.store.block(level, block)
    return None if row is None else row.value


def chunks_on_wire(cluster: Cluster) -> list[Chunk]:
    return [m for q in cluster.net.queues.values() for m in map(from_bytes, q)
            if isinstance(m, Chunk)]


def test_commit_is_pushed_to_every_peer(make_cluster: Any) -> None:
    """A commit on any machine is visible on every connected machine after one delivery round."""
    cluster = make_cluster(4)
    commit(cluster, cluster.nodes[2], Op("set", "cluster", "smtproutes", {"v": 1}))
    cluster.drain()
    assert [value(n) for n in cluster.nodes] == [{"v": 1}] * 4


def test_push_goes_once_to_each_peer(make_cluster: Any) -> None:
    """The origin pushes a commit once to each peer; nobody forwards it (no N² traffic)."""
    cluster = make_cluster(5)
    commit(cluster, cluster.nodes[0], Op("set", "cluster", "smtproutes", {"v": 1}))
    assert len(chunks_on_wire(cluster)) == 4
    cluster.drain()
    assert chunks_on_wire(cluster) == []


def test_anti_entropy_sends_exactly_what_is_missing(make_cluster: Any) -> None:
    """After a partition, the reconnecting peers send exactly the changesets the other lacks."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    cluster.partition({1})
    for i in range(7):
        commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": i}))
    commit(cluster, b, Op("set", "cluster", "listeners", {"v": 1}))
    sent: list[Chunk] = []
    cluster.heal()
    while busy := cluster.net.busy():
        for src, dst in busy:
            msg = from_bytes(cluster.net.queues[(src, dst)][0])
            if isinstance(msg, Chunk):
                sent.append(msg)
            cluster.deliver(src, dst)
    assert sorted(str(c.cid) for c in sent) == sorted(
        [f"S00-{s}" for s in range(a.rep.vv["S00"] - 6, a.rep.vv["S00"] + 1)] + ["S01-1"])
    checks.assert_same_config([a, b])


def test_duplicate_delivery_applies_once(make_cluster: Any) -> None:
    """A changeset delivered twice is applied once (idempotent apply)."""
    cluster = make_cluster(2)
    a = cluster.nodes[0]
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 1}))
    cluster.deliver(0, 1, keep=True)
    cluster.deliver(0, 1)
    applied = [e for e in cluster.log if isinstance(e, fx.Applied) and e.cid == a.acked[-1]]
    assert len(applied) == 1


def test_gap_is_not_applied_but_requested(make_cluster: Any) -> None:
    """A changeset whose predecessor is missing waits; the gap is requested and filled in order."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 1}))
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 2}))
    cluster.drop(0, 1)  # the first commit is lost
    cluster.deliver(0, 1)
    assert value(b) is None
    assert isinstance(from_bytes(cluster.net.queues[(1, 0)][-1]), Want)
    cluster.drain()
    assert value(b) == {"v": 2}


def test_large_changeset_streams_in_bounded_chunks(make_cluster: Any) -> None:
    """20,000 entries cross in chunks, a bounded window at a time, and appear all at once."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    entries = [Op("add", "cluster", "unsubscribe", entry=f"u{i}@x.test") for i in range(20_000)]
    commit(cluster, a, Op("set", "cluster", "unsubscribe", {"enabled": True}), *entries)
    peak = 0
    while cluster.net.busy():
        peak = max(peak, len(cluster.net.queues[(0, 1)]))
        if b.store.unsub_count("cluster") not in (0, 20_000):
            pytest.fail("a partial changeset became visible")
        cluster.deliver(0, 1) or cluster.deliver(1, 0)
    assert peak <= TUNABLES.window
    assert b.store.unsub_count("cluster") == 20_000
    assert b.rep.spool.size("S00") == 0


def test_transfer_cut_by_link_loss_completes_after_reconnect(make_cluster: Any) -> None:
    """A changeset half-transferred when the link drops is discarded and sent again in full."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    entries = [Op("add", "cluster", "unsubscribe", entry=f"u{i}@x.test") for i in range(1_000)]
    commit(cluster, a, *entries)
    for _ in range(5):
        cluster.deliver(0, 1)
        cluster.deliver(1, 0)
    cluster.disconnect(0, 1)
    assert b.store.unsub_count("cluster") == 0
    cluster.settle()
    assert b.store.unsub_count("cluster") == 1_000


def test_stalled_transfer_resumes(make_cluster: Any) -> None:
    """Lost acks stall a transfer; it is abandoned and anti-entropy restarts it."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    commit(cluster, a, *[Op("add", "cluster", "unsubscribe", entry=f"e{i}") for i in range(500)])
    cluster.deliver(0, 1)
    cluster.net.queues[(1, 0)].clear()  # the ack is lost: the window never reopens
    cluster.net.queues[(0, 1)].clear()
    cluster.tick(TUNABLES.stall_ms + 1)
    cluster.drain()
    cluster.tick(TUNABLES.anti_entropy_ms)
    cluster.drain()
    assert b.store.unsub_count("cluster") == 500


def test_version_mismatch_carries_control_only(make_cluster: Any) -> None:
    """Peers on different versions show version-mismatch and exchange no configuration."""
    cluster = make_cluster(2, create=False, versions=["1.0", "2.0"])
    cluster.create(join=False)  # join is refused by version, so admit node 1 by hand
    a, b = cluster.nodes
    assert b.serial not in a.rep.states
    cand = b.candidate()
    admin(cluster, a, lambda m: ops.machine_ops(cand, "Main_Group"))
    cluster.connect(0, 1)
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 1}))
    commit(cluster, b, Op("set", "machine:m1.example.com", "hostname", "x"))
    cluster.settle()
    assert a.rep.link_state(b.serial) is LinkState.VERSION_MISMATCH
    assert value(b) is None and b.store.block("cluster", "_membership.cluster") is None
    assert b.rep.states[b.serial].state is AdminState.MEMBER  # control (gossip) did flow


def test_join_refused_on_version_mismatch(make_cluster: Any) -> None:
    """Joining a cluster that runs another version is refused with a clear message."""
    cluster = make_cluster(2, create=False, versions=["1.0", "2.0"])
    with pytest.raises(StateError, match=r"runs version 2\.0"):
        cluster.create()


def test_disconnected_machine_exchanges_nothing(make_cluster: Any) -> None:
    """A disconnected machine receives nothing, not even second-hand, and sends nothing."""
    cluster = make_cluster(3)
    a, b, c = cluster.nodes
    admin(cluster, a, lambda m: ops.disconnect_ops(m, c.name))
    cluster.settle()
    commit(cluster, b, Op("set", "cluster", "smtproutes", {"v": "b"}))
    commit(cluster, c, Op("set", "cluster", "listeners", {"v": "c"}))
    cluster.crash(2)  # the disconnect survives a restart
    cluster.settle()
    assert value(a) == {"v": "b"} and value(c) is None
    assert value(a, "listeners") is None and value(c, "listeners") == {"v": "c"}
    for node in cluster.nodes:
        peers = [n for n in cluster.nodes if n is not node]
        states = {node.rep.link_state(p.serial) for p in peers}
        expected = {LinkState.DISCONNECTED} if node is c else {
            LinkState.CONNECTED, LinkState.DISCONNECTED}
        assert states == expected


def test_disconnect_of_self_is_obeyed_by_everyone(make_cluster: Any) -> None:
    """'disconnect M' run on M itself reaches the others by gossip; they stop syncing with M."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    admin(cluster, b, lambda m: ops.disconnect_ops(m, b.name))
    cluster.settle()
    assert a.rep.states[b.serial].state is AdminState.DISCONNECTED
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 1}))
    cluster.settle()
    assert value(b) is None


def test_reconnect_merges_and_records_the_conflict(make_cluster: Any) -> None:
    """Edits on both sides of a disconnect merge on reconnect; the loser is kept as a conflict."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    admin(cluster, a, lambda m: ops.disconnect_ops(m, b.name))
    cluster.settle()
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": "a"}))
    cluster.wall.advance(5)
    commit(cluster, b, Op("set", "cluster", "smtproutes", {"v": "b"}))
    commit(cluster, b, Op("add", "cluster", "unsubscribe", entry="x@y"))
    admin(cluster, a, lambda m: ops.reconnect_ops(m, b.name, a.version))
    cluster.settle()
    checks.assert_same_config([a, b])
    assert value(a) == {"v": "b"}
    for node in (a, b):
        (conflict,) = node.store.conflicts()
        assert conflict["loser"]["value"] == {"v": "a"}
    assert a.store.unsub_count("cluster") == 1


def test_concurrent_edits_pick_one_winner_everywhere(make_cluster: Any) -> None:
    """Concurrent commits of one block resolve to the same winner on every machine."""
    cluster = make_cluster(3)
    for i, node in enumerate(cluster.nodes):
        commit(cluster, node, Op("set", "cluster", "smtproutes", {"v": i}))
    cluster.settle()
    checks.assert_same_config(cluster.nodes)
    winners = {str(value(n)) for n in cluster.nodes}
    assert len(winners) == 1
    for node in cluster.nodes:
        checks.assert_conflicts_kept(node.store)
        assert len(node.store.conflicts()) >= 2


def test_fast_clock_cannot_push_ours_forward(make_cluster: Any) -> None:
    """A peer whose clock leads by more than the bound is flagged; its changes wait for ours."""
    cluster = make_cluster(2, skews=[0, 60_000])
    a, b = cluster.nodes
    commit(cluster, b, Op("set", "cluster", "smtproutes", {"v": "fast"}))
    cluster.drain()
    assert value(a) is None
    assert a.clock.last.wall_ms < cluster.wall.now + a.clock.max_drift_ms
    info = {i.peer: i for i in a.rep.link_info()}
    assert info[b.serial].clock_skewed
    cluster.tick(61_000)
    cluster.settle()
    assert value(a) == {"v": "fast"}


def test_unknown_peer_is_refused(make_cluster: Any) -> None:
    """A machine that is not a member is refused (link closed) and logged."""
    cluster = make_cluster(2, create=False)
    a = cluster.nodes[0]
    cluster.run(a, a.commit(list(ops.cluster_ops("prod", ops.Addressing.IP, a.candidate())))[1])
    cluster.connect(0, 1)
    assert frozenset((0, 1)) not in cluster.net.links
    assert any(isinstance(e, fx.Close) and "not a member" in e.reason for e in cluster.log)


def test_hello_with_wrong_serial_is_refused(make_cluster: Any) -> None:
    """A hello that names another machine than the authenticated peer closes the link."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    hello = b.rep.hello()
    forged = Hello("S99", hello.name, hello.version, hello.vv, hello.hlc, hello.wall_ms,
                   hello.states)
    effects = a.rep.link_up(b.serial, forged)
    assert any(isinstance(e, fx.Close) for e in effects)


def test_removed_unreachable_machine_flattens_when_it_returns(make_cluster: Any) -> None:
    """An unreachable machine learns of its removal on return, flattens itself, is refused."""
    cluster = make_cluster(3)
    a, b, c = cluster.nodes
    admin(cluster, a, lambda m: ops.addgroup_ops(m, "G2"))
    admin(cluster, a, lambda m: ops.setgroup_ops(m, c.name, "G2"))
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": "cluster"}),
           Op("set", "group:G2", "listeners", {"v": "g2"}),
           Op("set", "cluster", "unsubscribe", {"enabled": True}),
           Op("add", "cluster", "unsubscribe", entry="u@x"))
    cluster.settle()
    cluster.partition({2})
    admin(cluster, a, lambda m: ops.remove_ops(m, c.name))
    cluster.settle()
    assert c.flattened
    checks.assert_flattened(c)
    assert value(c, level="machine:m2.example.com") == {"v": "cluster"}
    assert value(c, "listeners", "machine:m2.example.com") == {"v": "g2"}
    assert list(c.store.unsub_iter("machine:m2.example.com")) == ["u@x"]
    assert not c.membership().is_member(c.serial)
    assert frozenset((0, 2)) not in cluster.net.links
    assert [m.name for m in a.membership().machines] == [a.name, b.name]


def test_removing_the_last_machine_dissolves_the_cluster(make_cluster: Any) -> None:
    """Removing the only machine leaves it standalone with its configuration flattened."""
    cluster = make_cluster(1)
    (a,) = cluster.nodes
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 1}))
    admin(cluster, a, lambda m: ops.remove_ops(m, a.name))
    assert a.flattened
    assert not a.membership().is_member(a.serial)
    assert value(a, level="machine:m0.example.com") == {"v": 1}


def test_flattening_interrupted_by_a_crash_completes_on_start(make_cluster: Any) -> None:
    """A removal learnt just before a crash is flattened when the machine starts again."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": 1}))
    cluster.drain()
    admin(cluster, a, lambda m: ops.remove_ops(m, b.name))
    rec = a.rep.states[b.serial]
    cluster.partition({1})
    save_notices(b.store, {b.serial: rec})  # learnt, then crashed before flattening
    cluster.crash(1)
    assert b.flattened
    checks.assert_flattened(b)


def test_state_gossip_survives_a_lost_message(make_cluster: Any) -> None:
    """A lost state notice is repaired by the periodic digest exchange."""
    cluster = make_cluster(2)
    a, b = cluster.nodes
    admin(cluster, a, lambda m: ops.disconnect_ops(m, b.name))
    queue = cluster.net.queues[(0, 1)]
    assert any(isinstance(from_bytes(m), States) for m in queue)
    queue.clear()
    cluster.settle()
    assert b.rep.states[b.serial].state is AdminState.DISCONNECTED


def test_link_info_reports_each_peer(make_cluster: Any) -> None:
    """link_info lists every peer with its state, since when, and pending changesets."""
    cluster = make_cluster(3)
    a = cluster.nodes[0]
    cluster.disconnect(0, 2)
    info = {i.peer: i for i in a.rep.link_info()}
    assert info["S01"].state is LinkState.CONNECTED
    assert info["S02"].state is LinkState.LINK_DOWN
    assert info["S02"].since_ms == cluster.wall.now


def test_clear_is_order_independent(make_cluster: Any) -> None:
    """A clear and a concurrent re-add of an entry converge to the same table everywhere."""
    cluster = make_cluster(2)
    b, a = cluster.nodes  # the re-adder has the smaller HLC
    commit(cluster, a, Op("add", "cluster", "unsubscribe", entry="e@x"))
    cluster.drain()
    cluster.partition({0})
    commit(cluster, b, Op("add", "cluster", "unsubscribe", entry="e@x"))
    commit(cluster, a, Op("clear", "cluster", "unsubscribe",
                          context=a.store.version_vector()))
    cluster.settle()
    checks.assert_same_config([a, b])


def test_reconnect_syncs_without_waiting_for_anti_entropy(make_cluster: Any) -> None:
    """After reconnect both sides exchange what they lack at once, not at the next period."""
    cluster = make_cluster(3)
    a, b, c = cluster.nodes
    admin(cluster, a, lambda m: ops.disconnect_ops(m, c.name))
    cluster.settle()
    commit(cluster, b, Op("set", "cluster", "smtproutes", {"v": "b"}))
    commit(cluster, c, Op("set", "cluster", "listeners", {"v": "c"}))
    cluster.drain()
    admin(cluster, b, lambda m: ops.reconnect_ops(m, c.name, b.version))
    cluster.drain()  # no tick: nothing periodic runs
    checks.assert_same_config(cluster.nodes)


def test_a_commit_that_saw_both_versions_settles_the_conflict_everywhere(
        make_cluster: Any) -> None:
    """Resolving as clustercheck does (a new write after seeing both) settles every copy."""
    cluster = make_cluster(3)
    a, b, c = cluster.nodes
    cluster.partition({0})
    commit(cluster, a, Op("set", "cluster", "smtproutes", {"v": "a"}))
    commit(cluster, b, Op("set", "cluster", "smtproutes", {"v": "b"}))
    cluster.settle()
    assert all(len(n.store.conflicts()) == 1 for n in cluster.nodes)
    commit(cluster, c, Op("set", "cluster", "smtproutes", {"v": "chosen"}))
    cluster.drain()
    for node in cluster.nodes:
        assert node.store.conflicts() == []
        assert len(node.store.conflicts(include_resolved=True)) == 1
        assert value(node) == {"v": "chosen"}
