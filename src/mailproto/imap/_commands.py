"""IMAP commands: immutable values, one class per command, validated when built.

Every command carries its ``tag``. The UID forms are the same class with ``uid=True``
(`Fetch`, `Store`, `Copy`, `Move`, `Search`, `Sort`, `Thread`, `Expunge`). Field values
follow the shared conventions of `mailproto.imap._types`: wire strings are `bytes`,
mailbox names `str` (any case of "INBOX" becomes "INBOX"), flags `str` as on the wire,
sequence sets `SequenceSet` or `SAVED` ("$", RFC 5182).

FETCH items are typed: `FetchAttr` for the items without arguments (FLAGS, UID,
ENVELOPE...), `FetchBody` for BODY[section]<partial> and BODY.PEEK, `FetchBinary` for
BINARY[part]<partial> and BINARY.PEEK, `FetchBinarySize` for BINARY.SIZE[part]. The
``items`` of `Fetch` is a macro name ("ALL", "FAST", "FULL"), one item (written without
parentheses) or a tuple of items (written in parentheses, even when it has one).

`Append` holds its messages whole, as bytes: this codec form is for commands that fit in
memory; a connection may stream big messages separately.

`IdleDone` is not a tagged command but the "DONE" line that ends IDLE (RFC 2177).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from .._util import Event, LocalProtocolError
from ._grammar import MAX_NUMBER, MAX_NUMBER64, SequenceSet, Spelling
from ._search import SearchKey, SeqSet, _check_seqset
from ._types import Section, StatusItem

__all__ = [
    "Append",
    "AppendMessage",
    "Authenticate",
    "Capability",
    "Check",
    "Close",
    "Command",
    "Compress",
    "Copy",
    "Create",
    "Delete",
    "Enable",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchAttr",
    "FetchBinary",
    "FetchBinarySize",
    "FetchBody",
    "FetchItem",
    "GetQuota",
    "GetQuotaRoot",
    "Id",
    "Idle",
    "IdleDone",
    "List",
    "ListReturnStatus",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "Namespace",
    "Noop",
    "QResync",
    "Rename",
    "Search",
    "Select",
    "SetQuota",
    "Sort",
    "SortCriterion",
    "StartTLS",
    "Status",
    "Store",
    "Subscribe",
    "Thread",
    "Unselect",
    "Unsubscribe",
]

# tag = 1*<any ASTRING-CHAR except "+">
_TAG = re.compile(r"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\U0010ffff]+")
# atom (RFC 9051 9): capability names, auth mechanisms, keywords, sort/thread names.
_ATOM = re.compile(r"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\U0010ffff]+")
# flag = "\" atom / keyword atom (no "\*": that one only appears in PERMANENTFLAGS).
_FLAG = re.compile(r"\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\U0010ffff]+")
_STATUS_ITEMS: tuple[StatusItem, ...] = (
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
)


# --- validators -----------------------------------------------------------------------


def _check_tuple(attr: Any, value: Any) -> None:
    if not isinstance(value, tuple):
        raise LocalProtocolError(f"{attr.name} must be a tuple: {value!r}")


def _check_tag(_inst: Any, attr: Any, value: Any) -> None:
    if not isinstance(value, str) or _TAG.fullmatch(value) is None:
        raise LocalProtocolError(f"not a valid tag: {value!r}")


def _check_atom(_inst: Any, attr: Any, value: Any) -> None:
    if not isinstance(value, str) or _ATOM.fullmatch(value) is None:
        raise LocalProtocolError(f"{attr.name} must be an atom: {value!r}")


def _check_atoms(_inst: Any, attr: Any, value: Any) -> None:
    _check_tuple(attr, value)
    for item in value:
        _check_atom(_inst, attr, item)


def _check_flags(_inst: Any, attr: Any, value: Any) -> None:
    _check_tuple(attr, value)
    for item in value:
        if not isinstance(item, str) or _FLAG.fullmatch(item) is None:
            raise LocalProtocolError(f"{attr.name}: not a flag: {item!r}")


def _check_bytes(_inst: Any, attr: Any, value: Any) -> None:
    if not isinstance(value, bytes) or b"\x00" in value:
        raise LocalProtocolError(f"{attr.name} must be bytes without NUL: {value!r}")


def _check_nz_number(_inst: Any, attr: Any, value: Any) -> None:
    if type(value) is not int or not 1 <= value <= MAX_NUMBER:
        raise LocalProtocolError(f"{attr.name} must be a number 1..{MAX_NUMBER}: {value!r}")


def _check_modseq(_inst: Any, attr: Any, value: Any) -> None:
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_NUMBER64):
        raise LocalProtocolError(f"{attr.name} must be a mod-sequence: {value!r}")


def _upper(value: str) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"expected a str: {value!r}")
    return value.upper()


def _mailbox(value: object) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"a mailbox name must be a str: {value!r}")
    return "INBOX" if value.upper() == "INBOX" else value


def _check_mailbox(_inst: Any, attr: Any, value: Any) -> None:
    if re.search(r"[\x00\r\n\ud800-\udfff]", value):
        raise LocalProtocolError(f"{attr.name}: no NUL, CR, LF or lone surrogate: {value!r}")


def _mailboxes(value: Iterable[object]) -> tuple[str, ...]:
    return tuple(_mailbox(v) for v in value)


def _check_mailboxes(_inst: Any, attr: Any, value: Any) -> None:
    _check_tuple(attr, value)
    for item in value:
        _check_mailbox(_inst, attr, item)


def _check_nonempty(_inst: Any, attr: Any, value: Any) -> None:
    if not value:
        raise LocalProtocolError(f"{attr.name} needs at least one item")


def _check_search_keys(_inst: Any, attr: Any, value: Any) -> None:
    _check_tuple(attr, value)
    if not value:
        raise LocalProtocolError(f"{attr.name} needs at least one search key")
    for key in value:
        if not isinstance(key, SearchKey) or type(key) is SearchKey:
            raise LocalProtocolError(f"{attr.name}: not a search key: {key!r}")


def _check_charset(_inst: Any, attr: Any, value: Any) -> None:
    if value is not None:
        _check_atom(_inst, attr, value)


def _check_instances(cls: type | tuple[type, ...]) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, attr: Any, value: Any) -> None:
        _check_tuple(attr, value)
        for item in value:
            if not isinstance(item, cls):
                raise LocalProtocolError(f"{attr.name}: unexpected item {item!r}")

    return check


def _check_choices(options: tuple[str, ...]) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, attr: Any, value: Any) -> None:
        _check_tuple(attr, value)
        for item in value:
            if item not in options:
                raise LocalProtocolError(f"{attr.name}: must be among {options}: {item!r}")
        if len(set(value)) != len(value):
            raise LocalProtocolError(f"{attr.name}: repeated item in {value!r}")

    return check


# --- base -----------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Command(Event):
    """Base class of the IMAP commands: each has a ``tag``. Build the subclasses only."""

    tag: str = attrs.field(validator=_check_tag)
    # How the command was spelled when parsed (case, quoting, literals): no part of its
    # value, but format_command writes it back the same way.
    spelling: Spelling | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def __attrs_pre_init__(self) -> None:
        if type(self) is Command or type(self).__name__.startswith("_"):
            raise TypeError(f"{type(self).__name__} is abstract: build a command class")


@attrs.frozen(slots=True, kw_only=True)
class IdleDone(Event):
    """The "DONE" line that ends IDLE (RFC 2177); it has no tag."""


# --- any state ------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Capability(Command):
    """CAPABILITY."""


@attrs.frozen(slots=True, kw_only=True)
class Noop(Command):
    """NOOP."""


@attrs.frozen(slots=True, kw_only=True)
class Logout(Command):
    """LOGOUT."""


@attrs.frozen(slots=True, kw_only=True)
class Id(Command):
    """ID (RFC 2971): ``parameters`` is None for NIL, else field/value pairs (value NIL)."""

    parameters: tuple[tuple[bytes, bytes | None], ...] | None = attrs.field(
        default=None,
    )

    def __attrs_post_init__(self) -> None:
        if self.parameters is None:
            return
        _check_tuple(attrs.fields(Id).parameters, self.parameters)
        if len(self.parameters) > 30:
            raise LocalProtocolError("ID allows at most 30 field/value pairs")
        for pair in self.parameters:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise LocalProtocolError(f"ID parameters are (field, value) pairs: {pair!r}")
            field, value = pair
            if not isinstance(field, bytes) or b"\x00" in field or len(field) > 30:
                raise LocalProtocolError(f"bad ID field name {field!r}")
            if value is not None and (not isinstance(value, bytes) or b"\x00" in value):
                raise LocalProtocolError(f"bad ID field value {value!r}")
            if len(value or b"") > 1024:
                raise LocalProtocolError("ID field values are at most 1024 octets")


# --- not authenticated ----------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class StartTLS(Command):
    """STARTTLS."""


@attrs.frozen(slots=True, kw_only=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (SASL-IR, RFC 4959).

    ``initial_response`` is the decoded response: None for none, ``b""`` for the empty
    one (sent as "=").
    """

    mechanism: str = attrs.field(validator=_check_atom, converter=_upper)
    initial_response: bytes | None = attrs.field(default=None)

    @initial_response.validator
    def _check_ir(self, attr: attrs.Attribute[bytes | None], value: object) -> None:
        if value is not None and not isinstance(value, bytes):
            raise LocalProtocolError(f"initial_response must be bytes: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class Login(Command):
    """LOGIN userid password (both astrings, as bytes)."""

    username: bytes = attrs.field(validator=_check_bytes)
    password: bytes = attrs.field(validator=_check_bytes)

    def __repr__(self) -> str:
        return f"Login(tag={self.tag!r}, username={self.username!r}, password=<hidden>)"


# --- authenticated --------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Enable(Command):
    """ENABLE capability... (RFC 5161)."""

    capabilities: tuple[str, ...] = attrs.field(validator=[_check_nonempty, _check_atoms])


@attrs.frozen(slots=True, kw_only=True)
class QResync:
    """The QRESYNC select parameter (RFC 7162 3.2.5).

    ``known_uids`` the optional known UIDs, ``seq_match`` the optional pair (known
    sequence set, corresponding UIDs).
    """

    uidvalidity: int = attrs.field(validator=_check_nz_number)
    modseq: int = attrs.field(validator=_check_modseq)
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None

    def __attrs_post_init__(self) -> None:
        if self.modseq == 0:
            raise LocalProtocolError("QRESYNC mod-sequence must not be zero")
        if self.known_uids is not None and not isinstance(self.known_uids, SequenceSet):
            raise LocalProtocolError("known_uids must be a SequenceSet")
        if self.seq_match is not None:
            if len(self.seq_match) != 2 or not all(
                isinstance(s, SequenceSet) for s in self.seq_match
            ):
                raise LocalProtocolError("seq_match is a pair of SequenceSets")


@attrs.frozen(slots=True, kw_only=True)
class _SelectBase(Command):
    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    condstore: bool = False
    qresync: QResync | None = None

    def __attrs_post_init__(self) -> None:
        if self.qresync is not None and not isinstance(self.qresync, QResync):
            raise LocalProtocolError("qresync must be a QResync")


@attrs.frozen(slots=True, kw_only=True)
class Select(_SelectBase):
    """SELECT mailbox [(CONDSTORE) / (QRESYNC (...))] (RFC 7162)."""


@attrs.frozen(slots=True, kw_only=True)
class Examine(_SelectBase):
    """EXAMINE: SELECT read-only."""


@attrs.frozen(slots=True, kw_only=True)
class Create(Command):
    """CREATE mailbox [(USE (special-use...))] (RFC 6154); None writes no USE."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    special_use: tuple[str, ...] | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_check_flags),
    )


@attrs.frozen(slots=True, kw_only=True)
class Delete(Command):
    """DELETE mailbox."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


@attrs.frozen(slots=True, kw_only=True)
class Rename(Command):
    """RENAME existing new."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    new_name: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


@attrs.frozen(slots=True, kw_only=True)
class Subscribe(Command):
    """SUBSCRIBE mailbox."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


@attrs.frozen(slots=True, kw_only=True)
class Unsubscribe(Command):
    """UNSUBSCRIBE mailbox."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


ListSelection = Literal["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"]
ListReturn = Literal["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"]
_LIST_SELECTION: tuple[ListSelection, ...] = (
    "SUBSCRIBED",
    "REMOTE",
    "RECURSIVEMATCH",
    "SPECIAL-USE",
)
_LIST_RETURN: tuple[ListReturn, ...] = ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE")


@attrs.frozen(slots=True, kw_only=True)
class ListReturnStatus:
    """The STATUS (items) return option of LIST (RFC 5819)."""

    items: tuple[StatusItem, ...] = attrs.field(
        validator=[_check_nonempty, _check_choices(_STATUS_ITEMS)]
    )


@attrs.frozen(slots=True, kw_only=True)
class List(Command):
    """LIST [(selection)] reference pattern(s) [RETURN (options)] (RFC 3501, RFC 5258).

    ``selection`` None writes no selection list (basic LIST), ``()`` an empty one.
    Several ``patterns`` are written in parentheses. ``return_options`` None writes no
    RETURN clause; RECURSIVEMATCH needs another selection option (RFC 5258 3.1).
    """

    reference: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    patterns: tuple[str, ...] = attrs.field(
        converter=_mailboxes, validator=[_check_nonempty, _check_mailboxes]
    )
    selection: tuple[ListSelection, ...] | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_check_choices(_LIST_SELECTION)),
    )
    return_options: tuple[ListReturn | ListReturnStatus, ...] | None = attrs.field(
        default=None,
    )

    def __attrs_post_init__(self) -> None:
        if self.selection == ("RECURSIVEMATCH",):
            raise LocalProtocolError("RECURSIVEMATCH needs another selection option")
        if self.return_options is not None:
            seen: set[str] = set()
            for option in self.return_options:
                name = "STATUS" if isinstance(option, ListReturnStatus) else option
                if name != "STATUS" and name not in _LIST_RETURN:
                    raise LocalProtocolError(f"unknown LIST return option {option!r}")
                if name in seen:
                    raise LocalProtocolError(f"repeated LIST return option {name}")
                seen.add(name)


@attrs.frozen(slots=True, kw_only=True)
class Lsub(Command):
    """LSUB reference pattern (RFC 3501)."""

    reference: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    pattern: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


@attrs.frozen(slots=True, kw_only=True)
class Namespace(Command):
    """NAMESPACE (RFC 2342)."""


@attrs.frozen(slots=True, kw_only=True)
class Status(Command):
    """STATUS mailbox (items)."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    items: tuple[StatusItem, ...] = attrs.field(
        validator=[_check_nonempty, _check_choices(_STATUS_ITEMS)]
    )


