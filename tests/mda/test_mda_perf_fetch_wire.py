"""FETCH of the message list written straight to bytes gives what the objects give.

`imap_data.fetch_wire_many` (with `mailproto.imap.FetchWriter` and the wire forms of the
envelopes cached by `MaildirMailbox.envelope_wires_many`) must write, byte for byte,
what `fetch_many` + `format_response` write for the same items, with FLAGS as the
session shows it; a cached form that does not check falls back to the parsed envelope.
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto import LocalProtocolError
from mailproto.imap import (
    FetchWriter,
    ServerConfig,
    ServerConnection,
    encode_envelope,
    format_response,
    is_envelope_wire,
    parse_response,
)
from mailproto.imap import responses as r
from mailproto.imap.commands import FetchAttr, FetchBody
from mailproto.imap.responses import Address, Envelope
from mailproto.message import envelope, parse_message
from mailproto_adapters.mda import imap_data, maildir
from mailproto_adapters.mda.maildir import MaildirMailbox, MaildirStore
from mailproto_adapters.mda.store import Mailbox, MessageRecord

MESSAGES = (
    b"From: Alice Example <alice@example.com>\r\nTo: bob@example.org, Carol"
    b" <carol@example.net>\r\nCc: d@example.com\r\nBcc: e@example.com\r\n"
    b"Reply-To: list@example.com\r\nSender: s@example.com\r\nSubject: Hello\r\n"
    b"Date: Mon, 4 Mar 2024 10:00:00 +0100\r\nMessage-ID: <1@example.com>\r\n"
    b"In-Reply-To: <0@example.com>\r\n\r\nbody\r\n",
    b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nTo: friends: a@example.com,"
    b' b@example.com;, @route,@other:c@example.com\r\nSubject: caf\xe9 "quoted"\r\n'
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n"
    b"--xx\r\nContent-Type: text/plain\r\n\r\nhi\r\n--xx--\r\n",
    b"Subject: no addresses at all\r\n\r\n",
    b"\r\njust a body\r\n",
    b'To: undisclosed-recipients:;\r\nFrom: "Last, First" <lf@example.com>\r\n\r\n.\r\n',
)
MORE = (
    b"Subject: caf\xc3\xa9 8-bit\r\nFrom: J\xc3\xb6rg <j@example.com>\r\n\r\nx\r\n",
    b"Subject: " + b"long " * 300 + b"\r\n\r\n",
    b'Subject: back\\slash "and" quotes\r\nTo: "a\\"b" <x@example.com>\r\n\r\n',
)


@pytest.fixture
def box(tmp_path: Path) -> MaildirMailbox:
    user = MaildirStore(tmp_path / "mail").user("alice")
    for i, message in enumerate(MESSAGES + MORE):
        flags = ["\\Seen"] if i % 2 else []
        user.deliver(message, flags=flags)
    mb = user.mailbox("INBOX")
    uids = [rec.uid for rec in mb.snapshot()]
    mb.set_flags(uids[:1], ["$Forwarded", "\\Flagged"])
    return mb


def _items(*names: str) -> tuple[FetchAttr, ...]:
    return tuple(FetchAttr(name=cast(Any, n)) for n in names)


def _expected(
    box: Mailbox,
    records: list[MessageRecord],
    items: Any,
    *,
    uid: bool,
    condstore: bool,
    recent: frozenset[int] = frozenset(),
) -> bytes:
    """What the session wrote before: objects, FLAGS replaced as `flags_response` has it."""
    out = []
    for seq, (rec, attrs, _seen) in enumerate(
        imap_data.fetch_many(box, records, items, uid=uid, condstore=condstore, recent=recent),
        1,
    ):
        shown = set(rec.all_flags) | ({"\\Recent"} if rec.uid in recent else set())
        attrs = [
            r.FetchFlags(flags=tuple(sorted(shown))) if isinstance(a, r.FetchFlags) else a
            for a in attrs
        ]
        out.append(b"".join(_dump(r.Fetch(seq=seq, attributes=tuple(attrs)))))
    return b"".join(out)


def _dump(resp: r.Response) -> list[bytes]:
    return [f if isinstance(f, bytes) else f.data for f in format_response(resp)]


def _wire(box: Mailbox, records: list[MessageRecord], names: Any, **kw: Any) -> bytes:
    seqs = list(range(1, len(records) + 1))
    return b"".join(imap_data.fetch_wire_many(box, records, seqs, names, **kw))


@pytest.mark.parametrize(
    ("names", "uid", "condstore"),
    [
        (("FLAGS", "UID", "RFC822.SIZE", "ENVELOPE"), False, False),
        (("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"), True, False),
        (("ENVELOPE", "FLAGS", "ENVELOPE"), True, True),
        (("UID", "MODSEQ", "FLAGS"), True, True),
        (("RFC822.SIZE",), False, True),
    ],
)
def test_wire_equals_objects(
    box: MaildirMailbox, names: tuple[str, ...], uid: bool, condstore: bool
) -> None:
    records = box.snapshot()
    items = _items(*names)
    recent = frozenset({records[-1].uid})
    wire_names = imap_data.wire_names(items, uid=uid, condstore=condstore)
    assert wire_names is not None
    for _ in range(2):  # the second time from the cached wire forms
        got = _wire(box, records, wire_names, recent=recent, batch=3)
        assert got == _expected(box, records, items, uid=uid, condstore=condstore, recent=recent)


def test_wire_names() -> None:
    assert imap_data.wire_names(_items("FLAGS", "UID"), uid=True) == ("FLAGS", "UID")
    assert imap_data.wire_names(_items("FLAGS"), uid=True, condstore=True) == (
        "UID",
        "FLAGS",
        "MODSEQ",
    )
    assert imap_data.wire_names(_items("FLAGS", "BODY"), uid=False) is None
    assert imap_data.wire_names((FetchBody(peek=True),), uid=False) is None
    assert imap_data.wire_names((), uid=False) is None


def _envwire_rows(box: MaildirMailbox) -> dict[int, bytes]:
    with sqlite3.connect(Path(box.path) / maildir.DB_FILE) as conn:
        return dict(conn.execute("SELECT uid, data FROM envwire").fetchall())


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"garbage",
        b'("x" NIL)\r\n* 1 EXPUNGE',
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL {5}\r\nab)",
    ],
)
def test_tampered_wire_falls_back(box: MaildirMailbox, bad: bytes) -> None:
    records = box.snapshot()
    names = ("FLAGS", "UID", "ENVELOPE")
    expected = _expected(box, records, _items(*names), uid=False, condstore=False)
    assert _wire(box, records, names) == expected
    f = box._folder
    with f.tlock, f.tx() as conn:
        conn.execute("UPDATE envwire SET data=? WHERE uid=?", (bad, records[1].uid))
    assert _wire(box, records, names) == expected


def test_expunge_drops_cached_wire(box: MaildirMailbox) -> None:
    records = box.snapshot()
    box.envelope_wires_many(rec.uid for rec in records)
    assert set(_envwire_rows(box)) == {rec.uid for rec in records}
    box.set_flags([records[0].uid], ["\\Deleted"])
    box.expunge()
    assert records[0].uid not in _envwire_rows(box)
    out = _wire(box, records, ("UID", "ENVELOPE"))
    assert out.count(b"FETCH") == len(records) - 1  # the expunged one is skipped


def test_base_class_wires(box: MaildirMailbox) -> None:
    uids = [rec.uid for rec in box.snapshot()]
    base = Mailbox.envelope_wires_many(box, uids)
    fast = box.envelope_wires_many(uids)
    assert list(base) == list(fast) == uids
    for uid in uids:
        env = base[uid]
        assert isinstance(env, Envelope)
        assert encode_envelope(env) == fast[uid]


def test_reader_finds_renamed_file(box: MaildirMailbox) -> None:
    uids = [rec.uid for rec in box.snapshot()]
    read = box.reader(uids)
    before = read(uids[0])
    box.set_flags([uids[0]], ["\\Answered"])  # renames the file
    assert read(uids[0]) == before
    assert Mailbox.reader(box, uids)(uids[0]) == before
    box.set_flags([uids[0]], ["\\Deleted"])
    box.expunge()
    with pytest.raises(KeyError):
        read(uids[0])


# --- the core writer ------------------------------------------------------------------

_STRINGS = st.one_of(st.none(), st.binary(max_size=40).filter(lambda b: b"\x00" not in b))
_ADDRESSES = st.one_of(
    st.none(),
    st.lists(
        st.builds(Address, name=_STRINGS, adl=_STRINGS, mailbox=_STRINGS, host=_STRINGS),
        min_size=1,
        max_size=3,
    ).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        Envelope,
        date=_STRINGS,
        subject=_STRINGS,
        from_=_ADDRESSES,
        sender=_ADDRESSES,
        reply_to=_ADDRESSES,
        to=_ADDRESSES,
        cc=_ADDRESSES,
        bcc=_ADDRESSES,
        in_reply_to=_STRINGS,
        message_id=_STRINGS,
    )
)
def test_encode_envelope_round_trip(env: Envelope) -> None:
    wire = encode_envelope(env)
    assert is_envelope_wire(wire)
    line = FetchWriter(["ENVELOPE"]).line((1, (), 0, None, 0, wire, 0))
    assert line == b"".join(_dump(r.Fetch(seq=1, attributes=(r.EnvelopeItem(envelope=env),))))
    parsed = parse_response(line)
    assert isinstance(parsed, r.Fetch)
    assert parsed.attributes == (r.EnvelopeItem(envelope=env),)
    # one octet less, or a cut literal, is no envelope
    assert not is_envelope_wire(wire[:-1])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parsed_envelopes_encode_and_check(data: bytes) -> None:
    wire = encode_envelope(envelope(parse_message(data)))
    assert is_envelope_wire(wire)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"NIL",
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ",
        b'("\xc3\xa9" NIL NIL NIL NIL NIL NIL NIL NIL NIL)',
        b'("a\r\n" NIL NIL NIL NIL NIL NIL NIL NIL NIL)',
        b"({3}\r\nab NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"({2}\r\na\x00 NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"({99999999999}\r\nab NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(NIL NIL () NIL NIL NIL NIL NIL NIL NIL)",
        b"(NIL NIL ((NIL NIL NIL)) NIL NIL NIL NIL NIL NIL NIL)",
        # a literal announced inside a quoted string: a line break on the wire
        b'("x{1}\r\nY" NIL NIL NIL NIL NIL NIL NIL NIL NIL)',
        b'("x {1}\r\nY NIL" NIL NIL NIL NIL NIL NIL NIL NIL)',
        b"(NIL{1}\r\nY NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(\x00 NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    ],
)
def test_not_envelope_wire(data: bytes) -> None:
    assert not is_envelope_wire(data)
    with pytest.raises(LocalProtocolError):
        FetchWriter(["ENVELOPE"]).line((1, (), 0, None, 0, data, 0))


def test_literal_envelope_wire() -> None:
    data = b"({2}\r\n\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert is_envelope_wire(data)
    assert not is_envelope_wire(data.decode("latin-1"))  # type: ignore[arg-type]


_DATE = datetime.datetime(2024, 3, 4, 10, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("names", "row"),
    [
        (["UID"], (0, (), 1, None, 0, None, 0)),  # sequence number 0
        (["UID"], (1, (), 0, None, 0, None, 0)),  # UID 0
        (["UID"], (1, (), True, None, 0, None, 0)),  # not an int
        (["RFC822.SIZE"], (1, (), 1, None, -1, None, 0)),
        (["MODSEQ"], (1, (), 1, None, 0, None, 0)),
        (["FLAGS"], (1, ("bad flag",), 1, None, 0, None, 0)),
        (["FLAGS"], (1, ("\\Seen)",), 1, None, 0, None, 0)),
        (["ENVELOPE"], (1, (), 1, None, 0, None, 0)),
        (["INTERNALDATE"], (1, (), 1, None, 0, None, 0)),
        (["INTERNALDATE"], (1, (), 1, _DATE.replace(tzinfo=None), 0, None, 0)),
    ],
)
def test_writer_refuses_bad_values(names: list[str], row: Any) -> None:
    with pytest.raises(LocalProtocolError):
        FetchWriter(names).line(row)
    with pytest.raises(LocalProtocolError):
        FetchWriter(names).lines([row])


def test_writer_names() -> None:
    with pytest.raises(LocalProtocolError):
        FetchWriter([])
    with pytest.raises(LocalProtocolError):
        FetchWriter(["BODY"])
    w = FetchWriter(["UID", "FLAGS", "UID"])
    assert w.names == ("UID", "FLAGS")
    row = (7, ("\\Seen", "$Forwarded"), 9, _DATE, 0, None, 3)
    assert w.line(row) == b"* 7 FETCH (UID 9 FLAGS (\\Seen $Forwarded))\r\n"
    assert FetchWriter(["INTERNALDATE", "MODSEQ"]).lines([row, row]) == (
        b'* 7 FETCH (INTERNALDATE " 4-Mar-2024 10:00:00 +0000" MODSEQ (3))\r\n' * 2
    )
    env = Envelope(subject=b"s")
    assert FetchWriter(["ENVELOPE"]).line((1, (), 0, None, 0, env, 0)) == b"".join(
        _dump(r.Fetch(seq=1, attributes=(r.EnvelopeItem(envelope=env),)))
    )
    with pytest.raises(LocalProtocolError):
        encode_envelope("not an envelope")  # type: ignore[arg-type]


def test_many_flag_lists_are_not_all_kept() -> None:
    w = FetchWriter(["FLAGS"])
    for i in range(5000):
        assert w.line((1, (f"k{i}",), 0, None, 0, None, 0)) == b"* 1 FETCH (FLAGS (k%d))\r\n" % i


def test_send_fetch_lines_state() -> None:
    conn = ServerConnection(ServerConfig())
    with pytest.raises(LocalProtocolError):
        conn.send_fetch_lines(b"* 1 FETCH (UID 1)\r\n")  # before the greeting
    conn.send(r.Untagged(status="OK", text="hi"))
    assert conn.send_fetch_lines(b"* 1 FETCH (UID 1)\r\n") == b"* 1 FETCH (UID 1)\r\n"
    conn.send(r.Untagged(status="BYE", text="bye"))
    with pytest.raises(LocalProtocolError):
        conn.send_fetch_lines(b"* 1 FETCH (UID 1)\r\n")


def test_send_fetch_lines_after_continuation() -> None:
    conn = ServerConnection(ServerConfig())
    conn.send(r.Untagged(status="OK", text="hi"))
    conn.receive_data(b"a LOGIN {3}\r\n")
    out = conn.send_fetch_lines(b"* 1 FETCH (UID 1)\r\n")
    assert out.endswith(b"* 1 FETCH (UID 1)\r\n")
    assert out.startswith(b"+") or out == b"* 1 FETCH (UID 1)\r\n"
