"""Peer channels over real SSH: pinned machine keys both ways, framed messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest
from tests.sshd.harness import Harness, harness  # noqa: F401  (fixture)

from mxcluster.errors import AuthError
from mxcluster.peers.transport import PeerAddress, PeerChannel, dial


class EchoGate:
    """A PeerGate that knows one machine key and echoes what that peer sends."""

    def __init__(self, known: str) -> None:
        self.known = known
        self.seen: list[str] = []

    async def authorize(self, fingerprint: str) -> str | None:
        return "PEER1" if fingerprint == self.known else None

    async def serve(self, serial: str, channel: PeerChannel) -> None:
        while (data := await channel.recv()) is not None:
            self.seen.append(serial)
            await channel.send(b'{"echo":' + data + b"}")


def machine_key(tmp: Path, name: str) -> tuple[Path, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp / name
    key.write_private_key(str(path))
    return path, key.get_fingerprint("sha256")


def test_pinned_machine_exchanges_messages(harness: Harness, tmp_path: Path) -> None:  # noqa: F811
    """A machine whose key is pinned gets a channel; messages arrive whole and in order."""
    key, fp = machine_key(tmp_path, "peer1")
    gate = EchoGate(fp)
    harness.service.peer_gate = gate

    async def talk() -> list[bytes | None]:
        chan = await dial(PeerAddress("S", "127.0.0.1", harness.port, harness.fingerprint), key)
        replies = []
        for i in range(3):
            await chan.send(b'{"n":%d}' % i)
            replies.append(await asyncio.wait_for(chan.recv(), 10))
        chan.close()
        return replies

    assert harness.run(talk()) == [b'{"echo":{"n":%d}}' % i for i in range(3)]
    assert gate.seen == ["PEER1"] * 3


def test_unknown_machine_key_is_refused(harness: Harness, tmp_path: Path) -> None:  # noqa: F811
    """A key not pinned in the membership cannot open a peer channel."""
    key, _ = machine_key(tmp_path, "stranger")
    harness.service.peer_gate = EchoGate("SHA256:someone-else")
    with pytest.raises(AuthError, match="refused our machine key"):
        harness.run(dial(PeerAddress("S", "127.0.0.1", harness.port, harness.fingerprint), key))


def test_wrong_host_key_of_the_peer_is_refused(harness: Harness, tmp_path: Path) -> None:  # noqa: F811
    """The dialler refuses a peer whose host key is not the pinned one."""
    key, fp = machine_key(tmp_path, "peer1")
    harness.service.peer_gate = EchoGate(fp)
    with pytest.raises(AuthError, match="not the expected"):
        harness.run(dial(PeerAddress("S", "127.0.0.1", harness.port, "SHA256:wrong"), key))


def test_peer_user_cannot_log_in_with_a_password(harness: Harness) -> None:  # noqa: F811
    """The peer account accepts machine keys only, never a password."""
    async def attempt() -> None:
        await asyncssh.connect("127.0.0.1", harness.port, username="mxcluster-peer",
                               password="anything", known_hosts=None, client_keys=None,
                               agent_path=None)

    with pytest.raises(asyncssh.PermissionDenied):
        harness.run(attempt())
