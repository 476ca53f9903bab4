"""userconfig and passwd: the user database (cluster level; local when standalone)."""

from __future__ import annotations

from typing import Any

import click

from mxcluster.errors import NotFoundError, StateError, UsageError, ValidationError
from mxcluster.shell.commands.blocks import find, staged_note
from mxcluster.shell.commands.unsub import data_path
from mxcluster.shell.core import Ctx, Result, shell_command
from mxcluster.shell.render import table
from mxcluster.users.passwords import check_strength, hash_password
from mxcluster.users.roles import Permission

ROLES = ["admin", "operator", "readonly", "guest"]


def _users(ctx: Ctx) -> list[dict[str, Any]]:
    level = ctx.machine.users_level()
    return [dict(u) for u in ctx.machine.current(ctx.session, "users", level)]


def _save(ctx: Ctx, rows: list[dict[str, Any]]) -> None:
    if not any(r["role"] == "admin" for r in rows):
        raise StateError("this would leave no admin user", hint="keep at least one admin")
    ctx.machine.stage_set(ctx.session, "users", rows, ctx.machine.users_level())


def new_password(ctx: Ctx, password_file: str | None) -> str:
    """A new password from FILE (first line), or asked twice on a terminal."""
    if password_file:
        try:
            lines = data_path(ctx, password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise NotFoundError(f"cannot read {password_file}: {exc.strerror}") from None
        password = lines[0] if lines else ""
    else:
        password = ctx.ask("--password-file", "New password", secret=True)
        if ctx.ask("--password-file", "Repeat the password", secret=True) != password:
            raise UsageError("the two passwords differ; nothing was changed")
    problems = check_strength(password)
    if problems:
        raise ValidationError(problems)
    return password


@shell_command(Permission.ADMIN)
@click.group("userconfig")
def userconfig() -> None:
    """Manage administrator accounts (admin only)."""


@userconfig.command("new")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), help="What the user may do.")
@click.option("--password-file", help="File whose first line is the password.")
@click.option("--ssh-key", "ssh_keys", multiple=True, help="SSH public key line; repeat.")
@click.pass_obj
def user_new(ctx: Ctx, name: str, role: str | None, password_file: str | None,
             ssh_keys: tuple[str, ...]) -> Result:
    """Add user NAME with ROLE, a password and/or SSH keys."""
    rows = _users(ctx)
    if any(r["name"] == name for r in rows):
        raise UsageError(f"user {name!r} exists", hint="use 'userconfig edit'")
    role = role or ctx.ask("--role", "Role (admin/operator/readonly/guest)", "readonly")
    row: dict[str, Any] = {"name": name, "role": role, "ssh_keys": list(ssh_keys)}
    if password_file or not ssh_keys:
        row["password_hash"] = hash_password(new_password(ctx, password_file))
    _save(ctx, [*rows, row])
    return Result({"staged": {"name": name, "role": role}},
                  f"User {name} ({role}) added" + staged_note(ctx))


@userconfig.command("edit")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), help="New role.")
@click.option("--password-file", help="File whose first line is the new password.")
@click.option("--ssh-key", "ssh_keys", multiple=True, help="Replaces the user's keys.")
@click.pass_obj
def user_edit(ctx: Ctx, name: str, role: str | None, password_file: str | None,
              ssh_keys: tuple[str, ...]) -> Result:
    """Change the role, password or SSH keys of user NAME."""
    rows = _users(ctx)
    row = find(rows, "name", name, "user")
    if role:
        row["role"] = role
    if ssh_keys:
        row["ssh_keys"] = list(ssh_keys)
    if password_file:
        row["password_hash"] = hash_password(new_password(ctx, password_file))
    _save(ctx, rows)
    return Result({"staged": name}, f"User {name} changed" + staged_note(ctx))


@userconfig.command("delete")
@click.argument("name")
@click.pass_obj
def user_delete(ctx: Ctx, name: str) -> Result:
    """Remove user NAME."""
    if name == ctx.session.user:
        raise StateError("you cannot delete the user you are logged in as")
    rows = _users(ctx)
    find(rows, "name", name, "user")
    _save(ctx, [r for r in rows if r["name"] != name])
    return Result({"deleted": name}, f"User {name} deleted" + staged_note(ctx))


@userconfig.command("print")
@click.pass_obj
def user_print(ctx: Ctx) -> Result:
    """List the users (password hashes are never shown)."""
    rows = _users(ctx)
    data = [{"name": r["name"], "role": r["role"], "password": bool(r.get("password_hash")),
             "ssh_keys": len(r.get("ssh_keys", []))} for r in rows]
    text = table(["NAME", "ROLE", "PASSWORD", "SSH KEYS"],
                 [[d["name"], d["role"], "yes" if d["password"] else "no", d["ssh_keys"]]
                  for d in data])
    return Result({"users": data}, text)


@shell_command(Permission.BASIC)
@click.command("passwd")
@click.option("--password-file", help="File whose first line is the new password.")
@click.option("--user", "target", help="Another user's name (admin only).")
@click.pass_obj
def passwd(ctx: Ctx, password_file: str | None, target: str | None) -> Result:
    """Change your own password (takes effect at once, no commit needed)."""
    name = target or ctx.session.user
    if name != ctx.session.user and ctx.session.role.value != "admin":
        from mxcluster.errors import PermissionDenied

        raise PermissionDenied("only an admin may change another user's password")
    if ctx.machine.user(name) is None:
        raise NotFoundError(f"no user {name!r}")
    cid = ctx.machine.change_password(ctx.session.user, name,
                                      hash_password(new_password(ctx, password_file)))
    return Result({"committed": str(cid)}, f"Password of {name} changed ({cid}).")
