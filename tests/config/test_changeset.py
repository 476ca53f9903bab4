"""Changesets: ids, causal context and the wire encoding of operations."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxcluster.config.changeset import Changeset, ChangesetId, Op, decode_op
from mxcluster.config.hlc import Timestamp
from mxcluster.errors import UsageError, ValidationError

OPS = st.one_of(
    st.builds(Op, st.just("set"), st.just("cluster"), st.just("smtproutes"),
              st.lists(st.integers(), max_size=2)),
    st.builds(Op, st.just("delete"), st.just("group:g"), st.just("listeners")),
    st.builds(lambda kind, e: Op(kind, "cluster", "unsubscribe", entry=e),
              st.sampled_from(["add", "remove"]), st.emails()),
    st.builds(lambda ctx: Op("clear", "cluster", "unsubscribe", context=ctx),
              st.dictionaries(st.text("ABC", min_size=1), st.integers(0, 99))),
)


@given(op=OPS)
def test_ops_round_trip_through_their_encoding(op: Op) -> None:
    """Every op decodes from its encoding to an equal op."""
    assert decode_op(op.encode()) == op


@pytest.mark.parametrize("data", [
    None, [], "set", {"op": "explode", "level": "cluster", "block": "x"},
    {"op": "set", "block": "x"}, {"op": "set", "level": 5, "block": "x"},
    {"op": "add", "level": "cluster", "block": "unsubscribe"},
    {"op": "remove", "level": "cluster", "block": "unsubscribe", "entry": 7},
    {"op": "clear", "level": "cluster", "block": "unsubscribe"},
])
def test_malformed_ops_from_peers_are_refused(data: Any) -> None:
    """An op that is not well formed raises ValidationError instead of being applied."""
    with pytest.raises(ValidationError):
        decode_op(data)


@given(origin=st.from_regex(r"\A[A-Z0-9][A-Z0-9-]{0,11}\Z"), seq=st.integers(1, 10**9))
def test_changeset_id_prints_and_parses(origin: str, seq: int) -> None:
    """SERIAL-SEQ parses back to the same id, even when the serial contains dashes."""
    cid = ChangesetId(origin, seq)
    assert ChangesetId.parse(str(cid)) == cid


@pytest.mark.parametrize("text", ["", "12", "-5", "ABC-", "ABC-x", "ABC-1.5"])
def test_bad_changeset_id_is_a_usage_error(text: str) -> None:
    """A malformed commit id is a usage error pointing at commitlog."""
    with pytest.raises(UsageError, match="commitlog"):
        ChangesetId.parse(text)


def test_covers_follows_origin_order_and_context() -> None:
    """A changeset covers its origin's earlier ones and everything in its context."""
    change = Changeset(ChangesetId("A", 5), Timestamp(1, 0, "A"), "x", "", "m",
                       context={"B": 3})
    assert change.covers(ChangesetId("A", 4))
    assert not change.covers(ChangesetId("A", 5))
    assert change.covers(ChangesetId("B", 3))
    assert not change.covers(ChangesetId("B", 4))
    assert not change.covers(ChangesetId("C", 1))
