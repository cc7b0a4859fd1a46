"""Tests for mailproto._buffer: the one receive buffer that frames every protocol."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import SupportsIndex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import Buffer

from mailproto._buffer import LINE_TOO_LONG, ReceiveBuffer

Extracted = bytes | type[LINE_TOO_LONG] | None


def three_way(
    extract: Callable[[ReceiveBuffer], object],
    data: bytes,
    expected: object,
    trailing: bytes = b"TRAILING\r\n",
) -> None:
    """h11's reader check: whole input, one byte at a time, and with trailing bytes."""
    assert expected is not None
    # 1. The whole input at once: the unit comes out and nothing is left.
    buf = ReceiveBuffer()
    buf += data
    assert extract(buf) == expected
    assert len(buf) == 0
    assert not buf
    # 2. One byte at a time: None until the very last byte.
    buf = ReceiveBuffer()
    for i in range(len(data)):
        buf += data[i : i + 1]
        result = extract(buf)
        if i < len(data) - 1:
            assert result is None, f"got {result!r} after {i + 1} of {len(data)} bytes"
        else:
            assert result == expected
    assert len(buf) == 0
    # 3. With trailing bytes: they stay in the buffer, untouched.
    buf = ReceiveBuffer()
    buf += data + trailing
    assert extract(buf) == expected
    assert bytes(buf.data) == trailing
    assert len(buf) == len(trailing)


def line_reader(limit: int) -> Callable[[ReceiveBuffer], Extracted]:
    return lambda buf: buf.extract_line(limit)


def feed_all(chunks: list[bytes], limit: int) -> list[bytes | type[LINE_TOO_LONG]]:
    """Feed ``chunks`` one after another, collecting every extracted line."""
    buf = ReceiveBuffer()
    out: list[bytes | type[LINE_TOO_LONG]] = []
    for chunk in chunks:
        buf += chunk
        while (line := buf.extract_line(limit)) is not None:
            out.append(line)
    return out


# --- the basics -----------------------------------------------------------------------


def test_empty_buffer() -> None:
    buf = ReceiveBuffer()
    assert len(buf) == 0
    assert not buf
    assert buf.data == bytearray()
    assert buf.extract_line(100) is None
    assert buf.extract_exactly(0) == b""
    assert buf.extract_exactly(1) is None
    assert buf.extract_at_most(10) == b""


def test_iadd_accepts_bytes_bytearray_and_memoryview() -> None:
    buf = ReceiveBuffer()
    same = buf
    buf += b"ab"
    buf += bytearray(b"cd")
    buf += memoryview(b"ef\r\n")
    assert buf is same
    assert len(buf) == 8
    assert buf
    assert buf.extract_line(100) == b"abcdef"


def test_line_too_long_sentinel() -> None:
    assert type(LINE_TOO_LONG) is LINE_TOO_LONG
    assert repr(LINE_TOO_LONG) == "LINE_TOO_LONG"


# --- extract_line: only CRLF ends a line ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"HELO example.com\r\n", b"HELO example.com"),
        (b"\r\n", b""),
        (b"a\nb\r\n", b"a\nb"),  # bare LF is content
        (b"a\rb\r\n", b"a\rb"),  # bare CR is content
        (b"a\r\r\n", b"a\r"),  # CR right before the CRLF
        (b"\n\r\n", b"\n"),
        (b"\r\r\n", b"\r"),
        (b"a\n\rb\r\n", b"a\n\rb"),  # LF CR is not a line ending either
        (b"\n.\n\r\n", b"\n.\n"),  # smuggling-style endings stay content
        (b"\x00\xff\x80 \t\r\n", b"\x00\xff\x80 \t"),
    ],
)
def test_extract_line_three_way(data: bytes, line: bytes) -> None:
    three_way(line_reader(100), data, line)


def test_extract_line_bare_endings_never_end_a_line() -> None:
    buf = ReceiveBuffer()
    buf += b"a\nb\rc\n\rd\n"
    assert buf.extract_line(100) is None
    assert len(buf) == 9
    buf += b"\r\n"
    assert buf.extract_line(100) == b"a\nb\rc\n\rd\n"


