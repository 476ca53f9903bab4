"""listenerconfig and destconfig editors."""

from __future__ import annotations

from typing import Any

import click

from mxcluster.errors import UsageError
from mxcluster.shell.commands.blocks import (
    _print_simple,
    find,
    items,
    print_block,
    save,
    staged_note,
    target_level,
)
from mxcluster.shell.core import Ctx, Result, needs, shell_command
from mxcluster.users.roles import Permission

_LISTENER_OPTIONS = [
    click.option("--type", "type_", type=click.Choice(["public", "private"]),
                 help="public: RAT domains from anyone; private: relay for --relay-from."),
    click.option("--interface", help="Name of the interface to bind (see interfaceconfig)."),
    click.option("--port", type=int, help="TCP port (default 25)."),
    click.option("--rat", multiple=True, help="Accepted recipient domain; repeat."),
    click.option("--relay-from", multiple=True, help="Client CIDR allowed to relay; repeat."),
    click.option("--reject-from", multiple=True, help="Client CIDR refused; repeat."),
    click.option("--max-message-bytes", type=int, help="Largest message accepted."),
    click.option("--max-recipients", type=int, help="Recipients per message."),
    click.option("--max-connections", type=int, help="Concurrent sessions in total."),
    click.option("--max-connections-per-ip", type=int, help="Concurrent sessions per client."),
    click.option("--tls", type=click.Choice(["off", "on", "required"]),
                 help="Offer STARTTLS (on) or require it (required)."),
    click.option("--certificate", help="Certificate name for STARTTLS."),
]


def listener_options(fn: Any) -> Any:
    for option in reversed(_LISTENER_OPTIONS):
        fn = option(fn)
    return fn


def _changes(opts: dict[str, Any]) -> dict[str, Any]:
    """Listener fields given on the command line (multi-value options replace lists)."""
    out: dict[str, Any] = {}
    for key, value in opts.items():
        field = "type" if key == "type_" else key
        if value is None or value == ():
            continue
        out[field] = list(value) if isinstance(value, tuple) else value
    return out


@shell_command(Permission.CONFIGURE)
@click.group("listenerconfig")
def listenerconfig() -> None:
    """Configure SMTP listeners."""


@listenerconfig.command("new")
@click.argument("name")
@listener_options
@click.pass_obj
def listener_new(ctx: Ctx, name: str, **opts: Any) -> Result:
    """Add listener NAME."""
    rows = items(ctx, "listeners")
    if any(r["name"] == name for r in rows):
        raise UsageError(f"listener {name!r} exists", hint="use 'listenerconfig edit'")
    row = {"name": name, **_changes(opts)}
    if "type" not in row:
        row["type"] = ctx.ask("--type", "Type (public/private)", "public")
    if "interface" not in row:
        row["interface"] = ctx.ask("--interface", "Interface name", "Management")
    if "port" not in row and ctx.interactive:
        row["port"] = int(ctx.ask("--port", "Port", "25"))
    clean = save(ctx, "listeners", [*rows, row])
    return Result({"staged": clean[-1]}, f"Listener {name} added" + staged_note(ctx))


@listenerconfig.command("edit")
@click.argument("name")
@listener_options
@click.pass_obj
def listener_edit(ctx: Ctx, name: str, **opts: Any) -> Result:
    """Change listener NAME (list options replace the whole list)."""
    rows = items(ctx, "listeners")
    find(rows, "name", name, "listener").update(_changes(opts))
    save(ctx, "listeners", rows)
    return Result({"staged": name}, f"Listener {name} changed" + staged_note(ctx))


@listenerconfig.command("delete")
@click.argument("name")
@click.pass_obj
def listener_delete(ctx: Ctx, name: str) -> Result:
    """Remove listener NAME."""
    rows = items(ctx, "listeners")
    find(rows, "name", name, "listener")
    save(ctx, "listeners", [r for r in rows if r["name"] != name])
    return Result({"deleted": name}, f"Listener {name} deleted" + staged_note(ctx))


