"""help, version, status, commit, clearchanges, clustermode, clusterconfig list."""

from __future__ import annotations

import click

from mxcluster.config.levels import Level
from mxcluster.errors import StateError, UsageError
from mxcluster.shell.core import REGISTRY, Ctx, Result, permissions_of, shell_command
from mxcluster.users.roles import Permission, allowed


@shell_command(Permission.BASIC)
@click.command("help")
@click.argument("command", required=False)
@click.argument("subs", nargs=-1)
@click.pass_obj
def help_(ctx: Ctx, command: str | None, subs: tuple[str, ...]) -> Result:
    """List the commands, or show how to use COMMAND [SUB-COMMAND...]."""
    if command is None:
        rows = [(n, i.summary) for n, i in sorted(REGISTRY.items())
                if any(allowed(ctx.session.role, p) for p in permissions_of(i))]
        width = max(len(n) for n, _ in rows)
        text = "\n".join(f"  {n:<{width}}  {s}" for n, s in rows)
        return Result({"commands": dict(rows)},
                      "Commands (help COMMAND for details):\n" + text)
    info = REGISTRY.get(command)
    if info is None:
        raise UsageError(f"unknown command {command!r}", hint="type 'help' for the list")
    cmd = info.command
    path = command
    for sub in subs:
        if not (isinstance(cmd, click.Group) and sub in cmd.commands):
            break
        cmd, path = cmd.commands[sub], f"{path} {sub}"
    with click.Context(cmd, info_name=path) as cctx:
        text = cmd.get_help(cctx).replace("Usage: ", "Usage: ", 1)
    return Result({"command": path, "help": text}, text)


@shell_command(Permission.BASIC)
@click.command("version")
@click.pass_obj
def version(ctx: Ctx) -> Result:
    """Show software version, host name, serial number and SSH host-key fingerprint."""
    m = ctx.machine
    data = {"version": m.version, "hostname": m.hostname(), "serial": m.identity.serial,
            "fingerprint": m.identity.fingerprint}
    text = "\n".join(f"{k.capitalize():<12} {v}" for k, v in data.items())
    return Result(data, text)


@shell_command(Permission.CONFIGURE)
@click.command("commit")
@click.argument("comment", required=False, default="")
@click.option("--force", is_flag=True, help="Overwrite blocks that changed underneath.")
@click.pass_obj
def commit(ctx: Ctx, comment: str, force: bool) -> Result:
    """Commit all staged edits of this session as one atomic changeset."""
    m, s = ctx.machine, ctx.session
    if not s.dirty:
        raise StateError("there are no uncommitted changes")
    try:
        cid = m.commit(s, comment, force=force)
    except Exception as exc:
        from mxcluster.errors import ConflictError

        if not isinstance(exc, ConflictError) or not ctx.interactive:
            raise
        if not ctx.confirm(f"{exc.message}. Overwrite them?", "--force", False):
            s.clear()
            return Result({"committed": None}, "Your changes were discarded.")
        cid = m.commit(s, comment, force=True)
    return Result({"committed": str(cid)}, f"Changes committed: {cid}")


@shell_command(Permission.CONFIGURE)
@click.command("clearchanges")
@click.pass_obj
def clearchanges(ctx: Ctx) -> Result:
    """Drop every staged edit of this session."""
    n = len(ctx.session.summary())
    ctx.session.clear()
    return Result({"cleared": n}, f"Cleared {n} staged change(s).")


@shell_command(Permission.SHOW)
@click.command("changes")
@click.pass_obj
def changes(ctx: Ctx) -> Result:
    """List the edits staged in this session and not yet committed."""
    lines = ctx.session.summary()
    return Result({"staged": lines}, "\n".join(lines) or "No uncommitted changes.")


@shell_command(Permission.SHOW)
@click.command("clustermode")
@click.argument("kind", type=click.Choice(["cluster", "group", "machine"]))
@click.argument("name", required=False)
@click.pass_obj
def clustermode(ctx: Ctx, kind: str, name: str | None) -> Result:
    """Choose the level that following configuration commands act on."""
    m = ctx.machine
    if m.standalone:
        raise StateError("this machine is not in a cluster",
                         hint="create one with 'clusterconfig create NAME'")
    if kind != "cluster" and not name:
        raise UsageError(f"clustermode {kind} needs a NAME")
    level = Level.parse(kind if kind == "cluster" else f"{kind}:{name}")
    if (kind == "group" and level.name not in m.groups()) or (
        kind == "machine" and level.name not in m.machines()
    ):
        raise UsageError(f"no {kind} named {name!r}")
    ctx.session.mode = level
    return Result({"mode": str(level)}, f"Mode is now {level}.")


@shell_command(Permission.BASIC)
@click.command("status")
@click.pass_obj
def status(ctx: Ctx) -> Result:
    """Show version, uptime, cluster state and (when mail runs) listeners and counters."""
    import time

    m = ctx.machine
    data: dict[str, object] = {
        "hostname": m.hostname(),
        "version": m.version,
        "uptime_seconds": int(time.time() - m.started_at),
        "cluster": m.cluster_name,
    }
    if not m.standalone:
        from mxcluster.service import cluster

        data["links"] = {x["name"]: x["state"] for x in cluster.listing(m)["machines"]
                         if x["name"] != m.identity.name}
    from mxcluster.shell.render import pairs

    shown = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
    shown["cluster"] = shown["cluster"] or "(standalone)"
    links = data.get("links")
    if isinstance(links, dict):
        shown["links"] = ", ".join(f"{k} {v}" for k, v in links.items()) or "(no peers)"
    from mxcluster.shell.commands.mail import local_engine, mail_status

    engine = local_engine(ctx)
    if engine is None:
        return Result(data, pairs(shown))

    async def with_mail() -> Result:
        return mail_status(engine, data, shown)

    return Result(then=with_mail)
