"""IMAP responses as values: the same immutable classes for a server to send and a client
to receive (RFC 3501, RFC 9051 and the extensions' response syntax).

A response is a tagged status (`Tagged`), an untagged status (`Untagged`), a continuation
request (`Continuation`) or an untagged data response (`Capability`, `List`, `Fetch`, ...).
Status responses may carry a response code (`Alert`, `UidNext`, `CopyUid`, ..., and
`OtherCode` for codes we do not know, which a client must tolerate). FETCH responses
carry typed attributes (`FetchFlags`, `Uid`, `EnvelopeItem`, `BodyStructure`,
`BodySection`, `Binary`, ...) with the body structure as a tree (`BodyBasic`, `BodyText`,
`BodyMessage`, `BodyMultipart`).

Every class validates its fields when built, so a value that exists can be written:
`mailproto.imap._response_codec.format_response` never fails on a valid value (except
for mailbox names that have no modified UTF-7 form, which it reports). Strings from the
wire are `bytes` and NIL is ``None``; mailbox names are `str`; flags are `str`; human
text is `str` (undecodable octets kept as surrogate escapes, so any line round-trips).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

from .._util import Event, LocalProtocolError
from ._grammar import MAX_NUMBER, MAX_NUMBER64, SequenceSet, Spelling
from ._types import Section, StatusItem

__all__ = [
    "Address",
    "Alert",
    "AlreadyExists",
    "AppendUid",
    "AuthenticationFailed",
    "AuthorizationFailed",
    "BadCharset",
    "Binary",
    "BinarySize",
    "Body",
    "BodyBasic",
    "BodyMessage",
    "BodyMultipart",
    "BodySection",
    "BodyStructure",
    "BodyText",
    "BodyType",
    "Cannot",
    "Capability",
    "CapabilityCode",
    "ClientBug",
    "Closed",
    "Code",
    "ContactAdmin",
    "Continuation",
    "CopyUid",
    "Corruption",
    "Disposition",
    "ESearch",
    "EmailId",
    "Enabled",
    "Envelope",
    "EnvelopeItem",
    "Exists",
    "Expired",
    "Expunge",
    "ExpungeIssued",
    "ExtensionValue",
    "Fetch",
    "FetchAttribute",
    "FetchFlags",
    "Flags",
    "HighestModSeq",
    "Id",
    "InUse",
    "InternalDate",
    "Limit",
    "List",
    "ListExtValue",
    "Lsub",
    "MailboxIdCode",
    "ModSeq",
    "Modified",
    "Namespace",
    "NamespaceEntry",
    "NoModSeq",
    "NoPerm",
    "Nonexistent",
    "OtherCode",
    "OverQuota",
    "Parse",
    "PermanentFlags",
    "PrivacyRequired",
    "Quota",
    "QuotaResource",
    "QuotaRoot",
    "ReadOnly",
    "ReadWrite",
    "Recent",
    "Response",
    "Rfc822",
    "Rfc822Header",
    "Rfc822Size",
    "Rfc822Text",
    "SaveDate",
    "Search",
    "ServerBug",
    "Sort",
    "Status",
    "Tagged",
    "Thread",
    "ThreadId",
    "ThreadNode",
    "TooBig",
    "TryCreate",
    "Uid",
    "UidNext",
    "UidNotSticky",
    "UidValidity",
    "Unavailable",
    "Unseen",
    "Untagged",
    "Vanished",
]

# --- validators ------------------------------------------------------------------------

# Human text on a response line: anything but CR, LF and NUL (RFC 9051 TEXT-CHAR).
_TEXT = re.compile(r"[^\r\n\x00]*")
# Code text (resp-text-code atom [SP 1*<any TEXT-CHAR except "]">]).
_CODE_TEXT = re.compile(rb"[^\r\n\x00\]]+")
_ATOM = re.compile(r"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\U0010ffff]+")
_TAG = re.compile(r"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\U0010ffff]+")
# flag = "\" atom / atom; "\*" only in PERMANENTFLAGS.
_FLAG = re.compile(r"\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\U0010ffff]+")
_PERM_FLAG = re.compile(r"\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\U0010ffff]+|\\\*")
# objectid (RFC 8474) = 1*255(ALPHA / DIGIT / "_" / "-")
_OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_STATUS_ITEMS = frozenset(
    ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
     "HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID", "DELETED-STORAGE")
)  # fmt: skip
# STATUS item values that are number64 (RFC 9051 status-att-val) or mod-sequence-value.
# DELETED-STORAGE (RFC 9208 7) is number64 as well.
STATUS_ITEMS_64 = frozenset(("SIZE", "DELETED", "DELETED-STORAGE", "MESSAGES", "HIGHESTMODSEQ"))


def _fail(message: str) -> LocalProtocolError:
    return LocalProtocolError(message)


def _check_text(value: str, what: str = "text") -> None:
    if not isinstance(value, str) or _TEXT.fullmatch(value) is None:
        raise _fail(f"{what} must be a str without CR, LF or NUL: {value!r}")
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _fail(f"{what} holds a lone surrogate: {value!r}") from None


def _check_resp_text(code: Code | None, text: str) -> None:
    _check_text(text)
    if code is None and text.startswith("["):
        raise _fail("text that starts with '[' would read as a response code")


def _check_number(value: int, what: str, *, low: int = 0, high: int = MAX_NUMBER) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{what} must be an integer from {low} to {high}: {value!r}")


def _check_atom(value: str, what: str) -> None:
    if not isinstance(value, str) or _ATOM.fullmatch(value) is None:
        raise _fail(f"{what} must be an IMAP atom: {value!r}")


def _check_flags(values: tuple[str, ...], *, perm: bool = False) -> None:
    pattern = _PERM_FLAG if perm else _FLAG
    if not isinstance(values, tuple):
        raise _fail(f"flags must be a tuple: {values!r}")
    for flag in values:
        if not isinstance(flag, str) or pattern.fullmatch(flag) is None:
            raise _fail(f"not a flag: {flag!r}")


def _check_bytes(value: object, what: str, *, nullable: bool = False) -> None:
    if type(value) is bytes and b"\x00" not in value:  # the common case, first
        return
    if value is None and nullable:
        return
    if not isinstance(value, bytes):
        raise _fail(f"{what} must be bytes{' or None' if nullable else ''}: {value!r}")
    if b"\x00" in value:
        raise _fail(f"{what} may not hold NUL (only BINARY[] data may)")


def _check_mailbox(value: str) -> None:
    if not isinstance(value, str) or "\r" in value or "\n" in value or "\x00" in value:
        raise _fail(f"a mailbox name must be a str without CR, LF or NUL: {value!r}")


def _check_datetime(value: datetime.datetime) -> None:
    if not isinstance(value, datetime.datetime) or value.utcoffset() is None:
        raise _fail(f"a date-time must be an aware datetime: {value!r}")
    if value.second != int(value.second) or value.microsecond:
        raise _fail("an IMAP date-time has whole seconds only")
    offset = value.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    if offset.total_seconds() % 60 or abs(minutes) >= 100 * 60:
        raise _fail("an IMAP zone is whole minutes, less than 100 hours")


# --- response codes --------------------------------------------------------------------


class Code:
    """Base class of the response codes ("[...]" in a status response)."""

    __slots__ = ()


@attrs.frozen(slots=True, kw_only=True)
class _Bare(Code):
    """A code that is only a name."""

    NAME: ClassVar[str] = ""


@attrs.frozen(slots=True, kw_only=True)
class Alert(_Bare):
    NAME = "ALERT"


@attrs.frozen(slots=True, kw_only=True)
class Parse(_Bare):
    NAME = "PARSE"


@attrs.frozen(slots=True, kw_only=True)
class ReadOnly(_Bare):
    NAME = "READ-ONLY"


@attrs.frozen(slots=True, kw_only=True)
class ReadWrite(_Bare):
    NAME = "READ-WRITE"


@attrs.frozen(slots=True, kw_only=True)
class TryCreate(_Bare):
    NAME = "TRYCREATE"


@attrs.frozen(slots=True, kw_only=True)
class UidNotSticky(_Bare):
    NAME = "UIDNOTSTICKY"


@attrs.frozen(slots=True, kw_only=True)
class NoModSeq(_Bare):
    NAME = "NOMODSEQ"


@attrs.frozen(slots=True, kw_only=True)
class Closed(_Bare):
    NAME = "CLOSED"


@attrs.frozen(slots=True, kw_only=True)
class Unavailable(_Bare):
    NAME = "UNAVAILABLE"


@attrs.frozen(slots=True, kw_only=True)
class AuthenticationFailed(_Bare):
    NAME = "AUTHENTICATIONFAILED"


@attrs.frozen(slots=True, kw_only=True)
class AuthorizationFailed(_Bare):
    NAME = "AUTHORIZATIONFAILED"


@attrs.frozen(slots=True, kw_only=True)
class Expired(_Bare):
    NAME = "EXPIRED"


@attrs.frozen(slots=True, kw_only=True)
class PrivacyRequired(_Bare):
    NAME = "PRIVACYREQUIRED"


@attrs.frozen(slots=True, kw_only=True)
class ContactAdmin(_Bare):
    NAME = "CONTACTADMIN"


@attrs.frozen(slots=True, kw_only=True)
class NoPerm(_Bare):
    NAME = "NOPERM"


@attrs.frozen(slots=True, kw_only=True)
class InUse(_Bare):
    NAME = "INUSE"


@attrs.frozen(slots=True, kw_only=True)
class ExpungeIssued(_Bare):
    NAME = "EXPUNGEISSUED"


@attrs.frozen(slots=True, kw_only=True)
class Corruption(_Bare):
    NAME = "CORRUPTION"


@attrs.frozen(slots=True, kw_only=True)
class ServerBug(_Bare):
    NAME = "SERVERBUG"


@attrs.frozen(slots=True, kw_only=True)
class ClientBug(_Bare):
    NAME = "CLIENTBUG"


@attrs.frozen(slots=True, kw_only=True)
class Cannot(_Bare):
    NAME = "CANNOT"


@attrs.frozen(slots=True, kw_only=True)
class Limit(_Bare):
    NAME = "LIMIT"


@attrs.frozen(slots=True, kw_only=True)
class OverQuota(_Bare):
    NAME = "OVERQUOTA"


@attrs.frozen(slots=True, kw_only=True)
class TooBig(_Bare):
    """RFC 7889 (APPENDLIMIT): the message is larger than the server accepts."""

    NAME = "TOOBIG"


@attrs.frozen(slots=True, kw_only=True)
class AlreadyExists(_Bare):
    NAME = "ALREADYEXISTS"


@attrs.frozen(slots=True, kw_only=True)
class Nonexistent(_Bare):
    NAME = "NONEXISTENT"


BARE_CODES: dict[str, type[_Bare]] = {
    cls.NAME: cls
    for cls in (
        Alert, Parse, ReadOnly, ReadWrite, TryCreate, UidNotSticky, NoModSeq, Closed,
        Unavailable, AuthenticationFailed, AuthorizationFailed, Expired, PrivacyRequired,
        ContactAdmin, NoPerm, InUse, ExpungeIssued, Corruption, ServerBug, ClientBug,
        Cannot, Limit, OverQuota, AlreadyExists, Nonexistent, TooBig,
    )
}  # fmt: skip


def _charsets(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, tuple):
        raise _fail("charsets must be a tuple")
    for c in value:
        if not isinstance(c, bytes) or not c or not c.isascii() or b"\r" in c or b"\n" in c:
            raise _fail(f"not a charset name: {c!r}")
        if b"\x00" in c or (b"\\" in c and b'"' in c):
            raise _fail(f"not a charset name: {c!r}")


@attrs.frozen(slots=True, kw_only=True)
class BadCharset(Code):
    """BADCHARSET, optionally with the charsets the server supports."""

    charsets: tuple[bytes, ...] = attrs.field(default=(), validator=_charsets)


def _capabilities(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, tuple):
        raise _fail("capabilities must be a tuple")
    for c in value:
        _check_atom(c, "a capability")


@attrs.frozen(slots=True, kw_only=True)
class CapabilityCode(Code):
    """CAPABILITY in a greeting or a login reply."""

    capabilities: tuple[str, ...] = attrs.field(validator=_capabilities)


@attrs.frozen(slots=True, kw_only=True)
class PermanentFlags(Code):
    flags: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        _check_flags(self.flags, perm=True)


@attrs.frozen(slots=True, kw_only=True)
class _NumberCode(Code):
    NAME: ClassVar[str] = ""
    value: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.value, self.NAME, low=1)


@attrs.frozen(slots=True, kw_only=True)
class UidNext(_NumberCode):
    NAME = "UIDNEXT"


@attrs.frozen(slots=True, kw_only=True)
class UidValidity(_NumberCode):
    NAME = "UIDVALIDITY"


@attrs.frozen(slots=True, kw_only=True)
class Unseen(_NumberCode):
    NAME = "UNSEEN"


@attrs.frozen(slots=True, kw_only=True)
class HighestModSeq(Code):
    value: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.value, "HIGHESTMODSEQ", low=1, high=MAX_NUMBER64)


def _seqset(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, SequenceSet):
        raise _fail(f"{attribute.name} must be a SequenceSet: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class AppendUid(Code):
    """APPENDUID (RFC 4315): the UIDVALIDITY and the UIDs of the appended messages."""

    uidvalidity: int
    uids: SequenceSet = attrs.field(validator=_seqset)

    def __attrs_post_init__(self) -> None:
        _check_number(self.uidvalidity, "UIDVALIDITY", low=1)


@attrs.frozen(slots=True, kw_only=True)
class CopyUid(Code):
    """COPYUID (RFC 4315): the destination UIDVALIDITY, source and destination UIDs."""

    uidvalidity: int
    source: SequenceSet = attrs.field(validator=_seqset)
    destination: SequenceSet = attrs.field(validator=_seqset)

    def __attrs_post_init__(self) -> None:
        _check_number(self.uidvalidity, "UIDVALIDITY", low=1)


@attrs.frozen(slots=True, kw_only=True)
class Modified(Code):
    """MODIFIED (RFC 7162): the messages a conditional STORE did not change."""

    uids: SequenceSet = attrs.field(validator=_seqset)


@attrs.frozen(slots=True, kw_only=True)
class MailboxIdCode(Code):
    """MAILBOXID (RFC 8474) in a CREATE reply: the new mailbox's objectid."""

    value: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.value, str) or _OBJECTID.fullmatch(self.value) is None:
            raise _fail(f"not an objectid: {self.value!r}")


