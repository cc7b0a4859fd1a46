"""SEARCH TEXT's shortcuts answer as the full reading does.

TEXT now looks at the top header first, read from the octets (`MessageInfo.read`)
without a MIME parse, and for an ASCII needle decodes only the fields whose octets hold
it (`_field_has`, `field_at`). These tests pin the pieces to the parser
(`top_header`, `field_at` against `HeaderBlock.fields`) and the answers to the reading
of every header block and body text that TEXT is defined by.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap._search import SearchText
from mailproto.message import MessageInfo, parse_message, search
from mailproto.message._model import HeaderBlock
from mailproto.message._search import body_texts, field_at, top_header, walk
from mailproto.message._words import decode_header, fold
from mailproto_adapters.mda import imap_data
from mailproto_adapters.mda.maildir import MaildirStore

_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")
_DATE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)

PIECES = [
    b"Subject: ",
    b"From: ",
    b"To: ",
    b"X-Y:",
    b"no colon",
    b":",
    b" ",
    b"\t",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n ",
    b"\r\n\r\n",
    b"Hello",
    b"hello world",
    b"MAY",
    b"may",
    b"=?utf-8?q?m=C3=A4y?=",
    b"=?utf-8?b?bWF5?=",
    b"=?iso-8859-1?q?caf=E9?=",
    b"=?",
    b"?=",
    b"\xc3\xa9",
    b"\xe9",
    b"e\xcc\x81",
    b"\xef\xac\x81",  # LATIN SMALL LIGATURE FI: NFKC "fi"
    b"\xe2\x84\xaa",  # KELVIN SIGN: folds to "k"
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"bWF5IGhlbGxv\r\n",
    b"m=C3=A4y =\r\n",
]
NEEDLES = [b"may", b"hello", b"hello world", b"o w", b"ma", b"fi", b"k", b"caf", b"x-y:",
           b"subject: h", b"\xc3\xa9", b"m\xc3\xa4y", b"", b" ", b"no colon:", b"?="]  # fmt: skip

messages = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)


def _old_block_text(header: HeaderBlock) -> str:
    lines = [
        name.decode("utf-8", "replace") + ":" + decode_header(_UNFOLD.sub(b"", value))
        for name, value in header.fields()
    ]
    return fold("\n".join(lines))


def _reference(data: bytes, needle: bytes) -> bool:
    """TEXT as defined: every header block, then every body text."""
    folded = fold(needle.decode("utf-8", "replace"))
    if not folded:
        return True
    message = parse_message(data)
    texts = [_old_block_text(p.header) for p in walk(message.root)] + body_texts(message)
    return any(folded in t for t in texts)


def _info(data: bytes, *, read: bool) -> MessageInfo:
    return MessageInfo(
        seq=1,
        uid=1,
        internal_date=_DATE,
        size=len(data),
        load=lambda: parse_message(data),
        read=(lambda: data) if read else None,
    )


@settings(max_examples=400, deadline=None)
@given(messages)
def test_top_header_is_the_parsers(data: bytes) -> None:
    mine = top_header(data)
    root = parse_message(data).root.header
    assert (mine.start, mine.end) == (root.start, root.end)
    assert mine.fields() == root.fields()


@settings(max_examples=400, deadline=None)
@given(messages)
def test_field_at_is_fields(data: bytes) -> None:
    header = top_header(data)
    fields = header.fields()
    for k, (start, _colon, end) in enumerate(header.spans()):
        for pos in range(start, end):
            if data[pos : pos + 1] in (b"\r", b"\n"):
                continue  # a needle holds no line end, so no match starts there
            name, value, after = field_at(header, pos)
            assert (name, value) == fields[k]
            assert after == end


@settings(max_examples=600, deadline=None)
@given(messages, st.sampled_from(NEEDLES))
def test_text_search_equals_reference(data: bytes, needle: bytes) -> None:
    key = SearchText(name="TEXT", value=needle)
    expected = _reference(data, needle)
    for read in (True, False):
        assert search(key, [_info(data, read=read)], charset="UTF-8") == ([1] if expected else [])


@settings(max_examples=200, deadline=None)
@given(messages, st.binary(min_size=1, max_size=6).filter(lambda b: b"\x00" not in b))
def test_text_search_any_needle(data: bytes, needle: bytes) -> None:
    key = SearchText(name="TEXT", value=needle)
    expected = _reference(data, needle)
    got = search(key, [_info(data, read=True)], charset="UTF-8")
    assert got == ([1] if expected else [])


def test_sort_after_search_keeps_the_parse() -> None:
    data = b"Subject: may\r\n\r\nbody\r\n"
    calls: list[int] = []

    def load() -> object:
        calls.append(1)
        return parse_message(data)

    info = MessageInfo(seq=1, uid=1, internal_date=_DATE, size=len(data), load=load,  # type: ignore[arg-type]
                       read=lambda: data)  # fmt: skip
    key = SearchText(name="TEXT", value=b"body")
    assert search(key, [info]) == [1]
    assert calls == []  # parsed from the octets read, load never called


@pytest.mark.parametrize(
    "needle", [b"may", b"hello", b"m\xc3\xa4y", b"caf\xc3\xa9", b"nowhere", b"zz top"]
)
def test_store_search_read_and_load_agree(tmp_path: Path, needle: bytes) -> None:
    user = MaildirStore(tmp_path / "mail").user("alice")
    corpus = [
        b"Date: Tue, 4 May 2024 10:00:00 +0000\r\nSubject: x\r\n\r\nbody\r\n",
        b"Subject: =?utf-8?q?m=C3=A4y?=\r\n\r\nhello\r\n",
        b"Subject: caf\xc3\xa9\r\nContent-Transfer-Encoding: base64\r\n\r\nbWF5IGhlbGxv\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nX-Zz: zz top\r\n\r\nm\r\n--b--\r\n",
    ]
    for data in corpus:
        user.deliver(data)
    box = user.mailbox("INBOX")
    records = box.snapshot()
    infos = imap_data.message_infos(box, records)
    assert all(i.read is not None for i in infos)
    plain = [
        MessageInfo(seq=i.seq, uid=i.uid, internal_date=i.internal_date, size=i.size, load=i.load)
        for i in infos
    ]
    key = SearchText(name="TEXT", value=needle)
    expected = [n for n, data in enumerate(corpus, 1) if _reference(data, needle)]
    assert search(key, infos, charset="UTF-8") == expected
    assert search(key, plain, charset="UTF-8") == expected
    # expunged meanwhile: reads as an empty message
    box.set_flags([records[0].uid], ["\\Deleted"])
    box.expunge()
    assert records[0].uid not in [r.uid for r in box.snapshot()]
    assert search(key, infos[:1], charset="UTF-8") == ([] if needle else [1])


@settings(max_examples=400, deadline=None)
@given(messages, st.data())
def test_text_search_needle_from_message(data: bytes, draw: st.DataObject) -> None:
    start = draw.draw(st.integers(0, len(data)))
    needle = data[start : start + draw.draw(st.integers(1, 12))].replace(b"\x00", b"")
    if not needle:
        return
    if draw.draw(st.booleans()):
        needle = needle.upper()
    key = SearchText(name="TEXT", value=needle)
    expected = _reference(data, needle)
    got = search(key, [_info(data, read=True)], charset="UTF-8")
    assert got == ([1] if expected else [])
