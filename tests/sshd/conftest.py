"""Fixtures: a machine with its SSH service running in this process."""

from __future__ import annotations

import pytest
from tests.sshd.harness import harness  # noqa: F401  (the fixture)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "throttle(**kwargs): LoginThrottle settings for the harness fixture")