def _check_date_time(_inst: Any, attr: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, datetime.datetime) or value.utcoffset() is None:
        raise LocalProtocolError(f"{attr.name} must be an aware datetime: {value!r}")
    offset = value.utcoffset()
    assert offset is not None
    if offset.seconds % 60 or offset.microseconds or abs(offset) >= datetime.timedelta(hours=100):
        raise LocalProtocolError(f"{attr.name}: the zone must be whole minutes: {value!r}")
    if value.microsecond or not 1 <= value.year <= 9999:
        raise LocalProtocolError(f"{attr.name}: no fractions of a second: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class AppendMessage:
    """One message of APPEND: ``flags`` None writes no flag list, ``()`` an empty one.

    ``binary`` sends the message as a literal8 (RFC 3516 BINARY); a message with NUL
    octets needs it.
    """

    message: bytes = attrs.field()
    flags: tuple[str, ...] | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_check_flags),
    )
    internal_date: datetime.datetime | None = attrs.field(default=None, validator=_check_date_time)
    binary: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.message, bytes):
            raise LocalProtocolError("the message must be bytes")
        if b"\x00" in self.message and not self.binary:
            raise LocalProtocolError("a message with NUL octets needs binary=True")
        if self.flags is not None and "\\Recent" in self.flags:
            raise LocalProtocolError("\\Recent cannot be set by APPEND")


