"""RFC 5322 address lists as IMAP ENVELOPE addresses (RFC 3501 7.4.2, RFC 9051 7.5.2).

`parse_addresses` turns the value of From, To, Cc... into `Address` values: mailboxes
(addr-spec and name-addr, RFC 5322 3.4), groups ("name: a, b;" gives a start marker with
the group name in ``mailbox`` and ``host`` None, then the members, then an end marker with
both None), the obsolete route syntax ``<@a,@b:x@y>`` (RFC 5322 4.4) into ``adl``, quoted
local parts, comments (RFC 5322 3.2.2) and display names kept as sent, RFC 2047 encoded
words included.

Broken input never raises. What each broken form gives follows what Dovecot's IMAP server
answers, since clients meet those values in practice: a missing local part is
``MISSING_MAILBOX``, a missing domain ``MISSING_DOMAIN``, an angle address that does not
close ``SYNTAX_ERROR`` in the host, a bad route ``INVALID_ROUTE``; a lone word is a mailbox
without a domain, several words without "@" are a display name; a comment after an
addr-spec is its display name; dots may repeat in a local part or end it before "@";
display names have their white space runs made one space; parsing stops at the first
token that cannot continue the list. NUL is replaced by U+FFFD (an IMAP string cannot
hold NUL, RFC 3501 4.3).

The value is cut into tokens by one compiled regular expression (linear in its length);
the grammar then walks the token list once. Lists of plain mailboxes, the usual case,
are read by one regular expression per address instead (`_simple_addresses`), with the
same result.
"""

from __future__ import annotations

import re

from ..imap.responses import Address

__all__ = ["address_list", "nested_comment", "parse_addresses"]

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"
SYNTAX_ERROR = b"SYNTAX_ERROR"
INVALID_ROUTE = b"INVALID_ROUTE"
REPLACEMENT = b"\xef\xbf\xbd"  # U+FFFD in UTF-8, for NUL

# Token kinds. A special character is its own byte value (0-255).
_ATOM = 1000  # atext and dots: "a.b", "=?utf-8?q?x?=", "Q."
_QUOTED = 1001  # quoted-string, content unescaped
_LITERAL = 1002  # domain-literal, brackets kept
_END = -1

_TOKEN = re.compile(
    rb"[ \t\r\n]+"
    rb'|([^\x00-\x20\x7f()<>\[\]:;@\\,"]+)'  # 1: atom (8-bit bytes allowed, RFC 6532)
    rb'|"((?:[^"\\]|\\.)*)"'  # 2: quoted-string
    rb"|\(((?:[^()\\]|\\.)*)\)"  # 3: comment without nesting (the usual case)
    rb"|(\[(?:[^\[\]\\]|\\.)*\])"  # 4: domain-literal
    rb"|(.)",  # 5: any other single byte
    re.S,
)
_PAREN = re.compile(rb"[()\\]")
_ESCAPE = re.compile(rb"\\(.)", re.S)
_WSP_RUN = re.compile(rb"[ \t\r\n]+")
_BAD_DOTS = re.compile(rb"^\.|\.\.|\.$")

# Fast path (`_simple_addresses`): a list of plain ``local@domain`` (with at most one
# comment after it, its display name), ``Name <local@domain>`` and ``"Name"
# <local@domain>``, with dot-atoms, no other comments, no quoted-pairs, no NUL and no
# line ends in a quoted name or comment: the grammar below gives these values for them.
_ATEXT = rb'[^\x00-\x20\x7f()<>\[\]:;@\\,".]'
_DOT_ATOM = rb"%s+(?:\.%s+)*" % (_ATEXT, _ATEXT)
_WORD = rb'%s[^\x00-\x20\x7f()<>\[\]:;@\\,"]*' % _ATEXT  # an atom not starting with "."
_SIMPLE_ADDRESS = re.compile(
    rb"[ \t\r\n]*(?:"
    rb'(?:(%s(?:[ \t\r\n]+%s)*)|"([^"\\\r\n\x00]*)")?[ \t\r\n]*<(%s)@(%s)>'  # 1-4
    rb"|(%s)@(%s)(?:[ \t\r\n]*\(([^()\\\r\n\x00]*)\))?"  # 5-7
    rb")[ \t\r\n]*(?:,[ \t\r\n]*|\Z)" % (_WORD, _WORD, _DOT_ATOM, _DOT_ATOM, _DOT_ATOM, _DOT_ATOM)
)


