"""TLS contexts for listeners (STARTTLS) from PEM certificate and key text."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path


def server_context(cert_pem: str, key_pem: str, directory: Path) -> ssl.SSLContext:
    """A server-side context for STARTTLS; the PEMs are written to DIRECTORY (mode 0600)
    because ``ssl`` loads keys from files only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256((cert_pem + key_pem).encode()).hexdigest()[:16]
    path = directory / f"{digest}.pem"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key_pem.strip() + "\n" + cert_pem.strip() + "\n")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(path)
    return context
