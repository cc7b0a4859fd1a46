"""FETCH body sections: BODY[section]<partial> and BINARY[part] from a parsed message.

Implements RFC 9051 6.4.5 (and RFC 3501 6.4.5): ``BODY[]``, ``HEADER``,
``HEADER.FIELDS (...)``, ``HEADER.FIELDS.NOT (...)``, ``TEXT``, ``MIME`` and part
numbers at any depth, with a partial ``<origin.length>``; RFC822 is ``BODY[]``,
RFC822.HEADER is ``BODY[HEADER]`` and RFC822.TEXT is ``BODY[TEXT]``. RFC 3516 BINARY
and BINARY.SIZE decode the part's content transfer encoding.

Bytes come from the original message, as Dovecot serves them: HEADER.FIELDS gives the
matching fields in message order, folding kept, followed by an empty line (CRLF).
"""

from __future__ import annotations

from ..imap import Section
from ._model import HeaderBlock, Message
from ._transfer import decode_transfer

__all__ = ["binary", "binary_size", "section"]


def section(
    message: Message, section: Section, partial: tuple[int, int] | None = None
) -> bytes | None:
    """The bytes of ``BODY[section]<partial>``.

    As Dovecot answers: a part that does not exist gives empty bytes, and so do
    HEADER, HEADER.FIELDS[.NOT] and TEXT after a part number that is not a
    message/rfc822 or message/global part. (None is never returned; the type leaves
    room for a server that wants to answer NIL.)
    """
    data = message.data
    part = message.part(section.part)
    if part is None:
        return b""
    text = section.text
    if text is None:
        if not section.part:
            out = data
        else:
            out = data[part.body_start : part.end]
    elif text == "MIME":
        out = data[part.header.start : part.header.end]
    else:
        inner = part if not section.part else part.message
        if inner is None:
            out = b""
        elif text == "TEXT":
            out = data[inner.body_start : inner.end]
        elif text == "HEADER":
            out = data[inner.header.start : inner.header.end]
        else:
            out = _header_fields(inner.header, section.fields, text == "HEADER.FIELDS.NOT")
    return _partial(out, partial)


def _header_fields(header: HeaderBlock, names: tuple[bytes, ...], negate: bool) -> bytes:
    """Matching (or, negated, non-matching) fields in order, as sent, then CRLF.

    Without an empty line ending the header block, Dovecot 2.3 (which we follow here)
    adds no CRLF after a field that lacks a line end, and none at all for .NOT.
    """
    wanted = {name.lower() for name in names}
    data = header.data
    pieces: list[bytes] = []
    spans = header.spans()
    for start, colon, end in spans:
        name = data[start:colon].rstrip(b" \t").lower() if colon >= 0 else None
        if (name in wanted) != negate:
            pieces.append(data[start:end])
    ended = header.end > (spans[-1][2] if spans else header.start)
    if ended or not negate:
        pieces.append(b"\r\n")
    return b"".join(pieces)


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, length = partial
    return data[origin : origin + length]


def binary(
    message: Message, part: tuple[int, ...], partial: tuple[int, int] | None = None
) -> bytes | None:
    """``BINARY[part]<partial>``: the part's body with its transfer encoding undone.

    ``BINARY[]`` is the whole message as stored; a part that does not exist gives
    empty bytes (as Dovecot). None if the part's encoding is unknown: the server then
    answers ``NO [UNKNOWN-CTE]`` (RFC 3516 4.3).
    """
    if not part:
        return _partial(message.data, partial)
    target = message.part(part)
    if target is None:
        return b""
    decoded = decode_transfer(message.data[target.body_start : target.end], target.encoding)
    if decoded is None:
        return None
    return _partial(decoded, partial)


def binary_size(message: Message, part: tuple[int, ...]) -> int | None:
    """``BINARY.SIZE[part]``: the size of the decoded part, or None as for `binary`."""
    decoded = binary(message, part)
    return None if decoded is None else len(decoded)
