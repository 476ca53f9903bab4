"""Block editors in batch form: staging, commit, conflicts, and the levels they act on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mxcluster.service.machine import Machine
from mxcluster.service.session import Session
from mxcluster.shell.core import Shell


def ok(shell: Shell, line: str) -> str:
    out = shell.execute(line)
    assert out.exit_code == 0, (line, out.stderr)
    return out.stdout


def effective(machine: Machine, block: str) -> Any:
    return machine.effective(block).value


# (batch lines, block, the check on its effective value after commit)
EDITS: list[tuple[list[str], str, Callable[[Any], bool]]] = [
    (["smtproutes new Example.COM --to mx1.example.com --to mx2.example.com:2525"],
     "smtproutes", lambda v: v == [{"domain": "example.com",
                                    "hops": ["mx1.example.com", "mx2.example.com:2525"]}]),
    (["smtproutes new ALL --to /dev/null", "smtproutes edit ALL --to relay.example.net"],
     "smtproutes", lambda v: v == [{"domain": "ALL", "hops": ["relay.example.net"]}]),
    (["smtproutes new a.example --to mx", "smtproutes delete a.example"],
     "smtproutes", lambda v: v == []),
    (["listenerconfig new In --type public --interface Management --port 2525 "
      "--rat example.com --rat .example.org --tls on"],
     "listeners", lambda v: v[0]["port"] == 2525 and v[0]["rat"] == ["example.com",
                                                                     ".example.org"]),
    (["listenerconfig new Out --type private --interface Management --relay-from 10.0.0.0/8",
      "listenerconfig edit Out --max-recipients 5 --relay-from 192.0.2.0/24"],
     "listeners", lambda v: v[0]["max_recipients"] == 5 and v[0]["relay_from"] == [
         "192.0.2.0/24"]),
    (["listenerconfig new Out --type private --interface Management",
      "listenerconfig delete Out"], "listeners", lambda v: v == []),
    (["interfaceconfig new Second --ip 2001:DB8::10 --hostname mx2.example.com"],
     "interfaces", lambda v: v[1] == {"name": "Second", "ip": "2001:db8::10",
                                      "hostname": "mx2.example.com"}),
    (["interfaceconfig edit Management --ip 192.0.2.99"],
     "interfaces", lambda v: v[0]["ip"] == "192.0.2.99"),
    (["sethostname MX.Example.com"], "hostname", lambda v: v == "mx.example.com"),
    (["destconfig default --max-connections 7",
      "destconfig new slow.example --max-messages-per-connection 2"],
     "destconfig", lambda v: v["default"]["max_connections"] == 7 and v["domains"] == [
         {"domain": "slow.example", "max_connections": 7, "max_messages_per_connection": 2}]),
    (["destconfig new slow.example", "destconfig edit slow.example --max-connections 1",
      "destconfig delete slow.example"], "destconfig", lambda v: v["domains"] == []),
    (["bounceconfig setup --retry-schedule 30,60 --max-queue-lifetime 3600 --no-bounce"],
     "bounceconfig", lambda v: v == {"retry_schedule": [30, 60], "max_queue_lifetime": 3600,
                                     "bounce_enabled": False}),
    (["updateconfig setup --source /srv/releases --trusted-key ed25519:abc"],
     "updateconfig", lambda v: v == {"source": "/srv/releases",
                                     "trusted_keys": ["ed25519:abc"]}),
]


@pytest.mark.parametrize(("lines", "block", "check"), EDITS,
                         ids=[" / ".join(e[0])[:50] for e in EDITS])
def test_editor_stages_then_commit_applies(shell: Shell, machine: Machine, lines: list[str],
                                           block: str, check: Callable[[Any], bool]) -> None:
    """Each editor's batch form stages a valid block; only commit makes it effective."""
    before = effective(machine, block)
    for line in lines:
        assert "staged" in ok(shell, line)
    assert effective(machine, block) == before
    ok(shell, "commit")
    assert check(effective(machine, block)), effective(machine, block)


