"""Run a MailEngine for the benchmark: python runner.py CONFIG.json DATA_DIR [UNSUB.sqlite]."""

from __future__ import annotations

import asyncio
import faulthandler
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from unsub_sqlite import SqliteUnsubscribe

from mxcluster.mail import MailEngine, MailSnapshot, MailTunables, StaticResolver
from mxcluster.mail.snapshot import never_unsubscribed


def dump_tasks() -> None:
    """Print the stack of every asyncio task (diagnosing a slow shutdown)."""
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)


async def main(config_path: str, data_dir: str, unsub: str | None) -> None:
    config = json.loads(Path(config_path).read_text())
    check = SqliteUnsubscribe(Path(unsub)) if unsub else never_unsubscribed
    engine = MailEngine(Path(data_dir), MailSnapshot.from_json(config["blocks"], check),
                        resolver=StaticResolver(), tunables=MailTunables(**config["tunables"]))
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    await engine.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    print("READY", flush=True)
    await stop.wait()
    print(json.dumps(engine.status()["counters"]), flush=True)
    await engine.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
