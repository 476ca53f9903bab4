"""Clusters of real machines (processes on loopback, real SSH links): SPEC §4, §5."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.cluster import (
    commits,
    domains,
    entries,
    form,
    listing,
    machines,
    ok,
    one,
    password_file,
    states,
    wait_connected,
)
from tests.integration.conftest import MachineProc, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MachineProc]]:
    """Three machines in cluster ``prod``: mail1 created it, mail2 and mail3 joined."""
    ms = machines(tmp_path_factory.mktemp("trio"), 3)
    try:
        form(ms)
        yield ms
    finally:
        for m in ms:
            m.kill()


def test_create_and_joins_give_every_machine_the_same_membership(
        trio: list[MachineProc]) -> None:
    """After create + 2 joins every machine lists the same three connected machines."""
    views = [listing(m) for m in trio]
    for view in views:
        assert view["cluster"] == "prod" and view["addressing"] == "ip"
        assert [g["name"] for g in view["groups"]] == ["Main_Group"]
        assert {x["name"]: x["state"] for x in view["machines"]} == {
            m.hostname: "connected" for m in trio}
        assert {x["address"] for x in view["machines"]} == {m.address for m in trio}


@pytest.mark.parametrize("origin", [0, 1, 2])
def test_a_commit_on_any_machine_becomes_visible_on_all(
        trio: list[MachineProc], origin: int) -> None:
    """Any member accepts commits; each reaches every other member."""
    domain = f"from{origin}.example"
    cid = ok(trio[origin], f"smtproutes new {domain} --to 10.0.0.{origin + 1}",
             "commit")[-1]["committed"]
    for m in trio:
        wait_for(lambda m=m: domain in domains(m), 15, f"{domain} on {m.hostname}")
        assert cid in commits(m)


def test_clustermode_machine_runs_status_on_that_machine(trio: list[MachineProc]) -> None:
    """Machine-only commands in mode machine:M run on M, over the peer link."""
    a, b, _ = trio
    docs = ok(a, f"clustermode machine {b.hostname}", "status")
    assert docs[-1]["hostname"] == b.hostname
    assert one(a, "status")["hostname"] == a.hostname


def test_the_joiner_took_the_clusters_users(trio: list[MachineProc]) -> None:
    """A joiner's user database becomes the cluster's: a user added anywhere logs in
    everywhere."""
    a, _, c = trio
    pw = a.data_dir.parent / "op-password"
    pw.write_text("operator-password-1\n")
    ok(a, f"userconfig new oscar --role operator --password-file {pw}", "commit")
    wait_for(lambda: c.cli("status", user="oscar", password="operator-password-1"
                           ).returncode == 0, 15, "oscar to log in on mail3")


def test_an_unknown_machine_key_is_refused_and_logged(
        trio: list[MachineProc], tmp_path: Path) -> None:
    """A machine whose key is pinned nowhere cannot open a peer link."""
    import asyncio

    import asyncssh

    from mxcluster.errors import AuthError
    from mxcluster.peers.transport import PeerAddress, dial

    key = tmp_path / "stranger"
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    a = trio[0]
    with pytest.raises(AuthError, match="refused our machine key"):
        asyncio.run(dial(PeerAddress("X", a.address, a.ssh_port, None), key))
    wait_for(lambda: "refused unknown machine key" in a.log(), 5, "the refusal in the log")


def test_a_join_without_valid_credentials_or_prepjoin_is_refused(
        trio: list[MachineProc], tmp_path: Path) -> None:
    """Neither a wrong admin password nor an un-prepared --prepared join gets in."""
    (x,) = machines(tmp_path, 1, start=7)
    try:
        a = trio[0]
        bad = x.data_dir.parent / "wrong"
        bad.write_text("not-the-password\n")
        r = x.cli(f"clusterconfig join {a.address} --port {a.ssh_port} --password-file {bad} "
                  "--accept-fingerprint")
        assert r.returncode == 3, r.stderr
        r = x.cli(f"clusterconfig join {a.address} --port {a.ssh_port} --prepared "
                  "--accept-fingerprint")
        assert r.returncode == 3, r.stderr
        assert listing(x)["cluster"] is None
        assert x.hostname not in states(a)
    finally:
        x.kill()


def test_a_wrong_fingerprint_stops_the_join_before_the_password_is_sent(
        trio: list[MachineProc], tmp_path: Path) -> None:
    """The joiner checks the member's host key first; batch mode never guesses."""
    (x,) = machines(tmp_path, 1, start=8)
    try:
        a = trio[0]
        base = f"clusterconfig join {a.address} --port {a.ssh_port} " \
               f"--password-file {password_file(x)}"
        logins = a.log().count("login of 'admin'")
        r = x.cli(base + " --fingerprint SHA256:wrong")
        assert r.returncode == 3 and "SHA256:wrong" in r.stderr
        r = x.cli(base)
        assert r.returncode == 2 and "--fingerprint SHA256:" in r.stderr
        assert a.log().count("login of 'admin'") == logins  # no password was sent
    finally:
        x.kill()


