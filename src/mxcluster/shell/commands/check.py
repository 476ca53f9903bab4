"""``clustercheck``: show and resolve conflicts and differences (SPEC §4, §5)."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from mxcluster.config.levels import Level
from mxcluster.errors import MxclusterError, StateError, UsageError
from mxcluster.service import check, cluster
from mxcluster.shell.core import Ctx, Result, shell_command
from mxcluster.users.roles import Permission


@shell_command(Permission.ADMIN)
@click.command("clustercheck")
@click.option("--resolve", "block", help="Block to resolve.")
@click.option("--level", help="Level of the block to resolve (cluster, group:G, machine:M).")
@click.option("--use", "use", help="Keep the version made on (or held by) this machine.")
@click.option("--keep", is_flag=True, help="Keep the version this machine has now.")
@click.pass_obj
def clustercheck(ctx: Ctx, block: str | None, level: str | None, use: str | None,
                 keep: bool) -> Result:
    """List conflicts and blocks that differ between machines; resolve one."""
    m = ctx.machine
    if m.standalone:
        raise StateError("this machine is not in a cluster")
    if block is None:
        if level or use or keep:
            raise UsageError("--level, --use and --keep go with --resolve BLOCK")
        return _report(ctx)
    if level is None or (use is None) == (not keep):
        raise UsageError("--resolve BLOCK needs --level L and one of --use MACHINE, --keep")
    return _resolve(ctx, block, Level.parse(level), use)


def _report(ctx: Ctx) -> Result:
    m = ctx.machine
    local = check.digests(m)
    found = check.conflicts(m)
    others = list(cluster.members(m))
    peers = [x for x in others if cluster.link_state(m, x) == "connected"]
    skipped = sorted(x.name for x in others if x not in peers)
    links = m.runtime.get("links")
    me = m.identity.name

    async def gather() -> Result:
        remote: dict[str, Any] = {}
        unreachable: list[str] = []
        if peers and links is not None:
            answers = await asyncio.gather(
                *(links.request(x, {"op": "digests"}) for x in peers), return_exceptions=True)
            for x, answer in zip(peers, answers, strict=True):
                if isinstance(answer, dict):
                    remote[x.name] = answer
                else:
                    unreachable.append(x.name)
        diffs = check.differences(me, local, remote)
        data = {"conflicts": found, "differences": diffs,
                "compared": sorted([me, *remote]), "unreachable": unreachable,
                "not_compared": skipped}
        return Result(data, _text(data))

    return Result(then=gather)


def _text(data: dict[str, Any]) -> str:
    lines = [f"Compared: {', '.join(data['compared'])}"]
    if data["unreachable"]:
        lines.append(f"Not reachable now: {', '.join(data['unreachable'])}")
    if data["not_compared"]:
        lines.append("Not compared (not connected: disconnected, link down or another "
                     f"version): {', '.join(data['not_compared'])}")
    if not data["conflicts"] and not data["differences"]:
        return "\n".join([*lines, "No conflicts; every compared machine has the same "
                          "configuration."])
    for c in data["conflicts"]:
        w, lo = c["winner"], c["loser"]
        lines += [f"\nConflict: {c['block']} at {c['level']}",
                  f"  in use: {w['value']!r}  ({w['when']} by {w['author']} on {w['machine']})",
                  f"  lost:   {lo['value']!r}  ({lo['when']} by {lo['author']} on "
                  f"{lo['machine']})",
                  f"  resolve: clustercheck --resolve {c['block']} --level {c['level']} "
                  f"--use {lo['machine'] or 'MACHINE'} | --keep"]
    for d in data["differences"]:
        lines.append(f"\nDiffers: {d['block']} at {d['level']}")
        for name, v in d["machines"].items():
            lines.append(f"  {name}: " + ("absent" if v is None else
                                          f"{v['sha']} ({v.get('when', '')} by "
                                          f"{v.get('author', '')} on {v.get('machine', '')})"))
    return "\n".join(lines)


def _resolve(ctx: Ctx, block: str, level: Level, use: str | None) -> Result:
    m = ctx.machine
    author = ctx.session.user
    if use is None:
        cid = check.resolve(m, author, block, level, check.current(m, str(level), block),
                            "kept")
        return _done(block, level, cid)
    serials = {x.name: x.serial for x in m.membership().all_machines}
    found, value = check.version_from(m, block, level, use, serials)
    if found or use == m.identity.name:
        if not found:
            value = check.current(m, str(level), block)
        cid = check.resolve(m, author, block, level, value, f"version of {use}")
        return _done(block, level, cid)
    target = cluster.peer_of(m, use)
    links, run = m.runtime.get("links"), m.runtime.get("run_in_store")
    if links is None or run is None:
        raise StateError(f"{use} can only be asked by the running daemon")

    async def fetch() -> Result:
        try:
            theirs = await links.request(target, {"op": "block", "level": str(level),
                                                  "block": block})
        except MxclusterError as exc:
            raise StateError(f"cannot get {block} from {use}: {exc}") from None
        cid = await run(lambda: check.resolve(m, author, block, level, theirs,
                                              f"version of {use}"))
        return _done(block, level, cid)

    return Result(then=fetch)


def _done(block: str, level: Level, cid: Any) -> Result:
    return Result({"resolved": block, "level": str(level), "committed": str(cid)},
                  f"{block} at {level} resolved ({cid}); the change reaches every "
                  "connected machine.")
