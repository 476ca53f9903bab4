"""The answering side of control requests (see ``mxcluster.peers.control``).

* ``exec``: run one command line here on behalf of an administrator logged in on a
  member (``clustermode machine M``); the member checked the role already, this
  machine checks it again.
* ``digests`` / ``block``: what ``clustercheck`` compares and copies.
* ``admit``: from a machine whose key a ``prepjoin`` pre-authorised (and only that).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from mxcluster.errors import PermissionDenied, UsageError, ValidationError
from mxcluster.peers.linkio import key_fingerprint
from mxcluster.peers.transport import PREPARED
from mxcluster.service import check, cluster
from mxcluster.service.machine import Machine
from mxcluster.service.session import Session
from mxcluster.shell.core import Shell, run_line
from mxcluster.users.roles import Role

log = logging.getLogger("mxcluster.peers")

RunInStore = Callable[[Callable[[], Any]], Awaitable[Any]]


class ControlServer:
    """Answers control requests for one machine."""

    def __init__(self, machine: Machine, run_in_store: RunInStore) -> None:
        self.machine = machine
        self.run_in_store = run_in_store

    async def __call__(self, serial: str, req: dict[str, Any]) -> Any:
        op = req.get("op")
        if serial.startswith(PREPARED):
            if op != "admit":
                raise PermissionDenied("a pre-authorised machine may only ask to join")
            return await self.run_in_store(
                partial(self._admit, serial[len(PREPARED):], req.get("candidate")))
        if op == "exec":
            return await self._exec(serial, req)
        if op == "digests":
            return await self.run_in_store(partial(check.digests, self.machine))
        if op == "block":
            return await self.run_in_store(partial(
                check.current, self.machine, str(req.get("level")), str(req.get("block"))))
        raise UsageError(f"unknown control request {op!r}")

    def _admit(self, name: str, data: Any) -> dict[str, Any]:
        joiner = cluster.candidate_from(data)
        prep = self.machine.membership().prepjoin(name)
        if prep is None or joiner.name != name:
            raise PermissionDenied(f"{joiner.name} is not pre-authorised to join")
        if key_fingerprint(prep.key) != joiner.fingerprint:
            raise ValidationError(["the fingerprint sent is not that of the prepared key"])
        log.info("admitting %s (%s), pre-authorised", joiner.name, joiner.serial)
        return cluster.admit_prepared(self.machine, joiner, prep.key)

    async def _exec(self, serial: str, req: dict[str, Any]) -> dict[str, Any]:
        user, role, line = req.get("user"), req.get("role"), req.get("line")
        if not isinstance(user, str) or not isinstance(line, str):
            raise ValidationError(["exec needs 'user' and 'line'"])
        try:
            granted = Role(str(role))
        except ValueError:
            raise ValidationError([f"unknown role {role!r}"]) from None
        log.info("running %r for %s (%s) on behalf of peer %s", line, user, granted.value,
                 serial)
        shell = await self.run_in_store(partial(self._shell, user, granted, serial))
        outcome = await run_line(self.run_in_store, shell, line)
        return {"exit_code": outcome.exit_code, "stdout": outcome.stdout,
                "stderr": outcome.stderr}

    def _shell(self, user: str, role: Role, serial: str) -> Shell:
        m = self.machine
        session = Session(user, role, m.self_level, address=f"peer {serial}")
        return Shell(m, session)
