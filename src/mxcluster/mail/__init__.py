"""The mail path of one machine (SPEC §6): listeners, durable queue, delivery.

Layers (dependencies point downwards only)::

    engine            MailEngine: the composition root of the mail path (+ ops mixin)
      listenerset     listeners <-> snapshot; listeners: sockets, admission, drain
        session       aiosmtpd SMTP protocol with gateway limits
        handler       policy hooks (MAIL/RCPT/DATA) -> queue
      runner          attempt + settle (log, count, bounce, retry); scheduler: when
        delivery      routes, failover, unsubscribe screening, aiosmtplib; pool: limits
        resolver      MX/address lookups (dnspython, or static tables)
      queue           durable queue (group-committed fsync); queuefiles, records
      maillog, suspension, dsn, tls
    policy, replies, snapshot   pure: addresses, access rules, routes; reply texts

Pure modules (no I/O): policy, replies, records, dsn, snapshot.
"""

from mxcluster.mail.delivery import Outcome
from mxcluster.mail.engine import DEFAULT_SUSPEND_DELAY, MailEngine
from mxcluster.mail.listeners import ListenerState
from mxcluster.mail.resolver import DnsResolver, Resolver, StaticResolver
from mxcluster.mail.snapshot import MailSnapshot, MailTunables, UnsubscribeCheck

__all__ = [
    "DEFAULT_SUSPEND_DELAY",
    "DnsResolver",
    "ListenerState",
    "MailEngine",
    "MailSnapshot",
    "MailTunables",
    "Outcome",
    "Resolver",
    "StaticResolver",
    "UnsubscribeCheck",
]
