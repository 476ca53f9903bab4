"""Mail-path benchmark: mxcluster vs Postfix as durable relays to the same sink.

Measures, for each system, in the same run, on loopback only:
  * accepted-and-relayed messages per second with 8 client sessions and with 1
    (from the first MAIL to the last message arriving at the sink);
  * accept latency (MAIL FROM .. 250 after DATA) p50/p99 at an offered 100 msg/s;
and the same for mxcluster with a 1,000,000-entry Global Unsubscribe table (SQLite).

Usage: python bench/bench_mail.py [--messages N] [--entries N] [--skip-postfix]
Needs Debian's postfix installed (the benchmark configures a private instance).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "mail"
sys.path.insert(0, str(HERE))

import smtplib  # noqa: E402

from postfix import PostfixInstance  # noqa: E402
from sink import run_sink  # noqa: E402
from unsub_sqlite import build  # noqa: E402

BODY = (b"From: bench@sender.test\r\nTo: rcpt@example.com\r\nSubject: bench\r\n\r\n"
        + b"x" * 70 + b"\r\n") * 1 + (b"y" * 70 + b"\r\n") * 30  # ~2.5 kB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SinkProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.count = multiprocessing.Value("q", 0)
        self.proc = multiprocessing.Process(target=run_sink, args=(self.port, self.count),
                                            daemon=True)
        self.proc.start()
        wait(lambda: _listening(self.port), 10)

    def received(self) -> int:
        return int(self.count.value)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met in time")
        time.sleep(0.005)


@contextmanager
def mxcluster(work: Path, sink_port: int, unsub: Path | None) -> Iterator[int]:
    """A MailEngine process relaying 127.0.0.1:PORT -> sink; yields PORT."""
    port = free_port()
    blocks: dict[str, Any] = {
        "hostname": "mx.bench.test",
        "interfaces": [{"name": "Loopback", "ip": "127.0.0.1"}],
        "listeners": [{"name": "Bench", "type": "private", "interface": "Loopback",
                       "port": port, "relay_from": ["127.0.0.0/8"],
                       "max_connections": 200, "max_connections_per_ip": 200}],
        "smtproutes": [{"domain": "ALL", "hops": [f"127.0.0.1:{sink_port}"]}],
        "unsubscribe": {"enabled": True, "action": "drop"},
    }
    config = work / "mx.json"
    config.write_text(json.dumps({"blocks": blocks, "tunables": {"disk_margin_bytes": 1 << 26}}))
    args = [sys.executable, str(HERE / "runner.py"), str(config), str(work / "mxdata")]
    proc = subprocess.Popen(args + ([str(unsub)] if unsub else []), stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"READY"
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # the runner dumps its stacks to stderr
            time.sleep(1)
            proc.kill()
            raise


@contextmanager
def postfix(work: Path, sink_port: int) -> Iterator[int]:
    port = free_port()
    instance = PostfixInstance(work / "postfix", port, sink_port)
    instance.start()
    wait(lambda: _listening(port), 20)
    try:
        yield port
    finally:
        instance.stop()


def send_batch(port: int, count: int, latencies: list[float] | None = None,
               rate: float | None = None) -> None:
    """Send COUNT messages on one session (paced to RATE msg/s if given)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("client.bench.test")
        start = time.monotonic()
        for i in range(count):
            if rate is not None:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.monotonic()
            smtp.sendmail("bench@sender.test", ["rcpt@example.com"], BODY)
            if latencies is not None:
                latencies.append(time.monotonic() - t0)


def run_sessions(port: int, sessions: int, per_session: int, rate: float | None = None,
                 latencies: list[float] | None = None) -> float:
    threads = [threading.Thread(target=send_batch, args=(port, per_session, latencies, rate))
               for _ in range(sessions)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start


def throughput(port: int, sink: SinkProcess, sessions: int, total: int) -> dict[str, float]:
    base = sink.received()
    start = time.monotonic()
    accepted = run_sessions(port, sessions, total // sessions)
    wait(lambda: sink.received() >= base + total // sessions * sessions, 300)
    relayed = time.monotonic() - start
    n = total // sessions * sessions
    return {"accepted_per_s": n / accepted, "relayed_per_s": n / relayed}


def latency(port: int, sink: SinkProcess, seconds: float = 10.0) -> dict[str, float]:
    """Offered load of 100 msg/s over 4 sessions of 25 msg/s."""
    latencies: list[float] = []
    run_sessions(port, 4, int(25 * seconds), rate=25.0, latencies=latencies)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return {"p50_ms": statistics.median(latencies) * 1000, "p99_ms": p99 * 1000}


def measure(name: str, port: int, sink: SinkProcess, messages: int) -> dict[str, Any]:
    run_sessions(port, 2, 25)  # warm-up
    result = {
        "system": name,
        "8 sessions": throughput(port, sink, 8, messages),
        "1 session": throughput(port, sink, 1, max(messages // 4, 50)),
        "100 msg/s": latency(port, sink),
    }
    print(json.dumps(result), flush=True)
    return result


def table(results: list[dict[str, Any]]) -> str:
    head = (f"{'system':<34} {'8 sess acc/s':>12} {'8 sess rel/s':>12} {'1 sess rel/s':>12}"
            f" {'p50 ms':>8} {'p99 ms':>8}")
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(f"{r['system']:<34} {r['8 sessions']['accepted_per_s']:>12.0f}"
                    f" {r['8 sessions']['relayed_per_s']:>12.0f}"
                    f" {r['1 session']['relayed_per_s']:>12.0f}"
                    f" {r['100 msg/s']['p50_ms']:>8.1f} {r['100 msg/s']['p99_ms']:>8.1f}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--skip-postfix", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="mxbench-") as tmp:
        work = Path(tmp)
        Path(tmp).chmod(0o755)
        sink = SinkProcess()
        try:
            (work / "a").mkdir()
            with mxcluster(work / "a", sink.port, None) as port:
                results.append(measure("mxcluster", port, sink, args.messages))
            if not args.skip_postfix:
                with postfix(work, sink.port) as port:
                    results.append(measure("postfix (Debian)", port, sink, args.messages))
            unsub = work / "unsub.sqlite"
            started = time.monotonic()
            build(unsub, args.entries)
            print(f"built {args.entries} unsubscribe entries in "
                  f"{time.monotonic() - started:.1f}s", flush=True)
            (work / "b").mkdir()
            with mxcluster(work / "b", sink.port, unsub) as port:
                results.append(measure(f"mxcluster + {args.entries:,} unsub", port, sink,
                                       args.messages))
        finally:
            sink.stop()
    print()
    print(table(results))


if __name__ == "__main__":
    main()
