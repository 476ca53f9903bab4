"""Cluster membership as replicated data (SPEC §1, §4).

Layers::

    moves     create / join / renamegroup / deletegroup / flatten: ops that move settings
    ops       validated membership changes -> changeset operations
    model     the Membership view read from the reserved ``_membership.*`` blocks
    states    administrative states (member, disconnected, removed) and their gossip

Everything here is pure (reads through a store-like object, returns operations); the
service layer commits the operations and the replication core carries them.
"""

from mxcluster.membership.model import (
    MAIN_GROUP,
    Addressing,
    MachineInfo,
    Membership,
    Prepjoin,
    block_name,
    is_membership_block,
    read,
)
from mxcluster.membership.ops import Candidate
from mxcluster.membership.states import AdminState, StateRecord

__all__ = [
    "MAIN_GROUP",
    "Addressing",
    "AdminState",
    "Candidate",
    "MachineInfo",
    "Membership",
    "Prepjoin",
    "StateRecord",
    "block_name",
    "is_membership_block",
    "read",
]
