"""IMAP search keys (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 MODSEQ, RFC 8474 ids).

A search program is a tree of immutable values: the top level of SEARCH, SORT and THREAD
is a tuple of keys that must all match, `SearchAnd` is a parenthesised group, `SearchNot`
and `SearchOr` combine keys. One class per *shape* of key, the key name a `Literal`
field: `SearchFlag` (no argument: ALL, SEEN...), `SearchText` (a string: FROM, BODY...),
`SearchHeader`, `SearchKeyword` (KEYWORD / UNKEYWORD), `SearchDate` (BEFORE, SENTON...),
`SearchSize` (LARGER / SMALLER), `SearchSet` (a sequence set, or UID set), `SearchModSeq`
and `SearchObjectId` (EMAILID / THREADID).

Search strings are `bytes` as every wire string; they are always written quoted (or as a
literal when they cannot be quoted), as the RFC examples write them. `parse_search_key`
reads one key and `write_search_key` writes one; the command codec uses both.
"""

from __future__ import annotations

import datetime
import re
from typing import Literal

import attrs

from .._util import LocalProtocolError
from ._grammar import (
    MAX_NUMBER,
    MAX_NUMBER64,
    Encoder,
    ParseError,
    Parser,
    SequenceSet,
    format_date,
)

__all__ = [
    "SAVED",
    "Saved",
    "SearchAnd",
    "SearchDate",
    "SearchFlag",
    "SearchHeader",
    "SearchKey",
    "SearchKeyword",
    "SearchModSeq",
    "SearchNot",
    "SearchObjectId",
    "SearchOr",
    "SearchSet",
    "SearchSize",
    "SearchText",
    "parse_search_key",
    "parse_sequence_set",
    "write_search_key",
    "write_sequence_set",
]

