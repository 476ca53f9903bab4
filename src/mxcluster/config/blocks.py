"""Schemas of the setting blocks (SPEC §2), as immutable pydantic models.

Each block value is validated by a pydantic ``TypeAdapter`` so that every problem in a
value is reported at once. Values are stored and replicated as plain JSON.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_DOMAIN = re.compile(
    r"^\.?(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a valid host name")
    return value.lower()


def _domain(value: str) -> str:
    if value == "ALL":
        return value
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain ('example.com', '.example.com' or 'ALL')")
    return value.lower().rstrip(".")


def _hop(value: str) -> str:
    if value == "/dev/null":
        return value
    host, port = _split_hostport(value)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port in {value!r} must be 1-65535")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        _hostname(host)
    return value.lower()


def _split_hostport(value: str) -> tuple[str, int | None]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            raise ValueError(f"port in {value!r} must be a number")
        return host, int(port)
    return value, None


Name = Annotated[str, AfterValidator(_name)]
IP = Annotated[str, AfterValidator(_ip)]
CIDR = Annotated[str, AfterValidator(_cidr)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Domain = Annotated[str, AfterValidator(_domain)]
Hop = Annotated[str, AfterValidator(_hop)]
Port = Annotated[int, Field(ge=1, le=65535)]
Positive = Annotated[int, Field(ge=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(items: list[_Model], key: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        value = getattr(item, key)
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


class Interface(_Model):
    """A named IP interface; listeners refer to it by name."""

    name: Name
    ip: IP
    hostname: Hostname | None = None


class Listener(_Model):
    """An SMTP listener (SPEC §2)."""

    name: Name
    type: Literal["public", "private"]
    interface: Name
    port: Port = 25
    rat: list[Domain] = Field(default_factory=list)
    relay_from: list[CIDR] = Field(default_factory=list)
    reject_from: list[CIDR] = Field(default_factory=list)
    max_message_bytes: Positive = 10 * 1024 * 1024
    max_recipients: Positive = 100
    max_connections: Positive = 50
    max_connections_per_ip: Positive = 10
    tls: Literal["off", "on", "required"] = "off"
    certificate: Name | None = None


class Route(_Model):
    """Recipient domain -> ordered next hops (or ``/dev/null`` to drop)."""

    domain: Domain
    hops: list[Hop] = Field(min_length=1)

    @model_validator(mode="after")
    def _devnull_alone(self) -> Route:
        if "/dev/null" in self.hops and len(self.hops) > 1:
            raise ValueError("/dev/null must be the only hop of a route")
        return self


class DestLimits(_Model):
    """Per-destination delivery limits, enforced per machine."""

    max_connections: Positive = 20
    max_messages_per_connection: Positive = 50


class DestEntry(DestLimits):
    domain: Domain


class DestConfig(_Model):
    default: DestLimits = DestLimits()
    domains: list[DestEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> DestConfig:
        _unique(list(self.domains), "domain", "domain")
        return self


class UnsubscribeSettings(_Model):
    """Global Unsubscribe switches; the entries are stored per entry beside the block."""

    enabled: bool = True
    action: Literal["drop", "bounce"] = "drop"


class Certificate(_Model):
    """A PEM certificate chain and its private key."""

    name: Name
    certificate: str
    key: str

    @model_validator(mode="after")
    def _pem(self) -> Certificate:
        if "BEGIN CERTIFICATE" not in self.certificate:
            raise ValueError("certificate must be PEM ('-----BEGIN CERTIFICATE-----')")
        if "PRIVATE KEY" not in self.key:
            raise ValueError("key must be a PEM private key")
        return self


class BounceConfig(_Model):
    """Retry schedule, maximum time in queue, and whether to send bounces (DSN)."""

    retry_schedule: list[Positive] = Field(default_factory=lambda: [60, 300, 900, 1800, 3600])
    max_queue_lifetime: Positive = 5 * 24 * 3600
    bounce_enabled: bool = True


class UpdateConfig(_Model):
    """Where upgrades come from and which Ed25519 keys sign them."""

    source: str | None = None
    trusted_keys: list[str] = Field(default_factory=list)


class User(_Model):
    """An administrator account; ``password_hash`` is an argon2 hash, never a password."""

    name: Name
    role: Literal["admin", "operator", "readonly", "guest"]
    password_hash: str | None = None
    ssh_keys: list[str] = Field(default_factory=list)


def unique_names(items: list[_Model], what: str) -> list[_Model]:
    _unique(items, "name", what)
    return items


def unique_domains(items: list[Route]) -> list[Route]:
    _unique(list(items), "domain", "route domain")
    return items


Interfaces = Annotated[list[Interface], AfterValidator(lambda v: unique_names(v, "interface"))]
Listeners = Annotated[list[Listener], AfterValidator(lambda v: unique_names(v, "listener"))]
Routes = Annotated[list[Route], AfterValidator(unique_domains)]
Certificates = Annotated[
    list[Certificate], AfterValidator(lambda v: unique_names(v, "certificate"))
]
Users = Annotated[list[User], AfterValidator(lambda v: unique_names(v, "user"))]
