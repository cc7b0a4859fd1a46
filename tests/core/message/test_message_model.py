"""parse_message: header blocks, MIME trees, part numbers, malformed input.

Expected offsets and bytes were checked against Dovecot 2.3.19 where the comment says so.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.message import Message, Part, _model, parse_message


def body(m: Message, p: Part | None) -> bytes:
    assert p is not None
    return m.data[p.body_start : p.end]


def header(m: Message, p: Part | None) -> bytes:
    assert p is not None
    return m.data[p.header.start : p.header.end]


# -- header blocks --------------------------------------------------------------------


def test_simple_message() -> None:
    m = parse_message(b"From: a@b\r\nSubject: hi\r\n\r\nhello\r\n")
    assert m.size == len(m.data)
    assert header(m, m.root) == b"From: a@b\r\nSubject: hi\r\n\r\n"
    assert body(m, m.root) == b"hello\r\n"
    assert (m.root.media_type, m.root.subtype, m.root.encoding) == (b"text", b"plain", b"7bit")
    assert m.root.params == ()
    assert m.root.number == ()
    assert m.root.lines == 1
    assert m.root.header.get(b"SUBJECT") == b"hi"
    assert m.root.header.get(b"x-missing") is None
    assert "Message(" in repr(m)
    assert "Part(" in repr(m.root)
    assert "HeaderBlock(" in repr(m.root.header)


def test_fields_raw_and_unfolded() -> None:
    data = b"Subject: a\r\n  b\r\n\tc\r\nX-A: 1\r\nx-a:2 \r\nSubject : spaced\r\n\r\n"
    h = parse_message(data).root.header
    assert h.fields() == [
        (b"Subject", b" a\r\n  b\r\n\tc"),
        (b"X-A", b" 1"),
        (b"x-a", b"2 "),
        (b"Subject ", b" spaced"),
    ]
    assert h.get_all(b"x-A") == [b"1", b"2"]
    assert h.get_all(b"subject") == [b"a  b\tc", b"spaced"]
    assert h.fields() is h.fields()  # cached


def test_line_without_colon_keeps_header_going() -> None:
    # Dovecot: "NoColonLine" does not end the header block; X is still a header field.
    m = parse_message(b"Subject: a\r\nNoColonLine\r\nX: y\r\n\r\nline1\r\nline2")
    assert m.root.header.get(b"x") == b"y"
    assert (b"NoColonLine", b"") in m.root.header.fields()
    assert body(m, m.root) == b"line1\r\nline2"
    assert m.root.lines == 1  # Dovecot counts line ends: the last line has none


def test_bare_lf() -> None:
    data = b"Subject: lf\nX: y\n\nbody\nmore\n"
    m = parse_message(data)
    assert header(m, m.root) == b"Subject: lf\nX: y\n\n"
    assert body(m, m.root) == b"body\nmore\n"
    assert m.root.header.fields() == [(b"Subject", b" lf"), (b"X", b" y")]
    assert m.root.lines == 2


def test_no_blank_line_means_all_header() -> None:
    m = parse_message(b"Subject: b\r\nX: y")
    assert header(m, m.root) == b"Subject: b\r\nX: y"
    assert body(m, m.root) == b""
    assert m.root.header.get(b"x") == b"y"
    assert m.root.lines == 0


def test_no_header() -> None:
    m = parse_message(b"\r\nbody only\r\n")
    assert header(m, m.root) == b"\r\n"
    assert body(m, m.root) == b"body only\r\n"
    assert m.root.header.fields() == []
    m = parse_message(b"\nbody only\n")
    assert header(m, m.root) == b"\n"


@pytest.mark.parametrize("data", [b"", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b":", b"--"])
def test_tiny(data: bytes) -> None:
    m = parse_message(data)
    assert m.root.header.start == 0
    assert m.root.body_start <= m.root.end == len(data)


def test_eight_bit_header() -> None:
    data = "Subject: caf\u00e9\r\n\u00e9X: 8bit \u00e9\r\n  folded\r\n\r\nA\r\n".encode()
    h = parse_message(data).root.header
    assert h.get(b"subject") == "caf\u00e9".encode()
    assert h.get("\u00e9x".encode()) == "8bit \u00e9  folded".encode()


def test_leading_whitespace_line() -> None:
    m = parse_message(b" leading: ws\r\nSubject: s\r\n\r\nA\r\n")
    assert m.root.header.get(b"subject") == b"s"
    assert m.root.header.fields()[0] == (b" leading", b" ws")


# -- Content-Type -----------------------------------------------------------------------


def ctype(value: bytes) -> Part:
    return parse_message(b"Content-Type: " + value + b"\r\n\r\nA\r\n").root


def test_content_type_case_and_params() -> None:
    p = ctype(b"TEXT/Plain; CHARSET=US-ASCII; Format=flowed")
    assert (p.media_type, p.subtype) == (b"text", b"plain")
    assert p.params == ((b"charset", b"US-ASCII"), (b"format", b"flowed"))
    # As Dovecot shows them in BODYSTRUCTURE.
    assert (p.raw_media_type, p.raw_subtype) == (b"TEXT", b"Plain")
    assert p.raw_params == ((b"CHARSET", b"US-ASCII"), (b"Format", b"flowed"))
    assert p.param(b"format") == b"flowed"
    assert p.param(b"nope") is None


def test_content_type_comments_and_quotes() -> None:
    p = ctype(b'(c1) text (c2 (nested) \\) ) / html (x); name="a\\"b" (comment); x = y')
    assert (p.media_type, p.subtype) == (b"text", b"html")
    assert p.params == ((b"name", b'a"b'), (b"x", b"y"))


def test_content_type_odd_corners() -> None:
    assert ctype(b"text/(unclosed \\").raw_media_type == b""
    assert ctype(b"text/plain; a=b trailing garbage").params == ((b"a", b"b"),)
    m = parse_message(b"Content-Type: multipart/mixed; x=1; boundary=b\r\n\r\n--b\r\n\r\nA")
    assert len(m.root.children) == 1


def test_part_built_by_hand() -> None:
    h = parse_message(b"X: y\r\n\r\n").root.header
    p = Part(
        number=(1,),
        header=h,
        body_start=h.end,
        end=h.end,
        media_type=b"text",
        subtype=b"plain",
        params=(),
        encoding=b"7bit",
    )
    assert (p.raw_media_type, p.raw_subtype, p.raw_params, p.raw_encoding) == (
        b"text",
        b"plain",
        (),
        b"7bit",
    )
    assert (p.children, p.message, p.lines) == ((), None, 0)


def test_content_type_folded() -> None:
    m = parse_message(b'Content-Type: multipart/mixed;\r\n boundary="x y"\r\n\r\n--x y\r\n')
    assert m.root.params == ((b"boundary", b"x y"),)


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        # Dovecot 2.3.19: BODYSTRUCTURE ("" "" NIL ...) for these and ("text" "") for the last.
        (b";charset=x", (b"", b"")),
        (b"/plain", (b"", b"")),
        (b"text/", (b"", b"")),
        (b"", (b"", b"")),
        (b"text", (b"text", b"")),
        (b"text/plain garbage; charset=x", (b"", b"")),
        (b"message/rfc822\r\n folded", (b"", b"")),
    ],
)
def test_content_type_broken(value: bytes, raw: tuple[bytes, bytes]) -> None:
    p = ctype(value)
    assert (p.media_type, p.subtype) == (b"text", b"plain")
    assert (p.raw_media_type, p.raw_subtype) == raw
    assert p.params == p.raw_params == ()


def test_params_malformed() -> None:
    # Dovecot keeps only a=b here (the unterminated quoted string is dropped).
    p = ctype(b'text/plain;;; a=b; c; =d; e=; f=@; d="unterminated')
    assert p.params == ((b"a", b"b"),)
    p = ctype(b'text/plain; a="x\\')
    assert p.params == ()


def test_rfc2231_like_dovecot() -> None:
    # Dovecot 2.3.19: ("NAME*" "utf-8''%41x%25y")
    p = ctype(b"text/plain; NAME*0*=utf-8''%41; NAME*1=x%y")
    assert p.raw_params == ((b"NAME*", b"utf-8''%41x%25y"),)
    assert p.params == ((b"name*", b"utf-8''%41x%25y"),)
    p = ctype(b"text/plain; b*1=2; a=0; b*0=1")
    assert p.params == ((b"a", b"0"), (b"b", b"12"))
    p = ctype(b"text/plain; filename*=utf-8''%C3%A9")
    assert p.params == ((b"filename*", b"utf-8''%C3%A9"),)
    p = ctype(b"text/plain; n*1=b; n*0=a; n*0x=c")
    assert p.params == ((b"n*0x", b"c"), (b"n", b"ab"))
    # A gap in the indexes: the pieces stay apart, as Dovecot keeps them.
    p = ctype(b"text/plain; n*0*=a; n*2=c")
    assert p.params == ((b"n*0*", b"a"), (b"n*2", b"c"))
    p = ctype(b"text/plain; n*0=a; n*1*=%42")
    assert p.params == ((b"n*", b"''a%42"),)


def test_encoding() -> None:
    m = parse_message(b"Content-Transfer-Encoding: (c) Base64 (x)\r\n\r\nQUJD\r\n")
    assert m.root.encoding == b"base64"
    assert m.root.raw_encoding == b"Base64"
    m = parse_message(b"Content-Transfer-Encoding: ;\r\n\r\nQUJD\r\n")
    assert m.root.encoding == b"7bit"


# -- multipart ----------------------------------------------------------------------------

NESTED = (
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"pre\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: in\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
    b"--b2\r\n\r\nA\r\n--b2\r\nContent-Type: text/html\r\n\r\n<b>\r\n--b2--\r\n"
    b"--b1  \r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"
    b"--b1--\r\nepilogue\r\n"
)


def test_nested() -> None:
    m = parse_message(NESTED)
    root = m.root
    assert root.media_type == b"multipart"
    assert root.lines == 0
    assert body(m, root).startswith(b"pre\r\n--b1")
    assert body(m, root).endswith(b"epilogue\r\n")
    assert [c.number for c in root.children] == [(1,), (2,), (3,)]
    assert body(m, m.part((1,))) == b"hi"
    assert header(m, m.part((1,))) == b"Content-Type: text/plain\r\n\r\n"
    rfc822 = m.part((2,))
    assert rfc822 is not None
    assert rfc822.message is not None
    assert rfc822.message.number == (2,)
    assert body(m, rfc822).startswith(b"Subject: in")
    assert body(m, rfc822).endswith(b"--b2--\r\n")  # Dovecot: the epilogue keeps it
    assert rfc822.lines == 11
    assert rfc822.message.header.get(b"subject") == b"in"
    assert body(m, m.part((2, 1))) == b"A"
    assert header(m, m.part((2, 1))) == b"\r\n"
    assert body(m, m.part((2, 2))) == b"<b>"
    assert m.part((2, 2)) is rfc822.message.children[1]
    png = m.part((3,))
    assert png is not None
    assert png.encoding == b"base64"
    assert body(m, png) == b"AAAA"
    for missing in [(4,), (0,), (2, 3), (1, 1, 1), (2, 1, 2), (2, 1, 1, 1), (3, 2)]:
        assert m.part(missing) is None
    # Dovecot: a part that is not multipart also answers to one ".1".
    assert m.part((1, 1)) is m.part((1,))
    assert m.part((2, 1, 1)) is m.part((2, 1))
    assert m.part((3, 1)) is png
    assert m.part(()) is root


def test_single_part_numbering() -> None:
    m = parse_message(b"Subject: x\r\n\r\nbody\r\n")
    assert m.part((1,)) is m.root
    assert m.part((2,)) is None
    assert m.part((1, 1)) is None


def test_numbering_like_dovecot() -> None:
    # Dovecot 2.3.19: 1.1 is part 1 (text), 1.1.1 nothing; 2.1 the body of the message
    # in part 2, 2.1.1 nothing; the single-part message's 1.1 nothing.
    data = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nX: 1\r\n\r\nA\r\n"
        b"--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nB\r\n--a--\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1, 1))) == b"A"
    assert m.part((1, 1, 1)) is None
    assert m.part((1, 2)) is None
    assert body(m, m.part((2, 1))) == b"B"
    assert m.part((2, 1, 1)) is None
    assert m.part((2, 2)) is None


def test_top_level_rfc822() -> None:
    m = parse_message(b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body\r\n")
    assert m.part((1,)) is m.root
    inner = m.part((1, 1))
    assert inner is not None
    assert inner is m.root.message
    assert body(m, inner) == b"inner body\r\n"
    assert m.part((1, 2)) is None


def test_message_global() -> None:
    m = parse_message(b"Content-Type: message/global\r\n\r\nSubject: \xc3\xa9\r\n\r\nx\r\n")
    assert m.root.message is not None
    assert m.root.message.header.get(b"subject") == "\u00e9".encode()


def test_bare_lf_multipart_rfc822() -> None:
    # Dovecot (which serves it with CRLF): part 1 is the message "Subject: in..body..x",
    # 3 lines; its text part has 1 line; part 2 is "last".
    data = (
        b"Subject: lf\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: message/rfc822\n\nSubject: in\n\nbody\nx\n--b\n\nlast\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1,))) == b"Subject: in\n\nbody\nx"
    assert m.part((1,)).lines == 3  # type: ignore[union-attr]
    assert body(m, m.part((1, 1))) == b"body\nx"
    assert m.part((1, 1)).lines == 1  # type: ignore[union-attr]
    assert body(m, m.part((2,))) == b"last\n"


def test_boundary_is_a_prefix_match() -> None:
    # Dovecot treats "--bX" as a delimiter of boundary "b" (it compares a prefix).
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--bX\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b--\r\n"
    )
    m = parse_message(data)
    assert [body(m, c) for c in m.root.children] == [b"A", b"B"]


def test_inner_part_ended_by_outer_boundary() -> None:
    # Dovecot 2.3.19: BODY[1] = "--c\r\n\r\ninner", BODY[2] = "outer2\r\n--c\r\n\r\nlate".
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\ninner\r\n"
        b"--b\r\n\r\nouter2\r\n--c\r\n\r\nlate\r\n--b--\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1,))) == b"--c\r\n\r\ninner"
    assert body(m, m.part((1, 1))) == b"inner"
    assert m.part((1, 2)) is None
    assert body(m, m.part((2,))) == b"outer2\r\n--c\r\n\r\nlate"
    assert m.part((2,)).lines == 3  # type: ignore[union-attr]


def test_missing_close_delimiter() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\n\r\nA\r\n--b\r\n\r\nunterminated\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1,))) == b"A"
    assert body(m, m.part((2,))) == b"unterminated\r\n"
    assert m.root.end == len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nA\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno boundaries at all\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n',
    ],
)
def test_multipart_without_parts(data: bytes) -> None:
    # Dovecot shows one empty text/plain part for these; there is no part 1 to fetch.
    m = parse_message(data)
    assert m.root.media_type == b"multipart"
    assert m.root.children == ()
    assert m.part((1,)) is None
    assert m.root.end == len(data)


def test_delimiter_at_end_without_line_end() -> None:
    m = parse_message(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nA\r\n--b")
    assert [body(m, c) for c in m.root.children] == [b"A", b""]
    m = parse_message(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b")
    assert len(m.root.children) == 1


def test_part_header_ended_by_delimiter() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: y\r\n--b\r\n\r\nB\r\n--b--"
    m = parse_message(data)
    first = m.part((1,))
    assert header(m, first) == b"X: y"
    assert body(m, first) == b""
    assert first is not None
    assert first.header.get(b"x") == b"y"
    assert body(m, m.part((2,))) == b"B"


def test_empty_parts_and_epilogue() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\n\r\n--b--\r\nepi"
    m = parse_message(data)
    assert [body(m, c) for c in m.root.children] == [b"", b""]
    assert m.part((1,)).header.end == m.part((1,)).header.start  # type: ignore[union-attr]


def test_digest_default() -> None:
    data = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
        b"--d\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
        b"--d\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n\r\nin mixed\r\n--e--\r\n"
        b"--d--\r\n"
    )
    m = parse_message(data)
    first = m.part((1,))
    assert first is not None
    assert (first.media_type, first.subtype) == (b"message", b"rfc822")
    assert (first.raw_media_type, first.raw_subtype) == (b"message", b"rfc822")
    assert first.message is not None
    assert first.message.header.get(b"subject") == b"one"
    assert body(m, m.part((1, 1))) == b"first"
    assert m.part((2,)).media_type == b"text"  # type: ignore[union-attr]
    inner = m.part((3, 1))
    assert inner is not None
    assert inner.media_type == b"text"


def test_whitespace_after_delimiter() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b \t\r\n\r\nA\r\n--b-- \r\n"
    m = parse_message(data)
    assert [body(m, c) for c in m.root.children] == [b"A"]


def test_depth_cap() -> None:
    levels = 10
    data = b""
    for i in range(levels):
        data += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    data += b"\r\ndeep\r\n"
    m = parse_message(data, max_depth=4)
    p = m.root
    depth = 0
    while p.children:
        p = p.children[0]
        depth += 1
    assert depth == 4
    assert p.media_type == b"multipart"
    assert p.end == len(data)
    full = parse_message(data)
    assert full.part((1,) * levels) is not None
    assert body(full, full.part((1,) * levels)) == b"deep\r\n"


def test_deep_message_nesting_is_capped_by_default() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\n" * 5000 + b"Subject: end\r\n\r\nx"
    m = parse_message(data)
    p = m.root
    depth = 0
    while p.message is not None:
        p = p.message
        depth += 1
    assert depth == 64
    huge = parse_message(data, max_depth=10**6)  # clamped, no RecursionError
    assert huge.root.message is not None


# -- robustness and linear time --------------------------------------------------------------


def check_invariants(m: Message) -> None:
    size = len(m.data)

    def walk(p: Part, lo: int, hi: int) -> None:
        assert lo <= p.header.start <= p.header.end <= p.body_start <= p.end <= hi
        assert p.header.end == p.body_start
        assert p.lines == (
            0 if p.media_type == b"multipart" else m.data.count(b"\n", p.body_start, p.end)
        )
        prev = p.body_start
        for child in p.children:
            assert child.number == (*p.number, len(p.children[: p.children.index(child)]) + 1)
            assert prev <= child.header.start
            walk(child, p.body_start, p.end)
            prev = child.end
        if p.message is not None:
            assert p.message.header.start == p.body_start
            walk(p.message, p.body_start, p.end)
        for s, colon, e in p.header.spans():
            assert p.header.start <= s < e <= p.header.end
            assert colon == -1 or s <= colon < e

    walk(m.root, 0, size)
    assert m.root.end == size


MIME_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=a\r\n",
        b"Content-Type: multipart/digest; boundary=b\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: text/plain; charset*0*=x; charset*1=y\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Subject: x\r\n",
        b" folded\r\n",
        b"no colon\n",
        b"\r\n",
        b"\n",
        b"--a\r\n",
        b"--a--\r\n",
        b"--b\r\n",
        b"--b--\n",
        b"body line\r\n",
        b"QUJD\r\n",
        b"\r",
        b"(",
        b'"',
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(MIME_PIECES, max_size=40).map(b"".join))
def test_mime_shaped_bytes(data: bytes) -> None:
    check_invariants(parse_message(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check_invariants(parse_message(data))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_content_type(value: bytes) -> None:
    value = value.replace(b"\n", b" ")
    p = parse_message(
        b"Content-Type: " + value + b"\r\nContent-Transfer-Encoding: " + value + b"\r\n\r\nx"
    ).root
    assert p.media_type
    assert p.subtype
    assert all(name == name.lower() for name, _ in p.params)


class CountingPattern:
    """A stand-in for a compiled pattern that counts the characters it is asked to scan."""

    def __init__(self, pattern: re.Pattern[bytes], counter: list[int]) -> None:
        self.pattern = pattern
        self.counter = counter

    def search(self, data: bytes, pos: int = 0, endpos: int = 2**63) -> re.Match[bytes] | None:
        m = self.pattern.search(data, pos, endpos)
        self.counter[0] += (m.end() if m else min(endpos, len(data))) - pos
        return m


def scanned(monkeypatch: pytest.MonkeyPatch, data: bytes) -> int:
    counter = [0]
    monkeypatch.setattr(_model, "_BLANK_LINE", CountingPattern(_model._BLANK_LINE, counter))
    parse_message(data)
    return counter[0]


def test_many_parts_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    # Parts without a blank line: each header search must stop at the next delimiter.
    def build(n: int) -> bytes:
        return b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\nX: y\r\n" * n

    small, large = scanned(monkeypatch, build(1000)), scanned(monkeypatch, build(10000))
    assert large <= 11 * small
    m = parse_message(build(100_000), max_parts=200_000)
    assert len(m.root.children) == 100_000
    assert m.part((100_000,)) is not None


def test_huge_header() -> None:
    data = b"X-Long: " + b"a" * 5_000_000 + b"\r\n" + b"X: y\r\n" * 200_000 + b"\r\nbody"
    m = parse_message(data)
    assert m.root.header.get(b"x") == b"y"
    assert len(m.root.header.fields()) == 200_001
    assert m.data[m.root.body_start :] == b"body"


def test_many_dash_lines_that_are_not_delimiters() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + b"--x\r\n" * 200_000
    m = parse_message(data)
    assert len(m.root.children) == 1
    assert m.root.children[0].end == len(data)


def test_cpython_email_corpus() -> None:
    """Every message of the CPython email test data parses with sane offsets."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("test")
    assert spec is not None
    assert spec.origin is not None
    folder = os.path.join(os.path.dirname(spec.origin), "test_email", "data")
    if not os.path.isdir(folder):  # pragma: no cover - Debian's python3 lacks it
        pytest.skip("no CPython email test data")
    names = sorted(n for n in os.listdir(folder) if n.startswith("msg_"))
    assert names
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        check_invariants(parse_message(data))
        check_invariants(parse_message(data.replace(b"\n", b"\r\n")))