FlagKeyName = Literal[
    "ALL",
    "ANSWERED",
    "DELETED",
    "DRAFT",
    "FLAGGED",
    "NEW",
    "OLD",
    "RECENT",
    "SEEN",
    "UNANSWERED",
    "UNDELETED",
    "UNDRAFT",
    "UNFLAGGED",
    "UNSEEN",
]
TextKeyName = Literal["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"]
DateKeyName = Literal["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]
_FLAG_KEYS: tuple[FlagKeyName, ...] = (
    "ALL",
    "ANSWERED",
    "DELETED",
    "DRAFT",
    "FLAGGED",
    "NEW",
    "OLD",
    "RECENT",
    "SEEN",
    "UNANSWERED",
    "UNDELETED",
    "UNDRAFT",
    "UNFLAGGED",
    "UNSEEN",
)
_TEXT_KEYS: tuple[TextKeyName, ...] = ("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO")
_DATE_KEYS: tuple[DateKeyName, ...] = (
    "BEFORE",
    "ON",
    "SINCE",
    "SENTBEFORE",
    "SENTON",
    "SENTSINCE",
)
# flag-keyword = atom (RFC 9051 9), written as on the wire; no "\" system flags.
_KEYWORD = re.compile(r"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\U0010ffff]+")
# objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474)
_OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_OBJECTID_B = re.compile(rb"[A-Za-z0-9_-]{1,255}")
# entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE (RFC 7162 3.1.5)
_ENTRY = re.compile(rb"/flags/\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")


class Saved:
    """The "$" sequence set (RFC 5182 SEARCHRES): the result saved by SEARCH RETURN (SAVE)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SAVED"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Saved)

    def __hash__(self) -> int:
        return hash("$")


SAVED = Saved()
SeqSet = SequenceSet | Saved


def parse_sequence_set(p: Parser) -> SeqSet:
    """A sequence-set, or "$" (RFC 5182)."""
    if p.maybe(b"$"):
        return SAVED
    return p.sequence_set()


def write_sequence_set(e: Encoder, value: SeqSet) -> None:
    e.raw(b"$" if isinstance(value, Saved) else value.to_bytes())


def _check_seqset(_inst: object, attr: attrs.Attribute[SeqSet], value: SeqSet) -> None:
    if not isinstance(value, SequenceSet | Saved):
        raise LocalProtocolError(f"{attr.name} must be a SequenceSet or SAVED: {value!r}")


def _check_wire_string(_inst: object, attr: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or b"\x00" in value:
        raise LocalProtocolError(f"{attr.name} must be bytes without NUL: {value!r}")


def _choice(options: tuple[str, ...]) -> attrs._ValidatorType[str]:
    def check(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
        if value not in options:
            raise LocalProtocolError(f"{attr.name} must be one of {options}: {value!r}")

    return check


class SearchKey:
    """Base class of the search keys."""

    __slots__ = ()


@attrs.frozen(slots=True, kw_only=True)
class SearchFlag(SearchKey):
    """A key without argument: ALL, SEEN, UNSEEN, NEW, RECENT..."""

    name: FlagKeyName = attrs.field(validator=_choice(_FLAG_KEYS))


@attrs.frozen(slots=True, kw_only=True)
class SearchText(SearchKey):
    """A substring search in a header field or the text: BCC, BODY, CC, FROM, SUBJECT..."""

    name: TextKeyName = attrs.field(validator=_choice(_TEXT_KEYS))
    value: bytes = attrs.field(validator=_check_wire_string)


@attrs.frozen(slots=True, kw_only=True)
class SearchHeader(SearchKey):
    """HEADER field-name string."""

    field: bytes = attrs.field(validator=_check_wire_string)
    value: bytes = attrs.field(validator=_check_wire_string)


def _check_keyword(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or _KEYWORD.fullmatch(value) is None:
        raise LocalProtocolError(f"{attr.name} must be a keyword atom: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class SearchKeyword(SearchKey):
    """KEYWORD flag / UNKEYWORD flag (``negate``); the flag is an atom like "$Forwarded"."""

    keyword: str = attrs.field(validator=_check_keyword)
    negate: bool = False


def _check_date(_inst: object, attr: attrs.Attribute[datetime.date], value: object) -> None:
    if type(value) is not datetime.date:
        raise LocalProtocolError(f"{attr.name} must be a datetime.date: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class SearchDate(SearchKey):
    """BEFORE, ON, SINCE (internal date) and SENTBEFORE, SENTON, SENTSINCE (Date: header)."""

    name: DateKeyName = attrs.field(validator=_choice(_DATE_KEYS))
    date: datetime.date = attrs.field(validator=_check_date)


def _check_number(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_NUMBER:
        raise LocalProtocolError(f"{attr.name} must be a number 0..{MAX_NUMBER}: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class SearchSize(SearchKey):
    """LARGER n / SMALLER n (RFC822.SIZE in octets)."""

    name: Literal["LARGER", "SMALLER"] = attrs.field(validator=_choice(("LARGER", "SMALLER")))
    size: int = attrs.field(validator=_check_number)


@attrs.frozen(slots=True, kw_only=True)
class SearchSet(SearchKey):
    """A sequence set of message numbers, or with ``uid`` the key UID sequence-set."""

    set: SeqSet = attrs.field(validator=_check_seqset)
    uid: bool = False


def _check_modseq(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_NUMBER64:
        raise LocalProtocolError(f"{attr.name} must be a mod-sequence 0..2^63-1: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class SearchModSeq(SearchKey):
    """MODSEQ [entry-name entry-type] modseq (RFC 7162 3.1.5).

    ``entry`` is the entry name without quotes, as ``b"/flags/\\\\draft"``, and
    ``entry_type`` goes with it ("priv", "shared" or "all"); both or neither.
    """

    modseq: int = attrs.field(validator=_check_modseq)
    entry: bytes | None = None
    entry_type: Literal["priv", "shared", "all"] | None = None

    def __attrs_post_init__(self) -> None:
        if (self.entry is None) != (self.entry_type is None):
            raise LocalProtocolError("MODSEQ entry name and entry type go together")
        if self.entry is not None and _ENTRY.fullmatch(self.entry) is None:
            raise LocalProtocolError(f"MODSEQ entry must be /flags/<flag>: {self.entry!r}")
        if self.entry_type is not None and self.entry_type not in ("priv", "shared", "all"):
            raise LocalProtocolError(f"bad MODSEQ entry type {self.entry_type!r}")


def _check_objectid(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or _OBJECTID.fullmatch(value) is None:
        raise LocalProtocolError(f"{attr.name} must be an RFC 8474 objectid: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class SearchObjectId(SearchKey):
    """EMAILID objectid / THREADID objectid (RFC 8474 OBJECTID)."""

    name: Literal["EMAILID", "THREADID"] = attrs.field(validator=_choice(("EMAILID", "THREADID")))
    id: str = attrs.field(validator=_check_objectid)


def _check_key(_inst: object, attr: attrs.Attribute[SearchKey], value: object) -> None:
    if not isinstance(value, SearchKey) or type(value) is SearchKey:
        raise LocalProtocolError(f"{attr.name} must be a search key: {value!r}")


def _keys(value: object) -> tuple[SearchKey, ...]:
    if not isinstance(value, list | tuple):
        raise LocalProtocolError(f"search keys must be a sequence: {value!r}")
    return tuple(value)


def _check_keys(_inst: object, attr: attrs.Attribute[tuple[SearchKey, ...]], value: object) -> None:
    assert isinstance(value, tuple)
    if not value:
        raise LocalProtocolError(f"{attr.name} needs at least one search key")
    for key in value:
        _check_key(_inst, attr, key)  # type: ignore[arg-type]


@attrs.frozen(slots=True, kw_only=True)
class SearchNot(SearchKey):
    """NOT key."""

    key: SearchKey = attrs.field(validator=_check_key)


@attrs.frozen(slots=True, kw_only=True)
class SearchOr(SearchKey):
    """OR key key."""

    left: SearchKey = attrs.field(validator=_check_key)
    right: SearchKey = attrs.field(validator=_check_key)


@attrs.frozen(slots=True, kw_only=True)
class SearchAnd(SearchKey):
    """A parenthesised group "(" key *(SP key) ")": all keys must match."""

    keys: tuple[SearchKey, ...] = attrs.field(converter=_keys, validator=_check_keys)


# --- reading --------------------------------------------------------------------------


def parse_search_key(p: Parser) -> SearchKey:
    """Read one search-key (RFC 9051 9, with RFC 7162 MODSEQ and RFC 8474 ids).

    Raises:
        ParseError: the bytes at ``p.pos`` are not a search key.
    """
    c = p.peek()
    if c == 0x28:  # "("
        return SearchAnd(keys=p.parens(parse_search_key, allow_empty=False))
    if 0x30 <= c <= 0x39 or c == 0x2A or c == 0x24:  # digit, "*", "$"
        return SearchSet(set=parse_sequence_set(p))
    start = p.pos
    try:
        name = p.keyword().decode("ascii")
    except ParseError:
        raise p.fail("a search key") from None
    if name in _FLAG_KEYS:
        return SearchFlag(name=name)
    if name in _TEXT_KEYS:
        p.sp()
        return SearchText(name=name, value=p.astring(quote=True))
    if name in _DATE_KEYS:
        p.sp()
        return SearchDate(name=name, date=p.date())
    if name in ("LARGER", "SMALLER"):
        p.sp()
        return SearchSize(name=name, size=p.number())  # type: ignore[arg-type]
    if name in ("KEYWORD", "UNKEYWORD"):
        p.sp()
        return SearchKeyword(keyword=p.atom().decode("ascii"), negate=name == "UNKEYWORD")
    if name == "HEADER":
        p.sp()
        field = p.astring(quote=True)
        p.sp()
        return SearchHeader(field=field, value=p.astring(quote=True))
    if name == "UID":
        p.sp()
        return SearchSet(set=parse_sequence_set(p), uid=True)
    if name == "NOT":
        p.sp()
        _nest(p, 1)
        key = parse_search_key(p)
        _nest(p, -1)
        return SearchNot(key=key)
    if name == "OR":
        p.sp()
        _nest(p, 1)
        left = parse_search_key(p)
        p.sp()
        right = parse_search_key(p)
        _nest(p, -1)
        return SearchOr(left=left, right=right)
    if name == "MODSEQ":
        return _parse_modseq(p)
    if name in ("EMAILID", "THREADID"):
        p.sp()
        m = _OBJECTID_B.match(p.data, p.pos)
        if m is None:
            raise p.fail("an object id")
        p.pos = m.end()
        return SearchObjectId(name=name, id=m.group().decode("ascii"))  # type: ignore[arg-type]
    raise ParseError(f"unknown search key {name!r}", start)


def _nest(p: Parser, step: int) -> None:
    # NOT and OR nest like parentheses: the same limit keeps the recursion bounded.
    p.depth += step
    if p.depth > p.max_depth:
        raise ParseError("search keys nested too deeply", p.pos)


def _parse_modseq(p: Parser) -> SearchModSeq:
    p.sp()
    if p.peek() == 0x22:
        start = p.pos
        entry = p.quoted()
        if _ENTRY.fullmatch(entry) is None:
            raise ParseError("MODSEQ entry name must be /flags/<flag>", start)
        p.sp()
        kind = p.keyword()
        if kind not in (b"PRIV", b"SHARED", b"ALL"):
            raise ParseError("MODSEQ entry type must be priv, shared or all", p.pos)
        p.sp()
        entry_type = kind.decode("ascii").lower()
        return SearchModSeq(modseq=p.number64(), entry=entry, entry_type=entry_type)  # type: ignore[arg-type]
    return SearchModSeq(modseq=p.number64())


# --- writing --------------------------------------------------------------------------


def write_search_key(e: Encoder, key: SearchKey) -> None:
    """Write one search key."""
    if isinstance(key, SearchFlag):
        e.word(key.name.encode("ascii"))
    elif isinstance(key, SearchText):
        e.word(key.name.encode("ascii")).sp().quoted_or_literal(key.value, atom_ok=True)
    elif isinstance(key, SearchHeader):
        e.word(b"HEADER").sp().quoted_or_literal(key.field, atom_ok=True).sp()
        e.quoted_or_literal(key.value, atom_ok=True)
    elif isinstance(key, SearchKeyword):
        e.word(b"UNKEYWORD" if key.negate else b"KEYWORD").sp()
        e.raw(key.keyword.encode("ascii"))
    elif isinstance(key, SearchDate):
        e.word(key.name.encode("ascii")).sp().word(format_date(key.date))
    elif isinstance(key, SearchSize):
        e.word(key.name.encode("ascii")).sp().number(key.size)
    elif isinstance(key, SearchSet):
        if key.uid:
            e.word(b"UID").sp()
        write_sequence_set(e, key.set)
    elif isinstance(key, SearchNot):
        e.word(b"NOT").sp()
        write_search_key(e, key.key)
    elif isinstance(key, SearchOr):
        e.word(b"OR").sp()
        write_search_key(e, key.left)
        e.sp()
        write_search_key(e, key.right)
    elif isinstance(key, SearchAnd):
        e.parens(key.keys, write_search_key)
    elif isinstance(key, SearchModSeq):
        e.word(b"MODSEQ").sp()
        if key.entry is not None:
            assert key.entry_type is not None
            e.quoted_or_literal(key.entry).sp().raw(key.entry_type.encode("ascii")).sp()
        e.number(key.modseq)
    else:
        assert isinstance(key, SearchObjectId)
        e.word(key.name.encode("ascii")).sp().raw(key.id.encode("ascii"))