def test_extract_line_one_line_at_a_time() -> None:
    buf = ReceiveBuffer()
    buf += b"one\r\ntwo\r\n\r\nthree"
    assert buf.extract_line(100) == b"one"
    assert buf.extract_line(100) == b"two"
    assert buf.extract_line(100) == b""
    assert buf.extract_line(100) is None
    assert bytes(buf.data) == b"three"
    buf += b"\r\n"
    assert buf.extract_line(100) == b"three"
    assert not buf


def test_extract_line_crlf_split_across_feeds() -> None:
    buf = ReceiveBuffer()
    buf += b"abc\r"
    assert buf.extract_line(100) is None
    buf += b"\n"
    assert buf.extract_line(100) == b"abc"
    # And a CR that turns out not to be half of a CRLF is content.
    buf += b"x\r"
    assert buf.extract_line(100) is None
    buf += b"y\r\n"
    assert buf.extract_line(100) == b"x\ry"


# --- extract_line: the limit counts the CRLF ------------------------------------------


@pytest.mark.parametrize("limit", [2, 3, 10, 512, 1000])
def test_limit_is_exact(limit: int) -> None:
    fits = b"x" * (limit - 2) + b"\r\n"
    too_long = b"x" * (limit - 1) + b"\r\n"
    three_way(line_reader(limit), fits, fits[:-2])
    three_way(line_reader(limit), too_long, LINE_TOO_LONG)


@pytest.mark.parametrize("limit", [3, 10, 1000])
def test_limit_is_exact_with_cr_content(limit: int) -> None:
    # The last content byte is a CR: it looks like the start of the CRLF for a while.
    fits = b"x" * (limit - 3) + b"\r\r\n"
    too_long = b"x" * (limit - 2) + b"\r\r\n"
    three_way(line_reader(limit), fits, fits[:-2])
    three_way(line_reader(limit), too_long, LINE_TOO_LONG)


def test_zero_content_line_needs_limit_two() -> None:
    assert feed_all([b"\r\n"], 2) == [b""]
    assert feed_all([b"\r\n"], 1) == [LINE_TOO_LONG]


def test_too_long_once_then_next_line_intact() -> None:
    buf = ReceiveBuffer()
    buf += b"x" * 50 + b"\r\nnext\r\n"
    assert buf.extract_line(10) is LINE_TOO_LONG
    assert buf.extract_line(10) == b"next"
    assert buf.extract_line(10) is None
    assert not buf


def test_too_long_byte_by_byte_is_reported_once_and_bounded() -> None:
    data = b"x" * 50 + b"\r\nnext\r\n" + b"y" * 30 + b"\r\nlast\r\n"
    buf = ReceiveBuffer()
    out: list[bytes | type[LINE_TOO_LONG]] = []
    for i in range(len(data)):
        buf += data[i : i + 1]
        line = buf.extract_line(10)
        if line is not None:
            out.append(line)
        assert len(buf) <= 10
    assert out == [LINE_TOO_LONG, b"next", LINE_TOO_LONG, b"last"]


def test_two_long_lines_in_a_row_give_two_markers() -> None:
    assert feed_all([b"a" * 20 + b"\r\n" + b"b" * 20 + b"\r\nok\r\n"], 10) == [
        LINE_TOO_LONG,
        LINE_TOO_LONG,
        b"ok",
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"x" * 20, b"\r", b"\nok\r\n"],  # CRLF split while discarding
        [b"x" * 20 + b"\r", b"\n", b"ok\r\n"],
        [b"x" * 20 + b"\r", b"\r", b"\nok\r\n"],  # CR CR LF
        [b"x" * 20, b"\ry", b"\r\nok\r\n"],  # a CR that is content after all
        [b"x" * 9, b"\r", b"\nok\r\n"],  # hits the limit with the CR pending
        [b"x" * 9 + b"\r\n", b"ok\r\n"],
        [b"x" * 20 + b"\r\nok", b"\r\n"],
    ],
)
def test_discarding_with_split_crlf(chunks: list[bytes]) -> None:
    assert feed_all(chunks, 10) == [LINE_TOO_LONG, b"ok"]


