"""A deterministic simulated cluster for tests and benchmarks (like ``trio.testing``):
real Stores on SQLite files, a fake network and fake clocks.

Each ``Node`` is one machine: a ``Store`` in its own file, a hybrid clock reading the
simulated wall clock (plus a per-node skew) and a ``Replicator``. The ``Network`` carries
encoded messages (bytes, so the wire codec is exercised) on per-direction FIFO queues and
can deliver in order, out of order, twice or not at all; links come and go with
partitions and crashes, and a link going down loses what was in flight on it.

Nothing here sleeps or uses threads: a test drives every step.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mxcluster.config.changeset import Changeset, ChangesetId, Op
from mxcluster.config.hlc import HybridClock, Timestamp
from mxcluster.config.store import Store
from mxcluster.membership import Addressing, Candidate, model
from mxcluster.membership.moves import create_ops, join_local_ops
from mxcluster.membership.ops import join_ops
from mxcluster.replication import effects as fx
from mxcluster.replication.link import Tunables
from mxcluster.replication.messages import Hello, from_bytes, to_bytes
from mxcluster.replication.replicator import Replicator

VERSION = "1.0"
TUNABLES = Tunables(anti_entropy_ms=10_000, stall_ms=30_000, want_retry_ms=1_000,
                    window=4, chunk_ops=50)


class Wall:
    """The simulated wall clock, in milliseconds."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass
class Node:
    """One simulated machine."""

    index: int
    path: Path
    wall: Wall
    version: str = VERSION
    skew_ms: int = 0
    #: fsync every commit as in production (off: a simulated crash is of the process)
    fsync: bool = False
    tunables: Tunables = TUNABLES
    acked: list[ChangesetId] = field(default_factory=list)
    flattened: list[ChangesetId] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.serial = f"S{self.index:02d}"
        self.name = f"m{self.index}.example.com"
        self.open()

    def now(self) -> int:
        return self.wall.now + self.skew_ms

    def open(self) -> None:
        """Open (or reopen after a crash) the store, clock and replication core."""
        self.store = Store(self.path)
        if not self.fsync:  # a simulated crash is of the process, not of the power
            self.store.db.execute("PRAGMA synchronous=OFF")
        last = self.store.meta("hlc")
        self.clock = HybridClock(self.serial, self.now, Timestamp.decode(last) if last else None)
        self.rep = Replicator(self.store, self.clock, serial=self.serial, name=self.name,
                              version=self.version, wall_ms=self.now, tunables=self.tunables)

    def crash(self) -> None:
        self.rep.close()
        self.store.close()

    def commit(self, ops: Iterable[Op], comment: str = "") -> tuple[ChangesetId, list[fx.Effect]]:
        """Commit OPS here, as the service layer does; returns the id and the effects."""
        cid = ChangesetId(self.serial, self.store.next_seq(self.serial))
        cs = Changeset(cid, self.clock.now(), "admin", comment, self.name, ops,
                       context=self.store.version_vector())
        self.store.apply(cs)
        self.acked.append(cid)
        return cid, self.rep.local_commit(cid)

    def candidate(self) -> Candidate:
        return Candidate(self.name, self.serial, f"192.0.2.{self.index + 1}", 2222,
                         f"SHA256:key{self.index}", self.version)

    def membership(self) -> model.Membership:
        return model.read(self.store)


class Network:
    """Links between nodes, each a pair of FIFO queues of encoded messages."""

    def __init__(self) -> None:
        self.queues: dict[tuple[int, int], deque[bytes]] = {}
        self.links: set[frozenset[int]] = set()
        self.blocked: set[frozenset[int]] = set()

    def busy(self) -> list[tuple[int, int]]:
        return [k for k, q in self.queues.items() if q]

    def drop_link(self, a: int, b: int) -> None:
        self.links.discard(frozenset((a, b)))
        self.queues.pop((a, b), None)
        self.queues.pop((b, a), None)


def _wire(hello: Hello) -> Hello:
    """HELLO as the other end decodes it."""
    decoded = from_bytes(to_bytes(hello))
    assert isinstance(decoded, Hello)
    return decoded


