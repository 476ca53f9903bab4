"""The full mesh of peer links of one machine, driving the replication core.

``LinkManager`` is the I/O half of ``mxcluster.replication.Replicator``: it dials the
peers named in the membership (the machine with the smaller serial dials, so each pair
has one link), answers inbound peer channels (it is the SSH service's ``PeerGate``),
feeds every hello and message to the core on the store thread, and carries out the
effects the core returns. Broken links are redialled with exponential back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from mxcluster.config.changeset import ChangesetId
from mxcluster.errors import MxclusterError, ValidationError
from mxcluster.membership.model import MachineInfo, Membership
from mxcluster.membership.states import AdminState
from mxcluster.peers import control
from mxcluster.peers.linkio import (
    address_of,
    coalesce_acks,
    key_fingerprint,
    read_into,
    send_loop,
)
from mxcluster.peers.transport import PREPARED, PeerAddress, PeerChannel, dial
from mxcluster.replication.effects import (
    Applied,
    Close,
    Effect,
    Flattened,
    Log,
    MembershipChanged,
    Send,
)
from mxcluster.replication.messages import Hello, from_bytes, to_bytes
from mxcluster.replication.replicator import Replicator

T = TypeVar("T")
RunInStore = Callable[[Callable[[], T]], Awaitable[T]]
#: answers one control request: (the asking peer's serial, the request) -> the answer
ControlHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
#: what to do with a fresh channel; True when the dialling is done
ChannelUse = Callable[[PeerChannel], Awaitable[bool]]
log = logging.getLogger("mxcluster.peers")

BACKOFF_START = 0.5
#: a peer that comes back is linked again within this many seconds (one connection
#: attempt per interval per missing peer is cheap)
BACKOFF_MAX = 5.0
TICK_SECONDS = 1.0
#: messages read ahead on one link and handed to the core together (at most ~1 MiB each)
INBOX_MESSAGES = 64
#: how often, at most, a removed machine that has not heard of it yet is retried
REMOVED_RETRY_MAX = 60.0


class LinkManager:
    """Keeps this machine's peer links up and the replication core fed."""

    def __init__(self, replicator: Replicator, run_in_store: RunInStore[Any],
                 host_key: Path, *, on_applied: Callable[[ChangesetId], None] = lambda c: None,
                 on_membership: Callable[[], None] = lambda: None,
                 control_handler: ControlHandler | None = None,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.core = replicator
        self.run_in_store = run_in_store
        self.host_key = host_key
        self.on_applied = on_applied
        self.on_membership = on_membership
        self.control_handler = control_handler
        self.wall_ms = wall_ms
        self.serial = replicator.serial
        self._channels: dict[str, PeerChannel] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        #: removed machines that showed they know it, and the tasks telling the others
        self._told: set[str] = set()
        self._tellers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._effects: asyncio.Queue[list[Effect]] = asyncio.Queue()
        self._dialing: dict[str, PeerAddress] = {}
        self._outboxes: dict[str, asyncio.Queue[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._spawn(self._executor())
        self.enqueue(await self.run_in_store(self.core.start))
        await self.reconcile()
        self._spawn(self._ticker())

    async def stop(self) -> None:
        tasks = [*self._dialers.values(), *self._tellers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        for chan in list(self._channels.values()):
            chan.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.run_in_store(self.core.close)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def committed(self, cid: ChangesetId) -> None:
        """Commit hook (runs on the store thread): push CID to every peer."""
        effects = self.core.local_commit(cid)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.enqueue, effects)

    # -- the mesh -------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Dial every member we are responsible for; forget machines that left."""
        membership: Membership = await self.run_in_store(self.core.membership)
        member = membership.is_member(self.serial)
        wanted = {m.serial: m for m in membership.machines if member
                  and m.serial != self.serial and m.state is not AdminState.REMOVED}
        tell = {m.serial for m in membership.all_machines if member
                and m.state is AdminState.REMOVED and m.serial != self.serial} - self._told
        for serial, task in list(self._tellers.items()):
            if serial not in tell:
                task.cancel()
                del self._tellers[serial]
        for serial, task in list(self._dialers.items()):
            info = wanted.get(serial)
            if info is None or address_of(info) != self._dialing.get(serial):
                task.cancel()  # gone, or reached elsewhere now ('communication')
                del self._dialers[serial]
        for serial, info in wanted.items():
            if self.serial < serial and serial not in self._dialers:
                self._dialing[serial] = address_of(info)
                self._dialers[serial] = asyncio.ensure_future(self._dial_forever(address_of(info)))
        for info in membership.all_machines:
            if info.serial in tell and info.serial not in self._tellers:
                self._tellers[info.serial] = asyncio.ensure_future(
                    self._tell_removed(address_of(info)))

    async def _dial_until(self, peer: PeerAddress, on_channel: ChannelUse,
                          done: Callable[[], Awaitable[bool]], *, what: str,
                          backoff: tuple[float, float] = (BACKOFF_START, BACKOFF_MAX)) -> None:
        """Dial PEER and hand each channel to ON_CHANNEL until it, or DONE, says True.

        Between attempts the delay doubles from ``backoff[0]`` up to ``backoff[1]`` (back
        to the start after a connection). Nothing but cancellation ends the loop: a dialer
        that died on an unexpected error would leave a link down for good.
        """
        delay = backoff[0]
        while not await done():
            try:
                chan = await dial(peer, self.host_key)
                delay = backoff[0]
                if await on_channel(chan):
                    return
            except (MxclusterError, TimeoutError) as exc:
                log.info("%s %s (%s:%d): %s", what, peer.serial, peer.address, peer.port, exc)
            except Exception:
                log.exception("%s %s failed; trying again", what, peer.serial)
            await asyncio.sleep(delay)
            delay = min(backoff[1], delay * 2)

    async def _dial_forever(self, peer: PeerAddress) -> None:
        async def link(chan: PeerChannel) -> bool:
            await self.run_channel(peer.serial, chan)
            return False

        async def linked_already() -> bool:
            # a link is up (the join link, or the peer dialled first): replacing it would
            # only flap; dial once it is gone
            while peer.serial in self._channels:
                await asyncio.sleep(1.0)
            return False

        await self._dial_until(peer, link, linked_already, what="link to")

    async def _tell_removed(self, peer: PeerAddress) -> None:
        """Dial a removed machine until it knows (it may have been down at the time).

        Its key is revoked here, so it cannot reach us; we reach it instead, and our
        hello carries the removal. It then flattens itself and says so in its hello.
        """
        async def tell(chan: PeerChannel) -> bool:
            try:
                await chan.send(to_bytes(await self.run_in_store(self.core.hello)))
                theirs = await asyncio.wait_for(self._first_hello(peer.serial, chan), 30)
            finally:
                chan.close()
            rec = theirs.states.get(peer.serial) if theirs is not None else None
            if rec is None or rec.state is not AdminState.REMOVED:
                return False
            log.info("%s knows it was removed", peer.serial)
            self._told.add(peer.serial)
            self._tellers.pop(peer.serial, None)
            return True

        await self._dial_until(peer, tell, _never, what="telling of its removal",
                               backoff=(1.0, REMOVED_RETRY_MAX))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.enqueue(await self.run_in_store(partial(self.core.tick, self.wall_ms())))

    def join_via(self, peer: PeerAddress) -> None:
        """Link to PEER, the member that just admitted us, until membership takes over.

        A joiner knows nothing of its cluster until the first link replicates it, so it
        dials the member it joined through (retrying) until it sees itself a member;
        from then on ``reconcile`` keeps the mesh as for everyone else.
        """
        self._spawn(self._join_link(peer))

    async def _join_link(self, peer: PeerAddress) -> None:
        async def link(chan: PeerChannel) -> bool:
            await self.run_channel(peer.serial, chan)
            return False

        async def member() -> bool:
            return bool(await self.run_in_store(self._is_member))

        await self._dial_until(peer, link, member, what="joining through")

    def _is_member(self) -> bool:
        return self.core.membership().is_member(self.serial)

    async def request(self, target: MachineInfo, payload: dict[str, Any]) -> Any:
        """Send a control request to the member TARGET; its answer (or its error)."""
        peer = PeerAddress(target.serial, target.address, target.ssh_port, target.fingerprint)
        return await control.request(peer, self.host_key, payload)

    # -- PeerGate: inbound channels ----------------------------------------------------

    async def authorize(self, fingerprint: str) -> str | None:
        """The serial owning key FINGERPRINT; ``prepjoin:NAME`` for a pre-authorised key."""
        membership: Membership = await self.run_in_store(self.core.membership)
        for m in membership.all_machines:
            if m.fingerprint == fingerprint:
                return m.serial if m.state is not AdminState.REMOVED else None
        for prep in membership.prepjoins:
            if key_fingerprint(prep.key) == fingerprint:
                return PREPARED + prep.name
        return None

    async def serve(self, serial: str, channel: PeerChannel) -> None:
        await self.run_channel(serial, channel)

    async def control(self, serial: str, channel: PeerChannel) -> None:
        """Answer one control request from SERIAL."""
        try:
            req = await control.read_request(channel)
        except (MxclusterError, TimeoutError) as exc:
            log.warning("bad control request from %s: %s", serial, exc)
            return
        if req is None:
            return
        try:
            if self.control_handler is None:
                raise MxclusterError("this machine answers no control requests")
            body = {"ok": await self.control_handler(serial, req)}
        except MxclusterError as exc:
            body = control.error_reply(exc)
        except Exception:
            log.exception("control request from %s failed", serial)
            body = control.error_reply(MxclusterError("internal error on the peer; see its log"))
        with contextlib.suppress(MxclusterError):
            await control.reply(channel, body)

    # -- one link -------------------------------------------------------------------

    async def run_channel(self, serial: str, chan: PeerChannel) -> None:
        """Introduce ourselves, then pass every message to the core until the link ends."""
        old = self._channels.pop(serial, None)
        if old is not None:
            old.close()
        self._channels[serial] = chan
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        sender: asyncio.Future[None] | None = None
        try:
            # the hello goes first: only then may the core's messages use this channel
            await chan.send(to_bytes(await self.run_in_store(self.core.hello)))
            self._outboxes[serial] = outbox
            sender = asyncio.ensure_future(send_loop(serial, chan, outbox))
            hello = await self._first_hello(serial, chan)
            if hello is None:
                return
            self.enqueue(await self.run_in_store(lambda: self.core.link_up(serial, hello)))
            await self._pump(serial, chan)
        finally:
            if sender is not None:
                sender.cancel()
            if self._outboxes.get(serial) is outbox:
                del self._outboxes[serial]
            if self._channels.get(serial) is chan:
                del self._channels[serial]
                self.enqueue(await self.run_in_store(lambda: self.core.link_down(serial)))
            chan.close()

    async def _first_hello(self, serial: str, chan: PeerChannel) -> Hello | None:
        data = await chan.recv()
        if data is None:
            return None
        msg = from_bytes(data)
        if not isinstance(msg, Hello):
            log.warning("peer %s did not start with hello; closing", serial)
            return None
        return msg

    async def _pump(self, serial: str, chan: PeerChannel) -> None:
        """Feed the core what arrives on CHAN: everything buffered at once, so that a
        backlog (catch-up, a join) is applied in few transactions, not one per commit."""
        inbox: asyncio.Queue[bytes | None] = asyncio.Queue(INBOX_MESSAGES)
        reader = asyncio.ensure_future(read_into(chan, inbox))
        try:
            while True:
                batch = [await inbox.get()]
                while not inbox.empty() and len(batch) < INBOX_MESSAGES:
                    batch.append(inbox.get_nowait())
                ended = None in batch
                msgs = []
                for data in batch:
                    if data is None:
                        break
                    try:
                        msgs.append(from_bytes(data))
                    except ValidationError as exc:
                        log.warning("bad message from %s: %s; closing the link", serial, exc)
                        ended = True
                        break
                if msgs:
                    effects = await self.run_in_store(
                        partial(self.core.receive_many, serial, msgs))
                    self.enqueue(coalesce_acks(effects))
                if ended:
                    return
        finally:
            reader.cancel()

    # -- effects --------------------------------------------------------------------------

    def enqueue(self, effects: list[Effect]) -> None:
        """Queue EFFECTS for execution (event loop thread).

        One executor carries out every effect in the order the core produced them:
        the core is called on one thread, and its results are queued as soon as they
        come back, so the messages to each peer leave in the core's order.
        """
        if effects:
            self._effects.put_nowait(effects)

    async def _executor(self) -> None:
        while True:
            effects = await self._effects.get()
            try:
                await self.execute(effects)
            except Exception:
                log.exception("carrying out replication effects failed")

    async def execute(self, effects: Iterable[Effect]) -> None:
        """Carry out the core's effects, in order."""
        for effect in effects:
            await self._one(effect)

    async def _one(self, effect: Effect) -> None:
        if isinstance(effect, Send):
            outbox = self._outboxes.get(effect.peer)
            if outbox is not None:  # each link sends on its own: a slow peer slows no other
                outbox.put_nowait(to_bytes(effect.message))
        elif isinstance(effect, Close):
            log.warning("closing link to %s: %s", effect.peer, effect.reason)
            chan = self._channels.get(effect.peer)
            if chan is not None:
                chan.close()
        elif isinstance(effect, Applied):
            self.on_applied(effect.cid)
        elif isinstance(effect, MembershipChanged):
            self.on_membership()
            self._spawn(self.reconcile())
        elif isinstance(effect, Flattened):
            log.warning("this machine was removed from its cluster; now standalone (%s)",
                        effect.cid)
        elif isinstance(effect, Log):
            getattr(log, effect.level, log.info)("%s: %s", effect.peer, effect.text)


async def _never() -> bool:
    return False
