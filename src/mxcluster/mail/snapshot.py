"""The immutable configuration snapshot the mail engine runs on.

The daemon builds a ``MailSnapshot`` from its machine's *effective* configuration
(plain JSON, exactly as the block schemas of ``mxcluster.config.blocks`` dump it) and
hands it to ``MailEngine.apply``. The engine never writes configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from mxcluster.config.blocks import (
    BounceConfig,
    Certificate,
    Certificates,
    DestConfig,
    Interface,
    Interfaces,
    Listener,
    Listeners,
    Route,
    Routes,
    UnsubscribeSettings,
)
from mxcluster.errors import ValidationError

#: ``unsubscribed(recipient, next_hop_ip)`` -> True when Global Unsubscribe matches.
UnsubscribeCheck = Callable[[str, "str | None"], bool]


def never_unsubscribed(recipient: str, next_hop_ip: str | None) -> bool:
    """The check used when no unsubscribe table is wired in: nothing matches."""
    return False


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "interfaces": TypeAdapter(Interfaces),
    "listeners": TypeAdapter(Listeners),
    "smtproutes": TypeAdapter(Routes),
    "destconfig": TypeAdapter(DestConfig),
    "bounceconfig": TypeAdapter(BounceConfig),
    "certificates": TypeAdapter(Certificates),
    "unsubscribe": TypeAdapter(UnsubscribeSettings),
}


@dataclass(frozen=True)
class MailTunables:
    """Engine limits that are not (yet) setting blocks; the daemon may override them."""

    #: Close a session idle this long (seconds) with 421 4.4.2.
    idle_timeout: float = 300.0
    #: Close a session open this long (seconds) with 421 4.4.2.
    session_timeout: float = 1800.0
    #: Refuse mail with 452 4.3.1 when the data directory has less free space.
    disk_margin_bytes: int = 256 * 1024 * 1024
    #: Concurrent delivery attempts across all destinations.
    delivery_workers: int = 64
    #: Seconds to wait for a next hop to connect or answer.
    delivery_timeout: float = 60.0
    #: Close a pooled outbound connection idle this long (seconds).
    pool_idle: float = 5.0
    #: Port of mail exchangers found by MX lookup, and of address literals.
    mx_port: int = 25


@dataclass(frozen=True)
class MailSnapshot:
    """One machine's effective mail configuration; immutable."""

    hostname: str
    interfaces: tuple[Interface, ...] = ()
    listeners: tuple[Listener, ...] = ()
    routes: tuple[Route, ...] = ()
    destconfig: DestConfig = field(default_factory=DestConfig)
    bounceconfig: BounceConfig = field(default_factory=BounceConfig)
    certificates: tuple[Certificate, ...] = ()
    unsubscribe: UnsubscribeSettings = field(default_factory=UnsubscribeSettings)
    unsubscribed: UnsubscribeCheck = field(default=never_unsubscribed, compare=False)

    @classmethod
    def from_json(
        cls, blocks: Mapping[str, Any], unsubscribed: UnsubscribeCheck = never_unsubscribed
    ) -> MailSnapshot:
        """Validate plain JSON blocks (as the schemas dump them) into a snapshot.

        Missing blocks take their built-in defaults; every problem is reported at once
        as a ``ValidationError``.
        """
        problems: list[str] = []
        parsed: dict[str, Any] = {}
        for key, adapter in _ADAPTERS.items():
            if key not in blocks:
                continue
            try:
                parsed[key] = adapter.validate_python(blocks[key])
            except PydanticValidationError as exc:
                problems += [f"{key}: {e['loc']}: {e['msg']}" for e in exc.errors()]
        hostname = blocks.get("hostname")
        if not isinstance(hostname, str) or not hostname:
            problems.append("hostname: must be a non-empty string")
        if problems:
            raise ValidationError(problems)
        return cls(
            hostname=str(hostname),
            interfaces=tuple(parsed.get("interfaces", ())),
            listeners=tuple(parsed.get("listeners", ())),
            routes=tuple(parsed.get("smtproutes", ())),
            destconfig=parsed.get("destconfig", DestConfig()),
            bounceconfig=parsed.get("bounceconfig", BounceConfig()),
            certificates=tuple(parsed.get("certificates", ())),
            unsubscribe=parsed.get("unsubscribe", UnsubscribeSettings()),
            unsubscribed=unsubscribed,
        )

    def interface(self, name: str) -> Interface | None:
        """The interface called NAME, or None when this machine lacks it."""
        return next((i for i in self.interfaces if i.name == name), None)

    def certificate(self, name: str | None) -> Certificate | None:
        """The certificate called NAME (None: the first one, as made at setup)."""
        if name is None:
            return self.certificates[0] if self.certificates else None
        return next((c for c in self.certificates if c.name == name), None)

    def listener(self, name: str) -> Listener | None:
        """The listener called NAME, or None."""
        return next((x for x in self.listeners if x.name == name), None)
