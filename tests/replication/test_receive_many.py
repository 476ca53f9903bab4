"""``Replicator.receive_many``: a link's buffered messages at once, one transaction.

Two clusters are built by the same steps (the simulation is deterministic), so their
receiving machines start identical; one is fed a message list with ``receive`` one at a
time, the other with ``receive_many``, and every effect and every table must agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.failpoints import FailpointHit
from mxcluster.membership import ops
from mxcluster.replication import effects as fx
from mxcluster.replication.link import Outbound, Tunables
from mxcluster.replication.messages import Ack, Chunk, Header, Message, Want

from . import checks
from .sim import TUNABLES, Cluster, Node

SET = "smtproutes"


def _backlog(cluster: Cluster) -> None:
    """Node 1 is cut off while node 0 commits small edits, a big import, a group."""
    a = cluster.nodes[0]
    cluster.partition({1})
    for i in range(6):
        cluster.run(a, a.commit([Op("set", "cluster", SET, {"v": i}),
                                 Op("add", "cluster", "unsubscribe", entry=f"e{i}@x")])[1])
    big = [Op("add", "cluster", "unsubscribe", entry=f"u{i}@x") for i in range(120)]
    cluster.run(a, a.commit(big)[1])  # more than one chunk
    cluster.run(a, a.commit(ops.addgroup_ops(a.membership(), "G2"))[1])  # membership
    for i in range(6, 10):
        cluster.run(a, a.commit([Op("set", "cluster", SET, {"v": i})])[1])


def _outbound(sender: Node, receiver: Node) -> tuple[Outbound, Any]:
    """SENDER's outbound queue for what RECEIVER lacks, and its changeset reader."""
    def read(cid: ChangesetId) -> tuple[Header, Any] | None:
        cs = sender.store.changeset(cid)
        return None if cs is None else (Header.of(cs), cs.ops)

    outbound = Outbound()
    outbound.enqueue(sender.store.missing_for(receiver.store.version_vector()), 0)
    return outbound, read


def chunks_for(sender: Node, receiver: Node) -> list[Chunk]:
    """Every chunk SENDER would stream for what RECEIVER lacks, window unbounded."""
    outbound, read = _outbound(sender, receiver)
    return outbound.pump(read, Tunables(window=1 << 30, chunk_ops=TUNABLES.chunk_ops))


@pytest.mark.parametrize(("window", "window_bytes", "first"), [
    (1 << 30, 1 << 30, 14),  # the whole backlog (12 changesets, one of them 3 chunks)
    (1 << 30, 1, 1),         # at least one chunk, however big
    (2, 1 << 30, 2),
])
def test_the_window_bounds_chunks_and_bytes_in_flight(
        make_cluster: Any, window: int, window_bytes: int, first: int) -> None:
    """Chunks go out while both the count and the bytes in flight are under the window."""
    cluster = make_cluster(2)
    _backlog(cluster)
    outbound, read = _outbound(*cluster.nodes)
    tunables = Tunables(window=window, window_bytes=window_bytes, chunk_ops=TUNABLES.chunk_ops)
    assert len(outbound.pump(read, tunables)) == first
    assert outbound.pump(read, tunables) == []  # nothing more until an ack
    outbound.acked(1)
    assert len(outbound.pump(read, tunables)) == (0 if first == 14 else 1)


def _connected(cluster: Cluster) -> Node:
    """Node 1 with its link to node 0 up (its own effects, a reply, are not carried)."""
    a, b = cluster.nodes
    b.rep.link_up(a.serial, a.rep.hello())
    return b


@pytest.fixture
def twins(make_cluster: Any) -> Iterator[Callable[[], tuple[Cluster, Cluster]]]:
    """Two clusters built by the same steps: one fed one by one, one fed at once."""
    def make() -> tuple[Cluster, Cluster]:
        pair = make_cluster(2), make_cluster(2)
        for cluster in pair:
            _backlog(cluster)
        return pair

    yield make


def feed_both(pair: tuple[Cluster, Cluster],
              messages: Callable[[Cluster], list[Message]]) -> list[fx.Effect]:
    """MESSAGES(cluster) to node 1 of each: one by one, then at once; effects must agree."""
    one, many = pair
    b1, b2 = _connected(one), _connected(many)
    singly = [e for m in messages(one) for e in b1.rep.receive(one.nodes[0].serial, m)]
    batched = b2.rep.receive_many(many.nodes[0].serial, messages(many))
    assert batched == singly
    assert checks.config_tables(b2.store) == checks.config_tables(b1.store)
    assert b2.rep.vv == b1.rep.vv == b2.store.version_vector()
    assert b2.store.conflicts(True) == b1.store.conflicts(True)
    assert [e.id for e in b2.store.commitlog(100)] == [e.id for e in b1.store.commitlog(100)]
    return batched


def applied(effects: list[fx.Effect]) -> list[str]:
    return [str(e.cid) for e in effects if isinstance(e, fx.Applied)]


