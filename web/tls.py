"""A self-signed certificate for the first run, so phones on the LAN get camera access.

Browsers give ``getUserMedia`` only to secure contexts; a school's first try is a laptop and
some phones on one Wi-Fi, where ``https://<laptop-ip>:8443`` with a self-signed certificate (the
browser asks once to accept it) is the shortest way there. Real deployments pass ``--cert`` and
``--key``, or run ``--no-tls`` behind a reverse proxy that terminates TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


RENEW_BEFORE = datetime.timedelta(days=30)
"""A certificate this close to its end is made anew (they last 397 days, browsers' limit)."""


def ensure_self_signed(
    directory: Path, addresses: list[str], *, now: datetime.datetime | None = None
) -> tuple[Path, Path]:
    """Return ``(cert, key)`` paths of a certificate for localhost and ``addresses``, made on
    the first run and made anew when it no longer fits: the laptop got another address on
    the school's Wi-Fi (phones would be told the certificate is for another host), or it is
    about to expire. Each browser then asks once more to accept it."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / "self-signed.crt"
    key_path = directory / "self-signed.key"
    wanted = {"localhost", "127.0.0.1", "::1", *addresses}
    now = now if now is not None else datetime.datetime.now(datetime.UTC)
    if cert_path.exists() and key_path.exists():
        why = _unfit(cert_path, wanted, now)
        if why is None:
            return cert_path, key_path
        log.warning("making a new self-signed certificate: %s", why)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for a in sorted(wanted - {"localhost"}):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            names.append(x509.DNSName(a))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lophoc (self-signed)")])
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


def _names(cert: x509.Certificate) -> set[str]:
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(a) for a in alt.get_values_for_type(x509.IPAddress)} | set(
        alt.get_values_for_type(x509.DNSName)
    )


def _unfit(cert_path: Path, wanted: set[str], now: datetime.datetime) -> str | None:
    """Why the stored certificate will not do, or None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return "the stored one cannot be read"
    missing = sorted(wanted - _names(cert))
    if missing:
        return f"it does not name {', '.join(missing)}"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None
