"""Run a MailEngine for the benchmark: python runner.py CONFIG.json DATA_DIR [UNSUB.sqlite]."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from unsub_sqlite import SqliteUnsubscribe  # noqa: E402

from mxcluster.mail import MailEngine, MailSnapshot, MailTunables, StaticResolver  # noqa: E402
from mxcluster.mail.snapshot import never_unsubscribed  # noqa: E402


async def main(config_path: str, data_dir: str, unsub: str | None) -> None:
    config = json.loads(Path(config_path).read_text())
    check = SqliteUnsubscribe(Path(unsub)) if unsub else never_unsubscribed
    engine = MailEngine(Path(data_dir), MailSnapshot.from_json(config["blocks"], check),
                        resolver=StaticResolver(), tunables=MailTunables(**config["tunables"]))
    await engine.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    print(json.dumps(engine.status()["counters"]), flush=True)
    await engine.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
