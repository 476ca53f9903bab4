"""The unsubscribe editor: entries, import/export, paging, matching, settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mxcluster.service.machine import Machine
from mxcluster.shell.core import Shell


def ok(shell: Shell, line: str) -> str:
    out = shell.execute(line)
    assert out.exit_code == 0, (line, out.stderr)
    return out.stdout


def entries(machine: Machine) -> list[str]:
    return list(machine.store.unsub_iter(str(machine.self_level)))


def test_new_and_delete_entries(shell: Shell, machine: Machine) -> None:
    """Entries are added and removed in canonical form once committed."""
    ok(shell, "unsubscribe new Bob@Example.COM")
    ok(shell, "unsubscribe new @.spam.example")
    assert entries(machine) == []
    ok(shell, "commit")
    assert entries(machine) == ["@.spam.example", "bob@example.com"]
    ok(shell, "unsubscribe delete BOB@example.com")
    ok(shell, "commit")
    assert entries(machine) == ["@.spam.example"]


def test_delete_of_an_entry_staged_in_this_session(shell: Shell, machine: Machine) -> None:
    """An entry added and deleted before commit is not stored."""
    ok(shell, "unsubscribe new bob@example.com")
    ok(shell, "unsubscribe delete bob@example.com")
    ok(shell, "commit")
    assert entries(machine) == []


@pytest.mark.parametrize(("address", "hop", "expected"), [
    ("bob@example.com", None, "bob@example.com"),
    ("BOB@EXAMPLE.COM", None, "bob@example.com"),
    ("alice@x.spam.example", None, "@.spam.example"),
    ("alice@spam.example", None, None),
    ("carol@example.org", "192.0.2.25", "192.0.2.25"),
    ("carol@[192.0.2.25]", None, "192.0.2.25"),
    ("carol@example.org", None, None),
])
def test_unsubscribe_test_reports_the_matching_entry(shell: Shell, address: str,
                                                     hop: str | None,
                                                     expected: str | None) -> None:
    """'unsubscribe test' names the committed entry that would unsubscribe the address."""
    for entry in ("bob@example.com", "@.spam.example", "192.0.2.25"):
        ok(shell, f"unsubscribe new {entry}")
    ok(shell, "commit")
    line = f"unsubscribe test {address} --json" + (f" --next-hop {hop}" if hop else "")
    assert json.loads(ok(shell, line))["entry"] == expected


def test_disabled_table_matches_nothing(shell: Shell, machine: Machine) -> None:
    """With Global Unsubscribe disabled, no recipient matches."""
    ok(shell, "unsubscribe new bob@example.com")
    ok(shell, "unsubscribe setup --disable --action bounce")
    ok(shell, "commit")
    assert machine.unsubscribed("bob@example.com") is None
    assert machine.effective("unsubscribe").value == {"enabled": False, "action": "bounce"}
    ok(shell, "unsubscribe setup --enable")
    ok(shell, "commit")
    assert machine.unsubscribed("bob@example.com") == "bob@example.com"


def test_clear_removes_committed_entries(shell: Shell, machine: Machine) -> None:
    """clear removes every committed entry; entries staged after it are kept."""
    ok(shell, "unsubscribe new a@example.com")
    ok(shell, "commit")
    ok(shell, "unsubscribe clear")
    ok(shell, "unsubscribe new b@example.com")
    ok(shell, "commit")
    assert entries(machine) == ["b@example.com"]


def test_import_adds_entries_and_export_writes_them(
        shell: Shell, machine: Machine, data_dir: Path,
        data_file: Callable[[str, str], Path]) -> None:
    """Import skips comments and duplicates; export writes the canonical sorted list."""
    ok(shell, "unsubscribe new kept@example.com")
    ok(shell, "commit")
    data_file("in.txt", "# list\nZed@Example.com\n\n@.spam.example  # subdomains\n"
                        "zed@example.com\n2001:DB8::1\n")
    assert "4 entries read" in ok(shell, "unsubscribe import in.txt")
    ok(shell, "commit")
    ok(shell, "unsubscribe export out.txt")
    written = (data_dir / "out.txt").read_text().splitlines()
    assert written == ["2001:db8::1", "@.spam.example", "kept@example.com", "zed@example.com"]
    assert written == entries(machine)


def test_export_then_import_round_trips(shell: Shell, machine: Machine, data_dir: Path,
                                        data_file: Callable[[str, str], Path]) -> None:
    """A file exported and imported after a clear restores the same entries."""
    lines = [f"user{i}@example.com" for i in range(50)] + ["@.a.example", "198.51.100.7"]
    data_file("in.txt", "\n".join(lines) + "\n")
    ok(shell, "unsubscribe import in.txt")
    ok(shell, "commit")
    ok(shell, "unsubscribe export copy.txt")
    ok(shell, "unsubscribe clear")
    ok(shell, "commit")
    assert entries(machine) == []
    ok(shell, f"unsubscribe import {data_dir / 'copy.txt'}")  # absolute paths work too
    ok(shell, "commit")
    assert entries(machine) == sorted(lines)


def test_import_with_bad_lines_names_them_and_changes_nothing(
        shell: Shell, state: Callable[[], Any], data_file: Callable[[str, str], Path]) -> None:
    """A file with bad lines is refused as a whole, each bad line named by number."""
    data_file("bad.txt", "good@example.com\nno-at-sign\nalso@good.example\nbad@@x\n")
    before = state()
    out = shell.execute("unsubscribe import bad.txt")
    assert out.exit_code == 1
    assert "bad.txt line 2" in out.stderr and "bad.txt line 4" in out.stderr
    assert "line 1" not in out.stderr and "line 3" not in out.stderr
    assert not shell.session.dirty and state() == before


def test_print_pages_with_after(shell: Shell, data_file: Callable[[str, str], Path]) -> None:
    """print --limit N --after LAST walks the whole table in order, N at a time; only the
    first page counts the table (counting a million rows is not free)."""
    all_entries = sorted(f"u{i:03d}@example.com" for i in range(250))
    data_file("in.txt", "\n".join(all_entries))
    ok(shell, "unsubscribe import in.txt")
    ok(shell, "commit")
    seen: list[str] = []
    after = ""
    while True:
        page = json.loads(ok(shell, f"unsubscribe print --limit 100 --after '{after}' --json"))
        assert page["total"] == (250 if not after else None)
        seen += page["entries"]
        if len(page["entries"]) < 100:
            break
        after = page["entries"][-1]
    assert seen == all_entries
    text = ok(shell, "unsubscribe print --limit 100")
    assert "use --after u099@example.com for more" in text


def test_print_of_the_default_table(shell: Shell) -> None:
    """With no table defined, print shows the default settings and no entries."""
    page = json.loads(ok(shell, "unsubscribe print --json"))
    assert (page["level"], page["total"], page["entries"]) == (None, 0, [])
    assert (page["enabled"], page["action"]) == (True, "drop")
