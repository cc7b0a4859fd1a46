"""The embedded mail store: one Maildir++ per user, IMAP state in SQLite beside it.

Layout under the store's root directory::

    <root>/<user>/                   the user's Maildir: INBOX (cur/ new/ tmp/)
    <root>/<user>/.Sent/             a Maildir++ folder (names.py: how names map)
    <folder>/dovecot-keywords        keyword <-> letter a-z, Dovecot's format
    <folder>/mailproto.sqlite        UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UID map,
                                     MODSEQs, expunged UIDs, metadata cache (WAL)
    <folder>/mailproto.lock          the folder lock (flock)
    <root>/<user>/mailproto-user.sqlite   subscriptions, SPECIAL-USE, quota, UIDVALIDITY

The files are the truth: flags live in the names (``base:2,FRS``, keywords as letters
a-z through ``dovecot-keywords``), so mutt and Dovecot read and change the same state.
The database follows the files. A message is known by its base name (before ":"), so a
file another program renamed keeps its UID; a file another program dropped into new/
gets the next UID at the next scan (in the order of the time stamps of the names); a
file that disappeared is expunged, and its UID never comes back (UIDNEXT only grows).

Concurrency: every change and every scan runs under the folder lock, a thread lock plus
``flock`` on ``mailproto.lock``, and in one SQLite transaction; so sessions in threads
and in other processes cannot lose a flag update or a message, or give one UID twice.
Reads (snapshot, metadata) need no file lock. A scan is two ``stat`` calls when neither
new/ nor cur/ changed since the last scan (and the last change is over a second old,
the resolution of directory time stamps that we trust, as Dovecot does).

Delivery writes tmp/, fsyncs the file, renames it into new/ (cur/ when it has flags),
fsyncs the directory, then records its UID; a crash in between leaves a file that the
next scan numbers. The quota is checked before writing when the size is known, and
again before the rename; concurrent deliveries may pass it by at most one message each.
Other programs' deliveries are not counted until scanned.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import datetime
import errno
import fcntl
import io
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import attrs

from mailproto.imap import encode_envelope
from mailproto.imap import responses as _r
from mailproto.message import body_structure, envelope, parse_message

from .._fsync import GroupSync, fsync_dir
from .names import (
    DELIMITER,
    INBOX,
    InvalidMailboxName,
    dirname_to_name,
    mailbox_path,
    normalize_name,
    parent_names,
    user_dirname,
)
from .store import (
    DELIVERY_ID,
    SPECIAL_USE,
    SYSTEM_FLAGS,
    Changes,
    FlagsResult,
    MailboxExists,
    MailboxHasChildren,
    MailboxInfo,
    MailboxNotFound,
    MailStore,
    MessageMetadata,
    MessageRecord,
    QuotaExceeded,
    QuotaUsage,
    StoreError,
    UserStore,
)
from .store import Mailbox as _Mailbox

__all__ = ["MaildirMailbox", "MaildirStore", "MaildirUser"]

DB_FILE = "mailproto.sqlite"
LOCK_FILE = "mailproto.lock"
USER_DB_FILE = "mailproto-user.sqlite"
KEYWORDS_FILE = "dovecot-keywords"
_SCHEMA_VERSION = 1
_DIRTY_NS = 1_000_000_000  # a directory changed this recently is listed again
_CHUNK = 1 << 16

_FLAG_LETTER = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
_LETTER_FLAG = {v: k for k, v in _FLAG_LETTER.items()}
_SYSTEM_BY_LOWER = {f.lower(): f for f in SYSTEM_FLAGS}
_KEYWORD = re.compile(r'[^\x00-\x20\x7f-\uffff(){%*"\\\]]{1,200}')
_UTC = datetime.UTC
_LEADING_DIGITS = re.compile(r"\d+")
_SIZE_FIELD = re.compile(r",S=(\d+)")
_SIZES = re.compile(r",[SW]=\d+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    uid INTEGER PRIMARY KEY,
    base TEXT NOT NULL UNIQUE,
    fname TEXT NOT NULL,
    letters TEXT NOT NULL,
    size INTEGER NOT NULL,
    idate REAL NOT NULL,
    tzoff INTEGER NOT NULL,
    modseq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_modseq ON messages (modseq);
CREATE TABLE IF NOT EXISTS expunged (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cache (uid INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS envwire (uid INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""


# --- file names -------------------------------------------------------------------------


def _split_name(fname: str) -> tuple[str, str]:
    """(base, info letters) of a Maildir file name; letters "" without ":2,"."""
    base, sep, info = fname.partition(":")
    if sep and info.startswith("2,"):
        return base, info[2:]
    return base, ""


def _name_order(fname: str) -> tuple[int, str]:
    """Order of new files: the time stamp that starts a Maildir name, then the name."""
    m = _LEADING_DIGITS.match(fname)
    return (int(m.group()) if m else 0, fname)


def _host() -> str:
    """The host part of a Maildir name, with "/" and ":" escaped as the spec says."""
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


_counter_lock = threading.Lock()
_counter = 0


def _unique_base(delivery_id: str | None = None) -> str:
    """A Maildir base name: seconds.M<usec>P<pid>Q<n>R<random>[D<delivery id>].<host>.

    The delivery id (LMTP ``XDELIVERYID``) lets a redelivery after a crash find the copy
    already stored: the name is written by the same rename that stores the message.
    """
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    tag = f"D{delivery_id}" if delivery_id else ""
    return f"{sec}.M{usec}P{os.getpid()}Q{n}R{secrets.token_hex(4)}{tag}.{_host()}"


def _write_tmp(
    folder: str, message: bytes | BinaryIO, mtime: float | None, delivery_id: str | None = None
) -> tuple[str, str, int, int]:
    """Write the message into tmp/ and fsync it: (tmp path, final base, size, vsize).

    The base carries ``,S=<size>,W=<vsize>`` as Dovecot writes it (vsize counts each
    bare LF as CRLF), so that other readers need not stat or read the file.
    """
    base = _unique_base(delivery_id)
    tmp = os.path.join(folder, "tmp", base)
    size = lf = crlf = 0
    last = b""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=True) as f:
            stream: BinaryIO = io.BytesIO(message) if isinstance(message, bytes) else message
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                size += len(chunk)
                lf += chunk.count(b"\n")
                crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
                last = chunk[-1:]
            f.flush()
            os.fsync(f.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    vsize = size + lf - crlf
    return tmp, f"{base},S={size},W={vsize}", size, vsize


# --- keywords ---------------------------------------------------------------------------


def _check_flags(flags: Iterable[str]) -> tuple[set[str], set[str]]:
    """(system flags, keywords) of a STORE/APPEND flag list; ValueError for bad ones."""
    system: set[str] = set()
    keywords: set[str] = set()
    for flag in flags:
        if flag.startswith("\\"):
            if flag.lower() == "\\recent":
                continue
            canonical = _SYSTEM_BY_LOWER.get(flag.lower())
            if canonical is None:
                raise ValueError(f"unknown system flag {flag!r}")
            system.add(canonical)
        elif _KEYWORD.fullmatch(flag):
            keywords.add(flag)
        else:
            raise ValueError(f"invalid keyword {flag!r}")
    return system, keywords


class _Keywords:
    """A folder's ``dovecot-keywords``: "<index> <keyword>" lines, index 0 = letter a."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.names: dict[int, str] = {}
        # Lines we do not use (not an atom, or an index past z): kept when we rewrite the
        # file, and their letters never given to another keyword.
        self.other: dict[int, str] = {}
        self.version = 0  # bumped whenever ``names`` changes

    def load(self) -> dict[int, str]:
        """The mapping, re-read only when the file changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.names:
                self.version += 1
            self.stamp, self.names, self.other = None, {}, {}
            return self.names
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            names: dict[int, str] = {}
            other: dict[int, str] = {}
            with open(self.path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    idx, _, name = line.rstrip("\n").partition(" ")
                    if not idx.isdigit() or not name:
                        continue
                    # Only names that are IMAP atoms: another program's odd entry
                    # must not break FETCH FLAGS.
                    if int(idx) < 26 and _KEYWORD.fullmatch(name):
                        names[int(idx)] = name
                    else:
                        other[int(idx)] = name
            if names != self.names:
                self.version += 1
            self.stamp, self.names, self.other = stamp, names, other
        return self.names

    def letters_for(self, keywords: Iterable[str], *, create: bool) -> dict[str, str]:
        """Keyword -> letter; new keywords get free letters when ``create`` (locked)."""
        names = self.load()
        by_lower = {n.lower(): i for i, n in names.items()}
        out: dict[str, str] = {}
        added = False
        for kw in sorted(keywords):
            idx = by_lower.get(kw.lower())
            if idx is None:
                if not create:
                    continue
                free = [i for i in range(26) if i not in names and i not in self.other]
                if not free:
                    raise StoreError("too many keywords in this mailbox (26 at most)")
                idx = free[0]
                names[idx] = kw
                by_lower[kw.lower()] = idx
                added = True
            out[kw] = chr(ord("a") + idx)
        if added:
            tmp = f"{self.path}.{secrets.token_hex(4)}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(f"{i} {n}\n" for i, n in sorted({**self.other, **names}.items()))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self.stamp = None
            self.names = names
            self.version += 1
        return out


# --- metadata cache codec ---------------------------------------------------------------

_CLASSES: dict[str, type[Any]] = {
    c.__name__: c
    for c in (
        _r.Address,
        _r.Envelope,
        _r.Disposition,
        _r.BodyBasic,
        _r.BodyText,
        _r.BodyMessage,
        _r.BodyMultipart,
    )
}


def _encode(value: Any) -> Any:
    """JSON-ready form of envelope and body values (never pickle: the file is data)."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    cls = type(value)
    out: dict[str, Any] = {"_": cls.__name__}
    for field in attrs.fields(cls):
        v = getattr(value, field.name)
        if field.default is attrs.NOTHING or v != field.default:
            out[field.name] = _encode(v)
    return out


