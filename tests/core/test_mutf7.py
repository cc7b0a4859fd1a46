from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto import mutf7


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("", b""),
        ("INBOX", b"INBOX"),
        ("&", b"&-"),
        ("a&b&&", b"a&-b&-&-"),
        ("Entwürfe", b"Entw&APw-rfe"),
        # RFC 3501 5.1.3's example.
        ("~peter/mail/日本語/台北", b"~peter/mail/&ZeVnLIqe-/&U,BTFw-"),
        ("😀", b"&2D3eAA-"),
        ("tab\there", b"tab&AAk-here"),
        ("\x7f", b"&AH8-"),
        ("é&é", b"&AOk-&-&AOk-"),
    ],
)
def test_known_answers(text: str, wire: bytes) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"&AGE-", "printable ASCII"),  # "a" must stand for itself
        (b"&ACY-", "printable ASCII"),  # "&" must be "&-"
        (b"&AOkAYQ-", "printable ASCII"),  # "éa": the "a" must be outside
        (b"&Jjo", "not closed"),
        (b"&Jjo!", "not closed"),
        (b"&", "not closed"),
        (b"&2D0-", "surrogate"),  # a lone high surrogate
        (b"&3gDYPQ-", "surrogate"),  # reversed pair
        (b"\xc3\xa9", "outside printable"),
        (b"a\tb", "outside printable"),
        (b"&Jj-", "non-zero bits"),
        (b"&AOk,-", "whole UTF-16"),
        (b"&A-", "incomplete"),
        (b"&AOkA-", "whole UTF-16"),
    ],
)
def test_malformed_is_refused(wire: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        mutf7.decode(wire)


def test_adjacent_shifts_are_accepted() -> None:
    assert mutf7.decode(b"&AOk-&AOk-") == "éé"
    assert mutf7.encode("éé") == b"&AOkA6Q-"


def test_encode_refuses_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        mutf7.encode("a\ud800b")


_TEXT = st.text(st.characters(exclude_categories=["Cs"]))


@given(_TEXT)
def test_round_trip(text: str) -> None:
    wire = mutf7.encode(text)
    assert all(0x20 <= c <= 0x7E for c in wire)
    assert mutf7.decode(wire) == text


@given(st.binary())
def test_decode_raises_only_value_error(data: bytes) -> None:
    try:
        text = mutf7.decode(data)
    except ValueError:
        return
    # Whatever decodes re-encodes to itself, except for adjacent shifts.
    if b"-&" not in data:
        assert mutf7.encode(text) == data


@given(st.text(alphabet="&-AOkabc,+9é"))
def test_decode_of_shift_like_text(text: str) -> None:
    data = text.encode("utf-8")
    try:
        decoded = mutf7.decode(data)
    except ValueError:
        return
    assert mutf7.decode(mutf7.encode(decoded)) == decoded
