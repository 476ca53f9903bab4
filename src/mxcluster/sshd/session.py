"""``AdminSession``: one SSH channel of a logged-in administrator.

An exec request (``ssh -p 2222 admin@host 'showconfig'``) is a batch: its text may hold
several command lines, which run in order in one ``Session`` (so edits and ``commit``
can be given together) and stop at the first failure, whose exit code becomes the
channel's exit status. A shell request with a PTY opens the interactive shell; without a
PTY (``ssh host < commands.txt``) stdin is read to the end and run as a batch. Batches
never prompt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import asyncssh
from prompt_toolkit.contrib.ssh import PromptToolkitSSHSession
from prompt_toolkit.data_structures import Size

from mxcluster.service.machine import Machine
from mxcluster.service.session import Session
from mxcluster.shell.core import Prompter, Shell, run_line, split_lines
from mxcluster.shell.interactive import InteractiveShell
from mxcluster.users.roles import Role

log = logging.getLogger("mxcluster.sshd")

T = TypeVar("T")

#: the most command text a shell without PTY buffers from stdin (an authenticated
#: client could otherwise fill the memory); files of data go through 'import' instead
MAX_STDIN_CHARS = 1 << 20

#: words that end a batch read from stdin early, as they end the interactive shell
_EXIT_WORDS = frozenset({"exit", "quit", "logout"})


class RunInStore(Protocol):
    """Runs FN on the store's single thread and awaits its result."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


@dataclass(frozen=True)
class Login:
    """An authenticated administrator on one connection."""

    user: str
    role: Role
    address: str


def open_shell(machine: Machine, login: Login, prompter: Prompter | None) -> Shell:
    """A Shell with a fresh Session in the machine's default mode (store thread only)."""
    session = Session(login.user, login.role, machine.default_mode(),
                      interactive=prompter is not None, address=login.address)
    return Shell(machine, session, prompter)


async def run_batch(run_in_store: RunInStore, shell: Shell, text: str,
                    out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run the command lines of TEXT in order; stop at the first failure, return its code."""
    for line in split_lines(text):
        if line in _EXIT_WORDS:
            break
        outcome = await run_line(run_in_store, shell, line)
        if outcome.stdout:
            out(outcome.stdout)
        if outcome.stderr:
            err(outcome.stderr)
        if outcome.exit_code:
            return outcome.exit_code
    return 0


class AdminSession(PromptToolkitSSHSession):
    """Dispatches one channel to a batch run or to the interactive shell."""

    def __init__(self, machine: Machine, run_in_store: RunInStore, login: Login,
                 track: Callable[[asyncio.Task[None]], None]) -> None:
        super().__init__(self._interactive, enable_cpr=False)
        self._machine = machine
        self._run_in_store = run_in_store
        self._login = login
        self._track = track  # lets the service wait for running sessions when stopping
        self._command: str | None = None
        self._pty = False
        self._stdin: list[str] = []
        self._stdin_chars = 0
        self._done = False  # the channel was answered already (stdin refused)
        self._batch_task: asyncio.Task[None] | None = None

    # -- channel requests --------------------------------------------------------------

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int],
                      term_modes: Any) -> bool:
        self._pty = True
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def session_started(self) -> None:
        if self._command is not None:
            self._start_batch(self._command)
        elif self._pty:
            super().session_started()
            assert self.interact_task is not None
            self._track(self.interact_task)
        # else: a shell without PTY; the batch starts when stdin ends

    def data_received(self, data: str, datatype: Any) -> None:
        if self._is_interactive:
            super().data_received(data, datatype)
        elif self._command is None and not self._done:
            self._stdin_chars += len(data)
            if self._stdin_chars > MAX_STDIN_CHARS:
                self._refuse_stdin()
            else:
                self._stdin.append(data)

    def _refuse_stdin(self) -> None:
        assert self._chan is not None
        self._done = True
        self._stdin.clear()
        self._chan.write_stderr(f"error: more than {MAX_STDIN_CHARS} characters of commands "
                                "on stdin (use 'import' for data files)\n")
        self._chan.exit(2)

    def eof_received(self) -> bool:
        if self._command is None and not self._pty and not self._done:
            self._start_batch("".join(self._stdin))
        return True  # keep the channel open for our output

    def connection_lost(self, exc: Exception | None) -> None:
        if self._input is not None:
            self._input.close()  # the interactive prompt (or a wizard's question) gets EOF
        if self._batch_task is not None and not self._batch_task.done():
            self._batch_task.cancel()

    def _get_size(self) -> Size:
        """The client's terminal size; 80x24 when it reports none (0x0)."""
        size = super()._get_size()
        return Size(rows=size.rows or 24, columns=size.columns or 80)

    @property
    def _is_interactive(self) -> bool:
        return self._command is None and self._pty

    # -- batch ---------------------------------------------------------------------------

    def _start_batch(self, text: str) -> None:
        self._done = True
        self._batch_task = asyncio.get_running_loop().create_task(self._batch(text))
        self._track(self._batch_task)

    async def _batch(self, text: str) -> None:
        chan = self._chan
        assert chan is not None
        try:
            shell = await self._run_in_store(
                partial(open_shell, self._machine, self._login, None))
            code = await run_batch(self._run_in_store, shell, text,
                                   self._writer(chan.write), self._writer(chan.write_stderr))
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            return  # the client went away
        except Exception:
            log.exception("batch of %r failed", self._login.user)
            code = 1
        chan.exit(code)

    def _writer(self, write: Callable[[str], None]) -> Callable[[str], None]:
        """WRITE, translating newlines when the client asked for a terminal."""
        if not self._pty:
            return write
        return lambda text: write(text.replace("\n", "\r\n"))

    # -- interactive ---------------------------------------------------------------------

    async def _interactive(self, _session: PromptToolkitSSHSession) -> None:
        chan = self._chan
        assert chan is not None
        repl = InteractiveShell(
            self._run_in_store,
            partial(open_shell, self._machine, self._login),
            self.stdout.write,
        )
        try:
            await repl.run()
        except asyncio.CancelledError:  # the service is stopping
            return
        except Exception:
            log.exception("interactive session of %r failed", self._login.user)
            chan.exit(1)
            return
        chan.exit(0)
