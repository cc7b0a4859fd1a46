"""IMAP grammar primitives shared by the command and the response codecs.

RFC 3501 section 9 and RFC 9051 section 9 (formal syntax). A *message* (one command or
one response) is a line that may be interrupted by literals: ``{n}`` CRLF, ``{n+}`` CRLF
(RFC 7888) or ``~{n}`` CRLF (RFC 3516 literal8), each followed by exactly n octets, after
which the line goes on. The fragmentizer hands the parser a whole message with its
literals inline, exactly as on the wire, so the grammar reads literals where they stand.

`Parser` is a recursive-descent reader over those bytes with a position; it never copies
the message and uses compiled regular expressions anchored at the position for every
token, so a FETCH response costs a few dozen C-level matches, not a loop per byte.
Failures raise `ParseError` with the position and what was expected; the connection turns
them into ``BAD`` (server) or a protocol error (client).

`Encoder` is the other direction: it builds the wire form, choosing the smallest legal
representation of a string (atom, quoted, literal) and splitting the output into
`Fragment`s at literals, because a client must wait for the server's "+" before it sends
a synchronizing literal.

IMAP often lets a sender spell one value several ways (``"INBOX"``, ``INBOX``, ``inbox``,
``{5}`` CRLF ``INBOX``). While it reads, the `Parser` notes every spelling that differs
from the one the `Encoder` would choose, and the codecs hang that `Spelling` on the value
they return. It takes no part in equality, and an encoder given it writes the same
spelling back, so a parsed message re-serialises to the octets it was read from. A
spelling is only ever a choice between equivalent legal forms, so a value edited after
parsing is still written correctly.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Literal as TypingLiteral
from typing import TypeVar

import attrs

from .._util import LocalProtocolError

__all__ = [
    "MAX_NUMBER",
    "MAX_NUMBER64",
    "Encoder",
    "Fragment",
    "LiteralFragment",
    "LiteralMode",
    "ParseError",
    "Parser",
    "SequenceSet",
    "Spelling",
    "StringForm",
    "dump",
    "format_date",
    "format_date_time",
]

T = TypeVar("T")
LiteralMode = TypingLiteral["sync", "nonsync", "binary"]
StringForm = TypingLiteral["atom", "quoted", "literal", "literal+"]

# RFC 9051 9: ATOM-CHAR = <any CHAR except atom-specials>
# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
#                 resp-specials; list-wildcards = "%" / "*"; quoted-specials = DQUOTE / "\"
# resp-specials = "]"
_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
# ASTRING-CHAR = ATOM-CHAR / resp-specials
_ASTRING_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+")
# list-mailbox = 1*list-char / string; list-char = ATOM-CHAR / list-wildcards / resp-specials
_LIST_CHARS = re.compile(rb"[^(){ \x00-\x1f\x7f\"\\\x80-\xff]+")
_NUMBER = re.compile(rb"[0-9]+")
# quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = <any TEXT-CHAR except quoted-specials>
#          / "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4 (the last only in IMAP4rev2 or
#          UTF8=ACCEPT; accepted when reading, written only when allowed)
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_QUOTED_UNESCAPE = re.compile(rb"\\([\"\\])")
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,19})(\+?)\}\r\n")
_FLAG = re.compile(rb"\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+|\\\*")
_SEQ_SET = re.compile(rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*")
_TEXT = re.compile(rb"[^\r\n]*")
_MONTHS = (b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT",
           b"NOV", b"DEC")  # fmt: skip
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
MAX_NUMBER = 4294967295  # number = 1*DIGIT, unsigned 32-bit
MAX_NUMBER64 = 9223372036854775807  # number64 (RFC 9051), mod-sequence-value (RFC 7162)
# Literals longer than this are not noted in a Spelling: their octets would be a dict key.
_SPELL_LIMIT = 4096


@attrs.frozen(slots=True)
class Spelling:
    """How a parsed message spelled what IMAP lets it spell more than one way.

    Only the choices that differ from the `Encoder`'s own are kept: ``words`` maps a
    keyword in upper case to its spelling (``b"FETCH"`` to ``b"fetch"``), ``strings`` a
    string's octets to the form it was sent in, ``forms`` names structural choices (a
    bare STORE flag list, say), and ``inbox`` is how each INBOX was spelled, in order.
    """

    words: dict[bytes, bytes] = attrs.field(factory=dict)
    strings: dict[bytes, StringForm] = attrs.field(factory=dict)
    forms: frozenset[str] = frozenset()
    inbox: tuple[bytes, ...] = ()


class ParseError(Exception):
    """The bytes do not follow the grammar: ``pos`` is where, the message says what."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} (at octet {pos})")
        self.pos = pos


