"""Run every ``bench/bench_*.py``, one after another, each in its own process.

    .venv/bin/python bench/run_all.py            # full size (what docs/performance.md shows)
    .venv/bin/python bench/run_all.py --quick    # smoke run of each benchmark

Each benchmark prints its own figures and writes ``.bench/NAME.json``; this runner only
adds which ones ran, how long each took, and exits non-zero when one failed. Modules
without the ``bench_`` prefix (``cluster_harness.py``, ``etcd_reference.py``) are helpers
that a benchmark imports, not benchmarks. ``bench_cluster.py`` starts up to 20 daemons and
a 3-member etcd (installing Debian's ``etcd-server`` with apt-get when missing and run as
root; otherwise it skips the etcd reference).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def benchmarks(only: list[str]) -> list[Path]:
    """bench_*.py in name order, restricted to ONLY (names without 'bench_'/.py) if given."""
    found = sorted(BENCH.glob("bench_*.py"))
    if only:
        found = [p for p in found if p.stem.removeprefix("bench_") in only]
    return found


def run(path: Path, quick: bool) -> tuple[int, float]:
    """(exit code, seconds) of one benchmark, its output passed straight through."""
    cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
    print(f"=== {path.name}{' --quick' if quick else ''}", flush=True)
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=BENCH.parent).returncode
    return code, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run every bench/bench_*.py.")
    p.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    p.add_argument("only", nargs="*", help="run only these (e.g. 'config')")
    args = p.parse_args(argv)
    paths = benchmarks(args.only)
    if not paths:
        print("no benchmark matched", file=sys.stderr)
        return 2
    results = [(path.name, *run(path, args.quick)) for path in paths]
    print("\n=== summary")
    for name, code, seconds in results:
        print(f"  {name:<28} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:8.1f} s")
    return 1 if any(code for _, code, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
