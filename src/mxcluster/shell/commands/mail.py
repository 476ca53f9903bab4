"""Mail operations (SPEC §4): suspend/resume, status, the queue, message tracking.

These act on the running mail engine of the login machine. Their store-thread part only
checks the mode; the work itself is a follow-up on the event loop, where the engine
lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import click

from mxcluster.config.levels import LevelKind
from mxcluster.errors import StateError, UsageError
from mxcluster.shell.core import Ctx, Result, shell_command
from mxcluster.shell.render import pairs, table
from mxcluster.users.roles import Permission

DEFAULT_DELAY = 30.0


def _other_machine(ctx: Ctx) -> str | None:
    """The machine the mode names when it is not the login machine."""
    mode = ctx.session.mode
    if mode.kind is LevelKind.MACHINE and mode.name != ctx.machine.identity.name:
        return mode.name
    return None


def local_engine(ctx: Ctx) -> Any:
    """The login machine's running mail engine when the mode targets it, else None."""
    return None if _other_machine(ctx) else ctx.machine.runtime.get("mail")


def engine_call(ctx: Ctx, work: Callable[[Any], Awaitable[Result]]) -> Result:
    """Run WORK(engine) on the event loop; machine:M mode for another M is refused."""
    other = _other_machine(ctx)
    if other is not None:
        raise StateError(f"mail commands for {other} must run on that machine",
                         hint="log in to it, or wait for cluster links (machine:M mode)")
    engine = ctx.machine.runtime.get("mail")
    if engine is None:
        raise StateError("the mail engine is not running here",
                         hint="it runs inside 'mxcluster serve'")
    return Result(then=lambda: work(engine))


def _target(name: str | None) -> str | None:
    return None if name in (None, "all") else name


@shell_command(Permission.CONFIGURE)
@click.command("suspendlistener")
@click.argument("name", required=False)
@click.option("--delay", type=click.FloatRange(0, 3600), default=DEFAULT_DELAY,
              show_default=True, help="Seconds sessions in progress get to finish.")
@click.pass_obj
def suspendlistener(ctx: Ctx, name: str | None, delay: float) -> Result:
    """Stop accepting connections on NAME (or all); sessions get DELAY to finish."""
    async def work(engine: Any) -> Result:
        await engine.suspend_listener(_target(name), delay)
        return Result({"suspended": name or "all"}, f"Listener {name or 'all'} suspended.")
    return engine_call(ctx, work)


@shell_command(Permission.CONFIGURE)
@click.command("resumelistener")
@click.argument("name", required=False)
@click.pass_obj
def resumelistener(ctx: Ctx, name: str | None) -> Result:
    """Accept connections again on NAME (or all)."""
    async def work(engine: Any) -> Result:
        await engine.resume_listener(_target(name))
        return Result({"resumed": name or "all"}, f"Listener {name or 'all'} resumed.")
    return engine_call(ctx, work)


def _plain(name: str, doc: str, method: str, data: dict[str, Any], text: str) -> click.Command:
    """A mail command without arguments that calls one engine method."""

    @click.command(name, help=doc)
    @click.pass_obj
    def command(ctx: Ctx) -> Result:
        async def work(engine: Any) -> Result:
            await getattr(engine, method)()
            return Result(data, text)
        return engine_call(ctx, work)

    return shell_command(Permission.CONFIGURE)(command)


suspenddel = _plain("suspenddel", "Pause delivery (mail keeps being accepted and queued).",
                    "suspend_delivery", {"delivery": "suspended"}, "Delivery suspended.")
resumedel = _plain("resumedel", "Resume delivery.", "resume_delivery",
                   {"delivery": "active"}, "Delivery resumed.")
resume = _plain("resume", "Resume all listeners and delivery.", "resume",
                {"suspended": False}, "Listeners and delivery resumed.")


@shell_command(Permission.CONFIGURE)
@click.command("suspend")
@click.option("--delay", type=click.FloatRange(0, 3600), default=DEFAULT_DELAY,
              show_default=True, help="Seconds sessions in progress get to finish.")
@click.pass_obj
def suspend(ctx: Ctx, delay: float) -> Result:
    """Suspend all listeners and delivery (durable across restarts until 'resume')."""
    async def work(engine: Any) -> Result:
        await engine.suspend(delay)
        return Result({"suspended": True}, "Listeners and delivery suspended.")
    return engine_call(ctx, work)


@shell_command(Permission.SHOW)
@click.command("showqueue")
@click.pass_obj
def showqueue(ctx: Ctx) -> Result:
    """List the messages in the delivery queue."""
    async def work(engine: Any) -> Result:
        rows = engine.show_queue()
        keys = list(rows[0]) if rows else []
        text = table([k.upper() for k in keys], [[r[k] for k in keys] for r in rows])
        return Result({"queue": rows}, text if rows else "The queue is empty.")
    return engine_call(ctx, work)


