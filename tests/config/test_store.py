"""The SQLite store: atomic, idempotent, last-writer-wins application of changesets."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxcluster.config.changeset import Changeset, ChangesetId, Op
from mxcluster.config.hlc import Timestamp
from mxcluster.config.store import Store
from mxcluster.failpoints import FailpointHit

LEVELS = ["cluster", "group:g1"]
BLOCKS = ["smtproutes", "bounceconfig"]
ENTRIES = ["a@x.test", "b@x.test", "@y.test"]


def cs(origin: str, seq: int, wall: int, *ops: Op, context: dict[str, int] | None = None,
       counter: int = 0) -> Changeset:
    """A changeset from ORIGIN made at WALL (ms) with OPS."""
    return Changeset(ChangesetId(origin, seq), Timestamp(wall, counter, origin), "tester",
                     f"{origin}-{seq}", f"{origin}.test", list(ops), context=context or {})


def put(level: str, block: str, value: Any) -> Op:
    return Op("set", level, block, value)


def add(entry: str, level: str = "cluster") -> Op:
    return Op("add", level, "unsubscribe", entry=entry)


def remove(entry: str, level: str = "cluster") -> Op:
    return Op("remove", level, "unsubscribe", entry=entry)


def clear(context: dict[str, int], level: str = "cluster") -> Op:
    return Op("clear", level, "unsubscribe", context=context)


def contents(store: Store) -> tuple[dict[tuple[str, str], Any], dict[str, list[str]]]:
    """Block values (None: deleted or never set) and present entries per level."""
    blocks = {}
    for level, block in itertools.product(LEVELS, BLOCKS):
        row = store.block(level, block)
        blocks[(level, block)] = None if row is None else row.value
    return blocks, {lv: list(store.unsub_iter(lv)) for lv in LEVELS}


def everything(store: Store) -> Any:
    """All observable state, for 'nothing changed' comparisons."""
    return (contents(store), store.version_vector(), store.conflicts(include_resolved=True),
            [e.id for e in store.commitlog(1000)])


# -- atomic, idempotent application ---------------------------------------------------


def test_apply_records_and_applies_a_changeset(bare_store: Store) -> None:
    """An applied changeset's ops are visible, and it appears in log and version vector."""
    assert bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", [1]), add("a@x.test")))
    assert bare_store.block("cluster", "smtproutes").value == [1]
    assert list(bare_store.unsub_iter("cluster")) == ["a@x.test"]
    assert bare_store.version_vector() == {"A": 1}
    assert [str(e.id) for e in bare_store.commitlog()] == ["A-1"]


def test_applying_the_same_changeset_twice_changes_nothing(bare_store: Store) -> None:
    """The second apply of a changeset returns False and leaves every table as it was."""
    change = cs("A", 1, 100, put("cluster", "smtproutes", [1]), add("a@x.test"))
    bare_store.apply(change)
    before = everything(bare_store)
    again = cs("A", 1, 100, put("cluster", "smtproutes", [2]), remove("a@x.test"))
    assert bare_store.apply(again) is False
    assert everything(bare_store) == before


def failing_ops() -> Iterator[Op]:
    """Two good ops, then a failure (as when an imported file changed under a commit)."""
    yield put("cluster", "smtproutes", ["half"])
    yield add("half@x.test")
    raise OSError("the op source failed mid-way")


def test_failure_mid_way_through_the_ops_leaves_nothing_applied(bare_store: Store) -> None:
    """A changeset whose op stream fails half-way is not recorded and applies no op."""
    bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["before"])))
    before = everything(bare_store)
    with pytest.raises(OSError, match="mid-way"):
        bare_store.apply(Changeset(ChangesetId("A", 2), Timestamp(200, 0, "A"), "tester", "",
                                   "a.test", failing_ops()))
    assert everything(bare_store) == before
    assert bare_store.apply(cs("A", 2, 300, put("cluster", "smtproutes", ["after"])))
    assert bare_store.block("cluster", "smtproutes").value == ["after"]


