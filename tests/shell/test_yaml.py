"""saveconfig / loadconfig: deterministic YAML, validated, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mxcluster.service.machine import Machine
from mxcluster.shell.core import Shell
from mxcluster.unsubscribe import normalise
from mxcluster.users.roles import Role

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?\Z")
DOMAIN = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
HOP = st.one_of(
    DOMAIN,
    st.builds("{}:{}".format, DOMAIN, st.integers(1, 65535)),
    st.ip_addresses(v=4).map(str),
    st.builds("[{}]:{}".format, st.ip_addresses(v=6).map(str), st.integers(1, 65535)),
)
ROUTE = st.one_of(
    st.fixed_dictionaries({"domain": st.one_of(DOMAIN, DOMAIN.map("." .__add__), st.just("ALL")),
                           "hops": st.lists(HOP, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"domain": DOMAIN, "hops": st.just(["/dev/null"])}),
)
ROUTES = st.lists(ROUTE, max_size=5, unique_by=lambda r: r["domain"])
LOCAL = st.from_regex(r"\A[a-z0-9._+-]{1,10}\Z")
ENTRY = st.one_of(
    st.builds("{}@{}".format, LOCAL, DOMAIN),
    st.builds("{}@".format, LOCAL),
    st.builds("@{}".format, DOMAIN),
    st.builds("@.{}".format, DOMAIN),
    st.ip_addresses().map(str),
)


def run(shell: Shell, *lines: str) -> None:
    for line in lines:
        out = shell.execute(line)
        assert out.exit_code == 0, (line, out.stderr)


def stage(machine: Machine, shell: Shell, routes: list[Any], entries: list[str],
          enabled: bool) -> None:
    """Replace the routes and the unsubscribe table, then commit."""
    machine.stage_set(shell.session, "smtproutes", routes)
    run(shell, "unsubscribe clear", *[f"unsubscribe new -- '{e}'" for e in entries],
        f"unsubscribe setup --{'enable' if enabled else 'disable'}", "commit")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(routes=ROUTES, entries=st.lists(ENTRY, max_size=8), enabled=st.booleans())
def test_save_load_save_is_byte_identical(shell: Shell, machine: Machine, data_dir: Path,
                                          routes: list[Any], entries: list[str],
                                          enabled: bool) -> None:
    """Loading a saved file (after other changes) restores it: saving again gives same bytes."""
    stage(machine, shell, routes, entries, enabled)
    run(shell, "saveconfig first.yaml")
    stage(machine, shell, [{"domain": "other.example", "hops": ["mx.other.example"]}],
          ["someone@else.example"], not enabled)
    run(shell, "loadconfig first.yaml", "commit", "saveconfig second.yaml")
    first = (data_dir / "first.yaml").read_bytes()
    assert (data_dir / "second.yaml").read_bytes() == first
    expected = sorted({normalise(e) for e in entries})
    assert list(machine.store.unsub_iter(str(machine.self_level))) == expected
    assert len(machine.effective("smtproutes").value) == len(routes)


def test_strings_that_look_like_other_yaml_types_survive(shell: Shell, machine: Machine,
                                                         data_dir: Path) -> None:
    """Domains and hops such as 'yes', 'null', '1.5' or '0x1f' come back as the same strings."""
    routes = [{"domain": d, "hops": [h]} for d, h in
              [("yes", "null"), ("on", "1.5"), ("true", "0x1f"), ("1", "no:25")]]
    machine.stage_set(shell.session, "smtproutes", routes)
    run(shell, "commit", "saveconfig a.yaml")
    machine.stage_set(shell.session, "smtproutes", [])
    run(shell, "commit", "loadconfig a.yaml", "commit", "saveconfig b.yaml")
    assert machine.effective("smtproutes").value == routes
    assert (data_dir / "a.yaml").read_bytes() == (data_dir / "b.yaml").read_bytes()


def test_saveconfig_is_deterministic(shell: Shell, data_dir: Path) -> None:
    """Saving twice without changes writes the same bytes: sorted, no timestamps."""
    run(shell, "unsubscribe new zed@example.com", "unsubscribe new amy@example.com", "commit",
        "saveconfig a.yaml", "saveconfig b.yaml")
    text = (data_dir / "a.yaml").read_text()
    assert text == (data_dir / "b.yaml").read_text()
    assert text.index('"amy@example.com"') < text.index('"zed@example.com"')


def test_saveconfig_includes_secrets_and_entries_for_admin(shell: Shell, data_dir: Path) -> None:
    """The saved file is complete: keys, password hashes and every unsubscribe entry."""
    run(shell, "unsubscribe new bob@example.com", "commit", "saveconfig full.yaml")
    text = (data_dir / "full.yaml").read_text()
    assert "PRIVATE KEY" in text and "$argon2id$" in text and '"bob@example.com"' in text


def test_showconfig_counts_entries_and_hides_hashes(shell: Shell) -> None:
    """showconfig summarises the unsubscribe table as a count and never shows hashes."""
    run(shell, "unsubscribe new bob@example.com", "commit")
    text = shell.execute("showconfig").stdout
    assert "entry_count: 1" in text and "bob@example.com" not in text
    assert "$argon2" not in text


@pytest.mark.parametrize("role", [Role.READONLY, Role.GUEST])
def test_secrets_hidden_from_readonly(shell_as: Callable[[Role], Shell], role: Role) -> None:
    """Private keys never reach readonly users; guests cannot show configuration at all."""
    out = shell_as(role).execute("showconfig --effective")
    if role is Role.GUEST:
        assert out.exit_code == 3
        return
    assert "PRIVATE KEY" not in out.stdout and "<hidden>" in out.stdout
    assert "PRIVATE KEY" not in shell_as(role).execute("certconfig print --json").stdout


def load_fails(shell: Shell, state: Callable[[], Any], data_file: Callable[[str, str], Path],
               text: str) -> str:
    """loadconfig of TEXT fails with exit 1, staging and changing nothing; returns stderr."""
    data_file("bad.yaml", text)
    before, staged = state(), shell.execute("changes").stdout
    out = shell.execute("loadconfig bad.yaml")
    assert out.exit_code == 1, out
    assert state() == before and shell.execute("changes").stdout == staged
    return out.stderr


def test_yaml_syntax_error_names_the_line(shell: Shell, state: Callable[[], Any],
                                          data_file: Callable[[str, str], Path]) -> None:
    """A YAML syntax error is reported with its line and column."""
    err = load_fails(shell, state, data_file, "machines:\n  x: [1, 2\n  y: }\n")
    assert "YAML syntax error at line" in err


def test_every_problem_is_listed_and_nothing_staged(shell: Shell, machine: Machine,
                                                    state: Callable[[], Any],
                                                    data_file: Callable[[str, str], Path]) -> None:
    """Unknown blocks, bad values and bad entries are all reported in one error."""
    run(shell, "smtproutes new kept.example --to mx.kept.example")  # staged before
    me = machine.identity.name
    err = load_fails(shell, state, data_file, f"""\
