"""Scripted terminals for the interactive shell: send keys, wait for text (no sleeps)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import subprocess
import time
from typing import Any

import asyncssh

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


def plain(text: str) -> str:
    """TEXT without terminal escape sequences and carriage returns."""
    return _ANSI.sub("", text)


class Terminal:
    """An SSH shell session with a PTY, read as plain text."""

    def __init__(self, process: asyncssh.SSHClientProcess[str]) -> None:
        self.process = process
        self.output = ""
        self._seen = 0

    @classmethod
    async def open(cls, conn: asyncssh.SSHClientConnection, **kw: Any) -> Terminal:
        process = await conn.create_process(term_type="xterm", term_size=(100, 30), **kw)
        return cls(process)

    def send(self, keys: str) -> None:
        self.process.stdin.write(keys)

    async def expect(self, text: str, timeout: float = 10.0) -> str:
        """Wait until TEXT appears after the last match; return the output up to it."""
        try:
            async with asyncio.timeout(timeout):
                while (found := plain(self.output).find(text, self._seen)) < 0:
                    chunk = await self.process.stdout.read(4096)
                    if not chunk:
                        raise EOFError(f"ended before {text!r}:\n{plain(self.output)}")
                    self.output += chunk
        except TimeoutError:
            raise AssertionError(f"no {text!r} within {timeout}s in:\n{self.output!r}") from None
        before = plain(self.output)[self._seen:found]
        self._seen = found + len(text)
        return before

    async def finish(self, timeout: float = 10.0) -> int | None:
        """Wait for the session to end; its exit status."""
        async with asyncio.timeout(timeout):
            self.output += await self.process.stdout.read()
            await self.process.wait(check=False)
        return self.process.exit_status


class PtyProcess:
    """A child on a pseudo-terminal; read its output as plain text with a deadline."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.output = ""

    def expect(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in plain(self.output):
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.output!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.output += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    assert text in plain(self.output), self.output
                    return

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=15)
        finally:
            os.close(self.master)
