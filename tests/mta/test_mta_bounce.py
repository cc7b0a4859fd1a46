"""Delivery reports (RFC 3464 / 6522 / 6533) and the NOTIFY rules (RFC 3461 section 4.1).

Every report is parsed back with the standard `email` package, and its
message/delivery-status part is checked field by field against the RFC 3464 grammar.
"""

from __future__ import annotations

import email
import email.message
import io
import re
import secrets
from collections.abc import Iterator
from email import policy
from email.utils import parsedate_to_datetime
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailproto_adapters.mta import bounce
from mailproto_adapters.mta.bounce import delivery_report, wants_report
from mailproto_adapters.mta.queue import QueuedRecipient, QueueEntry

ARRIVAL = 1_700_000_000.0
NOW = ARRIVAL + 3600
ORIGINAL = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: lunch\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"Shall we meet at noon?\r\n"
)
HEADER_BLOCK = ORIGINAL.split(b"\r\n\r\n")[0] + b"\r\n"


def entry(**kw: object) -> QueueEntry:
    fields: dict[str, object] = {
        "id": "0005f1a2b3c4d5e6a1b2",
        "sender": "alice@example.org",
        "recipients": [],
        "arrival": ARRIVAL,
        "next_attempt": ARRIVAL,
        "size": len(ORIGINAL),
    }
    fields.update(kw)
    return QueueEntry(**fields)  # type: ignore[arg-type]


def rcpt(address: str = "bob@example.net", **kw: object) -> QueuedRecipient:
    return QueuedRecipient(address=address, **kw)  # type: ignore[arg-type]


def report(
    e: QueueEntry | None = None,
    recipients: list[QueuedRecipient] | None = None,
    *,
    action: str = "failed",
    original: bytes = ORIGINAL,
    **kw: object,
) -> bytes:
    data = delivery_report(
        e or entry(),
        recipients if recipients is not None else [rcpt(last_reply="550 5.1.1 No such user")],
        action=action,
        reporting_mta="mail.example.org",
        message=io.BytesIO(original),
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )
    check_lines(data)
    return data


# --- checkers ---------------------------------------------------------------------------

DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"
)
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
TYPED = re.compile(rf"{ATOM};\s*\S.*")  # address-type ";" generic-address
MTA = re.compile(r"dns;\s*[A-Za-z0-9.\-\[\]:]+")  # mta-name-type ";" mta-name
STATUS = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")
PER_MESSAGE = [
    "Original-Envelope-Id",
    "Reporting-MTA",
    "DSN-Gateway",
    "Received-From-MTA",
    "Arrival-Date",
]
PER_RECIPIENT = [
    "Original-Recipient",
    "Final-Recipient",
    "Action",
    "Status",
    "Remote-MTA",
    "Diagnostic-Code",
    "Last-Attempt-Date",
    "Final-Log-ID",
    "Will-Retry-Until",
]


def check_lines(data: bytes) -> None:
    """CRLF only, no line over 998 octets, no NUL."""
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", data) is None
    assert b"\x00" not in data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def fields_of(block: bytes) -> list[tuple[str, str]]:
    """The fields of one header-style block, unfolded (RFC 5322 section 2.2.3)."""
    text = block.decode("utf-8")
    assert not text.startswith((" ", "\t")), "a block never starts with a continuation"
    out = []
    for field in re.split(r"\r\n(?![ \t])", text):
        name, colon, value = field.partition(":")
        assert colon, field
        assert re.fullmatch(r"[\x21-\x39\x3b-\x7e]+", name), name
        out.append((name, re.sub(r"\r\n(?=[ \t])", "", value).strip()))
    return out


def check_order(names: list[str], order: list[str]) -> None:
    """The fields of RFC 3464 in the grammar's order, each at most once, then only
    extension fields (``X-`` ones: we define no other)."""
    known = [n for n in names if n in order]
    assert names[: len(known)] == known, names
    assert known == sorted(known, key=order.index), names
    assert len(set(known)) == len(known), names
    for name in names[len(known) :]:
        assert name.startswith("X-"), name


