"""The permission table: what each role may do (SPEC §2)."""

from __future__ import annotations

import pytest

from mxcluster.errors import PermissionDenied
from mxcluster.users.roles import Permission, Role, allowed, require, sees_secrets

A, OP, R, G = Role.ADMIN, Role.OPERATOR, Role.READONLY, Role.GUEST
TABLE = {
    Permission.BASIC: {A, OP, R, G},
    Permission.SHOW: {A, OP, R},
    Permission.CONFIGURE: {A, OP},
    Permission.ADMIN: {A},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_permission_table(role: Role, permission: Permission) -> None:
    """Each role holds exactly the permissions SPEC §2 gives it."""
    assert allowed(role, permission) is (role in TABLE[permission])


def test_require_refuses_with_exit_code_3_and_names_the_need() -> None:
    """A refused command is PermissionDenied (exit 3) naming the role and the permission."""
    with pytest.raises(PermissionDenied) as err:
        require(Role.READONLY, Permission.CONFIGURE, "commit")
    assert err.value.exit_code == 3
    assert "readonly" in str(err.value) and "configure" in str(err.value)


def test_only_admin_and_operator_see_secrets() -> None:
    """Private keys and password hashes are never shown to readonly or guest."""
    assert [r for r in Role if sees_secrets(r)] == [Role.ADMIN, Role.OPERATOR]
