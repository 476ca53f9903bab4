"""argon2id password hashing and the strength rules for new passwords."""

from __future__ import annotations

import pytest

from mxcluster.users import passwords


def test_hash_verifies_the_right_password_only() -> None:
    """A hash accepts its password and refuses any other."""
    hashed = passwords.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "correct horse")
    assert not passwords.verify_password(hashed, "correct horsE")


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$argon2id$garbage"])
def test_missing_or_broken_hash_never_verifies(stored: str | None) -> None:
    """An account without a usable hash refuses every password instead of failing."""
    assert not passwords.verify_password(stored, "anything")


def test_default_cost_meets_owasp_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the test settings, hashing uses at least 19 MiB and 2 iterations."""
    monkeypatch.delenv("MXCLUSTER_ARGON2_MEMORY_KIB")
    monkeypatch.delenv("MXCLUSTER_ARGON2_TIME_COST")
    h = passwords.hasher()
    assert h.memory_cost >= 19 * 1024 and h.time_cost >= 2


def test_cost_can_be_lowered_by_environment() -> None:
    """The documented environment variables lower the cost (the test suite uses them)."""
    h = passwords.hasher()
    assert (h.memory_cost, h.time_cost) == (1024, 1)


@pytest.mark.parametrize(("password", "problems"), [
    ("long-enough", 0), ("short", 1), (" padded-password", 1), ("tiny ", 2),
])
def test_strength_rules(password: str, problems: int) -> None:
    """New passwords need 8+ characters and no leading or trailing blanks."""
    assert len(passwords.check_strength(password)) == problems


def test_generated_passwords_are_strong_and_distinct() -> None:
    """Setup's generated passwords pass the rules and do not repeat."""
    made = {passwords.generate_password() for _ in range(20)}
    assert len(made) == 20
    assert all(not passwords.check_strength(p) for p in made)
