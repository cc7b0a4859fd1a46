"""The Maildir++ store: file names, other programs' changes, and concurrency."""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailproto_adapters.mda.maildir import (
    DB_FILE,
    KEYWORDS_FILE,
    MaildirMailbox,
    MaildirStore,
    MaildirUser,
)
from mailproto_adapters.mda.store import MessageRecord

if TYPE_CHECKING:
    from conftest import RequireTool

MSG = b"From: a@example.com\r\nSubject: test\r\n\r\nbody\r\n"
LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}


def make(tmp_path: Path) -> tuple[MaildirUser, MaildirMailbox]:
    user = MaildirStore(tmp_path / "mail").user("alice")
    return user, user.mailbox("INBOX")


def files(box: MaildirMailbox) -> dict[str, str]:
    """base -> "new/name" or "cur/name" for every message file."""
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(box.path, sub)):
            out[name.partition(":")[0]] = f"{sub}/{name}"
    return out


def keywords_file(box: MaildirMailbox) -> dict[str, str]:
    """keyword -> letter, from dovecot-keywords."""
    path = os.path.join(box.path, KEYWORDS_FILE)
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f:
            idx, _, name = line.rstrip("\n").partition(" ")
            out[name] = chr(ord("a") + int(idx))
    return out


def assert_names_match(box: MaildirMailbox, records: list[MessageRecord]) -> None:
    """The file names carry exactly the flags the records show, letters sorted."""
    names = sorted(files(box).values())
    assert len(names) == len(records)
    kw = keywords_file(box)
    expected = sorted(
        "".join(sorted([LETTERS[f] for f in r.flags] + [kw[k] for k in r.keywords]))
        for r in records
    )
    got = sorted(n.partition(":2,")[2] for n in names)
    assert got == expected
    for n in names:
        info = n.partition(":2,")[2]
        assert info == "".join(sorted(info))
        if info:
            assert n.startswith("cur/")


def drop(box: MaildirMailbox, name: str, data: bytes = MSG, sub: str = "new") -> Path:
    """Another program's delivery (mutt, Dovecot, cp into new/)."""
    path = Path(box.path) / sub / name
    path.write_bytes(data)
    return path


