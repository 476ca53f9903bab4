"""Password hashing with argon2id (argon2-cffi).

Defaults meet OWASP's minimum for argon2id (19 MiB memory, 2 iterations, 1 lane). Tests
and benchmarks may lower the cost with ``MXCLUSTER_ARGON2_MEMORY_KIB`` and
``MXCLUSTER_ARGON2_TIME_COST`` (see ``mxcluster.settings``); never do that
in production.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mxcluster import settings

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
MIN_PASSWORD_LENGTH = 8


def hasher() -> PasswordHasher:
    memory = settings.get_int("MXCLUSTER_ARGON2_MEMORY_KIB")
    time_cost = settings.get_int("MXCLUSTER_ARGON2_TIME_COST")
    return PasswordHasher(time_cost=time_cost, memory_cost=memory, parallelism=1)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when PASSWORD matches; False for a mismatch or an account without password."""
    if not password_hash:
        return False
    try:
        return hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_strength(password: str) -> list[str]:
    """Problems with a new password (empty when acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password:
        problems.append("password must not start or end with white space")
    return problems


def generate_password() -> str:
    """A random password for setup (about 96 bits)."""
    return secrets.token_urlsafe(12)
