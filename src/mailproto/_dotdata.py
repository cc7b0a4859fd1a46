"""Dot-terminated bodies: SMTP/LMTP DATA and POP3 multi-line responses.

RFC 5321 section 4.5.2: the sender doubles a period at the start of a line, ends the body
with CRLF "." CRLF, and the receiver deletes the first character of any line that starts
with a period. Only CRLF.CRLF ends a body: LF.LF, CR.CR and their mixtures are content
(RFC 5321 section 4.1.1.4); treating them otherwise is what "SMTP smuggling" exploits.

Theory of operation (`DotReader`): all work is done on whole buffers with C-speed bytes
methods, never byte by byte. Each call cuts the buffer after its last LF, so a chunk holds
whole lines and the buffer keeps at most one partial line. On that chunk: ``find`` for the
terminator, ``count`` to detect bare CR or LF, a hop of ``rfind(b"\\n")`` every
``max_line_length`` bytes to check line lengths in O(n / limit) Python steps, and one
``replace`` to unstuff. Once a body is known to be bad (bare line ending refused, line too
long, too large) the reader only looks for the terminator and drops everything else, so a
bad message costs no memory either.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

__all__ = ["BareLineEndings", "DotEnd", "DotReader", "DotStuffer"]

BareLineEndings = Literal["reject", "normalize", "accept"]

_TERMINATOR = b"\r\n.\r\n"
_ANY_EOL = re.compile(rb"\r\n|\r|\n")
# translate() deletes these, leaving only the CR and LF bytes of a chunk.
_NOT_EOL = bytes(b for b in range(256) if b not in b"\r\n")


@attrs.frozen(slots=True)
class DotEnd:
    """The terminator was read. ``problem`` says why the body is bad, if it is."""

    problem: Literal["bare-line-ending", "line-too-long", "too-large"] | None = None


class DotReader:
    """Reads one dot-terminated body out of a receive buffer, in chunks.

    ``read(buf)`` returns unstuffed body bytes, a `DotEnd` once the terminator has been
    consumed, or None when it needs more data. Bytes after the terminator stay in ``buf``.
    """

    __slots__ = (
        "_bare",
        "_bytes_seen",
        "_ended",
        "_max_line",
        "_max_size",
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
        self._problem: Literal["bare-line-ending", "line-too-long", "too-large"] | None = None
        self._bytes_seen = 0
        # The body so far ends with CRLF: a "." CRLF at the buffer head ends it.
        # True at the start, since the command line (DATA, RETR) ended with CRLF.
        self._prev_crlf = True
        # The terminator has been consumed; the next read reports the end.
        self._ended = False

    @property
    def problem(self) -> Literal["bare-line-ending", "line-too-long", "too-large"] | None:
        return self._problem

    def read(self, buf: bytearray) -> bytes | DotEnd | None:
        if self._ended:
            return DotEnd(self._problem)
        if self._problem is not None:
            return self._discard(buf)
        if self._prev_crlf and buf[:3] == b".\r\n":
            del buf[:3]
            return DotEnd()
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            # No complete line yet; a partial line may not outgrow the line limit.
            if self._max_line is not None and len(buf) > self._max_line:
                self._problem = "line-too-long"
                return self._discard(buf)
            return None
        with memoryview(buf) as view:
            chunk = bytes(view[:cut])
        # Every terminator and every stuffed period follows a CRLF inside the chunk, or
        # sits at its head; one search rules both out for ordinary text.
        hit = chunk.find(b"\r\n.")
        if hit >= 0:
            end = chunk.find(_TERMINATOR, hit)
            if end >= 0:
                del buf[: end + 5]
                self._ended = True
                out = self._accept(chunk[: end + 2], stuffed=True)
                return out if out and self._problem is None else DotEnd(self._problem)
        del buf[:cut]
        out = self._accept(chunk, stuffed=hit >= 0)
        if self._problem is not None:
            return self._discard(buf)
        return out

    def _accept(self, chunk: bytes, *, stuffed: bool) -> bytes:
        """Check and unstuff ``chunk``: whole lines, starting at a line start."""
        prev_crlf = self._prev_crlf
        self._prev_crlf = chunk.endswith(b"\r\n")
        eols = chunk.translate(None, _NOT_EOL)
        if eols.count(b"\r\n") * 2 != len(eols):
            if self._bare == "reject":
                self._problem = "bare-line-ending"
                return b""
            if self._bare == "normalize":
                chunk = _ANY_EOL.sub(b"\r\n", chunk)
                stuffed = True
        if self._max_line is not None and _has_long_line(chunk, self._max_line):
            self._problem = "line-too-long"
            return b""
        if prev_crlf and chunk[:1] == b".":
            chunk = chunk[1:]
        if stuffed:
            chunk = chunk.replace(b"\r\n.", b"\r\n")
        self._bytes_seen += len(chunk)
        if self._max_size is not None and self._bytes_seen > self._max_size:
            self._problem = "too-large"
            return b""
        return chunk

    def _discard(self, buf: bytearray) -> DotEnd | None:
        """Drop everything up to and including the terminator."""
        if self._prev_crlf and buf[:3] == b".\r\n":
            del buf[:3]
            return DotEnd(self._problem)
        end = buf.find(_TERMINATOR)
        if end >= 0:
            del buf[: end + 5]
            return DotEnd(self._problem)
        # Keep the last 4 bytes: they may be the start of a terminator.
        if len(buf) > 4:
            self._prev_crlf = False
            del buf[:-4]
        return None


def _has_long_line(chunk: bytes, limit: int) -> bool:
    """True if a line of ``chunk`` (whole lines) is longer than ``limit`` with its CRLF.

    Hops from line start to the last LF within ``limit`` bytes: O(len / limit) calls.
    """
    pos = 0
    n = len(chunk)
    rfind = chunk.rfind
    while n - pos > limit:
        lf = rfind(10, pos, pos + limit)
        if lf < 0:
            return True
        pos = lf + 1
    return False


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
