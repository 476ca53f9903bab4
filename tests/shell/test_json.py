"""--json: one compact JSON document per command; errors in one JSON shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mxcluster.shell.core import Shell


def one_line_json(text: str) -> Any:
    """TEXT is exactly one compact JSON document on one line."""
    assert text.endswith("\n") and text.count("\n") == 1
    body = text[:-1]
    data = json.loads(body)
    assert body == json.dumps(data, separators=(",", ":"))  # compact, order as printed
    return data


@pytest.mark.parametrize("line", [
    "version", "status", "showconfig", "showconfig --effective", "commitlog", "help",
    "smtproutes print", "listenerconfig print", "interfaceconfig print", "destconfig print",
    "bounceconfig print", "updateconfig print", "unsubscribe print", "userconfig print",
    "changes", "certconfig print",
])
def test_every_show_command_prints_one_compact_json_line(shell: Shell, line: str) -> None:
    """With --json, each command prints one compact JSON document on one line."""
    out = shell.execute(f"{line} --json")
    assert out.exit_code == 0 and out.stderr == ""
    one_line_json(out.stdout)


def test_version_json_has_the_documented_keys(shell: Shell) -> None:
    """version --json has version, hostname, serial and fingerprint (SPEC §4)."""
    data = one_line_json(shell.execute("version --json").stdout)
    assert set(data) == {"version", "hostname", "serial", "fingerprint"}
    assert data["hostname"] == shell.machine.identity.name
    assert data["serial"] == shell.machine.identity.serial


def test_json_flag_anywhere_or_as_a_setting(shell: Shell) -> None:
    """--json may come anywhere on the line, or be asked for by the caller."""
    a = shell.execute("--json version").stdout
    b = shell.execute("version", json_output=True).stdout
    assert one_line_json(a) == one_line_json(b)


def test_command_without_data_says_ok(shell: Shell) -> None:
    """A command that produces no data still prints a JSON document."""
    out = shell.execute("smtproutes new a.example --to mx.a.example --json")
    assert one_line_json(out.stdout)["staged"] == {"domain": "a.example",
                                                   "hops": ["mx.a.example"]}


@pytest.mark.parametrize(("line", "error", "code"), [
    ("frobnicate", "UsageError", 2),
    ("smtproutes new", "UsageError", 2),
    ("commit", "StateError", 1),
    ("smtproutes new bad..x --to mx", "ValidationError", 1),
    ("rollback NOPE-1", "NotFoundError", 1),
])
def test_errors_in_json_mode_have_one_shape(shell: Shell, line: str, error: str,
                                            code: int) -> None:
    """Errors print {"error", "message", "exit_code"} on stderr and nothing on stdout."""
    out = shell.execute(f"{line} --json")
    assert out.exit_code == code and out.stdout == ""
    data = one_line_json(out.stderr)
    assert set(data) == {"error", "message", "exit_code"}
    assert (data["error"], data["exit_code"]) == (error, code)
    assert data["message"]


def test_permission_error_in_json_mode(shell_as: Callable[[Any], Shell]) -> None:
    """A refused command in JSON mode is PermissionDenied with exit code 3."""
    from mxcluster.users.roles import Role

    out = shell_as(Role.GUEST).execute("showconfig --json")
    data = one_line_json(out.stderr)
    assert (data["error"], data["exit_code"], out.exit_code) == ("PermissionDenied", 3, 3)


def test_unparsable_line_in_json_mode(shell: Shell) -> None:
    """Unbalanced quotes with JSON output asked for give the JSON error shape."""
    out = shell.execute('smtproutes new "x', json_output=True)
    data = one_line_json(out.stderr)
    assert (data["error"], data["exit_code"], out.exit_code) == ("UsageError", 2, 2)


def test_internal_error_in_json_mode_keeps_the_shape(shell: Shell,
                                                     failpoint: Callable[[str], None]) -> None:
    """Even an unexpected failure is reported in the JSON error shape, exit code 1."""
    shell.execute("smtproutes new a.example --to mx.a.example")
    failpoint("commit.before_fsync=raise")
    out = shell.execute("commit --json")
    assert out.exit_code == 1 and out.stdout == ""
    data = one_line_json(out.stderr)
    assert data["exit_code"] == 1 and "internal error" in data["message"]


def test_secrets_never_appear_in_json_for_admin_either(shell: Shell) -> None:
    """Password hashes leave only through saveconfig, never through show commands."""
    for line in ("showconfig --json", "showconfig --effective --json", "userconfig print --json"):
        assert "$argon2" not in shell.execute(line).stdout, line
