"""Order independence of the store's merge of unsubscribe tables (SPEC §5).

Hand-made cases name the races between add, remove and clear; a Hypothesis test builds
causal histories of three machines editing two levels' tables (each clear carrying the
context its machine had seen) and checks that every arrival order stores the same state,
and the state the rule of ``mxcluster.config.unsubtable`` defines, computed here from the
set of operations alone.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxcluster.config.changeset import Changeset, ChangesetId, Op
from mxcluster.config.hlc import Timestamp
from mxcluster.config.store import Store

L = "cluster"
EXAMPLES = int(os.environ.get("MX_EXAMPLES", "60"))


def _cs(origin: str, seq: int, wall: int, ctx: dict[str, int], *ops: Op) -> Changeset:
    return Changeset(ChangesetId(origin, seq), Timestamp(wall, 0, origin), "a", "", "m",
                     list(ops), context=ctx)


def add(entry: str = "e", level: str = L) -> Op:
    return Op("add", level, "unsubscribe", entry=entry)


def remove(entry: str = "e", level: str = L) -> Op:
    return Op("remove", level, "unsubscribe", entry=entry)


def clear(ctx: dict[str, int], level: str = L) -> Op:
    return Op("clear", level, "unsubscribe", context=ctx)


def table_state(store: Store) -> tuple[list[Any], list[Any]]:
    """Every register of every entry, and every level's cleared context."""
    rows = store.db.execute("SELECT * FROM unsub ORDER BY level, entry").fetchall()
    ctx = store.db.execute("SELECT * FROM unsub_cleared ORDER BY level").fetchall()
    return [tuple(r) for r in rows], [tuple(r) for r in ctx]


def applied(path: Path, changesets: Sequence[Changeset]) -> tuple[list[Any], list[Any]]:
    store = Store(path)
    try:
        for change in changesets:
            store.apply(change)
        return table_state(store)
    finally:
        store.close()


def _deps_met(change: Changeset, have: set[ChangesetId]) -> bool:
    origin, seq = change.id.origin, change.id.seq
    if seq > 1 and ChangesetId(origin, seq - 1) not in have:
        return False
    return all(ChangesetId(o, s) in have for o, top in change.context.items()
               for s in range(1, top + 1))


def causal_orders(changesets: Sequence[Changeset]) -> Iterator[list[Changeset]]:
    """Every order of CHANGESETS in which each arrives after all it had seen."""
    for order in itertools.permutations(changesets):
        have: set[ChangesetId] = set()
        for change in order:
            if not _deps_met(change, have):
                break
            have.add(change.id)
        else:
            yield list(order)


def every_causal_order(tmp_path: Path, changesets: Sequence[Changeset]) -> Any:
    """The one state all causal arrival orders give (asserted), and how many there were."""
    states = {}
    for n, order in enumerate(causal_orders(changesets)):
        name = "".join(f"{c.id.origin}{c.id.seq}" for c in order)
        states[name] = applied(tmp_path / f"{n}.db", order)
    assert len({repr(s) for s in states.values()}) == 1, states
    return next(iter(states.values()))


def present(state: Any, entry: str = "e") -> bool:
    rows, _ = state
    return any(r[1] == entry and r[-1] == 1 for r in rows)


# -- the races, by hand --------------------------------------------------------------


def _race(remove_wall: int) -> list[Changeset]:
    """B adds e then clears (having seen the add); A removes e without having seen either."""
    return [_cs("A", 1, remove_wall, {}, remove()),
            _cs("B", 1, 10, {}, add()),
            _cs("B", 2, 20, {"B": 1}, clear({"B": 1}))]


@pytest.mark.parametrize("remove_wall", [5, 15, 25])
def test_clear_and_concurrent_remove_converge(tmp_path: Path, remove_wall: int) -> None:
    """A remove the clear did not see merges alike in every order, wherever it is stamped."""
    state = every_causal_order(tmp_path, _race(remove_wall))
    assert not present(state)


def test_clear_tombstone_yields_to_an_unseen_remove(tmp_path: Path) -> None:
    """A remove the clear did not see decides the entry, whether it arrives before or after."""
    rows, _ = every_causal_order(tmp_path, _race(15))
    [(_, _, *live, rm_hlc, rm_idx, is_present)] = rows
    assert live == [None] * 4  # the cleared add is gone
    assert (rm_hlc, rm_idx, is_present) == (Timestamp(15, 0, "A").encode(), 0, 0)


@pytest.mark.parametrize(("add_wall", "expected"), [(12, False), (17, True)])
def test_an_add_unseen_by_clear_and_remove_is_judged_against_the_remove(
        tmp_path: Path, add_wall: int, expected: bool) -> None:
    """After (add, clear) and a concurrent remove at 15, a third machine's add decides by clock."""
    history = [*_race(15), _cs("C", 1, add_wall, {}, add())]
    assert present(every_causal_order(tmp_path, history)) is expected


def test_an_older_add_the_clear_had_not_seen_survives_it(tmp_path: Path) -> None:
    """The clear drops the add it saw; an older concurrent add of the entry becomes live."""
    history = [_cs("A", 1, 5, {}, add()), _cs("B", 1, 10, {}, add()),
               _cs("B", 2, 20, {"B": 1}, clear({"B": 1}))]
    rows, _ = every_causal_order(tmp_path, history)
    [(_, _, _, _, add_origin, add_seq, *_, is_present)] = rows
    assert (add_origin, add_seq, is_present) == ("A", 1, 1)


def test_a_clear_never_revives_an_entry_a_remove_decided(tmp_path: Path) -> None:
    """An add older than a remove stays removed when a clear drops the remove's side."""
    history = [_cs("A", 1, 10, {}, add()), _cs("B", 1, 15, {}, remove()),
               _cs("B", 2, 20, {"B": 1}, clear({"B": 1}))]
    assert not present(every_causal_order(tmp_path, history))


