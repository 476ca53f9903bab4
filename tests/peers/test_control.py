"""Control requests over real SSH: prepared joins, remote commands, refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from tests.sshd.harness import Harness, harness  # noqa: F401  (fixture)

from mxcluster.daemon.control import ControlServer
from mxcluster.errors import AuthError, MxclusterError, PermissionDenied, UsageError
from mxcluster.membership.ops import prepjoin_new_ops
from mxcluster.peers import control
from mxcluster.peers.links import LinkManager
from mxcluster.peers.transport import PeerAddress
from mxcluster.replication.replicator import Replicator
from mxcluster.service import cluster


def key_pair(tmp: Path, name: str) -> tuple[Path, str, str]:
    """A machine key: (private key file, public key line, fingerprint)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp / name
    key.write_private_key(str(path))
    return path, key.export_public_key().decode().strip(), key.get_fingerprint("sha256")


@pytest.fixture
def member(harness: Harness) -> Iterator[Harness]:  # noqa: F811
    """The harness machine as the first member of a cluster, answering control requests."""
    m = harness.machine
    harness.call(lambda: cluster.create(m, "admin", "prod"))
    core = harness.call(lambda: Replicator(m.store, m.clock, serial=m.identity.serial,
                                           name=m.identity.name, version=m.version,
                                           wall_ms=lambda: int(time.time() * 1000)))
    links = LinkManager(core, harness.run_in_store, harness.host_key_path,
                        control_handler=ControlServer(m, harness.run_in_store))
    harness.service.peer_gate = links
    yield harness
    harness.call(core.close)


def ask(h: Harness, key: Path, payload: dict[str, Any]) -> Any:
    peer = PeerAddress("", "127.0.0.1", h.port, h.fingerprint)
    return h.run(control.request(peer, key, payload))


def candidate(name: str, serial: str, fingerprint: str) -> dict[str, Any]:
    return {"name": name, "serial": serial, "address": "127.0.0.9", "ssh_port": 2222,
            "fingerprint": fingerprint, "version": "0.1.0"}


def test_a_prepared_machine_is_admitted_with_its_key(member: Harness, tmp_path: Path) -> None:
    """prepjoin new on the member, then an admit request signed by that key."""
    key, line, fp = key_pair(tmp_path, "joiner")
    m = member.machine
    member.call(lambda: cluster.commit_ops(m, "admin", "prep", prepjoin_new_ops(
        m.membership(), "mail2.example.com", "SERIAL0002", line)))
    reply = ask(member, key, {"op": "admit",
                              "candidate": candidate("mail2.example.com", "SERIAL0002", fp)})
    assert reply["cluster"] == "prod"
    view = member.call(m.membership)
    assert [x.name for x in view.machines] == ["mail1.example.com", "mail2.example.com"]
    assert view.prepjoins == ()  # used up


def test_a_prepared_key_may_do_nothing_but_ask_to_join(
        member: Harness, tmp_path: Path) -> None:
    key, line, fp = key_pair(tmp_path, "joiner")
    m = member.machine
    member.call(lambda: cluster.commit_ops(
        m, "admin", "prep", prepjoin_new_ops(m.membership(), "mail2.example.com", "S2", line)))
    with pytest.raises(PermissionDenied):
        ask(member, key, {"op": "exec", "user": "admin", "role": "admin", "line": "status"})
    with pytest.raises(PermissionDenied, match="not pre-authorised"):
        ask(member, key, {"op": "admit", "candidate": candidate("other.example", "S2", fp)})
    with pytest.raises(MxclusterError, match="ssh_port"):
        ask(member, key, {"op": "admit", "candidate": {"name": "mail2.example.com"}})
    assert len(member.call(m.membership).machines) == 1


def test_a_member_runs_commands_here_with_its_users_role(
        member: Harness, tmp_path: Path) -> None:
    """exec runs one command line on this machine; the role is checked here again."""
    key, _, fp = key_pair(tmp_path, "peer")
    m = member.machine
    member.call(lambda: cluster.admit(m, "admin", cluster.candidate_from(
        candidate("mail2.example.com", "SERIAL0002", fp))))
    done = ask(member, key, {"op": "exec", "user": "viewer", "role": "readonly",
                             "line": "status --json"})
    assert done["exit_code"] == 0 and '"hostname":"mail1.example.com"' in done["stdout"]
    refused = ask(member, key, {"op": "exec", "user": "viewer", "role": "readonly",
                                "line": "suspenddel"})
    assert refused["exit_code"] == 3
    with pytest.raises(UsageError, match="unknown control request"):
        ask(member, key, {"op": "format-disk"})


def test_an_unknown_key_gets_no_control_channel(member: Harness, tmp_path: Path) -> None:
    key, _, _ = key_pair(tmp_path, "stranger")
    with pytest.raises(AuthError):
        ask(member, key, {"op": "digests"})