# --- sequence sets --------------------------------------------------------------------


@attrs.frozen(slots=True)
class SequenceSet:
    """A sequence-set (RFC 9051 section 9): ranges of numbers, ``None`` standing for "*".

    Ranges keep their wire order and direction ("5:3" is the same set as "3:5"; both
    forms are kept so that serialize(parse(x)) == x). ``SequenceSet.parse(b"1:*")``.
    """

    ranges: tuple[tuple[int | None, int | None], ...]

    def __attrs_post_init__(self) -> None:
        if not self.ranges:
            raise LocalProtocolError("a sequence set needs at least one number")
        for lo, hi in self.ranges:
            for n in (lo, hi):
                if n is not None and not 1 <= n <= MAX_NUMBER:
                    raise LocalProtocolError(f"sequence number out of range: {n}")

    @classmethod
    def parse(cls, data: bytes | str) -> SequenceSet:
        # A non-ASCII character cannot be part of a set: "?" makes the parser say where.
        raw = data.encode("ascii", "replace") if isinstance(data, str) else data
        p = Parser(raw)
        value = p.sequence_set()
        p.end()
        return value

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        """The set of these numbers, compressed into ranges."""
        if not numbers:
            raise LocalProtocolError("a sequence set needs at least one number")
        ranges: list[tuple[int | None, int | None]] = []
        for n in sorted(set(numbers)):
            if ranges and ranges[-1][1] == n - 1:
                ranges[-1] = (ranges[-1][0], n)
            else:
                ranges.append((n, n))
        return cls(tuple(ranges))

    def to_bytes(self) -> bytes:
        parts = []
        for lo, hi in self.ranges:
            a = b"*" if lo is None else str(lo).encode()
            if lo == hi:
                parts.append(a)
            else:
                parts.append(a + b":" + (b"*" if hi is None else str(hi).encode()))
        return b",".join(parts)

    def __str__(self) -> str:
        return self.to_bytes().decode()

    def normalized(self, largest: int) -> list[tuple[int, int]]:
        """The set as ascending, disjoint, non-adjacent ``(first, last)`` ranges.

        "*" stands for ``largest`` (the largest number in use, 0 in an empty mailbox);
        a range is the same in either direction, and 0 is never a member. The cost is
        in the number of ranges, however many numbers they cover.
        """
        spans = []
        for lo, hi in self.ranges:
            a = largest if lo is None else lo
            b = largest if hi is None else hi
            if a > b:
                a, b = b, a
            a = max(a, 1)
            if a <= b:
                spans.append((a, b))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1] + 1:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return merged

    def iter(self, largest: int) -> Iterator[int]:
        """The numbers of the set in ascending order, "*" meaning ``largest``.

        RFC 9051 section 6.4.x: "*" is the largest number in use; a range is the same in
        either direction. Numbers above ``largest`` are included as given. Lazy: "1:*"
        over a large mailbox is not built in memory (intersect with what exists).
        """
        for a, b in self.normalized(largest):
            yield from range(a, b + 1)

    def contains(self, n: int, largest: int) -> bool:
        """Whether ``n`` is in the set, "*" meaning ``largest`` (0 never is)."""
        if n < 1:
            return False
        for lo, hi in self.ranges:
            a = largest if lo is None else lo
            b = largest if hi is None else hi
            if min(a, b) <= n <= max(a, b):
                return True
        return False


# --- reading --------------------------------------------------------------------------


