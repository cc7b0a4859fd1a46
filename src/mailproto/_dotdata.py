"""Dot-terminated bodies: SMTP/LMTP DATA and POP3 multi-line responses.

RFC 5321 section 4.5.2: the sender doubles a period at the start of a line, ends the body
with CRLF "." CRLF, and the receiver deletes the first character of any line that starts
with a period. Only CRLF.CRLF ends a body: LF.LF, CR.CR and their mixtures are content
(RFC 5321 section 4.1.1.4); treating them otherwise is what "SMTP smuggling" exploits.

Theory of operation (`DotReader`): all work is done on whole buffers with C-speed bytes
methods, never byte by byte. Each call cuts the buffer after its last LF, so a chunk holds
whole lines and the buffer keeps at most one partial line. On that chunk: one ``split`` on
CRLF "." finds every stuffed period and the terminator (both follow a CRLF) and a ``join``
unstuffs; the newline decoder of text I/O (`io.IncrementalNewlineDecoder`, one C pass)
reports which of CR, LF and CRLF occur, so a bare CR or LF is found exactly; a hop of
``rfind(b"\\n")`` every ``max_line_length`` bytes checks line lengths in O(n / limit)
Python steps. Once a body is known to be bad (bare line ending refused, line too
long, too large) the reader only looks for the terminator and drops everything else, so a
bad message costs no memory either.

In "normalize" mode a bare CR or LF is a line ending like CRLF, so a chunk may also end
after a bare CR (once the next byte shows it is not half of a CRLF), and a period after
one is stuffing. The terminator is still only a real CRLF.CRLF.

Problems are reported per line, so that every split of the input reports the same one:
the first bad line wins and, on one line, "line-too-long" beats "bare-line-ending", which
beats "too-large" (a partial line can be found too long before its end is seen, and the
size counts only the lines accepted before the bad one).
"""

from __future__ import annotations

import io
import re
from typing import Literal

import attrs

__all__ = ["BareLineEndings", "DotEnd", "DotReader", "DotStuffer"]

BareLineEndings = Literal["reject", "normalize", "accept"]
_Problem = Literal["bare-line-ending", "line-too-long", "too-large"]

_TERMINATOR = b"\r\n.\r\n"
_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_BARE_EOL = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_STUFFED = b"\r\n."
# A chunk with more stuffed lines than this is unstuffed with replace(), not split/join.
_MAXSPLIT = 32


@attrs.frozen(slots=True)
class DotEnd:
    """The terminator was read. ``problem`` says why the body is bad, if it is."""

    problem: _Problem | None = None


class DotReader:
    """Reads one dot-terminated body out of a receive buffer, in chunks.

    ``read(buf)`` returns unstuffed body bytes, a `DotEnd` once the terminator has been
    consumed, or None when it needs more data. Bytes after the terminator stay in ``buf``.
    """

    __slots__ = (
        "_bare",
        "_bytes_seen",
        "_ended",
        "_line_start",
        "_max_line",
        "_max_size",
        "_newlines",
        "_prev_crlf",
        "_problem",
    )

    def __init__(
        self,
        *,
        max_line_length: int | None = 1000,
        max_size: int | None = None,
        bare_line_endings: BareLineEndings = "reject",
    ) -> None:
        self._max_line = max_line_length
        self._max_size = max_size
        self._bare = bare_line_endings
        self._problem: _Problem | None = None
        self._bytes_seen = 0
        # The body so far ends with CRLF: a "." CRLF at the buffer head ends it.
        # True at the start, since the command line (DATA, RETR) ended with CRLF.
        self._prev_crlf = True
        # The body so far ends at a line start (a CRLF, or in "normalize" mode any line
        # ending): a period at the buffer head is stuffing.
        self._line_start = True
        # The terminator has been consumed; the next read reports the end.
        self._ended = False
        # Records which line endings a chunk holds (it has state: one per reader).
        self._newlines = io.IncrementalNewlineDecoder(None, translate=False)

    @property
    def problem(self) -> _Problem | None:
        return self._problem

    def read(self, buf: bytearray) -> bytes | DotEnd | None:
        if self._ended:
            return DotEnd(self._problem)
        if self._problem is not None:
            return self._discard(buf)
        if self._prev_crlf and buf[:3] == b".\r\n":
            del buf[:3]
            self._ended = True
            return DotEnd()
        cut = buf.rfind(b"\n") + 1
        if self._bare == "normalize":
            # A CR before the last byte ends a line too: CRLF or bare, it is whole.
            cut = max(cut, buf.rfind(b"\r", 0, len(buf) - 1) + 1)
        if cut == 0:
            # No complete line yet; a partial line may not outgrow the line limit.
            if self._max_line is not None and len(buf) > self._max_line:
                self._problem = "line-too-long"
                return self._discard(buf)
            return None
        with memoryview(buf) as view:
            chunk = bytes(view[:cut])
        # Every terminator and every stuffed period follows a CRLF inside the chunk, or
        # sits at its head: one split finds them all (ordinary text: no split at all).
        parts = chunk.split(_STUFFED, _MAXSPLIT)
        if len(parts) > 1:
            end = _terminator_at(chunk, parts)
            if end >= 0:
                del buf[: end + 5]
                self._ended = True
                out = self._accept(chunk[: end + 2], None)
                return out if out and self._problem is None else DotEnd(self._problem)
        del buf[:cut]
        out = self._accept(chunk, parts)
        if self._problem is not None:
            return self._discard(buf)
        return out

    def _accept(self, chunk: bytes, parts: list[bytes] | None) -> bytes:
        """Check and unstuff ``chunk``: whole lines, starting at a line start.

        ``parts`` is ``chunk.split(_STUFFED, _MAXSPLIT)`` when the caller has it.
        """
        line_start = self._line_start
        self._prev_crlf = chunk.endswith(b"\r\n")
        problem: _Problem | None = None
        bad_line = len(chunk)  # where the first bad line starts
        # Every CR and LF is half of a CRLF unless the decoder met a lone CR or LF.
        # ("accept" mode passes bare line endings through: nothing to look for.)
        if self._bare != "accept" and self._has_bare_line_ending(chunk):
            if self._bare == "reject":
                bare = _BARE_EOL.search(chunk)
                assert bare is not None
                problem = "bare-line-ending"
                bad_line = chunk.rfind(b"\n", 0, bare.start()) + 1
            else:  # "normalize"
                chunk = _ANY_EOL.sub(b"\r\n", chunk)
                parts = None
        self._line_start = chunk.endswith(b"\r\n")
        if self._max_line is not None:
            long_line = _find_long_line(chunk, self._max_line)
            if 0 <= long_line <= bad_line:
                problem, bad_line = "line-too-long", long_line
        if problem is not None:
            chunk = chunk[:bad_line]
            parts = None
        if parts is not None and len(parts) <= _MAXSPLIT:
            if line_start and parts[0][:1] == b".":
                parts[0] = parts[0][1:]
            chunk = b"\r\n".join(parts) if len(parts) > 1 else parts[0]
        else:
            if line_start and chunk[:1] == b".":
                chunk = chunk[1:]
            chunk = chunk.replace(_STUFFED, b"\r\n")
        self._bytes_seen += len(chunk)
        if self._max_size is not None and self._bytes_seen > self._max_size:
            problem = "too-large"
        if problem is not None:
            self._problem = problem
            return b""
        return chunk

    def _has_bare_line_ending(self, chunk: bytes) -> bool:
        newlines = self._newlines
        newlines.reset()
        newlines.decode(chunk.decode("latin-1"), True)
        return newlines.newlines not in (None, "\r\n")

    def _discard(self, buf: bytearray) -> DotEnd | None:
        """Drop everything up to and including the terminator."""
        if self._prev_crlf and buf[:3] == b".\r\n":
            del buf[:3]
            self._ended = True
            return DotEnd(self._problem)
        end = buf.find(_TERMINATOR)
        if end >= 0:
            del buf[: end + 5]
            self._ended = True
            return DotEnd(self._problem)
        # Keep the last 4 bytes: they may be the start of a terminator.
        if len(buf) > 4:
            self._prev_crlf = False
            del buf[:-4]
        return None


