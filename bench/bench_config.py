"""Configuration engine benchmarks (issue 2).

1. commit latency of small commits, side by side with a bare SQLite WAL + synchronous=FULL
   one-row commit loop on the same disk, in the same run (interleaved);
2. import of N unsubscribe entries: staging (validation), commit, peak memory, DB size;
3. match latency of ``Machine.unsubscribed`` against the big table and an empty one;
4. ``unsubscribe export``, ``saveconfig`` and ``unsubscribe print`` paging through the shell.

Figures are printed as a table and written to ``.bench/config.json``. Timings are wall
clock (``time.perf_counter_ns``); nothing here asserts a timing.

    .venv/bin/python bench/bench_config.py            # full size (1,000,000 entries)
    .venv/bin/python bench/bench_config.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxcluster.config.store import Store
from mxcluster.provision.setup import DB_FILE, MachineFile, setup_machine
from mxcluster.service.machine import Identity, Machine
from mxcluster.service.session import Session
from mxcluster.shell.core import Shell
from mxcluster.users.roles import Role

ROOT = Path(__file__).resolve().parents[1]
#: scratch space on the repository's disk: fsync cost is the disk's, not a tmpfs's
SCRATCH = ROOT / ".bench"
JSON_OUT = SCRATCH / "config.json"

FULL = {"entries": 1_000_000, "commits": 1_000, "lookups": 10_000, "pages": 200}
QUICK = {"entries": 20_000, "commits": 100, "lookups": 1_000, "pages": 20}

Figures = dict[str, Any]


# -- measuring ------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile P (0-100) of SAMPLES."""
    ordered = sorted(samples)
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency(samples_ns: list[int], unit: str = "ms") -> Figures:
    """p50/p99/mean/max of SAMPLES_NS converted to UNIT ("ms" or "us")."""
    scale = {"ms": 1e6, "us": 1e3}[unit]
    vals = [s / scale for s in samples_ns]
    return {"unit": unit, "n": len(vals), "p50": percentile(vals, 50),
            "p99": percentile(vals, 99), "mean": statistics.fmean(vals), "max": max(vals)}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of FN()."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def max_rss_mib() -> float:
    """This process's resident-set high-water mark (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's current resident set, from /proc (0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def file_mib(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 2**20


# -- the machine under test -------------------------------------------------------------


def new_machine(data_dir: Path) -> tuple[Machine, Session]:
    """A freshly set-up machine (as ``mxcluster setup`` makes it) and an admin session."""
    setup_machine(data_dir, "bench.example.com", "192.0.2.10",
                  admin_password="bench-password-1")
    info = MachineFile.read(data_dir)
    machine = Machine(Store(data_dir / DB_FILE), Identity(info.name, info.serial, data_dir))
    return machine, Session("admin", Role.ADMIN, machine.default_mode())


def shell_run(shell: Shell, line: str) -> str:
    """Run LINE in SHELL; a failing command aborts the benchmark."""
    outcome = shell.execute(line)
    if outcome.exit_code != 0:
        raise RuntimeError(f"{line!r} failed ({outcome.exit_code}): {outcome.stderr}")
    return outcome.stdout


# -- 1. commit latency ------------------------------------------------------------------


class BareSqlite:
    """The reference: one-row INSERT per transaction, WAL, the given synchronous mode."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, body TEXT)")

    def __call__(self, i: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO log (body) VALUES (?)", (f"route d{i}.example.com" * 4,))
        self.db.execute("COMMIT")


class MachineCommit:
    """One small commit: ``smtproutes`` set to a one-route value, staged and committed."""

    def __init__(self, machine: Machine, session: Session) -> None:
        self.machine, self.session = machine, session

    def __call__(self, i: int) -> None:
        value = [{"domain": f"d{i}.example.com", "hops": ["mx.example.net"]}]
        self.machine.stage_set(self.session, "smtproutes", value)
        self.machine.commit(self.session, f"bench {i}")


def bench_commits(work: Path, n: int, machine: Machine, session: Session) -> Figures:
    """Interleave the committers so that each meets the same disk and page-cache state."""
    nosync, nosync_session = new_machine(work / "nosync")
    nosync.store.db.execute("PRAGMA synchronous=OFF")
    committers: dict[str, Callable[[int], None]] = {
        "mxcluster": MachineCommit(machine, session),
        "sqlite": BareSqlite(work / "bare.db"),
        "mxcluster_nosync": MachineCommit(nosync, nosync_session),
        "sqlite_nosync": BareSqlite(work / "bare-nosync.db", "OFF"),
    }
    samples: dict[str, list[int]] = {name: [] for name in committers}
    t0 = time.perf_counter()
    for i in range(n):
        for name, commit in committers.items():
            start = time.perf_counter_ns()
            commit(i)
            samples[name].append(time.perf_counter_ns() - start)
    wall = time.perf_counter() - t0
    nosync.store.close()
    out = {name: latency(s) for name, s in samples.items()}
    for fig in out.values():
        fig["per_s"] = 1000 / fig["mean"]
    out["ratio_p50"] = out["mxcluster"]["p50"] / out["sqlite"]["p50"]
    out["ratio_p99"] = out["mxcluster"]["p99"] / out["sqlite"]["p99"]
    out["wall_s"] = wall
    return out


# -- 2. import --------------------------------------------------------------------------

TLDS = ("com", "net", "org", "de", "fr", "co.uk", "nl", "io", "example")
WORDS = ("mail", "shop", "acme", "north", "blue", "data", "city", "post", "alpha", "delta",
         "green", "river", "stone", "cloud", "metro", "union", "pixel", "solar")
NAMES = ("anna", "bob", "chen", "dara", "eva", "farid", "gus", "hana", "ivan", "jo", "kim",
         "lena", "max", "nora", "omar", "pia", "raj", "sara", "tom", "ute", "yuki", "zoe")
#: share of each entry form in the generated file (cumulative draw, in this order)
MIX = (("user@domain", 0.80), ("@domain", 0.06), ("@.domain", 0.04), ("user@", 0.05),
       ("ipv4", 0.04), ("ipv6", 0.01))


@dataclass
class EntrySample:
    """Entries kept while generating the file, to build hits for the match benchmark."""

    by_kind: dict[str, list[str]] = field(default_factory=dict)
    lines: int = 0
    entries: int = 0

    def keep(self, rng: random.Random, kind: str, entry: str, cap: int = 5_000) -> None:
        kept = self.by_kind.setdefault(kind, [])
        if len(kept) < cap and rng.random() < 0.02:
            kept.append(entry)


def _entry(rng: random.Random, kind: str, i: int) -> str:
    """Entry number I of KIND; the counter I makes every generated entry distinct."""
    domain = f"{rng.choice(WORDS)}{i}.{rng.choice(TLDS)}"
    local = f"{rng.choice(NAMES)}.{rng.choice(NAMES)}{i}"
    if kind == "user@domain":
        return f"{local}@{domain}"
    if kind == "@domain":
        return f"@{domain}"
    if kind == "@.domain":
        return f"@.{domain}"
    if kind == "user@":
        return f"{local}@"
    if kind == "ipv4":
        return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
    return f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}"


