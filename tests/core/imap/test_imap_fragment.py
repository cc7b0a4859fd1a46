"""Tests for mailproto.imap._fragment: framing IMAP messages with their literals."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto._buffer import ReceiveBuffer
from mailproto._util import LocalProtocolError
from mailproto.imap._fragment import Fragmentizer, LiteralAnnouncement, MessageTooLong

Decision = Literal["accept", "refuse", "stream"]
Out = bytes | LiteralAnnouncement | MessageTooLong | tuple[str, bytes]


def accept_all(ann: LiteralAnnouncement) -> Decision:
    return "accept"


def run(
    chunks: Iterable[bytes],
    decide: Callable[[LiteralAnnouncement], Decision] = accept_all,
    *,
    max_message: int = 1000,
    max_line: int = 100,
    chunk_max: int = 7,
) -> tuple[list[Out], Fragmentizer, ReceiveBuffer]:
    """Feed the chunks, act on every announcement, and record what comes out.

    A streamed literal is recorded as ("prefix", octets before it) and, once whole,
    ("literal", its octets), however it was chunked.
    """
    fz = Fragmentizer(max_message, max_line)
    buf = ReceiveBuffer()
    out: list[Out] = []
    literal = bytearray()
    for chunk in chunks:
        buf += chunk
        while True:
            if fz.literal_remaining:
                piece = fz.take_literal_chunk(buf, chunk_max)
                if piece is None:
                    break
                assert 0 < len(piece) <= chunk_max
                literal += piece
                if not fz.literal_remaining:
                    out.append(("literal", bytes(literal)))
                    literal.clear()
                continue
            result = fz.next_message(buf)
            if result is None:
                break
            out.append(result)
            if isinstance(result, LiteralAnnouncement):
                decision = decide(result)
                assert fz.peek_message(buf)[-2:] == b"\r\n"
                assert len(fz.peek_message(buf)) == result.prefix_len
                if decision == "accept":
                    fz.accept(buf)
                elif decision == "refuse":
                    fz.refuse(buf)
                else:
                    out.append(("prefix", fz.stream_literal(buf)))
                    if not fz.literal_remaining:
                        out.append(("literal", b""))
    return out, fz, buf


def first_line(data: bytes) -> bytes:
    return data[: data.index(b"\r\n")][:128]


def messages(out: list[Out]) -> list[Out]:
    return [o for o in out if not isinstance(o, LiteralAnnouncement)]


def three_way(
    data: bytes,
    expected: list[Out],
    decide: Callable[[LiteralAnnouncement], Decision] = accept_all,
    **limits: int,
) -> None:
    """Whole input, one byte at a time, and with a trailing message behind it."""
    whole, fz, buf = run([data], decide, **limits)
    assert messages(whole) == expected
    assert not buf
    assert not fz.mid_message
    single, fz, buf = run([data[i : i + 1] for i in range(len(data))], decide, **limits)
    assert single == whole
    assert not buf
    trailing, fz, buf = run([data + b"T9 NOOP\r\n"], decide, **limits)
    assert trailing == [*whole, b"T9 NOOP\r\n"]
    assert not buf
    assert not fz.mid_message


# --- plain lines and accepted literals -------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"A1 NOOP\r\n",
        b"\r\n",
        b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
        b"A1 LOGIN {4}\r\nuser {8}\r\npassword\r\n",
        b"A1 LOGIN {4+}\r\nuser {8+}\r\npassword\r\n",
        b"A1 APPEND INBOX ~{3}\r\n\x00\r\n\r\n",
        b"A1 APPEND INBOX ~{3+}\r\n\x00\r\n\r\n",
        b"A1 X {0}\r\n\r\n",
        b"* 1 FETCH (BODY[] {12}\r\n{5}\r\nabc\r\n\r\n UID 4)\r\n",
        b"A1 BARE\rCR\nLF\r\n",
        b"A1 X {5}\nabc\r\n",
        b"A1 X {5}\r{5}\n\r\n",
        b"A1 X {5}\r\n{5}\r\n\r\n",
        b"A1 NOTLITERAL {a}\r\n",
        b"A1 NOTLITERAL {}\r\n",
        b"A1 NOTLITERAL {+}\r\n",
        b"A1 NOTLITERAL 5}\r\n",
        b"}\r\n",
        b"+}\r\n",
        b"5}\r\n",
    ],
)
def test_whole_messages(message: bytes) -> None:
    three_way(message, [message])


@pytest.mark.parametrize(
    ("message", "announcements"),
    [
        (
            b"A1 LOGIN {4}\r\nuser {8}\r\npassword\r\n",
            [(4, "sync", True, 14), (8, "sync", True, 24)],
        ),
        (b"A1 X {4+}\r\nuser\r\n", [(4, "nonsync", False, 11)]),
        (b"A1 X ~{1}\r\n\x00\r\n", [(1, "binary", True, 11)]),
        (b"A1 X ~{1+}\r\n\x00\r\n", [(1, "binary", False, 12)]),
        (b"{0}\r\n\r\n", [(0, "sync", True, 5)]),
        (b"~{0}\r\n\r\n", [(0, "binary", True, 6)]),
    ],
)
def test_announcements(message: bytes, announcements: list[tuple[int, str, bool, int]]) -> None:
    out, _, _ = run([message])
    anns = [o for o in out if isinstance(o, LiteralAnnouncement)]
    assert [(a.size, a.mode, a.sync, a.prefix_len) for a in anns] == announcements
    assert all(a.within_limit for a in anns)
    assert out[-1] == message


def test_announcement_comes_before_the_literal_octets() -> None:
    fz = Fragmentizer(1000, 100)
    buf = ReceiveBuffer()
    buf += b"A1 APPEND INBOX {5}\r\n"
    ann = fz.next_message(buf)
    assert ann == LiteralAnnouncement(
        size=5, mode="sync", prefix_len=21, sync=True, within_limit=True
    )
    assert fz.mid_message
    assert fz.peek_message(buf) == b"A1 APPEND INBOX {5}\r\n"
    # The decision is owed first.
    with pytest.raises(LocalProtocolError, match="accept, refuse or stream"):
        fz.next_message(buf)
    fz.accept(buf)
    assert fz.next_message(buf) is None
    buf += b"he"
    assert fz.next_message(buf) is None
    buf += b"llo\r\nA2 NOOP\r\n"
    assert fz.next_message(buf) == b"A1 APPEND INBOX {5}\r\nhello\r\n"
    assert fz.next_message(buf) == b"A2 NOOP\r\n"
    assert fz.next_message(buf) is None


def test_literal_octets_that_look_like_lines_are_data() -> None:
    literal = b"X1 LOGOUT\r\n{5}\r\n{3+}\r\nab\r\n"
    message = b"A1 APPEND INBOX {%d}\r\n%s\r\n" % (len(literal), literal)
    three_way(message, [message])
    three_way(
        message, [("prefix", message[:22]), ("literal", literal), b"\r\n"], lambda a: "stream"
    )


def test_decisions_are_owed_to_an_announcement() -> None:
    fz = Fragmentizer(1000, 100)
    buf = ReceiveBuffer()
    for call in (fz.accept, fz.refuse, fz.stream_literal):
        with pytest.raises(LocalProtocolError, match="no literal announcement"):
            call(buf)
    with pytest.raises(LocalProtocolError, match="no literal is being streamed"):
        fz.take_literal_chunk(buf, 10)


@pytest.mark.parametrize(("line", "message"), [(1, 10), (10, 1)])
def test_limits_are_checked(line: int, message: int) -> None:
    with pytest.raises(LocalProtocolError, match="limits"):
        Fragmentizer(message, line)


# --- streaming ---------------------------------------------------------------------------


def test_stream_a_literal_in_chunks() -> None:
    body = b"x" * 50 + b"\r\n" + b"y" * 50
    data = b"A1 APPEND INBOX (\\Seen) {102}\r\n" + body + b" {3}\r\nabc\r\n"
    decisions: list[Decision] = ["stream", "accept"]
    expected: list[Out] = [
        ("prefix", b"A1 APPEND INBOX (\\Seen) {102}\r\n"),
        ("literal", body),
        b" {3}\r\nabc\r\n",
    ]
    it = iter(decisions * 3)
    three_way(data, expected, lambda a: next(it), max_message=60, max_line=40)


def test_streamed_literal_is_not_held_and_not_counted() -> None:
    fz = Fragmentizer(100, 50)
    buf = ReceiveBuffer()
    buf += b"A1 APPEND INBOX {1000000}\r\n"
    ann = fz.next_message(buf)
    assert isinstance(ann, LiteralAnnouncement)
    assert not ann.within_limit
    assert fz.stream_literal(buf) == b"A1 APPEND INBOX {1000000}\r\n"
    assert fz.literal_remaining == 1_000_000
    assert fz.take_literal_chunk(buf, 10) is None
    with pytest.raises(LocalProtocolError, match="take the streamed literal"):
        fz.next_message(buf)
    with pytest.raises(LocalProtocolError, match="max_bytes"):
        fz.take_literal_chunk(buf, 0)
    for _ in range(1000):
        buf += b"z" * 1000
        assert fz.take_literal_chunk(buf, 4096) == b"z" * 1000
        assert len(buf) == 0
    assert fz.literal_remaining == 0
    assert fz.mid_message
    buf += b"\r\n"
    assert fz.next_message(buf) == b"\r\n"
    assert not fz.mid_message


def test_stream_of_an_empty_literal() -> None:
    out, fz, _ = run([b"A1 X {0}\r\n rest\r\n"], lambda a: "stream")
    assert messages(out) == [("prefix", b"A1 X {0}\r\n"), ("literal", b""), b" rest\r\n"]
    assert not fz.mid_message


def test_limits_go_on_counting_after_a_streamed_literal() -> None:
    # 20 octets handed out before the literal count against the 30 of the message.
    data = b"A1 APPEND INBOX {3}\r\nabc" + b"x" * 12 + b"\r\nA2 NOOP\r\n"
    out, _, _ = run([data], lambda a: "stream", max_message=30, max_line=25)
    assert messages(out) == [
        ("prefix", b"A1 APPEND INBOX {3}\r\n"),
        ("literal", b"abc"),
        MessageTooLong(reason="message", head=b"A1 APPEND INBOX {3}"),
        b"A2 NOOP\r\n",
    ]


# --- refusing ----------------------------------------------------------------------------


def test_refuse_a_sync_literal() -> None:
    # The client waits for "+"; refused, it sends its next command instead.
    data = b"A1 APPEND INBOX {99999}\r\nA2 NOOP\r\n"
    three_way(data, [b"A2 NOOP\r\n"], lambda a: "refuse")


def test_refuse_a_nonsync_literal_skips_its_octets() -> None:
    literal = b"A9 DELETE INBOX\r\n"
    data = b"A1 APPEND INBOX {%d+}\r\n%s more {2+}\r\nxx\r\nA2 NOOP\r\n" % (
        len(literal),
        literal,
    )
    three_way(data, [b"A2 NOOP\r\n"], lambda a: "refuse")


def test_refused_message_ends_at_a_later_sync_literal() -> None:
    data = b"A1 X {3+}\r\nabc {4}\r\nA2 NOOP\r\n"
    out, _, _ = run([data], lambda a: "refuse")
    assert messages(out) == [b"A2 NOOP\r\n"]


def test_refuse_binary_literals() -> None:
    three_way(b"A1 X ~{2+}\r\n\x00\x00\r\nA2 NOOP\r\n", [b"A2 NOOP\r\n"], lambda a: "refuse")
    three_way(b"A1 X ~{2}\r\nA2 NOOP\r\n", [b"A2 NOOP\r\n"], lambda a: "refuse")


# --- limits and poisoning ----------------------------------------------------------------


def test_line_too_long() -> None:
    long_line = b"A1 " + b"x" * 200 + b"\r\n"
    three_way(
        long_line + b"A2 NOOP\r\n",
        [MessageTooLong(reason="line", head=long_line[:128]), b"A2 NOOP\r\n"],
        max_line=50,
    )


@pytest.mark.parametrize("size", [8, 9, 10])
def test_line_length_counts_the_crlf(size: int) -> None:
    line = b"x" * (size - 2) + b"\r\n"
    expected: list[Out] = [line] if size <= 9 else [MessageTooLong(reason="line", head=line[:-2])]
    three_way(line, expected, max_line=9)


def test_line_limit_with_a_trailing_cr() -> None:
    # Nine octets and a CR: with its LF the line would be eleven long.
    fz = Fragmentizer(100, 10)
    buf = ReceiveBuffer()
    buf += b"x" * 7 + b"\r"
    assert fz.next_message(buf) is None
    buf += b"\n"
    assert fz.next_message(buf) == b"x" * 7 + b"\r\n"
    buf += b"x" * 8 + b"\r"
    assert fz.next_message(buf) is None
    assert not fz.mid_message  # ten octets with the LF: still fine
    buf += b"x\r"
    assert fz.next_message(buf) is None
    assert fz.mid_message  # already known to be too long
    buf += b"\n"
    assert fz.next_message(buf) == MessageTooLong(reason="line", head=b"x" * 8 + b"\rx")


def test_each_line_of_a_message_has_its_own_limit() -> None:
    message = b"A1 LOGIN {10}\r\n0123456789 {10}\r\n0123456789\r\n"
    three_way(message, [message], max_line=16)


def test_message_too_long() -> None:
    message = b"A1 LOGIN {20}\r\n" + b"p" * 20 + b" x\r\n"
    three_way(
        message + b"A2 NOOP\r\n",
        [MessageTooLong(reason="message", head=message[:13]), b"A2 NOOP\r\n"],
        max_message=30,
    )


def test_message_too_long_without_literals() -> None:
    three_way(
        b"A1 " + b"x" * 40 + b"\r\n",
        [MessageTooLong(reason="message", head=b"A1 " + b"x" * 40)],
        max_message=30,
    )


def test_message_too_long_across_lines() -> None:
    message = b"A1 X {2}\r\nab" + b"c" * 30 + b"\r\n"
    three_way(
        message,
        [MessageTooLong(reason="message", head=message[:8])],
        max_message=40,
        max_line=35,
    )


def test_over_long_line_is_framed_past_its_nonsync_literal() -> None:
    # The literal octets of a poisoned message are skipped, never read as a command.
    data = b"A1 " + b"x" * 100 + b" {17+}\r\nA9 DELETE INBOX\r\n rest\r\nA2 NOOP\r\n"
    three_way(
        data,
        [MessageTooLong(reason="line", head=first_line(data)), b"A2 NOOP\r\n"],
        max_line=50,
    )


def test_over_long_line_ends_at_its_sync_literal() -> None:
    data = b"A1 " + b"x" * 100 + b" {17}\r\nA2 NOOP\r\n"
    three_way(
        data,
        [MessageTooLong(reason="line", head=first_line(data)), b"A2 NOOP\r\n"],
        max_line=50,
    )


def test_poisoned_line_with_an_announcement_trickled_in() -> None:
    data = b"A1 " + b"y" * 300 + b" ~{123456789+}\r\n"
    fz = Fragmentizer(1000, 50)
    buf = ReceiveBuffer()
    for i in range(len(data)):
        buf += data[i : i + 1]
        assert fz.next_message(buf) is None
        assert len(buf) <= 50  # the line limit, then the kept tail
    assert fz.mid_message
    buf += b"z" * 1000
    assert fz.next_message(buf) is None
    assert len(buf) == 0


def test_accepting_a_literal_over_the_limit_poisons() -> None:
    data = b"A1 APPEND INBOX {50}\r\n" + b"m" * 50 + b"\r\nA2 NOOP\r\n"
    out, _, _ = run([data], max_message=40, max_line=30)
    ann = out[0]
    assert isinstance(ann, LiteralAnnouncement)
    assert not ann.within_limit
    assert messages(out) == [
        MessageTooLong(reason="message", head=b"A1 APPEND INBOX {50}"),
        b"A2 NOOP\r\n",
    ]
    three_way(data, messages(out), max_message=40, max_line=30)


def test_within_limit_counts_the_final_crlf() -> None:
    out, _, _ = run([b"{3}\r\nabc\r\n"], max_message=10, max_line=10)
    ann = out[0]
    assert isinstance(ann, LiteralAnnouncement)
    assert ann.within_limit
    assert out[-1] == b"{3}\r\nabc\r\n"
    out, _, _ = run([b"{4}\r\nabcd\r\n"], max_message=10, max_line=10)
    ann = out[0]
    assert isinstance(ann, LiteralAnnouncement)
    assert not ann.within_limit
    assert out[-1] == MessageTooLong(reason="message", head=b"{4}")


@pytest.mark.parametrize(
    "data",
    [
        b"A1 X {12345678901234567890}\r\n",
        b"A1 X {12345678901234567890+}\r\n",
        b"{" + b"9" * 60 + b"}\r\n",
    ],
)
def test_announcement_with_too_many_digits_loses_framing(data: bytes) -> None:
    fz = Fragmentizer(1000, 100)
    buf = ReceiveBuffer()
    buf += data
    with pytest.raises(LocalProtocolError, match="too many digits"):
        fz.next_message(buf)


def test_poisoned_line_with_too_many_digits_loses_framing() -> None:
    fz = Fragmentizer(1000, 50)
    buf = ReceiveBuffer()
    buf += b"A1 X {" + b"1" * 100
    assert fz.next_message(buf) is None
    buf += b"}\r\n"
    with pytest.raises(LocalProtocolError, match="too many digits"):
        fz.next_message(buf)


def test_nineteen_digits_are_followed() -> None:
    fz = Fragmentizer(1000, 100)
    buf = ReceiveBuffer()
    buf += b"A1 X {9223372036854775807+}\r\n"
    ann = fz.next_message(buf)
    assert isinstance(ann, LiteralAnnouncement)
    assert ann.size == 9223372036854775807
    assert not ann.within_limit


def test_poisoned_line_ending_in_digits_only_is_not_an_announcement() -> None:
    # The tail kept of a dropped line holds "12}" with no "{": a plain line end.
    data = b"A1 " + b"x" * 100 + b" 12}\r\nA2 NOOP\r\n"
    three_way(
        data, [MessageTooLong(reason="line", head=first_line(data)), b"A2 NOOP\r\n"], max_line=50
    )


# --- split invariance --------------------------------------------------------------------

_LINE = st.binary(max_size=20).filter(
    lambda b: b"\r\n" not in b and not b.endswith((b"}", b"~", b"\r"))
)


@st.composite
def _message(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A message and its segments: line+announcement, literal, ..., final line."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 3))):
        literal = draw(st.binary(max_size=30) | st.sampled_from([b"{5}\r\n", b"a\r\nb", b"\r\n"]))
        ann = draw(st.sampled_from([b"{%d}", b"{%d+}", b"~{%d}", b"~{%d+}"])) % len(literal)
        parts += [draw(_LINE) + ann + b"\r\n", literal]
    parts.append(draw(_LINE) + b"\r\n")
    return b"".join(parts), parts


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=300)
@given(st.lists(_message(), min_size=1, max_size=4), st.lists(st.integers(0, 10_000)))
def test_split_invariance_accepting(msgs: list[tuple[bytes, list[bytes]]], cuts: list[int]) -> None:
    data = b"".join(m for m, _ in msgs)
    out, fz, buf = run(_splits(data, cuts))
    assert messages(out) == [m for m, _ in msgs]
    assert not buf
    assert not fz.mid_message


@settings(max_examples=300)
@given(
    st.lists(_message(), min_size=1, max_size=4),
    st.lists(st.integers(0, 10_000)),
    st.integers(1, 9),
)
def test_split_invariance_streaming(
    msgs: list[tuple[bytes, list[bytes]]], cuts: list[int], chunk_max: int
) -> None:
    data = b"".join(m for m, _ in msgs)
    expected: list[Out] = []
    for _, parts in msgs:
        for i in range(0, len(parts) - 1, 2):
            expected += [("prefix", parts[i]), ("literal", parts[i + 1])]
        expected.append(parts[-1])
    out, fz, buf = run(_splits(data, cuts), lambda a: "stream", chunk_max=chunk_max)
    assert messages(out) == expected
    assert not buf
    assert not fz.mid_message


@settings(max_examples=300)
@given(st.lists(_message(), min_size=1, max_size=4), st.lists(st.integers(0, 10_000)))
def test_split_invariance_refusing(msgs: list[tuple[bytes, list[bytes]]], cuts: list[int]) -> None:
    # Refusing everything: what the peer sends after a refused sync literal is framed
    # as new messages; non-synchronizing literals are skipped.
    data = b"".join(m for m, _ in msgs)
    whole, _, _ = run([data], lambda a: "refuse")
    out, _, _ = run(_splits(data, cuts), lambda a: "refuse")
    assert out == whole
    if all(b"+}\r\n" in p for _, parts in msgs for p in parts[:-1:2]):
        # All non-synchronizing: refused messages are skipped exactly.
        assert messages(out) == [m for m, parts in msgs if len(parts) == 1]


_PIECES = st.sampled_from(
    [
        *(b"{", b"}", b"+", b"~", b"\r\n", b"\r", b"\n", b"1", b"0", b"9", b"a", b" "),
        *(b"{3}\r\n", b"{2+}\r\n", b"~{1}\r\n", b"~{0+}\r\n", b"x" * 30),
    ]
)
_WIRE = st.binary(max_size=300) | st.lists(_PIECES, max_size=60).map(b"".join)


@settings(max_examples=500)
@given(
    _WIRE,
    st.lists(st.integers(0, 10_000)),
    st.sampled_from(["accept", "refuse", "stream"]),
)
def test_arbitrary_bytes_frame_the_same_however_split(
    data: bytes, cuts: list[int], decision: Decision
) -> None:
    def decide(ann: LiteralAnnouncement) -> Decision:
        return decision

    try:
        whole, _, _ = run([data], decide, max_message=100, max_line=40)
    except LocalProtocolError:
        return
    out, fz, buf = run(_splits(data, cuts), decide, max_message=100, max_line=40)
    assert out == whole
    if decision == "accept" and not any(isinstance(o, MessageTooLong) for o in out):
        # Nothing is invented, and nothing lost unless the unfinished message is being
        # dropped: the messages and the unfinished rest are the input.
        framed = b"".join(o for o in out if isinstance(o, bytes))
        assert data.startswith(framed)
        assert framed + bytes(buf.data) == data or fz.mid_message


def test_the_reason_for_a_dropped_message_does_not_depend_on_the_split() -> None:
    # Found by Hypothesis: the third line is over the line limit *and* brings the message
    # over its limit. Whole, the line limit was seen first; cut before that line's CRLF,
    # the message limit was. The reason is now settled on the whole line.
    data = b"\x00" * 18 + b"{0+}\r\n" + b"\x00" * 31 + b"{0+}\r\n" + b"\x00" * 39 + b"\r\n"
    whole, _, _ = run([data], lambda a: "accept", max_message=100, max_line=40)
    cut, _, _ = run(_splits(data, [99]), lambda a: "accept", max_message=100, max_line=40)
    assert whole == cut
    assert [o.reason for o in whole if isinstance(o, MessageTooLong)] == ["line"]