def _terminator_at(chunk: bytes, parts: list[bytes]) -> int:
    """Where the first CRLF "." CRLF of ``chunk`` starts (or -1), given its split.

    Occurrences of CRLF "." cannot overlap, so every terminator starts at a split point.
    (Its closing CRLF may begin the next one, as in CRLF "." CRLF ".": ask the chunk.)
    """
    pos = len(parts[0])
    if len(parts) > _MAXSPLIT:
        return chunk.find(_TERMINATOR, pos)
    startswith = chunk.startswith
    for i in range(1, len(parts)):
        if startswith(_TERMINATOR, pos):
            return pos
        pos += 3 + len(parts[i])
    return -1


def _find_long_line(chunk: bytes, limit: int) -> int:
    """Where the first line of ``chunk`` (whole lines) longer than ``limit`` with its
    line ending starts, or -1. A line that starts with a period may be one octet longer:
    RFC 5321 section 4.5.3.1.6 does not count the period doubled for transparency.

    Hops from line start to the last LF within ``limit`` bytes: O(len / limit) calls.
    """
    pos = 0
    n = len(chunk)
    rfind = chunk.rfind
    while n - pos > limit:
        lf = rfind(10, pos, pos + limit)
        if lf >= 0:
            pos = lf + 1
        elif chunk[pos] == 0x2E and chunk[pos + limit] == 0x0A:
            pos += limit + 1  # a stuffed line of exactly limit + 1 octets
        else:
            return pos
    return -1


class DotStuffer:
    """Writes a body in the dot-stuffed form, fixing line endings on the way.

    Bare CR and bare LF become CRLF, a line-leading period is doubled, and `end` closes
    the body with CRLF "." CRLF (adding a CRLF first when the body did not end with one).
    State carries across calls, so any chunking gives the same bytes.
    """

    __slots__ = ("_at_line_start", "_pending_cr")

    def __init__(self) -> None:
        self._at_line_start = True
        self._pending_cr = False

    def encode(self, data: bytes) -> bytes:
        if not data:
            return b""
        head = b""
        if self._pending_cr:
            # The previous chunk ended with CR: it was written as CR, now finish the CRLF.
            self._pending_cr = False
            if data[:1] == b"\n":
                data = data[1:]
            head = b"\n"
            self._at_line_start = True
            if not data:
                return head
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            if data.endswith(b"\r"):
                data = _ANY_EOL.sub(b"\r\n", data[:-1]) + b"\r"
            else:
                data = _ANY_EOL.sub(b"\r\n", data)
        if data.endswith(b"\r"):
            self._pending_cr = True
        if self._at_line_start and data[:1] == b".":
            data = b"." + data
        data = data.replace(b"\r\n.", b"\r\n..")
        self._at_line_start = data.endswith(b"\r\n")
        return head + data if head else data

    def end(self) -> bytes:
        if self._pending_cr:
            self._pending_cr = False
            return b"\n.\r\n"
        return b".\r\n" if self._at_line_start else b"\r\n.\r\n"
