"""`make demo`: a cluster of three local machines on 127.0.0.11-13.

Creates them on first run under ./demo/, starts one `mxcluster serve` per machine, forms
cluster ``demo`` (mail1 creates it, mail2 and mail3 join), configures the mail path once
at cluster level (it replicates), tells you how to log in, and stops them on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
BIN = Path(sys.executable).parent
PASSWORD = "demo-password"
MACHINES = [(f"mail{i}.demo.example", f"127.0.0.1{i}") for i in (1, 2, 3)]


def ensure_machines() -> None:
    DEMO.mkdir(exist_ok=True)
    pw = DEMO / "admin-password"
    pw.write_text(PASSWORD + "\n")
    for name, address in MACHINES:
        data = DEMO / name
        if (data / "machine.json").exists():
            continue
        subprocess.run([str(BIN / "mxcluster"), "setup", "--data-dir", str(data),
                        "--hostname", name, "--address", address,
                        "--admin-password-file", str(pw)], check=True,
                       stdout=subprocess.DEVNULL)


def wait_port(address: str, port: int, deadline: float) -> bool:
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((address, port)) == 0:
                return True
        time.sleep(0.1)
    return False


SINK = ("127.0.0.10", 2626)
SMTP_PORT = 2525


class Sink:
    """The demo's next hop: prints every message it receives."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        via = next((line.split()[1] for line in envelope.content.decode().splitlines()
                    if line.startswith("X-Demo-Via:") and len(line.split()) > 1), "?")
        print(f"  sink <- {', '.join(envelope.rcpt_tos)} (entered at {via})", flush=True)
        return "250 2.0.0 OK"


def cli(address: str, *commands: str) -> subprocess.CompletedProcess[str]:
    args = [str(BIN / "mxcluster"), "cli", "--host", address, "--user", "admin"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args, capture_output=True, text=True,
                          env={**os.environ, "MXCLUSTER_PASSWORD": PASSWORD})


def form_cluster() -> bool:
    """mail1 creates cluster ``demo``; the others join it (each step only once)."""
    first = MACHINES[0][1]
    pw = DEMO / "admin-password"
    if '"cluster":null' in cli(first, "clusterconfig list --json").stdout:
        out = cli(first, "clusterconfig create demo")
        if out.returncode:
            print(f"could not create the cluster: {out.stderr.strip()}", file=sys.stderr)
            return False
    for name, address in MACHINES[1:]:
        if '"cluster":null' not in cli(address, "clusterconfig list --json").stdout:
            continue
        out = cli(address, f"clusterconfig join {first} --password-file {pw} "
                  "--accept-fingerprint")
        if out.returncode:
            print(f"{name} could not join: {out.stderr.strip()}", file=sys.stderr)
            return False
    return True


def configure_mail(address: str) -> None:
    """A public listener on :2525 for example.com, routed to the demo sink (once, at
    cluster level: it replicates to every machine)."""
    if '"In"' in cli(address, "listenerconfig print --json").stdout:
        return
    out = cli(address, f"listenerconfig new In --type public --interface Management "
              f"--port {SMTP_PORT} --rat example.com",
              f"smtproutes new ALL --to {SINK[0]}:{SINK[1]}", "commit 'demo mail path'")
    if out.returncode:
        print(f"could not configure {address}: {out.stderr.strip()}", file=sys.stderr)


def trickle(stop: threading.Event) -> None:
    """One message every 3 seconds, entering at each machine in turn."""
    import smtplib

    n = 0
    while not stop.wait(3):
        name, address = MACHINES[n % len(MACHINES)]
        n += 1
        body = f"X-Demo-Via: {name}\nSubject: demo {n}\n\nhello {n}\n"
        try:
            with smtplib.SMTP(address, SMTP_PORT, timeout=10) as smtp:
                smtp.sendmail("demo@sender.example", [f"user{n}@example.com"], body)
            print(f"  sent message {n} to {name}", flush=True)
        except (OSError, smtplib.SMTPException) as exc:
            print(f"  {name} did not take message {n}: {exc}", flush=True)


def start_machines() -> list[subprocess.Popen[bytes]]:
    """One `mxcluster serve` per machine, logging to its data directory."""
    procs = []
    for name, _ in MACHINES:
        log = (DEMO / name / "logs" / "serve.out").open("ab")
        procs.append(subprocess.Popen([str(BIN / "mxcluster"), "serve", "--data-dir",
                                       str(DEMO / name)], stdout=log, stderr=log))
    return procs


def banner(ok: bool) -> None:
    """How to reach the machines."""
    print("\nmxcluster demo: three machines are running, as cluster 'demo'" if ok
          else "\nsome machines failed")
    for name, address in MACHINES:
        print(f"  {name:<20} ssh -p 2222 admin@{address}    "
              f"(or: .venv/bin/mxcluster cli --host {address} --user admin)")
    print(f"\nPassword for admin: {PASSWORD}   (export MXCLUSTER_PASSWORD={PASSWORD})")
    print(f"Data and logs: {DEMO}/<machine>/   Press Ctrl-C to stop.\n")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # stop the machines on SIGTERM too
    ensure_machines()
    procs = start_machines()
    banner(all(wait_port(addr, 2222, time.monotonic() + 20) for _, addr in MACHINES))
    from aiosmtpd.controller import Controller

    sink = Controller(Sink(), hostname=SINK[0], port=SINK[1])
    sink.start()
    if form_cluster():
        print(cli(MACHINES[0][1], "clusterconfig list").stdout)
    configure_mail(MACHINES[0][1])
    print(f"Mail: each machine listens on :{SMTP_PORT} for example.com and relays to the "
          f"sink at {SINK[0]}:{SINK[1]}; a trickle of mail follows.\n")
    stop = threading.Event()
    threading.Thread(target=trickle, args=(stop,), daemon=True).start()
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a machine exited; see its logs/serve.out", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping...")
    finally:
        stop.set()
        sink.stop()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