def _unquote(content: bytes) -> bytes:
    """Quoted-pair and folding removed (RFC 5322 3.2.1, 3.2.4), NUL replaced."""
    if b"\\" in content:
        content = _ESCAPE.sub(rb"\1", content)
    if b"\r" in content or b"\n" in content:
        content = content.replace(b"\r", b"").replace(b"\n", b"")
    if b"\x00" in content:
        content = content.replace(b"\x00", REPLACEMENT)
    return content


def nested_comment(value: bytes, pos: int) -> int:
    """End of the (nested) comment opening at ``pos``, or -1 if it never closes."""
    depth = 0
    m = _PAREN.search(value, pos)
    while m is not None:
        c = value[m.start()]
        if c == 0x5C:  # backslash: skip the quoted character
            m = _PAREN.search(value, m.start() + 2)
            continue
        depth += 1 if c == 0x28 else -1
        if depth == 0:
            return m.end()
        m = _PAREN.search(value, m.end())
    return -1


class _Tokens:
    """The tokens of one header value, comments set aside.

    ``comment[i]`` is the last comment seen between token ``i - 1`` and token ``i``: an
    addr-spec takes it as its display name (Dovecot does, and old mailers wrote
    ``user@host (Full Name)``). ``spaced[i]`` tells whether white space or a comment came
    before token ``i``. ``garbage`` is set when an unclosed comment ended the value.
    """

    __slots__ = ("comment", "garbage", "kind", "spaced", "value")

    def __init__(self, data: bytes) -> None:
        kind: list[int] = []
        value: list[bytes] = []
        comment: list[bytes | None] = []
        spaced: list[bool] = []
        last: bytes | None = None
        space = False
        self.garbage = False
        pos = 0
        n = len(data)
        match = _TOKEN.match
        while pos < n:
            m = match(data, pos)
            assert m is not None  # the last alternative matches any byte
            pos = m.end()
            group = m.lastindex
            if group is None:  # white space
                space = True
                continue
            if group == 1:
                kind.append(_ATOM)
                value.append(m.group(1))
            elif group == 2:
                kind.append(_QUOTED)
                value.append(_unquote(m.group(2)))
            elif group == 3:
                last = _unquote(m.group(3))
                space = True
                continue
            elif group == 4:
                kind.append(_LITERAL)
                value.append(_unquote(m.group(4)))
            else:
                c = data[m.start()]
                if c == 0x28:  # "(" of a nested or unclosed comment
                    end = nested_comment(data, m.start())
                    if end < 0:
                        self.garbage = True
                        break
                    last = _unquote(data[m.start() + 1 : end - 1])
                    pos = end
                    space = True
                    continue
                kind.append(c)
                value.append(b"")
            comment.append(last)
            spaced.append(space)
            last = None
            space = False
        kind.append(_END)
        value.append(b"")
        comment.append(last)
        spaced.append(space)
        self.kind = kind
        self.value = value
        self.comment = comment
        self.spaced = spaced


def _humanize(name: bytes) -> bytes:
    """A display name as IMAP servers show it: white space runs made one space, trimmed."""
    return _WSP_RUN.sub(b" ", name).strip(b" ")


def _phrase(t: _Tokens, i: int, text: bytes = b"") -> tuple[bytes, int, int]:
    """Words from token ``i`` on (RFC 5322 phrase with obs-phrase dots).

    Returns the text (after ``text``, the words joined by one space), how many tokens
    were taken, and the index after them. A phrase does not start with ".".
    """
    kind = t.kind
    value = t.value
    start = i
    if kind[i] == _ATOM and value[i][0] == 0x2E:
        return text, 0, i
    while kind[i] == _ATOM or kind[i] == _QUOTED:
        i += 1
    if i == start:
        return text, 0, i
    words = value[start:i]
    if text:
        words.insert(0, text)
    return b" ".join(words), i - start, i