def test_a_backlog_applies_as_one_by_one_would(twins: Any) -> None:
    """Small, multi-chunk and membership changesets: same effects, in the same order."""
    effects = feed_both(twins(), lambda c: list(chunks_for(*c.nodes)))
    assert len(applied(effects)) == 12
    assert any(isinstance(e, fx.MembershipChanged) for e in effects)


def test_disorder_duplicates_and_other_messages_give_the_same_result(twins: Any) -> None:
    """Gaps, repeats, acks and wants in the stream change nothing about the equivalence."""
    def messages(cluster: Cluster) -> list[Message]:
        chunks: list[Message] = list(chunks_for(*cluster.nodes))
        a, b = cluster.nodes
        chunks.insert(1, chunks[3])  # a changeset ahead of its predecessors: asked for
        chunks.insert(5, chunks[5])  # the same changeset twice in a row
        chunks.insert(8, Ack("S01", 1, 0))
        chunks.insert(9, Want(dict(a.rep.vv), cluster.wall.now, a.rep.admin.digest()))
        return chunks + list(chunks_for(a, b))[:4]  # and the start once more

    effects = feed_both(twins(), messages)
    assert any(isinstance(e, fx.Send) and isinstance(e.message, Want) for e in effects)


def test_receiving_the_same_messages_again_applies_nothing(make_cluster: Any) -> None:
    """A second delivery of a whole backlog applies nothing and changes nothing."""
    cluster = make_cluster(2)
    _backlog(cluster)
    a = cluster.nodes[0]
    b = _connected(cluster)
    chunks = chunks_for(a, b)
    first = b.rep.receive_many(a.serial, chunks)
    before = checks.config_tables(b.store), b.store.version_vector()
    again = b.rep.receive_many(a.serial, chunks)
    assert applied(first) and not applied(again)
    # acks, and a request: the rest of a multi-chunk changeset already present is a
    # stream without its start (as with receive)
    assert all(isinstance(e, fx.Send) and isinstance(e.message, Ack | Want) for e in again)
    assert (checks.config_tables(b.store), b.store.version_vector()) == before


def test_a_changeset_before_its_dependency_waits_for_it(make_cluster: Any) -> None:
    """Out of causal order, the later changeset is asked for again, never applied early."""
    cluster = make_cluster(2)
    _backlog(cluster)
    a = cluster.nodes[0]
    b = _connected(cluster)
    first, second, *_ = chunks_for(a, b)
    effects = b.rep.receive_many(a.serial, [second, first])
    assert applied(effects) == [str(first.cid)]
    assert any(isinstance(e, fx.Send) and isinstance(e.message, Want) for e in effects)
    assert applied(b.rep.receive_many(a.serial, [second])) == [str(second.cid)]


def test_a_run_of_changesets_is_one_transaction(
        make_cluster: Any, failpoint: Callable[[str], None]) -> None:
    """A crash right after the first fsync finds the whole run committed together."""
    cluster = make_cluster(2)
    _backlog(cluster)
    a = cluster.nodes[0]
    b = _connected(cluster)
    run = chunks_for(a, b)[:5]
    assert all(c.header is not None and c.last for c in run)
    before = b.store.version_vector()[a.serial]
    failpoint("commit.after_fsync=raise")
    with pytest.raises(FailpointHit):
        b.rep.receive_many(a.serial, run)
    assert b.store.version_vector()[a.serial] == before + 5


def test_a_store_error_falls_back_to_one_by_one(twins: Any) -> None:
    """When the store refuses the batch (locked), each message is received alone instead."""
    pair = twins()
    locks = []
    for cluster in pair:
        node = cluster.nodes[1]
        node.store.db.execute("PRAGMA busy_timeout=0")
        lock = sqlite3.connect(str(node.path), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        locks.append(lock)
    effects = feed_both(pair, lambda c: list(chunks_for(*c.nodes))[:3])
    assert not applied(effects)
    assert any(isinstance(e, fx.Log) and "locked" in e.text for e in effects)
    for lock in locks:
        lock.execute("ROLLBACK")
        lock.close()
    for cluster in pair:  # the link keeps working once the store does
        a, b = cluster.nodes
        assert applied(b.rep.receive_many(a.serial, chunks_for(a, b)))


def test_batched_delivery_converges_like_single_delivery(make_cluster: Any) -> None:
    """A cluster whose links deliver everything buffered at once ends up identical."""
    pair = make_cluster(3), make_cluster(3)
    for cluster, batched in zip(pair, (False, True), strict=True):
        cluster.partition({2})
        _fill(cluster)
        cluster.heal()
        cluster.drain(batched=batched)
    for one, many in zip(*(c.nodes for c in pair), strict=True):
        assert checks.config_tables(one.store) == checks.config_tables(many.store)
        assert one.rep.vv == many.rep.vv
    checks.assert_same_config(pair[1].nodes)


def _fill(cluster: Cluster) -> None:
    a, _, c = cluster.nodes
    for i in range(30):
        node = a if i % 3 else c
        cluster.run(node, node.commit([Op("set", "cluster", SET, {"v": i})])[1])
