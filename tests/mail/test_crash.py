"""Crash test under load: SIGKILL the engine process while clients send, restart it,
and check that every message that got a 250 reaches the sink."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import message
from .helpers import Sink, free_port, wait_until

RUNNER = Path(__file__).with_name("engine_runner.py")
SEQ = re.compile(rb"X-Seq: (\S+)")


class Load:
    """Client threads sending numbered messages; remembers which ones got 250."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.acked: set[str] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def _client(self, index: int) -> None:
        seq = 0
        while not self.stopping.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as smtp:
                    while not self.stopping.is_set():
                        seq += 1
                        tag = f"{index}-{seq}"
                        data = f"X-Seq: {tag}\r\n".encode() + message()
                        smtp.sendmail("a@sender.test", ["u@example.com"], data)
                        with self.lock:
                            self.acked.add(tag)
            except (OSError, smtplib.SMTPException):
                self.stopping.wait(0.02)  # back-off before reconnecting

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(10)


class EngineProcess:
    def __init__(self, config: Path, data_dir: Path, failpoint: str | None = None) -> None:
        env = {**os.environ, "MXCLUSTER_FAILPOINTS": failpoint or ""}
        self.proc = subprocess.Popen([sys.executable, str(RUNNER), str(config), str(data_dir)],
                                     stdout=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"READY"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(20) == 0


def write_config(path: Path, sink: Sink, port: int) -> None:
    blocks: dict[str, Any] = {
        "hostname": "mx1.test",
        "interfaces": [{"name": "Loopback", "ip": "127.0.0.1"}],
        "listeners": [{"name": "Inbound", "type": "public", "interface": "Loopback",
                       "port": port, "rat": ["example.com"], "max_connections_per_ip": 50}],
        "smtproutes": [{"domain": "ALL", "hops": [sink.hop]}],
        "bounceconfig": {"retry_schedule": [1]},
    }
    tunables = {"disk_margin_bytes": 1 << 20, "delivery_timeout": 5}
    path.write_text(json.dumps({"blocks": blocks, "tunables": tunables}))


def sink_tags(sink: Sink) -> Counter[str]:
    return Counter(m.group(1).decode() for r in sink.messages
                   if (m := SEQ.search(r.data)) is not None)


@pytest.mark.slow
def test_no_acknowledged_message_is_lost(tmp_path: Path, sink: Sink) -> None:
    """SIGKILL at queue failpoints and at random under load loses no 250'd message."""
    port, config, data_dir = free_port(), tmp_path / "config.json", tmp_path / "data"
    write_config(config, sink, port)
    rng = random.Random(4)
    load = Load(port)
    try:
        for failpoint in ("queue.before_fsync=kill", "queue.after_fsync=kill"):
            proc = EngineProcess(config, data_dir, failpoint)
            assert proc.proc.wait(30) == -signal.SIGKILL
        for _ in range(4):
            proc = EngineProcess(config, data_dir)
            target = load.count() + rng.randint(10, 80)
            wait_until(lambda t=target: load.count() >= t, 30, "load")
            proc.kill()
        proc = EngineProcess(config, data_dir)
        target = load.count() + 20
        wait_until(lambda: load.count() >= target, 30, "load")
        load.stop()
        wait_until(lambda: load.acked <= set(sink_tags(sink)), 60, "every 250'd message")
        proc.terminate()
    finally:
        load.stop()
    tags = sink_tags(sink)
    lost = load.acked - set(tags)
    duplicates = sum(n - 1 for n in tags.values() if n > 1)
    print(f"acked={len(load.acked)} delivered={len(tags)} duplicates={duplicates} lost={len(lost)}")
    assert not lost