def parse_status(body: bytes, *, utf8: bool = False) -> list[dict[str, str]]:
    """A message/(global-)delivery-status body checked against RFC 3464 section 2.1:
    per-message fields, then one block per recipient, blocks separated by an empty line."""
    assert body.endswith(b"\r\n")
    if not utf8:
        assert body.isascii()
    blocks = body[:-2].split(b"\r\n\r\n")
    assert len(blocks) >= 2
    parsed = []
    for i, block in enumerate(blocks):
        fields = fields_of(block)
        names = [n for n, _ in fields]
        check_order(names, PER_RECIPIENT if i else PER_MESSAGE)
        values = dict(fields)
        for name, value in fields:
            assert re.fullmatch(r"[^\x00-\x1f\x7f]*", value), (name, value)
            if name.endswith("-Date") or name == "Will-Retry-Until":
                assert DATE.fullmatch(value), value
                parsedate_to_datetime(value)
            elif name in ("Reporting-MTA", "Remote-MTA"):
                assert MTA.fullmatch(value), value
            elif name in ("Original-Recipient", "Final-Recipient", "Diagnostic-Code"):
                assert TYPED.fullmatch(value), value
            elif name == "Action":
                assert value in ("failed", "delayed", "delivered", "relayed", "expanded")
            elif name == "Status":
                assert STATUS.fullmatch(value), value
        if i == 0:
            assert "Reporting-MTA" in values
        else:
            for required in ("Final-Recipient", "Action", "Status"):
                assert required in values
            # RFC 3464 section 2.3.4: the status class agrees with the action.
            first = {"failed": "45", "delayed": "4", "delivered": "2", "relayed": "2"}
            assert values["Status"][0] in first[values["Action"]]
        parsed.append(values)
    return parsed


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    assert not msg.defects, msg.defects
    return msg


def parts(data: bytes) -> tuple[email.message.EmailMessage, list[email.message.EmailMessage]]:
    msg = parse(data)
    assert msg.get_content_type() == "multipart/report"
    payload = msg.get_payload()
    assert isinstance(payload, list)
    assert len(payload) == 3
    assert all(isinstance(p, email.message.EmailMessage) for p in payload)
    return msg, cast(list[email.message.EmailMessage], payload)


def subparts(part: email.message.EmailMessage) -> list[email.message.Message]:
    """The sub-messages the standard parser makes of a message/* part."""
    payload = part.get_payload()
    assert isinstance(payload, list)
    return cast(list[email.message.Message], payload)


def raw_part(data: bytes, index: int) -> tuple[bytes, bytes]:
    """(header block, body) of part ``index`` as octets, split on the boundary."""
    msg = parse(data)
    boundary = msg.get_boundary()
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.encode()
    pieces = data.split(delimiter)
    assert pieces[-1] == b"--\r\n"
    part = pieces[1 + index]
    assert part.startswith(b"\r\n")
    head, _, body = part[2:].partition(b"\r\n\r\n")
    return head + b"\r\n", body


def status_blocks(data: bytes, *, utf8: bool = False) -> list[dict[str, str]]:
    head, body = raw_part(data, 1)
    kind = "global-delivery-status" if utf8 else "delivery-status"
    assert f"Content-Type: message/{kind}".encode() in head
    return parse_status(body, utf8=utf8)


def text_of(data: bytes) -> str:
    _, payload = parts(data)
    content = payload[0].get_content()
    assert isinstance(content, str)
    return content


# --- the report -----------------------------------------------------------------------


@pytest.mark.parametrize("ret", [None, "FULL"])
def test_failed_report_returns_the_whole_message(ret: str | None) -> None:
    data = report(entry(ret=ret), [rcpt(last_reply="550 5.1.1 No such user")])
    msg, (text, status, returned) = parts(data)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mail.example.org>"
    assert msg["From"].addresses[0].display_name == "Mail Delivery System"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    assert b"\r\nTo: <alice@example.org>\r\n" in data
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert parsedate_to_datetime(msg["Date"]).timestamp() == NOW
    assert DATE.fullmatch(msg["Date"])
    assert re.fullmatch(r"<[^<>@\s]+@mail\.example\.org>", msg["Message-ID"])
    assert msg["MIME-Version"] == "1.0"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_param("report-type") == "delivery-status"
    assert text.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    assert returned.get_content_type() == "message/rfc822"
    assert raw_part(data, 2)[1] == ORIGINAL
    inner = subparts(returned)[0]
    assert inner["Subject"] == "lunch"
    [per_message, per_rcpt] = status_blocks(data)
    assert per_message["Reporting-MTA"] == "dns; mail.example.org"
    assert parsedate_to_datetime(per_message["Arrival-Date"]).timestamp() == ARRIVAL
    assert "Original-Envelope-Id" not in per_message
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@example.net"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert "Original-Recipient" not in per_rcpt
    assert "Will-Retry-Until" not in per_rcpt
    # The standard parser sees the same fields.
    blocks = subparts(status)
    assert blocks[1]["Final-Recipient"] == "rfc822; bob@example.net"
    content = text.get_content()
    assert "<bob@example.net>" in content
    assert "550 5.1.1 No such user" in content
    assert "Your message is attached." in content


