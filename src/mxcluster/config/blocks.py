"""Schemas of the setting blocks (SPEC §2), as immutable pydantic models.

Each block value is validated by a pydantic ``TypeAdapter`` so that every problem in a
value is reported at once. Values are stored and replicated as plain JSON.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

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


def _fmt(fmt: str, text: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "format": fmt, "description": text})


Name = Annotated[str, AfterValidator(_name),
                 _fmt("name", "1-64 letters, digits, '.', '_' or '-'")]
IP = Annotated[str, AfterValidator(_ip), _fmt("ip-address", "IPv4 or IPv6 address")]
CIDR = Annotated[str, AfterValidator(_cidr),
                 _fmt("cidr", "IP address or network, e.g. 192.0.2.0/24")]
Hostname = Annotated[str, AfterValidator(_hostname), _fmt("hostname", "DNS host name")]
Domain = Annotated[str, AfterValidator(_domain),
                   _fmt("domain", "example.com, .example.com (subdomains) or ALL")]
Hop = Annotated[str, AfterValidator(_hop),
                _fmt("next-hop", "host[:port], [ipv6]:port or /dev/null")]
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

    name: Name = Field(description="Unique listener name.")
    type: Literal["public", "private"] = Field(
        description="public: accept RAT domains from anyone; private: relay for relay_from.")
    interface: Name = Field(description="Interface (see interfaces) whose IP to bind.")
    port: Port = Field(25, description="TCP port.")
    rat: list[Domain] = Field(default_factory=list,
                              description="Recipient Access Table: accepted domains (public).")
    relay_from: list[CIDR] = Field(default_factory=list,
                                   description="Clients allowed to relay (private).")
    reject_from: list[CIDR] = Field(default_factory=list, description="Clients refused.")
    max_message_bytes: Positive = Field(10 * 1024 * 1024, description="Largest message.")
    max_recipients: Positive = Field(100, description="Recipients per message.")
    max_connections: Positive = Field(50, description="Concurrent sessions in total.")
    max_connections_per_ip: Positive = Field(10, description="Concurrent sessions per client.")
    tls: Literal["off", "on", "required"] = Field("off", description="STARTTLS offered/required.")
    certificate: Name | None = Field(None, description="Certificate name for STARTTLS.")


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

    enabled: bool = Field(True, description="Check recipients before every delivery.")
    action: Literal["drop", "bounce"] = Field("drop", description="What to do on a match.")


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

    retry_schedule: list[Positive] = Field(
        default_factory=lambda: [60, 300, 900, 1800, 3600],
        description="Seconds to wait before each retry; the last value repeats.")
    max_queue_lifetime: Positive = Field(5 * 24 * 3600,
                                         description="Seconds in queue before bouncing.")
    bounce_enabled: bool = Field(True, description="Send a DSN to the sender on failure.")


class UpdateConfig(_Model):
    """Where upgrades come from and which Ed25519 keys sign them."""

    source: str | None = Field(None, description="Directory or URL with release bundles.")
    trusted_keys: list[str] = Field(default_factory=list,
                                    description="Ed25519 public keys that sign releases.")


class User(_Model):
    """An administrator account; ``password_hash`` is an argon2 hash, never a password."""

    name: Name = Field(description="Login name.")
    role: Literal["admin", "operator", "readonly", "guest"] = Field(
        description="What the user may do.")
    password_hash: str | None = Field(None, description="argon2id hash (never a password).")
    ssh_keys: list[str] = Field(default_factory=list, description="OpenSSH public key lines.")


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
