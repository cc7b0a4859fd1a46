"""Search keys: the typed tree, its reading and writing, and its validation."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from mailproto._util import LocalProtocolError
from mailproto.imap import _search as s
from mailproto.imap._grammar import Encoder, ParseError, Parser, SequenceSet, dump


def read(data: bytes) -> s.SearchKey:
    p = Parser(data)
    key = s.parse_search_key(p)
    p.end()
    return key


def write(key: s.SearchKey) -> bytes:
    e = Encoder()
    s.write_search_key(e, key)
    return dump(e.finish())[:-2]


CASES: list[tuple[bytes, s.SearchKey]] = [
    (b"UNSEEN", s.SearchFlag(name="UNSEEN")),
    (b'SUBJECT "hello world"', s.SearchText(name="SUBJECT", value=b"hello world")),
    (b'HEADER "List-Id" ""', s.SearchHeader(field=b"List-Id", value=b"")),
    (b"KEYWORD $MDNSent", s.SearchKeyword(keyword="$MDNSent")),
    (b"UNKEYWORD foo", s.SearchKeyword(keyword="foo", negate=True)),
    (b"SENTSINCE 9-Sep-0999", s.SearchDate(name="SENTSINCE", date=datetime.date(999, 9, 9))),
    (b"SMALLER 0", s.SearchSize(name="SMALLER", size=0)),
    (b"1,3:*", s.SearchSet(set=SequenceSet(((1, 1), (3, None))))),
    (b"$", s.SearchSet(set=s.SAVED)),
    (b"UID $", s.SearchSet(set=s.SAVED, uid=True)),
    (b"NOT NOT ALL", s.SearchNot(key=s.SearchNot(key=s.SearchFlag(name="ALL")))),
    (
        b"OR (SEEN DRAFT) NEW",
        s.SearchOr(
            left=s.SearchAnd(keys=(s.SearchFlag(name="SEEN"), s.SearchFlag(name="DRAFT"))),
            right=s.SearchFlag(name="NEW"),
        ),
    ),
    (b"MODSEQ 0", s.SearchModSeq(modseq=0)),
    (
        b'MODSEQ "/flags/$Junk" shared 5',
        s.SearchModSeq(modseq=5, entry=b"/flags/$Junk", entry_type="shared"),
    ),
    (b"THREADID T-1_a", s.SearchObjectId(name="THREADID", id="T-1_a")),
]


@pytest.mark.parametrize(("wire", "key"), CASES)
def test_read_and_write(wire: bytes, key: s.SearchKey) -> None:
    assert read(wire) == key
    assert write(key) == wire


def test_lower_case_keys_and_literal_strings() -> None:
    assert read(b'body {3}\r\na"b') == s.SearchText(name="BODY", value=b'a"b')
    assert write(s.SearchText(name="BODY", value=b"\xff")) == b"BODY {1}\r\n\xff"
    assert read(b'modseq "/flags/\\\\draft" PRIV 1') == s.SearchModSeq(
        modseq=1, entry=b"/flags/\\draft", entry_type="priv"
    )


def test_saved_is_a_singleton_value() -> None:
    assert s.Saved() == s.SAVED
    assert s.SAVED != "$"
    assert hash(s.Saved()) == hash(s.SAVED)
    assert repr(s.SAVED) == "SAVED"
    p = Parser(b"$")
    assert s.parse_sequence_set(p) is s.SAVED


def test_search_and_accepts_a_list() -> None:
    key = s.SearchAnd(keys=[s.SearchFlag(name="ALL")])
    assert key.keys == (s.SearchFlag(name="ALL"),)


@pytest.mark.parametrize(
    "wire", [b"FOO", b"OR ALL", b"NOT", b"HEADER x", b"()", b"KEYWORD \\Seen", b"ON 1-Foo-2000"]
)
def test_bad_keys(wire: bytes) -> None:
    with pytest.raises(ParseError):
        read(wire)


INVALID: list[tuple[type[Any], dict[str, Any]]] = [
    (s.SearchFlag, {"name": "FOO"}),
    (s.SearchText, {"name": "FROM", "value": "str"}),
    (s.SearchText, {"name": "FROM", "value": b"\x00"}),
    (s.SearchHeader, {"field": b"a", "value": None}),
    (s.SearchKeyword, {"keyword": "\\Seen"}),
    (s.SearchKeyword, {"keyword": "a b"}),
    (s.SearchDate, {"name": "ON", "date": datetime.datetime(2000, 1, 1)}),
    (s.SearchDate, {"name": "AT", "date": datetime.date(2000, 1, 1)}),
    (s.SearchSize, {"name": "LARGER", "size": -1}),
    (s.SearchSize, {"name": "LARGER", "size": 2**32}),
    (s.SearchSize, {"name": "LARGER", "size": True}),
    (s.SearchSet, {"set": "1:*"}),
    (s.SearchModSeq, {"modseq": -1}),
    (s.SearchModSeq, {"modseq": 2**63}),
    (s.SearchModSeq, {"modseq": 1, "entry": b"/flags/x"}),
    (s.SearchModSeq, {"modseq": 1, "entry": b"/x", "entry_type": "all"}),
    (s.SearchModSeq, {"modseq": 1, "entry": b"/flags/x", "entry_type": "some"}),
    (s.SearchObjectId, {"name": "EMAILID", "id": ""}),
    (s.SearchObjectId, {"name": "EMAILID", "id": "a" * 256}),
    (s.SearchObjectId, {"name": "MAILBOXID", "id": "a"}),
    (s.SearchNot, {"key": "ALL"}),
    (s.SearchNot, {"key": s.SearchKey()}),
    (s.SearchOr, {"left": s.SearchFlag(name="ALL"), "right": None}),
    (s.SearchAnd, {"keys": ()}),
    (s.SearchAnd, {"keys": "ALL"}),
    (s.SearchAnd, {"keys": ("ALL",)}),
]


@pytest.mark.parametrize(("cls", "kwargs"), INVALID)
def test_invalid_keys_are_refused(cls: type[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        cls(**kwargs)