def test_prepared_join_needs_no_password(tmp_path: Path) -> None:
    """prepjoin print on the joiner, prepjoin new on a member, join --prepared; the
    joiner takes the cluster's settings and keeps its machine-only ones."""
    a, b = machines(tmp_path, 2, start=11)
    try:
        one(a, "clusterconfig create prep")
        ok(a, "smtproutes new cluster.example --to 10.0.0.1", "commit")
        ok(b, "smtproutes new local.example --to 10.0.0.2", "sethostname mx.b.example",
           "commit")
        card = one(b, "clusterconfig prepjoin print")
        one(a, f"clusterconfig prepjoin new {card['name']} --serial {card['serial']} "
               f"--key '{card['key']}'")
        fp = one(a, "version")["fingerprint"]
        r = one(b, f"clusterconfig join {a.address} --port {a.ssh_port} --prepared "
                   f"--fingerprint {fp}")
        assert r["cluster"] == "prep" and r["complete"]
        wait_connected(a, 2)
        assert one(a, "clusterconfig prepjoin print")["prepared"] == []
        # clusterable settings replaced by the cluster's; machine-only ones kept
        assert domains(b) == {"cluster.example"}
        assert one(b, "status")["hostname"] == "mx.b.example"
    finally:
        for m in (a, b):
            m.kill()


def test_version_mismatch_refuses_the_join_and_the_link(tmp_path: Path) -> None:
    """A joiner of another version is refused; a member restarted on another version
    shows version-mismatch and receives no configuration."""
    a, b = machines(tmp_path, 2, start=13)
    (x,) = machines(tmp_path, 1, start=15, MXCLUSTER_VERSION="9.9.9")
    try:
        form([a, b])
        r = x.cli(f"clusterconfig join {a.address} --port {a.ssh_port} "
                  f"--password-file {password_file(x)} --accept-fingerprint")
        assert r.returncode == 1 and "version 9.9.9" in r.stderr
        b.stop()
        b.start(MXCLUSTER_VERSION="9.9.9")
        wait_for(lambda: states(a)[b.hostname] == "version-mismatch", 30, "version-mismatch")
        assert {x["name"]: x["version"] for x in listing(a)["machines"]}[b.hostname] == (
            "9.9.9")
        ok(a, "smtproutes new mismatch.example --to 10.0.0.9", "commit")
        assert "mismatch.example" not in domains(b)
        one(a, f"clusterconfig disconnect {b.hostname}")
        r = a.cli(f"clusterconfig reconnect {b.hostname}")
        assert r.returncode == 1 and "runs version 9.9.9" in r.stderr
    finally:
        for m in (a, b, x):
            m.kill()


