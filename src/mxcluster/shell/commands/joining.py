"""``clusterconfig create``, ``join``, ``prepjoin`` (SPEC §4).

A join has three steps:

1. the joiner checks the member's host key (``--fingerprint``, ``--accept-fingerprint``
   or a question on the terminal) before it sends anything;
2. it asks the member to admit it: logged in as an administrator of the cluster (the
   member runs the hidden ``clusterconfig admit``), or, after ``prepjoin``, with its
   own machine key over a control request;
3. admitted, it drops its clusterable settings, links to the member and receives the
   cluster's whole configuration by replication; the command returns once it has.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from pathlib import Path
from typing import Any

import click

from mxcluster.errors import MxclusterError, NotFoundError, StateError, UsageError
from mxcluster.membership.model import Addressing
from mxcluster.peers import control
from mxcluster.peers.transport import PeerAddress
from mxcluster.provision.setup import HOST_KEY_FILE
from mxcluster.service import cluster
from mxcluster.service.machine import Machine
from mxcluster.shell.commands.cluster import clusterconfig
from mxcluster.shell.commands.unsub import data_path
from mxcluster.shell.core import Ctx, Prompter, Result, needs
from mxcluster.users.roles import Permission

#: how long ``join`` waits for the cluster's configuration to arrive
JOIN_WAIT = 600.0
#: ... and how long without any new changeset (a large one takes a while to apply)
JOIN_STALL = 120.0


@clusterconfig.command("create")
@click.argument("name")
@click.option("--addressing", type=click.Choice([a.value for a in Addressing]),
              default="ip", show_default=True, help="How peers reach each other.")
@click.option("--address", help="How peers reach this machine (default: the setup "
              "address, or the host name with --addressing hostname).")
@click.pass_obj
def create(ctx: Ctx, name: str, addressing: str, address: str | None) -> Result:
    """Make this standalone machine the first member of cluster NAME."""
    cid = cluster.create(ctx.machine, ctx.session.user, name, Addressing(addressing), address)
    ctx.session.mode = ctx.machine.default_mode()
    return Result({"cluster": name, "committed": str(cid)},
                  f"Cluster {name} created; this machine's settings are now its "
                  f"cluster-level settings ({cid}).")


@clusterconfig.command("admit", hidden=True)
@click.argument("candidate")
@click.option("--group")
@click.pass_obj
def admit(ctx: Ctx, candidate: str, group: str | None) -> Result:
    """(Run by 'join' on the member it contacts.) Admit the machine CANDIDATE describes."""
    try:
        data = json.loads(candidate)
    except ValueError:
        raise UsageError("the candidate must be a JSON object") from None
    reply = cluster.admit(ctx.machine, ctx.session.user, cluster.candidate_from(data), group)
    reply["vv"] = ctx.machine.store.version_vector()
    return Result(reply, f"Admitted {data.get('name')}.")


@clusterconfig.command("join")
@click.argument("host")
@click.option("--port", type=click.IntRange(1, 65535), default=2222, show_default=True,
              help="The member's SSH port.")
@click.option("--user", default="admin", show_default=True,
              help="An admin of the cluster (not with --prepared).")
@click.option("--password-file", help="File whose first line is that admin's password.")
@click.option("--fingerprint", help="The member's host-key fingerprint (SHA256:...).")
@click.option("--accept-fingerprint", is_flag=True,
              help="Trust the member's host key on first use.")
@click.option("--group", help="Group to join (default: the first group).")
@click.option("--prepared", is_flag=True,
              help="Join with this machine's key, pre-authorised by 'prepjoin new'.")
@click.option("--address", help="How peers reach this machine (default: setup address).")
@click.pass_obj
def join(ctx: Ctx, host: str, port: int, user: str, password_file: str | None,
         fingerprint: str | None, accept_fingerprint: bool, group: str | None,
         prepared: bool, address: str | None) -> Result:
    """Join the cluster that HOST is a member of; this machine takes its settings."""
    m = ctx.machine
    cluster.check_can_join(m)
    links, run = m.runtime.get("links"), m.runtime.get("run_in_store")
    if links is None or run is None:
        raise StateError("joining needs the running daemon ('mxcluster serve')")
    if prepared and group:
        raise UsageError("--group cannot be used with --prepared",
                         hint="the member places a prepared machine; use 'setgroup' later")
    password = None if prepared else _password(ctx, password_file, user, host)
    me = cluster.candidate(m, address)
    author, prompter, session = ctx.session.user, ctx.prompter, ctx.session

    async def work() -> Result:
        pinned = await _host_key(host, port, fingerprint, accept_fingerprint, prompter)
        request = {k: getattr(me, k) for k in ("name", "serial", "address", "ssh_port",
                                               "fingerprint", "version")}
        if prepared:
            reply = await control.request(PeerAddress("", host, port, pinned),
                                          m.identity.data_dir / HOST_KEY_FILE,
                                          {"op": "admit", "candidate": request})
        else:
            assert password is not None
            reply = await _admit_with_password(host, port, user, password, pinned, request,
                                               group)
        result = await _finish(m, run, links, author, host, port, pinned, reply)
        session.mode = await run(m.default_mode)  # a member's sessions are in cluster mode
        return result

    return Result(then=work)


def _password(ctx: Ctx, password_file: str | None, user: str, host: str) -> str:
    if password_file:
        try:
            lines = data_path(ctx, password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            path = data_path(ctx, password_file)
            raise NotFoundError(f"cannot read {path}: {exc.strerror}",
                                hint="a relative path is taken from this machine's data "
                                "directory") from None
        if not lines or not lines[0]:
            raise UsageError(f"{password_file} is empty")
        return lines[0]
    return ctx.ask("--password-file", f"Password of {user} on {host}", secret=True)


async def _host_key(host: str, port: int, given: str | None, accept: bool,
                    prompter: Prompter | None) -> str:
    """The member's host-key fingerprint, as the operator confirmed it."""
    seen = await control.probe_fingerprint(host, port)
    if given is not None:
        if seen != given:
            raise control.HostKeyMismatch(host, port, seen, given)
        return seen
    if accept:
        return seen
    if prompter is None:
        raise UsageError(
            f"the host key of {host}:{port} has fingerprint {seen}",
            hint=f"check it on that machine ('version'), then give --fingerprint {seen} "
            "(or --accept-fingerprint)")
    question = f"{host}:{port} has host-key fingerprint {seen}. Is that the member you meant?"
    if not await asyncio.to_thread(prompter.confirm, question):
        raise StateError("join cancelled: the host key was not confirmed")
    return seen


