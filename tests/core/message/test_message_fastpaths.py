"""The fast paths of the message core give exactly what the general code gives.

Each fast path (field lookup by one regex scan, plain Content-Type, plain address lists,
BODYSTRUCTURE reusing the parser's Content-Type) is compared with the general code on
inputs built from the pieces that matter to it: names with and without colon or
trailing blanks, folding, comments, quotes, quoted-pairs, CR, LF, NUL, 8-bit bytes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap.responses import Address
from mailproto.message import Message, Part, parse_message
from mailproto.message._address import _Parser, _Tokens, parse_addresses
from mailproto.message._bodystructure import body_structure
from mailproto.message._envelope import _ENVELOPE_FIELD, envelope
from mailproto.message._model import CONTENT_FIELD, HeaderBlock, _content_type, raw_value

NAMES = st.sampled_from(
    [
        b"Content-Type",
        b"content-TYPE \t",
        b"Content-Transfer-Encoding",
        b"Content-Disposition",
        b"Content-ID",
        b"Content-Language",
        b"content-location",
        b"Content-MD5",
        b"Content-Description",
        b"Content-Types",
        b"MIME-Version",
        b"Subject",
        b"From",
        b"from ",
        b"Sender",
        b"Reply-To",
        b"To",
        b"Cc",
        b"Bcc",
        b"Date",
        b"Message-ID",
        b"In-Reply-To",
        b"X-To",
        b" To",
        b"\rTo",
    ]
)
VALUE_PIECES = st.sampled_from(
    [
        b" ",
        b"\t",
        b"\r\n ",
        b"\n\t",
        b"\r",
        b"\n",
        b"\x00",
        b"\xc3\xa9",
        b"text",
        b"TEXT",
        b"/",
        b"plain",
        b"multipart",
        b"mixed",
        b"message",
        b"rfc822",
        b";",
        b"=",
        b'"',
        b"\\",
        b"(",
        b")",
        b"(c)",
        b"*",
        b"*0",
        b"*1*",
        b"'",
        b"%",
        b"charset",
        b"boundary",
        b"us-ascii",
        b"a@b.c",
        b"x.y",
        b"@",
        b".",
        b"..",
        b"<",
        b">",
        b",",
        b":",
        b"[1.2.3.4]",
        b"Name",
        b'"Quoted Name"',
        b"=?utf-8?q?x?=",
        b"base64",
        b"7bit",
    ]
)
VALUES = st.lists(VALUE_PIECES, max_size=14).map(b"".join)
LINE_ENDS = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(NAMES)
        colon = draw(st.sampled_from([b":", b" :", b""]))
        out.append(name + colon + draw(VALUES) + draw(LINE_ENDS))
    return b"".join(out)


def _reference(header: HeaderBlock, names: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The fields called one of ``names``, by the field-by-field reading."""
    return [
        (name.rstrip(b" \t").lower(), value)
        for name, value in header.fields()
        if name.rstrip(b" \t").lower() in names
    ]


CONTENT_NAMES = {
    b"mime-version",
    *(
        b"content-" + n
        for n in (
            b"type",
            b"transfer-encoding",
            b"id",
            b"description",
            b"md5",
            b"disposition",
            b"language",
            b"location",
        )
    ),
}
ENVELOPE_NAMES = {
    b"date",
    b"subject",
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"bcc",
    b"in-reply-to",
    b"message-id",
}


@settings(max_examples=500, deadline=None)
@given(headers(), st.sampled_from([b"\r\n", b"\n", b"", b"\r", b"\r\nbody"]), st.booleans())
def test_scan_equals_fields(head: bytes, end: bytes, child: bool) -> None:
    data = head + end
    if child:  # a header block that does not start the data
        data = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n" + data + b"\n--b--"
    message = parse_message(data)
    part = message.root.children[0] if child and message.root.children else message.root
    header = part.header
    for pattern, names, group in (
        (CONTENT_FIELD, CONTENT_NAMES, 4),
        (_ENVELOPE_FIELD, ENVELOPE_NAMES, 2),
    ):
        scanned = [(m.group(1).lower(), raw_value(m, group)) for m in header.scan(pattern)]
        assert scanned == _reference(header, names)