def _local_part(t: _Tokens, i: int) -> tuple[bytes, bool, int]:
    """local-part at token ``i``: its text, whether it is complete, the index after it.

    A dot-atom may have white space before a dot but not after one, and dots may repeat
    or end it when "@" or the end of the value follows at once (RFC 5322 4.4 obs-local-
    part; the leniency is Dovecot's). An incomplete local part still gives its text: a
    display name may start with it.
    """
    kind = t.kind
    value = t.value
    k = kind[i]
    if k == _QUOTED:
        return value[i], True, i + 1
    if k != _ATOM:
        return b"", False, i
    start = i
    i += 1
    while kind[i] == _ATOM and value[i][0] == 0x2E and value[i - 1][-1] != 0x2E:
        i += 1
    text = value[start] if i == start + 1 else b"".join(value[start:i])
    if text[-1] == 0x2E:  # after a dot only "@" or the end may follow, at once
        k = kind[i]
        return text, (k == _END or k == 0x40) and not t.spaced[i], i
    return text, True, i


def _domain(t: _Tokens, i: int) -> tuple[bytes | None, int]:
    """The domain at token ``i`` (dot-atom or domain-literal) or None, and the index after.

    White space and comments may surround the dots (RFC 5322 4.4 obs-domain).
    """
    kind = t.kind
    value = t.value
    if kind[i] == _LITERAL:
        return value[i], i + 1
    if kind[i] != _ATOM:
        return None, i
    start = i
    i += 1
    while kind[i] == _ATOM and (value[i - 1][-1] == 0x2E or value[i][0] == 0x2E):
        i += 1
    text = value[start] if i == start + 1 else b"".join(value[start:i])
    return (None if _BAD_DOTS.search(text) else text), i


