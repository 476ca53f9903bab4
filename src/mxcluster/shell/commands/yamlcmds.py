"""showconfig, saveconfig, loadconfig and clusterset."""

from __future__ import annotations

import io
import os
from typing import Any

import click

from mxcluster.config import registry, yamlio
from mxcluster.config.levels import Level, LevelKind
from mxcluster.config.yamlio import LevelConfig
from mxcluster.errors import NotFoundError, UsageError
from mxcluster.service.machine import Machine
from mxcluster.shell.commands.blocks import staged_note
from mxcluster.shell.commands.unsub import data_path
from mxcluster.shell.core import Ctx, Result, shell_command
from mxcluster.users.roles import Permission, Role, sees_secrets

KEEP_WHEN_ABSENT = ("users", "interfaces", "hostname")


def level_configs(m: Machine, levels: list[Level], secrets: bool,
                  entries: bool) -> list[LevelConfig]:
    """The stored configuration of LEVELS, ready for yamlio.write."""
    out = []
    for level in levels:
        blocks = {}
        for row in m.store.blocks_at(str(level)):
            spec = registry.BLOCKS.get(row.block)
            if spec is not None:
                blocks[row.block] = row.value if secrets else spec.redact(row.value)
        lc = LevelConfig(level, blocks)
        if "unsubscribe" in blocks and entries:
            lc.entries = m.store.unsub_iter(str(level))
        elif "unsubscribe" in blocks:
            lc.entry_count = m.store.unsub_count(str(level))
        out.append(lc)
    return out


def all_levels(m: Machine) -> list[Level]:
    """The levels holding settings; a standalone machine (even a removed one that still
    holds its old cluster's data) has its own level only."""
    levels = [Level.parse(text) for text in m.store.levels()]
    return [lv for lv in levels if lv == m.self_level] if m.standalone else levels


@shell_command(Permission.SHOW)
@click.command("showconfig")
@click.option("--effective", is_flag=True, help="This machine's effective values and sources.")
@click.option("--level", "level_text", help="Only LEVEL (cluster, group:G, machine:M).")
@click.pass_obj
def showconfig(ctx: Ctx, effective: bool, level_text: str | None) -> Result:
    """Show the configuration as YAML (unsubscribe entries as a count)."""
    m, secrets = ctx.machine, sees_secrets(ctx.session.role)
    if effective:
        return _effective(ctx, secrets)
    levels = [Level.parse(level_text)] if level_text else all_levels(m)
    configs = level_configs(m, levels, secrets, entries=False)
    for lc in configs:
        if "users" in lc.blocks:  # hashes only ever leave through saveconfig
            lc.blocks["users"] = registry.get("users").redact(lc.blocks["users"])
    buf = io.StringIO()
    yamlio.write(buf, configs)
    data = {str(lc.level): lc.blocks for lc in configs}
    return Result(data, buf.getvalue().rstrip("\n") or "No configuration stored.")


def _effective(ctx: Ctx, secrets: bool) -> Result:
    m = ctx.machine
    mode = ctx.session.mode
    machine = mode.name if mode.kind is LevelKind.MACHINE else None
    data: dict[str, Any] = {}
    lines = []
    for name, res in m.effective_all(machine).items():
        spec = registry.get(name)
        value = res.value if secrets and name != "users" else spec.redact(res.value)
        source = str(res.source) if res.source else "default"
        data[name] = {"value": value, "source": source}
        text = yamlio.dump({name: value})
        lines.append(f"# {name}: from {source}\n{text.rstrip()}")
    return Result(data, "\n".join(lines))


@shell_command(Permission.CONFIGURE)
@click.command("saveconfig")
@click.argument("file")
@click.pass_obj
def saveconfig(ctx: Ctx, file: str) -> Result:
    """Write the whole configuration (with unsubscribe entries) as YAML to FILE."""
    m = ctx.machine
    path = data_path(ctx, file)
    configs = level_configs(m, all_levels(m), sees_secrets(ctx.session.role), entries=True)
    if ctx.session.role is not Role.ADMIN:  # the user database is the admin's alone
        for lc in configs:
            lc.blocks.pop("users", None)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            yamlio.write(fh, configs, header="mxcluster configuration")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise NotFoundError(f"cannot write {path}: {exc.strerror}") from None
    tmp.replace(path)
    return Result({"path": str(path)}, f"Configuration written to {path}")


