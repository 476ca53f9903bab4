"""An in-process machine with its SSH service, for the sshd and cli tests.

Layers: a real SQLite store and ``Machine`` in a temporary directory, owned by one
"store" thread (as in the daemon); an asyncio loop in a second thread runs the
``SSHService`` on 127.0.0.1 with a free port and a fresh Ed25519 host key.
"""

from __future__ import annotations

import asyncio
import os
import threading

# cheap password hashing for tests (documented in mxcluster.users.passwords); set before
# mxcluster.service.machine is imported, which hashes a dummy password at import time
os.environ.setdefault("MXCLUSTER_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("MXCLUSTER_ARGON2_TIME_COST", "1")

from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from mxcluster.config.store import Store
from mxcluster.service.machine import Identity, Machine
from mxcluster.service.session import Session
from mxcluster.sshd import SSHService
from mxcluster.users.passwords import hash_password
from mxcluster.users.roles import Role
from mxcluster.users.throttle import LoginThrottle

T = TypeVar("T")

HOSTNAME = "mail1.example.com"
ADMIN_PASSWORD = "secret-pass"
VIEWER_PASSWORD = "viewer-pass"
TIMEOUT = 20.0


@dataclass
class FakeClock:
    """The throttle's clock; tests move it forward by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """One machine, its store thread, and its running SSH service."""

    def __init__(self, tmp: Path, **throttle: Any) -> None:
        self.tmp = tmp
        self.clock = FakeClock()
        self.throttle = LoginThrottle(self.clock, **{"base_delay": 0.0, **throttle})
        self._store = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_path = tmp / "ssh_host_ed25519_key"
        host_key.write_private_key(str(self.host_key_path))
        self.fingerprint = host_key.get_fingerprint("sha256")
        identity = Identity(HOSTNAME, "SERIAL0001", tmp, fingerprint=self.fingerprint)
        self.machine = self.call(lambda: Machine(Store(tmp / "config.db"), identity))
        self.user_key_path = tmp / "admin_ed25519"
        user_key = asyncssh.generate_private_key("ssh-ed25519", comment="admin@test")
        user_key.write_private_key(str(self.user_key_path))
        os.chmod(self.user_key_path, 0o600)
        self.user_public_key = user_key.export_public_key().decode().strip()
        self.service = SSHService(self.machine, self.run_in_store, "127.0.0.1", 0,
                                  self.host_key_path, self.throttle)
        self.run(self.service.start())
        self.port = self.service.port

    def call(self, fn: Callable[[], T]) -> T:
        """Run FN on the store thread and wait for it."""
        return self._store.submit(fn).result(TIMEOUT)

    def run_in_store(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """The daemon's bridge from the event loop to the store thread."""
        return asyncio.get_running_loop().run_in_executor(self._store, fn)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run CORO on the service's event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(TIMEOUT)

    def add_users(self) -> None:
        """Commit ``admin`` (password and key) and ``viewer`` (readonly)."""
        users = [
            {"name": "admin", "role": "admin", "password_hash": hash_password(ADMIN_PASSWORD),
             "ssh_keys": [self.user_public_key]},
            {"name": "viewer", "role": "readonly",
             "password_hash": hash_password(VIEWER_PASSWORD), "ssh_keys": []},
        ]

        def commit() -> None:
            m = self.machine
            session = Session("setup", Role.ADMIN, m.default_mode())
            m.stage_set(session, "users", users, m.users_level())
            m.commit(session, "test users")

        self.call(commit)

    def close(self) -> None:
        self.run(self.service.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self.call(self.machine.store.close)
        self._store.shutdown()


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A machine with users admin/viewer; ``@pytest.mark.throttle(**kw)`` tunes logins."""
    marker = request.node.get_closest_marker("throttle")
    h = Harness(tmp_path, **(marker.kwargs if marker else {}))
    try:
        h.add_users()
        yield h
    finally:
        h.close()