def test_file_names_carry_flags(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uid = user.deliver(MSG)
    (name,) = files(box).values()
    assert name.startswith("new/")
    assert re.fullmatch(rf"new/\d+\.M\d+P\d+Q\d+R[0-9a-f]+\..+,S={len(MSG)},W={len(MSG)}", name)
    box.set_flags([uid], ["\\Seen", "\\Flagged", "\\Deleted", "\\Draft", "\\Answered"])
    (name,) = files(box).values()
    assert name.startswith("cur/")
    assert name.endswith(":2,DFRST")
    box.set_flags([uid], ["$Forwarded", "Work"])
    assert keywords_file(box) == {"$Forwarded": "a", "Work": "b"}
    with open(os.path.join(box.path, KEYWORDS_FILE)) as f:
        assert f.read() == "0 $Forwarded\n1 Work\n"
    assert files(box)[name.partition(":")[0][4:]].endswith(":2,DFRSTab")
    assert_names_match(box, box.snapshot())
    # Keywords are matched case-insensitively against the file.
    box.set_flags([uid], ["work"], mode="remove")
    assert box.snapshot()[0].keywords == {"$Forwarded"}
    assert os.path.exists(os.path.join(box.path, DB_FILE))


def test_vsize_counts_bare_lf(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    data = b"Subject: x\n\na\nb\r\nc\n"
    uid = user.deliver(data)
    (name,) = files(box).values()
    assert name.endswith(f",S={len(data)},W={len(data) + 4}")
    assert box.metadata(uid).virtual_size == len(data) + 4


def test_dovecot_keywords_file_written_by_others(tmp_path: Path) -> None:
    _user, box = make(tmp_path)
    (Path(box.path) / KEYWORDS_FILE).write_text("0 $Junk\n2 Work\n3 bad(atom\n30 Far\n")
    drop(box, "100.A.host:2,Sac", sub="cur")
    (rec,) = box.snapshot()
    assert rec.flags == {"\\Seen"}
    assert rec.keywords == {"$Junk", "Work"}
    box.set_flags([rec.uid], ["New"])  # the first free index: 1, letter b
    assert keywords_file(box)["New"] == "b"
    assert files(box)["100.A.host"] == "cur/100.A.host:2,Sabc"
    box.set_flags([rec.uid], ["Newer"])  # d is taken by the odd entry: e
    assert keywords_file(box)["Newer"] == "e"
    with open(os.path.join(box.path, KEYWORDS_FILE)) as f:
        assert f.read() == "0 $Junk\n1 New\n2 Work\n3 bad(atom\n4 Newer\n30 Far\n"


def test_files_from_other_programs_get_next_uids_in_time_order(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    assert user.deliver(MSG) == 1
    drop(box, "2000000000.B.host")
    drop(box, "1000000000.A.host")
    drop(box, "999.Z.host:2,S", sub="cur")
    drop(box, ".hidden")  # not a message
    drop(box, "1.tmp.host", sub="tmp")  # being delivered: not yet a message
    recs = box.snapshot()
    assert [r.uid for r in recs] == [1, 2, 3, 4]
    by_uid = {r.uid: r for r in recs}
    assert by_uid[2].flags == {"\\Seen"}  # 999: oldest first
    with box.open(3) as f:
        assert f.read() == MSG
    assert user.deliver(MSG) == 5


def test_internal_date_of_foreign_files_is_mtime(tmp_path: Path) -> None:
    _user, box = make(tmp_path)
    path = drop(box, "1.X.host")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    (rec,) = box.snapshot()
    assert rec.internal_date.timestamp() == 1_600_000_000


def test_internal_date_is_written_as_mtime(tmp_path: Path) -> None:
    import datetime

    user, box = make(tmp_path)
    when = datetime.datetime(2021, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    user.deliver(MSG, internal_date=when)
    (name,) = files(box).values()
    assert os.stat(os.path.join(box.path, name)).st_mtime == when.timestamp()


def test_rename_by_another_program_keeps_the_uid(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uid = user.deliver(MSG)
    start = box.highestmodseq
    (name,) = files(box).values()
    base = name[4:]
    # mutt reads it: new/ -> cur/ with ":2,S"
    os.rename(os.path.join(box.path, name), os.path.join(box.path, "cur", base + ":2,S"))
    (rec,) = box.snapshot()
    assert rec.uid == uid
    assert rec.flags == {"\\Seen"}
    assert rec.modseq > start
    assert [r.uid for r in box.changes_since(start).records] == [uid]
    # A move without a flag change (new/ -> cur/ ":2,") is not a change.
    uid2 = user.deliver(MSG)
    name2 = files(box)[next(b for b in files(box) if b != base)]
    before = box.highestmodseq
    os.rename(
        os.path.join(box.path, name2),
        os.path.join(box.path, "cur", name2[4:] + ":2,"),
    )
    assert box.snapshot()[1].uid == uid2
    assert box.highestmodseq == before


def test_our_flag_change_after_a_foreign_rename(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uid = user.deliver(MSG)
    box.snapshot()
    (name,) = files(box).values()
    # Renamed behind our back after our last scan, within the same directory mtime tick.
    os.rename(os.path.join(box.path, name), os.path.join(box.path, "cur", name[4:] + ":2,F"))
    res = box.set_flags([uid], ["\\Seen"])
    assert res.changed[0].flags == {"\\Seen", "\\Flagged"}
    assert_names_match(box, box.snapshot())


def test_file_removed_by_another_program_is_expunged(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uids = [user.deliver(MSG + b"%d\r\n" % i) for i in range(3)]
    start = box.highestmodseq
    victim = next(
        name
        for name in files(box).values()
        if (Path(box.path) / name).read_bytes().endswith(b"1\r\n")
    )
    os.unlink(os.path.join(box.path, victim))
    assert [r.uid for r in box.snapshot()] == [uids[0], uids[2]]
    ch = box.changes_since(start)
    assert ch.expunged == (uids[1],)
    assert ch.highestmodseq > start
    # Its UID never comes back, even if the same file reappears.
    drop(box, os.path.basename(victim))
    assert box.snapshot()[-1].uid == 4


def test_database_lost_gives_new_uidvalidity_but_keeps_mail(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    user.deliver(MSG)
    user.mailbox("INBOX").set_flags([1], ["\\Seen"])
    old = box.uidvalidity
    del box
    import gc

    gc.collect()
    for suffix in ("", "-wal", "-shm"):
        p = tmp_path / "mail" / "alice" / (DB_FILE + suffix)
        if p.exists():
            p.unlink()
    (tmp_path / "mail" / "alice" / "mailproto.lock").unlink()
    fresh = MaildirStore(tmp_path / "mail").user("alice").mailbox("INBOX")
    assert fresh.uidvalidity > old
    (rec,) = fresh.snapshot()
    assert rec.flags == {"\\Seen"}


def test_scan_is_cheap_when_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, box = make(tmp_path)
    for _ in range(3):
        user.deliver(MSG)
    past = time.time() - 10
    for sub in ("new", "cur"):
        os.utime(os.path.join(box.path, sub), (past, past))
    box.snapshot()  # one full scan records the directory times
    calls: list[str] = []
    real = os.listdir

    def counting(path: str) -> list[str]:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", counting)
    for _ in range(5):
        assert len(box.snapshot()) == 3
        assert box.highestmodseq > 0
    assert calls == []
    drop(box, "5.new.host")
    os.utime(os.path.join(box.path, "new"), (past + 1, past + 1))
    assert len(box.snapshot()) == 4
    assert calls  # the directory changed: listed again


def test_preserves_letters_we_do_not_manage(tmp_path: Path) -> None:
    _user, box = make(tmp_path)
    drop(box, "1.P.host:2,PS", sub="cur")
    (rec,) = box.snapshot()
    assert rec.flags == {"\\Seen"}
    box.set_flags([rec.uid], ["\\Flagged"], mode="set")
    assert files(box)["1.P.host"] == "cur/1.P.host:2,FP"


def test_too_many_keywords(tmp_path: Path) -> None:
    from mailproto_adapters.mda.store import StoreError

    user, box = make(tmp_path)
    uid = user.deliver(MSG)
    box.set_flags([uid], [f"k{i}" for i in range(26)])
    with pytest.raises(StoreError):
        box.set_flags([uid], ["one-more"])
    assert len(box.snapshot()[0].keywords) == 26


# --- concurrency ------------------------------------------------------------------------

FLAGS_BY_WORKER = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "kw0", "kw1"]


def _worker(root: str, index: int, pre: list[int], rounds: int) -> list[int]:
    """Deliver and flag at once: returns the UIDs this worker's deliveries got."""
    user = MaildirStore(root).user("alice")
    box = user.mailbox("INBOX")
    flag = FLAGS_BY_WORKER[index]
    got: list[int] = []
    for i, uid in enumerate(pre):
        box.set_flags([uid], [flag])
        if i % max(1, len(pre) // rounds) == 0:
            got.append(user.deliver(MSG + b"worker %d\r\n" % index))
        if i % 7 == index:
            box.snapshot()
    got.append(user.deliver(MSG))
    return got


def _check_invariants(
    box: MaildirMailbox, pre: list[int], workers: int, delivered: list[int]
) -> None:
    recs = box.snapshot()
    uids = [r.uid for r in recs]
    assert len(delivered) == len(set(delivered)), "duplicate UID"
    assert uids == sorted(set(pre) | set(delivered)), "lost message"
    assert uids == list(range(1, len(uids) + 1))
    want = set(FLAGS_BY_WORKER[:workers])
    for r in recs:
        if r.uid in pre:
            assert r.all_flags == want, f"lost flag update on {r.uid}: {r.all_flags}"
    assert_names_match(box, recs)
    modseqs = [r.modseq for r in recs]
    assert max(modseqs) == box.highestmodseq
    assert box.uidnext == uids[-1] + 1


def test_threads_deliver_and_flag_at_once(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    pre = [user.deliver(MSG) for _ in range(30)]
    results: list[list[int]] = [[] for _ in FLAGS_BY_WORKER]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = _worker(str(tmp_path / "mail"), i, pre, 6)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(FLAGS_BY_WORKER))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    delivered = [u for r in results for u in r]
    _check_invariants(box, pre, len(FLAGS_BY_WORKER), delivered)


def _process_main(
    root: str, index: int, pre: list[int], queue: multiprocessing.Queue[list[int]]
) -> None:
    queue.put(_worker(root, index, pre, 8))


def test_processes_deliver_and_flag_at_once(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    pre = [user.deliver(MSG) for _ in range(24)]
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[int]] = ctx.Queue()
    procs = [
        ctx.Process(target=_process_main, args=(str(tmp_path / "mail"), i, pre, queue))
        for i in range(3)
    ]
    for p in procs:
        p.start()
    # This process takes part too, with a fourth flag.
    mine = _worker(str(tmp_path / "mail"), 3, pre, 8)
    delivered = list(mine)
    for _ in procs:
        delivered += queue.get(timeout=60)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _check_invariants(box, pre, 4, delivered)


def test_concurrent_expunge_and_flag(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uids = [user.deliver(MSG) for _ in range(40)]
    box.set_flags(uids[::2], ["\\Deleted"])
    errors: list[BaseException] = []

    def flagger() -> None:
        try:
            other = user.mailbox("INBOX")
            for uid in uids:
                other.set_flags([uid], ["\\Seen"])
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=flagger)
    t.start()
    gone = box.expunge()
    t.join()
    assert errors == []
    assert gone == uids[::2]
    recs = box.snapshot()
    assert [r.uid for r in recs] == uids[1::2]
    assert all(r.flags == {"\\Seen"} for r in recs)
    assert_names_match(box, recs)


def _expunger_main(root: str, uids: list[int], queue: multiprocessing.Queue[list[int]]) -> None:
    box = MaildirStore(root).user("alice").mailbox("INBOX")
    gone: list[int] = []
    for uid in uids:
        box.set_flags([uid], ["\\Deleted"])
        gone += box.expunge([uid])
    queue.put(gone)


def _copier_main(root: str, uids: list[int], queue: multiprocessing.Queue[list[int]]) -> None:
    user = MaildirStore(root).user("alice")
    box = user.mailbox("INBOX")
    new: list[int] = []
    for uid in uids:
        new += box.copy([uid], user.mailbox("Archive"))[1]
        box.set_flags([uid], ["\\Seen"])
        new.append(user.deliver(MSG))
    queue.put(new)


def test_processes_expunge_copy_and_deliver_at_once(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uids = [user.deliver(MSG + b"%d\r\n" % i) for i in range(30)]
    doomed, kept = uids[::3], [u for u in uids if u % 3 != 1]
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[int]] = ctx.Queue()
    root = str(tmp_path / "mail")
    procs = [
        ctx.Process(target=_expunger_main, args=(root, doomed, queue)),
        ctx.Process(target=_copier_main, args=(root, kept, queue)),
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60), queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    gone = next(r for r in results if set(r) <= set(doomed))
    assert sorted(gone) == doomed
    recs = box.snapshot()
    remaining = [r.uid for r in recs]
    assert not set(remaining) & set(doomed)
    assert set(kept) <= set(remaining)
    assert len(remaining) == len(set(remaining)) == len(uids) - len(doomed) + len(kept)
    assert all(r.flags == {"\\Seen"} for r in recs if r.uid in kept)
    assert_names_match(box, recs)
    archive = user.mailbox("Archive")
    assert [r.uid for r in archive.snapshot()] == list(range(1, len(kept) + 1))
    assert box.changes_since(0).expunged == tuple(doomed)
    assert box.uidnext == max(remaining) + 1


def test_metadata_many_in_bulk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user, box = make(tmp_path)
    uids = [user.deliver(MSG.replace(b"test", b"t%d" % i)) for i in range(520)]
    first = box.metadata_many(uids)
    assert [first[u].envelope.subject for u in uids[:3]] == [b"t0", b"t1", b"t2"]
    from mailproto_adapters.mda import maildir

    monkeypatch.setattr(maildir, "_compute_metadata", None)  # any parse would fail
    again = user.mailbox("INBOX").metadata_many([*reversed(uids), 99999])
    assert list(again) == list(reversed(uids))
    assert again == first


def test_failed_deliveries_leave_nothing_in_tmp(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail", quota=100)
    user = store.user("alice")
    box = user.mailbox("INBOX")

    class Broken:
        def read(self, n: int = -1) -> bytes:
            raise OSError("client went away")

    with pytest.raises(OSError):
        user.deliver(Broken())  # type: ignore[arg-type]
    from mailproto_adapters.mda.store import QuotaExceeded

    with pytest.raises(QuotaExceeded):
        user.deliver(io.BytesIO(b"x" * 200))
    assert os.listdir(os.path.join(box.path, "tmp")) == []
    assert box.snapshot() == []


# --- Dovecot reads what we write, and we read what Dovecot writes ---------------------

DOVECOT_CONFIG = """
mail_plugins = $mail_plugins listescape
namespace inbox {
  inbox = yes
  separator = /
}
plugin {
  listescape_char = "\\\\"
}
"""


@pytest.mark.interop
def test_dovecot_shares_our_maildir(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, require_tool: RequireTool
) -> None:
    import imaplib

    from dovecot_helpers import instance_processes, start_dovecot, unavailable_reason

    reason = unavailable_reason(("imap",))
    if reason is not None:
        require_tool.unavailable(reason)
    store = MaildirStore(tmp_path / "mail")
    user = store.user("tester")
    a = user.deliver(MSG.replace(b"test", b"one"), flags=["\\Seen", "$Forwarded"])
    user.deliver(MSG.replace(b"test", b"two"), flags=["\\Flagged", "Work"])
    user.create("Café/a.b")
    user.deliver(MSG.replace(b"test", b"deep"), "Café/a.b")
    (tmp_path / "run").mkdir()
    server = start_dovecot(
        tmp_path / "run",
        tmp_path / "mail" / "tester",
        extra_config=DOVECOT_CONFIG,
        private_root=tmp_path_factory.getbasetemp().parent,
    )
    try:
        imap = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
        imap.login(server.user, server.password)
        _typ, listed = imap.list()
        names = {
            line.decode().rsplit(" ", 1)[1].strip('"') for line in listed if isinstance(line, bytes)
        }
        assert "Caf&AOk-/a.b" in names
        assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= names
        imap.select("INBOX")
        _typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        got = [d for d in data if isinstance(d, tuple)]
        assert len(got) == 2
        assert b"\\Seen" in got[0][0]
        assert b"$Forwarded" in got[0][0]
        assert b"\\Flagged" in got[1][0]
        assert b"Work" in got[1][0]
        assert got[0][1] == MSG.replace(b"test", b"one")
        imap.select('"Caf&AOk-/a.b"')
        _typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        first = data[0]
        assert isinstance(first, tuple)
        assert b"deep" in first[1]
        # Now Dovecot changes things: flags, a new message, a new folder.
        imap.select("INBOX")
        imap.uid("STORE", str(a), "+FLAGS", "(\\Answered Later)")
        imap.uid("STORE", str(a), "-FLAGS", "($Forwarded)")
        imap.append("INBOX", "(\\Draft Idea)", None, MSG.replace(b"test", b"from dovecot"))
        imap.create('"Neu/&APw-"')
        imap.logout()
    finally:
        server.stop()
    assert not instance_processes(server.instance)
    box = user.mailbox("INBOX")
    recs = box.snapshot()
    assert [r.uid for r in recs] == [1, 2, 3]
    assert recs[0].all_flags == {"\\Seen", "\\Answered", "Later"}
    assert recs[1].all_flags == {"\\Flagged", "Work"}
    assert recs[2].all_flags == {"\\Draft", "Idea"}
    with box.open(3) as f:
        assert f.read().replace(b"\r\n", b"\n") == MSG.replace(b"test", b"from dovecot").replace(
            b"\r\n", b"\n"
        )
    assert "Neu/ü" in {i.name for i in user.list()}
    assert_names_match(box, recs)


@pytest.mark.parametrize(
    "garbage",
    [
        "not json",
        '[1, 2, {"_": "Envelope", "subject": "a\\u0000b"}, null, null]',
        '[1, 2, {"_": "Evil"}, null, null]',
        '[1, 2, {"_": "BodyText"}, null, null]',
        "[]",
        '[1, 2, {"_": "Address"}, {"_": "BodyBasic"}, null]',
        '[1, 2, {"_": "Envelope", "to": [{"_": "BodyText"}]}, null, null]',
        '[1, 2, {"_": "Envelope", "subject": {"_": "Address"}}, null, null]',
        '[1, 2, {"_": "Envelope"}, 5, 6]',
    ],
)
def test_a_tampered_cache_entry_is_parsed_again(tmp_path: Path, garbage: str) -> None:
    import sqlite3

    user, box = make(tmp_path)
    uid = user.deliver(MSG)
    good = box.metadata(uid)
    with sqlite3.connect(os.path.join(box.path, DB_FILE)) as conn:
        conn.execute("UPDATE cache SET data=? WHERE uid=?", (garbage, uid))
    assert box.metadata(uid) == good
    assert box.metadata_many([uid]) == {uid: good}


def test_expunge_finds_a_file_renamed_behind_our_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, box = make(tmp_path)
    uid = user.deliver(MSG)
    box.set_flags([uid], ["\\Deleted"])
    (name,) = files(box).values()
    os.rename(os.path.join(box.path, name), os.path.join(box.path, name + "S"))
    # The scan does not see it (same directory time stamp), as in a race.
    monkeypatch.setattr(box._folder, "plan_scan", lambda force=False: None)
    assert box.expunge() == [uid]
    monkeypatch.undo()
    assert files(box) == {}
    assert box.snapshot() == []


def test_two_sessions_moving_the_same_messages(tmp_path: Path) -> None:
    user, box = make(tmp_path)
    uids = [user.deliver(MSG) for _ in range(20)]
    results: list[tuple[list[int], list[int]]] = []
    lock = threading.Lock()

    def mover(order: list[int]) -> None:
        mine = user.mailbox("INBOX")
        for uid in order:
            res = mine.move([uid], user.mailbox("Archive"))
            with lock:
                results.append(res)

    threads = [
        threading.Thread(target=mover, args=(uids,)),
        threading.Thread(target=mover, args=(list(reversed(uids)),)),
        # And one moving back the other way: locks taken in path order, no deadlock.
        threading.Thread(
            target=lambda: [
                user.mailbox("Archive").move([u], user.mailbox("INBOX")) for u in range(1, 6)
            ]
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    moved = [u for src, _new in results for u in src]
    assert sorted(moved) == uids  # each message moved once
    total = len(box.snapshot()) + len(user.mailbox("Archive").snapshot())
    assert total == len(uids)
