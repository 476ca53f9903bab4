"""Shared fixtures, built up in layers: data dir -> store -> machine -> session -> shell.

Password hashing is made cheap here, at import time and before anything imports
mxcluster (the service layer hashes a dummy password when it is imported); the cost
settings are documented in ``mxcluster.users.passwords``.
"""

from __future__ import annotations

import os

os.environ.setdefault("MXCLUSTER_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("MXCLUSTER_ARGON2_TIME_COST", "1")

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from mxcluster import failpoints
from mxcluster.config.store import Store
from mxcluster.provision.setup import DB_FILE, MachineFile, setup_machine
from mxcluster.service.machine import Identity, Machine
from mxcluster.service.session import Session
from mxcluster.shell.core import Shell
from mxcluster.users.passwords import hash_password
from mxcluster.users.roles import Role

# CI machines are small and shared: judge properties, not the speed of data generation.
settings.register_profile("mxcluster", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mxcluster")

HOSTNAME = "mail1.example.com"
ADDRESS = "192.0.2.10"
ADMIN_PASSWORD = "admin-secret-1"
#: the password of the user made by ``shell_as(role)`` (named after the role)
USER_PASSWORD = "user-secret-1"


@dataclass
class FakeWall:
    """A wall clock in milliseconds that moves ``step_ms`` per reading, or when told to."""

    now_ms: int
    step_ms: int = 1

    def __call__(self) -> int:
        self.now_ms += self.step_ms
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@pytest.fixture(scope="session")
def machine_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine made by ``setup_machine``; tests get copies (setup fsyncs, keys cost)."""
    path = tmp_path_factory.mktemp("template") / "machine"
    setup_machine(path, HOSTNAME, ADDRESS, admin_password=ADMIN_PASSWORD)
    return path


@pytest.fixture
def data_dir(tmp_path: Path, machine_template: Path) -> Path:
    """A fresh machine: admin user, Management interface, self-signed certificate."""
    path = tmp_path / "machine"
    shutil.copytree(machine_template, path)
    return path


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """The machine's real SQLite store on disk."""
    db = Store(data_dir / DB_FILE)
    yield db
    db.close()


@pytest.fixture
def bare_store(tmp_path: Path) -> Iterator[Store]:
    """An empty store that belongs to no machine (for changesets built by hand)."""
    db = Store(tmp_path / "bare.db")
    yield db
    db.close()


@pytest.fixture
def wall() -> FakeWall:
    """The machine's wall clock: starts a minute ahead of real time, 1 ms per reading."""
    return FakeWall(int(time.time() * 1000) + 60_000)


@pytest.fixture
def identity(data_dir: Path) -> Identity:
    info = MachineFile.read(data_dir)
    return Identity(info.name, info.serial, data_dir, fingerprint="SHA256:test")


@pytest.fixture
def machine(store: Store, identity: Identity, wall: FakeWall) -> Machine:
    """The standalone machine's service layer over the store."""
    return Machine(store, identity, wall_ms=wall)


@pytest.fixture
def clustered(machine: Machine) -> Machine:
    """The machine as the only member of cluster ``prod`` (``clusterconfig create``)."""
    from mxcluster.service import cluster

    cluster.create(machine, "admin", "prod")
    return machine


@pytest.fixture
def session_for(machine: Machine) -> Callable[..., Session]:
    """Make a session for USER with ROLE, starting in the machine's default mode."""

    def make(user: str = "admin", role: Role = Role.ADMIN) -> Session:
        return Session(user, role, machine.default_mode())

    return make


@pytest.fixture
def admin(session_for: Callable[..., Session]) -> Session:
    return session_for()


@pytest.fixture
def shell(machine: Machine, admin: Session) -> Shell:
    """A batch shell (no terminal) logged in as admin."""
    return Shell(machine, admin)


@pytest.fixture
def add_user(machine: Machine) -> Callable[[str, Role], None]:
    """Commit user NAME with ROLE and password USER_PASSWORD (through the service layer)."""

    def add(name: str, role: Role) -> None:
        session = Session("admin", Role.ADMIN, machine.default_mode())
        level = machine.users_level()
        users = list(machine.current(session, "users", level))
        users.append({"name": name, "role": role.value,
                      "password_hash": hash_password(USER_PASSWORD), "ssh_keys": []})
        machine.stage_set(session, "users", users, level)
        machine.commit(session, f"add {name}")

    return add


@pytest.fixture
def shell_as(machine: Machine, add_user: Callable[[str, Role], None]) -> Callable[[Role], Shell]:
    """A batch shell for a user named after ROLE (admin is the setup user)."""

    def make(role: Role) -> Shell:
        if machine.user(role.value) is None:
            add_user(role.value, role)
        return Shell(machine, Session(role.value, role, machine.default_mode()))

    return make


@pytest.fixture
def data_file(data_dir: Path) -> Callable[[str, str], Path]:
    """Write TEXT to NAME in the machine's data directory (where commands look)."""

    def write(name: str, text: str) -> Path:
        path = data_dir / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def state(machine: Machine, session_for: Callable[..., Session]) -> Callable[[], Any]:
    """Everything a command could change: version vector, stored config, entries."""

    def snapshot() -> Any:
        look = Shell(machine, session_for())
        shown = look.execute("showconfig --json").stdout
        entries = {lv: list(machine.store.unsub_iter(lv)) for lv in machine.store.levels()}
        return machine.store.version_vector(), shown, entries

    return snapshot


@pytest.fixture
def failpoint() -> Iterator[Callable[[str], None]]:
    """Activate failpoints (``name=raise``) for this test only."""
    yield failpoints.load
    failpoints.load("")