@attrs.frozen(slots=True, kw_only=True)
class Append(Command):
    """APPEND mailbox message... (several messages: MULTIAPPEND, RFC 3502)."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)
    messages: tuple[AppendMessage, ...] = attrs.field(
        validator=[_check_nonempty, _check_instances(AppendMessage)]
    )


@attrs.frozen(slots=True, kw_only=True)
class Idle(Command):
    """IDLE (RFC 2177); ended by an `IdleDone` line."""


@attrs.frozen(slots=True, kw_only=True)
class Compress(Command):
    """COMPRESS mechanism (RFC 4978); after its tagged OK both sides compress."""

    mechanism: str = attrs.field(validator=_check_atom)


# --- selected -------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Check(Command):
    """CHECK (RFC 3501 only)."""


@attrs.frozen(slots=True, kw_only=True)
class Close(Command):
    """CLOSE."""


@attrs.frozen(slots=True, kw_only=True)
class Unselect(Command):
    """UNSELECT (RFC 3691)."""


@attrs.frozen(slots=True, kw_only=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE uid-set (RFC 4315) with ``uid``."""

    uid: bool = False
    sequence_set: SeqSet | None = None

    def __attrs_post_init__(self) -> None:
        if self.uid != (self.sequence_set is not None):
            raise LocalProtocolError("UID EXPUNGE takes a UID set; EXPUNGE takes none")
        if self.sequence_set is not None:
            _check_seqset(self, attrs.fields(Expunge).sequence_set, self.sequence_set)  # type: ignore[arg-type]


