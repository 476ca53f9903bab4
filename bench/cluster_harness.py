"""Real machines for the cluster benchmarks: set up, serve, cluster and drive them.

Each machine is an ``mxcluster serve`` process with its own data directory (under
``.bench/``, so fsync costs are the disk's) and its own loopback address ``127.0.1.N``.
The benchmark drives each one over ONE persistent asyncssh connection, logged in as
``admin`` with a password, one SSH exec request per batch of commands: no command pays
for a ``mxcluster cli`` process start-up, which is several times the latency measured.

Whether a commit has reached a machine is read from that machine's SQLite store,
read-only, from the benchmark process (``Node.has``): a row in ``changesets`` is there
once the daemon's apply transaction has committed, which is the moment its own shell,
mail engine and any reader see it. It costs a few microseconds and nothing in the
daemon, where polling every peer over SSH costs each peer a login session on its store
thread, exactly where the commit is being applied. ``Node.has_ssh`` is that SSH probe,
kept for a cross-check.

Not a test fixture (``tests/integration/conftest.py`` has those): nothing here asserts a
timing; when the cluster does not do what a benchmark needs, ``BenchError`` says what.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from mxcluster.provision.setup import DB_FILE, MachineFile

Figures = dict[str, Any]

BIN = Path(sys.executable).parent
PASSWORD = "bench-cluster-pass"
#: the documented low-cost argon2 settings: machine setup and logins stay fast (never in
#: production; see ``mxcluster.users.passwords``)
FAST_HASH = {"MXCLUSTER_ARGON2_MEMORY_KIB": "1024", "MXCLUSTER_ARGON2_TIME_COST": "1"}
#: what ``commit`` prints: "Changes committed: SERIAL-SEQ"
COMMITTED = re.compile(r"Changes committed: (\S+)-(\d+)")


class BenchError(RuntimeError):
    """The cluster under test did not do what the benchmark needs (not a timing)."""


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


async def wait_until(condition: Callable[[], Any], timeout: float, what: str,
                     every: float = 0.05) -> None:
    """Await CONDITION() (a plain or async callable) until true; BenchError after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Done:
    """One finished SSH exec: exit status, output, and when it finished."""

    code: int
    stdout: str
    stderr: str
    at: float  # time.perf_counter() when the reply was complete

    def check(self, what: str) -> Done:
        if self.code != 0:
            raise BenchError(f"{what!r} failed ({self.code}): {self.stderr or self.stdout}")
        return self


@dataclass
class Node:
    """One real machine: data directory, ``mxcluster serve`` process, SSH connection."""

    name: str
    address: str
    port: int
    data_dir: Path
    serial: str = ""
    proc: subprocess.Popen[bytes] | None = None
    conn: asyncssh.SSHClientConnection | None = None
    _db: sqlite3.Connection | None = field(default=None, repr=False)

    # -- the process ----------------------------------------------------------------

    def spawn(self) -> None:
        """Start ``mxcluster serve`` (returns at once; ``started`` waits for the port)."""
        env = {**os.environ, **FAST_HASH}
        with (self.data_dir / "serve.out").open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "mxcluster"), "serve", "--data-dir", str(self.data_dir)],
                stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)

    async def started(self, timeout: float = 60) -> None:
        await wait_until(lambda: self.dead or port_open(self.address, self.port), timeout,
                         f"{self.name} to listen")
        if self.dead:
            raise BenchError(f"{self.name} exited at start:\n{self.log()[-3000:]}")

    @property
    def dead(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait (SIGKILL after TIMEOUT)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.proc = None

    def log(self) -> str:
        path = self.data_dir / "serve.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the serve process so far (0 when not running)."""
        if self.dead:
            return 0.0
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """The serve process's resident-set high-water mark (VmHWM)."""
        if self.dead:
            return 0.0
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    # -- the admin connection ----------------------------------------------------------

    async def connect(self) -> None:
        self.conn = await asyncssh.connect(
            self.address, self.port, username="admin", password=PASSWORD,
            known_hosts=None, client_keys=None, agent_path=None, config=None,
            connect_timeout=30)

    def disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def run(self, *lines: str, timeout: float | None = 120) -> Done:
        """Run LINES as one batch (one exec request, one session); its outcome."""
        assert self.conn is not None, f"{self.name} is not connected"
        return _done(await self.conn.run("\n".join(lines), check=False, timeout=timeout))

    async def batch(self, text: str, timeout: float | None = None) -> Done:
        """Run TEXT fed on stdin of a shell without PTY: up to 1 MiB of command lines."""
        assert self.conn is not None, f"{self.name} is not connected"
        return _done(await self.conn.run(input=text, check=False, timeout=timeout))

    # -- what the store holds ------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """A read-only connection to the machine's store (autocommit: each query sees the
        latest committed transaction)."""
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.data_dir / DB_FILE}?mode=ro", uri=True,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=5000")
        return self._db

    def has(self, origin: str, seq: int) -> bool:
        row = self.db.execute("SELECT 1 FROM changesets WHERE origin = ? AND seq = ?",
                              (origin, seq)).fetchone()
        return row is not None

    def seq_of(self, origin: str) -> int:
        """The highest sequence number of ORIGIN's changesets held here (0: none)."""
        row = self.db.execute("SELECT max(seq) FROM changesets WHERE origin = ?",
                              (origin,)).fetchone()
        return int(row[0] or 0)

    def unsub_count(self) -> int:
        row = self.db.execute("SELECT count(*) FROM unsub WHERE present = 1").fetchone()
        return int(row[0])

    def close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def has_ssh(self, origin: str, seq: int) -> bool:
        """The same question asked over SSH, as an administrator would ask it."""
        done = await self.run(f"commitlog --id {origin}-{seq} --json", timeout=30)
        return done.code == 0