class Parser:
    """Reads IMAP tokens from ``data`` starting at ``pos``; literals are inline."""

    __slots__ = ("data", "depth", "forms", "inbox", "max_depth", "pos", "strings", "words")

    def __init__(self, data: bytes, pos: int = 0, *, max_depth: int = 64) -> None:
        self.data = data
        self.pos = pos
        self.depth = 0
        self.max_depth = max_depth
        # What was spelled unlike the Encoder would: see `Spelling`.
        self.words: dict[bytes, bytes] | None = None
        self.strings: dict[bytes, StringForm] | None = None
        self.forms: set[str] | None = None
        self.inbox: list[bytes] | None = None

    def spelling(self) -> Spelling | None:
        """The spellings noted so far, or None when everything was canonical."""
        inbox = self.inbox
        if inbox is not None and all(sent == b"INBOX" for sent in inbox):
            inbox = None
        if self.words is None and self.strings is None and self.forms is None and not inbox:
            return None
        return Spelling(
            words=self.words or {},
            strings=self.strings or {},
            forms=frozenset(self.forms or ()),
            inbox=tuple(inbox or ()),
        )

    def note_inbox(self, sent: bytes) -> None:
        """A mailbox name that means INBOX was spelled ``sent``."""
        if self.inbox is None:
            self.inbox = []
        self.inbox.append(sent)

    def note_word(self, word: bytes, sent: bytes) -> None:
        """``word`` (upper case) was sent as ``sent``."""
        if sent != word:
            if self.words is None:
                self.words = {}
            self.words[word] = sent

    def note_string(self, value: bytes, form: StringForm) -> None:
        if self.strings is None:
            self.strings = {}
        self.strings[value] = form

    def note_form(self, name: str) -> None:
        if self.forms is None:
            self.forms = set()
        self.forms.add(name)

    def upper(self, word: bytes) -> bytes:
        """``word`` in upper case, noting its spelling."""
        up = word.upper()
        if up != word:
            self.note_word(up, word)
        return up

    def fail(self, expected: str) -> ParseError:
        got = self.data[self.pos : self.pos + 20]
        return ParseError(f"expected {expected}, got {got!r}", self.pos)

    # structure ---------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail("end of line")

    def peek(self) -> int:
        """The next octet, or -1 at the end."""
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def peek_is(self, token: bytes) -> bool:
        return self.data.startswith(token, self.pos)

    def expect(self, token: bytes) -> None:
        if not self.data.startswith(token, self.pos):
            raise self.fail(repr(token.decode("latin-1")))
        self.pos += len(token)

    def maybe(self, token: bytes) -> bool:
        if self.data.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def sp(self) -> None:
        if self.data.startswith(b" ", self.pos):
            self.pos += 1
        else:
            raise self.fail("a space")

    def keyword(self) -> bytes:
        """An atom, upper-cased: command names, response names, item names."""
        return self.upper(self.atom())

    def expect_keyword(self, word: bytes) -> None:
        """A case-insensitive keyword (``word`` in upper case)."""
        if not self.maybe_keyword(word):
            raise self.fail(word.decode())

    def maybe_keyword(self, word: bytes) -> bool:
        """Consume ``word`` (upper case; it may end with a space) in any case."""
        end = self.pos + len(word)
        sent = self.data[self.pos : end]
        if sent.upper() == word:
            if sent != word:
                self.note_word(word.rstrip(b" "), sent.rstrip(b" "))
            self.pos = end
            return True
        return False

    def open(self) -> None:
        """An opening parenthesis, with the nesting limit."""
        self.expect(b"(")
        self.depth += 1
        if self.depth > self.max_depth:
            raise ParseError("lists nested too deeply", self.pos)

    def close(self) -> None:
        self.expect(b")")
        self.depth -= 1

    def parens(self, item: Callable[[Parser], T], *, allow_empty: bool = True) -> list[T]:
        """ "(" [item *(SP item)] ")" """
        self.open()
        out: list[T] = []
        if self.peek_is(b")"):
            if not allow_empty:
                raise self.fail("at least one list item")
        else:
            out.append(item(self))
            while self.maybe(b" "):
                out.append(item(self))
        self.close()
        return out

    def nil(self) -> bool:
        """Consume NIL (any case) if it is next."""
        return self.maybe_keyword(b"NIL")

    # atoms and numbers ---------------------------------------------------------------

    def atom(self) -> bytes:
        m = _ATOM.match(self.data, self.pos)
        if m is None:
            raise self.fail("an atom")
        self.pos = m.end()
        return m.group()

    def number(self) -> int:
        """number = 1*DIGIT (32-bit unsigned)."""
        return self._number(MAX_NUMBER)

    def _number(self, limit: int) -> int:
        m = _NUMBER.match(self.data, self.pos)
        if m is None:
            raise self.fail("a number")
        # Long runs of digits are refused before int() (which refuses > 4300 digits).
        digits = m.group().lstrip(b"0") or b"0"
        if len(digits) > 19 or int(digits) > limit:
            raise ParseError("number out of range", self.pos)
        self.pos = m.end()
        return int(digits)

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise ParseError("expected a non-zero number", self.pos - 1)
        return value

    def number64(self) -> int:
        """number64 (RFC 9051): 1*DIGIT up to 2^63-1."""
        return self._number(MAX_NUMBER64)

    def nz_number64(self) -> int:
        value = self.number64()
        if value == 0:
            raise ParseError("expected a non-zero number", self.pos - 1)
        return value

    # strings -------------------------------------------------------------------------

    def quoted(self) -> bytes:
        m = _QUOTED.match(self.data, self.pos)
        if m is None:
            raise self.fail("a quoted string")
        self.pos = m.end()
        value = m.group(1)
        return _QUOTED_UNESCAPE.sub(rb"\1", value) if b"\\" in value else value

    def literal(self, *, binary_ok: bool = False) -> bytes:
        m = _LITERAL.match(self.data, self.pos)
        if m is None:
            raise self.fail("a literal")
        if m.group(1) and not binary_ok:
            raise ParseError("literal8 (~{n}) not allowed here", self.pos)
        start = m.end()
        end = start + int(m.group(2))
        if end > len(self.data):
            raise ParseError("literal runs past the end of the message", self.pos)
        value = self.data[start:end]
        if not m.group(1) and b"\x00" in value:
            raise ParseError("NUL in a literal (use literal8)", self.pos)
        self.pos = end
        if end - start <= _SPELL_LIMIT and not m.group(1):
            # The Encoder writes a literal only for what cannot be quoted, and {n+} only
            # when told to: note the other choices.
            if m.group(3):
                self.note_string(value, "literal+")
            elif _quotable(value, True):
                self.note_string(value, "literal")
        return value

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:  # "
            return self.quoted()
        if c == 0x7B or c == 0x7E:  # { or ~
            return self.literal()
        raise self.fail("a string")

    def astring(self, *, quote: bool = False) -> bytes:
        """astring = 1*ASTRING-CHAR / string.

        ``quote``: the Encoder writes this astring quoted (search strings), so an atom is
        the spelling to note, rather than a quoted string that could have been an atom.
        """
        c = self.peek()
        if c == 0x22:
            value = self.quoted()
            if not quote and _is_astring_atom(value):
                self.note_string(value, "quoted")
            return value
        if c == 0x7B:
            return self.literal()
        m = _ASTRING_ATOM.match(self.data, self.pos)
        if m is None:
            raise self.fail("an astring")
        self.pos = m.end()
        value = m.group()
        if quote:
            self.note_string(value, "atom")
        return value

    def nstring(self) -> bytes | None:
        """nstring = string / nil."""
        c = self.peek()
        if c == 0x22 or c == 0x7B or c == 0x7E:
            return self.string()
        if self.nil():
            return None
        raise self.fail("a string or NIL")

    def list_mailbox(self) -> bytes:
        """list-mailbox = 1*list-char / string (LIST patterns may hold % and *)."""
        c = self.peek()
        if c == 0x22 or c == 0x7B:
            value = self.string()
            if c == 0x22 and value and _LIST_CHARS.fullmatch(value) is not None:
                self.note_string(value, "quoted")
            return value
        m = _LIST_CHARS.match(self.data, self.pos)
        if m is None:
            raise self.fail("a mailbox pattern")
        self.pos = m.end()
        return m.group()

    def text(self) -> bytes:
        """text = 1*TEXT-CHAR: the rest of the line."""
        m = _TEXT.match(self.data, self.pos)
        assert m is not None
        self.pos = m.end()
        return m.group()

    # other shared values -------------------------------------------------------------

    def flag(self) -> str:
        """flag: "\\" atom (system or extension flag), keyword atom, or "\\*"."""
        m = _FLAG.match(self.data, self.pos)
        if m is None:
            raise self.fail("a flag")
        self.pos = m.end()
        return m.group().decode("ascii")

    def sequence_set(self) -> SequenceSet:
        m = _SEQ_SET.match(self.data, self.pos)
        if m is None:
            raise self.fail("a sequence set")
        ranges: list[tuple[int | None, int | None]] = []
        for part in m.group().split(b","):
            lo, _, hi = part.partition(b":")
            a = _seq_number(lo, self.pos)
            b = a if not hi else _seq_number(hi, self.pos)
            ranges.append((a, b))
        self.pos = m.end()
        return SequenceSet(tuple(ranges))

    def date(self) -> datetime.date:
        """date = date-text / DQUOTE date-text DQUOTE; date-text = day "-" month "-" year."""
        start = self.pos
        quoted = self.maybe(b'"')
        m = _DATE.match(self.data, self.pos)
        if m is None:
            raise self.fail("a date like 1-Jan-2024")
        try:
            month = _MONTHS.index(m.group(2).upper()) + 1
            value = datetime.date(int(m.group(3)), month, int(m.group(1)))
        except ValueError:
            raise ParseError("not a valid date", self.pos) from None
        self.pos = m.end()
        if quoted:
            self.expect(b'"')
        # A date is noted like a keyword: its canonical text to the text sent.
        self.note_word(format_date(value), self.data[start : self.pos])
        return value

    def date_time(self) -> datetime.datetime:
        """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone."""
        m = _DATE_TIME.match(self.data, self.pos)
        if m is None:
            raise self.fail('a date-time like "01-Jan-2024 00:00:00 +0000"')
        day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
        if int(zm) > 59:
            raise ParseError("not a valid time zone", self.pos)
        try:
            month = _MONTHS.index(mon.upper()) + 1
            offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
            tz = datetime.timezone(-offset if sign == b"-" else offset)
            value = datetime.datetime(
                int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=tz
            )
        except ValueError:
            raise ParseError("not a valid date-time", self.pos) from None
        self.pos = m.end()
        if day[:1] == b"0" or mon != mon.title():
            # Other spellings of the same date-time ("01-JAN-..."), noted like a keyword.
            self.note_word(format_date_time(value), self.data[m.start() : m.end()])
        return value


