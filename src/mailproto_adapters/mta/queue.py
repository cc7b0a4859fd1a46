"""The MTA's durable queue: a spool directory of messages and their envelopes.

RFC 5321 section 6.1: once the server has answered 250 to the end of the data it is
responsible for the message and MUST NOT lose it, not even when the host crashes. So
`Queue.commit` returns only when the message and its envelope are on disk (file and
directory fsync), and the SMTP server answers 250 only after it returns. The envelope
keeps what later steps need: the reverse-path and per-recipient state for the retries of
RFC 5321 section 4.5.4.1, the DSN parameters of RFC 3461 (ENVID section 4.4, RET 4.3,
NOTIFY 4.1, ORCPT 4.2) for the bounces of RFC 3464, BODY= (RFC 6152, RFC 3030) and
SMTPUTF8 (RFC 6531) for the relay.

Layout under the queue directory (see docs/mta-queue.md)::

    tmp/                   files being written (deleted by recover())
    spare/<slot>           files of removed entries, kept to be written over by later
                           messages (deleted by recover())
    envelopes/<id>         the entry: message octets, then the envelope as it was at
                           the 250 (UTF-8 JSON), then a fixed-size trailer giving the
                           JSON's length; its presence = queued; flock(2) on it = owner
    envelopes/<id>.json    the envelope as last saved, overriding the embedded one
    flush                  present when `mailproto queue flush` asked for a delivery run

A commit costs one file fsync and one directory fsync, as in Postfix: the message is
streamed into tmp/, the envelope appended to it, the file fsynced, renamed into
envelopes/, and envelopes/ fsynced. Concurrent commits share that directory fsync
(group commit).

Removed entries are not unlinked but moved to spare/, and `new_message` writes over one
of them instead of creating a file: in steady state the queue allocates and frees no
inodes. Creating a file costs more than writing over one, and on ext4 without a journal
much more: each creation skips, one by one, every inode freed in the last minutes (up to
five), so a queue freeing hundreds of files a second made every file creation on that
file system, the MDA's included, cost about half a millisecond.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import os
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import attrs

from .._fsync import GroupSync, fsync_dir

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "ENVELOPE_VERSION",
    "EnvelopeError",
    "MessageReader",
    "MessageWriter",
    "Queue",
    "QueueEntry",
    "QueueLayoutError",
    "QueuedRecipient",
]

log = logging.getLogger("mailproto.queue")

ENVELOPE_VERSION = 1
# 16 hex digits of arrival microseconds (good until the year 586,000) + 4 random ones.
_ID_RE = re.compile(r"[0-9a-f]{20}")
_STATES = frozenset({"pending", "delivered", "failed"})
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})
_RET = frozenset({"FULL", "HDRS"})
_BODY = frozenset({"8BITMIME", "BINARYMIME"})
_KINDS = frozenset({"message", "bounce"})
_BUFFER = 64 * 1024
# The last octets of an entry file: "\nmailproto-envelope-1 " + 16 hex digits (the
# length of the JSON before it) + "\n". Fixed size, so one pread finds the envelope.
_TRAILER_TAG = b"\nmailproto-envelope-1 "
_TRAILER_SIZE = len(_TRAILER_TAG) + 16 + 1
_TAIL_READ = 8192  # octets read from the end at once: the trailer and most envelopes
# spare/ holds at most this many files (emptied, so only inodes and names).
SPARE_SLOTS = 4096
_SPARE_RELIST = 0.05  # seconds between listings of an empty spare/
_SPARE_MISSES = 8  # names in a row that others took before spare/ is listed again


@attrs.define(kw_only=True)
class QueuedRecipient:
    """One RCPT TO and what happened to it so far."""

    address: str
    orcpt: str | None = None
    notify: frozenset[str] | None = None
    state: str = "pending"
    attempts: int = 0
    last_reply: str | None = None
    remote_mta: str | None = None
    last_attempt: float | None = None


@attrs.define(kw_only=True)
class QueueEntry:
    """The envelope of one queued message (the message octets are in its entry file)."""

    id: str
    sender: str
    recipients: list[QueuedRecipient]
    arrival: float
    next_attempt: float
    size: int
    ret: str | None = None
    envid: str | None = None
    body: str | None = None
    smtputf8: bool = False
    auth_user: str | None = None
    client: str = ""
    warned: bool = False
    kind: str = "message"


class EnvelopeError(ValueError):
    """An envelope that cannot be read back (damaged, or from a newer version)."""


class QueueLayoutError(Exception):
    """The directory holds a queue in a layout this version does not read."""


class MessageWriter:
    """A message being received: streamed into a file in tmp/, never held in memory."""

    def __init__(self, path: str, entry_id: str = "", *, fd: int | None = None) -> None:
        self.path = path
        self.id = entry_id  # the queue id the entry will have (for Received: fields)
        self.size = 0
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=_BUFFER)

    def write(self, data: bytes) -> None:
        """Append octets. OSError (a full disk) is the caller's 452 and `Queue.abort`."""
        if self._file is None:
            raise ValueError("the message was already committed or aborted")
        self._file.write(data)
        self.size += len(data)

    @property
    def closed(self) -> bool:
        return self._file is None

    def _finish(self, trailer: bytes) -> None:
        """Append the envelope and trailer, flush and fsync: the one file fsync of a
        commit (a directory fsync can be shared, this one cannot)."""
        f = self._file
        if f is None:
            raise ValueError("the message was already committed or aborted")
        self._file = None
        with f:
            f.write(trailer)
            f.flush()
            os.fsync(f.fileno())

    def _discard(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class _MessageWindow(io.RawIOBase):
    """The first ``size`` octets of an entry file, read with pread: the message without
    the envelope after it. No fileno(), so nothing can read past the message."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        with memoryview(buffer) as view, view.cast("B") as octets:
            n = min(len(octets), self._size - self._pos)
            if n <= 0:
                return 0
            got = os.preadv(self._fd, [octets[:n]], self._pos)
        self._pos += got
        return got

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class MessageReader(io.BufferedReader):
    """A queued message's octets (read, readline, seek), ``size`` of them."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__(_MessageWindow(fd, size), _BUFFER)
        self.size = size


# -- envelope (de)serialisation ---------------------------------------------------------


def _fail(message: str) -> EnvelopeError:
    return EnvelopeError(message)


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{key} must be a string or null")
    return value


def _req_str(d: dict[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise _fail(f"{key} must be a string")
    return value


def _number(d: dict[str, Any], key: str) -> float:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{key} must be a number")
    return float(value)


def _opt_number(d: dict[str, Any], key: str) -> float | None:
    return None if d.get(key) is None else _number(d, key)


def _count(d: dict[str, Any], key: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(f"{key} must be a non-negative integer")
    return value


def _flag(d: dict[str, Any], key: str) -> bool:
    value = d.get(key)
    if not isinstance(value, bool):
        raise _fail(f"{key} must be true or false")
    return value


def _choice(d: dict[str, Any], key: str, allowed: frozenset[str], *, optional: bool) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    if value not in allowed:
        raise _fail(f"{key} must be one of {sorted(allowed)}")
    return value


def _decode_recipient(d: Any) -> QueuedRecipient:
    if not isinstance(d, dict):
        raise _fail("a recipient must be an object")
    notify = d.get("notify")
    if notify is not None:
        if not isinstance(notify, list) or not all(n in _NOTIFY for n in notify):
            raise _fail(f"notify must be null or a list of {sorted(_NOTIFY)}")
        notify = frozenset(notify)
    return QueuedRecipient(
        address=_req_str(d, "address"),
        orcpt=_opt_str(d, "orcpt"),
        notify=notify,
        state=_choice(d, "state", _STATES, optional=False),
        attempts=_count(d, "attempts"),
        last_reply=_opt_str(d, "last_reply"),
        remote_mta=_opt_str(d, "remote_mta"),
        last_attempt=_opt_number(d, "last_attempt"),
    )


def _decode(d: Any) -> QueueEntry:
    if not isinstance(d, dict):
        raise _fail("an envelope must be a JSON object")
    if d.get("version") != ENVELOPE_VERSION:
        raise _fail(f"unknown envelope version {d.get('version')!r}")
    entry_id = _req_str(d, "id")
    if not _ID_RE.fullmatch(entry_id):
        raise _fail(f"bad id {entry_id!r}")
    recipients = d.get("recipients")
    if not isinstance(recipients, list):
        raise _fail("recipients must be a list")
    return QueueEntry(
        id=entry_id,
        sender=_req_str(d, "sender"),
        recipients=[_decode_recipient(r) for r in recipients],
        arrival=_number(d, "arrival"),
        next_attempt=_number(d, "next_attempt"),
        size=_count(d, "size"),
        ret=_choice(d, "ret", _RET, optional=True),
        envid=_opt_str(d, "envid"),
        body=_choice(d, "body", _BODY, optional=True),
        smtputf8=_flag(d, "smtputf8"),
        auth_user=_opt_str(d, "auth_user"),
        client=_req_str(d, "client"),
        warned=_flag(d, "warned"),
        kind=_choice(d, "kind", _KINDS, optional=False),
    )


def _encode(entry: QueueEntry) -> bytes:
    """The envelope file's bytes. Validated by decoding, so what is saved always loads."""
    recipients = []
    for r in entry.recipients:
        recipients.append(
            {
                "address": r.address,
                "orcpt": r.orcpt,
                "notify": None if r.notify is None else sorted(r.notify),
                "state": r.state,
                "attempts": r.attempts,
                "last_reply": r.last_reply,
                "remote_mta": r.remote_mta,
                "last_attempt": r.last_attempt,
            }
        )
    d = {
        "version": ENVELOPE_VERSION,
        "id": entry.id,
        "sender": entry.sender,
        "arrival": entry.arrival,
        "next_attempt": entry.next_attempt,
        "size": entry.size,
        "ret": entry.ret,
        "envid": entry.envid,
        "body": entry.body,
        "smtputf8": entry.smtputf8,
        "auth_user": entry.auth_user,
        "client": entry.client,
        "warned": entry.warned,
        "kind": entry.kind,
        "recipients": recipients,
    }
    try:
        _decode(d)
    except EnvelopeError as exc:
        raise ValueError(f"invalid queue entry {entry.id!r}: {exc}") from None
    try:
        text = json.dumps(d, ensure_ascii=False, allow_nan=False, separators=_COMPACT)
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (undecodable octets kept by surrogateescape) is not UTF-8;
        # JSON's \udcxx escape keeps the file valid UTF-8 and loads back the same str.
        data = json.dumps(d, ensure_ascii=True, allow_nan=False, separators=_COMPACT).encode()
    return data + b"\n"


_COMPACT = (",", ":")  # no indent: json's C encoder (indent takes the Python one)


def _check_id(entry_id: str) -> str:
    if not isinstance(entry_id, str) or not _ID_RE.fullmatch(entry_id):
        raise ValueError(f"not a queue id: {entry_id!r}")
    return entry_id


def _trailer(entry: QueueEntry) -> bytes:
    """What follows the message in its entry file: the envelope, then the fixed-size
    trailer that gives the envelope's length."""
    data = _encode(entry)
    return data + _TRAILER_TAG + b"%016x\n" % len(data)


def _read_trailer(fd: int, file_size: int) -> tuple[int, bytes]:
    """(message size, envelope JSON) of an entry file, from its end."""
    if file_size < _TRAILER_SIZE:
        raise EnvelopeError("the entry file is too short to hold an envelope")
    start = max(file_size - _TAIL_READ, 0)
    tail = os.pread(fd, file_size - start, start)
    trailer = tail[-_TRAILER_SIZE:]
    digits = trailer[len(_TRAILER_TAG) : -1]
    if (
        len(tail) != file_size - start
        or not trailer.startswith(_TRAILER_TAG)
        or not trailer.endswith(b"\n")
        or re.fullmatch(rb"[0-9a-f]{16}", digits) is None
    ):
        raise EnvelopeError("the entry file has no envelope trailer")
    length = int(digits, 16)
    size = file_size - _TRAILER_SIZE - length
    if size < 0:
        raise EnvelopeError("the envelope trailer gives a length beyond the file")
    if size >= start:
        return size, tail[size - start : -_TRAILER_SIZE]
    return size, os.pread(fd, length, size)


def _parse(raw: bytes) -> QueueEntry:
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not UTF-8 JSON: {exc}") from None
    return _decode(d)


# -- the queue --------------------------------------------------------------------------


class Queue:
    """The spool directory. Thread-safe; several processes may open the same one (the
    MTA and `mailproto queue`), and `lock` keeps them from acting on one entry at once.
    Only one process (the MTA) should call `commit` and `recover`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        create: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._tmp = os.path.join(self.path, "tmp")
        self._envelopes = os.path.join(self.path, "envelopes")
        self._spare = os.path.join(self.path, "spare")
        self._flush = os.path.join(self.path, "flush")
        self._check_layout(tidy=create)
        if create:
            self._create()
        elif not os.path.isdir(self._envelopes):
            raise FileNotFoundError(errno.ENOENT, "no queue here", self.path)
        self._id_lock = threading.Lock()
        self._last_us = 0
        self._cache_lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[str, int, int, int], QueueEntry]] = {}
        self._sync = GroupSync((self._envelopes,))
        self._spare_lock = threading.Lock()
        self._spare_names: list[str] = []  # from the last listing of spare/, not yet tried
        self._spare_empty_until = 0.0  # monotonic time before which spare/ is not listed

    def _check_layout(self, *, tidy: bool) -> None:
        """Refuse the first layout (messages/<id> + envelopes/<id>.json + locks/), which
        this version does not read; an empty one is tidied up when ``tidy``."""
        old = os.path.join(self.path, "messages")
        try:
            names = os.listdir(old)
        except (FileNotFoundError, NotADirectoryError):
            return
        if names:
            why = (
                f"{self.path} is a queue in the old layout (messages/ and envelopes/*.json), "
                f"which this version does not read: deliver or delete its {len(names)} "
                "entries with the version that wrote them, or move the directory away"
            )
            log.error("queue: %s", why)
            raise QueueLayoutError(why)
        if tidy:
            log.warning("queue: removing the empty messages/ and locks/ of the old layout")
            os.rmdir(old)
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(os.path.join(self.path, "locks")):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.path, "locks", name))
                os.rmdir(os.path.join(self.path, "locks"))

    def _create(self) -> None:
        created = False
        if not os.path.isdir(self.path):
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
            created = True
        for sub in (self._tmp, self._envelopes, self._spare):
            with contextlib.suppress(FileExistsError):
                os.mkdir(sub, 0o700)
                created = True
        if created:
            fsync_dir(self.path)

    @property
    def sync_rounds(self) -> int:
        """How many rounds of directory fsyncs ran: fewer than commits under load."""
        return self._sync.rounds

    # -- receiving ----------------------------------------------------------------------

    def new_message(self) -> MessageWriter:
        """A file in tmp/ to stream the message into, before the envelope is known.

        Its queue id is chosen now (``writer.id``), so that the SMTP server can write it
        into the Received field, as Postfix does; the entry's arrival time is still the
        commit's."""
        entry_id, _ = self._new_id()
        while True:
            path = os.path.join(self._tmp, f"{secrets.token_hex(8)}.msg")
            fd = self._take_spare(path)
            if fd is not None:
                return MessageWriter(path, entry_id, fd=fd)
            try:
                return MessageWriter(path, entry_id)
            except FileExistsError:  # pragma: no cover - 64 random bits collided
                continue

    def _take_spare(self, path: str) -> int | None:
        """Move a file of spare/ to ``path`` and open it for writing; None when there is
        none. Each name is claimed by a rename, so that processes sharing spare/ never
        take the same file. A file still linked elsewhere or locked by someone (who
        opened the entry before its removal) is not written over: it is unlinked and the
        caller creates a file."""
        misses = 0
        while (name := self._spare_name()) is not None:
            try:
                os.rename(os.path.join(self._spare, name), path)
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # no O_TRUNC before the checks
            except FileNotFoundError:  # another process took it (or recover() deleted it)
                misses += 1
                if misses % _SPARE_MISSES == 0:  # the listing is stale: list again
                    with self._spare_lock:
                        self._spare_names.clear()
                continue
            try:
                if os.fstat(fd).st_nlink == 1:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.ftruncate(fd, 0)  # emptied when offered; this costs nothing then
                    return fd
            except BlockingIOError:
                pass
            os.close(fd)
            os.unlink(path)
            return None
        return None

    def _spare_name(self) -> str | None:
        """The next name of spare/ to try: from one listing, shuffled (processes listing
        together) and kept for the next calls; None when spare/ is empty (then not
        listed again for ``_SPARE_RELIST`` seconds)."""
        with self._spare_lock:
            if not self._spare_names:
                now = time.monotonic()
                if now < self._spare_empty_until:
                    return None
                with contextlib.suppress(FileNotFoundError):  # no spare/: an older queue
                    self._spare_names = [n for n in os.listdir(self._spare) if n.isdigit()]
                if not self._spare_names:
                    self._spare_empty_until = now + _SPARE_RELIST
                    return None
                random.shuffle(self._spare_names)
            return self._spare_names.pop()

    def _new_id(self) -> tuple[str, float]:
        """A fresh id and its arrival time; ids increase within the process even if the
        clock steps back, and the random suffix separates processes."""
        arrival = self._clock()
        with self._id_lock:
            us = max(int(arrival * 1_000_000), self._last_us + 1)
            self._last_us = us
        return f"{us:016x}{secrets.token_hex(2)}", arrival

    def commit(
        self,
        writer: MessageWriter,
        *,
        sender: str,
        recipients: Iterable[QueuedRecipient],
        ret: str | None = None,
        envid: str | None = None,
        body: str | None = None,
        smtputf8: bool = False,
        auth_user: str | None = None,
        client: str = "",
        kind: str = "message",
    ) -> QueueEntry:
        """Make the message durable and queued; the server may answer 250 once this
        returns. On any error nothing stays queued (the writer is discarded) and the
        exception propagates: the server answers 451/452 and the client retries."""
        rcpts = list(recipients)
        final: str | None = None
        try:
            if not rcpts:
                raise ValueError("a queued message needs at least one recipient")
            if writer.closed:
                raise ValueError("the message was already committed or aborted")
            entry_id, arrival = self._new_id()
            if writer.id:
                entry_id = writer.id
            entry = QueueEntry(
                id=entry_id,
                sender=sender,
                recipients=rcpts,
                arrival=arrival,
                next_attempt=arrival,
                size=writer.size,
                ret=ret,
                envid=envid,
                body=body,
                smtputf8=smtputf8,
                auth_user=auth_user,
                client=client,
                kind=kind,
            )
            writer._finish(_trailer(entry))  # 1. envelope appended, the file fsynced
            target = self._entry_path(entry_id)
            # 2. queued, once the new name is durable. A link, not a rename: an entry of
            # another process that drew the same id (the same microsecond and the same
            # 16 random bits) is refused, never replaced; the client gets a 451.
            os.link(writer.path, target)
            final = target
            os.unlink(writer.path)
            self._sync.sync()  # 3. envelopes/ fsynced, shared by concurrent commits
            return entry
        except BaseException:
            if final is not None:
                with contextlib.suppress(OSError):
                    os.unlink(final)
            writer._discard()
            raise

    def abort(self, writer: MessageWriter) -> None:
        """Forget a message that will not be queued (RSET, a lost connection, 552)."""
        writer._discard()

    def _write_tmp(self, entry: QueueEntry) -> str:
        """A saved envelope in tmp/, fsynced, to be renamed over ``<id>.json``."""
        data = _encode(entry)
        path = os.path.join(self._tmp, f"{entry.id}.{secrets.token_hex(4)}.env")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)
        return path

    # -- reading ------------------------------------------------------------------------

    def _entry_path(self, entry_id: str) -> str:
        return os.path.join(self._envelopes, _check_id(entry_id))

    def _saved_path(self, entry_id: str) -> str:
        return os.path.join(self._envelopes, f"{_check_id(entry_id)}.json")

    def ids(self) -> list[str]:
        """The queued ids, oldest first (ids sort by arrival)."""
        return sorted(name for name in os.listdir(self._envelopes) if _ID_RE.fullmatch(name))

    def __contains__(self, entry_id: object) -> bool:
        """``id in queue``: whether its entry file is there (a bad id is not)."""
        if not isinstance(entry_id, str) or not _ID_RE.fullmatch(entry_id):
            return False
        return os.path.exists(self._entry_path(entry_id))

    def read(self, entry_id: str) -> QueueEntry:
        """The entry: its saved envelope if there is one, else the one in the entry
        file. FileNotFoundError when it is not queued, EnvelopeError when the envelope
        cannot be read. A cache keyed by the file's identity saves re-reading unchanged
        envelopes (every save makes a new inode)."""
        entry_path = self._entry_path(entry_id)
        saved_path = self._saved_path(entry_id)
        try:
            st = os.stat(entry_path)  # queued iff the entry file is there
        except FileNotFoundError:
            with self._cache_lock:
                self._cache.pop(entry_id, None)
            raise
        try:
            sst = os.stat(saved_path)
            key = ("saved", sst.st_ino, sst.st_mtime_ns, sst.st_size)
        except FileNotFoundError:
            key = ("entry", st.st_ino, st.st_mtime_ns, st.st_size)
        with self._cache_lock:
            cached = self._cache.get(entry_id)
        if cached is not None and cached[0] == key:
            return _copy(cached[1])
        entry: QueueEntry | None = None
        if key[0] == "saved":
            try:
                with open(saved_path, "rb") as f:
                    sst = os.fstat(f.fileno())
                    raw = f.read()
            except FileNotFoundError:
                pass  # removed just now: the entry file says whether it is still queued
            else:
                key = ("saved", sst.st_ino, sst.st_mtime_ns, sst.st_size)
                entry = _parse(raw)
        if entry is None:
            fd = os.open(entry_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                size, raw = _read_trailer(fd, st.st_size)
            finally:
                os.close(fd)
            key = ("entry", st.st_ino, st.st_mtime_ns, st.st_size)
            entry = _parse(raw)
            if entry.size != size:
                raise EnvelopeError(f"the envelope says {entry.size} octets, the file {size}")
        if entry.id != entry_id:
            raise EnvelopeError(f"the envelope names another id, {entry.id!r}")
        with self._cache_lock:
            self._cache[entry_id] = (key, entry)
        return _copy(entry)

    def load(self, id: str) -> QueueEntry | None:
        """The entry, or None when it is gone or unreadable (logged: left in place for
        a person to look at, since it may come from a newer version)."""
        try:
            return self.read(id)
        except FileNotFoundError:
            return None
        except (OSError, EnvelopeError) as exc:
            log.error("queue entry %s: unreadable envelope: %s", id, exc)
            return None

    def open_message(self, id: str) -> BinaryIO:
        """The stored message octets, for reading (a `MessageReader`: ``.size``)."""
        fd = os.open(self._entry_path(id), os.O_RDONLY | os.O_CLOEXEC)
        try:
            size, _ = _read_trailer(fd, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise
        return MessageReader(fd, size)

    def due(self, now: float) -> list[QueueEntry]:
        """Entries whose next attempt is at or before ``now``, the longest waiting first
        (by next attempt, then arrival)."""
        ids = self.ids()
        entries = [e for e in map(self.load, ids) if e is not None and e.next_attempt <= now]
        with self._cache_lock:
            live = set(ids)
            for stale in [k for k in self._cache if k not in live]:
                del self._cache[stale]
        entries.sort(key=lambda e: (e.next_attempt, e.id))
        return entries

    # -- changing -----------------------------------------------------------------------

    def save(self, entry: QueueEntry) -> None:
        """Replace the saved envelope atomically and durably (tmp, fsync, rename, dir
        fsync). FileNotFoundError when the entry is no longer queued: a saved envelope
        never outlives its entry file, so nothing is re-created."""
        entry_path = self._entry_path(entry.id)
        final = self._saved_path(entry.id)
        if not os.path.exists(entry_path):
            raise FileNotFoundError(errno.ENOENT, "queue entry is gone", entry_path)
        tmp = self._write_tmp(entry)
        try:
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._sync.sync()
        if not os.path.exists(entry_path):  # removed meanwhile, by a holder of no lock
            with contextlib.suppress(FileNotFoundError):
                os.unlink(final)
            raise FileNotFoundError(errno.ENOENT, "queue entry is gone", entry_path)

    def remove(self, id: str) -> None:
        """Dequeue: the entry file goes first, durably (from then on the message cannot
        come back), then the saved envelope, which without its entry file is nothing.
        The other order could bring back the entry with its envelope as received, all
        recipients pending: every delivery would be made again. Missing files are not
        an error."""
        entry_path = self._entry_path(id)
        with self._cache_lock:
            self._cache.pop(id, None)
        with contextlib.suppress(FileNotFoundError):
            kept = self._retire(entry_path)
            self._sync.sync()
            if kept is not None:
                self._offer_spare(kept)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._saved_path(id))

    def _retire(self, path: str) -> str | None:
        """Take the entry file out of envelopes/: renamed into spare/ under a name
        `new_message` does not take (returned), or unlinked when the queue has no spare/
        (made by an older version)."""
        kept = os.path.join(self._spare, f"x{secrets.token_hex(8)}")
        try:
            os.rename(path, kept)
            return kept
        except FileNotFoundError:
            if os.path.isdir(self._spare):
                raise  # the entry is gone
        os.unlink(path)
        return None

    def _offer_spare(self, kept: str) -> None:
        """Once the removal is durable (so that no crash can bring the old name back
        onto a file written over), empty ``kept`` (no copy of the message stays on
        disk) and move it into a free slot, or free it."""
        os.truncate(kept, 0)
        for _ in range(3):
            try:
                os.link(kept, os.path.join(self._spare, str(secrets.randbelow(SPARE_SLOTS))))
                break
            except FileExistsError:
                continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(kept)

    @contextlib.contextmanager
    def lock(self, id: str) -> Iterator[bool]:
        """``with queue.lock(id) as taken:`` -- True when this caller now owns the entry,
        False when someone else (a thread, or another process) does. Never blocks.

        The lock is flock(2) on the entry file itself. The file is created once, never
        replaced, and removed only by its owner, so the inode locked is the entry's for
        all its life (a removed entry's file may be written over as a new entry later,
        but never while someone still holds a lock on it); flock belongs to the open
        file description, so other descriptors on the file (open_message) opening and
        closing do not release it. An entry that is not (or no longer) queued has
        nothing to own: True, and `load` says None.
        """
        try:
            fd = os.open(self._entry_path(id), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                taken = True
            except BlockingIOError:
                taken = False
            yield taken
        finally:
            os.close(fd)  # releases the flock

    def recover(self) -> int:
        """Clean up after a crash, before the server accepts mail: delete everything in
        tmp/ (commits and saves that never completed: no 250 was sent for them) and
        saved envelopes whose entry file is gone (a removal cut short). Returns the
        number of files deleted. Nothing here needs an fsync: a deletion that a crash
        undoes is made again at the next start."""
        removed = 0
        leftovers: list[str] = []
        for sub in (self._tmp, self._spare):
            with contextlib.suppress(FileNotFoundError), os.scandir(sub) as it:
                leftovers += [e.path for e in it if not e.is_dir(follow_symlinks=False)]
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
        names = set(os.listdir(self._envelopes))
        for name in sorted(names):
            if name.endswith(".json") and _ID_RE.fullmatch(name[:-5]) and name[:-5] not in names:
                log.info("queue: deleting the saved envelope of removed entry %s", name[:-5])
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._envelopes, name))
                    removed += 1
        return removed

    # -- flush requests -----------------------------------------------------------------

    def request_flush(self) -> None:
        """Ask the delivery runner (maybe in another process) for a run now."""
        fd = os.open(self._flush, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)

    def flush_requested(self) -> bool:
        """True once per request (the flag file is consumed)."""
        try:
            os.unlink(self._flush)
        except FileNotFoundError:
            return False
        return True


def _copy(entry: QueueEntry) -> QueueEntry:
    """A fresh copy, so that callers mutating what they loaded change nothing cached."""
    return attrs.evolve(entry, recipients=[attrs.evolve(r) for r in entry.recipients])