# Per class: every field with its default (attrs.NOTHING when required).
_FIELDS: dict[str, tuple[type[Any], tuple[tuple[str, Any], ...]]] = {
    name: (cls, tuple((f.name, f.default) for f in attrs.fields(cls)))
    for name, cls in _CLASSES.items()
}
_setattr = object.__setattr__
_BODIES = (_r.BodyBasic, _r.BodyText, _r.BodyMessage, _r.BodyMultipart)
_ADDRESSES = (_r.Address,)
# Which classes may stand in which field (alone or in a tuple); elsewhere none may.
_KINDS: dict[str, tuple[type[Any], ...]] = {
    "envelope": (_r.Envelope,),
    "body": _BODIES,
    "parts": _BODIES,
    "disposition": (_r.Disposition,),
    **dict.fromkeys(("from_", "sender", "reply_to", "to", "cc", "bcc"), _ADDRESSES),
}


def _check_kind(name: str, value: Any) -> None:
    """A tampered cache must not put an Address where a body goes, and so on."""
    allowed = _KINDS.get(name, ())
    items = value if type(value) is tuple else (value,)
    for item in items:
        if type(item) in (bytes, int, type(None)):
            continue
        if type(item) is tuple:
            if allowed:
                raise ValueError(f"nested tuple in {name}")
            _check_kind(name, item)
        elif type(item) not in allowed:
            raise ValueError(f"{type(item).__name__} not allowed in {name}")


def _decode(value: Any) -> Any:
    """The inverse of `_encode`, without re-running the classes' validators.

    The values were validated when the message was parsed; building them again through
    ``__init__`` would cost as much as parsing a small message anew. What the classes
    check for themselves is checked here where a tampered cache file could break the
    IMAP output: every string is bytes without NUL, every class is one of ours, every
    required field is present. Anything else raises, and the caller parses the message.
    """
    if value is None or type(value) is int:
        return value
    if type(value) is str:
        data = value.encode("latin-1")
        if b"\x00" in data:
            raise ValueError("NUL in cached metadata")
        return data
    if type(value) is list:
        return tuple([_decode(v) for v in value])
    cls, fields = _FIELDS[value["_"]]
    obj = object.__new__(cls)
    for name, default in fields:
        if name in value:
            decoded = _decode(value[name])
            _check_kind(name, decoded)
            _setattr(obj, name, decoded)
        elif default is attrs.NOTHING:
            raise ValueError(f"cached metadata lacks {cls.__name__}.{name}")
        else:
            _setattr(obj, name, default)
    return obj


def _compute_metadata(data: bytes) -> MessageMetadata:
    """Parse once: what FETCH ENVELOPE / BODY / BODYSTRUCTURE / RFC822.SIZE need."""
    msg = parse_message(data)
    vsize = len(data) + data.count(b"\n") - data.count(b"\r\n")
    return MessageMetadata(
        size=len(data),
        virtual_size=vsize,
        envelope=envelope(msg),
        body=body_structure(msg, extensible=False),
        bodystructure=body_structure(msg, extensible=True),
    )


def _dump_metadata(md: MessageMetadata) -> str:
    return json.dumps(
        [
            md.size,
            md.virtual_size,
            _encode(md.envelope),
            _encode(md.body),
            _encode(md.bodystructure),
        ],
        separators=(",", ":"),
    )


def _load_metadata(text: str) -> MessageMetadata:
    size, vsize, env, body, bs = json.loads(text)
    if type(size) is not int or type(vsize) is not int:
        raise ValueError("bad sizes in cached metadata")
    envelope_, body_, bodystructure = _decode(env), _decode(body), _decode(bs)
    if type(envelope_) is not _r.Envelope or not (
        type(body_) in _BODIES and type(bodystructure) in _BODIES
    ):
        raise ValueError("bad cached metadata")
    return MessageMetadata(
        size=size,
        virtual_size=vsize,
        envelope=envelope_,
        body=body_,
        bodystructure=bodystructure,
    )


_ENVELOPE_STRINGS = ("date", "subject", "in_reply_to", "message_id")
_ENVELOPE_ADDRESSES = ("from_", "sender", "reply_to", "to", "cc", "bcc")
_ADDRESS_FIELDS = ("name", "adl", "mailbox", "host")
# The cached list starts "[size,vsize,{envelope}": the envelope is decoded alone.
_SIZES_PREFIX = re.compile(r"\[-?\d+,-?\d+,")
_raw_decode = json.JSONDecoder().raw_decode


def _nstring(value: Any) -> bytes | None:
    """A cached nstring: None, or latin-1 text without NUL (else ValueError)."""
    if value is None:
        return None
    if type(value) is not str or "\x00" in value:
        raise ValueError("bad string in cached envelope")
    return value.encode("latin-1")