machines:
  "{me}":
    frobnicate: 1
    smtproutes:
    - domain: bad..domain
      hops: []
    bounceconfig:
      max_queue_lifetime: -5
    unsubscribe:
      enabled: true
      entries: ["ok@example.com", "not an entry"]
""")
    for problem in ("unknown block 'frobnicate'", "smtproutes.0.domain", "smtproutes.0.hops",
                    "bounceconfig.max_queue_lifetime", "unsubscribe.entries.1",
                    "nothing was changed"):
        assert problem in err
    assert shell.session.dirty  # the earlier edit is still staged, nothing else


@pytest.mark.parametrize(("text", "problem"), [
    ("- just\n- a list\n", "must be a mapping"),
    ("planets:\n  earth: {}\n", "unknown section 'planets'"),
    ("cluster:\n  smtproutes: []\n", "cluster: no such level on this machine (it is standalone)"),
    ('machines:\n  "other.example.com":\n    smtproutes: []\n', "no such level"),
    ('machines:\n  "mail1.example.com": [1]\n', "must be a mapping of block names"),
    ('machines:\n  "mail1.example.com":\n    unsubscribe: {entries: 5}\n', "must be a list"),
])
def test_malformed_documents_are_refused(shell: Shell, state: Callable[[], Any],
                                         data_file: Callable[[str, str], Path], text: str,
                                         problem: str) -> None:
    """Documents of the wrong shape are refused with the problem named."""
    assert problem in load_fails(shell, state, data_file, text)


def test_loadconfig_replaces_the_level_but_keeps_machine_identity(
        shell: Shell, machine: Machine, data_file: Callable[[str, str], Path]) -> None:
    """Blocks absent from the file are deleted, except users, interfaces and hostname."""
    run(shell, "smtproutes new a.example --to mx.a.example", "commit")
    me = machine.identity.name
    data_file("only.yaml", f'machines:\n  "{me}":\n    bounceconfig: {{bounce_enabled: false}}\n')
    run(shell, "loadconfig only.yaml", "commit")
    assert machine.effective("smtproutes").source is None
    assert machine.effective("bounceconfig").value["bounce_enabled"] is False
    assert machine.user("admin") is not None
    assert machine.effective("interfaces").value[0]["name"] == "Management"


def test_loaded_file_is_staged_not_committed(shell: Shell, machine: Machine,
                                             session_for: Callable[..., Any],
                                             data_file: Callable[[str, str], Path]) -> None:
    """loadconfig stages; clearchanges drops it all."""
    me = machine.identity.name
    data_file("r.yaml", f'machines:\n  "{me}":\n    smtproutes:\n'
                        f'    - {{domain: a.example, hops: [mx.a.example]}}\n')
    run(shell, "loadconfig r.yaml")
    assert machine.effective("smtproutes").value == []
    run(shell, "clearchanges")
    assert shell.execute("commit").exit_code == 1
