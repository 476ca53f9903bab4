"""Editors of the list-shaped and simple setting blocks (SPEC §4 batch forms)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mxcluster.config import registry
from mxcluster.config.levels import Level, LevelKind
from mxcluster.errors import NotFoundError, UsageError
from mxcluster.shell.core import Ctx, Result, needs, shell_command
from mxcluster.shell.render import pairs, table
from mxcluster.users.roles import Permission, sees_secrets


def target_level(ctx: Ctx, block: str) -> Level:
    """Machine-only blocks act on the login machine, or on M in mode machine:M."""
    if registry.get(block).machine_only and ctx.session.mode.kind is not LevelKind.MACHINE:
        return ctx.machine.self_level
    return ctx.session.mode


def items(ctx: Ctx, block: str) -> list[dict[str, Any]]:
    return [dict(i) for i in ctx.machine.current(ctx.session, block, target_level(ctx, block))]


def save(ctx: Ctx, block: str, value: Any) -> Any:
    return ctx.machine.stage_set(ctx.session, block, value, target_level(ctx, block))


def find(rows: list[dict[str, Any]], key: str, name: str, what: str) -> dict[str, Any]:
    for row in rows:
        if row[key] == name.lower() or row[key] == name:
            return row
    raise NotFoundError(f"no {what} {name!r}")


def shown(ctx: Ctx, block: str, value: Any) -> Any:
    spec = registry.get(block)
    return value if sees_secrets(ctx.session.role) else spec.redact(value)


def staged_note(ctx: Ctx) -> str:
    return " (staged; 'commit' to apply)"


def print_block(ctx: Ctx, block: str, headers: list[str], keys: list[str]) -> Result:
    level = target_level(ctx, block)
    res = ctx.machine.effective(block, level.name if level.kind is LevelKind.MACHINE else None)
    staged = ctx.session.blocks.get((str(level), block))
    value = shown(ctx, block, ctx.machine.current(ctx.session, block, level)
                  if staged or ctx.machine.stored(level, block) is not None else res.value)
    rows = [[row.get(k) for k in keys] for row in value]
    text = table(headers, rows) if rows else f"No {block} defined."
    return Result({"level": str(level), block: value}, text)


# -- interfaceconfig ------------------------------------------------------------------


@shell_command(Permission.CONFIGURE)
@click.group("interfaceconfig")
def interfaceconfig() -> None:
    """Configure named IP interfaces of a machine (machine level only)."""


@interfaceconfig.command("new")
@click.argument("name")
@click.option("--ip", help="IPv4 or IPv6 address.")
@click.option("--hostname", help="Host name of this interface.")
@click.pass_obj
def iface_new(ctx: Ctx, name: str, ip: str | None, hostname: str | None) -> Result:
    """Add interface NAME bound to IP."""
    rows = items(ctx, "interfaces")
    if any(r["name"] == name for r in rows):
        raise UsageError(f"interface {name!r} exists", hint="use 'interfaceconfig edit'")
    row: dict[str, Any] = {"name": name, "ip": ip or ctx.ask("--ip", "IP address")}
    if hostname:
        row["hostname"] = hostname
    save(ctx, "interfaces", [*rows, row])
    return Result({"staged": row}, f"Interface {name} added" + staged_note(ctx))


@interfaceconfig.command("edit")
@click.argument("name")
@click.option("--ip", help="New IPv4 or IPv6 address.")
@click.option("--hostname", help="New host name of this interface.")
@click.pass_obj
def iface_edit(ctx: Ctx, name: str, ip: str | None, hostname: str | None) -> Result:
    """Change interface NAME."""
    rows = items(ctx, "interfaces")
    row = find(rows, "name", name, "interface")
    row.update({k: v for k, v in {"ip": ip, "hostname": hostname}.items() if v})
    save(ctx, "interfaces", rows)
    return Result({"staged": row}, f"Interface {name} changed" + staged_note(ctx))


@interfaceconfig.command("delete")
@click.argument("name")
@click.pass_obj
def iface_delete(ctx: Ctx, name: str) -> Result:
    """Remove interface NAME."""
    rows = items(ctx, "interfaces")
    find(rows, "name", name, "interface")
    save(ctx, "interfaces", [r for r in rows if r["name"] != name])
    return Result({"deleted": name}, f"Interface {name} deleted" + staged_note(ctx))


@needs(Permission.SHOW)
@interfaceconfig.command("print")
@click.pass_obj
def iface_print(ctx: Ctx) -> Result:
    """Show the interfaces."""
    return print_block(ctx, "interfaces", ["NAME", "IP", "HOSTNAME"], ["name", "ip", "hostname"])


@shell_command(Permission.CONFIGURE)
@click.command("sethostname")
@click.argument("hostname", required=False)
@click.pass_obj
def sethostname(ctx: Ctx, hostname: str | None) -> Result:
    """Set the host name the machine presents (SMTP greeting, prompt)."""
    value = hostname or ctx.ask("HOSTNAME", "New host name")
    clean = save(ctx, "hostname", value)
    return Result({"staged": clean}, f"Host name set to {clean}" + staged_note(ctx))


# -- smtproutes -----------------------------------------------------------------------


@shell_command(Permission.CONFIGURE)
@click.group("smtproutes")
def smtproutes() -> None:
    """Configure next hops per recipient domain (SMTP routes)."""


@smtproutes.command("new")
@click.argument("domain")
@click.option("--to", "hops", multiple=True, help="Next hop HOST[:PORT] or /dev/null; repeat.")
@click.pass_obj
def route_new(ctx: Ctx, domain: str, hops: tuple[str, ...]) -> Result:
    """Route mail for DOMAIN ('example.com', '.example.com', 'ALL') to the hops."""
    rows = items(ctx, "smtproutes")
    if any(r["domain"] == domain.lower() or r["domain"] == domain for r in rows):
        raise UsageError(f"a route for {domain!r} exists", hint="use 'smtproutes edit'")
    hop_list = list(hops) or ctx.ask("--to", "Next hops (comma separated)").split(",")
    row = {"domain": domain, "hops": [h.strip() for h in hop_list]}
    save(ctx, "smtproutes", [*rows, row])
    return Result({"staged": row}, f"Route for {domain} added" + staged_note(ctx))


@smtproutes.command("edit")
@click.argument("domain")
@click.option("--to", "hops", multiple=True, required=True, help="New next hops; repeat.")
@click.pass_obj
def route_edit(ctx: Ctx, domain: str, hops: tuple[str, ...]) -> Result:
    """Replace the next hops of DOMAIN."""
    rows = items(ctx, "smtproutes")
    find(rows, "domain", domain, "route")["hops"] = list(hops)
    save(ctx, "smtproutes", rows)
    return Result({"staged": domain}, f"Route for {domain} changed" + staged_note(ctx))


@smtproutes.command("delete")
@click.argument("domain")
@click.pass_obj
def route_delete(ctx: Ctx, domain: str) -> Result:
    """Remove the route for DOMAIN."""
    rows = items(ctx, "smtproutes")
    row = find(rows, "domain", domain, "route")
    save(ctx, "smtproutes", [r for r in rows if r is not row])
    return Result({"deleted": domain}, f"Route for {domain} deleted" + staged_note(ctx))


@needs(Permission.SHOW)
@smtproutes.command("print")
@click.pass_obj
def route_print(ctx: Ctx) -> Result:
    """Show the routes."""
    return print_block(ctx, "smtproutes", ["DOMAIN", "NEXT HOPS"], ["domain", "hops"])


# -- certconfig -----------------------------------------------------------------------


@shell_command(Permission.CONFIGURE)
@click.group("certconfig")
def certconfig() -> None:
    """Manage named TLS certificates for listeners."""


@certconfig.command("new")
@click.argument("name")
@click.option("--certificate-file", required=True, type=click.Path(dir_okay=False),
              help="PEM certificate chain (absolute, or relative to the data directory).")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False),
              help="PEM private key (absolute, or relative to the data directory).")
@click.pass_obj
def cert_new(ctx: Ctx, name: str, certificate_file: str, key_file: str) -> Result:
    """Add certificate NAME from PEM files on this machine."""
    rows = [r for r in items(ctx, "certificates") if r["name"] != name]
    base = ctx.machine.identity.data_dir
    row = {"name": name, "certificate": _read(base, certificate_file), "key": _read(base, key_file)}
    save(ctx, "certificates", [*rows, row])
    return Result({"staged": name}, f"Certificate {name} added" + staged_note(ctx))


@certconfig.command("delete")
@click.argument("name")
@click.pass_obj
def cert_delete(ctx: Ctx, name: str) -> Result:
    """Remove certificate NAME."""
    rows = items(ctx, "certificates")
    find(rows, "name", name, "certificate")
    save(ctx, "certificates", [r for r in rows if r["name"] != name])
    return Result({"deleted": name}, f"Certificate {name} deleted" + staged_note(ctx))


@needs(Permission.SHOW)
@certconfig.command("print")
@click.pass_obj
def cert_print(ctx: Ctx) -> Result:
    """Show the certificates (private keys only to admin and operator)."""
    return print_block(ctx, "certificates", ["NAME"], ["name"])


def _read(base: Path, name: str) -> str:
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror}") from None


# -- bounceconfig / updateconfig / destconfig -----------------------------------------


@shell_command(Permission.CONFIGURE)
@click.group("bounceconfig")
def bounceconfig() -> None:
    """Configure retries, maximum queue lifetime and bounces."""


@bounceconfig.command("setup")
@click.option("--retry-schedule", help="Seconds between attempts, comma separated.")
@click.option("--max-queue-lifetime", type=int, help="Seconds before a message bounces.")
@click.option("--bounce/--no-bounce", default=None, help="Send bounces (DSN).")
@click.pass_obj
def bounce_setup(ctx: Ctx, retry_schedule: str | None, max_queue_lifetime: int | None,
                 bounce: bool | None) -> Result:
    """Change the bounce settings."""
    level = target_level(ctx, "bounceconfig")
    value = dict(ctx.machine.current(ctx.session, "bounceconfig", level))
    if retry_schedule is not None:
        value["retry_schedule"] = _ints(retry_schedule, "--retry-schedule")
    if max_queue_lifetime is not None:
        value["max_queue_lifetime"] = max_queue_lifetime
    if bounce is not None:
        value["bounce_enabled"] = bounce
    clean = save(ctx, "bounceconfig", value)
    return Result({"staged": clean}, "Bounce settings changed" + staged_note(ctx))


@needs(Permission.SHOW)
@bounceconfig.command("print")
@click.pass_obj
def bounce_print(ctx: Ctx) -> Result:
    """Show the bounce settings."""
    return _print_simple(ctx, "bounceconfig")


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(
            f"{option} takes whole numbers separated by commas, not {text!r}"
        ) from None


def _print_simple(ctx: Ctx, block: str) -> Result:
    level = target_level(ctx, block)
    staged = ctx.session.blocks.get((str(level), block))
    if staged is not None or ctx.machine.stored(level, block) is not None:
        value, source = ctx.machine.current(ctx.session, block, level), str(level)
    else:
        res = ctx.machine.effective(block)
        value, source = res.value, str(res.source or "default")
    flat = {k: v for k, v in value.items() if not isinstance(v, dict)}
    return Result({"level": source, block: value}, pairs({**flat, "defined at": source}))


@shell_command(Permission.CONFIGURE)
@click.group("updateconfig")
def updateconfig() -> None:
    """Configure where upgrades come from and which keys sign them."""


@updateconfig.command("setup")
@click.option("--source", help="Directory or URL holding release bundles.")
@click.option("--trusted-key", "keys", multiple=True, help="Ed25519 public key; repeat.")
@click.pass_obj
def update_setup(ctx: Ctx, source: str | None, keys: tuple[str, ...]) -> Result:
    """Change the update source and trusted keys."""
    level = target_level(ctx, "updateconfig")
    value = dict(ctx.machine.current(ctx.session, "updateconfig", level))
    if source is not None:
        value["source"] = source
    if keys:
        value["trusted_keys"] = list(keys)
    clean = save(ctx, "updateconfig", value)
    return Result({"staged": clean}, "Update settings changed" + staged_note(ctx))


@needs(Permission.SHOW)
@updateconfig.command("print")
@click.pass_obj
def update_print(ctx: Ctx) -> Result:
    """Show the update settings."""
    return _print_simple(ctx, "updateconfig")
