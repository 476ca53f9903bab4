"""A real machine: setup, serve, the cli client and Debian's ssh client, bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.integration.conftest import BIN, FAST_HASH, MachineProc, needs_ssh, setup_machine

pytestmark = pytest.mark.slow


def test_setup_generates_and_prints_a_password_once(tmp_path: Path) -> None:
    """Without a password file, setup prints a generated admin password and refuses reruns."""
    args = [str(BIN / "mxcluster"), "setup", "--data-dir", str(tmp_path / "m"),
            "--hostname", "mx.example.com", "--address", "127.0.0.1"]
    env = {**os.environ, **FAST_HASH}
    first = subprocess.run(args, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert "Admin password" in first.stdout
    again = subprocess.run(args, capture_output=True, text=True, env=env)
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr


def test_setup_rejects_bad_input_and_creates_nothing(tmp_path: Path) -> None:
    """A bad hostname or address is reported (all problems) and no directory is made."""
    out = subprocess.run(
        [str(BIN / "mxcluster"), "setup", "--data-dir", str(tmp_path / "m"),
         "--hostname", "not a host", "--address", "999.1.1.1"],
        capture_output=True, text=True, env={**os.environ, **FAST_HASH})
    assert out.returncode == 1
    assert "hostname" in out.stderr and "999.1.1.1" in out.stderr
    assert not (tmp_path / "m").exists()


def test_serve_refuses_a_second_daemon_on_one_data_dir(machine: MachineProc) -> None:
    """A second `mxcluster serve` on the same data directory exits with a clear error."""
    out = subprocess.run([str(BIN / "mxcluster"), "serve", "--data-dir", str(machine.data_dir)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "another 'mxcluster serve'" in out.stderr


def test_sigterm_shuts_down_cleanly_and_logs_to_the_data_dir(machine: MachineProc) -> None:
    """SIGTERM stops the daemon with exit 0; its log is under DATA_DIR/logs/."""
    assert machine.stop() == 0
    log = (machine.data_dir / "logs" / "mxcluster.log").read_text()
    assert "serving" in log and "shutting down" in log


def test_batch_edits_and_commit_run_in_one_session_and_survive_restart(
        machine: MachineProc) -> None:
    """Edits and commit given together are one session; the commit is there after restart."""
    out = machine.cli("smtproutes new example.com --to 192.0.2.10:25", "commit 'route'")
    assert out.returncode == 0, out.stderr
    machine.stop()
    machine.start()
    shown = machine.cli("smtproutes print", json=True)
    assert json.loads(shown.stdout)["smtproutes"] == [
        {"domain": "example.com", "hops": ["192.0.2.10:25"]}]


def test_json_output_is_one_compact_document_per_command(machine: MachineProc) -> None:
    """--json prints exactly one JSON line per command, with version's documented keys."""
    out = machine.cli("version", "status", json=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    version = json.loads(lines[0])
    assert set(version) == {"version", "hostname", "serial", "fingerprint"}
    assert version["fingerprint"].startswith("SHA256:")


@needs_ssh
def test_debian_ssh_client_runs_batch_commands(machine: MachineProc) -> None:
    """`ssh -p PORT admin@HOST 'showconfig'` works with Debian's OpenSSH client."""
    out = machine.ssh("showconfig")
    assert out.returncode == 0, out.stderr
    assert "machines:" in out.stdout and "Management" in out.stdout


@needs_ssh
def test_debian_ssh_client_gets_exit_codes(machine: MachineProc) -> None:
    """Errors reach the ssh client as the documented exit status and a stderr message."""
    out = machine.ssh("no-such-command")
    assert out.returncode == 2
    assert "unknown command" in out.stderr


def _state(machine: MachineProc) -> str:
    out = machine.cli("showconfig", "commitlog --limit 1000", json=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        ("frobnicate", 2, "unknown command"),
        ("smtproutes new", 2, "smtproutes new: Missing argument"),
        ("smtproutes new example.com --to", 2, "requires an argument"),
        ("listenerconfig new L --type public --interface Management --port 99999", 1, "port"),
        ("smtproutes new 'unbalanced", 2, "cannot parse"),
        ("loadconfig broken.yaml", 1, "YAML syntax error"),
        ("rollback nonsense", 2, "bad commit id"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
        machine: MachineProc, command: str, code: int, message: str) -> None:
    """Each kind of bad input fails with its exit code and message; nothing is committed."""
    (machine.data_dir / "broken.yaml").write_text("machines: [unclosed\n")
    before = _state(machine)
    out = machine.cli(command, "commit")
    assert out.returncode == code, (out.stdout, out.stderr)
    assert message in out.stderr
    assert _state(machine) == before


def test_wrong_password_is_exit_3(machine: MachineProc) -> None:
    """A wrong password is refused with exit code 3."""
    out = machine.cli("version", password="wrong-password")
    assert out.returncode == 3


def test_missing_role_is_exit_3_and_changes_nothing(machine: MachineProc) -> None:
    """A readonly user may show but not edit: exit 3, and nothing is committed."""
    pw = machine.data_dir / "ro-pass"
    pw.write_text("readonly-pass\n")
    made = machine.cli(f"userconfig new ro --role readonly --password-file {pw}", "commit")
    assert made.returncode == 0, made.stderr
    before = _state(machine)
    denied = machine.cli("smtproutes new x.example --to 192.0.2.1", "commit", user="ro",
                         password="readonly-pass")
    assert denied.returncode == 3
    assert "may not run" in denied.stderr
    shown = machine.cli("smtproutes print", user="ro", password="readonly-pass")
    assert shown.returncode == 0
    assert _state(machine) == before


def test_unreachable_machine_is_exit_4(new_machine: MachineProc) -> None:
    """The cli exits 4 when nothing listens at the address."""
    out = new_machine.cli("version")
    assert out.returncode == 4


def test_generated_setup_is_usable(tmp_path: Path) -> None:
    """A machine made by setup serves the admin user with the given password."""
    m = setup_machine(tmp_path, name="mx2.example.com")
    m.start()
    try:
        out = m.cli("userconfig print", json=True)
        assert json.loads(out.stdout)["users"][0]["name"] == "admin"
    finally:
        m.kill()
