"""Tests for mailproto.smtp._syntax: command lines, paths, parameters, replies, EHLO."""

from __future__ import annotations

import base64
import ipaddress
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mailproto import LocalProtocolError
from mailproto.smtp import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
)
from mailproto.smtp._syntax import (
    Extensions,
    Rejection,
    build_reply,
    decode_base64,
    format_command,
    format_reply,
    is_valid_mailbox,
    join_address,
    parse_command,
    parse_reply_line,
    split_address,
    xtext_decode,
    xtext_encode,
)

ALL = Extensions(
    {
        "SIZE": "10240000",
        "8BITMIME": "",
        "BINARYMIME": "",
        "CHUNKING": "",
        "SMTPUTF8": "",
        "DSN": "",
        "AUTH": "PLAIN LOGIN",
        "PIPELINING": "",
        "ENHANCEDSTATUSCODES": "",
    }
)
BASIC = Extensions({"PIPELINING": ""})  # EHLO with none of the parameter extensions
EXTRA_MAIL = frozenset({"XFOO", "X-BAR", "XYZZY1"})
EXTRA_RCPT = frozenset({"XRCPT", "X-ID"})


def parse(
    line: bytes | str,
    *,
    ext: Extensions | None = ALL,
    utf8: bool = False,
    extra_mail: frozenset[str] = frozenset(),
    extra_rcpt: frozenset[str] = frozenset(),
) -> SMTPEvent:
    raw = line.encode("utf-8") if isinstance(line, str) else line
    return parse_command(
        raw,
        extensions=ext,
        utf8=utf8,
        extra_mail_params=extra_mail,
        extra_rcpt_params=extra_rcpt,
    )


def rejected(
    line: bytes | str,
    code: int,
    enhanced: str,
    *,
    ext: Extensions | None = ALL,
    utf8: bool = False,
    extra_mail: frozenset[str] = frozenset(),
    extra_rcpt: frozenset[str] = frozenset(),
) -> Reply:
    with pytest.raises(Rejection) as info:
        parse(line, ext=ext, utf8=utf8, extra_mail=extra_mail, extra_rcpt=extra_rcpt)
    reply = info.value.reply
    assert (reply.code, reply.enhanced) == (code, enhanced), reply
    assert len(reply.lines) == 1
    assert reply.lines[0]
    return reply


def test_rejection_carries_its_reply() -> None:
    rej = Rejection(550, "5.1.1", "No such user")
    assert rej.reply == Reply(code=550, enhanced="5.1.1", lines=("No such user",))
    assert str(rej) == "No such user"
    assert isinstance(rej, Exception)


# --- paths: RFC 5321 section 4.1.2 ----------------------------------------------------

VALID_MAILBOXES = [
    "a@b",
    "user@example.com",
    "first.last@sub.example.co.uk",
    "x+tag@example.com",
    "!#$%&'*+/=?^_`{|}~-@example.com",
    "UPPER@EXAMPLE.COM",
    "a@a-b.c",
    "a@1.2.3.4",  # a domain of digit labels, not a literal
    "a@xn--bcher-kva.example",
    '"john smith"@example.com',
    '"a\\"b"@example.com',  # quoted-pairSMTP
    '"a\\\\b"@example.com',
    '"\\ "@example.com',
    '""@example.com',  # an empty quoted string is a Quoted-string
    '"a@b"@example.com',
    '"a..b"@example.com',
    "a@[192.0.2.1]",
    "a@[0.0.0.0]",
    "a@[255.255.255.255]",
    "a@[001.002.003.004]",  # Snum = 1*3DIGIT
    "a@[IPv6:2001:db8::1]",
    "a@[ipv6:::1]",
    "a@[IPv6:2001:db8:0:0:0:0:0:1]",
    "a@[IPv6:::ffff:192.0.2.1]",
    "a@[x-tag:some-content]",
    "a@[tag:x]",
]

INVALID_MAILBOXES = [
    "a",
    "@b",
    "a@",
    "a@@b",
    "a..b@c",
    ".a@b",
    "a.@b",
    "a b@c",
    "a@b c",
    "a@-b.c",
    "a@b-.c",
    "a@b..c",
    "a@.b",
    "a@b.",
    "a@b_c",
    "a\\b@c",
    '"a"b"@c',
    '"a@c',
    '"a"@"b"',
    "a@[]",
    "a@[999.1.1.1]",
    "a@[1.2.3.256]",
    "a@[1234.1.1.1]",
    "a@[1.2.3]",
    "a@[1.2.3.4.5]",
    "a@[1.2.3.-4]",
    "a@[IPv6:zz::1]",
    "a@[IPv6:1.2.3.4]",
    "a@[IPv6:fe80::1%eth0]",  # no zone index in IPv6-addr
    "a@[IPv6:1::2::3]",
    "a@[tag:]",  # 1*dcontent
    "a@[tag-:x]",  # a Standardized-tag ends with a letter or digit
    "a@[ta g:x]",
    "a@[a[b]",
    "é@example.com",
    "a@bücher.example",
]


@pytest.mark.parametrize("mailbox", VALID_MAILBOXES)
def test_valid_mailbox(mailbox: str) -> None:
    assert is_valid_mailbox(mailbox)
    assert is_valid_mailbox(mailbox, utf8=True)
    assert parse(f"MAIL FROM:<{mailbox}>") == MailFrom(sender=mailbox)
    assert parse(f"RCPT TO:<{mailbox}>") == RcptTo(recipient=mailbox)


@pytest.mark.parametrize("mailbox", INVALID_MAILBOXES)
def test_invalid_mailbox(mailbox: str) -> None:
    assert not is_valid_mailbox(mailbox)
    code = 553 if not mailbox.isascii() else 501
    status = "5.6.7" if code == 553 else "5.1.7"
    rejected(f"MAIL FROM:<{mailbox}>", code, status)
    rejected(f"RCPT TO:<{mailbox}>", code, "5.6.7" if code == 553 else "5.1.3")


@pytest.mark.parametrize(
    "mailbox",
    ["é@example.com", "a@bücher.example", "δοκιμή@παράδειγμα.δοκιμή", '"é x"@b', "中文@例子.中国"],
)
def test_utf8_mailbox(mailbox: str) -> None:
    assert is_valid_mailbox(mailbox, utf8=True)
    assert not is_valid_mailbox(mailbox)
    assert parse(f"MAIL FROM:<{mailbox}> SMTPUTF8") == MailFrom(sender=mailbox, smtputf8=True)
    assert parse(f"RCPT TO:<{mailbox}>", utf8=True) == RcptTo(recipient=mailbox)
    # Without SMTPUTF8: 553 5.6.7 (RFC 6531 section 3.6.1).
    rejected(f"MAIL FROM:<{mailbox}>", 553, "5.6.7")
    rejected(f"RCPT TO:<{mailbox}>", 553, "5.6.7")
    # SMTPUTF8 given but not offered: the address still needs it.
    rejected(f"MAIL FROM:<{mailbox}> SMTPUTF8", 553, "5.6.7", ext=BASIC)
    rejected(f"MAIL FROM:<{mailbox}> SMTPUTF8", 553, "5.6.7", ext=None)


