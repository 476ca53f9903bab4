"""A private Postfix instance configured as a durable relay to the benchmark sink.

Only loopback: it listens on 127.0.0.1:PORT and relays everything to [127.0.0.1]:SINK.
It has its own configuration, queue and data directories, so it never touches the
host's Postfix.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.bench.test
mydomain = bench.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink}
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 100
default_destination_concurrency_limit = 20
smtp_destination_concurrency_limit = 20
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
biff = no
"""


def _master_cf(port: int) -> str:
    """Debian's master.cf without chroot, with smtpd on 127.0.0.1:PORT only."""
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line[:1] not in ("", "#", " ", "\t") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{port}"
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    return "\n".join(out) + "\n"


class PostfixInstance:
    """Create, start and stop a Postfix instance under BASE."""

    def __init__(self, base: Path, port: int, sink_port: int) -> None:
        self.base, self.port = base, port
        self.conf = base / "etc"
        shutil.rmtree(base, ignore_errors=True)
        self.conf.mkdir(parents=True)
        base.chmod(0o755)
        (base / "queue").mkdir()
        (base / "data").mkdir()
        shutil.chown(base / "data", "postfix", "postfix")
        (self.conf / "main.cf").write_text(MAIN_CF.format(base=base, sink=sink_port))
        (self.conf / "master.cf").write_text(_master_cf(port))

    def _postfix(self, *args: str) -> None:
        # Postfix reports fatal errors on stderr only when it is a terminal: use script(1).
        command = " ".join(["postfix", "-c", str(self.conf), *args])
        done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed: {done.stdout.strip()}")

    def start(self) -> None:
        self._postfix("check")
        self._postfix("start")

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True,
                       timeout=60)

    def queued(self) -> int:
        """Messages still in the instance's queue (active, incoming, deferred)."""
        queue = self.base / "queue"
        return sum(1 for d in ("incoming", "active", "deferred", "maildrop")
                   for p in (queue / d).rglob("*") if p.is_file())
