"""``Machine``: the service facade of one machine's configuration (SPEC §1, §2, §4).

Reads resolve machine > group > cluster > default; edits are staged in a ``Session`` and
become one changeset on ``commit``. All methods run on the store's thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mxcluster import __version__
from mxcluster.config import registry
from mxcluster.config.changeset import Changeset, ChangesetId, Op
from mxcluster.config.hlc import HybridClock, Timestamp
from mxcluster.config.levels import Level, LevelKind
from mxcluster.config.registry import BlockSpec
from mxcluster.config.resolve import Resolved, chain, resolve
from mxcluster.config.store import Store
from mxcluster.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    StateError,
    UsageError,
)
from mxcluster.membership import model as membership_model
from mxcluster.membership.model import Membership
from mxcluster.service.session import DELETED, Session, StagedBlock, StagedImport
from mxcluster.unsubscribe import candidates, read_entries
from mxcluster.users.passwords import hash_password, verify_password
from mxcluster.users.roles import Role

#: verified against when the user does not exist, so timing does not reveal user names
_DUMMY_HASH = hash_password("not-a-real-password")


def verify_credentials(creds: tuple[str | None, Role | None], password: str) -> Role | None:
    """The role when PASSWORD matches the hash of CREDS (constant work for unknown users)."""
    password_hash, role = creds
    ok = verify_password(password_hash if role is not None else _DUMMY_HASH, password)
    return role if ok and role is not None else None


def _key_body(line: str) -> str:
    parts = line.split()
    return " ".join(parts[:2]) if len(parts) >= 2 else line.strip()


@dataclass(frozen=True)
class Identity:
    """Who this machine is: name (FQDN given at setup), serial, data directory."""

    name: str
    serial: str
    data_dir: Path
    fingerprint: str = ""
    #: where peers reach this machine's SSH service (machine.json)
    address: str = "127.0.0.1"
    ssh_port: int = 2222


CommitHook = Callable[[ChangesetId], None]


class Machine:
    """One machine's configuration service."""

    def __init__(
        self,
        store: Store,
        identity: Identity,
        *,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        version: str = __version__,
    ) -> None:
        self.store = store
        self.identity = identity
        self.version = version
        last = store.meta("hlc")
        self.clock = HybridClock(identity.serial, wall_ms, Timestamp.decode(last) if last else None)
        self.commit_hooks: list[CommitHook] = []
        self.started_at = time.time()
        #: running services the daemon registered (e.g. "mail": the MailEngine);
        #: commands reach them through follow-ups on the event loop
        self.runtime: dict[str, Any] = {}
        self._membership: tuple[int, Membership] | None = None

    # -- topology: the replicated membership ------------------------------------------

    def membership(self) -> Membership:
        """The cluster as this machine sees it (cached until the store changes)."""
        gen = self.store.generation
        if self._membership is None or self._membership[0] != gen:
            self._membership = (gen, membership_model.read(self.store))
        return self._membership[1]

    @property
    def standalone(self) -> bool:
        """True unless this machine is a member (connected or disconnected) of a cluster."""
        return not self.membership().is_member(self.identity.serial)

    @property
    def cluster_name(self) -> str | None:
        return None if self.standalone else self.membership().cluster

    @property
    def self_level(self) -> Level:
        return Level.machine(self.identity.name)

    def default_mode(self) -> Level:
        """Sessions start in cluster mode on a clustered machine, else at its own level."""
        return self.self_level if self.standalone else Level.cluster()

    def group_of(self, machine: str) -> str | None:
        return None if self.standalone else self.membership().group_of(machine)

    def machines(self) -> list[str]:
        if self.standalone:
            return [self.identity.name]
        return [m.name for m in self.membership().machines]

    def groups(self) -> list[str]:
        return [] if self.standalone else list(self.membership().groups)

    def check_level(self, spec: BlockSpec, level: Level) -> None:
        """Refuse LEVEL for SPEC (or an unknown group/machine) with a helpful message."""
        if self.standalone:
            if level != self.self_level:
                raise StateError(
                    f"this machine is standalone; it has no level {level}",
                    hint=f"standalone settings live at {self.self_level}",
                )
            return
        if level.kind not in spec.levels:
            allowed = ", ".join(k.value for k in spec.levels)
            raise UsageError(f"block {spec.name!r} cannot be set at {level}",
                             hint=f"it lives at: {allowed}")
        if level.kind is LevelKind.MACHINE and level.name not in self.machines():
            raise NotFoundError(f"no machine {level.name!r} in this cluster")
        if level.kind is LevelKind.GROUP and level.name not in self.groups():
            raise NotFoundError(f"no group {level.name!r} in this cluster")

    def users_level(self) -> Level:
        return self.self_level if self.standalone else Level.cluster()

    def hostname(self) -> str:
        """The host name this machine presents (the ``hostname`` block)."""
        value = self.effective("hostname").value
        return str(value) if value and value != "localhost" else self.identity.name

    def user(self, name: str) -> dict[str, Any] | None:
        """The committed user record NAME, or None."""
        users = self.stored(self.users_level(), "users") or []
        return next((u for u in users if u["name"] == name), None)

    def credentials(self, name: str) -> tuple[str | None, Role | None]:
        """(password hash, role) of user NAME; (None, None) when there is no such user."""
        user = self.user(name)
        if user is None:
            return None, None
        return user.get("password_hash"), Role(user["role"])

    def check_password(self, name: str, password: str) -> Role | None:
        """The user's role when PASSWORD is right, else None (constant work either way)."""
        return verify_credentials(self.credentials(name), password)

    def check_key(self, name: str, key_line: str) -> Role | None:
        """The user's role when KEY_LINE ('ssh-ed25519 AAAA...') is one of the user's keys."""
        user = self.user(name)
        if user is None:
            return None
        wanted = _key_body(key_line)
        return Role(user["role"]) if any(_key_body(k) == wanted for k in user["ssh_keys"]) else None

    def change_password(self, author: str, name: str, password_hash: str) -> ChangesetId:
        """Commit a new password hash for NAME at once (the caller checked the right)."""
        level = self.users_level()
        users = [dict(u) for u in self.stored(level, "users") or []]
        user = next((u for u in users if u["name"] == name), None)
        if user is None:
            raise NotFoundError(f"no user {name!r}")
        user["password_hash"] = password_hash
        value = registry.get("users").validate(users)
        return self.apply_local(author, f"passwd {name}",
                                iter([Op("set", str(level), "users", value)]))

    # -- reading ---------------------------------------------------------------------

    def stored(self, level: Level, block: str) -> Any:
        row = self.store.block(str(level), block)
        return None if row is None else row.value

    def effective(self, block: str, machine: str | None = None) -> Resolved:
        spec = registry.get(block)
        name = machine or self.identity.name
        levels = chain(name, self.group_of(name), not self.standalone)
        return resolve(spec, levels, self.stored, standalone=self.standalone)

    def effective_all(self, machine: str | None = None) -> dict[str, Resolved]:
        return {name: self.effective(name, machine) for name in registry.BLOCKS}

    def unsubscribed(self, recipient: str, next_hop_ip: str | None = None,
                     machine: str | None = None) -> str | None:
        """The matching entry of the effective unsubscribe table, or None."""
        res = self.effective("unsubscribe", machine)
        if res.source is None or not res.value.get("enabled", True):
            return None
        return self.store.unsub_any(str(res.source), candidates(recipient, next_hop_ip))

    # -- staged editing --------------------------------------------------------------

    def current(self, session: Session, block: str, level: Level | None = None) -> Any:
        """The value an edit at LEVEL (default: the mode) starts from.

        Staged value, else the value stored at that level, else the built-in default when
        no level above defines the block. Editing a block that is inherited from above is
        refused: copying it down would silently create an override.
        """
        spec = registry.get(block)
        level = level or session.mode
        self.check_level(spec, level)
        staged = session.blocks.get((str(level), block))
        if staged is not None:
            return spec.default if staged.value is DELETED else staged.value
        value = self.stored(level, block)
        if value is not None:
            return value
        self._refuse_inherited(spec, level)
        return spec.default

    def _refuse_inherited(self, spec: BlockSpec, level: Level) -> None:
        if self.standalone or level.kind is LevelKind.CLUSTER:
            return
        above = [Level.cluster()]
        if level.kind is LevelKind.MACHINE:
            group = self.group_of(level.name)
            if group:
                above.insert(0, Level.group(group))
        for up in above:
            if self.stored(up, spec.name) is not None:
                raise StateError(
                    f"{spec.name} is not defined at {level}; it inherits from {up}",
                    hint=f"edit it in mode {up}, or first 'clusterset copy {spec.name} "
                    f"--from {up} --to {level}' to override it here",
                )

    def stage_set(self, session: Session, block: str, value: Any,
                  level: Level | None = None) -> Any:
        """Validate VALUE and stage it for BLOCK at LEVEL; returns the normalised value."""
        spec = registry.get(block)
        level = level or session.mode
        self.check_level(spec, level)
        self._check_role(session, spec)
        clean = spec.validate(value)
        self._stage(session, level, block, clean)
        return clean

    def stage_delete(self, session: Session, block: str, level: Level) -> None:
        spec = registry.get(block)
        self.check_level(spec, level)
        self._check_role(session, spec)
        self._stage(session, level, block, DELETED)
        if spec.table:
            session.table(level).add("clear")

    @staticmethod
    def _check_role(session: Session, spec: BlockSpec) -> None:
        """The user database is the admin's alone, whichever command edits it."""
        if spec.name == "users" and session.role is not Role.ADMIN:
            raise PermissionDenied(f"role {session.role.value!r} may not change users",
                                   hint="ask an admin")

    def _stage(self, session: Session, level: Level, block: str, value: Any) -> None:
        key = (str(level), block)
        base = session.blocks[key].base_hlc if key in session.blocks else self._hlc(level, block)
        session.blocks[key] = StagedBlock(value, base)

    def _hlc(self, level: Level, block: str) -> str | None:
        row = self.store.block(str(level), block)
        return None if row is None else row.hlc

    def unsub_level(self, session: Session) -> Level:
        """The level whose unsubscribe table the session edits (defining it if needed)."""
        level = session.mode
        self.current(session, "unsubscribe", level)
        if self.stored(level, "unsubscribe") is None and (str(level), "unsubscribe") not in (
            session.blocks
        ):
            self.stage_set(session, "unsubscribe", registry.get("unsubscribe").default, level)
        return level

    def stage_import(self, session: Session, path: Path) -> int:
        """Validate an unsubscribe file and stage its entries; returns the entry count."""
        count = 0
        for _ in read_entries(path):  # validate first: a bad file must stage nothing
            count += 1
        level = self.unsub_level(session)
        digest = _digest(path)
        session.table(level).add("import", StagedImport(str(path), digest.hexdigest(), count))
        return count

    # -- commit ----------------------------------------------------------------------

    def commit(self, session: Session, comment: str = "", *, force: bool = False) -> ChangesetId:
        """Commit the session's staged edits as one atomic, fsync'd changeset."""
        if not session.dirty:
            raise StateError("there are no uncommitted changes")
        conflicts = [
            f"{block} at {level}"
            for (level, block), st in sorted(session.blocks.items())
            if self._hlc(Level.parse(level), block) != st.base_hlc
        ]
        if conflicts and not force:
            raise ConflictError(conflicts)
        cid = self.apply_local(session.user, comment, self._ops(session))
        session.clear()
        return cid

    def apply_local(self, author: str, comment: str, ops: Iterator[Op]) -> ChangesetId:
        """Record OPS as a new local changeset and run the commit hooks."""
        cid = ChangesetId(self.identity.serial, self.store.next_seq(self.identity.serial))
        context = self.store.version_vector()
        cs = Changeset(cid, self.clock.now(), author, comment, self.identity.name, ops,
                       context=context)
        self.store.apply(cs)
        for hook in self.commit_hooks:
            hook(cid)
        return cid

    def _ops(self, session: Session) -> Iterator[Op]:
        for (level, block), st in sorted(session.blocks.items()):
            if st.value is DELETED:
                yield Op("delete", level, block)
            else:
                yield Op("set", level, block, st.value)
        for level, table in sorted(session.tables.items()):
            yield from self._table_ops(level, table.edits)

    def _table_ops(self, level: str, edits: list[tuple[str, Any]]) -> Iterator[Op]:
        for kind, arg in edits:
            if kind == "clear":
                yield Op("clear", level, "unsubscribe", context=self.store.version_vector())
            elif kind == "import":
                yield from _import_ops(level, arg)
            else:
                yield Op(kind, level, "unsubscribe", entry=arg)


def _digest(path: Path) -> Any:
    """SHA-256 of PATH, read in blocks (a 1M-entry file never sits in memory)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256")


def _import_ops(level: str, staged: Any) -> Iterator[Op]:
    path = Path(staged.path)
    if _digest(path).hexdigest() != staged.sha256:
        raise StateError(
            f"{path} changed since it was imported",
            hint="run 'clearchanges' and import it again; nothing was committed",
        )
    for _, entry in read_entries(path):
        yield Op("add", level, "unsubscribe", entry=entry)