def test_utf8_invalid_mailbox_is_501() -> None:
    rejected("MAIL FROM:<é> SMTPUTF8", 501, "5.1.7")
    rejected("RCPT TO:<é@b..c>", 501, "5.1.3", utf8=True)


def test_smtputf8_look_ahead_inside_a_quoted_local_part() -> None:
    # "SMTPUTF8" inside the address is not the parameter.
    sender = '"x SMTPUTF8 y"@b'
    assert parse(f"MAIL FROM:<{sender}>") == MailFrom(sender=sender)
    rejected('MAIL FROM:<"é SMTPUTF8 y"@b>', 553, "5.6.7")


def test_utf8_session_is_for_rcpt_only() -> None:
    # MAIL decides SMTPUTF8 by its own parameter, whatever the session says.
    rejected("MAIL FROM:<é@b>", 553, "5.6.7", utf8=True)
    assert parse("RCPT TO:<é@b>", utf8=True) == RcptTo(recipient="é@b")


def test_mail_from_forms() -> None:
    assert parse("MAIL FROM:<a@b>") == MailFrom(sender="a@b")
    assert parse("mail from:<a@b>") == MailFrom(sender="a@b")
    assert parse("Mail From:<a@b>") == MailFrom(sender="a@b")
    assert parse("MAIL FROM: <a@b>") == MailFrom(sender="a@b")  # tolerated
    assert parse("MAIL FROM:   <a@b>") == MailFrom(sender="a@b")
    assert parse("MAIL FROM:<>") == MailFrom(sender="")  # the null reverse-path
    assert not is_valid_mailbox("")  # which is not a mailbox
    assert parse("MAIL FROM: <>") == MailFrom(sender="")
    assert parse("MAIL FROM:<> SIZE=100") == MailFrom(sender="", size=100)
    assert parse("MAIL FROM:<a@b> ") == MailFrom(sender="a@b")
    assert parse("MAIL FROM:<a@b>  SIZE=1   BODY=7BIT") == MailFrom(
        sender="a@b", size=1, body="7BIT"
    )


def test_source_routes_are_accepted_and_dropped() -> None:
    # RFC 5321 section 4.1.1.3 and appendix C: A-d-l is accepted and ignored.
    assert parse("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>") == RcptTo(
        recipient="userc@d.bar.org"
    )
    assert parse("MAIL FROM:<@a.example:u@b.example>") == MailFrom(sender="u@b.example")
    rejected("MAIL FROM:<@a.example,u@b.example>", 501, "5.1.7")
    rejected("MAIL FROM:<@:u@b.example>", 501, "5.1.7")
    rejected("RCPT TO:<@[1.2.3.4]:u@b.example>", 501, "5.1.3")


@pytest.mark.parametrize(
    ("line", "code", "status"),
    [
        ("MAIL FROM:a@b", 501, "5.1.7"),  # no angle brackets
        ("MAIL FROM:<a@b", 501, "5.1.7"),
        ("MAIL FROM:a@b>", 501, "5.1.7"),
        ("MAIL FROM:", 501, "5.1.7"),
        ("MAIL FROM:<<a@b>>", 501, "5.1.7"),
        ("MAIL FROM:<postmaster>", 501, "5.1.7"),  # only RCPT may say <postmaster>
        ("MAIL FROM <a@b>", 501, "5.5.2"),
        ("MAIL FROM<a@b>", 501, "5.5.2"),
        ("MAIL TO:<a@b>", 501, "5.5.2"),
        ("MAIL", 501, "5.5.2"),
        ("MAIL ", 501, "5.5.2"),
        ("MAIL FROM:<a@b>x", 501, "5.5.2"),
        ("MAIL FROM:<>x", 501, "5.5.2"),
        ("RCPT TO:a@b", 501, "5.1.3"),
        ("RCPT TO:<>", 501, "5.1.3"),  # no null forward-path
        ("RCPT TO:", 501, "5.1.3"),
        ("RCPT TO:<postmaster", 501, "5.1.3"),
        ("RCPT FROM:<a@b>", 501, "5.5.2"),
        ("RCPT TO <a@b>", 501, "5.5.2"),
        ("RCPT", 501, "5.5.2"),
        ("RCPT TO:<a@b>;", 501, "5.5.2"),
    ],
)
def test_path_syntax_errors(line: str, code: int, status: str) -> None:
    rejected(line, code, status)


@pytest.mark.parametrize("word", ["postmaster", "Postmaster", "POSTMASTER", "PostMaster"])
def test_rcpt_postmaster(word: str) -> None:
    assert parse(f"RCPT TO:<{word}>") == RcptTo(recipient=word)
    assert parse(f"RCPT TO: <{word}> NOTIFY=NEVER") == RcptTo(recipient=word, notify=frozenset())


def test_path_length_limit_is_256_octets() -> None:
    # RFC 5321 section 4.5.3.1.3, counting the angle brackets.
    def path(n: int) -> str:
        mailbox = "l" * 64 + "@" + "d" * (n - 2 - 65)
        assert len(mailbox) + 2 == n
        return mailbox

    assert parse(f"MAIL FROM:<{path(256)}>") == MailFrom(sender=path(256))
    rejected(f"MAIL FROM:<{path(257)}>", 501, "5.1.7")
    assert parse(f"RCPT TO:<{path(256)}>") == RcptTo(recipient=path(256))
    rejected(f"RCPT TO:<{path(257)}>", 501, "5.1.3")
    # A source route counts too.
    route = "@" + "r" * 60 + ":"
    assert len(route) + len(path(256)) + 2 > 256
    rejected(f"RCPT TO:<{route}{path(256)}>", 501, "5.1.3")


def test_path_length_counts_utf8_octets() -> None:
    ok = "é" * 60 + "@" + "e" * 60  # 121 characters, 181 octets
    assert parse(f"MAIL FROM:<{ok}> SMTPUTF8") == MailFrom(sender=ok, smtputf8=True)
    long = "é" * 100 + "@" + "e" * 100  # 203 characters, 303 octets
    assert len(long) + 2 <= 256 < len(long.encode()) + 2
    rejected(f"MAIL FROM:<{long}> SMTPUTF8", 501, "5.1.7")
    rejected(f"RCPT TO:<{long}>", 501, "5.1.3", utf8=True)


