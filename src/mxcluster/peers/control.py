"""Control requests between machines, and the administrator login that ``join`` uses.

A control request is one JSON object on a fresh channel (subsystem
``mxcluster-control``, authenticated by machine keys exactly like replication links)
answered by one JSON object: ``{"ok": ...}`` or ``{"error": {message, exit_code}}``.
They carry what is not replication (SPEC §5): the commands of ``clustermode machine M``
run on M, ``clustercheck``'s block digests, and the admission of a machine that
``prepjoin`` pre-authorised.

``admin_exec`` is the other way into a member: an SSH login with an administrator's
password, used by ``clusterconfig join`` without ``--prepared``. The member's host key
is checked before the password is sent.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from mxcluster.errors import (
    AuthError,
    MxclusterError,
    NotFoundError,
    PermissionDenied,
    StateError,
    UnreachableError,
    UsageError,
    ValidationError,
)
from mxcluster.peers.transport import (
    CONNECT_TIMEOUT,
    CONTROL_SUBSYSTEM,
    HostKeyMismatch,
    PeerAddress,
    PeerChannel,
    dial,
)

#: how long a control request may take (a remote command included)
REQUEST_TIMEOUT = 60.0

_ERRORS: dict[str, type[MxclusterError]] = {
    cls.__name__: cls for cls in (MxclusterError, UsageError, NotFoundError, StateError,
                                  AuthError, PermissionDenied, UnreachableError)
}


def error_reply(exc: MxclusterError) -> dict[str, Any]:
    return {"error": exc.to_dict()}


def raise_error(body: Any) -> None:
    """Re-raise the error a peer replied with, as the same kind of error."""
    if not isinstance(body, dict):
        raise MxclusterError("the peer answered with a malformed error")
    kind = _ERRORS.get(str(body.get("error")), MxclusterError)
    raise kind(str(body.get("message", "the peer refused")))


async def request(peer: PeerAddress, host_key: Path, payload: dict[str, Any],
                  timeout: float = REQUEST_TIMEOUT) -> Any:
    """Send one control request to PEER; its answer, or the error it replied with."""
    chan = await dial(peer, host_key, CONTROL_SUBSYSTEM)
    try:
        await chan.send(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        data = await asyncio.wait_for(chan.recv(), timeout)
    except TimeoutError:
        raise UnreachableError(f"{peer.address}:{peer.port} did not answer within "
                               f"{timeout:.0f} s") from None
    finally:
        chan.close()
    if data is None:
        raise UnreachableError(f"{peer.address}:{peer.port} closed the control channel")
    reply = decode(data)
    if "error" in reply:
        raise_error(reply["error"])
    return reply.get("ok")


def decode(data: bytes) -> dict[str, Any]:
    """One control message; ValidationError unless it is a JSON object."""
    try:
        msg = json.loads(data)
    except ValueError:
        raise ValidationError(["control message is not JSON"]) from None
    if not isinstance(msg, dict):
        raise ValidationError(["control message is not a JSON object"])
    return msg


async def read_request(chan: PeerChannel) -> dict[str, Any] | None:
    data = await asyncio.wait_for(chan.recv(), REQUEST_TIMEOUT)
    return None if data is None else decode(data)


async def reply(chan: PeerChannel, body: dict[str, Any]) -> None:
    await chan.send(json.dumps(body, separators=(",", ":")).encode("utf-8"))


# -- administrator login (join with credentials) -----------------------------------------

@dataclass(frozen=True)
class Completed:
    """What a command run over an administrator login returned."""

    exit_status: int
    stdout: str
    stderr: str


class _HostCheck(asyncssh.SSHClient):
    """Accept the host key only when it has the expected fingerprint (or any, if TOFU)."""

    def __init__(self, expected: str | None, accept_any: bool) -> None:
        self._expected = expected
        self._accept_any = accept_any
        self.seen: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.seen = key.get_fingerprint("sha256")
        return self._accept_any or self.seen == self._expected


async def admin_exec(host: str, port: int, user: str, password: str, command: str, *,
                     fingerprint: str | None, accept_any: bool = False,
                     timeout: float = REQUEST_TIMEOUT) -> tuple[str, Completed]:
    """Log in to HOST as USER and run COMMAND; (the host's fingerprint, the result).

    The password is only sent once the host proved the key FINGERPRINT (or, with
    ACCEPT_ANY, whatever key it has): ``HostKeyMismatch`` (with ``.seen``) otherwise.
    """
    check = _HostCheck(fingerprint, accept_any)
    try:
        conn, _ = await asyncio.wait_for(asyncssh.create_connection(
            lambda: check, host, port, username=user, password=password,
            known_hosts=([], [], []), client_keys=None, agent_path=None, kbdint_auth=False,
            preferred_auth=["password"]), CONNECT_TIMEOUT)
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyMismatch(host, port, check.seen, fingerprint) from None
    except asyncssh.PermissionDenied:
        raise AuthError(f"{host}:{port} refused user {user!r} with that password",
                        hint="give the credentials of an admin of the cluster") from None
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise UnreachableError(f"cannot reach {host}:{port}: {exc}") from None
    try:
        async with conn:
            done = await asyncio.wait_for(conn.run(command, check=False), timeout)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise UnreachableError(f"{host}:{port}: the command did not complete: {exc}") from None
    assert check.seen is not None
    return check.seen, Completed(int(done.exit_status or 0), str(done.stdout or ""),
                                 str(done.stderr or ""))


def json_result(done: Completed) -> Any:
    """The JSON document of a ``--json`` command that ran remotely, or its error."""
    if done.exit_status != 0:
        try:
            body = json.loads(done.stderr.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise MxclusterError(done.stderr.strip() or f"exit status {done.exit_status}"
                                 ) from None
        raise_error(body)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise MxclusterError(f"unexpected answer: {done.stdout[:200]!r}") from None


async def probe_fingerprint(host: str, port: int) -> str:
    """The SHA256 fingerprint of the host key HOST:PORT presents (nothing is sent)."""
    check = _HostCheck(None, False)
    try:
        conn, _ = await asyncio.wait_for(asyncssh.create_connection(
            lambda: check, host, port, username="probe", known_hosts=([], [], []),
            client_keys=None, agent_path=None, password=None, kbdint_auth=False),
            CONNECT_TIMEOUT)
        conn.close()
    except (asyncssh.HostKeyNotVerifiable, asyncssh.PermissionDenied):
        pass
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise UnreachableError(f"cannot reach {host}:{port}: {exc}") from None
    if check.seen is None:
        raise UnreachableError(f"{host}:{port} showed no SSH host key")
    return check.seen
