"""``clusterconfig`` and ``clustercheck`` on one machine (no peers): the shell surface."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mxcluster.service.machine import Machine
from mxcluster.shell.core import Shell


def run(shell: Shell, line: str, code: int = 0) -> Any:
    out = shell.execute(line, json_output=True)
    assert out.exit_code == code, (line, out.stderr)
    return json.loads(out.stdout if code == 0 else out.stderr)


@pytest.fixture
def created(shell: Shell) -> Shell:
    run(shell, "clusterconfig create prod")
    return shell


def test_standalone_list_shows_no_cluster(shell: Shell) -> None:
    """On a standalone machine list works and shows "cluster": null."""
    assert run(shell, "clusterconfig list") == {"cluster": None, "addressing": None,
                                                "groups": [], "machines": []}


@pytest.mark.parametrize("line", ["clusterconfig addgroup g", "clusterconfig connstatus",
                                  "clusterconfig disconnect x", "clustercheck",
                                  "clustermode cluster"])
def test_cluster_only_commands_are_refused_on_a_standalone_machine(
        shell: Shell, line: str) -> None:
    """Standalone: only create, join, prepjoin print and list are available."""
    err = run(shell, line, 1)
    assert "not in a cluster" in err["message"]


def test_create_makes_a_one_machine_cluster_in_cluster_mode(
        machine: Machine, shell: Shell) -> None:
    """create: the machine becomes the first member, in Main_Group, mode cluster."""
    run(shell, "smtproutes new example.com --to 10.0.0.1")
    run(shell, "commit")
    run(shell, "clusterconfig create prod")
    doc = run(shell, "clusterconfig list")
    assert doc["cluster"] == "prod" and doc["addressing"] == "ip"
    assert doc["groups"] == [{"name": "Main_Group", "machines": [machine.identity.name]}]
    [me] = doc["machines"]
    assert (me["name"], me["state"], me["group"]) == (machine.identity.name, "connected",
                                                     "Main_Group")
    assert set(me) == {"name", "serial", "group", "address", "ssh_port", "version", "state"}
    assert str(shell.session.mode) == "cluster"
    assert str(machine.effective("smtproutes").source) == "cluster"
    assert "(Cluster prod)" in shell.prompt()
    assert "already in cluster prod" in run(shell, "clusterconfig create again", 1)["message"]


def test_groups_can_be_added_renamed_and_deleted(machine: Machine, created: Shell) -> None:
    """Group housekeeping: settings follow a renamed group; deletion needs --to."""
    me = machine.identity.name
    run(created, "clusterconfig addgroup edge")
    run(created, f"clusterconfig setgroup {me} edge")
    run(created, "clustermode group edge")
    run(created, "smtproutes new edge.example --to 10.0.0.2")
    run(created, "commit")
    run(created, "clustermode cluster")
    run(created, "clusterconfig renamegroup edge border")
    assert machine.group_of(me) == "border"
    assert str(machine.effective("smtproutes").source) == "group:border"
    err = run(created, "clusterconfig deletegroup border", 1)
    assert "still has machines" in err["message"]
    run(created, "clusterconfig deletegroup border --to Main_Group")
    assert machine.groups() == ["Main_Group"]
    assert str(machine.effective("smtproutes").source) != "group:border"
    assert "last group" in run(created, "clusterconfig deletegroup Main_Group", 1)["message"]


@pytest.mark.parametrize(("line", "message"), [
    ("clusterconfig addgroup 'bad name'", "bad group name"),
    ("clusterconfig setgroup nosuch.example Main_Group", "no machine"),
    ("clusterconfig communication {me} --address mail.example.com", "not an IP address"),
    ("clusterconfig reconnect {me}", "not disconnected"),
    ("clusterconfig prepjoin new other.example --serial S --key nonsense", "not an SSH"),
    ("clusterconfig prepjoin delete other.example", "no prepared join"),
    ("clustercheck --resolve smtproutes", "needs --level"),
    ("clustercheck --keep", "go with --resolve"),
])
def test_bad_requests_get_a_clear_error_and_change_nothing(
        machine: Machine, created: Shell, line: str, message: str) -> None:
    """Every refusal names the problem; the commit log does not move."""
    before = machine.store.version_vector()
    out = created.execute(line.format(me=machine.identity.name), json_output=True)
    assert out.exit_code in (1, 2) and message in out.stderr
    assert machine.store.version_vector() == before


def test_disconnect_and_reconnect_change_the_state_without_a_commit_command(
        machine: Machine, created: Shell) -> None:
    """disconnect/reconnect are committed at once and shown by list."""
    me = machine.identity.name
    run(created, f"clusterconfig disconnect {me}")
    assert run(created, "clusterconfig list")["machines"][0]["state"] == "disconnected"
    assert not created.session.dirty
    run(created, f"clusterconfig reconnect {me}")
    assert run(created, "clusterconfig list")["machines"][0]["state"] == "connected"


def test_removing_the_last_machine_flattens_it(machine: Machine, created: Shell) -> None:
    """The cluster dissolves; the machine keeps what it used, at its own level."""
    run(created, "smtproutes new example.com --to 10.0.0.1")
    run(created, "unsubscribe new gone@example.com")
    run(created, "commit")
    before = {k: v.value for k, v in machine.effective_all().items()}
    run(created, f"clusterconfig removemachine {machine.identity.name}")
    from mxcluster.replication.replicator import Replicator

    core = Replicator(machine.store, machine.clock, serial=machine.identity.serial,
                      name=machine.identity.name, version=machine.version,
                      wall_ms=lambda: 0)
    core.start()  # the daemon's replication core flattens a removed machine
    core.close()
    assert machine.standalone
    assert {k: v.value for k, v in machine.effective_all().items()} == before
    assert machine.unsubscribed("gone@example.com") == "gone@example.com"
    assert run(created, "clusterconfig list")["cluster"] is None


def test_prepjoin_print_shows_what_a_member_needs(machine: Machine, shell: Shell) -> None:
    """The joiner's name, serial and host public key, ready for 'prepjoin new'."""
    card = run(shell, "clusterconfig prepjoin print")
    assert (card["name"], card["serial"]) == (machine.identity.name, machine.identity.serial)
    assert card["key"].startswith("ssh-")


