"""Content-Transfer-Encoding decoding (RFC 2045 6), as FETCH BINARY needs (RFC 3516).

`decode_transfer` undoes base64 (RFC 2045 6.8) and quoted-printable (RFC 2045 6.7) and
passes 7bit, 8bit and binary through. It is lenient like the servers clients talk to:
characters outside the base64 alphabet are ignored, a missing final padding is
supplied, and quoted-printable drops the trailing white space of each line (RFC 2045
6.7 rule 3). An encoding it does not know gives None: the server then answers
``NO [UNKNOWN-CTE]`` (RFC 3516 4.3).
"""

from __future__ import annotations

import binascii
import re

__all__ = ["decode_transfer"]

_IDENTITY = frozenset((b"7bit", b"8bit", b"binary", b""))
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(sorted(set(range(256)) - set(_B64_ALPHABET) - {ord("=")}))
_QP_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def decode_transfer(body: bytes, encoding: bytes) -> bytes | None:
    """The decoded body, or None if ``encoding`` is not one we know."""
    encoding = encoding.strip().lower()
    if encoding in _IDENTITY:
        return body
    if encoding == b"base64":
        return _base64(body)
    if encoding == b"quoted-printable":
        return binascii.a2b_qp(_QP_TRAILING_WSP.sub(b"", body))
    return None


def _base64(body: bytes) -> bytes:
    """Decode base64 leniently: stop at the first ``=``, skip foreign characters."""
    chars = body.translate(None, _NOT_B64)
    pad = chars.find(b"=")
    if pad >= 0:
        chars = chars[:pad]
    extra = len(chars) % 4
    if extra == 1:  # one lone sextet carries no whole octet
        chars = chars[:-1]
    elif extra:
        chars += b"=" * (4 - extra)
    return binascii.a2b_base64(chars)
