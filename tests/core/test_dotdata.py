"""Tests for mailproto._dotdata: dot-terminated bodies (SMTP DATA, POP3 multi-line)."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto._dotdata import BareLineEndings, DotEnd, DotReader, DotStuffer

Problem = str | None
MODES: list[BareLineEndings] = ["reject", "normalize", "accept"]
TRAILING = b"MAIL FROM:<next@example.com>\r\n"


def read_chunks(
    chunks: list[bytes],
    reader: DotReader | None = None,
) -> tuple[bytes, DotEnd | None, bytes]:
    """Feed ``chunks`` in turn, reading after each; (body, end, bytes left over).

    Chunks that arrive after the end stay in the buffer, as they would in a connection.
    """
    reader = reader or DotReader()
    buf = bytearray()
    out: list[bytes] = []
    end: DotEnd | None = None
    for chunk in chunks:
        buf += chunk
        while end is None:
            result = reader.read(buf)
            if result is None:
                break
            if isinstance(result, DotEnd):
                end = result
            else:
                assert isinstance(result, bytes)
                assert result, "read() never returns an empty chunk"
                out.append(result)
    return b"".join(out), end, bytes(buf)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def dot_three_way(
    wire: bytes,
    body: bytes,
    problem: Problem = None,
    *,
    max_line_length: int | None = 1000,
    max_size: int | None = None,
    bare_line_endings: BareLineEndings = "reject",
) -> None:
    """Whole input, one byte at a time (the end only with the last byte), trailing bytes."""

    def new() -> DotReader:
        return DotReader(
            max_line_length=max_line_length,
            max_size=max_size,
            bare_line_endings=bare_line_endings,
        )

    expected_end = DotEnd(problem)  # type: ignore[arg-type]
    # 1. Whole.
    out, end, rest = read_chunks([wire], new())
    assert end == expected_end
    assert rest == b""
    if problem is None:
        assert out == body
    # 2. One byte at a time: DotEnd only once the last byte of the terminator is in.
    reader = new()
    buf = bytearray()
    pieces: list[bytes] = []
    for i in range(len(wire)):
        buf += wire[i : i + 1]
        while (result := reader.read(buf)) is not None:
            if isinstance(result, DotEnd):
                assert i == len(wire) - 1, f"ended after {i + 1} of {len(wire)} bytes"
                assert result == expected_end
                break
            pieces.append(result)
    assert result == expected_end
    assert not buf
    if problem is None:
        assert b"".join(pieces) == body
    # 3. With trailing bytes: they stay in the buffer.
    out, end, rest = read_chunks([wire + TRAILING], new())
    assert end == expected_end
    assert rest == TRAILING
    if problem is None:
        assert out == body


# --- a reference model of the reader --------------------------------------------------

_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def normalize(data: bytes) -> bytes:
    return _ANY_EOL.sub(b"\r\n", data)


def unstuff(content: bytes) -> bytes:
    """RFC 5321 4.5.2: delete the first period of every (CRLF) line starting with one."""
    return b"\r\n".join(
        line[1:] if line.startswith(b".") else line for line in content.split(b"\r\n")
    )


def model(
    stream: bytes,
    *,
    max_line: int | None,
    max_size: int | None,
    bare: BareLineEndings,
) -> tuple[bytes, DotEnd, bytes] | None:
    """(body, end, rest) for a complete stream, None if the terminator never comes."""
    if stream.startswith(b".\r\n"):
        content, rest = b"", stream[3:]
    else:
        pos = stream.find(b"\r\n.\r\n")
        if pos < 0:
            return None
        content, rest = stream[: pos + 2], stream[pos + 5 :]
    text = normalize(content) if bare == "normalize" else content
    # Lines as the limits see them: LF-terminated (every line ending is CRLF once
    # normalized); problems per line, first line first; on one line: too long, then a
    # bare line ending, then the size.
    seen = 0
    at_crlf_start = True
    problem: Problem = None
    for line in re.findall(rb"[^\n]*\n", text):
        # RFC 5321 4.5.3.1.6: the period doubled for transparency is not counted.
        if max_line is not None and len(line) > max_line + line.startswith(b"."):
            problem = "line-too-long"
            break
        if bare == "reject" and _BARE.search(line):
            problem = "bare-line-ending"
            break
        seen += len(line) - (1 if at_crlf_start and line.startswith(b".") else 0)
        at_crlf_start = line.endswith(b"\r\n")
        if max_size is not None and seen > max_size:
            problem = "too-large"
            break
    return unstuff(text), DotEnd(problem), rest  # type: ignore[arg-type]


# --- DotEnd ---------------------------------------------------------------------------


def test_dot_end_is_a_frozen_value() -> None:
    assert DotEnd() == DotEnd(None)
    assert DotEnd("too-large") == DotEnd("too-large")
    assert DotEnd("too-large") != DotEnd("line-too-long")
    assert hash(DotEnd("too-large")) == hash(DotEnd("too-large"))
    with pytest.raises(AttributeError):
        DotEnd().problem = "too-large"  # type: ignore[misc]


# --- reading: the terminator ----------------------------------------------------------


def test_empty_body_terminator_at_the_very_start() -> None:
    dot_three_way(b".\r\n", b"")


def test_simple_body() -> None:
    dot_three_way(b"Subject: hi\r\n\r\nHello\r\n.\r\n", b"Subject: hi\r\n\r\nHello\r\n")


def test_body_of_one_empty_line() -> None:
    dot_three_way(b"\r\n.\r\n", b"\r\n")


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b"..\r\n.\r\n", b".\r\n"),  # a line that is a single period
        (b"...\r\n.\r\n", b"..\r\n"),
        (b"a\r\n..b\r\n.\r\n", b"a\r\n.b\r\n"),
        (b"..a\r\n..\r\n...\r\n.\r\n", b".a\r\n.\r\n..\r\n"),
        (b".x\r\n.\r\n", b"x\r\n"),  # RFC 5321 4.5.2: delete the first period, always
        (b"a.b\r\n.\r\n", b"a.b\r\n"),  # a period inside a line is content
        (b"a\r\n.b\r\n.\r\n", b"a\r\nb\r\n"),
    ],
)
def test_leading_dot_unstuffing(wire: bytes, body: bytes) -> None:
    dot_three_way(wire, body)


@pytest.mark.parametrize("cut", range(1, 8))
def test_terminator_after_crlf_split_across_chunks(cut: int) -> None:
    wire = b"ab\r\n.\r\n"
    out, end, rest = read_chunks([wire[:cut], wire[cut:] + b"NEXT"])
    assert (out, end, rest) == (b"ab\r\n", DotEnd(), b"NEXT")


@pytest.mark.parametrize(
    "chunks",
    [
        [b"a\r\n", b".", b".b\r\n.\r\n"],  # stuffed period split from its twin
        [b"a\r\n.", b".b\r\n.\r\n"],
        [b"a\r\n..", b"b\r\n.", b"\r\n"],
        [b"a\r", b"\n", b"..b\r\n", b".\r", b"\n"],
        [b"a\r\n..b\r\n", b".", b"\r", b"\n"],
    ],
)
def test_dots_at_chunk_boundaries(chunks: list[bytes]) -> None:
    assert read_chunks([*chunks, b"rest"]) == (b"a\r\n.b\r\n", DotEnd(), b"rest")


def test_only_the_first_terminator_counts() -> None:
    out, end, rest = read_chunks([b"a\r\n.\r\nb\r\n.\r\n"])
    assert (out, end, rest) == (b"a\r\n", DotEnd(), b"b\r\n.\r\n")


def test_end_is_reported_again_and_leaves_the_buffer_alone() -> None:
    for wire in (b".\r\n", b"a\r\n.\r\n"):
        reader = DotReader()
        buf = bytearray(wire + b"QUIT\r\n")
        while not isinstance(result := reader.read(buf), DotEnd):
            assert result is not None
        assert reader.read(buf) == DotEnd()
        assert bytes(buf) == b"QUIT\r\n"


def test_partial_data_waits() -> None:
    reader = DotReader()
    buf = bytearray(b"no line end yet")
    assert reader.read(buf) is None
    assert bytes(buf) == b"no line end yet"
    buf += b"\r\nmore"
    assert reader.read(buf) == b"no line end yet\r\n"
    assert bytes(buf) == b"more"
    assert reader.read(buf) is None


def test_a_chunk_holds_whole_lines() -> None:
    reader = DotReader()
    buf = bytearray(b"one\r\ntwo\r\nthr")
    assert reader.read(buf) == b"one\r\ntwo\r\n"
    assert bytes(buf) == b"thr"


# --- reading: SMTP smuggling ----------------------------------------------------------

SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n"]


@pytest.mark.parametrize("vector", SMUGGLING)
def test_smuggling_vector_rejected_only_at_the_real_end(vector: bytes) -> None:
    wire = b"Subject: x\r\n\r\nbefore" + vector + b"MAIL FROM:<evil@example.com>\r\nafter\r\n.\r\n"
    dot_three_way(wire, b"", "bare-line-ending")
    _, end, rest = read_chunks([wire + b"NEXT\r\n"])
    assert end == DotEnd("bare-line-ending")
    assert rest == b"NEXT\r\n"


@pytest.mark.parametrize("vector", SMUGGLING)
def test_smuggling_vector_at_the_body_start(vector: bytes) -> None:
    # Right after DATA: the command's CRLF is the first line ending the body sees.
    wire = vector + b"x\r\n.\r\n"
    dot_three_way(wire, b"", "bare-line-ending")


@pytest.mark.parametrize("vector", SMUGGLING)
def test_smuggling_vector_normalized_to_content(vector: bytes) -> None:
    content = b"before" + vector + b"after\r\n"
    body = unstuff(normalize(content))
    assert body.endswith(b"after\r\n")
    assert body.startswith(b"before\r\n")
    dot_three_way(content + b".\r\n", body, bare_line_endings="normalize")


@pytest.mark.parametrize("vector", SMUGGLING)
def test_smuggling_vector_accepted_as_content(vector: bytes) -> None:
    content = b"before" + vector + b"after\r\n"
    dot_three_way(content + b".\r\n", unstuff(content), bare_line_endings="accept")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vector", SMUGGLING)
def test_smuggling_vector_never_ends_the_body(mode: BareLineEndings, vector: bytes) -> None:
    # Without a real CRLF.CRLF the body never ends, whatever the chunking.
    wire = b"x" + vector + b"MAIL FROM:<a@b>\r\n"
    for chunks in ([wire], bytewise(wire)):
        _, end, _ = read_chunks(chunks, DotReader(bare_line_endings=mode))
        assert end is None


def test_normalize_examples() -> None:
    mode: BareLineEndings = "normalize"
    dot_three_way(b"a\nb\rc\r\n.\r\n", b"a\r\nb\r\nc\r\n", bare_line_endings=mode)
    dot_three_way(b"a\n..b\r\n.\r\n", b"a\r\n.b\r\n", bare_line_endings=mode)
    dot_three_way(b"a\r\rb\r\n.\r\n", b"a\r\n\r\nb\r\n", bare_line_endings=mode)
    # After a bare LF, ".\r\n" is a (stuffed) line, not the terminator.
    dot_three_way(b"\n.\r\n.\r\n", b"\r\n\r\n", bare_line_endings=mode)


def test_normalize_stuffing_after_a_bare_line_ending_is_split_invariant() -> None:
    wire = b"a\n..b\r\n.\r\n"
    for cut in range(len(wire) + 1):
        reader = DotReader(bare_line_endings="normalize")
        assert read_chunks([wire[:cut], wire[cut:]], reader) == (b"a\r\n.b\r\n", DotEnd(), b"")


def test_normalize_bare_cr_lines_are_short_lines() -> None:
    # 600 lines ended by a bare CR are 600 short lines, not one 1200-byte line.
    wire = b"x\r" * 600 + b"\r\n.\r\n"
    body = b"x\r\n" * 600 + b"\r\n"
    for chunks in ([wire], bytewise(wire)):
        reader = DotReader(bare_line_endings="normalize")
        assert read_chunks(chunks, reader) == (body, DotEnd(), b"")


def test_normalize_bare_cr_stream_is_not_buffered() -> None:
    reader = DotReader(bare_line_endings="normalize")
    buf = bytearray()
    total = 0
    for _ in range(1000):
        buf += b"line\r" * 20
        while (result := reader.read(buf)) is not None:
            assert isinstance(result, bytes)
            total += len(result)
        assert len(buf) <= len(b"line\r")  # the last line: its CR may start a CRLF
    assert total == (1000 * 20 - 1) * len(b"line\r\n")


def test_accept_keeps_bare_line_endings() -> None:
    dot_three_way(b"a\nb\rc\r\n.\r\n", b"a\nb\rc\r\n", bare_line_endings="accept")
    # A period after a bare LF does not start a line: it stays.
    dot_three_way(b"a\n.b\r\n.\r\n", b"a\n.b\r\n", bare_line_endings="accept")


# --- reading: limits ------------------------------------------------------------------


def test_line_limit_default_is_1000_with_crlf() -> None:
    fits = b"x" * 998 + b"\r\n"
    dot_three_way(fits + b".\r\n", fits)
    dot_three_way(b"x" * 999 + b"\r\n.\r\n", b"", "line-too-long")


@pytest.mark.parametrize("limit", [3, 10, 80])
def test_line_limit_is_exact(limit: int) -> None:
    fits = b"y" * (limit - 2) + b"\r\n"
    dot_three_way(b"a\r\n" + fits + b".\r\n", b"a\r\n" + fits, max_line_length=limit)
    long = b"y" * (limit - 1) + b"\r\n"
    dot_three_way(b"a\r\n" + long + b".\r\n", b"", "line-too-long", max_line_length=limit)


def test_line_limit_does_not_count_stuffing() -> None:
    # RFC 5321 4.5.3.1.6: "..x" CRLF is 5 bytes on the wire but a 4-octet line.
    dot_three_way(b"..x\r\n.\r\n", b".x\r\n", max_line_length=4)
    dot_three_way(b"..x\r\n.\r\n", b"", "line-too-long", max_line_length=3)


def test_no_line_limit() -> None:
    line = b"z" * 100_000 + b"\r\n"
    dot_three_way(line + b".\r\n", line, max_line_length=None)


def test_partial_line_grows_past_the_limit_before_any_lf() -> None:
    reader = DotReader(max_line_length=1000)
    buf = bytearray(b"ok\r\n")
    assert reader.read(buf) == b"ok\r\n"
    buf += b"x" * 1000
    assert reader.read(buf) is None
    assert reader.problem is None  # not yet past the limit
    buf += b"x"
    assert reader.read(buf) is None
    assert reader.problem == "line-too-long"
    assert len(buf) <= 4
    for _ in range(100):
        buf += b"x" * 10_000
        assert reader.read(buf) is None
        assert len(buf) <= 4
    buf += b"\r\n.\r\nNEXT"
    assert reader.read(buf) == DotEnd("line-too-long")
    assert bytes(buf) == b"NEXT"


def test_max_size_counts_unstuffed_bytes() -> None:
    body = b".a\r\n..\r\n"  # 8 bytes, sent as 10
    wire = b"..a\r\n...\r\n.\r\n"
    dot_three_way(wire, body, max_size=8)
    dot_three_way(wire, b"", "too-large", max_size=7)
    dot_three_way(b".\r\n", b"", max_size=0)
    dot_three_way(b"\r\n.\r\n", b"", "too-large", max_size=0)


def test_too_large_discards_with_bounded_memory() -> None:
    reader = DotReader(max_size=100)
    buf = bytearray()
    line = b"0123456789" * 9 + b"\r\n"
    for _ in range(10 * 1024 * 1024 // len(line)):
        buf += line
        result = reader.read(buf)
        assert result is None or isinstance(result, bytes)
        assert len(buf) <= len(line)
    assert reader.problem == "too-large"
    buf += b".\r\nQUIT\r\n"
    assert reader.read(buf) == DotEnd("too-large")
    assert bytes(buf) == b"QUIT\r\n"


def test_bad_body_discarded_in_big_chunks_with_bounded_memory() -> None:
    reader = DotReader()
    buf = bytearray(b"bare\nline\r\n")
    assert reader.read(buf) is None
    assert reader.problem == "bare-line-ending"
    piece = b"garbage\r\n" * 8000
    for _ in range(150):  # about 10 MB
        buf += piece
        assert reader.read(buf) is None
        assert len(buf) <= 4
    buf += b".\r\nNEXT"
    assert reader.read(buf) == DotEnd("bare-line-ending")
    assert bytes(buf) == b"NEXT"


@pytest.mark.parametrize("cut", range(1, 5))
def test_discarding_finds_a_terminator_split_anywhere(cut: int) -> None:
    terminator = b"\r\n.\r\n"
    reader = DotReader()
    buf = bytearray(b"x\ny" * 10)
    assert reader.read(buf) is None
    buf += terminator[:cut]
    assert reader.read(buf) is None
    buf += terminator[cut:] + b"NEXT"
    assert reader.read(buf) == DotEnd("bare-line-ending")
    assert bytes(buf) == b"NEXT"


def test_discarding_terminator_right_after_the_bad_chunk() -> None:
    reader = DotReader()
    buf = bytearray(b"a\nb\r\n")
    assert reader.read(buf) is None  # bad chunk taken; discarding
    buf += b".\r"
    assert reader.read(buf) is None
    buf += b"\n"
    assert reader.read(buf) == DotEnd("bare-line-ending")
    # A period that is not the terminator after a bad chunk.
    reader = DotReader()
    buf = bytearray(b"a\nb\r\n.x")
    assert reader.read(buf) is None
    buf += b"\r\n.\r\n"
    assert reader.read(buf) == DotEnd("bare-line-ending")


@pytest.mark.parametrize(
    ("wire", "max_line", "max_size", "problem"),
    [
        # On one line: too long beats a bare line ending...
        (b"a\rbcdefgh\r\n.\r\n", 5, None, "line-too-long"),
        (b"abcdefgh\n\r\n.\r\n", 5, None, "line-too-long"),
        # ...which beats the size limit...
        (b"abc\n\r\n.\r\n", 1000, 1, "bare-line-ending"),
        (b"abcd\r\n\r\n.\r\n", 5, 1, "line-too-long"),
        # ...but an earlier line wins.
        (b"a\nb\r\nlong line\r\n.\r\n", 5, None, "bare-line-ending"),
        (b"ab\r\nlonger\nx\r\n.\r\n", 5, None, "line-too-long"),
        (b"ab\r\nlong\nline\r\n.\r\n", 5, None, "bare-line-ending"),
        (b"abc\r\nd\ne\r\n.\r\n", 1000, 3, "too-large"),
        (b"ab\r\n\r\nlong line\r\n.\r\n", 5, 3, "too-large"),
    ],
)
def test_first_bad_line_decides_the_problem(
    wire: bytes, max_line: int, max_size: int | None, problem: str
) -> None:
    dot_three_way(wire, b"", problem, max_line_length=max_line, max_size=max_size)


# --- reading: properties --------------------------------------------------------------

_piece = st.sampled_from(
    [b".", b"..", b"\r", b"\n", b"\r\n", b"a", b"bc", b"\r\n.", b"\r\n.\r\n", b"\r\n..", b"x" * 7]
)
_streams = st.lists(_piece, max_size=30).map(b"".join)
_modes = st.sampled_from(MODES)


def _reader_settings() -> st.SearchStrategy[tuple[int | None, int | None, BareLineEndings]]:
    return st.tuples(st.none() | st.integers(3, 12), st.none() | st.integers(0, 40), _modes)


@settings(max_examples=300, deadline=None)
@given(stream=_streams, config=_reader_settings(), cuts=st.lists(st.integers(0, 500)))
def test_reader_matches_model_in_every_split(
    stream: bytes,
    config: tuple[int | None, int | None, BareLineEndings],
    cuts: list[int],
) -> None:
    max_line, max_size, bare = config
    expected = model(stream, max_line=max_line, max_size=max_size, bare=bare)
    results = []
    for chunks in ([stream], split_at(stream, cuts), bytewise(stream)):
        reader = DotReader(max_line_length=max_line, max_size=max_size, bare_line_endings=bare)
        out, end, rest = read_chunks(chunks, reader)
        if expected is None:
            assert end is None
            continue
        body, expected_end, expected_rest = expected
        assert end == expected_end
        assert rest == expected_rest
        if expected_end.problem is None:
            assert out == body
        assert reader.problem == expected_end.problem
        results.append((out if end == DotEnd() else None, end, rest))
    # Split invariance, stated directly.
    assert all(r == results[0] for r in results)


@settings(max_examples=200, deadline=None)
@given(
    stream=st.binary(max_size=300),
    config=_reader_settings(),
    cuts=st.lists(st.integers(0, 400), max_size=20),
)
def test_reader_fuzz_arbitrary_bytes(
    stream: bytes,
    config: tuple[int | None, int | None, BareLineEndings],
    cuts: list[int],
) -> None:
    max_line, max_size, bare = config
    ends = []
    for chunks in ([stream], split_at(stream, cuts)):
        reader = DotReader(max_line_length=max_line, max_size=max_size, bare_line_endings=bare)
        buf = bytearray()
        end: DotEnd | None = None
        for chunk in chunks:
            buf += chunk
            while end is None and (result := reader.read(buf)) is not None:
                if isinstance(result, DotEnd):
                    end = result
                else:
                    assert type(result) is bytes
                    assert result
            if end is None and reader.problem is not None:
                assert len(buf) <= 4
        ends.append((end, bytes(buf) if end else None))
    assert ends[0] == ends[1]
    expected = model(stream, max_line=max_line, max_size=max_size, bare=bare)
    assert (ends[0][0] is None) == (expected is None)


# --- DotStuffer -----------------------------------------------------------------------


def stuff_chunks(chunks: list[bytes]) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.encode(c) for c in chunks) + stuffer.end()


def stuff_model(body: bytes) -> bytes:
    text = normalize(body)
    lines = text.split(b"\r\n")
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    if not text:
        return b".\r\n"
    if text.endswith(b"\r\n"):
        return stuffed + b".\r\n"
    return stuffed + b"\r\n.\r\n"


@pytest.mark.parametrize(
    ("chunks", "wire"),
    [
        ([], b".\r\n"),
        ([b""], b".\r\n"),
        ([b"a"], b"a\r\n.\r\n"),
        ([b"a\r\n"], b"a\r\n.\r\n"),
        ([b".a\r\n"], b"..a\r\n.\r\n"),
        ([b"."], b"..\r\n.\r\n"),
        ([b"a\r\n.\r\n"], b"a\r\n..\r\n.\r\n"),  # a body holding a terminator
        ([b"a\nb\rc"], b"a\r\nb\r\nc\r\n.\r\n"),
        ([b"a\r", b"\nb"], b"a\r\nb\r\n.\r\n"),  # one CRLF across the boundary
        ([b"a\r", b"\n", b"b"], b"a\r\nb\r\n.\r\n"),
        ([b"a\r", b"b"], b"a\r\nb\r\n.\r\n"),  # a bare CR at the end of a chunk
        ([b"a\r", b"\rb"], b"a\r\n\r\nb\r\n.\r\n"),
        ([b"a", b"\nb"], b"a\r\nb\r\n.\r\n"),  # a bare LF at the start of a chunk
        ([b"a\r"], b"a\r\n.\r\n"),  # a pending CR at the end
        ([b"a\r", b""], b"a\r\n.\r\n"),
        ([b"a\r\n", b".b"], b"a\r\n..b\r\n.\r\n"),  # leading dot at a chunk boundary
        ([b"a\r", b"\n.b"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b"\n", b".b"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b".b"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\n", b".b"], b"a\r\n..b\r\n.\r\n"),
        ([b"a", b".b"], b"a.b\r\n.\r\n"),  # not at a line start
        ([b"a\r\n."], b"a\r\n..\r\n.\r\n"),
    ],
)
def test_stuffer_examples(chunks: list[bytes], wire: bytes) -> None:
    assert stuff_chunks(chunks) == wire
    assert stuff_chunks([b"".join(chunks)]) == wire


def test_stuffer_empty_encode_changes_nothing() -> None:
    stuffer = DotStuffer()
    assert stuffer.encode(b"x\r") == b"x\r"
    assert stuffer.encode(b"") == b""
    assert stuffer.encode(b"\n") == b"\n"
    assert stuffer.encode(b"") == b""
    assert stuffer.end() == b".\r\n"


_bodies = st.lists(
    st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"a", b"..", b"\r\n."]) | st.binary(max_size=5),
    max_size=20,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(body=_bodies, cuts=st.lists(st.integers(0, 200), max_size=10))
def test_stuffer_model_and_split_invariance(body: bytes, cuts: list[int]) -> None:
    wire = stuff_model(body)
    assert stuff_chunks([body]) == wire
    assert stuff_chunks(split_at(body, cuts)) == wire
    assert stuff_chunks(bytewise(body)) == wire
    # The only terminator is the last one, and every line ending is a CRLF.
    assert wire == b".\r\n" or wire.find(b"\r\n.\r\n") == len(wire) - 5
    assert _BARE.search(wire) is None


_crlf_bodies = st.lists(st.binary(max_size=40).map(lambda b: re.sub(rb"[\r\n]", b"", b))).map(
    lambda lines: b"".join(line + b"\r\n" for line in lines)
)


@settings(max_examples=300, deadline=None)
@given(
    body=_crlf_bodies,
    mode=_modes,
    body_cuts=st.lists(st.integers(0, 1000), max_size=10),
    wire_cuts=st.lists(st.integers(0, 1000), max_size=10),
)
def test_round_trip_crlf_bodies(
    body: bytes, mode: BareLineEndings, body_cuts: list[int], wire_cuts: list[int]
) -> None:
    wire = stuff_chunks(split_at(body, body_cuts))
    for chunks in ([wire], split_at(wire, wire_cuts)):
        reader = DotReader(max_line_length=None, bare_line_endings=mode)
        assert read_chunks([*chunks, TRAILING], reader) == (body, DotEnd(), TRAILING)


@settings(max_examples=200, deadline=None)
@given(body=_bodies, cuts=st.lists(st.integers(0, 200), max_size=10))
def test_round_trip_any_body_gives_it_back_normalized(body: bytes, cuts: list[int]) -> None:
    wire = stuff_chunks(split_at(body, cuts))
    expected = normalize(body)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    for mode in MODES:
        reader = DotReader(max_line_length=None, bare_line_endings=mode)
        assert read_chunks(bytewise(wire), reader) == (expected, DotEnd(), b"")


@pytest.mark.parametrize("mode", ["reject", "normalize", "accept"])
def test_stuffed_period_is_not_counted_in_the_line_limit(mode: BareLineEndings) -> None:
    # RFC 5321 section 4.5.3.1.6: 1000 octets with the CRLF, "not counting the leading
    # dot duplicated for transparency": ".." + 997 + CRLF is 1001 octets on the wire.
    fits = b"Subject: x\r\n\r\n.." + b"x" * 997 + b"\r\n"
    reader = DotReader(max_line_length=1000, bare_line_endings=mode)
    buf = bytearray(fits + b".\r\n")
    assert reader.read(buf) == fits.replace(b"\r\n..", b"\r\n.")
    assert reader.read(buf) == DotEnd()
    # One more octet is too long, stuffed or not; so is an unstuffed 1001-octet line.
    for body in (b".." + b"x" * 998 + b"\r\n", b"x" * 999 + b"\r\n"):
        reader = DotReader(max_line_length=1000, bare_line_endings=mode)
        buf = bytearray(body + b".\r\n")
        assert reader.read(buf) == DotEnd("line-too-long")
