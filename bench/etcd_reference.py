"""The reference for cluster commit latency: a 3-member etcd cluster on loopback.

Debian's ``etcd-server`` (installed with apt-get when missing and we are root), three
members on 127.0.2.1-3 with their data on the repository's disk (``.bench/``; etcd fsyncs
its WAL on every put, as mxcluster fsyncs every commit), default raft timings. It is
driven through etcd's HTTP/JSON gateway (``/v3/kv/put``, ``/v3/kv/range``, base64 keys
and values) over one keep-alive connection per member, so no request pays for a process
start-up or a TCP handshake.

Two figures, each rotating the member the put is sent to (as the mxcluster benchmark
rotates the machine that commits; a put to a follower is forwarded to the leader):

* **put**: time from sending the put to its response (the member that answered has
  applied it);
* **put to visible on all members**: from sending the put until a serializable range read
  (the member's local state, no quorum round) on every member returns the new value;
  members are polled in turn every ``interval`` seconds, starting as the put is sent.
  A gateway read costs about 1.5 ms here, so a polling round takes several: the same
  figure is also taken from a watch stream on each member (``/v3/watch``), which
  reports each member's apply as it happens, with no polling at all.

Used by ``bench_cluster.py`` (side by side with mxcluster, same run); runnable alone:

    .venv/bin/python bench/etcd_reference.py --puts 200
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".bench"
MEMBERS = ("127.0.2.1", "127.0.2.2", "127.0.2.3")
CLIENT_PORT, PEER_PORT = 2379, 2380


def ensure_etcd() -> str | None:
    """The path of the etcd binary, installing Debian's etcd-server if missing (as root).

    None (with a message) when it is missing and cannot be installed here.
    """
    found = shutil.which("etcd")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("etcd is not installed (Debian: apt-get install etcd-server); "
              "skipping the etcd reference", file=sys.stderr)
        return None
    print("installing etcd-server (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "etcd-server"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print(f"{' '.join(cmd)} failed; skipping the etcd reference", file=sys.stderr)
            return None
    return shutil.which("etcd")


def etcd_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split()[-1] if out else "?"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Member:
    """One etcd member's gateway, over one keep-alive HTTP connection."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.http = http.client.HTTPConnection(address, CLIENT_PORT, timeout=10)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.http.request("POST", path, json.dumps(body),
                          {"Content-Type": "application/json"})
        reply = self.http.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"etcd {self.address}{path}: {reply.status} {data[:200]!r}")
        return dict(json.loads(data))

    def put(self, key: str, value: str) -> None:
        self.post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def local_value(self, key: str) -> str | None:
        """The value of KEY in this member's own state (serializable read, no quorum)."""
        kvs = self.post("/v3/kv/range", {"key": _b64(key), "serializable": True}).get("kvs")
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def healthy(self) -> bool:
        try:
            self.http.request("GET", "/health")
            reply = self.http.getresponse()
            return reply.status == 200 and b"true" in reply.read()
        except OSError:
            self.http.close()
            return False

    def close(self) -> None:
        self.http.close()


@contextmanager
def etcd_cluster(binary: str, work: Path) -> Iterator[list[Member]]:
    """Three etcd members serving on MEMBERS; stopped and removed afterwards."""
    names = [f"etcd{i + 1}" for i in range(len(MEMBERS))]
    initial = ",".join(f"{n}=http://{a}:{PEER_PORT}" for n, a in zip(names, MEMBERS,
                                                                       strict=True))
    procs = []
    try:
        for name, address in zip(names, MEMBERS, strict=True):
            args = [binary, "--name", name, "--data-dir", str(work / name),
                    "--listen-client-urls", f"http://{address}:{CLIENT_PORT}",
                    "--advertise-client-urls", f"http://{address}:{CLIENT_PORT}",
                    "--listen-peer-urls", f"http://{address}:{PEER_PORT}",
                    "--initial-advertise-peer-urls", f"http://{address}:{PEER_PORT}",
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "mxcluster-bench", "--log-level", "error",
                    "--logger", "zap"]
            with (work / f"{name}.log").open("ab") as log:
                procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL))
        members = [Member(a) for a in MEMBERS]
        deadline = time.monotonic() + 60
        while not all(m.healthy() for m in members):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"etcd did not become healthy; see {work}/etcd*.log")
            time.sleep(0.2)
        yield members
        for m in members:
            m.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def percentiles(samples: list[float]) -> dict[str, float]:
    """n, p50, p99, mean and max of SAMPLES (seconds) in milliseconds (nearest rank)."""
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered), max(1, round(p / 100 * len(ordered)))) - 1] * 1000

    return {"n": len(ordered), "p50": round(rank(50), 3), "p99": round(rank(99), 3),
            "mean": round(sum(ordered) / len(ordered) * 1000, 3),
            "max": round(ordered[-1] * 1000, 3)}


