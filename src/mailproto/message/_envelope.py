"""FETCH ENVELOPE (RFC 3501 7.4.2, RFC 9051 7.5.2) from a message's header block.

The ten fields come from Date, Subject, From, Sender, Reply-To, To, Cc, Bcc, In-Reply-To
and Message-ID. Sender and Reply-To default to From when absent or empty (RFC 3501
7.4.2). A field that is absent is NIL; one that is present but empty is the empty string
(Subject, Date...) or NIL (an address list with no address in it).

Values are as sent, RFC 2047 encoded words left encoded. Where the RFCs leave the exact
bytes open, Dovecot's answers are followed, since clients see them in practice:

- Date, Message-ID and In-Reply-To: the unfolded value (line ends of folding removed),
  leading white space of the first line dropped (one blank only when the first line is
  blank), trailing white space kept.
- Subject: white space runs (folding included) become one space and the ends are trimmed.
- A field that occurs twice: the last Date, Subject, Message-ID, In-Reply-To counts, and the
  addresses of every From (To, Cc...) field are listed one after the other.
- NUL becomes U+FFFD: an IMAP string cannot hold NUL (RFC 3501 4.3).
"""

from __future__ import annotations

import re

from ..imap.responses import Address, Envelope
from ._address import REPLACEMENT, address_list
from ._model import FIELD_VALUE, Message, Part, raw_value

__all__ = ["envelope", "header_value", "humanize"]

_WSP_RUN = re.compile(rb"[ \t\r\n]+")
_ADDRESS_FIELDS = frozenset((b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc"))
# The envelope's fields where they start (HeaderBlock.scan): name, raw value.
_ENVELOPE_FIELD = re.compile(
    rb"\n(date|subject|in-reply-to|message-id|from|sender|reply-to|to|cc|bcc)" + FIELD_VALUE,
    re.I,
)


def header_value(raw: bytes) -> bytes:
    """A field value as IMAP servers hand it out: unfolded, leading blanks dropped.

    When the first line holds only blanks, Dovecot drops just one of them; so do we.
    """
    value = raw.lstrip(b" \t")
    if len(value) < len(raw) and value[:1] in (b"\r", b"\n", b""):
        value = raw[1:]
    if b"\n" in value or b"\r" in value:
        value = value.replace(b"\r", b"").replace(b"\n", b"")
    if b"\x00" in value:
        value = value.replace(b"\x00", REPLACEMENT)
    return value


def humanize(raw: bytes) -> bytes:
    """White space runs made one space, ends trimmed, NUL replaced: a Subject for people."""
    value = _WSP_RUN.sub(b" ", raw).strip(b" ")
    if b"\x00" in value:
        value = value.replace(b"\x00", REPLACEMENT)
    return value


def envelope(part: Part | Message) -> Envelope:
    """The ENVELOPE of a message, read from the header block of ``part``.

    For the message inside a message/rfc822 part, pass that part's ``message``.
    """
    header = part.root.header if isinstance(part, Message) else part.header
    # The last value of each text field, the addresses of each address field.
    text: dict[bytes, bytes] = {}
    addresses: dict[bytes, list[Address]] = {}
    for m in header.scan(_ENVELOPE_FIELD):
        key = m.group(1).lower()
        if key in _ADDRESS_FIELDS:
            found = addresses.get(key)
            if found is None:
                addresses[key] = address_list(raw_value(m, 2))
            else:
                found.extend(address_list(raw_value(m, 2)))
        else:
            text[key] = raw_value(m, 2)
    date = text.get(b"date")
    subject = text.get(b"subject")
    in_reply_to = text.get(b"in-reply-to")
    message_id = text.get(b"message-id")
    from_ = _nonempty(addresses.get(b"from"))
    return Envelope(
        date=None if date is None else header_value(date),
        subject=None if subject is None else humanize(subject),
        from_=from_,
        sender=_nonempty(addresses.get(b"sender")) or from_,
        reply_to=_nonempty(addresses.get(b"reply-to")) or from_,
        to=_nonempty(addresses.get(b"to")),
        cc=_nonempty(addresses.get(b"cc")),
        bcc=_nonempty(addresses.get(b"bcc")),
        in_reply_to=None if in_reply_to is None else header_value(in_reply_to),
        message_id=None if message_id is None else header_value(message_id),
    )


def _nonempty(found: list[Address] | None) -> tuple[Address, ...] | None:
    """An address list for ENVELOPE: NIL when no address was found."""
    return tuple(found) if found else None