def format_date_time(d: datetime.datetime) -> bytes:
    """The canonical date-time: '"dd-Mon-yyyy hh:mm:ss +zzzz"', the day space-padded."""
    offset = d.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = b"-" if minutes < 0 else b"+"
    hh, mm = divmod(abs(minutes), 60)
    return b'"%2d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        d.day, _MONTHS[d.month - 1].title(), d.year, d.hour, d.minute, d.second, sign, hh, mm
    )  # fmt: skip


def format_date(d: datetime.date) -> bytes:
    """The canonical date-text: "1-Feb-1994" (no leading zero, month in title case)."""
    return b"%d-%s-%04d" % (d.day, _MONTHS[d.month - 1].title(), d.year)


def _seq_number(digits: bytes, pos: int) -> int | None:
    if digits == b"*":
        return None
    digits = digits.lstrip(b"0") or b"0"
    if len(digits) > 10 or not 1 <= int(digits) <= MAX_NUMBER:
        raise ParseError("sequence number out of range", pos)
    return int(digits)


# --- writing --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class LiteralFragment:
    """A literal's octets; the line fragment before it ends with its announcement.

    A client sends a "sync" literal only after the server's "+" continuation.
    """

    data: bytes
    mode: LiteralMode


Fragment = bytes | LiteralFragment