@shell_command(Permission.CONFIGURE)
@click.command("loadconfig")
@click.argument("file")
@click.pass_obj
def loadconfig(ctx: Ctx, file: str) -> Result:
    """Stage the configuration in FILE (all or nothing; each section replaces its level)."""
    m, s = ctx.machine, ctx.session
    path = data_path(ctx, file)
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yamlio.load(fh)
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror}") from None
    plan = yamlio.parse(doc, lambda lv: _exists(m, lv), m.standalone)
    before = (dict(s.blocks), dict(s.tables))
    try:
        for lc in plan.levels:
            _stage_level(m, ctx, lc)
    except Exception:
        s.blocks, s.tables = before
        raise
    return Result({"staged": len(plan.levels)},
                  f"{len(plan.levels)} level(s) loaded from {path}" + staged_note(ctx))


def _entries_differ(m: Machine, lc: LevelConfig) -> bool:
    """True when the file's unsubscribe entries differ from the stored ones at its level."""
    wanted = list(lc.entries)
    lc.entries = wanted
    return sorted(wanted) != list(m.store.unsub_iter(str(lc.level)))


def _exists(m: Machine, level: Level) -> bool:
    if m.standalone:
        return level == m.self_level
    if level.kind is LevelKind.GROUP:
        return level.name in m.groups()
    return level.kind is LevelKind.CLUSTER or level.name in m.machines()


def _stage_level(m: Machine, ctx: Ctx, lc: LevelConfig) -> None:
    s = ctx.session
    for name, spec in registry.BLOCKS.items():
        if name in lc.blocks:
            if m.stored(lc.level, name) != lc.blocks[name] or (str(lc.level), name) in s.blocks:
                m.stage_set(s, name, lc.blocks[name], lc.level)
            if spec.table and _entries_differ(m, lc):
                table = s.table(lc.level)
                table.add("clear")
                for entry in lc.entries:
                    table.add("add", entry)
        elif name not in KEEP_WHEN_ABSENT and m.stored(lc.level, name) is not None:
            m.stage_delete(s, name, lc.level)


@shell_command(Permission.CONFIGURE)
@click.command("clusterset")
@click.argument("action", type=click.Choice(["copy", "move", "delete"]))
@click.argument("block")
@click.option("--from", "src", help="Level to copy or move from.")
@click.option("--to", "dst", help="Level to copy or move to.")
@click.option("--at", "at", help="Level to delete the block at.")
@click.pass_obj
def clusterset(ctx: Ctx, action: str, block: str, src: str | None, dst: str | None,
               at: str | None) -> Result:
    """Copy or move BLOCK between levels, or delete it at a level so it inherits."""
    m, s = ctx.machine, ctx.session
    spec = registry.get(block)
    if action == "delete":
        if not at:
            raise UsageError("clusterset delete needs --at LEVEL")
        m.stage_delete(s, block, Level.parse(at))
        return Result({"staged": f"delete {block} at {at}"},
                      f"{block} deleted at {at}" + staged_note(ctx))
    if not src or not dst:
        raise UsageError(f"clusterset {action} needs --from LEVEL and --to LEVEL")
    source, target = Level.parse(src), Level.parse(dst)
    value = m.stored(source, block)
    if value is None:
        raise NotFoundError(f"{block} is not defined at {source}")
    m.stage_set(s, block, value, target)
    if spec.table:
        table = s.table(target)
        table.add("clear")
        for entry in m.store.unsub_iter(str(source)):
            table.add("add", entry)
    if action == "move":
        m.stage_delete(s, block, source)
    return Result({"staged": f"{action} {block} {source} -> {target}"},
                  f"{block} {'copied' if action == 'copy' else 'moved'} from {source} "
                  f"to {target}" + staged_note(ctx))
