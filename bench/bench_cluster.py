"""Clusters over real SSH links: daemon processes on loopback, etcd beside them.

1. **Commit to visible on all peers**, p50/p99, for clusters of 3, 10 and 20 machines,
   each an ``mxcluster serve`` process (full mesh of SSH peer links). One commit at a
   time, the committing machine rotating: ``smtproutes edit`` + ``commit`` in one SSH
   exec on a persistent admin connection. t0 is taken just before that request is sent;
   a peer has the commit when its store holds the changeset (read-only SQLite query from
   this process, every ``--interval``; see ``cluster_harness``); t1 is when the last peer
   has it. The acknowledgement (the exec's reply) is timed from the same t0. With 3
   machines a second series polls the peers over SSH (``commitlog --id``) instead, as an
   administrator would see it.
2. **Catch-up after reconnect**: 3 machines; one is cut off (``clusterconfig disconnect``,
   then, second scenario, stopped with SIGTERM) while the two others make N commits
   (10,000, fed as batches of command lines on a shell's stdin); then ``reconnect`` (or
   start it again) and time until it holds every one of them. The first scenario again
   with 2 machines shows the catch-up from a single sender.
3. **Join of a cluster holding 1,000,000 unsubscribe entries**: ``unsubscribe import`` +
   ``commit`` on the first machine, then ``clusterconfig join`` on a new one, which
   returns once the data is there; its duration, and the joiner's entry count after.
4. **Reference, same run**: a 3-member etcd cluster on loopback (``etcd_reference``), put
   latency and put-to-visible-on-all-members (polled with serializable reads, and from
   watch streams), measured before the mxcluster clusters start (nothing else of ours
   running).

    .venv/bin/python bench/bench_cluster.py                      # everything, full size
    .venv/bin/python bench/bench_cluster.py --machines 3,10,20 --only latency
    .venv/bin/python bench/bench_cluster.py --quick              # smoke run (~1.5 minutes)

Figures are printed and written to ``.bench/cluster.json``; nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_config import write_entries
from cluster_harness import COMMITTED, BenchError, Cluster, Node, loadavg, wait_until
from etcd_reference import measure as measure_etcd
from etcd_reference import percentiles

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".bench"
JSON_OUT = SCRATCH / "cluster.json"
PARTS = ("etcd", "latency", "catchup", "join")

FULL = {"machines": [3, 10, 20], "samples": 200, "ssh_samples": 100, "missed": 10_000,
        "entries": 1_000_000, "puts": 200}
QUICK = {"machines": [3], "samples": 20, "ssh_samples": 10, "missed": 300,
         "entries": 20_000, "puts": 20}
#: the one smtproutes row every commit edits (a block of constant size)
ROUTE = "bench.example"

Figures = dict[str, Any]


def hop(i: int) -> str:
    """A distinct next hop per commit number I."""
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def edit_commit(i: int) -> list[str]:
    return [f"smtproutes edit {ROUTE} --to {hop(i)}", "commit"]


# -- 1. commit to visible on all peers ---------------------------------------------------


def poll_db(peers: list[Node], origin: str, seq: int, interval: float,
            timeout: float = 60) -> tuple[list[float], int]:
    """Check every peer in turn until each holds ORIGIN-SEQ; (when each did, rounds)."""
    pending, seen, rounds = list(peers), [], 0
    deadline = time.perf_counter() + timeout
    while pending:
        for peer in list(pending):
            if peer.has(origin, seq):
                seen.append(time.perf_counter())
                pending.remove(peer)
        rounds += 1
        if pending:
            if time.perf_counter() > deadline:
                raise BenchError(f"{origin}-{seq} missing on {[p.name for p in pending]}")
            time.sleep(interval)
    return seen, rounds


async def poll_ssh(peers: list[Node], origin: str, seq: int) -> tuple[list[float], int]:
    """Ask every peer over SSH, concurrently and back to back; (when each had it, probes)."""
    probes = 0

    async def watch(peer: Node) -> float:
        nonlocal probes
        while True:
            probes += 1
            if await peer.has_ssh(origin, seq):
                return time.perf_counter()

    seen = await asyncio.wait_for(asyncio.gather(*(watch(p) for p in peers)), 60)
    return list(seen), probes


async def one_commit(cluster: Cluster, i: int, probe: str, interval: float) -> Figures:
    """Commit number I on the machine whose turn it is; its timings (seconds)."""
    origin = cluster.nodes[i % len(cluster.nodes)]
    peers = [n for n in cluster.nodes if n is not origin]
    seq = origin.seq_of(origin.serial) + 1
    t0 = time.perf_counter()
    request = asyncio.ensure_future(origin.run(*edit_commit(i)))
    if probe == "db":
        seen, rounds = await asyncio.to_thread(poll_db, peers, origin.serial, seq, interval)
    else:
        seen, rounds = await poll_ssh(peers, origin.serial, seq)
    done = (await request).check("commit")
    got = COMMITTED.search(done.stdout)
    if got is None or (got[1], int(got[2])) != (origin.serial, seq):
        raise BenchError(f"expected commit {origin.serial}-{seq}, got {done.stdout!r}")
    last = max(seen)
    return {"ack": done.at - t0, "first": min(seen) - t0, "all": last - t0,
            "period": (last - t0) / rounds if probe == "db" else 0.0, "probes": rounds}


async def commit_series(cluster: Cluster, start: int, count: int, probe: str,
                        interval: float, gap: float) -> Figures:
    """COUNT commits, one at a time, GAP seconds apart; latency figures and CPU use.

    The CPU each daemon used (``/proc/PID/stat``, 10 ms ticks) is read before each commit
    and after its gap, and charged to the committing machine or to the peers.
    """
    idle = await idle_cpu_share(cluster)
    wall0, self0 = time.perf_counter(), time.process_time()
    runs, origin_cpu, peer_cpu = [], 0.0, 0.0
    for i in range(start, start + count):
        before = [n.cpu_seconds() for n in cluster.nodes]
        runs.append(await one_commit(cluster, i, probe, interval))
        await asyncio.sleep(gap)
        used = [n.cpu_seconds() - b for n, b in zip(cluster.nodes, before, strict=True)]
        at = i % len(cluster.nodes)
        origin_cpu += used[at]
        peer_cpu += sum(used) - used[at]
    wall = time.perf_counter() - wall0
    fig: Figures = {"probe": probe, "commits": count,
                    "visible_all": percentiles([r["all"] for r in runs]),
                    "visible_first": percentiles([r["first"] for r in runs]),
                    "ack": percentiles([r["ack"] for r in runs]),
                    "cpu_ms_per_commit": {
                        "cluster": round((origin_cpu + peer_cpu) / count * 1000, 1),
                        "origin": round(origin_cpu / count * 1000, 1),
                        "each_peer": round(peer_cpu / count / (len(cluster.nodes) - 1) * 1000,
                                           2)},
                    "cluster_cpu_share": round((origin_cpu + peer_cpu) / wall, 2),
                    "idle_cluster_cpu_share": idle,
                    "bench_process_cpu_share": round((time.process_time() - self0) / wall, 2)}
    if probe == "db":
        fig["poll_period_ms"] = percentiles([r["period"] for r in runs])
    else:
        fig["ssh_probes_per_commit"] = round(sum(r["probes"] for r in runs) / count, 1)
    return fig


async def idle_cpu_share(cluster: Cluster, seconds: float = 3.0) -> float:
    """Cores the daemons use with nothing to do (keepalives, ticks, anti-entropy)."""
    cpu0, t0 = cluster.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return round((cluster.cpu_seconds() - cpu0) / (time.perf_counter() - t0), 3)


async def bench_latency(root: Path, n: int, args: argparse.Namespace) -> Figures:
    print(f"latency: {n} machines: setting up ...", flush=True)
    t0 = time.perf_counter()
    cluster = Cluster(root / f"lat{n}", n)
    try:
        await cluster.start()
        started = time.perf_counter() - t0
        joins = await cluster.form()
        mesh = await cluster.meshed(heal_after=args.heal_after)
        await settle_route(cluster)
        fig: Figures = {"machines": n, "start_s": round(started, 1),
                        "join_s": percentiles(joins) if joins else None,
                        "mesh_s": mesh["seconds"], "restarts_to_mesh": mesh["restarts"],
                        "loadavg_before": loadavg()}
        await commit_series(cluster, 1, 10, "db", args.interval, args.gap)  # warm-up
        fig["exec_floor"] = await exec_floor(cluster.first)
        print(f"latency: {n} machines: {args.samples} commits ...", flush=True)
        fig["db"] = await commit_series(cluster, 100, args.samples, "db", args.interval,
                                        args.gap)
        if n <= args.ssh_upto and args.ssh_samples:
            print(f"latency: {n} machines: {args.ssh_samples} commits, SSH probes ...",
                  flush=True)
            fig["ssh"] = await commit_series(cluster, 100_000, args.ssh_samples, "ssh",
                                             args.interval, args.gap)
        fig["loadavg_after"] = loadavg()
        fig["peak_rss_mib_max"] = round(max(nd.peak_rss_mib() for nd in cluster.nodes), 1)
        return fig
    finally:
        await cluster.close()
        if not args.keep:
            cluster.remove()


async def exec_floor(node: Node, count: int = 50) -> Figures:
    """What any command costs through SSH: ``version`` in one exec, COUNT times."""
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        samples.append((await node.run("version")).check("version").at - t0)
    return percentiles(samples)


async def settle_route(cluster: Cluster) -> None:
    """Commit the route the benchmark edits, and wait until every machine has it."""
    first = cluster.first
    (await first.run(f"smtproutes new {ROUTE} --to {hop(0)}", "commit")).check("route")
    seq = first.seq_of(first.serial)
    await wait_until(lambda: all(n.has(first.serial, seq) for n in cluster.nodes), 120,
                     "the first route on every machine")


# -- 2. catch-up after reconnect ------------------------------------------------------------


async def machine_routes(nodes: list[Node]) -> None:
    """Give each of NODES a route of its own, at its machine level, for ``make_commits``."""
    for node in nodes:
        (await node.run(f"clustermode machine {node.name}",
                        f"smtproutes new {ROUTE} --to {hop(0)}", "commit")).check("route")


async def make_commits(nodes: list[Node], total: int, base: int, chunk: int = 1000) -> Figures:
    """TOTAL commits shared among NODES, in parallel, CHUNK per shell session.

    Each machine edits its own machine-level route (``machine_routes``): two machines
    editing one block at once would refuse each other's commits ("changed underneath").
    """

    async def commit_on(node: Node, first: int, count: int) -> None:
        for start in range(first, first + count, chunk):
            n = min(chunk, first + count - start)
            text = f"clustermode machine {node.name}\n" + "".join(
                f"{ln}\n" for i in range(start, start + n) for ln in edit_commit(i))
            done = (await node.batch(text)).check(f"{n} commits on {node.name}")
            if done.stdout.count("Changes committed:") != n:
                raise BenchError(f"{node.name}: fewer than {n} commits: {done.stdout[-300:]}")

    share = total // len(nodes)
    counts = [share + (1 if k < total % len(nodes) else 0) for k in range(len(nodes))]
    starts = [base + sum(counts[:k]) for k in range(len(nodes))]
    t0 = time.perf_counter()
    await asyncio.gather(*(commit_on(nd, s, c)
                           for nd, s, c in zip(nodes, starts, counts, strict=True)))
    seconds = time.perf_counter() - t0
    return {"commits": total, "seconds": round(seconds, 1),
            "commits_per_s": round(total / seconds, 1)}


def holds(node: Node, targets: dict[str, int]) -> int:
    """How many of the changesets up to TARGETS (origin -> seq) NODE is still missing."""
    return sum(max(0, seq - node.seq_of(origin)) for origin, seq in targets.items())


async def time_catch_up(node: Node, targets: dict[str, int], t0: float,
                        timeout: float = 1800) -> Figures:
    """Poll NODE every 10 ms from T0 until it holds TARGETS; first arrival and all."""
    missing0 = holds(node, targets)
    first = None
    deadline = time.perf_counter() + timeout
    while (missing := await asyncio.to_thread(holds, node, targets)) > 0:
        if first is None and missing < missing0:
            first = time.perf_counter()
        if time.perf_counter() > deadline:
            raise BenchError(f"{node.name} still misses {missing} changesets")
        await asyncio.sleep(0.01)
    end = time.perf_counter()
    first = first or end
    return {"missed": missing0, "first_arrival_s": round(first - t0, 3),
            "all_s": round(end - t0, 3), "transfer_s": round(end - first, 3)}


async def disconnected(node: Node, peers: int) -> bool:
    done = await node.run("clusterconfig connstatus --json", timeout=60)
    return done.stdout.count('"state":"disconnected"') == peers


async def scenario_disconnect(cluster: Cluster, missed: int) -> Figures:
    """The last machine is disconnected (``clusterconfig disconnect`` on the first) while
    the others commit; ``reconnect`` brings it back."""
    first, away = cluster.first, cluster.nodes[-1]
    (await first.run(f"clusterconfig disconnect {away.name}")).check("disconnect")
    await wait_until(lambda: disconnected(away, len(cluster.nodes) - 1), 60,
                     f"{away.name} to see itself disconnected", every=0.2)
    fig = await catch_up_around(cluster, missed, 1_000_000, reconnect_disconnected)
    del fig["t0"]
    return fig


async def reconnect_disconnected(cluster: Cluster) -> float:
    away = cluster.nodes[-1]
    done = (await cluster.first.run(f"clusterconfig reconnect {away.name}")).check("reconnect")
    return done.at


async def scenario_restart(cluster: Cluster, missed: int) -> Figures:
    """The last machine is stopped (SIGTERM) while the others commit, then started."""
    away = cluster.nodes[-1]
    away.disconnect()
    away.stop()
    fig = await catch_up_around(cluster, missed, 2_000_000, restart_stopped)
    try:  # every link back (a dialer waits out its back-off, up to 15 s)
        await cluster.meshed(timeout=120, heal_after=None)
        fig["mesh_restored_s"] = round(time.perf_counter() - fig.pop("t0"), 1)
    except BenchError as exc:
        fig["mesh_restored_s"] = str(exc)
    return fig


async def restart_stopped(cluster: Cluster) -> float:
    away = cluster.nodes[-1]
    away.spawn()
    await away.started()
    return time.perf_counter()


async def catch_up_around(cluster: Cluster, missed: int, base: int,
                          rejoin: Callable[[Cluster], Awaitable[float]]) -> Figures:
    """Commit MISSED times on every machine but the last while it is away; bring it back
    with REJOIN; time its catch-up."""
    *writers, away = cluster.nodes
    before = {n.serial: away.seq_of(n.serial) for n in writers}
    print(f"catch-up: {missed:,} commits while {away.name} is away ...", flush=True)
    made = await make_commits(writers, missed, base)
    targets = {n.serial: n.seq_of(n.serial) for n in writers}
    leaked = sum(away.seq_of(o) - s for o, s in before.items())
    t0 = time.perf_counter()
    back = asyncio.ensure_future(rejoin(cluster))
    fig = await time_catch_up(away, targets, t0)
    fig["rejoin_returned_s"] = round(await back - t0, 3)
    if away.conn is None:
        await away.connect()
    fig["links_down_after"] = [f"{x.name}->{y.name}" for x, y in await cluster.links_down()]
    fig["t0"] = t0
    fig["while_away"] = made
    fig["received_while_away"] = leaked
    return fig


async def catchup_cluster(root: Path, n: int, args: argparse.Namespace) -> tuple[
        Cluster, Figures]:
    """N machines meshed, each writer with its own machine-level route."""
    print(f"catch-up: {n} machines: setting up ...", flush=True)
    cluster = Cluster(root / f"catchup{n}", n)
    await cluster.start()
    await cluster.form()
    mesh = await cluster.meshed(heal_after=args.heal_after)
    await machine_routes(cluster.nodes[:-1])
    await settle_route(cluster)
    return cluster, {"machines": n, "restarts_to_mesh": mesh["restarts"],
                     "loadavg_before": loadavg()}


async def bench_catchup(root: Path, args: argparse.Namespace) -> Figures:
    """Two scenarios on 3 machines (two senders), and the first on 2 (one sender)."""
    fig: Figures = {}
    for n, scenarios in ((3, (("disconnect", scenario_disconnect),
                              ("restart", scenario_restart))),
                         (2, (("disconnect_one_sender", scenario_disconnect),))):
        cluster, setup = await catchup_cluster(root, n, args)
        try:
            for name, scenario in scenarios:
                fig[name] = {**setup, **await scenario(cluster, args.missed),
                             "loadavg_after": loadavg()}
        finally:
            await cluster.close()
            if not args.keep:
                cluster.remove()
    return fig


# -- 3. join of a cluster holding 1,000,000 unsubscribe entries --------------------------------


def db_mib(node: Node) -> float:
    return round(sum(p.stat().st_size for p in node.data_dir.glob("mxcluster.db*")) / 2**20, 1)


async def bench_join(root: Path, args: argparse.Namespace) -> Figures:
    print("join: 2 machines: setting up ...", flush=True)
    cluster = Cluster(root / "join", 2)
    a, b = cluster.nodes
    try:
        await cluster.start()
        (await a.run("clusterconfig create bench")).check("create")
        print(f"join: importing {args.entries:,} entries on {a.name} ...", flush=True)
        sample = write_entries(a.data_dir / "unsubscribe.txt", args.entries)
        t0 = time.perf_counter()
        done = (await a.run("unsubscribe import unsubscribe.txt", "commit",
                            timeout=None)).check("import")
        fig: Figures = {"entries_in_file": sample.entries, "lines": sample.lines,
                        "import_commit_s": round(done.at - t0, 1),
                        "entries_stored": a.unsub_count(), "db_mib_first": db_mib(a),
                        "peak_rss_mib_first_after_import": round(a.peak_rss_mib(), 1),
                        "loadavg_before": loadavg()}
        print(f"join: {b.name} joins ...", flush=True)
        fig["join_s"] = round(await cluster.join(b, timeout=3600), 1)
        fig["entries_on_joiner"] = b.unsub_count()
        fig["db_mib_joiner"] = db_mib(b)
        fig["peak_rss_mib_joiner"] = round(b.peak_rss_mib(), 1)
        fig["peak_rss_mib_first_after_join"] = round(a.peak_rss_mib(), 1)
        fig["loadavg_after"] = loadavg()
        return fig
    finally:
        await cluster.close()
        if not args.keep:
            cluster.remove()


# -- report -----------------------------------------------------------------------------------


def environment() -> Figures:
    df = subprocess.run(["df", "-h", str(SCRATCH)], capture_output=True, text=True).stdout
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True,
                           text=True).stdout.split()
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": head, "commit_at_end": None, "src_uncommitted": dirty[1::2],
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "df": df.strip().splitlines()[-1] if df else "",
            "loadavg_start": loadavg()}


def _lat(label: str, f: Figures) -> str:
    return f"  {label:<52} p50 {f['p50']:8.1f} ms   p99 {f['p99']:8.1f} ms   max {f['max']:8.1f} ms"


def _latency_lines(fig: Figures) -> list[str]:
    n = fig["machines"]
    lines = [f"  {n} machines: start {fig['start_s']} s, full mesh {fig['mesh_s']} s after the "
             f"last join, load {fig['loadavg_before']} -> {fig['loadavg_after']}"]
    lines.append(_lat("  SSH exec of 'version' (the floor of any command)", fig["exec_floor"]))
    if fig["restarts_to_mesh"]:
        lines.append(f"  !! restarted to heal links that stayed down: {fig['restarts_to_mesh']}")
    if fig["join_s"]:
        lines.append(_lat("  clusterconfig join (empty cluster), each", fig["join_s"]))
    for probe in ("db", "ssh"):
        if probe not in fig:
            continue
        f = fig[probe]
        lines += [_lat(f"  commit -> visible on all {n - 1} peers ({probe} probe)",
                       f["visible_all"]),
                  _lat("  commit -> visible on the first peer", f["visible_first"]),
                  _lat("  commit acknowledged (exec reply)", f["ack"])]
        if probe == "db":
            lines.append(f"    poll period per peer: p50 {f['poll_period_ms']['p50']:.2f} "
                         f"ms, max {f['poll_period_ms']['max']:.2f} ms")
        else:
            lines.append(f"    SSH probes per commit: {f['ssh_probes_per_commit']}")
        cpu = f["cpu_ms_per_commit"]
        lines.append(f"    CPU per commit: cluster {cpu['cluster']} ms = committing machine "
                     f"{cpu['origin']} ms + {cpu['each_peer']} ms per peer; daemons use "
                     f"{f['cluster_cpu_share']} cores ({f['idle_cluster_cpu_share']} idle), "
                     f"this process {f['bench_process_cpu_share']}")
    return lines


def report(res: Figures) -> str:
    if "env" not in res:
        return "no figures"
    env = res["env"]
    lines = [f"mxcluster cluster benchmark ({env['date']}, {env['cpus']} CPUs, Python "
             f"{env['python']}), load {env['loadavg_start']} -> {env.get('loadavg_end')}",
             f"source at {env['commit']}, uncommitted changes in src: "
             f"{env['src_uncommitted'] or 'none'}"]
    if res.get("etcd"):
        e = res["etcd"]
        lines += ["", f"etcd {e['version']}, {e['members']} members, loopback (reference)",
                  _lat("put (rotating member)", e["put"]),
                  _lat("put -> visible on all members (serializable reads)", e["visible_all"]),
                  _lat("put -> visible on all members (watch streams)",
                       e["visible_all_watch"]),
                  _lat("  put acknowledged, in that series", e["ack"]),
                  f"    poll period: {e['poll_period_ms']} ms"]
    for fig in res.get("latency", []):
        lines += ["", "commit -> visible on all peers", *_latency_lines(fig)]
    if res.get("catchup"):
        for name, f in res["catchup"].items():
            w = f["while_away"]
            lines += ["", f"catch-up ({name}, {f['machines']} machines): {f['missed']:,} "
                      f"missed changesets "
                      f"(made in {w['seconds']} s, {w['commits_per_s']} commits/s; "
                      f"received while away: {f['received_while_away']})",
                      f"  all held after {f['all_s']} s (first after {f['first_arrival_s']} s, "
                      f"transfer {f['transfer_s']} s; rejoin step returned after "
                      f"{f['rejoin_returned_s']} s); links down after: "
                      f"{f['links_down_after'] or 'none'}"]
            if "mesh_restored_s" in f:
                lines.append(f"  every link up again {f['mesh_restored_s']} s after the start")
    if res.get("join"):
        j = res["join"]
        lines += ["", f"join of a cluster holding {j['entries_stored']:,} unsubscribe entries",
                  f"  import + commit on the first machine: {j['import_commit_s']} s",
                  f"  clusterconfig join: {j['join_s']} s; entries on the joiner "
                  f"{j['entries_on_joiner']:,}; joiner peak RSS {j['peak_rss_mib_joiner']} MiB,"
                  f" DB {j['db_mib_joiner']} MiB"]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes")
    p.add_argument("--machines", help="cluster sizes for the latency figure (3,10,20)")
    p.add_argument("--samples", type=int, help="commits per size (200)")
    p.add_argument("--ssh-samples", type=int, help="commits with SSH probes (100)")
    p.add_argument("--ssh-upto", type=int, default=3,
                   help="largest cluster also measured with SSH probes (3)")
    p.add_argument("--missed", type=int, help="commits missed before catch-up (10,000)")
    p.add_argument("--entries", type=int, help="unsubscribe entries for the join (1,000,000)")
    p.add_argument("--puts", type=int, help="etcd puts per figure (200)")
    p.add_argument("--interval", type=float, default=0.001,
                   help="seconds between two polls of the peers' stores (0.001)")
    p.add_argument("--gap", type=float, default=0.05, help="seconds between commits (0.05)")
    p.add_argument("--only", default=",".join(PARTS), help=f"parts to run ({','.join(PARTS)})")
    p.add_argument("--heal-after", type=float, default=20.0,
                   help="restart the dialer of a peer link still down after this many "
                   "seconds of waiting for the full mesh (20)")
    p.add_argument("--no-heal", dest="heal_after", action="store_const", const=None,
                   help="never restart: stop with the links that stayed down")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key in ("samples", "ssh_samples", "missed", "entries", "puts"):
        if getattr(args, key) is None:
            setattr(args, key, sizes[key])
    args.machines = ([int(x) for x in args.machines.split(",")] if args.machines
                     else sizes["machines"])
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.only) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    return args


async def run(args: argparse.Namespace, work: Path, res: Figures) -> None:
    """Run the parts asked for into RES, saving it after each (a failure keeps the rest)."""
    res.update({"env": environment(), "quick": args.quick, "interval_s": args.interval,
                "gap_s": args.gap})
    if "etcd" in args.only:
        print(f"etcd: 3 members, {args.puts} puts per figure ...", flush=True)
        res["etcd"] = await asyncio.to_thread(measure_etcd, args.puts, args.interval)
        save(res)
    if "latency" in args.only:
        res["latency"] = []
        for n in args.machines:
            res["latency"].append(await bench_latency(work, n, args))
            save(res)
    if "catchup" in args.only:
        res["catchup"] = await bench_catchup(work, args)
        save(res)
    if "join" in args.only:
        res["join"] = await bench_join(work, args)
    res["env"]["loadavg_end"] = loadavg()
    res["env"]["commit_at_end"] = environment()["commit"]  # the tree may move under a run
    save(res)


def save(res: Figures) -> None:
    JSON_OUT.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    SCRATCH.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cluster-", dir=SCRATCH))
    res: Figures = {}
    try:
        asyncio.run(run(args, work, res))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        print("\n" + report(res))
    print(f"\nfigures written to {JSON_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
