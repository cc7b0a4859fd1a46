"""The durable queue: round trips, crash recovery, group commit, locks across processes."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailproto_adapters import _fsync as fsync_module
from mailproto_adapters.mta import queue as qm
from mailproto_adapters.mta.queue import (
    EnvelopeError,
    MessageWriter,
    Queue,
    QueuedRecipient,
    QueueEntry,
    QueueLayoutError,
)

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> Queue:
    return Queue(tmp_path / "queue", clock=clock)


def enqueue(
    q: Queue, data: bytes = MESSAGE, *, rcpts: tuple[str, ...] = ("b@example.net",), **fields: Any
) -> QueueEntry:
    writer = q.new_message()
    writer.write(data)
    fields.setdefault("sender", "a@example.org")
    return q.commit(writer, recipients=[QueuedRecipient(address=r) for r in rcpts], **fields)


def read_message(q: Queue, entry_id: str) -> bytes:
    with q.open_message(entry_id) as f:
        return f.read()


def listing(path: Path) -> list[str]:
    return sorted(os.listdir(path))


def entry_file(q: Queue, entry_id: str) -> Path:
    return Path(q.path) / "envelopes" / entry_id


def saved_file(q: Queue, entry_id: str) -> Path:
    return Path(q.path) / "envelopes" / f"{entry_id}.json"


def embedded(q: Queue, entry_id: str) -> tuple[bytes, bytes]:
    """(message, envelope JSON) of an entry file, split by its trailer."""
    raw = entry_file(q, entry_id).read_bytes()
    tag, digits, end = raw[-39:-17], raw[-17:-1], raw[-1:]
    assert (tag, end) == (b"\nmailproto-envelope-1 ", b"\n")
    length = int(digits, 16)
    return raw[: -39 - length], raw[-39 - length : -39]


def write_entry(q: Queue, entry_id: str, message: bytes, envelope: bytes) -> None:
    """An entry file as commit writes it, with any envelope octets."""
    trailer = b"\nmailproto-envelope-1 %016x\n" % len(envelope)
    entry_file(q, entry_id).write_bytes(message + envelope + trailer)


# -- round trips ------------------------------------------------------------------------


def test_commit_load_round_trip(queue: Queue, tmp_path: Path, clock: Clock) -> None:
    rcpts = [
        QueuedRecipient(
            address="b@example.net",
            orcpt="rfc822;b@example.net",
            notify=frozenset({"SUCCESS", "DELAY"}),
        ),
        QueuedRecipient(address="c@example.com", notify=frozenset()),
    ]
    writer = queue.new_message()
    for _ in range(100):
        writer.write(b"x" * 1000)
    entry = queue.commit(
        writer,
        sender="a@example.org",
        recipients=rcpts,
        ret="HDRS",
        envid="E1",
        body="8BITMIME",
        smtputf8=True,
        auth_user="alice",
        client="mua ([127.0.0.1])",
        kind="bounce",
    )
    assert writer.closed
    assert entry.size == 100_000 == writer.size
    assert entry.arrival == entry.next_attempt == clock.now
    assert int(entry.id[:16], 16) == int(clock.now * 1_000_000)
    assert queue.load(entry.id) == entry
    assert queue.ids() == [entry.id]
    assert entry.id in queue
    assert read_message(queue, entry.id) == b"x" * 100_000
    root = tmp_path / "queue"
    assert listing(root) == ["envelopes", "spare", "tmp"]
    assert listing(root / "envelopes") == [entry.id]  # one file: message and envelope
    assert listing(root / "tmp") == []
    message, envelope = embedded(queue, entry.id)
    assert message == b"x" * 100_000
    d = json.loads(envelope.decode("utf-8"))
    assert d["version"] == 1
    assert d["id"] == entry.id
    assert d["size"] == 100_000
    assert d["recipients"][0]["notify"] == ["DELAY", "SUCCESS"]
    assert d["recipients"][1]["notify"] == []
    assert entry_file(queue, entry.id).stat().st_mode & 0o777 == 0o600


def test_open_message_reads_the_message_only(queue: Queue) -> None:
    data = b"".join(b"line %05d\r\n" % i for i in range(10_000))  # 120 KB
    entry = enqueue(queue, data)
    with queue.open_message(entry.id) as f:
        assert isinstance(f, qm.MessageReader)
        assert f.size == len(data) == entry.size
        assert f.readline() == b"line 00000\r\n"
        assert f.read(5) == b"line "
        assert f.tell() == 17
        f.seek(-12, os.SEEK_END)
        assert f.read() == b"line 09999\r\n"[-12:]
        assert f.read() == b""
        f.seek(0)
        chunks = iter(lambda: f.read(4096), b"")
        assert b"".join(chunks) == data
        f.seek(len(data) + 100)
        assert f.read(10) == b""
        with pytest.raises(OSError):
            f.seek(-1)
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()  # nothing may read past the message into the envelope
        assert list(f) == []
    assert f.closed


@pytest.mark.parametrize("size", [0, 1, 8100, 8192, 300_000])
def test_message_and_envelope_sizes(queue: Queue, size: int) -> None:
    """Small and empty messages, and envelopes longer than one read from the end."""
    data = bytes(i % 251 for i in range(size))
    many = tuple(f"recipient-{i:03d}-with-a-long-local-part@example.net" for i in range(300))
    for rcpts in (("b@example.net",), many):
        entry = enqueue(queue, data, rcpts=rcpts)
        assert read_message(queue, entry.id) == data
        assert queue.load(entry.id) == entry
        queue._cache.clear()
        assert queue.load(entry.id) == entry


def test_commit_costs_one_file_fsync_and_one_directory_fsync(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fsync
    synced: list[str] = []

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    entry = enqueue(queue)
    assert synced == ["file", "dir"]
    synced.clear()
    queue.save(entry)  # the saved envelope, then envelopes/
    assert synced == ["file", "dir"]
    synced.clear()
    queue.remove(entry.id)  # envelopes/ only
    assert synced == ["dir"]


def test_save_replaces_envelope(queue: Queue, tmp_path: Path) -> None:
    entry = enqueue(queue, rcpts=("b@example.net", "c@example.net"))
    entry.recipients[0].state = "delivered"
    entry.recipients[0].attempts = 1
    entry.recipients[0].last_reply = "250 2.0.0 ok"
    entry.recipients[0].remote_mta = "mx.example.net"
    entry.recipients[0].last_attempt = 1_800_000_001.5
    entry.recipients[1].state = "failed"
    entry.next_attempt = 1_800_000_600.0
    entry.warned = True
    before = entry_file(queue, entry.id).read_bytes()
    queue.save(entry)
    assert queue.load(entry.id) == entry
    assert listing(tmp_path / "queue" / "tmp") == []
    assert listing(tmp_path / "queue" / "envelopes") == [entry.id, f"{entry.id}.json"]
    assert entry_file(queue, entry.id).read_bytes() == before  # the entry file stays
    assert json.loads(saved_file(queue, entry.id).read_text("utf-8"))["warned"] is True
    queue._cache.clear()
    assert queue.load(entry.id) == entry
    # Another Queue object on the same directory (the CLI's process) sees the change.
    assert Queue(tmp_path / "queue", create=False).load(entry.id) == entry


def test_save_refuses_invalid_entry_and_keeps_old(queue: Queue) -> None:
    entry = enqueue(queue)
    entry.recipients[0].state = "lost"
    with pytest.raises(ValueError, match="state"):
        queue.save(entry)
    loaded = queue.load(entry.id)
    assert loaded is not None
    assert loaded.recipients[0].state == "pending"


def test_save_of_removed_entry_does_not_recreate_it(queue: Queue) -> None:
    entry = enqueue(queue)
    queue.remove(entry.id)
    with pytest.raises(FileNotFoundError):
        queue.save(entry)
    assert queue.ids() == []


def test_save_racing_a_remove_leaves_no_saved_envelope(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone without the lock removed the entry while save ran: the saved envelope it
    wrote must not stay behind (it would be an orphan), and save says the entry is gone."""
    entry = enqueue(queue)
    real = queue._sync.sync

    def sync() -> None:
        real()
        os.unlink(entry_file(queue, entry.id))

    monkeypatch.setattr(queue._sync, "sync", sync)
    with pytest.raises(FileNotFoundError):
        queue.save(entry)
    assert listing(Path(queue.path) / "envelopes") == []