def test_ret_hdrs_returns_the_header_block() -> None:
    data = report(entry(ret="HDRS"))
    _, (_, _, returned) = parts(data)
    assert returned.get_content_type() == "text/rfc822-headers"
    assert raw_part(data, 2)[1] == HEADER_BLOCK
    assert "only the headers" in text_of(data)


def test_over_max_returned_returns_the_headers_and_says_so() -> None:
    data = report(entry(ret="FULL"), max_returned=len(ORIGINAL) - 1)
    _, (_, _, returned) = parts(data)
    assert returned.get_content_type() == "text/rfc822-headers"
    assert raw_part(data, 2)[1] == HEADER_BLOCK
    assert f"larger than {len(ORIGINAL) - 1} octets" in text_of(data)
    # Exactly max_returned octets still go back whole.
    data = report(entry(), max_returned=len(ORIGINAL))
    assert raw_part(data, 2)[1] == ORIGINAL


def test_a_big_message_is_read_only_up_to_the_limit() -> None:
    class Counting(io.BytesIO):
        taken = 0

        def read(self, n: int | None = -1) -> bytes:
            chunk = super().read(n if n is not None and n < 1000 else 1000)  # short reads
            Counting.taken += len(chunk)
            return chunk

    big = ORIGINAL + b"x" * 76 + b"\r\n" * 1
    big += (b"y" * 78 + b"\r\n") * 30_000
    stream = Counting(big)
    data = delivery_report(
        entry(),
        [rcpt()],
        action="failed",
        reporting_mta="mail.example.org",
        message=stream,
        now=NOW,
        max_returned=10_000,
    )
    check_lines(data)
    assert Counting.taken == bounce.HEADER_LIMIT + 1
    assert raw_part(data, 2)[1] == HEADER_BLOCK


@pytest.mark.parametrize(
    "body",
    [b"bare LF\nhere\r\n", b"bare CR\rhere\r\n", b"x" * 999 + b"\r\n", b"nul \x00\r\n"],
)
def test_a_message_that_cannot_go_back_unchanged_returns_its_headers(body: bytes) -> None:
    data = report(original=HEADER_BLOCK + b"\r\n" + body)
    assert raw_part(data, 2)[1] == HEADER_BLOCK
    assert "cannot be sent back unchanged" in text_of(data)


def test_a_message_without_final_crlf_gets_one() -> None:
    data = report(original=ORIGINAL + b"no end")
    assert raw_part(data, 2)[1] == ORIGINAL + b"no end\r\n"


@pytest.mark.parametrize(
    ("original", "headers"),
    [
        (b"", b""),
        (b"\r\nbody only\r\n", b""),
        (b"Subject: only headers\r\nX-A: b", b"Subject: only headers\r\nX-A: b\r\n"),
        (b"Subject: lf\nX-N: \x00z\n\nbody\n", b"Subject: lf\r\nX-N: z\r\n"),
        (b"X-Long: " + b"a" * 1200 + b"\r\n\r\n", b"X-Long: " + b"a" * 990 + b"\r\n"),
    ],
)
def test_headers_are_normalised(original: bytes, headers: bytes) -> None:
    data = report(entry(ret="HDRS"), original=original)
    assert raw_part(data, 2)[1] == headers


