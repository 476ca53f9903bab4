"""Fixtures that run real machines: ``mxcluster setup`` and ``mxcluster serve`` processes,
driven through ``mxcluster cli`` and Debian's OpenSSH client."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PASSWORD = "integration-pass"
FAST_HASH = {"MXCLUSTER_ARGON2_MEMORY_KIB": "1024", "MXCLUSTER_ARGON2_TIME_COST": "1"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll CONDITION until true or fail after TIMEOUT seconds (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class MachineProc:
    """One real machine: its data directory and its `mxcluster serve` process."""

    data_dir: Path
    hostname: str
    address: str
    ssh_port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self, **extra_env: str) -> None:
        env = {**os.environ, **FAST_HASH, **extra_env}
        self.out = (self.data_dir / "serve.out").open("ab")
        self.proc = subprocess.Popen(
            [str(BIN / "mxcluster"), "serve", "--data-dir", str(self.data_dir)],
            stdout=self.out, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: port_open(self.address, self.ssh_port) or self.proc.poll() is not None,
                 what=f"{self.hostname} to listen")
        assert self.proc.poll() is None, self.log()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.out.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def wait_dead(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        path = self.data_dir / "serve.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def cli(self, *commands: str, user: str = "admin", password: str = PASSWORD,
            json: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `mxcluster cli -c ...` against this machine (all commands, one session)."""
        args = [str(BIN / "mxcluster"), "cli", "--host", self.address, "--port",
                str(self.ssh_port), "--user", user]
        for command in commands:
            args += ["-c", command]
        if json:
            args.append("--json")
        env = {**os.environ, "MXCLUSTER_PASSWORD": password}
        return subprocess.run(args, capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def ssh(self, command: str, password: str = PASSWORD,
            user: str = "admin") -> subprocess.CompletedProcess[str]:
        """Run COMMAND through Debian's OpenSSH client (password via sshpass)."""
        args = ["sshpass", "-p", password, "ssh", "-p", str(self.ssh_port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no",
                f"{user}@{self.address}", command]
        return subprocess.run(args, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)


def setup_machine(tmp: Path, name: str = "mail1.example.com",
                  address: str = "127.0.0.1") -> MachineProc:
    pw = tmp / "admin-password"
    pw.write_text(PASSWORD + "\n")
    port = free_port(address)
    data = tmp / name
    subprocess.run(
        [str(BIN / "mxcluster"), "setup", "--data-dir", str(data), "--hostname", name,
         "--address", address, "--ssh-port", str(port), "--admin-password-file", str(pw)],
        check=True, capture_output=True, text=True, env={**os.environ, **FAST_HASH})
    return MachineProc(data, name, address, port)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[MachineProc]:
    """A set-up machine, serving; stopped (or killed) at the end of the test."""
    m = setup_machine(tmp_path)
    m.start()
    yield m
    m.kill()


@pytest.fixture
def new_machine(tmp_path: Path) -> Iterator[MachineProc]:
    """A set-up machine that the test starts itself."""
    m = setup_machine(tmp_path)
    yield m
    m.kill()


needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None or shutil.which("sshpass") is None,
                               reason="Debian's openssh-client and sshpass are required")
