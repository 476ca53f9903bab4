"""Every command checks the role (SPEC §2): a table of (role, command) -> allowed or denied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import USER_PASSWORD
from mxcluster.service.machine import Machine
from mxcluster.shell.core import Shell
from mxcluster.users.roles import Role

A, OP, R, G = Role.ADMIN, Role.OPERATOR, Role.READONLY, Role.GUEST
EVERYONE = {A, OP, R, G}

# command line -> roles allowed to run it (everyone else gets exit code 3)
TABLE: list[tuple[str, set[Role]]] = [
    ("status", EVERYONE),
    ("version", EVERYONE),
    ("help", EVERYONE),
    ("passwd --password-file newpass.txt", EVERYONE),
    ("showconfig", {A, OP, R}),
    ("showconfig --effective", {A, OP, R}),
    ("commitlog", {A, OP, R}),
    ("changes", {A, OP, R}),
    ("smtproutes print", {A, OP, R}),
    ("listenerconfig print", {A, OP, R}),
    ("interfaceconfig print", {A, OP, R}),
    ("unsubscribe print", {A, OP, R}),
    ("unsubscribe test bob@example.com", {A, OP, R}),
    ("smtproutes new example.com --to mx.example.com", {A, OP}),
    ("unsubscribe new bob@example.com", {A, OP}),
    ("sethostname mx.example.com", {A, OP}),
    ("bounceconfig setup --no-bounce", {A, OP}),
    ("clearchanges", {A, OP}),
    ("saveconfig out.yaml", {A, OP}),
    ("loadconfig plain.yaml", {A, OP}),
    ("userconfig print", {A}),
    ("userconfig new eve --role guest --password-file newpass.txt", {A}),
    ("userconfig delete guest", {A}),
    ("loadconfig users.yaml", {A}),
    ("clusterset delete users --at machine:mail1.example.com", {A}),
]


@pytest.fixture
def files(data_file: Callable[[str, str], Path], machine: Machine,
          shell_as: Callable[[Role], Shell]) -> None:
    """A guest user, and files the commands read: a password, config with and without users."""
    shell_as(G)
    data_file("newpass.txt", "a-new-password\n")
    me = machine.identity.name
    data_file("plain.yaml", f'machines:\n  "{me}":\n    smtproutes: []\n')
    data_file("users.yaml", f'machines:\n  "{me}":\n    users:\n'
                            f'    - {{name: admin, role: admin}}\n')


def outcome(shell_as: Callable[[Role], Shell], role: Role, line: str) -> Any:
    shell = shell_as(role)
    return shell, shell.execute(line)


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize(("line", "allowed"), TABLE, ids=[t[0].split(" --")[0] for t in TABLE])
def test_role_table(shell_as: Callable[[Role], Shell], state: Callable[[], Any], role: Role,
                    line: str, allowed: set[Role]) -> None:
    """Allowed roles run the command; others get exit 3, a message, and nothing changes."""
    shell = shell_as(role)
    before = state()
    out = shell.execute(line)
    if role in allowed:
        assert out.exit_code == 0, out.stderr
    else:
        assert out.exit_code == 3, (out.stdout, out.stderr)
        assert f"role {role.value!r}" in out.stderr and not out.stdout
        assert state() == before and not shell.session.dirty


@pytest.mark.parametrize("role", [OP, R, G], ids=lambda r: r.value)
def test_only_admin_changes_another_users_password(
        shell_as: Callable[[Role], Shell], machine: Machine, role: Role,
        data_file: Callable[[str, str], Path], state: Callable[[], Any]) -> None:
    """passwd --user OTHER is refused (exit 3) for every role but admin."""
    shell = shell_as(role)
    data_file("newpass.txt", "a-new-password\n")
    before = state()
    out = shell.execute("passwd --user admin --password-file newpass.txt")
    assert out.exit_code == 3
    assert state() == before


def test_admin_changes_another_users_password(shell_as: Callable[[Role], Shell],
                                              machine: Machine,
                                              data_file: Callable[[str, str], Path]) -> None:
    """An admin may set another user's password; it works at once, without commit."""
    shell_as(G)
    data_file("newpass.txt", "a-new-password\n")
    out = shell_as(A).execute("passwd --user guest --password-file newpass.txt")
    assert out.exit_code == 0, out.stderr
    assert machine.check_password("guest", "a-new-password") is G
    assert machine.check_password("guest", USER_PASSWORD) is None


def test_guest_changes_its_own_password(shell_as: Callable[[Role], Shell], machine: Machine,
                                        data_file: Callable[[str, str], Path]) -> None:
    """A guest's passwd changes its own password only."""
    data_file("newpass.txt", "a-new-password\n")
    assert shell_as(G).execute("passwd --password-file newpass.txt").exit_code == 0
    assert machine.check_password("guest", "a-new-password") is G


@pytest.mark.parametrize("role", [R, G], ids=lambda r: r.value)
def test_readonly_and_guest_cannot_commit_staged_edits(shell_as: Callable[[Role], Shell],
                                                       role: Role,
                                                       state: Callable[[], Any]) -> None:
    """commit is refused for roles that cannot configure, whatever the session holds."""
    shell = shell_as(role)
    before = state()
    out = shell.execute('commit "sneaky"')
    assert out.exit_code == 3 and state() == before


def test_help_lists_only_what_the_role_may_run(shell_as: Callable[[Role], Shell]) -> None:
    """A guest's help shows status, version and passwd, and no configuration command."""
    text = shell_as(G).execute("help").stdout
    for name in ("status", "version", "passwd"):
        assert name in text
    for name in ("smtproutes", "showconfig", "userconfig", "commit"):
        assert f"  {name} " not in text


def test_operator_cannot_roll_back_a_user_change(shell_as: Callable[[Role], Shell],
                                                 machine: Machine,
                                                 state: Callable[[], Any]) -> None:
    """Rollback by a non-admin may not change the user database (it would undo passwords)."""
    operator = shell_as(OP)
    target = str(machine.store.commitlog(1)[0].id)
    shell_as(G)  # an admin commit that adds the guest user
    before = state()
    out = operator.execute(f"rollback {target}")
    assert out.exit_code == 3, (out.stdout, out.stderr)
    assert state() == before
    assert machine.user("guest") is not None
