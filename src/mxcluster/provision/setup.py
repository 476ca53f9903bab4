"""Create a new machine (SPEC §1): data directory, serial, SSH host key, TLS certificate,
the admin user, the ``Management`` interface and the SQLite database.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncssh
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mxcluster.config import registry
from mxcluster.config.changeset import Op
from mxcluster.config.store import Store
from mxcluster.errors import StateError, ValidationError
from mxcluster.service.machine import Identity, Machine
from mxcluster.users.passwords import check_strength, generate_password, hash_password

MACHINE_FILE = "machine.json"
DB_FILE = "mxcluster.db"
HOST_KEY_FILE = "ssh_host_ed25519_key"


@dataclass(frozen=True)
class MachineFile:
    """What ``machine.json`` holds: identity and where the services listen."""

    name: str
    serial: str
    address: str
    ssh_port: int = 2222
    https_port: int = 8443

    @classmethod
    def read(cls, data_dir: Path) -> MachineFile:
        path = data_dir / MACHINE_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise StateError(f"{data_dir} holds no machine",
                             hint="create one with 'mxcluster setup'") from None


def setup_machine(data_dir: Path, hostname: str, address: str, *, ssh_port: int = 2222,
                  https_port: int = 8443, admin_password: str | None = None) -> str | None:
    """Create the machine; returns the generated admin password when none was given."""
    _check_inputs(data_dir, hostname, address, admin_password)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)  # holds private keys and password hashes
    (data_dir / "logs").mkdir(exist_ok=True)
    generated = None if admin_password is not None else generate_password()
    password = admin_password if admin_password is not None else generated
    assert password is not None
    info = MachineFile(hostname.lower(), secrets.token_hex(6).upper(), address, ssh_port,
                       https_port)
    _write_private(data_dir / HOST_KEY_FILE,
                   asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    cert, key = self_signed(info.name, address)
    (data_dir / DB_FILE).touch(mode=0o600)
    store = Store(data_dir / DB_FILE)
    try:
        machine = Machine(store, Identity(info.name, info.serial, data_dir))
        level = str(machine.self_level)
        ops = [
            Op("set", level, "interfaces", [{"name": "Management", "ip": address,
                                             "hostname": info.name}]),
            Op("set", level, "hostname", info.name),
            Op("set", level, "certificates", [{"name": "default", "certificate": cert,
                                               "key": key}]),
            Op("set", level, "users", [{"name": "admin", "role": "admin",
                                        "password_hash": hash_password(password),
                                        "ssh_keys": []}]),
        ]
        machine.apply_local("setup", "machine created", iter(ops))
    finally:
        store.close()
    # machine.json last: its presence marks a complete machine
    _write_private(data_dir / MACHINE_FILE, json.dumps(asdict(info), indent=2) + "\n")
    return generated


def _check_inputs(data_dir: Path, hostname: str, address: str, password: str | None) -> None:
    problems = []
    if (data_dir / MACHINE_FILE).exists() or (data_dir / DB_FILE).exists():
        raise StateError(f"{data_dir} already holds a machine; refusing to overwrite it",
                         hint="choose another --data-dir")
    try:
        registry.get("hostname").validate(hostname)
        if "." not in hostname:
            problems.append(f"hostname {hostname!r} must be a fully qualified domain name")
    except ValidationError as exc:
        problems += exc.problems
    try:
        ipaddress.ip_address(address)
    except ValueError:
        problems.append(f"address {address!r} is not an IP address")
    if password is not None:
        problems += check_strength(password)
    if problems:
        raise ValidationError(problems, hint="nothing was created")


def _write_private(path: Path, data: str | bytes) -> None:
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())


def self_signed(hostname: str, address: str, days: int = 3650) -> tuple[str, str]:
    """A self-signed ECDSA P-256 certificate for HOSTNAME and ADDRESS (PEM cert, PEM key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(address))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem
