"""``clusterconfig``: the cluster's membership and housekeeping (SPEC §4).

Every change is committed at once (no ``commit`` needed) and replicated like any
other changeset. ``create``, ``join`` and ``prepjoin`` live in ``joining``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import click

from mxcluster.config.changeset import Op
from mxcluster.errors import StateError
from mxcluster.membership import moves, ops
from mxcluster.membership.model import Membership
from mxcluster.service import cluster
from mxcluster.shell.core import Ctx, Result, needs, shell_command
from mxcluster.shell.render import table
from mxcluster.users.roles import Permission


@shell_command(Permission.ADMIN)
@click.group("clusterconfig")
def clusterconfig() -> None:
    """Create, join and manage the cluster (admin; list and connstatus: any reader)."""


def change(ctx: Ctx, comment: str, build: Callable[[Membership], Iterable[Op]]) -> Result:
    """Validate and commit a membership change at once."""
    m = ctx.machine
    if m.standalone:
        raise StateError("this machine is not in a cluster",
                         hint="'clusterconfig create NAME' or 'clusterconfig join HOST'")
    cid = cluster.commit_ops(m, ctx.session.user, f"clusterconfig {comment}",
                             build(m.membership()))
    return Result({"committed": str(cid)}, f"Done: {comment} ({cid}).")


# -- views ----------------------------------------------------------------------------

@needs(Permission.SHOW)
@clusterconfig.command("list")
@click.pass_obj
def list_(ctx: Ctx) -> Result:
    """Show the cluster: name, addressing, groups, and every machine with its state."""
    data = cluster.listing(ctx.machine)
    if data["cluster"] is None:
        return Result(data, "This machine is standalone (in no cluster).")
    lines = [f"Cluster {data['cluster']} (addressing: {data['addressing']})", ""]
    rows = [[x["name"], x["group"], f"{x['address']}:{x['ssh_port']}", x["version"],
             x["state"], x["serial"]] for x in data["machines"]]
    lines.append(table(["machine", "group", "address", "version", "state", "serial"], rows))
    lines.append("")
    lines += [f"Group {g['name']}: {', '.join(g['machines']) or '(empty)'}"
              for g in data["groups"]]
    return Result(data, "\n".join(lines))


@needs(Permission.SHOW)
@clusterconfig.command("connstatus")
@click.pass_obj
def connstatus(ctx: Ctx) -> Result:
    """Show this machine's link to every peer: state, since when, last error, clock."""
    rows = cluster.connstatus(ctx.machine)
    shown = [[r["machine"], r["state"], _since(r["since_ms"]), f"{r['clock_offset_ms']} ms"
              + (" (skewed)" if r["clock_skewed"] else ""), r["last_error"] or "-"]
             for r in rows]
    me = ctx.machine.identity.name
    text = (f"Links of {me}:\n" + table(["peer", "state", "since", "clock offset",
                                          "last error"], shown)) if rows else (
        f"{me} is the only machine of the cluster.")
    return Result({"machine": me, "links": rows}, text)


def _since(ms: int) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- groups and names -------------------------------------------------------------------

@clusterconfig.command("addgroup")
@click.argument("group")
@click.pass_obj
def addgroup(ctx: Ctx, group: str) -> Result:
    """Add an (empty) group."""
    return change(ctx, f"addgroup {group}", lambda v: ops.addgroup_ops(v, group))


@clusterconfig.command("setgroup")
@click.argument("machine")
@click.argument("group")
@click.pass_obj
def setgroup(ctx: Ctx, machine: str, group: str) -> Result:
    """Move MACHINE into GROUP (its group-level settings change accordingly)."""
    return change(ctx, f"setgroup {machine} {group}",
                  lambda v: ops.setgroup_ops(v, machine, group))


@clusterconfig.command("renamegroup")
@click.argument("old")
@click.argument("new")
@click.pass_obj
def renamegroup(ctx: Ctx, old: str, new: str) -> Result:
    """Rename a group; its machines and group-level settings follow."""
    store = ctx.machine.store
    return change(ctx, f"renamegroup {old} {new}",
                  lambda v: moves.renamegroup_ops(store, v, old, new))


@clusterconfig.command("deletegroup")
@click.argument("group")
@click.option("--to", "to", help="Group that receives GROUP's machines.")
@click.pass_obj
def deletegroup(ctx: Ctx, group: str, to: str | None) -> Result:
    """Delete a group (and its settings); its machines move to --to."""
    store = ctx.machine.store
    return change(ctx, f"deletegroup {group}",
                  lambda v: moves.deletegroup_ops(store, v, group, to))


@clusterconfig.command("setname")
@click.argument("name")
@click.pass_obj
def setname(ctx: Ctx, name: str) -> Result:
    """Rename the cluster."""
    return change(ctx, f"setname {name}", lambda v: ops.setname_ops(v, name))


@clusterconfig.command("communication")
@click.argument("machine")
@click.option("--address", required=True, help="Address (IP or host name) peers use.")
@click.option("--port", type=click.IntRange(1, 65535), help="SSH port peers use.")
@click.pass_obj
def communication(ctx: Ctx, machine: str, address: str, port: int | None) -> Result:
    """Change how peers reach MACHINE."""
    return change(ctx, f"communication {machine} {address}",
                  lambda v: ops.communication_ops(v, machine, address, port))


# -- disconnect, reconnect, remove ------------------------------------------------------

@clusterconfig.command("disconnect")
@click.argument("machine")
@click.pass_obj
def disconnect(ctx: Ctx, machine: str) -> Result:
    """Detach MACHINE until reconnect: it keeps working; no configuration flows."""
    return change(ctx, f"disconnect {machine}", lambda v: ops.disconnect_ops(v, machine))


@clusterconfig.command("reconnect")
@click.argument("machine")
@click.pass_obj
def reconnect(ctx: Ctx, machine: str) -> Result:
    """Re-attach MACHINE (same version only); both sides' changes merge."""
    m = ctx.machine
    return change(ctx, f"reconnect {machine}", lambda v: ops.reconnect_ops(
        v, machine, m.version, cluster.running_version(m, v.find(machine))))


@clusterconfig.command("removemachine")
@click.argument("machine")
@click.pass_obj
def removemachine(ctx: Ctx, machine: str) -> Result:
    """Remove MACHINE for good; it keeps its effective settings as a standalone machine."""
    result = change(ctx, f"removemachine {machine}", lambda v: ops.remove_ops(v, machine))
    result.text += (f"\n{machine} flattens its configuration and becomes standalone "
                    "(at once if reachable, else when it next reaches a member).")
    return result

