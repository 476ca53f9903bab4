"""The interactive front end of the shell (prompt_toolkit): line editing, history,
completion and a prompt that shows host and mode (SPEC §3.1).

``InteractiveShell`` only adds a terminal to ``Shell.execute``: every command still runs
on the store's thread through ``run_in_store``. Wizards ask their questions through
``TerminalPrompter``, which is called *on the store thread* and hands each question back
to the event loop, in the terminal's prompt_toolkit session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from functools import partial
from typing import Any, TypeVar

import click
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory

from mxcluster.errors import UsageError
from mxcluster.shell.core import REGISTRY, Prompter, Shell, run_line

T = TypeVar("T")

#: words that end the interactive shell (besides Ctrl-D)
EXIT_WORDS = ("exit", "quit", "logout")

#: how long a wizard waits for an answer; the store thread waits with it
ANSWER_TIMEOUT = 600.0


class RegistryCompleter(Completer):
    """Completes command names, sub-commands and ``--options`` from ``REGISTRY``."""

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        words = text.split()
        current = words.pop() if words and not text[-1].isspace() else ""
        for candidate in candidates(words, current):
            if candidate.startswith(current):
                yield Completion(candidate, start_position=-len(current))


def candidates(words: list[str], current: str) -> list[str]:
    """What may follow WORDS when the word being typed is CURRENT."""
    if not words:
        return sorted([*REGISTRY, *EXIT_WORDS])
    if words[0] == "help":
        return sorted(REGISTRY) if len(words) == 1 else []
    info = REGISTRY.get(words[0])
    if info is None:
        return []
    command = info.command
    if isinstance(command, click.Group):
        if len(words) == 1 and not current.startswith("-"):
            return sorted(n for n, c in command.commands.items() if not c.hidden)
        command = command.commands.get(words[1], command) if len(words) > 1 else command
    return option_names(command) if current.startswith("-") else []


def option_names(command: click.Command) -> list[str]:
    """The long and short option names of COMMAND, plus ``--json`` (every command has it)."""
    names = {"--json", "--help"}
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            names.update(param.opts)
            names.update(param.secondary_opts)
    return sorted(names)


class TerminalPrompter:
    """A ``Prompter`` that asks on the SSH terminal; called from the store thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = ANSWER_TIMEOUT) -> None:
        self._loop = loop
        # the terminal's prompt_toolkit AppSession lives in a context variable; questions
        # are asked in a copy of this context so they reach the right terminal
        self._context = contextvars.copy_context()
        self._timeout = timeout

    def ask(self, question: str, default: str | None = None, secret: bool = False) -> str:
        shown = f" [{default}]" if default and not secret else ""
        return self._call(_read_line(f"{question}{shown}: ", secret))

    def confirm(self, question: str, default: bool = False) -> bool:
        answer = self._call(_read_line(f"{question} [{'Y/n' if default else 'y/N'}] ", False))
        answer = answer.strip().lower()
        return default if not answer else answer in ("y", "yes")

    def _call(self, coro: Coroutine[Any, Any, str]) -> str:
        future = self._context.copy().run(asyncio.run_coroutine_threadsafe, coro, self._loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise UsageError(f"no answer within {self._timeout:.0f} seconds") from None
        except concurrent.futures.CancelledError:
            raise UsageError("question cancelled") from None


async def _read_line(message: str, secret: bool) -> str:
    session: PromptSession[str] = PromptSession()
    try:
        return await session.prompt_async(message, is_password=secret)
    except (EOFError, KeyboardInterrupt):
        raise UsageError("question cancelled") from None


class InteractiveShell:
    """The read-eval-print loop of one terminal session."""

    def __init__(
        self,
        run_in_store: Callable[[Callable[[], T]], Awaitable[T]],
        open_shell: Callable[[Prompter | None], Shell],
        write: Callable[[str], object],
    ) -> None:
        self._run_in_store: Any = run_in_store
        self._open_shell = open_shell
        self._write = write
        self._prompt = "> "

    async def run(self) -> None:
        """Read and run lines until ``exit``, ``quit`` or Ctrl-D."""
        prompter = TerminalPrompter(asyncio.get_running_loop())
        shell: Shell = await self._run_in_store(partial(self._open_shell, prompter))
        await self._refresh_prompt(shell)
        self._write("Type 'help' for the commands, 'exit' or Ctrl-D to leave.\n")
        lines: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), completer=RegistryCompleter(),
            complete_while_typing=False)
        async for line in _commands(lines, lambda: self._prompt):
            outcome = await run_line(self._run_in_store, shell, line)
            self._write(outcome.stdout + outcome.stderr)
            await self._refresh_prompt(shell)
        await self._farewell(shell)

    async def _refresh_prompt(self, shell: Shell) -> None:
        self._prompt = await self._run_in_store(shell.prompt)

    async def _farewell(self, shell: Shell) -> None:
        pending: list[str] = await self._run_in_store(shell.session.summary)
        if pending:
            self._write(f"{len(pending)} uncommitted change(s) discarded.\n")


async def _commands(session: PromptSession[str], message: Callable[[], str]) -> AsyncIterator[str]:
    """Command lines typed at the prompt; Ctrl-C drops the line, Ctrl-D or exit ends."""
    while True:
        try:
            line = (await session.prompt_async(message)).strip()
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        if line in EXIT_WORDS:
            return
        if line:
            yield line
