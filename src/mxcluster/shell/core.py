"""Command registry and dispatcher of the shell.

Each shell command is a click command (or group of sub-commands) registered with
``@shell_command(permission)``. A command receives a ``Ctx`` as ``click`` context object
and returns a ``Result``: data (for ``--json``) and text (for people). Errors are
``MxclusterError`` subclasses and become the exit codes of SPEC §3.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

import click

from mxcluster.errors import MxclusterError, UsageError
from mxcluster.service.machine import Machine
from mxcluster.service.session import Session
from mxcluster.users.roles import Permission, require

log = logging.getLogger("mxcluster.shell")

C = TypeVar("C", bound=click.Command)


class Prompter(Protocol):
    """Asks the operator questions; only available on an interactive terminal."""

    def ask(self, question: str, default: str | None = None, secret: bool = False) -> str: ...

    def confirm(self, question: str, default: bool = False) -> bool: ...


#: network work a command hands to the event loop after its store-thread part
FollowUp = Callable[[], Awaitable["Result"]]


@dataclass
class Result:
    """What a command produced: ``data`` for --json, ``text`` for people.

    A command that must talk to other machines (join, commands for ``machine:M``) sets
    ``then``: the front end awaits it on the event loop, where it may use the network
    and call back into the store thread, and renders the Result it returns instead.
    """

    data: Any = None
    text: str = ""
    then: FollowUp | None = None


@dataclass
class Outcome:
    """The outcome of one command line."""

    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    then: Callable[[], Awaitable[Outcome]] | None = None


@dataclass
class Ctx:
    """Everything a command may use."""

    machine: Machine
    session: Session
    prompter: Prompter | None = None
    shell: Shell | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def interactive(self) -> bool:
        return self.prompter is not None

    def ask(self, option: str, question: str, default: str | None = None,
            secret: bool = False) -> str:
        """Ask for a missing value interactively; in batch mode, a usage error."""
        if self.prompter is None:
            raise UsageError(f"missing {option}", hint="batch commands never prompt")
        answer = self.prompter.ask(question, default, secret)
        if not answer and default is None:
            raise UsageError(f"{question}: an answer is required")
        return answer or (default or "")

    def confirm(self, question: str, flag: str, given: bool) -> bool:
        """True when FLAG was given, or the operator confirms interactively."""
        if given:
            return True
        if self.prompter is None:
            return False
        return self.prompter.confirm(question)


@dataclass(frozen=True)
class CommandInfo:
    """A registered shell command."""

    name: str
    command: click.Command
    permission: Permission
    summary: str


REGISTRY: dict[str, CommandInfo] = {}

#: commands that act on one machine's running services (SPEC §3): in mode
#: ``machine:M`` for another machine M they run on M, over the peer link
MACHINE_COMMANDS = frozenset({
    "status", "suspendlistener", "resumelistener", "suspenddel", "resumedel", "suspend",
    "resume", "showqueue", "delivernow", "deleterecipients", "bouncerecipients",
    "redirectrecipients", "findevent",
})


def shell_command(permission: Permission) -> Callable[[C], C]:
    """Register a click command (or group) as a shell command needing PERMISSION."""

    def register(cmd: C) -> C:
        assert cmd.name is not None
        summary = (cmd.help or "").strip().splitlines()[0] if cmd.help else ""
        REGISTRY[cmd.name] = CommandInfo(cmd.name, cmd, permission, summary)
        return cmd

    return register


def sub_permission(info: CommandInfo, args: list[str]) -> Permission:
    """Sub-commands may need less than the group (e.g. ``userconfig print``); the
    deepest sub-command named in ARGS that says so decides."""
    cmd: click.Command = info.command
    needed = info.permission
    for arg in args:
        sub = cmd.commands.get(arg) if isinstance(cmd, click.Group) else None
        if sub is None:
            break
        mark = getattr(sub, "mx_permission", None)
        if isinstance(mark, Permission):
            needed = mark
        cmd = sub
    return needed


def permissions_of(info: CommandInfo) -> list[Permission]:
    """Every permission that some form of the command needs (group and sub-commands)."""
    found = [info.permission]
    if isinstance(info.command, click.Group):
        for sub in info.command.commands.values():
            needed = getattr(sub, "mx_permission", None)
            if isinstance(needed, Permission):
                found.append(needed)
    return found


def min_permission(permission: Permission) -> Permission:
    """Listing a group's sub-commands needs no more than showing configuration."""
    return Permission.SHOW if permission is not Permission.BASIC else permission


def needs(permission: Permission) -> Callable[[C], C]:
    """Mark a sub-command as needing PERMISSION instead of its group's."""

    def mark(cmd: C) -> C:
        cmd.mx_permission = permission  # type: ignore[attr-defined]
        return cmd

    return mark


