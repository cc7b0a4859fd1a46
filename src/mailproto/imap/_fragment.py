"""IMAP framing: whole messages (lines with their literals) out of the receive buffer.

An IMAP message (a command, or a response) is a line that literals may interrupt: a line
ending in ``{n}`` CRLF (synchronizing), ``{n+}`` CRLF (non-synchronizing, RFC 7888) or
``~{n}`` / ``~{n+}`` CRLF (literal8, RFC 3516) is followed by exactly n octets, after
which the line goes on; the message ends at the first CRLF that does not close a literal
announcement. Framing happens here, before any grammar (imap-codec's Fragmentizer): the
grammar (`_grammar.Parser`) then reads a whole message with its literals inline.

Theory of operation. `Fragmentizer.next_message` is called with the connection's
`ReceiveBuffer` whenever bytes arrived. The message being framed stays *in* the buffer
(no copy) until it is complete; the fragmentizer remembers how far it has framed and
where its CRLF search stopped, so however the bytes are chunked every octet is looked at
a bounded number of times (linear time). It returns:

- ``None``: more bytes are needed.
- ``bytes``: one complete message, exactly as on the wire (literals inline, final CRLF
  included), removed from the buffer.
- `LiteralAnnouncement`: the line so far ended with a literal announcement. It is
  returned once, before the literal's octets are needed, and the fragmentizer then waits
  for the caller's decision (calling `next_message` first is an error):

  - `accept`: the literal's octets become part of the message (a server sends "+"
    first for a synchronizing literal; a client receiving a response just accepts).
  - `stream_literal`: returns the message so far (up to the announcement) and hands the
    literal's octets out in pieces through `take_literal_chunk`, never holding them
    whole (APPEND of 50 MB, a large FETCH body). Once the literal is taken,
    `next_message` frames the *rest* of the message as if it were a message of its own
    (it may announce further literals, and ends at the final CRLF).
  - `refuse`: the message is dropped (a server answers NO or BAD with the tag from
    `peek_message`). After a synchronizing literal the peer sends nothing more of it
    (it waits for a "+" that does not come); after a non-synchronizing one the octets
    come anyway, so the fragmentizer skips them, and skips the rest of the message with
    any further non-synchronizing literals: literal octets are never read as commands.

- `MessageTooLong`: a line was longer than ``max_line_length`` (counting its CRLF), or
  the message longer than ``max_message_size`` (literals taken with `stream_literal`
  do not count; the caller judges those from the announced size). Such a message is not
  kept: its octets are dropped as they arrive, it is still *framed* (its literals
  followed and skipped) to its end, and then reported once so that a server answers
  BAD in order and goes on. ``head`` holds the start of the message's first line
  (for its tag). A synchronizing literal announced on a poisoned message ends it right
  there, because the peer waits for a "+" before sending more.

A server's loop, in short (every method takes the buffer, which the caller fills)::

    while (item := fz.next_message(buf)) is not None:
        if isinstance(item, LiteralAnnouncement):
            if too big or not allowed:   # tag from fz.peek_message(buf)
                fz.refuse(buf)           # and answer NO/BAD
            elif item.size > 1 << 20:    # APPEND: fz.stream_literal(buf), then
                ...                      # fz.take_literal_chunk(buf, n) as bytes come
            else:
                fz.accept(buf)           # and send "+ " if item.sync
        elif isinstance(item, MessageTooLong):
            ...                          # answer BAD
        else:
            ...                          # parse the message with _grammar.Parser

Framing cannot know the grammar, so a line that *ends* like an announcement is taken for
one, as in imap-codec: human-readable text written by our encoders must not end in
"{n}". A peer that sends a synchronizing literal's octets without waiting for "+"
breaks the protocol; if the literal is refused, those octets are framed as lines (they
cannot be told from the next command) and most likely answered BAD.

Only CRLF ends a line: a bare CR or LF is line content for the grammar to refuse. An
announcement with more than 19 digits (beyond number64) cannot be followed, so framing
is lost: `LocalProtocolError` (the connection makes it a `RemoteProtocolError` and
closes). While a message is partly framed the buffer belongs to the fragmentizer: the
caller only appends to it.
"""

from __future__ import annotations

import enum
from typing import Literal

import attrs

from .._buffer import ReceiveBuffer
from .._util import LocalProtocolError
from ._grammar import LiteralMode

__all__ = ["Fragmentizer", "LiteralAnnouncement", "MessageTooLong"]

# How many octets of a poisoned message are kept for MessageTooLong.head.
HEAD_SIZE = 128
# How much of a line being dropped is kept, to recognise an announcement at its end:
# "~{" + 19 digits + "+}" is 23 octets; a longer run of digits is an error.
_TAIL_KEEP = 32
_MAX_DIGITS = 19


