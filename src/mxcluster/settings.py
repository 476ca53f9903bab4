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
    """One environment setting: its variable, default, reader and meaning."""

    env: str
    default: str
    read_by: str
    help: str


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting(
            "MXCLUSTER_PASSWORD", "", "`mxcluster cli`",
            "Password to log in with when `--password-file` is not given (else it is asked "
            "on a terminal). Prefer a password file: the environment of a process can be "
            "read by the same user.",
        ),
        Setting(
            "MXCLUSTER_ARGON2_MEMORY_KIB", "19456", "`mxcluster.users.passwords`",
            "Memory cost (KiB) of new argon2id password hashes. The default is OWASP's "
            "minimum; only tests and benchmarks lower it. Never lower it in production.",
        ),
        Setting(
            "MXCLUSTER_ARGON2_TIME_COST", "2", "`mxcluster.users.passwords`",
            "Iterations of new argon2id password hashes (OWASP minimum by default); for "
            "tests and benchmarks only, like the memory cost.",
        ),
        Setting(
            "MXCLUSTER_FAILPOINTS", "", "`mxcluster.failpoints`",
            "Comma-separated `NAME=ACTION` pairs for crash tests: `kill` (the default "
            "action) makes the process SIGKILL itself at that point, `raise` raises "
            "`FailpointHit`. Read at start-up. Never set in production.",
        ),
        Setting(
            "MXCLUSTER_VERSION", "", "`mxcluster serve`",
            "The software version the machine reports to its peers and in `version` "
            "(empty: the installed package's). For tests of mixed-version clusters "
            "(version-mismatch links, refused joins); never set in production.",
        ),
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
