"""Whole changesets received in a row on one link, held for one store transaction.

``Replicator.receive_many`` handles a run of buffered messages exactly as ``receive``
would one at a time, except that each message that would just apply a complete changeset
is held here; the run is applied with ``Store.apply_many`` (one fsync) as soon as a
message needs the store as it would be (any other message), and at the end. Each held
message keeps the place of its effects in the output, so the effects come out in the
same order as from ``receive``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxcluster.config.changeset import Changeset
from mxcluster.replication.effects import Effect
from mxcluster.replication.messages import Chunk


@dataclass
class Held:
    """One message held back: its chunk, the changeset, and its effects so far."""

    chunk: Chunk
    changeset: Changeset
    effects: list[Effect]


class Backlog:
    """The messages held since the last flush, and the version vector before them."""

    def __init__(self) -> None:
        self.held: list[Held] = []
        self.vv_before: dict[str, int] = {}

    def hold(self, chunk: Chunk, changeset: Changeset, effects: list[Effect],
             vv: dict[str, int]) -> list[Effect]:
        """Hold CHUNK (VV: the replicator's vector now); returns its effects' place."""
        if not self.held:
            self.vv_before = dict(vv)
        self.held.append(Held(chunk, changeset, effects))
        return effects

    def take(self) -> tuple[list[Held], dict[str, int]]:
        """Everything held, and the vector from before it; the backlog is empty after."""
        held, self.held = self.held, []
        return held, self.vv_before
