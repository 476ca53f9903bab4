"""Interoperability with Debian's swaks (a second, independent SMTP client)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import MakeEngine
from .helpers import Sink
from .test_tls import with_tls

pytestmark = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")


def swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "swaks.test",
         "--from", "a@sender.test", "--timeout", "10", *args],
        capture_output=True, text=True, timeout=30)


def test_swaks_pipelined_starttls_delivery(make_engine: MakeEngine, sink: Sink) -> None:
    """swaks over STARTTLS with pipelining: 250 with a queue id, delivered to the sink."""
    h = make_engine(with_tls("on"))
    done = swaks(h.port("Inbound"), "--to", "u@example.com", "--tls", "--pipeline")
    assert done.returncode == 0, done.stdout
    assert "queued as" in done.stdout
    assert sink.wait_for(1)[0].rcpts == ["u@example.com"]


def test_swaks_relay_denied(make_engine: MakeEngine) -> None:
    """swaks sees 550 5.7.1 for a recipient outside the RAT (exit code 24: RCPT failed)."""
    h = make_engine()
    done = swaks(h.port("Inbound"), "--to", "u@elsewhere.org")
    assert done.returncode == 24 and "550 5.7.1" in done.stdout
