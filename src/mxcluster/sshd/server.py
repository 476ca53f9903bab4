"""``SSHService``: listens for administrators and authenticates them (SPEC §3.1).

Logins are checked against the committed user database (password or public key). Failed
password attempts are slowed down and, after too many, refused for a while by the
``LoginThrottle`` (per user and client address); every failure is logged with the client
address. Key *queries* never count as failures (an OpenSSH client offers every key it
has), and nothing but a completed login resets the throttle: a public key is public, so
an accepted key query proves nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from mxcluster.peers.transport import (
    CONTROL_SUBSYSTEM,
    KEEPALIVE_COUNT,
    KEEPALIVE_INTERVAL,
    PEER_SUBSYSTEM,
    PEER_USER,
    PREPARED,
    PeerChannel,
    PeerGate,
)
from mxcluster.service.machine import Machine, verify_credentials
from mxcluster.sshd.session import AdminSession, Login, RunInStore
from mxcluster.users.roles import Role
from mxcluster.users.throttle import LoginThrottle

log = logging.getLogger("mxcluster.sshd")

#: how long stop() lets running sessions end after their connections closed
STOP_TIMEOUT = 5.0

class SSHService:
    """The SSH listener of one machine: start, stop, and the connections in between."""

    def __init__(self, machine: Machine, run_in_store: RunInStore, host: str, port: int,
                 host_key_path: Path, throttle: LoginThrottle) -> None:
        self.machine = machine
        self.run_in_store = run_in_store
        self.host = host
        self.port = port
        self.host_key_path = host_key_path
        self.throttle = throttle
        #: answers peer logins (user ``mxcluster-peer``); None until clustering is wired
        self.peer_gate: PeerGate | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on host:port; with port 0, ``self.port`` becomes the chosen port."""
        self._acceptor = await asyncssh.create_server(
            lambda: LoginServer(self), self.host, self.port,
            server_host_keys=[str(self.host_key_path)],
            line_editor=False,  # prompt_toolkit edits lines; batch output is translated
            encoding="utf-8",
            keepalive_interval=60,
            agent_forwarding=False,  # the shell needs no forwarding of any kind
        )
        self.port = self._acceptor.get_port()
        log.info("SSH service listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            await conn.wait_closed()
        if self._sessions:  # closed connections end their sessions; let them finish
            _, late = await asyncio.wait(self._sessions, timeout=STOP_TIMEOUT)
            for task in late:
                task.cancel()
        log.info("SSH service stopped")

    def _track(self, task: asyncio.Task[None]) -> None:
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    def _opened(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connections.add(conn)

    def _closed(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connections.discard(conn)


async def _run_peer(gate: PeerGate | None, serial: str, stdin: asyncssh.SSHReader[str],
                    stdout: asyncssh.SSHWriter[str]) -> None:
    """Hand a peer's channel to the gate: replication link or one control request.

    A machine known only by a ``prepjoin`` may send a control request (to be admitted)
    and nothing else.
    """
    subsystem = stdin.channel.get_subsystem()
    channel = PeerChannel(stdin, stdout)
    if gate is not None and subsystem == CONTROL_SUBSYSTEM:
        await gate.control(serial, channel)
    elif gate is not None and subsystem == PEER_SUBSYSTEM and not serial.startswith(PREPARED):
        await gate.serve(serial, channel)
    else:
        log.warning("refused %s channel %r from %s", "peer", subsystem, serial)
    channel.close()


class LoginServer(asyncssh.SSHServer):
    """One client connection: authentication, then a session per channel."""

    def __init__(self, service: SSHService) -> None:
        self._service = service
        self._conn: asyncssh.SSHServerConnection | None = None
        self._address = "unknown"
        self._roles: dict[str, Role] = {}
        self._login: Login | None = None
        self._peer: str | None = None  # serial of an authenticated peer machine

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._address = str(peer[0]) if peer else "unknown"
        self._service._opened(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._service._closed(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every user must authenticate

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        if username == PEER_USER:
            return False  # machines prove themselves with their host key only
        machine = self._service.machine
        return await self._attempt(
            username, "password", lambda: machine.credentials(username),
            lambda creds: verify_credentials(creds, password))

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if username == PEER_USER:
            return await self._validate_peer(key)
        machine = self._service.machine
        line = key.export_public_key("openssh").decode("ascii")
        return await self._attempt(username, "key", lambda: machine.check_key(username, line))

    async def _attempt(self, user: str, method: str, check: Callable[[], Any],
                       verify: Callable[[Any], Role | None] | None = None) -> bool:
        """Run CHECK under the throttle; remember the role when it succeeds.

        CHECK runs on the store thread; VERIFY (the costly argon2 step) runs on a worker
        thread so a flood of password guesses never stalls the store.
        """
        throttle, address = self._service.throttle, self._address
        if not await self._admitted(user):
            return False
        found = await self._service.run_in_store(check)
        role = found if verify is None else await asyncio.to_thread(verify, found)
        if role is None:
            if method == "password":
                throttle.failed(user, address)
                log.warning("failed password login for %r from %s", user, address)
            else:
                log.info("public key not accepted for %r from %s", user, address)
            return False
        self._roles[user] = role
        return True

    async def _admitted(self, user: str) -> bool:
        """Wait the throttle's delay; False (logged) when the pair is locked out."""
        throttle, address = self._service.throttle, self._address
        if not throttle.locked(user, address):
            await asyncio.sleep(throttle.delay(user, address))
            if not throttle.locked(user, address):  # parallel attempts may have locked it
                return True
        log.warning("login refused for %r from %s: too many failed attempts", user, address)
        return False

    async def _validate_peer(self, key: asyncssh.SSHKey) -> bool:
        """Accept a machine key only if it is pinned in the membership (or prepjoin)."""
        gate = self._service.peer_gate
        fingerprint = key.get_fingerprint("sha256")
        serial = await gate.authorize(fingerprint) if gate is not None else None
        if serial is None:
            log.warning("refused unknown machine key %s from %s", fingerprint, self._address)
            return False
        self._peer = serial
        return True

    def auth_completed(self) -> None:
        assert self._conn is not None
        user = str(self._conn.get_extra_info("username"))
        if user == PEER_USER:
            log.info("peer %s connected from %s", self._peer, self._address)
            self._conn.set_keepalive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)  # as the dialler
            return
        self._login = Login(user, self._roles[user], self._address)
        self._service.throttle.succeeded(user, self._address)
        log.info("login of %r (%s) from %s", user, self._login.role.value, self._address)

    async def _peer_session(self, stdin: asyncssh.SSHReader[str],
                            stdout: asyncssh.SSHWriter[str],
                            stderr: asyncssh.SSHWriter[str]) -> None:
        assert self._peer is not None
        await _run_peer(self._service.peer_gate, self._peer, stdin, stdout)

    def session_requested(self) -> Any:
        if self._peer is not None:
            return self._peer_session
        if self._login is None:
            return False
        service = self._service
        return AdminSession(service.machine, service.run_in_store, self._login, service._track)
