"""Failed logins are slowed down, limited, and logged with the client address."""

from __future__ import annotations

import logging
import time

import asyncssh
import pytest
from tests.sshd.clients import run
from tests.sshd.harness import ADMIN_PASSWORD, Harness


def _fail(h: Harness, times: int) -> None:
    for _ in range(times):
        with pytest.raises(asyncssh.PermissionDenied):
            run(h, "version", password="wrong-password")


@pytest.mark.throttle(max_failures=3, window=60.0)
def test_locked_after_too_many_failures(harness: Harness) -> None:
    """After max_failures wrong passwords even the right one is refused."""
    _fail(harness, 3)
    with pytest.raises(asyncssh.PermissionDenied):
        run(harness, "version")


@pytest.mark.throttle(max_failures=3, window=60.0)
def test_lock_expires_after_the_window(harness: Harness) -> None:
    """When the window has passed, the right password logs in again."""
    _fail(harness, 3)
    harness.clock.now += 61.0
    assert run(harness, "version").exit_status == 0


@pytest.mark.throttle(max_failures=3, window=60.0)
def test_lock_is_per_user(harness: Harness) -> None:
    """A locked-out user name does not lock out other users."""
    _fail(harness, 3)
    assert run(harness, "version", user="viewer", password="viewer-pass").exit_status == 0


@pytest.mark.throttle(max_failures=3, window=60.0)
def test_success_resets_the_count(harness: Harness) -> None:
    """A successful login forgets earlier failures."""
    _fail(harness, 2)
    assert run(harness, "version", password=ADMIN_PASSWORD).exit_status == 0
    _fail(harness, 2)
    assert run(harness, "version").exit_status == 0


@pytest.mark.throttle(max_failures=3, window=60.0)
def test_refused_keys_do_not_count_as_failures(harness: Harness) -> None:
    """Keys the user does not have (an OpenSSH client offers all of its keys) lock nothing."""
    _fail(harness, 2)
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    for _ in range(3):
        with pytest.raises(asyncssh.PermissionDenied):
            run(harness, "version", password=None, client_keys=[stranger])
    assert run(harness, "version").exit_status == 0


@pytest.mark.throttle(base_delay=0.3)
def test_failures_slow_down_the_next_attempt(harness: Harness) -> None:
    """After a failure the next attempt waits at least the base delay."""
    _fail(harness, 1)
    started = time.monotonic()
    assert run(harness, "version").exit_status == 0
    assert time.monotonic() - started >= 0.3


def test_failures_are_logged_with_the_address(harness: Harness,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Every failed password login is logged with user and client address."""
    with caplog.at_level(logging.WARNING, logger="mxcluster.sshd"):
        _fail(harness, 2)
    failures = [r.getMessage() for r in caplog.records if "failed password" in r.getMessage()]
    assert len(failures) == 2
    assert all("'admin'" in m and "127.0.0.1" in m for m in failures)