# The codes with a class of their own; `OtherCode` is for every other name.
KNOWN_CODES = frozenset(BARE_CODES) | {
    "BADCHARSET", "CAPABILITY", "PERMANENTFLAGS", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
    "HIGHESTMODSEQ", "MODIFIED", "APPENDUID", "COPYUID", "MAILBOXID",
}  # fmt: skip


@attrs.frozen(slots=True, kw_only=True)
class OtherCode(Code):
    """A response code we do not know: its name (an atom) and its text, if any."""

    name: str
    text: bytes | None = None

    def __attrs_post_init__(self) -> None:
        _check_atom(self.name, "a response code name")
        if self.name.upper() in KNOWN_CODES:
            raise _fail(f"{self.name} has its own class")
        if self.text is not None:
            if not isinstance(self.text, bytes) or _CODE_TEXT.fullmatch(self.text) is None:
                raise _fail(f"response code text may not hold ], CR, LF or NUL: {self.text!r}")


# --- status responses ------------------------------------------------------------------


def _code(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Code):
        raise _fail(f"not a response code: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class Response(Event):
    """Base class of every IMAP response."""

    # How the response was spelled when parsed (quoting, literals, case): no part of its
    # value, but format_response writes it back the same way.
    spelling: Spelling | None = attrs.field(default=None, init=False, eq=False, repr=False)


@attrs.frozen(slots=True, kw_only=True)
class Tagged(Response):
    """The completion of a command: ``A1 OK [code] text``."""

    tag: str
    status: Literal["OK", "NO", "BAD"]
    code: Code | None = attrs.field(default=None, validator=_code)
    text: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.tag, str) or _TAG.fullmatch(self.tag) is None:
            raise _fail(f"not a tag: {self.tag!r}")
        if self.status not in ("OK", "NO", "BAD"):
            raise _fail(f"a tagged status is OK, NO or BAD: {self.status!r}")
        _check_resp_text(self.code, self.text)


