"""'mxcluster cli' in batch mode: one session per run, exit codes of SPEC §3.2."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.sshd.harness import ADMIN_PASSWORD, HOSTNAME, VIEWER_PASSWORD, Harness

from mxcluster.cli.client import cli_command, run_cli


def cli(h: Harness, *commands: str, password: str = ADMIN_PASSWORD, user: str = "admin",
        json_output: bool = False, **kw: Any) -> int:
    return run_cli("127.0.0.1", kw.pop("port", h.port), user, password, list(commands),
                   kw.pop("file", None), json_output, False, **kw)


def test_commands_run_and_exit_0(harness: Harness, capfd: pytest.CaptureFixture[str]) -> None:
    """-c 'version' prints the version and exits 0."""
    assert cli(harness, "version") == 0
    assert HOSTNAME in capfd.readouterr().out


def test_edits_and_commit_in_one_session(harness: Harness,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    """Several -c commands run in one session, so an edit and 'commit' go together."""
    assert cli(harness, "smtproutes new example.org --to mx.example.net", "commit") == 0
    assert cli(harness, "showconfig") == 0
    assert "example.org" in capfd.readouterr().out


def test_first_failure_stops_the_run(harness: Harness,
                                     capfd: pytest.CaptureFixture[str]) -> None:
    """The first failing command stops the run and gives the exit code."""
    assert cli(harness, "version", "nosuchcommand", "version") == 2
    out, err = capfd.readouterr()
    assert out.count(HOSTNAME) == 1
    assert "unknown command" in err


def test_commands_from_a_file(harness: Harness, tmp_path: Path,
                              capfd: pytest.CaptureFixture[str]) -> None:
    """-f FILE runs its lines (comments and blank lines skipped) in one session."""
    script = tmp_path / "cmds.txt"
    script.write_text("# add a route\nsmtproutes new example.org --to mx.example.net\n\ncommit\n")
    assert cli(harness, file=script) == 0
    assert cli(harness, "smtproutes print") == 0
    assert "example.org" in capfd.readouterr().out


def test_json_prints_one_document_per_command(harness: Harness,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    """--json: every command prints one compact JSON document on one line."""
    assert cli(harness, "version", "smtproutes print", json_output=True) == 0
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["hostname"] == HOSTNAME
    json.loads(lines[1])


def test_json_errors_are_json(harness: Harness, capfd: pytest.CaptureFixture[str]) -> None:
    """--json: a failing command prints the JSON error shape on stderr."""
    assert cli(harness, "nosuchcommand", json_output=True) == 2
    assert json.loads(capfd.readouterr().err)["exit_code"] == 2


def test_wrong_password_exits_3(harness: Harness, capfd: pytest.CaptureFixture[str]) -> None:
    """A wrong password exits 3 with a message saying authentication failed."""
    assert cli(harness, "version", password="wrong-password") == 3
    assert "authentication" in capfd.readouterr().err


def test_missing_role_exits_3(harness: Harness, capfd: pytest.CaptureFixture[str]) -> None:
    """A readonly user running a configuration command exits 3."""
    code = cli(harness, "smtproutes new example.org --to mx.example.net", "commit",
               user="viewer", password=VIEWER_PASSWORD)
    assert code == 3
    assert "readonly" in capfd.readouterr().err


def test_refused_connection_exits_4(capfd: pytest.CaptureFixture[str]) -> None:
    """A port nobody listens on exits 4 (cannot reach the machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        assert run_cli("127.0.0.1", port, "admin", "x", ["version"], None, False, False) == 4
    assert "cannot reach" in capfd.readouterr().err


def test_unknown_host_exits_4(capfd: pytest.CaptureFixture[str]) -> None:
    """A host name that does not resolve exits 4."""
    assert run_cli("no-such-host.invalid", 2222, "admin", "x", ["version"], None,
                   False, False) == 4


def test_pinned_fingerprint_is_accepted(harness: Harness) -> None:
    """--fingerprint equal to the machine's host key logs in."""
    assert cli(harness, "version", fingerprint=harness.fingerprint) == 0


def test_wrong_fingerprint_exits_3(harness: Harness, capfd: pytest.CaptureFixture[str]) -> None:
    """A host key that differs from --fingerprint exits 3 before logging in."""
    assert cli(harness, "version", fingerprint="SHA256:" + "A" * 43) == 3
    assert harness.fingerprint in capfd.readouterr().err


def test_verbose_shows_the_fingerprint(harness: Harness,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    """-v prints the machine's host key fingerprint on stderr."""
    assert cli(harness, "version", verbose=True) == 0
    assert harness.fingerprint in capfd.readouterr().err


def invoke(h: Harness, *args: str, stdin: str | None = None,
           env: dict[str, str] | None = None) -> Any:
    base = ["--host", "127.0.0.1", "--port", str(h.port), "--user", "admin"]
    return CliRunner().invoke(cli_command, [*base, *args], input=stdin, env=env)


def test_password_from_environment(harness: Harness) -> None:
    """The password may come from $MXCLUSTER_PASSWORD."""
    result = invoke(harness, "-c", "version", env={"MXCLUSTER_PASSWORD": ADMIN_PASSWORD})
    assert result.exit_code == 0, result.output


def test_password_file(harness: Harness, tmp_path: Path) -> None:
    """--password-file reads the password (trailing newline ignored)."""
    secret = tmp_path / "pw"
    secret.write_text(ADMIN_PASSWORD + "\n")
    result = invoke(harness, "--password-file", str(secret), "-c", "version",
                    env={"MXCLUSTER_PASSWORD": ""})
    assert result.exit_code == 0, result.output


def test_commands_from_stdin_when_not_a_terminal(harness: Harness) -> None:
    """Without -c or -f, commands are read from stdin when it is not a terminal."""
    result = invoke(harness, stdin="version\n", env={"MXCLUSTER_PASSWORD": ADMIN_PASSWORD})
    assert result.exit_code == 0, result.output
    assert HOSTNAME in result.output


def test_no_password_and_no_terminal_does_not_prompt(harness: Harness) -> None:
    """Without a password and without a terminal nothing is asked; login fails with 3."""
    result = invoke(harness, "-c", "version", env={"MXCLUSTER_PASSWORD": "", "HOME": "/"})
    assert result.exit_code == 3


def test_key_login(harness: Harness) -> None:
    """-i KEY logs in with the user's registered key."""
    result = invoke(harness, "-i", str(harness.user_key_path), "-c", "version")
    assert result.exit_code == 0, result.output


def test_both_c_and_f_is_a_usage_error(harness: Harness, tmp_path: Path) -> None:
    """-c and -f together exit 2."""
    script = tmp_path / "cmds.txt"
    script.write_text("version\n")
    result = invoke(harness, "-c", "version", "-f", str(script),
                    env={"MXCLUSTER_PASSWORD": ADMIN_PASSWORD})
    assert result.exit_code == 2


def test_missing_file_is_a_usage_error(harness: Harness, tmp_path: Path) -> None:
    """-f with a file that does not exist exits 2."""
    result = invoke(harness, "-f", str(tmp_path / "missing"),
                    env={"MXCLUSTER_PASSWORD": ADMIN_PASSWORD})
    assert result.exit_code == 2


def test_missing_host_is_a_usage_error() -> None:
    """Without --host the command exits 2."""
    assert CliRunner().invoke(cli_command, ["--user", "admin", "-c", "version"]).exit_code == 2