# --- ESMTP parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("SIZE=0", MailFrom(sender="a@b", size=0)),
        ("SIZE=12345", MailFrom(sender="a@b", size=12345)),
        ("size=7", MailFrom(sender="a@b", size=7)),
        ("SIZE=007", MailFrom(sender="a@b", size=7)),
        ("SIZE=" + "9" * 20, MailFrom(sender="a@b", size=10**20 - 1)),
        ("BODY=7BIT", MailFrom(sender="a@b", body="7BIT")),
        ("BODY=8BITMIME", MailFrom(sender="a@b", body="8BITMIME")),
        ("body=8bitmime", MailFrom(sender="a@b", body="8BITMIME")),
        ("BODY=BINARYMIME", MailFrom(sender="a@b", body="BINARYMIME")),
        ("SMTPUTF8", MailFrom(sender="a@b", smtputf8=True)),
        ("smtputf8", MailFrom(sender="a@b", smtputf8=True)),
        ("AUTH=<>", MailFrom(sender="a@b", auth="")),
        ("AUTH=user+40example.com", MailFrom(sender="a@b", auth="user@example.com")),
        ("AUTH=a+2Bb+3Dc", MailFrom(sender="a@b", auth="a+b=c")),
        ("AUTH=+C3+A9@b", MailFrom(sender="a@b", auth="é@b")),
        ("RET=FULL", MailFrom(sender="a@b", ret="FULL")),
        ("RET=hdrs", MailFrom(sender="a@b", ret="HDRS")),
        ("ENVID=QQ314159", MailFrom(sender="a@b", envid="QQ314159")),
        ("ENVID=a+20b", MailFrom(sender="a@b", envid="a b")),
        ("ENVID=" + "e" * 100, MailFrom(sender="a@b", envid="e" * 100)),
        (
            "SIZE=1 BODY=8BITMIME SMTPUTF8 AUTH=<> RET=HDRS ENVID=x",
            MailFrom(
                sender="a@b",
                size=1,
                body="8BITMIME",
                smtputf8=True,
                auth="",
                ret="HDRS",
                envid="x",
            ),
        ),
    ],
)
def test_mail_parameters(params: str, expected: MailFrom) -> None:
    assert parse(f"MAIL FROM:<a@b> {params}") == expected


@pytest.mark.parametrize(
    "params",
    [
        "SIZE",
        "SIZE=",
        "SIZE=abc",
        "SIZE=-1",
        "SIZE=1.5",
        "SIZE=" + "1" * 21,
        "SIZE=²",  # a Unicode digit is not a DIGIT
        "SIZE=١٢",
        "BODY",
        "BODY=FOO",
        "BODY=8BIT",
        "SMTPUTF8=yes",
        "AUTH",
        "AUTH=",
        "AUTH=+zz",
        "AUTH=+2b",  # xtext hex is upper case
        "AUTH=a+",
        "AUTH=+FF",  # not UTF-8 once decoded
        "AUTH=+0D+0Ax",  # no CR, LF or NUL in what an event carries
        "AUTH=+00",
        "AUTH=é",
        "RET",
        "RET=ALL",
        "ENVID",
        "ENVID=" + "e" * 101,
        "ENVID=+0A",
        "ENVID=+4",
        "=x",
        "-FOO",
        "SIZE==1",
        "SIZE=1=2",
        "SIZE=1 SIZE=2",  # duplicates
        "SIZE=1 size=1",
        "SMTPUTF8 SMTPUTF8",
    ],
)
def test_bad_mail_parameters_501(params: str) -> None:
    rejected(f"MAIL FROM:<a@b> {params}", 501, "5.5.4")


@pytest.mark.parametrize(
    ("params", "ext"),
    [
        ("FOO=bar", ALL),
        ("XFLAG", ALL),
        ("NOTIFY=NEVER", ALL),  # an RCPT parameter
        ("SIZE=10", BASIC),
        ("BODY=8BITMIME", BASIC),
        ("BODY=BINARYMIME", Extensions({"8BITMIME": ""})),
        ("SMTPUTF8", BASIC),
        ("AUTH=<>", BASIC),
        ("RET=FULL", BASIC),
        ("ENVID=x", BASIC),
        ("SIZE=10", None),  # after HELO nothing is offered
        ("FOO", None),
    ],
)
def test_unknown_or_unoffered_mail_parameters_555(params: str, ext: Extensions | None) -> None:
    rejected(f"MAIL FROM:<a@b> {params}", 555, "5.5.4", ext=ext)


def test_body_with_binarymime_alone() -> None:
    # RFC 3030 section 3: BINARYMIME brings BODY=BINARYMIME without 8BITMIME.
    ext = Extensions({"BINARYMIME": "", "CHUNKING": ""})
    line = "MAIL FROM:<a@b> BODY=BINARYMIME"
    assert parse(line, ext=ext) == MailFrom(sender="a@b", body="BINARYMIME")
    assert parse("MAIL FROM:<a@b> BODY=7BIT", ext=ext) == MailFrom(sender="a@b", body="7BIT")
    rejected("MAIL FROM:<a@b> BODY=8BITMIME", 555, "5.5.4", ext=ext)
    rejected("MAIL FROM:<a@b> BODY=BIN", 501, "5.5.4", ext=ext)


def test_extra_mail_parameters() -> None:
    assert parse("MAIL FROM:<a@b> XFOO=1 x-bar XYZZY1=é", extra_mail=EXTRA_MAIL) == MailFrom(
        sender="a@b", extra=(("XFOO", "1"), ("X-BAR", None), ("XYZZY1", "é"))
    )
    rejected("MAIL FROM:<a@b> XOTHER=1", 555, "5.5.4", extra_mail=EXTRA_MAIL)
    rejected("MAIL FROM:<a@b> XFOO=1 XFOO=2", 501, "5.5.4", extra_mail=EXTRA_MAIL)
    rejected("MAIL FROM:<a@b> XFOO", 555, "5.5.4", ext=None, extra_mail=EXTRA_MAIL)
    # Extra keys never stand in for the typed ones, offered or not.
    rejected("MAIL FROM:<a@b> SIZE=1", 555, "5.5.4", ext=BASIC, extra_mail=frozenset({"SIZE"}))
    # RCPT's extras are not MAIL's.
    rejected("MAIL FROM:<a@b> XRCPT=1", 555, "5.5.4", extra_rcpt=EXTRA_RCPT)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("NOTIFY=NEVER", RcptTo(recipient="a@b", notify=frozenset())),
        ("NOTIFY=never", RcptTo(recipient="a@b", notify=frozenset())),
        ("NOTIFY=SUCCESS", RcptTo(recipient="a@b", notify=frozenset({"SUCCESS"}))),
        (
            "NOTIFY=DELAY,failure,Success",
            RcptTo(recipient="a@b", notify=frozenset({"SUCCESS", "FAILURE", "DELAY"})),
        ),
        ("ORCPT=rfc822;a+40b", RcptTo(recipient="a@b", orcpt=("rfc822", "a@b"))),
        ("ORCPT=RFC822;x", RcptTo(recipient="a@b", orcpt=("rfc822", "x"))),
        ("ORCPT=x-type;+C3+A9", RcptTo(recipient="a@b", orcpt=("x-type", "é"))),
        (
            "NOTIFY=FAILURE ORCPT=rfc822;a@b",
            RcptTo(recipient="a@b", notify=frozenset({"FAILURE"}), orcpt=("rfc822", "a@b")),
        ),
    ],
)
def test_rcpt_parameters(params: str, expected: RcptTo) -> None:
    assert parse(f"RCPT TO:<a@b> {params}") == expected


