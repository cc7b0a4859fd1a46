from __future__ import annotations

import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto._util import LocalProtocolError
from mailproto.imap._grammar import ParseError, Parser
from mailproto.imap._types import (
    Section,
    StatusItem,
    decode_mailbox,
    encode_mailbox,
    parse_partial,
    parse_section,
)


@pytest.mark.parametrize(
    ("wire", "section", "canonical"),
    [
        (b"[]", Section(), b""),
        (b"[1]", Section((1,)), b"1"),
        (b"[1.2.3]", Section((1, 2, 3)), b"1.2.3"),
        (b"[HEADER]", Section(text="HEADER"), b"HEADER"),
        (b"[header]", Section(text="HEADER"), b"HEADER"),
        (b"[TEXT]", Section(text="TEXT"), b"TEXT"),
        (b"[4.1.TEXT]", Section((4, 1), "TEXT"), b"4.1.TEXT"),
        (b"[3.MIME]", Section((3,), "MIME"), b"3.MIME"),
        (b"[2.HEADER]", Section((2,), "HEADER"), b"2.HEADER"),
        (
            b"[HEADER.FIELDS (From To)]",
            Section(text="HEADER.FIELDS", fields=(b"From", b"To")),
            b"HEADER.FIELDS (From To)",
        ),
        (
            b'[1.HEADER.FIELDS.NOT ("Subject" {4}\r\nDate)]',
            Section((1,), "HEADER.FIELDS.NOT", (b"Subject", b"Date")),
            b"1.HEADER.FIELDS.NOT (Subject Date)",
        ),
        (
            b'[HEADER.FIELDS ("X(1)" "NIL" "a\\"b")]',
            Section(text="HEADER.FIELDS", fields=(b"X(1)", b"NIL", b'a"b')),
            b'HEADER.FIELDS ("X(1)" "NIL" "a\\"b")',
        ),
    ],
)
def test_parse_section(wire: bytes, section: Section, canonical: bytes) -> None:
    p = Parser(wire + b"<0>")
    assert parse_section(p) == section
    assert p.data[p.pos :] == b"<0>"
    assert section.to_bytes() == canonical
    again = Parser(b"[" + canonical + b"]")
    assert parse_section(again) == section
    again.end()


