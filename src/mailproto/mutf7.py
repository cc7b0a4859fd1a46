"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3): IMAP's mailbox names on
the wire, and the folder names of Maildir++ stores (Dovecot's and ours).

Printable US-ASCII (0x20-0x7E) stands for itself, except "&", which is written "&-".
Every other run of characters is written "&" + modified BASE64 of its UTF-16BE form + "-",
where modified BASE64 is RFC 2045 base64 with "," in place of "/" and no "=" padding.

Decoding is strict, because a mailbox name has exactly one spelling: a server compares
names octet for octet, so it must refuse the others rather than guess. `decode` raises
`ValueError` (the parsers answer BAD) for octets outside printable ASCII, an "&" shift
that is not closed by "-", characters outside the modified BASE64 alphabet, a shift
whose bits do not make whole UTF-16 code units or leave non-zero bits over, a shift that
encodes printable ASCII (which must stand for itself, e.g. "&AGE-" for "a", or "&ACY-"
for "&"), and lone or reversed UTF-16 surrogates. Two shifts next to each other are
accepted (some clients write them); `encode` never produces them.
"""

from __future__ import annotations

import binascii
import re

__all__ = ["decode", "encode"]

# A shift: "&", the modified BASE64 characters, then "-" (or anything else: an error).
_SHIFT = re.compile(rb"&([A-Za-z0-9+,]*)(-?)")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


def encode(text: str) -> bytes:
    """The modified UTF-7 form of ``text``.

    Raises:
        ValueError: ``text`` holds a lone surrogate, which has no UTF-16 form.
    """
    out = bytearray()
    pos = 0
    n = len(text)
    while pos < n:
        m = _PRINTABLE.match(text, pos)
        if m is not None:
            out += m.group().replace("&", "&-").encode("ascii")
            pos = m.end()
            continue
        end = pos + 1
        while end < n and not "\x20" <= text[end] <= "\x7e":
            end += 1
        try:
            utf16 = text[pos:end].encode("utf-16-be")
        except UnicodeEncodeError:
            raise ValueError("a lone surrogate has no modified UTF-7 form") from None
        b64 = binascii.b2a_base64(utf16, newline=False).rstrip(b"=").replace(b"/", b",")
        out += b"&" + b64 + b"-"
        pos = end
    return bytes(out)


def decode(data: bytes) -> str:
    """The text that the modified UTF-7 ``data`` stands for.

    Raises:
        ValueError: ``data`` is not modified UTF-7 in its one canonical spelling (see
            the module documentation for what is refused).
    """
    out: list[str] = []
    pos = 0
    n = len(data)
    while pos < n:
        amp = data.find(b"&", pos)
        if amp < 0:
            amp = n
        plain = data[pos:amp]
        if plain:
            if not _is_printable(plain):
                raise ValueError(f"not modified UTF-7: octet outside printable ASCII {plain!r}")
            out.append(plain.decode("ascii"))
        if amp == n:
            break
        m = _SHIFT.match(data, amp)
        assert m is not None  # the pattern matches any "&"
        b64, dash = m.group(1), m.group(2)
        if not dash:
            raise ValueError("not modified UTF-7: a shift is not closed by '-'")
        if not b64:
            out.append("&")
        else:
            out.append(_decode_shift(b64))
        pos = m.end()
    return "".join(out)


def _is_printable(data: bytes) -> bool:
    return all(0x20 <= c <= 0x7E for c in data)


def _decode_shift(b64: bytes) -> str:
    if len(b64) % 4 == 1:
        raise ValueError("not modified UTF-7: a shift of whole BASE64 octets is incomplete")
    padded = b64.replace(b",", b"/") + b"=" * (-len(b64) % 4)
    raw = binascii.a2b_base64(padded, strict_mode=True)
    # The unused low bits of the last BASE64 character must be zero (one spelling only).
    if binascii.b2a_base64(raw, newline=False) != padded:
        raise ValueError("not modified UTF-7: non-zero bits after the last code unit")
    if len(raw) % 2:
        raise ValueError("not modified UTF-7: a shift does not hold whole UTF-16 units")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError("not modified UTF-7: a lone UTF-16 surrogate") from None
    if _PRINTABLE.search(text):
        raise ValueError("not modified UTF-7: printable ASCII inside a shift")
    return text
