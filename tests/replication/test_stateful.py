"""Hypothesis stateful test of the replication core over a simulated cluster (issue 3).

2-7 machines; commits anywhere (blocks at every level, unsubscribe add / remove /
clear), partitions and healing, disconnect / reconnect / removemachine from any machine,
crashes with restart from disk, and messages duplicated, reordered or lost, or delivered
all at once as a link buffers them (``receive_many``). After healing and anti-entropy:
every connected machine has the same configuration and picks the same winners, no
acknowledged commit is lost, every overwritten concurrent change is kept as a conflict
record, settled exactly when a later write saw both of its versions, and a removed
machine's flattened configuration is what it used.

CI runs 100 examples; for a long local run, e.g.
``MX_EXAMPLES=2000 MX_STEPS=60 .venv/bin/python -m pytest -p no:cacheprovider
tests/replication/test_stateful.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from mxcluster.config.changeset import Op
from mxcluster.errors import MxclusterError
from mxcluster.membership import AdminState, Membership, ops

from . import checks
from .sim import Cluster, Node

BLOCKS = ["smtproutes", "listeners", "bounceconfig", "unsubscribe"]
ENTRIES = ["a@x.test", "@y.test"]
KINDS = ["set", "set", "delete", "add", "add", "remove", "clear"]

node_index = st.integers(min_value=0, max_value=6)
edit = st.tuples(st.sampled_from(KINDS), st.sampled_from([0, 0, 1, 2, 3]), node_index,
                 st.sampled_from(BLOCKS), st.sampled_from(ENTRIES))


class ClusterModel(RuleBasedStateMachine):
    """A cluster under random operations; invariants checked when it has settled."""

    @initialize(n=st.integers(min_value=2, max_value=7))
    def build(self, n: int) -> None:
        # A state machine gets no fixtures: its own temporary directory, removed at teardown.
        self.root = Path(tempfile.mkdtemp(prefix="mxsim-"))
        self.cluster = Cluster(self.root, n)
        self.cluster.create()
        self.removed: set[int] = set()
        self.counter = 0

    def teardown(self) -> None:
        try:
            if hasattr(self, "cluster"):
                self.final_check()
        finally:
            if hasattr(self, "cluster"):
                self.cluster.close()
                shutil.rmtree(self.root, ignore_errors=True)

    def node(self, i: int) -> Node:
        return self.cluster.nodes[i % len(self.cluster.nodes)]

    def alive(self, i: int) -> bool:
        return i % len(self.cluster.nodes) not in self.removed

    # -- configuration ----------------------------------------------------------------

    @rule(i=node_index, edits=st.lists(edit, min_size=1, max_size=3))
    def commit(self, i: int, edits: list[tuple[str, int, int, str, str]]) -> None:
        if not self.alive(i):
            return
        node = self.node(i)
        batch: dict[tuple[str, str, str | None], Op] = {}
        for kind, lvl, j, block, entry in edits:
            level = ["cluster", "group:Main_Group", "group:G2",
                     f"machine:{self.node(j).name}"][lvl]
            op = self._op(node, kind, level, block, entry)
            target = (level, op.block, op.entry if op.op in ("add", "remove") else None)
            batch.setdefault(target, op)
        self.cluster.run(node, node.commit(list(batch.values()))[1])

    def _op(self, node: Node, kind: str, level: str, block: str, entry: str) -> Op:
        self.counter += 1
        if kind == "set":
            return Op("set", level, block, {"v": self.counter})
        if kind == "delete":
            return Op("delete", level, block)
        if kind == "clear":
            return Op("clear", level, "unsubscribe", context=node.store.version_vector())
        return Op(kind, level, "unsubscribe", entry=entry)

    # -- membership ------------------------------------------------------------------

    def _admin(self, by: int, make: Callable[[Membership], list[Op]]) -> bool:
        """Run a membership command on machine BY; False when its view refuses it."""
        node = self.node(by)
        try:
            changes = make(node.membership())
        except MxclusterError:
            return False
        self.cluster.run(node, node.commit(changes)[1])
        return True

    @rule(kind=st.sampled_from(["disconnect", "disconnect", "reconnect", "reconnect",
                                "remove", "addgroup", "setgroup"]),
          who=node_index, by=node_index, group=st.sampled_from(["Main_Group", "G2"]))
    def membership(self, kind: str, who: int, by: int, group: str) -> None:
        """One clusterconfig command about machine WHO, run on machine BY."""
        n = len(self.cluster.nodes)
        if not (self.alive(by) and self.alive(who)):
            return
        target, version = self.node(who).name, self.node(by).version
        if kind == "remove":
            if n - len(self.removed) > 1 and self._admin(
                    by, lambda m: ops.remove_ops(m, target)):
                self.removed.add(who % n)
            return
        make: dict[str, Callable[[Membership], list[Op]]] = {
            "disconnect": lambda m: ops.disconnect_ops(m, target),
            "reconnect": lambda m: ops.reconnect_ops(m, target, version),
            "addgroup": lambda m: ops.addgroup_ops(m, "G2"),
            "setgroup": lambda m: ops.setgroup_ops(m, target, group),
        }
        self._admin(by, make[kind])

    # -- faults ----------------------------------------------------------------------

    @rule(mode=st.sampled_from(["in-order", "in-order", "reorder", "duplicate", "lose",
                                "buffered"]),
          src=node_index, dst=node_index, count=st.integers(1, 40))
    def network(self, mode: str, src: int, dst: int, count: int) -> None:
        """Deliver COUNT messages in order, or one out of order, twice, or not at all, or
        everything buffered on a link at once (``receive_many``)."""
        n = len(self.cluster.nodes)
        src, dst = src % n, dst % n
        if mode == "buffered":
            self.cluster.deliver_all(src, dst)
        elif mode == "in-order":
            for _ in range(count):
                busy = self.cluster.net.busy()
                if not busy:
                    return
                self.cluster.deliver(*busy[0])
        elif mode == "lose":
            self.cluster.drop(src, dst)
        else:
            self.cluster.deliver(src, dst, pos=1 + count % 3 if mode == "reorder" else 0,
                                 keep=mode == "duplicate")

    @rule(side=st.sets(node_index, min_size=1, max_size=3), heal=st.booleans())
    def partition(self, side: set[int], heal: bool) -> None:
        if heal:
            self.cluster.heal()
        else:
            self.cluster.partition({i % len(self.cluster.nodes) for i in side})

    @rule(i=node_index)
    def crash(self, i: int) -> None:
        self.cluster.crash(i % len(self.cluster.nodes))

    @rule(ms=st.sampled_from([200, 1_000, 10_000, 31_000]))
    def tick(self, ms: int) -> None:
        self.cluster.tick(ms)

    @rule()
    def settle_and_check(self) -> None:
        self.cluster.settle()
        self.check()

    # -- invariants ------------------------------------------------------------------

    def check(self) -> None:
        nodes = self.cluster.nodes
        connected = checks.active(nodes)
        checks.assert_same_config(connected)
        checks.assert_nothing_lost(nodes, connected)
        for node in nodes:
            checks.assert_conflicts_kept(node.store)
            checks.assert_conflicts_settled(node.store)
            if node.rep.states.get(node.serial, None) is not None and (
                    node.rep.states[node.serial].state is AdminState.REMOVED):
                assert node.flattened or node.store.meta("replication.flattened")
                checks.assert_flattened(node)

    def final_check(self) -> None:
        """Settle and check; then reconnect every disconnected machine, settle, check."""
        self.cluster.settle()
        self.check()
        members = [n for n in self.cluster.nodes if n.index not in self.removed]
        for node in members:
            self._admin(members[0].index, lambda m, name=node.name, version=node.version:
                        ops.reconnect_ops(m, name, version))
        self.cluster.settle()
        self.check()
        assert len(checks.active(self.cluster.nodes)) == len(members)


ClusterModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("MX_EXAMPLES", "100")),
    stateful_step_count=int(os.environ.get("MX_STEPS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCluster = ClusterModel.TestCase
