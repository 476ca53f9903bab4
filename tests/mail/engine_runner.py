"""Run one MailEngine from a JSON file until SIGTERM (crash tests run it as a process).

Usage: python engine_runner.py CONFIG.json DATA_DIR
CONFIG.json: {"blocks": {...setting blocks...}, "tunables": {...MailTunables fields...}}
Prints READY once the listeners are open. Honours MXCLUSTER_FAILPOINTS.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from mxcluster.mail import MailEngine, MailSnapshot, MailTunables, StaticResolver


async def main(config_path: str, data_dir: str) -> None:
    config = json.loads(Path(config_path).read_text())
    engine = MailEngine(Path(data_dir), MailSnapshot.from_json(config["blocks"]),
                        resolver=StaticResolver(),
                        tunables=MailTunables(**config.get("tunables", {})))
    await engine.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await engine.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
