"""Reading and writing IMAP commands (RFC 3501, RFC 9051 and the extensions' syntax).

`parse_command` reads one whole command message: the line with its literals inline
(``{n}`` CRLF octets, ``{n+}``, ``~{n}``) and its final CRLF. The final CRLF may be left
off, except when the message ends with a literal whose own octets end in CRLF. It returns a
`Command` or raises `CommandParseError`, a `ParseError` that also carries the ``tag``
when the line began with one, so that a server can answer ``tag BAD ...`` (``tag`` is
None when not even a tag could be read: the server answers with an untagged BAD).

`format_command` writes a command as `Fragment`s: a synchronizing literal ends a line
fragment, and a client sends the `LiteralFragment` after it only once the server has
answered "+". With ``literal_plus`` literals are non-synchronizing (``{n+}``); with
``utf8`` UTF-8 goes in quoted strings and mailbox names are UTF-8, not modified UTF-7.

A parsed command carries its `Spelling` (see _grammar), so it re-serialises to the bytes
it was read from: keywords in the case they were sent, strings quoted or as literals as
they were, INBOX as it was spelled, STORE flags with or without parentheses. A command
built in code (or written with ``as_parsed=False``) gets the canonical spelling: strings
as atoms when they can be (mailbox names, LOGIN arguments) except search strings, which
are quoted; a single LIST pattern without parentheses; STORE flags in parentheses; dates
as "1-Feb-1994" and date-times with a space-padded day; keywords in upper case.

`parse_idle_done` and `format_idle_done` read and write the "DONE" line that ends IDLE.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Callable

from .._util import LocalProtocolError
from . import _commands as c
from ._grammar import Encoder, Fragment, ParseError, Parser, format_date_time
from ._search import (
    SearchKey,
    parse_search_key,
    parse_sequence_set,
    write_search_key,
    write_sequence_set,
)
from ._types import (
    Section,
    decode_mailbox,
    encode_mailbox,
    parse_partial,
    parse_section,
    write_section,
)

__all__ = [
    "CommandParseError",
    "format_command",
    "format_idle_done",
    "parse_command",
    "parse_idle_done",
]

_TAG = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\xff]+")
_LIST_CHARS = re.compile(rb"[^(){ \x00-\x1f\x7f\"\\\x80-\xff]+")
_ASTRING_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+")
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_WORD = re.compile(rb"[A-Z][A-Z0-9.]*")


class CommandParseError(ParseError):
    """A command that does not follow the grammar; ``tag`` is its tag when one was read."""

    def __init__(self, message: str, pos: int, tag: str | None) -> None:
        super().__init__(message, pos)
        self.tag = tag


# --- reading --------------------------------------------------------------------------


class _Reader:
    """The state of one parse: the parser, the tag and the mailbox name encoding."""

    __slots__ = ("p", "tag", "uid", "utf8")

    def __init__(self, p: Parser, tag: str, utf8: bool) -> None:
        self.p = p
        self.tag = tag
        self.utf8 = utf8
        self.uid = False

    def mailbox(self) -> str:
        start = self.p.pos
        raw = self.p.astring()
        try:
            name = decode_mailbox(raw, utf8=self.utf8)
        except ValueError as exc:
            raise ParseError(f"bad mailbox name: {exc}", start) from None
        if name == "INBOX":
            self.p.note_inbox(raw)
        return name

    def pattern(self) -> str:
        start = self.p.pos
        raw = self.p.list_mailbox()
        try:
            return decode_mailbox(raw, utf8=self.utf8)
        except ValueError as exc:
            raise ParseError(f"bad mailbox pattern: {exc}", start) from None


def parse_command(data: bytes, *, utf8: bool = False) -> c.Command:
    """Read one command message (its literals inline, the final CRLF optional: see above).

    ``utf8``: mailbox names are UTF-8 (IMAP4rev2 or UTF8=ACCEPT), else modified UTF-7.

    Raises:
        CommandParseError: the message is not a valid command; ``tag`` is set when the
            message began with a valid tag.
    """
    if data.endswith(b"\r\n"):
        data = data[:-2]
    p = Parser(data)
    m = _TAG.match(data)
    if m is None:
        raise CommandParseError("expected a tag", 0, None)
    tag = m.group().decode("ascii")
    p.pos = m.end()
    try:
        p.sp()
        r = _Reader(p, tag, utf8)
        name = p.keyword()
        if name == b"UID":
            p.sp()
            r.uid = True
            name = p.keyword()
            parse = _UID_COMMANDS.get(name)
            if parse is None:
                raise ParseError(f"unknown UID command {name.decode('ascii')!r}", p.pos)
        else:
            parse = _COMMANDS.get(name)
            if parse is None:
                raise ParseError(f"unknown command {name.decode('ascii')!r}", p.pos)
        start = p.pos
        try:
            cmd = parse(r)
        except LocalProtocolError as exc:
            raise ParseError(f"invalid {name.decode('ascii')}: {exc}", start) from None
        p.end()
    except ParseError as exc:
        message = str(exc).rsplit(" (at octet ", 1)[0]
        raise CommandParseError(message, exc.pos, tag) from None
    spelling = p.spelling()
    if spelling is not None:
        object.__setattr__(cmd, "spelling", spelling)
    return cmd


def parse_idle_done(data: bytes) -> c.IdleDone:
    """Read the line that ends IDLE: "DONE" (any case), the CRLF optional.

    Raises:
        ParseError: the line is something else.
    """
    line = data[:-2] if data.endswith(b"\r\n") else data
    if line.upper() != b"DONE":
        raise ParseError(f"expected DONE, got {line[:20]!r}", 0)
    return c.IdleDone()


def _no_args(cls: type[c.Command]) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        return cls(tag=r.tag)

    return parse


def _one_mailbox(
    cls: type[c.Delete | c.Subscribe | c.Unsubscribe | c.GetQuotaRoot],
) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        r.p.sp()
        return cls(tag=r.tag, mailbox=r.mailbox())

    return parse


def _parse_authenticate(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    mechanism = p.atom().decode("ascii")
    initial: bytes | None = None
    if p.maybe(b" "):
        if p.maybe(b"="):
            initial = b""
        else:
            m = _BASE64.match(p.data, p.pos)
            assert m is not None  # the pattern matches the empty string
            if not m.group():
                raise p.fail("a base64 initial response or '='")
            initial = base64.b64decode(m.group())
            p.pos = m.end()
    return c.Authenticate(tag=r.tag, mechanism=mechanism, initial_response=initial)


def _parse_compress(r: _Reader) -> c.Command:
    r.p.sp()
    return c.Compress(tag=r.tag, mechanism=r.p.atom().decode("ascii"))


def _parse_login(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    user = p.astring()
    p.sp()
    return c.Login(tag=r.tag, username=user, password=p.astring())


def _parse_enable(r: _Reader) -> c.Command:
    p = r.p
    caps = []
    p.sp()
    caps.append(p.atom().decode("ascii"))
    while p.maybe(b" "):
        caps.append(p.atom().decode("ascii"))
    return c.Enable(tag=r.tag, capabilities=tuple(caps))


def _parse_select(cls: type[c.Select | c.Examine]) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        p = r.p
        p.sp()
        mailbox = r.mailbox()
        condstore = False
        qresync: c.QResync | None = None
        if p.maybe(b" "):
            p.open()
            while True:
                start = p.pos
                word = p.keyword()
                if word == b"CONDSTORE" and not condstore:
                    condstore = True
                elif word == b"QRESYNC" and qresync is None:
                    p.sp()
                    qresync = _parse_qresync(p)
                else:
                    raise ParseError(f"unexpected select parameter {word!r}", start)
                if not p.maybe(b" "):
                    break
            p.close()
        return cls(tag=r.tag, mailbox=mailbox, condstore=condstore, qresync=qresync)

    return parse


def _parse_qresync(p: Parser) -> c.QResync:
    p.open()
    uidvalidity = p.nz_number()
    p.sp()
    modseq = p.number64()
    known = None
    match = None
    if p.maybe(b" "):
        if p.peek() != 0x28:
            known = p.sequence_set()
        if p.peek() == 0x28 or (known is not None and p.maybe(b" ")):
            p.open()
            seqs = p.sequence_set()
            p.sp()
            uids = p.sequence_set()
            p.close()
            match = (seqs, uids)
    p.close()
    return c.QResync(uidvalidity=uidvalidity, modseq=modseq, known_uids=known, seq_match=match)


def _parse_create(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    mailbox = r.mailbox()
    use: list[str] | None = None
    if p.maybe(b" "):
        p.open()
        p.expect_keyword(b"USE")
        p.sp()
        use = p.parens(Parser.flag)
        p.close()
    return c.Create(tag=r.tag, mailbox=mailbox, special_use=None if use is None else tuple(use))


def _parse_rename(r: _Reader) -> c.Command:
    r.p.sp()
    old = r.mailbox()
    r.p.sp()
    return c.Rename(tag=r.tag, mailbox=old, new_name=r.mailbox())


def _upper_atom(p: Parser) -> str:
    return p.keyword().decode("ascii")


def _parse_list(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    selection: list[str] | None = None
    if p.peek() == 0x28:
        selection = p.parens(_upper_atom)
        p.sp()
    reference = r.mailbox()
    p.sp()
    if p.peek() == 0x28:
        p.open()
        patterns = [r.pattern()]
        while p.maybe(b" "):
            patterns.append(r.pattern())
        p.close()
        if len(patterns) == 1:
            p.note_form("list-pattern-parens")
    else:
        patterns = [r.pattern()]
    returns: list[str | c.ListReturnStatus] | None = None
    if p.maybe(b" "):
        p.expect_keyword(b"RETURN")
        p.sp()
        returns = p.parens(_parse_list_return)
    return c.List(
        tag=r.tag,
        reference=reference,
        patterns=patterns,
        selection=None if selection is None else tuple(selection),  # type: ignore[arg-type]
        return_options=None if returns is None else tuple(returns),  # type: ignore[arg-type]
    )


def _parse_list_return(p: Parser) -> str | c.ListReturnStatus:
    word = _upper_atom(p)
    if word == "STATUS":
        p.sp()
        return c.ListReturnStatus(items=tuple(p.parens(_upper_atom)))  # type: ignore[arg-type]
    return word


def _parse_lsub(r: _Reader) -> c.Command:
    r.p.sp()
    reference = r.mailbox()
    r.p.sp()
    return c.Lsub(tag=r.tag, reference=reference, pattern=r.pattern())


def _parse_status(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    mailbox = r.mailbox()
    p.sp()
    items = p.parens(_upper_atom)
    return c.Status(tag=r.tag, mailbox=mailbox, items=tuple(items))  # type: ignore[arg-type]


def _parse_append(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    mailbox = r.mailbox()
    messages = []
    while not p.at_end():
        p.sp()
        flags: list[str] | None = None
        date: datetime.datetime | None = None
        if p.peek() == 0x28:
            flags = p.parens(Parser.flag)
            p.sp()
        if p.peek() == 0x22:
            date = p.date_time()
            p.sp()
        binary = p.peek() == 0x7E
        data = p.literal(binary_ok=True)
        messages.append(
            c.AppendMessage(
                message=data,
                flags=None if flags is None else tuple(flags),
                internal_date=date,
                binary=binary,
            )
        )
    return c.Append(tag=r.tag, mailbox=mailbox, messages=tuple(messages))


def _parse_expunge(r: _Reader) -> c.Command:
    if r.uid:
        r.p.sp()
        return c.Expunge(tag=r.tag, uid=True, sequence_set=parse_sequence_set(r.p))
    return c.Expunge(tag=r.tag)


def _parse_charset(p: Parser) -> str:
    if p.peek() == 0x22:
        raw = p.quoted()
        if _ASTRING_ATOM.fullmatch(raw) is not None:
            p.note_string(raw, "quoted")
    else:
        raw = p.atom()
    return raw.decode("ascii", "replace")


def _parse_search_keys(p: Parser) -> list[SearchKey]:
    keys = [parse_search_key(p)]
    while p.maybe(b" "):
        keys.append(parse_search_key(p))
    return keys


def _parse_search(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    returns: list[str] | None = None
    if p.maybe_keyword(b"RETURN "):
        returns = p.parens(_upper_atom)
        p.sp()
    charset = None
    if p.maybe_keyword(b"CHARSET "):
        charset = _parse_charset(p)
        p.sp()
    return c.Search(
        tag=r.tag,
        uid=r.uid,
        criteria=tuple(_parse_search_keys(p)),
        charset=charset,
        return_options=None if returns is None else tuple(returns),  # type: ignore[arg-type]
    )


def _parse_fetch(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    seq = parse_sequence_set(p)
    p.sp()
    items: str | c.FetchItem | tuple[c.FetchItem, ...]
    if p.peek() == 0x28:
        items = tuple(p.parens(_parse_fetch_item, allow_empty=False))
    else:
        for macro in (b"ALL", b"FAST", b"FULL"):
            end = p.pos + len(macro)
            if p.data[p.pos : end].upper() == macro and p.data[end : end + 1] in (b"", b" "):
                p.note_word(macro, p.data[p.pos : end])
                p.pos = end
                items = macro.decode("ascii")
                break
        else:
            items = _parse_fetch_item(p)
    changedsince: int | None = None
    vanished = False
    if p.maybe(b" "):
        p.open()
        while True:
            start = p.pos
            word = p.keyword()
            if word == b"CHANGEDSINCE" and changedsince is None:
                p.sp()
                changedsince = p.number64()
            elif word == b"VANISHED" and not vanished:
                vanished = True
            else:
                raise ParseError(f"unexpected fetch modifier {word!r}", start)
            if not p.maybe(b" "):
                break
        p.close()
    return c.Fetch(
        tag=r.tag,
        uid=r.uid,
        sequence_set=seq,
        items=items,
        changedsince=changedsince,
        vanished=vanished,
    )


def _parse_command_partial(p: Parser) -> tuple[int, int] | None:
    if p.peek() != 0x3C:  # "<"
        return None
    start = p.pos
    origin, length = parse_partial(p)
    if length is None:
        raise ParseError("a partial range in a command needs a length: <origin.length>", start)
    return origin, length


def _parse_part(p: Parser) -> tuple[int, ...]:
    p.expect(b"[")
    part: list[int] = []
    if not p.peek_is(b"]"):
        part.append(p.nz_number())
        while p.maybe(b"."):
            part.append(p.nz_number())
    p.expect(b"]")
    return tuple(part)


def _parse_fetch_item(p: Parser) -> c.FetchItem:
    start = p.pos
    m = _FETCH_NAME.match(p.data, p.pos)
    if m is None:
        raise p.fail("a fetch item")
    name = p.upper(m.group()).decode("ascii")
    p.pos = m.end()
    bracket = p.peek() == 0x5B  # "["
    if name in ("BODY", "BODY.PEEK") and (bracket or name == "BODY.PEEK"):
        section: Section = parse_section(p)
        return c.FetchBody(
            section=section, partial=_parse_command_partial(p), peek=name == "BODY.PEEK"
        )
    if name in ("BINARY", "BINARY.PEEK"):
        part = _parse_part(p)
        return c.FetchBinary(
            part=part, partial=_parse_command_partial(p), peek=name == "BINARY.PEEK"
        )
    if name == "BINARY.SIZE":
        return c.FetchBinarySize(part=_parse_part(p))
    if name in c.FETCH_ATTRS:
        return c.FetchAttr(name=name)
    raise ParseError(f"unknown fetch item {name!r}", start)


def _parse_flags(p: Parser) -> list[str]:
    if p.peek() == 0x28:
        return p.parens(Parser.flag)
    p.note_form("store-bare-flags")
    flags = [p.flag()]
    while p.maybe(b" "):
        flags.append(p.flag())
    return flags


def _parse_store(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    seq = parse_sequence_set(p)
    p.sp()
    unchangedsince: int | None = None
    if p.peek() == 0x28:
        p.open()
        p.expect_keyword(b"UNCHANGEDSINCE")
        p.sp()
        unchangedsince = p.number64()
        p.close()
        p.sp()
    action = "add" if p.maybe(b"+") else "remove" if p.maybe(b"-") else "set"
    p.expect_keyword(b"FLAGS")
    silent = p.maybe_keyword(b".SILENT")
    p.sp()
    return c.Store(
        tag=r.tag,
        uid=r.uid,
        sequence_set=seq,
        action=action,  # type: ignore[arg-type]
        flags=tuple(_parse_flags(p)),
        silent=silent,
        unchangedsince=unchangedsince,
    )


def _parse_copy_move(cls: type[c.Copy | c.Move]) -> Callable[[_Reader], c.Command]:
    def parse(r: _Reader) -> c.Command:
        r.p.sp()
        seq = parse_sequence_set(r.p)
        r.p.sp()
        return cls(tag=r.tag, uid=r.uid, sequence_set=seq, mailbox=r.mailbox())

    return parse


def _parse_sort_criterion(p: Parser) -> c.SortCriterion:
    reverse = p.maybe_keyword(b"REVERSE ")
    return c.SortCriterion(key=_upper_atom(p), reverse=reverse)  # type: ignore[arg-type]


def _parse_sort(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    criteria = p.parens(_parse_sort_criterion, allow_empty=False)
    p.sp()
    charset = _parse_charset(p)
    p.sp()
    return c.Sort(
        tag=r.tag,
        uid=r.uid,
        criteria=tuple(criteria),
        charset=charset,
        search=tuple(_parse_search_keys(p)),
    )


def _parse_thread(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    algorithm = p.keyword().decode("ascii")
    p.sp()
    charset = _parse_charset(p)
    p.sp()
    return c.Thread(
        tag=r.tag,
        uid=r.uid,
        algorithm=algorithm,
        charset=charset,
        search=tuple(_parse_search_keys(p)),
    )


def _parse_id(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    if p.nil():
        return c.Id(tag=r.tag, parameters=None)
    pairs: list[tuple[bytes, bytes | None]] = []
    p.open()
    if not p.peek_is(b")"):
        while True:
            field = p.string()
            p.sp()
            pairs.append((field, p.nstring()))
            if not p.maybe(b" "):
                break
    p.close()
    return c.Id(tag=r.tag, parameters=tuple(pairs))


def _parse_getquota(r: _Reader) -> c.Command:
    r.p.sp()
    return c.GetQuota(tag=r.tag, root=r.p.astring())


def _parse_quota_limit(p: Parser) -> tuple[str, int]:
    name = _upper_atom(p)
    p.sp()
    return name, p.number64()


def _parse_setquota(r: _Reader) -> c.Command:
    p = r.p
    p.sp()
    root = p.astring()
    p.sp()
    return c.SetQuota(tag=r.tag, root=root, limits=tuple(p.parens(_parse_quota_limit)))


_COMMANDS: dict[bytes, Callable[[_Reader], c.Command]] = {
    b"CAPABILITY": _no_args(c.Capability),
    b"NOOP": _no_args(c.Noop),
    b"LOGOUT": _no_args(c.Logout),
    b"STARTTLS": _no_args(c.StartTLS),
    b"AUTHENTICATE": _parse_authenticate,
    b"LOGIN": _parse_login,
    b"ENABLE": _parse_enable,
    b"SELECT": _parse_select(c.Select),
    b"EXAMINE": _parse_select(c.Examine),
    b"CREATE": _parse_create,
    b"DELETE": _one_mailbox(c.Delete),
    b"RENAME": _parse_rename,
    b"SUBSCRIBE": _one_mailbox(c.Subscribe),
    b"UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    b"LIST": _parse_list,
    b"LSUB": _parse_lsub,
    b"NAMESPACE": _no_args(c.Namespace),
    b"STATUS": _parse_status,
    b"APPEND": _parse_append,
    b"IDLE": _no_args(c.Idle),
    b"COMPRESS": _parse_compress,
    b"CHECK": _no_args(c.Check),
    b"CLOSE": _no_args(c.Close),
    b"UNSELECT": _no_args(c.Unselect),
    b"EXPUNGE": _parse_expunge,
    b"SEARCH": _parse_search,
    b"FETCH": _parse_fetch,
    b"STORE": _parse_store,
    b"COPY": _parse_copy_move(c.Copy),
    b"MOVE": _parse_copy_move(c.Move),
    b"SORT": _parse_sort,
    b"THREAD": _parse_thread,
    b"ID": _parse_id,
    b"GETQUOTA": _parse_getquota,
    b"GETQUOTAROOT": _one_mailbox(c.GetQuotaRoot),
    b"SETQUOTA": _parse_setquota,
}
_UID_COMMANDS = {
    name: _COMMANDS[name]
    for name in (b"COPY", b"MOVE", b"FETCH", b"SEARCH", b"STORE", b"EXPUNGE", b"SORT", b"THREAD")
}


# --- writing --------------------------------------------------------------------------


def format_command(
    cmd: c.Command, *, literal_plus: bool = False, utf8: bool = False, as_parsed: bool = True
) -> list[Fragment]:
    """The wire form of ``cmd``, split into fragments at literals.

    ``literal_plus``: use non-synchronizing literals (LITERAL+, or LITERAL- when small).
    ``utf8``: UTF-8 in quoted strings and mailbox names (IMAP4rev2 / UTF8=ACCEPT).
    ``as_parsed``: a parsed command is written as it was spelled (its ``spelling``);
    False writes the canonical spelling instead.
    """
    spelling = cmd.spelling if as_parsed else None
    e = Encoder(literal_plus=literal_plus, utf8=utf8, spelling=spelling)
    e.raw(cmd.tag.encode("ascii")).sp()
    if getattr(cmd, "uid", False):
        e.word(b"UID").sp()
    writer = _WRITERS[type(cmd)]
    writer(e, cmd, utf8)
    return e.finish()


def format_idle_done() -> list[Fragment]:
    """The line that ends IDLE."""
    return [b"DONE\r\n"]


def _mailbox(e: Encoder, name: str, utf8: bool) -> None:
    if name == "INBOX" and e.spelling is not None and e.spelling.inbox:
        e.astring(e.inbox())
    else:
        e.astring(encode_mailbox(name, utf8=utf8))


def _pattern(e: Encoder, name: str, utf8: bool) -> None:
    raw = encode_mailbox(name, utf8=utf8)
    if _LIST_CHARS.fullmatch(raw) is not None and not e.spelled_string(raw):
        e.raw(raw)
    else:
        e.quoted_or_literal(raw)


def _charset(e: Encoder, charset: str) -> None:
    e.astring(charset.encode("ascii", "replace"))


def _flag_list(e: Encoder, flags: tuple[str, ...]) -> None:
    e.raw(b"(" + " ".join(flags).encode("ascii") + b")")


def _atom_list(e: Encoder, words: tuple[str, ...]) -> None:
    """A parenthesized list of keywords (and numbers), spelled as parsed."""
    e.raw(b"(")
    for i, word in enumerate(words):
        if i:
            e.sp()
        _words(e, word)
    e.raw(b")")


def _words(e: Encoder, text: str) -> None:
    # "REVERSE DATE", "STATUS (MESSAGES UNSEEN)", "STORAGE 512": keywords and numbers.
    e.raw(_WORD.sub(lambda m: e.spelled_word(m.group()), text.encode("ascii")))


def _search_keys(e: Encoder, keys: tuple[SearchKey, ...]) -> None:
    for i, key in enumerate(keys):
        if i:
            e.sp()
        write_search_key(e, key)


def _w_nothing(name: bytes) -> Callable[[Encoder, c.Command, bool], None]:
    def write(e: Encoder, cmd: c.Command, utf8: bool) -> None:
        e.word(name)

    return write


def _w_one_mailbox(name: bytes) -> Callable[[Encoder, c.Command, bool], None]:
    def write(e: Encoder, cmd: c.Command, utf8: bool) -> None:
        assert isinstance(cmd, c.Delete | c.Subscribe | c.Unsubscribe | c.GetQuotaRoot)
        e.word(name).sp()
        _mailbox(e, cmd.mailbox, utf8)

    return write


def _w_authenticate(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Authenticate)
    e.word(b"AUTHENTICATE").sp().raw(cmd.mechanism.encode("ascii"))
    if cmd.initial_response is not None:
        e.sp().raw(binascii.b2a_base64(cmd.initial_response, newline=False) or b"=")


def _w_login(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Login)
    e.word(b"LOGIN").sp().astring(cmd.username).sp().astring(cmd.password)


def _w_compress(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Compress)
    e.word(b"COMPRESS").sp().raw(cmd.mechanism.encode("ascii"))


def _w_enable(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Enable)
    e.word(b"ENABLE").sp().raw(" ".join(cmd.capabilities).encode("ascii"))


def _w_select(name: bytes) -> Callable[[Encoder, c.Command, bool], None]:
    def write(e: Encoder, cmd: c.Command, utf8: bool) -> None:
        assert isinstance(cmd, c.Select | c.Examine)
        e.word(name).sp()
        _mailbox(e, cmd.mailbox, utf8)
        params = []
        if cmd.condstore:
            params.append(b"CONDSTORE")
        q = cmd.qresync
        if q is not None:
            value = b"QRESYNC (%d %d" % (q.uidvalidity, q.modseq)
            if q.known_uids is not None:
                value += b" " + q.known_uids.to_bytes()
            if q.seq_match is not None:
                value += b" (%s %s)" % (q.seq_match[0].to_bytes(), q.seq_match[1].to_bytes())
            params.append(value + b")")
        if params:
            e.raw(b" (")
            _words(e, b" ".join(params).decode("ascii"))
            e.raw(b")")

    return write


def _w_create(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Create)
    e.word(b"CREATE").sp()
    _mailbox(e, cmd.mailbox, utf8)
    if cmd.special_use is not None:
        e.raw(b" (").word(b"USE").sp()
        _flag_list(e, cmd.special_use)
        e.raw(b")")


def _w_rename(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Rename)
    e.word(b"RENAME").sp()
    _mailbox(e, cmd.mailbox, utf8)
    e.sp()
    _mailbox(e, cmd.new_name, utf8)


def _w_list(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.List)
    e.word(b"LIST").sp()
    if cmd.selection is not None:
        _atom_list(e, cmd.selection)
        e.sp()
    _mailbox(e, cmd.reference, utf8)
    e.sp()
    if len(cmd.patterns) == 1 and not e.spelled("list-pattern-parens"):
        _pattern(e, cmd.patterns[0], utf8)
    else:
        e.parens(cmd.patterns, lambda enc, name: _pattern(enc, name, utf8))
    if cmd.return_options is not None:
        words = []
        for option in cmd.return_options:
            if isinstance(option, c.ListReturnStatus):
                words.append("STATUS (" + " ".join(option.items) + ")")
            else:
                words.append(option)
        e.sp().word(b"RETURN").sp()
        _atom_list(e, tuple(words))


def _w_lsub(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Lsub)
    e.word(b"LSUB").sp()
    _mailbox(e, cmd.reference, utf8)
    e.sp()
    _pattern(e, cmd.pattern, utf8)


def _w_status(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Status)
    e.word(b"STATUS").sp()
    _mailbox(e, cmd.mailbox, utf8)
    e.sp()
    _atom_list(e, cmd.items)


def _w_append(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Append)
    e.word(b"APPEND").sp()
    _mailbox(e, cmd.mailbox, utf8)
    for message in cmd.messages:
        e.sp()
        if message.flags is not None:
            _flag_list(e, message.flags)
            e.sp()
        if message.internal_date is not None:
            e.word(format_date_time(message.internal_date)).sp()
        e.literal(message.message, "binary" if message.binary else None)


def _w_expunge(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Expunge)
    e.word(b"EXPUNGE")
    if cmd.sequence_set is not None:
        e.sp()
        write_sequence_set(e, cmd.sequence_set)


def _w_search(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Search)
    e.word(b"SEARCH").sp()
    if cmd.return_options is not None:
        e.word(b"RETURN").sp()
        _atom_list(e, cmd.return_options)
        e.sp()
    if cmd.charset is not None:
        e.word(b"CHARSET").sp()
        _charset(e, cmd.charset)
        e.sp()
    _search_keys(e, cmd.criteria)


def _partial(e: Encoder, partial: tuple[int, int] | None) -> None:
    if partial is not None:
        e.raw(b"<%d.%d>" % partial)


def _fetch_item(e: Encoder, item: c.FetchItem) -> None:
    if isinstance(item, c.FetchAttr):
        e.word(item.name.encode("ascii"))
    elif isinstance(item, c.FetchBody):
        e.word(b"BODY.PEEK" if item.peek else b"BODY").raw(b"[")
        write_section(e, item.section)
        e.raw(b"]")
        _partial(e, item.partial)
    elif isinstance(item, c.FetchBinary):
        e.word(b"BINARY.PEEK" if item.peek else b"BINARY")
        e.raw(b"[" + b".".join(b"%d" % n for n in item.part) + b"]")
        _partial(e, item.partial)
    else:
        e.word(b"BINARY.SIZE")
        e.raw(b"[" + b".".join(b"%d" % n for n in item.part) + b"]")


def _w_fetch(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Fetch)
    e.word(b"FETCH").sp()
    write_sequence_set(e, cmd.sequence_set)
    e.sp()
    if isinstance(cmd.items, str):
        e.word(cmd.items.encode("ascii"))
    elif isinstance(cmd.items, tuple):
        e.parens(cmd.items, _fetch_item)
    else:
        _fetch_item(e, cmd.items)
    modifiers = []
    if cmd.changedsince is not None:
        modifiers.append(b"CHANGEDSINCE %d" % cmd.changedsince)
    if cmd.vanished:
        modifiers.append(b"VANISHED")
    if modifiers:
        e.raw(b" (")
        _words(e, b" ".join(modifiers).decode("ascii"))
        e.raw(b")")


def _w_store(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Store)
    e.word(b"STORE").sp()
    write_sequence_set(e, cmd.sequence_set)
    if cmd.unchangedsince is not None:
        e.raw(b" (").word(b"UNCHANGEDSINCE").raw(b" %d)" % cmd.unchangedsince)
    e.raw({"set": b" ", "add": b" +", "remove": b" -"}[cmd.action]).word(b"FLAGS")
    if cmd.silent:
        e.word(b".SILENT")
    e.sp()
    if cmd.flags and e.spelled("store-bare-flags"):
        e.raw(" ".join(cmd.flags).encode("ascii"))
    else:
        _flag_list(e, cmd.flags)


def _w_copy_move(name: bytes) -> Callable[[Encoder, c.Command, bool], None]:
    def write(e: Encoder, cmd: c.Command, utf8: bool) -> None:
        assert isinstance(cmd, c.Copy | c.Move)
        e.word(name).sp()
        write_sequence_set(e, cmd.sequence_set)
        e.sp()
        _mailbox(e, cmd.mailbox, utf8)

    return write


def _w_sort(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Sort)
    e.word(b"SORT").sp()
    _atom_list(e, tuple(("REVERSE " if s.reverse else "") + s.key for s in cmd.criteria))
    e.sp()
    _charset(e, cmd.charset)
    e.sp()
    _search_keys(e, cmd.search)


def _w_thread(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Thread)
    e.word(b"THREAD").sp().word(cmd.algorithm.encode("ascii")).sp()
    _charset(e, cmd.charset)
    e.sp()
    _search_keys(e, cmd.search)


def _w_id(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.Id)
    e.word(b"ID").sp()
    if cmd.parameters is None:
        e.word(b"NIL")
        return
    e.parens(cmd.parameters, lambda enc, pair: enc.quoted_or_literal(pair[0]).sp().nstring(pair[1]))


def _w_getquota(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.GetQuota)
    e.word(b"GETQUOTA").sp().astring(cmd.root)


def _w_setquota(e: Encoder, cmd: c.Command, utf8: bool) -> None:
    assert isinstance(cmd, c.SetQuota)
    e.word(b"SETQUOTA").sp().astring(cmd.root).sp()
    _atom_list(e, tuple(f"{name} {limit}" for name, limit in cmd.limits))


_WRITERS: dict[type[c.Command], Callable[[Encoder, c.Command, bool], None]] = {
    c.Capability: _w_nothing(b"CAPABILITY"),
    c.Noop: _w_nothing(b"NOOP"),
    c.Logout: _w_nothing(b"LOGOUT"),
    c.StartTLS: _w_nothing(b"STARTTLS"),
    c.Authenticate: _w_authenticate,
    c.Login: _w_login,
    c.Enable: _w_enable,
    c.Select: _w_select(b"SELECT"),
    c.Examine: _w_select(b"EXAMINE"),
    c.Create: _w_create,
    c.Delete: _w_one_mailbox(b"DELETE"),
    c.Rename: _w_rename,
    c.Subscribe: _w_one_mailbox(b"SUBSCRIBE"),
    c.Unsubscribe: _w_one_mailbox(b"UNSUBSCRIBE"),
    c.List: _w_list,
    c.Lsub: _w_lsub,
    c.Namespace: _w_nothing(b"NAMESPACE"),
    c.Status: _w_status,
    c.Append: _w_append,
    c.Idle: _w_nothing(b"IDLE"),
    c.Compress: _w_compress,
    c.Check: _w_nothing(b"CHECK"),
    c.Close: _w_nothing(b"CLOSE"),
    c.Unselect: _w_nothing(b"UNSELECT"),
    c.Expunge: _w_expunge,
    c.Search: _w_search,
    c.Fetch: _w_fetch,
    c.Store: _w_store,
    c.Copy: _w_copy_move(b"COPY"),
    c.Move: _w_copy_move(b"MOVE"),
    c.Sort: _w_sort,
    c.Thread: _w_thread,
    c.Id: _w_id,
    c.GetQuota: _w_getquota,
    c.GetQuotaRoot: _w_one_mailbox(b"GETQUOTAROOT"),
    c.SetQuota: _w_setquota,
}
