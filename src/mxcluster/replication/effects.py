"""What the replication core asks its I/O layer to do (outputs of ``Replicator``).

The core never touches sockets; every input returns a list of effects, to be carried
out in order:

    Send(peer, message)     frame ``messages.to_bytes(message)`` and write it on the link
    Close(peer, reason)     close the link (refused peer, removed machine); log the reason
    Applied(cid)            a changeset from a peer is now in the store: refresh snapshots
    MembershipChanged()     re-read ``Replicator.membership()``: peers, addresses, keys
    Flattened(cid)          this machine was removed and is now standalone
    Log(level, peer, text)  something an operator may want in the log
"""

from __future__ import annotations

from dataclasses import dataclass

from mxcluster.config.changeset import ChangesetId
from mxcluster.replication.messages import Message


@dataclass(frozen=True)
class Send:
    """Send MESSAGE to PEER on its link (in order with earlier sends to PEER)."""

    peer: str
    message: Message


@dataclass(frozen=True)
class Close:
    """Close the link to PEER; REASON is for the log and ``connstatus``."""

    peer: str
    reason: str


@dataclass(frozen=True)
class Applied:
    """Changeset CID, received from a peer, was applied to the store."""

    cid: ChangesetId


@dataclass(frozen=True)
class MembershipChanged:
    """Membership data or an administrative state changed."""


@dataclass(frozen=True)
class Flattened:
    """This machine learnt of its removal and wrote its standalone config as CID."""

    cid: ChangesetId


@dataclass(frozen=True)
class Log:
    """A line for the daemon's log; LEVEL is 'info', 'warning' or 'error'."""

    level: str
    peer: str
    text: str


Effect = Send | Close | Applied | MembershipChanged | Flattened | Log
