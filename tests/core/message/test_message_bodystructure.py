"""body_structure(): FETCH BODYSTRUCTURE and BODY (RFC 3501 7.4.2, RFC 9051 7.5.2).

DOVECOT pairs a message with the BODYSTRUCTURE that Dovecot 2.3.19 answered for it (the
wire text, read back with our response parser); the other tests write the values out.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap import dump, format_response, parse_response
from mailproto.imap import responses as r
from mailproto.imap.responses import (
    Address,
    BodyBasic,
    BodyMessage,
    BodyMultipart,
    BodyText,
    BodyType,
    Disposition,
    Envelope,
)
from mailproto.message import parse_message
from mailproto.message._bodystructure import body_structure

CHARSET = ((b"charset", b"us-ascii"),)


def structure(data: bytes, extensible: bool = True) -> BodyType:
    return body_structure(parse_message(data), extensible=extensible)


def from_wire(text: bytes) -> BodyType:
    resp = parse_response(b"* 1 FETCH (BODYSTRUCTURE (" + text + b"))\r\n")
    assert isinstance(resp, r.Fetch)
    attribute = resp.attributes[0]
    assert isinstance(attribute, r.BodyStructure)
    return attribute.body


DOVECOT: list[tuple[bytes, bytes]] = [
    (
        b"Content-Type: text/plain\r\n"
        b"Content-ID: <id1>\r\n"
        b"Content-Description: desc  x\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b'Content-Disposition: Attachment; Filename="a b.txt"; size=3\r\n'
        b"Content-Language: en, DE (c) ,fr\r\n"
        b"Content-Location: http://x/y\r\n"
        b"\r\n"
        b"abc",
        b'"text" "plain" ("charset" "us-ascii") "<id1>" "desc  x" "7bi'
        b't" 3 0 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("Attachment" ("Filename" '
        b'"a b.txt" "size" "3")) ("en" "DE" "fr") "http://x/y"',
    ),
    (
        b"Content-Type: multipart/alternative\r\n\r\nno boundary\r\n",
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NI'
        b'L NIL NIL NIL) "alternative" NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: garbage\r\n\r\nx\r\n",
        b'"garbage" "" NIL NIL NIL "7bit" 3 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: ; charset=utf-8\r\n\r\nx\r\n",
        b'"" "" NIL NIL NIL "7bit" 3 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: ;\r\n"
        b"Content-Language:\r\n"
        b"\r\n"
        b"x",
        b'"application" "octet-stream" NIL NIL NIL "7bit" 1 NIL ("" NIL) NIL NIL',
    ),
    (
        b"Content-Type: multipart/digest; boundary=d\r\n"
        b"\r\n"
        b"--d\r\n"
        b"\r\n"
        b"From: a@b\r\n"
        b"\r\n"
        b"body\r\n"
        b"--d\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"t\r\n"
        b"--d--\r\n",
        b'("message" "rfc822" NIL NIL NIL "7bit" 17 (NIL NIL ((NIL NIL'
        b' "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL N'
        b'IL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "'
        b'7bit" 4 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL)("text" "plain"'
        b' ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) '
        b'"digest" ("boundary" "d") NIL NIL NIL',
    ),
    (
        b"Content-Type: message/rfc822\r\n\r\n",
        b'"message" "rfc822" NIL NIL NIL "7bit" 0 (NIL NIL NIL NIL NIL'
        b' NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii")'
        b' NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL',
    ),
    (
        b'Content-Type: text/plain; charset="us-ascii"; format=flowed\r\n'
        b"Content-Transfer-Encoding: quoted-printable (comment)\r\n"
        b"\r\n"
        b"a\n"
        b"b\r\n"
        b"c",
        b'"text" "plain" ("charset" "us-ascii" "format" "flowed") NIL '
        b'NIL "quoted-printable" 7 2 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: multipart/mixed; boundary=b\r\n"
        b"\r\n"
        b"--b\r\n"
        b"Content-Type: multipart/mixed; boundary=c\r\n"
        b"\r\n"
        b"--c\r\n"
        b"\r\n"
        b"x\r\n"
        b"--c--\r\n"
        b"--b--\r\n",
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 N'
        b'IL NIL NIL NIL) "mixed" ("boundary" "c") NIL NIL NIL) "mixed'
        b'" ("boundary" "b") NIL NIL NIL',
    ),
    (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NI'
        b'L NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL',
    ),
    (
        b"Content-Type: Text/Plain; a=1; A=2\r\n"
        b"Content-Disposition: INLINE\r\n"
        b"Content-Language: (c)\r\n"
        b"\r\n"
        b"x",
        b'"Text" "Plain" ("a" "1" "A" "2" "charset" "us-ascii") NIL NI'
        b'L "7bit" 1 0 NIL ("INLINE" NIL) NIL NIL',
    ),
    (
        b"Content-Type: text/html\r\n"
        b"Content-Type: image/png\r\n"
        b"Content-ID: <a>\r\n"
        b"Content-ID: <b>\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"Content-Language: en\r\n"
        b"Content-Language: fr\r\n"
        b"Content-Disposition: inline\r\n"
        b"Content-Disposition: attachment\r\n"
        b"\r\n"
        b"x",
        b'"text" "html" ("charset" "us-ascii") "<a>" NIL "base64" 1 0 '
        b'NIL ("attachment" NIL) ("en") NIL',
    ),
    (
        b"Content-Type: text\r\n"
        b"Content-ID:   <a>  \r\n"
        b"Content-Description:\r\n"
        b" folded\r\n"
        b"  desc \r\n"
        b"Content-Location:  x y \r\n"
        b"Content-MD5:  abc \r\n"
        b"\r\n"
        b"x",
        b'"text" "" ("charset" "us-ascii") "<a>  " " folded  desc " "7'
        b'bit" 1 0 "abc " NIL NIL "x y "',
    ),
    (
        b'Content-Type: text/plain; charset="utf\\"8"; q="a\r\n b"; (c) n (d) = (e) v (f)\r\n\r\nx',
        b'"text" "plain" ("charset" "utf\\"8" "q" "a b" "n" "v") NIL NI'
        b'L "7bit" 1 0 NIL NIL NIL NIL',
    ),
    (
        b'Content-Type: application/x; n="unterminated\r\n\r\nx',
        b'"application" "x" NIL NIL NIL "7bit" 1 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: TEXT/PLAIN; x; =y; ;;z=1 2\r\n\r\nx",
        b'"TEXT" "PLAIN" ("z" "1" "charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: a/b/c; x=1\r\n\r\nx",
        b'"" "" NIL NIL NIL "7bit" 1 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: text/plain (c)\r\n"
        b'Content-Disposition: inline; filename="x" junk; f2=y\r\n'
        b"\r\n"
        b"x",
        b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL'
        b' ("inline" ("filename" "x" "f2" "y")) NIL NIL',
    ),
    (
        b"Content-ID: <a>\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: inline\r\n"
        b"\r\n"
        b"x",
        b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL',
    ),
    (
        b"MIME-Version: 1.0\r\nContent-ID: <a>\r\nContent-Transfer-Encoding: base64\r\n\r\nx",
        b'"text" "plain" ("charset" "us-ascii") "<a>" NIL "base64" 1 0 NIL NIL NIL NIL',
    ),
    (
        b"Content-Type: multipart/mixed; boundary=b\r\n"
        b"\r\n"
        b"--b\r\n"
        b"Content-ID: <c>\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"x\r\n"
        b"--b\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"\r\n"
        b"Content-ID: <m>\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"y\r\n"
        b"--b--\r\n",
        b'("text" "plain" ("charset" "us-ascii") "<c>" NIL "base64" 1 '
        b'0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 55 '
        b'(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("'
        b'charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) 3 N'
        b'IL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL',
    ),
    (
        b'Content-Type: text/plain; a=1; n="unterminated\r\n'
        b"Content-Transfer-Encoding: base64 junk\r\n"
        b"\r\n"
        b"x",
        b'"text" "plain" ("a" "1" "charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL',
    ),
    (
        b'Content-Type: text/plain; a="x;y"; b=2\r\n'
        b'Content-Disposition: attachment; filename="x"\r\n'
        b"Content-Disposition: inline\r\n"
        b"\r\n"
        b"x",
        b'"text" "plain" ("a" "x;y" "b" "2" "charset" "us-ascii") NIL '
        b'NIL "7bit" 1 0 NIL ("attachment" ("filename" "x")) NIL NIL',
    ),
    (
        b"Content-Type: multipart/mixed; boundary=b\r\n"
        b"\r\n"
        b"--b\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"abc\r\n"
        b"--b\r\n"
        b"\r\n"
        b"--b--\r\n",
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NI'
        b'L NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL'
        b' "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL',
    ),
    (
        b"From: a@b\r\n\r\n",
        b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL',
    ),
    (
        b"From: a@b\r\n",
        b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL',
    ),
    (
        b"",
        b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL',
    ),
]


@pytest.mark.parametrize(("data", "wire"), DOVECOT)
def test_as_dovecot(data: bytes, wire: bytes) -> None:
    assert structure(data) == from_wire(wire)


def test_simple_text_written_out() -> None:
    data = b"Subject: x\r\n\r\nline 1\r\nline 2\r\n"
    assert structure(data) == BodyText(
        subtype=b"plain", params=CHARSET, encoding=b"7bit", size=16, lines=2, ext_fields=4
    )
    assert structure(data, extensible=False) == BodyText(
        subtype=b"plain", params=CHARSET, encoding=b"7bit", size=16, lines=2
    )


def test_bare_lf_counts_as_crlf() -> None:
    # RFC 3501 2.3.4: sizes of the message in RFC 5322 form (CRLF line ends), as Dovecot.
    data = b"From: a@b\nSubject: lf\n only\n\nbody\nmore\r\n"
    assert structure(data) == BodyText(
        subtype=b"plain", params=CHARSET, encoding=b"7bit", size=12, lines=2, ext_fields=4
    )


def test_multipart_written_out() -> None:
    data = (
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/Mixed; boundary="xx"\r\n'
        b"Content-Disposition: inline\r\n"
        b"Content-Language: en, fr\r\n"
        b"Content-Location: http://example.org/\r\n"
        b"\r\n"
        b"--xx\r\n"
        b"Content-Type: text/html; charset=UTF-8\r\n"
        b"Content-Transfer-Encoding: Quoted-Printable\r\n"
        b"Content-ID: <part1@x>\r\n"
        b"Content-Description: the text\r\n"
        b"Content-MD5: Q2hlY2s=\r\n"
        b"\r\n"
        b"<p>hi</p>\r\n"
        b"--xx\r\n"
        b'Content-Type: application/pdf; name="a.pdf"\r\n'
        b'Content-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"JVBERi0=\r\n"
        b"--xx--\r\n"
    )
    text = BodyText(
        subtype=b"html",
        params=((b"charset", b"UTF-8"),),
        id=b"<part1@x>",
        description=b"the text",
        encoding=b"Quoted-Printable",
        size=9,
        lines=0,
        md5=b"Q2hlY2s=",
        ext_fields=4,
    )
    pdf = BodyBasic(
        media_type=b"application",
        subtype=b"pdf",
        params=((b"name", b"a.pdf"),),
        encoding=b"base64",
        size=8,
        disposition=Disposition(type=b"attachment", params=((b"filename", b"a.pdf"),)),
        ext_fields=4,
    )
    assert structure(data) == BodyMultipart(
        parts=(text, pdf),
        subtype=b"Mixed",
        params=((b"boundary", b"xx"),),
        disposition=Disposition(type=b"inline"),
        language=(b"en", b"fr"),
        location=b"http://example.org/",
        ext_fields=4,
    )
    assert structure(data, extensible=False) == BodyMultipart(
        parts=(
            BodyText(
                subtype=b"html",
                params=((b"charset", b"UTF-8"),),
                id=b"<part1@x>",
                description=b"the text",
                encoding=b"Quoted-Printable",
                size=9,
                lines=0,
            ),
            BodyBasic(
                media_type=b"application",
                subtype=b"pdf",
                params=((b"name", b"a.pdf"),),
                encoding=b"base64",
                size=8,
            ),
        ),
        subtype=b"Mixed",
    )


def test_message_rfc822_written_out() -> None:
    inner = b"From: a@b\r\nSubject: inner\r\n\r\nhello\r\n"
    data = b"Content-Type: message/RFC822\r\n\r\n" + inner
    assert structure(data) == BodyMessage(
        subtype=b"rfc822",  # Dovecot writes "rfc822" whatever the case sent
        encoding=b"7bit",
        size=len(inner),
        envelope=Envelope(
            subject=b"inner",
            from_=(Address(mailbox=b"a", host=b"b"),),
            sender=(Address(mailbox=b"a", host=b"b"),),
            reply_to=(Address(mailbox=b"a", host=b"b"),),
        ),
        body=BodyText(
            subtype=b"plain", params=CHARSET, encoding=b"7bit", size=7, lines=1, ext_fields=4
        ),
        lines=4,
        ext_fields=4,
    )


def test_message_global_is_encapsulated() -> None:
    # RFC 9051 9 (media-message): message/global has an envelope, body and lines like
    # message/rfc822. Dovecot 2.3.19 shows it as a basic part ("message" "global" NIL NIL
    # NIL "7bit" 20 NIL NIL NIL NIL); we follow the RFC.
    data = b"Content-Type: message/global\r\n\r\nSubject: g\r\n\r\nbody\r\n"
    body = structure(data)
    assert isinstance(body, BodyMessage)
    assert body.subtype == b"global"
    assert body.size == 20
    assert body.lines == 3
    assert body.envelope == Envelope(subject=b"g")


def test_rfc2231() -> None:
    # Joined as Dovecot joins them. Dovecot 2.3.19 names an unnumbered "c*" after a group
    # that ended at section 1 "c*1*" (a bookkeeping slip); RFC 2231 4 makes it "c*".
    data = b"Content-Type: text/plain; name*=utf-8''%41; a*0*=x; a*1=y%; b*1=z; c*=w\r\n\r\nx"
    body = structure(data)
    assert isinstance(body, BodyText)
    assert body.params == (
        (b"a*", b"xy%25"),
        (b"b*1", b"z"),
        (b"c*", b"w"),
        (b"name*", b"utf-8''%41"),
        (b"charset", b"us-ascii"),
    )
    data = b"Content-Type: text/plain; charset=utf-8; t*0=a; t*1=b; u*0=%; u*1*=%41\r\n\r\nx"
    body = structure(data)
    assert isinstance(body, BodyText)
    assert body.params == (
        (b"charset", b"utf-8"),
        (b"t", b"ab"),
        (b"u*", b"''%25%41"),
    )


def test_part_alone() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-ID: <c>\r\n\r\nx\r\n--b--\r\n"
    )
    message = parse_message(data)
    part = message.part((1,))
    assert part is not None
    assert body_structure(part) == BodyText(
        subtype=b"plain",
        params=CHARSET,
        id=b"<c>",
        encoding=b"7bit",
        size=1,
        lines=0,
        ext_fields=4,
    )


def test_nesting_cap() -> None:
    # Below parse_message's depth cap a message/rfc822 part is opaque: its structure is
    # an empty message, still of the right shape.
    data = b"Content-Type: message/rfc822\r\n\r\n" * 3 + b"body\r\n"
    body = body_structure(parse_message(data, max_depth=1))
    assert isinstance(body, BodyMessage)
    assert isinstance(body.body, BodyMessage)
    assert body.body.envelope == Envelope()
    assert body.body.body == BodyText(
        subtype=b"plain", params=CHARSET, encoding=b"7bit", size=0, lines=0, ext_fields=4
    )
    plain = body_structure(parse_message(data, max_depth=1), extensible=False)
    assert isinstance(plain, BodyMessage)
    assert plain.ext_fields == 0


def test_empty_multipart_without_extensions() -> None:
    body = structure(b"Content-Type: multipart/mixed\r\n\r\nx\r\n", extensible=False)
    assert body == BodyMultipart(
        parts=(BodyText(subtype=b"plain", params=CHARSET, encoding=b"7bit", size=0, lines=0),),
        subtype=b"mixed",
    )


def test_first_description_and_escaped_comment() -> None:
    data = (
        b"Content-Type: text/plain (a \\) b); charset=x\r\n"
        b"Content-Description: one\r\nContent-Description: two\r\n\r\nx"
    )
    body = structure(data)
    assert isinstance(body, BodyText)
    assert (body.params, body.description) == (((b"charset", b"x"),), b"one")


@pytest.mark.parametrize(
    ("content_type", "params"),
    [
        (b"(a (b)) (c) text/plain; x", CHARSET),
        (b"text/plain; a*b=1; *=2", ((b"a*b", b"1"), (b"*", b"2"), *CHARSET)),
        (b"text/plain; x; =y; z=1", ((b"z", b"1"), *CHARSET)),
        # RFC 2045 5.1: an attribute is a token, so "=y" is no parameter (Dovecot keeps
        # it as ("" "y")), and a malformed parameter does not hide the next one (Dovecot
        # 2.3.19 drops empty="" here).
        (b"text/plain;=y", CHARSET),
        (b'text/plain; novalue; empty=""; a=1', ((b"empty", b""), (b"a", b"1"), *CHARSET)),
        # RFC 2045 5.1: a value is a token (one octet or more) or a quoted-string, so
        # "charset=" is no parameter (Dovecot shows ("charset" "")).
        (b"text/plain; charset=", CHARSET),
        (b"text/plain;;charset=", CHARSET),
        (b'text/plain; q=(c)"a b" (d); r=1', ((b"q", b"a b"), (b"r", b"1"), *CHARSET)),
    ],
)
def test_parameters(content_type: bytes, params: tuple[tuple[bytes, bytes]]) -> None:
    body = structure(b"Content-Type: " + content_type + b"\r\n\r\nx")
    assert isinstance(body, BodyText)
    assert body.params == params


def test_odd_content_headers() -> None:
    data = (
        b"Content-Type: application/x (comment\r\n"
        b"Content-Language: en,\r\n"
        b'Content-Disposition: attachment; a="b\\\\c" (x (y) z); b\r\n'
        b"\r\nx"
    )
    body = structure(data)
    assert isinstance(body, BodyBasic)
    assert (body.media_type, body.subtype, body.params) == (b"application", b"x", None)
    assert body.language == (b"en",)
    assert body.disposition == Disposition(type=b"attachment", params=((b"a", b"b\\c"),))


def _round_trip(body: BodyType, extensible: bool) -> None:
    attribute = r.BodyStructure(body=body) if extensible else r.Body(body=body)
    resp = r.Fetch(seq=1, attributes=(attribute,))
    assert parse_response(dump(format_response(resp))) == resp


PIECES = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=c\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: message/global\r\n",
    b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n",
    b"Content-Type: TEXT/html\r\n",
    b"Content-Type: image/png; name*0=a; name*1*=%41\r\n",
    b'Content-Type: ; x="\r\n',
    b"Content-Type: text\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b'Content-Disposition: attachment; filename="x y"\r\n',
    b"Content-Language: en, de\r\n",
    b"Content-Location: http://x/\r\n",
    b"Content-MD5: abc\r\n",
    b"Content-ID: <i\x00d>\r\n",
    b"MIME-Version: 1.0\r\n",
    b"From: a@b\r\nSubject: s\r\n",
    b"\r\n",
    b"\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--c\r\n",
    b"--c--\r\n",
    b"text line\r\n",
    b"bare lf\n",
    b"\x00\xff",
]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))
def test_mime_soup_round_trips(data: bytes) -> None:
    _round_trip(structure(data), True)
    _round_trip(structure(data, extensible=False), False)


@given(st.binary(max_size=400))
def test_random_bytes_round_trip(data: bytes) -> None:
    _round_trip(structure(data), True)
    _round_trip(structure(data, extensible=False), False)
