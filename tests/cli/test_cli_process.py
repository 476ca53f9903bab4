"""'mxcluster cli' as a separate process: interactive in a terminal, batch on a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.sshd.harness import ADMIN_PASSWORD, HOSTNAME, Harness
from tests.sshd.terminal import PtyProcess

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from mxcluster.cli.client import cli_command; cli_command()"]


def cli_args(h: Harness, tmp: Path, *extra: str) -> list[str]:
    secret = tmp / "pw"
    secret.write_text(ADMIN_PASSWORD)
    return [*CLI, "--host", "127.0.0.1", "--port", str(h.port), "--user", "admin",
            "--password-file", str(secret), *extra]


def test_interactive_session_in_a_terminal(harness: Harness, tmp_path: Path) -> None:
    """In a terminal, without commands, cli opens the shell; 'exit' leaves with 0."""
    child = PtyProcess(cli_args(harness, tmp_path))
    child.expect(f"{HOSTNAME}>")
    child.send("version\r")
    child.expect(harness.fingerprint)
    child.send("exit\r")
    assert child.wait() == 0


def test_interactive_wizard_asks_for_a_password_secretly(harness: Harness,
                                                          tmp_path: Path) -> None:
    """A wizard's secret question does not echo the answer."""
    child = PtyProcess(cli_args(harness, tmp_path))
    child.expect(f"{HOSTNAME}>")
    child.send("userconfig new ops --role operator\r")
    child.expect("New password")
    child.send("hidden-word-1\r")
    child.expect("Repeat")
    child.send("hidden-word-1\r")
    child.expect(f"{HOSTNAME}>")
    child.send("exit\r")
    assert child.wait() == 0
    assert "hidden-word-1" not in child.output


def test_batch_from_a_pipe(harness: Harness, tmp_path: Path) -> None:
    """Commands piped on stdin run as one batch; the exit code is the failing command's."""
    result = subprocess.run(cli_args(harness, tmp_path), input="version\nbogus\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert HOSTNAME in result.stdout
    assert "unknown command" in result.stderr
