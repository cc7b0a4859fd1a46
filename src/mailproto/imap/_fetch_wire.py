"""FETCH responses written straight to bytes, for a server sending thousands at once.

`format_response` builds each response from value objects through an `Encoder`: right
for one response, but for a message list (``FETCH 1:* (FLAGS UID RFC822.SIZE
ENVELOPE)`` over 10,000 messages) building and checking the objects costs more than
everything else. `FetchWriter` writes the plain message attributes of RFC 9051 7.5.2
(FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE; MODSEQ of RFC 7162 3.1.4.1) from plain
values, each checked as the value classes check it, into one line per message.

An envelope is given as the wire form `encode_envelope` made earlier (a store may keep
it next to its other cached metadata). Such bytes are checked again when written
(`is_envelope_wire`: the envelope grammar, literals included, in one regular expression
over the line), so a stale or tampered copy cannot put anything else on the wire.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

from .._util import LocalProtocolError
from . import _responses as r
from ._grammar import MAX_NUMBER, MAX_NUMBER64, Encoder, dump, format_date_time
from ._response_codec import _w_envelope

__all__ = ["FETCH_WIRE_ITEMS", "FetchRow", "FetchWriter", "encode_envelope", "is_envelope_wire"]

#: The items a `FetchWriter` writes.
FETCH_WIRE_ITEMS = frozenset(("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "MODSEQ"))

# RFC 9051 9: nstring (literals are checked apart, see `_skeleton`); a quoted string
# holds TEXT-CHARs of 7 bits, '"' and '\' escaped.
_TEXT = rb"[\x01-\x09\x0b\x0c\x0e-\x21\x23-\x5b\x5d-\x7f]*"  # runs: no alternation per octet
_QUOTED = rb'"' + _TEXT + rb'(?:\\["\\]' + _TEXT + rb')*"'


def _envelope_pattern(nstring: bytes) -> re.Pattern[bytes]:
    # envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to
    #            SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
    address = rb"\(" + rb" ".join([nstring] * 4) + rb"\)"
    addresses = rb"(?:NIL|\((?:" + address + rb")+\))"
    return re.compile(rb"\(" + rb" ".join([nstring] * 2 + [addresses] * 6 + [nstring] * 2) + rb"\)")


_ENVELOPE = _envelope_pattern(rb"(?:NIL|" + _QUOTED + rb")")
# The same where a literal was replaced by NUL (`_skeleton`): NUL is in no quoted
# string, so a literal announced inside one cannot pass for a string of its own.
_ENVELOPE_LITERALS = _envelope_pattern(rb"(?:NIL|\x00|" + _QUOTED + rb")")
_LITERAL = re.compile(rb"\{(\d{1,10})\}\r\n")


def encode_envelope(envelope: r.Envelope) -> bytes:
    """The wire form of an envelope (without the ``ENVELOPE`` name), literals inline.

    Strings that cannot be quoted (8-bit, CR, LF, over 1024 octets) are literals, as
    `format_response` writes them without UTF-8.
    """
    if not isinstance(envelope, r.Envelope):
        raise LocalProtocolError("not an Envelope")
    e = Encoder()
    _w_envelope(e, envelope)
    return dump(e.finish())[:-2]


def _skeleton(data: bytes) -> bytes | None:
    """``data`` with each literal (``{n}`` CRLF and n octets) replaced by one NUL; None
    when a literal is cut short or there is a NUL anywhere (no string may hold one)."""
    if b"\x00" in data:
        return None
    parts: list[bytes] = []
    pos = 0
    while (m := _LITERAL.search(data, pos)) is not None:
        end = m.end() + int(m[1])
        if end > len(data):
            return None
        parts += (data[pos : m.start()], b"\x00")
        pos = end
    parts.append(data[pos:])
    return b"".join(parts)


def is_envelope_wire(data: bytes) -> bool:
    """Whether ``data`` is an envelope on the wire (RFC 9051 9), as `encode_envelope`
    writes it: strings quoted (7-bit) or as literals."""
    if type(data) is not bytes:
        return False
    if b"\r" in data:  # a literal's CRLF
        skeleton = _skeleton(data)
        return skeleton is not None and _ENVELOPE_LITERALS.fullmatch(skeleton) is not None
    return _ENVELOPE.fullmatch(data) is not None


#: The values of one message for `FetchWriter.line`: sequence number, flags, UID,
#: INTERNALDATE, RFC822.SIZE, envelope (wire form or `Envelope`), MODSEQ.
FetchRow = tuple[
    int, tuple[str, ...], int, datetime.datetime | None, int, bytes | r.Envelope | None, int
]


def _number(value: int, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise LocalProtocolError(f"{what} must be an integer from {low} to {high}: {value!r}")
    return value


class FetchWriter:
    """Writes ``* n FETCH (...)`` lines of plain attributes, in a fixed order.

    ``names``: the items, in the order to write them (each of `FETCH_WIRE_ITEMS`,
    repeats written once). One writer serves a whole FETCH command; flag lists are
    checked and encoded once per distinct list.
    """

    __slots__ = ("_flags", "_names", "_template")

    def __init__(self, names: Iterable[str]) -> None:
        ordered = tuple(dict.fromkeys(names))
        unknown = [n for n in ordered if n not in FETCH_WIRE_ITEMS]
        if unknown or not ordered:
            raise LocalProtocolError(f"not written by FetchWriter: {unknown or 'nothing'}")
        self._names = ordered
        self._template = b"* %d FETCH (" + b" ".join(_PIECES[n] for n in ordered) + b")\r\n"
        self._flags: dict[tuple[str, ...], bytes] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def flag_list(self, flags: tuple[str, ...]) -> bytes:
        """``(\\Seen ...)``, checked as `FetchFlags` checks it (cached per list)."""
        out = self._flags.get(flags)
        if out is None:
            r.FetchFlags(flags=flags)  # raises for anything that is not a flag
            out = b"(" + " ".join(flags).encode("ascii") + b")"
            if len(self._flags) < 4096:
                self._flags[flags] = out
        return out

    def line(self, row: FetchRow) -> bytes:
        """One response; each value of ``row`` is needed only when its item is written.

        The envelope is `encode_envelope`'s bytes (checked with `is_envelope_wire`) or
        an `Envelope`. Raises `LocalProtocolError` for a value the grammar does not allow.
        """
        seq, flags, uid, internal_date, size, envelope, modseq = row
        args: list[int | bytes] = [_number(seq, "a FETCH sequence number", 1, MAX_NUMBER)]
        for name in self._names:
            if name == "FLAGS":
                args.append(self.flag_list(flags))
            elif name == "UID":
                args.append(_number(uid, "UID", 1, MAX_NUMBER))
            elif name == "RFC822.SIZE":
                args.append(_number(size, "RFC822.SIZE", 0, MAX_NUMBER64))
            elif name == "ENVELOPE":
                if type(envelope) is bytes:
                    if not is_envelope_wire(envelope):
                        raise LocalProtocolError("not an envelope's wire form")
                    args.append(envelope)
                elif isinstance(envelope, r.Envelope):
                    args.append(encode_envelope(envelope))
                else:
                    raise LocalProtocolError("ENVELOPE needs an envelope")
            elif name == "INTERNALDATE":
                if not isinstance(internal_date, datetime.datetime):
                    raise LocalProtocolError("INTERNALDATE needs a date-time")
                r.InternalDate(value=internal_date)  # an aware date-time, year 1..9999
                args.append(format_date_time(internal_date))
            else:  # MODSEQ
                args.append(_number(modseq, "MODSEQ", 1, MAX_NUMBER64))
        return self._template % tuple(args)

    def lines(self, rows: Iterable[FetchRow]) -> bytes:
        """`line` of every row, joined (stops at the first value that does not check)."""
        return b"".join(map(self.line, rows))


# How each item is written; "%d" and "%s" take the values in `FetchWriter.line`.
_PIECES = {
    "FLAGS": b"FLAGS %s",
    "UID": b"UID %d",
    "INTERNALDATE": b"INTERNALDATE %s",
    "RFC822.SIZE": b"RFC822.SIZE %d",
    "ENVELOPE": b"ENVELOPE %s",
    "MODSEQ": b"MODSEQ (%d)",
}
