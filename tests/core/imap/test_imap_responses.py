"""Known-answer tests for the IMAP response values and their codec."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from mailproto import LocalProtocolError
from mailproto.imap import _responses as r
from mailproto.imap._grammar import LiteralFragment, ParseError, SequenceSet, dump
from mailproto.imap._response_codec import format_response, parse_response
from mailproto.imap._types import Section

VECTORS = Path(__file__).parent.parent.parent / "vectors"


def _vectors() -> list[tuple[str, bytes, bytes]]:
    out: list[tuple[str, bytes, bytes]] = []
    for path in sorted(VECTORS.glob("imap-responses-*.txt")):
        for line in path.read_bytes().split(b"\n"):
            if line.startswith(b"S: "):
                out.append((path.name, line[3:], line[3:]))
            elif line.startswith(b"=: "):
                name, wire, _ = out[-1]
                out[-1] = (name, wire, line[3:])
    return out


VECTOR_CASES = _vectors()


def rt(line: bytes) -> bytes:
    return dump(format_response(parse_response(line)))


def test_vectors_present() -> None:
    assert len(VECTOR_CASES) > 150


@pytest.mark.parametrize(("name", "wire", "canonical"), VECTOR_CASES)
def test_vector_round_trip(name: str, wire: bytes, canonical: bytes) -> None:
    resp = parse_response(wire + b"\r\n")
    # Written back as it was spelled, or in the canonical spelling on request.
    assert dump(format_response(resp)) == wire + b"\r\n"
    assert dump(format_response(resp, as_parsed=False)) == canonical + b"\r\n"
    assert parse_response(canonical) == resp


# --- status responses ---------------------------------------------------------------


def test_tagged_with_code() -> None:
    resp = parse_response(b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n")
    assert resp == r.Tagged(
        tag="A004",
        status="OK",
        code=r.CopyUid(
            uidvalidity=38505,
            source=SequenceSet(((304, 304), (319, 320))),
            destination=SequenceSet(((3956, 3958),)),
        ),
        text="Done",
    )


def test_untagged_codes_typed() -> None:
    assert parse_response(b"* OK [UIDNEXT 4392] x") == r.Untagged(
        status="OK", code=r.UidNext(value=4392), text="x"
    )
    assert parse_response(b"* OK [PERMANENTFLAGS (\\Seen \\*)] x") == r.Untagged(
        status="OK", code=r.PermanentFlags(flags=("\\Seen", "\\*")), text="x"
    )
    assert parse_response(b'A1 NO [BADCHARSET (UTF-8 "X Y")] no').code == r.BadCharset(  # type: ignore[attr-defined]
        charsets=(b"UTF-8", b"X Y")
    )
    assert parse_response(b"* OK [read-only] x").code == r.ReadOnly()  # type: ignore[attr-defined]
    assert parse_response(b"* OK [HIGHESTMODSEQ 9223372036854775807] x").code == (  # type: ignore[attr-defined]
        r.HighestModSeq(value=9223372036854775807)
    )
    assert parse_response(b"A1 OK [MAILBOXID (F2212ea8)] Created").code == (  # type: ignore[attr-defined]
        r.MailboxIdCode(value="F2212ea8")
    )
    assert parse_response(b"A1 OK [APPENDUID 1 2:4] x").code == r.AppendUid(  # type: ignore[attr-defined]
        uidvalidity=1, uids=SequenceSet(((2, 4),))
    )


def test_code_without_text() -> None:
    resp = parse_response(b"* OK [READ-WRITE]\r\n")
    assert resp == r.Untagged(status="OK", code=r.ReadWrite(), text="")
    assert dump(format_response(resp)) == b"* OK [READ-WRITE]\r\n"


def test_other_code_keeps_name_and_text() -> None:
    resp = parse_response(b"* OK [X-Thing a b c] hi")
    assert resp == r.Untagged(
        status="OK", code=r.OtherCode(name="X-Thing", text=b"a b c"), text="hi"
    )


def test_status_text_is_utf8_and_round_trips_any_octets() -> None:
    resp = parse_response("* OK Grüße".encode())
    assert resp == r.Untagged(status="OK", text="Grüße")
    raw = b"* OK caf\xe9\r\n"
    assert rt(raw) == raw


def test_continuation_challenge() -> None:
    c = r.Continuation.challenge(b"\x00user\x00pw")
    assert dump(format_response(c)) == b"+ AHVzZXIAcHc=\r\n"
    assert parse_response(b"+ AHVzZXIAcHc=").data() == b"\x00user\x00pw"  # type: ignore[attr-defined]
    assert parse_response(b"+ ") == r.Continuation(text="")
    with pytest.raises(ValueError):
        r.Continuation(text="not base64!").data()
    with pytest.raises(ValueError):
        r.Continuation(code=r.Alert(), text="AAAA").data()


def test_crlf_optional() -> None:
    assert parse_response(b"* 3 EXISTS") == parse_response(b"* 3 EXISTS\r\n") == r.Exists(count=3)


# --- data responses -----------------------------------------------------------------


def test_list_values() -> None:
    resp = parse_response(b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"')
    assert resp == r.List(
        attributes=("\\HasNoChildren", "\\Sent"), delimiter="/", mailbox="Sent Items"
    )
    old = parse_response(b'* LIST () "/" New ("OLDNAME" ("&AMQ-pfel"))')
    assert isinstance(old, r.List)
    assert old.oldname == "Äpfel"


def test_list_mailbox_modified_utf7_and_utf8() -> None:
    resp = parse_response(b'* LIST () "/" &AMQ-pfel')
    assert isinstance(resp, r.List)
    assert resp.mailbox == "Äpfel"
    utf8 = parse_response('* LIST () "/" "Äpfel"'.encode(), utf8=True)
    assert isinstance(utf8, r.List)
    assert utf8.mailbox == "Äpfel"
    assert dump(format_response(utf8, utf8=True)) == '* LIST () "/" "Äpfel"\r\n'.encode()
    assert dump(format_response(utf8)) == b'* LIST () "/" &AMQ-pfel\r\n'


def test_list_literal_mailbox() -> None:
    resp = parse_response(b'* LIST () "/" {5}\r\na"b c')
    assert isinstance(resp, r.List)
    assert resp.mailbox == 'a"b c'


def test_status_values() -> None:
    resp = parse_response(b"* STATUS INBOX (MESSAGES 3 SIZE 12345678901 MAILBOXID (abc))")
    assert resp == r.Status(
        mailbox="INBOX", items=(("MESSAGES", 3), ("SIZE", 12345678901), ("MAILBOXID", "abc"))
    )
    assert isinstance(resp, r.Status)
    assert resp.get("SIZE") == 12345678901
    assert resp.get("UNSEEN") is None


def test_esearch_values() -> None:
    resp = parse_response(b'* ESEARCH (TAG "A1") UID MIN 1 MAX 9 COUNT 3 ALL 1,5,9 MODSEQ 7')
    assert resp == r.ESearch(
        tag=b"A1", uid=True, min=1, max=9, count=3, all=SequenceSet.of(1, 5, 9), modseq=7
    )


def test_namespace_values() -> None:
    resp = parse_response(b'* NAMESPACE (("" "/")) NIL (("#shared/" NIL "X" ("a")))')
    assert resp == r.Namespace(
        personal=(r.NamespaceEntry(prefix="", delimiter="/"),),
        other=None,
        shared=(
            r.NamespaceEntry(prefix="#shared/", delimiter=None, extensions=((b"X", (b"a",)),)),
        ),
    )


def test_quota_values() -> None:
    resp = parse_response(b'* QUOTA "" (STORAGE 10 512 MESSAGE 1 2)')
    assert resp == r.Quota(
        root=b"",
        resources=(
            r.QuotaResource(name="STORAGE", usage=10, limit=512),
            r.QuotaResource(name="MESSAGE", usage=1, limit=2),
        ),
    )
    assert parse_response(b'* QUOTAROOT INBOX "" other') == r.QuotaRoot(
        mailbox="INBOX", roots=(b"", b"other")
    )


def test_thread_tree() -> None:
    resp = parse_response(b"* THREAD (2)(3 6 (4 23)(44 7 96))((3)(5))")
    assert resp == r.Thread(
        threads=(
            r.ThreadNode(messages=(2,)),
            r.ThreadNode(
                messages=(3, 6),
                children=(r.ThreadNode(messages=(4, 23)), r.ThreadNode(messages=(44, 7, 96))),
            ),
            r.ThreadNode(children=(r.ThreadNode(messages=(3,)), r.ThreadNode(messages=(5,)))),
        )
    )


def test_id_and_vanished() -> None:
    assert parse_response(b'* ID ("name" NIL)') == r.Id(params=((b"name", None),))
    assert parse_response(b"* VANISHED (EARLIER) 1:3") == r.Vanished(
        earlier=True, uids=SequenceSet(((1, 3),))
    )


# --- FETCH --------------------------------------------------------------------------

RFC3501_ENVELOPE = (
    b'* 12 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
    b'"IMAP4rev1 WG mtg summary and minutes" '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'((NIL NIL "imap" "cac.washington.edu")) '
    b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
    b'NIL NIL "<B27397-0100000@cac.washington.edu>"))'
)


def test_rfc3501_envelope_typed() -> None:
    resp = parse_response(RFC3501_ENVELOPE)
    assert isinstance(resp, r.Fetch)
    item = resp.get(r.EnvelopeItem)
    assert isinstance(item, r.EnvelopeItem)
    gray = r.Address(name=b"Terry Gray", mailbox=b"gray", host=b"cac.washington.edu")
    assert item.envelope == r.Envelope(
        date=b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        subject=b"IMAP4rev1 WG mtg summary and minutes",
        from_=(gray,),
        sender=(gray,),
        reply_to=(gray,),
        to=(r.Address(mailbox=b"imap", host=b"cac.washington.edu"),),
        cc=(
            r.Address(mailbox=b"minutes", host=b"CNRI.Reston.VA.US"),
            r.Address(name=b"John Klensin", mailbox=b"KLENSIN", host=b"MIT.EDU"),
        ),
        message_id=b"<B27397-0100000@cac.washington.edu>",
    )
    assert resp.get(r.Uid) is None


def test_rfc3501_multipart_bodystructure_typed() -> None:
    resp = parse_response(
        b'* 2 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 '
        b'23)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED"))'
    )
    assert resp == r.Fetch(
        seq=2,
        attributes=(
            r.BodyStructure(
                body=r.BodyMultipart(
                    parts=(
                        r.BodyText(
                            subtype=b"PLAIN",
                            params=((b"CHARSET", b"US-ASCII"),),
                            encoding=b"7BIT",
                            size=1152,
                            lines=23,
                        ),
                        r.BodyText(
                            subtype=b"PLAIN",
                            params=((b"CHARSET", b"US-ASCII"), (b"NAME", b"cc.diff")),
                            id=b"<960723163407.20117h@cac.washington.edu>",
                            description=b"Compiler diff",
                            encoding=b"BASE64",
                            size=4554,
                            lines=73,
                        ),
                    ),
                    subtype=b"MIXED",
                ),
            ),
        ),
    )


def test_bodystructure_extension_data() -> None:
    resp = parse_response(
        b'* 3 FETCH (BODYSTRUCTURE ("APPLICATION" "PDF" NIL NIL NIL "BASE64" 10 "md5" '
        b'("attachment" ("filename" "a.pdf")) ("en" "de") "loc" 7 ("x" (1 NIL))))'
    )
    assert isinstance(resp, r.Fetch)
    bs = resp.attributes[0]
    assert isinstance(bs, r.BodyStructure)
    assert bs.body == r.BodyBasic(
        media_type=b"APPLICATION",
        subtype=b"PDF",
        encoding=b"BASE64",
        size=10,
        md5=b"md5",
        ext_fields=4,
        disposition=r.Disposition(type=b"attachment", params=((b"filename", b"a.pdf"),)),
        language=(b"en", b"de"),
        location=b"loc",
        extensions=(7, (b"x", (1, None))),
    )


def test_bodystructure_fast_path_with_dispositions() -> None:
    wire = (
        b'* 9 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 10 1 NIL '
        b'("inline" NIL) "en" NIL)("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 10 NIL '
        b'("attachment" ("filename" "a.pdf")) NIL "http://x") "MIXED" ("BOUNDARY" "b") '
        b'("inline" NIL) NIL NIL))'
    )
    resp = parse_response(wire)
    slow = parse_response(wire, quirks=frozenset({"nil-string"}))  # general path
    assert resp == slow
    assert rt(wire) == wire + b"\r\n"
    assert isinstance(resp, r.Fetch)
    bs = resp.attributes[0]
    assert isinstance(bs, r.BodyStructure)
    assert isinstance(bs.body, r.BodyMultipart)
    assert bs.body.disposition == r.Disposition(type=b"inline")
    text, pdf = bs.body.parts
    assert isinstance(text, r.BodyText)
    assert text.language == (b"en",)
    assert isinstance(pdf, r.BodyBasic)
    assert pdf.disposition == r.Disposition(type=b"attachment", params=((b"filename", b"a.pdf"),))
    assert pdf.location == b"http://x"


def test_message_global_as_a_basic_body() -> None:
    # Dovecot 2.3 (IMAP4rev1) writes message/global as body-type-basic: no envelope.
    wire = b'* 5 FETCH (BODYSTRUCTURE ("message" "global" NIL NIL NIL "8bit" 257 NIL NIL NIL NIL))'
    resp = parse_response(wire + b"\r\n")
    assert isinstance(resp, r.Fetch)
    [item] = resp.attributes
    assert isinstance(item, r.BodyStructure)
    assert item.body == r.BodyBasic(
        media_type=b"message", subtype=b"global", encoding=b"8bit", size=257, ext_fields=4
    )
    assert dump(format_response(resp)) == wire + b"\r\n"
    with pytest.raises(LocalProtocolError):
        r.BodyBasic(media_type=b"MESSAGE", subtype=b"RFC822", size=1)


def test_deeply_nested_body_structures_from_real_servers() -> None:
    # Dovecot nests MIME up to 100 levels; its BODYSTRUCTURE must be readable.
    body = b'("text" "plain" NIL NIL NIL "7bit" 1 1)'
    for _ in range(100):
        body = b"(" + body + b' "mixed")'
    resp = parse_response(b"* 1 FETCH (BODY " + body + b")\r\n")
    assert isinstance(resp, r.Fetch)


def test_message_rfc822_body() -> None:
    resp = parse_response(
        b'* 4 FETCH (BODY ("MESSAGE" "GLOBAL" NIL NIL NIL "8BIT" 40 (NIL "s" NIL NIL NIL '
        b'NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" NIL NIL NIL "8BIT" 20 1) 3))'
    )
    assert isinstance(resp, r.Fetch)
    body = resp.attributes[0]
    assert isinstance(body, r.Body)
    assert isinstance(body.body, r.BodyMessage)
    assert body.body.subtype == b"GLOBAL"
    assert body.body.envelope == r.Envelope(subject=b"s")
    assert body.body.body == r.BodyText(subtype=b"PLAIN", encoding=b"8BIT", size=20, lines=1)
    assert body.body.lines == 3


def test_body_section_literal_and_origin() -> None:
    wire = b"* 1 FETCH (UID 7 BODY[1.2.HEADER]<10> {5}\r\nab\r\nc FLAGS ())"
    resp = parse_response(wire)
    assert resp == r.Fetch(
        seq=1,
        attributes=(
            r.Uid(value=7),
            r.BodySection(section=Section((1, 2), "HEADER"), origin=10, data=b"ab\r\nc"),
            r.FetchFlags(flags=()),
        ),
    )
    fragments = format_response(resp)
    assert fragments == [
        b"* 1 FETCH (UID 7 BODY[1.2.HEADER]<10> {5}\r\n",
        LiteralFragment(b"ab\r\nc", "sync"),
        b" FLAGS ())\r\n",
    ]


def test_binary_literal8() -> None:
    wire = b"* 1 FETCH (BINARY[2] ~{3}\r\na\x00b)"
    resp = parse_response(wire)
    assert resp == r.Fetch(seq=1, attributes=(r.Binary(part=(2,), data=b"a\x00b"),))
    assert format_response(resp) == [
        b"* 1 FETCH (BINARY[2] ~{3}\r\n",
        LiteralFragment(b"a\x00b", "binary"),
        b")\r\n",
    ]
    with pytest.raises(ParseError):
        parse_response(b"* 1 FETCH (BODY[] ~{3}\r\na\x00b)")


def test_internaldate_value() -> None:
    resp = parse_response(b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")')
    assert isinstance(resp, r.Fetch)
    item = resp.attributes[0]
    assert isinstance(item, r.InternalDate)
    tz = datetime.timezone(-datetime.timedelta(hours=7))
    assert item.value == datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=tz)


# --- quirks -------------------------------------------------------------------------


def test_quirk_trailing_space_exchange() -> None:
    line = b"* STATUS INBOX (MESSAGES 1 UNSEEN 0 ) \r\n"
    with pytest.raises(ParseError):
        parse_response(line)
    assert parse_response(line, quirks=frozenset({"trailing-space"})) == r.Status(
        mailbox="INBOX", items=(("MESSAGES", 1), ("UNSEEN", 0))
    )
    assert parse_response(b"* 1 FETCH (UID 3  ) ", quirks=frozenset({"trailing-space"})) == (
        r.Fetch(seq=1, attributes=(r.Uid(value=3),))
    )


def test_quirk_negative_lines() -> None:
    line = b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 -1))'
    with pytest.raises(ParseError):
        parse_response(line)
    resp = parse_response(line, quirks=frozenset({"negative-lines"}))
    assert resp == r.Fetch(
        seq=1, attributes=(r.Body(body=r.BodyText(subtype=b"PLAIN", size=0, lines=0)),)
    )


def test_quirk_nil_string_mailru() -> None:
    line = b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" NIL) NIL NIL NIL 3 1))'
    with pytest.raises(ParseError):
        parse_response(line)
    resp = parse_response(line, quirks=frozenset({"nil-string"}))
    assert resp == r.Fetch(
        seq=1,
        attributes=(
            r.BodyStructure(
                body=r.BodyText(
                    subtype=b"PLAIN", params=((b"CHARSET", b""),), encoding=b"", size=3, lines=1
                )
            ),
        ),
    )


def test_quirk_unescaped_quotes_outlook() -> None:
    line = (
        b'* 1 FETCH (ENVELOPE (NIL "say "hi" now" (("Doe, "J"" NIL "j" "x.org")) NIL NIL NIL '
        b"NIL NIL NIL NIL))"
    )
    with pytest.raises(ParseError):
        parse_response(line)
    resp = parse_response(line, quirks=frozenset({"unescaped-quotes"}))
    assert isinstance(resp, r.Fetch)
    env = resp.attributes[0]
    assert isinstance(env, r.EnvelopeItem)
    assert env.envelope.subject == b'say "hi" now'
    assert env.envelope.from_ == (r.Address(name=b'Doe, "J"', mailbox=b"j", host=b"x.org"),)
    with pytest.raises(ParseError):  # still needs a closing quote
        parse_response(b'* 1 FETCH (RFC822 "abc)', quirks=frozenset({"unescaped-quotes"}))


def test_quirk_code_no_space() -> None:
    line = b"A1 OK [READ-WRITE]SELECT completed"
    with pytest.raises(ParseError):
        parse_response(line)
    assert parse_response(line, quirks=frozenset({"code-no-space"})) == r.Tagged(
        tag="A1", status="OK", code=r.ReadWrite(), text="SELECT completed"
    )


def test_unknown_quirk_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        parse_response(b"* OK x", quirks=frozenset({"no-such-quirk"}))


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"*",
        b"* ",
        b"A1 MAYBE fine",
        b"A+1 OK x",
        b"+",
        b"* 1 FROB",
        b"* FROB",
        b"* OK [UIDNEXT 0] x",
        b"* OK [ALERT]x",
        b"* OK [ALERT",
        b"* 1 FETCH ()",
        b"* 1 FETCH (FOO 1)",
        b"* 1 FETCH (UID 0)",
        b"* 1 FETCH (UID 1",
        b"* 1 FETCH (UID 1) x",
        b'* LIST () "ab" x',
        b'* LIST () "/" x ("FOO" "bar")',  # tagged-ext-val is not a bare string
        b'* LIST () "/" x ("CHILDINFO" ("A") "CHILDINFO" ("B"))',
        b'* LIST () "/" &Jjo',
        b"* STATUS x (BOGUS 1)",
        b"* ESEARCH MIN 1 MIN 2",
        b"* ESEARCH PARTIAL 1",
        b"* THREAD (1 (2))",
        b"* THREAD ()",
        b"* SEARCH (MODSEQ 5)",
        b"* VANISHED 1:*",
        b'* NAMESPACE (("" "ab")) NIL NIL',
        b"* NAMESPACE () NIL NIL",
        b"* QUOTA x ()",
        b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 1 NIL))',
        b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL NIL 1 1))',
        b'* 1 FETCH (INTERNALDATE "31-Feb-2020 00:00:00 +0000")',
        b"* 1 FETCH (EMAILID (a b))",
        b"* 1 FETCH (EMAILID ())",
        b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 99999999999 1))',
        b"* 1 FETCH (BODY[] {10}\r\nabc)",
    ],
)
def test_parse_errors(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_response(line)


def test_nesting_limit() -> None:
    # 128 levels: room for Dovecot's 100 MIME levels, and no deeper recursion.
    deep = b"* THREAD " + b"((1)" * 130 + b"(2)" + b")" * 130
    with pytest.raises(ParseError):
        parse_response(deep)


# --- construction-time validation ---------------------------------------------------


def _deep(n: int) -> r.ExtensionValue:
    value: r.ExtensionValue = b""
    for _ in range(n):
        value = (value,)
    return value


@pytest.mark.parametrize(
    "build",
    [
        lambda: r.Tagged(tag="A 1", status="OK"),
        lambda: r.Tagged(tag="A1", status="MAYBE"),  # type: ignore[arg-type]
        lambda: r.Tagged(tag="A1", status="OK", text="a\r\nb"),
        lambda: r.Tagged(tag="A1", status="OK", text="[ALERT] looks like a code"),
        lambda: r.Tagged(tag="A1", status="OK", text="\ud800"),
        lambda: r.Tagged(tag="A1", status="OK", code="ALERT"),  # type: ignore[arg-type]
        lambda: r.Untagged(status="DONE"),  # type: ignore[arg-type]
        lambda: r.OtherCode(name="X Y"),
        lambda: r.OtherCode(name="alert"),
        lambda: r.MailboxIdCode(value="a b"),
        lambda: r.OtherCode(name="X", text=b"a]b"),
        lambda: r.UidNext(value=0),
        lambda: r.HighestModSeq(value=0),
        lambda: r.BadCharset(charsets=(b"",)),
        lambda: r.BadCharset(charsets=[b"x"]),  # type: ignore[arg-type]
        lambda: r.Capability(capabilities=("IMAP4rev2", "A B")),
        lambda: r.Capability(capabilities=["IMAP4rev2"]),  # type: ignore[arg-type]
        lambda: r.Flags(flags=("\\*",)),
        lambda: r.Flags(flags=["\\Seen"]),  # type: ignore[arg-type]
        lambda: r.PermanentFlags(flags=("a b",)),
        lambda: r.AppendUid(uidvalidity=1, uids="1"),  # type: ignore[arg-type]
        lambda: r.List(attributes=(), delimiter="//", mailbox="x"),
        lambda: r.List(attributes=(), delimiter="/", mailbox="a\nb"),
        lambda: r.List(attributes=(), delimiter="/", mailbox="x", childinfo=()),
        lambda: r.Status(mailbox="x", items=(("BOGUS", 1),)),  # type: ignore[arg-type]
        lambda: r.Status(mailbox="x", items=(("MESSAGES", -1),)),
        lambda: r.Status(mailbox="x", items=(("MAILBOXID", 1),)),
        lambda: r.Status(mailbox="x", items=(("MESSAGES",),)),  # type: ignore[arg-type]
        lambda: r.Status(mailbox="x", items=[]),  # type: ignore[arg-type]
        lambda: r.Search(numbers=(0,)),
        lambda: r.Search(numbers=[1]),  # type: ignore[arg-type]
        lambda: r.BadCharset(charsets=(b'a\\"b',)),
        lambda: r.Disposition(type="inline"),  # type: ignore[arg-type]
        lambda: r.Search(modseq=3),
        lambda: r.Sort(numbers=(1,), modseq=0),
        lambda: r.Sort(modseq=1),
        lambda: r.ESearch(uid=1),  # type: ignore[arg-type]
        lambda: r.ESearch(tag=b"a\r\n"),
        lambda: r.ESearch(min=0),
        lambda: r.ESearch(all="1:2"),  # type: ignore[arg-type]
        lambda: r.Exists(count=True),
        lambda: r.Expunge(seq=0),
        lambda: r.Vanished(uids=SequenceSet(((1, None),))),
        lambda: r.Vanished(earlier=1, uids=SequenceSet.of(1)),  # type: ignore[arg-type]
        lambda: r.NamespaceEntry(prefix="", delimiter="/", extensions=((b"X", ()),)),
        lambda: r.NamespaceEntry(prefix="", delimiter="/", extensions=((b"X",),)),  # type: ignore[arg-type]
        lambda: r.NamespaceEntry(prefix="", delimiter="/", extensions=[]),  # type: ignore[arg-type]
        lambda: r.Namespace(personal=(), other=None, shared=None),
        lambda: r.Namespace(personal=("x",), other=None, shared=None),  # type: ignore[arg-type]
        lambda: r.Id(params=()),
        lambda: r.Id(params=((b"a",),)),  # type: ignore[arg-type]
        lambda: r.Quota(root=b"", resources=()),
        lambda: r.Quota(root=b"", resources=("x",)),  # type: ignore[arg-type]
        lambda: r.QuotaResource(name="S T", usage=1, limit=1),
        lambda: r.QuotaRoot(mailbox="x", roots=[b""]),  # type: ignore[arg-type]
        lambda: r.ThreadNode(),
        lambda: r.ThreadNode(messages=(1,), children=(r.ThreadNode(messages=(2,)),)),
        lambda: r.ThreadNode(messages=(1,), children=[]),  # type: ignore[arg-type]
        lambda: r.ThreadNode(children=("x", "y")),  # type: ignore[arg-type]
        lambda: r.Thread(threads=["x"]),  # type: ignore[arg-type]
        lambda: r.Thread(threads=("x",)),  # type: ignore[arg-type]
        lambda: r.Address(name="str"),  # type: ignore[arg-type]
        lambda: r.Address(name=b"a\x00b"),
        lambda: r.Envelope(to=()),
        lambda: r.Envelope(to=("x",)),  # type: ignore[arg-type]
        lambda: r.Disposition(type=b"a", params=()),
        lambda: r.Disposition(type=b"a", params=((b"a",),)),  # type: ignore[arg-type]
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, md5=b"x"),
        lambda: r.BodyText(
            subtype=b"PLAIN", lines=1, ext_fields=1, disposition=r.Disposition(type=b"a")
        ),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=2, language=(b"en",)),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=3, location=b"x"),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=5),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=2, disposition=b"x"),  # type: ignore[arg-type]
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=3, language=()),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=4, extensions=[]),  # type: ignore[arg-type]
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=4, extensions=((),)),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=4, extensions=(True,)),
        lambda: r.BodyText(subtype=b"PLAIN", lines=1, ext_fields=4, extensions=(_deep(40),)),
        lambda: r.BodyText(subtype=b"PLAIN", lines=-1),
        lambda: r.BodyBasic(media_type=b"text", subtype=b"x"),
        lambda: r.BodyBasic(media_type=b"message", subtype=b"rfc822"),
        lambda: r.BodyMessage(
            subtype=b"partial",
            envelope=r.Envelope(),
            body=r.BodyText(subtype=b"A", lines=0),
            lines=0,
        ),
        lambda: r.BodyMessage(envelope="x", body=r.BodyText(subtype=b"A", lines=0), lines=0),  # type: ignore[arg-type]
        lambda: r.BodyMessage(envelope=r.Envelope(), body="x", lines=0),  # type: ignore[arg-type]
        lambda: r.BodyMultipart(parts=(), subtype=b"MIXED"),
        lambda: r.BodyMultipart(parts=("x",), subtype=b"MIXED"),  # type: ignore[arg-type]
        lambda: r.BodyMultipart(
            parts=(r.BodyText(subtype=b"A", lines=0),), subtype=b"M", params=((b"a", b"b"),)
        ),
        lambda: r.Body(body=r.BodyText(subtype=b"A", lines=0, ext_fields=1)),
        lambda: r.Body(
            body=r.BodyMultipart(
                parts=(r.BodyText(subtype=b"A", lines=0, ext_fields=1),), subtype=b"M"
            )
        ),
        lambda: r.Body(body="x"),  # type: ignore[arg-type]
        lambda: r.BodyStructure(body="x"),  # type: ignore[arg-type]
        lambda: r.EnvelopeItem(envelope="x"),  # type: ignore[arg-type]
        lambda: r.BodySection(section="", data=None),  # type: ignore[arg-type]
        lambda: r.BodySection(section=Section(), data=b"\x00"),
        lambda: r.BodySection(section=Section(), origin=-1, data=None),
        lambda: r.Binary(data="x"),  # type: ignore[arg-type]
        lambda: r.Binary(part=[1], data=None),  # type: ignore[arg-type]
        lambda: r.Binary(part=(0,), data=None),
        lambda: r.Binary(origin=-1, data=None),
        lambda: r.BinarySize(size=-1),
        lambda: r.Rfc822(data=b"\x00"),
        lambda: r.ModSeq(value=0),
        lambda: r.EmailId(value="a b"),
        lambda: r.ThreadId(value=""),
        lambda: r.InternalDate(value=datetime.datetime(2020, 1, 1)),
        lambda: r.InternalDate(
            value=datetime.datetime(2020, 1, 1, microsecond=5, tzinfo=datetime.UTC)
        ),
        lambda: r.InternalDate(
            value=datetime.datetime(
                2020, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(seconds=30))
            )
        ),
        lambda: r.SaveDate(value="x"),  # type: ignore[arg-type]
        lambda: r.Fetch(seq=1, attributes=()),
        lambda: r.Fetch(seq=1, attributes=("x",)),  # type: ignore[arg-type]
    ],
)
def test_invalid_values_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(LocalProtocolError):
        build()


def test_format_refuses_non_response() -> None:
    with pytest.raises(LocalProtocolError):
        format_response("* OK")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        format_response(r.List(attributes=(), delimiter="/", mailbox="\udcff"))
    with pytest.raises(LocalProtocolError):
        format_response(
            r.Namespace(
                personal=(r.NamespaceEntry(prefix="\udcff", delimiter=None),),
                other=None,
                shared=None,
            )
        )


def test_format_badcharset_quoted() -> None:
    resp = r.Tagged(tag="A1", status="NO", code=r.BadCharset(charsets=(b"X Y", b"UTF-8")), text="x")
    wire = dump(format_response(resp))
    assert wire == b'A1 NO [BADCHARSET ("X Y" UTF-8)] x\r\n'
    assert parse_response(wire) == resp


def test_format_quotes_and_literals() -> None:
    env = r.Envelope(subject=b'a "q" \\ b', message_id=b"line\r\nbreak")
    resp = r.Fetch(seq=1, attributes=(r.EnvelopeItem(envelope=env),))
    frags = format_response(resp)
    assert (
        frags[0]
        == b'* 1 FETCH (ENVELOPE (NIL "a \\"q\\" \\\\ b" NIL NIL NIL NIL NIL NIL NIL {11}\r\n'
    )
    assert parse_response(dump(frags)) == resp