def _decode_envelope(value: Any) -> _r.Envelope:
    """The envelope alone, field by field (FETCH ENVELOPE of many messages).

    Equal to what `_decode` builds from a valid entry, at a fraction of the cost: the
    shape is known, so each value is checked once where it stands (an nstring, or a
    list of addresses), instead of walking every node with `_check_kind`. Stricter than
    `_decode`: anything unexpected raises, and the caller takes the full path.
    """
    if type(value) is not dict or value.get("_") != "Envelope":
        raise ValueError("not a cached envelope")
    env = object.__new__(_r.Envelope)
    get = value.get
    for name in _ENVELOPE_STRINGS:
        _setattr(env, name, _nstring(get(name)))
    address_cls = _r.Address
    for name in _ENVELOPE_ADDRESSES:
        items = get(name)
        if items is None:
            _setattr(env, name, None)
            continue
        if type(items) is not list:
            raise ValueError("bad address list in cached envelope")
        addresses = []
        for item in items:
            if type(item) is not dict or item.get("_") != "Address":
                raise ValueError("not a cached address")
            address = object.__new__(address_cls)
            for field in _ADDRESS_FIELDS:
                _setattr(address, field, _nstring(item.get(field)))
            addresses.append(address)
        _setattr(env, name, tuple(addresses))
    return env


def _load_envelope(text: str) -> _r.Envelope:
    """The envelope of a cache entry, without parsing the body structures' JSON."""
    m = _SIZES_PREFIX.match(text)
    if m is None:
        raise ValueError("bad cached metadata")
    value, _end = _raw_decode(text, m.end())
    return _decode_envelope(value)


# --- one folder, shared by every handle in this process ---------------------------------


@attrs.define
class _Row:
    uid: int
    base: str
    fname: str
    letters: str
    size: int
    idate: float
    tzoff: int
    modseq: int


_ROW_COLUMNS = "uid, base, fname, letters, size, idate, tzoff, modseq"


