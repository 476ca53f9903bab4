"""The declarative registry of setting blocks (SPEC §2).

One table lists each block: its schema, the levels it may live at, its built-in default
and its help text. Validation, ``showconfig``, shell completion and the reference docs
(``docs/reference/blocks.md``) are all derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from mxcluster.config import blocks as b
from mxcluster.config.levels import LevelKind
from mxcluster.errors import NotFoundError, ValidationError

ANY_LEVEL = frozenset(LevelKind)
MACHINE_ONLY = frozenset({LevelKind.MACHINE})
CLUSTER_ONLY = frozenset({LevelKind.CLUSTER})


@dataclass(frozen=True)
class BlockSpec:
    """One setting block: the unit of configuration and of override."""

    name: str
    schema: Any
    levels: frozenset[LevelKind]
    default: Any
    help: str
    #: the block carries per-entry table data beside its value (unsubscribe)
    table: bool = False
    #: field names hidden from roles that may not see secrets (readonly, guest)
    secret_fields: tuple[str, ...] = ()
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.schema))

    @property
    def machine_only(self) -> bool:
        return self.levels == MACHINE_ONLY

    def validate(self, value: Any) -> Any:
        """Return the normalised JSON value or raise ValidationError listing every problem."""
        try:
            model = self.adapter.validate_python(value)
        except PydanticValidationError as exc:
            raise ValidationError(_problems(self.name, exc)) from None
        return self.adapter.dump_python(model, mode="json", exclude_none=True)

    def redact(self, value: Any) -> Any:
        """The value with secret fields replaced, for roles that may not see them."""
        if not self.secret_fields or not isinstance(value, list):
            return value
        return [
            {k: ("<hidden>" if k in self.secret_fields else v) for k, v in item.items()}
            for item in value
        ]


def _problems(block: str, exc: PydanticValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{block}{'.' + where if where else ''}: {msg}")
    return out


_BLOCKS = [
    BlockSpec(
        "interfaces", b.Interfaces, MACHINE_ONLY, [],
        "Named IP interfaces of this machine ({name, ip, hostname}); listeners name an "
        "interface, not an IP. Setup creates 'Management' on the setup address.",
    ),
    BlockSpec(
        "hostname", b.Hostname, MACHINE_ONLY, "localhost",
        "The machine's main host name (an FQDN); set with 'sethostname'.",
    ),
    BlockSpec(
        "listeners", b.Listeners, ANY_LEVEL, [],
        "SMTP listeners: public ones accept recipients in their RAT domains from anyone "
        "not in reject_from; private ones relay any recipient for clients in relay_from.",
    ),
    BlockSpec(
        "smtproutes", b.Routes, ANY_LEVEL, [],
        "Recipient domain ('example.com', '.example.com' for subdomains, 'ALL') -> ordered "
        "next hops host[:port], or '/dev/null' to drop. No match: MX lookup.",
    ),
    BlockSpec(
        "destconfig", b.DestConfig, ANY_LEVEL, b.DestConfig().model_dump(mode="json"),
        "Per-destination-domain delivery limits (concurrent connections, messages per "
        "connection) with a default; enforced per machine.",
    ),
    BlockSpec(
        "unsubscribe", b.UnsubscribeSettings, ANY_LEVEL,
        b.UnsubscribeSettings().model_dump(mode="json"),
        "Global Unsubscribe: enabled, action (drop|bounce) and entries 'user@domain', "
        "'user@', '@domain', '@.domain' or an IP address.",
        table=True,
    ),
    BlockSpec(
        "certificates", b.Certificates, ANY_LEVEL, [],
        "Named TLS certificates and private keys for listeners; setup makes a self-signed "
        "'default'. Keys are never shown to readonly or guest users.",
        secret_fields=("key",),
    ),
    BlockSpec(
        "bounceconfig", b.BounceConfig, ANY_LEVEL, b.BounceConfig().model_dump(mode="json"),
        "Retry schedule (seconds between attempts), maximum queue lifetime (seconds) and "
        "whether bounces (DSN) are sent.",
    ),
    BlockSpec(
        "updateconfig", b.UpdateConfig, ANY_LEVEL,
        b.UpdateConfig().model_dump(mode="json", exclude_none=True),
        "Where upgrades come from (directory or URL) and the trusted Ed25519 signing keys.",
    ),
    BlockSpec(
        "users", b.Users, CLUSTER_ONLY, [],
        "The user database (name, role, argon2 password hash, SSH public keys); one for "
        "the whole cluster, local on a standalone machine.",
        secret_fields=("password_hash",),
    ),
]

BLOCKS: Mapping[str, BlockSpec] = {spec.name: spec for spec in _BLOCKS}


def get(name: str) -> BlockSpec:
    """The spec of block NAME, or NotFoundError listing the known blocks."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise NotFoundError(
            f"unknown setting block {name!r}", hint="known blocks: " + ", ".join(BLOCKS)
        ) from None
