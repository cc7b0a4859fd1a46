"""SEARCH evaluation (RFC 3501 6.4.4, RFC 9051 6.4.4) and ESEARCH result shapes.

A search program (the `mailproto.imap` search key tree) is compiled once into a
predicate, then run over the messages of a mailbox, each described by a `MessageInfo`:
its metadata (sequence number, UID, flags, INTERNALDATE, RFC822.SIZE, mod-sequence,
RFC 8474 object ids) and a ``load`` callable that returns the parsed `Message`. Keys
that need only metadata never call ``load``; within a group the cheap keys run first,
so ``UNSEEN BODY x`` reads only the unseen messages, and each message is loaded at most
once per call.

Semantics, key by key:

- Flags (ANSWERED, DELETED, DRAFT, FLAGGED, SEEN, RECENT and their UN- forms, KEYWORD,
  UNKEYWORD) compare flag names without regard to case. RECENT is ``\\Recent`` in
  ``flags`` (the session puts it there); NEW is RECENT and not SEEN, OLD is not
  RECENT.
- BEFORE, ON, SINCE compare the date of INTERNALDATE in its own time zone; SENTBEFORE,
  SENTON, SENTSINCE the date of the Date: header as written (RFC 9051 6.4.4: "disregarding
  time and timezone"). A Date: that is missing or not an RFC 5322 date-time counts as
  1 January 1970, as Dovecot counts it (the RFC does not say).
- LARGER and SMALLER compare RFC822.SIZE (strictly).
- Substring matching is case-insensitive for all of Unicode (`fold`), over decoded
  text. What each key reads follows Dovecot, the reference server:

  - SUBJECT: every Subject field of the top header, RFC 2047 words decoded, each run
    of white space read as one space.
  - FROM, TO, CC, BCC: those fields parsed and written back in a normal form
    (`address_text`: no comments, ``name <local@domain>``, groups as ``name: ...;``).
  - HEADER name string: every field of that name, words decoded; ``HEADER name ""``
    matches when the field exists (as an empty string does for the keys above).
  - BODY: the bodies of the text/* and message/* leaf parts, transfer encoding and
    charset decoded, encapsulated messages walked into; no header is searched.
  - TEXT: those bodies and every header block (top, MIME part headers, encapsulated
    messages), unfolded and decoded.
- Sequence sets: "*" is the largest sequence number; UID sets: "*" is the largest UID
  in the mailbox; "$" (RFC 5182) is the saved result, given as UIDs.
- MODSEQ (RFC 7162 3.1.5): the message mod-sequence is at least the value; the entry
  name, if any, is ignored (section 3.1.5 allows a server without per-flag
  mod-sequences to do so). EMAILID / THREADID (RFC 8474) compare the object ids.
- CHARSET: search strings are decoded from it. Any charset Python knows is accepted;
  an unknown one raises `UnknownCharset`, whose ``code`` is the BADCHARSET response
  code to send (RFC 9051 6.4.4: ``NO [BADCHARSET (UTF-8 US-ASCII)]``).
"""

from __future__ import annotations

import bisect
import datetime
import re
from collections.abc import Callable, Iterable, Sequence

import attrs

from ..imap._grammar import SequenceSet
from ..imap._responses import BadCharset, ESearch
from ..imap._search import (
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchKeyword,
    SearchModSeq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
)
from ._address import parse_addresses
from ._model import _BLANK_LINE, HeaderBlock, Message, Part, parse_message
from ._transfer import decode_transfer
from ._words import decode_header, decode_text, fold, lookup_charset

__all__ = [
    "SUPPORTED_CHARSETS",
    "MessageInfo",
    "UnknownCharset",
    "esearch",
    "saved_result",
    "search",
    "search_messages",
    "uses_modseq",
]

SUPPORTED_CHARSETS: tuple[bytes, ...] = (b"UTF-8", b"US-ASCII")
_LWSP = re.compile(r"[ \t\r\n]+")
_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")


def _frozen_flags(value: Iterable[str]) -> frozenset[str]:
    return value if isinstance(value, frozenset) else frozenset(value)


