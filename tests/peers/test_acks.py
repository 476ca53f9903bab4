"""Acks of a batch travel as one message (flow control only counts them)."""

from __future__ import annotations

import pytest

from mxcluster.errors import ValidationError
from mxcluster.peers.linkio import coalesce_acks
from mxcluster.replication import effects as fx
from mxcluster.replication.link import Outbound
from mxcluster.replication.messages import Ack, Want, from_bytes, to_bytes


def test_the_acks_of_a_batch_become_one_per_peer_counting_them_all() -> None:
    want = fx.Send("P", Want({}, 0, ""))
    batch: list[fx.Effect] = [fx.Send("P", Ack("S", 1, 0)), fx.MembershipChanged(),
                              fx.Send("P", Ack("S", 2, 0)), want, fx.Send("P", Ack("S", 3, 1))]
    out = coalesce_acks(batch)
    assert out == [batch[1], want, fx.Send("P", Ack("S", 3, 1, count=3))]
    single = [fx.Send("P", Ack("S", 1, 0))]
    assert coalesce_acks(single) == single


def test_an_ack_count_crosses_the_wire_and_is_validated() -> None:
    assert from_bytes(to_bytes(Ack("S01", 4, 2, count=7))) == Ack("S01", 4, 2, count=7)
    assert b"count" not in to_bytes(Ack("S01", 4, 2))  # the common case stays as it was
    for bad in (b"0", b"-1", b"1000000000", b'"3"', b"true"):
        with pytest.raises(ValidationError):
            from_bytes(b'{"type":"ack","origin":"S01","seq":1,"index":0,"count":%s}' % bad)


def test_a_counted_ack_frees_that_many_chunks_of_the_window() -> None:
    out = Outbound()
    out.sizes.extend([10, 20, 30])
    out.inflight_bytes = 60
    out.acked(1, 2)
    assert list(out.sizes) == [30] and out.inflight_bytes == 30
    out.acked(2, 5)  # more than in flight: no harm
    assert not out.sizes and out.inflight_bytes == 0