def test_a_clear_keeps_the_adds_of_its_own_changeset(tmp_path: Path) -> None:
    """Clear-then-add in one changeset (as flattening writes it) leaves the new entries."""
    history = [_cs("A", 1, 10, {}, add("old"), add("kept")),
               _cs("A", 2, 20, {"A": 1}, clear({"A": 1}), add("kept"), add("new"))]
    state = every_causal_order(tmp_path, history)
    assert [present(state, e) for e in ("old", "kept", "new")] == [False, True, True]


def test_clears_contexts_accumulate_per_level(tmp_path: Path) -> None:
    """Two concurrent clears together remove what either had seen, and only at their level."""
    history = [_cs("A", 1, 10, {}, add("a"), add("g", "group:G")), _cs("B", 1, 11, {}, add("b")),
               _cs("A", 2, 20, {"A": 1}, clear({"A": 1})),
               _cs("B", 2, 21, {"B": 1}, clear({"B": 1}))]
    state = every_causal_order(tmp_path, history)
    assert state[1] == [(L, '{"A": 1, "B": 1}')]
    assert [present(state, e) for e in ("a", "b", "g")] == [False, False, True]


# -- every history, every order --------------------------------------------------------

ORIGINS = ("A", "B", "C")
LEVELS = (L, L, "group:G")
ENTRIES = ("x", "x", "y")


@st.composite
def histories(draw: st.DrawFn) -> list[Changeset]:
    """Commits on three machines that now and then learn all another one holds."""
    known: dict[str, set[ChangesetId]] = {o: set() for o in ORIGINS}
    made: dict[ChangesetId, Changeset] = {}
    for _ in range(draw(st.integers(1, 9))):
        origin = draw(st.sampled_from(ORIGINS))
        if made and draw(st.integers(0, 2)) == 0:
            known[origin] |= known[draw(st.sampled_from(ORIGINS))]
            continue
        context: dict[str, int] = {}
        for cid in known[origin]:
            context[cid.origin] = max(context.get(cid.origin, 0), cid.seq)
        ops = draw(st.lists(st.one_of(
            st.builds(add, st.sampled_from(ENTRIES), st.sampled_from(LEVELS)),
            st.builds(remove, st.sampled_from(ENTRIES), st.sampled_from(LEVELS)),
            st.builds(clear, st.just(dict(context)), st.sampled_from(LEVELS)),
        ), min_size=1, max_size=3))
        seen = max((made[c].hlc for c in known[origin]), default=Timestamp.zero())
        wall = draw(st.integers(0, 6))  # few walls: counters and node ids break ties
        hlc = (Timestamp(wall, 0, origin) if wall > seen.wall_ms
               else Timestamp(seen.wall_ms, seen.counter + 1, origin))
        cid = ChangesetId(origin, context.get(origin, 0) + 1)
        made[cid] = Changeset(cid, hlc, "a", "", "m", ops, context=context)
        known[origin].add(cid)
    return list(made.values())


def rule(changesets: Sequence[Changeset]) -> tuple[list[Any], list[Any]]:
    """The stored state the merge rule defines for this SET of changesets."""
    cleared: dict[str, dict[str, int]] = {}
    writes: list[tuple[Changeset, int, Op]] = []
    for change in changesets:
        for idx, op in enumerate(change.ops):
            if op.op == "clear":
                ctx = cleared.setdefault(op.level, {})
                for o, s in (op.context or {}).items():
                    ctx[o] = max(ctx.get(o, 0), s)
            else:
                writes.append((change, idx, op))
    live: dict[tuple[str, str], tuple[str, int, str, int]] = {}
    removal: dict[tuple[str, str], tuple[str, int]] = {}
    for change, idx, op in writes:
        key, rank = (op.level, str(op.entry)), (change.hlc.encode(), idx)
        if op.op == "remove":
            removal[key] = max(removal.get(key, rank), rank)
        elif change.id.seq > cleared.get(op.level, {}).get(change.id.origin, 0):
            mine = (*rank, change.id.origin, change.id.seq)
            live[key] = max(live.get(key, mine), mine)
    rows = []
    for key in sorted(set(live) | set(removal)):
        a, r = live.get(key), removal.get(key)
        on = a is not None and (r is None or a[:2] > r)
        rows.append((*key, *(a or (None,) * 4), *(r or (None, None)), int(on)))
    ctx_rows = [(lv, json.dumps(c, sort_keys=True)) for lv, c in sorted(cleared.items())]
    return rows, ctx_rows


def causal_order(order: Sequence[Changeset]) -> list[Changeset]:
    """ORDER, each changeset held back until everything it had seen has arrived."""
    waiting, out = list(order), []
    have: set[ChangesetId] = set()
    while waiting:
        change = next(c for c in waiting if _deps_met(c, have))
        waiting.remove(change)
        have.add(change.id)
        out.append(change)
    return out


@settings(max_examples=EXAMPLES, deadline=None)
@given(history=histories(), data=st.data())
def test_every_arrival_order_stores_the_state_the_rule_defines(
        tmp_path_factory: pytest.TempPathFactory, history: list[Changeset],
        data: st.DataObject) -> None:
    """Made order, a random causal order, and any order at all give the rule's state."""
    shuffled = data.draw(st.permutations(history))
    root = tmp_path_factory.mktemp("merge")
    expected = rule(history)
    for name, order in (("made", history), ("causal", causal_order(shuffled)),
                        ("any", shuffled)):
        assert applied(root / f"{name}.db", order) == expected, name