SearchReturn = Literal["MIN", "MAX", "ALL", "COUNT", "SAVE"]
_SEARCH_RETURN: tuple[SearchReturn, ...] = ("MIN", "MAX", "ALL", "COUNT", "SAVE")


@attrs.frozen(slots=True, kw_only=True)
class Search(Command):
    """[UID] SEARCH [RETURN (options)] [CHARSET charset] keys (RFC 4731 ESEARCH).

    ``criteria`` all must match. ``return_options`` None writes no RETURN clause, ``()``
    writes "RETURN ()".
    """

    uid: bool = False
    criteria: tuple[SearchKey, ...] = attrs.field(validator=_check_search_keys)
    charset: str | None = attrs.field(default=None, validator=_check_charset)
    return_options: tuple[SearchReturn, ...] | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_check_choices(_SEARCH_RETURN)),
    )


FetchAttrName = Literal[
    "FLAGS",
    "UID",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "MODSEQ",
    "EMAILID",
    "THREADID",
    "SAVEDATE",
]
FETCH_ATTRS: tuple[FetchAttrName, ...] = (
    "FLAGS",
    "UID",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "MODSEQ",
    "EMAILID",
    "THREADID",
    "SAVEDATE",
)


def _check_partial(_inst: Any, attr: Any, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or type(value[0]) is not int
        or type(value[1]) is not int
        or not 0 <= value[0] <= MAX_NUMBER64
        or not 1 <= value[1] <= MAX_NUMBER64
    ):
        raise LocalProtocolError(f"{attr.name} must be (origin, length>0): {value!r}")