def test_a_header_block_without_end_is_cut_at_the_limit() -> None:
    line = b"X-Filler: " + b"f" * 60 + b"\r\n"
    original = line * (bounce.HEADER_LIMIT // len(line) + 100)
    data = report(entry(ret="HDRS"), original=original)
    returned = raw_part(data, 2)[1]
    assert returned.endswith(b"\r\n")
    assert set(returned.split(b"\r\n")[:-1]) == {line[:-2]}
    assert len(returned) <= bounce.HEADER_LIMIT
    # One endless line: nothing can be returned.
    data = report(entry(ret="HDRS"), original=b"X" * (bounce.HEADER_LIMIT + 10))
    assert raw_part(data, 2)[1] == b""


def test_envid_and_orcpt_are_reported() -> None:
    recipients = [
        rcpt("bob@example.net", orcpt="rfc822;Bob@Example.NET"),
        rcpt("carol@example.net", orcpt="carol@old.example"),
        rcpt("dave@example.net", orcpt="x400; /C=US/ADMD=x/"),
        rcpt("erin@example.net", orcpt="bad type;erin@example.net"),
        rcpt("frank@example.net"),
        rcpt("gina@example.net", orcpt="rfc822; \r\n"),
    ]
    data = report(entry(envid="QQ314159"), recipients)
    per_message, *blocks = status_blocks(data)
    assert per_message["Original-Envelope-Id"] == "QQ314159"
    assert per_message["X-Mailproto-Queue-ID"] == "0005f1a2b3c4d5e6a1b2"
    assert [b.get("Original-Recipient") for b in blocks] == [
        "rfc822; Bob@Example.NET",
        "rfc822; carol@old.example",
        "x400; /C=US/ADMD=x/",
        "unknown; erin@example.net",
        None,
        None,
    ]
    assert [b["Status"] for b in blocks] == ["5.0.0"] * 6


def test_several_recipients_with_different_outcomes() -> None:
    recipients = [
        rcpt("a@example.net", last_reply="550 5.1.1 No such user", remote_mta="mx.example.net"),
        rcpt("b@example.net", last_reply="451 4.4.1 Connection timed out", attempts=7),
        rcpt("c@example.net", last_reply="554 Refused"),
        rcpt("d@example.net", last_reply="550 4.1.1 contradicts its code"),
        rcpt("e@example.net", last_reply="250 2.0.0 Ok"),
        rcpt("f@example.net", last_reply="no code at all"),
        rcpt("g@example.net", attempts=1, last_attempt=NOW - 60),
    ]
    data = report(entry(), recipients)
    _, *blocks = status_blocks(data)
    assert [b["Status"] for b in blocks] == [
        "5.1.1",
        "4.4.1",
        "5.0.0",
        "5.0.0",
        "5.0.0",
        "5.0.0",
        "5.0.0",
    ]
    assert blocks[0]["Remote-MTA"] == "dns; mx.example.net"
    assert "Remote-MTA" not in blocks[1]
    assert "Diagnostic-Code" not in blocks[6]
    assert parsedate_to_datetime(blocks[6]["Last-Attempt-Date"]).timestamp() == NOW - 60
    text = " ".join(text_of(data).split())
    assert "The last answer by mx.example.net was: 550 5.1.1 No such user" in text
    assert "(7 attempts)" in text
    assert "(1 attempt)" in text
    assert "no answer from another server was recorded" in text


def test_delayed_report() -> None:
    recipients = [
        rcpt("a@example.net", last_reply="451 4.7.1 Greylisted, come back later"),
        rcpt("b@example.net", last_reply="550 5.1.1 odd for a delay"),
        rcpt("c@example.net"),
    ]
    until = ARRIVAL + 5 * 86400
    data = report(entry(ret="FULL"), recipients, action="delayed", retry_until=until)
    msg, (_, _, returned) = parts(data)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert returned.get_content_type() == "text/rfc822-headers"
    _, *blocks = status_blocks(data)
    assert [b["Action"] for b in blocks] == ["delayed"] * 3
    assert [b["Status"] for b in blocks] == ["4.7.1", "4.0.0", "4.0.0"]
    for block in blocks:
        assert parsedate_to_datetime(block["Will-Retry-Until"]).timestamp() == until
    assert "keeps trying until" in text_of(data)
    data = report(entry(), [rcpt()], action="delayed")
    assert "Will-Retry-Until" not in status_blocks(data)[1]
    assert "keeps trying," in text_of(data)


def test_delivered_report() -> None:
    recipients = [
        rcpt("a@example.net", last_reply="250 2.1.5 Delivered", remote_mta="lmtp"),
        rcpt("b@example.net", last_reply="250 Ok"),
        rcpt("c@example.net", last_reply="550 5.1.1 nonsense"),
    ]
    data = report(entry(), recipients, action="delivered", retry_until=NOW)
    msg, (_, _, returned) = parts(data)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    assert returned.get_content_type() == "text/rfc822-headers"
    _, *blocks = status_blocks(data)
    assert [b["Status"] for b in blocks] == ["2.1.5", "2.0.0", "2.0.0"]
    assert all("Will-Retry-Until" not in b for b in blocks)
    assert "was delivered" in text_of(data)


def test_relayed_report() -> None:
    """RFC 3461 section 5.2.2 (b): passed to a hop without DSN, NOTIFY=SUCCESS asked."""
    recipients = [rcpt(last_reply="250 2.6.0 Queued as 4F1", remote_mta="mx.example.net")]
    data = report(entry(), recipients, action="relayed")
    msg, (_, _, returned) = parts(data)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    assert returned.get_content_type() == "text/rfc822-headers"
    [_, block] = status_blocks(data)
    assert (block["Action"], block["Status"]) == ("relayed", "2.6.0")
    assert "does not send delivery reports" in " ".join(text_of(data).split())


def test_multiline_and_long_diagnostics_are_folded() -> None:
    long_word = "z" * 2500
    recipients = [
        rcpt(
            "a@example.net",
            last_reply="550-5.7.1 Rejected by policy\n550-5.7.1 see\n550 5.7.1 site",
        ),
        rcpt("b@example.net", last_reply="452 4.2.2 " + "Mailbox full " * 40),
        rcpt("c@example.net", last_reply=f"554 5.6.0 {long_word} end"),
        rcpt("d@example.net", last_reply="550 5.1.1 " + "w" * 5000),
        rcpt("e@example.net", last_reply="\r\n \r\n"),
    ]
    data = report(entry(), recipients)
    _, *blocks = status_blocks(data)
    assert blocks[0]["Diagnostic-Code"] == "smtp; 550-5.7.1 Rejected by policy see site"
    assert blocks[0]["Status"] == "5.7.1"
    assert (
        blocks[1]["Diagnostic-Code"].split()
        == ["smtp;", "452", "4.2.2"]
        + [
            "Mailbox",
            "full",
        ]
        * 40
    )
    # A run without white space is split, never longer than a line may be.
    assert "".join(blocks[2]["Diagnostic-Code"].split()[3:-1]) == long_word
    assert blocks[3]["Diagnostic-Code"].endswith("...")
    assert len(blocks[3]["Diagnostic-Code"]) < bounce.DIAGNOSTIC_LIMIT + 100
    assert "Diagnostic-Code" not in blocks[4]
    _, body = raw_part(data, 1)
    lines = body.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert any(line.startswith(b" ") for line in lines)  # folded


def test_network_text_never_makes_a_header_line() -> None:
    evil = "\r\nBcc: victim@example.com\r\n\r\n--x\rInjected: 1\n"
    recipients = [
        rcpt("bob@example.net", last_reply=f"550 5.1.1 no{evil}", remote_mta=f"mx{evil}"),
        rcpt(f"carol{evil}@example.net", orcpt=f"rfc822;c{evil}@x"),
    ]
    data = report(entry(sender=f"alice{evil}@example.org", envid=f"id{evil}"), recipients)
    msg, (text, status, returned) = parts(data)
    for m in (msg, text, status, returned):
        assert m["Bcc"] is None
        assert m["Injected"] is None
    assert b"\r\nBcc:" not in data
    assert b"\r\nInjected:" not in data
    per_message, *blocks = status_blocks(data)
    assert set(per_message) == {
        "Original-Envelope-Id",
        "Reporting-MTA",
        "X-Mailproto-Queue-ID",
        "Arrival-Date",
    }
    assert "Bcc: victim@example.com" in blocks[0]["Diagnostic-Code"]
    assert MTA.fullmatch(blocks[0]["Remote-MTA"])
    assert b"\r\nTo: <alice " in data


def test_remote_mta_made_only_of_junk_is_left_out() -> None:
    data = report(entry(), [rcpt(remote_mta="  ")])
    assert "Remote-MTA" not in status_blocks(data)[1]


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("mx.bücher.example", "dns; mx.xn--bcher-kva.example"),
        ("[192.0.2.1]", "dns; [192.0.2.1]"),
        ("ü" * 70 + ".example", "dns; .example"),  # no IDNA form: the ASCII left of it
    ],
)
def test_remote_mta_names(host: str, name: str) -> None:
    data = report(entry(), [rcpt(remote_mta=host)])
    assert status_blocks(data)[1]["Remote-MTA"] == name