@attrs.frozen(slots=True, kw_only=True)
class Untagged(Response):
    """An untagged status: ``* OK``, ``* NO``, ``* BAD``, ``* PREAUTH``, ``* BYE``."""

    status: Literal["OK", "NO", "BAD", "PREAUTH", "BYE"]
    code: Code | None = attrs.field(default=None, validator=_code)
    text: str = ""

    def __attrs_post_init__(self) -> None:
        if self.status not in ("OK", "NO", "BAD", "PREAUTH", "BYE"):
            raise _fail(f"not an untagged status: {self.status!r}")
        _check_resp_text(self.code, self.text)


@attrs.frozen(slots=True, kw_only=True)
class Continuation(Response):
    """A continuation request: ``+ [code] text``.

    During AUTHENTICATE the text is a base64 challenge: `Continuation.challenge` builds
    one and `data` reads it (the grammar cannot tell the two apart; the client knows).
    """

    code: Code | None = attrs.field(default=None, validator=_code)
    text: str = ""

    def __attrs_post_init__(self) -> None:
        _check_resp_text(self.code, self.text)

    @classmethod
    def challenge(cls, data: bytes) -> Continuation:
        return cls(text=base64.b64encode(data).decode("ascii"))

    def data(self) -> bytes:
        """The text read as a base64 challenge.

        Raises:
            ValueError: the text is not base64.
        """
        if self.code is not None:
            raise ValueError("a continuation with a response code is not a challenge")
        try:
            return base64.b64decode(self.text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("not a base64 challenge") from None


# --- untagged data ---------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Capability(Response):
    """``* CAPABILITY ...``."""

    capabilities: tuple[str, ...] = attrs.field(validator=_capabilities)


@attrs.frozen(slots=True, kw_only=True)
class Enabled(Response):
    """``* ENABLED ...`` (RFC 5161)."""

    capabilities: tuple[str, ...] = attrs.field(validator=_capabilities)


@attrs.frozen(slots=True, kw_only=True)
class Flags(Response):
    """``* FLAGS (...)``: the flags defined in the mailbox."""

    flags: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        _check_flags(self.flags)


def _check_delimiter(value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n\x00" or value > "\x7f":
        raise _fail(f"a hierarchy delimiter is one ASCII character or None: {value!r}")


# A LIST extended data value (RFC 9051 tagged-ext-val): at the top level a bare
# sequence set or number (bytes matching _LIST_EXT_SIMPLE) or a parenthesized list; in a
# list, strings (bytes) and non-empty parenthesized lists.
ListExtValue: TypeAlias = "bytes | tuple[ListExtValue, ...]"
_SEQ_RANGE = rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?"
_LIST_EXT_SIMPLE = re.compile(rb"\$|" + _SEQ_RANGE + rb"(?:," + _SEQ_RANGE + rb")*")


def _check_list_ext_comp(value: object, depth: int) -> None:
    if depth > 32:
        raise _fail("LIST extended data nested too deeply")
    if isinstance(value, tuple) and value:
        for v in value:
            _check_list_ext_comp(v, depth + 1)
        return
    _check_bytes(value, "a LIST extended data string")


def _check_list_extended(value: object) -> None:
    if not isinstance(value, tuple):
        raise _fail("LIST extended data is a tuple of (tag, value) pairs")
    for item in value:
        if not isinstance(item, tuple) or len(item) != 2:
            raise _fail(f"LIST extended data holds (tag, value) pairs: {item!r}")
        tag, val = item
        _check_bytes(tag, "a LIST extended data tag")
        if not tag or tag.upper() in (b"CHILDINFO", b"OLDNAME"):
            raise _fail(f"not a LIST extended data tag for `extended`: {tag!r}")
        if isinstance(val, tuple):
            for v in val:
                _check_list_ext_comp(v, 1)
        elif not isinstance(val, bytes) or _LIST_EXT_SIMPLE.fullmatch(val) is None:
            raise _fail(f"a LIST extended value is a sequence set, a number or a tuple: {val!r}")


@attrs.frozen(slots=True, kw_only=True)
class _Listing(Response):
    attributes: tuple[str, ...]
    delimiter: str | None
    mailbox: str
    childinfo: tuple[bytes, ...] | None = None
    oldname: str | None = None
    # other extended data items (RFC 9051 mbox-list-extended), in order: (tag, value)
    extended: tuple[tuple[bytes, ListExtValue], ...] = ()

    def __attrs_post_init__(self) -> None:
        _check_flags(self.attributes)
        _check_delimiter(self.delimiter)
        _check_mailbox(self.mailbox)
        if self.childinfo is not None:
            if not isinstance(self.childinfo, tuple) or not self.childinfo:
                raise _fail("CHILDINFO needs at least one selection option")
            for opt in self.childinfo:
                _check_bytes(opt, "a CHILDINFO option")
        if self.oldname is not None:
            _check_mailbox(self.oldname)
        _check_list_extended(self.extended)


@attrs.frozen(slots=True, kw_only=True)
class List(_Listing):
    """``* LIST (attributes) delimiter mailbox [(CHILDINFO (...) OLDNAME (...) ...)]``.

    Attributes include the RFC 6154 SPECIAL-USE ones (``\\Sent``, ``\\Trash``...).
    Extended data items other than CHILDINFO and OLDNAME go in ``extended``.
    """


@attrs.frozen(slots=True, kw_only=True)
class Lsub(_Listing):
    """``* LSUB ...``: as `List` (RFC 3501 only)."""


@attrs.frozen(slots=True, kw_only=True)
class Status(Response):
    """``* STATUS mailbox (item value ...)``."""

    mailbox: str
    items: tuple[tuple[StatusItem, int | str], ...]

    def __attrs_post_init__(self) -> None:
        _check_mailbox(self.mailbox)
        if not isinstance(self.items, tuple):
            raise _fail("STATUS items must be a tuple of (name, value)")
        for item in self.items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise _fail(f"a STATUS item is a (name, value) pair: {item!r}")
            name, value = item
            if name not in _STATUS_ITEMS:
                raise _fail(f"not a STATUS item: {name!r}")
            if name == "MAILBOXID":
                if not isinstance(value, str) or _OBJECTID.fullmatch(value) is None:
                    raise _fail(f"MAILBOXID is an objectid str: {value!r}")
            else:
                high = MAX_NUMBER64 if name in STATUS_ITEMS_64 else MAX_NUMBER
                _check_number(value, name, high=high)  # type: ignore[arg-type]

    def get(self, name: StatusItem) -> int | str | None:
        for item, value in self.items:
            if item == name:
                return value
        return None


def _numbers(values: tuple[int, ...], what: str) -> None:
    if not isinstance(values, tuple):
        raise _fail(f"{what} must be a tuple of numbers")
    for n in values:
        _check_number(n, what, low=1)


@attrs.frozen(slots=True, kw_only=True)
class Search(Response):
    """``* SEARCH n...`` with the RFC 7162 ``(MODSEQ n)`` when asked for."""

    numbers: tuple[int, ...] = ()
    modseq: int | None = None

    def __attrs_post_init__(self) -> None:
        _numbers(self.numbers, "a SEARCH result")
        if self.modseq is not None:
            _check_number(self.modseq, "MODSEQ", low=1, high=MAX_NUMBER64)
            if not self.numbers:
                raise _fail("an empty SEARCH result has no MODSEQ")


@attrs.frozen(slots=True, kw_only=True)
class Sort(Response):
    """``* SORT n...`` (RFC 5256), with ``(MODSEQ n)`` (RFC 7162)."""

    numbers: tuple[int, ...] = ()
    modseq: int | None = None

    def __attrs_post_init__(self) -> None:
        _numbers(self.numbers, "a SORT result")
        if self.modseq is not None:
            _check_number(self.modseq, "MODSEQ", low=1, high=MAX_NUMBER64)
            if not self.numbers:
                raise _fail("an empty SORT result has no MODSEQ")


@attrs.frozen(slots=True, kw_only=True)
class ESearch(Response):
    """``* ESEARCH [(TAG "t")] [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ n]``.

    RFC 4731 and RFC 9051; the items are written in this order.
    """

    tag: bytes | None = None
    uid: bool = False
    min: int | None = None
    max: int | None = None
    count: int | None = None
    all: SequenceSet | None = None
    modseq: int | None = None

    def __attrs_post_init__(self) -> None:
        _check_bytes(self.tag, "the ESEARCH tag", nullable=True)
        if self.tag is not None and (b"\r" in self.tag or b"\n" in self.tag):
            raise _fail("the ESEARCH tag may not hold CR or LF")
        if not isinstance(self.uid, bool):
            raise _fail("uid must be a bool")
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None:
                _check_number(value, name.upper(), low=1)
        if self.count is not None:
            _check_number(self.count, "COUNT")
        if self.all is not None and not isinstance(self.all, SequenceSet):
            raise _fail("ALL must be a SequenceSet")
        if self.modseq is not None:
            _check_number(self.modseq, "MODSEQ", low=1, high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class Exists(Response):
    """``* n EXISTS``."""

    count: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.count, "EXISTS")


@attrs.frozen(slots=True, kw_only=True)
class Recent(Response):
    """``* n RECENT`` (RFC 3501 only)."""

    count: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.count, "RECENT")


@attrs.frozen(slots=True, kw_only=True)
class Expunge(Response):
    """``* n EXPUNGE``."""

    seq: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.seq, "EXPUNGE", low=1)


