"""Named failpoints for crash tests.

``MXCLUSTER_FAILPOINTS="commit.before_fsync=kill"`` makes the process SIGKILL itself when
it reaches that point; ``=raise`` raises ``FailpointHit``. Unset (the default), a
failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_ACTIVE: dict[str, str] = {}


class FailpointHit(RuntimeError):
    """Raised at a failpoint configured with ``=raise``."""


def load(spec: str | None = None) -> None:
    """(Re)read failpoints from SPEC or the MXCLUSTER_FAILPOINTS environment variable."""
    _ACTIVE.clear()
    text = os.environ.get("MXCLUSTER_FAILPOINTS", "") if spec is None else spec
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, action = item.partition("=")
        _ACTIVE[name] = action or "kill"


def hit(name: str) -> None:
    """Act if failpoint NAME is active."""
    action = _ACTIVE.get(name)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FailpointHit(name)


load()