def test_utf8_report_uses_the_global_types() -> None:
    recipients = [
        rcpt(
            "jörg+x=y@bücher.example",
            orcpt="rfc822;Jörg@bücher.example",
            last_reply="550 5.1.1 Unbekannt: Jörg",
        ),
        rcpt("plain@example.net", orcpt="utf-8;J\\x{F6}rg@example.net"),
    ]
    original = "From: Jörg <jörg@bücher.example>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    data = report(entry(smtputf8=True, sender="renée@exemple.fr"), recipients, original=original)
    msg = parse(data)
    assert msg.get_param("report-type") == "global-delivery-status"
    assert msg["Content-Transfer-Encoding"] == "8bit"
    assert "\r\nTo: <renée@exemple.fr>\r\n".encode() in data
    _, payload = parts(data)
    assert payload[1].get_content_type() == "message/global-delivery-status"
    assert payload[2].get_content_type() == "message/global"
    assert raw_part(data, 2)[1] == original
    _, *blocks = status_blocks(data, utf8=True)
    assert blocks[0]["Final-Recipient"] == "utf-8; jörg\\x{2B}x\\x{3D}y@bücher.example"
    assert blocks[0]["Original-Recipient"] == "utf-8; Jörg@bücher.example"
    assert blocks[0]["Diagnostic-Code"] == "smtp; 550 5.1.1 Unbekannt: Jörg"
    assert blocks[1]["Final-Recipient"] == "rfc822; plain@example.net"
    assert blocks[1]["Original-Recipient"] == "utf-8; J\\x{F6}rg@example.net"
    assert "<jörg+x=y@bücher.example>:" in text_of(data)
    head, _ = raw_part(data, 1)
    assert b"Content-Transfer-Encoding: 8bit" in head
    # Headers only: message/global-headers.
    data = report(entry(smtputf8=True, ret="HDRS"), recipients, original=original)
    _, payload = parts(data)
    assert payload[2].get_content_type() == "message/global-headers"


