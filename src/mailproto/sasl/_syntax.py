"""Small grammar pieces the mechanisms share: GS2 names, base64, UTF-8, printable nonces.

Everything in this package works on decoded SASL messages (the protocol layers strip the
base64 of the wire). What is left is still a tiny language per mechanism, and a few
productions recur: RFC 5801's ``saslname`` (used by SCRAM and OAUTHBEARER), RFC 5802's
``printable`` nonces, and strict base64 inside SCRAM attributes.

Theory of operation: a parser that meets something it cannot accept raises `Reject`. A
server mechanism turns that into a ``Failure`` step and a client mechanism into a
``SASLError``, so the parsers themselves do not know which role we play. The ``reason`` of
a `Reject` is always a constant string chosen here, never a piece of the input, because it
ends up in logs and the input may hold a password or a token.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

__all__: list[str] = []  # nothing here is public

RejectCode = Literal["auth", "malformed", "aborted", "unsupported"]


class Reject(Exception):
    """Internal: the peer's message cannot be accepted; ``reason`` is safe to log."""

    def __init__(self, reason: str, code: RejectCode = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code: RejectCode = code


def decode_utf8(data: bytes, what: str) -> str:
    """Decode strictly: overlong forms and lone surrogates are malformed, not replaced."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject(f"{what} is not valid UTF-8") from None


# RFC 5801 section 4:
#   saslname = 1*(UTF8-char-safe / "=2C" / "=3D")
#   UTF8-char-safe = %x01-2B / %x2D-3C / %x3E-7F / UTF8-2 / UTF8-3 / UTF8-4
# so a decoded name may hold anything but NUL, and "," and "=" travel escaped.
_SASLNAME_ESCAPE = re.compile(r"=(2C|3D)")
_SASLNAME_BAD = re.compile(r"[\x00,]|=(?!2C|3D)")


def encode_saslname(name: str) -> str:
    """Escape a name for a GS2 header or a SCRAM ``n=`` attribute."""
    return name.replace("=", "=3D").replace(",", "=2C")


def decode_saslname(value: str, what: str) -> str:
    """Undo `encode_saslname`; an empty name or a stray ``=`` is malformed."""
    if not value or _SASLNAME_BAD.search(value):
        raise Reject(f"{what} is not a valid saslname")
    return _SASLNAME_ESCAPE.sub(lambda m: "," if m[1] == "2C" else "=", value)


# RFC 5802 section 7:  printable = %x21-2B / %x2D-7E  ;; printable ASCII except ","
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")


def is_printable(value: str) -> bool:
    """True for a non-empty RFC 5802 ``printable`` string (what nonces are made of)."""
    return _PRINTABLE.fullmatch(value) is not None


def b64decode(value: str, what: str) -> bytes:
    """Strict base64: no whitespace, no missing padding, nothing outside the alphabet."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Reject(f"{what} is not valid base64") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