def test_failure_after_many_batches_leaves_nothing_applied(bare_store: Store) -> None:
    """A huge changeset applied in several batches is still all or nothing."""

    def many() -> Iterator[Op]:
        for i in range(25_000):
            yield add(f"user{i}@x.test")
        raise OSError("the op source failed after two full batches")

    with pytest.raises(OSError):
        bare_store.apply(Changeset(ChangesetId("A", 1), Timestamp(100, 0, "A"), "tester", "",
                                   "a.test", many()))
    assert bare_store.unsub_count("cluster") == 0 and bare_store.version_vector() == {}


def test_failpoint_before_fsync_leaves_nothing_and_the_next_apply_works(
        bare_store: Store, failpoint: Callable[[str], None]) -> None:
    """A crash point right before COMMIT rolls everything back; the store stays usable."""
    before = everything(bare_store)
    failpoint("commit.before_fsync=raise")
    with pytest.raises(FailpointHit):
        bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", [1]), add("a@x.test")))
    assert everything(bare_store) == before
    failpoint("")
    assert bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", [1])))
    assert bare_store.version_vector() == {"A": 1}


def test_changeset_is_durable_once_past_the_fsync(
        tmp_path: Path, failpoint: Callable[[str], None]) -> None:
    """A failure after the fsync does not undo the commit: reopening the file shows it."""
    store = Store(tmp_path / "d.db")
    failpoint("commit.after_fsync=raise")
    with pytest.raises(FailpointHit):
        store.apply(cs("A", 1, 100, put("cluster", "smtproutes", [1])))
    store.close()
    reopened = Store(tmp_path / "d.db")
    try:
        assert reopened.version_vector() == {"A": 1}
        assert reopened.block("cluster", "smtproutes").value == [1]
    finally:
        reopened.close()


def test_stored_changeset_reads_back_whole(bare_store: Store) -> None:
    """changeset() returns the header and every op in order (what replication ships)."""
    original = cs("A", 1, 100, put("cluster", "smtproutes", [1]), add("a@x.test"),
                  clear({"A": 0}), context={"B": 3})
    bare_store.apply(original)
    back = bare_store.changeset(ChangesetId("A", 1))
    assert back is not None
    assert back.header() == original.header()
    assert list(back.ops) == list(original.ops)


# -- last writer wins, in any arrival order -------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[Changeset]:
    """Changesets from three origins with distinct timestamps, all mutually concurrent."""
    seqs = {"A": 0, "B": 0, "C": 0}
    out = []
    for _ in range(draw(st.integers(1, 7))):
        origin = draw(st.sampled_from(sorted(seqs)))
        seqs[origin] += 1
        ops = draw(st.lists(st.one_of(
            st.builds(put, st.sampled_from(LEVELS), st.sampled_from(BLOCKS),
                      st.lists(st.integers(0, 3), max_size=2)),
            st.builds(lambda lv, b: Op("delete", lv, b), st.sampled_from(LEVELS),
                      st.sampled_from(BLOCKS)),
            st.builds(add, st.sampled_from(ENTRIES), st.sampled_from(LEVELS)),
            st.builds(remove, st.sampled_from(ENTRIES), st.sampled_from(LEVELS)),
        ), min_size=1, max_size=4))
        wall = draw(st.integers(0, 5))  # few distinct walls: counters and nodes break ties
        out.append(cs(origin, seqs[origin], wall, *ops, counter=len(out)))
    return out


def lww_model(changesets: list[Changeset]) -> Any:
    """Per block and per entry, the op with the greatest (timestamp, position) wins."""
    best: dict[tuple[str, ...], tuple[tuple[str, int], Op]] = {}
    for change in changesets:
        for idx, op in enumerate(change.ops):
            key = (op.level, op.block) if op.entry is None else (op.level, "#", op.entry)
            rank = (change.hlc.encode(), idx)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, op)
    blocks = {(lv, b): None for lv, b in itertools.product(LEVELS, BLOCKS)}
    entries: dict[str, list[str]] = {lv: [] for lv in LEVELS}
    for _, op in best.values():
        if op.entry is None:
            blocks[(op.level, op.block)] = op.value if op.op == "set" else None
        elif op.op == "add":
            entries[op.level].append(op.entry)
    return blocks, {lv: sorted(es) for lv, es in entries.items()}