def test_a_non_ascii_address_alone_makes_the_report_global() -> None:
    data = report(entry(), [rcpt("zoë@example.net")])
    assert parse(data).get_param("report-type") == "global-delivery-status"
    assert status_blocks(data, utf8=True)[1]["Final-Recipient"] == "utf-8; zoë@example.net"


def test_ascii_report_keeps_to_ascii() -> None:
    recipients = [rcpt(last_reply="550 5.1.1 Benutzer unbekannt: Jörg \udcff")]
    data = report(entry(), recipients)
    _, status_body = raw_part(data, 1)
    assert status_body.isascii()
    assert raw_part(data, 0)[1].isascii()
    assert status_blocks(data)[1]["Diagnostic-Code"].endswith("J?rg")
    assert parse(data)["Content-Transfer-Encoding"] == "7bit"
    # An 8-bit original travels with its part and the whole labelled 8bit.
    data = report(entry(), original=ORIGINAL.replace(b"noon", "midi à l'heure".encode()))
    assert parse(data)["Content-Transfer-Encoding"] == "8bit"
    head, _ = raw_part(data, 2)
    assert b"Content-Transfer-Encoding: 8bit" in head


def test_boundary_never_occurs_in_the_content(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens: Iterator[str] = iter(["aaaa", "bbbb", "cccc", "dddd"])
    monkeypatch.setattr(secrets, "token_hex", lambda _n: next(tokens))
    original = ORIGINAL + b"--=_0005f1a2b3c4d5e6a1b2.aaaa\r\n"
    data = delivery_report(
        entry(),
        [rcpt()],
        action="failed",
        reporting_mta="mail.example.org",
        message=io.BytesIO(original),
        now=NOW,
    )
    # "aaaa" occurs in the message, so "bbbb" it is ("cccc" goes to the Message-ID).
    assert parse(data).get_boundary() == "=_0005f1a2b3c4d5e6a1b2.bbbb"
    assert parse(data)["Message-ID"] == "<0005f1a2b3c4d5e6a1b2.cccc@mail.example.org>"
    assert raw_part(data, 2)[1] == original


def test_message_ids_are_unique() -> None:
    ids = {parse(report())["Message-ID"] for _ in range(20)}
    assert len(ids) == 20


def test_reporting_mta_is_cleaned() -> None:
    data = delivery_report(
        entry(id="a b/c"),
        [rcpt()],
        action="failed",
        reporting_mta="bad\r\nhost name",
        message=io.BytesIO(ORIGINAL),
        now=NOW,
    )
    msg = parse(data)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@badhostname>"
    assert msg["Message-ID"].startswith("<abc.")
    data = delivery_report(
        entry(id="///"),
        [rcpt()],
        action="failed",
        reporting_mta="\r\n",
        message=io.BytesIO(ORIGINAL),
        now=NOW,
    )
    msg = parse(data)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@localhost>"
    assert msg["Message-ID"].startswith("<report.")


@pytest.mark.parametrize(
    ("kw", "recipients"),
    [
        ({"action": "expanded"}, [rcpt()]),
        ({"action": "failed"}, []),
        ({"action": "failed", "e": entry(sender="")}, [rcpt()]),
    ],
)
def test_refused_reports(kw: dict[str, object], recipients: list[QueuedRecipient]) -> None:
    e = kw.pop("e", entry())
    with pytest.raises(ValueError):
        delivery_report(
            e,  # type: ignore[arg-type]
            recipients,
            reporting_mta="h",
            message=io.BytesIO(ORIGINAL),
            now=NOW,
            **kw,  # type: ignore[arg-type]
        )


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    reply=st.text(max_size=300),
    address=st.text(max_size=80).map(lambda t: t + "x@example.net"),
    sender=st.text(min_size=1, max_size=80),
    remote=st.text(max_size=40),
    envid=st.none() | st.text(max_size=60),
    orcpt=st.none() | st.text(max_size=80),
    original=st.binary(max_size=600),
    ret=st.sampled_from([None, "FULL", "HDRS"]),
    action=st.sampled_from(["failed", "delayed", "delivered", "relayed"]),
    utf8=st.booleans(),
)
def test_any_input_gives_a_well_formed_report(
    reply: str,
    address: str,
    sender: str,
    remote: str,
    envid: str | None,
    orcpt: str | None,
    original: bytes,
    ret: str | None,
    action: str,
    utf8: bool,
) -> None:
    r = rcpt(address, last_reply=reply, remote_mta=remote, orcpt=orcpt, last_attempt=NOW)
    e = entry(sender=sender, envid=envid, ret=ret, smtputf8=utf8)
    data = report(e, [r, rcpt()], action=action, original=original, retry_until=NOW)
    msg, _ = parts(data)
    glob = msg.get_param("report-type") == "global-delivery-status"
    assert glob or not utf8
    per_message, *blocks = status_blocks(data, utf8=glob)
    assert len(blocks) == 2
    assert all(b["Action"] == action for b in blocks)
    assert ("Original-Envelope-Id" in per_message) is (envid is not None)
    if orcpt is None:
        assert "Original-Recipient" not in blocks[0]


# --- NOTIFY (RFC 3461 section 4.1) -------------------------------------------------------


@pytest.mark.parametrize(
    ("notify", "failed", "delayed", "delivered"),
    [
        (None, True, True, False),
        (frozenset(), False, False, False),
        (frozenset({"SUCCESS"}), False, False, True),
        (frozenset({"FAILURE"}), True, False, False),
        (frozenset({"DELAY"}), False, True, False),
        (frozenset({"FAILURE", "DELAY"}), True, True, False),
        (frozenset({"SUCCESS", "FAILURE", "DELAY"}), True, True, True),
    ],
)
def test_wants_report(
    notify: frozenset[str] | None, failed: bool, delayed: bool, delivered: bool
) -> None:
    r = rcpt(notify=notify)
    e = entry()
    assert wants_report(e, r, "failed") is failed
    assert wants_report(e, r, "delayed") is delayed
    assert wants_report(e, r, "delivered") is delivered
    assert wants_report(e, r, "relayed") is delivered
    assert wants_report(e, r, "expanded") is False
    # Never to the null sender, never about a report.
    for action in ("failed", "delayed", "delivered", "relayed"):
        assert wants_report(entry(sender=""), r, action) is False
        assert wants_report(entry(kind="bounce"), r, action) is False