@pytest.mark.parametrize(
    "params",
    [
        "NOTIFY",
        "NOTIFY=",
        "NOTIFY=FOO",
        "NOTIFY=NEVER,SUCCESS",  # NEVER stands alone (RFC 3461 section 4.1)
        "NOTIFY=SUCCESS,NEVER",
        "NOTIFY=SUCCESS,SUCCESS",
        "NOTIFY=SUCCESS,",
        "NOTIFY=,SUCCESS",
        "ORCPT",
        "ORCPT=rfc822",
        "ORCPT=;a@b",
        "ORCPT=rfc822;",
        "ORCPT=rfc822;+zz",
        "ORCPT=rfc822;+0A",
        "ORCPT=rfc822;+00",
        "ORCPT=rf(c;x",  # addr-type is an atom
        "ORCPT=é;x",
        "ORCPT=rfc822;é",
        "NOTIFY=NEVER NOTIFY=NEVER",
        "ORCPT=a;b ORCPT=a;b",
    ],
)
def test_bad_rcpt_parameters_501(params: str) -> None:
    rejected(f"RCPT TO:<a@b> {params}", 501, "5.5.4")


@pytest.mark.parametrize(
    ("params", "ext"),
    [
        ("FOO=1", ALL),
        ("SIZE=1", ALL),  # a MAIL parameter
        ("NOTIFY=NEVER", BASIC),
        ("ORCPT=rfc822;a", BASIC),
        ("NOTIFY=NEVER", None),
    ],
)
def test_unknown_or_unoffered_rcpt_parameters_555(params: str, ext: Extensions | None) -> None:
    rejected(f"RCPT TO:<a@b> {params}", 555, "5.5.4", ext=ext)


def test_extra_rcpt_parameters() -> None:
    assert parse("RCPT TO:<a@b> XRCPT=1 x-id", extra_rcpt=EXTRA_RCPT) == RcptTo(
        recipient="a@b", extra=(("XRCPT", "1"), ("X-ID", None))
    )
    rejected("RCPT TO:<a@b> XFOO=1", 555, "5.5.4", extra_mail=EXTRA_MAIL)
    rejected(
        "RCPT TO:<a@b> NOTIFY=NEVER", 555, "5.5.4", ext=BASIC, extra_rcpt=frozenset({"NOTIFY"})
    )
    rejected("RCPT TO:<a@b> XRCPT=1 xrcpt=2", 501, "5.5.4", extra_rcpt=EXTRA_RCPT)


def test_parameters_need_a_space_after_the_path() -> None:
    rejected("MAIL FROM:<a@b>SIZE=1", 501, "5.5.2")
    rejected("RCPT TO:<a@b>NOTIFY=NEVER", 501, "5.5.2")


# --- the other commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ("DATA", Data()),
        ("data", Data()),
        ("DATA ", Data()),
        ("RSET", Rset()),
        ("rset", Rset()),
        ("QUIT", Quit()),
        ("STARTTLS", StartTLS()),
        ("starttls", StartTLS()),
        ("EHLO client.example", Ehlo(domain="client.example")),
        ("ehlo client.example", Ehlo(domain="client.example")),
        ("EHLO  client.example ", Ehlo(domain="client.example")),
        ("EHLO [192.0.2.1]", Ehlo(domain="[192.0.2.1]")),
        ("EHLO under_score", Ehlo(domain="under_score")),  # lenient: no name checks
        ("HELO client.example", Helo(domain="client.example")),
        ("LHLO client.example", Lhlo(domain="client.example")),
        ("NOOP", Noop()),
        ("NOOP hello", Noop(argument="hello")),
        ("NOOP a b ", Noop(argument="a b ")),
        ("HELP", Help()),
        ("HELP MAIL", Help(argument="MAIL")),
        ("HELP  MAIL ", Help(argument="MAIL")),
        ("VRFY user", Vrfy(argument="user")),
        ("VRFY  John Smith ", Vrfy(argument="John Smith")),
        ("VRFY <user@example.com>", Vrfy(argument="<user@example.com>")),
        ("VRFY δοκιμή", Vrfy(argument="δοκιμή")),
        ("EXPN list", Expn(argument="list")),
        ("EXPN Example-People", Expn(argument="Example-People")),
        ("EXPN λίστα", Expn(argument="λίστα")),
        ("AUTH PLAIN", Auth(mechanism="PLAIN")),
        ("auth plain", Auth(mechanism="PLAIN")),
        ("AUTH SCRAM-SHA-256", Auth(mechanism="SCRAM-SHA-256")),
        ("AUTH X_OAUTH_2", Auth(mechanism="X_OAUTH_2")),
        ("AUTH " + "M" * 20, Auth(mechanism="M" * 20)),
        ("AUTH PLAIN =", Auth(mechanism="PLAIN", initial_response=b"")),
        (
            "AUTH PLAIN AHVzZXIAcGFzcw==",
            Auth(mechanism="PLAIN", initial_response=b"\x00user\x00pass"),
        ),
        ("AUTH  PLAIN  YQ== ", Auth(mechanism="PLAIN", initial_response=b"a")),
    ],
)
def test_commands(line: str, event: SMTPEvent) -> None:
    assert parse(line) == event
    assert parse(line, ext=None) == event


@pytest.mark.parametrize(
    ("line", "code", "status"),
    [
        ("DATA x", 501, "5.5.4"),
        ("DATA FROM:<a@b>", 501, "5.5.4"),
        ("RSET now", 501, "5.5.4"),
        ("QUIT please", 501, "5.5.4"),
        ("STARTTLS x", 501, "5.5.4"),
        ("EHLO", 501, "5.5.4"),
        ("EHLO ", 501, "5.5.4"),
        ("EHLO a b", 501, "5.5.4"),
        ("EHLO a\tb", 501, "5.5.4"),
        ("EHLO a\x0bb", 501, "5.5.4"),
        ("HELO", 501, "5.5.4"),
        ("HELO a b", 501, "5.5.4"),
        ("LHLO", 501, "5.5.4"),
        ("VRFY", 501, "5.5.4"),
        ("VRFY  ", 501, "5.5.4"),
        ("EXPN", 501, "5.5.4"),
        ("EXPN \t", 501, "5.5.4"),
        ("AUTH", 501, "5.5.4"),
        ("AUTH ", 501, "5.5.4"),
        ("AUTH PLAIN a b", 501, "5.5.4"),
        ("AUTH PLA!N", 501, "5.5.4"),
        ("AUTH PLAIN.1", 501, "5.5.4"),
        ("AUTH " + "M" * 21, 501, "5.5.4"),
        ("AUTH PLAIN !!!!", 501, "5.5.2"),  # RFC 4954: invalid base64 is 501 5.5.2
        ("AUTH PLAIN YQ", 501, "5.5.2"),  # missing padding
        ("AUTH PLAIN ==", 501, "5.5.2"),
        ("AUTH PLAIN YQ==YQ==", 501, "5.5.2"),
    ],
)
def test_command_syntax_errors(line: str, code: int, status: str) -> None:
    rejected(line, code, status)