class _Folder:
    """The state of one Maildir folder in this process: lock, database, watchers."""

    def __init__(self, path: str, new_uidvalidity: Callable[[], int]) -> None:
        self.path = path
        self.pid = os.getpid()
        self.tlock = threading.RLock()
        self.depth = 0
        self.deleted = False
        self.notify_pending = False
        self.watchers: list[Callable[[int], None]] = []
        self.keywords = _Keywords(os.path.join(path, KEYWORDS_FILE))
        self.dir_syncs = {sub: GroupSync((os.path.join(path, sub),)) for sub in ("new", "cur")}
        self.flag_cache: dict[tuple[int, str], tuple[frozenset[str], frozenset[str]]] = {}
        # base -> "new/..." or "cur/...": the listing the database last matched.
        self.listing: dict[str, str] | None = None
        # changes_since(0) as of ((HIGHESTMODSEQ, keywords version), its answer)
        self.snapshot: tuple[tuple[int, int], Changes] | None = None
        lock_path = os.path.join(path, LOCK_FILE)
        self.lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.lock_ino = os.fstat(self.lock_fd).st_ino
        self.conn = sqlite3.connect(
            os.path.join(path, DB_FILE),
            timeout=60,
            isolation_level=None,
            check_same_thread=False,
        )
        with self.locked():
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=60000")
            with self.tx():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                have = self.conn.execute("SELECT value FROM meta WHERE key='uidvalidity'")
                if have.fetchone() is None:
                    for key, value in (
                        ("version", _SCHEMA_VERSION),
                        ("uidvalidity", new_uidvalidity()),
                        ("uidnext", 1),
                        ("highestmodseq", 1),
                        ("new_mtime", 0),
                        ("cur_mtime", 0),
                    ):
                        self.conn.execute("INSERT INTO meta VALUES (?, ?)", (key, value))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            os.close(self.lock_fd)

    # -- locking and transactions --

    def check_alive(self) -> None:
        """MailboxNotFound once the folder was deleted or renamed under us."""
        if self.deleted:
            raise MailboxNotFound("mailbox no longer exists")
        try:
            ino = os.stat(os.path.join(self.path, LOCK_FILE)).st_ino
        except FileNotFoundError:
            ino = -1
        if ino != self.lock_ino:
            self.deleted = True
            raise MailboxNotFound("mailbox no longer exists")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The folder lock: threads of this process, then other processes (flock)."""
        watchers: list[Callable[[int], None]] = []
        with self.tlock:
            if self.depth == 0:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
                try:
                    self.check_alive()
                except BaseException:
                    fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
                    raise
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if self.depth == 0:
                    fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
                    if self.notify_pending:
                        self.notify_pending = False
                        watchers = list(self.watchers)
            highest = self.meta("highestmodseq") if watchers else 0
        for callback in watchers:
            with contextlib.suppress(Exception):
                callback(highest)

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE), committed or rolled back."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def meta(self, key: str) -> int:
        with self.tlock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0])

    def set_meta(self, key: str, value: int) -> None:
        self.conn.execute("UPDATE meta SET value=? WHERE key=?", (value, key))

    def next_modseq(self) -> int:
        """A MODSEQ above every earlier one (inside a transaction)."""
        modseq = self.meta("highestmodseq") + 1
        self.set_meta("highestmodseq", modseq)
        self.notify_pending = True
        return modseq

    def rows(self, where: str = "", args: Sequence[Any] = ()) -> list[_Row]:
        with self.tlock:
            cur = self.conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM messages {where} ORDER BY uid", tuple(args)
            )
            return [_Row(*r) for r in cur]

    def rows_for(self, query: str, uids: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``query`` (its ``{marks}`` stands for the UIDs' placeholders),
        asked 500 UIDs at a time: SQLite limits the variables of one statement."""
        for i in range(0, len(uids), 500):
            chunk = uids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            with self.tlock:
                rows = self.conn.execute(query.format(marks=marks), chunk).fetchall()
            yield from rows

    def row(self, uid: int) -> _Row | None:
        rows = self.rows("WHERE uid=?", (uid,))
        return rows[0] if rows else None

    # -- scanning --

    def scan(self, force: bool = False) -> None:
        """Bring the database in line with new/ and cur/ (under the lock)."""
        with self.locked():
            plan = self.plan_scan(force)
            if plan is not None:
                with self.tx() as conn:
                    self.apply_scan(conn, plan)
                self.listing = plan[0]

    def plan_scan(self, force: bool = False) -> tuple[dict[str, str], int, int, bool] | None:
        """The listing to reconcile (disk, new/ mtime, cur/ mtime, force), or None.

        None when neither directory changed since the last scan and the last change is
        older than the time stamp resolution we trust. Call under the lock, then
        `apply_scan` in a transaction, then set ``listing`` to the disk part.
        """
        new_dir = os.path.join(self.path, "new")
        cur_dir = os.path.join(self.path, "cur")
        try:
            new_m = os.stat(new_dir).st_mtime_ns
            cur_m = os.stat(cur_dir).st_mtime_ns
        except FileNotFoundError:
            self.deleted = True
            raise MailboxNotFound("mailbox no longer exists") from None
        if (
            not force
            and new_m == self.meta("new_mtime")
            and cur_m == self.meta("cur_mtime")
            and time.time_ns() - max(new_m, cur_m) > _DIRTY_NS
        ):
            return None
        disk: dict[str, str] = {}
        for sub, dirpath in (("new", new_dir), ("cur", cur_dir)):
            for fname in os.listdir(dirpath):
                if fname.startswith("."):
                    continue
                base = fname.partition(":")[0]
                disk[base] = f"{sub}/{fname}"  # cur/ wins over new/
        return disk, new_m, cur_m, force

    def apply_scan(
        self, conn: sqlite3.Connection, plan: tuple[dict[str, str], int, int, bool]
    ) -> None:
        """Reconcile a planned listing (inside a transaction)."""
        disk, new_m, cur_m, force = plan
        prev, self.listing = self.listing, None
        self._reconcile(conn, disk, None if force else prev)
        if new_m != self.meta("new_mtime"):
            self.set_meta("new_mtime", new_m)
        if cur_m != self.meta("cur_mtime"):
            self.set_meta("cur_mtime", cur_m)

    def _reconcile(
        self, conn: sqlite3.Connection, disk: dict[str, str], prev: dict[str, str] | None
    ) -> None:
        """Update the database from a listing (inside the scan's transaction).

        With ``prev``, the listing this process last reconciled, only the names that
        differ from it are looked at: every writer changes file and row together under
        the lock, so a name that did not change on disk has a row that matches it.
        """
        if prev is not None:
            changed = [b for b, f in disk.items() if prev.get(b) != f]
            changed += [b for b in prev if b not in disk]
            if len(changed) > 2000:
                prev = None
        if prev is None:
            known = conn.execute("SELECT uid, base, fname, letters FROM messages").fetchall()
        else:
            known = []
            for base in changed:
                row = conn.execute(
                    "SELECT uid, base, fname, letters FROM messages WHERE base=?", (base,)
                ).fetchone()
                if row is not None:
                    known.append(row)
        added = dict(disk) if prev is None else {b: disk[b] for b in changed if b in disk}
        modseq = 0
        for uid, base, fname, old_letters in known:
            found = added.pop(base, None)
            if found is None:
                modseq = modseq or self.next_modseq()
                conn.execute("DELETE FROM messages WHERE uid=?", (uid,))
                conn.execute("DELETE FROM cache WHERE uid=?", (uid,))
                conn.execute("DELETE FROM envwire WHERE uid=?", (uid,))
                conn.execute("INSERT OR REPLACE INTO expunged VALUES (?, ?)", (uid, modseq))
            elif found != fname:
                letters = _split_name(found.partition("/")[2])[1]
                if letters != old_letters:
                    modseq = modseq or self.next_modseq()
                    conn.execute(
                        "UPDATE messages SET fname=?, letters=?, modseq=? WHERE uid=?",
                        (found, letters, modseq, uid),
                    )
                else:
                    conn.execute("UPDATE messages SET fname=? WHERE uid=?", (found, uid))
        if not added:
            return
        uidnext = self.meta("uidnext")
        for base, fname in sorted(added.items(), key=lambda i: _name_order(i[0])):
            try:
                st = os.stat(os.path.join(self.path, fname))
            except FileNotFoundError:
                disk.pop(base, None)  # gone again: the next scan sees where it went
                continue
            m = _SIZE_FIELD.search(base)
            size = int(m.group(1)) if m else st.st_size
            modseq = modseq or self.next_modseq()
            conn.execute(
                f"INSERT INTO messages ({_ROW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                (
                    uidnext,
                    base,
                    fname,
                    _split_name(fname.partition("/")[2])[1],
                    size,
                    st.st_mtime,
                    0,
                    modseq,
                ),
            )
            uidnext += 1
        self.set_meta("uidnext", uidnext)

    # -- records --

    def flags_of(self, letters: str) -> tuple[frozenset[str], frozenset[str]]:
        """(system flags, keywords) of a file's info letters.

        Uses the keywords as last loaded: batch callers call ``keywords.load()`` once.
        """
        names = self.keywords.names
        key = (self.keywords.version, letters)
        hit = self.flag_cache.get(key)
        if hit is None:
            system = frozenset(_LETTER_FLAG[c] for c in letters if c in _LETTER_FLAG)
            kws = frozenset(
                names[ord(c) - 97] for c in letters if "a" <= c <= "z" and ord(c) - 97 in names
            )
            hit = (system, kws)
            if len(self.flag_cache) > 4096:
                self.flag_cache.clear()
            self.flag_cache[key] = hit
        return hit

    def record(self, row: _Row) -> MessageRecord:
        return self.make_record(row.uid, row.letters, row.size, row.idate, row.tzoff, row.modseq)

    def make_record(
        self, uid: int, letters: str, size: int, idate: float, tzoff: int, modseq: int
    ) -> MessageRecord:
        system, kws = self.flags_of(letters)
        tz = _UTC if tzoff == 0 else datetime.timezone(datetime.timedelta(minutes=tzoff))
        return MessageRecord(
            uid=uid,
            flags=system,
            keywords=kws,
            size=size,
            internal_date=datetime.datetime.fromtimestamp(idate, tz),
            modseq=modseq,
        )

    def records(self) -> list[MessageRecord]:
        """Every message, in UID order, straight from the rows (SELECT of a big folder)."""
        self.keywords.load()
        with self.tlock:
            rows = self.conn.execute(
                "SELECT uid, letters, size, idate, tzoff, modseq FROM messages ORDER BY uid"
            ).fetchall()
        make = self.make_record
        return [make(*r) for r in rows]

    def open_row(self, uid: int) -> BinaryIO:
        """Open a message's file, rescanning when another program just renamed it."""
        for attempt in range(3):
            row = self.row(uid)
            if row is None:
                raise KeyError(uid)
            try:
                return open(os.path.join(self.path, row.fname), "rb")
            except FileNotFoundError:
                self.scan(force=attempt > 0)
        raise KeyError(uid)


_registry_lock = threading.Lock()
# Every folder in use in this process, found by (pid, path): weakly, so that a folder no
# session holds can go; the `_RECENT` most recently used are also held strongly, so that
# the connection, lock file and listing of a busy folder outlive each short session
# (an LMTP delivery) without keeping every folder of every user open for ever.
_registry: weakref.WeakValueDictionary[tuple[int, str], _Folder] = weakref.WeakValueDictionary()
_recent: collections.OrderedDict[tuple[int, str], _Folder] = collections.OrderedDict()
_RECENT = 64


def _folder(path: str, new_uidvalidity: Callable[[], int]) -> _Folder:
    """The process's one `_Folder` for ``path`` (a new one after a fork or a delete):
    a resolved path, as `mailbox_path` gives, so that one folder has one key."""
    key = (os.getpid(), path)
    with _registry_lock:
        folder = _registry.get(key)
        if folder is not None and not folder.deleted:
            try:
                folder.check_alive()
            except MailboxNotFound:
                folder = None
        else:
            folder = None
        if folder is None:
            if not os.path.isdir(os.path.join(path, "cur")):
                raise MailboxNotFound("no such mailbox")
            folder = _Folder(path, new_uidvalidity)
            _registry[key] = folder
        _recent[key] = folder
        _recent.move_to_end(key)
        while len(_recent) > _RECENT:
            _recent.popitem(last=False)
        return folder


