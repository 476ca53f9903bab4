"""Batch mode over SSH exec: login, several commands in one session, exit codes."""

from __future__ import annotations

import json

import asyncssh
import pytest
from tests.sshd.clients import run
from tests.sshd.harness import HOSTNAME, VIEWER_PASSWORD, Harness


def test_password_login_runs_a_command(harness: Harness) -> None:
    """A password login can run 'version' and gets exit status 0."""
    result = run(harness, "version")
    assert result.exit_status == 0, result.stderr
    assert HOSTNAME in result.stdout
    assert harness.fingerprint in result.stdout


def test_json_option_prints_one_document(harness: Harness) -> None:
    """'version --json' prints one compact JSON document with the documented keys."""
    result = run(harness, "version --json")
    doc = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert {"version", "hostname", "serial", "fingerprint"} <= doc.keys()


def test_edits_and_commit_in_one_exec(harness: Harness) -> None:
    """Several lines in one exec run in one session, so an edit can be committed."""
    result = run(harness, "smtproutes new example.org --to mx.example.net\ncommit 'route'")
    assert result.exit_status == 0, result.stderr
    shown = run(harness, "showconfig")
    assert "example.org" in shown.stdout


def test_batch_stops_at_first_failure(harness: Harness) -> None:
    """The first failing line stops the batch; its exit code is the channel's status."""
    result = run(harness, "version\nnosuchcommand\nversion")
    assert result.exit_status == 2
    assert result.stdout.count(HOSTNAME) == 1
    assert "unknown command 'nosuchcommand'" in result.stderr


def test_failed_batch_commits_nothing(harness: Harness) -> None:
    """An edit followed by a failing line leaves the configuration unchanged."""
    result = run(harness, "smtproutes new example.org --to mx.example.net\nbogus\ncommit")
    assert result.exit_status == 2
    assert "example.org" not in run(harness, "showconfig").stdout


def test_unknown_command_is_a_usage_error(harness: Harness) -> None:
    """An unknown command exits 2 with a message on stderr."""
    result = run(harness, "frobnicate")
    assert result.exit_status == 2
    assert "unknown command" in result.stderr


def test_readonly_user_cannot_configure(harness: Harness) -> None:
    """A readonly user running a configuration command gets exit 3."""
    result = run(harness, "smtproutes new example.org --to mx.example.net",
                 user="viewer", password=VIEWER_PASSWORD)
    assert result.exit_status == 3
    assert "readonly" in result.stderr


def test_batch_never_prompts(harness: Harness) -> None:
    """A command missing an argument fails as a usage error instead of asking."""
    result = run(harness, "smtproutes new example.org")
    assert result.exit_status == 2
    assert "--to" in result.stderr


def test_wrong_password_is_refused(harness: Harness) -> None:
    """A wrong password does not log in."""
    with pytest.raises(asyncssh.PermissionDenied):
        run(harness, "version", password="wrong-password")


def test_unknown_user_is_refused(harness: Harness) -> None:
    """A user that does not exist does not log in."""
    with pytest.raises(asyncssh.PermissionDenied):
        run(harness, "version", user="mallory")


def test_key_login(harness: Harness) -> None:
    """The admin's registered Ed25519 key logs in without a password."""
    result = run(harness, "version", password=None,
                 client_keys=[str(harness.user_key_path)])
    assert result.exit_status == 0, result.stderr


def test_unregistered_key_is_refused(harness: Harness) -> None:
    """A key that is not registered for the user does not log in."""
    other = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        run(harness, "version", password=None, client_keys=[other])


def test_shell_without_pty_runs_stdin_as_batch(harness: Harness) -> None:
    """A shell request without PTY ('ssh host < file') runs stdin as a batch."""
    result = run(harness, "", stdin="version\n# a comment\nnosuchcommand\n")
    assert result.exit_status == 2
    assert HOSTNAME in result.stdout


def test_empty_exec_succeeds(harness: Harness) -> None:
    """An exec request with no command lines exits 0."""
    assert run(harness, "  \n").exit_status == 0


def test_oversized_stdin_batch_is_refused(harness: Harness) -> None:
    """A shell without PTY refuses more command text than it will buffer (exit 2)."""
    from mxcluster.sshd.session import MAX_STDIN_CHARS

    result = run(harness, "", stdin="version\n" * (MAX_STDIN_CHARS // 8 + 1))
    assert result.exit_status == 2
    assert "stdin" in result.stderr
