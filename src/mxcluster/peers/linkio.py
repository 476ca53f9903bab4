"""The I/O of one peer link, below ``LinkManager``: its send queue, its read-ahead, acks
coalesced per batch, and how a member's record becomes an address to dial."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import asyncssh

from mxcluster.errors import MxclusterError, ValidationError
from mxcluster.membership.model import MachineInfo
from mxcluster.peers.transport import PeerAddress, PeerChannel
from mxcluster.replication.effects import Effect, Send
from mxcluster.replication.messages import Ack

log = logging.getLogger("mxcluster.peers")


def coalesce_acks(effects: list[Effect]) -> list[Effect]:
    """One ack per peer for a batch: the last one, counting them all (flow control only,
    so only their number matters); the other effects keep their order."""
    counts: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, e in enumerate(effects):
        if isinstance(e, Send) and isinstance(e.message, Ack):
            counts[e.peer] = counts.get(e.peer, 0) + e.message.count
            last[e.peer] = i
    if all(n == 1 for n in counts.values()):
        return effects
    out: list[Effect] = []
    for i, e in enumerate(effects):
        if isinstance(e, Send) and isinstance(e.message, Ack):
            if last[e.peer] == i:
                out.append(Send(e.peer, replace(e.message, count=counts[e.peer])))
            continue
        out.append(e)
    return out


async def send_loop(serial: str, chan: PeerChannel, outbox: asyncio.Queue[bytes]) -> None:
    """Send what the core queued for one link, in order, until the link fails."""
    try:
        while True:
            await chan.send(await outbox.get())
    except MxclusterError as exc:
        log.info("sending to %s stopped: %s", serial, exc)
        chan.close()


async def read_into(chan: PeerChannel, inbox: asyncio.Queue[bytes | None]) -> None:
    """Read CHAN's messages into INBOX; None marks the end of the stream."""
    try:
        while (data := await chan.recv()) is not None:
            await inbox.put(data)
    except ValidationError as exc:
        log.warning("closing a link: %s", exc)
    await inbox.put(None)


def address_of(info: MachineInfo) -> PeerAddress:
    return PeerAddress(info.serial, info.address, info.ssh_port, info.fingerprint)


def key_fingerprint(key_line: str) -> str | None:
    """The SHA256 fingerprint of an OpenSSH public key line; None when it is not one."""
    try:
        return str(asyncssh.import_public_key(key_line.strip()).get_fingerprint("sha256"))
    except (asyncssh.KeyImportError, ValueError):
        return None