@settings(max_examples=40, deadline=None)
@given(history=histories(), data=st.data())
def test_final_state_is_last_writer_wins_whatever_the_arrival_order(
        tmp_path_factory: pytest.TempPathFactory, history: list[Changeset],
        data: st.DataObject) -> None:
    """Any two arrival orders of the same changesets give the same, newest-wins state."""
    order = data.draw(st.permutations(history))
    results = []
    for arrival in (history, order):
        store = Store(tmp_path_factory.mktemp("lww") / "s.db")
        for change in arrival:
            store.apply(change)
        results.append(contents(store))
        store.close()
    assert results[0] == results[1] == lww_model(history)


def test_older_write_arriving_late_does_not_overwrite(bare_store: Store) -> None:
    """A block write with an older timestamp that arrives second loses."""
    bare_store.apply(cs("B", 1, 200, put("cluster", "smtproutes", ["new"])))
    bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["old"])))
    assert bare_store.block("cluster", "smtproutes").value == ["new"]


def test_removal_tombstone_beats_an_older_add_arriving_later(bare_store: Store) -> None:
    """A removed entry stays removed when an older add of it arrives afterwards."""
    bare_store.apply(cs("B", 1, 200, remove("a@x.test")))
    bare_store.apply(cs("A", 1, 100, add("a@x.test")))
    assert list(bare_store.unsub_iter("cluster")) == []


@pytest.mark.parametrize("add_first", [True, False])
def test_re_addition_after_a_removal_wins_by_clock(bare_store: Store, add_first: bool) -> None:
    """An add newer than a concurrent removal keeps the entry, in either arrival order."""
    removal, addition = cs("A", 1, 100, remove("a@x.test")), cs("B", 1, 200, add("a@x.test"))
    for change in ([addition, removal] if add_first else [removal, addition]):
        bare_store.apply(change)
    assert list(bare_store.unsub_iter("cluster")) == ["a@x.test"]


# -- clear with causal context --------------------------------------------------------


@pytest.mark.parametrize("clear_first", [True, False])
def test_clear_keeps_entries_added_concurrently(bare_store: Store, clear_first: bool) -> None:
    """A clear removes the entries it knew of; a concurrent add elsewhere survives it."""
    bare_store.apply(cs("A", 1, 100, add("a@x.test"), add("b@x.test")))
    concurrent = cs("B", 1, 150, add("@y.test"))  # older than the clear, but not seen by it
    clearing = cs("A", 2, 200, clear({"A": 1}), context={"A": 1})
    for change in ([clearing, concurrent] if clear_first else [concurrent, clearing]):
        bare_store.apply(change)
    assert list(bare_store.unsub_iter("cluster")) == ["@y.test"]


def test_clear_removes_entries_of_other_origins_it_had_seen(bare_store: Store) -> None:
    """Entries from another machine inside the clear's context are removed too."""
    bare_store.apply(cs("B", 1, 100, add("b@x.test")))
    bare_store.apply(cs("A", 1, 200, clear({"B": 1}), context={"B": 1}))
    assert list(bare_store.unsub_iter("cluster")) == []


def test_clear_touches_only_its_own_level(bare_store: Store) -> None:
    """Clearing the cluster table leaves a group's table alone."""
    bare_store.apply(cs("A", 1, 100, add("a@x.test"), add("a@x.test", "group:g1")))
    bare_store.apply(cs("A", 2, 200, clear({"A": 1})))
    assert list(bare_store.unsub_iter("cluster")) == []
    assert list(bare_store.unsub_iter("group:g1")) == ["a@x.test"]


# -- conflict records -----------------------------------------------------------------


