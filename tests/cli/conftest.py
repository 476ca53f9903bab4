"""Fixtures: the in-process machine and SSH service of the sshd tests."""

from tests.sshd.harness import harness  # noqa: F401  (the fixture)