@attrs.frozen(slots=True, kw_only=True)
class LiteralAnnouncement:
    """The message so far ends with a literal announcement; the caller must decide.

    ``size`` is the announced octet count, ``mode`` the literal's kind, ``sync`` whether
    the peer waits for a "+" before sending it (``{n}`` and ``~{n}``). ``prefix_len`` is
    how many octets of the message are framed so far (from the start of the message, or
    of its rest after a streamed literal), the announcement's CRLF included: the same
    octets `Fragmentizer.peek_message` returns. ``within_limit`` tells whether the
    literal, accepted, still fits ``max_message_size``.
    """

    size: int
    mode: LiteralMode
    prefix_len: int
    sync: bool
    within_limit: bool


@attrs.frozen(slots=True, kw_only=True)
class MessageTooLong:
    """A message over a limit was framed to its end and dropped.

    ``reason`` says which limit: ``"line"`` or ``"message"``; ``head`` is the first line
    of the message without its CRLF, cut to 128 octets, from which a server takes the
    tag. It is the same however the octets were chunked.
    """

    reason: Literal["line", "message"]
    head: bytes


class _Again(enum.Enum):
    AGAIN = enum.auto()  #: internal marker: the state changed, frame on


_AGAIN = _Again.AGAIN


class _State(enum.Enum):
    LINE = enum.auto()  #: looking for the CRLF that ends the current line
    ANNOUNCED = enum.auto()  #: an announcement was returned; waiting for the decision
    LITERAL = enum.auto()  #: an accepted literal's octets are arriving into the message
    STREAM = enum.auto()  #: a literal's octets go out through take_literal_chunk
    SKIP = enum.auto()  #: a literal of a dropped message is being skipped