def test_line_of_limit_minus_2_with_split_crlf_is_fine() -> None:
    assert feed_all([b"x" * 8, b"\r", b"\n"], 10) == [b"x" * 8]
    assert feed_all([b"x" * 8 + b"\r", b"\n"], 10) == [b"x" * 8]


def test_discards_a_10_mb_line_as_it_arrives() -> None:
    buf = ReceiveBuffer()
    piece = b"z" * 65536
    total = 0
    while total < 10 * 1024 * 1024:
        buf += piece
        total += len(piece)
        assert buf.extract_line(1000) is None
        assert len(buf) <= 1  # at most a CR that may start the CRLF
    buf += b"\r"
    assert buf.extract_line(1000) is None
    assert len(buf) <= 1
    buf += b"\nnext line\r\n"
    assert buf.extract_line(1000) is LINE_TOO_LONG
    assert buf.extract_line(1000) == b"next line"
    assert buf.extract_line(1000) is None


# --- linear time ----------------------------------------------------------------------


class CountingBytearray(bytearray):
    """A bytearray that counts the bytes its ``find`` has to look at."""

    scanned = 0

    def find(
        self,
        sub: Buffer | SupportsIndex,
        start: SupportsIndex | None = None,
        end: SupportsIndex | None = None,
        /,
    ) -> int:
        begin = 0 if start is None else int(start)
        self.scanned += len(self) - begin
        return super().find(sub, start, end)


def test_trickled_line_is_searched_in_linear_time() -> None:
    n = 1024 * 1024
    buf = ReceiveBuffer()
    counter = CountingBytearray()
    buf._data = counter  # white box: count what the CRLF searches look at
    extract = buf.extract_line
    byte = b"x"
    for _ in range(n):
        buf += byte
        assert extract(2 * n) is None
    buf += b"\r"
    assert extract(2 * n) is None
    buf += b"\n"
    line = extract(2 * n)
    assert line == b"x" * n
    # Each search starts at most one byte back (a CR may be half a CRLF): about 2n bytes
    # for n feeds; a rescan from the start would be about n * n / 2.
    assert counter.scanned <= 2 * n + 8


