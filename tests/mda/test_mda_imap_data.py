"""FETCH / SEARCH / STATUS data from a real Maildir store, against mailproto.message."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from mailproto.imap import Section, StatusItem, parse_command
from mailproto.imap.commands import (
    FetchAttr,
    FetchBinary,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Search,
    SearchText,
)
from mailproto.imap.responses import (
    Binary,
    BinarySize,
    Body,
    BodySection,
    BodyStructure,
    EnvelopeItem,
    FetchAttribute,
    FetchFlags,
    InternalDate,
    ModSeq,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    Uid,
)
from mailproto.message import (
    binary,
    binary_size,
    body_structure,
    envelope,
    parse_message,
    search,
    section,
)
from mailproto_adapters.mda.imap_data import (
    UnknownCte,
    UnsupportedItem,
    expand_items,
    fetch_attributes,
    fetch_many,
    message_infos,
    sets_seen,
    status_values,
)
from mailproto_adapters.mda.maildir import MaildirMailbox, MaildirStore
from mailproto_adapters.mda.store import MessageRecord

PLAIN = (
    b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n"
    b"Subject: plain one\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <p1@example.com>\r\n\r\nHello Bob,\r\nthe plain body.\r\n"
)
MULTI = (
    b"From: Carol <carol@example.com>\r\nTo: bob@example.com\r\n"
    b"Subject: with attachment\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 notes\r\n"
    b"--XX\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
    b"Content-Disposition: attachment; filename=a.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgc=\r\n"
    b"--XX\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-weird\r\n\r\n"
    b"zzz\r\n--XX--\r\n"
)
RFC822 = (
    b"From: Dan <dan@example.com>\r\nSubject: forwarded\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
    b"--B\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: Eve <eve@example.com>\r\nSubject: inner secret\r\n\r\ninner body text\r\n"
    b"--B--\r\n"
)
MESSAGES = (PLAIN, MULTI, RFC822)


class CountingMailbox:
    """A wrapper that counts `open` calls and `metadata_many` batches."""

    def __init__(self, box: MaildirMailbox) -> None:
        self.box = box
        self.opens = 0
        self.metadata_calls = 0
        self.many_calls: list[int] = []

    def open(self, uid: int) -> BinaryIO:
        self.opens += 1
        return self.box.open(uid)

    def metadata(self, uid: int) -> Any:
        self.metadata_calls += 1
        return self.box.metadata(uid)

    def metadata_many(self, uids: Any) -> Any:
        uids = list(uids)
        self.many_calls.append(len(uids))
        return self.box.metadata_many(uids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.box, name)


@pytest.fixture
def box(tmp_path: Path) -> MaildirMailbox:
    user = MaildirStore(tmp_path / "mail").user("alice")
    date = datetime.datetime(
        2024, 3, 5, 9, 3, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    for i, raw in enumerate(MESSAGES):
        user.deliver(raw, flags=("\\Flagged", "Work") if i == 1 else (), internal_date=date)
    return user.mailbox("INBOX")


def counted(box: MaildirMailbox) -> Any:
    return CountingMailbox(box)


def attr(name: str) -> FetchAttr:
    return FetchAttr(name=name)  # type: ignore[arg-type]


def record_of(box: MaildirMailbox, uid: int) -> MessageRecord:
    return next(r for r in box.snapshot() if r.uid == uid)


def fetch(
    box: Any, number: int, items: Sequence[FetchItem], **kw: Any
) -> tuple[list[FetchAttribute], bool]:
    """fetch_attributes for the message with UID ``number`` (``uid`` False by default)."""
    kw.setdefault("uid", False)
    record = record_of(box.box if isinstance(box, CountingMailbox) else box, number)
    return fetch_attributes(box, record, items, **kw)


def keys(text: bytes) -> Any:
    command = parse_command(b"t SEARCH " + text + b"\r\n")
    assert isinstance(command, Search)
    return command.criteria


# --- macros and order ----------------------------------------------------------------


def test_expand_items_macros() -> None:
    fast = (attr("FLAGS"), attr("INTERNALDATE"), attr("RFC822.SIZE"))
    assert expand_items("FAST") == fast
    assert expand_items("ALL") == (*fast, attr("ENVELOPE"))
    assert expand_items("FULL") == (*fast, attr("ENVELOPE"), attr("BODY"))
    assert expand_items(attr("UID")) == (attr("UID"),)
    items = (attr("UID"), FetchBody(section=Section()))
    assert expand_items(items) == items
    with pytest.raises(ValueError):
        expand_items("MOST")


def test_order_uid_first_and_modseq(box: MaildirMailbox) -> None:
    out, _ = fetch(box, 1, (attr("FLAGS"), attr("RFC822.SIZE")), uid=True)
    assert [type(a) for a in out] == [Uid, FetchFlags, Rfc822Size]
    out, _ = fetch(box, 1, (attr("FLAGS"), attr("UID")), uid=True)
    assert [type(a) for a in out] == [FetchFlags, Uid]  # asked: where asked
    out, _ = fetch(box, 1, (attr("FLAGS"),), uid=False, condstore=True)
    rec = record_of(box, 1)
    assert out == [FetchFlags(flags=()), ModSeq(value=rec.modseq)]
    out, _ = fetch(box, 1, (attr("MODSEQ"), attr("FLAGS")), condstore=True)
    assert [type(a) for a in out] == [ModSeq, FetchFlags]
    out, _ = fetch(box, 1, (attr("UID"), attr("UID")))
    assert out == [Uid(value=1)]


# --- every item kind, against mailproto.message on the same bytes ----------------------


def test_cheap_and_metadata_items(box: MaildirMailbox) -> None:
    for uid, raw in enumerate(MESSAGES, 1):
        rec = record_of(box, uid)
        msg = parse_message(raw)
        items = (*expand_items("FULL"), attr("BODYSTRUCTURE"), attr("UID"))
        out, seen = fetch(box, uid, items)
        assert not seen
        flags = ("\\Flagged", "Work") if uid == 2 else ()
        assert out == [
            FetchFlags(flags=flags),
            InternalDate(value=rec.internal_date),
            Rfc822Size(value=len(raw)),
            EnvelopeItem(envelope=envelope(msg)),
            Body(body=body_structure(msg, extensible=False)),
            BodyStructure(body=body_structure(msg, extensible=True)),
            Uid(value=uid),
        ]


def test_flags_recent(box: MaildirMailbox) -> None:
    out, _ = fetch(box, 2, (attr("FLAGS"),), recent=True)
    assert out == [FetchFlags(flags=("\\Flagged", "\\Recent", "Work"))]


SECTIONS = [
    Section(),
    Section(text="HEADER"),
    Section(text="TEXT"),
    Section(text="HEADER.FIELDS", fields=(b"Subject", b"From")),
    Section(text="HEADER.FIELDS.NOT", fields=(b"Subject",)),
    Section(part=(1,)),
    Section(part=(1,), text="MIME"),
    Section(part=(2,)),
    Section(part=(2,), text="MIME"),
    Section(part=(2,), text="HEADER"),
    Section(part=(2,), text="TEXT"),
    Section(part=(2, 1)),
    Section(part=(3,)),
    Section(part=(9,)),
]


@pytest.mark.parametrize("uid", [1, 2, 3])
def test_sections_match_message_functions(box: MaildirMailbox, uid: int) -> None:
    raw = MESSAGES[uid - 1]
    msg = parse_message(raw)
    items = tuple(FetchBody(section=s, peek=True) for s in SECTIONS)
    out, seen = fetch(box, uid, items)
    assert not seen
    assert out == [BodySection(section=s, data=section(msg, s)) for s in SECTIONS]
    out, _ = fetch(box, uid, (attr("RFC822"), attr("RFC822.HEADER"), attr("RFC822.TEXT")))
    assert out == [
        Rfc822(data=raw),
        Rfc822Header(data=section(msg, Section(text="HEADER"))),
        Rfc822Text(data=section(msg, Section(text="TEXT"))),
    ]
    # RFC822.SIZE is what BODY[] sends
    out, _ = fetch(box, uid, (attr("RFC822.SIZE"), FetchBody(section=Section(), peek=True)))
    size, body = out
    assert isinstance(size, Rfc822Size)
    assert isinstance(body, BodySection)
    assert body.data is not None
    assert size.value == len(body.data)


def test_inner_message_sections(box: MaildirMailbox) -> None:
    out, _ = fetch(box, 3, (FetchBody(section=Section(part=(2,), text="TEXT"), peek=True),))
    assert out == [BodySection(section=Section(part=(2,), text="TEXT"), data=b"inner body text")]


def test_binary_and_binary_size(box: MaildirMailbox) -> None:
    msg = parse_message(MULTI)
    items: tuple[FetchItem, ...] = (
        FetchBinary(part=(1,), peek=True),
        FetchBinary(part=(2,), peek=True),
        FetchBinarySize(part=(1,)),
        FetchBinarySize(part=(2,)),
        FetchBinary(part=(), peek=True),
        FetchBinary(part=(2,), partial=(2, 3), peek=True),
    )
    out, seen = fetch(box, 2, items)
    assert not seen
    assert out == [
        Binary(part=(1,), data=binary(msg, (1,))),
        Binary(part=(2,), data=bytes(range(8))),
        BinarySize(part=(1,), size=binary_size(msg, (1,)) or 0),
        BinarySize(part=(2,), size=8),
        Binary(part=(), data=MULTI),
        Binary(part=(2,), origin=2, data=b"\x02\x03\x04"),
    ]
    assert out[0] == Binary(part=(1,), data="café notes".encode())
    with pytest.raises(UnknownCte) as info:
        fetch(box, 2, (FetchBinary(part=(3,), peek=True),))
    assert info.value.part == (3,)
    with pytest.raises(UnknownCte):
        fetch(box, 2, (FetchBinarySize(part=(3,)),))


def test_partials(box: MaildirMailbox) -> None:
    items = (
        FetchBody(section=Section(), partial=(0, 10), peek=True),
        FetchBody(section=Section(text="TEXT"), partial=(6, 3), peek=True),
        FetchBody(section=Section(), partial=(10_000, 5), peek=True),
        FetchBody(section=Section(part=(1,)), partial=(1, 4), peek=True),
    )
    out, _ = fetch(box, 1, items)
    msg = parse_message(PLAIN)
    assert out == [
        BodySection(section=Section(), origin=0, data=PLAIN[:10]),
        BodySection(section=Section(text="TEXT"), origin=6, data=b"Bob"),
        BodySection(section=Section(), origin=10_000, data=b""),
        BodySection(
            section=Section(part=(1,)), origin=1, data=section(msg, Section(part=(1,)), (1, 4))
        ),
    ]


def test_nul_served_as_0x80(tmp_path: Path) -> None:
    user = MaildirStore(tmp_path / "mail").user("bob")
    raw = b"Subject: n\r\n\r\na\0b\r\n"
    user.deliver(raw)
    box = user.mailbox("INBOX")
    out, _ = fetch(box, 1, (FetchBody(section=Section(), peek=True), FetchBinary(peek=True)))
    assert out == [
        BodySection(section=Section(), data=raw.replace(b"\0", b"\x80")),
        Binary(part=(), data=raw),
    ]


def test_unsupported_and_gone(box: MaildirMailbox) -> None:
    with pytest.raises(UnsupportedItem):
        fetch(box, 1, (attr("EMAILID"),))
    rec = record_of(box, 1)
    box.set_flags([1], ["\\Deleted"])
    box.expunge()
    with pytest.raises(KeyError):
        fetch_attributes(box, rec, (FetchBody(section=Section()),), uid=False)
    out = list(fetch_many(box, [rec, record_of(box, 2)], (attr("ENVELOPE"),), uid=True))
    assert [r.uid for r, _, _ in out] == [2]


# --- \Seen -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "sets"),
    [
        (FetchBody(section=Section()), True),
        (FetchBody(section=Section(text="HEADER")), True),
        (FetchBody(section=Section(), peek=True), False),
        (FetchBinary(part=(1,)), True),
        (FetchBinary(part=(1,), peek=True), False),
        (FetchBinarySize(part=(1,)), False),
        (FetchAttr(name="RFC822"), True),
        (FetchAttr(name="RFC822.TEXT"), True),
        (FetchAttr(name="RFC822.HEADER"), False),
        (FetchAttr(name="ENVELOPE"), False),
        (FetchAttr(name="BODY"), False),
    ],
)
def test_seen_logic(box: MaildirMailbox, item: FetchItem, sets: bool) -> None:
    out, seen = fetch(box, 1, (attr("FLAGS"), item))
    assert seen is sets
    assert sets_seen(record_of(box, 1), (item,)) is sets
    flags = out[0]
    assert isinstance(flags, FetchFlags)
    assert ("\\Seen" in flags.flags) is sets
    box.set_flags([1], ["\\Seen"])
    out, seen = fetch(box, 1, (attr("FLAGS"), item))
    assert not seen
    assert out[0] == FetchFlags(flags=("\\Seen",))


# --- cost: no file for cheap + envelope items, batched metadata -------------------------


def test_cheap_items_open_no_file(box: MaildirMailbox) -> None:
    cbox = counted(box)
    items = (
        attr("FLAGS"),
        attr("UID"),
        attr("RFC822.SIZE"),
        attr("ENVELOPE"),
        attr("BODYSTRUCTURE"),
    )
    for rec in box.snapshot():
        box.metadata(rec.uid)  # warm the cache
    for rec in box.snapshot():
        fetch_attributes(cbox, rec, items, uid=True)
    assert cbox.opens == 0
    fetch_attributes(cbox, record_of(box, 1), (FetchBody(section=Section(), peek=True),), uid=False)
    assert cbox.opens == 1
    # several sections of one message: the file is read once
    fetch_attributes(
        cbox, record_of(box, 2), tuple(FetchBody(section=s) for s in SECTIONS), uid=False
    )
    assert cbox.opens == 2


def test_fetch_many_ten_thousand_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = MaildirStore(tmp_path / "mail").user("carol")
    box = user.mailbox("INBOX")
    n = 10_000
    # Dropped into new/ as another program would (10,000 fsynced appends are slow);
    # the scan numbers them in time stamp order, metadata_many parses and caches them.
    for i in range(n):
        raw = b"Subject: m%d\r\nFrom: x@example.com\r\n\r\nb\r\n" % i
        name = f"{1_700_000_000 + i}.M0P1Q{i}.host,S={len(raw)}"
        (Path(box.path) / "new" / name).write_bytes(raw)
    records = box.snapshot()
    assert [r.uid for r in records] == list(range(1, n + 1))
    assert len(box.metadata_many(r.uid for r in records)) == n
    cbox = counted(box)
    opened: list[str] = []
    import builtins

    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    items = (attr("FLAGS"), attr("UID"), attr("RFC822.SIZE"), attr("ENVELOPE"))
    out = list(fetch_many(cbox, records, items, uid=False, recent={records[0].uid}))
    monkeypatch.undo()
    assert len(out) == n
    assert cbox.opens == 0
    assert cbox.metadata_calls == 0
    assert opened == []
    assert max(cbox.many_calls) <= 500
    assert sum(cbox.many_calls) == n
    first_rec, first, seen = out[0]
    assert not seen
    assert first_rec == records[0]
    assert first[0] == FetchFlags(flags=("\\Recent",))
    env = first[3]
    assert isinstance(env, EnvelopeItem)
    assert env.envelope.subject == b"m0"
    # without metadata items, no metadata lookups at all
    cbox2 = counted(box)
    assert len(list(fetch_many(cbox2, records[:10], expand_items("FAST"), uid=True))) == 10
    assert cbox2.many_calls == []
    assert cbox2.opens == 0


def test_fetch_many_matches_fetch_attributes(box: MaildirMailbox) -> None:
    items = (*expand_items("ALL"), FetchBody(section=Section(text="HEADER")))
    records = box.snapshot()
    many = list(fetch_many(box, records, items, uid=True, condstore=True, recent={2}))
    for rec, attributes, seen in many:
        one = fetch_attributes(box, rec, items, uid=True, condstore=True, recent=rec.uid == 2)
        assert (attributes, seen) == one


# --- SEARCH --------------------------------------------------------------------------


def test_message_infos_search(box: MaildirMailbox) -> None:
    box.set_flags([1], ["\\Seen"])
    cbox = counted(box)
    records = box.snapshot()
    infos = message_infos(cbox, records, recent={3})
    assert [(i.seq, i.uid) for i in infos] == [(1, 1), (2, 2), (3, 3)]
    assert infos[1].flags == frozenset({"\\Flagged", "Work"})
    assert infos[2].flags == frozenset({"\\Recent"})
    assert infos[1].size == len(MULTI)
    assert infos[0].modseq == records[0].modseq
    # flag and set keys read no file
    assert search(keys(b"SEEN"), infos) == [1]
    assert search(keys(b"UNSEEN"), infos, uid=True) == [2, 3]
    assert search(keys(b"FLAGGED KEYWORD Work"), infos) == [2]
    assert search(keys(b"RECENT"), infos) == [3]
    assert search(keys(b"NEW"), infos) == [3]
    assert search(keys(b"UID 2:*"), infos) == [2, 3]
    assert search(keys(b"2,3 LARGER 10"), infos) == [2, 3]
    assert cbox.opens == 0
    # text keys load lazily, only the messages that reach them
    assert search(keys(b"UNSEEN BODY secret"), infos) == []
    assert cbox.opens == 2
    assert search(keys(b"UID 1 TEXT bob"), infos) == [1]
    assert cbox.opens == 3
    assert search(keys(b'BODY "inner body"'), infos, uid=True) == [3]
    assert search(keys(b"SUBJECT attachment"), infos) == [2]
    assert search(keys(b"FROM carol"), infos) == [2]
    cafe = SearchText(name="BODY", value="café".encode())
    assert search(cafe, infos, charset="UTF-8") == [2]


def test_message_infos_expunged_file_reads_empty(box: MaildirMailbox) -> None:
    infos = message_infos(box, box.snapshot())
    box.set_flags([1], ["\\Deleted"])
    box.expunge()
    assert search(keys(b"TEXT hello"), infos) == []
    assert infos[0].load().data == b""


# --- STATUS --------------------------------------------------------------------------


def test_status_values(box: MaildirMailbox) -> None:
    box.set_flags([1], ["\\Seen", "\\Deleted"])
    everything: tuple[StatusItem, ...] = (
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "DELETED-STORAGE",
        "SIZE",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
        "MAILBOXID",
    )
    values = status_values(box, everything, recent=2)
    assert list(values) == list(everything)
    assert values == {
        "MESSAGES": 3,
        "RECENT": 2,
        "UIDNEXT": 4,
        "UIDVALIDITY": box.uidvalidity,
        "UNSEEN": 2,
        "DELETED": 1,
        "DELETED-STORAGE": len(PLAIN),
        "SIZE": sum(map(len, MESSAGES)),
        "HIGHESTMODSEQ": box.highestmodseq,
        "APPENDLIMIT": None,
        "MAILBOXID": None,
    }
    assert status_values(box, ("UIDNEXT", "MESSAGES")) == {"UIDNEXT": 4, "MESSAGES": 3}


def test_status_reads_no_snapshot_when_not_needed(box: MaildirMailbox) -> None:
    class NoSnapshot(CountingMailbox):
        def snapshot(self) -> Any:
            raise AssertionError("snapshot read")

        def changes_since(self, modseq: int) -> Any:
            raise AssertionError("snapshot read")

    cheap: tuple[StatusItem, ...] = ("UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ", "RECENT")
    wrapper: Any = NoSnapshot(box)
    values = status_values(wrapper, cheap)
    assert values["UIDNEXT"] == 4
    assert values["RECENT"] == 0