def _kind(rng: random.Random) -> str:
    draw, acc = rng.random(), 0.0
    for kind, share in MIX:
        acc += share
        if draw < acc:
            return kind
    return MIX[0][0]


def _lines(rng: random.Random, n: int, sample: EntrySample) -> Iterator[str]:
    """N entry lines plus the comments, blank lines, case and duplicates real files have."""
    yield "# unsubscribe list exported from the campaign tool\n"
    previous = "anna.bob0@mail0.com"
    for i in range(n):
        if i % 10_000 == 0:
            yield f"\n# batch {i // 10_000}\n"
        if rng.random() < 0.005:  # a duplicate line
            yield previous + "\n"
            continue
        kind = _kind(rng)
        entry = _entry(rng, kind, i)
        sample.keep(rng, kind, entry)
        previous = entry
        shown = entry.upper() if rng.random() < 0.02 else entry
        yield shown + ("  # opted out by phone\n" if rng.random() < 0.01 else "\n")


def write_entries(path: Path, n: int, seed: int = 2) -> EntrySample:
    """Write an unsubscribe file of N entries (streamed: the file is never in memory)."""
    rng, sample = random.Random(seed), EntrySample(entries=n)
    with path.open("w", encoding="utf-8") as fh:
        for line in _lines(rng, n, sample):
            fh.write(line)
            sample.lines += 1
    return sample


