"""Fixtures: a machine with its SSH service running in this process."""

from __future__ import annotations

import os

# cheap password hashing for tests (documented in mxcluster.users.passwords)
os.environ.setdefault("MXCLUSTER_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("MXCLUSTER_ARGON2_TIME_COST", "1")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from sshd.harness import Harness  # noqa: E402


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A machine with users admin/viewer; ``@pytest.mark.throttle(**kw)`` tunes logins."""
    marker = request.node.get_closest_marker("throttle")
    h = Harness(tmp_path, **(marker.kwargs if marker else {}))
    try:
        h.add_users()
        yield h
    finally:
        h.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "throttle(**kwargs): LoginThrottle settings for the harness fixture")
