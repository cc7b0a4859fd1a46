"""TLS for ``mailproto serve``: the server's `ssl.SSLContext`, and a self-signed certificate.

The embedded default (DESIGN.md section 4) needs STARTTLS and implicit TLS (RFC 8314
ports 465, 993, 995) to work on a fresh clone, so on first start a self-signed
certificate is made in the data directory and reused afterwards. Clients must be told to
accept it (``swaks --tls-verify`` off, ``openssl s_client``); real deployments give their
own certificate in ``[tls]``. The key is an ECDSA P-256 key, written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CERT_NAME", "KEY_NAME", "ensure_self_signed", "server_context"]

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALID_DAYS = 825  # the longest validity Apple's platforms accept for a TLS server cert
RENEW_BEFORE = datetime.timedelta(days=14)


def server_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server-side context with the certificate chain and key (TLS 1.2 or newer).

    Raises `ssl.SSLError` or `OSError` when they cannot be read or do not match."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.fspath(cert), os.fspath(key))
    return context


def _still_valid(cert: Path) -> bool:
    """True when ``cert`` parses and has more than `RENEW_BEFORE` left."""
    from cryptography import x509

    try:
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return False
    left = parsed.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > RENEW_BEFORE


def ensure_self_signed(
    directory: str | os.PathLike[str], hostname: str, extra_names: Sequence[str] = ()
) -> tuple[Path, Path, bool]:
    """The self-signed certificate and key in ``directory`` (made there when missing or
    about to expire); returns ``(cert, key, created)``.

    The certificate names ``hostname``, ``localhost``, 127.0.0.1 and ::1 (and
    ``extra_names``) as subject alternative names, which is what clients check
    (RFC 6125)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(directory)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    if cert_path.is_file() and key_path.is_file() and _still_valid(cert_path):
        return cert_path, key_path, False
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for name in (hostname, "localhost", "127.0.0.1", "::1", *extra_names):
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailproto self-signed"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key_path, key_pem, 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path, True


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
