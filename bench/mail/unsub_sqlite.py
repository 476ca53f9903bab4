"""A SQLite-backed Global Unsubscribe check with N entries, standing in for the config
engine's table in the benchmark (one indexed IN-query per recipient)."""

from __future__ import annotations

import contextlib
import ipaddress
import sqlite3
from pathlib import Path


def build(path: Path, entries: int) -> None:
    """A table of ENTRIES synthetic entries of every form (none matches bench traffic)."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE unsub (entry TEXT PRIMARY KEY) WITHOUT ROWID")
    forms = ("user{}@unsub{}.test", "local{}x{}@", "@dom{}x{}.test", "@.sub{}x{}.test",
             "10.{}.{}.1")

    def rows() -> object:
        for i in range(entries):
            form = forms[i % len(forms)]
            yield (form.format(i // 65536 % 256 if "10." in form else i, i % 256),)
    db.executemany("INSERT OR IGNORE INTO unsub VALUES (?)", rows())  # type: ignore[arg-type]
    db.commit()
    db.close()


class SqliteUnsubscribe:
    """``unsubscribed(rcpt, next_hop_ip)`` against the table at PATH."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False)

    def __call__(self, recipient: str, next_hop_ip: str | None) -> bool:
        local, _, domain = recipient.lower().rpartition("@")
        keys = [recipient.lower(), f"{local}@", f"@{domain}"]
        labels = domain.split(".")
        keys += ["@." + ".".join(labels[i:]) for i in range(1, len(labels))]
        if next_hop_ip:
            keys.append(next_hop_ip)
        if domain.startswith("["):
            with contextlib.suppress(ValueError):
                keys.append(str(ipaddress.ip_address(domain.strip("[]").removeprefix("IPv6:"))))
        marks = ",".join("?" * len(keys))
        row = self.db.execute(f"SELECT 1 FROM unsub WHERE entry IN ({marks}) LIMIT 1", keys)
        return row.fetchone() is not None