@settings(max_examples=500, deadline=None)
@given(headers(), LINE_ENDS, st.booleans())
def test_parser_fields_equal_get(head: bytes, eol: bytes, digest: bool) -> None:
    data = b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n" if digest else b""
    data += head + eol + b"body\r\n"
    m = parse_message(data)
    part = m.root.children[0] if digest and m.root.children else m.root
    general = _content_type(part.header.get(b"content-type"), digest and part is not m.root)
    assert (
        part.raw_media_type,
        part.raw_subtype,
        part.raw_params,
        part.media_type,
        part.subtype,
        part.params,
    ) == general
    transfer = part.header.get(b"content-transfer-encoding")
    if transfer is None:
        assert part.encoding == b"7bit"


def _general_body(message: Message) -> object:
    """BODYSTRUCTURE with every part read by the general code."""

    def forget(part: Part) -> None:
        part.simple_type = False
        part.content_fields = None
        for child in part.children:
            forget(child)
        if part.message is not None:
            forget(part.message)

    forget(message.root)
    return body_structure(message), body_structure(message, extensible=False)


CONTENT_TYPES = st.one_of(
    VALUES,
    st.tuples(
        st.sampled_from([b"text", b"Text", b"application", b"message", b"multipart"]),
        st.sampled_from([b"/", b" / ", b"\t/"]),
        st.sampled_from([b"plain", b"HTML", b"rfc822", b"octet-stream", b"mixed"]),
        st.lists(
            st.tuples(
                st.sampled_from([b";", b" ;", b"; ", b";\r\n\t", b";;"]),
                st.sampled_from([b"charset", b"Name", b"x*", b"a*0", b"b*1*", b"", b"c"]),
                st.sampled_from([b"=", b" = ", b""]),
                st.sampled_from(
                    [b"us-ascii", b'"a b"', b'""', b'"q\\"x"', b"", b"\xc3\xa9", b"(c)"]
                ),
            ).map(b"".join),
            max_size=4,
        ).map(b"".join),
        st.sampled_from([b"", b";", b" ", b"; ", b"(c)", b"\r", b"x"]),
    ).map(b"".join),
)


@settings(max_examples=500, deadline=None)
@given(CONTENT_TYPES, headers(), st.booleans(), LINE_ENDS)
def test_body_structure_reuse(
    content_type: bytes, head: bytes, multipart: bool, eol: bytes
) -> None:
    data = b"MIME-Version: 1.0" + eol + b"Content-Type: " + content_type + eol + head + eol
    if multipart:
        data = (
            b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
            + data
            + b"text\r\n--zz\r\n"
            + head
            + b"\r\n--zz--\r\n"
        )
    else:
        data += b"body\r\n"
    fast = (
        body_structure(parse_message(data)),
        body_structure(parse_message(data), extensible=False),
    )
    assert fast == _general_body(parse_message(data))


def _general_addresses(value: bytes) -> tuple[Address, ...]:
    parser = _Parser(_Tokens(value))
    parser.address_list()
    return tuple(parser.out)


ADDRESS_PIECES = st.sampled_from(
    [
        b"a",
        b"john.doe",
        b"x.",
        b".y",
        b"@",
        b"example.org",
        b"b.c",
        b"<",
        b">",
        b",",
        b", ",
        b" ",
        b"\t",
        b"\r\n ",
        b'"',
        b'"Joe Q. Public"',
        b'""',
        b'" "',
        b"Joe",
        b"Public",
        b"(",
        b")",
        b"(Comment)",
        b"()",
        b"\\",
        b":",
        b";",
        b"[1.2.3.4]",
        b"\x00",
        b"\xc3\xa9",
        b"=?utf-8?q?x?=",
        b"a@b.c",
        b"Name <a@b.c>",
        b"a@b.c (Full Name)",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(ADDRESS_PIECES, max_size=12).map(b"".join))
def test_addresses_fast_path(value: bytes) -> None:
    assert parse_addresses(value) == _general_addresses(value)


@settings(max_examples=300, deadline=None)
@given(headers(), LINE_ENDS)
def test_envelope_equals_field_reading(head: bytes, eol: bytes) -> None:
    # The envelope read through HeaderBlock.scan equals one built from fields().
    data = head + eol + b"body"
    m = parse_message(data)
    got = envelope(m)
    fields = _reference(m.root.header, ENVELOPE_NAMES)
    subjects = [v for k, v in fields if k == b"subject"]
    assert (got.subject is None) == (not subjects)
    froms = [a for k, v in fields if k == b"from" for a in _general_addresses(v)]
    assert got.from_ == (tuple(froms) or None)
