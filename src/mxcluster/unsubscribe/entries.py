"""Unsubscribe entry forms and the lookup keys of a recipient.

=================  ==============================================================
entry              matches
=================  ==============================================================
``user@domain``    exactly that address
``user@``          that local part at any domain
``@domain``        every address at exactly that domain
``@.domain``       every address at any subdomain of domain (not domain itself)
``192.0.2.1``      address-literal recipients ``user@[192.0.2.1]`` and every
                   delivery whose next hop is that IP (IPv6 likewise)
=================  ==============================================================

Matching is case-insensitive: entries and recipients are lower-cased.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

from mxcluster.errors import ValidationError

_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def normalise(text: str) -> str:
    """The canonical form of entry TEXT, or ValueError saying which forms are accepted."""
    entry = text.strip().lower()
    ip = _as_ip(entry) if "@" not in entry else None  # parsing IPs is the costly part
    if ip is not None:
        return ip
    local, at, domain = entry.rpartition("@")
    if not at:
        raise ValueError(f"{text!r} is not an unsubscribe entry ({_FORMS})")
    if local and not _LOCAL.match(local):
        raise ValueError(f"bad local part in {text!r} ({_FORMS})")
    if not domain:
        if not local:
            raise ValueError(f"{text!r} names neither a user nor a domain ({_FORMS})")
        return f"{local}@"
    bare = domain[1:] if domain.startswith(".") and not local else domain
    literal = _literal_ip(bare)
    if literal is not None and local:
        return f"{local}@[{literal}]"
    if not _DOMAIN.match(bare):
        raise ValueError(f"bad domain in {text!r} ({_FORMS})")
    return f"{local}@{domain}"


_FORMS = "use user@domain, user@, @domain, @.domain or an IP address"


def _as_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _literal_ip(domain: str) -> str | None:
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    inner = inner[5:] if inner.startswith("ipv6:") else inner
    return _as_ip(inner)


def candidates(recipient: str, next_hop_ip: str | None = None) -> list[str]:
    """Every entry that would match RECIPIENT (delivered via NEXT_HOP_IP), most specific first."""
    rcpt = recipient.strip().strip("<>").lower()
    local, _, domain = rcpt.rpartition("@")
    keys: list[str] = []
    literal = _literal_ip(domain)
    if literal is not None:
        keys += [f"{local}@[{literal}]", f"{local}@", literal]
    else:
        keys += [rcpt, f"{local}@", f"@{domain}"]
        labels = domain.split(".")
        keys += ["@." + ".".join(labels[i:]) for i in range(1, len(labels))]
    if next_hop_ip is not None:
        ip = _as_ip(next_hop_ip)
        if ip is not None and ip not in keys:
            keys.append(ip)
    return keys


def read_entries(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, normalised entry) for each entry line of an unsubscribe file.

    One bare entry per line; ``#`` starts a comment; blank lines are skipped. Raises
    ValidationError listing up to 20 bad lines (with their numbers) after reading all.
    """
    problems: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                yield number, normalise(line)
            except ValueError as exc:
                problems.append(f"{path.name} line {number}: {exc}")
    if problems:
        extra = len(problems) - 20
        shown = problems[:20] + ([f"... and {extra} more"] if extra > 0 else [])
        raise ValidationError(shown, hint="fix the file and import again; nothing was changed")
