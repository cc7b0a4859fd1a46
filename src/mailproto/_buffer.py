"""The one receive buffer that frames every protocol of the core.

SMTP, POP3 and IMAP are CRLF-line protocols with an escape hatch for raw bytes (DATA and
multi-line bodies, BDAT chunks, IMAP literals). Framing happens here, before any grammar.

Theory of operation: bytes are appended to one ``bytearray``; a unit is removed with
``del data[:n]`` only once it is complete, which CPython makes amortised O(n). A search for
CRLF that fails remembers where it stopped, so a line trickled in one byte at a time costs
linear time, not quadratic. Only CRLF ends a line: a bare LF or CR is line content, and
the grammar above decides what to make of it (the "SMTP smuggling" class starts with
lenient line endings). A line longer than its limit is not kept: its bytes are dropped as
they arrive and, once its CRLF is seen, one `LINE_TOO_LONG` marker is returned in its
place, so the session answers in order and goes on.
"""

from __future__ import annotations

from ._util import Sentinel

__all__ = ["LINE_TOO_LONG", "ReceiveBuffer"]


class LINE_TOO_LONG(Sentinel, metaclass=Sentinel):
    """Returned by `ReceiveBuffer.extract_line` in place of a line over its limit."""


class ReceiveBuffer:
    """Bytes received and not yet framed, with linear-time line and count extraction."""

    __slots__ = ("_data", "_discarding", "_search_from")

    def __init__(self) -> None:
        self._data = bytearray()
        # Offset where the next CRLF search starts (everything before holds no CRLF).
        self._search_from = 0
        # True while dropping the rest of an over-long line.
        self._discarding = False

    def __iadd__(self, data: bytes | bytearray | memoryview) -> ReceiveBuffer:
        self._data += data
        return self

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    @property
    def data(self) -> bytearray:
        """The raw buffered bytes, for the framing readers of the core (body readers).

        A body reader deletes from its front, so the CRLF search starts over afterwards.
        """
        self._search_from = 0
        return self._data

    def consumed(self, n: int) -> None:
        """Drop the first ``n`` bytes, which a body reader has taken."""
        del self._data[:n]
        self._search_from = 0

    def extract_line(self, limit: int) -> bytes | type[LINE_TOO_LONG] | None:
        """Remove and return one line without its CRLF.

        ``limit`` counts the CRLF. Returns None until a whole line is buffered, and
        `LINE_TOO_LONG` (once, when its CRLF arrives) for a line over the limit.
        """
        data = self._data
        idx = data.find(b"\r\n", self._search_from)
        if idx < 0:
            # Keep a trailing CR: it may be the first half of the CRLF.
            keep = 1 if data.endswith(b"\r") else 0
            if self._discarding or len(data) - keep >= limit - 1:
                self._discarding = True
                if len(data) > keep:
                    del data[: len(data) - keep]
                self._search_from = 0
            else:
                self._search_from = max(0, len(data) - 1)
            return None
        self._search_from = 0
        if self._discarding or idx + 2 > limit:
            del data[: idx + 2]
            self._discarding = False
            return LINE_TOO_LONG
        line = bytes(data[:idx])
        del data[: idx + 2]
        return line

    def extract_at_most(self, n: int) -> bytes:
        """Remove and return up to ``n`` bytes (counted bodies arrive in pieces)."""
        if n >= len(self._data):
            out = bytes(self._data)
            self._data.clear()
        else:
            out = bytes(self._data[:n])
            del self._data[:n]
        self._search_from = 0
        return out

    def extract_exactly(self, n: int) -> bytes | None:
        """Remove and return exactly ``n`` bytes, or None while fewer are buffered."""
        if len(self._data) < n:
            return None
        return self.extract_at_most(n)