def test_session_sees_its_staged_edit_and_others_do_not(
        machine: Machine, session_for: Callable[..., Session]) -> None:
    """print shows the session's own staged value; another session still sees the stored one."""
    mine, theirs = Shell(machine, session_for()), Shell(machine, session_for())
    ok(mine, "smtproutes new a.example --to mx.a.example")
    assert json.loads(ok(mine, "smtproutes print --json"))["smtproutes"] != []
    assert json.loads(ok(theirs, "smtproutes print --json"))["smtproutes"] == []
    assert "set smtproutes" in ok(mine, "changes")
    ok(mine, "commit")
    assert json.loads(ok(theirs, "smtproutes print --json"))["smtproutes"] != []


def test_clearchanges_drops_everything_staged(shell: Shell, state: Callable[[], Any]) -> None:
    """clearchanges reports how many edits it dropped and nothing is committed."""
    before = state()
    ok(shell, "smtproutes new a.example --to mx.a.example")
    ok(shell, "unsubscribe new bob@example.com")
    assert "Cleared 3" in ok(shell, "clearchanges")  # routes, unsubscribe block, its entries
    assert "No uncommitted changes" in ok(shell, "changes")
    assert shell.execute("commit").exit_code == 1
    assert state() == before


def test_second_commit_of_the_same_block_fails_until_forced(
        machine: Machine, session_for: Callable[..., Session]) -> None:
    """Batch commit of a block changed underneath exits 1 naming it; --force overwrites."""
    one, two = Shell(machine, session_for()), Shell(machine, session_for())
    ok(one, "smtproutes new a.example --to mx.a.example")
    ok(two, "smtproutes new b.example --to mx.b.example")
    ok(one, "commit")
    out = two.execute("commit")
    assert out.exit_code == 1
    assert "smtproutes" in out.stderr and "commit --force" in out.stderr
    assert [r["domain"] for r in effective(machine, "smtproutes")] == ["a.example"]
    ok(two, "commit --force")
    assert [r["domain"] for r in effective(machine, "smtproutes")] == ["b.example"]


class Answers:
    """A terminal that answers confirmations with the given value."""

    def __init__(self, confirm: bool) -> None:
        self.answer = confirm
        self.questions: list[str] = []

    def ask(self, question: str, default: str | None = None, secret: bool = False) -> str:
        raise AssertionError(f"unexpected question {question!r}")

    def confirm(self, question: str, default: bool = False) -> bool:
        self.questions.append(question)
        return self.answer


@pytest.mark.parametrize(("overwrite", "winner"), [(True, "b.example"), (False, "a.example")])
def test_interactive_commit_asks_to_overwrite_or_discard(
        machine: Machine, session_for: Callable[..., Session], overwrite: bool,
        winner: str) -> None:
    """On a terminal, a conflict asks: yes overwrites, no discards the session's edits."""
    one = Shell(machine, session_for())
    prompter = Answers(overwrite)
    two = Shell(machine, session_for(), prompter)
    ok(one, "smtproutes new a.example --to mx.a.example")
    ok(two, "smtproutes new b.example --to mx.b.example")
    ok(one, "commit")
    ok(two, "commit")
    assert prompter.questions and "smtproutes" in prompter.questions[0]
    assert [r["domain"] for r in effective(machine, "smtproutes")] == [winner]
    assert not two.session.dirty


def test_batch_editor_never_prompts(shell: Shell) -> None:
    """A missing value in batch mode is a usage error, not a question."""
    out = shell.execute("interfaceconfig new Second")
    assert out.exit_code == 2 and "--ip" in out.stderr and "never prompt" in out.stderr


def test_certificate_from_files(shell: Shell, machine: Machine,
                                data_file: Callable[[str, str], Path]) -> None:
    """certconfig new reads PEM files from the data directory."""
    cert = machine.effective("certificates").value[0]
    data_file("c.pem", cert["certificate"])
    data_file("k.pem", cert["key"])
    ok(shell, "certconfig new second --certificate-file c.pem --key-file k.pem")
    ok(shell, "commit")
    assert [c["name"] for c in effective(machine, "certificates")] == ["default", "second"]


