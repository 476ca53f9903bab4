"""Run one machine: ``mxcluster serve --data-dir DIR``.

One asyncio process. The SQLite store is owned by one dedicated thread (``StoreThread``)
so the event loop never blocks on disk. SIGTERM/SIGINT shut down gracefully. A lock file
stops a second daemon from opening the same data directory.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import logging.handlers
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

import asyncssh

from mxcluster import __version__, settings
from mxcluster.config.store import Store
from mxcluster.errors import StateError
from mxcluster.provision.setup import DB_FILE, HOST_KEY_FILE, MachineFile
from mxcluster.service.machine import Identity, Machine
from mxcluster.users.throttle import LoginThrottle

T = TypeVar("T")
log = logging.getLogger("mxcluster.daemon")


class StoreThread:
    """The one thread that touches the store; ``run(fn)`` awaits FN's result there."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def acquire_lock(data_dir: Path) -> IO[str]:
    """Hold DATA_DIR/mxcluster.lock for the life of the process, or refuse to start."""
    fh = (data_dir / "mxcluster.lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        pid = fh.read().strip() or "?"
        raise StateError(f"another 'mxcluster serve' (pid {pid}) is running on {data_dir}",
                         hint="stop it first, or use another --data-dir") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def setup_logging(data_dir: Path, level: int = logging.INFO) -> None:
    (data_dir / "logs").mkdir(exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    for handler in (
        logging.handlers.WatchedFileHandler(data_dir / "logs" / "mxcluster.log"),
        logging.StreamHandler(sys.stderr),
    ):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def fingerprint(host_key_path: Path) -> str:
    key = asyncssh.read_private_key(str(host_key_path))
    return str(key.get_fingerprint("sha256"))


class Daemon:
    """One running machine."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.info = MachineFile.read(data_dir)
        self.store_thread = StoreThread()
        self.started = time.time()
        self._stop = asyncio.Event()
        self.services: list[Any] = []
        self.machine: Machine | None = None

    async def run(self) -> None:
        """Start everything, wait for SIGTERM/SIGINT, stop everything."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self.machine = await self.store_thread.run(self._open_machine)
        try:
            await self._start_services()
            log.info("machine %s (%s) serving; ssh %s:%d", self.info.name, self.info.serial,
                     self.info.address, self.info.ssh_port)
            await self._stop.wait()
            log.info("shutting down")
        finally:
            for service in reversed(self.services):
                await service.stop()
            await self.store_thread.run(self.machine.store.close)
            self.store_thread.shutdown()

    def _open_machine(self) -> Machine:
        store = Store(self.data_dir / DB_FILE)
        ident = Identity(self.info.name, self.info.serial, self.data_dir,
                         fingerprint(self.data_dir / HOST_KEY_FILE), self.info.address,
                         self.info.ssh_port)
        machine = Machine(store, ident, version=settings.get("MXCLUSTER_VERSION") or __version__)
        machine.started_at = self.started
        return machine

    async def _start_services(self) -> None:
        from mxcluster.daemon.mail import MailWiring
        from mxcluster.sshd.server import SSHService

        assert self.machine is not None
        ssh = SSHService(self.machine, self.store_thread.run, self.info.address,
                         self.info.ssh_port, self.data_dir / HOST_KEY_FILE,
                         LoginThrottle(time.monotonic))
        await ssh.start()
        self.services.append(ssh)
        mail = MailWiring(self.machine, self.store_thread.run)
        await mail.start()
        self.services.append(mail)
        links = await self._start_links(mail)
        ssh.peer_gate = links
        self.services.append(links)

    async def _start_links(self, mail: Any) -> Any:
        """The replication core and the peer mesh (``mxcluster.peers``)."""
        from mxcluster.daemon.control import ControlServer
        from mxcluster.peers.links import LinkManager
        from mxcluster.replication.replicator import Replicator

        machine = self.machine
        assert machine is not None
        run = self.store_thread.run
        core = await run(lambda: Replicator(
            machine.store, machine.clock, serial=machine.identity.serial,
            name=machine.identity.name, version=machine.version,
            wall_ms=lambda: int(time.time() * 1000)))
        links = LinkManager(core, run, self.data_dir / HOST_KEY_FILE,
                            on_applied=lambda cid: mail.changed(),
                            on_membership=mail.changed,
                            control_handler=ControlServer(machine, run))
        from mxcluster.service.cluster import record_version

        await run(lambda: record_version(machine))
        machine.runtime.update(replication=core, links=links, run_in_store=run)
        machine.commit_hooks.append(links.committed)
        await links.start()
        return links


def serve(data_dir: Path) -> None:
    """Entry point of ``mxcluster serve``."""
    lock = acquire_lock(data_dir)
    setup_logging(data_dir)
    try:
        asyncio.run(Daemon(data_dir).run())
    finally:
        lock.close()