@pytest.mark.parametrize(
    ("wire", "pos"),
    [
        (b"", 0),
        (b"HEADER]", 0),
        (b"[", 1),
        (b"[MIME]", 5),  # MIME needs a part number
        (b"[0]", 1),
        (b"[1.0]", 3),
        (b"[1.]", 3),
        (b"[1.FOO]", 3),
        (b"[HEADER.FIELDS]", 14),
        (b"[HEADER.FIELDS ()]", 16),
        (b"[HEADER.FIELDS (a:b)]", 15),
        (b"[HEADER.FIELDS (a b]", 20),  # "b]" is an astring
        (b"[TEXT (From)]", 5),
        (b"[1.2", 4),
        (b"[99999999999]", 1),
    ],
)
def test_parse_section_refuses(wire: bytes, pos: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_section(Parser(wire))
    assert info.value.pos == pos


@pytest.mark.parametrize(
    "kwargs",
    [
        {"part": (0,)},
        {"part": (1, 4294967296)},
        {"text": "MIME"},
        {"text": "BODY"},
        {"text": "HEADER.FIELDS"},
        {"text": "HEADER.FIELDS.NOT", "fields": (b"a b",)},
        {"text": "HEADER.FIELDS", "fields": (b"",)},
        {"text": "HEADER", "fields": (b"From",)},
        {"fields": (b"From",)},
    ],
)
def test_section_validates(kwargs: dict[str, typing.Any]) -> None:
    with pytest.raises(LocalProtocolError):
        Section(**kwargs)


_FIELD = st.binary(min_size=1, max_size=8).filter(
    lambda b: all(0x21 <= c <= 0x7E and c != 0x3A for c in b)
)


@st.composite
def _sections(draw: st.DrawFn) -> Section:
    part = tuple(draw(st.lists(st.integers(1, 4294967295), max_size=4)))
    texts: list[typing.Any] = [None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"]
    if part:
        texts.append("MIME")
    text = draw(st.sampled_from(texts))
    fields: tuple[bytes, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        fields = tuple(draw(st.lists(_FIELD, min_size=1, max_size=4)))
    return Section(part, text, fields)


@given(_sections())
def test_section_round_trip(section: Section) -> None:
    p = Parser(b"[" + section.to_bytes() + b"]")
    assert parse_section(p) == section
    p.end()


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        (b"<0>", (0, None)),
        (b"<0.1>", (0, 1)),
        (b"<123.4567>", (123, 4567)),
        (b"<9223372036854775807.9223372036854775807>", (2**63 - 1, 2**63 - 1)),
    ],
)
def test_parse_partial(wire: bytes, value: tuple[int, int | None]) -> None:
    p = Parser(wire)
    assert parse_partial(p) == value
    p.end()


@pytest.mark.parametrize(
    ("wire", "pos"),
    [
        (b"0.1>", 0),
        (b"<>", 1),
        (b"<1.0>", 3),
        (b"<1.>", 3),
        (b"<1", 2),
        (b"<9223372036854775808>", 1),
    ],
)
def test_parse_partial_refuses(wire: bytes, pos: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_partial(Parser(wire))
    assert info.value.pos == pos


@pytest.mark.parametrize(
    ("raw", "utf8", "name"),
    [
        (b"INBOX", False, "INBOX"),
        (b"inbox", False, "INBOX"),
        (b"InBoX", True, "INBOX"),
        (b"INBOX.Sent", False, "INBOX.Sent"),
        (b"inbox/sub", False, "inbox/sub"),
        (b"Entw&APw-rfe", False, "Entwürfe"),
        (b"Entw&APw-rfe", True, "Entw&APw-rfe"),
        ("Entwürfe".encode(), True, "Entwürfe"),
        (b"a&-b", False, "a&b"),
    ],
)
def test_decode_mailbox(raw: bytes, utf8: bool, name: str) -> None:
    assert decode_mailbox(raw, utf8=utf8) == name


@pytest.mark.parametrize(
    ("raw", "utf8"), [(b"\xff", True), (b"\xc3\xa9", False), (b"&AGE-", False), (b"&", False)]
)
def test_decode_mailbox_refuses(raw: bytes, utf8: bool) -> None:
    with pytest.raises(ValueError):
        decode_mailbox(raw, utf8=utf8)


@pytest.mark.parametrize(
    ("name", "utf8", "raw"),
    [
        ("inbox", False, b"INBOX"),
        ("Inbox", True, b"INBOX"),
        ("Entwürfe", False, b"Entw&APw-rfe"),
        ("Entwürfe", True, "Entwürfe".encode()),
        ("a&b", False, b"a&-b"),
        ("a&b", True, b"a&b"),
    ],
)
def test_encode_mailbox(name: str, utf8: bool, raw: bytes) -> None:
    assert encode_mailbox(name, utf8=utf8) == raw


@pytest.mark.parametrize("utf8", [False, True])
def test_encode_mailbox_refuses_lone_surrogate(utf8: bool) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        encode_mailbox("x\udc00", utf8=utf8)


@given(st.text(st.characters(exclude_categories=["Cs"])), st.booleans())
def test_mailbox_round_trip(name: str, utf8: bool) -> None:
    expected = "INBOX" if name.upper() == "INBOX" else name
    assert decode_mailbox(encode_mailbox(name, utf8=utf8), utf8=utf8) == expected


def test_status_items() -> None:
    assert set(typing.get_args(StatusItem)) == {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "DELETED-STORAGE",
        "SIZE",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
        "MAILBOXID",
    }