class Cluster:
    """N nodes, a network, and the glue that carries effects."""

    def __init__(self, root: Path, n: int, *, skews: list[int] | None = None,
                 versions: list[str] | None = None, fsync: bool = False,
                 tunables: Tunables = TUNABLES) -> None:
        self.wall = Wall()
        self.net = Network()
        self.nodes = [
            Node(i, root / f"node{i}.db", self.wall,
                 version=(versions or [VERSION] * n)[i], skew_ms=(skews or [0] * n)[i],
                 fsync=fsync, tunables=tunables)
            for i in range(n)
        ]
        self.log: list[fx.Effect] = []

    def close(self) -> None:
        for node in self.nodes:
            node.crash()

    # -- building a cluster --------------------------------------------------------

    def create(self, name: str = "prod", *, join: bool = True) -> None:
        """Node 0 creates the cluster; every other node joins through node 0 (if JOIN)."""
        first = self.nodes[0]
        self.run(first, first.commit(create_ops(first.store, first.membership(), name,
                                                Addressing.IP, first.candidate()))[1])
        for node in self.nodes[1:] if join else []:
            self.join(node, first)
        self.connect_all()
        self.drain()

    def join(self, joiner: Node, via: Node) -> None:
        ops = list(join_local_ops(joiner.store, joiner.name))
        if ops:
            self.run(joiner, joiner.commit(ops, "join")[1])
        admit = join_ops(via.membership(), joiner.candidate(), cluster_version=via.version)
        self.run(via, via.commit(admit, f"join {joiner.name}")[1])
        self.connect(joiner.index, via.index)
        self.drain()  # everyone has heard of the joiner before anyone dials it

    # -- links -----------------------------------------------------------------------

    def connect(self, a: int, b: int) -> None:
        """Bring the link a-b up (both ends exchange hellos), unless blocked or up."""
        pair = frozenset((a, b))
        if a == b or pair in self.net.links or pair in self.net.blocked:
            return
        na, nb = self.nodes[a], self.nodes[b]
        ha, hb = na.rep.hello(), nb.rep.hello()
        self.net.links.add(pair)
        self.net.queues[(a, b)] = deque()
        self.net.queues[(b, a)] = deque()
        # Both ends have each other's hello before either may close the link.
        ea = na.rep.link_up(nb.serial, _wire(hb))
        eb = nb.rep.link_up(na.serial, _wire(ha))
        self.run(na, ea)
        self.run(nb, eb)

    def disconnect(self, a: int, b: int) -> None:
        if frozenset((a, b)) not in self.net.links:
            return
        self.net.drop_link(a, b)
        self.run(self.nodes[a], self.nodes[a].rep.link_down(self.nodes[b].serial))
        self.run(self.nodes[b], self.nodes[b].rep.link_down(self.nodes[a].serial))

    def connect_all(self) -> None:
        for a in range(len(self.nodes)):
            for b in range(a + 1, len(self.nodes)):
                self.connect(a, b)

    def partition(self, side: set[int]) -> None:
        """Cut every link between SIDE and the rest."""
        for a in side:
            for b in range(len(self.nodes)):
                if b not in side:
                    self.net.blocked.add(frozenset((a, b)))
                    self.disconnect(a, b)

    def heal(self) -> None:
        self.net.blocked.clear()
        self.connect_all()

    def crash(self, i: int) -> None:
        """Kill node I and start it again from its store; in-flight messages are lost."""
        for b in range(len(self.nodes)):
            self.disconnect(i, b)
        node = self.nodes[i]
        node.crash()
        node.open()
        self.run(node, node.rep.start())

    # -- carrying effects ------------------------------------------------------------

    def run(self, node: Node, effects: list[fx.Effect]) -> None:
        for effect in effects:
            self.log.append(effect)
            if isinstance(effect, fx.Send):
                peer = self._index(effect.peer)
                queue = self.net.queues.get((node.index, peer))
                if queue is not None:
                    queue.append(to_bytes(effect.message))
            elif isinstance(effect, fx.Close):
                self.disconnect(node.index, self._index(effect.peer))
            elif isinstance(effect, fx.Flattened):
                node.flattened.append(effect.cid)

    def _index(self, serial: str) -> int:
        return int(serial[1:])

    def deliver(self, src: int, dst: int, *, pos: int = 0, keep: bool = False) -> bool:
        """Deliver message POS of the queue src->dst (KEEP: a duplicate stays queued)."""
        queue = self.net.queues.get((src, dst))
        if not queue:
            return False
        pos = min(pos, len(queue) - 1)
        data = queue[pos]
        if not keep:
            del queue[pos]
        node = self.nodes[dst]
        self.run(node, node.rep.receive(self.nodes[src].serial, from_bytes(data)))
        return True

    def deliver_all(self, src: int, dst: int) -> int:
        """Deliver every message queued src->dst in one ``receive_many`` call, as a peer
        link does with all it has buffered; returns how many."""
        queue = self.net.queues.get((src, dst))
        if not queue:
            return 0
        messages = [from_bytes(data) for data in queue]
        queue.clear()
        node = self.nodes[dst]
        self.run(node, node.rep.receive_many(self.nodes[src].serial, messages))
        return len(messages)

    def drop(self, src: int, dst: int) -> None:
        queue = self.net.queues.get((src, dst))
        if queue:
            queue.popleft()

    def drain(self, limit: int = 200_000, *, batched: bool = False) -> int:
        """Deliver everything in order until the network is quiet; returns messages.

        BATCHED: each link's queue at once (``deliver_all``), else one message per link
        per round."""
        count = 0
        while busy := self.net.busy():
            for src, dst in busy:
                if batched:
                    count += self.deliver_all(src, dst)
                else:
                    self.deliver(src, dst)
                    count += 1
            assert count < limit, "the network never went quiet"
        return count

    def tick(self, ms: int) -> None:
        self.wall.advance(ms)
        for node in self.nodes:
            self.run(node, node.rep.tick(node.now()))

    def settle(self, rounds: int = 12) -> None:
        """Heal, then run anti-entropy until nothing changes for two rounds."""
        self.heal()
        quiet, last = 0, None
        for _ in range(rounds):
            self.connect_all()
            self.drain()
            self.tick(TUNABLES.anti_entropy_ms)
            self.drain()
            state = [(dict(n.rep.vv), dict(n.rep.states)) for n in self.nodes]
            quiet = quiet + 1 if state == last else 0
            last = state
            if quiet >= 2:
                return
        raise AssertionError("the cluster did not settle")

    def shuffle_deliver(self, rng: random.Random, steps: int) -> None:
        """Deliver STEPS messages from random links, sometimes out of order."""
        for _ in range(steps):
            busy = self.net.busy()
            if not busy:
                return
            src, dst = rng.choice(busy)
            self.deliver(src, dst, pos=rng.choice([0, 0, 0, 1, 2]))