def test_longest_boundary_wins() -> None:
    # Dovecot 2.3.19: "--ab--" closes the outer "ab" although the inner "a" is a
    # prefix of it; "--ab" in the epilogue starts nothing.
    data = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n"
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nA\r\n"
        b"--ab--\r\nepi\r\n--ab\r\n\r\nlate\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1,))) == b"--a\r\n\r\nA"
    assert body(m, m.part((1, 1))) == b"A"
    assert m.part((2,)) is None
    # Of two boundaries matching the whole line, the inner one (same string) wins.
    data = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nA\r\n--a--\r\n--a--\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1, 1))) == b"A"
    assert len(m.root.children) == 1
    # A line matching the longer boundary exactly with "--" closes it (no longer scan).
    data = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        b"Content-Type: multipart/mixed; boundary=a-\r\n\r\n--a-\r\n\r\nA\r\n--a---\r\n--a--\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1, 1))) == b"A"
    # Equal boundaries, line not exact: still the innermost.
    data = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nA\r\n--a junk\r\n\r\nB\r\n"
    )
    m = parse_message(data)
    assert body(m, m.part((1, 2))) == b"B\r\n"


def test_boundary_search_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the octets that boundary searches scan: proportional to size x depth."""
    scanned = [0]
    original = _model._Parser.find

    def counting(self: _model._Parser, needle: bytes, pos: int) -> int:
        before = self.found.get(needle)
        found = original(self, needle, pos)
        if self.found.get(needle) is not before:  # a real search, not the memo
            scanned[0] += (self.size if found < 0 else found) - pos
        return found

    monkeypatch.setattr(_model._Parser, "find", counting)

    def build(n: int) -> bytes:
        inner = b"".join(
            b"--o\r\nContent-Type: multipart/mixed; boundary=i%d\r\n\r\n"
            b"--i%d\r\n\r\nx\r\n--i%d\r\n\r\n--x\r\n--i%d--\r\n" % (k, k, k, k)
            for k in range(n)
        )
        return b"Content-Type: multipart/mixed; boundary=o\r\n\r\n" + inner + b"--o--\r\n"

    small = build(500)
    parse_message(small, max_parts=10**6)
    per_octet_small = scanned[0] / len(small)
    scanned[0] = 0
    large = build(5000)
    m = parse_message(large, max_parts=10**6)
    assert len(m.root.children) == 5000
    assert scanned[0] / len(large) <= 2 * per_octet_small + 1


def test_parts_cap_like_dovecot() -> None:
    # Dovecot 2.3.19 stops at 10,000 parts: BODY[9998] is "p9997" and BODY[9999] runs
    # from "p9998" to the end of the message, close delimiter included.
    data = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
        + b"".join(b"--o\r\n\r\np%d\r\n" % i for i in range(10010))
        + b"--o--\r\n"
    )
    m = parse_message(data)
    assert len(m.root.children) == 9999
    assert body(m, m.part((9998,))) == b"p9997"
    last = body(m, m.part((9999,)))
    assert last.startswith(b"p9998\r\n--o\r\n")
    assert last.endswith(b"p10009\r\n--o--\r\n")
    m = parse_message(data, max_parts=3)
    assert len(m.root.children) == 2
    m = parse_message(b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny", max_parts=1)
    assert m.root.message is None