def _done(result: asyncssh.SSHCompletedProcess) -> Done:
    """The outcome of one exec; a channel closed without an exit status counts as 255."""
    code = 255 if result.exit_status is None else int(result.exit_status)
    return Done(code, str(result.stdout or ""), str(result.stderr or ""), time.perf_counter())


def setup_node(root: Path, index: int) -> Node:
    """``mxcluster setup`` of machine number INDEX (address 127.0.1.INDEX+1)."""
    name, address = f"m{index + 1:02d}.bench.example", f"127.0.1.{index + 1}"
    port = free_port(address)
    data = root / name
    pw = root / "admin-password"
    subprocess.run(
        [str(BIN / "mxcluster"), "setup", "--data-dir", str(data), "--hostname", name,
         "--address", address, "--ssh-port", str(port), "--admin-password-file", str(pw)],
        check=True, capture_output=True, env={**os.environ, **FAST_HASH})
    return Node(name, address, port, data, MachineFile.read(data).serial)


class Cluster:
    """N machines, serving, each with an admin connection; ``form`` makes them a cluster."""

    def __init__(self, root: Path, n: int) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "admin-password").write_text(PASSWORD + "\n")
        with ThreadPoolExecutor(4) as pool:  # setup is a process each; 2 cores
            self.nodes = list(pool.map(lambda i: setup_node(root, i), range(n)))

    @property
    def first(self) -> Node:
        return self.nodes[0]

    async def start(self) -> None:
        """Start every daemon, wait until each listens, log in to each."""
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            await node.started()
        await asyncio.gather(*(node.connect() for node in self.nodes))

    async def form(self, name: str = "bench") -> list[float]:
        """``clusterconfig create`` on the first machine, then each other machine joins
        through it, one at a time; the seconds each join took."""
        (await self.first.run(f"clusterconfig create {name}")).check("clusterconfig create")
        return [await self.join(node) for node in self.nodes[1:]]

    async def join(self, node: Node, through: Node | None = None,
                   timeout: float = 900) -> float:
        """``clusterconfig join`` on NODE through THROUGH; seconds until it returned."""
        via = through or self.first
        command = (f"clusterconfig join {via.address} --port {via.port} "
                   f"--password-file {self.root / 'admin-password'} --accept-fingerprint")
        t0 = time.perf_counter()
        done = (await node.run(command, timeout=timeout)).check(f"{node.name}: {command}")
        if "still arriving" in done.stdout:
            raise BenchError(f"{node.name}: join returned before the data arrived")
        return done.at - t0

    async def links_down(self) -> list[tuple[Node, Node]]:
        """Pairs (dialer, other) whose link either end reports not connected.

        The machine with the smaller serial dials (``mxcluster.peers.links``), so the
        dialer is the one to restart when a link does not come back by itself.
        """
        by_serial = {n.serial: n for n in self.nodes}
        pairs: set[tuple[str, str]] = set()
        for node in self.nodes:
            done = await node.run("clusterconfig connstatus --json", timeout=60)
            rows = json.loads(done.stdout)["links"] if done.code == 0 else []
            for row in rows:
                if row["state"] != "connected" and row["serial"] in by_serial:
                    low, high = sorted((node.serial, row["serial"]))
                    pairs.add((low, high))
        return [(by_serial[a], by_serial[b]) for a, b in sorted(pairs)]

    async def meshed(self, timeout: float = 300, heal_after: float | None = 20) -> Figures:
        """Wait until every machine has a link up to every other.

        A link that stays down HEAL_AFTER seconds is healed by restarting its dialer
        (``mxcluster serve`` stopped with SIGTERM and started again). Before 0d834db a
        dialer task could die on a channel the peer had closed before our hello went
        out, and was never restarted (docs/performance.md); the check stays as a guard.
        Every restart is returned, so the report shows it; with HEAL_AFTER None the
        benchmark stops with the links that stayed down.
        """
        t0 = time.perf_counter()
        restarts: list[str] = []
        deadline = t0 + timeout
        while True:
            wait = deadline - time.perf_counter()
            if heal_after is not None:
                wait = min(wait, heal_after)
            try:
                await wait_until(self._all_up, wait, "a full mesh", every=0.5)
                return {"seconds": round(time.perf_counter() - t0, 1), "restarts": restarts}
            except BenchError:
                down = await self.links_down()
                names = [f"{a.name}->{b.name}" for a, b in down]
                if heal_after is None or time.perf_counter() > deadline:
                    raise BenchError(f"links still down after {time.perf_counter() - t0:.0f} "
                                     f"s (dialer->peer): {names}") from None
            for dialer in {a.name: a for a, _ in down}.values():
                restarts.append(dialer.name)
                await self.restart(dialer)

    async def _all_up(self) -> bool:
        want = len(self.nodes) - 1
        counts = await asyncio.gather(*(self.connected(n) for n in self.nodes))
        return all(c == want for c in counts)

    async def connected(self, node: Node) -> int:
        """How many of NODE's peer links are up (``clusterconfig connstatus``)."""
        done = await node.run("clusterconfig connstatus --json", timeout=60)
        if done.code != 0:
            return -1
        return done.stdout.count('"state":"connected"')

    async def restart(self, node: Node) -> None:
        """Stop NODE's daemon (SIGTERM), start it again, log in again."""
        node.disconnect()
        node.stop()
        node.spawn()
        await node.started()
        await node.connect()

    def cpu_seconds(self) -> float:
        return sum(node.cpu_seconds() for node in self.nodes)

    async def close(self) -> None:
        for node in self.nodes:
            node.disconnect()
            node.close_db()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: n.stop(), self.nodes))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