def _check_part(_inst: Any, attr: Any, value: Any) -> None:
    _check_tuple(attr, value)
    for n in value:
        if type(n) is not int or not 1 <= n <= MAX_NUMBER:
            raise LocalProtocolError(f"{attr.name}: part numbers are 1..{MAX_NUMBER}: {n!r}")


@attrs.frozen(slots=True, kw_only=True)
class FetchAttr:
    """A FETCH item without arguments: FLAGS, UID, ENVELOPE, BODYSTRUCTURE, MODSEQ..."""

    name: FetchAttrName = attrs.field()

    @name.validator
    def _check_name(self, attr: attrs.Attribute[str], value: object) -> None:
        if value not in FETCH_ATTRS:
            raise LocalProtocolError(f"not a FETCH item: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class FetchBody:
    """BODY[section]<origin.length>, or BODY.PEEK[...] with ``peek``."""

    section: Section = attrs.field(factory=Section)
    partial: tuple[int, int] | None = attrs.field(default=None, validator=_check_partial)
    peek: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.section, Section):
            raise LocalProtocolError("section must be a Section")


@attrs.frozen(slots=True, kw_only=True)
class FetchBinary:
    """BINARY[part]<origin.length>, or BINARY.PEEK[...] with ``peek`` (RFC 3516)."""

    part: tuple[int, ...] = attrs.field(default=(), validator=_check_part)
    partial: tuple[int, int] | None = attrs.field(default=None, validator=_check_partial)
    peek: bool = False