class Fragmentizer:
    """Frames IMAP messages; see the module documentation for the theory of operation.

    Args:
        max_message_size: the most octets a message may have (literals included,
            except those taken with `stream_literal`).
        max_line_length: the most octets one line of a message may have, counting its
            CRLF (and its literal announcement).
    """

    __slots__ = (
        "_announcement",
        "_head",
        "_head_done",
        "_left",
        "_line_start",
        "_poison",
        "_poison_line",
        "_pos",
        "_search",
        "_state",
        "_taken",
        "_truncated",
        "max_line_length",
        "max_message_size",
    )

    def __init__(self, max_message_size: int, max_line_length: int) -> None:
        if max_line_length < 2 or max_message_size < 2:
            raise LocalProtocolError("limits too small: a line and a message need 2 octets")
        self.max_message_size = max_message_size
        self.max_line_length = max_line_length
        self._state = _State.LINE
        # Octets of the current message framed so far and still in the buffer (buffer
        # offsets 0.._pos); the current line starts at _line_start, and the CRLF search
        # resumes at _search.
        self._pos = 0
        self._line_start = 0
        self._search = 0
        # Octets of the current message already handed out (stream_literal), counted
        # against the limit.
        self._taken = 0
        # Octets of the current literal still to come (LITERAL, STREAM, SKIP).
        self._left = 0
        self._announcement: LiteralAnnouncement | None = None
        # Why the current message is being dropped: None, "line", "message" (report it
        # at its end) or "refused" (already answered: drop it silently).
        self._poison: Literal["line", "message", "refused"] | None = None
        # Octets of the line that poisoned the message dropped so far, until its CRLF
        # (-1 otherwise): the reason is settled on the whole line, so that however the
        # bytes were split, a line both too long and too much for the message reads the
        # same ("line" if the line alone is over its limit).
        self._poison_line = -1
        # The first line of the current message (without CRLF, at most HEAD_SIZE octets),
        # gathered from the octets as they leave the buffer, for MessageTooLong.
        self._head = bytearray()
        self._head_done = False
        # True when octets of the current (dropped) line are gone from the buffer.
        self._truncated = False

    # --- inspection -------------------------------------------------------------------

    @property
    def mid_message(self) -> bool:
        """True while a message is partly framed, taken or skipped (EOF now is abrupt).

        Octets of a line with no CRLF yet are not counted: look at the buffer for those.
        """
        return (
            self._state is not _State.LINE
            or self._pos > 0
            or self._taken > 0
            or (self._poison is not None)
        )

    @property
    def literal_remaining(self) -> int:
        """Octets of the streamed literal still to take (0 when not streaming)."""
        return self._left if self._state is _State.STREAM else 0

    def peek_message(self, buf: ReceiveBuffer) -> bytes:
        """The octets of the message framed so far (after an announcement: the prefix)."""
        return bytes(buf.data[: self._pos])

    # --- framing ----------------------------------------------------------------------

    def next_message(
        self, buf: ReceiveBuffer
    ) -> bytes | LiteralAnnouncement | MessageTooLong | None:
        """Frame on: a whole message, an announcement, a dropped message, or None.

        Raises:
            LocalProtocolError: an announcement awaits `accept`, `refuse` or
                `stream_literal`; a literal is being streamed; or an announced size
                has more than 19 digits (framing is lost).
        """
        while True:
            state = self._state
            if state is _State.LINE:
                result: bytes | LiteralAnnouncement | MessageTooLong | _Again | None
                if self._poison is None:
                    result = self._frame_line(buf)
                else:
                    result = self._drop_line(buf)
                if result is not _AGAIN:
                    return result
            elif state is _State.LITERAL:
                data = buf.data
                end = self._pos + self._left
                if len(data) < end:
                    return None
                self._pos = self._line_start = self._search = end
                self._left = 0
                self._state = _State.LINE
            elif state is _State.SKIP:
                n = min(self._left, len(buf))
                buf.consumed(n)
                self._left -= n
                if self._left:
                    return None
                self._truncated = False
                self._state = _State.LINE
            elif state is _State.ANNOUNCED:
                raise LocalProtocolError("accept, refuse or stream the announced literal")
            else:
                raise LocalProtocolError("take the streamed literal first")

    def _frame_line(self, buf: ReceiveBuffer) -> bytes | LiteralAnnouncement | _Again | None:
        data = buf.data
        idx = data.find(b"\r\n", self._search)
        if idx < 0:
            keep = 1 if data.endswith(b"\r") else 0
            content = len(data) - keep - self._line_start
            if content > self.max_line_length - 2:
                self._start_poison(buf, "line")
            elif self._taken + len(data) - keep + 2 > self.max_message_size:
                self._start_poison(buf, "message")
            else:
                self._search = max(self._line_start, len(data) - 1)
                return None
            return _AGAIN
        end = idx + 2
        if end - self._line_start > self.max_line_length:
            self._start_poison(buf, "line")
            return _AGAIN
        if self._taken + end > self.max_message_size:
            self._start_poison(buf, "message")
            return _AGAIN
        found = _announcement(data, self._line_start, idx, truncated=False)
        if found is None:
            message = bytes(data[:end])
            buf.consumed(end)
            self._reset()
            return message
        size, mode, sync = found
        self._pos = end
        self._state = _State.ANNOUNCED
        self._announcement = LiteralAnnouncement(
            size=size,
            mode=mode,
            prefix_len=end,
            sync=sync,
            within_limit=self._taken + end + size + 2 <= self.max_message_size,
        )
        return self._announcement

    def _drop_line(self, buf: ReceiveBuffer) -> MessageTooLong | _Again | None:
        # The current message is poisoned; the buffer starts inside its current line.
        data = buf.data
        idx = data.find(b"\r\n", self._search)
        if idx < 0:
            if len(data) > _TAIL_KEEP:
                dropped = len(data) - _TAIL_KEEP
                self._note_head(data, dropped)
                buf.consumed(dropped)
                self._truncated = True
                if self._poison_line >= 0:
                    self._poison_line += dropped
            self._search = max(0, len(buf) - 1)
            return None
        if self._poison_line >= 0:
            line = self._poison_line + idx + 2
            self._poison = "line" if line > self.max_line_length else "message"
            self._poison_line = -1
        found = _announcement(data, 0, idx, truncated=self._truncated)
        self._note_head(data, idx + 2)
        buf.consumed(idx + 2)
        self._search = 0
        self._truncated = False
        if found is not None:
            size, _, sync = found
            if not sync:
                self._left = size
                self._state = _State.SKIP
                return _AGAIN
        # The message ends here: at its final CRLF, or at a synchronizing literal that
        # the peer will not send without a "+".
        poison, head = self._poison, bytes(self._head)
        self._reset()
        if poison == "refused":
            return _AGAIN
        assert poison is not None
        return MessageTooLong(reason=poison, head=head)

    def _start_poison(self, buf: ReceiveBuffer, reason: Literal["line", "message"]) -> None:
        # Drop what is framed of the message; go on dropping its current line.
        self._poison = reason
        self._poison_line = 0
        start = self._line_start
        self._note_head(buf.data, start)
        buf.consumed(start)
        self._search = max(0, self._search - start)
        self._pos = self._line_start = 0

    def _reset(self) -> None:
        self._state = _State.LINE
        self._pos = self._line_start = self._search = self._taken = self._left = 0
        self._announcement = None
        self._poison = None
        self._poison_line = -1
        self._head.clear()
        self._head_done = False
        self._truncated = False

    def _note_head(self, data: bytearray, n: int) -> None:
        # data[:n] leaves the buffer: keep what belongs to the first line.
        if self._head_done:
            return
        head = self._head
        head += data[: min(n, HEAD_SIZE + 2 - len(head))]
        end = head.find(b"\r\n")
        if end >= 0:
            del head[end:]
            self._head_done = True
        elif len(head) >= HEAD_SIZE:
            del head[HEAD_SIZE:]
            self._head_done = True

    # --- decisions on an announced literal --------------------------------------------

    def _announced(self) -> LiteralAnnouncement:
        if self._state is not _State.ANNOUNCED or self._announcement is None:
            raise LocalProtocolError("no literal announcement is waiting for a decision")
        return self._announcement

    def accept(self, buf: ReceiveBuffer) -> None:
        """Take the announced literal into the message (after sending "+" if sync).

        A literal that does not fit ``max_message_size`` (``within_limit`` False) makes
        the message too long: it is skipped and reported as `MessageTooLong`.

        Raises:
            LocalProtocolError: no announcement is waiting.
        """
        ann = self._announced()
        self._announcement = None
        self._left = ann.size
        if ann.within_limit:
            self._state = _State.LITERAL
            return
        self._poison = "message"
        self._note_head(buf.data, self._pos)
        buf.consumed(self._pos)
        self._pos = self._line_start = self._search = 0
        self._state = _State.SKIP

    def refuse(self, buf: ReceiveBuffer) -> None:
        """Drop the message (the caller answers NO or BAD); skip what the peer still sends.

        Raises:
            LocalProtocolError: no announcement is waiting.
        """
        ann = self._announced()
        buf.consumed(self._pos)
        if ann.sync:
            self._reset()
            return
        self._announcement = None
        self._pos = self._line_start = self._search = 0
        self._poison = "refused"
        self._left = ann.size
        self._state = _State.SKIP

    def stream_literal(self, buf: ReceiveBuffer) -> bytes:
        """Hand the message so far out, and the literal next through `take_literal_chunk`.

        Returns:
            The message up to and including the announcement's CRLF.

        Raises:
            LocalProtocolError: no announcement is waiting.
        """
        ann = self._announced()
        prefix = bytes(buf.data[: self._pos])
        self._note_head(buf.data, self._pos)
        buf.consumed(self._pos)
        self._taken += self._pos
        self._pos = self._line_start = self._search = 0
        self._announcement = None
        self._left = ann.size
        self._state = _State.STREAM
        if not self._left:
            self._state = _State.LINE
        return prefix

    def take_literal_chunk(self, buf: ReceiveBuffer, max_bytes: int) -> bytes | None:
        """Up to ``max_bytes`` octets of the streamed literal; None while none is buffered.

        When `literal_remaining` reaches 0, `next_message` frames the rest of the message.

        Raises:
            LocalProtocolError: no literal is being streamed, or ``max_bytes`` < 1.
        """
        if self._state is not _State.STREAM:
            raise LocalProtocolError("no literal is being streamed")
        if max_bytes < 1:
            raise LocalProtocolError("max_bytes must be at least 1")
        if not buf:
            return None
        chunk = buf.extract_at_most(min(max_bytes, self._left))
        self._left -= len(chunk)
        if not self._left:
            self._state = _State.LINE
        return chunk


def _announcement(
    data: bytearray, start: int, idx: int, *, truncated: bool
) -> tuple[int, LiteralMode, bool] | None:
    """The literal announced at the end of ``data[start:idx]``: (size, mode, sync).

    Walks back from the end, so it costs the length of the announcement only.
    ``truncated``: octets of the line before ``start`` are gone.
    """
    i = idx - 1
    if i < start or data[i] != 0x7D:  # }
        return None
    i -= 1
    sync = True
    if i >= start and data[i] == 0x2B:  # +
        sync = False
        i -= 1
    digits_end = i + 1
    while i >= start and 0x30 <= data[i] <= 0x39:
        i -= 1
    digits = digits_end - (i + 1)
    if i < start:
        if truncated and digits:
            raise LocalProtocolError("literal size with too many digits: framing is lost")
        return None
    if data[i] != 0x7B or not digits:  # {
        return None
    if digits > _MAX_DIGITS:
        raise LocalProtocolError("literal size with too many digits: framing is lost")
    size = int(bytes(data[i + 1 : digits_end]))
    binary = i - 1 >= start and data[i - 1] == 0x7E  # ~
    mode: LiteralMode = "binary" if binary else "sync" if sync else "nonsync"
    return size, mode, sync
