"""The MailStore interface, exercised only through its abstract API.

Everything here should hold for any implementation; the fixture picks the Maildir one.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest

from mailproto_adapters.mda import maildir as maildir_module
from mailproto_adapters.mda.maildir import MaildirStore
from mailproto_adapters.mda.store import (
    SPECIAL_USE,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotFound,
    MailStore,
    QuotaExceeded,
    StoreError,
    UserStore,
)

MSG = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: hello\r\n"
    b"Date: Mon, 02 Jan 2023 10:00:00 +0100\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hi Bob.\r\n"
)


def msg(n: int) -> bytes:
    return MSG.replace(b"hello", b"hello %d" % n)


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MaildirStore(tmp_path / "mail")


@pytest.fixture
def alice(store: MailStore) -> UserStore:
    return store.user("alice")


def test_new_user_has_inbox_and_special_use_folders(alice: UserStore) -> None:
    infos = {i.name: i for i in alice.list()}
    assert next(iter(infos)) == "INBOX"
    assert set(infos) == {"INBOX", *SPECIAL_USE}
    for name, use in SPECIAL_USE.items():
        assert infos[name].special_use == use
        assert use in infos[name].attributes
    assert infos["INBOX"].special_use is None
    assert set(alice.subscriptions()) == {"INBOX", *SPECIAL_USE}


def test_user_store_is_idempotent(store: MailStore) -> None:
    a = store.user("alice")
    a.create("Work")
    b = store.user("alice")
    assert "Work" in {i.name for i in b.list()}
    assert list(store.users()) == ["alice"]


def test_deliver_and_read_back_exact_bytes(alice: UserStore) -> None:
    odd = b"X: y\n\nbare LF\nand \x00 NUL and \xff high\r\n.\r\n"
    uid1 = alice.deliver(MSG)
    uid2 = alice.deliver(io.BytesIO(odd))
    assert (uid1, uid2) == (1, 2)
    box = alice.mailbox("inbox")
    with box.open(uid1) as f:
        assert f.read() == MSG
    with box.open(uid2) as f:
        assert f.read() == odd
    recs = box.snapshot()
    assert [r.uid for r in recs] == [1, 2]
    assert [r.size for r in recs] == [len(MSG), len(odd)]
    assert box.uidnext == 3
    with pytest.raises(KeyError):
        box.open(99)


def test_large_message_streams(alice: UserStore) -> None:
    big = b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 50_000
    uid = alice.deliver(io.BytesIO(big))
    with alice.mailbox("INBOX").open(uid) as f:
        assert f.read() == big
    md = alice.mailbox("INBOX").metadata(uid)
    assert md.size == len(big) == md.virtual_size


def test_deliver_with_flags_and_internal_date(alice: UserStore) -> None:
    when = datetime.datetime(
        2020, 5, 17, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    uid = alice.deliver(MSG, "Sent", flags=["\\Seen", "$Forwarded"], internal_date=when)
    (rec,) = alice.mailbox("Sent").snapshot()
    assert rec.uid == uid
    assert rec.flags == {"\\Seen"}
    assert rec.keywords == {"$Forwarded"}
    assert rec.internal_date == when
    assert rec.internal_date.utcoffset() == datetime.timedelta(hours=2)


def test_unknown_mailbox_and_bad_flags(alice: UserStore) -> None:
    with pytest.raises(MailboxNotFound):
        alice.deliver(MSG, "Nope")
    with pytest.raises(MailboxNotFound):
        alice.mailbox("Nope")
    with pytest.raises(ValueError):
        alice.deliver(MSG, flags=["\\Bogus"])
    with pytest.raises(ValueError):
        alice.deliver(MSG, flags=["has space"])
    assert alice.mailbox("INBOX").snapshot() == []


def test_flags_survive_restart_and_uidvalidity_is_stable(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail")
    box = store.user("alice").mailbox("INBOX")
    uids = [store.user("alice").deliver(msg(i)) for i in range(3)]
    box.set_flags(uids[:2], ["\\Seen", "\\Flagged", "Work"])
    box.set_flags([uids[1]], ["\\Flagged"], mode="remove")
    validity, snap = box.uidvalidity, box.snapshot()
    del box, store
    again = MaildirStore(tmp_path / "mail").user("alice").mailbox("INBOX")
    assert again.uidvalidity == validity
    assert again.snapshot() == snap
    assert [r.all_flags for r in snap] == [
        {"\\Seen", "\\Flagged", "Work"},
        {"\\Seen", "Work"},
        set(),
    ]


def test_set_flags_modes_and_modseq(alice: UserStore) -> None:
    box = alice.mailbox("INBOX")
    a, b = alice.deliver(msg(1)), alice.deliver(msg(2))
    m0 = box.highestmodseq
    res = box.set_flags([a, b], ["\\Seen"])
    assert [r.uid for r in res.changed] == [a, b]
    m1 = box.highestmodseq
    assert m1 > m0
    assert all(r.modseq == m1 for r in res.changed)
    # No change, no new MODSEQ.
    assert box.set_flags([a], ["\\Seen"]).changed == ()
    assert box.highestmodseq == m1
    res = box.set_flags([a], ["\\Answered", "k1"], mode="set")
    assert res.changed[0].all_flags == {"\\Answered", "k1"}
    res = box.set_flags([a], ["k1", "\\Recent"], mode="remove")
    assert res.changed[0].all_flags == {"\\Answered"}
    with pytest.raises(ValueError):
        box.set_flags([a], ["\\Seen"], mode="toggle")
    # UNCHANGEDSINCE (RFC 7162): b was changed at m1, a after it.
    res = box.set_flags([a, b], ["\\Flagged"], unchangedsince=m1)
    assert [r.uid for r in res.changed] == [b]
    assert res.modified == (a,)


def test_changes_since(alice: UserStore) -> None:
    box = alice.mailbox("INBOX")
    a, b, c = (alice.deliver(msg(i)) for i in range(3))
    start = box.highestmodseq
    box.set_flags([b], ["\\Deleted"])
    box.set_flags([c], ["\\Seen"])
    ch = box.changes_since(start)
    assert [r.uid for r in ch.records] == [b, c]
    assert ch.expunged == ()
    mid = ch.highestmodseq
    assert box.expunge() == [b]
    ch = box.changes_since(mid)
    assert ch.records == ()
    assert ch.expunged == (b,)
    assert ch.highestmodseq > mid
    ch = box.changes_since(0)
    assert [r.uid for r in ch.records] == [a, c]


def test_expunge_and_uids_never_come_back(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail")
    alice = store.user("alice")
    box = alice.mailbox("INBOX")
    uids = [alice.deliver(msg(i)) for i in range(4)]
    box.set_flags(uids[1:3], ["\\Deleted"])
    assert box.expunge([uids[0], uids[1]]) == [uids[1]]  # only \Deleted ones
    assert box.expunge() == [uids[2]]
    assert [r.uid for r in box.snapshot()] == [uids[0], uids[3]]
    box.set_flags([uids[0], uids[3]], ["\\Deleted"])
    box.expunge()
    assert box.snapshot() == []
    assert MaildirStore(tmp_path / "mail").user("alice").deliver(msg(9)) == uids[-1] + 1


def test_copy_and_move_keep_flags(alice: UserStore) -> None:
    inbox = alice.mailbox("INBOX")
    a, b, c = (alice.deliver(msg(i)) for i in range(3))
    inbox.set_flags([a], ["\\Seen", "$Label1"])
    inbox.set_flags([b], ["\\Flagged"])
    archive = alice.mailbox("Archive")
    src, new = inbox.copy([a, b, 99], archive)
    assert src == [a, b]
    assert new == [1, 2]
    got = {r.uid: r.all_flags for r in archive.snapshot()}
    assert got == {1: {"\\Seen", "$Label1"}, 2: {"\\Flagged"}}
    with archive.open(1) as f:
        assert f.read() == msg(0)
    assert len(inbox.snapshot()) == 3  # copy leaves the source
    src, new = inbox.move([b, c], archive)
    assert (src, new) == ([b, c], [3, 4])
    assert [r.uid for r in inbox.snapshot()] == [a]
    assert {r.uid: r.all_flags for r in archive.snapshot()}[3] == {"\\Flagged"}
    assert inbox.changes_since(0).expunged == (b, c)


def test_quota_refuses_delivery_and_append(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail", quota=2 * len(MSG) + 10)
    alice = store.user("alice")
    alice.deliver(MSG)
    alice.deliver(MSG, "Drafts")
    usage = alice.quota_usage()
    assert (usage.used, usage.messages, usage.limit) == (2 * len(MSG), 2, 2 * len(MSG) + 10)
    with pytest.raises(QuotaExceeded) as exc:
        alice.deliver(MSG)
    assert exc.value.limit == 2 * len(MSG) + 10
    with pytest.raises(QuotaExceeded):
        alice.mailbox("Sent").append(io.BytesIO(MSG))
    with pytest.raises(QuotaExceeded):
        alice.mailbox("INBOX").copy([1], alice.mailbox("Trash"))
    assert alice.quota_usage().messages == 2
    # Nothing was left behind, and another user has their own quota.
    assert store.user("bob").deliver(MSG) == 1
    alice.mailbox("INBOX").set_flags([1], ["\\Deleted"])
    alice.mailbox("INBOX").expunge()
    assert alice.deliver(b"small\r\n") == 2


def test_metadata_is_parsed_once(
    alice: UserStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = maildir_module.parse_message  # type: ignore[attr-defined]

    def counting(data: bytes, **kw: int) -> object:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(maildir_module, "parse_message", counting)
    uid = alice.deliver(MSG)
    box = alice.mailbox("INBOX")
    first = box.metadata(uid)
    assert calls == [len(MSG)]
    assert first.envelope.subject == b"hello"
    assert first.envelope.from_ is not None
    assert first.envelope.from_[0].host == b"example.com"
    assert first.bodystructure.ext_fields > 0
    assert first.body.ext_fields == 0
    assert box.metadata_many([uid, 42]) == {uid: first}
    # Second request, and a new store over the same files: served from the cache.
    opened: list[int] = []
    monkeypatch.setattr(type(box), "open", lambda self, u: opened.append(u))
    assert box.metadata(uid) == first
    again = MaildirStore(tmp_path / "mail").user("alice")
    assert again.mailbox("INBOX").metadata(uid) == first
    assert calls == [len(MSG)]
    assert opened == []


def test_metadata_of_a_multipart(alice: UserStore) -> None:
    mime = (
        b"MIME-Version: 1.0\r\nSubject: parts\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nin\r\n"
        b'--b\r\nContent-Type: application/pdf; name="x.pdf"\r\n'
        b"Content-Disposition: attachment; filename=x.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
    )
    uid = alice.deliver(mime)
    box = alice.mailbox("INBOX")
    fresh = box.metadata(uid)
    box2 = alice.mailbox("INBOX")
    assert box2.metadata(uid) == fresh  # decoded from the cache: equal values


def test_mailbox_management(alice: UserStore) -> None:
    alice.create("Work/2024/Q1")
    listed = [i.name for i in alice.list()]
    assert {"Work", "Work/2024", "Work/2024/Q1"} <= set(listed)
    info = {i.name: i for i in alice.list()}
    assert "\\HasChildren" in info["Work"].attributes
    assert "\\HasNoChildren" in info["Work/2024/Q1"].attributes
    with pytest.raises(MailboxExists):
        alice.create("Work")
    with pytest.raises(MailboxExists):
        alice.create("inbox")
    with pytest.raises(MailboxHasChildren):
        alice.delete("Work")
    with pytest.raises(StoreError):
        alice.delete("INBOX")
    with pytest.raises(MailboxNotFound):
        alice.delete("Nope")
    alice.deliver(MSG, "Work/2024/Q1")
    alice.rename("Work", "Jobs")
    names = {i.name for i in alice.list()}
    assert {"Jobs", "Jobs/2024", "Jobs/2024/Q1"} <= names
    assert not any(n.startswith("Work") for n in names)
    assert len(alice.mailbox("Jobs/2024/Q1").snapshot()) == 1
    with pytest.raises(MailboxExists):
        alice.rename("Jobs", "Sent")
    with pytest.raises(ValueError):
        alice.rename("Jobs", "Jobs/inside")
    alice.delete("Jobs/2024/Q1")
    assert "Jobs/2024/Q1" not in {i.name for i in alice.list()}
    alice.rename("Sent", "Sent Items")
    assert {i.name: i.special_use for i in alice.list()}["Sent Items"] == "\\Sent"


def test_delete_then_recreate_changes_uidvalidity(alice: UserStore) -> None:
    alice.create("Tmp")
    box = alice.mailbox("Tmp")
    alice.deliver(MSG, "Tmp")
    old = box.uidvalidity
    alice.delete("Tmp")
    with pytest.raises(MailboxNotFound):
        box.snapshot()
    alice.create("Tmp")
    fresh = alice.mailbox("Tmp")
    assert fresh.uidvalidity > old
    assert fresh.snapshot() == []
    assert fresh.uidnext == 1


def test_rename_inbox_moves_its_messages(alice: UserStore) -> None:
    alice.deliver(msg(1))
    alice.deliver(msg(2))
    alice.mailbox("INBOX").set_flags([1], ["\\Seen"])
    alice.rename("INBOX", "Old")
    assert alice.mailbox("INBOX").snapshot() == []
    recs = alice.mailbox("Old").snapshot()
    assert [r.all_flags for r in recs] == [{"\\Seen"}, set()]
    assert alice.deliver(msg(3)) == 3  # INBOX UIDs go on


def test_subscriptions(alice: UserStore) -> None:
    alice.subscribe("Not/Yet")
    alice.unsubscribe("Junk")
    alice.subscribe("inbox")
    subs = alice.subscriptions()
    assert "Not/Yet" in subs
    assert "Junk" not in subs
    assert subs.count("INBOX") == 1
    with pytest.raises(ValueError):
        alice.subscribe("../x")


def test_users_cannot_reach_each_other(store: MailStore) -> None:
    alice, bob = store.user("alice"), store.user("bob")
    bob.create("Private")
    bob.deliver(MSG, "Private")
    assert "Private" not in {i.name for i in alice.list()}
    for name in ("Private", "../bob/.Private", "../bob", "/bob", "bob/Private"):
        with pytest.raises((StoreError, ValueError)):
            alice.mailbox(name)
    with pytest.raises(StoreError):
        alice.mailbox("INBOX").copy([1], bob.mailbox("INBOX"))
    for bad in ("../bob", "", ".x", "a/b"):
        with pytest.raises(ValueError):
            store.user(bad)


def test_watch_notifies_in_process(alice: UserStore) -> None:
    box = alice.mailbox("INBOX")
    seen: list[int] = []
    stop = box.watch(seen.append)
    alice.deliver(MSG)
    assert seen
    assert seen[-1] == box.highestmodseq
    other_handle = alice.mailbox("INBOX")
    other_handle.set_flags([1], ["\\Seen"])
    assert seen[-1] == box.highestmodseq
    assert len(seen) == 2
    stop()
    alice.deliver(MSG)
    assert len(seen) == 2


def test_highestmodseq_polling_sees_other_handles(alice: UserStore) -> None:
    a = alice.mailbox("INBOX")
    b = alice.mailbox("INBOX")
    before = a.highestmodseq
    b.append(MSG)
    assert a.highestmodseq > before
    assert a.uidnext == 2