def put_latency(members: list[Member], puts: int) -> dict[str, float]:
    """Plain put latency: PUTS puts back to back, the target member rotating."""
    samples = []
    for i in range(puts):
        member = members[i % len(members)]
        t0 = time.perf_counter()
        member.put("bench/plain", f"v{i}")
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def _poll_visible(pollers: list[Member], key: str, value: str, interval: float,
                  timeout: float = 30) -> tuple[float, int]:
    """Poll every member in turn until each returns VALUE; (when the last did, rounds)."""
    pending = list(pollers)
    rounds, last = 0, 0.0
    deadline = time.perf_counter() + timeout
    while pending:
        for m in list(pending):
            if m.local_value(key) == value:
                last = time.perf_counter()
                pending.remove(m)
        rounds += 1
        if pending:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{key}={value} not visible on every member")
            time.sleep(interval)
    return last, rounds


def visible_latency(members: list[Member], puts: int, interval: float,
                    gap: float) -> dict[str, Any]:
    """Put to visible on every member (serializable reads), the target rotating."""
    # polling uses its own connections, so a poll never waits behind the put
    pollers = [Member(m.address) for m in members]
    samples, acks, periods = [], [], []
    try:
        for i in range(puts):
            member, value = members[i % len(members)], f"v{i}"
            acked: list[float] = []
            t0 = time.perf_counter()
            putter = threading.Thread(target=lambda m=member, v=value, a=acked: (
                m.put("bench/visible", v), a.append(time.perf_counter())))
            putter.start()
            last, rounds = _poll_visible(pollers, "bench/visible", value, interval)
            putter.join()
            samples.append(max(last, acked[0]) - t0)
            acks.append(acked[0] - t0)
            periods.append((last - t0) / rounds)
            time.sleep(gap)
    finally:
        for m in pollers:
            m.close()
    return {"visible_all": percentiles(samples), "ack": percentiles(acks),
            "poll_period_ms": round(sum(periods) / len(periods) * 1000, 3)}


class Watcher:
    """A watch on KEY through one member's gateway: when each value arrived there."""

    def __init__(self, address: str, key: str) -> None:
        self.http = http.client.HTTPConnection(address, CLIENT_PORT, timeout=60)
        self.http.request("POST", "/v3/watch", json.dumps({"create_request": {"key": _b64(key)}}))
        self.stream = self.http.getresponse()
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.stream.readline()  # {"result": {..., "created": true}}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while line := self.stream.readline():
                at = time.perf_counter()
                for event in json.loads(line).get("result", {}).get("events", []):
                    value = base64.b64decode(event["kv"].get("value", "")).decode()
                    with self.changed:
                        self.seen[value] = at
                        self.changed.notify_all()

    def wait(self, value: str, timeout: float = 30) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: value in self.seen, timeout):
                raise RuntimeError(f"no watch event for {value} within {timeout} s")
            return self.seen.pop(value)

    def close(self) -> None:
        self.http.close()


def watched_latency(members: list[Member], puts: int, gap: float) -> dict[str, Any]:
    """Put to visible on every member, as each member's own watch stream reports it:
    no polling, so no polling granularity and no polling load."""
    watchers = [Watcher(m.address, "bench/watched") for m in members]
    samples = []
    try:
        for i in range(puts):
            value = f"w{i}"
            t0 = time.perf_counter()
            members[i % len(members)].put("bench/watched", value)
            samples.append(max(w.wait(value) for w in watchers) - t0)
            time.sleep(gap)
    finally:
        for w in watchers:
            w.close()
    return percentiles(samples)


def measure(puts: int, interval: float = 0.001, gap: float = 0.05,
            keep: bool = False) -> dict[str, Any] | None:
    """The etcd figures (None when etcd is not available)."""
    binary = ensure_etcd()
    if binary is None:
        return None
    SCRATCH.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="etcd-", dir=SCRATCH))
    try:
        with etcd_cluster(binary, work) as members:
            for i in range(20):  # warm-up: leader known, connections open
                members[i % 3].put("bench/warm", str(i))
            plain = put_latency(members, puts)
            visible = visible_latency(members, puts, interval, gap)
            visible["visible_all_watch"] = watched_latency(members, puts, gap)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return {"version": etcd_version(binary), "members": len(MEMBERS), "puts": puts,
            "put": plain, **visible, "poll_interval_ms": interval * 1000}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--puts", type=int, default=200, help="puts per figure (default 200)")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    args = p.parse_args(argv)
    res = measure(args.puts, keep=args.keep)
    print(json.dumps(res, indent=2))
    return 0 if res is not None else 1


if __name__ == "__main__":
    sys.exit(main())