@pytest.mark.parametrize(
    "line",
    [
        "NOOP é",
        "HELP é",
        "EHLO bücher.example",
        "HELO é",
        "LHLO é",
        "DATA é",
        "AUTH PLAIN é",
        "AUTH PLÄIN",
        "QUIT é",
        "é",
    ],
)
def test_non_ascii_where_not_allowed(line: str) -> None:
    rejected(line, 500, "5.5.2")


@pytest.mark.parametrize(
    "line",
    [
        b"NOOP \xff",
        b"MAIL FROM:<\xff@b>",
        b"RCPT TO:<\xc3@b>",
        b"VRFY \xed\xa0\x80",  # an encoded surrogate
        b"\x80",
    ],
)
def test_invalid_utf8(line: bytes) -> None:
    rejected(line, 500, "5.5.2")


@pytest.mark.parametrize(
    "line",
    [
        b"NOOP a\rb",
        b"NOOP a\nb",
        b"NOOP \x00",
        b"VRFY a\nb",
        b"EXPN x\r",
        b"HELP \n",
        b"EHLO a\x00",
        b"RSET\r",
        b"MAIL FROM:<a@b>\r",
        b"RCPT TO:<a@b>\nDATA",
        b"\n",
    ],
)
def test_bare_cr_lf_nul_in_a_command(line: bytes) -> None:
    # The buffer ends lines at CRLF only, so these reach the parser; they are refused,
    # never turned into events (which could not hold them).
    rejected(line, 500, "5.5.2")


@pytest.mark.parametrize(
    "line", ["FOO", "", " ", "MAILFROM:<a@b>", "HELLO x", "BDAT 10", "EHLO\tx", " DATA"]
)
def test_unknown_verbs_500(line: str) -> None:
    reply = rejected(line, 500, "5.5.2")
    assert "unrecognized" in reply.text


@pytest.mark.parametrize("verb", ["TURN", "ETRN", "SEND", "SOML", "SAML", "ATRN", "BURL", "etrn"])
def test_not_implemented_verbs_502(verb: str) -> None:
    rejected(verb, 502, "5.5.1")
    rejected(f"{verb} example.com", 502, "5.5.1")


def test_decode_base64() -> None:
    assert decode_base64("") == b""
    assert decode_base64("YWJj") == b"abc"
    assert decode_base64("AAE=") == b"\x00\x01"
    for bad in ("=", "YWJ", "YW Jj", "YWJj\n", "é", "YW*j"):
        with pytest.raises(Rejection) as info:
            decode_base64(bad)
        assert (info.value.reply.code, info.value.reply.enhanced) == (501, "5.5.2")


# --- xtext (RFC 3461 section 4) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "xtext"),
    [
        ("", ""),
        ("abc", "abc"),
        ("a+b=c", "a+2Bb+3Dc"),
        ("a b", "a+20b"),
        ("é", "+C3+A9"),
        ("~!", "~!"),
        ("\t", "+09"),
        ("\x7f", "+7F"),
    ],
)
def test_xtext_known_answers(text: str, xtext: str) -> None:
    assert xtext_encode(text) == xtext
    assert xtext_decode(xtext) == text


@pytest.mark.parametrize("bad", ["+", "+2", "+2b", "+GG", "a=b", "a b", "é", "+FF", "+C3"])
def test_xtext_decode_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        xtext_decode(bad)


def test_xtext_decode_takes_needless_escapes() -> None:
    assert xtext_decode("+41+42") == "AB"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_xtext_round_trip(text: str) -> None:
    encoded = xtext_encode(text)
    assert encoded.isascii()
    assert re.fullmatch(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*", encoded)
    assert xtext_decode(encoded) == text


# --- formatting commands --------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (Ehlo(domain="c.example"), b"EHLO c.example\r\n"),
        (Helo(domain="c.example"), b"HELO c.example\r\n"),
        (Lhlo(domain="c.example"), b"LHLO c.example\r\n"),
        (MailFrom(sender=""), b"MAIL FROM:<>\r\n"),
        (MailFrom(sender="a@b"), b"MAIL FROM:<a@b>\r\n"),
        (
            MailFrom(
                sender="é@b",
                size=10,
                body="8BITMIME",
                smtputf8=True,
                auth="a+b@c",
                ret="HDRS",
                envid="id 1",
                extra=(("XFOO", "1"), ("XBAR", None)),
            ),
            "MAIL FROM:<é@b> SIZE=10 BODY=8BITMIME SMTPUTF8 AUTH=a+2Bb@c RET=HDRS "
            "ENVID=id+201 XFOO=1 XBAR\r\n".encode(),
        ),
        (MailFrom(sender="a@b", auth=""), b"MAIL FROM:<a@b> AUTH=<>\r\n"),
        (RcptTo(recipient="a@b"), b"RCPT TO:<a@b>\r\n"),
        (RcptTo(recipient="a@b", notify=frozenset()), b"RCPT TO:<a@b> NOTIFY=NEVER\r\n"),
        (
            RcptTo(
                recipient="a@b",
                notify=frozenset({"DELAY", "SUCCESS", "FAILURE"}),
                orcpt=("rfc822", "x=y@z"),
                extra=(("XID", "7"),),
            ),
            b"RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;x+3Dy@z XID=7\r\n",
        ),
        (Data(), b"DATA\r\n"),
        (Rset(), b"RSET\r\n"),
        (Quit(), b"QUIT\r\n"),
        (StartTLS(), b"STARTTLS\r\n"),
        (Noop(), b"NOOP\r\n"),
        (Noop(argument="x"), b"NOOP x\r\n"),
        (Noop(argument="x "), b"NOOP x \r\n"),
        (Help(), b"HELP\r\n"),
        (Help(argument="MAIL"), b"HELP MAIL\r\n"),
        (Vrfy(argument="user"), b"VRFY user\r\n"),
        (Expn(argument="list"), b"EXPN list\r\n"),
        (Bdat(size=10), b"BDAT 10\r\n"),
        (Bdat(size=0, last=True), b"BDAT 0 LAST\r\n"),
        (Auth(mechanism="LOGIN"), b"AUTH LOGIN\r\n"),
        (Auth(mechanism="PLAIN", initial_response=b""), b"AUTH PLAIN =\r\n"),
        (Auth(mechanism="PLAIN", initial_response=b"\x00u\x00p"), b"AUTH PLAIN AHUAcA==\r\n"),
        (AuthResponse(data=b"abc"), b"YWJj\r\n"),
        (AuthResponse(data=b""), b"\r\n"),
        (AuthCancel(), b"*\r\n"),
    ],
)
def test_format_command(event: SMTPEvent, wire: bytes) -> None:
    assert format_command(event) == wire