@attrs.frozen(slots=True, kw_only=True)
class Vanished(Response):
    """``* VANISHED [(EARLIER)] uids`` (RFC 7162 QRESYNC)."""

    earlier: bool = False
    uids: SequenceSet = attrs.field(validator=_seqset)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.earlier, bool):
            raise _fail("earlier must be a bool")
        for lo, hi in self.uids.ranges:
            if lo is None or hi is None:
                raise _fail("VANISHED lists UIDs, not '*'")


# ExtensionValue: nstring / number / "(" ... ")" (body-extension, namespace extensions).
ExtensionValue: TypeAlias = "bytes | int | tuple[ExtensionValue, ...] | None"


def _check_extension(value: object, depth: int = 0) -> None:
    if depth > 32:
        raise _fail("extension data nested too deeply")
    if value is None or isinstance(value, bytes):
        return
    if isinstance(value, int) and not isinstance(value, bool):
        _check_number(value, "an extension number", high=MAX_NUMBER64)
        return
    if isinstance(value, tuple) and value:
        for v in value:
            _check_extension(v, depth + 1)
        return
    raise _fail(f"not extension data: {value!r}")


def _check_params(value: object, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not value:
        raise _fail(f"{what} is None or a non-empty tuple of (name, value) pairs")
    for pair in value:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise _fail(f"{what} holds (name, value) pairs: {pair!r}")
        _check_bytes(pair[0], f"a {what} name")
        _check_bytes(pair[1], f"a {what} value")


@attrs.frozen(slots=True, kw_only=True)
class NamespaceEntry:
    """One namespace: its prefix, delimiter and RFC 2342 extension data."""

    prefix: str
    delimiter: str | None
    extensions: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()

    def __attrs_post_init__(self) -> None:
        _check_mailbox(self.prefix)
        _check_delimiter(self.delimiter)
        if not isinstance(self.extensions, tuple):
            raise _fail("namespace extensions must be a tuple")
        for ext in self.extensions:
            if not isinstance(ext, tuple) or len(ext) != 2 or not isinstance(ext[1], tuple):
                raise _fail(f"a namespace extension is (name, (values...)): {ext!r}")
            _check_bytes(ext[0], "a namespace extension name")
            if not ext[1]:
                raise _fail("a namespace extension has at least one value")
            for v in ext[1]:
                _check_bytes(v, "a namespace extension value")


def _namespaces(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not value:
        raise _fail("a namespace list is None (NIL) or a non-empty tuple")
    for entry in value:
        if not isinstance(entry, NamespaceEntry):
            raise _fail(f"not a NamespaceEntry: {entry!r}")


@attrs.frozen(slots=True, kw_only=True)
class Namespace(Response):
    """``* NAMESPACE personal other shared`` (RFC 2342); each None (NIL) or entries."""

    personal: tuple[NamespaceEntry, ...] | None = attrs.field(validator=_namespaces)
    other: tuple[NamespaceEntry, ...] | None = attrs.field(validator=_namespaces)
    shared: tuple[NamespaceEntry, ...] | None = attrs.field(validator=_namespaces)


@attrs.frozen(slots=True, kw_only=True)
class Id(Response):
    """``* ID (field value ...)`` or ``* ID NIL`` (RFC 2971)."""

    params: tuple[tuple[bytes, bytes | None], ...] | None

    def __attrs_post_init__(self) -> None:
        if self.params is None:
            return
        if not isinstance(self.params, tuple) or not self.params:
            raise _fail("ID params are None (NIL) or a non-empty tuple")
        for pair in self.params:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise _fail(f"ID params are (field, value) pairs: {pair!r}")
            _check_bytes(pair[0], "an ID field")
            _check_bytes(pair[1], "an ID value", nullable=True)


@attrs.frozen(slots=True, kw_only=True)
class QuotaResource:
    """One resource of a quota root: name (an atom such as STORAGE), usage and limit."""

    name: str
    usage: int
    limit: int

    def __attrs_post_init__(self) -> None:
        _check_atom(self.name, "a quota resource name")
        _check_number(self.usage, "quota usage", high=MAX_NUMBER64)
        _check_number(self.limit, "quota limit", high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class Quota(Response):
    """``* QUOTA root (resource usage limit ...)`` (RFC 9208)."""

    root: bytes
    resources: tuple[QuotaResource, ...]

    def __attrs_post_init__(self) -> None:
        _check_bytes(self.root, "a quota root")
        if not isinstance(self.resources, tuple) or not self.resources:
            raise _fail("a QUOTA response names at least one resource")
        for r in self.resources:
            if not isinstance(r, QuotaResource):
                raise _fail(f"not a QuotaResource: {r!r}")


@attrs.frozen(slots=True, kw_only=True)
class QuotaRoot(Response):
    """``* QUOTAROOT mailbox root...`` (RFC 9208)."""

    mailbox: str
    roots: tuple[bytes, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check_mailbox(self.mailbox)
        if not isinstance(self.roots, tuple):
            raise _fail("quota roots must be a tuple")
        for r in self.roots:
            _check_bytes(r, "a quota root")


@attrs.frozen(slots=True, kw_only=True)
class ThreadNode:
    """A thread-list (RFC 5256): a chain of messages, then two or more sub-threads.

    ``(3 6 (4 23)(44 7 96))`` is ``ThreadNode(messages=(3, 6), children=(
    ThreadNode(messages=(4, 23)), ThreadNode(messages=(44, 7, 96))))``; a thread whose
    root is missing has no messages and at least two children.
    """

    messages: tuple[int, ...] = ()
    children: tuple[ThreadNode, ...] = ()

    def __attrs_post_init__(self) -> None:
        _numbers(self.messages, "a thread member")
        if not isinstance(self.children, tuple):
            raise _fail("thread children must be a tuple")
        for c in self.children:
            if not isinstance(c, ThreadNode):
                raise _fail(f"not a ThreadNode: {c!r}")
        if len(self.children) == 1:
            raise _fail("a thread branches into two or more sub-threads, or none")
        if not self.messages and not self.children:
            raise _fail("an empty thread")


@attrs.frozen(slots=True, kw_only=True)
class Thread(Response):
    """``* THREAD (thread)(thread)...`` (RFC 5256)."""

    threads: tuple[ThreadNode, ...] = ()

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.threads, tuple):
            raise _fail("threads must be a tuple")
        for t in self.threads:
            if not isinstance(t, ThreadNode):
                raise _fail(f"not a ThreadNode: {t!r}")


# --- envelope and body structure -------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Address:
    """An address (RFC 3501 7.4.2): name, adl (source route), mailbox, host.

    Group syntax: a group starts with host None and the group name in mailbox, and ends
    with mailbox and host both None.
    """

    name: bytes | None = None
    adl: bytes | None = None
    mailbox: bytes | None = None
    host: bytes | None = None

    def __attrs_post_init__(self) -> None:
        for value in (self.name, self.adl, self.mailbox, self.host):
            if value is not None and (type(value) is not bytes or b"\x00" in value):
                raise _fail(f"address fields are bytes without NUL, or None: {value!r}")

    @classmethod
    def _parsed(
        cls, name: bytes | None, adl: bytes | None, mailbox: bytes | None, host: bytes | None
    ) -> Address:
        """An Address from fields the parser has already checked (the hot path of
        ENVELOPE parsing: a message has a dozen addresses)."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "name", name)
        setattr_(self, "adl", adl)
        setattr_(self, "mailbox", mailbox)
        setattr_(self, "host", host)
        return self


def _addresses(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not value:
        raise _fail(f"{attribute.name} is None (NIL) or a non-empty tuple of Address")
    for a in value:
        if not isinstance(a, Address):
            raise _fail(f"not an Address: {a!r}")


def _nstring(instance: Any, attribute: Any, value: Any) -> None:
    _check_bytes(value, attribute.name, nullable=True)


def _bytes(instance: Any, attribute: Any, value: Any) -> None:
    _check_bytes(value, attribute.name)


@attrs.frozen(slots=True, kw_only=True)
class Envelope:
    """A message's ENVELOPE: header fields as the server parsed them, all nstrings."""

    date: bytes | None = attrs.field(default=None, validator=_nstring)
    subject: bytes | None = attrs.field(default=None, validator=_nstring)
    from_: tuple[Address, ...] | None = attrs.field(default=None, validator=_addresses)
    sender: tuple[Address, ...] | None = attrs.field(default=None, validator=_addresses)
    reply_to: tuple[Address, ...] | None = attrs.field(default=None, validator=_addresses)
    to: tuple[Address, ...] | None = attrs.field(default=None, validator=_addresses)
    cc: tuple[Address, ...] | None = attrs.field(default=None, validator=_addresses)
    bcc: tuple[Address, ...] | None = attrs.field(default=None, validator=_addresses)
    in_reply_to: bytes | None = attrs.field(default=None, validator=_nstring)
    message_id: bytes | None = attrs.field(default=None, validator=_nstring)


@attrs.frozen(slots=True, kw_only=True)
class Disposition:
    """body-fld-dsp: the disposition type (``b"attachment"``) and its parameters."""

    type: bytes = attrs.field(validator=_bytes)
    params: tuple[tuple[bytes, bytes], ...] | None = None

    def __attrs_post_init__(self) -> None:
        _check_params(self.params, "disposition parameters")


def _check_extension_fields(body: _BodyExt, *, multipart: bool) -> None:
    """Extension data is written only up to ``ext_fields``: check nothing lies beyond."""
    n = body.ext_fields
    _check_number(n, "ext_fields", high=4)
    if multipart:
        if n < 1 and body.params is not None:  # type: ignore[attr-defined]
            raise _fail("multipart parameters are extension data: ext_fields >= 1")
    elif n < 1 and body.md5 is not None:  # type: ignore[attr-defined]
        raise _fail("MD5 is extension data: ext_fields >= 1")
    if n < 2 and body.disposition is not None:
        raise _fail("a disposition needs ext_fields >= 2")
    if n < 3 and body.language is not None:
        raise _fail("a language needs ext_fields >= 3")
    if n < 4 and (body.location is not None or body.extensions):
        raise _fail("a location or further extensions need ext_fields == 4")
    if body.disposition is not None and not isinstance(body.disposition, Disposition):
        raise _fail("disposition must be a Disposition or None")
    if body.language is not None:
        if not isinstance(body.language, tuple) or not body.language:
            raise _fail("language is None (NIL) or a non-empty tuple of bytes")
        for lang in body.language:
            _check_bytes(lang, "a language tag")
    _check_bytes(body.location, "location", nullable=True)
    if not isinstance(body.extensions, tuple):
        raise _fail("extensions must be a tuple")
    for ext in body.extensions:
        _check_extension(ext)


@attrs.frozen(slots=True, kw_only=True)
class _BodyExt:
    # How many of the optional extension fields are present on the wire (BODYSTRUCTURE
    # only; BODY has none): single part MD5, disposition, language, location; multipart
    # parameters, disposition, language, location. ``extensions`` needs 4.
    ext_fields: int = 0
    disposition: Disposition | None = None
    language: tuple[bytes, ...] | None = None
    location: bytes | None = None
    extensions: tuple[ExtensionValue, ...] = ()


@attrs.frozen(slots=True, kw_only=True)
class _BodySingle(_BodyExt):
    # body-fields
    params: tuple[tuple[bytes, bytes], ...] | None = None
    id: bytes | None = attrs.field(default=None, validator=_nstring)
    description: bytes | None = attrs.field(default=None, validator=_nstring)
    encoding: bytes = attrs.field(default=b"7BIT", validator=_bytes)
    size: int = 0
    md5: bytes | None = attrs.field(default=None, validator=_nstring)

    def _check_single(self) -> None:
        _check_params(self.params, "body parameters")
        _check_number(self.size, "body size")
        _check_extension_fields(self, multipart=False)


@attrs.frozen(slots=True, kw_only=True)
class BodyBasic(_BodySingle):
    """A single part that is neither text nor an encapsulated message."""

    media_type: bytes = attrs.field(validator=_bytes)
    subtype: bytes = attrs.field(validator=_bytes)

    def __attrs_post_init__(self) -> None:
        self._check_single()
        # message/global may be basic: IMAP4rev1 servers send it so (RFC 3501 9).
        if self.media_type.upper() == b"TEXT" or (
            self.media_type.upper() == b"MESSAGE" and self.subtype.upper() == b"RFC822"
        ):
            raise _fail("text/* is a BodyText and message/rfc822 a BodyMessage")


@attrs.frozen(slots=True, kw_only=True)
class BodyText(_BodySingle):
    """A text/* part, with its size in lines."""

    subtype: bytes = attrs.field(validator=_bytes)
    lines: int

    def __attrs_post_init__(self) -> None:
        self._check_single()
        _check_number(self.lines, "body lines", high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class BodyMessage(_BodySingle):
    """A message/rfc822 or message/global part: its envelope, body and lines."""

    subtype: bytes = attrs.field(default=b"RFC822", validator=_bytes)
    envelope: Envelope
    body: BodyType
    lines: int

    def __attrs_post_init__(self) -> None:
        self._check_single()
        if self.subtype.upper() not in (b"RFC822", b"GLOBAL"):
            raise _fail("a BodyMessage is message/rfc822 or message/global")
        if not isinstance(self.envelope, Envelope):
            raise _fail("envelope must be an Envelope")
        if not isinstance(self.body, _BODY_CLASSES):
            raise _fail("body must be a body structure")
        _check_number(self.lines, "body lines", high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class BodyMultipart(_BodyExt):
    """A multipart/* body: its parts and subtype (extension data from ``params`` on)."""

    parts: tuple[BodyType, ...]
    subtype: bytes = attrs.field(validator=_bytes)
    params: tuple[tuple[bytes, bytes], ...] | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.parts, tuple) or not self.parts:
            raise _fail("a multipart body has at least one part")
        for part in self.parts:
            if not isinstance(part, _BODY_CLASSES):
                raise _fail(f"not a body structure: {part!r}")
        _check_params(self.params, "multipart parameters")
        _check_extension_fields(self, multipart=True)


BodyType: TypeAlias = BodyBasic | BodyText | BodyMessage | BodyMultipart
_BODY_CLASSES = (BodyBasic, BodyText, BodyMessage, BodyMultipart)


def _has_extensions(body: BodyType) -> bool:
    if body.ext_fields:
        return True
    if isinstance(body, BodyMessage):
        return _has_extensions(body.body)
    if isinstance(body, BodyMultipart):
        return any(_has_extensions(p) for p in body.parts)
    return False


# --- FETCH attributes ------------------------------------------------------------------


class FetchAttribute:
    """Base class of the FETCH response attributes."""

    __slots__ = ()


@attrs.frozen(slots=True, kw_only=True)
class FetchFlags(FetchAttribute):
    """FLAGS (...)."""

    flags: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        _check_flags(self.flags)


@attrs.frozen(slots=True, kw_only=True)
class Uid(FetchAttribute):
    """UID n."""

    value: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.value, "UID", low=1)


@attrs.frozen(slots=True, kw_only=True)
class Rfc822Size(FetchAttribute):
    """RFC822.SIZE n (number64 in IMAP4rev2)."""

    value: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.value, "RFC822.SIZE", high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class InternalDate(FetchAttribute):
    """INTERNALDATE "dd-Mon-yyyy hh:mm:ss +zzzz"."""

    value: datetime.datetime

    def __attrs_post_init__(self) -> None:
        _check_datetime(self.value)


@attrs.frozen(slots=True, kw_only=True)
class SaveDate(FetchAttribute):
    """SAVEDATE date-time or NIL (RFC 8514)."""

    value: datetime.datetime | None

    def __attrs_post_init__(self) -> None:
        if self.value is not None:
            _check_datetime(self.value)


@attrs.frozen(slots=True, kw_only=True)
class EnvelopeItem(FetchAttribute):
    """ENVELOPE (...)."""

    envelope: Envelope

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.envelope, Envelope):
            raise _fail("envelope must be an Envelope")


@attrs.frozen(slots=True, kw_only=True)
class BodyStructure(FetchAttribute):
    """BODYSTRUCTURE (...): the structure with extension data."""

    body: BodyType

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.body, _BODY_CLASSES):
            raise _fail("body must be a body structure")


@attrs.frozen(slots=True, kw_only=True)
class Body(FetchAttribute):
    """BODY (...): the structure without extension data (every ext_fields is 0)."""

    body: BodyType

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.body, _BODY_CLASSES):
            raise _fail("body must be a body structure")
        if _has_extensions(self.body):
            raise _fail("BODY carries no extension data: use BodyStructure")


