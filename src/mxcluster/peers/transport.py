"""One peer channel over SSH: JSON messages, one per line, on subsystem ``mxcluster-peer``.

A machine dials its peers as user ``mxcluster-peer`` with its own SSH host key; the
answering machine accepts only keys pinned in the membership data (or pre-authorised
by ``prepjoin``). The dialler in turn accepts only the host key pinned for the peer.
Keepalives notice a dead peer within ``KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1)`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncssh

from mxcluster.errors import AuthError, UnreachableError, ValidationError

log = logging.getLogger("mxcluster.peers")

PEER_USER = "mxcluster-peer"
PEER_SUBSYSTEM = "mxcluster-peer"
#: one request, one reply: control requests (machine:M commands, prepared joins, checks)
CONTROL_SUBSYSTEM = "mxcluster-control"
#: the prefix of the identity ``PeerGate.authorize`` gives a key pre-authorised by
#: ``prepjoin``: such a machine may ask to be admitted, nothing else
PREPARED = "prepjoin:"
#: a dead peer is noticed within about 2 s * (3 + 1) = 8 s (the first keepalive goes
#: out one interval after the peer fell silent; the target is "within 10 seconds")
KEEPALIVE_INTERVAL = 2.0
KEEPALIVE_COUNT = 3
CONNECT_TIMEOUT = 5.0
#: peer links prefer AES-GCM: with AES-NI it costs about half of ChaCha20-Poly1305 per
#: message (measured by the cluster benchmark); both are authenticated ciphers
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com")
#: the largest message line accepted from a peer
MAX_LINE = 16 << 20


class PeerChannel:
    """Framed messages over one SSH channel; ``recv`` returns None at end of stream."""

    def __init__(self, reader: asyncssh.SSHReader[str], writer: asyncssh.SSHWriter[str],
                 conn: asyncssh.SSHClientConnection | None = None) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = conn

    async def send(self, data: bytes) -> None:
        """Send one message; UnreachableError when the channel is gone."""
        try:
            self._writer.write(data.decode("utf-8") + "\n")
            await self._writer.drain()
        except (asyncssh.Error, ConnectionError, OSError) as exc:
            raise UnreachableError(f"peer channel closed: {exc}") from None

    async def recv(self) -> bytes | None:
        try:
            line = await self._reader.readline()
        except (asyncssh.Error, ConnectionError, asyncio.IncompleteReadError):
            return None
        if not line:
            return None
        if len(line) > MAX_LINE:
            raise ValidationError([f"peer message of {len(line)} bytes exceeds {MAX_LINE}"])
        return line.rstrip("\n").encode("utf-8")

    def close(self) -> None:
        with contextlib.suppress(asyncssh.Error, ConnectionError, OSError):
            self._writer.close()
        if self._conn is not None:
            self._conn.close()


@dataclass(frozen=True)
class PeerAddress:
    """How to reach a peer and which host key it must prove."""

    serial: str
    address: str
    port: int
    fingerprint: str | None


class _PinnedHost(asyncssh.SSHClient):
    def __init__(self, fingerprint: str | None) -> None:
        self._fingerprint = fingerprint
        self.seen: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.seen = key.get_fingerprint("sha256")
        return self._fingerprint is None or self.seen == self._fingerprint


async def dial(peer: PeerAddress, host_key: Path,
               subsystem: str = PEER_SUBSYSTEM) -> PeerChannel:
    """Open a peer channel to PEER, proving our identity with HOST_KEY."""
    pin = _PinnedHost(peer.fingerprint)
    try:
        conn, _ = await asyncio.wait_for(asyncssh.create_connection(
            lambda: pin, peer.address, peer.port, username=PEER_USER,
            client_keys=[str(host_key)], known_hosts=([], [], []), agent_path=None,
            password=None, kbdint_auth=False, encryption_algs=CIPHERS,
            keepalive_interval=KEEPALIVE_INTERVAL,
            keepalive_count_max=KEEPALIVE_COUNT), CONNECT_TIMEOUT)
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyMismatch(peer.address, peer.port, pin.seen, peer.fingerprint) from None
    except asyncssh.PermissionDenied:
        raise AuthError(f"{peer.address}:{peer.port} refused our machine key") from None
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise UnreachableError(f"cannot reach {peer.address}:{peer.port}: {exc}") from None
    try:
        writer, reader, _ = await conn.open_session(subsystem=subsystem)
    except (OSError, asyncssh.Error) as exc:
        conn.close()
        raise UnreachableError(f"{peer.address}:{peer.port} refused the {subsystem} "
                               f"channel: {exc}") from None
    return PeerChannel(reader, writer, conn)


class HostKeyMismatch(AuthError):
    """The machine at an address did not present the host key expected of it."""

    def __init__(self, address: str, port: int, seen: str | None,
                 expected: str | None) -> None:
        self.seen = seen
        if expected:
            message = (f"{address}:{port} presented host key {seen}, not the expected "
                       f"{expected}")
        else:
            message = f"{address}:{port} presented host key {seen}, which is not trusted"
        super().__init__(message, hint="check the fingerprint on that machine ('version')")


class PeerGate(Protocol):
    """What the SSH service asks about peer logins (the links layer implements it)."""

    async def authorize(self, fingerprint: str) -> str | None:
        """The serial of the machine owning the key FINGERPRINT, or None to refuse."""

    async def serve(self, serial: str, channel: PeerChannel) -> None:
        """Run an inbound peer channel until it ends."""

    async def control(self, serial: str, channel: PeerChannel) -> None:
        """Answer the one control request on an inbound control channel."""
