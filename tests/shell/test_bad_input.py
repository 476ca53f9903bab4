"""Bad command lines get a clear message, the documented exit code, and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mxcluster.shell.core import Shell

# (command line, exit code, words the message must contain)
BAD_LINES = [
    ("frobnicate", 2, ["unknown command 'frobnicate'", "help"]),
    ("smtproute print", 2, ["unknown command 'smtproute'"]),
    ("smtproutes new", 2, ["Missing argument 'DOMAIN'", "help smtproutes"]),
    ("smtproutes frob", 2, ["No such command 'frob'"]),
    ("smtproutes new example.com --to", 2, ["--to", "requires an argument"]),
    ("smtproutes new example.com --bogus x", 2, ["No such option", "'--bogus'"]),
    ("commitlog --limit many", 2, ["--limit", "'many'"]),
    ("commitlog --limit 0", 2, ["--limit"]),
    ("listenerconfig new in --type sideways", 2, ["--type", "sideways"]),
    ("bounceconfig setup --retry-schedule 60,soon", 2, ["--retry-schedule", "60,soon"]),
    ("unsubscribe new not-an-entry", 2, ["not-an-entry", "user@domain"]),
    ("unsubscribe setup", 2, ["--enable"]),
    ("rollback not-an-id", 2, ["bad commit id 'not-an-id'", "commitlog"]),
    ("showconfig --level planet:x", 2, ["bad level 'planet:x'"]),
    ("clusterset delete smtproutes", 2, ["--at"]),
    ("clustermode planet", 2, ["planet"]),
    ('smtproutes new "example.com --to mx.example.com', 2, ["cannot parse command line",
                                                            "quotation"]),
    ("unsubscribe new 'bob@example.com", 2, ["cannot parse command line"]),
    ("smtproutes new bad..domain --to mx.example.com", 1, ["bad..domain", "smtproutes.0.domain"]),
    ("smtproutes new example.com --to mx.example.com:99999", 1, ["port", "1-65535"]),
    ("smtproutes delete nowhere.example", 1, ["no route 'nowhere.example'"]),
    ("interfaceconfig new Second --ip 999.1.1.1", 1, ["999.1.1.1", "IPv4 or IPv6"]),
    ("listenerconfig edit ghost --port 26", 1, ["no listener 'ghost'"]),
    ("unsubscribe delete ghost@example.com", 1, ["not in the unsubscribe table"]),
    ("unsubscribe import missing.txt", 1, ["no such file"]),
    ("loadconfig missing.yaml", 1, ["cannot read"]),
    ("commit", 1, ["no uncommitted changes"]),
    ("rollback NOPE-7", 1, ["no commit NOPE-7", "commitlog"]),
    ("clusterset copy smtproutes --from cluster --to machine:x", 1, ["not defined at cluster"]),
    ("clusterset copy bounceconfig --from machine:mail1.example.com --to cluster", 1,
     ["bounceconfig is not defined"]),
    ("clustermode cluster", 1, ["not in a cluster", "clusterconfig create"]),
    ("userconfig delete admin", 1, ["cannot delete the user you are logged in as"]),
]


@pytest.mark.parametrize(("line", "code", "words"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_line_is_refused_clearly_and_changes_nothing(
        shell: Shell, state: Callable[[], Any], line: str, code: int, words: list[str]) -> None:
    """Each bad line: exit code, 'error:' message naming the problem on stderr, no change."""
    before = state()
    out = shell.execute(line)
    assert out.exit_code == code, (out.stdout, out.stderr)
    assert out.stdout == ""
    assert out.stderr.startswith("error: ") and out.stderr.endswith("\n")
    for word in words:
        assert word in out.stderr
    assert state() == before
    assert not shell.session.dirty


def test_bad_line_keeps_earlier_staged_edits(shell: Shell) -> None:
    """A failing command does not disturb what the session staged before it."""
    assert shell.execute("smtproutes new a.example --to mx.a.example").exit_code == 0
    staged = shell.execute("changes").stdout
    assert shell.execute("smtproutes new a.example --to mx.b.example").exit_code == 2
    assert shell.execute("smtproutes new bad..example --to mx").exit_code == 1
    assert shell.execute("changes").stdout == staged


@pytest.mark.parametrize("line", ["", "   ", "\t"])
def test_empty_line_does_nothing(shell: Shell, line: str) -> None:
    """An empty command line succeeds silently."""
    out = shell.execute(line)
    assert (out.exit_code, out.stdout, out.stderr) == (0, "", "")


@pytest.mark.parametrize(("line", "expected"), [
    ("smtproutes --help", "Usage: smtproutes"),
    ("smtproutes new --help", "Usage: smtproutes new"),
    ("help smtproutes new", "Usage: smtproutes new"),
])
def test_help_goes_to_the_session_output(shell: Shell, line: str, expected: str) -> None:
    """Help for a command is written to the session's stdout (not the daemon's)."""
    out = shell.execute(line)
    assert out.exit_code == 0
    assert expected in out.stdout


def test_help_for_unknown_command_is_a_usage_error(shell: Shell) -> None:
    """help NAME for a command that does not exist exits 2."""
    out = shell.execute("help frobnicate")
    assert out.exit_code == 2 and "unknown command 'frobnicate'" in out.stderr


def test_argument_with_quotes_and_spaces_is_one_argument(shell: Shell) -> None:
    """Quoted arguments keep their spaces (the commit comment is one word)."""
    shell.execute("smtproutes new a.example --to mx.a.example")
    assert shell.execute('commit "first route, with spaces"').exit_code == 0
    assert shell.machine.store.commitlog(1)[0].comment == "first route, with spaces"