@pytest.mark.parametrize(
    "event", [Reply(code=250), MessageData(b"x"), SMTPEvent()], ids=["reply", "data", "base"]
)
def test_format_command_refuses_non_commands(event: SMTPEvent) -> None:
    with pytest.raises(TypeError, match="not a command"):
        format_command(event)


# Strategies for valid events, by the grammar of RFC 5321.

_atext = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
_atom = st.text(_atext, min_size=1, max_size=8)
_utf8_atom = st.text(_atext + "éüßδοκιμή中文", min_size=1, max_size=8)
_qtext = st.sampled_from([chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\'])
_qcontent = _qtext | st.sampled_from([chr(c) for c in range(0x20, 0x7F)]).map(lambda c: "\\" + c)
_quoted = st.lists(_qcontent, max_size=8).map(lambda parts: '"' + "".join(parts) + '"')
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_domain = st.lists(_label, min_size=1, max_size=4).map(".".join)
_utf8_label = st.from_regex(r"[a-zé中ü0-9](?:[a-zé中ü0-9-]{0,6}[a-zé中ü0-9])?", fullmatch=True)
_literal = st.one_of(
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "[{}.{}.{}.{}]".format(*t)),
    st.integers(0, 2**128 - 1).map(lambda n: f"[IPv6:{ipaddress.IPv6Address(n)}]"),
    st.tuples(_label, st.from_regex(r"[!-Z^-~]{1,10}", fullmatch=True)).map(
        lambda t: f"[{t[0]}:{t[1]}]"
    ),
)
_mailbox = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.lists(_atom, min_size=1, max_size=3).map(".".join) | _quoted,
    _domain | _literal,
)
_utf8_mailbox = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.lists(_utf8_atom, min_size=1, max_size=3).map(".".join),
    st.lists(_utf8_label, min_size=1, max_size=3).map(".".join),
)
_line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=20)
_esmtp_value = st.from_regex(r"[\x21-\x3c\x3e-\x7e]{1,10}", fullmatch=True)
_mail_extra = st.lists(
    st.tuples(st.sampled_from(sorted(EXTRA_MAIL)), st.none() | _esmtp_value),
    unique_by=lambda kv: kv[0],
    max_size=3,
).map(tuple)
_rcpt_extra = st.lists(
    st.tuples(st.sampled_from(sorted(EXTRA_RCPT)), st.none() | _esmtp_value),
    unique_by=lambda kv: kv[0],
    max_size=2,
).map(tuple)
# String = Atom / Quoted-string: never starts or ends with a space. VRFY and EXPN may
# carry UTF-8 (RFC 6531 section 3.7.4); NOOP and HELP are ASCII.
_string_arg = (
    _atom | _quoted | st.from_regex(r"[A-Za-z][A-Za-z <>@.]{0,10}[A-Za-z>]", fullmatch=True)
)
_utf8_string_arg = _string_arg | st.from_regex(r"[é中][a-zé中 <>@.]{0,10}[é中>]", fullmatch=True)


@st.composite
def _mail_from(draw: st.DrawFn) -> MailFrom:
    smtputf8 = draw(st.booleans())
    sender = draw(st.just("") | _mailbox | (_utf8_mailbox if smtputf8 else _mailbox))
    envid = draw(st.none() | _line_text.filter(bool))
    if envid is not None:
        assume(len(xtext_encode(envid)) <= 100)
    return MailFrom(
        sender=sender,
        size=draw(st.none() | st.integers(0, 10**20 - 1)),
        body=draw(st.sampled_from([None, "7BIT", "8BITMIME", "BINARYMIME"])),
        smtputf8=smtputf8,
        auth=draw(st.none() | _line_text),
        ret=draw(st.sampled_from([None, "FULL", "HDRS"])),
        envid=envid,
        extra=draw(_mail_extra),
    )


_notify = st.none() | st.frozensets(st.sampled_from(["SUCCESS", "FAILURE", "DELAY"]))
_orcpt = st.none() | st.tuples(
    st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True), _line_text.filter(bool)
)
_rcpt_to = st.builds(
    RcptTo,
    recipient=_mailbox | _utf8_mailbox | st.just("postmaster"),
    notify=_notify,
    orcpt=_orcpt,
    extra=_rcpt_extra,
)
_hello_domain = _domain | _literal
_commands: st.SearchStrategy[SMTPEvent] = st.one_of(
    st.builds(Ehlo, domain=_hello_domain),
    st.builds(Helo, domain=_hello_domain),
    st.builds(Lhlo, domain=_hello_domain),
    _mail_from(),
    _rcpt_to,
    st.just(Data()),
    st.just(Rset()),
    st.just(Quit()),
    st.just(StartTLS()),
    st.builds(Noop, argument=st.just("") | _string_arg),
    st.builds(Help, argument=st.just("") | _string_arg),
    st.builds(Vrfy, argument=_utf8_string_arg),
    st.builds(Expn, argument=_utf8_string_arg),
    st.builds(
        Auth,
        mechanism=st.from_regex(r"[A-Z0-9_-]{1,20}", fullmatch=True),
        initial_response=st.none() | st.binary(max_size=40),
    ),
)


def _parse_wire(wire: bytes, event: SMTPEvent) -> SMTPEvent:
    assert wire.endswith(b"\r\n")
    line = wire[:-2]
    assert b"\r" not in line
    assert b"\n" not in line
    utf8 = isinstance(event, RcptTo) and not event.recipient.isascii()
    return parse(line, utf8=utf8, extra_mail=EXTRA_MAIL, extra_rcpt=EXTRA_RCPT)


@settings(max_examples=300, deadline=None)
@given(_commands)
def test_format_parse_round_trip(event: SMTPEvent) -> None:
    wire = format_command(event)
    assert _parse_wire(wire, event) == event


@settings(deadline=None)
@given(_mailbox)
def test_generated_mailboxes_are_valid(mailbox: str) -> None:
    assert is_valid_mailbox(mailbox)
    local, domain = split_address(mailbox)
    assert join_address(local, domain) == mailbox or mailbox.startswith('"')


# --- replies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "wire"),
    [
        (Reply(code=250, lines=("OK",)), b"250 OK\r\n"),
        (Reply(code=250), b"250\r\n"),
        (Reply(code=250, lines=("", "")), b"250-\r\n250\r\n"),
        (Reply(code=250, enhanced="2.0.0"), b"250 2.0.0\r\n"),
        (Reply(code=250, lines=("", "x"), enhanced="2.0.0"), b"250-2.0.0\r\n250 2.0.0 x\r\n"),
        (
            Reply(code=250, lines=("mail.example.com", "PIPELINING", "SIZE 100")),
            b"250-mail.example.com\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
        ),
        (
            Reply(code=550, lines="No such user\nhere", enhanced="5.1.1"),
            b"550-5.1.1 No such user\r\n550 5.1.1 here\r\n",
        ),
        (
            Reply(code=354, lines=("Start mail input; end with <CRLF>.<CRLF>",)),
            b"354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        ),
        (Reply(code=221, lines=("Bye ",)), b"221 Bye \r\n"),
        (Reply(code=250, lines=(" ",)), b"250  \r\n"),
        (Reply(code=250, lines=("héllo",)), "250 héllo\r\n".encode()),
    ],
)
def test_format_reply(reply: Reply, wire: bytes) -> None:
    assert format_reply(reply) == wire
    assert _parse_reply_wire(wire) == reply


