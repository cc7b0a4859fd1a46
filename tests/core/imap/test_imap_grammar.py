"""Tests for mailproto.imap._grammar: the IMAP tokens, read and written."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto._util import LocalProtocolError
from mailproto.imap._grammar import (
    MAX_NUMBER,
    MAX_NUMBER64,
    Encoder,
    LiteralFragment,
    ParseError,
    Parser,
    SequenceSet,
    dump,
)

# --- structure ---------------------------------------------------------------------------


def test_parse_error_carries_the_position() -> None:
    err = ParseError("expected x", 7)
    assert err.pos == 7
    assert str(err) == "expected x (at octet 7)"


def test_fail_says_what_was_expected_and_what_came() -> None:
    p = Parser(b"abc def", 4)
    err = p.fail("a number")
    assert err.pos == 4
    assert "expected a number, got b'def'" in str(err)


def test_structure_primitives() -> None:
    p = Parser(b"ab (c)")
    assert not p.at_end()
    assert p.peek() == ord("a")
    assert p.peek_is(b"ab")
    assert not p.peek_is(b"b")
    assert not p.maybe(b"x")
    assert p.maybe(b"a")
    p.expect(b"b")
    p.sp()
    with pytest.raises(ParseError) as info:
        p.sp()
    assert info.value.pos == 3
    with pytest.raises(ParseError, match="'x'"):
        p.expect(b"x")
    with pytest.raises(ParseError, match="end of line"):
        p.end()
    p.open()
    assert p.depth == 1
    assert p.atom() == b"c"
    p.close()
    assert p.depth == 0
    assert p.at_end()
    assert p.peek() == -1
    p.end()


def test_parser_starts_at_a_position() -> None:
    p = Parser(b"xx 12", 3)
    assert p.number() == 12
    p.end()


def test_keywords() -> None:
    p = Parser(b"fetch Body.PEEK nil NIL")
    assert p.keyword() == b"FETCH"
    p.sp()
    with pytest.raises(ParseError, match=r"BODY\.PEEKX"):
        p.expect_keyword(b"BODY.PEEKX")
    assert p.pos == 6
    assert not p.maybe_keyword(b"BODYX")
    assert p.maybe_keyword(b"BODY")
    p.expect_keyword(b".PEEK")
    p.sp()
    assert p.nil()
    p.sp()
    assert p.nil()
    assert not p.nil()


def test_parens() -> None:
    p = Parser(b"(1 2 3) () (4)")
    assert p.parens(Parser.number) == [1, 2, 3]
    p.sp()
    assert p.parens(Parser.number) == []
    p.sp()
    assert p.parens(Parser.number, allow_empty=False) == [4]
    with pytest.raises(ParseError, match="at least one list item") as info:
        Parser(b"()").parens(Parser.number, allow_empty=False)
    assert info.value.pos == 1
    with pytest.raises(ParseError, match="'\\)'"):
        Parser(b"(1 2").parens(Parser.number)
    with pytest.raises(ParseError, match="'\\('"):
        Parser(b"1 2)").parens(Parser.number)


def _nested(p: Parser) -> int:
    if p.peek_is(b"("):
        return 1 + max(p.parens(_nested), default=0)
    return p.number() * 0


def test_nesting_limit() -> None:
    assert _nested(Parser(b"(" * 64 + b"1" + b")" * 64)) == 64
    deep = b"(" * 65 + b"1" + b")" * 65
    with pytest.raises(ParseError, match="nested too deeply") as info:
        _nested(Parser(deep))
    assert info.value.pos == 65
    assert _nested(Parser(b"((1))", max_depth=2)) == 2
    with pytest.raises(ParseError, match="nested too deeply"):
        _nested(Parser(b"(((1)))", max_depth=2))


# --- atoms and numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "atom", "rest"),
    [
        (b"NOOP", b"NOOP", b""),
        (b"a+b.c!#$&'-/:;<=>?@^_`|~ x", b"a+b.c!#$&'-/:;<=>?@^_`|~", b" x"),
        (b"BODY[", b"BODY[", b""),
        (b"OK]", b"OK", b"]"),
        (b"a(b", b"a", b"(b"),
        (b"a%b", b"a", b"%b"),
        (b"a*b", b"a", b"*b"),
        (b'a"b', b"a", b'"b'),
        (b"a\\b", b"a", b"\\b"),
        (b"a{b", b"a", b"{b"),
        (b"a\x7fb", b"a", b"\x7fb"),
        (b"a\x01b", b"a", b"\x01b"),
        (b"a\xc3\xa9", b"a", b"\xc3\xa9"),
    ],
)
def test_atom(data: bytes, atom: bytes, rest: bytes) -> None:
    p = Parser(data)
    assert p.atom() == atom
    assert p.data[p.pos :] == rest


@pytest.mark.parametrize("data", [b"", b" x", b"(x", b"]", b"\xff"])
def test_atom_refused(data: bytes) -> None:
    with pytest.raises(ParseError, match="an atom") as info:
        Parser(data).atom()
    assert info.value.pos == 0


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"0", 0),
        (b"007", 7),
        (b"4294967295", MAX_NUMBER),
        (b"0" * 10000 + b"12", 12),
    ],
)
def test_number(data: bytes, value: int) -> None:
    p = Parser(data + b" ")
    assert p.number() == value
    assert p.data[p.pos :] == b" "


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"4294967296", "out of range"),
        (b"9" * 10000, "out of range"),
        (b"", "a number"),
        (b"-1", "a number"),
        (b"x1", "a number"),
    ],
)
def test_number_refused(data: bytes, message: str) -> None:
    p = Parser(data)
    with pytest.raises(ParseError, match=message) as info:
        p.number()
    assert info.value.pos == 0
    assert p.pos == 0


def test_nz_number() -> None:
    assert Parser(b"1").nz_number() == 1
    with pytest.raises(ParseError, match="non-zero") as info:
        Parser(b"00").nz_number()
    assert info.value.pos == 1


def test_number64() -> None:
    assert Parser(b"9223372036854775807").number64() == MAX_NUMBER64
    assert Parser(b"4294967296").number64() == MAX_NUMBER + 1
    with pytest.raises(ParseError, match="out of range"):
        Parser(b"9223372036854775808").number64()
    with pytest.raises(ParseError, match="a number"):
        Parser(b"x").number64()
    assert Parser(b"5").nz_number64() == 5
    with pytest.raises(ParseError, match="non-zero"):
        Parser(b"0").nz_number64()


# --- strings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b'""', b""),
        (b'"hello world"', b"hello world"),
        (b'"a\\"b"', b'a"b'),
        (b'"a\\\\b"', b"a\\b"),
        (b'"\\\\\\""', b'\\"'),
        (b'"caf\xc3\xa9"', b"caf\xc3\xa9"),
        (b'"{5}"', b"{5}"),
    ],
)
def test_quoted(data: bytes, value: bytes) -> None:
    p = Parser(data + b")")
    assert p.quoted() == value
    assert p.data[p.pos :] == b")"


@pytest.mark.parametrize(
    "data",
    [b'"abc', b'"a\\b"', b'"a\rb"', b'"a\nb"', b'"a\x00b"', b"abc", b'"a\\"', b""],
)
def test_quoted_refused(data: bytes) -> None:
    with pytest.raises(ParseError, match="a quoted string") as info:
        Parser(data).quoted()
    assert info.value.pos == 0


@pytest.mark.parametrize(
    ("data", "value", "binary_ok"),
    [
        (b"{0}\r\n", b"", False),
        (b"{5}\r\nhello", b"hello", False),
        (b"{5+}\r\nhe\r\no", b"he\r\no", False),
        (b"{7}\r\n{5}\r\nab", b"{5}\r\nab", False),
        (b"~{3}\r\na\x00b", b"a\x00b", True),
        (b"~{3+}\r\na\x00b", b"a\x00b", True),
        (b"~{1}\r\nx", b"x", True),
        (b"{1}\r\n\xff", b"\xff", False),
    ],
)
def test_literal(data: bytes, value: bytes, binary_ok: bool) -> None:
    p = Parser(data + b" rest")
    assert p.literal(binary_ok=binary_ok) == value
    assert p.data[p.pos :] == b" rest"


@pytest.mark.parametrize(
    ("data", "message", "binary_ok"),
    [
        (b"{3}\r\na\x00b", "NUL in a literal", False),
        (b"{3}\r\na\x00b", "NUL in a literal", True),
        (b"~{3}\r\nabc", "literal8", False),
        (b"{5}\r\nabc", "runs past the end", False),
        (b"{5}abcde", "a literal", False),
        (b"{5}\nabcde", "a literal", False),
        (b"{-1}\r\n", "a literal", False),
        (b"{12345678901234567890}\r\n", "a literal", False),
        (b"{5++}\r\nabcde", "a literal", False),
        (b'"x"', "a literal", False),
    ],
)
def test_literal_refused(data: bytes, message: str, binary_ok: bool) -> None:
    with pytest.raises(ParseError, match=message) as info:
        Parser(data).literal(binary_ok=binary_ok)
    assert info.value.pos == 0


@pytest.mark.parametrize(
    ("data", "value"),
    [(b'"q"', b"q"), (b"{1}\r\nl", b"l"), (b"{1+}\r\nl", b"l")],
)
def test_string(data: bytes, value: bytes) -> None:
    p = Parser(data)
    assert p.string() == value
    p.end()


def test_string_refused() -> None:
    with pytest.raises(ParseError, match="a string"):
        Parser(b"atom").string()
    with pytest.raises(ParseError, match="literal8"):
        Parser(b"~{1}\r\nx").string()


@pytest.mark.parametrize(
    ("data", "value", "rest"),
    [
        (b"user", b"user", b""),
        (b"us]er x", b"us]er", b" x"),
        (b"NIL", b"NIL", b""),
        (b'"pass word"', b"pass word", b""),
        (b"{4}\r\npass", b"pass", b""),
        (b"a{4}", b"a", b"{4}"),
        (b"+x", b"+x", b""),
        (b"~{1}\r\nx", b"~", b"{1}\r\nx"),  # "~" is an ASTRING-CHAR, literal8 no string
    ],
)
def test_astring(data: bytes, value: bytes, rest: bytes) -> None:
    p = Parser(data)
    assert p.astring() == value
    assert p.data[p.pos :] == rest


@pytest.mark.parametrize("data", [b"", b" x", b"(x", b"%", b"*", b"{x", b"\xc3\xa9"])
def test_astring_refused(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        Parser(data).astring()
    assert info.value.pos == 0


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"NIL", None),
        (b"nil", None),
        (b'"NIL"', b"NIL"),
        (b'""', b""),
        (b"{3}\r\nNIL", b"NIL"),
    ],
)
def test_nstring(data: bytes, value: bytes | None) -> None:
    p = Parser(data)
    assert p.nstring() == value
    p.end()


@pytest.mark.parametrize("data", [b"atom", b"", b"(NIL)", b"~{1}\r\nx"])
def test_nstring_refused(data: bytes) -> None:
    with pytest.raises(ParseError):
        Parser(data).nstring()


@pytest.mark.parametrize(
    ("data", "value", "rest"),
    [
        (b"*", b"*", b""),
        (b"INBOX/%", b"INBOX/%", b""),
        (b"a]*b% x", b"a]*b%", b" x"),
        (b'"%"', b"%", b""),
        (b"{1}\r\n*", b"*", b""),
    ],
)
def test_list_mailbox(data: bytes, value: bytes, rest: bytes) -> None:
    p = Parser(data)
    assert p.list_mailbox() == value
    assert p.data[p.pos :] == rest


@pytest.mark.parametrize("data", [b"", b" ", b"(", b"\xc3\xa9"])
def test_list_mailbox_refused(data: bytes) -> None:
    with pytest.raises(ParseError, match="a mailbox pattern"):
        Parser(data).list_mailbox()


def test_text() -> None:
    p = Parser(b"hello [world] \x01\xff\r\nnext")
    assert p.text() == b"hello [world] \x01\xff"
    assert p.peek_is(b"\r\n")
    assert Parser(b"").text() == b""
    p = Parser(b"a\rb")
    assert p.text() == b"a"


# --- other shared values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "flag", "rest"),
    [
        (b"\\Seen", "\\Seen", b""),
        (b"\\*", "\\*", b""),
        (b"$Forwarded)", "$Forwarded", b")"),
        (b"\\Answered \\Seen", "\\Answered", b" \\Seen"),
        (b"Junk]", "Junk", b"]"),
    ],
)
def test_flag(data: bytes, flag: str, rest: bytes) -> None:
    p = Parser(data)
    assert p.flag() == flag
    assert p.data[p.pos :] == rest


@pytest.mark.parametrize("data", [b"", b"\\", b"\\ x", b"*", b"(", b"\\\\x"])
def test_flag_refused(data: bytes) -> None:
    with pytest.raises(ParseError, match="a flag"):
        Parser(data).flag()


@pytest.mark.parametrize(
    ("data", "ranges"),
    [
        (b"1", ((1, 1),)),
        (b"*", ((None, None),)),
        (b"1:*", ((1, None),)),
        (b"*:4", ((None, 4),)),
        (b"5:3", ((5, 3),)),
        (b"1,3:5,7:*", ((1, 1), (3, 5), (7, None))),
        (b"4294967295", ((MAX_NUMBER, MAX_NUMBER),)),
    ],
)
def test_sequence_set(data: bytes, ranges: tuple[tuple[int | None, int | None], ...]) -> None:
    p = Parser(data + b" x")
    value = p.sequence_set()
    assert value.ranges == ranges
    assert p.data[p.pos :] == b" x"
    assert value.to_bytes() == data
    assert str(value) == data.decode()
    assert SequenceSet.parse(data) == value
    assert SequenceSet.parse(data.decode()) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"0", "out of range"),
        (b"1:0", "out of range"),
        (b"4294967296", "out of range"),
        (b"1:" + b"9" * 5000, "out of range"),
        (b"", "a sequence set"),
        (b",1", "a sequence set"),
        (b"x", "a sequence set"),
    ],
)
def test_sequence_set_refused(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        Parser(data).sequence_set()
    assert info.value.pos == 0


@pytest.mark.parametrize("data", [b"1,", b"1:", b"1 2", b"1:*:2", "1,é"])
def test_sequence_set_parse_needs_the_whole_input(data: bytes | str) -> None:
    with pytest.raises(ParseError):
        SequenceSet.parse(data)


def test_sequence_set_zero_padded_numbers() -> None:
    assert SequenceSet.parse(b"007:0009").ranges == ((7, 9),)
    assert SequenceSet.parse(b"0" * 5000 + b"1").ranges == ((1, 1),)


@pytest.mark.parametrize(
    "ranges", [(), ((0, 1),), ((1, 0),), ((1, MAX_NUMBER + 1),), ((-1, None),)]
)
def test_sequence_set_validates(ranges: tuple[tuple[int | None, int | None], ...]) -> None:
    with pytest.raises(LocalProtocolError):
        SequenceSet(ranges)


def test_sequence_set_of() -> None:
    assert SequenceSet.of(3).to_bytes() == b"3"
    assert SequenceSet.of(5, 1, 2, 3, 9, 8, 2).to_bytes() == b"1:3,5,8:9"
    with pytest.raises(LocalProtocolError):
        SequenceSet.of()
    with pytest.raises(LocalProtocolError):
        SequenceSet.of(0)


@pytest.mark.parametrize(
    ("data", "largest", "numbers"),
    [
        (b"1:*", 4, [1, 2, 3, 4]),
        (b"*", 4, [4]),
        (b"*:2", 4, [2, 3, 4]),
        (b"5:3,1", 10, [1, 3, 4, 5]),
        (b"3:5,4:8,9,1:2", 10, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (b"2:4,3", 10, [2, 3, 4]),
        (b"7:9", 5, [7, 8, 9]),  # numbers above "*" are kept as given
        (b"1:*", 0, [1]),  # an empty mailbox: "*" is 0, never a member
        (b"*", 0, []),
        (b"1,3", 0, [1, 3]),
    ],
)
def test_sequence_set_iter(data: bytes, largest: int, numbers: list[int]) -> None:
    seq = SequenceSet.parse(data)
    assert list(seq.iter(largest)) == numbers
    for n in range(12):
        assert seq.contains(n, largest) == (n in numbers)


def test_sequence_set_normalized_is_cheap() -> None:
    seq = SequenceSet.parse(b"1:4294967295,7,2:*")
    assert seq.normalized(10) == [(1, MAX_NUMBER)]
    assert next(seq.iter(10)) == 1
    assert seq.contains(MAX_NUMBER, 10)
    assert SequenceSet.parse(b"1:2,4:5").normalized(5) == [(1, 2), (4, 5)]
    assert SequenceSet.parse(b"4:5,1:3").normalized(5) == [(1, 5)]


@pytest.mark.parametrize(
    ("data", "value", "rest"),
    [
        (b"1-Jan-2024", datetime.date(2024, 1, 1), b""),
        (b"01-jan-2024", datetime.date(2024, 1, 1), b""),
        (b"29-Feb-2024 x", datetime.date(2024, 2, 29), b" x"),
        (b'"31-DEC-1999"', datetime.date(1999, 12, 31), b""),
        (b"9-Sep-0001", datetime.date(1, 9, 9), b""),
    ],
)
def test_date(data: bytes, value: datetime.date, rest: bytes) -> None:
    p = Parser(data)
    assert p.date() == value
    assert p.data[p.pos :] == rest


@pytest.mark.parametrize(
    ("data", "message", "pos"),
    [
        (b"29-Feb-2023", "not a valid date", 0),
        (b"0-Jan-2024", "not a valid date", 0),
        (b"32-Jan-2024", "not a valid date", 0),
        (b"1-Foo-2024", "not a valid date", 0),
        (b"1-Jan-0000", "not a valid date", 0),
        (b"1-Jan-24", "a date like", 0),
        (b"100-Jan-2024", "a date like", 0),
        (b'"1-Jan-2024', "'\"'", 11),
        (b'"x"', "a date like", 1),
    ],
)
def test_date_refused(data: bytes, message: str, pos: int) -> None:
    with pytest.raises(ParseError, match=message) as info:
        Parser(data).date()
    assert info.value.pos == pos


def _tz(hours: int, minutes: int = 0) -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (
            b'"17-Jul-1996 02:44:25 -0700"',
            datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=_tz(-7)),
        ),
        (
            b'" 1-jan-2024 00:00:00 +0000"',
            datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        ),
        (
            b'"31-Dec-2023 23:59:59 +0530"',
            datetime.datetime(2023, 12, 31, 23, 59, 59, tzinfo=_tz(5, 30)),
        ),
        (
            b'"01-Mar-2024 12:00:00 -0930"',
            datetime.datetime(2024, 3, 1, 12, tzinfo=_tz(-9, -30)),
        ),
        (
            b'"01-Mar-2024 12:00:00 +2359"',
            datetime.datetime(2024, 3, 1, 12, tzinfo=_tz(23, 59)),
        ),
    ],
)
def test_date_time(data: bytes, value: datetime.datetime) -> None:
    p = Parser(data + b" x")
    got = p.date_time()
    assert got == value
    assert got.utcoffset() == value.utcoffset()
    assert p.data[p.pos :] == b" x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'"1-Jan-2024 00:00:00 +0000"', "a date-time like"),  # day must be 2 wide
        (b'"01-Jan-2024 0:00:00 +0000"', "a date-time like"),
        (b'"01-Jan-2024 00:00:00 0000"', "a date-time like"),
        (b'"01-Jan-2024 00:00:00"', "a date-time like"),
        (b"01-Jan-2024 00:00:00 +0000", "a date-time like"),
        (b'"01-Jan-2024 24:00:00 +0000"', "not a valid date-time"),
        (b'"01-Jan-2024 23:60:00 +0000"', "not a valid date-time"),
        (b'"01-Jan-2024 23:59:60 +0000"', "not a valid date-time"),
        (b'"30-Feb-2024 00:00:00 +0000"', "not a valid date-time"),
        (b'"01-Foo-2024 00:00:00 +0000"', "not a valid date-time"),
        (b'"01-Jan-2024 00:00:00 +2400"', "not a valid date-time"),
        (b'"01-Jan-2024 00:00:00 +0060"', "not a valid time zone"),
    ],
)
def test_date_time_refused(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        Parser(data).date_time()
    assert info.value.pos == 0


# --- writing -----------------------------------------------------------------------------


def test_encoder_line_pieces() -> None:
    e = Encoder()
    out = e.raw(b"A1").sp().raw(b"FETCH").sp().number(0).sp().number(MAX_NUMBER64).finish()
    assert out == [b"A1 FETCH 0 9223372036854775807\r\n"]
    # The encoder starts over after finish().
    assert e.raw(b"A2 NOOP").finish() == [b"A2 NOOP\r\n"]
    with pytest.raises(LocalProtocolError, match="not negative"):
        Encoder().number(-1)


@pytest.mark.parametrize(
    ("mode", "plus", "data", "announcement"),
    [
        (None, False, b"abc", b"{3}\r\n"),
        (None, True, b"abc", b"{3+}\r\n"),
        (None, False, b"a\x00c", b"~{3}\r\n"),
        (None, True, b"a\x00c", b"~{3}\r\n"),
        ("sync", True, b"abc", b"{3}\r\n"),
        ("nonsync", False, b"abc", b"{3+}\r\n"),
        ("binary", False, b"abc", b"~{3}\r\n"),
    ],
)
def test_encoder_literal(mode: str | None, plus: bool, data: bytes, announcement: bytes) -> None:
    e = Encoder(literal_plus=plus)
    e.raw(b"A1 X ")
    e.literal(data, mode)  # type: ignore[arg-type]
    out = e.raw(b" Y").finish()
    expected_mode = mode or ("binary" if b"\x00" in data else "nonsync" if plus else "sync")
    assert out == [b"A1 X " + announcement, LiteralFragment(data, expected_mode), b" Y\r\n"]  # type: ignore[arg-type]
    assert dump(out) == b"A1 X " + announcement + data + b" Y\r\n"


@pytest.mark.parametrize(
    ("data", "utf8", "wire"),
    [
        (b"", False, b'""'),
        (b"hello world", False, b'"hello world"'),
        (b'a"b\\c', False, b'"a\\"b\\\\c"'),
        (b"NIL", False, b'"NIL"'),
        (b"caf\xc3\xa9", True, b'"caf\xc3\xa9"'),
        (b"caf\xc3\xa9", False, b"{5}\r\ncaf\xc3\xa9"),
        (b"caf\xe9", True, b"{4}\r\ncaf\xe9"),
        (b"a\r\nb", False, b"{4}\r\na\r\nb"),
        (b"a\rb", False, b"{3}\r\na\rb"),
        (b"a\nb", False, b"{3}\r\na\nb"),
        (b"x" * 1024, False, b'"' + b"x" * 1024 + b'"'),
        (b"x" * 1025, False, b"{1025}\r\n" + b"x" * 1025),
    ],
)
def test_encoder_quoted_or_literal(data: bytes, utf8: bool, wire: bytes) -> None:
    out = Encoder(utf8=utf8).quoted_or_literal(data).finish()
    assert dump(out) == wire + b"\r\n"
    assert (len(out) == 1) == wire.startswith(b'"')
    p = Parser(dump(out)[:-2])
    assert p.string() == data
    p.end()


def test_encoder_quoted_or_literal_with_nul_is_literal8() -> None:
    # Kept for bodies (nstring) with NUL octets: the only form that carries them.
    out = Encoder().quoted_or_literal(b"\x00").finish()
    assert out == [b"~{1}\r\n", LiteralFragment(b"\x00", "binary"), b"\r\n"]


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"INBOX", b"INBOX"),
        ("INBOX", b"INBOX"),
        (b"a]b", b"a]b"),
        (b"+tag", b"+tag"),
        (b"", b'""'),
        (b"nil", b'"nil"'),
        (b"two words", b'"two words"'),
        (b"50%", b'"50%"'),
        (b"a*", b'"a*"'),
        ("Entwürfe", b"{9}\r\nEntw\xc3\xbcrfe"),
        (b"a\r\n", b"{3}\r\na\r\n"),
    ],
)
def test_encoder_astring(data: bytes | str, wire: bytes) -> None:
    out = Encoder().astring(data).finish()
    assert dump(out) == wire + b"\r\n"
    raw = data.encode() if isinstance(data, str) else data
    p = Parser(dump(out)[:-2])
    assert p.astring() == raw
    p.end()


def test_encoder_astring_utf8() -> None:
    assert Encoder(utf8=True).astring("Entwürfe").finish() == [b'"Entw\xc3\xbcrfe"\r\n']


def test_encoder_astring_refuses_nul() -> None:
    with pytest.raises(LocalProtocolError, match="NUL"):
        Encoder().astring(b"a\x00b")


def test_encoder_nstring() -> None:
    assert Encoder().nstring(None).finish() == [b"NIL\r\n"]
    assert Encoder().nstring(b"NIL").finish() == [b'"NIL"\r\n']
    assert dump(Encoder().nstring(b"a\nb").finish()) == b"{3}\r\na\nb\r\n"


def test_encoder_parens() -> None:
    e = Encoder()
    e.parens([1, 2, 3], Encoder.number).sp().parens([], Encoder.number).sp()
    e.parens([b"a b", b"c"], Encoder.astring)
    assert e.finish() == [b'(1 2 3) () ("a b" c)\r\n']


def test_encoder_fragments_split_at_each_literal() -> None:
    e = Encoder(literal_plus=False)
    e.raw(b"A1 LOGIN ").astring(b"us\ner").sp().astring(b"pa\nss")
    out = e.finish()
    assert out == [
        b"A1 LOGIN {5}\r\n",
        LiteralFragment(b"us\ner", "sync"),
        b" {5}\r\n",
        LiteralFragment(b"pa\nss", "sync"),
        b"\r\n",
    ]


# --- round trips -------------------------------------------------------------------------

_NO_NUL = st.binary(max_size=1100).filter(lambda b: b"\x00" not in b)


@given(_NO_NUL | st.text(max_size=50), st.booleans(), st.booleans())
def test_astring_round_trip(data: bytes | str, utf8: bool, plus: bool) -> None:
    raw = data.encode() if isinstance(data, str) else data
    if b"\x00" in raw:
        return
    p = Parser(dump(Encoder(utf8=utf8, literal_plus=plus).astring(data).finish()))
    assert p.astring() == raw
    p.expect(b"\r\n")
    p.end()


@given(st.none() | _NO_NUL, st.booleans())
def test_nstring_round_trip(data: bytes | None, utf8: bool) -> None:
    p = Parser(dump(Encoder(utf8=utf8).nstring(data).finish()))
    assert p.nstring() == data
    p.expect(b"\r\n")
    p.end()


@given(st.binary(max_size=1100), st.booleans(), st.booleans())
def test_quoted_or_literal_round_trip(data: bytes, utf8: bool, plus: bool) -> None:
    p = Parser(dump(Encoder(utf8=utf8, literal_plus=plus).quoted_or_literal(data).finish()))
    if b"\x00" in data:
        assert p.literal(binary_ok=True) == data
    else:
        assert p.string() == data
    p.expect(b"\r\n")
    p.end()


_SEQ_NUMBER = st.none() | st.integers(1, MAX_NUMBER)


@given(st.lists(st.tuples(_SEQ_NUMBER, _SEQ_NUMBER), min_size=1, max_size=6))
def test_sequence_set_round_trip(ranges: list[tuple[int | None, int | None]]) -> None:
    seq = SequenceSet(tuple(ranges))
    again = SequenceSet.parse(seq.to_bytes())
    # "5:5" is written "5": the same set, one spelling.
    assert [(a, b) if a != b else (a, a) for a, b in again.ranges] == ranges
    assert again.to_bytes() == seq.to_bytes()


@given(st.lists(st.integers(1, 200), min_size=1, max_size=30), st.integers(0, 250))
def test_sequence_set_of_iter_contains(numbers: list[int], largest: int) -> None:
    seq = SequenceSet.of(*numbers)
    assert list(seq.iter(largest)) == sorted(set(numbers))
    assert SequenceSet.parse(seq.to_bytes()) == seq
    for n in range(202):
        assert seq.contains(n, largest) == (n in numbers)


@given(
    st.lists(
        st.tuples(st.none() | st.integers(1, 60), st.none() | st.integers(1, 60)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 70),
)
def test_iter_matches_contains(ranges: list[tuple[int | None, int | None]], largest: int) -> None:
    seq = SequenceSet(tuple(ranges))
    members = list(seq.iter(largest))
    assert members == sorted(set(members))
    assert members == [n for n in range(71) if seq.contains(n, largest)]


@given(st.binary(max_size=60))
def test_parser_raises_only_parse_error(data: bytes) -> None:
    for read in (
        Parser.atom,
        Parser.number,
        Parser.number64,
        Parser.nz_number,
        Parser.quoted,
        Parser.literal,
        Parser.string,
        Parser.astring,
        Parser.nstring,
        Parser.list_mailbox,
        Parser.flag,
        Parser.sequence_set,
        Parser.date,
        Parser.date_time,
    ):
        p = Parser(data)
        try:
            read(p)
        except ParseError as err:
            pos = err.pos
        else:
            pos = p.pos
            assert pos > 0
        assert 0 <= pos <= len(data)
