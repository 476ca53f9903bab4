"""Users through the service layer: password and key checks, password changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import ADMIN_PASSWORD, USER_PASSWORD
from mxcluster.errors import NotFoundError
from mxcluster.service.machine import Machine
from mxcluster.service.session import Session
from mxcluster.users.passwords import hash_password
from mxcluster.users.roles import Role

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh"


def test_setup_admin_logs_in_with_its_password(machine: Machine) -> None:
    """The admin made by setup has its password; a wrong one or an unknown user fails."""
    assert machine.check_password("admin", ADMIN_PASSWORD) is Role.ADMIN
    assert machine.check_password("admin", "wrong-password") is None
    assert machine.check_password("nobody", ADMIN_PASSWORD) is None


def test_user_role_comes_from_the_database(machine: Machine,
                                           add_user: Callable[[str, Role], None]) -> None:
    """A committed user logs in with the role stored for it."""
    add_user("olga", Role.OPERATOR)
    assert machine.check_password("olga", USER_PASSWORD) is Role.OPERATOR


def test_ssh_key_login_ignores_the_key_comment(machine: Machine, admin: Session) -> None:
    """A user's key matches whatever comment the client's key line carries."""
    users = machine.current(admin, "users")
    users = [{**users[0], "ssh_keys": [KEY + " admin@laptop"]}]
    machine.stage_set(admin, "users", users)
    machine.commit(admin)
    assert machine.check_key("admin", KEY) is Role.ADMIN
    assert machine.check_key("admin", KEY + " other-comment") is Role.ADMIN
    assert machine.check_key("admin", KEY[:-1] + "X") is None
    assert machine.check_key("nobody", KEY) is None


def test_change_password_commits_at_once(machine: Machine) -> None:
    """A password change is its own commit and the old password stops working."""
    vv = machine.store.version_vector()
    machine.change_password("admin", "admin", hash_password("brand-new-pass"))
    assert machine.check_password("admin", "brand-new-pass") is Role.ADMIN
    assert machine.check_password("admin", ADMIN_PASSWORD) is None
    assert sum(machine.store.version_vector().values()) == sum(vv.values()) + 1


def test_change_password_of_unknown_user_is_an_error(machine: Machine) -> None:
    """Changing the password of a user that does not exist changes nothing."""
    vv = machine.store.version_vector()
    with pytest.raises(NotFoundError):
        machine.change_password("admin", "ghost", hash_password("brand-new-pass"))
    assert machine.store.version_vector() == vv