@attrs.frozen(slots=True, kw_only=True)
class BodySection(FetchAttribute):
    """BODY[section]<origin> nstring: a section's content (None is NIL)."""

    section: Section
    origin: int | None = None
    data: bytes | None = attrs.field(validator=_nstring)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.section, Section):
            raise _fail("section must be a Section")
        if self.origin is not None:
            _check_number(self.origin, "origin", high=MAX_NUMBER64)


def _check_part(part: tuple[int, ...]) -> None:
    if not isinstance(part, tuple):
        raise _fail("a part is a tuple of numbers")
    for n in part:
        _check_number(n, "a part number", low=1)


@attrs.frozen(slots=True, kw_only=True)
class Binary(FetchAttribute):
    """BINARY[part]<origin> (RFC 3516): decoded content; NUL octets allowed (literal8)."""

    part: tuple[int, ...] = ()
    origin: int | None = None
    data: bytes | None

    def __attrs_post_init__(self) -> None:
        if self.data is not None and not isinstance(self.data, bytes):
            raise _fail("BINARY data must be bytes or None")
        _check_part(self.part)
        if self.origin is not None:
            _check_number(self.origin, "origin", high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class BinarySize(FetchAttribute):
    """BINARY.SIZE[part] n (RFC 3516)."""

    part: tuple[int, ...] = ()
    size: int

    def __attrs_post_init__(self) -> None:
        _check_part(self.part)
        _check_number(self.size, "BINARY.SIZE", high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class _Rfc822Data(FetchAttribute):
    # NUL is refused by the validator: only BINARY[] data may hold it.
    data: bytes | None = attrs.field(validator=_nstring)


@attrs.frozen(slots=True, kw_only=True)
class Rfc822(_Rfc822Data):
    """RFC822 nstring (RFC 3501)."""


@attrs.frozen(slots=True, kw_only=True)
class Rfc822Header(_Rfc822Data):
    """RFC822.HEADER nstring (RFC 3501)."""


@attrs.frozen(slots=True, kw_only=True)
class Rfc822Text(_Rfc822Data):
    """RFC822.TEXT nstring (RFC 3501)."""


@attrs.frozen(slots=True, kw_only=True)
class ModSeq(FetchAttribute):
    """MODSEQ (n) (RFC 7162)."""

    value: int

    def __attrs_post_init__(self) -> None:
        _check_number(self.value, "MODSEQ", low=1, high=MAX_NUMBER64)


@attrs.frozen(slots=True, kw_only=True)
class EmailId(FetchAttribute):
    """EMAILID (objectid) (RFC 8474)."""

    value: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.value, str) or _OBJECTID.fullmatch(self.value) is None:
            raise _fail(f"not an objectid: {self.value!r}")


@attrs.frozen(slots=True, kw_only=True)
class ThreadId(FetchAttribute):
    """THREADID (objectid) or NIL (RFC 8474)."""

    value: str | None

    def __attrs_post_init__(self) -> None:
        if self.value is not None and (
            not isinstance(self.value, str) or _OBJECTID.fullmatch(self.value) is None
        ):
            raise _fail(f"not an objectid: {self.value!r}")


@attrs.frozen(slots=True, kw_only=True)
class Fetch(Response):
    """``* n FETCH (attribute ...)``."""

    seq: int
    attributes: tuple[FetchAttribute, ...]

    def __attrs_post_init__(self) -> None:
        _check_number(self.seq, "a FETCH sequence number", low=1)
        if not isinstance(self.attributes, tuple) or not self.attributes:
            raise _fail("a FETCH response has at least one attribute")
        for a in self.attributes:
            if not isinstance(a, FetchAttribute):
                raise _fail(f"not a FETCH attribute: {a!r}")

    def get(self, kind: type[FetchAttribute]) -> FetchAttribute | None:
        """The first attribute of this class, or None."""
        for a in self.attributes:
            if type(a) is kind:
                return a
        return None