def test_prepjoin_new_records_the_key_until_deleted(created: Shell) -> None:
    card = run(created, "clusterconfig prepjoin print")
    run(created, f"clusterconfig prepjoin new other.example --serial ABC --key '{card['key']}'")
    assert run(created, "clusterconfig prepjoin print")["prepared"] == [
        {"name": "other.example", "serial": "ABC"}]
    run(created, "clusterconfig prepjoin delete other.example")
    assert run(created, "clusterconfig prepjoin print")["prepared"] == []


def test_join_and_remote_commands_need_the_running_daemon(
        machine: Machine, shell: Shell) -> None:
    """Without the daemon's links the network commands fail clearly."""
    err = run(shell, "clusterconfig join 127.0.0.1 --password-file pw --accept-fingerprint", 1)
    assert "running daemon" in err["message"]


def test_clustercheck_alone_reports_nothing_to_do(created: Shell) -> None:
    import asyncio

    out = created.execute("clustercheck", json_output=True)
    assert out.then is not None
    done = asyncio.run(out.then())
    doc = json.loads(done.stdout)
    assert doc["conflicts"] == [] and doc["differences"] == []


def test_help_reaches_nested_sub_commands(shell: Shell) -> None:
    """'--help' and 'help' work three levels deep (clusterconfig prepjoin new)."""
    out = shell.execute("clusterconfig prepjoin new --help")
    assert out.exit_code == 0 and "--serial" in out.stdout
    assert "--serial" in shell.execute("help clusterconfig prepjoin new").stdout
