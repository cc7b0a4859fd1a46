"""Header words and body text as Unicode, for SEARCH, SORT and THREAD.

- `decode_header`: RFC 2047 encoded words (section 4: "B" and "Q"; section 6.2:
  whitespace between two adjacent encoded words is dropped), in any charset Python's
  codecs know; RFC 2231 section 5 language suffixes (``=?utf-8*en?Q?...?=``) accepted.
  A word that cannot be decoded (unknown charset, broken base64) is left as written,
  as RFC 2047 section 6.3 allows. Text outside encoded words is UTF-8 (RFC 6532), any
  byte that is not read as windows-1252 (Dovecot writes U+FFFD instead; reading the
  Latin-1 of old software finds what its users search for).
- `decode_text`: a body (already transfer-decoded) in its declared charset, with a
  fallback that never fails.
- `lookup_charset`: the Python codec of a MIME charset name, with the aliases mail
  software uses in practice.
- `fold`: the search normaliser. IMAP SEARCH matches substrings case-insensitively
  (RFC 3501 6.4.4, RFC 9051 6.4.4.); NFKC then full Unicode case folding makes that
  work for every script, the same on the needle and on the text.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
import unicodedata

__all__ = ["decode_header", "decode_text", "fold", "lookup_charset"]

# encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
_WORD = re.compile(rb"=\?([^?\s*]{1,64})(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_WSP = re.compile(rb"[ \t\r\n]*")
_CHARSET_NAME = re.compile(r"[A-Za-z0-9!#$%&'+^_`{}~.:-]{1,64}")

# Names mail software writes for which Python has no alias, or a superset that mail
# software actually means (as WHATWG's Encoding standard maps them).
_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "iso-8859-8-e": "iso-8859-8",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "x-mac-roman": "mac-roman",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "cseuckr": "cp949",
    "x-euc-tw": "euc_jis_2004",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
}
# Text codecs that are not charsets, or that refuse the "replace" error handler.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape", "mbcs", "oem"}
)


def lookup_charset(name: str | bytes) -> str | None:
    """The Python codec for a MIME charset name, or None when there is none.

    Only text encodings count: ``base64`` or ``zlib`` are codecs, not charsets.
    ISO-8859-1 reads as windows-1252, its superset in practice.
    """
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return _lookup(name.strip().lower())


@functools.lru_cache(maxsize=512)
def _lookup(key: str) -> str | None:
    if _CHARSET_NAME.fullmatch(key) is None:
        return None
    try:
        info = codecs.lookup(_ALIASES.get(key, key))
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


# Bytes that are not UTF-8 come out of "surrogateescape" as U+DC80..U+DCFF; this maps
# them to what the same byte means in windows-1252.
_SURROGATES = {0xDC00 + b: bytes([b]).decode("cp1252", "replace") for b in range(0x80, 0x100)}


def _mixed(data: bytes) -> str:
    # UTF-8 where the bytes are UTF-8, windows-1252 for the bytes that are not: headers
    # and bodies that mix both (or are unlabelled Latin-1) read as their writer meant.
    return data.decode("utf-8", "surrogateescape").translate(_SURROGATES)


def _plain(data: bytes) -> str:
    # Unencoded header text: UTF-8 (RFC 6532), with the windows-1252 of old software.
    if data.isascii():
        return data.decode("ascii")
    return _mixed(data)


def decode_text(data: bytes, charset: str | bytes | None = None) -> str:
    """``data`` as text: in ``charset`` if that decodes it, else UTF-8, else best effort.

    Undeclared, unknown, UTF-8 and US-ASCII text that is not valid is read as UTF-8 with
    the other bytes as windows-1252; another declared charset that fails is tried as
    UTF-8 (mislabelled mail), then decoded with U+FFFD for what it cannot read. Never
    raises.
    """
    codec = lookup_charset(charset) if charset else None
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeError, ValueError):
            pass
    if codec is None or codec in ("utf-8", "ascii"):
        return _mixed(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, ValueError):  # pragma: no cover - codecs refusing "replace"
        return _mixed(data)


def _word(m: re.Match[bytes]) -> tuple[str, bytes] | None:
    codec = lookup_charset(m[1])
    if codec is None:
        return None
    text = m[3]
    if m[2] in b"Qq":
        return codec, binascii.a2b_qp(text, header=True)
    try:
        return codec, binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    except binascii.Error:
        return None


def decode_header(value: bytes) -> str:
    """A header field value with its RFC 2047 encoded words decoded.

    Adjacent words in the same charset are joined before decoding, so a character split
    across two words (as some senders do) comes out whole.
    """
    if b"=?" not in value:
        return _plain(value)
    out: list[str] = []
    run = bytearray()
    run_codec: str | None = None
    pos = 0
    for m in _WORD.finditer(value):
        word = _word(m)
        if word is None:
            continue  # left in the text as written
        codec, raw = word
        gap = value[pos : m.start()]
        if run_codec is None or _WSP.fullmatch(gap) is None:
            if run_codec is not None:
                out.append(_decode_run(run, run_codec))
                run.clear()
            out.append(_plain(gap))
            run_codec = codec
        elif codec != run_codec:
            out.append(_decode_run(run, run_codec))
            run.clear()
            run_codec = codec
        run += raw
        pos = m.end()
    if run_codec is not None:
        out.append(_decode_run(run, run_codec))
    out.append(_plain(value[pos:]))
    return "".join(out)


def _decode_run(data: bytearray, codec: str) -> str:
    return decode_text(bytes(data), codec)


def fold(text: str) -> str:
    """The form in which SEARCH compares strings: NFKC, then Unicode case folding."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.casefold()
