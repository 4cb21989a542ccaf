"""A self-signed certificate for the first run, so phones on the LAN get camera access.

Browsers give ``getUserMedia`` only to secure contexts; a school's first try is a laptop and
some phones on one Wi-Fi, where ``https://<laptop-ip>:8443`` with a self-signed certificate (the
browser asks once to accept it) is the shortest way there. Real deployments pass ``--cert`` and
``--key``, or run ``--no-tls`` behind a reverse proxy that terminates TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def ensure_self_signed(directory: Path, addresses: list[str]) -> tuple[Path, Path]:
    """Create (once) and return ``(cert, key)`` paths for localhost and ``addresses``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / "self-signed.crt"
    key_path = directory / "self-signed.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for a in {"127.0.0.1", "::1", *addresses}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            names.append(x509.DNSName(a))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lophoc (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
