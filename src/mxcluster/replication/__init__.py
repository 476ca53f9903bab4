"""Replication core: keeps every member's configuration in step (SPEC §5). Pure: no I/O.

Layers::

    replicator   Replicator: inputs (local_commit, link_up, link_down, receive, tick)
                 -> effects; applies changesets to the Store it is given
      admin      effective administrative states (replicated blocks + gossip notices)
      link       LinkState, Tunables, per-link outbound queue / inbound assembly
      spool      on-disk spool for changesets arriving in many chunks
      messages   hello / chunk / ack / want / states: dataclasses + validated JSON
      effects    Send / Close / Applied / MembershipChanged / Flattened / Log
    testing      a simulated cluster (fake network and clocks) for tests and benchmarks

The I/O layer (peer links over SSH) frames ``messages.to_bytes(msg)`` on the wire,
decodes with ``messages.from_bytes`` and carries out the effects, in order.
"""

from mxcluster.replication.effects import (
    Applied,
    Close,
    Effect,
    Flattened,
    Log,
    MembershipChanged,
    Send,
)
from mxcluster.replication.link import LinkInfo, LinkState, Tunables
from mxcluster.replication.messages import Message, from_bytes, to_bytes
from mxcluster.replication.replicator import Replicator

__all__ = [
    "Applied",
    "Close",
    "Effect",
    "Flattened",
    "LinkInfo",
    "LinkState",
    "Log",
    "MembershipChanged",
    "Message",
    "Replicator",
    "Send",
    "Tunables",
    "from_bytes",
    "to_bytes",
]