def _parse_reply_wire(wire: bytes) -> Reply:
    lines = wire.split(b"\r\n")
    assert lines.pop() == b""
    texts = []
    code = 0
    for i, line in enumerate(lines):
        parsed = parse_reply_line(line)
        assert parsed is not None
        code, last, text = parsed
        assert last == (i == len(lines) - 1)
        texts.append(text)
    return build_reply(code, texts)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (b"250 OK", (250, True, "OK")),
        (b"250-OK", (250, False, "OK")),
        (b"250", (250, True, "")),
        (b"250-", (250, False, "")),
        (b"250 ", (250, True, "")),
        (b"599  x ", (599, True, " x ")),
        (b"200 a-b", (200, True, "a-b")),
        (b"250 caf\xc3\xa9", (250, True, "café")),
        (b"250 \xff", (250, True, "\ufffd")),
        (b"250 a\rb", (250, True, "a\rb")),
        (b"250 a\nb", (250, True, "a\nb")),
        (b"2500", None),
        (b"25", None),
        (b"", None),
        (b"abc", None),
        (b"150 x", None),
        (b"650 x", None),
        (b"250x", None),
        (b"25a OK", None),
        (b" 250 OK", None),
        (b"\xd9\xa2\xd9\xa5\xd9\xa0 x", None),  # Arabic-Indic digits are not a code
    ],
)
def test_parse_reply_line(line: bytes, parsed: tuple[int, bool, str] | None) -> None:
    assert parse_reply_line(line) == parsed


@pytest.mark.parametrize(
    ("code", "texts", "reply"),
    [
        (250, ["OK"], Reply(code=250, lines=("OK",))),
        (250, ["2.1.0 ok"], Reply(code=250, lines=("ok",), enhanced="2.1.0")),
        (250, ["2.1.0"], Reply(code=250, lines=("",), enhanced="2.1.0")),
        (250, ["2.1.0 "], Reply(code=250, lines=("",), enhanced="2.1.0")),
        (250, ["2.1.0  x"], Reply(code=250, lines=(" x",), enhanced="2.1.0")),
        (550, ["5.1.1 a", "5.1.1 b"], Reply(code=550, lines=("a", "b"), enhanced="5.1.1")),
        (550, ["5.1.1 a", "b"], Reply(code=550, lines=("a", "b"), enhanced="5.1.1")),
        (550, ["5.1.1 a", "5.1.1"], Reply(code=550, lines=("a", ""), enhanced="5.1.1")),
        (550, ["a", "5.1.1 b"], Reply(code=550, lines=("a", "5.1.1 b"))),
        (250, ["5.1.0 x"], Reply(code=250, lines=("5.1.0 x",))),  # class must match
        (450, ["4.7.1 later"], Reply(code=450, lines=("later",), enhanced="4.7.1")),
        (354, ["3.0.0 go"], Reply(code=354, lines=("3.0.0 go",))),  # no class 3
        (250, ["2.0.0x"], Reply(code=250, lines=("2.0.0x",))),
        (250, ["2.0.0 a", "2.0.0x"], Reply(code=250, lines=("a", "2.0.0x"), enhanced="2.0.0")),
        (250, ["2.0.0 a", "2.0.01 b"], Reply(code=250, lines=("a", "2.0.01 b"), enhanced="2.0.0")),
        (250, ["2.0.1234 x"], Reply(code=250, lines=("2.0.1234 x",))),
        (250, ["2.123.456 x"], Reply(code=250, lines=("x",), enhanced="2.123.456")),
        (250, ["2.\u0661.0 x"], Reply(code=250, lines=("2.\u0661.0 x",))),  # ASCII digits only
        (250, ["2.0.0 2.0.0 x"], Reply(code=250, lines=("2.0.0 x",), enhanced="2.0.0")),
    ],
)
def test_build_reply(code: int, texts: list[str], reply: Reply) -> None:
    assert build_reply(code, texts) == reply


def test_build_reply_refuses_what_a_reply_cannot_hold() -> None:
    for texts in (["a\x00"], ["a\rb"], ["ok", "a\nb"]):
        with pytest.raises(LocalProtocolError):
            build_reply(250, texts)


def _first_line(code: int) -> st.SearchStrategy[str]:
    # A first line that does not itself read as an enhanced code of the class.
    return _line_text.filter(lambda t: not re.match(rf"{str(code)[0]}\.[0-9]{{1,3}}\.[0-9]", t))


@st.composite
def _replies(draw: st.DrawFn) -> Reply:
    code = draw(st.integers(200, 599))
    enhanced = None
    if str(code)[0] in "245" and draw(st.booleans()):
        enhanced = draw(
            st.from_regex(rf"{str(code)[0]}\.[0-9]{{1,3}}\.[0-9]{{1,3}}", fullmatch=True)
        )
    first = draw(_line_text if enhanced else _first_line(code))
    rest = draw(st.lists(_line_text, max_size=4))
    return Reply(code=code, lines=(first, *rest), enhanced=enhanced)


@settings(max_examples=300, deadline=None)
@given(_replies())
def test_reply_round_trip(reply: Reply) -> None:
    wire = format_reply(reply)
    assert wire.endswith(b"\r\n")
    assert wire.count(b"\r\n") == len(reply.lines)
    assert _parse_reply_wire(wire) == reply


# --- EHLO keywords --------------------------------------------------------------------


def test_extensions_from_reply() -> None:
    reply = Reply(
        code=250,
        lines=(
            "mail.example.com greets you",
            "PIPELINING",
            "size 10240000",
            "8BITMIME",
            "AUTH PLAIN LOGIN",
            "AUTH=PLAIN LOGIN",
            "dsn",
            " STARTTLS ",
            "",
            "X-CUSTOM  a  b ",
        ),
    )
    ext = Extensions.from_reply(reply)
    assert ext.keywords == {
        "PIPELINING": "",
        "SIZE": "10240000",
        "8BITMIME": "",
        "AUTH": "PLAIN LOGIN",
        "DSN": "",
        "STARTTLS": "",
        "X-CUSTOM": "a  b",
    }
    assert "pipelining" in ext
    assert "Size" in ext
    assert "MAIL.EXAMPLE.COM" not in ext  # the first line is the greeting
    assert "CHUNKING" not in ext
    assert ext.max_size == 10240000
    assert ext.auth_mechanisms == frozenset({"PLAIN", "LOGIN"})


def test_extensions_old_auth_form() -> None:
    ext = Extensions.from_reply(Reply(code=250, lines=("x", "AUTH=plain login cram-md5")))
    assert ext.auth_mechanisms == frozenset({"PLAIN", "LOGIN", "CRAM-MD5"})
    assert "AUTH" in ext
    ext = Extensions.from_reply(Reply(code=250, lines=("x", "auth=LOGIN")))
    assert ext.keywords == {"AUTH": "LOGIN"}


