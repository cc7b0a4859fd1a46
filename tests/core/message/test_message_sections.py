"""BODY[section]<partial>, BINARY and BINARY.SIZE over parsed messages.

Expected bytes marked "Dovecot" were fetched from Dovecot 2.3.19 for the same message.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap import Section
from mailproto.imap._grammar import Parser
from mailproto.imap._types import parse_section
from mailproto.message import binary, binary_size, parse_message, section

NESTED = (
    b'Content-Type: multipart/mixed; boundary="b1"\r\nSubject: top\r\n\r\n'
    b"pre\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: in\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
    b"--b2\r\n\r\nA\r\n--b2\r\nContent-Type: text/html\r\n\r\n<b>\r\n--b2--\r\n"
    b"--b1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n"
    b"--b1\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    b"--b1--\r\nepilogue\r\n"
)


def fetch(data: bytes, spec: str, partial: tuple[int, int] | None = None) -> bytes | None:
    return section(parse_message(data), parse_section(Parser(b"[" + spec.encode() + b"]")), partial)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", NESTED),
        ("HEADER", b'Content-Type: multipart/mixed; boundary="b1"\r\nSubject: top\r\n\r\n'),
        ("HEADER.FIELDS (SUBJECT)", b"Subject: top\r\n\r\n"),
        ("HEADER.FIELDS.NOT (subject)", b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'),
        ("TEXT", NESTED[NESTED.index(b"pre") :]),
        ("1", b"hi"),
        ("1.MIME", b"Content-Type: text/plain\r\n\r\n"),
        ("1.HEADER", b""),
        ("1.TEXT", b""),
        ("2.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        ("2.HEADER", b"Subject: in\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"),
        ("2.HEADER.FIELDS (Subject)", b"Subject: in\r\n\r\n"),
        ("2.TEXT", b"--b2\r\n\r\nA\r\n--b2\r\nContent-Type: text/html\r\n\r\n<b>\r\n--b2--\r\n"),
        ("2.1", b"A"),
        ("2.1.MIME", b"\r\n"),
        ("2.2", b"<b>"),
        ("2.2.MIME", b"Content-Type: text/html\r\n\r\n"),
        ("3", b"QUJD"),
        # A part that does not exist: Dovecot answers with an empty string.
        ("9", b""),
        ("2.3", b""),
        ("9.MIME", b""),
        ("1.1", b"hi"),  # Dovecot: a leaf part answers to one more ".1"
        ("1.1.1", b""),
    ],
)
def test_sections(spec: str, expected: bytes) -> None:
    assert fetch(NESTED, spec) == expected


def test_partial() -> None:
    assert fetch(NESTED, "1", (0, 1)) == b"h"
    assert fetch(NESTED, "1", (1, 100)) == b"i"
    assert fetch(NESTED, "1", (5, 10)) == b""
    assert fetch(NESTED, "", (0, 12)) == NESTED[:12]


def test_rfc822_items_are_sections() -> None:
    m = parse_message(NESTED)
    assert section(m, Section()) == m.data  # RFC822
    assert section(m, Section(text="HEADER")) == m.data[: m.root.body_start]  # RFC822.HEADER
    assert section(m, Section(text="TEXT")) == m.data[m.root.body_start :]  # RFC822.TEXT


def test_single_part_message() -> None:
    # Dovecot: BODY[1] "line1\r\nline2", BODY[1.MIME] is the message header,
    # BODY[2] "" and HEADER.FIELDS skip the line without a colon.
    data = b"Subject: a\r\nNoColonLine\r\nX: y\r\n\r\nline1\r\nline2"
    assert fetch(data, "1") == b"line1\r\nline2"
    assert fetch(data, "1.MIME") == b"Subject: a\r\nNoColonLine\r\nX: y\r\n\r\n"
    assert fetch(data, "2") == b""
    assert fetch(data, "1.HEADER") == b""
    assert fetch(data, "HEADER.FIELDS (X NoColonLine)") == b"X: y\r\n\r\n"
    assert fetch(data, "HEADER.FIELDS.NOT (X)") == b"Subject: a\r\nNoColonLine\r\n\r\n"


def test_header_fields_details() -> None:
    # Dovecot: "Subject : spaced" matches SUBJECT; folding and 8-bit octets are kept.
    data = (
        b"Subject : spaced\r\nNoColon\r\n\xc3\xa9X: 8bit \xc3\xa9\r\n  folded\r\nX: y\r\n\r\nA\r\n"
    )
    assert fetch(data, "HEADER.FIELDS (Subject)") == b"Subject : spaced\r\n\r\n"
    assert (
        fetch(data, "HEADER.FIELDS.NOT (X)")
        == b"Subject : spaced\r\nNoColon\r\n\xc3\xa9X: 8bit \xc3\xa9\r\n  folded\r\n\r\n"
    )
    assert fetch(data, "HEADER.FIELDS (x subject)") == b"Subject : spaced\r\nX: y\r\n\r\n"
    assert fetch(data, "HEADER.FIELDS (Nothing)") == b"\r\n"


@pytest.mark.parametrize(
    ("data", "spec", "expected"),
    [
        # Header blocks without the empty line, as Dovecot 2.3.19 answers them.
        (b"Subject: b\r\nX: y", "HEADER.FIELDS (X)", b"X: y\r\n"),
        (b"Subject: b\r\nX: y", "HEADER.FIELDS.NOT (X)", b"Subject: b\r\n"),
        (b"Subject: b\r\nX: y\r\n", "HEADER.FIELDS (X)", b"X: y\r\n\r\n"),
        (b"Subject: b\r\nX: y\r\n", "HEADER.FIELDS.NOT (X)", b"Subject: b\r\n"),
        (b"X: y\r\nSubject: b", "HEADER.FIELDS (X)", b"X: y\r\n\r\n"),
        (b"X: y\r\nSubject: b", "HEADER.FIELDS.NOT (X)", b"Subject: b"),
        (b"X: y\r\nSubject: b", "HEADER.FIELDS.NOT (X Subject)", b""),
        (b"Subject: b\r\nX: y", "1.MIME", b"Subject: b\r\nX: y"),
        (b"", "HEADER.FIELDS (X)", b"\r\n"),
        (b"\r\n", "HEADER.FIELDS.NOT (X)", b"\r\n"),
    ],
)
def test_header_fields_without_empty_line(data: bytes, spec: str, expected: bytes) -> None:
    assert fetch(data, spec) == expected


def test_bare_lf_sections_are_original_bytes() -> None:
    data = b"Subject: lf\nX: y\n\nbody\n"
    assert fetch(data, "HEADER") == b"Subject: lf\nX: y\n\n"
    assert fetch(data, "HEADER.FIELDS (X)") == b"X: y\n\r\n"
    assert fetch(data, "TEXT") == b"body\n"


def test_binary() -> None:
    m = parse_message(NESTED)
    assert binary(m, (3,)) == b"ABC"
    assert binary_size(m, (3,)) == 3
    assert binary(m, (3,), (1, 1)) == b"B"
    assert binary(m, (1,)) == b"hi"
    assert binary(m, ()) == NESTED
    assert binary(m, (), (0, 5)) == NESTED[:5]
    assert binary(m, (4,)) is None  # unknown encoding: NO [UNKNOWN-CTE]
    assert binary_size(m, (4,)) is None
    assert binary(m, (9,)) == b""  # Dovecot: BINARY[9] is empty
    assert binary_size(m, (9,)) == 0
    assert binary_size(m, ()) == len(NESTED)


def test_binary_top_level_base64() -> None:
    # Dovecot: BINARY[1] "ABC", BINARY.SIZE[1] 3.
    data = b"Content-Type: TEXT/Plain\r\nContent-Transfer-Encoding: Base64\r\n\r\nQUJD\r\n"
    m = parse_message(data)
    assert binary(m, (1,)) == b"ABC"
    assert binary_size(m, (1,)) == 3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/mixed; boundary=a\r\n",
                b"Content-Type: message/rfc822\r\n",
                b"Subject: x\r\n",
                b"\r\n",
                b"--a\r\n",
                b"--a--\r\n",
                b"text\r\n",
            ]
        ),
        max_size=30,
    ).map(b"".join),
    st.lists(st.integers(min_value=1, max_value=4), max_size=4).map(tuple),
    st.sampled_from([None, "HEADER", "TEXT", "MIME", "HEADER.FIELDS"]),
)
def test_sections_slice_the_message(data: bytes, part: tuple[int, ...], text: str | None) -> None:
    m = parse_message(data)
    if text == "MIME" and not part:
        text = None
    fields = (b"Subject",) if text == "HEADER.FIELDS" else ()
    out = section(m, Section(part=part, text=text, fields=fields))  # type: ignore[arg-type]
    assert out is not None
    if text == "HEADER.FIELDS" and out:
        assert out.endswith(b"\r\n")
        out = out[:-2]
        for line in out.splitlines(keepends=True):
            assert line in data
    else:
        assert out in data
    b = binary(m, part)
    assert b is not None


EPILOGUE = (
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nC\r\n--c--\r\nepi\r\n\r\n"
    b"--b\r\nX: y\r\n--b\r\nX: z\r\n\r\n--b--\r\n"
)
CUT_HEADER = (
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nB\r\n--b\r\nand \r\n--a--\r\n"
)
CUT_MESSAGE = (
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
    b"Content-Type: message/rfc822\r\n\r\nX: in\r\n--a--\r\n"
)
EMPTY_MESSAGE = (
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
    b"--a\r\nContent-Type: message/rfc822\r\n\r\n\r\n"
    b"--a\r\nContent-Type: message/rfc822\r\n\r\n"
    b"--a\r\nContent-Type: message/rfc822\r\nX: y\r\n--a--\r\n"
)
CLOSED_INNER = (
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nC\r\n--c--\r\n--b--\r\n"
)


@pytest.mark.parametrize(
    ("data", "spec", "expected"),
    [
        # All from Dovecot 2.3.19. The line end before a delimiter goes with the
        # delimiter, except the one ending a close delimiter line (the epilogue keeps
        # it) and, for enclosing parts, one that ended a header block.
        (EPILOGUE, "1", b"--c\r\n\r\nC\r\n--c--\r\nepi\r\n"),
        (EPILOGUE, "1.MIME", b"Content-Type: multipart/mixed; boundary=c\r\n\r\n"),
        (EPILOGUE, "2.MIME", b"X: y"),
        (EPILOGUE, "2", b""),
        (EPILOGUE, "3.MIME", b"X: z\r\n"),
        (EPILOGUE, "3", b""),
        (CLOSED_INNER, "1", b"--c\r\n\r\nC\r\n--c--\r\n"),
        (CUT_HEADER, "1", b"--b\r\n\r\nB\r\n--b\r\nand \r\n"),
        (CUT_HEADER, "1.2.MIME", b"and "),
        (CUT_HEADER, "1.2", b""),
        (CUT_MESSAGE, "1", b"X: in\r\n"),
        (EMPTY_MESSAGE, "1", b"\r\n"),
        (EMPTY_MESSAGE, "1.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        (EMPTY_MESSAGE, "2", b""),
        (EMPTY_MESSAGE, "2.MIME", b"Content-Type: message/rfc822\r\n"),
        (EMPTY_MESSAGE, "3.MIME", b"Content-Type: message/rfc822\r\nX: y"),
        (EMPTY_MESSAGE, "3.1.MIME", b""),
        (CUT_MESSAGE, "1.HEADER", b"X: in"),
        (CUT_MESSAGE, "1.TEXT", b""),
    ],
)
def test_delimiter_line_ends(data: bytes, spec: str, expected: bytes) -> None:
    assert fetch(data, spec) == expected


LF_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=a\n",
        b"Content-Type: multipart/digest; boundary=b\n",
        b"Content-Type: message/rfc822\n",
        b"Subject: x\n",
        b" folded\n",
        b"no colon\n",
        b"\n",
        b"--a\n",
        b"--a--\n",
        b"--b\n",
        b"--b--\n",
        b"text\n",
        b"x",
    ]
)
SPECS = [
    "",
    "HEADER",
    "TEXT",
    "HEADER.FIELDS (Subject)",
    "HEADER.FIELDS.NOT (Subject)",
    *(n + t for n in ("1", "2", "1.1", "1.2", "2.1") for t in ("", ".MIME", ".HEADER", ".TEXT")),
]


@settings(max_examples=150, deadline=None)
@given(st.lists(LF_PIECES, max_size=30).map(b"".join))
def test_bare_lf_parses_like_crlf(data: bytes) -> None:
    """A message stored with LF answers like its CRLF form, line ends aside."""
    lf = parse_message(data)
    crlf = parse_message(data.replace(b"\n", b"\r\n"))
    for spec in SPECS:
        section_ = parse_section(Parser(b"[" + spec.encode() + b"]"))
        ours = section(lf, section_)
        theirs = section(crlf, section_)
        assert ours is not None
        assert theirs is not None
        assert re.sub(rb"\r?\n", b"\r\n", ours) == theirs
