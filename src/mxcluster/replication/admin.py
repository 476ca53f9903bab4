"""The administrative states as one machine's replication core sees them.

Effective state per machine = the winning record among the replicated
``_membership.state/removed`` blocks and the notices heard by gossip
(``membership.states``). This class reads, learns and summarises them; the
``Replicator`` decides what a change means for its links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from mxcluster.config.changeset import Op
from mxcluster.config.store import Store
from mxcluster.membership import model
from mxcluster.membership.states import (
    AdminState,
    StateRecord,
    diff,
    effective,
    load_notices,
    newer,
    records_from_rows,
    save_notices,
)
from mxcluster.replication.messages import states_digest

_PREFIXES = (model.PREFIX + "state.", model.PREFIX + "removed.")


class AdminStates:
    """Effective administrative states, kept in step with the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.current = self._read()

    def _read(self) -> dict[str, StateRecord]:
        rows = [(r.block.split(".", 2)[2], r.value, r.hlc)
                for r in self.store.blocks_at(model.LEVEL) if r.block.startswith(_PREFIXES)]
        return effective(records_from_rows(rows), load_notices(self.store))

    def state(self, serial: str) -> AdminState | None:
        """SERIAL's effective state; None for a machine never heard of."""
        rec = self.current.get(serial)
        return None if rec is None else rec.state

    def learn(self, heard: Mapping[str, StateRecord]) -> bool:
        """Keep (durably) the records of HEARD that beat ours; True if there were any."""
        fresh = newer(self.current, heard)
        if fresh:
            notices = load_notices(self.store)
            notices.update(fresh)
            save_notices(self.store, notices)
        return bool(fresh)

    def reload(self) -> dict[str, StateRecord]:
        """Re-read from the store; returns the records that changed."""
        old, self.current = self.current, self._read()
        return diff(old, self.current)

    def digest(self) -> str:
        return states_digest(self.current)

    def both_members(self, a: str, b: str) -> bool:
        member = AdminState.MEMBER
        return self.state(a) is member and self.state(b) is member


class MembershipWatch:
    """Passes a changeset's ops through, noting whether any touches membership."""

    def __init__(self, ops: Iterable[Op]) -> None:
        self._ops = ops
        self.touched = False

    def __iter__(self) -> Iterator[Op]:
        for op in self._ops:
            if op.block.startswith(model.PREFIX):
                self.touched = True
            yield op


def touches_membership(ops: Iterable[Op]) -> bool:
    """True when one of OPS writes membership data."""
    return any(op.block.startswith(model.PREFIX) for op in ops)