class _Parser:
    __slots__ = ("out", "t")

    def __init__(self, t: _Tokens) -> None:
        self.t = t
        self.out: list[Address] = []

    def add(
        self,
        name: bytes | None,
        adl: bytes | None,
        mailbox: bytes | None,
        host: bytes | None,
    ) -> None:
        self.out.append(
            Address(
                name=None if name is None else _humanize(name),
                adl=adl,
                mailbox=MISSING_MAILBOX if mailbox is None else mailbox,
                host=host or MISSING_DOMAIN,
            )
        )

    def address_list(self) -> None:
        t = self.t
        kind = t.kind
        i = 0
        if kind[0] == _END:
            return
        while True:
            i = self.address(i)
            if kind[i] != 0x2C:  # ","
                return
            i += 1
            if kind[i] == _END:
                if t.garbage:  # "a@b, (unclosed"
                    self.add(None, None, None, None)
                return

    def address(self, i: int) -> int:
        """address = mailbox / group (RFC 5322 3.4)."""
        t = self.t
        name, _, j = _phrase(t, i)
        if t.kind[j] == 0x3A:  # ":" starts a group
            return self.group(name, j + 1)
        return self.mailbox(i)

    def group(self, name: bytes, i: int) -> int:
        kind = self.t.kind
        self.out.append(Address(mailbox=name))
        if kind[i] != 0x3B and kind[i] != _END:
            while True:
                i = self.mailbox(i)
                if kind[i] != 0x2C:
                    break
                i += 1
                if kind[i] == _END:
                    break
        if kind[i] == 0x3B:  # ";"
            i += 1
        self.out.append(Address())
        return i

    def mailbox(self, i: int) -> int:
        """mailbox = name-addr / addr-spec."""
        t = self.t
        name, _, j = _phrase(t, i)
        if t.kind[j] == 0x3C:  # "<"
            return self.angle_addr(name or None, j + 1)
        return self.addr_spec(i)

    def angle_addr(self, name: bytes | None, i: int) -> int:
        """angle-addr with obs-route (RFC 5322 3.4, 4.4); ``i`` is after "<"."""
        t = self.t
        kind = t.kind
        adl: bytes | None = None
        mailbox: bytes | None = None
        host: bytes | None = None
        ok = False
        if kind[i] == 0x40:  # "@": obs-domain-list ":"
            route: list[bytes] = []
            while kind[i] == 0x40:
                domain, j = _domain(t, i + 1)
                if domain is None:
                    break
                route.append(b"@" + domain)
                i = j
                while kind[i] == 0x2C:
                    i += 1
            if route and kind[i] == 0x3A:
                adl = b",".join(route)
                i += 1
            else:
                adl = INVALID_ROUTE
                if kind[i] == 0x40:
                    i += 1
                    if kind[i] == _ATOM:  # a route domain with misplaced dots: give up
                        self.add(name, adl, None, SYNTAX_ERROR)
                        return i + 1
        if kind[i] == 0x3E:  # "<>": no address at all
            ok = True
        else:
            local, ok, i = _local_part(t, i)
            if ok:
                mailbox = local
            if ok and kind[i] == 0x40:
                host, i = _domain(t, i + 1)
                ok = host is not None
        if ok and kind[i] == 0x3E:
            i += 1
        else:
            host = SYNTAX_ERROR
        self.add(name, adl, mailbox, host)
        return i

    def addr_spec(self, i: int) -> int:
        """addr-spec, and the words without "@" that mailers write instead."""
        t = self.t
        kind = t.kind
        start = i
        mailbox: bytes | None = None
        host: bytes | None = None
        quoted = kind[i] == _QUOTED
        local, ok, i = _local_part(t, i)
        if ok:
            mailbox = local
        at = kind[i] == 0x40 and (ok or i == start)  # "@host" alone still has a host
        if at:
            host, i = _domain(t, i + 1)
        name: bytes | None = None
        # Comments read past are the name; a failed local part stops before the next one.
        for k in range(i if ok or at else i - 1, start, -1):
            if t.comment[k] is not None:
                name = t.comment[k]
                break
        if name is None and not at:
            text, taken, i = _phrase(t, i, local)
            if taken:  # "Joe Public": a display name without an address
                return self._add_name_only(text, i)
            if quoted:  # a lone "quoted string" is a name
                return self._add_name_only(mailbox or b"", i)
            host = b""
        self.add(name, None, mailbox, host)
        return i

    def _add_name_only(self, name: bytes, i: int) -> int:
        self.add(name, None, None, None)
        return i


def _simple_addresses(value: bytes) -> list[Address] | None:
    """The addresses of a list of plain mailboxes (see _SIMPLE_ADDRESS), else None."""
    out: list[Address] = []
    pos = 0
    n = len(value)
    match = _SIMPLE_ADDRESS.match
    while pos < n:
        m = match(value, pos)
        if m is None:
            return None
        words, quoted, local, domain, bare_local, bare_domain, comment = m.groups()
        if local is None:
            out.append(
                Address(
                    name=None if comment is None else _humanize(comment),
                    adl=None,
                    mailbox=bare_local,
                    host=bare_domain,
                )
            )
        else:
            if words is not None:  # atoms: one space between them
                name: bytes | None = _WSP_RUN.sub(b" ", words)
            elif quoted:
                name = _humanize(quoted)
            else:  # no name, or an empty quoted string
                name = None
            out.append(Address(name=name, adl=None, mailbox=local, host=domain))
        pos = m.end()
    return out if out else None


def parse_addresses(value: bytes) -> tuple[Address, ...]:
    """The addresses of an address-list header value (unfolded), as ENVELOPE lists them.

    An empty tuple means no address (the ENVELOPE field is then NIL).
    """
    return tuple(address_list(value))


def address_list(value: bytes) -> list[Address]:
    """`parse_addresses` as a new list (ENVELOPE joins the lists of repeated fields)."""
    simple = _simple_addresses(value)
    if simple is not None:
        return simple
    parser = _Parser(_Tokens(value))
    parser.address_list()
    return parser.out