class Encoder:
    """Builds the wire form of one message, split into fragments at literals."""

    __slots__ = ("_fragments", "_inbox", "_line", "_strings", "_words", "literal_plus", "spelling",
                 "utf8")  # fmt: skip

    def __init__(
        self, *, literal_plus: bool = False, utf8: bool = False, spelling: Spelling | None = None
    ) -> None:
        # literal_plus: non-synchronizing literals may be used (LITERAL+ / LITERAL-
        # within its limit; a server always uses {n} in responses, which need no "+").
        self.literal_plus = literal_plus
        # utf8: UTF-8 may go in quoted strings (IMAP4rev2 or UTF8=ACCEPT enabled).
        self.utf8 = utf8
        # spelling: how the value being written was spelled when it was parsed.
        self.spelling = spelling
        self._words = spelling.words if spelling is not None else None
        self._strings = spelling.strings if spelling is not None else None
        self._inbox = list(reversed(spelling.inbox)) if spelling is not None else None
        self._line = bytearray()
        self._fragments: list[Fragment] = []

    def raw(self, data: bytes) -> Encoder:
        self._line += data
        return self

    def word(self, word: bytes) -> Encoder:
        """A keyword (upper case), spelled as it was parsed."""
        self._line += self._words.get(word, word) if self._words else word
        return self

    def spelled_word(self, word: bytes) -> bytes:
        """How keyword ``word`` was spelled (``word`` itself when it was not parsed)."""
        return self._words.get(word, word) if self._words else word

    def spelled_string(self, data: bytes) -> bool:
        """Whether the parsed value spelled the string ``data`` in a form of its own."""
        return bool(self._strings) and data in self._strings  # type: ignore[operator]

    def inbox(self) -> bytes:
        """The wire form of the next INBOX, spelled as parsed."""
        return self._inbox.pop() if self._inbox else b"INBOX"

    def spelled(self, form: str) -> bool:
        """Whether the parsed value made the structural choice ``form``."""
        return self.spelling is not None and form in self.spelling.forms

    def sp(self) -> Encoder:
        self._line += b" "
        return self

    def number(self, n: int) -> Encoder:
        if n < 0:
            raise LocalProtocolError(f"IMAP numbers are not negative: {n}")
        self._line += str(n).encode()
        return self

    def literal(self, data: bytes, mode: LiteralMode | None = None) -> Encoder:
        if mode is None:
            if b"\x00" in data:
                mode = "binary"
            elif not self.literal_plus:
                mode = "sync"
            else:
                # a literal parsed as {n} stays {n}
                sent = self._strings.get(data) if self._strings else None
                mode = "sync" if sent == "literal" else "nonsync"
        if mode == "binary":
            self._line += b"~{%d}\r\n" % len(data)
        elif mode == "nonsync":
            self._line += b"{%d+}\r\n" % len(data)
        else:
            self._line += b"{%d}\r\n" % len(data)
        self._fragments.append(bytes(self._line))
        self._line.clear()
        self._fragments.append(LiteralFragment(data, mode))
        return self

    def _sent_literal(self, data: bytes) -> bool:
        """Write ``data`` as the literal it was parsed as, if it was one."""
        sent = self._strings.get(data) if self._strings else None
        if sent == "literal" or sent == "literal+":
            self.literal(data, "nonsync" if sent == "literal+" and self.literal_plus else "sync")
            return True
        return False

    def quoted_or_literal(self, data: bytes, *, atom_ok: bool = False) -> Encoder:
        """A string: quoted when it can be, else a literal.

        ``atom_ok``: the grammar allows an astring here, written bare if it was parsed so.
        """
        if self._strings and self._sent_literal(data):
            return self
        if _quotable(data, self.utf8):
            if atom_ok and self._strings and self._strings.get(data) == "atom":
                if _is_astring_atom(data):
                    self._line += data
                    return self
            if b'"' in data or b"\\" in data:
                data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            self._line += b'"' + data + b'"'
            return self
        return self.literal(data)

    def astring(self, data: bytes | str) -> Encoder:
        """An astring: a bare atom when it can be, else quoted, else a literal."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if b"\x00" in raw:
            # string = quoted / literal: neither holds NUL (literal8 is not a string).
            raise LocalProtocolError("an astring cannot hold NUL")
        if _is_astring_atom(raw) and (
            not self._strings or self._strings.get(raw, "atom") == "atom"
        ):
            self._line += raw
            return self
        return self.quoted_or_literal(raw)

    def nstring(self, data: bytes | None) -> Encoder:
        if data is None:
            self._line += b"NIL"
            return self
        return self.quoted_or_literal(data)

    def parens(self, items: Iterable[T], write: Callable[[Encoder, T], object]) -> Encoder:
        self._line += b"("
        first = True
        for item in items:
            if not first:
                self._line += b" "
            first = False
            write(self, item)
        self._line += b")"
        return self

    def finish(self) -> list[Fragment]:
        """The fragments of the message, the last one ending with CRLF."""
        self._line += b"\r\n"
        self._fragments.append(bytes(self._line))
        self._line.clear()
        out, self._fragments = self._fragments, []
        return out


def _is_astring_atom(data: bytes) -> bool:
    return bool(data) and _ASTRING_ATOM.fullmatch(data) is not None and data.upper() != b"NIL"


def _quotable(data: bytes, utf8: bool) -> bool:
    if len(data) > 1024 or b"\r" in data or b"\n" in data or b"\x00" in data:
        return False
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def dump(fragments: Iterable[Fragment]) -> bytes:
    """All fragments as one byte string (when the flow does not matter)."""
    return b"".join(f if isinstance(f, bytes) else f.data for f in fragments)