@pytest.mark.parametrize(
    ("line", "size"),
    [
        ("SIZE 1000", 1000),
        ("SIZE", 0),
        ("SIZE 0", 0),
        ("SIZE abc", 0),
        ("SIZE ²", 0),
        ("SIZE -5", 0),
    ],
)
def test_extensions_size(line: str, size: int) -> None:
    assert Extensions.from_reply(Reply(code=250, lines=("x", line))).max_size == size


def test_extensions_empty() -> None:
    ext = Extensions.from_reply(Reply(code=250, lines=("only the greeting",)))
    assert ext == Extensions()
    assert ext.keywords == {}
    assert ext.max_size is None
    assert ext.auth_mechanisms == frozenset()
    assert "SIZE" not in ext


# --- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("a@b", ("a", "b")),
        ('"john smith"@example.com', ("john smith", "example.com")),
        ('"a\\"b"@c', ('a"b', "c")),
        ('"a\\\\b"@c', ("a\\b", "c")),
        ('"a@b"@c', ("a@b", "c")),
        ('""@c', ("", "c")),
        ('"@c', ('"', "c")),
        ("a@[IPv6:::1]", ("a", "[IPv6:::1]")),
        ("a@[tag:x@y]", ("a", "[tag:x@y]")),  # dcontent includes "@"
        ('"a@b"@[tag:c@d]', ("a@b", "[tag:c@d]")),
        ('"a\\\\"@c', ("a\\", "c")),
        ("postmaster", ("postmaster", "")),
        ("", ("", "")),
    ],
)
def test_split_address(address: str, parts: tuple[str, str]) -> None:
    assert split_address(address) == parts


@pytest.mark.parametrize(
    ("parts", "address"),
    [
        (("a", "b"), "a@b"),
        (("first.last", "b"), "first.last@b"),
        (("john smith", "example.com"), '"john smith"@example.com'),
        (('a"b', "c"), '"a\\"b"@c'),
        (("a\\b", "c"), '"a\\\\b"@c'),
        (("", "c"), '""@c'),
        (("a..b", "c"), '"a..b"@c'),
        ((".a", "c"), '".a"@c'),
        (("a@b", "c"), '"a@b"@c'),
        (("é", "c"), "é@c"),
    ],
)
def test_join_address(parts: tuple[str, str], address: str) -> None:
    assert join_address(*parts) == address
    assert split_address(address) == parts


@settings(max_examples=300, deadline=None)
@given(local=st.text(max_size=20), domain=_domain | _literal)
def test_join_split_round_trip(local: str, domain: str) -> None:
    address = join_address(local, domain)
    assert split_address(address) == (local, domain)


@settings(max_examples=300, deadline=None)
@given(
    local=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    domain=_domain,
)
def test_joined_printable_addresses_are_valid(local: str, domain: str) -> None:
    address = join_address(local, domain)
    assert is_valid_mailbox(address)
    assert parse(f"RCPT TO:<{address}>") == RcptTo(recipient=address)


# --- fuzz: anything in, an event or a Rejection out -----------------------------------

_VERBS = [
    "MAIL FROM:",
    "RCPT TO:",
    "DATA",
    "EHLO",
    "HELO",
    "LHLO",
    "RSET",
    "NOOP",
    "QUIT",
    "VRFY",
    "EXPN",
    "HELP",
    "STARTTLS",
    "AUTH",
    "ETRN",
]
_fragments = st.sampled_from(
    [
        " ",
        "<",
        ">",
        "@",
        ":",
        ",",
        "=",
        ";",
        "+",
        "\\",
        '"',
        "[",
        "]",
        ".",
        "<>",
        "a",
        "é",
        "SIZE=",
        "BODY=",
        "SMTPUTF8",
        "AUTH=",
        "RET=",
        "ENVID=",
        "NOTIFY=",
        "ORCPT=",
        "NEVER",
        "XFOO",
        "IPv6:",
        "postmaster",
        "\r",
        "\n",
        "\x00",
        "\t",
        "2",
        "+2B",
        "+0D",
        "²",
    ]
)
_lines = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda verb, parts, tail: (verb + "".join(parts)).encode() + tail,
        st.sampled_from(_VERBS),
        st.lists(_fragments | _atom, max_size=12),
        st.binary(max_size=4),
    ),
)
_exts = st.sampled_from([None, ALL, BASIC, Extensions({"8BITMIME": "", "DSN": ""})])


def _outcome(line: bytes, *, ext: Extensions | None, utf8: bool) -> SMTPEvent | Rejection:
    try:
        return parse(line, ext=ext, utf8=utf8, extra_mail=EXTRA_MAIL, extra_rcpt=EXTRA_RCPT)
    except Rejection as rej:
        return rej


@settings(max_examples=600, deadline=None)
@given(line=_lines, ext=_exts, utf8=st.booleans())
def test_parse_command_fuzz(line: bytes, ext: Extensions | None, utf8: bool) -> None:
    line = line.replace(b"\r\n", b"")  # the buffer never hands out a CRLF
    event = _outcome(line, ext=ext, utf8=utf8)
    if isinstance(event, Rejection):
        assert event.reply.code in {500, 501, 502, 553, 555}
        assert event.reply.enhanced is not None
        return
    assert isinstance(event, SMTPEvent)
    # Whatever was accepted can be written back, and reads the same once normalized.
    again = format_command(event)
    assert again.endswith(b"\r\n")
    assert _outcome(again[:-2], ext=ext, utf8=utf8) == event


_reply_lines = st.binary(max_size=40) | st.builds(
    lambda code, sep, text: b"%d%s%s" % (code, sep, text),
    st.integers(100, 999),
    st.sampled_from([b" ", b"-", b""]),
    st.binary(max_size=20) | _line_text.map(str.encode) | st.just(b"2.0.0 x"),
)


@settings(max_examples=500, deadline=None)
@given(lines=st.lists(_reply_lines, min_size=1, max_size=4))
def test_reply_parsing_fuzz(lines: list[bytes]) -> None:
    parsed = [parse_reply_line(line.replace(b"\r\n", b"")) for line in lines]
    for p in parsed:
        assert p is None or (200 <= p[0] <= 599 and isinstance(p[2], str))
    if any(p is None for p in parsed):
        return
    texts = [p[2] for p in parsed if p is not None]
    code = parsed[0][0] if parsed[0] is not None else 0
    try:
        reply = build_reply(code, texts)
    except LocalProtocolError:
        assert any(re.search("[\r\n\x00]", t) for t in texts)
        return
    assert reply.code == code
    assert len(reply.lines) == len(texts)
    # Idempotent: writing the reply and reading it back gives the same reply.
    assert _parse_reply_wire(format_reply(reply)) == reply


def test_base64_helpers_agree() -> None:
    assert decode_base64(base64.b64encode(bytes(range(256))).decode()) == bytes(range(256))