@attrs.frozen(slots=True, kw_only=True, eq=False)
class MessageInfo:
    """What SEARCH, SORT and THREAD know of one message before reading it.

    ``flags`` are the flags as the session sees them, ``\\Recent`` included when the
    message is recent in this session. ``internal_date`` should be timezone-aware
    (a naive value is read as UTC where instants are compared). ``load`` returns the
    parsed message; it is called only when a key needs the header or the body. A
    store may give ``read`` as well (the octets ``load`` would parse): TEXT then reads
    the top header from them first, and most matches need no MIME parse at all.
    """

    seq: int
    uid: int
    internal_date: datetime.datetime
    size: int
    load: Callable[[], Message] = attrs.field(repr=False)
    flags: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_flags)
    modseq: int = 0
    email_id: str | None = None
    thread_id: str | None = None
    # The octets that ``load`` parses, when reading them is cheaper than parsing: TEXT
    # then looks at the top header first without parsing the MIME structure, and the
    # message is parsed from these octets (``load`` is not called).
    read: Callable[[], bytes] | None = attrs.field(default=None, repr=False)


class UnknownCharset(ValueError):
    """SEARCH CHARSET names a charset we cannot decode; answer ``NO`` with `code`."""

    def __init__(self, charset: str) -> None:
        super().__init__(f"unknown charset {charset!r}")
        self.charset = charset

    @property
    def code(self) -> BadCharset:
        """``BADCHARSET (UTF-8 US-ASCII)``, the response code that goes with the NO."""
        return BadCharset(charsets=SUPPORTED_CHARSETS)


# --- reading one message, lazily ----------------------------------------------------


def header_text(raw: bytes, *, compress: bool = False) -> str:
    """A header value as SEARCH compares it: encoded words decoded, folded.

    ``compress`` reads each run of white space as one space, as Dovecot does for SUBJECT.
    """
    text = decode_header(raw)
    if compress:
        text = _LWSP.sub(" ", text).strip(" ")
    return fold(text)


_ATEXT = re.compile(rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\xff-]*")
_ESCAPED = re.compile(rb"([\"\\'])")


def _quote(value: bytes, *, dot_is_text: bool) -> bytes:
    # A phrase or local part as Dovecot writes it back: quoted (with \ before " \ ')
    # unless it is all atext.
    if _ATEXT.fullmatch(value.replace(b".", b"") if dot_is_text else value):
        return value
    return b'"' + _ESCAPED.sub(rb"\\\1", value) + b'"'


def address_text(raw: bytes) -> str:
    """An address field as FROM, TO, CC and BCC search it: parsed and written back.

    Dovecot matches these keys against the address list written in a normal form, not
    against the field as sent: comments are gone (one after an addr-spec becomes the
    display name), every address is ``name <local@domain>`` (``<local@domain>`` without
    a name), groups are ``name: members;``, missing parts read MISSING_MAILBOX and
    MISSING_DOMAIN, and encoded words are decoded. We write it the same way.
    """
    out = bytearray()
    first = True
    for a in parse_addresses(raw):
        if not first:
            out += b", "
        first = False
        if a.host is None and a.mailbox is not None:  # group start
            name = a.mailbox
            out += (name if b"=?" in name else _quote(name, dot_is_text=False)) if name else b'""'
            out += b": "
            first = True
        elif a.host is None:  # group end
            del out[-2 if out.endswith(b", ") else -1 if out.endswith(b": ") else len(out) :]
            out += b";"
        else:
            if a.name is not None:
                out += a.name if b"=?" in a.name else _quote(a.name, dot_is_text=False)
            if a.name:
                out += b" "
            out += b"<"
            if a.adl is not None:
                out += a.adl + b":"
            mailbox = a.mailbox or b""
            out += _quote(mailbox, dot_is_text=True) if mailbox else b'""'
            out += b"@" + a.host + b">"
    return fold(decode_header(bytes(out)))


_MONTHS = {
    m: i for i, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}
