"""envelope(): FETCH ENVELOPE from a message's header block (RFC 3501 7.4.2).

Expected values are what Dovecot 2.3.19 answered for the same messages.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap import dump, format_response, parse_response
from mailproto.imap import responses as r
from mailproto.imap.responses import Address, Envelope
from mailproto.message import parse_message
from mailproto.message._envelope import envelope, header_value, humanize

AB = (Address(mailbox=b"a", host=b"b"),)


def env(data: bytes) -> Envelope:
    return envelope(parse_message(data))


def test_full_envelope() -> None:
    data = (
        b"Date: Mon, 1 Jan 2001 00:00:00 +0000\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?= time\r\n"
        b'From: "Joe Q. Public" <joe@example.com>\r\n'
        b"Sender: sec@example.com\r\n"
        b"Reply-To: list@example.com\r\n"
        b"To: a@b, G: c@d;\r\n"
        b"Cc: cc@example.com\r\n"
        b"Bcc: bcc@example.com\r\n"
        b"In-Reply-To: <x@y>\r\n"
        b"Message-ID: <id@example.com>\r\n"
        b"\r\nbody\r\n"
    )
    assert env(data) == Envelope(
        date=b"Mon, 1 Jan 2001 00:00:00 +0000",
        subject=b"=?utf-8?q?caf=C3=A9?= time",
        from_=(Address(name=b"Joe Q. Public", mailbox=b"joe", host=b"example.com"),),
        sender=(Address(mailbox=b"sec", host=b"example.com"),),
        reply_to=(Address(mailbox=b"list", host=b"example.com"),),
        to=(
            Address(mailbox=b"a", host=b"b"),
            Address(mailbox=b"G"),
            Address(mailbox=b"c", host=b"d"),
            Address(),
        ),
        cc=(Address(mailbox=b"cc", host=b"example.com"),),
        bcc=(Address(mailbox=b"bcc", host=b"example.com"),),
        in_reply_to=b"<x@y>",
        message_id=b"<id@example.com>",
    )


def test_sender_and_reply_to_default_to_from() -> None:
    assert env(b"From: a@b\r\n\r\nx") == Envelope(from_=AB, sender=AB, reply_to=AB)
    # present but empty (RFC 3501 7.4.2), or holding no address
    data = b"From: a@b\r\nSender:\r\nReply-To: (only a comment)\r\n\r\nx"
    assert env(data) == Envelope(from_=AB, sender=AB, reply_to=AB)


def test_no_from() -> None:
    data = b"Sender: s@h\r\nReply-To: r@h\r\n\r\nx"
    assert env(data) == Envelope(
        sender=(Address(mailbox=b"s", host=b"h"),), reply_to=(Address(mailbox=b"r", host=b"h"),)
    )


def test_empty_and_absent() -> None:
    assert env(b"x\r\n") == Envelope()
    assert env(b"") == Envelope()
    data = b"From: a@b\r\nSubject:\r\nDate:\r\nMessage-ID:\r\nTo:\r\nBcc: \r\nCc: ,\r\n\r\nx"
    assert env(data) == Envelope(
        date=b"",
        subject=b"",
        from_=AB,
        sender=AB,
        reply_to=AB,
        cc=(Address(mailbox=b"MISSING_MAILBOX", host=b"MISSING_DOMAIN"),),
        message_id=b"",
    )


def test_text_fields_as_sent() -> None:
    data = (
        b"From: a@b\r\nSubject:   x  y  \r\nDate:  Mon, 1 Jan 2001 00:00:00 +0000 \r\n"
        b"Message-ID:  <x@y> (c)\r\nIn-Reply-To: <a@b>\r\n <c@d>\r\n\r\nx\r\n"
    )
    e = env(data)
    assert e.subject == b"x y"
    assert e.date == b"Mon, 1 Jan 2001 00:00:00 +0000 "  # trailing blank kept
    assert e.message_id == b"<x@y> (c)"
    assert e.in_reply_to == b"<a@b> <c@d>"


def test_folding() -> None:
    e = env(b"Subject: a\r\n\tb\r\n   c\r\nDate:\r\n\t d \r\n\r\nx")
    assert e.subject == b"a b c"
    assert e.date == b"\t d "
    e = env(b"From: a@b\nSubject: lf\n only\n\nbody\n")
    assert e.subject == b"lf only"
    assert e.from_ == AB


def test_repeated_fields() -> None:
    data = (
        b"From: a@b junk\r\nFROM: c@d\r\nDate: d1\r\ndate: d2\r\nSubject: one\r\n"
        b"subject: two\r\nMessage-ID: <1>\r\nMessage-ID: <2>\r\nIn-Reply-To: <i1>\r\n"
        b"In-Reply-To: <i2>\r\nTo: x@y\r\nto: z@w\r\n\r\nx\r\n"
    )
    e = env(data)
    both = (Address(mailbox=b"a", host=b"b"), Address(mailbox=b"c", host=b"d"))
    assert e.from_ == both
    assert e.sender == both
    assert e.to == (Address(mailbox=b"x", host=b"y"), Address(mailbox=b"z", host=b"w"))
    assert (e.date, e.subject, e.message_id, e.in_reply_to) == (b"d2", b"two", b"<2>", b"<i2>")


def test_nul_and_8bit() -> None:
    data = b"From: a@b\r\nSubject: x\x00y \xc3\xa9\r\nMessage-ID: <a\x00b>\r\n\r\nx"
    e = env(data)
    assert e.subject == b"x\xef\xbf\xbdy \xc3\xa9"
    assert e.message_id == b"<a\xef\xbf\xbdb>"


def test_part_and_encapsulated_message() -> None:
    data = (
        b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nFrom: a@b\r\n\r\nbody\r\n"
    )
    message = parse_message(data)
    assert envelope(message).subject == b"outer"
    assert envelope(message.root).subject == b"outer"
    assert message.root.message is not None
    assert envelope(message.root.message) == Envelope(
        subject=b"inner", from_=AB, sender=AB, reply_to=AB
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b" ", b""),
        (b"   ", b"  "),
        (b" \t", b"\t"),
        (b"\t ", b" "),
        (b" \r\n x", b" x"),
        (b"  \r\n x", b"  x"),
        (b"\r\n x", b" x"),
        (b" a", b"a"),
        (b"\t\t\r\n\t", b"\t\t"),
        (b"  Mon ", b"Mon "),
        (b"", b""),
    ],
)
def test_blank_first_line(raw: bytes, value: bytes) -> None:
    # Dovecot drops every blank before the value, but only one when the line is blank.
    assert header_value(raw) == value
    assert env(b"Message-ID:" + raw + b"\r\n\r\nx").message_id == value


def test_helpers() -> None:
    assert header_value(b"  a\r\n b ") == b"a b "
    assert header_value(b"a\x00") == b"a\xef\xbf\xbd"
    assert humanize(b"\t a \r\n\t b\x00 ") == b"a b\xef\xbf\xbd"


def _round_trip(e: Envelope) -> None:
    resp = r.Fetch(seq=1, attributes=(r.EnvelopeItem(envelope=e),))
    wire = dump(format_response(resp))
    back = parse_response(wire)
    assert back == resp


HEADER_NAMES = [b"From", b"Sender", b"Reply-To", b"To", b"Cc", b"Bcc", b"Subject", b"Date"]
HEADER_NAMES += [b"Message-ID", b"In-Reply-To", b"X-Other"]
VALUE_BYTES = b'ab @.,:;<>()"\\[] \t\r\n=?\x00\xc3\xa9'


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.sampled_from(HEADER_NAMES))
        value = bytes(draw(st.lists(st.sampled_from(list(VALUE_BYTES)), max_size=40)))
        lines.append(name + b":" + value + b"\r\n")
    return b"".join(lines) + b"\r\nbody\r\n"


@settings(max_examples=300)
@given(headers())
def test_header_soup_round_trips(data: bytes) -> None:
    _round_trip(env(data))


@given(st.binary(max_size=300))
def test_random_bytes_round_trip(data: bytes) -> None:
    _round_trip(env(data))
