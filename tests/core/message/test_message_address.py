"""parse_addresses: RFC 5322 address lists into ENVELOPE addresses.

The expected values of the broken forms are what Dovecot 2.3.19 answered for the same
header (checked against a private instance when these tests were written).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto.imap.responses import Address
from mailproto.message._address import parse_addresses

MM = b"MISSING_MAILBOX"
MD = b"MISSING_DOMAIN"


def a(
    name: bytes | None = None,
    adl: bytes | None = None,
    mailbox: bytes | None = None,
    host: bytes | None = None,
) -> Address:
    return Address(name=name, adl=adl, mailbox=mailbox, host=host)


GROUP_END = a()

CASES: list[tuple[bytes, tuple[Address, ...]]] = [
    # RFC 5322 3.4 forms
    (b"u@h", (a(None, None, b"u", b"h"),)),
    (b"Joe <u@h>", (a(b"Joe", None, b"u", b"h"),)),
    (b'"Joe \\"X\\" Q" <u@h>', (a(b'Joe "X" Q', None, b"u", b"h"),)),
    (b"Joe Q. Public <u@h>", (a(b"Joe Q. Public", None, b"u", b"h"),)),
    (b"Joe  \t Public <u@h>", (a(b"Joe Public", None, b"u", b"h"),)),
    (b'"a   b" <c@d>', (a(b"a b", None, b"c", b"d"),)),
    (b'"" <u@h>', (a(None, None, b"u", b"h"),)),
    (b"<a@b> <c@d>", (a(None, None, b"a", b"b"),)),
    (b'"q l"@h', (a(None, None, b"q l", b"h"),)),
    (b'"a\\b"@c', (a(None, None, b"ab", b"c"),)),
    (b"a.b@c", (a(None, None, b"a.b", b"c"),)),
    (b"a@[1.2.3.4]", (a(None, None, b"a", b"[1.2.3.4]"),)),
    (b"a@b, c@d", (a(None, None, b"a", b"b"), a(None, None, b"c", b"d"))),
    # RFC 2047 encoded words stay as sent
    (b"=?utf-8?q?J=C3=B6?= <u@h>", (a(b"=?utf-8?q?J=C3=B6?=", None, b"u", b"h"),)),
    (b"\xc3\xa9 <a@b>", (a(b"\xc3\xa9", None, b"a", b"b"),)),
    # comments: ignored in a name-addr, the display name of an addr-spec
    (b"Joe (c) <u@h>", (a(b"Joe", None, b"u", b"h"),)),
    (b"u (comment) @ h", (a(b"comment", None, b"u", b"h"),)),
    (b"(c1) u@h (c2)", (a(b"c2", None, b"u", b"h"),)),
    (b"a@b (\xc3\xa9)", (a(b"\xc3\xa9", None, b"a", b"b"),)),
    (b"(x  \t y) e@f", (a(None, None, b"e", b"f"),)),
    (b"a@b (outer (inner) x)", (a(b"outer (inner) x", None, b"a", b"b"),)),
    (b"a@b (x (y\\) z) w)", (a(b"x (y) z) w", None, b"a", b"b"),)),
    (b"(only comment)", ()),
    (b"(unterminated a@b", ()),
    # RFC 5322 4.4 obsolete route
    (b"<@r1,@r2:u@h>", (a(None, b"@r1,@r2", b"u", b"h"),)),
    (b"<@a,@b:c@d>", (a(None, b"@a,@b", b"c", b"d"),)),
    (b"x <@r:a>", (a(b"x", b"@r", b"a", MD),)),
    (b"<@a,b:c@d>", (a(None, b"INVALID_ROUTE", b"b", b"SYNTAX_ERROR"),)),
    (b"<@:a@b>", (a(None, b"INVALID_ROUTE", MM, b"SYNTAX_ERROR"),)),
    (b"<@.:a@b>", (a(None, b"INVALID_ROUTE", MM, b"SYNTAX_ERROR"),)),
    (b"<@a.:b@c>", (a(None, b"INVALID_ROUTE", MM, b"SYNTAX_ERROR"),)),
    (b"<@a,@:b@c>", (a(None, b"INVALID_ROUTE", MM, b"SYNTAX_ERROR"),)),
    (b"x <@a@b>", (a(b"x", b"INVALID_ROUTE", MM, MD),)),
    # odd dots and comments (found by comparing random headers with Dovecot)
    (b"@a(c)", (a(b"c", None, MM, b"a"),)),
    (b"@ (c)", (a(b"c", None, MM, MD),)),
    (b"@bc.(c)d.e", (a(b"c", None, MM, b"bc.d.e"),)),
    (b"a.,>@", (a(None, None, MM, MD), a(None, None, MM, MD))),
    (b"=?u?q?x?=(c).", (a(b"c", None, b"=?u?q?x?=.", MD),)),
    (b'"q r".', (a(b"q r", None, MM, MD),)),
    (b".(c)a", (a(b". a", None, MM, MD),)),
    (b":. ", (a(mailbox=b""), a(None, None, MM, MD), GROUP_END)),
    (b"a .b@c", (a(None, None, b"a.b", b"c"),)),
    (b"a. @c", (a(None, None, MM, MD),)),
    (b'"q r"x.y=?u?q?x?=Joe .Joe(c)"q r"', (a(b"q r x.y=?u?q?x?=Joe .Joe q r", None, MM, MD),)),
    # groups (RFC 3501 7.4.2 markers)
    (b"undisclosed-recipients:;", (a(mailbox=b"undisclosed-recipients"), GROUP_END)),
    (b"G:;", (a(mailbox=b"G"), GROUP_END)),
    (b":;", (a(mailbox=b""), GROUP_END)),
    (
        b"G: a@b, c@d",
        (a(mailbox=b"G"), a(None, None, b"a", b"b"), a(None, None, b"c", b"d"), GROUP_END),
    ),
    (b"G: a@b; c@d", (a(mailbox=b"G"), a(None, None, b"a", b"b"), GROUP_END)),
    (b"G: H: a@b;;", (a(mailbox=b"G"), a(None, None, b"H", MD), GROUP_END)),
    (b"G: a@b,", (a(mailbox=b"G"), a(None, None, b"a", b"b"), GROUP_END)),
    (b"G:", (a(mailbox=b"G"), GROUP_END)),
    # empty and broken
    (b"", ()),
    (b"   ", ()),
    (b"foo", (a(None, None, b"foo", MD),)),
    (b"Joe", (a(None, None, b"Joe", MD),)),
    (b"Joe Public", (a(b"Joe Public", None, MM, MD),)),
    (b"x y z", (a(b"x y z", None, MM, MD),)),
    (b"a . b @ c . d", (a(b"a. b", None, MM, MD),)),
    (b'a@b, "x"', (a(None, None, b"a", b"b"), a(b"x", None, MM, MD))),
    (b"<>", (a(None, None, MM, MD),)),
    (b"name <>", (a(b"name", None, MM, MD),)),
    (b"@", (a(None, None, MM, MD),)),
    (b"@b", (a(None, None, MM, b"b"),)),
    (b"a@", (a(None, None, b"a", MD),)),
    (b"a@b.c.", (a(None, None, b"a", MD),)),
    (b"a@b@c", (a(None, None, b"a", b"b"),)),
    (b"a@b;", (a(None, None, b"a", b"b"),)),
    (b"<u@h", (a(None, None, b"u", b"SYNTAX_ERROR"),)),
    (b"<", (a(None, None, MM, b"SYNTAX_ERROR"),)),
    (b"<u@", (a(None, None, b"u", b"SYNTAX_ERROR"),)),
    (b"u@h>", (a(None, None, b"u", b"h"),)),
    (b"x <a>", (a(b"x", None, b"a", MD),)),
    (b"Joe <u@h> trailing", (a(b"Joe", None, b"u", b"h"),)),
    (b"a@b,,c@d", (a(None, None, b"a", b"b"), a(None, None, MM, MD), a(None, None, b"c", b"d"))),
    (b"a@b, , c@d", (a(None, None, b"a", b"b"), a(None, None, MM, MD), a(None, None, b"c", b"d"))),
    (b"a@b, ", (a(None, None, b"a", b"b"),)),
    (b"a@b, (unclosed", (a(None, None, b"a", b"b"), a(None, None, MM, MD))),
    (b'"unterminated <a@b>', (a(None, None, MM, MD),)),
    (b"a\x00b@c", (a(None, None, b"a", MD),)),
    (b'"q\x00q" <u@h>', (a(b"q\xef\xbf\xbdq", None, b"u", b"h"),)),
    (b".x <a@b>", (a(None, None, b".x", MD),)),
    (b"a..b@c", (a(None, None, b"a..b", b"c"),)),
    (b"=?utf-8?q?a.b?= <x@y>", (a(b"=?utf-8?q?a.b?=", None, b"x", b"y"),)),
    (b'"a" "b" <x@y>', (a(b"a b", None, b"x", b"y"),)),
    (b"a@b (c) (d)", (a(b"d", None, b"a", b"b"),)),
    (b"u@h (a\\) b)", (a(b"a) b", None, b"u", b"h"),)),
    (b"foo (bar)", (a(b"bar", None, b"foo", MD),)),
    (b"<a@b>x, c@d", (a(None, None, b"a", b"b"),)),
    (b"a@b\x01, c@d", (a(None, None, b"a", b"b"),)),
    (b"G: <a@b> junk; c@d", (a(mailbox=b"G"), a(None, None, b"a", b"b"), GROUP_END)),
    (b"a\\b", (a(None, None, b"a", MD),)),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_parse_addresses(value: bytes, expected: tuple[Address, ...]) -> None:
    assert parse_addresses(value) == expected


def test_folded_value() -> None:
    value = b'"Joe\r\n Public" <u@h>,\r\n\tother@example.org'
    assert parse_addresses(value) == (
        a(b"Joe Public", None, b"u", b"h"),
        a(None, None, b"other", b"example.org"),
    )


def test_long_list_is_linear() -> None:
    value = b", ".join(b"user%d@example.org" % i for i in range(20_000))
    out = parse_addresses(value)
    assert len(out) == 20_000
    assert out[-1] == a(None, None, b"user19999", b"example.org")


def test_deeply_nested_comment() -> None:
    value = b"a@b " + b"(" * 5000 + b"x" + b")" * 5000
    assert parse_addresses(value) == (a(b"(" * 4999 + b"x" + b")" * 4999, None, b"a", b"b"),)


ADDRESS_ALPHABET = b'abc @.,:;<>()"\\[] \t\r\n=?\x00\xc3\xa9'


@given(st.binary(max_size=200))
def test_never_raises(value: bytes) -> None:
    for address in parse_addresses(value):
        assert isinstance(address, Address)


@given(st.lists(st.sampled_from(list(ADDRESS_ALPHABET)), max_size=80).map(bytes))
def test_never_raises_on_address_syntax(value: bytes) -> None:
    out = parse_addresses(value)
    depth = 0
    for address in out:  # group markers come in pairs, never nested
        if address.host is None and address.mailbox is not None:
            assert depth == 0
            depth += 1
        elif address.host is None:
            assert depth == 1
            depth -= 1
    assert depth == 0