def import_once(machine: Machine, session: Session, path: Path) -> Figures:
    """Stage and commit PATH; times and the RSS high-water mark around it."""
    gc.collect()
    rss_before, max_before = rss_mib(), max_rss_mib()
    stage_s, count = timed(lambda: machine.stage_import(session, path))
    commit_s, _ = timed(lambda: machine.commit(session, "bench import"))
    return {"entries_read": count, "stage_s": stage_s, "commit_s": commit_s,
            "total_s": stage_s + commit_s, "entries_per_s": count / (stage_s + commit_s),
            "rss_before_mib": rss_before, "max_rss_before_mib": max_before,
            "max_rss_after_mib": max_rss_mib(),
            "max_rss_growth_mib": max_rss_mib() - max(max_before, rss_before)}


def import_traced(machine: Machine, session: Session, path: Path) -> Figures:
    """Python-heap peaks (tracemalloc) of staging and of commit; slow, so a separate run."""
    tracemalloc.start()
    try:
        machine.stage_import(session, path)
        stage_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        machine.commit(session, "bench import (traced)")
        commit_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"tracemalloc_stage_peak_mib": stage_peak / 2**20,
            "tracemalloc_commit_peak_mib": commit_peak / 2**20}


def bench_import(work: Path, machine: Machine, session: Session, n: int) -> tuple[
        Figures, EntrySample]:
    path = work / "unsubscribe.txt"
    gen_s, sample = timed(lambda: write_entries(path, n))
    out = {"file_mib": file_mib(path), "file_lines": sample.lines, "generate_s": gen_s,
           "mix": dict(MIX)}
    out |= import_once(machine, session, path)
    db = machine.store.path
    out["db_mib"] = file_mib(db)
    out["wal_mib"] = file_mib(Path(f"{db}-wal"))
    out["stored_entries"] = machine.store.unsub_count(str(session.mode))
    out["db_bytes_per_entry"] = out["db_mib"] * 2**20 / max(1, out["stored_entries"])
    traced, traced_session = new_machine(work / "traced")
    out |= import_traced(traced, traced_session, path)
    traced.store.close()
    shutil.rmtree(work / "traced")  # a second copy of the big table: free the disk
    return out, sample


# -- 3. match ---------------------------------------------------------------------------

MISS_HOP = "203.0.113.25"


def _hit(rng: random.Random, kind: str, entry: str) -> tuple[str, str]:
    """A (recipient, next hop) that ENTRY of KIND matches."""
    if kind == "user@domain":
        return entry, MISS_HOP
    if kind == "@domain":
        return f"someone{rng.randrange(10**6)}{entry}", MISS_HOP
    if kind == "@.domain":
        return f"someone@mx{rng.randrange(100)}{entry[1:]}", MISS_HOP
    if kind == "user@":
        return f"{entry}elsewhere{rng.randrange(10**6)}.test", MISS_HOP
    return f"someone@unlisted{rng.randrange(10**6)}.test", entry  # next-hop IP entry


def recipients(sample: EntrySample, n: int, seed: int = 3) -> list[tuple[str, str, bool]]:
    """N lookups, half hits spread over every entry form, half misses (.test never listed)."""
    rng = random.Random(seed)
    kinds = [k for k in sample.by_kind if sample.by_kind[k]]
    out = []
    for i in range(n):
        if i % 2 == 0:
            kind = rng.choice(kinds)
            out.append((*_hit(rng, kind, rng.choice(sample.by_kind[kind])), True))
        else:
            sub = "mail." if rng.random() < 0.5 else ""
            out.append((f"user{rng.randrange(10**9)}@{sub}nowhere{i}.test", MISS_HOP, False))
    return out


