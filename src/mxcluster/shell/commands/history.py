"""commitlog and rollback: the audit trail."""

from __future__ import annotations

import click

from mxcluster.config.changeset import ChangesetId
from mxcluster.errors import NotFoundError, PermissionDenied, StateError
from mxcluster.service.history import rollback_ops
from mxcluster.shell.core import Ctx, Result, shell_command
from mxcluster.users.roles import Permission, Role


def _describe(op: object) -> str:
    kind, level, block = (getattr(op, a) for a in ("op", "level", "block"))
    entry = getattr(op, "entry", None)
    return f"{kind} {block}{' ' + entry if entry else ''} at {level}"


@shell_command(Permission.SHOW)
@click.command("commitlog")
@click.option("--limit", default=20, type=click.IntRange(1, 10_000), show_default=True,
              help="How many commits to show.")
@click.option("--id", "cid", help="Show every operation of this commit.")
@click.pass_obj
def commitlog(ctx: Ctx, limit: int, cid: str | None) -> Result:
    """Show who committed what, when, where and why (newest first)."""
    store = ctx.machine.store
    entries = [store.log_entry(ChangesetId.parse(cid))] if cid else store.commitlog(limit)
    if cid and entries[0] is None:
        raise NotFoundError(f"no commit {cid}", hint="see 'commitlog'")
    data, lines = [], []
    for e in entries:
        assert e is not None
        ops = store.changeset_ops(e.id, None if cid else 5)
        when = _when(e.hlc.wall_ms)
        data.append({"id": str(e.id), "time": when, "author": e.author, "machine": e.machine,
                     "comment": e.comment, "operations": e.nops,
                     "changes": [_describe(o) for o in ops]})
        lines.append(f"{e.id}  {when}  {e.author}@{e.machine}  {e.comment or '-'}")
        lines += [f"    {_describe(o)}" for o in ops]
        if e.nops > len(ops):
            lines.append(f"    ... {e.nops - len(ops)} more (commitlog --id {e.id})")
    return Result({"commits": data}, "\n".join(lines) or "No commits yet.")


def _when(wall_ms: int) -> str:
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(wall_ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


@shell_command(Permission.CONFIGURE)
@click.command("rollback")
@click.argument("commit_id")
@click.option("--comment", default="", help="Comment for the new commit.")
@click.pass_obj
def rollback(ctx: Ctx, commit_id: str, comment: str) -> Result:
    """Return the configuration to its state right after COMMIT_ID, as a new commit."""
    if ctx.session.dirty:
        raise StateError("this session has uncommitted changes",
                         hint="commit or clearchanges first")
    cid = ChangesetId.parse(commit_id)
    ops = rollback_ops(ctx.machine.store, cid)
    if ctx.session.role is not Role.ADMIN and any(op.block == "users" for op in ops):
        raise PermissionDenied(f"role {ctx.session.role.value!r} may not roll back users",
                               hint="the rollback would change the user database; ask an admin")
    if not ops:
        raise StateError(f"nothing changed since {cid}; nothing to roll back")
    new = ctx.machine.apply_local(ctx.session.user, comment or f"rollback to {cid}", iter(ops))
    return Result({"committed": str(new), "rolled_back_to": str(cid)},
                  f"Configuration rolled back to {cid} as commit {new}")