@pytest.mark.parametrize("arrival", [("A", "B"), ("B", "A")])
def test_concurrent_block_writes_keep_the_loser_as_a_conflict(
        bare_store: Store, arrival: tuple[str, str]) -> None:
    """Two unordered writes of one block: newest wins, the other is kept as a conflict."""
    writes = {"A": cs("A", 1, 100, put("cluster", "smtproutes", ["a"])),
              "B": cs("B", 1, 200, put("cluster", "smtproutes", ["b"]))}
    for origin in arrival:
        bare_store.apply(writes[origin])
    assert bare_store.block("cluster", "smtproutes").value == ["b"]
    [conflict] = bare_store.conflicts()
    assert (conflict["level"], conflict["block"]) == ("cluster", "smtproutes")
    assert conflict["winner"]["commit"] == "B-1" and conflict["winner"]["value"] == ["b"]
    assert conflict["loser"]["commit"] == "A-1" and conflict["loser"]["value"] == ["a"]


def test_causally_ordered_writes_make_no_conflict(bare_store: Store) -> None:
    """A write made after seeing the previous one (in its context) is no conflict."""
    bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["a"])))
    bare_store.apply(cs("B", 1, 200, put("cluster", "smtproutes", ["b"]), context={"A": 1}))
    bare_store.apply(cs("A", 2, 300, put("cluster", "smtproutes", ["c"]), context={"B": 1}))
    assert bare_store.conflicts() == []


def test_same_content_written_concurrently_is_no_conflict(bare_store: Store) -> None:
    """Two machines writing identical content lose nothing, so no conflict is kept."""
    bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["same"])))
    bare_store.apply(cs("B", 1, 200, put("cluster", "smtproutes", ["same"])))
    assert bare_store.conflicts() == []


def test_concurrent_delete_and_set_is_a_conflict(bare_store: Store) -> None:
    """Deleting a block while another machine sets it keeps the losing version."""
    bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["a"])))
    bare_store.apply(cs("B", 1, 200, Op("delete", "cluster", "smtproutes"), context={"A": 1}))
    bare_store.apply(cs("C", 1, 150, put("cluster", "smtproutes", ["c"]), context={"A": 1}))
    [conflict] = bare_store.conflicts()
    assert conflict["winner"]["value"] is None and conflict["loser"]["value"] == ["c"]
    assert bare_store.block("cluster", "smtproutes").value is None


def test_resolved_conflicts_leave_the_open_list(bare_store: Store) -> None:
    """Resolving a block's conflicts hides them from the open list but keeps them."""
    bare_store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["a"])))
    bare_store.apply(cs("B", 1, 200, put("cluster", "smtproutes", ["b"])))
    assert bare_store.resolve_conflicts("cluster", "smtproutes") == 1
    assert bare_store.conflicts() == []
    assert len(bare_store.conflicts(include_resolved=True)) == 1


# -- conflict records settle when a write has seen both versions ------------------------


def _conflicted(store: Store) -> None:
    """A-1 and B-1 write smtproutes concurrently: B-1 wins, A-1 is kept."""
    store.apply(cs("A", 1, 100, put("cluster", "smtproutes", ["a"])))
    store.apply(cs("B", 1, 200, put("cluster", "smtproutes", ["b"])))


def _open(store: Store) -> list[tuple[str, str]]:
    return [(c["winner"]["commit"], c["loser"]["commit"]) for c in store.conflicts()]


@pytest.mark.parametrize("write", [put("cluster", "smtproutes", ["c"]),
                                   Op("delete", "cluster", "smtproutes")])
def test_a_write_that_saw_both_versions_settles_the_conflict(bare_store: Store,
                                                             write: Op) -> None:
    """A set or delete of the block by a changeset that had both versions resolves it."""
    _conflicted(bare_store)
    bare_store.apply(cs("C", 1, 300, write, context={"A": 1, "B": 1}))
    assert _open(bare_store) == []
    [record] = bare_store.conflicts(include_resolved=True)
    assert record["resolved"] and record["loser"]["commit"] == "A-1"


