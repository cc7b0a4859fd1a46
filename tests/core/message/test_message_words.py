"""Encoded words (RFC 2047), charset decoding and the search normaliser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto.message._words import decode_header, decode_text, fold, lookup_charset


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain text", "plain text"),
        (b"=?utf-8?B?w6l0w6k=?=", "été"),
        (b"=?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=", "café crème"),
        (b"=?iso-8859-1?q?caf=E9?=", "café"),
        # RFC 2047 6.2: white space between adjacent encoded words is not displayed
        (b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        (b"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
        (b"=?utf-8?q?a?==?utf-8?q?b?=", "ab"),
        # ... but it is kept next to ordinary text
        (b"x =?utf-8?q?a?= y", "x a y"),
        (b"=?utf-8?q?a?= y =?utf-8?q?b?=", "a y b"),
        # RFC 2047 section 8 examples
        (b"(=?ISO-8859-1?Q?a?=)", "(a)"),
        (b"(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
        (b"=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),  # RFC 2231 section 5
        # a character split across two words in the same charset comes out whole
        (b"=?utf-8?Q?=E2=82?= =?utf-8?Q?=AC?=", "€"),
        # bad words stay as written
        (b"=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?="),
        (b"=?utf-8?B?YWJjZ?=", "=?utf-8?B?YWJjZ?="),
        (b"=?utf-8?X?abc?=", "=?utf-8?X?abc?="),
        (b"=?base64?Q?abc?=", "=?base64?Q?abc?="),
        (b"a =?bogus?q?x?= =?utf-8?q?b?=", "a =?bogus?q?x?= b"),
        # unpadded base64, charset switch between adjacent words
        (b"=?utf-8?B?w6k?==?iso-8859-1?Q?=E9?=", "éé"),
        # 8-bit header text: UTF-8, else windows-1252
        ("Grüße".encode(), "Grüße"),
        ("Grüße".encode("latin-1"), "Grüße"),
        ("Grüße ".encode() + "été".encode("latin-1"), "Grüße été"),  # mixed, byte by byte
        (b"=?us-ascii?Q?=C3=A9?=", "é"),
    ],
)
def test_decode_header(raw: bytes, text: str) -> None:
    assert decode_header(raw) == text


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        ("día".encode("iso-8859-15"), "ISO-8859-15", "día"),
        ("день".encode("koi8-r"), b"koi8-r", "день"),
        ("日本".encode("iso-2022-jp"), "iso-2022-jp", "日本"),
        ("día".encode(), "us-ascii", "día"),  # mislabelled UTF-8
        ("día".encode("latin-1"), "us-ascii", "día"),  # mislabelled Latin-1
        ("día".encode(), None, "día"),
        ("día".encode("latin-1"), None, "día"),
        ("día".encode("latin-1"), "x-unknown", "día"),
        ("€".encode("cp1252"), "iso-8859-1", "€"),  # read as its superset
        (b"\x81\xff", "iso-8859-1", "\ufffdÿ"),
        ("ÿ".encode(), "iso-8859-1", "Ã¿"),  # the label wins when it decodes
        (b"\xff\xfe", "utf-8", "ÿþ"),
        ("día ".encode() + "día".encode("latin-1"), "utf-8", "día día"),
        (b"\x81", None, "\ufffd"),  # not a windows-1252 character
        (b"\xa4\x40\xff", "big5", "一\ufffd"),
        ("한국".encode("cp949"), "ks_c_5601-1987", "한국"),
    ],
)
def test_decode_text(data: bytes, charset: str | bytes | None, text: str) -> None:
    assert decode_text(data, charset) == text


def test_lookup_charset() -> None:
    assert lookup_charset("UTF-8") == "utf-8"
    assert lookup_charset(b"utf8") == "utf-8"
    assert lookup_charset(" US-ASCII ") == "ascii"
    assert lookup_charset("windows-874") == "cp874"
    assert lookup_charset("ISO-8859-8-I") == "iso8859-8"
    assert lookup_charset("gb2312") == "gb18030"
    for name in ("base64", "zlib", "rot13", "idna", "x-unknown", "", "a b", "x" * 80, "ut\x00f"):
        assert lookup_charset(name) is None
    assert lookup_charset("x-unknown") is None  # cached answer


def test_fold() -> None:
    assert fold("Hello") == "hello"
    assert fold("STRASSE") == fold("straße")
    assert fold("ΣΊΣΥΦΟΣ") == fold("σίσυφος")
    assert fold("ﬁle") == "file"  # NFKC
    assert fold("\uff37\uff49\uff44\uff45") == "wide"  # fullwidth letters


@given(st.binary(max_size=300))
def test_decode_header_never_raises(data: bytes) -> None:
    assert isinstance(decode_header(data), str)


@given(st.binary(max_size=300), st.sampled_from(["utf-8", "utf-16", "utf-7", "shift_jis", None]))
def test_decode_text_never_raises(data: bytes, charset: str | None) -> None:
    assert isinstance(decode_text(data, charset), str)


@given(st.text(max_size=50))
def test_encoded_words_round_trip(text: str) -> None:
    import base64

    word = b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="
    assert decode_header(word) == text
