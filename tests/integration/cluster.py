"""Helpers for multi-process cluster tests: real daemons joined into a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.conftest import MachineProc, setup_machine, wait_for


def ok(m: MachineProc, *commands: str) -> list[Any]:
    """Run COMMANDS on M in one session with --json; their documents (all must succeed)."""
    r = m.cli(*commands, json=True)
    assert r.returncode == 0, f"{m.hostname}: {commands}: {r.stderr}\n{m.log()[-2000:]}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def one(m: MachineProc, command: str) -> Any:
    return ok(m, command)[0]


def password_file(m: MachineProc) -> Path:
    return m.data_dir.parent / "admin-password"


def join(m: MachineProc, via: MachineProc, *extra: str) -> Any:
    """M joins the cluster VIA is a member of (admin credentials, TOFU host key)."""
    return one(m, f"clusterconfig join {via.address} --port {via.ssh_port} "
                  f"--password-file {password_file(m)} --accept-fingerprint " + " ".join(extra))


def machines(tmp: Path, n: int, start: int = 1, **env: str) -> list[MachineProc]:
    """N started standalone machines mailI.example.com on 127.0.0.(20+I)."""
    out = []
    for i in range(start, start + n):
        m = setup_machine(tmp, f"mail{i}.example.com", f"127.0.0.{20 + i}")
        m.start(**env)
        out.append(m)
    return out


def form(ms: list[MachineProc], name: str = "prod") -> None:
    """The first machine creates cluster NAME; the others join it in turn."""
    one(ms[0], f"clusterconfig create {name}")
    for m in ms[1:]:
        join(m, ms[0])
    for m in ms:
        wait_connected(m, len(ms))


def listing(m: MachineProc) -> dict[str, Any]:
    doc: dict[str, Any] = one(m, "clusterconfig list")
    return doc


def states(m: MachineProc) -> dict[str, str]:
    return {x["name"]: x["state"] for x in listing(m)["machines"]}


def wait_connected(m: MachineProc, n: int, timeout: float = 30) -> None:
    wait_for(lambda: list(states(m).values()) == ["connected"] * n, timeout,
             f"{m.hostname} to see {n} connected machines")


def routes(m: MachineProc) -> list[dict[str, Any]]:
    doc = one(m, "smtproutes print")
    return list(doc["smtproutes"])


def domains(m: MachineProc) -> set[str]:
    return {r["domain"] for r in routes(m)}


def commits(m: MachineProc) -> set[str]:
    return {e["id"] for e in one(m, "commitlog --limit 1000")["commits"]}


def entries(m: MachineProc) -> list[str]:
    return list(one(m, "unsubscribe print --limit 10000")["entries"])