def test_the_loser_origin_writing_again_after_seeing_the_winner_settles(
        bare_store: Store) -> None:
    """The loser's own machine counts its earlier commits as seen (same origin, lower seq)."""
    _conflicted(bare_store)
    bare_store.apply(cs("A", 2, 300, put("cluster", "smtproutes", ["a2"]), context={"B": 1}))
    assert _open(bare_store) == []


@pytest.mark.parametrize("context", [{"B": 1}, {"A": 1}, {}])
def test_a_write_that_saw_one_version_only_leaves_the_conflict_open(
        bare_store: Store, context: dict[str, int]) -> None:
    """Whoever had not seen both versions did not choose between them: still open."""
    _conflicted(bare_store)
    bare_store.apply(cs("C", 1, 300, put("cluster", "smtproutes", ["c"]), context=context))
    assert ("B-1", "A-1") in _open(bare_store)


@pytest.mark.parametrize("write", [put("group:g1", "smtproutes", ["c"]),
                                   put("cluster", "bounceconfig", ["c"])])
def test_a_write_of_another_block_or_level_settles_nothing(bare_store: Store,
                                                           write: Op) -> None:
    """Only a write of the conflict's own (level, block) settles it."""
    _conflicted(bare_store)
    bare_store.apply(cs("C", 1, 300, write, context={"A": 1, "B": 1}))
    assert _open(bare_store) == [("B-1", "A-1")]


def test_settling_replicates_with_the_write(tmp_path: Path) -> None:
    """Every store that applies the settling write marks its own record resolved."""
    settle = cs("C", 1, 300, put("cluster", "smtproutes", ["c"]), context={"A": 1, "B": 1})
    for name, first in (("ab", "A"), ("ba", "B")):
        store = Store(tmp_path / f"{name}.db")
        writes = {"A": cs("A", 1, 100, put("cluster", "smtproutes", ["a"])),
                  "B": cs("B", 1, 200, put("cluster", "smtproutes", ["b"]))}
        for origin in (first, "B" if first == "A" else "A"):
            store.apply(writes[origin])
        store.apply(settle)
        assert _open(store) == [] and len(store.conflicts(include_resolved=True)) == 1
        store.close()


def test_a_settling_write_leaves_later_concurrent_conflicts_open(bare_store: Store) -> None:
    """The settling write itself may conflict with a write it had not seen: that stays."""
    _conflicted(bare_store)
    bare_store.apply(cs("C", 1, 300, put("cluster", "smtproutes", ["c"]), context={"A": 1, "B": 1}))
    bare_store.apply(cs("D", 1, 250, put("cluster", "smtproutes", ["d"]), context={"B": 1}))
    assert _open(bare_store) == [("C-1", "D-1")]


# -- apply_many: a backlog in one transaction -------------------------------------------


def _backlog() -> list[Changeset]:
    return [cs("A", 1, 100, put("cluster", "smtproutes", ["a"]), add("a@x.test")),
            cs("B", 1, 150, put("cluster", "smtproutes", ["b"]), add("b@x.test")),
            cs("A", 2, 200, clear({"A": 1}), context={"A": 1}),
            cs("C", 1, 300, put("cluster", "smtproutes", ["c"]), remove("b@x.test"),
               context={"A": 2, "B": 1})]


def test_apply_many_is_apply_one_by_one(tmp_path: Path) -> None:
    """Applying a sequence at once leaves exactly what applying each in turn leaves."""
    one, many = Store(tmp_path / "one.db"), Store(tmp_path / "many.db")
    try:
        assert [one.apply(c) for c in _backlog()] == many.apply_many(_backlog()) == [True] * 4
        assert everything(many) == everything(one)
        assert many.conflicts(include_resolved=True) != []
    finally:
        one.close()
        many.close()


