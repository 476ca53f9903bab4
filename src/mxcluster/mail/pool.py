"""Outbound connection slots, enforcing destconfig limits per machine.

Each recipient domain gets ``max_connections`` slots. A slot may hold one open SMTP
connection, reused for up to ``max_messages_per_connection`` messages to the same next
hop. Holding a slot is the only way to talk to a destination, so the number of open
connections per domain never exceeds the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from aiosmtplib import SMTP

from mxcluster.config.blocks import DestLimits

Target = tuple[str, int]  # IP, port


@dataclass
class Slot:
    """Permission to hold one connection to a destination domain."""

    limits: DestLimits
    client: SMTP | None = None
    target: Target | None = None
    used: int = 0
    in_use: bool = False
    idle_since: float = field(default_factory=time.monotonic)

    def usable_for(self, target: Target) -> bool:
        return (self.client is not None and self.target == target
                and self.client.is_connected
                and self.used < self.limits.max_messages_per_connection)


class DomainSlots:
    """The slots of one destination domain under one set of limits."""

    def __init__(self, limits: DestLimits) -> None:
        self.limits = limits
        self.all = [Slot(limits) for _ in range(limits.max_connections)]
        self.free: asyncio.LifoQueue[Slot] = asyncio.LifoQueue()
        for slot in self.all:
            self.free.put_nowait(slot)


async def close_client(client: SMTP | None) -> None:
    """QUIT politely, then drop the connection whatever happens."""
    if client is None or not client.is_connected:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.quit(), 2)
    client.close()


class ConnectionPool:
    """Slots per destination domain; idle connections are closed after ``idle`` seconds."""

    def __init__(self, idle: float = 5.0) -> None:
        self._domains: dict[tuple[str, DestLimits], DomainSlots] = {}
        self._idle = idle

    async def acquire(self, domain: str, limits: DestLimits) -> Slot:
        """Wait for a free slot of DOMAIN (at most ``limits.max_connections`` in use)."""
        key = (domain, limits)
        slots = self._domains.get(key)
        if slots is None:
            slots = self._domains[key] = DomainSlots(limits)
        slot = await slots.free.get()
        slot.in_use = True
        return slot

    def release(self, domain: str, slot: Slot, healthy: bool) -> None:
        """Give SLOT back; a connection that is unhealthy or used up is closed."""
        if not healthy or not (slot.client and slot.usable_for(slot.target or ("", 0))):
            client, slot.client, slot.target, slot.used = slot.client, None, None, 0
            if client is not None:
                asyncio.get_running_loop().create_task(close_client(client))
        slot.idle_since = time.monotonic()
        slot.in_use = False
        slots = self._domains.get((domain, slot.limits))
        if slots is not None:
            slots.free.put_nowait(slot)

    async def reap(self) -> None:
        """Close connections idle for longer than the idle limit."""
        now = time.monotonic()
        idle: list[SMTP] = []
        for slots in list(self._domains.values()):
            for slot in slots.all:
                if (slot.client is not None and not slot.in_use
                        and now - slot.idle_since > self._idle):
                    idle.append(slot.client)
                    slot.client, slot.target, slot.used = None, None, 0
        await asyncio.gather(*(close_client(c) for c in idle))

    async def close(self) -> None:
        """Close every idle connection (slots in use are closed by their holders)."""
        self._idle = -1.0
        await self.reap()
