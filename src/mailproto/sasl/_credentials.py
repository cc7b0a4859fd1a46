"""SCRAM key derivation and the credentials a server stores instead of a password.

RFC 5802 section 3 derives everything from ``SaltedPassword = Hi(password, salt, i)``
(PBKDF2 with HMAC-SHA-256 for SCRAM-SHA-256, RFC 7677). A server needs only two values
derived from it: ``StoredKey = H(HMAC(SaltedPassword, "Client Key"))`` to check a client's
proof, and ``ServerKey = HMAC(SaltedPassword, "Server Key")`` to prove itself. Neither lets
anybody log in to *another* server as the user without a fresh brute-force of the
password, which is the point: the mail store keeps `ScramCredentials`, never the
password. They are computed once, when the password is set, with `scram_credentials`.

SASLprep (RFC 4013) is approximated, as documented on `saslprep_lite`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stringprep
import unicodedata

import attrs

__all__ = ["ScramCredentials", "scram_credentials"]

_HASH = "sha256"
_KEY_SIZE = hashlib.sha256().digest_size  # 32


def saslprep_lite(password: str) -> str:
    """Prepare a password the way SASLprep would, minus its prohibitions.

    RFC 4013 maps non-ASCII spaces to U+0020, removes the "commonly mapped to nothing"
    characters (soft hyphen, zero-width joiners, variation selectors...), then applies
    NFKC. Those steps are what make the same password typed on two keyboards hash alike,
    and they are done here. SASLprep's *prohibition* and bidi checks (control characters,
    private use, unassigned code points under Unicode 3.2) are not: such a password is
    used as is instead of being refused. Both ends of this library prepare passwords with
    this function, so they always agree with each other; against a strict third-party
    implementation only passwords SASLprep would reject can differ.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in password
        if not stringprep.in_table_b1(ch)
    )
    return unicodedata.normalize("NFKC", mapped)


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, _HASH).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 ``Hi()``, which is PBKDF2 with one block of output."""
    return hashlib.pbkdf2_hmac(_HASH, saslprep_lite(password).encode("utf-8"), salt, iterations)


def _check_key(inst: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != _KEY_SIZE:
        raise ValueError(f"{attribute.name} must be {_KEY_SIZE} bytes")


def _check_salt(inst: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or not value:
        raise ValueError("salt must be non-empty bytes")


def _check_iterations(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("iterations must be a positive int")


@attrs.frozen(kw_only=True)
class ScramCredentials:
    """What a server stores for SCRAM-SHA-256 instead of the password.

    The two keys are kept out of ``repr()``: with ``ServerKey`` one can impersonate the
    server, so they deserve the care of a password hash even though they are not one.
    """

    salt: bytes = attrs.field(validator=_check_salt)
    iterations: int = attrs.field(validator=_check_iterations)
    stored_key: bytes = attrs.field(validator=_check_key, repr=False)
    server_key: bytes = attrs.field(validator=_check_key, repr=False)


def scram_credentials(
    password: str, *, salt: bytes | None = None, iterations: int = 4096
) -> ScramCredentials:
    """Derive the `ScramCredentials` to store when a user sets ``password``.

    Args:
        password: the new password; prepared with an approximation of SASLprep (NFKC plus
            RFC 4013's mappings, see `saslprep_lite`).
        salt: random by default (16 bytes from `secrets`); pass one for reproducible tests.
        iterations: PBKDF2 rounds. RFC 7677 asks for at least 4096, and clients of this
            package refuse fewer, so lower values only make sense in tests.

    Raises:
        ValueError: empty salt or non-positive iteration count.
    """
    if salt is None:
        salt = secrets.token_bytes(16)
    _check_salt(None, attrs.fields(ScramCredentials).salt, salt)
    _check_iterations(None, attrs.fields(ScramCredentials).iterations, iterations)
    salted = salted_password(password, salt, iterations)
    return ScramCredentials(
        salt=salt,
        iterations=iterations,
        stored_key=sha256(hmac_sha256(salted, b"Client Key")),
        server_key=hmac_sha256(salted, b"Server Key"),
    )
