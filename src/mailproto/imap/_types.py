"""IMAP values shared by the command and the response codecs.

Conventions (every IMAP module follows them): strings from the wire are `bytes` and NIL
is ``None``; mailbox names are `str`, decoded from modified UTF-7 (RFC 3501 5.1.3) unless
UTF-8 mode is on, with "INBOX" in any case normalised to "INBOX"; flags are `str` as on
the wire; numbers are `int`; sequence sets are `SequenceSet`; dates are `datetime.date`
and date-times aware `datetime.datetime`.

Here live the pieces that both directions need: a body `Section` with its reader
`parse_section` and writer `Section.to_bytes`, the partial range ``<origin.length>``
(`parse_partial`), mailbox name conversion (`decode_mailbox`, `encode_mailbox`) and the
STATUS item names (`StatusItem`).
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

from .. import mutf7
from .._util import LocalProtocolError
from ._grammar import MAX_NUMBER, Encoder, ParseError, Parser

__all__ = [
    "Capability",
    "Section",
    "SectionText",
    "StatusItem",
    "decode_mailbox",
    "encode_mailbox",
    "parse_partial",
    "parse_section",
    "write_section",
]

Capability = str
StatusItem = Literal[
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED",
    "DELETED-STORAGE",
    "SIZE",
    "HIGHESTMODSEQ",
    "APPENDLIMIT",
    "MAILBOXID",
]
SectionText = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]

# RFC 5322 field-name = 1*ftext; ftext = %d33-57 / %d59-126 (printable except ":").
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
# ASTRING-CHAR (RFC 9051 9), to write a field name bare when it can be.
_ASTRING_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+")
# Longest first: "HEADER" is a prefix of the other two.
_SECTION_TEXTS: tuple[SectionText, ...] = (
    "HEADER.FIELDS.NOT",
    "HEADER.FIELDS",
    "HEADER",
    "TEXT",
    "MIME",
)


def _check_part(instance: Section, attribute: object, value: tuple[int, ...]) -> None:
    for n in value:
        if not 1 <= n <= MAX_NUMBER:
            raise LocalProtocolError(f"section part numbers are 1 to {MAX_NUMBER}: {n}")


@attrs.frozen(slots=True)
class Section:
    """A body section (RFC 9051 section-spec): what is inside ``BODY[...]``.

    ``part`` is the part path ("1.2" is ``(1, 2)``), ``text`` the section text, and
    ``fields`` the header field names of HEADER.FIELDS and HEADER.FIELDS.NOT, kept as
    given. ``Section()`` is the whole message ("[]"). MIME needs a part number; field
    names go with the two HEADER.FIELDS texts only, and those need at least one.
    """

    part: tuple[int, ...] = attrs.field(default=(), validator=_check_part)
    text: SectionText | None = None
    fields: tuple[bytes, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.text is not None and self.text not in _SECTION_TEXTS:
            raise LocalProtocolError(f"not a section text: {self.text!r}")
        if self.text == "MIME" and not self.part:
            raise LocalProtocolError("MIME is only a section text after a part number")
        if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            if not self.fields:
                raise LocalProtocolError(f"{self.text} needs at least one field name")
            for name in self.fields:
                if _FIELD_NAME.fullmatch(name) is None:
                    raise LocalProtocolError(f"not a header field name: {name!r}")
        elif self.fields:
            raise LocalProtocolError("field names go only with HEADER.FIELDS[.NOT]")

    def to_bytes(self) -> bytes:
        """The section-spec without the brackets: ``b"1.2.HEADER.FIELDS (From To)"``."""
        out = b".".join(str(n).encode() for n in self.part)
        if self.text is not None:
            out += (b"." if out else b"") + self.text.encode("ascii")
        if self.fields:
            out += b" (" + b" ".join(_field_to_bytes(f) for f in self.fields) + b")"
        return out


def write_section(e: Encoder, section: Section) -> None:
    """Write a section-spec (without the brackets), keywords spelled as parsed."""
    e.raw(b".".join(b"%d" % n for n in section.part))
    if section.text is not None:
        if section.part:
            e.raw(b".")
        e.word(section.text.encode("ascii"))
    if section.fields:
        e.raw(b" ").parens(section.fields, Encoder.astring)


def _field_to_bytes(name: bytes) -> bytes:
    if _ASTRING_ATOM.fullmatch(name) is not None and name.upper() != b"NIL":
        return name
    # Field names are printable ASCII without CR/LF, so they can always be quoted.
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def parse_section(p: Parser) -> Section:
    """Read ``"[" [section-spec] "]"`` (RFC 9051 section 9).

    section-spec = section-msgtext / (section-part ["." section-text]);
    section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT";
    section-text = section-msgtext / "MIME"; section-part = nz-number *("." nz-number).

    Raises:
        ParseError: the bytes at ``p.pos`` are not a section.
    """
    p.expect(b"[")
    part: list[int] = []
    text: SectionText | None = None
    fields: tuple[bytes, ...] = ()
    if not p.peek_is(b"]"):
        if 0x30 <= p.peek() <= 0x39:
            part.append(p.nz_number())
            while p.maybe(b"."):
                if 0x30 <= p.peek() <= 0x39:
                    part.append(p.nz_number())
                else:
                    text = _section_text(p, allow_mime=True)
                    break
        else:
            text = _section_text(p, allow_mime=False)
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            p.sp()
            start = p.pos
            names = p.parens(Parser.astring, allow_empty=False)
            for name in names:
                if _FIELD_NAME.fullmatch(name) is None:
                    raise ParseError(f"not a header field name: {name!r}", start)
            fields = tuple(names)
    p.expect(b"]")
    return Section(tuple(part), text, fields)


def _section_text(p: Parser, *, allow_mime: bool) -> SectionText:
    for word in _SECTION_TEXTS:
        if p.maybe_keyword(word.encode("ascii")):
            if word == "MIME" and not allow_mime:
                raise ParseError("MIME is only a section text after a part number", p.pos)
            return word
    raise p.fail("a section (HEADER, HEADER.FIELDS, TEXT, MIME or a part number)")


def parse_partial(p: Parser) -> tuple[int, int | None]:
    """Read ``"<" origin ["." length] ">"``: ``(origin, length)``, length None if absent.

    Commands give both (RFC 9051 partial = "<" number64 "." nz-number64 ">"); FETCH
    responses give only the origin (``BODY[]<0>``).

    Raises:
        ParseError: the bytes at ``p.pos`` are not a partial range.
    """
    p.expect(b"<")
    origin = p.number64()
    length: int | None = None
    if p.maybe(b"."):
        length = p.nz_number64()
    p.expect(b">")
    return origin, length


def decode_mailbox(raw: bytes, *, utf8: bool) -> str:
    """A mailbox name from the wire: UTF-8 in UTF-8 mode, else modified UTF-7.

    Any case of "INBOX" becomes "INBOX" (RFC 9051 5.1: INBOX is case-insensitive).

    Raises:
        ValueError: ``raw`` is not valid in its encoding (the parsers answer BAD).
    """
    name = raw.decode("utf-8") if utf8 else mutf7.decode(raw)
    return "INBOX" if name.upper() == "INBOX" else name


def encode_mailbox(name: str, *, utf8: bool) -> bytes:
    """The wire form of a mailbox name (before astring quoting): see `decode_mailbox`.

    Raises:
        ValueError: ``name`` holds a lone surrogate, which has no wire form.
    """
    if name.upper() == "INBOX":
        return b"INBOX"
    if utf8:
        try:
            return name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a lone surrogate has no UTF-8 form") from None
    return mutf7.encode(name)