def _make_maildir(path: str, subfolder: bool) -> None:
    """Create a Maildir atomically: built beside it, then renamed into place.

    A subfolder gets the permissions and group of the user's Maildir root, as Dovecot
    gives its own folders (and it refuses to RENAME between folders whose permissions
    differ); the root itself is 0700.
    """
    parent = os.path.dirname(path)
    mode, gid = 0o700, -1
    if subfolder:
        root = os.stat(parent)
        mode = stat.S_IMODE(root.st_mode) & 0o777
        if root.st_gid != os.getegid():
            gid = root.st_gid
    tmp = os.path.join(parent, f"..mailproto-new-{secrets.token_hex(6)}")
    os.mkdir(tmp, 0o700)
    try:
        for sub in ("", "cur", "new", "tmp"):
            where = os.path.join(tmp, sub) if sub else tmp
            if sub:
                os.mkdir(where, 0o700)
            if mode != 0o700:
                os.chmod(where, mode)  # past the umask, on purpose
            if gid != -1:
                os.chown(where, -1, gid)
        if subfolder:
            open(os.path.join(tmp, "maildirfolder"), "wb").close()
        try:
            os.rename(tmp, path)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise MailboxExists("mailbox exists") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(parent)


# --- the public classes -----------------------------------------------------------------


# A message linked into a target's tmp/: source UID, tmp path, base, size, flags,
# keywords, internal date.
_Staged = tuple[int, str, str, int, set[str], set[str], datetime.datetime]


def _drop_staged(staged: list[_Staged]) -> None:
    """Remove the tmp/ links that were not committed."""
    for item in staged:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(item[1])


def _path_key(folder: _Folder) -> str:
    return folder.path