def test_discarding_long_line_is_linear() -> None:
    n = 200_000
    buf = ReceiveBuffer()
    counter = CountingBytearray()
    buf._data = counter
    for _ in range(n // 100):
        buf += b"y" * 100
        assert buf.extract_line(1000) is None
    buf += b"\r\n"
    assert buf.extract_line(1000) is LINE_TOO_LONG
    assert counter.scanned <= 2 * n


# --- the search offset is forgotten when bytes leave by another way --------------------


def test_extract_at_most_resets_search_offset() -> None:
    buf = ReceiveBuffer()
    buf += b"abcdef"
    assert buf.extract_line(100) is None  # searched up to the end
    assert buf.extract_at_most(5) == b"abcde"
    buf += b"\r\n"
    assert buf.extract_line(100) == b"f"


def test_consumed_resets_search_offset() -> None:
    buf = ReceiveBuffer()
    buf += b"abcdef"
    assert buf.extract_line(100) is None
    buf.consumed(5)
    assert bytes(buf.data) == b"f"
    buf += b"\r\n"
    assert buf.extract_line(100) == b"f"


def test_deleting_through_data_resets_search_offset() -> None:
    # Body readers (DotReader) work on ``data`` and delete from its front.
    buf = ReceiveBuffer()
    buf += b"abcdef"
    assert buf.extract_line(100) is None
    del buf.data[:5]
    buf += b"\r\n"
    assert buf.extract_line(100) == b"f"


def test_data_is_the_live_buffer() -> None:
    buf = ReceiveBuffer()
    buf += b"abc"
    assert buf.data is buf.data
    buf.data.extend(b"\r\n")
    assert buf.extract_line(10) == b"abc"


# --- counted bytes --------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 100])
def test_extract_exactly_three_way(n: int) -> None:
    data = bytes(range(256))[:n] * (n // 256 + 1)
    data = data[:n]
    three_way(lambda buf: buf.extract_exactly(n), data, data)


def test_extract_exactly_zero() -> None:
    buf = ReceiveBuffer()
    assert buf.extract_exactly(0) == b""
    buf += b"abc"
    assert buf.extract_exactly(0) == b""
    assert bytes(buf.data) == b"abc"


def test_extract_exactly_ignores_line_endings() -> None:
    buf = ReceiveBuffer()
    buf += b"ab\r\ncd\r\n"
    assert buf.extract_exactly(5) == b"ab\r\nc"
    assert buf.extract_exactly(4) is None
    assert bytes(buf.data) == b"d\r\n"
    assert buf.extract_line(10) == b"d"


def test_extract_at_most() -> None:
    buf = ReceiveBuffer()
    buf += b"0123456789"
    assert buf.extract_at_most(3) == b"012"
    assert len(buf) == 7
    assert buf.extract_at_most(7) == b"3456789"  # exactly what is there
    assert not buf
    buf += b"abc"
    assert buf.extract_at_most(100) == b"abc"  # more than is there
    assert buf.extract_at_most(100) == b""
    assert buf.extract_at_most(0) == b""


def test_counted_bytes_then_lines() -> None:
    # BDAT: a counted chunk, then the next command line from the same buffer.
    buf = ReceiveBuffer()
    buf += b"BDAT 5 LAST\r\nhel"
    assert buf.extract_line(512) == b"BDAT 5 LAST"
    assert buf.extract_exactly(5) is None
    assert buf.extract_at_most(5) == b"hel"
    buf += b"lo\r\nQUIT\r\n"
    assert buf.extract_at_most(2) == b"lo"
    assert buf.extract_line(512) == b""
    assert buf.extract_line(512) == b"QUIT"


# --- properties -----------------------------------------------------------------------

_line_content = st.binary(max_size=30).filter(lambda b: b"\r\n" not in b)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


def _model(data: bytes, limit: int) -> list[bytes | type[LINE_TOO_LONG]]:
    """What extract_line must give for ``data``, by definition."""
    *lines, _partial = data.split(b"\r\n")
    return [line if len(line) + 2 <= limit else LINE_TOO_LONG for line in lines]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(_line_content, max_size=10),
    tail=_line_content,
    limit=st.integers(1, 24),
    cuts=st.lists(st.integers(0, 400), max_size=12),
)
def test_extract_line_split_invariance(
    lines: list[bytes], tail: bytes, limit: int, cuts: list[int]
) -> None:
    data = b"".join(line + b"\r\n" for line in lines) + tail
    expected = _model(data, limit)
    assert feed_all([data], limit) == expected
    assert feed_all(_split(data, cuts), limit) == expected
    assert feed_all([data[i : i + 1] for i in range(len(data))], limit) == expected


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), limit=st.integers(1, 40), cuts=st.lists(st.integers()))
def test_extract_line_arbitrary_bytes(data: bytes, limit: int, cuts: list[int]) -> None:
    expected = _model(data, limit)
    chunks = _split(data, cuts)
    buf = ReceiveBuffer()
    out: list[bytes | type[LINE_TOO_LONG]] = []
    for chunk in chunks:
        buf += chunk
        while (line := buf.extract_line(limit)) is not None:
            out.append(line)
        # Never more than one partial line, and an over-long one is not kept.
        assert b"\r\n" not in bytes(buf.data)
        assert len(buf) <= max(limit, 1)
    assert out == expected
    partial = data.split(b"\r\n")[-1]
    if len(partial) < limit - 1:
        assert bytes(buf.data) == partial


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=100), sizes=st.lists(st.integers(0, 30), max_size=10))
def test_counted_extraction_model(data: bytes, sizes: list[int]) -> None:
    buf = ReceiveBuffer()
    buf += data
    rest = data
    for i, n in enumerate(sizes):
        if i % 2:
            got = buf.extract_at_most(n)
            assert got == rest[:n]
            rest = rest[len(got) :]
        else:
            exact = buf.extract_exactly(n)
            if len(rest) < n:
                assert exact is None
            else:
                assert exact == rest[:n]
                rest = rest[n:]
        assert bytes(buf.data) == rest
    # Lines still come out right after any counted extraction.
    buf += b"\r\n"
    assert buf.extract_line(1000) == rest.split(b"\r\n")[0]