def test_apply_many_skips_what_is_present_or_repeated(bare_store: Store) -> None:
    """A changeset already stored, or met twice in the sequence, is skipped: False."""
    first, *rest = _backlog()
    bare_store.apply(first)
    assert bare_store.apply_many([first, rest[0], rest[0], rest[1]]) == [
        False, True, False, True]
    assert bare_store.version_vector() == {"A": 2, "B": 1}


def test_apply_many_of_nothing_new_changes_nothing(bare_store: Store) -> None:
    """A sequence of changesets all present already leaves the store and its generation."""
    bare_store.apply_many(_backlog())
    before, generation = everything(bare_store), bare_store.generation
    assert bare_store.apply_many(_backlog()) == [False] * 4
    assert everything(bare_store) == before and bare_store.generation == generation


def test_apply_many_is_all_or_nothing(bare_store: Store) -> None:
    """A failure in the third changeset leaves none of the sequence applied."""
    broken = Changeset(ChangesetId("D", 1), Timestamp(400, 0, "D"), "tester", "", "d.test",
                       failing_ops())
    with pytest.raises(OSError, match="mid-way"):
        bare_store.apply_many([*_backlog()[:2], broken])
    assert everything(bare_store) == everything_of_empty(bare_store.path.parent)


def everything_of_empty(where: Path) -> Any:
    empty = Store(where / "empty.db")
    try:
        return everything(empty)
    finally:
        empty.close()


def test_apply_many_passes_the_fsync_failpoint_once(
        bare_store: Store, failpoint: Callable[[str], None]) -> None:
    """A crash point before the one COMMIT rolls the whole sequence back."""
    failpoint("commit.before_fsync=raise")
    with pytest.raises(FailpointHit):
        bare_store.apply_many(_backlog())
    assert bare_store.version_vector() == {}
    failpoint("")
    generation = bare_store.generation
    assert bare_store.apply_many(_backlog()) == [True] * 4
    assert bare_store.generation > generation


# -- migration --------------------------------------------------------------------------

_OLD_UNSUB = """CREATE TABLE unsub (
    level TEXT NOT NULL, entry TEXT NOT NULL, present INTEGER NOT NULL, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, seq INTEGER NOT NULL, cleared_ctx TEXT,
    PRIMARY KEY (level, entry)) WITHOUT ROWID"""


def test_a_store_of_schema_1_is_rebuilt_from_its_log(tmp_path: Path) -> None:
    """Opening a store with the old one-row-per-entry table rebuilds it from the log."""
    history = [*_backlog(), cs("B", 2, 400, add("b@x.test"), remove("a@x.test"),
                                context={"B": 1})]
    fresh = Store(tmp_path / "fresh.db")
    fresh.apply_many(history)
    expected = fresh.db.execute("SELECT * FROM unsub ORDER BY level, entry").fetchall()
    fresh.close()
    old = Store(tmp_path / "old.db")
    old.apply_many(history)
    old.db.execute("DROP TABLE unsub")
    old.db.execute("DROP TABLE unsub_cleared")
    old.db.execute(_OLD_UNSUB)
    old.db.execute("INSERT INTO unsub VALUES ('cluster', 'stale@x.test', 1, '0', 'Z', 1, NULL)")
    old.set_meta("store_schema", "1")
    old.close()
    reopened = Store(tmp_path / "old.db")
    try:
        assert reopened.db.execute(
            "SELECT * FROM unsub ORDER BY level, entry").fetchall() == expected
        assert list(reopened.unsub_iter("cluster")) == ["b@x.test"]
        assert reopened.meta("store_schema") == "2"
    finally:
        reopened.close()


def test_missing_for_lists_what_a_peer_lacks_in_clock_order(bare_store: Store) -> None:
    """Given a peer's version vector, the store names exactly the changesets it lacks."""
    for change in [cs("A", 1, 100), cs("B", 1, 150), cs("A", 2, 200), cs("B", 2, 250)]:
        bare_store.apply(change)
    missing = [str(c) for c in bare_store.missing_for({"A": 1})]
    assert missing == ["B-1", "A-2", "B-2"]
