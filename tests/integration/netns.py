"""Multi-host test networks: one Linux network namespace per machine, a bridge between them.

    hub namespace (mxt-PID-K-hub)        machine namespaces (mxt-PID-K-1 ... mxt-PID-K-N)
    +------------------------+           +------------------------+
    | br0  -- m1 (veth) -----+-----------+- eth0 10.77.X.1/24, lo |
    |      -- m2 (veth) -----+-----------+- eth0 10.77.X.2/24, lo |
    |      -- ...            |           +------------------------+
    +------------------------+

Everything lives in namespaces this module creates: the host's own network is never
touched (the veth pairs are made inside the hub namespace, so not even a name appears in
the root namespace). Cutting a machine off takes its port on the bridge down, like
pulling its cable: its own interface keeps its address, TCP connections just go silent,
and peers notice through their SSH keepalives. Machines run as ``ip netns exec NS
mxcluster serve`` (``ip netns exec`` execs in place, so the Popen pid is the daemon's),
and the test drives them with ``mxcluster cli`` run in the same namespace.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.conftest import BIN, FAST_HASH, PASSWORD, MachineProc, wait_for

#: every namespace this module makes is called ``mxt-<pid of the test process>-<n>-<what>``
PREFIX = "mxt"
_OURS = re.compile(rf"^{PREFIX}-(\d+)-[\w-]+$")
_networks = itertools.count()
_CLONE_NEWNET = 0x40000000
SSH_PORT = 2222  # each namespace has its own port space, so a fixed port never clashes


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; a failure raises with ip's own message."""
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


def unavailable() -> str | None:
    """Why namespaces cannot be used here (None when they can)."""
    if os.geteuid() != 0:
        return "network-namespace tests need root"
    if shutil.which("ip") is None:
        return "network-namespace tests need iproute2's 'ip'"
    listing = ip("netns", "list", check=False)
    if listing.returncode != 0:
        return f"'ip netns' is unavailable: {listing.stderr.strip()}"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> None:
    """Delete namespaces left by earlier test processes that were killed before they
    could clean up, and end the daemons those left running inside them (by pid)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _OURS.match(name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        for pid in ip("netns", "pids", name, check=False).stdout.split():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", name, check=False)


@dataclass
class Network:
    """N machine namespaces on one bridge; ``cut``/``restore`` a machine's link."""

    prefix: str
    subnet: str  # the first three octets, e.g. "10.77.23"
    size: int

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def ns(self, i: int) -> str:
        """The namespace of machine I (1-based)."""
        return f"{self.prefix}-{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    def build(self) -> None:
        ip("netns", "add", self.hub)
        ip("-n", self.hub, "link", "set", "lo", "up")
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for i in range(1, self.size + 1):
            ns = self.ns(i)
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", self.hub, "link", "add", f"m{i}", "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            ip("-n", self.hub, "link", "set", f"m{i}", "master", "br0")
            ip("-n", self.hub, "link", "set", f"m{i}", "up")
            ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def destroy(self) -> None:
        """Delete every namespace (their veths and the bridge go with them)."""
        for name in [*(self.ns(i) for i in range(1, self.size + 1)), self.hub]:
            ip("netns", "del", name, check=False)

    def cut(self, i: int) -> None:
        """Partition machine I from all others: its port on the bridge goes down."""
        ip("-n", self.hub, "link", "set", f"m{i}", "down")

    def restore(self, i: int) -> None:
        """Heal the partition made by ``cut(I)``."""
        ip("-n", self.hub, "link", "set", f"m{i}", "up")

    def exec_argv(self, i: int, argv: list[str]) -> list[str]:
        """ARGV, run inside machine I's namespace."""
        return ["ip", "netns", "exec", self.ns(i), *argv]

    def port_open(self, i: int, port: int) -> bool:
        """Whether PORT accepts connections on machine I, tried from inside its namespace."""
        return in_namespace(self.ns(i), lambda: _connects(self.address(i), port))


def _connects(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def in_namespace(ns: str, fn: Callable[[], bool]) -> bool:
    """Run FN in a thread that has entered network namespace NS (setns is per thread)."""
    result: list[bool] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{ns}") as fh:
                if libc.setns(fh.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns}")
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=body, name=f"setns-{ns}")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]


@contextmanager
def network(size: int) -> Iterator[Network]:
    """A fresh network of SIZE machine namespaces, always deleted afterwards.

    Skips the test (with the reason) when namespaces are unavailable.
    """
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    remove_stale()
    pid = os.getpid()
    net = Network(f"{PREFIX}-{pid}-{next(_networks)}", f"10.77.{pid % 250}", size)
    try:
        try:
            net.build()
        except RuntimeError as exc:
            pytest.skip(f"cannot build a namespace network here: {exc}")
        yield net
    finally:
        net.destroy()


@dataclass
class NetnsMachine(MachineProc):
    """A MachineProc whose daemon and cli run inside machine ``index``'s namespace
    (``ssh``, Debian's client, is not wrapped: it would run in the root namespace)."""

    net: Network | None = None
    index: int = 0

    def _wrap(self, argv: list[str]) -> list[str]:
        assert self.net is not None
        return self.net.exec_argv(self.index, argv)

    def start(self, **extra_env: str) -> None:
        assert self.net is not None
        env = {**os.environ, **FAST_HASH, **extra_env}
        self.out = (self.data_dir / "serve.out").open("ab")
        self.proc = subprocess.Popen(
            self._wrap([str(BIN / "mxcluster"), "serve", "--data-dir", str(self.data_dir)]),
            stdout=self.out, stderr=subprocess.STDOUT, env=env)
        proc, net = self.proc, self.net
        wait_for(lambda: net.port_open(self.index, self.ssh_port) or proc.poll() is not None,
                 what=f"{self.hostname} to listen")
        assert proc.poll() is None, self.log()

    def cli(self, *commands: str, user: str = "admin", password: str = PASSWORD,
            json: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `mxcluster cli -c ...` against this machine, from inside its namespace."""
        args = [str(BIN / "mxcluster"), "cli", "--host", self.address, "--port",
                str(self.ssh_port), "--user", user]
        for command in commands:
            args += ["-c", command]
        if json:
            args.append("--json")
        env = {**os.environ, "MXCLUSTER_PASSWORD": password}
        return subprocess.run(self._wrap(args), capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)


def setup_in(net: Network, tmp: Path, index: int, name: str) -> NetnsMachine:
    """``mxcluster setup`` for machine INDEX of NET (address on its eth0), not started."""
    pw = tmp / "admin-password"
    pw.write_text(PASSWORD + "\n")
    data = tmp / name
    address = net.address(index)
    subprocess.run(
        [str(BIN / "mxcluster"), "setup", "--data-dir", str(data), "--hostname", name,
         "--address", address, "--ssh-port", str(SSH_PORT), "--admin-password-file", str(pw)],
        check=True, capture_output=True, env={**os.environ, **FAST_HASH})
    return NetnsMachine(data, name, address, SSH_PORT, net=net, index=index)


@contextmanager
def machines(tmp: Path, names: list[str]) -> Iterator[tuple[Network, list[NetnsMachine]]]:
    """One set-up machine per name, each in its own namespace; killed, then the network
    deleted, however the test ends."""
    with network(len(names)) as net:
        ms = [setup_in(net, tmp, i, name) for i, name in enumerate(names, start=1)]
        try:
            yield net, ms
        finally:
            for m in ms:
                with suppress(Exception):
                    m.kill()