_ZONES = {
    b"ut": 0, b"gmt": 0, b"z": 0, b"est": -5, b"edt": -4, b"cst": -6, b"cdt": -5,
    b"mst": -7, b"mdt": -6, b"pst": -8, b"pdt": -7,
}  # fmt: skip
_COMMENT = re.compile(rb"\([^()]*\)")
# date-time = [ day-of-week "," ] date time (RFC 5322 3.3, with the obsolete forms of
# 4.3: any white space, two- and three-digit years, seconds left out, named zones).
_DATE_TIME = re.compile(
    rb"\s*(?:[a-z]+\s*,\s*)?(\d{1,2})\s+([a-z]{3})\s+(\d{2,4})\s+"
    rb"(\d{1,2})\s*:\s*(\d{1,2})(?:\s*:\s*(\d{1,2}))?(?:\s+([+-]\d{4}|[a-z]+))?\s*\Z",
    re.IGNORECASE,
)


def parse_date(raw: bytes) -> datetime.datetime | None:
    """The instant of an RFC 5322 date-time (section 3.3, obsolete forms of 4.3), or None.

    As strict as Dovecot: a value that is not a date-time is None (no fallback guessing),
    which is what "cannot be parsed" means in RFC 5256 2.2. The result keeps the zone
    written in the field (an unknown or missing zone, and "-0000", read as UTC), so
    ``.date()`` is the date as written.
    """
    m = _DATE_TIME.match(_COMMENT.sub(b" ", raw))
    if m is None:
        return None
    day, month, year, hour, minute, second, zone = m.groups()
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    y = int(year)
    if len(year) == 2:
        y += 2000 if y < 50 else 1900
    elif len(year) == 3:
        y += 1900
    if zone is None or zone[:1] not in (b"+", b"-"):
        offset = datetime.timedelta(hours=_ZONES.get((zone or b"").lower(), 0))
    else:
        sign = -1 if zone[:1] == b"-" else 1
        offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    try:
        return datetime.datetime(
            y, number, int(day), int(hour), int(minute), min(int(second or 0), 59),
            tzinfo=datetime.timezone(offset),
        )  # fmt: skip
    except ValueError:  # day 31 of February, hour 25, zone +9999...
        return None


def walk(root: Part) -> Iterable[Part]:
    """Every part below ``root`` (encapsulated messages included), depth first, in order."""
    stack: list[Part] = [root]
    while stack:
        part = stack.pop()
        yield part
        if part.message is not None:
            stack.append(part.message)
        else:
            stack.extend(reversed(part.children))


def body_texts(message: Message) -> list[str]:
    """The decoded text of every text/* and message/* leaf part, folded."""
    out: list[str] = []
    data = message.data
    for part in walk(message.root):
        if part.children or part.message is not None:
            continue
        if part.media_type not in (b"text", b"message"):
            continue
        raw = data[part.body_start : part.end]
        decoded = decode_transfer(raw, part.encoding)
        out.append(fold(decode_text(raw if decoded is None else decoded, part.param(b"charset"))))
    return out


def _field_text(name: bytes, value: bytes) -> str:
    return name.decode("utf-8", "replace") + ":" + decode_header(_UNFOLD.sub(b"", value))


def _block_text(header: HeaderBlock) -> str:
    return fold("\n".join([_field_text(name, value) for name, value in header.fields()]))


def field_at(header: HeaderBlock, pos: int) -> tuple[bytes, bytes, int]:
    """The field of ``header`` holding offset ``pos`` (not in its blank line), as
    `HeaderBlock.fields` gives it, found without splitting the whole block, and where
    the next field starts.

    A field starts at the block's start or at a line start that is not SP or HTAB (a
    continuation); its name runs to the first colon of its first line (none: the
    whole line is the name, the value empty).
    """
    data = header.data
    lo = header.start
    p = data.rfind(b"\n", lo, pos)
    while p >= lo and data[p + 1 : p + 2] in (b" ", b"\t"):
        p = data.rfind(b"\n", lo, p)
    start = lo if p < lo else p + 1
    q = data.find(b"\n", pos, header.end)
    while q >= 0 and data[q + 1 : q + 2] in (b" ", b"\t"):
        q = data.find(b"\n", q + 1, header.end)
    end = after = header.end if q < 0 else q + 1
    if data[end - 1 : end] == b"\n" and end > start:
        end -= 1
        if data[end - 1 : end] == b"\r" and end > start:
            end -= 1
    first_line = data.find(b"\n", start, end)
    colon = data.find(b":", start, end if first_line < 0 else first_line)
    if colon < 0:
        return data[start:end], b"", after
    return data[start:colon], data[colon + 1 : end], after


