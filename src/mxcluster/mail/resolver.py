"""Next-hop name resolution: the DNS seam of delivery.

``Resolver`` is what delivery needs; ``DnsResolver`` asks DNS through dnspython,
``StaticResolver`` answers from tables (tests, and loopback-only set-ups) and never
touches the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver


class DnsTemporaryError(Exception):
    """DNS did not answer (timeout, SERVFAIL): try again later."""


class DnsPermanentError(Exception):
    """The domain does not exist or accepts no mail (NXDOMAIN, null MX)."""


class Resolver(Protocol):
    """How delivery finds mail exchangers and addresses."""

    async def mx(self, domain: str) -> list[str]:
        """Mail exchangers of DOMAIN, most preferred first (RFC 5321 §5.1)."""
        ...

    async def addresses(self, host: str) -> list[str]:
        """IPv4 and IPv6 addresses of HOST."""
        ...


class DnsResolver:
    """Real DNS lookups with dnspython's asyncio resolver."""

    def __init__(self, lifetime: float = 10.0) -> None:
        self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = lifetime

    async def mx(self, domain: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            raise DnsPermanentError(f"domain {domain} does not exist") from None
        except dns.resolver.NoAnswer:
            return [domain]  # implicit MX, RFC 5321 §5.1
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(f"MX lookup for {domain} failed: {exc}") from None
        records = sorted(answer, key=lambda r: r.preference)
        hosts = [r.exchange.to_text(omit_final_dot=True) for r in records]
        if hosts in ([""], ["."]):
            raise DnsPermanentError(f"domain {domain} accepts no mail (null MX, RFC 7505)")
        return hosts

    async def addresses(self, host: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(host, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                raise DnsTemporaryError(f"{rdtype} lookup for {host} failed: {exc}") from None
            found += [r.to_text() for r in answer]
        return found


class StaticResolver:
    """Answers from fixed tables; unknown names have no records."""

    def __init__(self, mx: Mapping[str, Sequence[str]] | None = None,
                 hosts: Mapping[str, Sequence[str]] | None = None) -> None:
        self._mx = {k.lower(): list(v) for k, v in (mx or {}).items()}
        self._hosts = {k.lower(): list(v) for k, v in (hosts or {}).items()}

    async def mx(self, domain: str) -> list[str]:
        hosts = self._mx.get(domain.lower())
        if hosts is None:
            raise DnsPermanentError(f"domain {domain} does not exist")
        return hosts

    async def addresses(self, host: str) -> list[str]:
        return self._hosts.get(host.lower(), [])
