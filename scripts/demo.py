"""`make demo`: three local machines on 127.0.0.11-13, each with its own data directory.

Creates them on first run under ./demo/, starts one `mxcluster serve` per machine, tells
you how to log in, and stops them cleanly on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def main() -> int:
    ensure_machines()
    procs = []
    for name, _ in MACHINES:
        log = (DEMO / name / "logs" / "serve.out").open("ab")
        procs.append(subprocess.Popen([str(BIN / "mxcluster"), "serve", "--data-dir",
                                       str(DEMO / name)], stdout=log, stderr=log))
    ok = all(wait_port(addr, 2222, time.monotonic() + 20) for _, addr in MACHINES)
    print("\nmxcluster demo: three machines are running" if ok else "\nsome machines failed")
    for name, address in MACHINES:
        print(f"  {name:<20} ssh -p 2222 admin@{address}    "
              f"(or: .venv/bin/mxcluster cli --host {address} --user admin)")
    print(f"\nPassword for admin: {PASSWORD}   (export MXCLUSTER_PASSWORD={PASSWORD})")
    print(f"Data and logs: {DEMO}/<machine>/   Press Ctrl-C to stop.\n")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a machine exited; see its logs/serve.out", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping...")
    finally:
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