def _field_has(header: HeaderBlock, needle: str, raw: bytes) -> bool:
    """Whether a field of ``header`` whose octets hold ``raw`` (the ASCII ``needle``,
    any case, no line end) holds ``needle`` once decoded, each decoded alone.

    Enough for `_block_text` to hold it too: the block's text is its fields' texts
    joined by LF, and NFKC and case folding change nothing across an LF (a starter
    that composes with nothing), so each field's folded text is part of the block's.
    """
    low = header.data[header.start : header.end].lower()
    i = low.find(raw)
    while i >= 0:
        name, value, after = field_at(header, header.start + i)
        if needle in fold(_field_text(name, value)):
            return True
        i = low.find(raw, after - header.start)  # each field decoded once
    return False


def top_header(data: bytes) -> HeaderBlock:
    """The top header block of ``data``, delimited as `parse_message` delimits it.

    The parser starts the message at offset 0 with no boundary to look for, so the
    block runs to the first empty line (an empty first line: no field at all), or to
    the end; finding it needs no MIME parse.
    """
    if data.startswith(b"\r\n"):
        end = 2
    elif data.startswith(b"\n"):
        end = 1
    else:
        m = _BLANK_LINE.search(data)
        end = len(data) if m is None else m.end()
    return HeaderBlock(data, 0, end)


class Loaded:
    """One message during one call: the parsed message and what was read from it."""

    __slots__ = ("_body", "_data", "_flags", "_headers", "_message", "_raw", "_sent", "_text",
                 "_top", "info")  # fmt: skip

    def __init__(self, info: MessageInfo) -> None:
        self.info = info
        self._message: Message | None = None
        self._data: bytes | None = None
        self._flags: frozenset[str] | None = None
        self._headers: dict[tuple[bytes, str], list[str]] = {}
        self._raw: dict[bytes, bytes | None] = {}
        self._body: list[str] | None = None
        self._text: list[str] | None = None
        self._top: str | None = None
        self._sent: datetime.datetime | bool | None = False

    def message(self) -> Message:
        if self._message is None:
            if self._data is not None:
                self._message = parse_message(self._data)
            else:
                self._message = self.info.load()
        return self._message

    def _top_header(self) -> HeaderBlock:
        if self._message is None and self.info.read is not None:
            if self._data is None:
                self._data = self.info.read()
            return top_header(self._data)
        return self.message().root.header

    def top_text(self) -> str:
        """The top header block as TEXT reads it, without a MIME parse when it can."""
        if self._top is None:
            self._top = _block_text(self._top_header())
        return self._top

    def top_has(self, needle: str, raw: bytes | None) -> bool:
        """Whether `top_text` holds ``needle``; with ``raw`` (the needle as ASCII
        octets, no line end), the fields whose octets hold it are decoded first."""
        if self._top is None and raw is not None and _field_has(self._top_header(), needle, raw):
            return True
        return needle in self.top_text()

    @property
    def loaded(self) -> bool:
        return self._message is not None

    def flags(self) -> frozenset[str]:
        if self._flags is None:
            self._flags = frozenset(f.lower() for f in self.info.flags)
        return self._flags

    def header(self, name: bytes, how: str = "value") -> list[str]:
        """Every value of field ``name`` (lower-case) of the top header, as searched.

        ``how``: "value" (`header_text`, as HEADER searches), "subject" (white space
        compressed too, as SUBJECT) or "address" (`address_text`, as FROM, TO, CC, BCC).
        """
        values = self._headers.get((name, how))
        if values is None:
            header = self.message().root.header
            raw = header.get_all(name)
            if not name:  # a line without a colon is a field without a name (Dovecot)
                raw += [
                    header.data[s:e].rstrip(b"\r\n") for s, colon, e in header.spans() if colon < 0
                ]
            if how == "address":
                values = [address_text(v) for v in raw]
            else:
                values = [header_text(v, compress=how == "subject") for v in raw]
            self._headers[name, how] = values
        return values

    def raw_header(self, name: bytes) -> bytes | None:
        """The first value of field ``name`` (lower-case) of the top header, unfolded."""
        if name not in self._raw:
            self._raw[name] = self.message().root.header.get(name)
        return self._raw[name]

    def bodies(self) -> list[str]:
        if self._body is None:
            self._body = body_texts(self.message())
        return self._body

    def texts(self) -> list[str]:
        """Every header block, then every body text (TEXT)."""
        if self._text is None:
            parts = iter(walk(self.message().root))
            next(parts)  # the top header: top_text
            headers = [self.top_text(), *(_block_text(p.header) for p in parts)]
            self._text = headers + self.bodies()
        return self._text

    def sent(self) -> datetime.datetime | None:
        """The Date: header as an instant, or None when it is missing or unparseable."""
        if self._sent is False:
            raw = self.raw_header(b"date")
            self._sent = None if raw is None else parse_date(raw)
        assert not isinstance(self._sent, bool)
        return self._sent


