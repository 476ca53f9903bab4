"""A counting SMTP sink (aiosmtpd) for the benchmark, run in its own process."""

from __future__ import annotations

import asyncio
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from aiosmtpd.smtp import SMTP


class CountingHandler:
    def __init__(self, counter: Synchronized) -> None:  # type: ignore[type-arg]
        self.counter = counter

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 2.0.0 Ok: sunk"


def run_sink(port: int, counter: Synchronized) -> None:  # type: ignore[type-arg]
    """Serve on 127.0.0.1:PORT forever, counting messages in COUNTER."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = CountingHandler(counter)
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.bench", loop=loop), "127.0.0.1", port,
            reuse_address=True, backlog=512)
        async with server:
            await server.serve_forever()
    asyncio.run(main())