def test_disconnect_edit_both_sides_reconnect_and_resolve(tmp_path: Path) -> None:
    """A disconnected machine keeps working and receives nothing, not even second-hand;
    on reconnect both sides merge and clustercheck shows and resolves the conflict."""
    a, b, c = machines(tmp_path, 3, start=16)
    try:
        form([a, b, c])
        one(a, f"clusterconfig disconnect {b.hostname}")
        for m in (a, b, c):
            wait_for(lambda m=m: states(m)[b.hostname] == "disconnected", 15, "disconnected")
        ok(c, "unsubscribe new third@example.com", "commit")
        ok(a, "smtproutes new shared.example --to 10.0.0.1", "commit")
        ok(b, "smtproutes new shared.example --to 10.0.0.2", "commit")
        wait_for(lambda: "third@example.com" in entries(a), 15, "c's commit on a")
        assert "third@example.com" not in entries(b)  # not even second-hand through a
        assert "shared.example" in domains(b)  # b keeps working, configured locally
        one(c, f"clusterconfig reconnect {b.hostname}")
        for m in (a, b, c):
            wait_connected(m, 3)
            wait_for(lambda m=m: "third@example.com" in entries(m), 15, "merge")
        report = one(a, "clustercheck")
        wait_for(lambda: one(b, "clustercheck")["conflicts"], 15, "the conflict on b")
        assert [(x["block"], x["level"]) for x in report["conflicts"]] == [
            ("smtproutes", "cluster")]
        chosen = ok(a, f"clustercheck --resolve smtproutes --level cluster --use {b.hostname}")
        assert chosen[0]["resolved"] == "smtproutes"
        for m in (a, b, c):
            wait_for(lambda m=m: not one(m, "clustercheck")["conflicts"], 15,
                     f"the conflict settled on {m.hostname}")
            hops = {r["domain"]: r["hops"] for r in one(m, "smtproutes print")["smtproutes"]}
            assert hops["shared.example"] == ["10.0.0.2"]
        assert one(a, "clustercheck")["differences"] == []
    finally:
        for m in (a, b, c):
            m.kill()


def test_a_frozen_peer_is_noticed_within_ten_seconds(tmp_path: Path) -> None:
    """Keepalives on both ends: a peer that stops answering shows link-down in 10 s,
    and the link comes back by itself when it answers again."""
    import signal
    import time

    a, b = machines(tmp_path, 2, start=41)
    try:
        form([a, b])
        assert b.proc is not None
        b.proc.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        wait_for(lambda: states(a)[b.hostname] == "link-down", 12, "link-down on mail41")
        assert time.monotonic() - frozen < 11
        b.proc.send_signal(signal.SIGCONT)
        wait_connected(a, 2, timeout=40)
        wait_connected(b, 2, timeout=40)
    finally:
        for m in (a, b):
            m.kill()


def test_interactive_join_asks_for_the_password_and_the_fingerprint(
        trio: list[MachineProc], tmp_path: Path) -> None:
    """In a terminal, join asks for the admin password, shows the member's host-key
    fingerprint and goes on only when the operator confirms it."""
    import os

    from tests.integration.conftest import BIN, PASSWORD
    from tests.sshd.terminal import PtyProcess, plain

    a = trio[0]
    fp = one(a, "version")["fingerprint"]
    (x,) = machines(tmp_path, 1, start=45)
    os.environ["MXCLUSTER_PASSWORD"] = PASSWORD
    try:
        child = PtyProcess([str(BIN / "mxcluster"), "cli", "--host", x.address, "--port",
                            str(x.ssh_port), "--user", "admin"])
        child.expect(f"{x.hostname}>")
        child.send(f"clusterconfig join {a.address} --port {a.ssh_port}\r")
        child.expect(f"Password of admin on {a.address}")
        child.send(PASSWORD + "\r")
        child.expect("Is that the member you meant?")
        assert fp[:24] in plain(child.output)  # the terminal wraps the rest
        child.send("n\r")
        child.expect("join cancelled")
        assert listing(x)["cluster"] is None
        child.output = ""  # expect() searches all output: start afresh
        child.send(f"clusterconfig join {a.address} --port {a.ssh_port}\r")
        child.expect(f"Password of admin on {a.address}")
        child.send(PASSWORD + "\r")
        child.expect("Is that the member you meant?")
        child.send("y\r")
        child.expect("Joined cluster prod", timeout=60)
        child.expect("(Cluster prod)>")
        child.send("exit\r")
        assert child.wait() == 0
        wait_for(lambda: states(a).get(x.hostname) == "connected", 30, "the joiner linked")
    finally:
        os.environ.pop("MXCLUSTER_PASSWORD", None)
        x.kill()
        if x.hostname in states(a):
            one(a, f"clusterconfig removemachine {x.hostname}")
