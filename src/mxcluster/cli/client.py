"""``mxcluster cli``: the appliance shell of a machine, from the ``mxcluster`` program
(SPEC §3.2).

Batch (``-c CMD``..., ``-f FILE``, or commands on stdin when it is not a terminal): every
command goes in ONE SSH exec request, so they run in order in one session and the first
failure stops the run; the exit status is the failing command's. Interactive (no
commands, stdin is a terminal): a PTY shell session with the terminal passed through in
raw mode. Exit codes: 0 success, 1 command failed, 2 usage error, 3 authentication or
authorisation failure (also a host key that does not match ``--fingerprint``), 4 the
machine cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import asyncssh
import click

from mxcluster.errors import AuthError, MxclusterError, UnreachableError, UsageError
from mxcluster.shell.core import split_lines

PASSWORD_ENV = "MXCLUSTER_PASSWORD"
DEFAULT_PORT = 2222
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """Where to connect and how to check the machine's identity."""

    host: str
    port: int
    user: str
    password: str | None
    fingerprint: str | None = None
    identity: Path | None = None
    verbose: bool = False
    timeout: float = CONNECT_TIMEOUT


class _HostKeyCheck(asyncssh.SSHClient):
    """Accepts the server's host key when it matches the pinned fingerprint (if any)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self.seen: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.seen = key.get_fingerprint("sha256")
        if self._target.verbose:
            print(f"host key of {host}:{port}: {self.seen}", file=sys.stderr)
        return self._target.fingerprint in (None, self.seen)


def run_cli(host: str, port: int, user: str, password: str | None,
            commands: list[str] | None, file: Path | None, json_output: bool,
            interactive: bool, *, fingerprint: str | None = None,
            identity: Path | None = None, verbose: bool = False) -> int:
    """Run the shell of HOST:PORT as USER; returns the exit code (SPEC §3.2)."""
    target = Target(host, port, user, password, fingerprint, identity, verbose)
    try:
        if interactive:
            return asyncio.run(_interactive(target))
        return asyncio.run(_batch(target, batch_text(commands, file, json_output)))
    except MxclusterError as exc:
        _report(exc, json_output)
        return exc.exit_code


def batch_text(commands: list[str] | None, file: Path | None, json_output: bool) -> str:
    """The newline-joined command lines of ``-c``/``-f``, each with ``--json`` if asked."""
    if commands and file is not None:
        raise UsageError("give commands with -c or with -f, not both")
    if commands:
        text = "\n".join(commands)
    elif file is not None:
        text = _read_commands(file)
    else:
        raise UsageError("no commands given", hint="use -c COMMAND or -f FILE")
    lines = split_lines(text)
    return "\n".join(f"{ln} --json" if json_output else ln for ln in lines)


def _read_commands(file: Path) -> str:
    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read command file {file}: {exc}") from None


def _report(exc: MxclusterError, json_output: bool) -> None:
    if json_output:
        print(json.dumps(exc.to_dict(), separators=(",", ":")), file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)


# -- connecting ------------------------------------------------------------------------


async def _connect(target: Target) -> asyncssh.SSHClientConnection:
    """Log in; map failures to AuthError (3) and UnreachableError (4)."""
    check = _HostKeyCheck(target)
    where = f"{target.host}:{target.port}"
    try:
        conn, _ = await asyncssh.create_connection(
            lambda: check, target.host, target.port, username=target.user,
            password=target.password, known_hosts=([], [], []), config=None,
            **_key_options(target), connect_timeout=target.timeout)
    except asyncssh.HostKeyNotVerifiable:
        raise AuthError(f"the host key of {where} is {check.seen}, not {target.fingerprint}",
                        hint="check that you reach the right machine ('version' shows "
                        "its fingerprint)") from None
    except asyncssh.PermissionDenied:
        raise AuthError(f"authentication as {target.user!r} on {where} failed",
                        hint="check the user name and password") from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise UnreachableError(f"cannot reach {where}: {exc}",
                               hint="check the address, the port and that it runs") from None
    return conn


def _key_options(target: Target) -> dict[str, object]:
    """An explicit identity file; else keys and agent only when there is no password."""
    if target.identity is not None:
        return {"client_keys": [str(target.identity)], "agent_path": None}
    if target.password is not None:
        return {"client_keys": None, "agent_path": None}
    return {}


async def _pump(reader: asyncssh.SSHReader[bytes], sink: BinaryIO) -> None:
    while data := await reader.read(65536):
        sink.write(data)
        sink.flush()


def _exit_status(process: asyncssh.SSHClientProcess[bytes], where: str) -> int:
    if process.exit_status is None:
        raise UnreachableError(f"the connection to {where} ended without an exit status")
    return process.exit_status


Process = asyncssh.SSHClientProcess[bytes]


async def _run_process(
    target: Target, start: Callable[[asyncssh.SSHClientConnection], Awaitable[Process]],
    around: Callable[[Process], AbstractContextManager[object]] = lambda p: nullcontext(),
) -> Process:
    """Connect, start a process, copy its output to ours until it exits, disconnect."""
    conn = await _connect(target)
    try:
        process = await start(conn)
        with around(process):
            await asyncio.gather(_pump(process.stdout, sys.stdout.buffer),
                                 _pump(process.stderr, sys.stderr.buffer))
            await process.wait(check=False)
    except (OSError, asyncssh.Error) as exc:
        raise UnreachableError(f"lost the connection to {target.host}: {exc}") from None
    finally:
        conn.close()
    return process


async def _batch(target: Target, text: str) -> int:
    process = await _run_process(
        target, lambda conn: conn.create_process(text, stdin=asyncssh.DEVNULL, encoding=None))
    return _exit_status(process, target.host)


# -- interactive -----------------------------------------------------------------------


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """The local terminal in raw mode (the remote shell edits lines), restored after."""
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _interactive(target: Target) -> int:
    size = shutil.get_terminal_size()

    def start(conn: asyncssh.SSHClientConnection) -> Awaitable[Process]:
        return conn.create_process(term_type=os.environ.get("TERM", "xterm"),
                                   term_size=(size.columns, size.lines), encoding=None)

    @contextlib.contextmanager
    def terminal(process: Process) -> Iterator[None]:
        with _raw_terminal(sys.stdin.fileno()), _forward_terminal(process):
            yield

    process = await _run_process(target, start, terminal)
    return process.exit_status or 0


@contextlib.contextmanager
def _forward_terminal(process: asyncssh.SSHClientProcess[bytes]) -> Iterator[None]:
    """Copy keystrokes to PROCESS and follow window size changes while inside."""
    loop, fd = asyncio.get_running_loop(), sys.stdin.fileno()

    def keystrokes() -> None:
        data = os.read(fd, 4096)
        if data:
            process.stdin.write(data)
        else:
            loop.remove_reader(fd)
            process.stdin.write_eof()

    def resized() -> None:
        size = shutil.get_terminal_size()
        process.change_terminal_size(size.columns, size.lines)

    loop.add_reader(fd, keystrokes)
    loop.add_signal_handler(signal.SIGWINCH, resized)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        loop.remove_signal_handler(signal.SIGWINCH)


# -- the click command -----------------------------------------------------------------


def read_password(password_file: Path | None, prompt: str) -> str | None:
    """From the file, else $MXCLUSTER_PASSWORD, else asked when stdin is a terminal."""
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read password file {password_file}: {exc}") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return None


_EPILOG = ("Exit codes: 0 success, 1 a command failed, 2 usage error, "
           "3 authentication or authorisation failure, 4 the machine cannot be reached.")


@click.command("cli", epilog=_EPILOG)
@click.option("--host", required=True, help="Address or name of the machine.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Its SSH port.")
@click.option("--user", required=True, help="Administrator to log in as.")
@click.option("--password-file", type=click.Path(path_type=Path),
              help=f"File holding the password (else ${PASSWORD_ENV}, else asked).")
@click.option("-i", "--identity", type=click.Path(path_type=Path),
              help="Private key file to log in with instead of a password.")
@click.option("-c", "--command", "commands", multiple=True,
              help="A command to run (repeatable; all run in one session).")
@click.option("-f", "--file", type=click.Path(path_type=Path),
              help="File of commands, one per line ('-' for stdin).")
@click.option("--json", "json_output", is_flag=True,
              help="Each command prints one compact JSON document.")
@click.option("--fingerprint", help="Expected host key fingerprint (SHA256:...).")
@click.option("-v", "--verbose", is_flag=True, help="Show the host key fingerprint.")
def cli_command(host: str, port: int, user: str, password_file: Path | None,
                identity: Path | None, commands: tuple[str, ...], file: Path | None,
                json_output: bool, fingerprint: str | None, verbose: bool) -> None:
    """Run the appliance shell of a machine, interactively or in batch."""
    interactive = not commands and file is None and sys.stdin.isatty()
    if not commands and file is None and not interactive:
        file = Path("-")  # commands piped on stdin
    try:
        password = None if identity and password_file is None else read_password(
            password_file, f"{user}@{host}'s password: ")
    except MxclusterError as exc:
        _report(exc, json_output)
        raise click.exceptions.Exit(exc.exit_code) from None
    code = run_cli(host, port, user, password, list(commands), file, json_output,
                   interactive, fingerprint=fingerprint, identity=identity, verbose=verbose)
    raise click.exceptions.Exit(code)