def test_save_rename_failure_cleans_tmp(
    queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = enqueue(queue)

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", broken)
    with pytest.raises(OSError, match="space"):
        queue.save(entry)
    monkeypatch.undo()
    assert listing(tmp_path / "queue" / "tmp") == []
    assert queue.load(entry.id) == entry


def test_remove(queue: Queue, tmp_path: Path) -> None:
    keep = enqueue(queue)
    gone = enqueue(queue)
    assert queue.load(gone.id) is not None  # cached
    queue.remove(gone.id)
    assert queue.load(gone.id) is None
    assert gone.id not in queue
    assert queue.ids() == [keep.id]
    assert listing(tmp_path / "queue" / "envelopes") == [keep.id]
    queue.remove(gone.id)  # again: nothing to do
    with pytest.raises(FileNotFoundError):
        queue.open_message(gone.id)


def test_remove_takes_the_entry_file_first_durably(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entry file, directory fsync, then the saved envelope: a crash can leave a saved
    envelope without its entry (recover deletes it), never the entry without its saved
    envelope, which would bring back every recipient as pending. The entry's file goes
    to spare/ for reuse only after that fsync, so that no crash can bring its old name
    back onto a file written over."""
    entry = enqueue(queue)
    queue.save(entry)
    steps: list[str] = []
    real_unlink, real_rename, real_link = os.unlink, os.rename, os.link
    real_sync = queue._sync.sync

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        steps.append(f"unlink {os.path.basename(path)}")
        real_unlink(path, *args, **kwargs)

    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        steps.append(f"rename {os.path.basename(src)}")
        real_rename(src, dst, *args, **kwargs)

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        steps.append(f"link {Path(dst).parent.name}")
        real_link(src, dst, *args, **kwargs)

    def sync() -> None:
        steps.append("sync")
        real_sync()

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(queue._sync, "sync", sync)
    queue.remove(entry.id)
    assert steps[:4] == [f"rename {entry.id}", "sync", "link spare", steps[3]]
    assert steps[3].startswith("unlink x")  # the private name in spare/
    assert steps[4:] == [f"unlink {entry.id}.json"]
    assert listing(Path(queue.path) / "envelopes") == []
    (spare,) = listing(Path(queue.path) / "spare")
    assert spare.isdigit()
    assert os.stat(Path(queue.path) / "spare" / spare).st_size == 0  # no copy stays


# -- spare files: removed entries written over by later ones --------------------------


def test_removed_entries_files_are_written_over_by_new_messages(queue: Queue) -> None:
    """No inode allocated or freed per message in steady state: the next message is
    written into the emptied file of a removed entry, and reads back whole."""
    first = enqueue(queue, b"x" * 50_000)
    inode = entry_file(queue, first.id).stat().st_ino
    queue.remove(first.id)
    spare = Path(queue.path) / "spare"
    (slot,) = listing(spare)
    assert (spare / slot).stat().st_ino == inode
    assert (spare / slot).stat().st_size == 0
    queue._spare_empty_until = 0.0  # listed empty by the first message: list again
    second = enqueue(queue, MESSAGE)
    assert entry_file(queue, second.id).stat().st_ino == inode
    assert listing(spare) == []
    assert read_message(queue, second.id) == MESSAGE
    assert queue.load(second.id) == second
    assert embedded(queue, second.id)[0] == MESSAGE


def test_spare_files_are_taken_once_across_queues(tmp_path: Path) -> None:
    """Two Queue objects on one directory (two processes) never write into one file."""
    a, b = Queue(tmp_path / "queue"), Queue(tmp_path / "queue")
    entries = [enqueue(a) for _ in range(6)]
    for entry in entries:
        a.remove(entry.id)
    assert len(listing(tmp_path / "queue" / "spare")) == 6
    writers = [q.new_message() for q in (a, b, a, b, a, b, a, b)]
    inodes = [os.fstat(w._file.fileno()).st_ino for w in writers if w._file is not None]
    assert len(set(inodes)) == 8  # six spares and two new files
    for w in writers:
        w.write(MESSAGE)
        a.commit(w, sender="", recipients=[QueuedRecipient(address="c@x.org")])
    assert len(a.ids()) == 8
    assert all(read_message(a, i) == MESSAGE for i in a.ids())


def test_a_stale_listing_of_spare_is_replaced(tmp_path: Path) -> None:
    """Names another process took meanwhile are skipped, and after a few the directory
    is listed again, so fresh spares are found."""
    a, b = Queue(tmp_path / "queue"), Queue(tmp_path / "queue")
    for entry in [enqueue(a) for _ in range(12)]:
        a.remove(entry.id)
    b.abort(b.new_message())  # b lists spare/ (12 names) and takes one
    a._spare_empty_until = 0.0
    while listing(tmp_path / "queue" / "spare"):
        a.abort(a.new_message())  # a takes the 11 others: b's names are all stale
    fresh = [enqueue(a) for _ in range(3)]
    inodes = {entry_file(a, e.id).stat().st_ino for e in fresh}
    for entry in fresh:
        a.remove(entry.id)
    writer = b.new_message()
    assert writer._file is not None
    assert os.fstat(writer._file.fileno()).st_ino in inodes
    assert len(listing(tmp_path / "queue" / "spare")) == 2
    b.abort(writer)


def test_a_spare_still_linked_or_locked_is_not_written_over(queue: Queue) -> None:
    spare = Path(queue.path) / "spare"
    linked = enqueue(queue)
    os.link(entry_file(queue, linked.id), spare / "1")  # as a crash could leave it
    locked = enqueue(queue)
    holder = os.open(entry_file(queue, locked.id), os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        os.link(entry_file(queue, locked.id), spare / "2")
        os.unlink(entry_file(queue, locked.id))
        for _ in range(2):
            queue._spare_empty_until = 0.0
            new = enqueue(queue, b"new\r\n")
            assert read_message(queue, new.id) == b"new\r\n"
        assert listing(spare) == []
        assert read_message(queue, linked.id) == MESSAGE  # untouched
        assert os.pread(holder, len(MESSAGE), 0) == MESSAGE  # untouched
    finally:
        os.close(holder)


def test_recover_empties_spare_and_a_queue_without_spare_still_works(tmp_path: Path) -> None:
    q = Queue(tmp_path / "queue")
    for entry in [enqueue(q) for _ in range(3)]:
        q.remove(entry.id)
    (tmp_path / "queue" / "spare" / "xdeadbeef").write_bytes(b"")  # a removal cut short
    assert Queue(tmp_path / "queue").recover() == 4
    os.rmdir(tmp_path / "queue" / "spare")  # as an older version made it
    old = Queue(tmp_path / "queue", create=False)
    entry = enqueue(old)
    old.remove(entry.id)
    assert old.ids() == []
    assert old.recover() == 0
    assert listing(tmp_path / "queue") == ["envelopes", "tmp"]


def test_abort_and_writer_misuse(queue: Queue, tmp_path: Path) -> None:
    writer = queue.new_message()
    writer.write(b"partial")
    assert listing(tmp_path / "queue" / "tmp") == [os.path.basename(writer.path)]
    queue.abort(writer)
    queue.abort(writer)  # twice is fine
    assert listing(tmp_path / "queue" / "tmp") == []
    with pytest.raises(ValueError, match="already"):
        writer.write(b"more")
    with pytest.raises(ValueError, match="already"):
        queue.commit(writer, sender="", recipients=[QueuedRecipient(address="b@x.org")])
    entry = enqueue(queue)
    assert entry.id in queue


def test_commit_without_recipients_is_refused(queue: Queue, tmp_path: Path) -> None:
    writer = queue.new_message()
    writer.write(MESSAGE)
    with pytest.raises(ValueError, match="recipient"):
        queue.commit(writer, sender="a@example.org", recipients=[])
    assert listing(tmp_path / "queue" / "tmp") == []
    assert queue.ids() == []


def test_commit_with_invalid_field_is_refused(queue: Queue, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ret"):
        enqueue(queue, ret="ALL")
    assert listing(tmp_path / "queue" / "tmp") == []
    assert listing(tmp_path / "queue" / "envelopes") == []


@pytest.mark.parametrize("step", ["link", "unlink"])
def test_commit_link_failure_leaves_nothing(
    queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The entry's name is made by a link, then the tmp/ name removed: a failure of
    either leaves neither (the client gets a 451 and the message is not queued)."""
    real = getattr(os, step)

    def broken(*args: Any) -> None:
        if step == "unlink" and not str(args[0]).endswith(".msg"):
            return real(*args)  # type: ignore[no-any-return]
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, step, broken)
    with pytest.raises(OSError, match="Input/output"):
        enqueue(queue)
    monkeypatch.undo()
    assert listing(tmp_path / "queue" / "envelopes") == []
    queue.recover()  # a tmp/ name that could not be removed goes at the next start
    assert listing(tmp_path / "queue" / "tmp") == []


def test_commit_never_replaces_the_entry_of_another_process(tmp_path: Path, clock: Clock) -> None:
    """Two processes on one queue (the inbound SMTP children) that drew the same id: the
    second commit fails (its client retries), the first entry stays whole."""
    first, second = Queue(tmp_path / "queue", clock=clock), Queue(tmp_path / "queue", clock=clock)
    mine = first.new_message()
    mine.write(MESSAGE)
    theirs = second.new_message()
    theirs.write(b"Subject: the other\r\n\r\nbody\r\n")
    theirs.id = mine.id
    rcpts = [QueuedRecipient(address="b@example.net")]
    entry = first.commit(mine, sender="a@example.org", recipients=rcpts)
    with pytest.raises(FileExistsError):
        second.commit(theirs, sender="c@example.org", recipients=rcpts)
    assert read_message(first, entry.id) == MESSAGE
    loaded = second.load(entry.id)
    assert loaded is not None
    assert loaded.sender == "a@example.org"
    assert listing(tmp_path / "queue" / "tmp") == []


def test_commit_sync_failure_leaves_nothing(
    queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsync_module, "fsync_dir", broken)
    with pytest.raises(OSError, match="Input/output"):
        enqueue(queue)
    monkeypatch.undo()
    for sub in ("tmp", "envelopes"):
        assert listing(tmp_path / "queue" / sub) == []
    assert enqueue(queue).id in queue  # the group sync recovered


def test_file_fsync_failure_leaves_nothing(
    queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    writer = queue.new_message()
    writer.write(MESSAGE)
    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output"):
        queue.commit(writer, sender="", recipients=[QueuedRecipient(address="b@x.org")])
    monkeypatch.undo()
    assert writer.closed
    for sub in ("tmp", "envelopes"):
        assert listing(tmp_path / "queue" / sub) == []


def test_ids_are_unique_and_increase_with_a_stuck_or_backward_clock(
    queue: Queue, clock: Clock
) -> None:
    first = [enqueue(queue).id for _ in range(5)]
    clock.now -= 10
    later = [enqueue(queue).id for _ in range(5)]
    ids = first + later
    assert len(set(ids)) == 10
    assert ids == sorted(ids) == queue.ids()
    assert all(len(i) == 20 for i in ids)


def test_queue_directory_creation(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Queue(tmp_path / "nope", create=False)
    Queue(tmp_path / "a" / "queue")
    Queue(tmp_path / "a" / "queue")  # again: already there
    assert listing(tmp_path / "a" / "queue") == ["envelopes", "spare", "tmp"]
    assert (tmp_path / "a" / "queue").stat().st_mode & 0o777 == 0o700


def test_old_layout_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "queue"
    for sub in ("tmp", "messages", "envelopes", "locks"):
        (root / sub).mkdir(parents=True)
    (root / "messages" / ("0" * 20)).write_bytes(MESSAGE)
    (root / "envelopes" / f"{'0' * 20}.json").write_text("{}")
    for create in (True, False):
        with (
            caplog.at_level(logging.ERROR, logger="mailproto.queue"),
            pytest.raises(QueueLayoutError, match="old layout"),
        ):
            Queue(root, create=create)
        assert "old layout" in caplog.text
    assert listing(root) == ["envelopes", "locks", "messages", "tmp"]  # left alone


def test_empty_old_layout_is_tidied(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    for sub in ("tmp", "messages", "envelopes", "locks"):
        (root / sub).mkdir(parents=True)
    (root / "locks" / ("0" * 20)).write_text("")  # a stale lock file
    Queue(root, create=False)  # the CLI reads it as it is (nothing queued)
    assert listing(root) == ["envelopes", "locks", "messages", "tmp"]
    q = Queue(root)
    assert listing(root) == ["envelopes", "spare", "tmp"]
    assert enqueue(q).id in q


# -- non-ASCII --------------------------------------------------------------------------


def test_non_ascii_addresses(queue: Queue, tmp_path: Path) -> None:
    entry = enqueue(
        queue,
        sender="pelé@exemple.fr",
        rcpts=("用户@例子.中国", "ö@ü.de"),
        smtputf8=True,
        client="héllo ([127.0.0.1])",
    )
    _, raw = embedded(queue, entry.id)
    assert "用户@例子.中国".encode() in raw  # UTF-8 JSON, not \\u escapes
    assert queue.load(entry.id) == entry
    queue.save(entry)
    assert "用户@例子.中国".encode() in saved_file(queue, entry.id).read_bytes()
    queue._cache.clear()
    assert queue.load(entry.id) == entry


def test_lone_surrogate_round_trips(queue: Queue, tmp_path: Path) -> None:
    odd = b"caf\xe9@example.org".decode("utf-8", "surrogateescape")
    entry = enqueue(queue, sender=odd, rcpts=(odd,))
    _, raw = embedded(queue, entry.id)
    raw.decode("utf-8")  # still valid UTF-8
    queue._cache.clear()
    loaded = queue.load(entry.id)
    assert loaded == entry
    assert loaded is not None
    assert loaded.sender == odd
    queue.save(entry)
    saved_file(queue, entry.id).read_bytes().decode("utf-8")
    assert queue.load(entry.id) == entry


# -- unreadable envelopes ---------------------------------------------------------------


def _valid_envelope(entry_id: str) -> dict[str, Any]:
    return {
        "version": 1,
        "id": entry_id,
        "sender": "",
        "arrival": 1,
        "next_attempt": 2,
        "size": 3,
        "ret": None,
        "envid": None,
        "body": None,
        "smtputf8": False,
        "auth_user": None,
        "client": "",
        "warned": False,
        "kind": "message",
        "recipients": [
            {
                "address": "x@y",
                "orcpt": None,
                "notify": None,
                "state": "pending",
                "attempts": 0,
                "last_reply": None,
                "remote_mta": None,
                "last_attempt": None,
            }
        ],
    }


BREAKAGE: list[tuple[str, Any]] = [
    ("version", 2),
    ("id", "zz"),
    ("id", 7),
    ("sender", None),
    ("arrival", "soon"),
    ("arrival", True),
    ("size", -1),
    ("size", 1.5),
    ("ret", "ALL"),
    ("kind", None),
    ("envid", 5),
    ("smtputf8", "yes"),
    ("recipients", {}),
    ("recipients", ["x@y"]),
    ("r.notify", ["NEVER"]),
    ("r.notify", "FAILURE"),
    ("r.state", "lost"),
    ("r.attempts", None),
    ("r.last_attempt", "now"),
]


def put_envelope(q: Queue, entry_id: str, raw: bytes, where: str) -> None:
    """Replace the saved envelope, or the one in the entry file."""
    if where == "saved":
        saved_file(q, entry_id).write_bytes(raw)
    else:
        write_entry(q, entry_id, MESSAGE, raw)


@pytest.mark.parametrize("where", ["saved", "embedded"])
@pytest.mark.parametrize(("key", "value"), BREAKAGE)
def test_invalid_envelope_fields(
    queue: Queue, key: str, value: Any, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    entry = enqueue(queue)
    d = _valid_envelope(entry.id)
    if key.startswith("r."):
        d["recipients"][0][key[2:]] = value
    else:
        d[key] = value
    put_envelope(queue, entry.id, json.dumps(d).encode(), where)
    with pytest.raises(EnvelopeError):
        queue.read(entry.id)
    with caplog.at_level(logging.ERROR, logger="mailproto.queue"):
        assert queue.load(entry.id) is None
    assert "unreadable envelope" in caplog.text
    assert queue.ids() == [entry.id]  # left in place for a person to look at
    assert queue.due(1e12) == []


def test_valid_hand_written_envelope_loads(queue: Queue) -> None:
    entry = enqueue(queue)
    valid = _valid_envelope(entry.id)
    saved_file(queue, entry.id).write_text(json.dumps(valid), "utf-8")
    loaded = queue.load(entry.id)
    assert loaded is not None
    assert (loaded.arrival, loaded.next_attempt, loaded.size) == (1.0, 2.0, 3)
    os.unlink(saved_file(queue, entry.id))
    valid["size"] = len(MESSAGE)  # in the entry file the size must be the message's
    write_entry(queue, entry.id, MESSAGE, json.dumps(valid).encode())
    loaded = queue.load(entry.id)
    assert loaded is not None
    assert (loaded.arrival, loaded.next_attempt, loaded.size) == (1.0, 2.0, len(MESSAGE))


@pytest.mark.parametrize("where", ["saved", "embedded"])
@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[]", b"{}"])
def test_garbage_envelope(queue: Queue, raw: bytes, where: str) -> None:
    entry = enqueue(queue)
    put_envelope(queue, entry.id, raw, where)
    with pytest.raises(EnvelopeError):
        queue.read(entry.id)
    assert queue.load(entry.id) is None


@pytest.mark.parametrize("where", ["saved", "embedded"])
def test_envelope_naming_another_id(queue: Queue, where: str) -> None:
    a = enqueue(queue)
    b = enqueue(queue)
    _, envelope = embedded(queue, a.id)
    put_envelope(queue, b.id, envelope, where)
    with pytest.raises(EnvelopeError, match="another id"):
        queue.read(b.id)


TRAILER_DAMAGE: list[tuple[str, bytes]] = [
    ("short", b"x" * 10),
    ("no trailer", MESSAGE * 3),
    ("bad tag", b"{}" + b"\nmailproto-envelope-2 0000000000000002\n"),
    ("bad digits", b"{}" + b"\nmailproto-envelope-1 000000000000000G\n"),
    ("no newline", b"{}" + b"\nmailproto-envelope-1 0000000000000002x"),
    ("too long", b"{}" + b"\nmailproto-envelope-1 00000000000000ff\n"),
]


@pytest.mark.parametrize(("name", "raw"), TRAILER_DAMAGE, ids=[n for n, _ in TRAILER_DAMAGE])
def test_damaged_entry_file(
    queue: Queue, name: str, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    entry = enqueue(queue)
    entry_file(queue, entry.id).write_bytes(raw)
    with pytest.raises(EnvelopeError):
        queue.read(entry.id)
    with pytest.raises(EnvelopeError):
        queue.open_message(entry.id)
    with caplog.at_level(logging.ERROR, logger="mailproto.queue"):
        assert queue.load(entry.id) is None
    assert "unreadable envelope" in caplog.text
    assert queue.ids() == [entry.id]  # left for a person to look at
    assert queue.recover() == 0


def test_embedded_envelope_size_must_match_the_message(queue: Queue) -> None:
    entry = enqueue(queue)
    _, envelope = embedded(queue, entry.id)
    write_entry(queue, entry.id, MESSAGE + b"more", envelope)
    with pytest.raises(EnvelopeError, match="octets"):
        queue.read(entry.id)


def test_bad_ids_are_refused(queue: Queue) -> None:
    for bad in ("../../etc/passwd", "", "ABCDEF0123456789ABCD", "0" * 21):
        with pytest.raises(ValueError, match="not a queue id"):
            queue.load(bad)
        with pytest.raises(ValueError, match="not a queue id"), queue.lock(bad):
            pass
        assert bad not in queue
    assert 5 not in queue
    # Files in envelopes/ with other names are not entries, nor saved envelopes alone.
    (Path(queue.path) / "envelopes" / "README.json").write_text("{}")
    (Path(queue.path) / "envelopes" / "notes.txt").write_text("")
    (Path(queue.path) / "envelopes" / f"{'0' * 20}.json").write_text("{}")
    assert queue.ids() == []
    assert "0" * 20 not in queue
    assert queue.load("0" * 20) is None


def test_load_error_other_than_missing(
    queue: Queue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    entry = enqueue(queue)

    def denied(self: Queue, entry_id: str) -> QueueEntry:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Queue, "read", denied)
    with caplog.at_level(logging.ERROR, logger="mailproto.queue"):
        assert queue.load(entry.id) is None
    assert "Permission denied" in caplog.text


def test_load_returns_fresh_objects_and_sees_changes(queue: Queue, tmp_path: Path) -> None:
    entry = enqueue(queue)
    one = queue.load(entry.id)
    two = queue.load(entry.id)
    assert one == two
    assert one is not two
    assert one is not None
    one.recipients[0].state = "delivered"  # mutating a loaded copy changes nothing stored
    assert queue.load(entry.id) == entry
    other = Queue(tmp_path / "queue")
    changed = other.load(entry.id)
    assert changed is not None
    changed.sender = "z@example.org"
    other.save(changed)
    assert queue.load(entry.id) == changed


# -- due() ------------------------------------------------------------------------------


def test_due_ordering(queue: Queue, clock: Clock) -> None:
    a = enqueue(queue)
    clock.now += 1
    b = enqueue(queue)
    clock.now += 1
    c = enqueue(queue)
    d = enqueue(queue)
    b.next_attempt = a.arrival - 100  # deferred earlier than a arrived: goes first
    queue.save(b)
    d.next_attempt = clock.now + 3600  # not yet
    queue.save(d)
    assert [e.id for e in queue.due(clock.now)] == [b.id, a.id, c.id]
    assert [e.id for e in queue.due(a.arrival)] == [b.id, a.id]
    assert [e.id for e in queue.due(clock.now + 3600)] == [b.id, a.id, c.id, d.id]
    assert queue.due(0) == []
    queue.remove(c.id)  # and the cache forgets it
    assert [e.id for e in queue.due(clock.now)] == [b.id, a.id]
    Queue(queue.path).remove(a.id)  # removed by another process
    assert [e.id for e in queue.due(clock.now)] == [b.id]
    assert set(queue._cache) <= {b.id, d.id}


# -- recover() --------------------------------------------------------------------------


def _crash_after(q: Queue, step: int) -> str | None:
    """Run the first ``step`` steps of a commit by hand, as a crash would leave them."""
    writer = q.new_message()
    writer.write(MESSAGE)  # 1: message streamed into tmp/
    if step == 1:
        assert writer._file is not None
        writer._file.close()  # the process died: its descriptors are closed
        return None
    entry_id, arrival = q._new_id()
    entry = QueueEntry(
        id=entry_id,
        sender="",
        recipients=[QueuedRecipient(address="b@x")],
        arrival=arrival,
        next_attempt=arrival,
        size=writer.size,
    )
    writer._finish(qm._trailer(entry))  # 2: envelope appended, fsynced
    if step >= 3:
        os.rename(writer.path, q._entry_path(entry_id))  # 3: into envelopes/: queued
    return entry_id


@pytest.mark.parametrize("step", [1, 2, 3])
def test_recover_after_crash_at_each_step(tmp_path: Path, step: int) -> None:
    q = Queue(tmp_path / "queue")
    kept = enqueue(q)
    half = _crash_after(q, step)
    restarted = Queue(tmp_path / "queue")
    removed = restarted.recover()
    assert removed == {1: 1, 2: 1, 3: 0}[step]
    assert listing(tmp_path / "queue" / "tmp") == []
    if step == 3:  # renamed: queued (the 250 may have gone out), complete
        assert half is not None
        assert restarted.ids() == sorted([kept.id, half])
        assert read_message(restarted, half) == MESSAGE
        loaded = restarted.load(half)
        assert loaded is not None
        assert loaded.size == len(MESSAGE)
    else:
        assert restarted.ids() == [kept.id]
        assert listing(tmp_path / "queue" / "envelopes") == [kept.id]
    assert read_message(restarted, kept.id) == MESSAGE
    assert restarted.recover() == 0


@pytest.mark.parametrize("step", ["tmp", "renamed"])
def test_recover_after_crash_in_save(tmp_path: Path, step: str) -> None:
    """A save cut short leaves its file in tmp/ (the old envelope holds); one that got
    as far as the rename has replaced it."""
    q = Queue(tmp_path / "queue")
    entry = enqueue(q)
    entry.next_attempt += 600
    tmp = q._write_tmp(entry)
    if step == "renamed":
        os.rename(tmp, saved_file(q, entry.id))
    restarted = Queue(tmp_path / "queue")
    assert restarted.recover() == (1 if step == "tmp" else 0)
    loaded = restarted.load(entry.id)
    assert loaded is not None
    assert loaded.next_attempt == entry.next_attempt - (600 if step == "tmp" else 0)
    assert listing(tmp_path / "queue" / "tmp") == []


def test_recover_after_crash_in_remove(
    queue: Queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The entry file went, its saved envelope not yet: nothing comes back, and the
    saved envelope is deleted."""
    kept = enqueue(queue)
    queue.save(kept)
    gone = enqueue(queue)
    queue.save(gone)
    os.unlink(entry_file(queue, gone.id))
    assert queue.ids() == [kept.id]
    assert queue.load(gone.id) is None
    (tmp_path / "queue" / "envelopes" / "stray-file").write_text("not ours")
    (tmp_path / "queue" / "tmp" / "a-directory").mkdir()  # not ours either: left alone
    with caplog.at_level(logging.INFO, logger="mailproto.queue"):
        assert queue.recover() == 1
    assert f"saved envelope of removed entry {gone.id}" in caplog.text
    assert queue.ids() == [kept.id]
    assert listing(tmp_path / "queue" / "envelopes") == sorted(
        [kept.id, f"{kept.id}.json", "stray-file"]
    )
    assert listing(tmp_path / "queue" / "tmp") == ["a-directory"]


# -- group commit -----------------------------------------------------------------------


def test_concurrent_commits_from_20_threads(queue: Queue) -> None:
    barrier = threading.Barrier(20)
    results: list[QueueEntry] = []
    errors: list[BaseException] = []

    def session(n: int) -> None:
        try:
            writer = queue.new_message()
            barrier.wait()
            writer.write(MESSAGE + str(n).encode())
            results.append(
                queue.commit(
                    writer,
                    sender=f"s{n}@example.org",
                    recipients=[QueuedRecipient(address="r@x.org")],
                )
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = {e.id for e in results}
    assert len(ids) == 20
    assert set(queue.ids()) == ids
    for e in results:
        n = e.sender[1:].split("@")[0]
        assert read_message(queue, e.id) == MESSAGE + n.encode()
    assert 1 <= queue.sync_rounds <= 20


def test_group_sync_shares_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one directory fsync runs, the others' renames wait for one more, shared."""
    calls = []
    gate = threading.Event()

    def slow(path: str) -> None:
        calls.append(path)
        if len(calls) == 1:
            gate.wait(5)

    monkeypatch.setattr(fsync_module, "fsync_dir", slow)
    sync = fsync_module.GroupSync(["d"])
    first = threading.Thread(target=sync.sync)
    first.start()
    while not calls:
        time.sleep(0.001)
    others = [threading.Thread(target=sync.sync) for _ in range(10)]
    for t in others:
        t.start()
    while sync._requested < 11:
        time.sleep(0.001)
    gate.set()
    for t in [first, *others]:
        t.join()
    assert len(calls) == sync.rounds == 2


def test_group_sync_error_reaches_the_syncer_and_others_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    gate = threading.Event()

    def flaky(path: str) -> None:
        calls.append(path)
        if len(calls) == 1:
            gate.wait(5)
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsync_module, "fsync_dir", flaky)
    sync = fsync_module.GroupSync(["d"])
    failed: list[BaseException] = []

    def first_sync() -> None:
        try:
            sync.sync()
        except OSError as exc:
            failed.append(exc)

    first = threading.Thread(target=first_sync)
    first.start()
    while not calls:
        time.sleep(0.001)
    second = threading.Thread(target=sync.sync)
    second.start()
    while sync._requested < 2:
        time.sleep(0.001)
    gate.set()
    first.join()
    second.join()
    assert len(failed) == 1
    assert sync.rounds == 1
    assert sync._done == 2


# -- locks ------------------------------------------------------------------------------

HOLDER = """
import sys
from mailproto_adapters.mta.queue import Queue
q = Queue(sys.argv[1], create=False)
with q.lock(sys.argv[2]) as taken:
    print("taken" if taken else "busy", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(queue: Queue) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(entry_id: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-c", HOLDER, queue.path, entry_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        for stream in (p.stdin, p.stdout):
            if stream is not None:
                stream.close()


def test_lock_contention_across_processes(queue: Queue, holder: Any) -> None:
    entry = enqueue(queue)
    p = holder(entry.id)
    assert p.stdout.readline().strip() == "taken"
    with queue.lock(entry.id) as taken:
        assert not taken
    p.stdin.write("\n")
    p.stdin.flush()
    assert p.wait(10) == 0
    with queue.lock(entry.id) as taken:
        assert taken
        other = holder(entry.id)
        assert other.stdout.readline().strip() == "busy"
        # Reading the message opens and closes the entry file: the flock stays.
        assert read_message(queue, entry.id) == MESSAGE
        with queue.lock(entry.id) as again:
            assert not again
        third = holder(entry.id)
        assert third.stdout.readline().strip() == "busy"
    assert listing(Path(queue.path) / "envelopes") == [entry.id]  # no lock files


def test_lock_within_one_process(queue: Queue) -> None:
    entry = enqueue(queue)
    with queue.lock(entry.id) as taken:
        assert taken
        with queue.lock(entry.id) as again:
            assert not again
        # A thread is another holder too (flock is per open file).
        seen = []

        def other() -> None:
            with queue.lock(entry.id) as taken:
                seen.append(taken)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen == [False]
        queue.save(entry)  # saving does not touch the locked file
        with queue.lock(entry.id) as again:
            assert not again
    with queue.lock(entry.id) as taken:
        assert taken


def test_lock_of_a_removed_entry(queue: Queue, holder: Any) -> None:
    """The owner removes the entry under its lock; whoever comes next finds nothing to
    own: True, and load says None, as for an id never queued."""
    entry = enqueue(queue)
    with queue.lock(entry.id) as taken:
        assert taken
        queue.remove(entry.id)
    with queue.lock(entry.id) as taken:
        assert taken
        assert queue.load(entry.id) is None
    p = holder(entry.id)
    assert p.stdout.readline().strip() == "taken"
    with queue.lock("0" * 20) as taken:
        assert taken


def test_lock_released_on_error(queue: Queue) -> None:
    entry = enqueue(queue)

    def fail() -> None:
        with queue.lock(entry.id) as taken:
            assert taken
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    with queue.lock(entry.id) as taken:
        assert taken


# -- flush requests ---------------------------------------------------------------------


def test_flush_requested_once(queue: Queue, tmp_path: Path) -> None:
    assert not queue.flush_requested()
    queue.request_flush()
    queue.request_flush()
    assert (tmp_path / "queue" / "flush").exists()
    assert queue.flush_requested()
    assert not queue.flush_requested()


def test_message_writer_exclusive_create(tmp_path: Path) -> None:
    path = str(tmp_path / "m")
    MessageWriter(path)._discard()
    (tmp_path / "m").write_text("")
    with pytest.raises(FileExistsError):
        MessageWriter(path)
