"""Roles and what each may do (SPEC §2).

Every shell command declares the ``Permission`` it needs; ``allowed`` is the one place
that decides whether a role has it.
"""

from __future__ import annotations

import enum

from mxcluster.errors import PermissionDenied


class Role(enum.Enum):
    """An administrator's role."""

    ADMIN = "admin"
    """Everything."""
    OPERATOR = "operator"
    """Everything except users, cluster membership and upgrades."""
    READONLY = "readonly"
    """Shows and lists only."""
    GUEST = "guest"
    """``status``, ``version`` and its own ``passwd``."""


class Permission(enum.Enum):
    """What a command needs."""

    BASIC = "basic"
    """status, version, help, passwd for oneself: every role."""
    SHOW = "show"
    """Read configuration and state: readonly and above."""
    CONFIGURE = "configure"
    """Stage and commit configuration, mail operations: operator and above."""
    ADMIN = "admin"
    """Users, cluster membership, upgrades: admin only."""


_GRANTS = {
    Role.ADMIN: set(Permission),
    Role.OPERATOR: {Permission.BASIC, Permission.SHOW, Permission.CONFIGURE},
    Role.READONLY: {Permission.BASIC, Permission.SHOW},
    Role.GUEST: {Permission.BASIC},
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


def require(role: Role, permission: Permission, command: str) -> None:
    """Raise PermissionDenied unless ROLE has PERMISSION."""
    if not allowed(role, permission):
        raise PermissionDenied(
            f"role {role.value!r} may not run {command!r}",
            hint=f"it needs the {permission.value!r} permission; ask an admin",
        )


def sees_secrets(role: Role) -> bool:
    """Private keys and password hashes are never shown to readonly or guest users."""
    return role in (Role.ADMIN, Role.OPERATOR)