@needs(Permission.SHOW)
@listenerconfig.command("print")
@click.pass_obj
def listener_print(ctx: Ctx) -> Result:
    """Show the listeners."""
    return print_block(
        ctx, "listeners", ["NAME", "TYPE", "INTERFACE", "PORT", "RAT", "RELAY FROM", "TLS"],
        ["name", "type", "interface", "port", "rat", "relay_from", "tls"],
    )


@shell_command(Permission.CONFIGURE)
@click.group("destconfig")
def destconfig() -> None:
    """Configure per-destination delivery limits (enforced per machine)."""


def _limits(max_connections: int | None, max_messages: int | None) -> dict[str, int]:
    return {k: v for k, v in {"max_connections": max_connections,
                              "max_messages_per_connection": max_messages}.items()
            if v is not None}


_DEST_OPTIONS = [
    click.option("--max-connections", type=int, help="Concurrent connections."),
    click.option("--max-messages-per-connection", "max_messages", type=int,
                 help="Messages sent over one connection before it is closed."),
]


def dest_options(fn: Any) -> Any:
    for option in reversed(_DEST_OPTIONS):
        fn = option(fn)
    return fn


def _dest(ctx: Ctx) -> dict[str, Any]:
    value = ctx.machine.current(ctx.session, "destconfig", target_level(ctx, "destconfig"))
    return {"default": dict(value["default"]), "domains": [dict(d) for d in value["domains"]]}


@destconfig.command("default")
@dest_options
@click.pass_obj
def dest_default(ctx: Ctx, max_connections: int | None, max_messages: int | None) -> Result:
    """Change the default limits."""
    value = _dest(ctx)
    value["default"].update(_limits(max_connections, max_messages))
    save(ctx, "destconfig", value)
    return Result({"staged": value["default"]}, "Default limits changed" + staged_note(ctx))


@destconfig.command("new")
@click.argument("domain")
@dest_options
@click.pass_obj
def dest_new(ctx: Ctx, domain: str, max_connections: int | None,
             max_messages: int | None) -> Result:
    """Add limits for DOMAIN (unset limits come from the default)."""
    value = _dest(ctx)
    row = {**value["default"], **_limits(max_connections, max_messages), "domain": domain}
    value["domains"].append(row)
    save(ctx, "destconfig", value)
    return Result({"staged": row}, f"Limits for {domain} added" + staged_note(ctx))


@destconfig.command("edit")
@click.argument("domain")
@dest_options
@click.pass_obj
def dest_edit(ctx: Ctx, domain: str, max_connections: int | None,
              max_messages: int | None) -> Result:
    """Change the limits for DOMAIN."""
    value = _dest(ctx)
    find(value["domains"], "domain", domain, "destination").update(
        _limits(max_connections, max_messages))
    save(ctx, "destconfig", value)
    return Result({"staged": domain}, f"Limits for {domain} changed" + staged_note(ctx))


@destconfig.command("delete")
@click.argument("domain")
@click.pass_obj
def dest_delete(ctx: Ctx, domain: str) -> Result:
    """Remove the limits for DOMAIN."""
    value = _dest(ctx)
    row = find(value["domains"], "domain", domain, "destination")
    value["domains"] = [d for d in value["domains"] if d is not row]
    save(ctx, "destconfig", value)
    return Result({"deleted": domain}, f"Limits for {domain} deleted" + staged_note(ctx))


@needs(Permission.SHOW)
@destconfig.command("print")
@click.pass_obj
def dest_print(ctx: Ctx) -> Result:
    """Show the limits."""
    result = _print_simple(ctx, "destconfig")
    value = result.data["destconfig"]
    from mxcluster.shell.render import table

    rows = [["(default)", value["default"]["max_connections"],
             value["default"]["max_messages_per_connection"]]]
    rows += [[d["domain"], d["max_connections"], d["max_messages_per_connection"]]
             for d in value["domains"]]
    result.text = table(["DOMAIN", "MAX CONNECTIONS", "MAX MSGS/CONN"], rows)
    return result
