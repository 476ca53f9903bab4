"""commitlog and rollback from the shell: the audit trail and reverting as a new commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mxcluster.service.machine import Machine
from mxcluster.shell.core import Shell


def ok(shell: Shell, line: str) -> str:
    out = shell.execute(line)
    assert out.exit_code == 0, (line, out.stderr)
    return out.stdout


def latest_id(shell: Shell) -> str:
    return json.loads(ok(shell, "commitlog --limit 1 --json"))["commits"][0]["id"]


def test_commitlog_says_who_when_where_why_and_what(shell: Shell, machine: Machine) -> None:
    """Each commit lists author, machine, time, comment and its operations, newest first."""
    ok(shell, "smtproutes new a.example --to mx.a.example")
    ok(shell, "unsubscribe new bob@example.com")
    ok(shell, 'commit "route and entry"')
    commits = json.loads(ok(shell, "commitlog --json"))["commits"]
    top = commits[0]
    assert (top["author"], top["machine"], top["comment"]) == (
        "admin", machine.identity.name, "route and entry")
    assert top["time"].endswith("Z")
    assert f"set smtproutes at machine:{machine.identity.name}" in top["changes"]
    assert any("add unsubscribe bob@example.com" in c for c in top["changes"])
    assert commits[-1]["comment"] == "machine created"
    assert "route and entry" in ok(shell, "commitlog --limit 1")


def test_commitlog_id_shows_every_operation(shell: Shell, machine: Machine) -> None:
    """--id lists all operations of one commit, beyond the first five."""
    for i in range(8):
        ok(shell, f"unsubscribe new user{i}@example.com")
    ok(shell, "commit")
    cid = latest_id(shell)
    assert f"more (commitlog --id {cid})" in ok(shell, "commitlog --limit 1")
    [full] = json.loads(ok(shell, f"commitlog --id {cid} --json"))["commits"]
    assert len(full["changes"]) == full["operations"] == 9  # the settings block + 8 entries


def test_rollback_restores_and_is_recorded(shell: Shell, machine: Machine) -> None:
    """rollback ID restores the configuration of ID as a new commit in the log."""
    ok(shell, "smtproutes new a.example --to mx.a.example")
    ok(shell, "unsubscribe new keep@example.com")
    ok(shell, "commit")
    target = latest_id(shell)
    ok(shell, "smtproutes delete a.example")
    ok(shell, "unsubscribe delete keep@example.com")
    ok(shell, "unsubscribe new extra@example.com")
    ok(shell, "commit")
    out = json.loads(ok(shell, f"rollback {target} --json"))
    assert out["rolled_back_to"] == target
    assert latest_id(shell) == out["committed"] != target
    assert [r["domain"] for r in machine.effective("smtproutes").value] == ["a.example"]
    assert list(machine.store.unsub_iter(str(machine.self_level))) == ["keep@example.com"]
    assert json.loads(ok(shell, "commitlog --limit 1 --json"))["commits"][0]["comment"] == (
        f"rollback to {target}")


def test_rollback_errors_change_nothing(shell: Shell, state: Callable[[], Any]) -> None:
    """Unknown id (1), malformed id (2), nothing to undo (1), staged edits (1): no change."""
    ok(shell, "smtproutes new a.example --to mx.a.example")
    ok(shell, "commit")
    latest = latest_id(shell)
    before = state()
    for line, code, words in [("rollback NOPE-9", 1, "no commit NOPE-9"),
                              ("rollback 12", 2, "bad commit id"),
                              (f"rollback {latest}", 1, "nothing to roll back")]:
        out = shell.execute(line)
        assert (out.exit_code, words in out.stderr) == (code, True), out
    ok(shell, "smtproutes new b.example --to mx.b.example")
    out = shell.execute(f"rollback {latest}")
    assert out.exit_code == 1 and "uncommitted changes" in out.stderr
    assert state() == before


def test_passwd_commits_at_once_and_shows_in_the_log(shell: Shell, machine: Machine,
                                                     data_file: Callable[[str, str], Any]) -> None:
    """passwd needs no commit; the log records it without the hash."""
    data_file("pw.txt", "another-password\n")
    ok(shell, "passwd --password-file pw.txt")
    top = json.loads(ok(shell, "commitlog --limit 1 --json"))["commits"][0]
    assert top["comment"] == "passwd admin"
    assert "$argon2" not in json.dumps(top)


def test_weak_password_is_refused(shell: Shell, state: Callable[[], Any],
                                  data_file: Callable[[str, str], Any]) -> None:
    """A password that breaks the rules is refused (exit 1) and nothing changes."""
    data_file("pw.txt", "short\n")
    before = state()
    out = shell.execute("passwd --password-file pw.txt")
    assert out.exit_code == 1 and "at least 8 characters" in out.stderr
    assert state() == before


def test_last_admin_cannot_be_removed(shell_as: Callable[[Any], Shell],
                                      state: Callable[[], Any]) -> None:
    """Demoting the only admin is refused: the cluster would have no admin."""
    from mxcluster.users.roles import Role

    shell = shell_as(Role.ADMIN)
    before = state()
    out = shell.execute("userconfig edit admin --role operator")
    assert out.exit_code == 1 and "no admin" in out.stderr
    assert state() == before and not shell.session.dirty