class Shell:
    """Runs command lines for one session."""

    def __init__(self, machine: Machine, session: Session,
                 prompter: Prompter | None = None) -> None:
        from mxcluster.shell import commands  # noqa: F401  (registers every command)

        self.machine = machine
        self.session = session
        self.prompter = prompter

    def prompt(self) -> str:
        """``mail1.example.com (Cluster prod)> `` / ``mail1.example.com> ``."""
        host = self.machine.hostname()
        mode = self.session.mode
        if self.machine.standalone:
            return f"{host}> "
        label = {"cluster": f"Cluster {self.machine.cluster_name}"}.get(str(mode), str(mode))
        return f"{host} ({label})> "

    def execute(self, line: str, *, json_output: bool = False) -> Outcome:
        """Run one command line; never raises."""
        try:
            args = shlex.split(line, comments=False)
        except ValueError as exc:
            return _error(UsageError(f"cannot parse command line: {exc}"), json_output)
        if "--json" in args:
            args = [a for a in args if a != "--json"]
            json_output = True
        if not args:
            return Outcome()
        if "--help" in args[1:]:  # click would print to the daemon's stdout
            args = ["help", *[a for a in args[:3] if not a.startswith("-")]]
        try:
            remote = self._remote(args)
            if remote is not None:
                return Outcome(then=partial(_forward, self.machine, self.session, remote,
                                            line, json_output))
            result = self._run(args)
        except MxclusterError as exc:
            return _error(exc, json_output)
        except click.exceptions.Exit as exc:
            return Outcome(exit_code=exc.exit_code)
        except click.ClickException as exc:
            cctx = getattr(exc, "ctx", None)
            path = cctx.command_path if cctx is not None else args[0]
            return _error(UsageError(f"{path}: {exc.format_message()}",
                                     hint=f"see 'help {path}'"), json_output)
        except Exception:  # a bug: keep the session alive, log the traceback
            log.exception("command failed: %s", line)
            return _error(MxclusterError("internal error; see the daemon log"), json_output)
        if result.then is not None:
            return Outcome(then=partial(_follow, result.then, line, json_output))
        return _render(result, json_output)

    def _remote(self, args: list[str]) -> Any:
        """The machine (``MachineInfo``) a machine-only command must run on, when it is
        not this one; looked up here, on the store thread."""
        mode = self.session.mode
        if args[0] not in MACHINE_COMMANDS or mode.kind.value != "machine" or (
                mode.name == self.machine.identity.name):
            return None
        info = REGISTRY[args[0]]
        require(self.session.role, sub_permission(info, args[1:]), args[0])
        return self.machine.membership().find(mode.name)

    def _run(self, args: list[str]) -> Result:
        info = REGISTRY.get(args[0])
        if info is None:
            raise UsageError(f"unknown command {args[0]!r}", hint="type 'help' for the list")
        if isinstance(info.command, click.Group) and len(args) == 1:
            require(self.session.role, min_permission(info.permission), args[0])
            return self._group_menu(info)
        require(self.session.role, sub_permission(info, args[1:]), args[0])
        ctx = Ctx(self.machine, self.session, self.prompter, self)
        with info.command.make_context(info.name, args[1:], obj=ctx) as cctx:
            result = info.command.invoke(cctx)
        return result if isinstance(result, Result) else Result()


    def _group_menu(self, info: CommandInfo) -> Result:
        """A group given alone lists its sub-commands (the wizard's first screen)."""
        assert isinstance(info.command, click.Group)
        subs = {name: (cmd.get_short_help_str(80)) for name, cmd in info.command.commands.items()}
        width = max(len(n) for n in subs)
        lines = [f"{info.name}: {info.summary}", "", "Sub-commands:"]
        lines += [f"  {name:<{width}}  {text}" for name, text in subs.items()]
        lines.append(f"\nType '{info.name} SUB-COMMAND' or 'help {info.name} SUB-COMMAND'.")
        return Result({"command": info.name, "subcommands": subs}, "\n".join(lines))


async def _follow(then: FollowUp, line: str, json_output: bool) -> Outcome:
    """Await a command's follow-up and render it like the command itself."""
    try:
        result = await then()
    except MxclusterError as exc:
        return _error(exc, json_output)
    except Exception:
        log.exception("command failed: %s", line)
        return _error(MxclusterError("internal error; see the daemon log"), json_output)
    return _render(result, json_output)


async def _forward(machine: Machine, session: Session, info: Any, line: str,
                   json_output: bool) -> Outcome:
    """Run LINE on machine INFO for this session's user; its outcome as if local."""
    links = machine.runtime.get("links")
    try:
        if links is None:
            raise MxclusterError(f"cannot reach {info.name}: the cluster links are not "
                                 "running")
        if json_output and "--json" not in line.split():
            line += " --json"
        reply = await links.request(info, {"op": "exec", "user": session.user,
                                           "role": session.role.value, "line": line})
    except MxclusterError as exc:
        return _error(exc, json_output)
    return Outcome(int(reply.get("exit_code", 1)), str(reply.get("stdout", "")),
                   str(reply.get("stderr", "")))


async def run_line(run_in_store: Callable[[Callable[[], Outcome]], Awaitable[Outcome]],
                   shell: Shell, line: str) -> Outcome:
    """Run LINE: its store part on the store thread, then any follow-up on the loop."""
    outcome = await run_in_store(partial(shell.execute, line))
    if outcome.then is not None:
        outcome = await outcome.then()
    return outcome


def _render(result: Result, json_output: bool) -> Outcome:
    if json_output:
        data = result.data if result.data is not None else {"ok": True}
        return Outcome(0, json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
    text = result.text
    return Outcome(0, text + ("\n" if text and not text.endswith("\n") else ""))


def _error(exc: MxclusterError, json_output: bool) -> Outcome:
    if json_output:
        body = json.dumps(exc.to_dict(), separators=(",", ":"))
        return Outcome(exc.exit_code, "", body + "\n")
    return Outcome(exc.exit_code, "", f"error: {exc}\n")


def split_lines(text: str) -> list[str]:
    """Command lines of a batch (newline-separated; blank lines and '#' comments skipped)."""
    return [ln for ln in (raw.strip() for raw in text.splitlines())
            if ln and not ln.startswith("#")]