def match_latency(machine: Machine, lookups: list[tuple[str, str, bool]]) -> Figures:
    samples, wrong = [], 0
    for rcpt, hop, expect in lookups:
        start = time.perf_counter_ns()
        found = machine.unsubscribed(rcpt, hop)
        samples.append(time.perf_counter_ns() - start)
        wrong += (found is not None) != expect
    return latency(samples, "us") | {"wrong_answers": wrong}


def bench_match(big: Machine, empty: Machine, sample: EntrySample, n: int) -> Figures:
    lookups = recipients(sample, n)
    match_latency(big, lookups[: n // 10])  # warm the page cache the daemon would have warm
    out = {"full_table": match_latency(big, lookups),
           "empty_table": match_latency(empty, lookups)}
    out["empty_table"]["wrong_answers"] = "n/a (no entries: every lookup misses)"
    return out


# -- 4. export, saveconfig, paging ------------------------------------------------------


def bench_export(work: Path, machine: Machine, session: Session, sample: EntrySample,
                 pages: int) -> Figures:
    shell = Shell(machine, session)
    export_s, _ = timed(lambda: shell_run(shell, f"unsubscribe export {work / 'export.txt'}"))
    save_s, _ = timed(lambda: shell_run(shell, f"saveconfig {work / 'saved.yaml'}"))
    entries = machine.store.unsub_count(str(session.mode))
    out = {"export_s": export_s, "export_entries_per_s": entries / export_s,
           "export_mib": file_mib(work / "export.txt"), "saveconfig_s": save_s,
           "saveconfig_mib": file_mib(work / "saved.yaml")}
    out["print_page"] = _page_latency(shell, machine, session, sample, pages)
    return out


def _page_latency(shell: Shell, machine: Machine, session: Session, sample: EntrySample,
                  pages: int) -> Figures:
    """``unsubscribe print --after X --limit 100`` and, to attribute it, its two queries."""
    rng = random.Random(4)
    afters = [rng.choice(rng.choice(list(sample.by_kind.values()))) for _ in range(pages)]
    level = str(session.mode)
    command, page, count = [], [], []
    for after in afters:
        command.append(_ns(lambda a=after: shell_run(shell, f"unsubscribe print --after '{a}' "
                                                            "--limit 100")))
        page.append(_ns(lambda a=after: machine.store.unsub_page(level, a, 100)))
        count.append(_ns(lambda: machine.store.unsub_count(level)))
    return {"command": latency(command), "store_unsub_page": latency(page),
            "store_unsub_count": latency(count)}


def _ns(fn: Callable[[], Any]) -> int:
    start = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - start


# -- report -----------------------------------------------------------------------------


def environment(work: Path) -> Figures:
    df = subprocess.run(["df", "-h", str(work)], capture_output=True, text=True).stdout
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
            "scratch": str(work), "df": df.strip().splitlines()[-1] if df else "",
            "loadavg_start": os.getloadavg()}


def _row(label: str, value: Any, unit: str = "") -> str:
    if isinstance(value, float):
        text = f"{value:,.3f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"  {label:<46} {text:>14} {unit}"


def _lat_rows(label: str, fig: Figures) -> list[str]:
    u = fig["unit"]
    return [_row(f"{label} p50", fig["p50"], u), _row(f"{label} p99", fig["p99"], u),
            _row(f"{label} mean", fig["mean"], u)]


def report(res: Figures) -> str:
    c, i, m, e = res["commit"], res["import"], res["match"], res["export"]
    env = res["env"]
    lines = [f"mxcluster config benchmark  ({env['date']}, {env['cpus']} CPUs, "
             f"Python {env['python']}, SQLite {env['sqlite']})",
             f"load average at start {env['loadavg_start'][0]:.2f}, "
             f"at end {env['loadavg_end'][0]:.2f}", "",
             f"1. commit latency, {c['mxcluster']['n']:,} commits each (interleaved)"]
    lines += _lat_rows("mxcluster stage_set+commit", c["mxcluster"])
    lines += [_row("mxcluster commits/s", c["mxcluster"]["per_s"])]
    lines += _lat_rows("bare SQLite WAL+FULL 1-row INSERT", c["sqlite"])
    lines += [_row("bare SQLite commits/s", c["sqlite"]["per_s"]),
              _row("ratio mxcluster/SQLite p50", c["ratio_p50"], "x"),
              _row("ratio mxcluster/SQLite p99", c["ratio_p99"], "x"),
              _row("diagnostic: mxcluster synchronous=OFF p50", c["mxcluster_nosync"]["p50"],
                   "ms"),
              _row("diagnostic: SQLite synchronous=OFF p50", c["sqlite_nosync"]["p50"], "ms"),
              "", f"2. import of {i['entries_read']:,} unsubscribe entries "
              f"({i['file_mib']:.1f} MiB file)",
              _row("stage_import (validate)", i["stage_s"], "s"),
              _row("commit", i["commit_s"], "s"), _row("total", i["total_s"], "s"),
              _row("entries/s", i["entries_per_s"]),
              _row("max RSS growth (getrusage)", i["max_rss_growth_mib"], "MiB"),
              _row("max RSS after (getrusage)", i["max_rss_after_mib"], "MiB"),
              _row("tracemalloc peak, stage", i["tracemalloc_stage_peak_mib"], "MiB"),
              _row("tracemalloc peak, commit", i["tracemalloc_commit_peak_mib"], "MiB"),
              _row("stored entries", i["stored_entries"]),
              _row("DB file after import", i["db_mib"], "MiB"),
              _row("WAL file after import", i["wal_mib"], "MiB"),
              _row("DB bytes per entry", i["db_bytes_per_entry"]), "",
              f"3. match latency, {m['full_table']['n']:,} lookups (half hits)"]
    lines += _lat_rows("full table", m["full_table"])
    lines += [_row("full table wrong answers", m["full_table"]["wrong_answers"])]
    lines += _lat_rows("empty table", m["empty_table"])
    lines += ["", "4. export and paging",
              _row("unsubscribe export", e["export_s"], "s"),
              _row("export entries/s", e["export_entries_per_s"]),
              _row("saveconfig", e["saveconfig_s"], "s"),
              _row("saveconfig file", e["saveconfig_mib"], "MiB")]
    lines += _lat_rows("print --after X --limit 100", e["print_page"]["command"])
    lines += _lat_rows("  of which store.unsub_page", e["print_page"]["store_unsub_page"])
    lines += _lat_rows("  of which store.unsub_count", e["print_page"]["store_unsub_count"])
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--entries", type=int, help=f"unsubscribe entries (default "
                   f"{FULL['entries']:,}; {QUICK['entries']:,} with --quick)")
    p.add_argument("--commits", type=int, help=f"small commits (default {FULL['commits']:,})")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.entries = args.entries or sizes["entries"]
    args.commits = args.commits or sizes["commits"]
    args.lookups, args.pages = sizes["lookups"], sizes["pages"]
    return args


def run(args: argparse.Namespace, work: Path) -> Figures:
    res: Figures = {"env": environment(work), "quick": args.quick}
    small, small_session = new_machine(work / "small")
    print(f"commits: {args.commits:,} x 4 committers ...", flush=True)
    res["commit"] = bench_commits(work, args.commits, small, small_session)
    small.unsub_level(small_session)  # define an empty table for the match comparison
    small.commit(small_session, "empty unsubscribe table")
    big, big_session = new_machine(work / "big")
    print(f"import: {args.entries:,} entries ...", flush=True)
    res["import"], sample = bench_import(work, big, big_session, args.entries)
    print(f"match: {args.lookups:,} lookups ...", flush=True)
    res["match"] = bench_match(big, small, sample, args.lookups)
    print("export, saveconfig, paging ...", flush=True)
    res["export"] = bench_export(work, big, big_session, sample, args.pages)
    big.store.close()
    small.store.close()
    # other work on the machine shows in the figures: record how busy it was
    res["env"]["loadavg_end"] = os.getloadavg()
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # setup hashes the admin password: the documented low-cost settings keep that fast
    os.environ.setdefault("MXCLUSTER_ARGON2_MEMORY_KIB", "1024")
    os.environ.setdefault("MXCLUSTER_ARGON2_TIME_COST", "1")
    SCRATCH.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="config-", dir=SCRATCH))
    try:
        res = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    JSON_OUT.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print("\n" + report(res))
    print(f"\nfigures written to {JSON_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