class MaildirMailbox(_Mailbox):
    """A handle on one Maildir++ folder (see the module documentation)."""

    def __init__(self, user: MaildirUser, name: str, folder: _Folder) -> None:
        self._user = user
        self._name = name
        self._folder = folder

    def __repr__(self) -> str:
        return f"<MaildirMailbox {self._user.user!r} {self._name!r}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        """The folder's directory (for tests and tools; servers do not need it)."""
        return self._folder.path

    @property
    def uidvalidity(self) -> int:
        return self._folder.meta("uidvalidity")

    @property
    def uidnext(self) -> int:
        self._folder.scan()
        return self._folder.meta("uidnext")

    @property
    def highestmodseq(self) -> int:
        self._folder.scan()
        return self._folder.meta("highestmodseq")

    def snapshot(self) -> list[MessageRecord]:
        f = self._folder
        f.scan()
        return f.records()

    def open(self, uid: int) -> BinaryIO:
        return self._folder.open_row(uid)

    def metadata(self, uid: int) -> MessageMetadata:
        f = self._folder
        with f.tlock:
            hit = f.conn.execute("SELECT data FROM cache WHERE uid=?", (uid,)).fetchone()
        if hit is not None:
            with contextlib.suppress(Exception):
                return _load_metadata(hit[0])
        md = self._parse(uid)
        self._cache([(uid, md)])
        return md

    def _parse(self, uid: int) -> MessageMetadata:
        """Read and parse one message (a cache miss); KeyError when it is gone."""
        with self.open(uid) as fp:
            data = fp.read()
        return _compute_metadata(data)

    def _cache(self, entries: list[tuple[int, MessageMetadata]]) -> None:
        """Store parsed metadata in one transaction, for messages that still exist."""
        f = self._folder
        with f.tlock, contextlib.suppress(sqlite3.Error), f.tx() as conn:
            for uid, md in entries:
                if conn.execute("SELECT 1 FROM messages WHERE uid=?", (uid,)).fetchone():
                    conn.execute(
                        "INSERT OR REPLACE INTO cache VALUES (?, ?)", (uid, _dump_metadata(md))
                    )

    def metadata_many(self, uids: Iterable[int]) -> dict[int, MessageMetadata]:
        """Cached entries in one query per 500 UIDs; misses parsed, then cached at once."""
        f = self._folder
        wanted = list(dict.fromkeys(uids))
        out: dict[int, MessageMetadata] = {}
        for uid, data in f.rows_for("SELECT uid, data FROM cache WHERE uid IN ({marks})", wanted):
            with contextlib.suppress(Exception):
                out[uid] = _load_metadata(data)
        fresh: list[tuple[int, MessageMetadata]] = []
        for uid in wanted:
            if uid not in out:
                with contextlib.suppress(KeyError):
                    out[uid] = self._parse(uid)
                    fresh.append((uid, out[uid]))
                if len(fresh) >= 500:
                    self._cache(fresh)
                    fresh = []
        if fresh:
            self._cache(fresh)
        return {uid: out[uid] for uid in wanted if uid in out}

    def envelopes_many(self, uids: Iterable[int]) -> dict[int, _r.Envelope]:
        """Only the envelopes, decoded alone (FETCH 1:* ENVELOPE); others via metadata."""
        f = self._folder
        wanted = list(dict.fromkeys(uids))
        out: dict[int, _r.Envelope] = {}
        for uid, data in f.rows_for("SELECT uid, data FROM cache WHERE uid IN ({marks})", wanted):
            with contextlib.suppress(Exception):
                out[uid] = _load_envelope(data)
        missing = [uid for uid in wanted if uid not in out]
        if missing:
            for uid, md in self.metadata_many(missing).items():
                out[uid] = md.envelope
        return {uid: out[uid] for uid in wanted if uid in out}

    def reader(self, uids: Sequence[int]) -> Callable[[int], bytes]:
        """Reads by the file names of one query per 500 UIDs, made at the first read (a
        search of flags reads nothing); a file renamed since (another program changed
        its flags) is found again through `open`."""
        f = self._folder
        names: dict[int, str] = {}
        wanted: list[int] | None = list(uids)

        def look_up(wanted: list[int]) -> None:
            names.update(
                f.rows_for("SELECT uid, fname FROM messages WHERE uid IN ({marks})", wanted)
            )

        def read(uid: int) -> bytes:
            nonlocal wanted
            if wanted is not None:
                look_up(wanted)
                wanted = None
            fname = names.get(uid)
            if fname is not None:
                with (
                    contextlib.suppress(FileNotFoundError),
                    open(os.path.join(f.path, fname), "rb") as fp,
                ):
                    return fp.read()
            with self.open(uid) as fp:
                return fp.read()

        return read

    def envelope_wires_many(self, uids: Iterable[int]) -> dict[int, bytes | _r.Envelope]:
        """Each envelope's wire form (`mailproto.imap.encode_envelope`), one query per
        500 UIDs.

        The forms are cached beside the metadata (table ``envwire``) and computed from
        `envelopes_many` on a miss. They are not checked here: `FetchWriter` checks
        them as it writes (and the caller falls back to `metadata`).
        """
        f = self._folder
        wanted = list(dict.fromkeys(uids))
        out: dict[int, bytes | _r.Envelope] = {}
        for uid, data in f.rows_for("SELECT uid, data FROM envwire WHERE uid IN ({marks})", wanted):
            if type(data) is bytes and data:
                out[uid] = data
        missing = [uid for uid in wanted if uid not in out]
        if missing:
            fresh = [
                (uid, encode_envelope(env)) for uid, env in self.envelopes_many(missing).items()
            ]
            out.update(fresh)
            with f.tlock, contextlib.suppress(sqlite3.Error), f.tx() as conn:
                for uid, wire in fresh:
                    if conn.execute("SELECT 1 FROM messages WHERE uid=?", (uid,)).fetchone():
                        conn.execute("INSERT OR REPLACE INTO envwire VALUES (?, ?)", (uid, wire))
        return {uid: out[uid] for uid in wanted if uid in out}

    def set_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: str = "add",
        unchangedsince: int | None = None,
    ) -> FlagsResult:
        if mode not in ("add", "remove", "set"):
            raise ValueError(f"mode must be add, remove or set, not {mode!r}")
        system, kws = _check_flags(flags)
        wanted = set(uids)
        f = self._folder
        changed: list[MessageRecord] = []
        modified: list[int] = []
        with f.locked():
            f.scan()
            kw_letters = f.keywords.letters_for(kws, create=mode != "remove")
            letters = {_FLAG_LETTER[s] for s in system} | set(kw_letters.values())
            managed = set(_FLAG_LETTER.values())
            with f.tx() as conn:
                modseq = 0
                for row in f.rows():
                    if row.uid not in wanted:
                        continue
                    if unchangedsince is not None and row.modseq > unchangedsince:
                        modified.append(row.uid)
                        continue
                    old = set(row.letters)
                    if mode == "add":
                        new = old | letters
                    elif mode == "remove":
                        new = old - letters
                    else:  # keep letters we do not manage ("P"...)
                        new = {c for c in old if c not in managed and not c.islower()} | letters
                    if new == old:
                        continue
                    new_letters = "".join(sorted(new))
                    fname = f"cur/{row.base}:2,{new_letters}"
                    if not self._rename(row, fname):
                        continue
                    modseq = modseq or f.next_modseq()
                    conn.execute(
                        "UPDATE messages SET fname=?, letters=?, modseq=? WHERE uid=?",
                        (fname, new_letters, modseq, row.uid),
                    )
                    row.letters, row.modseq = new_letters, modseq
                    changed.append(f.record(row))
        return FlagsResult(changed=tuple(changed), modified=tuple(modified))

    def _rename(self, row: _Row, fname: str) -> bool:
        """Rename a message file; False when it vanished (another program expunged it)."""
        path = self._folder.path
        src = os.path.join(path, row.fname)
        try:
            os.rename(src, os.path.join(path, fname))
            return True
        except FileNotFoundError:
            pass
        # Another program renamed it since our scan: find it by its base name.
        for sub in ("cur", "new"):
            for name in os.listdir(os.path.join(path, sub)):
                if name.partition(":")[0] == row.base:
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(os.path.join(path, sub, name), os.path.join(path, fname))
                        return True
        return False

    def _unlink(self, row: _Row) -> None:
        """Remove a message file, wherever another program may just have renamed it.

        Otherwise a file mutt renamed a moment before would survive its expunge and come
        back at the next scan as a new message.
        """
        path = self._folder.path
        try:
            os.unlink(os.path.join(path, row.fname))
            return
        except FileNotFoundError:
            pass
        for sub in ("cur", "new"):
            for name in os.listdir(os.path.join(path, sub)):
                if name.partition(":")[0] == row.base:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(path, sub, name))

    def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        return self._remove(None if uids is None else set(uids), only_deleted=True)

    def _remove(self, uids: set[int] | None, *, only_deleted: bool) -> list[int]:
        f = self._folder
        gone: list[int] = []
        with f.locked():
            f.scan()
            with f.tx() as conn:
                modseq = 0
                for row in f.rows():
                    if uids is not None and row.uid not in uids:
                        continue
                    if only_deleted and "T" not in row.letters:
                        continue
                    self._unlink(row)
                    modseq = modseq or f.next_modseq()
                    conn.execute("DELETE FROM messages WHERE uid=?", (row.uid,))
                    conn.execute("DELETE FROM cache WHERE uid=?", (row.uid,))
                    conn.execute("DELETE FROM envwire WHERE uid=?", (row.uid,))
                    conn.execute("INSERT OR REPLACE INTO expunged VALUES (?, ?)", (row.uid, modseq))
                    gone.append(row.uid)
        return gone

    def append(
        self,
        message: bytes | BinaryIO,
        flags: Iterable[str] = (),
        internal_date: datetime.datetime | None = None,
        *,
        delivery_id: str | None = None,
    ) -> int:
        if delivery_id is not None and not DELIVERY_ID.fullmatch(delivery_id):
            raise ValueError(f"invalid delivery id {delivery_id!r}")
        system, kws = _check_flags(flags)
        limited = self._user.quota_limit() is not None  # read once when there is none
        if limited:
            self._user.check_quota(len(message) if isinstance(message, bytes) else 0)
        if internal_date is not None and internal_date.tzinfo is None:
            internal_date = internal_date.replace(tzinfo=datetime.UTC)
        mtime = internal_date.timestamp() if internal_date is not None else None
        tmp, base, size, _vsize = _write_tmp(self._folder.path, message, mtime, delivery_id)
        try:
            if limited and not isinstance(message, bytes):
                self._user.check_quota(size)
            return self._commit(tmp, base, size, system, kws, internal_date)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _commit(
        self,
        tmp: str,
        base: str,
        size: int,
        system: set[str],
        kws: set[str],
        internal_date: datetime.datetime | None,
    ) -> int:
        """Move a written tmp/ file into place and number it (under the folder lock)."""
        f = self._folder
        with f.locked():
            kw_letters = f.keywords.letters_for(kws, create=True)
            letters = "".join(sorted({_FLAG_LETTER[s] for s in system} | set(kw_letters.values())))
            sub = "cur" if letters else "new"
            fname = f"cur/{base}:2,{letters}" if letters else f"new/{base}"
            if internal_date is None:
                idate, tzoff = os.stat(tmp).st_mtime, 0
            else:
                idate = internal_date.timestamp()
                offset = internal_date.utcoffset() or datetime.timedelta(0)
                tzoff = int(offset.total_seconds() // 60)
            # One transaction: the rename and the new row. A crash after the rename
            # leaves a file without a row, which the next scan numbers. No scan here:
            # files others added meanwhile are numbered by the next reader's scan (after
            # this one: UIDs only have to grow), and a delivery stays O(1) in the size
            # of the folder instead of listing it every time.
            with f.tx() as conn:
                os.rename(tmp, os.path.join(f.path, fname))
                uid = f.meta("uidnext")
                modseq = f.next_modseq()
                conn.execute(
                    f"INSERT INTO messages ({_ROW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                    (uid, base, fname, letters, size, idate, tzoff, modseq),
                )
                f.set_meta("uidnext", uid + 1)
            if f.listing is not None:
                f.listing[base] = fname  # file and row changed together, as scans expect
        # The new name made durable after the lock, in a round shared with concurrent
        # deliveries to this folder. Before it, a crash may take the file back: its row
        # then goes at the next scan (an expunge), and its 250 has not gone out yet.
        f.dir_syncs[sub].sync()
        return uid

    def delivered(self, delivery_id: str) -> int | None:
        if not DELIVERY_ID.fullmatch(delivery_id):
            raise ValueError(f"invalid delivery id {delivery_id!r}")
        f = self._folder
        with f.locked():
            f.scan()
            row = f.conn.execute(
                "SELECT uid FROM messages WHERE instr(base, ?) > 0", (f"D{delivery_id}.",)
            ).fetchone()
        return None if row is None else int(row[0])

    def copy(self, uids: Iterable[int], target: _Mailbox) -> tuple[list[int], list[int]]:
        wanted = set(uids)
        dest = self._target(target)
        f = self._folder
        # The quota is checked without holding this folder's lock: it scans every folder,
        # and holding one folder's lock while taking another's could deadlock.
        with f.locked():
            f.scan()
            total = sum(r.size for r in f.rows() if r.uid in wanted)
        self._user.check_quota(total)
        staged: list[_Staged] = []
        try:
            with f.locked():
                staged = self._stage(wanted, dest)
            return self._commit_staged(staged, dest)
        finally:
            _drop_staged(staged)

    def move(self, uids: Iterable[int], target: _Mailbox) -> tuple[list[int], list[int]]:
        """MOVE under both folders' locks (taken in path order, so never a deadlock).

        Holding both makes it atomic: two sessions moving the same message cannot
        both copy it. No quota check: the user's usage does not change.
        """
        wanted = set(uids)
        dest = self._target(target)
        folders = sorted({id(x): x for x in (self._folder, dest._folder)}.values(), key=_path_key)
        staged: list[_Staged] = []
        with contextlib.ExitStack() as stack:
            for folder in folders:
                stack.enter_context(folder.locked())
            try:
                staged = self._stage(wanted, dest)
                src_uids, new_uids = self._commit_staged(staged, dest)
            finally:
                _drop_staged(staged)
            self._remove(set(src_uids), only_deleted=False)
        return src_uids, new_uids

    def _target(self, target: _Mailbox) -> MaildirMailbox:
        if not isinstance(target, MaildirMailbox) or target._user.root != self._user.root:
            raise StoreError("copy target must be a mailbox of the same user")
        return target

    def _stage(self, uids: set[int], target: MaildirMailbox) -> list[_Staged]:
        """Link the messages into the target's tmp/ (under this folder's lock)."""
        f = self._folder
        f.scan()
        f.keywords.load()
        staged: list[_Staged] = []
        try:
            for row in f.rows():
                if row.uid not in uids:
                    continue
                rec = f.record(row)
                base = _unique_base() + "".join(_SIZES.findall(row.base))
                tmp = os.path.join(target.path, "tmp", base)
                src = os.path.join(f.path, row.fname)
                try:
                    os.link(src, tmp)
                except FileNotFoundError:
                    continue
                except OSError:
                    shutil.copyfile(src, tmp)
                    with open(tmp, "rb+") as fp:
                        os.fsync(fp.fileno())
                flags, kws = set(rec.flags), set(rec.keywords)
                staged.append((row.uid, tmp, base, row.size, flags, kws, rec.internal_date))
        except BaseException:
            _drop_staged(staged)
            raise
        return staged

    @staticmethod
    def _commit_staged(
        staged: list[_Staged], target: MaildirMailbox
    ) -> tuple[list[int], list[int]]:
        src_uids: list[int] = []
        new_uids: list[int] = []
        for uid, tmp, base, size, system, kws, idate in staged:
            new_uids.append(target._commit(tmp, base, size, system, kws, idate))
            src_uids.append(uid)
        return src_uids, new_uids

    def changes_since(self, modseq: int) -> Changes:
        f = self._folder
        with f.locked():
            f.scan()
            f.keywords.load()
            if modseq == 0:  # SELECT: the whole folder, the same until anything changes
                key = (f.meta("highestmodseq"), f.keywords.version)
                cached = f.snapshot
                if cached is not None and cached[0] == key:
                    return cached[1]
            rows = f.rows("WHERE modseq > ?", (modseq,))
            with f.tlock:
                gone = [
                    r[0]
                    for r in f.conn.execute(
                        "SELECT uid FROM expunged WHERE modseq > ? ORDER BY uid", (modseq,)
                    )
                ]
            highest = f.meta("highestmodseq")
            changes = Changes(
                records=tuple(f.record(r) for r in rows),
                expunged=tuple(gone),
                highestmodseq=highest,
            )
            if modseq == 0:
                # Every change (delivery, flags, expunge, a file found by a scan) takes
                # a new MODSEQ; keyword names come from dovecot-keywords (its version).
                f.snapshot = ((highest, f.keywords.version), changes)
        return changes

    def watch(self, callback: Callable[[int], None]) -> Callable[[], None]:
        f = self._folder
        with f.tlock:
            f.watchers.append(callback)

        def stop() -> None:
            with f.tlock, contextlib.suppress(ValueError):
                f.watchers.remove(callback)

        return stop


class MaildirUser(UserStore):
    """One user's Maildir++ (created on first use with the SPECIAL-USE folders)."""

    def __init__(self, store: MaildirStore, user: str, root: str) -> None:
        self._store = store
        self._user = user
        self.root = root
        self._db_path = os.path.join(root, USER_DB_FILE)
        self._db_lock = threading.RLock()
        self._db_conn: sqlite3.Connection | None = None
        self._db_pid = 0
        created = False
        if not os.path.isdir(os.path.join(root, "cur")):
            os.makedirs(os.path.dirname(root), mode=0o700, exist_ok=True)
            with contextlib.suppress(MailboxExists):
                _make_maildir(root, subfolder=False)
                created = True
        # Resolved once (the user's directory may be a link): folder paths are built on
        # it, checked without resolving it again at every delivery.
        self._real_root = os.path.realpath(root)
        with contextlib.closing(sqlite3.connect(self._db_path, timeout=60)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
            db.execute("CREATE TABLE IF NOT EXISTS subs (name TEXT PRIMARY KEY)")
            db.execute("CREATE TABLE IF NOT EXISTS special (name TEXT PRIMARY KEY, use TEXT)")
        if created:
            for name, use in SPECIAL_USE.items():
                with contextlib.suppress(MailboxExists):
                    self.create(name, special_use=use)
                self.subscribe(name)
            self.subscribe(INBOX)

    @property
    def user(self) -> str:
        return self._user

    @contextlib.contextmanager
    def _db(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """The user's database (one connection per process), in one write transaction;
        with ``write=False`` for one SELECT, which is atomic by itself (autocommit): the
        quota is read three times per delivery, and BEGIN and COMMIT tripled its cost."""
        with self._db_lock:
            if self._db_conn is None or self._db_pid != os.getpid():
                self._db_conn = sqlite3.connect(
                    self._db_path, timeout=60, isolation_level=None, check_same_thread=False
                )
                self._db_conn.execute("PRAGMA busy_timeout=60000")
                self._db_pid = os.getpid()
            conn = self._db_conn
            if not write:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _new_uidvalidity(self) -> int:
        """Time-based, but above every value given before (a re-created name differs)."""
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key='uidvalidity'").fetchone()
            value = max(int(time.time()), (int(row[0]) + 1) if row else 0)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('uidvalidity', ?)", (value,))
        return value

    def _path(self, name: str) -> tuple[str, str]:
        canonical = normalize_name(name)
        return canonical, self._dir(canonical)

    def _dir(self, name: str) -> str:
        """The folder directory of mailbox ``name``, on the root resolved once."""
        return mailbox_path(self._real_root, name, resolved=True)

    def _dirnames(self) -> list[str]:
        return [
            d
            for d in os.listdir(self.root)
            if d.startswith(".")
            and not d.startswith("..")
            and os.path.isdir(os.path.join(self.root, d, "cur"))
        ]

    def _names(self) -> list[str]:
        names = [dirname_to_name(d) for d in self._dirnames()]
        return sorted(n for n in names if n is not None)

    def list(self) -> list[MailboxInfo]:
        names = self._names()
        exists = {INBOX, *names}
        everything = set(exists)
        for n in names:
            everything.update(parent_names(n))
        with self._db(write=False) as db:
            special = dict(db.execute("SELECT name, use FROM special").fetchall())
        out: builtins.list[MailboxInfo] = []
        for n in [INBOX, *sorted(everything - {INBOX})]:
            attrs_: set[str] = set()
            prefix = n + DELIMITER
            has_children = any(o.startswith(prefix) for o in everything)
            attrs_.add("\\HasChildren" if has_children else "\\HasNoChildren")
            if n not in exists:
                attrs_.add("\\Noselect")
            use = special.get(n) if n in exists else None
            if use:
                attrs_.add(use)
            out.append(MailboxInfo(name=n, attributes=frozenset(attrs_), special_use=use))
        return out

    def create(self, name: str, special_use: str | None = None) -> None:
        canonical, path = self._path(name)
        if canonical == INBOX:
            raise MailboxExists("INBOX exists")
        for parent in parent_names(canonical):
            if parent == INBOX:
                continue
            ppath = self._dir(parent)
            if not os.path.isdir(os.path.join(ppath, "cur")):
                with contextlib.suppress(MailboxExists):
                    _make_maildir(ppath, subfolder=True)
        if os.path.isdir(path):
            raise MailboxExists(f"mailbox {canonical!r} exists")
        _make_maildir(path, subfolder=True)
        if special_use is not None:
            with self._db() as db:
                db.execute("INSERT OR REPLACE INTO special VALUES (?, ?)", (canonical, special_use))

    def delete(self, name: str) -> None:
        canonical, path = self._path(name)
        if canonical == INBOX:
            raise MailboxHasChildren("INBOX cannot be deleted")
        if not os.path.isdir(os.path.join(path, "cur")):
            raise MailboxNotFound(f"no mailbox {canonical!r}")
        prefix = os.path.basename(path) + "."
        if any(d.startswith(prefix) for d in self._dirnames()):
            raise MailboxHasChildren(f"mailbox {canonical!r} has inferiors")
        folder = _folder(path, self._new_uidvalidity)
        trash = os.path.join(self.root, f"..mailproto-deleted-{secrets.token_hex(6)}")
        with folder.locked():
            os.rename(path, trash)
            folder.deleted = True
        shutil.rmtree(trash, ignore_errors=True)
        with self._db() as db:
            db.execute("DELETE FROM special WHERE name=?", (canonical,))

    def rename(self, old: str, new: str) -> None:
        old_c, old_path = self._path(old)
        new_c, new_path = self._path(new)
        if new_c == INBOX or os.path.isdir(new_path):
            raise MailboxExists(f"mailbox {new_c!r} exists")
        if new_c.startswith(old_c + DELIMITER):
            raise InvalidMailboxName("a mailbox cannot move inside itself")
        if old_c == INBOX:
            self.create(new_c)
            src = self.mailbox(INBOX)
            src.move([r.uid for r in src.snapshot()], self.mailbox(new_c))
            return
        if not os.path.isdir(os.path.join(old_path, "cur")):
            raise MailboxNotFound(f"no mailbox {old_c!r}")
        for parent in parent_names(new_c):
            if parent != INBOX and not os.path.isdir(self._dir(parent)):
                with contextlib.suppress(MailboxExists):
                    _make_maildir(self._dir(parent), subfolder=True)
        moves = [(old_c, new_c)] + [
            (n, new_c + n[len(old_c) :]) for n in self._names() if n.startswith(old_c + DELIMITER)
        ]
        for _src_name, dst_name in moves:
            if os.path.exists(self._dir(dst_name)):
                raise MailboxExists(f"mailbox {dst_name!r} exists")
        for src_name, dst_name in moves:
            src_path = self._dir(src_name)
            dst_path = self._dir(dst_name)
            # Under the folder lock, so that no delivery is half-way through a rename of
            # its own; handles on the old name get MailboxNotFound afterwards.
            try:
                folder: _Folder | None = _folder(src_path, self._new_uidvalidity)
            except MailboxNotFound:
                folder = None  # a \Noselect level without a Maildir of its own
            if folder is None:
                os.rename(src_path, dst_path)
                continue
            with folder.locked():
                os.rename(src_path, dst_path)
                folder.deleted = True
        fsync_dir(self.root)
        with self._db() as db:
            for src_name, dst_name in moves:
                db.execute("UPDATE special SET name=? WHERE name=?", (dst_name, src_name))

    def subscribe(self, name: str) -> None:
        canonical = normalize_name(name)
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO subs VALUES (?)", (canonical,))

    def unsubscribe(self, name: str) -> None:
        canonical = normalize_name(name)
        with self._db() as db:
            db.execute("DELETE FROM subs WHERE name=?", (canonical,))

    def subscriptions(self) -> builtins.list[str]:
        with self._db(write=False) as db:
            return sorted(r[0] for r in db.execute("SELECT name FROM subs"))

    def mailbox(self, name: str) -> MaildirMailbox:
        canonical, path = self._path(name)
        return MaildirMailbox(self, canonical, _folder(path, self._new_uidvalidity))

    def set_quota(self, limit: int | None) -> None:
        """This user's storage limit in octets (None: the store's default)."""
        with self._db() as db:
            if limit is None:
                db.execute("DELETE FROM meta WHERE key='quota'")
            else:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('quota', ?)", (int(limit),))

    def quota_limit(self) -> int | None:
        """The storage limit that applies to this user."""
        with self._db(write=False) as db:
            row = db.execute("SELECT value FROM meta WHERE key='quota'").fetchone()
        return int(row[0]) if row else self._store.quota

    def quota_usage(self) -> QuotaUsage:
        used = count = 0
        for name in [INBOX, *self._names()]:
            try:
                box = self.mailbox(name)
                box._folder.scan()
            except (MailboxNotFound, InvalidMailboxName):
                continue
            with box._folder.tlock:
                n, total = box._folder.conn.execute(
                    "SELECT count(*), coalesce(sum(size), 0) FROM messages"
                ).fetchone()
            used += int(total)
            count += int(n)
        return QuotaUsage(used=used, limit=self.quota_limit(), messages=count)

    def check_quota(self, size: int) -> None:
        """QuotaExceeded when ``size`` more octets would pass the limit."""
        limit = self.quota_limit()
        if limit is None:
            return
        used = self.quota_usage().used
        if used + size > limit:
            raise QuotaExceeded(used, limit, size)


class MaildirStore(MailStore):
    """Every user's Maildir++ under ``root`` (``<data dir>/mail`` in the embedded setup).

    ``quota`` is the default storage limit per user in octets (None: unlimited).
    """

    def __init__(self, root: str | os.PathLike[str], *, quota: int | None = None) -> None:
        self.root = os.fspath(root)
        self.quota = quota
        self._lock = threading.Lock()
        self._users: dict[str, MaildirUser] = {}
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        # Resolved once: a lookup per delivery and per login cost several lstat calls.
        self._real_root = os.path.realpath(self.root)

    def user(self, name: str) -> MaildirUser:
        path = os.path.join(self._real_root, user_dirname(name))
        with self._lock:
            user = self._users.get(name)
            if user is None or not os.path.isdir(os.path.join(path, "cur")):
                user = self._users[name] = MaildirUser(self, name, path)
            return user

    def users(self) -> list[str]:
        return sorted(
            d
            for d in os.listdir(self.root)
            if not d.startswith(".") and os.path.isdir(os.path.join(self.root, d, "cur"))
        )
