"""Reading and writing IMAP responses (RFC 3501 and RFC 9051 section 9, and extensions).

`parse_response` reads one whole response: the line with its literals inline, exactly as
the fragmentizer frames it. The final CRLF may be given or left off (one trailing CRLF is
removed if present; the grammar never ends a response with a literal, so this is never
ambiguous). The usual shapes of an envelope and of a body structure (quoted strings without
escapes, full extension data) are read by a few anchored regular expressions at once;
anything else takes the general recursive-descent path, with the same result.
`format_response` writes a response as fragments (`_grammar.Fragment`): a server
announces its literals as ``{n}`` (``~{n}`` for BINARY data holding NUL) and sends
them at once, since responses never wait for a continuation.

Parsing is strict by default. A client that talks to a broken server may switch on named
quirks (each a behaviour seen from a real server):

- ``"trailing-space"``: spaces at the end of the line and before the ")" of a STATUS or
  FETCH list (Microsoft Exchange).
- ``"negative-lines"``: ``-1`` as a body's size in lines; read as 0 (seen from several
  servers for text parts whose line count they did not know).
- ``"nil-string"``: NIL where a body structure needs a string (media type, subtype,
  parameter, encoding); read as an empty string (Mail.ru).
- ``"unescaped-quotes"``: a ``"`` inside an envelope's or body structure's quoted
  string left unescaped (Outlook.com: ``"Doe, "J""``); a quote ends the string only
  when ")", the end, or a space and the start of a next value (``(``, ``"``, a digit,
  a literal, NIL) follows it.
- ``"code-no-space"``: no space between a response code's "]" and the text
  (``* OK [READ-WRITE]SELECT completed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .._util import LocalProtocolError
from . import _responses as r
from ._grammar import MAX_NUMBER, Encoder, Fragment, ParseError, Parser, format_date_time
from ._types import StatusItem, decode_mailbox, encode_mailbox, parse_section

__all__ = ["QUIRKS", "format_response", "parse_response"]

QUIRKS = frozenset(
    ("trailing-space", "negative-lines", "nil-string", "unescaped-quotes", "code-no-space")
)

_TAG = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\xff]+")
_ATT_NAME = re.compile(rb"[A-Za-z0-9.]+")
_ATOM_STR = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
_CODE_TEXT = re.compile(rb"[^\r\n\]]*")
_OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")
# Outlook: a quote inside a quoted string is content unless what follows it can only
# come after a string: ")", the end, or a space and the start of the next value.
_LAX_QUOTED = re.compile(
    rb'"((?:[^"\\\r\n\x00]|\\["\\]|"(?!\)|\Z| [("{~0-9]| NIL[ )]))*)"', re.IGNORECASE
)
_QUOTED_UNESCAPE = re.compile(rb"\\([\"\\])")
# Fast path for the usual address: four NILs or quoted strings without escapes; anything
# else (literals, escapes) takes the general path.
_NQ = rb'((?i:NIL)|"[^"\\\r\n\x00]*")'
_ADDRESS = re.compile(rb"\(" + _NQ + b" " + _NQ + b" " + _NQ + b" " + _NQ + rb"\)")
_NQ_NC = rb'(?:(?i:NIL)|"[^"\\\r\n\x00]*")'
_ALIST = (
    rb"((?i:NIL)|\((?:\(" + _NQ_NC + b" " + _NQ_NC + b" " + _NQ_NC + b" " + _NQ_NC + rb"\))+\))"
)
# A whole envelope without literals or escapes.
_ENVELOPE = re.compile(
    rb"\(" + _NQ + b" " + _NQ + (b" " + _ALIST) * 6 + b" " + _NQ + b" " + _NQ + rb"\)"
)
# Fast paths for the usual body structure (the general path reads everything else).
_Q = rb'"[^"\\\r\n\x00]*"'
_QS = re.compile(rb'"([^"\\\r\n\x00]*)"')
_PARAMS = rb"((?i:NIL)|\(" + _Q + b" " + _Q + rb"(?: " + _Q + b" " + _Q + rb")*\))"
_DSP = (
    rb"((?i:NIL)|\("
    + _Q
    + rb" (?:(?i:NIL)|\("
    + _Q
    + b" "
    + _Q
    + rb"(?: "
    + _Q
    + b" "
    + _Q
    + rb")*\))\))"
)
# body-type-1part up to body-fld-octets: type, subtype, params, id, description, encoding
_FIELDS = re.compile(
    b"(" + _Q + b") (" + _Q + b") " + _PARAMS + b" " + _NQ + b" " + _NQ + b" (" + _Q
    + rb") ([0-9]{1,10})"
)  # fmt: skip
# body-ext-1part in full: md5, disposition, language (an nstring), location, then ")"
_EXT_1PART = re.compile(b" " + _NQ + b" " + _DSP + b" " + _NQ + b" " + _NQ + rb"(?=\))")
# multipart subtype and body-ext-mpart in full
_EXT_MPART = re.compile(
    b" (" + _Q + b") " + _PARAMS + b" " + _DSP + b" " + _NQ + b" " + _NQ + rb"(?=\))"
)


def _nq(g: bytes) -> bytes | None:
    return None if g[0] != 0x22 else g[1:-1]


def _fast_addresses(g: bytes) -> tuple[r.Address, ...] | None:
    if g[0] != 0x28:
        return None
    # The pattern admits only NIL or quoted strings without escapes, CR, LF or NUL:
    # fields that need no further check.
    parsed = r.Address._parsed
    return tuple(
        parsed(
            None if a[0] != 0x22 else a[1:-1],
            None if b[0] != 0x22 else b[1:-1],
            None if c[0] != 0x22 else c[1:-1],
            None if d[0] != 0x22 else d[1:-1],
        )
        for a, b, c, d in _ADDRESS.findall(g)
    )


def _fast_params(g: bytes) -> tuple[tuple[bytes, bytes], ...] | None:
    if g[0] != 0x28:
        return None
    it = iter(_QS.findall(g))
    return tuple(zip(it, it, strict=True))


def _fast_dsp(g: bytes) -> r.Disposition | None:
    if g[0] != 0x28:
        return None
    m = _QS.match(g, 1)
    assert m is not None
    return r.Disposition(type=m.group(1), params=_fast_params(g[m.end() + 1 : -1]))


_STATUS_NAMES: dict[bytes, StatusItem] = {
    b"MESSAGES": "MESSAGES", b"RECENT": "RECENT", b"UIDNEXT": "UIDNEXT",
    b"UIDVALIDITY": "UIDVALIDITY", b"UNSEEN": "UNSEEN", b"DELETED": "DELETED",
    b"SIZE": "SIZE", b"HIGHESTMODSEQ": "HIGHESTMODSEQ", b"APPENDLIMIT": "APPENDLIMIT",
    b"MAILBOXID": "MAILBOXID", b"DELETED-STORAGE": "DELETED-STORAGE",
}  # fmt: skip


# --- reading --------------------------------------------------------------------------


def parse_response(
    data: bytes, *, utf8: bool = False, quirks: frozenset[str] = frozenset()
) -> r.Response:
    """Read one response (CRLF at the end optional; literals inline).

    ``utf8``: mailbox names are UTF-8 (IMAP4rev2 or UTF8=ACCEPT), not modified UTF-7.

    Raises:
        ParseError: the bytes are not a response (or name a value out of range).
        LocalProtocolError: ``quirks`` names a quirk that does not exist.
    """
    unknown = quirks - QUIRKS
    if unknown:
        raise LocalProtocolError(f"unknown quirks: {sorted(unknown)}")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    if quirks and "trailing-space" in quirks:
        data = data.rstrip(b" ")
    reader = _Reader(data, utf8, quirks)
    try:
        resp = reader.response()
    except (LocalProtocolError, ValueError) as exc:
        raise ParseError(str(exc), reader.p.pos) from None
    spelling = reader.p.spelling()
    if spelling is not None:
        object.__setattr__(resp, "spelling", spelling)
    return resp


class _Reader:
    __slots__ = ("lax_quotes", "neg_lines", "nil_string", "no_code_space", "p", "space_close",
                 "utf8")  # fmt: skip

    def __init__(self, data: bytes, utf8: bool, quirks: frozenset[str]) -> None:
        # Dovecot nests MIME up to 100 levels (and an envelope adds 3): room for it.
        self.p = Parser(data, max_depth=128)
        self.utf8 = utf8
        self.space_close = "trailing-space" in quirks
        self.neg_lines = "negative-lines" in quirks
        self.nil_string = "nil-string" in quirks
        self.lax_quotes = "unescaped-quotes" in quirks
        self.no_code_space = "code-no-space" in quirks

    # strings with quirks ---------------------------------------------------------------

    def nstring(self) -> bytes | None:
        p = self.p
        if self.lax_quotes and p.peek() == 0x22:
            m = _LAX_QUOTED.match(p.data, p.pos)
            if m is None:
                raise p.fail("a quoted string")
            p.pos = m.end()
            value = m.group(1)
            return _QUOTED_UNESCAPE.sub(rb"\1", value) if b"\\" in value else value
        return p.nstring()

    def string(self) -> bytes:
        value = self.nstring()
        if value is None:
            if self.nil_string:
                return b""
            raise ParseError("NIL where a string belongs", self.p.pos - 3)
        return value

    def mailbox(self) -> str:
        raw = self.p.astring()
        name = decode_mailbox(raw, utf8=self.utf8)
        if name == "INBOX":
            self.p.note_inbox(raw)
        return name

    def text(self) -> str:
        return self.p.text().decode("utf-8", "surrogateescape")

    # top level --------------------------------------------------------------------------

    def response(self) -> r.Response:
        p = self.p
        if p.maybe(b"+"):
            p.sp()
            code, text = self.resp_text()
            p.end()
            return r.Continuation(code=code, text=text)
        if p.maybe(b"* "):
            result = self.untagged()
            p.end()
            return result
        m = _TAG.match(p.data, p.pos)
        if m is None:
            raise p.fail("a tag, '*' or '+'")
        p.pos = m.end()
        tag = m.group().decode("ascii")
        p.sp()
        word = p.keyword()
        if word not in (b"OK", b"NO", b"BAD"):
            raise ParseError("a tagged response is OK, NO or BAD", p.pos - len(word))
        p.sp()
        code, text = self.resp_text()
        p.end()
        return r.Tagged(tag=tag, status=word.decode(), code=code, text=text)  # type: ignore[arg-type]

    def resp_text(self) -> tuple[r.Code | None, str]:
        p = self.p
        code = None
        if p.maybe(b"["):
            code = self.code()
            p.expect(b"]")
            if not p.maybe(b" ") and not p.at_end() and not self.no_code_space:
                raise p.fail("a space after the response code")
        return code, self.text()

    def code(self) -> r.Code:
        p = self.p
        raw = p.atom()
        name = raw.upper().decode("ascii")
        bare = r.BARE_CODES.get(name)
        if bare is not None:
            return bare()
        if name == "BADCHARSET":
            charsets: list[bytes] = []
            if p.maybe(b" "):
                if p.peek_is(b"("):
                    charsets = p.parens(_charset, allow_empty=False)
                else:
                    # "[BADCHARSET UTF-8]" (RFC 9051 6.4.4.4): the generic
                    # atom [SP 1*<TEXT-CHAR except "]">] form of resp-text-code.
                    p.note_form("badcharset-bare")
                    charsets.append(_charset(p))
                    while p.maybe(b" "):
                        charsets.append(_charset(p))
            return r.BadCharset(charsets=tuple(charsets))
        if name == "CAPABILITY":
            return r.CapabilityCode(capabilities=self.capabilities(need_one=True))
        if name == "PERMANENTFLAGS":
            p.sp()
            return r.PermanentFlags(flags=tuple(p.parens(Parser.flag)))
        if name == "UIDNEXT":
            p.sp()
            return r.UidNext(value=p.nz_number())
        if name == "UIDVALIDITY":
            p.sp()
            return r.UidValidity(value=p.nz_number())
        if name == "UNSEEN":
            p.sp()
            return r.Unseen(value=p.nz_number())
        if name == "HIGHESTMODSEQ":
            p.sp()
            return r.HighestModSeq(value=p.number64())
        if name == "MODIFIED":
            p.sp()
            return r.Modified(uids=p.sequence_set())
        if name == "MAILBOXID":
            p.sp()
            p.expect(b"(")
            value = _objectid(p)
            p.expect(b")")
            return r.MailboxIdCode(value=value)
        if name == "APPENDUID":
            p.sp()
            validity = p.nz_number()
            p.sp()
            return r.AppendUid(uidvalidity=validity, uids=p.sequence_set())
        if name == "COPYUID":
            p.sp()
            validity = p.nz_number()
            p.sp()
            source = p.sequence_set()
            p.sp()
            return r.CopyUid(uidvalidity=validity, source=source, destination=p.sequence_set())
        text = None
        if p.maybe(b" "):
            m = _CODE_TEXT.match(p.data, p.pos)
            assert m is not None
            p.pos = m.end()
            text = m.group()
        return r.OtherCode(name=raw.decode("ascii"), text=text)

    def capabilities(self, *, need_one: bool) -> tuple[str, ...]:
        p = self.p
        caps: list[str] = []
        if need_one:
            p.sp()
            caps.append(p.atom().decode("ascii"))
        while p.maybe(b" "):
            caps.append(p.atom().decode("ascii"))
        return tuple(caps)

    def untagged(self) -> r.Response:
        p = self.p
        c = p.peek()
        if 0x30 <= c <= 0x39:
            n = p.number()
            p.sp()
            word = p.keyword()
            if word == b"FETCH":
                p.sp()
                return self.fetch(n)
            if word == b"EXISTS":
                return r.Exists(count=n)
            if word == b"EXPUNGE":
                return r.Expunge(seq=n)
            if word == b"RECENT":
                return r.Recent(count=n)
            raise ParseError(f"unknown message data {word!r}", p.pos - len(word))
        word = p.keyword()
        handler = _UNTAGGED.get(word)
        if handler is None:
            raise ParseError(f"unknown untagged response {word!r}", p.pos - len(word))
        return handler(self, word)

    def status(self, word: bytes) -> r.Response:
        self.p.sp()
        code, text = self.resp_text()
        return r.Untagged(status=word.decode(), code=code, text=text)  # type: ignore[arg-type]

    def capability(self, word: bytes) -> r.Response:
        return r.Capability(capabilities=self.capabilities(need_one=True))

    def enabled(self, word: bytes) -> r.Response:
        return r.Enabled(capabilities=self.capabilities(need_one=False))

    def flags(self, word: bytes) -> r.Response:
        self.p.sp()
        return r.Flags(flags=tuple(self.p.parens(Parser.flag)))

    def listing(self, word: bytes) -> r.Response:
        p = self.p
        p.sp()
        attributes = tuple(p.parens(Parser.flag))
        p.sp()
        delimiter: str | None = None
        if not p.nil():
            raw = p.quoted()
            if len(raw) != 1:
                raise ParseError("a hierarchy delimiter is one character", p.pos)
            delimiter = raw.decode("latin-1")
        p.sp()
        mailbox = self.mailbox()
        childinfo: tuple[bytes, ...] | None = None
        oldname: str | None = None
        extended: list[tuple[bytes, r.ListExtValue]] = []
        if p.maybe(b" "):
            p.open()
            first = True
            while not p.peek_is(b")"):
                if not first:
                    p.sp()
                first = False
                start = p.pos
                raw_tag = p.astring(quote=True)
                tag = raw_tag.upper()
                p.sp()
                if tag == b"CHILDINFO" and childinfo is None:
                    childinfo = tuple(p.parens(Parser.string, allow_empty=False))
                elif tag == b"OLDNAME" and oldname is None:
                    p.open()
                    oldname = self.mailbox()
                    p.close()
                elif tag in (b"CHILDINFO", b"OLDNAME") or not raw_tag:
                    raise ParseError(f"repeated LIST extended data {tag!r}", start)
                else:
                    extended.append((raw_tag, _list_ext_val(p)))
            p.close()
        cls = r.List if word == b"LIST" else r.Lsub
        return cls(
            attributes=attributes,
            delimiter=delimiter,
            mailbox=mailbox,
            childinfo=childinfo,
            oldname=oldname,
            extended=tuple(extended),
        )

    def status_data(self, word: bytes) -> r.Response:
        p = self.p
        p.sp()
        mailbox = self.mailbox()
        p.sp()
        p.open()
        items: list[tuple[StatusItem, int | str]] = []
        while not p.peek_is(b")"):
            if items:
                p.sp()
                if self.space_close and p.peek_is(b")"):
                    break
            start = p.pos
            name = _STATUS_NAMES.get(p.keyword())
            if name is None:
                raise ParseError("unknown STATUS item", start)
            p.sp()
            if name == "MAILBOXID":
                p.open()
                items.append((name, _objectid(p)))
                p.close()
            else:
                items.append((name, p.number64()))
        p.close()
        return r.Status(mailbox=mailbox, items=tuple(items))

    def search(self, word: bytes) -> r.Response:
        p = self.p
        numbers: list[int] = []
        modseq = None
        while p.maybe(b" "):
            if p.maybe(b"("):
                p.expect_keyword(b"MODSEQ")
                p.sp()
                modseq = p.number64()
                p.expect(b")")
                break
            numbers.append(p.nz_number())
        cls = r.Search if word == b"SEARCH" else r.Sort
        return cls(numbers=tuple(numbers), modseq=modseq)

    def esearch(self, word: bytes) -> r.Response:
        p = self.p
        tag = None
        uid = False
        found: dict[bytes, object] = {}
        if p.maybe(b" ("):
            p.expect_keyword(b"TAG")
            p.sp()
            tag = p.string()
            p.expect(b")")
        while p.maybe(b" "):
            start = p.pos
            name = p.keyword()
            if name == b"UID" and not uid and not found:
                uid = True
                continue
            if name in found:
                raise ParseError(f"repeated ESEARCH item {name!r}", start)
            if name not in (b"MIN", b"MAX", b"COUNT", b"ALL", b"MODSEQ"):
                raise ParseError(f"unknown ESEARCH item {name!r}", start)
            p.sp()
            if name == b"ALL":
                found[name] = p.sequence_set()
            elif name == b"MODSEQ":
                found[name] = p.number64()
            else:
                found[name] = p.number()
        return r.ESearch(
            tag=tag,
            uid=uid,
            min=found.get(b"MIN"),  # type: ignore[arg-type]
            max=found.get(b"MAX"),  # type: ignore[arg-type]
            count=found.get(b"COUNT"),  # type: ignore[arg-type]
            all=found.get(b"ALL"),  # type: ignore[arg-type]
            modseq=found.get(b"MODSEQ"),  # type: ignore[arg-type]
        )

    def vanished(self, word: bytes) -> r.Response:
        p = self.p
        p.sp()
        earlier = p.maybe_keyword(b"(EARLIER)")
        if earlier:
            p.sp()
        return r.Vanished(earlier=earlier, uids=p.sequence_set())

    def namespace(self, word: bytes) -> r.Response:
        p = self.p
        lists: list[tuple[r.NamespaceEntry, ...] | None] = []
        for _ in range(3):
            p.sp()
            if p.nil():
                lists.append(None)
            else:
                lists.append(tuple(self.parens_tight(self.namespace_entry)))
        return r.Namespace(personal=lists[0], other=lists[1], shared=lists[2])

    def parens_tight(self, item: Callable[[], r.NamespaceEntry]) -> list[r.NamespaceEntry]:
        """ "(" 1*item ")" with no spaces between the items (RFC 2342 Namespace)."""
        p = self.p
        p.open()
        out = [item()]
        while not p.peek_is(b")"):
            out.append(item())
        p.close()
        return out

    def namespace_entry(self) -> r.NamespaceEntry:
        p = self.p
        p.open()
        prefix = decode_mailbox(p.string(), utf8=self.utf8)
        p.sp()
        delimiter = None
        if not p.nil():
            raw = p.quoted()
            if len(raw) != 1:
                raise ParseError("a hierarchy delimiter is one character", p.pos)
            delimiter = raw.decode("latin-1")
        extensions = []
        while p.maybe(b" "):
            name = p.string()
            p.sp()
            extensions.append((name, tuple(p.parens(Parser.string, allow_empty=False))))
        p.close()
        return r.NamespaceEntry(prefix=prefix, delimiter=delimiter, extensions=tuple(extensions))

    def id(self, word: bytes) -> r.Response:
        p = self.p
        p.sp()
        if p.nil():
            return r.Id(params=None)
        p.open()
        params = []
        while True:
            name = p.string()
            p.sp()
            params.append((name, p.nstring()))
            if not p.maybe(b" "):
                break
        p.close()
        return r.Id(params=tuple(params))

    def quota(self, word: bytes) -> r.Response:
        p = self.p
        p.sp()
        root = p.astring()
        p.sp()

        def resource(p: Parser) -> r.QuotaResource:
            name = p.atom().decode("ascii")
            p.sp()
            usage = p.number64()
            p.sp()
            return r.QuotaResource(name=name, usage=usage, limit=p.number64())

        return r.Quota(root=root, resources=tuple(p.parens(resource, allow_empty=False)))

    def quotaroot(self, word: bytes) -> r.Response:
        p = self.p
        p.sp()
        mailbox = self.mailbox()
        roots = []
        while p.maybe(b" "):
            roots.append(p.astring())
        return r.QuotaRoot(mailbox=mailbox, roots=tuple(roots))

    def thread(self, word: bytes) -> r.Response:
        p = self.p
        threads = []
        if p.maybe(b" "):
            threads.append(self.thread_list())
            while p.peek_is(b"("):
                threads.append(self.thread_list())
        return r.Thread(threads=tuple(threads))

    def thread_list(self) -> r.ThreadNode:
        p = self.p
        p.open()
        messages = []
        children = []
        if not p.peek_is(b"("):
            messages.append(p.nz_number())
            while p.maybe(b" "):
                if p.peek_is(b"("):
                    break
                messages.append(p.nz_number())
            else:
                p.close()
                return r.ThreadNode(messages=tuple(messages))
        children.append(self.thread_list())
        while p.peek_is(b"("):
            children.append(self.thread_list())
        p.close()
        return r.ThreadNode(messages=tuple(messages), children=tuple(children))

    # FETCH ------------------------------------------------------------------------------

    def fetch(self, seq: int) -> r.Response:
        p = self.p
        p.open()
        attributes: list[r.FetchAttribute] = []
        while True:
            m = _ATT_NAME.match(p.data, p.pos)
            if m is None:
                raise p.fail("a FETCH attribute")
            name = m.group().upper()
            handler = _FETCH.get(name)
            if handler is None:
                raise ParseError(f"unknown FETCH attribute {name!r}", p.pos)
            p.pos = m.end()
            attributes.append(handler(self))
            if not p.maybe(b" "):
                break
            if self.space_close:  # Exchange: "(UID 3 )"
                while p.maybe(b" "):
                    pass
                if p.peek_is(b")"):
                    break
        p.close()
        return r.Fetch(seq=seq, attributes=tuple(attributes))

    def f_flags(self) -> r.FetchAttribute:
        self.p.sp()
        return r.FetchFlags(flags=tuple(self.p.parens(Parser.flag)))

    def f_uid(self) -> r.FetchAttribute:
        self.p.sp()
        return r.Uid(value=self.p.nz_number())

    def f_size(self) -> r.FetchAttribute:
        self.p.sp()
        return r.Rfc822Size(value=self.p.number64())

    def f_internaldate(self) -> r.FetchAttribute:
        self.p.sp()
        return r.InternalDate(value=self.p.date_time())

    def f_savedate(self) -> r.FetchAttribute:
        self.p.sp()
        if self.p.nil():
            return r.SaveDate(value=None)
        return r.SaveDate(value=self.p.date_time())

    def f_envelope(self) -> r.FetchAttribute:
        self.p.sp()
        return r.EnvelopeItem(envelope=self.envelope())

    def f_bodystructure(self) -> r.FetchAttribute:
        self.p.sp()
        return r.BodyStructure(body=self.body())

    def f_body(self) -> r.FetchAttribute:
        p = self.p
        if p.peek_is(b"["):
            section = parse_section(p)
            origin = None
            if p.maybe(b"<"):
                origin = p.number64()
                p.expect(b">")
            p.sp()
            return r.BodySection(section=section, origin=origin, data=p.nstring())
        p.sp()
        return r.Body(body=self.body())

    def f_binary(self) -> r.FetchAttribute:
        p = self.p
        part = self.binary_part()
        origin = None
        if p.maybe(b"<"):
            origin = p.number64()
            p.expect(b">")
        p.sp()
        if p.nil():
            return r.Binary(part=part, origin=origin, data=None)
        if p.peek() == 0x22:
            return r.Binary(part=part, origin=origin, data=p.quoted())
        return r.Binary(part=part, origin=origin, data=p.literal(binary_ok=True))

    def f_binary_size(self) -> r.FetchAttribute:
        part = self.binary_part()
        self.p.sp()
        return r.BinarySize(part=part, size=self.p.number64())

    def binary_part(self) -> tuple[int, ...]:
        p = self.p
        p.expect(b"[")
        part = []
        if not p.peek_is(b"]"):
            part.append(p.nz_number())
            while p.maybe(b"."):
                part.append(p.nz_number())
        p.expect(b"]")
        return tuple(part)

    def f_rfc822(self) -> r.FetchAttribute:
        self.p.sp()
        return r.Rfc822(data=self.p.nstring())

    def f_rfc822_header(self) -> r.FetchAttribute:
        self.p.sp()
        return r.Rfc822Header(data=self.p.nstring())

    def f_rfc822_text(self) -> r.FetchAttribute:
        self.p.sp()
        return r.Rfc822Text(data=self.p.nstring())

    def f_modseq(self) -> r.FetchAttribute:
        p = self.p
        p.sp()
        p.expect(b"(")
        value = p.number64()
        p.expect(b")")
        return r.ModSeq(value=value)

    def f_emailid(self) -> r.FetchAttribute:
        p = self.p
        p.sp()
        p.expect(b"(")
        value = _objectid(p)
        p.expect(b")")
        return r.EmailId(value=value)

    def f_threadid(self) -> r.FetchAttribute:
        p = self.p
        p.sp()
        if p.nil():
            return r.ThreadId(value=None)
        p.expect(b"(")
        value = _objectid(p)
        p.expect(b")")
        return r.ThreadId(value=value)

    # envelope and body structure ----------------------------------------------------

    def envelope(self) -> r.Envelope:
        p = self.p
        if not self.lax_quotes:
            m = _ENVELOPE.match(p.data, p.pos)
            if m is not None:
                p.pos = m.end()
                g = m.groups()
                return r.Envelope(
                    date=_nq(g[0]),
                    subject=_nq(g[1]),
                    from_=_fast_addresses(g[2]),
                    sender=_fast_addresses(g[3]),
                    reply_to=_fast_addresses(g[4]),
                    to=_fast_addresses(g[5]),
                    cc=_fast_addresses(g[6]),
                    bcc=_fast_addresses(g[7]),
                    in_reply_to=_nq(g[8]),
                    message_id=_nq(g[9]),
                )
        p.open()
        date = self.nstring()
        p.sp()
        subject = self.nstring()
        lists = []
        for _ in range(6):
            p.sp()
            lists.append(self.addresses())
        p.sp()
        in_reply_to = self.nstring()
        p.sp()
        message_id = self.nstring()
        p.close()
        return r.Envelope(
            date=date,
            subject=subject,
            from_=lists[0],
            sender=lists[1],
            reply_to=lists[2],
            to=lists[3],
            cc=lists[4],
            bcc=lists[5],
            in_reply_to=in_reply_to,
            message_id=message_id,
        )

    def addresses(self) -> tuple[r.Address, ...] | None:
        p = self.p
        if p.nil():
            return None
        p.open()
        out = []
        fast = not self.lax_quotes
        data = p.data
        while True:
            m = _ADDRESS.match(data, p.pos) if fast else None
            if m is not None:
                p.pos = m.end()
                name, adl, mailbox, host = (None if g[0] != 0x22 else g[1:-1] for g in m.groups())
                out.append(r.Address(name=name, adl=adl, mailbox=mailbox, host=host))
                if data[p.pos] != 0x28:  # "("
                    break
                continue
            p.open()
            name = self.nstring()
            p.sp()
            adl = self.nstring()
            p.sp()
            mailbox = self.nstring()
            p.sp()
            host = self.nstring()
            p.close()
            out.append(r.Address(name=name, adl=adl, mailbox=mailbox, host=host))
            if not p.peek_is(b"("):
                break
        p.close()
        return tuple(out)

    def params(self) -> tuple[tuple[bytes, bytes], ...] | None:
        p = self.p
        if p.nil():
            return None
        p.open()
        out = []
        while True:
            name = self.string()
            p.sp()
            out.append((name, self.string()))
            if not p.maybe(b" "):
                break
        p.close()
        return tuple(out)

    def lines(self) -> int:
        if self.neg_lines and self.p.maybe(b"-1"):
            return 0
        return self.p.number64()

    def body(self) -> r.BodyType:
        p = self.p
        p.open()
        fast = not self.lax_quotes and not self.nil_string
        if p.peek_is(b"("):
            parts = [self.body()]
            while p.peek_is(b"("):
                parts.append(self.body())
            m = _EXT_MPART.match(p.data, p.pos) if fast else None
            if m is not None:
                p.pos = m.end()
                p.close()
                g = m.groups()
                return r.BodyMultipart(
                    parts=tuple(parts),
                    subtype=g[0][1:-1],
                    params=_fast_params(g[1]),
                    ext_fields=4,
                    disposition=_fast_dsp(g[2]),
                    language=None if g[3][0] != 0x22 else (g[3][1:-1],),
                    location=_nq(g[4]),
                )
            p.sp()
            subtype = self.string()
            ext = 0
            params = None
            if p.maybe(b" "):
                ext = 1
                params = self.params()
            mp = self.extension(ext)
            p.close()
            return r.BodyMultipart(
                parts=tuple(parts),
                subtype=subtype,
                params=params,
                ext_fields=mp[0],
                disposition=mp[1],
                language=mp[2],
                location=mp[3],
                extensions=mp[4],
            )
        m = _FIELDS.match(p.data, p.pos) if fast else None
        if m is not None:
            p.pos = m.end()
            g = m.groups()
            media_type = g[0][1:-1]
            subtype = g[1][1:-1]
            params = _fast_params(g[2])
            body_id = _nq(g[3])
            description = _nq(g[4])
            encoding = g[5][1:-1]
            size = int(g[6])
            if size > MAX_NUMBER:
                raise ParseError("number out of range", p.pos)
        else:
            media_type = self.string()
            p.sp()
            subtype = self.string()
            p.sp()
            params = self.params()
            p.sp()
            body_id = self.nstring()
            p.sp()
            description = self.nstring()
            p.sp()
            encoding = self.string()
            p.sp()
            size = p.number()
        upper = media_type.upper()
        body: r.BodyType
        envelope = None
        inner = None
        lines = 0
        if upper == b"TEXT":
            p.sp()
            lines = self.lines()
        elif upper == b"MESSAGE" and (
            subtype.upper() == b"RFC822"
            # message/global is body-type-msg in IMAP4rev2 only; an IMAP4rev1 server
            # (Dovecot 2.3) sends it as body-type-basic, without an envelope.
            or (subtype.upper() == b"GLOBAL" and p.peek_is(b" ("))
        ):
            p.sp()
            envelope = self.envelope()
            p.sp()
            inner = self.body()
            p.sp()
            lines = self.lines()
        m = _EXT_1PART.match(p.data, p.pos) if fast else None
        if m is not None:
            p.pos = m.end()
            g = m.groups()
            md5 = _nq(g[0])
            e: tuple[
                int,
                r.Disposition | None,
                tuple[bytes, ...] | None,
                bytes | None,
                tuple[r.ExtensionValue, ...],
            ] = (4, _fast_dsp(g[1]), None if g[2][0] != 0x22 else (g[2][1:-1],), _nq(g[3]), ())
        else:
            ext = 0
            md5 = None
            if p.maybe(b" "):
                ext = 1
                md5 = self.nstring()
            e = self.extension(ext)
        p.close()
        common = {
            "params": params,
            "id": body_id,
            "description": description,
            "encoding": encoding,
            "size": size,
            "md5": md5,
            "ext_fields": e[0],
            "disposition": e[1],
            "language": e[2],
            "location": e[3],
            "extensions": e[4],
        }
        if upper == b"TEXT":
            body = r.BodyText(subtype=subtype, lines=lines, **common)  # type: ignore[arg-type]
        elif envelope is not None:
            assert inner is not None
            body = r.BodyMessage(
                subtype=subtype,
                envelope=envelope,
                body=inner,
                lines=lines,
                **common,  # type: ignore[arg-type]
            )
        else:
            body = r.BodyBasic(media_type=media_type, subtype=subtype, **common)  # type: ignore[arg-type]
        return body

    def extension(
        self, ext: int
    ) -> tuple[
        int,
        r.Disposition | None,
        tuple[bytes, ...] | None,
        bytes | None,
        tuple[r.ExtensionValue, ...],
    ]:
        """The extension data after MD5 (single part) or parameters (multipart)."""
        p = self.p
        disposition = None
        language: tuple[bytes, ...] | None = None
        location = None
        extensions: list[r.ExtensionValue] = []
        if ext == 1 and p.maybe(b" "):
            ext = 2
            if not p.nil():
                p.open()
                dtype = self.string()
                p.sp()
                disposition = r.Disposition(type=dtype, params=self.params())
                p.close()
            if p.maybe(b" "):
                ext = 3
                if p.peek_is(b"("):
                    language = tuple(p.parens(Parser.string, allow_empty=False))
                else:
                    value = self.nstring()
                    language = None if value is None else (value,)
                if p.maybe(b" "):
                    ext = 4
                    location = self.nstring()
                    while p.maybe(b" "):
                        extensions.append(self.body_extension())
        return ext, disposition, language, location, tuple(extensions)

    def body_extension(self) -> r.ExtensionValue:
        p = self.p
        c = p.peek()
        if c == 0x28:
            p.open()
            items = [self.body_extension()]
            while p.maybe(b" "):
                items.append(self.body_extension())
            p.close()
            return tuple(items)
        if 0x30 <= c <= 0x39:
            return p.number64()
        return self.nstring()


def _list_ext_val(p: Parser) -> r.ListExtValue:
    """tagged-ext-val = tagged-ext-simple / "(" [tagged-ext-comp] ")" (RFC 9051)."""
    if p.peek_is(b"("):
        p.open()
        items = () if p.peek_is(b")") else _list_ext_comps(p)
        p.close()
        return items
    m = r._LIST_EXT_SIMPLE.match(p.data, p.pos)
    if m is None:
        raise p.fail("a sequence set, a number or a parenthesized list")
    p.pos = m.end()
    return m.group()


def _list_ext_comps(p: Parser) -> tuple[r.ListExtValue, ...]:
    """tagged-ext-comp = astring / tagged-ext-comp *(SP tagged-ext-comp) / "(" ... ")"."""
    out: list[r.ListExtValue] = []
    while True:
        if p.peek_is(b"("):
            p.open()
            out.append(_list_ext_comps(p))
            p.close()
        else:
            out.append(p.astring())
        if not p.maybe(b" "):
            return tuple(out)


def _charset(p: Parser) -> bytes:
    if p.peek() == 0x22:
        value = p.quoted()
        if _ATOM_STR.fullmatch(value) is not None:
            p.note_string(value, "quoted")
        return value
    return p.atom()


def _objectid(p: Parser) -> str:
    m = _OBJECTID.match(p.data, p.pos)
    if m is None:
        raise p.fail("an objectid")
    p.pos = m.end()
    return m.group().decode("ascii")


_UNTAGGED: dict[bytes, Callable[[_Reader, bytes], r.Response]] = {
    b"OK": _Reader.status,
    b"NO": _Reader.status,
    b"BAD": _Reader.status,
    b"PREAUTH": _Reader.status,
    b"BYE": _Reader.status,
    b"CAPABILITY": _Reader.capability,
    b"ENABLED": _Reader.enabled,
    b"FLAGS": _Reader.flags,
    b"LIST": _Reader.listing,
    b"LSUB": _Reader.listing,
    b"STATUS": _Reader.status_data,
    b"SEARCH": _Reader.search,
    b"SORT": _Reader.search,
    b"ESEARCH": _Reader.esearch,
    b"VANISHED": _Reader.vanished,
    b"NAMESPACE": _Reader.namespace,
    b"ID": _Reader.id,
    b"QUOTA": _Reader.quota,
    b"QUOTAROOT": _Reader.quotaroot,
    b"THREAD": _Reader.thread,
}

_FETCH: dict[bytes, Callable[[_Reader], r.FetchAttribute]] = {
    b"FLAGS": _Reader.f_flags,
    b"UID": _Reader.f_uid,
    b"RFC822.SIZE": _Reader.f_size,
    b"INTERNALDATE": _Reader.f_internaldate,
    b"SAVEDATE": _Reader.f_savedate,
    b"ENVELOPE": _Reader.f_envelope,
    b"BODYSTRUCTURE": _Reader.f_bodystructure,
    b"BODY": _Reader.f_body,
    b"BINARY": _Reader.f_binary,
    b"BINARY.SIZE": _Reader.f_binary_size,
    b"RFC822": _Reader.f_rfc822,
    b"RFC822.HEADER": _Reader.f_rfc822_header,
    b"RFC822.TEXT": _Reader.f_rfc822_text,
    b"MODSEQ": _Reader.f_modseq,
    b"EMAILID": _Reader.f_emailid,
    b"THREADID": _Reader.f_threadid,
}


# --- writing --------------------------------------------------------------------------


def format_response(
    resp: r.Response, *, utf8: bool = False, as_parsed: bool = True
) -> list[Fragment]:
    """The wire form of ``resp`` as fragments, the last ending with CRLF.

    ``utf8``: UTF-8 may go in quoted strings and mailbox names are written as UTF-8.
    ``as_parsed``: a parsed response is written as it was spelled (quoting, literals);
    False writes the canonical spelling instead.

    Raises:
        LocalProtocolError: a mailbox name has no wire form (a lone surrogate).
    """
    writer = _WRITERS.get(type(resp))
    if writer is None:
        raise LocalProtocolError(f"not a response: {resp!r}")
    e = Encoder(utf8=utf8, spelling=resp.spelling if as_parsed else None)
    writer(e, resp)
    return e.finish()


def _w_text(e: Encoder, code: r.Code | None, text: str) -> None:
    if code is not None:
        e.raw(b"[")
        _w_code(e, code)
        e.raw(b"]")
        if text:
            e.raw(b" ")
    e.raw(text.encode("utf-8", "surrogateescape"))


def _w_code(e: Encoder, code: r.Code) -> None:
    if isinstance(code, r._Bare):
        e.raw(code.NAME.encode())
    elif isinstance(code, r._NumberCode):
        e.raw(code.NAME.encode()).sp().number(code.value)
    elif isinstance(code, r.BadCharset):
        e.raw(b"BADCHARSET")
        if code.charsets and e.spelled("badcharset-bare"):
            for charset in code.charsets:
                e.sp()
                _w_charset(e, charset)
        elif code.charsets:
            e.sp().parens(code.charsets, _w_charset)
    elif isinstance(code, r.CapabilityCode):
        e.raw(b"CAPABILITY")
        for cap in code.capabilities:
            e.sp().raw(cap.encode())
    elif isinstance(code, r.PermanentFlags):
        e.raw(b"PERMANENTFLAGS ").raw(_flag_list(code.flags))
    elif isinstance(code, r.HighestModSeq):
        e.raw(b"HIGHESTMODSEQ ").number(code.value)
    elif isinstance(code, r.Modified):
        e.raw(b"MODIFIED ").raw(code.uids.to_bytes())
    elif isinstance(code, r.AppendUid):
        e.raw(b"APPENDUID ").number(code.uidvalidity).sp().raw(code.uids.to_bytes())
    elif isinstance(code, r.CopyUid):
        e.raw(b"COPYUID ").number(code.uidvalidity).sp().raw(code.source.to_bytes())
        e.sp().raw(code.destination.to_bytes())
    elif isinstance(code, r.MailboxIdCode):
        e.raw(b"MAILBOXID (").raw(code.value.encode()).raw(b")")
    elif isinstance(code, r.OtherCode):
        e.raw(code.name.encode())
        if code.text is not None:
            e.sp().raw(code.text)
    else:  # pragma: no cover - every Code subclass is listed above
        raise LocalProtocolError(f"not a response code: {code!r}")


def _w_charset(e: Encoder, charset: bytes) -> None:
    if _ATOM_STR.fullmatch(charset) is not None and not e.spelled_string(charset):
        e.raw(charset)
    else:
        e.quoted_or_literal(charset)


def _flag_list(flags: tuple[str, ...]) -> bytes:
    return b"(" + " ".join(flags).encode("ascii") + b")"


def _w_tagged(e: Encoder, resp: r.Tagged) -> None:
    e.raw(resp.tag.encode("ascii")).sp().raw(resp.status.encode()).sp()
    _w_text(e, resp.code, resp.text)


def _w_untagged(e: Encoder, resp: r.Untagged) -> None:
    e.raw(b"* ").raw(resp.status.encode()).sp()
    _w_text(e, resp.code, resp.text)


def _w_continuation(e: Encoder, resp: r.Continuation) -> None:
    e.raw(b"+ ")
    _w_text(e, resp.code, resp.text)


def _w_capability(e: Encoder, resp: r.Capability | r.Enabled) -> None:
    e.raw(b"* CAPABILITY" if isinstance(resp, r.Capability) else b"* ENABLED")
    for cap in resp.capabilities:
        e.sp().raw(cap.encode())


def _w_flags(e: Encoder, resp: r.Flags) -> None:
    e.raw(b"* FLAGS ").raw(_flag_list(resp.flags))


def _w_mailbox(e: Encoder, name: str) -> None:
    if name == "INBOX" and e.spelling is not None and e.spelling.inbox:
        e.astring(e.inbox())
        return
    try:
        raw = encode_mailbox(name, utf8=e.utf8)
    except ValueError as exc:
        raise LocalProtocolError(str(exc)) from None
    e.astring(raw)


def _w_delimiter(e: Encoder, delimiter: str | None) -> None:
    if delimiter is None:
        e.raw(b"NIL")
    elif delimiter in '"\\':
        e.raw(b'"\\' + delimiter.encode() + b'"')
    else:
        e.raw(b'"' + delimiter.encode() + b'"')


def _w_listing(e: Encoder, resp: r.List | r.Lsub) -> None:
    e.raw(b"* LIST " if isinstance(resp, r.List) else b"* LSUB ")
    e.raw(_flag_list(resp.attributes)).sp()
    _w_delimiter(e, resp.delimiter)
    e.sp()
    _w_mailbox(e, resp.mailbox)
    if resp.childinfo is None and resp.oldname is None and not resp.extended:
        return
    e.raw(b" (")
    first = True
    if resp.childinfo is not None:
        e.quoted_or_literal(b"CHILDINFO", atom_ok=True).sp()
        e.parens(resp.childinfo, Encoder.quoted_or_literal)
        first = False
    if resp.oldname is not None:
        if not first:
            e.sp()
        first = False
        e.quoted_or_literal(b"OLDNAME", atom_ok=True).raw(b" (")
        _w_mailbox(e, resp.oldname)
        e.raw(b")")
    for tag, value in resp.extended:
        if not first:
            e.sp()
        first = False
        e.quoted_or_literal(tag, atom_ok=True).sp()
        if isinstance(value, bytes):
            e.raw(value)
        else:
            e.parens(value, _w_list_ext_comp)
    e.raw(b")")


def _w_list_ext_comp(e: Encoder, value: r.ListExtValue) -> None:
    if isinstance(value, bytes):
        e.astring(value)
    else:
        e.parens(value, _w_list_ext_comp)


def _w_status(e: Encoder, resp: r.Status) -> None:
    e.raw(b"* STATUS ")
    _w_mailbox(e, resp.mailbox)
    e.raw(b" (")
    first = True
    for name, value in resp.items:
        if not first:
            e.sp()
        first = False
        e.raw(name.encode()).sp()
        if isinstance(value, str):
            e.raw(b"(" + value.encode() + b")")
        else:
            e.number(value)
    e.raw(b")")


def _w_search(e: Encoder, resp: r.Search | r.Sort) -> None:
    e.raw(b"* SEARCH" if isinstance(resp, r.Search) else b"* SORT")
    for n in resp.numbers:
        e.sp().number(n)
    if resp.modseq is not None:
        e.raw(b" (MODSEQ ").number(resp.modseq).raw(b")")


def _w_esearch(e: Encoder, resp: r.ESearch) -> None:
    e.raw(b"* ESEARCH")
    if resp.tag is not None:
        e.raw(b" (TAG ").quoted_or_literal(resp.tag).raw(b")")
    if resp.uid:
        e.raw(b" UID")
    for name, value in (
        (b"MIN", resp.min),
        (b"MAX", resp.max),
        (b"COUNT", resp.count),
        (b"ALL", resp.all),
        (b"MODSEQ", resp.modseq),
    ):
        if value is None:
            continue
        e.sp().raw(name).sp()
        if isinstance(value, int):
            e.number(value)
        else:
            e.raw(value.to_bytes())


def _w_exists(e: Encoder, resp: r.Exists) -> None:
    e.raw(b"* ").number(resp.count).raw(b" EXISTS")


def _w_recent(e: Encoder, resp: r.Recent) -> None:
    e.raw(b"* ").number(resp.count).raw(b" RECENT")


def _w_expunge(e: Encoder, resp: r.Expunge) -> None:
    e.raw(b"* ").number(resp.seq).raw(b" EXPUNGE")


def _w_vanished(e: Encoder, resp: r.Vanished) -> None:
    e.raw(b"* VANISHED (EARLIER) " if resp.earlier else b"* VANISHED ")
    e.raw(resp.uids.to_bytes())


def _w_namespace(e: Encoder, resp: r.Namespace) -> None:
    e.raw(b"* NAMESPACE")
    for entries in (resp.personal, resp.other, resp.shared):
        e.sp()
        if entries is None:
            e.raw(b"NIL")
            continue
        e.raw(b"(")
        for entry in entries:
            e.raw(b"(")
            try:
                prefix = encode_mailbox(entry.prefix, utf8=e.utf8)
            except ValueError as exc:
                raise LocalProtocolError(str(exc)) from None
            e.quoted_or_literal(prefix).sp()
            _w_delimiter(e, entry.delimiter)
            for name, values in entry.extensions:
                e.sp().quoted_or_literal(name).sp().parens(values, Encoder.quoted_or_literal)
            e.raw(b")")
        e.raw(b")")


def _w_id(e: Encoder, resp: r.Id) -> None:
    e.raw(b"* ID ")
    if resp.params is None:
        e.raw(b"NIL")
        return

    def pair(e: Encoder, item: tuple[bytes, bytes | None]) -> None:
        e.quoted_or_literal(item[0]).sp().nstring(item[1])

    e.parens(resp.params, pair)


def _w_quota(e: Encoder, resp: r.Quota) -> None:
    e.raw(b"* QUOTA ").astring(resp.root).sp()

    def resource(e: Encoder, res: r.QuotaResource) -> None:
        e.raw(res.name.encode()).sp().number(res.usage).sp().number(res.limit)

    e.parens(resp.resources, resource)


def _w_quotaroot(e: Encoder, resp: r.QuotaRoot) -> None:
    e.raw(b"* QUOTAROOT ")
    _w_mailbox(e, resp.mailbox)
    for root in resp.roots:
        e.sp().astring(root)


def _w_thread_node(e: Encoder, node: r.ThreadNode) -> None:
    e.raw(b"(")
    e.raw(b" ".join(str(n).encode() for n in node.messages))
    if node.children:
        if node.messages:
            e.sp()
        for child in node.children:
            _w_thread_node(e, child)
    e.raw(b")")


def _w_thread(e: Encoder, resp: r.Thread) -> None:
    e.raw(b"* THREAD")
    if resp.threads:
        e.sp()
        for node in resp.threads:
            _w_thread_node(e, node)


def _w_addresses(e: Encoder, addresses: tuple[r.Address, ...] | None) -> None:
    if addresses is None:
        e.raw(b"NIL")
        return
    e.raw(b"(")
    for a in addresses:
        e.raw(b"(").nstring(a.name).sp().nstring(a.adl).sp().nstring(a.mailbox).sp()
        e.nstring(a.host).raw(b")")
    e.raw(b")")


def _w_envelope(e: Encoder, env: r.Envelope) -> None:
    e.raw(b"(").nstring(env.date).sp().nstring(env.subject)
    for addresses in (env.from_, env.sender, env.reply_to, env.to, env.cc, env.bcc):
        e.sp()
        _w_addresses(e, addresses)
    e.sp().nstring(env.in_reply_to).sp().nstring(env.message_id).raw(b")")


def _w_params(e: Encoder, params: tuple[tuple[bytes, bytes], ...] | None) -> None:
    if params is None:
        e.raw(b"NIL")
        return

    def pair(e: Encoder, item: tuple[bytes, bytes]) -> None:
        e.quoted_or_literal(item[0]).sp().quoted_or_literal(item[1])

    e.parens(params, pair)


def _w_extension_value(e: Encoder, value: r.ExtensionValue) -> None:
    if isinstance(value, tuple):
        e.parens(value, _w_extension_value)
    elif isinstance(value, int):
        e.number(value)
    else:
        e.nstring(value)


def _w_body_ext(e: Encoder, body: r.BodyType) -> None:
    """Extension data from the disposition on (after MD5 or the multipart parameters)."""
    n = body.ext_fields
    if n >= 2:
        e.sp()
        if body.disposition is None:
            e.raw(b"NIL")
        else:
            e.raw(b"(").quoted_or_literal(body.disposition.type).sp()
            _w_params(e, body.disposition.params)
            e.raw(b")")
    if n >= 3:
        e.sp()
        if body.language is None:
            e.raw(b"NIL")
        elif len(body.language) == 1:
            e.quoted_or_literal(body.language[0])
        else:
            e.parens(body.language, Encoder.quoted_or_literal)
    if n >= 4:
        e.sp().nstring(body.location)
        for ext in body.extensions:
            e.sp()
            _w_extension_value(e, ext)


def _w_body(e: Encoder, body: r.BodyType) -> None:
    e.raw(b"(")
    if isinstance(body, r.BodyMultipart):
        for part in body.parts:
            _w_body(e, part)
        e.sp().quoted_or_literal(body.subtype)
        if body.ext_fields >= 1:
            e.sp()
            _w_params(e, body.params)
        _w_body_ext(e, body)
        e.raw(b")")
        return
    if isinstance(body, r.BodyBasic):
        e.quoted_or_literal(body.media_type)
    elif isinstance(body, r.BodyText):
        e.raw(b'"TEXT"')
    else:
        e.raw(b'"MESSAGE"')
    e.sp().quoted_or_literal(body.subtype).sp()
    _w_params(e, body.params)
    e.sp().nstring(body.id).sp().nstring(body.description).sp()
    e.quoted_or_literal(body.encoding).sp().number(body.size)
    if isinstance(body, r.BodyText):
        e.sp().number(body.lines)
    elif isinstance(body, r.BodyMessage):
        e.sp()
        _w_envelope(e, body.envelope)
        e.sp()
        _w_body(e, body.body)
        e.sp().number(body.lines)
    if body.ext_fields >= 1:
        e.sp().nstring(body.md5)
    _w_body_ext(e, body)
    e.raw(b")")


def _w_partial(e: Encoder, origin: int | None) -> None:
    if origin is not None:
        e.raw(b"<").number(origin).raw(b">")


def _w_fetch_attribute(e: Encoder, a: r.FetchAttribute) -> None:
    if isinstance(a, r.FetchFlags):
        e.raw(b"FLAGS ").raw(_flag_list(a.flags))
    elif isinstance(a, r.Uid):
        e.raw(b"UID ").number(a.value)
    elif isinstance(a, r.Rfc822Size):
        e.raw(b"RFC822.SIZE ").number(a.value)
    elif isinstance(a, r.InternalDate):
        e.raw(b"INTERNALDATE ").word(format_date_time(a.value))
    elif isinstance(a, r.SaveDate):
        e.raw(b"SAVEDATE ")
        if a.value is None:
            e.raw(b"NIL")
        else:
            e.word(format_date_time(a.value))
    elif isinstance(a, r.EnvelopeItem):
        e.raw(b"ENVELOPE ")
        _w_envelope(e, a.envelope)
    elif isinstance(a, r.BodyStructure):
        e.raw(b"BODYSTRUCTURE ")
        _w_body(e, a.body)
    elif isinstance(a, r.Body):
        e.raw(b"BODY ")
        _w_body(e, a.body)
    elif isinstance(a, r.BodySection):
        e.raw(b"BODY[").raw(a.section.to_bytes()).raw(b"]")
        _w_partial(e, a.origin)
        e.sp().nstring(a.data)
    elif isinstance(a, r.Binary):
        e.raw(b"BINARY[").raw(b".".join(str(n).encode() for n in a.part)).raw(b"]")
        _w_partial(e, a.origin)
        e.sp().nstring(a.data)
    elif isinstance(a, r.BinarySize):
        e.raw(b"BINARY.SIZE[").raw(b".".join(str(n).encode() for n in a.part)).raw(b"] ")
        e.number(a.size)
    elif isinstance(a, r.Rfc822):
        e.raw(b"RFC822 ").nstring(a.data)
    elif isinstance(a, r.Rfc822Header):
        e.raw(b"RFC822.HEADER ").nstring(a.data)
    elif isinstance(a, r.Rfc822Text):
        e.raw(b"RFC822.TEXT ").nstring(a.data)
    elif isinstance(a, r.ModSeq):
        e.raw(b"MODSEQ (").number(a.value).raw(b")")
    elif isinstance(a, r.EmailId):
        e.raw(b"EMAILID (").raw(a.value.encode()).raw(b")")
    elif isinstance(a, r.ThreadId):
        e.raw(b"THREADID ")
        e.raw(b"NIL" if a.value is None else b"(" + a.value.encode() + b")")
    else:  # pragma: no cover - every FetchAttribute subclass is listed above
        raise LocalProtocolError(f"not a FETCH attribute: {a!r}")


def _w_fetch(e: Encoder, resp: r.Fetch) -> None:
    e.raw(b"* ").number(resp.seq).raw(b" FETCH ")
    e.parens(resp.attributes, _w_fetch_attribute)


_WRITERS: dict[type, Callable[[Encoder, Any], None]] = {
    r.Tagged: _w_tagged,
    r.Untagged: _w_untagged,
    r.Continuation: _w_continuation,
    r.Capability: _w_capability,
    r.Enabled: _w_capability,
    r.Flags: _w_flags,
    r.List: _w_listing,
    r.Lsub: _w_listing,
    r.Status: _w_status,
    r.Search: _w_search,
    r.Sort: _w_search,
    r.ESearch: _w_esearch,
    r.Exists: _w_exists,
    r.Recent: _w_recent,
    r.Expunge: _w_expunge,
    r.Vanished: _w_vanished,
    r.Namespace: _w_namespace,
    r.Id: _w_id,
    r.Quota: _w_quota,
    r.QuotaRoot: _w_quotaroot,
    r.Thread: _w_thread,
    r.Fetch: _w_fetch,
}
