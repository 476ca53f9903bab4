"""STARTTLS on listeners, with a self-signed certificate made in the test."""

from __future__ import annotations

import datetime
import ssl
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import MakeEngine, message
from .helpers import Sink


def self_signed(name: str = "mx1.test") -> dict[str, str]:
    """A certificates-block entry: a fresh self-signed EC certificate and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return {
        "name": "selfsigned",
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode(),
    }


def with_tls(mode: str) -> Any:
    def edit(b: dict[str, Any]) -> None:
        b["certificates"] = [self_signed()]
        b["listeners"][0].update(tls=mode, certificate="selfsigned")
    return edit


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_starttls_offered_and_used(make_engine: MakeEngine, sink: Sink) -> None:
    """With tls=on, EHLO offers STARTTLS; mail sent over TLS is queued and delivered."""
    h = make_engine(with_tls("on"))
    with h.client() as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        smtp.starttls(context=client_context())
        smtp.ehlo()
        smtp.sendmail("a@sender.test", ["u@example.com"], message())
    received = sink.wait_for(1)[0].data
    assert b"with ESMTPS id" in received


def test_starttls_required_refuses_plaintext_mail(make_engine: MakeEngine) -> None:
    """With tls=required, MAIL before STARTTLS gets 530 5.7.0; after STARTTLS it works."""
    h = make_engine(with_tls("required"))
    with h.client() as smtp:
        smtp.ehlo()
        code, text = smtp.mail("a@sender.test")
        assert (code, text[:5]) == (530, b"5.7.0")
        smtp.starttls(context=client_context())
        smtp.ehlo()
        assert smtp.mail("a@sender.test")[0] == 250


def test_missing_certificate_disables_listener(make_engine: MakeEngine) -> None:
    """A TLS listener whose certificate does not exist is disabled, with the reason."""
    def edit(b: dict[str, Any]) -> None:
        b["listeners"][0].update(tls="on", certificate="nope")
    h = make_engine(edit)
    state = h.listener_state("Inbound")
    assert state["state"] == "disabled" and "nope" in state["reason"]
    with pytest.raises(OSError):
        h.client()