async def _admit_with_password(host: str, port: int, user: str, password: str, pinned: str,
                               request: dict[str, Any], group: str | None) -> Any:
    command = f"clusterconfig admit {shlex.quote(json.dumps(request))} --json"
    if group:
        command += f" --group {shlex.quote(group)}"
    _, done = await control.admin_exec(host, port, user, password, command,
                                       fingerprint=pinned)
    return control.json_result(done)


async def _finish(m: Machine, run: Any, links: Any, author: str, host: str, port: int,
                  pinned: str, reply: Any) -> Result:
    """Admitted: drop local settings, link up, wait until the cluster's data is here."""
    if not isinstance(reply, dict) or not isinstance(reply.get("member"), dict):
        raise MxclusterError("the member answered the join request unexpectedly")
    name, member = str(reply.get("cluster")), reply["member"]
    await run(lambda: cluster.join_local(m, author, name))
    links.join_via(PeerAddress(str(member.get("serial")), host, port, pinned))
    want = {str(k): int(v) for k, v in dict(reply.get("vv") or {}).items()}
    done = await _wait_caught_up(m, run, want)
    data = {"cluster": name, "joined_through": member.get("name"), "complete": done}
    text = f"Joined cluster {name} through {member.get('name')}."
    if not done:
        text += (" The cluster's configuration is still arriving; 'clusterconfig "
                 "connstatus' shows the progress.")
    return Result(data, text)


async def _wait_caught_up(m: Machine, run: Any, want: dict[str, int]) -> bool:
    """True once everything the member had is here; False after JOIN_WAIT, or after
    JOIN_STALL without a new changeset (the member went away): the join itself is done
    either way, and the data keeps coming whenever the link is up."""
    def progress() -> tuple[bool, int]:
        vv = m.store.version_vector()
        done = not m.standalone and all(vv.get(o, 0) >= s for o, s in want.items())
        return done, sum(vv.values())

    deadline = time.monotonic() + JOIN_WAIT
    seen, moved = -1, time.monotonic()
    while time.monotonic() < min(deadline, moved + JOIN_STALL):
        done, count = await run(progress)
        if done:
            return True
        if count != seen:
            seen, moved = count, time.monotonic()
        await asyncio.sleep(0.1)
    return False


# -- prepjoin ------------------------------------------------------------------------

@clusterconfig.group("prepjoin")
def prepjoin() -> None:
    """Pre-authorise a machine to join without an admin password."""


@needs(Permission.SHOW)
@prepjoin.command("print")
@click.pass_obj
def prepjoin_print(ctx: Ctx) -> Result:
    """On the joiner: what a member needs to pre-authorise it (name, serial, key)."""
    m = ctx.machine
    key = _host_public_key(m.identity.data_dir)
    data: dict[str, Any] = {"name": m.identity.name, "serial": m.identity.serial, "key": key,
                            "fingerprint": m.identity.fingerprint}
    text = (f"On a member of the cluster, run:\n  clusterconfig prepjoin new "
            f"{m.identity.name} --serial {m.identity.serial} --key {shlex.quote(key)}")
    if not m.standalone:
        text = f"This machine is a member of cluster {m.cluster_name}."
        data["prepared"] = [{"name": p.name, "serial": p.serial}
                            for p in m.membership().prepjoins]
        text += "\n\nPrepared joins here: " + (
            ", ".join(p["name"] for p in data["prepared"]) or "none")
    return Result(data, text)


def _host_public_key(data_dir: Path) -> str:
    import asyncssh

    key = asyncssh.read_private_key(str(data_dir / HOST_KEY_FILE))
    return key.export_public_key("openssh").decode("ascii").strip()


@prepjoin.command("new")
@click.argument("name")
@click.option("--serial", required=True, help="The joiner's serial ('prepjoin print').")
@click.option("--key", required=True, help="The joiner's host public key line.")
@click.pass_obj
def prepjoin_new(ctx: Ctx, name: str, serial: str, key: str) -> Result:
    """Pre-authorise machine NAME (serial, host key) to join with 'join --prepared'."""
    from mxcluster.membership import ops
    from mxcluster.peers.linkio import key_fingerprint
    from mxcluster.shell.commands.cluster import change

    if key_fingerprint(key) is None:
        raise UsageError("--key is not an SSH public key line",
                         hint="copy it from 'clusterconfig prepjoin print' on the joiner")
    return change(ctx, f"prepjoin new {name}",
                  lambda v: ops.prepjoin_new_ops(v, name, serial, key))


@prepjoin.command("delete")
@click.argument("name")
@click.pass_obj
def prepjoin_delete(ctx: Ctx, name: str) -> Result:
    """Withdraw the pre-authorisation of NAME."""
    from mxcluster.membership import ops
    from mxcluster.shell.commands.cluster import change

    return change(ctx, f"prepjoin delete {name}", lambda v: ops.prepjoin_delete_ops(v, name))
