"""SSH clients for the tests: one asyncssh exec or stdin batch, returned as text."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncssh
from tests.sshd.harness import ADMIN_PASSWORD, Harness


@dataclass
class Ran:
    """What one SSH session returned."""

    exit_status: int | None
    stdout: str
    stderr: str


async def _run(h: Harness, command: str, *, user: str = "admin",
               password: str | None = ADMIN_PASSWORD, stdin: str | None = None,
               **options: Any) -> Ran:
    async with asyncssh.connect(
        "127.0.0.1", h.port, username=user, password=password, known_hosts=None,
        client_keys=options.pop("client_keys", None), agent_path=None, config=None,
        **options,
    ) as conn:
        if stdin is not None:
            done = await conn.run(input=stdin, check=False)
        else:
            done = await conn.run(command, check=False)
        return Ran(done.exit_status, str(done.stdout), str(done.stderr))


def run(h: Harness, command: str, **kw: Any) -> Ran:
    return asyncio.run(_run(h, command, **kw))