# --- compiling the key tree ---------------------------------------------------------

_Pred = Callable[[Loaded], bool]
# The sent date of a message whose Date: is missing or unparseable, as Dovecot reads it.
_EPOCH = datetime.date(1970, 1, 1)
# Costs: what a key has to read. Cheaper keys run first within a group.
_META, _HEADER, _BODY = 0, 1, 2

_SYSTEM_FLAGS: dict[str, tuple[str, bool]] = {
    "ANSWERED": ("\\answered", True),
    "DELETED": ("\\deleted", True),
    "DRAFT": ("\\draft", True),
    "FLAGGED": ("\\flagged", True),
    "RECENT": ("\\recent", True),
    "SEEN": ("\\seen", True),
    "UNANSWERED": ("\\answered", False),
    "UNDELETED": ("\\deleted", False),
    "UNDRAFT": ("\\draft", False),
    "UNFLAGGED": ("\\flagged", False),
    "UNSEEN": ("\\seen", False),
    "OLD": ("\\recent", False),
}
_TEXT_FIELDS = {
    "BCC": (b"bcc", "address"),
    "CC": (b"cc", "address"),
    "FROM": (b"from", "address"),
    "SUBJECT": (b"subject", "subject"),
    "TO": (b"to", "address"),
}


def _always(_m: Loaded) -> bool:
    return True


def _member(ranges: list[tuple[int, int]]) -> Callable[[int], bool]:
    # Ascending disjoint ranges: one binary search per message, whatever the set's size.
    starts = [a for a, _ in ranges]
    ends = [b for _, b in ranges]

    def contains(n: int) -> bool:
        i = bisect.bisect_right(starts, n) - 1
        return i >= 0 and n <= ends[i]

    return contains


