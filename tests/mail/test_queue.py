"""The durable queue: recovery, torn writes, state replay, group commit, segments."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from mxcluster.mail import queuefiles, records
from mxcluster.mail.queue import MailQueue


async def _put_many(queue: MailQueue, count: int) -> list[str]:
    msgs = await asyncio.gather(*(
        queue.put("s@x.test", [f"r{i}@y.test", "z@y.test"], b"body %d" % i, {})
        for i in range(count)))
    return [m.mid for m in msgs]


def test_messages_survive_reopen(tmp_path: Path) -> None:
    """Messages put (and fsynced) are all there after the queue is reopened."""
    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        mids = await _put_many(queue, 20)
        await queue.close()
        again = MailQueue(tmp_path)
        recovered = {m.mid: m for m in await again.open()}
        assert set(recovered) == set(mids)
        assert await again.body(recovered[mids[3]]) == b"body 3"
        await again.close()
    asyncio.run(scenario())


def test_done_and_retry_state_replay(tmp_path: Path) -> None:
    """Recipients done and retry state are replayed; fully done messages are gone."""
    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        a, b = (await queue.put("s@x", ["1@y", "2@y"], b"a", {}),
                await queue.put("s@x", ["3@y"], b"b", {}))
        queue.done(a, ["1@y"])
        queue.retry(a, 123.0, "451 later")
        queue.done(b, ["3@y"])
        await queue.close()
        again = MailQueue(tmp_path)
        (msg,) = await again.open()
        assert (msg.mid, msg.pending, msg.attempts, msg.next_attempt) == (a.mid, ["2@y"], 1, 123)
        await again.close()
    asyncio.run(scenario())


@pytest.mark.parametrize("cut", [1, 7, 30, -1])
def test_torn_tail_is_discarded(tmp_path: Path, cut: int) -> None:
    """A half-written last record (never acknowledged) is dropped on recovery."""
    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        kept = await queue.put("s@x", ["1@y"], b"kept", {})
        torn = await queue.put("s@x", ["2@y"], b"torn" * 10, {})
        await queue.close()
        segment = tmp_path / f"seg-{torn.place[0]:08d}.log"
        with segment.open("r+b") as f:
            f.truncate(torn.place[1] + torn.place[2] - 1 if cut < 0 else torn.place[1] + cut)
        again = MailQueue(tmp_path)
        assert [m.mid for m in await again.open()] == [kept.mid]
        await again.close()
    asyncio.run(scenario())


def test_corrupt_record_is_discarded(tmp_path: Path) -> None:
    """A record whose checksum does not match is not delivered."""
    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        msg = await queue.put("s@x", ["1@y"], b"payload", {})
        await queue.close()
        segment = tmp_path / f"seg-{msg.place[0]:08d}.log"
        data = bytearray(segment.read_bytes())
        data[-1] ^= 0xFF
        segment.write_bytes(bytes(data))
        again = MailQueue(tmp_path)
        assert await again.open() == []
        await again.close()
    asyncio.run(scenario())


def test_group_commit_uses_fewer_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many concurrent puts share fsyncs (group commit) and each is durable on return."""
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])

    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        mids = await _put_many(queue, 200)
        assert len(set(mids)) == 200
        await queue.close()
    asyncio.run(scenario())
    assert 1 <= len(calls) < 100


def test_empty_segments_are_deleted(tmp_path: Path) -> None:
    """Once every message of an old segment is done, the segment file is removed."""
    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        old = await queue.put("s@x", ["1@y"], b"x", {})
        await queue.close()
        queue = MailQueue(tmp_path)
        (msg,) = await queue.open()
        queue.done(msg, ["1@y"])
        await queue.close()
        assert not (tmp_path / f"seg-{old.place[0]:08d}.log").exists()
    asyncio.run(scenario())


def test_record_framing_roundtrip() -> None:
    """records.frame / split_message invert each other."""
    payload = records.message_payload({"mid": "X"}, b"raw\r\nbody")
    assert records.split_message(payload) == ({"mid": "X"}, b"raw\r\nbody")
    assert records.body_of(records.frame(payload)) == b"raw\r\nbody"


def test_state_log_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big state.log is rewritten from memory while running; replay stays correct."""
    monkeypatch.setattr(queuefiles, "STATE_COMPACT_BYTES", 2000)

    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        msgs = [await queue.put("s@x", [f"{i}@y", "keep@y"], b"b", {}) for i in range(60)]
        for msg in msgs[:50]:
            queue.done(msg, list(msg.recipients))  # gone: nothing left to remember
        for msg in msgs[50:]:
            queue.done(msg, [msg.recipients[0]])
            queue.retry(msg, 99.0, "451 later")
        await queue.put("s@x", ["last@y"], b"b", {})  # a batch after the growth
        await queue.close()
        with (tmp_path / "state.log").open("rb") as stream:
            ops = [json.loads(p)["op"] for _, _, p in records.read_records(stream)]
        assert "gone" in ops  # only a rewrite writes these
        again = MailQueue(tmp_path)
        recovered = {m.mid: m for m in await again.open()}
        assert len(recovered) == 11
        assert all(recovered[m.mid].pending == ["keep@y"] for m in msgs[50:])
        assert all(recovered[m.mid].attempts == 1 for m in msgs[50:])
        await again.close()
    asyncio.run(scenario())


def test_finished_messages_stay_gone_across_restarts(tmp_path: Path) -> None:
    """A delivered message sharing a segment with a queued one is not resurrected by the
    state.log rewrite at start-up, however many restarts follow."""
    async def scenario() -> None:
        queue = MailQueue(tmp_path)
        await queue.open()
        done = await queue.put("s@x", ["1@y"], b"done", {})
        live = await queue.put("s@x", ["2@y"], b"live", {})
        queue.done(done, ["1@y"])
        await queue.close()
        for _ in range(3):
            queue = MailQueue(tmp_path)
            assert [m.mid for m in await queue.open()] == [live.mid]
            await queue.close()
    asyncio.run(scenario())