def test_clusterset_on_a_standalone_machine_refuses_other_levels(shell: Shell,
                                                                  machine: Machine) -> None:
    """A standalone machine has no cluster level to copy to."""
    ok(shell, "smtproutes new a.example --to mx")
    ok(shell, "commit")
    out = shell.execute(f"clusterset copy smtproutes --from {machine.self_level} --to cluster")
    assert out.exit_code == 1 and "standalone" in out.stderr


class TestClustered:
    """Editing levels in a cluster (the machine is its only member; see ``clustered``)."""

    @pytest.fixture
    def cluster_shell(self, clustered: Machine, session_for: Callable[..., Session]) -> Shell:
        return Shell(clustered, session_for())

    def test_edit_of_an_inherited_block_is_refused_with_a_hint(
            self, cluster_shell: Shell, clustered: Machine, state: Callable[[], Any]) -> None:
        """In machine mode, a block defined at cluster level needs 'clusterset copy' first."""
        me = clustered.identity.name
        ok(cluster_shell, "smtproutes new a.example --to mx.a.example")
        ok(cluster_shell, "commit")
        ok(cluster_shell, f"clustermode machine {me}")
        before = state()
        out = cluster_shell.execute("smtproutes new b.example --to mx.b.example")
        assert out.exit_code == 1
        assert "inherits from cluster" in out.stderr and "clusterset copy smtproutes" in out.stderr
        assert state() == before and not cluster_shell.session.dirty
        ok(cluster_shell, f"clusterset copy smtproutes --from cluster --to machine:{me}")
        ok(cluster_shell, "smtproutes new b.example --to mx.b.example")
        ok(cluster_shell, "commit")
        res = clustered.effective("smtproutes")
        assert str(res.source) == f"machine:{me}" and len(res.value) == 2

    def test_clusterset_move_and_delete(self, cluster_shell: Shell, clustered: Machine) -> None:
        """move takes a block down a level; delete makes the level inherit again."""
        me = clustered.identity.name
        ok(cluster_shell, "unsubscribe new bob@example.com")
        ok(cluster_shell, "commit")
        ok(cluster_shell, f"clusterset move unsubscribe --from cluster --to machine:{me}")
        ok(cluster_shell, "commit")
        assert str(clustered.effective("unsubscribe").source) == f"machine:{me}"
        assert clustered.unsubscribed("bob@example.com") == "bob@example.com"
        assert clustered.stored(clustered.effective("unsubscribe").source, "unsubscribe")
        ok(cluster_shell, f"clusterset delete unsubscribe --at machine:{me}")
        ok(cluster_shell, "commit")
        assert clustered.effective("unsubscribe").source is None
        assert clustered.unsubscribed("bob@example.com") is None

    def test_machine_only_block_ignores_cluster_mode(self, cluster_shell: Shell,
                                                     clustered: Machine) -> None:
        """interfaceconfig in cluster mode edits the login machine's own interfaces."""
        ok(cluster_shell, "interfaceconfig new Second --ip 192.0.2.20")
        ok(cluster_shell, "commit")
        assert len(clustered.effective("interfaces").value) == 2

    def test_prompt_shows_host_and_mode(self, cluster_shell: Shell, clustered: Machine) -> None:
        """The prompt names the machine and the cluster or the current mode."""
        me = clustered.identity.name
        assert cluster_shell.prompt() == f"{me} (Cluster prod)> "
        ok(cluster_shell, f"clustermode machine {me}")
        assert cluster_shell.prompt() == f"{me} (machine:{me})> "


def test_standalone_prompt_is_the_host_name(shell: Shell, machine: Machine) -> None:
    """A standalone machine's prompt is just its host name."""
    assert shell.prompt() == f"{machine.identity.name}> "