def _merge(numbers: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for n in sorted({n for n in numbers if n >= 1}):
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


class _Compiler:
    def __init__(
        self,
        codec: str,
        largest_seq: int,
        largest_uid: int,
        saved: SequenceSet | Iterable[int] | None,
    ) -> None:
        self.codec = codec
        self.largest_seq = largest_seq
        self.largest_uid = largest_uid
        self.saved = saved

    def saved_ranges(self) -> list[tuple[int, int]]:
        if self.saved is None:
            return []
        if isinstance(self.saved, SequenceSet):
            return self.saved.normalized(self.largest_uid)
        return _merge(self.saved)

    def needle(self, value: bytes) -> str:
        return fold(value.decode(self.codec, "replace"))

    def compile(self, key: SearchKey) -> tuple[int, _Pred]:
        if isinstance(key, SearchFlag):
            return _META, _flag(key.name)
        if isinstance(key, SearchKeyword):
            word = key.keyword.lower()
            if key.negate:
                return _META, lambda m: word not in m.flags()
            return _META, lambda m: word in m.flags()
        if isinstance(key, SearchSet):
            return _META, self._set(key)
        if isinstance(key, SearchSize):
            size = key.size
            if key.name == "LARGER":
                return _META, lambda m: m.info.size > size
            return _META, lambda m: m.info.size < size
        if isinstance(key, SearchDate):
            return self._date(key)
        if isinstance(key, SearchModSeq):
            modseq = key.modseq
            return _META, lambda m: m.info.modseq >= modseq
        if isinstance(key, SearchObjectId):
            oid = key.id
            if key.name == "EMAILID":
                return _META, lambda m: m.info.email_id == oid
            return _META, lambda m: m.info.thread_id == oid
        if isinstance(key, SearchText):
            return self._text(key)
        if isinstance(key, SearchHeader):
            name = key.field.lower()
            if not key.value:
                return _HEADER, lambda m: bool(m.header(name))
            needle = self.needle(key.value)
            return _HEADER, lambda m: any(needle in v for v in m.header(name))
        if isinstance(key, SearchNot):
            cost, inner = self.compile(key.key)
            return cost, lambda m: not inner(m)
        if isinstance(key, SearchOr):
            return _any([self.compile(key.left), self.compile(key.right)])
        assert isinstance(key, SearchAnd)
        return self.all(key.keys)

    def all(self, keys: Iterable[SearchKey]) -> tuple[int, _Pred]:
        compiled = sorted((self.compile(k) for k in keys), key=lambda c: c[0])
        if not compiled:
            return _META, _always
        if len(compiled) == 1:
            return compiled[0]
        preds = [p for _, p in compiled]
        return compiled[-1][0], lambda m: all(p(m) for p in preds)

    def _set(self, key: SearchSet) -> _Pred:
        if not isinstance(key.set, SequenceSet):
            saved = _member(self.saved_ranges())
            return lambda m: saved(m.info.uid)
        if key.uid:
            uids = _member(key.set.normalized(self.largest_uid))
            return lambda m: uids(m.info.uid)
        seqs = _member(key.set.normalized(self.largest_seq))
        return lambda m: seqs(m.info.seq)

    def _date(self, key: SearchDate) -> tuple[int, _Pred]:
        day = key.date
        compare: Callable[[datetime.date], bool]
        if key.name.endswith("BEFORE"):
            compare = day.__gt__
        elif key.name.endswith("ON"):
            compare = day.__eq__
        else:
            compare = day.__le__
        if not key.name.startswith("SENT"):
            return _META, lambda m: compare(m.info.internal_date.date())

        def sent(m: Loaded) -> bool:
            when = m.sent()
            return compare(_EPOCH if when is None else when.date())

        return _HEADER, sent

    def _text(self, key: SearchText) -> tuple[int, _Pred]:
        needle = self.needle(key.value)
        if not needle and key.name in ("BODY", "TEXT"):
            return _META, _always  # every message has a body and a text, if empty
        if key.name == "BODY":
            return _BODY, lambda m: any(needle in t for t in m.bodies())
        if key.name == "TEXT":
            # The top header first (a name, a date, a subject), before any MIME parse;
            # an ASCII needle is looked for in its octets first.
            plain = needle.isascii() and "\r" not in needle and "\n" not in needle
            raw = needle.encode("ascii") if plain else None
            return _BODY, lambda m: m.top_has(needle, raw) or any(needle in t for t in m.texts())
        name, how = _TEXT_FIELDS[key.name]
        return _HEADER, lambda m: any(needle in v for v in m.header(name, how))


def _flag(name: str) -> _Pred:
    if name == "ALL":
        return _always
    if name == "NEW":
        return lambda m: "\\recent" in m.flags() and "\\seen" not in m.flags()
    flag, present = _SYSTEM_FLAGS[name]
    if present:
        return lambda m: flag in m.flags()
    return lambda m: flag not in m.flags()


def _any(compiled: list[tuple[int, _Pred]]) -> tuple[int, _Pred]:
    compiled.sort(key=lambda c: c[0])
    preds = [p for _, p in compiled]
    return compiled[-1][0], lambda m: any(p(m) for p in preds)


def _codec(charset: str | None) -> str:
    if charset is None:
        return "utf-8"  # US-ASCII by default (RFC 3501); UTF-8 is its superset
    codec = lookup_charset(charset)
    if codec is None:
        raise UnknownCharset(charset)
    return "utf-8" if codec == "ascii" else codec


def _compile(
    keys: SearchKey | Sequence[SearchKey],
    messages: Sequence[MessageInfo],
    charset: str | None,
    saved: SequenceSet | Iterable[int] | None,
) -> _Pred:
    largest_seq = max((m.seq for m in messages), default=0)
    largest_uid = max((m.uid for m in messages), default=0)
    compiler = _Compiler(_codec(charset), largest_seq, largest_uid, saved)
    if isinstance(keys, SearchKey):
        keys = (keys,)
    return compiler.all(keys)[1]


def _constant(message: Message) -> Callable[[], Message]:
    return lambda: message


def search_messages(
    keys: SearchKey | Sequence[SearchKey],
    messages: Sequence[MessageInfo],
    *,
    charset: str | None = None,
    saved: SequenceSet | Iterable[int] | None = None,
) -> list[MessageInfo]:
    """The messages (in the given order) that match all ``keys``.

    ``messages`` is the whole mailbox (it defines "*"); ``saved`` the UIDs of the saved
    result that "$" refers to (none: "$" matches nothing, RFC 5182 2.1). A message that
    had to be loaded comes back with a ``load`` that returns the parsed message again
    without calling the original, so a SORT or THREAD that follows does not parse it
    twice.

    Raises:
        UnknownCharset: ``charset`` is not one we can decode.
    """
    predicate = _compile(keys, messages, charset, saved)
    out: list[MessageInfo] = []
    for info in messages:
        m = Loaded(info)
        if predicate(m):
            if m.loaded:
                info = attrs.evolve(info, load=_constant(m.message()))
            out.append(info)
    return out


def search(
    keys: SearchKey | Sequence[SearchKey],
    messages: Sequence[MessageInfo],
    *,
    uid: bool = False,
    charset: str | None = None,
    saved: SequenceSet | Iterable[int] | None = None,
) -> list[int]:
    """SEARCH (or UID SEARCH with ``uid``): the matching sequence numbers or UIDs.

    A top-level sequence of keys must all match (as the SEARCH command lists them).
    See `search_messages` for ``messages``, ``charset`` and ``saved``.
    """
    predicate = _compile(keys, messages, charset, saved)
    return [m.uid if uid else m.seq for m in messages if predicate(Loaded(m))]


def uses_modseq(keys: SearchKey | Sequence[SearchKey]) -> bool:
    """Whether the program has a MODSEQ key (RFC 7162 3.1.5: the reply then has MODSEQ)."""
    stack: list[SearchKey] = [keys] if isinstance(keys, SearchKey) else list(keys)
    while stack:
        key = stack.pop()
        if isinstance(key, SearchModSeq):
            return True
        if isinstance(key, SearchNot):
            stack.append(key.key)
        elif isinstance(key, SearchOr):
            stack += (key.left, key.right)
        elif isinstance(key, SearchAnd):
            stack += key.keys
    return False


def esearch(
    numbers: Iterable[int],
    returns: Iterable[str] = ("ALL",),
    *,
    tag: bytes | None = None,
    uid: bool = False,
    modseq: int | None = None,
) -> ESearch:
    """The ``* ESEARCH`` response for a SEARCH result (RFC 4731 3.1, RFC 9051 6.4.4).

    ``returns`` are the RETURN options (MIN, MAX, COUNT, ALL; others such as SAVE are
    ignored here); an empty RETURN () means ALL. MIN, MAX and ALL are left out when
    nothing matched, COUNT is then 0. ALL is a sequence set of compact ranges.
    """
    wanted = {r.upper() for r in returns} or {"ALL"}
    found = sorted(set(numbers))
    return ESearch(
        tag=tag,
        uid=uid,
        min=found[0] if found and "MIN" in wanted else None,
        max=found[-1] if found and "MAX" in wanted else None,
        count=len(found) if "COUNT" in wanted else None,
        all=SequenceSet.of(*found) if found and "ALL" in wanted else None,
        modseq=modseq if found else None,
    )


def saved_result(numbers: Iterable[int], returns: Iterable[str]) -> list[int]:
    """What ``SEARCH RETURN (SAVE ...)`` keeps as "$" (RFC 5182 section 2).

    With MIN and/or MAX and neither ALL nor COUNT, only the smallest and/or largest
    number; otherwise every match. The numbers come back ascending.
    """
    wanted = {r.upper() for r in returns}
    found = sorted(set(numbers))
    if found and wanted & {"MIN", "MAX"} and not wanted & {"ALL", "COUNT"}:
        ends = {found[0]} if "MIN" in wanted else set()
        if "MAX" in wanted:
            ends.add(found[-1])
        return sorted(ends)
    return found
