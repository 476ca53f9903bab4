"""The one declarative table of process settings read from ``MXCLUSTER_*`` variables.

Help, validation and the reference page (docs/reference/settings.md) come from here.
Configuration that belongs to the cluster lives in setting blocks, not here: these are
per-process knobs for tests, benchmarks and the client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mxcluster.errors import UsageError


@dataclass(frozen=True)
class Setting:
    """One environment setting."""

    env: str
    default: str
    help: str
    kind: type = str


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting("MXCLUSTER_PASSWORD", "",
                "Password for 'mxcluster cli' when --password-file is not given."),
        Setting("MXCLUSTER_ARGON2_MEMORY_KIB", "19456",
                "argon2id memory cost in KiB for new password hashes (OWASP minimum: 19456). "
                "Tests lower it; never lower it in production.", int),
        Setting("MXCLUSTER_ARGON2_TIME_COST", "2",
                "argon2id iterations for new password hashes (OWASP minimum: 2).", int),
        Setting("MXCLUSTER_FAILPOINTS", "",
                "Comma-separated NAME=kill|raise failpoints for crash tests, e.g. "
                "'commit.before_fsync=kill'. Empty in production."),
    ]
}


def get(env: str) -> str:
    """The value of setting ENV (environment, else default)."""
    return os.environ.get(env, SETTINGS[env].default)


def get_int(env: str) -> int:
    raw = get(env)
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"{env} must be a whole number, not {raw!r}") from None
