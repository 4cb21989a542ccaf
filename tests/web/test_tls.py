"""The self-signed certificate follows the addresses phones reach the server on (web/tls.py)."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest
from cryptography import x509

from web import tls


def names(cert: Path) -> set[str]:
    alt = (
        x509.load_pem_x509_certificate(cert.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    return {str(a) for a in alt.get_values_for_type(x509.IPAddress)} | set(
        alt.get_values_for_type(x509.DNSName)
    )


def test_made_once_and_kept_while_it_fits(tmp_path: Path) -> None:
    cert, key = tls.ensure_self_signed(tmp_path, ["192.168.1.7"])
    assert names(cert) == {"localhost", "127.0.0.1", "::1", "192.168.1.7"}
    assert key.stat().st_mode & 0o077 == 0
    first = cert.read_bytes()
    tls.ensure_self_signed(tmp_path, ["192.168.1.7"])
    tls.ensure_self_signed(tmp_path, [])  # fewer addresses: it still names every one
    assert cert.read_bytes() == first


def test_a_new_address_on_the_wifi_makes_a_new_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, _ = tls.ensure_self_signed(tmp_path, ["192.168.1.7"])
    first = cert.read_bytes()
    with caplog.at_level(logging.WARNING):
        tls.ensure_self_signed(tmp_path, ["10.0.5.23"])
    assert cert.read_bytes() != first
    assert "10.0.5.23" in names(cert)
    assert "does not name 10.0.5.23" in caplog.text


def test_a_certificate_near_its_end_or_unreadable_is_made_anew(tmp_path: Path) -> None:
    cert, _ = tls.ensure_self_signed(tmp_path, [])
    first = cert.read_bytes()
    ends = x509.load_pem_x509_certificate(first).not_valid_after_utc
    tls.ensure_self_signed(tmp_path, [], now=ends - tls.RENEW_BEFORE - datetime.timedelta(days=1))
    assert cert.read_bytes() == first
    tls.ensure_self_signed(tmp_path, [], now=ends - tls.RENEW_BEFORE + datetime.timedelta(days=1))
    renewed = cert.read_bytes()
    assert renewed != first
    cert.write_text("not a certificate")
    tls.ensure_self_signed(tmp_path, [])
    assert "127.0.0.1" in names(cert)