@attrs.frozen(slots=True, kw_only=True)
class FetchBinarySize:
    """BINARY.SIZE[part] (RFC 3516)."""

    part: tuple[int, ...] = attrs.field(default=(), validator=_check_part)


FetchItem = FetchAttr | FetchBody | FetchBinary | FetchBinarySize
FetchMacro = Literal["ALL", "FAST", "FULL"]
_FETCH_ITEM_TYPES = (FetchAttr, FetchBody, FetchBinary, FetchBinarySize)


def _fetch_items(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen(slots=True, kw_only=True)
class Fetch(Command):
    """[UID] FETCH set items [(CHANGEDSINCE n [VANISHED])] (RFC 7162).

    ``items``: a macro name, one item (no parentheses) or a tuple (in parentheses).
    VANISHED needs ``uid`` and CHANGEDSINCE (RFC 7162 3.2.6).
    """

    uid: bool = False
    sequence_set: SeqSet = attrs.field(validator=_check_seqset)
    items: FetchMacro | FetchItem | tuple[FetchItem, ...] = attrs.field(converter=_fetch_items)
    changedsince: int | None = attrs.field(default=None, validator=_check_modseq)
    vanished: bool = False

    def __attrs_post_init__(self) -> None:
        items = self.items
        if isinstance(items, str):
            if items not in ("ALL", "FAST", "FULL"):
                raise LocalProtocolError(f"not a FETCH macro: {items!r}")
        elif isinstance(items, tuple):
            if not items:
                raise LocalProtocolError("FETCH needs at least one item")
            for item in items:
                if not isinstance(item, _FETCH_ITEM_TYPES):
                    raise LocalProtocolError(f"not a FETCH item: {item!r}")
        elif not isinstance(items, _FETCH_ITEM_TYPES):
            raise LocalProtocolError(f"not a FETCH item: {items!r}")
        if self.vanished and (not self.uid or self.changedsince is None):
            raise LocalProtocolError("VANISHED needs UID FETCH with CHANGEDSINCE")


@attrs.frozen(slots=True, kw_only=True)
class Store(Command):
    """[UID] STORE set [(UNCHANGEDSINCE n)] (+|-)FLAGS[.SILENT] (flags).

    ``action`` "set" is FLAGS, "add" +FLAGS, "remove" -FLAGS.
    """

    uid: bool = False
    sequence_set: SeqSet = attrs.field(validator=_check_seqset)
    action: Literal["set", "add", "remove"] = attrs.field()
    flags: tuple[str, ...] = attrs.field(validator=_check_flags)
    silent: bool = False
    unchangedsince: int | None = attrs.field(default=None, validator=_check_modseq)

    @action.validator
    def _check_action(self, attr: attrs.Attribute[str], value: object) -> None:
        if value not in ("set", "add", "remove"):
            raise LocalProtocolError(f"STORE action is set, add or remove: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class Copy(Command):
    """[UID] COPY set mailbox."""

    uid: bool = False
    sequence_set: SeqSet = attrs.field(validator=_check_seqset)
    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


@attrs.frozen(slots=True, kw_only=True)
class Move(Command):
    """[UID] MOVE set mailbox (RFC 6851)."""

    uid: bool = False
    sequence_set: SeqSet = attrs.field(validator=_check_seqset)
    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


SortKey = Literal[
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"
]
SORT_KEYS: tuple[SortKey, ...] = (
    "ARRIVAL",
    "CC",
    "DATE",
    "FROM",
    "SIZE",
    "SUBJECT",
    "TO",
    "DISPLAYFROM",
    "DISPLAYTO",
)


@attrs.frozen(slots=True, kw_only=True)
class SortCriterion:
    """One sort key (RFC 5256; DISPLAYFROM/DISPLAYTO RFC 5957), ``reverse`` for REVERSE."""

    key: SortKey = attrs.field()
    reverse: bool = False

    @key.validator
    def _check_key(self, attr: attrs.Attribute[str], value: object) -> None:
        if value not in SORT_KEYS:
            raise LocalProtocolError(f"not a sort key: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class Sort(Command):
    """[UID] SORT (criteria) charset keys (RFC 5256)."""

    uid: bool = False
    criteria: tuple[SortCriterion, ...] = attrs.field(
        validator=[_check_nonempty, _check_instances(SortCriterion)]
    )
    charset: str = attrs.field(validator=_check_atom)
    search: tuple[SearchKey, ...] = attrs.field(validator=_check_search_keys)


@attrs.frozen(slots=True, kw_only=True)
class Thread(Command):
    """[UID] THREAD algorithm charset keys (RFC 5256): ORDEREDSUBJECT, REFERENCES..."""

    uid: bool = False
    algorithm: str = attrs.field(validator=_check_atom, converter=_upper)
    charset: str = attrs.field(validator=_check_atom)
    search: tuple[SearchKey, ...] = attrs.field(validator=_check_search_keys)


# --- quota (RFC 9208) -----------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class GetQuota(Command):
    """GETQUOTA quota-root (a wire astring)."""

    root: bytes = attrs.field(validator=_check_bytes)


@attrs.frozen(slots=True, kw_only=True)
class GetQuotaRoot(Command):
    """GETQUOTAROOT mailbox."""

    mailbox: str = attrs.field(converter=_mailbox, validator=_check_mailbox)


def _check_limits(_inst: Any, attr: Any, value: Any) -> None:
    _check_tuple(attr, value)
    for pair in value:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise LocalProtocolError(f"quota limits are (resource, limit) pairs: {pair!r}")
        if not isinstance(pair[0], str) or _ATOM.fullmatch(pair[0]) is None:
            raise LocalProtocolError(f"quota resource must be an atom: {pair[0]!r}")
        if pair[0] != pair[0].upper():
            raise LocalProtocolError(f"quota resource names are upper case: {pair[0]!r}")
        if type(pair[1]) is not int or not 0 <= pair[1] <= MAX_NUMBER64:
            raise LocalProtocolError(f"quota limit must be a number64: {pair[1]!r}")


@attrs.frozen(slots=True, kw_only=True)
class SetQuota(Command):
    """SETQUOTA quota-root (resource limit ...); resource names in upper case (STORAGE)."""

    root: bytes = attrs.field(validator=_check_bytes)
    limits: tuple[tuple[str, int], ...] = attrs.field(validator=_check_limits)
