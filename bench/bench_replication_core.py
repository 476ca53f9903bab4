"""Replication core benchmark (issue 3): the protocol's own cost, over an in-memory network.

1. commit-to-visible-on-all latency, p50/p99, for clusters of 50 and 100 machines. The
   machines are simulated in one process (``mxcluster.replication.testing``) with a
   discrete-event model: each machine handles one message at a time, taking the real
   (measured) time of its ``Replicator.receive`` call including the SQLite apply;
   messages take ``--net-us`` microseconds on the wire; machines work in parallel.
   Stores skip fsync here (the protocol's cost, not the disk's); the objects built during
   setup are frozen out of the garbage collector (one process simulates every machine).
2. catch-up after reconnect: a machine that missed N commits (10,000) reconnects; wall
   time until it has them all, with fsync off and on (``--fsync-catchup N``), each both
   ways the I/O layer can deliver: one message per ``receive`` call, and everything
   buffered on a link in one ``receive_many`` call (runs of changesets applied in one
   store transaction, one fsync each).

    .venv/bin/python bench/bench_replication_core.py           # 50 and 100 machines
    .venv/bin/python bench/bench_replication_core.py --quick   # seconds

Figures are printed and written to ``.bench/replication_core.json``. Nothing asserts.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.replication.link import Tunables
from mxcluster.replication.testing import Cluster, Node

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".bench"
JSON_OUT = SCRATCH / "replication_core.json"


def _key(cid: ChangesetId) -> tuple[str, int]:
    return cid.origin, cid.seq


def _has(node: Node, origin: str, seq: int) -> bool:
    return node.rep.vv.get(origin, 0) >= seq


def one_commit(cluster: Cluster, origin: Node, value: int, net_us: float) -> float:
    """Commit on ORIGIN; simulated ms until every other machine has applied it."""
    busy = {n.index: 0.0 for n in cluster.nodes}
    events: list[tuple[float, int, int, int]] = []
    order = 0

    def collect(src: int, at: float, before: dict[tuple[int, int], int]) -> None:
        nonlocal order
        for (s, d), q in cluster.net.queues.items():
            if s == src:
                for _ in range(len(q) - before.get((s, d), 0)):
                    order += 1
                    heapq.heappush(events, (at + net_us / 1000, order, s, d))

    before = {k: len(q) for k, q in cluster.net.queues.items()}
    start = time.perf_counter()
    cid, effects = origin.commit([Op("set", "cluster", "smtproutes", {"v": value})])
    cluster.run(origin, effects)
    busy[origin.index] = (time.perf_counter() - start) * 1000
    collect(origin.index, busy[origin.index], before)
    seen: dict[int, float] = {}
    while events:
        at, _, src, dst = heapq.heappop(events)
        begin = max(at, busy[dst])
        before = {k: len(q) for k, q in cluster.net.queues.items()}
        t0 = time.perf_counter()
        cluster.deliver(src, dst)
        busy[dst] = begin + (time.perf_counter() - t0) * 1000
        if dst != origin.index and dst not in seen and _has(cluster.nodes[dst], *_key(cid)):
            seen[dst] = busy[dst]
        collect(dst, busy[dst], before)
    assert len(seen) == len(cluster.nodes) - 1, "a machine missed the commit"
    return max(seen.values())


def latency(n: int, commits: int, net_us: float, root: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    (root / f"lat{n}").mkdir()
    cluster = Cluster(root / f"lat{n}", n)
    cluster.create()
    setup_s = time.perf_counter() - t0
    # One process holds every simulated machine's heap; a full GC of all of it would be
    # charged to whichever machine it interrupts. Freeze the setup's objects so that
    # only what one machine allocates is collected, as in a real one-machine process.
    gc.collect()
    gc.freeze()
    rng = random.Random(n)
    samples = [one_commit(cluster, rng.choice(cluster.nodes), i, net_us)
               for i in range(commits)]
    cluster.close()
    gc.unfreeze()
    q = statistics.quantiles(samples, n=100)
    return {"machines": n, "commits": commits, "net_us": net_us, "setup_s": round(setup_s, 2),
            "p50_ms": round(statistics.median(samples), 3), "p99_ms": round(q[98], 3),
            "max_ms": round(max(samples), 3)}


def catch_up(missed: int, fsync: bool, batched: bool, root: Path) -> dict[str, Any]:
    where = root / (f"catchup-{missed}-{'fsync' if fsync else 'nosync'}"
                    f"-{'many' if batched else 'one'}")
    where.mkdir()
    cluster = Cluster(where, 2, fsync=fsync, tunables=Tunables())  # as in production
    cluster.create()
    a, b = cluster.nodes
    cluster.partition({1})
    a.store.db.execute("PRAGMA synchronous=OFF")  # building the backlog is not measured
    for i in range(missed):
        a.commit([Op("set", "cluster", "smtproutes", {"v": i})])
    t0 = time.perf_counter()
    cluster.heal()
    messages = cluster.drain(limit=50 * missed + 1000, batched=batched)
    elapsed = time.perf_counter() - t0
    assert b.rep.vv == a.rep.vv
    cluster.close()
    return {"missed": missed, "fsync": fsync, "delivery": "receive_many" if batched
            else "receive", "window": Tunables().window, "seconds": round(elapsed, 3),
            "messages": messages, "per_commit_ms": round(elapsed * 1000 / missed, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 and 20 machines, 1,000 missed")
    ap.add_argument("--machines", type=int, nargs="*", default=[50, 100])
    ap.add_argument("--commits", type=int, default=200, help="commits per latency run")
    ap.add_argument("--net-us", type=float, default=100.0, help="one-way network delay")
    ap.add_argument("--missed", type=int, default=10_000)
    ap.add_argument("--fsync-catchup", type=int, default=1_000,
                    help="missed commits for the catch-up run with fsync (0: skip)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if args.quick:
        args.machines, args.commits, args.missed, args.fsync_catchup = [10, 20], 50, 1_000, 100
    SCRATCH.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="replication-", dir=SCRATCH))
    results: dict[str, Any] = {"load_start": os.getloadavg(), "latency": [], "catch_up": []}
    try:
        for n in args.machines:
            row = latency(n, args.commits, args.net_us, root)
            results["latency"].append(row)
            print(f"commit-to-visible-on-all  {n:4d} machines  p50 {row['p50_ms']:8.3f} ms"
                  f"  p99 {row['p99_ms']:8.3f} ms  (setup {row['setup_s']} s)")
        runs = [(args.missed, False)] + ([(args.fsync_catchup, True)]
                                         if args.fsync_catchup else [])
        for (missed, fsync), batched in itertools.product(runs, (False, True)):
            row = catch_up(missed, fsync, batched, root)
            results["catch_up"].append(row)
            print(f"catch-up of {missed:6d} missed commits, fsync {'on ' if fsync else 'off'}"
                  f", {row['delivery']:<12}  {row['seconds']:8.3f} s"
                  f"  ({row['per_commit_ms']} ms per commit)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results["load_end"] = os.getloadavg()
    JSON_OUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
