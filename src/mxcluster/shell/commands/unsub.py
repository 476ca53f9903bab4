"""The Global Unsubscribe editor: entries, import/export, setup."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mxcluster.config.levels import Level
from mxcluster.errors import NotFoundError, UsageError
from mxcluster.service.session import StagedTable
from mxcluster.shell.commands.blocks import staged_note
from mxcluster.shell.core import Ctx, Result, needs, shell_command
from mxcluster.shell.render import pairs
from mxcluster.unsubscribe import normalise
from mxcluster.users.roles import Permission


def data_path(ctx: Ctx, name: str) -> Path:
    """A path given to a command: absolute, or relative to the machine's data directory."""
    path = Path(name)
    return path if path.is_absolute() else ctx.machine.identity.data_dir / path


def _entry(text: str) -> str:
    try:
        return normalise(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _effective_level(ctx: Ctx) -> Level | None:
    """The level whose table applies here: the mode's own, else the one it inherits."""
    mode = ctx.session.mode
    if ctx.machine.stored(mode, "unsubscribe") is not None:
        return mode
    return ctx.machine.effective("unsubscribe").source


@shell_command(Permission.CONFIGURE)
@click.group("unsubscribe")
def unsubscribe() -> None:
    """Manage the Global Unsubscribe table."""


@unsubscribe.command("new")
@click.argument("entry")
@click.pass_obj
def unsub_new(ctx: Ctx, entry: str) -> Result:
    """Add ENTRY (user@domain, user@, @domain, @.domain or an IP address)."""
    clean = _entry(entry)
    level = ctx.machine.unsub_level(ctx.session)
    ctx.session.table(level).add("add", clean)
    return Result({"staged": clean}, f"Added {clean}" + staged_note(ctx))


@unsubscribe.command("delete")
@click.argument("entry")
@click.pass_obj
def unsub_delete(ctx: Ctx, entry: str) -> Result:
    """Remove ENTRY."""
    clean = _entry(entry)
    level = ctx.session.mode  # look first: a failed delete must not stage anything
    staged = ("add", clean) in ctx.session.tables.get(str(level), StagedTable()).edits
    if not staged and ctx.machine.store.unsub_any(str(level), [clean]) is None:
        raise NotFoundError(f"{clean!r} is not in the unsubscribe table at {level}")
    level = ctx.machine.unsub_level(ctx.session)
    ctx.session.table(level).add("remove", clean)
    return Result({"staged": clean}, f"Removed {clean}" + staged_note(ctx))


@unsubscribe.command("clear")
@click.pass_obj
def unsub_clear(ctx: Ctx) -> Result:
    """Remove every entry known now (entries added concurrently elsewhere survive)."""
    level = ctx.machine.unsub_level(ctx.session)
    ctx.session.table(level).add("clear")
    return Result({"staged": "clear"}, "Table cleared" + staged_note(ctx))


@unsubscribe.command("import")
@click.argument("file")
@click.pass_obj
def unsub_import(ctx: Ctx, file: str) -> Result:
    """Add the entries of FILE (one per line, '#' comments) on this machine."""
    path = data_path(ctx, file)
    if not path.is_file():
        raise NotFoundError(f"no such file {path}")
    count = ctx.machine.stage_import(ctx.session, path)
    return Result({"staged": count}, f"{count} entries read from {path}" + staged_note(ctx))


@needs(Permission.SHOW)
@unsubscribe.command("export")
@click.argument("file")
@click.pass_obj
def unsub_export(ctx: Ctx, file: str) -> Result:
    """Write the committed entries to FILE on this machine (overwrites it)."""
    path = data_path(ctx, file)
    level = _effective_level(ctx)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for entry in ctx.machine.store.unsub_iter(str(level)) if level else ():
            fh.write(entry + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return Result({"exported": count, "path": str(path)}, f"{count} entries written to {path}")


@needs(Permission.SHOW)
@unsubscribe.command("print")
@click.option("--after", default="", help="Start after this entry (paging).")
@click.option("--limit", default=100, type=click.IntRange(1, 10_000), show_default=True,
              help="Entries per page.")
@click.pass_obj
def unsub_print(ctx: Ctx, after: str, limit: int) -> Result:
    """List entries, LIMIT at a time (continue with --after LAST)."""
    level = _effective_level(ctx)
    store = ctx.machine.store
    entries = store.unsub_page(str(level), after, limit) if level else []
    # counting a million rows takes ~0.1 s: only the first page pays for it
    total = (store.unsub_count(str(level)) if not after else None) if level else 0
    settings = ctx.machine.effective("unsubscribe").value
    data = {"level": str(level) if level else None, "total": total, "entries": entries,
            **settings}
    head = pairs({"enabled": settings["enabled"], "action": settings["action"],
                  "defined at": level or "default",
                  "entries": total if total is not None else "(see the first page)"})
    more = f"\n... use --after {entries[-1]} for more" if len(entries) == limit else ""
    return Result(data, head + ("\n\n" + "\n".join(entries) if entries else "") + more)


@needs(Permission.SHOW)
@unsubscribe.command("test")
@click.argument("address")
@click.option("--next-hop", help="IP address of the next hop.")
@click.pass_obj
def unsub_test(ctx: Ctx, address: str, next_hop: str | None) -> Result:
    """Tell whether ADDRESS would be unsubscribed here, and by which entry."""
    entry = ctx.machine.unsubscribed(address, next_hop)
    text = f"{address}: matched by {entry}" if entry else f"{address}: not unsubscribed"
    return Result({"address": address, "entry": entry}, text)


@unsubscribe.command("setup")
@click.option("--enable/--disable", "enabled", default=None,
              help="Check recipients against the table, or not.")
@click.option("--action", type=click.Choice(["drop", "bounce"]),
              help="Drop matching recipients silently or hard-bounce them.")
@click.pass_obj
def unsub_setup(ctx: Ctx, enabled: bool | None, action: str | None) -> Result:
    """Turn Global Unsubscribe on or off and choose drop or bounce."""
    if enabled is None and action is None:
        raise UsageError("give --enable or --disable and/or --action")
    level = ctx.machine.unsub_level(ctx.session)
    value = dict(ctx.machine.current(ctx.session, "unsubscribe", level))
    value.update({k: v for k, v in {"enabled": enabled, "action": action}.items()
                  if v is not None})
    clean = ctx.machine.stage_set(ctx.session, "unsubscribe", value, level)
    return Result({"staged": clean}, "Unsubscribe settings changed" + staged_note(ctx))
