"""The replication core of one machine: a state machine, no I/O (SPEC §5).

Inputs are method calls (``local_commit``, ``link_up``, ``link_down``, ``receive`` or
``receive_many``, ``tick``); outputs are lists of ``effects``. The store is passed in and
changesets are applied to it directly: it is the state of this machine (the version
vector, the membership, what is missing), every decision reads it, and applying is one
synchronous transaction. Making "apply" an effect would only let the core's view of the
store lag behind the store. Sockets, timers and the wall clock stay outside.

Rules, each enforced here:

* push on commit: a local changeset is queued on every configuration link at once;
* anti-entropy on every (re)connection (version vectors in ``hello``) and every
  ``anti_entropy_ms`` (``want``): a peer sends exactly the changesets the other lacks,
  in HLC order, which is causal order;
* causal, atomic, idempotent apply: a changeset is applied only when everything in
  its causal context is present (else it is dropped and what is missing requested);
  the store applies it in one transaction and ignores it if already present
  (``receive_many``: a run of buffered changesets in one transaction);
* configuration flows only between members of the same software version; a
  disconnected or removed machine exchanges none, with anyone, in either direction;
  administrative states travel as control gossip so every machine learns them;
* a changeset stamped more than the clock bound ahead of our wall clock is not applied
  (yet): a peer with a fast clock cannot push ours forward;
* a machine that learns of its own removal flattens its configuration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping

from mxcluster.config.changeset import SCHEMA_VERSION, Changeset, ChangesetId, Op
from mxcluster.config.hlc import HybridClock
from mxcluster.config.store import Store
from mxcluster.membership import model
from mxcluster.membership.moves import flatten_ops
from mxcluster.membership.states import AdminState, StateRecord
from mxcluster.replication.admin import AdminStates, MembershipWatch, touches_membership
from mxcluster.replication.backlog import Backlog
from mxcluster.replication.effects import (
    Applied,
    Close,
    Effect,
    Flattened,
    Log,
    MembershipChanged,
    Send,
)
from mxcluster.replication.link import Link, LinkInfo, LinkState, Tunables
from mxcluster.replication.messages import (
    Ack,
    Chunk,
    Header,
    Hello,
    Message,
    States,
    Want,
)
from mxcluster.replication.spool import Spool

#: meta key: set (to the removal's timestamp) once this machine has flattened itself
FLATTENED_META = "replication.flattened"


class Replicator:
    """Replication and membership gossip for one machine."""

    def __init__(self, store: Store, clock: HybridClock, *, serial: str, name: str,
                 version: str, wall_ms: Callable[[], int],
                 tunables: Tunables | None = None) -> None:
        self.store = store
        self.clock = clock
        self.serial = serial
        self.name = name
        self.version = version
        self.tunables = tunables or Tunables()
        self._wall = wall_ms
        self.vv = store.version_vector()
        self.admin = AdminStates(store)
        self.links: dict[str, Link] = {}
        self.spool = Spool()
        self._since: dict[str, tuple[LinkState, int]] = {}

    def close(self) -> None:
        self.spool.close()

    @property
    def states(self) -> dict[str, StateRecord]:
        """Effective administrative state of every machine heard of, by serial."""
        return self.admin.current

    # -- inputs ---------------------------------------------------------------------

    def hello(self) -> Hello:
        """The first message this machine sends on a new link."""
        return Hello(self.serial, self.name, self.version, dict(self.vv), self.clock.last,
                     self._wall(), dict(self.states))

    def start(self) -> list[Effect]:
        """Call once after construction: finishes a flattening cut short by a crash."""
        return self._flatten_if_removed()

    def local_commit(self, cid: ChangesetId) -> list[Effect]:
        """CID was just committed locally (it is in the store): push it to every peer."""
        self._saw(cid)
        out = self._refresh(changed=False)
        now = self._wall()
        for link in self.links.values():
            if link.config:
                link.outbound.enqueue([cid], now)
                out += self._pump(link)
        return out

    def link_up(self, peer: str, hello: Hello) -> list[Effect]:
        """A link to PEER is established and PEER introduced itself with HELLO."""
        if hello.serial != peer or peer == self.serial:
            return [Log("warning", peer, f"refused: hello from {hello.serial!r}"),
                    Close(peer, "peer identity does not match its hello")]
        out = self.link_down(peer)
        out += self._learn(hello.states)
        if peer not in self.states:
            return [*out, Log("warning", peer, f"refused unknown machine {hello.name}"),
                    Close(peer, "not a member of this cluster")]
        removed = AdminState.REMOVED
        if removed in (self._state(peer), self._state(self.serial)):
            return [*out, Close(peer, "removed from the cluster")]
        now = self._wall()
        link = Link(peer, hello, now, clock_offset_ms=hello.wall_ms - now)
        self.links[peer] = link
        out += self._check_skew(link)
        link.config = self._config_ok(link)
        if link.config:
            link.outbound.enqueue(self._missing(hello.vv), now)
            out += self._pump(link)
        self._track()
        return out

    def link_down(self, peer: str) -> list[Effect]:
        """The link to PEER is gone; messages in flight on it are lost."""
        if self.links.pop(peer, None) is not None:
            self.spool.drop(peer)
            self._track()
        return []

    def receive(self, peer: str, message: Message) -> list[Effect]:
        """MESSAGE (already decoded and validated) arrived on the link to PEER."""
        link = self.links.get(peer)
        if link is None:
            return [Log("warning", peer, "message on a link that is not up; ignored")]
        if isinstance(message, Chunk):
            return self._on_chunk(link, message)
        if isinstance(message, Ack):
            return self._on_ack(link, message.count)
        if isinstance(message, Want):
            return self._on_want(link, message)
        if isinstance(message, States):
            return self._learn(message.states)
        return [Log("warning", peer, "unexpected hello on an established link")]

    def receive_many(self, peer: str, messages: Iterable[Message]) -> list[Effect]:
        """MESSAGES arrived on the link to PEER, in this order (all that is buffered).

        The same as ``receive`` for each in turn, effects included, except that runs of
        complete changesets ready to apply are applied in one store transaction: one
        fsync for a whole backlog instead of one per changeset.
        """
        backlog = Backlog()
        parts: list[list[Effect]] = []
        for message in messages:
            link = self.links.get(peer)
            if link is not None and isinstance(message, Chunk) and self._ready(link, message):
                parts.append(self._hold(link, message, backlog))
            else:
                self._flush(peer, backlog)
                parts.append(self.receive(peer, message))
        self._flush(peer, backlog)
        return [effect for part in parts for effect in part]

    def tick(self, now: int) -> list[Effect]:
        """Periodic work (call every second or so): anti-entropy, stalled transfers."""
        out: list[Effect] = []
        for link in self.links.values():
            if link.config and link.outbound.stalled(now, self.tunables.stall_ms):
                link.outbound.clear()
                out.append(Log("warning", link.peer, "transfer stalled; will resume"))
            if now - link.last_want_ms >= self.tunables.anti_entropy_ms:
                out.append(self._want(link, now))
        return out + self._flatten_if_removed()

    # -- views ----------------------------------------------------------------------

    def membership(self) -> model.Membership:
        return model.read(self.store)

    def link_state(self, peer: str) -> LinkState:
        """The state ``clusterconfig list`` shows for PEER (this machine itself included)."""
        disc = AdminState.DISCONNECTED
        if self._state(self.serial) is disc or self._state(peer) is disc:
            return LinkState.DISCONNECTED
        if peer == self.serial:
            return LinkState.CONNECTED
        link = self.links.get(peer)
        if link is None:
            return LinkState.LINK_DOWN
        if link.hello.version != self.version:
            return LinkState.VERSION_MISMATCH
        return LinkState.CONNECTED

    def link_info(self) -> list[LinkInfo]:
        """Per peer: state, since when, last error, clock offset, pending changesets."""
        out = []
        for peer in sorted(set(self.states) - {self.serial}):
            link = self.links.get(peer)
            state, since = self._since.get(peer, (self.link_state(peer), 0))
            offset = link.clock_offset_ms if link else 0
            out.append(LinkInfo(peer, state, since, link.last_error if link else "", offset,
                                abs(offset) > self.clock.max_drift_ms,
                                link.outbound.pending if link else 0))
        return out

    # -- configuration traffic --------------------------------------------------------

    def _on_chunk(self, link: Link, chunk: Chunk) -> list[Effect]:
        out: list[Effect] = [Send(link.peer, Ack(chunk.origin, chunk.seq, chunk.index))]
        if not link.config:
            return out
        inbound = link.inbound
        if chunk.header is not None:
            self._drop_inbound(link)
            problem = self._admit(link, chunk.header)
            if problem is not None:
                return out + problem
            if chunk.last:
                return out + self._apply(link, chunk.header.changeset(chunk.ops))
            inbound.header = chunk.header
        elif inbound.header is None or inbound.header.id != chunk.cid or (
                chunk.index != inbound.next_index):
            self._drop_inbound(link)  # a broken stream: ask again
            return out + self._ask(link)
        inbound.next_index = chunk.index + 1
        self.spool.append(link.peer, chunk.ops)
        if not chunk.last:
            return out
        assert inbound.header is not None
        header = inbound.header
        cs = header.changeset(self.spool.ops(link.peer))
        try:
            return out + self._apply(link, cs)
        finally:
            self._drop_inbound(link)

    def _admit(self, link: Link, header: Header) -> list[Effect] | None:
        """None when HEADER's changeset may be applied now, else what to do instead."""
        if self.store.has_changeset(header.id):
            self._saw(header.id)
            return []
        if header.schema > SCHEMA_VERSION:
            return [Log("error", link.peer, f"{header.id} has schema {header.schema}")]
        lead = header.hlc.wall_ms - self._wall()
        if lead > self.clock.max_drift_ms:
            link.last_error = f"{header.id} is stamped {lead} ms ahead of our clock"
            return [Log("warning", link.peer, link.last_error + "; not applied yet")]
        if not self._deps_met(header):
            self.vv = self.store.version_vector()  # the cache may lag a direct write
            if not self._deps_met(header):
                return self._ask(link)
        return None

    def _deps_met(self, header: Header) -> bool:
        cid = header.id
        if self.vv.get(cid.origin, 0) != cid.seq - 1:
            return False
        return all(self.vv.get(o, 0) >= s for o, s in header.context.items())

    def _apply(self, link: Link, cs: Changeset) -> list[Effect]:
        watch = MembershipWatch(cs.ops)
        cs.ops = watch
        self.clock.observe(cs.hlc)
        try:
            applied = self.store.apply(cs)
        except sqlite3.Error as exc:
            link.last_error = f"applying {cs.id} failed: {exc}"
            return [Log("error", link.peer, link.last_error)]
        self._saw(cs.id)
        if not applied:
            return []
        out: list[Effect] = [Applied(cs.id)]
        if watch.touched:
            out += self._refresh(changed=True)
        return out

    def _ready(self, link: Link, chunk: Chunk) -> bool:
        """True when ``receive`` would apply CHUNK's whole changeset at once (nothing
        else: no membership data, which re-evaluates the links)."""
        header = chunk.header
        if header is None or not (link.config and chunk.last):
            return False
        if self.store.has_changeset(header.id) or header.schema > SCHEMA_VERSION:
            return False
        if header.hlc.wall_ms - self._wall() > self.clock.max_drift_ms:
            return False
        # the vector counts what BACKLOG holds: a repeat of one of those is not "next"
        return self._deps_met(header) and not touches_membership(chunk.ops)

    def _hold(self, link: Link, chunk: Chunk, backlog: Backlog) -> list[Effect]:
        """Do what ``receive`` does with CHUNK, except the apply, which BACKLOG holds."""
        assert chunk.header is not None
        self._drop_inbound(link)
        cs = chunk.header.changeset(list(chunk.ops))
        self.clock.observe(cs.hlc)
        out = backlog.hold(chunk, cs, [Send(link.peer, Ack(cs.id.origin, cs.id.seq, 0))],
                           self.vv)
        self._saw(cs.id)
        return out

    def _flush(self, peer: str, backlog: Backlog) -> None:
        """Apply what BACKLOG holds in one transaction; if the store fails, go back and
        receive each held message alone, as ``receive`` would have."""
        held, vv_before = backlog.take()
        if not held:
            return
        try:
            applied = self.store.apply_many([h.changeset for h in held])
        except sqlite3.Error:
            self.vv = vv_before
            for h in held:
                h.effects[:] = self.receive(peer, h.chunk)
            return
        except BaseException:
            self.vv = vv_before
            raise
        for h, ok in zip(held, applied, strict=True):
            if ok:
                h.effects.append(Applied(h.changeset.id))

    def _on_ack(self, link: Link, count: int = 1) -> list[Effect]:
        if not link.config:
            return []
        link.outbound.acked(self._wall(), count)
        return self._pump(link)

    def _on_want(self, link: Link, want: Want) -> list[Effect]:
        now = self._wall()
        link.clock_offset_ms = want.wall_ms - now
        out = self._check_skew(link)
        if want.digest != self.admin.digest():  # the peer may not know what we do
            out.append(Send(link.peer, States(dict(self.states))))
        if not link.config:
            link.parked_want = want  # answered if configuration opens on this link
            return out
        link.outbound.replace(self._missing(want.vv), now, self.tunables.stall_ms)
        return out + self._pump(link)

    def _pump(self, link: Link) -> list[Effect]:
        chunks = link.outbound.pump(self._read, self.tunables)
        return [Send(link.peer, c) for c in chunks]

    def _read(self, cid: ChangesetId) -> tuple[Header, Iterable[Op]] | None:
        cs = self.store.changeset(cid)
        return None if cs is None else (Header.of(cs), cs.ops)

    def _missing(self, remote: Mapping[str, int]) -> list[ChangesetId]:
        vv = dict(remote)
        if all(vv.get(o, 0) >= s for o, s in self.vv.items()):
            return []
        return list(self.store.missing_for(vv))

    def _ask(self, link: Link) -> list[Effect]:
        """Request what is missing on LINK, at most every ``want_retry_ms``."""
        now = self._wall()
        if now - link.last_want_ms < self.tunables.want_retry_ms:
            return []
        return [self._want(link, now)]

    def _want(self, link: Link, now: int) -> Send:
        link.last_want_ms = now
        return Send(link.peer, Want(dict(self.vv), self._wall(), self.admin.digest()))

    def _drop_inbound(self, link: Link) -> None:
        link.inbound.reset()
        self.spool.drop(link.peer)

    def _saw(self, cid: ChangesetId) -> None:
        if self.vv.get(cid.origin, 0) < cid.seq:
            self.vv[cid.origin] = cid.seq

    # -- membership and administrative states ---------------------------------------

    def _state(self, serial: str) -> AdminState | None:
        return self.admin.state(serial)

    def _config_ok(self, link: Link) -> bool:
        return link.hello.version == self.version and self.admin.both_members(
            self.serial, link.peer)

    def _learn(self, heard: Mapping[str, StateRecord]) -> list[Effect]:
        """Keep the state records in HEARD that are newer than ours; act on them."""
        return self._refresh(changed=False) if self.admin.learn(heard) else []

    def _refresh(self, *, changed: bool) -> list[Effect]:
        """Re-read the states; gossip what changed; open or shut configuration links."""
        news = self.admin.reload()
        out: list[Effect] = [MembershipChanged()] if changed or news else []
        if news:
            out += [Send(peer, States(news)) for peer in self.links]
        out += self._flatten_if_removed()
        for link in list(self.links.values()):
            out += self._reevaluate(link)
        self._track()
        return out

    def _reevaluate(self, link: Link) -> list[Effect]:
        """Open or shut configuration on LINK after a state change; refuse a removed peer."""
        if self._state(link.peer) is AdminState.REMOVED:
            self.link_down(link.peer)
            return [Close(link.peer, "removed from the cluster")]
        ok = self._config_ok(link)
        if ok == link.config:
            return []
        link.config = ok
        if not ok:
            link.outbound.clear()
            self._drop_inbound(link)
            return []
        out: list[Effect] = [self._want(link, self._wall())]
        parked, link.parked_want = link.parked_want, None
        return out + (self._on_want(link, parked) if parked else [])

    def _flatten_if_removed(self) -> list[Effect]:
        rec = self.states.get(self.serial)
        if rec is None or rec.state is not AdminState.REMOVED:
            return []
        if self.store.meta(FLATTENED_META) is not None:
            return []  # removal is final: flattened once, for good
        me = model.read(self.store).by_serial(self.serial)
        ops = flatten_ops(self.store, self.name, me.group if me else None)
        cid = self._commit_local("flattened: removed from the cluster", ops)
        self.store.set_meta(FLATTENED_META, rec.hlc)
        out: list[Effect] = [Flattened(cid), MembershipChanged()]
        out += [Close(peer, "this machine was removed from the cluster") for peer in self.links]
        for peer in list(self.links):
            self.link_down(peer)
        return out

    def _commit_local(self, comment: str, ops: Iterable[Op]) -> ChangesetId:
        cid = ChangesetId(self.serial, self.store.next_seq(self.serial))
        self.store.apply(Changeset(cid, self.clock.now(), "mxcluster", comment, self.name,
                                   ops, context=dict(self.vv)))
        self._saw(cid)
        return cid

    def _check_skew(self, link: Link) -> list[Effect]:
        if abs(link.clock_offset_ms) <= self.clock.max_drift_ms:
            return []
        link.last_error = f"clock off by {link.clock_offset_ms} ms"
        return [Log("warning", link.peer, link.last_error)]

    def _track(self) -> None:
        now = self._wall()
        for peer in set(self.states) | set(self.links):
            state = self.link_state(peer)
            if self._since.get(peer, (None, 0))[0] != state:
                self._since[peer] = (state, now)