@shell_command(Permission.CONFIGURE)
@click.command("delivernow")
@click.argument("domain", required=False)
@click.pass_obj
def delivernow(ctx: Ctx, domain: str | None) -> Result:
    """Retry queued messages now (all, or those for DOMAIN)."""
    async def work(engine: Any) -> Result:
        n = engine.deliver_now(domain)
        return Result({"rescheduled": n}, f"{n} message(s) rescheduled for delivery now.")
    return engine_call(ctx, work)


_SELECT = [
    click.option("--recipient", help="Exact recipient address."),
    click.option("--domain", help="Recipient domain."),
    click.option("--sender", help="Envelope sender address."),
]


def select(fn: Any) -> Any:
    for option in reversed(_SELECT):
        fn = option(fn)
    return fn


def _need_selector(**sel: str | None) -> None:
    if not any(sel.values()):
        raise UsageError("give --recipient, --domain or --sender")


@shell_command(Permission.CONFIGURE)
@click.command("deleterecipients")
@select
@click.pass_obj
def deleterecipients(ctx: Ctx, recipient: str | None, domain: str | None,
                     sender: str | None) -> Result:
    """Delete queued recipients (no bounce) by recipient, domain or sender."""
    _need_selector(recipient=recipient, domain=domain, sender=sender)

    async def work(engine: Any) -> Result:
        n = engine.delete_recipients(recipient=recipient, domain=domain, sender=sender)
        return Result({"deleted": n}, f"{n} recipient(s) deleted.")
    return engine_call(ctx, work)


@shell_command(Permission.CONFIGURE)
@click.command("bouncerecipients")
@select
@click.pass_obj
def bouncerecipients(ctx: Ctx, recipient: str | None, domain: str | None,
                     sender: str | None) -> Result:
    """Bounce queued recipients (DSN to the sender) by recipient, domain or sender."""
    _need_selector(recipient=recipient, domain=domain, sender=sender)

    async def work(engine: Any) -> Result:
        n = await engine.bounce_recipients(recipient=recipient, domain=domain, sender=sender)
        return Result({"bounced": n}, f"{n} recipient(s) bounced.")
    return engine_call(ctx, work)


@shell_command(Permission.CONFIGURE)
@click.command("redirectrecipients")
@click.option("--to", "host", required=True, help="Next hop HOST[:PORT] to send them to.")
@select
@click.pass_obj
def redirectrecipients(ctx: Ctx, host: str, recipient: str | None, domain: str | None,
                       sender: str | None) -> Result:
    """Send queued recipients to another host, by recipient, domain or sender."""
    _need_selector(recipient=recipient, domain=domain, sender=sender)

    async def work(engine: Any) -> Result:
        n = engine.redirect_recipients(host, recipient=recipient, domain=domain,
                                       sender=sender)
        return Result({"redirected": n}, f"{n} recipient(s) redirected to {host}.")
    return engine_call(ctx, work)


@shell_command(Permission.SHOW)
@click.command("findevent")
@click.option("--to", "to", help="Recipient address.")
@click.option("--from", "from_", help="Sender address.")
@click.option("--id", "mid", help="Message id.")
@click.pass_obj
def findevent(ctx: Ctx, to: str | None, from_: str | None, mid: str | None) -> Result:
    """Search the mail log for a message by recipient, sender or id."""
    if not (to or from_ or mid):
        raise UsageError("give --to, --from or --id")

    async def work(engine: Any) -> Result:
        events = await asyncio.to_thread(engine.find_events, to=to, from_=from_, mid=mid)
        lines = [" ".join(f"{k}={v}" for k, v in e.items()) for e in events]
        return Result({"events": events}, "\n".join(lines) or "No matching events.")
    return engine_call(ctx, work)


def mail_status(engine: Any, data: dict[str, Any], shown: dict[str, Any]) -> Result:
    """The status command's full answer once the engine was asked (event loop)."""
    mail = engine.status()
    lines = [pairs({**shown, "delivery": mail["delivery"], **mail["counters"]})]
    rows = [[li["name"], li["type"], f"{li['ip']}:{li['port']}", li["state"],
             li.get("reason") or "", li.get("sessions", 0)] for li in mail["listeners"]]
    if rows:
        lines.append(table(["LISTENER", "TYPE", "ADDRESS", "STATE", "REASON", "SESSIONS"],
                           rows))
    return Result({**data, **mail}, "\n\n".join(lines))
