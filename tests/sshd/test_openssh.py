"""Debian's OpenSSH client against the SSH service: exec and an interactive PTY."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.sshd.harness import ADMIN_PASSWORD, HOSTNAME, Harness
from tests.sshd.terminal import PtyProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs openssh-client"),
]


def ssh_args(h: Harness, *extra: str) -> list[str]:
    return ["ssh", "-p", str(h.port), "-F", "/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", *extra]


def with_key(h: Harness, command: str) -> subprocess.CompletedProcess[str]:
    args = ssh_args(h, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                    "-i", str(h.user_key_path), "admin@127.0.0.1", command)
    return subprocess.run(args, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def askpass(tmp: Path, password: str) -> dict[str, str]:
    """Environment that makes ssh read PASSWORD from a helper instead of a terminal."""
    helper = tmp / "askpass.sh"
    helper.write_text(f"#!/bin/sh\necho '{password}'\n")
    helper.chmod(0o700)
    return {**os.environ, "SSH_ASKPASS": str(helper), "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0"}


def test_exec_with_key(harness: Harness) -> None:
    """'ssh -i KEY admin@host version' prints the version and exits 0."""
    result = with_key(harness, "version")
    assert result.returncode == 0, result.stderr
    assert HOSTNAME in result.stdout


def test_exec_exit_status_is_the_failing_command(harness: Harness) -> None:
    """ssh exits with the status of the first failing command."""
    result = with_key(harness, "version\nnosuchcommand")
    assert result.returncode == 2
    assert "unknown command" in result.stderr


def test_exec_with_password(harness: Harness, tmp_path: Path) -> None:
    """Password login from OpenSSH (keyboard-less, via SSH_ASKPASS) runs a command."""
    args = ssh_args(harness, "-o", "PubkeyAuthentication=no",
                    "-o", "PreferredAuthentications=password,keyboard-interactive",
                    "admin@127.0.0.1", "showconfig")
    result = subprocess.run(args, capture_output=True, text=True, timeout=30,
                            env=askpass(tmp_path, ADMIN_PASSWORD), stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr


def test_wrong_password_exits_255(harness: Harness, tmp_path: Path) -> None:
    """OpenSSH reports a refused password as its own failure (255)."""
    args = ssh_args(harness, "-o", "PubkeyAuthentication=no",
                    "-o", "NumberOfPasswordPrompts=1", "admin@127.0.0.1", "version")
    result = subprocess.run(args, capture_output=True, text=True, timeout=30,
                            env=askpass(tmp_path, "wrong-password"), stdin=subprocess.DEVNULL)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_interactive_shell_in_a_terminal(harness: Harness) -> None:
    """'ssh -t' opens the interactive shell: prompt, a command, exit status 0 on 'exit'."""
    child = PtyProcess(ssh_args(harness, "-tt", "-o", "IdentitiesOnly=yes",
                                "-i", str(harness.user_key_path), "admin@127.0.0.1"))
    child.expect(f"{HOSTNAME}>")
    child.send("version\r")
    child.expect(harness.fingerprint)
    child.send("exit\r")
    assert child.wait() == 0
