"""The IMAP server session (RFC 3501 IMAP4rev1, RFC 9051 IMAP4rev2) over the MDA store.

Written once as a flow of effects, run by every flavour's ``serve()``; the protocol is
`mailproto.imap.ServerConnection` (one command at a time), this module decides the
answers:

- Logins (LOGIN, AUTHENTICATE with SASL-IR) go through the `Authenticator`; a failure is
  answered only after the delay it asks for. Passwords in the clear need TLS unless
  the MDA allows plaintext (``LOGINDISABLED`` is then advertised).
- A session only ever holds the logged-in user's `UserStore`: every mailbox name is
  resolved inside it, so no name reaches another user's mail.
- The selected mailbox is a per-session view (the UIDs in sequence order and the flags
  last shown). Others' changes are found by polling ``highestmodseq`` after each
  command and every second in IDLE, and reported as EXISTS, FETCH FLAGS and EXPUNGE;
  EXPUNGE is never sent during FETCH, STORE, SEARCH or COPY by sequence number
  (RFC 9051 7.4.1): those are kept until a command where it is allowed.
- \\Recent lives in memory, per process (`_claim_recent`): the store has no such flag.
  SORT, THREAD, ESEARCH, SEARCHRES (``$`` kept as UIDs in the view), LIST-EXTENDED,
  LIST-STATUS and QUOTA (one root ``""``, for users with a limit) are answered from
  `mailproto.message` and the store; docs/mda-servers.md lists what is left out.
- Blocking work (store, scrypt) goes through `_calls.blocking_call`. APPEND is spooled
  to a `SpooledTemporaryFile`, never held whole.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import logging
import re
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import attrs

from mailproto import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError, imap
from mailproto.imap import commands as c
from mailproto.imap import responses as r
from mailproto.message import (
    UnknownCharset,
    esearch,
    saved_result,
    search_messages,
    sort,
    thread,
    uses_modseq,
)
from mailproto.message import search as message_search
from mailproto.message._words import lookup_charset
from mailproto.sasl import Challenge

from .._calls import blocking_call, pause
from .._effects import Call, Op, Receive, Send, StartTLS, TransportInfo
from .._serving import STARTTLS_TIMEOUT
from .._transport import TransportError, TransportTimeout
from . import imap_compress, imap_data, imap_qresync
from .auth import AuthExchange, AuthOutcome
from .names import InvalidMailboxName
from .store import (
    Mailbox,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotFound,
    MessageRecord,
    QuotaExceeded,
    StoreError,
    UserStore,
)

if TYPE_CHECKING:
    from .service import MDA

__all__ = ["imap_flow", "list_matcher"]

log = logging.getLogger("mailproto.imap")

SPOOL_IN_MEMORY = 1024 * 1024
FLUSH_AT = 65536
FETCH_BATCH = 64
IDLE_POLL = 1.0  # seconds between two looks at the selected mailbox while idling
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
ENABLEABLE = ("CONDSTORE", "QRESYNC", "IMAP4REV2")

# \Recent (RFC 3501 2.3.2) is kept per process, not in the store: for each mailbox
# (per MDA, user, name, UIDVALIDITY) the highest UID already claimed by a session that
# selected it read-write. Messages that existed when this process first selected the
# mailbox are not recent; each later one is recent in exactly one session.
_recent_lock = threading.Lock()
_recent_marks: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, int], int]] = (
    weakref.WeakKeyDictionary()
)


def _recent_key(store: UserStore, view: _View) -> tuple[str, str, int]:
    return (store.user, view.box.name, view.uidvalidity)


def _claim_recent(mda: Any, store: UserStore, view: _View, uids: Iterable[int]) -> set[int]:
    """The UIDs among ``uids`` that are \\Recent for this session; a read-write view
    claims them (no other session will see them \\Recent)."""
    key = _recent_key(store, view)
    with _recent_lock:
        marks = _recent_marks.setdefault(mda, {})
        mark = marks.get(key)
        if mark is None:
            mark = marks[key] = view.uidnext - 1
        if isinstance(uids, list) and uids is view.uids:  # sorted: only the tail
            out = set(uids[bisect.bisect_right(uids, mark) :])
        else:
            out = {u for u in uids if u > mark}
        if out and not view.readonly:
            marks[key] = max(out)
        return out


def _recent_count(mda: Any, store: UserStore, name: str, uids: Iterable[int]) -> int:
    """STATUS RECENT: the messages no session has claimed yet."""
    box = store.mailbox(name)
    with _recent_lock:
        mark = _recent_marks.get(mda, {}).get((store.user, box.name, box.uidvalidity))
    if mark is None:
        return 0
    return sum(1 for u in uids if u > mark)


def list_matcher(reference: str, pattern: str) -> re.Pattern[str]:
    """The regular expression of a LIST pattern: ``*`` anything, ``%`` within a level.

    INBOX as the first level matches case-insensitively (RFC 9051 5.1).
    """
    full = pattern if not reference or pattern.startswith("/") else reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in "/*%"):
        full = "INBOX" + full[5:]
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    return list(itertools.islice(iterator, n))


def _tagged(tag: str, status: str, text: str, code: r.Code | None = None) -> r.Tagged:
    return r.Tagged(tag=tag, status=cast(Any, status), code=code, text=text)


@attrs.define
class _View:
    """What the session has told the client of the selected mailbox."""

    box: Mailbox
    readonly: bool
    uids: list[int]
    records: dict[int, MessageRecord]
    modseq: int
    uidvalidity: int = 0
    uidnext: int = 1
    pending_expunge: set[int] = attrs.Factory(set)
    recent: set[int] = attrs.Factory(set)
    saved: list[int] = attrs.Factory(list)  # the UIDs of "$" (SEARCHRES), ascending
    # The MODSEQ the view had before its held-back expunges happened: while they wait,
    # this is the HIGHESTMODSEQ a QRESYNC client may rely on (RFC 7162 3.2).
    expunge_floor: int = 0

    def seq(self, uid: int) -> int:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def resolve(self, sequence_set: Any, uid: bool) -> list[int]:
        """The UIDs a sequence set names, in ascending order (absent ones left out)."""
        if not isinstance(sequence_set, imap.SequenceSet):
            return [u for u in self.saved if u in self.records]  # "$" (RFC 5182)
        if not self.uids:
            return []
        if uid:
            spans = sequence_set.normalized(self.uids[-1])
            out = []
            for a, b in spans:
                lo = bisect.bisect_left(self.uids, a)
                hi = bisect.bisect_right(self.uids, b)
                out.extend(self.uids[lo:hi])
            return out
        count = len(self.uids)
        out = []
        for a, b in sequence_set.normalized(count):
            if a > count:
                raise IndexError
            out.extend(self.uids[a - 1 : min(b, count)])
        return out


@attrs.frozen
class _Summary:
    """What SELECT needs of a folder's snapshot, computed once per snapshot (the store
    returns the same `Changes` object until the folder changes) and shared by every
    session that selects it: views copy ``uids`` and ``records`` (two C-level copies)
    instead of rebuilding them from 10,000 records each time."""

    uids: tuple[int, ...]
    records: dict[int, MessageRecord]  # never changed once built
    keywords: tuple[str, ...]
    first_unseen: int | None  # a sequence number


_summaries: dict[int, tuple[Any, _Summary]] = {}  # id(Changes) -> (it, its summary)
_summaries_lock = threading.Lock()
_SUMMARIES = 64


def _summary(changes: Any) -> _Summary:
    key = id(changes)
    with _summaries_lock:
        hit = _summaries.get(key)
        if hit is not None and hit[0] is changes:
            return hit[1]
    records = {rec.uid: rec for rec in changes.records}
    uids = tuple(sorted(records))
    unseen = next((i for i, u in enumerate(uids, 1) if "\\Seen" not in records[u].flags), None)
    keywords = tuple(sorted({k for rec in changes.records for k in rec.keywords}))
    summary = _Summary(uids=uids, records=records, keywords=keywords, first_unseen=unseen)
    with _summaries_lock:
        _summaries[key] = (changes, summary)
        while len(_summaries) > _SUMMARIES:
            del _summaries[next(iter(_summaries))]
    return summary


def _open_view(store: UserStore, name: str, readonly: bool) -> tuple[_View, _Summary]:
    box = store.mailbox(name)
    changes = box.changes_since(0)
    summary = _summary(changes)
    uids = list(summary.uids)
    uidnext = max(box.uidnext, uids[-1] + 1 if uids else 1)
    view = _View(
        box,
        readonly,
        uids,
        dict(summary.records),
        changes.highestmodseq,
        box.uidvalidity,
        uidnext,
    )
    return view, summary


def _poll(view: _View) -> Any:
    """Changes after what the view knows, or None when nothing moved (cheap)."""
    if view.box.highestmodseq == view.modseq:
        return None
    return view.box.changes_since(view.modseq)


def _spooled_append(
    store: UserStore,
    name: str,
    spool: IO[bytes],
    flags: Iterable[str],
    date: datetime.datetime | None,
) -> tuple[int, int]:
    box = store.mailbox(name)
    spool.seek(0)
    uid = box.append(cast(Any, spool), flags, date)
    return box.uidvalidity, uid


class _Session:
    """The state of one IMAP connection; `run` is its flow."""

    def __init__(self, mda: MDA, info: TransportInfo) -> None:
        self.mda = mda
        self.tls = info.tls is not None
        self.ip = info.peer[0] if info.peer else "?"
        config = imap.ServerConfig(
            allow_insecure_auth=mda.allow_plaintext,
            tls=self.tls,
            max_append_size=mda.max_message_size,
        )
        self.conn = imap.ServerConnection(config)
        self.out = bytearray()
        self.store: UserStore | None = None
        self.view: _View | None = None
        self.exchange: AuthExchange | None = None
        self.success: AuthOutcome | None = None
        self.auth_tag = ""
        self.append: tuple[imap.AppendStarted, IO[bytes]] | None = None
        self.enabled: set[str] = set()
        self.quota = False  # QUOTA is offered to users with a storage limit only
        self.compression = imap_compress.Deflate()  # started by COMPRESS (RFC 4978)

    # -- output ----------------------------------------------------------------------

    def send(self, event: r.Response | imap.AuthChallenge) -> None:
        self.out += self.conn.send(event)

    def flush(self) -> Op[None]:
        self.out += self.conn.data_to_send()
        if self.out:
            yield Send(bytes(self.out), timeout=self.mda.imap_idle_timeout)
            self.out.clear()

    def capabilities(self) -> tuple[str, ...]:
        caps = [
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "SPECIAL-USE",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "ESEARCH",
            "SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "STATUS=SIZE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SEARCHRES",
            f"APPENDLIMIT={self.mda.max_message_size}",
        ]
        if self.quota:
            caps += ["QUOTA", "QUOTA=RES-STORAGE"]
        caps.append("COMPRESS=DEFLATE")  # RFC 4978
        if self.conn.state is imap.NOT_AUTHENTICATED:
            mechs = self.mda.authenticator.mechanisms(self.tls, self.mda.allow_plaintext)
            caps += [f"AUTH={m}" for m in mechs]
            if self.mda.tls_context is not None and not self.tls:
                caps.append("STARTTLS")
            if not self.tls and not self.mda.allow_plaintext:
                caps.append("LOGINDISABLED")
        return tuple(caps)

    # -- the loop --------------------------------------------------------------------

    def run(self) -> Op[None]:
        self.send(
            r.Untagged(
                status="OK",
                code=r.CapabilityCode(capabilities=self.capabilities()),
                text=f"{self.mda.hostname} IMAP ready",
            )
        )
        try:
            while True:
                try:
                    event = self.conn.next_event()
                except RemoteProtocolError as exc:
                    if isinstance(exc.reply_hint, r.Untagged):
                        self.send(exc.reply_hint)
                    break
                if event is NEED_DATA:
                    yield from self.flush()
                    try:
                        data = yield Receive(timeout=self.mda.imap_idle_timeout)
                    except TransportTimeout:
                        self.send(r.Untagged(status="BYE", text="Autologout: idle too long"))
                        break
                    self.conn.receive_data(data)
                    continue
                if event is PAUSED:
                    raise AssertionError("a command is owed its completion")
                if isinstance(event, imap.ConnectionClosed):
                    break
                if not (yield from self.handle(event)):
                    break
            yield from self.flush()
        finally:
            if self.append is not None:
                self.append[1].close()

    def handle(self, event: Any) -> Op[bool]:
        """Answer one event; False once the session is over."""
        if isinstance(event, imap.CommandRejected):
            if self.append is not None:
                self.append[1].close()
                self.append = None
            self.send(event.response)
            return True
        if isinstance(event, imap.AppendStarted):
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
            self.append = (event, cast(IO[bytes], spool))
            return True
        if isinstance(event, imap.AppendData):
            assert self.append is not None
            yield blocking_call(self.append[1].write, event.data)
            return True
        if isinstance(event, imap.AppendEnded):
            tagged = yield from self.finish_append()
            yield from self.complete(tagged, True)
            return True
        if isinstance(event, (imap.AuthenticateResponse, imap.AuthenticateCancel)):
            yield from self.auth_answer(event)
            return True
        if isinstance(event, c.Logout):
            self.send(r.Untagged(status="BYE", text="Logging out"))
            self.send(_tagged(event.tag, "OK", "LOGOUT completed"))
            return False
        if isinstance(event, c.StartTLS):
            context = self.mda.tls_context
            if context is None:
                self.send(_tagged(event.tag, "NO", "STARTTLS not available"))
                return True
            self.send(_tagged(event.tag, "OK", "Begin TLS negotiation now"))
            yield from self.flush()
            try:
                self.conn.start_tls()
            except RemoteProtocolError as exc:
                if isinstance(exc.reply_hint, r.Untagged):
                    self.send(exc.reply_hint)
                return False
            yield StartTLS(context, server_side=True, timeout=STARTTLS_TIMEOUT)
            self.tls = True
            return True
        if isinstance(event, c.Command):
            try:
                reply = yield from self.command(event)
            except TransportError:
                raise
            except Exception:
                log.exception("%s failed", type(event).__name__)
                reply = _tagged(event.tag, "NO", "Internal error", r.ServerBug())
            if reply is not None:
                yield from self.complete(reply, _expunge_allowed(event))
            return True
        raise AssertionError(f"unexpected event {event!r}")

    def complete(self, tagged: r.Tagged, expunge_ok: bool) -> Op[None]:
        """Report others' changes, then the tagged completion.

        A ``[HIGHESTMODSEQ]`` code in ``tagged`` (EXPUNGE's, RFC 7162 3.2.7) gets the
        view's value after those changes. While expunges are held back, a QRESYNC
        client is told a HIGHESTMODSEQ below theirs, so that a reconnection after this
        point still learns of them (RFC 7162 3.2).
        """
        view = self.view
        if view is not None:
            held = bool(view.pending_expunge)
            yield from self.sync(expunge_ok)
            if isinstance(tagged.code, r.HighestModSeq):
                tagged = attrs.evolve(tagged, code=r.HighestModSeq(value=max(view.modseq, 1)))
            if "QRESYNC" in self.enabled:
                if view.pending_expunge:
                    floor = r.HighestModSeq(value=max(view.expunge_floor, 1))
                    self.send(r.Untagged(status="OK", code=floor, text="Expunges held back"))
                elif held and tagged.code is None:  # they went out: the real value again
                    highest = r.HighestModSeq(value=max(view.modseq, 1))
                    tagged = attrs.evolve(tagged, code=highest)
        self.send(tagged)

    # -- others' changes -------------------------------------------------------------

    def sync(self, expunge_ok: bool) -> Op[None]:
        view = self.view
        assert view is not None
        try:
            changes = yield blocking_call(_poll, view)
        except StoreError:
            changes = None
        if changes is not None:
            held = [u for u in changes.expunged if view.seq(u)]
            if held and not view.pending_expunge:
                view.expunge_floor = view.modseq
            view.modseq = changes.highestmodseq
            view.pending_expunge.update(held)
            new: list[MessageRecord] = []
            for rec in changes.records:
                old = view.records.get(rec.uid)
                if old is None:
                    if not view.uids or rec.uid > view.uids[-1]:
                        new.append(rec)
                    continue
                view.records[rec.uid] = rec
                if old.all_flags != rec.all_flags:
                    self.send(self.flags_response(view.seq(rec.uid), rec, True))
            for rec in sorted(new, key=lambda x: x.uid):
                view.uids.append(rec.uid)
                view.records[rec.uid] = rec
            if new:
                assert self.store is not None
                view.recent |= _claim_recent(self.mda, self.store, view, [x.uid for x in new])
                self.send(r.Exists(count=len(view.uids)))
                if "IMAP4REV2" not in self.enabled:  # RFC 3501 7.3.2 (gone in RFC 9051)
                    self.send(r.Recent(count=len(view.recent)))
        if expunge_ok and view.pending_expunge:
            self.expunged(view.pending_expunge)
            view.pending_expunge = set()

    def expunged(self, uids: Iterable[int]) -> None:
        """Send EXPUNGE for these UIDs, highest sequence number first, and forget them."""
        view = self.view
        assert view is not None
        seqs = sorted((s for s in (view.seq(u) for u in uids) if s), reverse=True)
        gone = []
        for s in seqs:
            uid = view.uids.pop(s - 1)
            gone.append(uid)
            view.records.pop(uid, None)
            view.recent.discard(uid)
            if "QRESYNC" not in self.enabled:
                self.send(r.Expunge(seq=s))
        response = imap_qresync.vanished(gone) if "QRESYNC" in self.enabled else None
        if response is not None:
            self.send(response)  # RFC 7162 3.2.10: VANISHED instead of EXPUNGE

    def resync(self, param: c.QResync) -> Op[None]:
        """SELECT's QRESYNC answers (RFC 7162 3.2.5): known UIDs expunged since the
        client's MODSEQ as ``VANISHED (EARLIER)``, then the messages changed since."""
        view = self.view
        assert view is not None
        gone = yield blocking_call(
            imap_qresync.select_resync, view.box, param, view.uidnext, view.records
        )
        response = imap_qresync.vanished(gone, earlier=True)
        if response is not None:
            self.send(response)
        for seq, u in enumerate(view.uids, 1):
            rec = view.records[u]
            if rec.modseq > param.modseq:
                self.send(self.flags_response(seq, rec, True))
                if len(self.out) >= FLUSH_AT:
                    yield from self.flush()

    def vanished_earlier(self, changedsince: int, sequence_set: Any) -> Op[None]:
        """``UID FETCH ... (CHANGEDSINCE n VANISHED)``: the UIDs of the set expunged
        after ``n`` as ``VANISHED (EARLIER)``, before the FETCH data (RFC 7162 3.2.6)."""
        view = self.view
        assert view is not None
        if not isinstance(sequence_set, imap.SequenceSet):  # "$" (RFC 5182)
            if not view.saved:
                return
            sequence_set = imap.SequenceSet.of(*view.saved)
        largest = max(view.uidnext - 1, view.uids[-1] if view.uids else 0)
        gone = yield blocking_call(
            imap_qresync.vanished_earlier,
            view.box,
            changedsince,
            sequence_set,
            largest,
            view.records,
        )
        response = imap_qresync.vanished(gone, earlier=True)
        if response is not None:
            self.send(response)

    def flags_response(self, seq: int, rec: MessageRecord, uid: bool) -> r.Fetch:
        flags = set(rec.all_flags)
        view = self.view
        if view is not None and rec.uid in self.recent():
            flags.add("\\Recent")
        attributes: list[r.FetchAttribute] = [r.FetchFlags(flags=tuple(sorted(flags)))]
        condstore = "CONDSTORE" in self.enabled
        if uid or condstore:  # RFC 7162 errata 1807: UID with every MODSEQ
            attributes.append(r.Uid(value=rec.uid))
        if condstore:
            attributes.append(r.ModSeq(value=max(rec.modseq, 1)))
        return r.Fetch(seq=seq, attributes=tuple(attributes))

    # -- commands --------------------------------------------------------------------

    def command(self, cmd: c.Command) -> Op[r.Tagged | None]:
        tag = cmd.tag
        match cmd:
            case c.Capability():
                self.send(r.Capability(capabilities=self.capabilities()))
                return _tagged(tag, "OK", "CAPABILITY completed")
            case c.Noop() | c.Check():
                return _tagged(tag, "OK", f"{type(cmd).__name__.upper()} completed")
            case c.Id():
                self.send(r.Id(params=((b"name", b"mailproto"),)))
                return _tagged(tag, "OK", "ID completed")
            case c.Namespace():
                self.send(
                    r.Namespace(
                        personal=(r.NamespaceEntry(prefix="", delimiter="/"),),
                        other=None,
                        shared=None,
                    )
                )
                return _tagged(tag, "OK", "NAMESPACE completed")
            case c.Enable(capabilities=caps):
                done = [
                    x for x in caps if x.upper() in ENABLEABLE and x.upper() not in self.enabled
                ]
                self.enabled.update(x.upper() for x in done)
                if "QRESYNC" in self.enabled:
                    self.enabled.add("CONDSTORE")  # RFC 7162 3.2.3: QRESYNC implies it
                self.send(r.Enabled(capabilities=tuple(done)))
                return _tagged(tag, "OK", "ENABLE completed")
            case c.Login(username=username, password=password):
                outcome = yield blocking_call(
                    self.mda.authenticator.check_login,
                    username.decode("utf-8", "replace"),
                    password.decode("utf-8", "replace"),
                    self.ip,
                )
                return (yield from self.login_done(tag, outcome))
            case c.Authenticate(mechanism=mechanism, initial_response=initial):
                mechs = self.mda.authenticator.mechanisms(self.tls, self.mda.allow_plaintext)
                if mechanism.upper() not in mechs:
                    return _tagged(tag, "NO", "Unsupported authentication mechanism")
                self.auth_tag = tag
                self.exchange = self.mda.authenticator.authenticate(
                    mechanism.upper(),
                    peer_ip=self.ip,
                    tls=self.tls,
                    allow_plaintext=self.mda.allow_plaintext,
                )
                step = yield blocking_call(self.exchange.start, initial)
                return (yield from self.auth_step(step))
            case c.Compress(mechanism=mechanism):
                return (yield from self.compress(tag, mechanism))
            case _:
                pass
        try:
            return (yield from self.authenticated(cmd))
        except InvalidMailboxName as exc:
            return _tagged(tag, "NO", f"Invalid mailbox name: {exc}", r.Cannot())
        except MailboxNotFound:
            return _tagged(tag, "NO", "No such mailbox", r.Nonexistent())
        except QuotaExceeded:
            return _tagged(tag, "NO", "Quota exceeded", r.OverQuota())
        except imap_data.UnknownCte as exc:  # RFC 3516 4.3: BINARY of an unknown encoding
            return _tagged(tag, "NO", str(exc), r.OtherCode(name="UNKNOWN-CTE"))
        except StoreError as exc:
            log.warning("store refused %s: %s", type(cmd).__name__, exc)
            return _tagged(tag, "NO", f"Cannot do that: {exc}", r.Cannot())

    def compress(self, tag: str, mechanism: str) -> Op[r.Tagged | None]:
        """COMPRESS DEFLATE (RFC 4978): the tagged OK is the last plain octets sent;
        everything after it, both ways, goes through `imap_compress.compressing`."""
        reply = imap_compress.compress_reply(tag, mechanism, self.compression)
        if reply.status != "OK":
            return reply
        if self.view is not None:
            yield from self.sync(True)
        self.send(reply)
        yield from self.flush()
        self.compression.start()
        return None

    def authenticated(self, cmd: c.Command) -> Op[r.Tagged | None]:
        store = self.store
        assert store is not None  # the core checked the state
        tag = cmd.tag
        match cmd:
            case c.Select() | c.Examine():
                if self.view is not None:
                    self.view = None
                    self.send(r.Untagged(status="OK", code=r.Closed(), text="Previous closed"))
                if cmd.qresync is not None and "QRESYNC" not in self.enabled:
                    return _tagged(tag, "BAD", "ENABLE QRESYNC first")  # RFC 7162 3.2.5
                readonly = isinstance(cmd, c.Examine)
                view, summary = yield blocking_call(_open_view, store, cmd.mailbox, readonly)
                view.recent = _claim_recent(self.mda, store, view, view.uids)
                self.view = view
                if cmd.condstore:
                    self.enabled.add("CONDSTORE")
                flags = SYSTEM_FLAGS + summary.keywords
                self.send(r.Flags(flags=flags))
                self.send(r.Exists(count=len(view.uids)))
                if "IMAP4REV2" not in self.enabled:
                    self.send(r.Recent(count=len(view.recent)))
                    unseen = summary.first_unseen
                    if unseen is not None:
                        self.send(r.Untagged(status="OK", code=r.Unseen(value=unseen)))
                permanent = () if readonly else (*flags, "\\*")
                self.send(r.Untagged(status="OK", code=r.PermanentFlags(flags=permanent)))
                self.send(r.Untagged(status="OK", code=r.UidValidity(value=view.uidvalidity)))
                self.send(r.Untagged(status="OK", code=r.UidNext(value=view.uidnext)))
                self.send(r.Untagged(status="OK", code=r.HighestModSeq(value=max(view.modseq, 1))))
                if cmd.qresync is not None and cmd.qresync.uidvalidity == view.uidvalidity:
                    yield from self.resync(cmd.qresync)
                code: r.Code = r.ReadOnly() if readonly else r.ReadWrite()
                return _tagged(tag, "OK", f"{type(cmd).__name__.upper()} completed", code)
            case c.Create(mailbox=name):
                try:
                    yield blocking_call(store.create, name.rstrip("/"))
                except MailboxExists:
                    return _tagged(tag, "NO", "Mailbox exists", r.AlreadyExists())
                return _tagged(tag, "OK", "CREATE completed")
            case c.Delete(mailbox=name):
                try:
                    yield blocking_call(store.delete, name)
                except MailboxHasChildren as exc:
                    return _tagged(tag, "NO", str(exc), r.InUse())
                return _tagged(tag, "OK", "DELETE completed")
            case c.Rename(mailbox=old, new_name=new):
                try:
                    yield blocking_call(store.rename, old, new)
                except MailboxExists:
                    return _tagged(tag, "NO", "Target mailbox exists", r.AlreadyExists())
                return _tagged(tag, "OK", "RENAME completed")
            case c.Subscribe(mailbox=name):
                yield blocking_call(store.subscribe, name)
                return _tagged(tag, "OK", "SUBSCRIBE completed")
            case c.Unsubscribe(mailbox=name):
                yield blocking_call(store.unsubscribe, name)
                return _tagged(tag, "OK", "UNSUBSCRIBE completed")
            case c.List():
                yield from self.list_mailboxes(cmd)
                return _tagged(tag, "OK", "LIST completed")
            case c.Lsub(reference=reference, pattern=pattern):
                names: list[str] = yield blocking_call(store.subscriptions)
                matcher = list_matcher(reference, pattern)
                for name in names:
                    if matcher.fullmatch(name):
                        self.send(r.Lsub(attributes=(), delimiter="/", mailbox=name))
                return _tagged(tag, "OK", "LSUB completed")
            case c.Status(mailbox=name, items=items):
                values = yield blocking_call(_status, self.mda, store, name, items)
                self.send(r.Status(mailbox=name, items=tuple(values.items())))
                return _tagged(tag, "OK", "STATUS completed")
            case c.GetQuotaRoot(mailbox=name) if self.quota:
                yield blocking_call(store.mailbox, name)  # MailboxNotFound: NO [NONEXISTENT]
                usage = yield blocking_call(store.quota_usage)
                roots = (b"",) if usage.limit is not None else ()
                self.send(r.QuotaRoot(mailbox=name, roots=roots))
                if usage.limit is not None:
                    self.send(_quota(usage))
                return _tagged(tag, "OK", "GETQUOTAROOT completed")
            case c.GetQuota(root=root) if self.quota:
                usage = yield blocking_call(store.quota_usage)
                if root != b"" or usage.limit is None:
                    return _tagged(tag, "NO", "No such quota root", r.Nonexistent())
                self.send(_quota(usage))
                return _tagged(tag, "OK", "GETQUOTA completed")
            case c.SetQuota() if self.quota:
                return _tagged(tag, "NO", "Quotas are set by the administrator", r.NoPerm())
            case c.Append():
                raise AssertionError("APPEND is always streamed")
            case c.Idle():
                return (yield from self.idle(tag))
            case c.Close() | c.Unselect():
                current = self.view
                assert current is not None
                if isinstance(cmd, c.Close) and not current.readonly:
                    try:
                        yield blocking_call(current.box.expunge, list(current.uids))
                    except StoreError:
                        log.warning("CLOSE: expunge failed", exc_info=True)
                self.view = None
                self.send(_tagged(tag, "OK", f"{type(cmd).__name__.upper()} completed"))
                return None
            case _:
                pass
        return (yield from self.selected(cmd))

    def selected(self, cmd: c.Command) -> Op[r.Tagged | None]:
        view = self.view
        tag = cmd.tag
        if view is None or not isinstance(
            cmd, (c.Fetch, c.Store, c.Copy, c.Move, c.Expunge, c.Search, c.Sort, c.Thread)
        ):
            return _tagged(tag, "BAD", f"{type(cmd).__name__.upper()} is not supported")
        uid = bool(getattr(cmd, "uid", False))
        if isinstance(cmd, (c.Fetch, c.Store, c.Copy, c.Move, c.Expunge)):
            seqset = cmd.sequence_set
            try:
                uids = [] if seqset is None else view.resolve(seqset, uid)
            except IndexError:
                return _tagged(tag, "BAD", "No such message sequence number")
            except ValueError as exc:
                return _tagged(tag, "BAD", str(exc))
        else:
            uids = []
        match cmd:
            case c.Fetch(items=items, changedsince=changedsince):
                if cmd.vanished:  # the core checked: UID FETCH with CHANGEDSINCE
                    if "QRESYNC" not in self.enabled:
                        return _tagged(tag, "BAD", "ENABLE QRESYNC first")  # RFC 7162 3.2.6
                    assert changedsince is not None
                    yield from self.vanished_earlier(changedsince, seqset)
                if changedsince is not None:
                    self.enabled.add("CONDSTORE")  # RFC 7162 3.1: CONDSTORE enabling
                    uids = [u for u in uids if view.records[u].modseq > changedsince]
                return (yield from self.fetch(tag, uids, items, uid))
            case c.Store():
                return (yield from self.store_flags(cmd, uids))
            case c.Search(criteria=criteria, charset=charset, return_options=returns):
                infos = yield blocking_call(self.infos)
                save = returns is not None and "SAVE" in {x.upper() for x in returns}
                try:
                    matched: list[int] = yield blocking_call(
                        _search, criteria, infos, True, charset, view.saved
                    )
                except UnknownCharset as exc:
                    if save:
                        view.saved = []  # RFC 5182 2.1: a failed SEARCH empties "$"
                    return _tagged(tag, "NO", "Unknown charset", exc.code)
                found = matched if uid else [view.seq(u) for u in matched]
                btag = tag.encode()
                modseq = None  # RFC 7162 3.1.5: the highest MODSEQ of the matches
                if matched and uses_modseq(criteria):
                    modseq = max(max(view.records[u].modseq for u in matched), 1)
                if save:
                    assert returns is not None
                    view.saved = saved_result(matched, returns)
                    others = [x for x in returns if x.upper() != "SAVE"]
                    if others:
                        self.send(esearch(found, others, tag=btag, uid=uid, modseq=modseq))
                elif returns is not None or "IMAP4REV2" in self.enabled:
                    shape = returns or ("ALL",)
                    self.send(esearch(found, shape, tag=btag, uid=uid, modseq=modseq))
                else:
                    self.send(r.Search(numbers=tuple(found), modseq=modseq))
                return _tagged(tag, "OK", "SEARCH completed")
            case c.Sort() | c.Thread():
                infos = yield blocking_call(self.infos)
                try:
                    answer = yield blocking_call(_sort_or_thread, cmd, infos, view.saved)
                except UnknownCharset as exc:
                    return _tagged(tag, "NO", "Unknown charset", exc.code)
                except LocalProtocolError as exc:
                    return _tagged(tag, "BAD", str(exc))
                self.send(answer)
                return _tagged(tag, "OK", f"{type(cmd).__name__.upper()} completed")
            case c.Copy(mailbox=target) | c.Move(mailbox=target):
                move = isinstance(cmd, c.Move)
                if move and view.readonly:
                    return _tagged(tag, "NO", "Mailbox is read-only", r.Cannot())
                store = self.store
                assert store is not None
                try:
                    validity, src, new = yield blocking_call(
                        _copy, store, view.box, uids, target, move
                    )
                except MailboxNotFound:
                    return _tagged(tag, "NO", "No such mailbox", r.TryCreate())
                code = None
                if src:
                    code = r.CopyUid(
                        uidvalidity=validity,
                        source=imap.SequenceSet.of(*src),
                        destination=imap.SequenceSet.of(*new),
                    )
                if move:
                    if code is not None:
                        self.send(r.Untagged(status="OK", code=code, text="Moved"))
                    self.expunged(src)
                    view.pending_expunge.difference_update(src)
                    return _tagged(tag, "OK", "MOVE completed")
                return _tagged(tag, "OK", "COPY completed", code)
            case _:
                assert isinstance(cmd, c.Expunge)
                if view.readonly:
                    return _tagged(tag, "NO", "Mailbox is read-only", r.Cannot())
                wanted = uids if cmd.sequence_set is not None else list(view.uids)
                gone: list[int] = yield blocking_call(view.box.expunge, wanted)
                self.expunged(gone)
                view.pending_expunge.difference_update(gone)
                # its value is filled in by `complete`, after the view caught up
                highest = r.HighestModSeq(value=1) if "CONDSTORE" in self.enabled else None
                return _tagged(tag, "OK", "EXPUNGE completed", highest)

    def recent(self) -> set[int]:
        """The \\Recent UIDs shown: none once IMAP4rev2 is on (RFC 9051 removed it)."""
        view = self.view
        if view is None or "IMAP4REV2" in self.enabled:
            return set()
        return view.recent

    def infos(self) -> list[Any]:
        """The view as `MessageInfo` (for SEARCH, SORT, THREAD); run in a worker."""
        view = self.view
        assert view is not None
        records = [view.records[u] for u in view.uids]
        return imap_data.message_infos(view.box, records, recent=self.recent())

    def fetch(self, tag: str, uids: list[int], items: Any, uid: bool) -> Op[r.Tagged]:
        """FETCH: \\Seen is stored first (so FLAGS and MODSEQ show it), then the data is
        computed in batches in a worker thread and sent as it comes."""
        view = self.view
        assert view is not None
        try:
            wanted = imap_data.expand_items(items)
        except ValueError as exc:
            return _tagged(tag, "BAD", str(exc))
        records = [view.records[u] for u in uids if u in view.records]
        marks = imap_data.marks_seen(wanted)
        seen = [rec.uid for rec in records if "\\Seen" not in rec.flags] if marks else []
        changed: set[int] = set()
        if seen and not view.readonly:
            result = yield blocking_call(view.box.set_flags, seen, ["\\Seen"], "add")
            for rec in result.changed:
                if rec.uid in view.records:
                    view.records[rec.uid] = rec
                    changed.add(rec.uid)
            records = [view.records[u] for u in uids if u in view.records]
        condstore = "CONDSTORE" in self.enabled
        names = imap_data.wire_names(wanted, uid=uid, condstore=condstore)
        if names is not None and not changed:
            # Plain attributes only (a message list): written straight to bytes.
            seqs = [view.seq(rec.uid) for rec in records]
            lines = imap_data.fetch_wire_many(view.box, records, seqs, names, recent=self.recent())
            while True:
                data = yield blocking_call(next, lines, None)
                if data is None:
                    break
                self.out += self.conn.send_fetch_lines(data)
                if len(self.out) >= FLUSH_AT:
                    yield from self.flush()
            return _tagged(tag, "OK", "FETCH completed")
        iterator = iter(
            imap_data.fetch_many(
                view.box, records, wanted, uid=uid, condstore=condstore, recent=self.recent()
            )
        )
        while True:
            batch = yield blocking_call(_take, iterator, FETCH_BATCH)
            for rec, attributes, _sets_seen in batch:
                real: r.FetchAttribute | None = None  # made only when FLAGS is shown
                has_flags = False
                for i, a in enumerate(attributes):
                    if isinstance(a, r.FetchFlags):
                        real = real or self.flags_response(1, rec, False).attributes[0]
                        attributes[i] = real  # EXAMINE: \\Seen was not stored
                        has_flags = True
                if rec.uid in changed and not has_flags:
                    attributes.append(self.flags_response(1, rec, False).attributes[0])
                self.send(r.Fetch(seq=view.seq(rec.uid), attributes=tuple(attributes)))
                if len(self.out) >= FLUSH_AT:
                    yield from self.flush()
            if len(batch) < FETCH_BATCH:
                break
        return _tagged(tag, "OK", "FETCH completed")

    def store_flags(self, cmd: c.Store, uids: list[int]) -> Op[r.Tagged]:
        view = self.view
        assert view is not None
        if view.readonly:
            return _tagged(cmd.tag, "NO", "Mailbox is read-only", r.Cannot())
        flags = [f for f in cmd.flags if f.lower() != "\\recent"]
        try:
            result = yield blocking_call(
                view.box.set_flags, uids, flags, cmd.action, cmd.unchangedsince
            )
        except ValueError as exc:
            return _tagged(cmd.tag, "BAD", f"Invalid flag: {exc}")
        changed = {rec.uid for rec in result.changed}
        for rec in result.changed:
            if rec.uid in view.records:
                view.records[rec.uid] = rec
        condstore = "CONDSTORE" in self.enabled or cmd.unchangedsince is not None
        if not cmd.silent or condstore:
            refused = set(result.modified)
            for u in uids:
                rec_ = view.records.get(u)
                if rec_ is None or u in refused or (cmd.silent and u not in changed):
                    continue
                self.send(self.flags_response(view.seq(u), rec_, cmd.uid))
        code = None
        if result.modified:
            numbers = result.modified if cmd.uid else [view.seq(u) for u in result.modified]
            code = r.Modified(uids=imap.SequenceSet.of(*numbers))
        return _tagged(cmd.tag, "OK", "STORE completed", code)

    def list_mailboxes(self, cmd: c.List) -> Op[None]:
        """LIST, with the RFC 5258 selection and return options and RFC 5819 STATUS."""
        store = self.store
        assert store is not None
        selection = {s.upper() for s in cmd.selection or ()}
        options = cmd.return_options or ()
        returns = {x.upper() for x in options if isinstance(x, str)}
        status_items = next((x.items for x in options if isinstance(x, c.ListReturnStatus)), None)
        if cmd.patterns == ("",):
            self.send(r.List(attributes=("\\Noselect",), delimiter="/", mailbox=""))
            return
        infos = yield blocking_call(store.list)
        subscribed: set[str] = set()
        if "SUBSCRIBED" in selection or "SUBSCRIBED" in returns:
            subscribed = set((yield blocking_call(store.subscriptions)))
        rows = _list_rows(cmd, infos, subscribed, selection)
        for name, attributes, childinfo in rows:
            self.send(
                r.List(
                    attributes=tuple(sorted(attributes)),
                    delimiter="/",
                    mailbox=name,
                    childinfo=childinfo,
                )
            )
            if status_items and not attributes & {"\\Noselect", "\\NonExistent"}:
                try:
                    values = yield blocking_call(_status, self.mda, store, name, status_items)
                except StoreError:
                    continue  # gone meanwhile: no STATUS for it (RFC 5819 2)
                self.send(r.Status(mailbox=name, items=tuple(values.items())))

    def idle(self, tag: str) -> Op[r.Tagged | None]:
        self.send(r.Continuation(text="idling"))
        waited = 0.0
        while True:
            if self.view is not None:
                yield from self.sync(True)
            yield from self.flush()
            try:
                data = yield Receive(timeout=IDLE_POLL)
            except TransportTimeout:
                waited += IDLE_POLL
                if waited >= self.mda.imap_idle_timeout:
                    self.send(r.Untagged(status="BYE", text="Autologout: idle too long"))
                    return None
                continue
            self.conn.receive_data(data)
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as exc:
                if isinstance(exc.reply_hint, r.Untagged):
                    self.send(exc.reply_hint)
                return None
            if event is NEED_DATA:
                continue
            if isinstance(event, c.IdleDone):
                return _tagged(tag, "OK", "IDLE terminated")
            if isinstance(event, imap.CommandRejected):
                self.send(event.response)
                return None
            return None

    # -- authentication --------------------------------------------------------------

    def auth_step(self, step: Challenge | AuthOutcome) -> Op[r.Tagged | None]:
        if isinstance(step, Challenge):
            self.send(imap.AuthChallenge(data=step.data))
            return None
        self.exchange = None
        if step.ok and step.data:
            self.success = step  # server-final data as a "+", answered by an empty line
            self.send(imap.AuthChallenge(data=step.data))
            return None
        return (yield from self.login_done(self.auth_tag, step))

    def auth_answer(self, event: Any) -> Op[None]:
        tag = self.auth_tag
        tagged: r.Tagged | None
        if isinstance(event, imap.AuthenticateCancel):
            if self.exchange is not None:
                self.exchange.abort()
            self.exchange = self.success = None
            tagged = _tagged(tag, "BAD", "Authentication cancelled")
        elif self.success is not None:
            outcome, self.success = self.success, None
            if event.data:
                outcome = attrs.evolve(outcome, ok=False, code="malformed")
            tagged = yield from self.login_done(tag, outcome)
        else:
            assert self.exchange is not None
            step = yield blocking_call(self.exchange.receive, event.data)
            tagged = yield from self.auth_step(step)
        if tagged is not None:
            self.send(tagged)

    def login_done(self, tag: str, outcome: AuthOutcome) -> Op[r.Tagged]:
        if not outcome.ok:
            if outcome.delay > 0:
                yield Call(pause, (outcome.delay,))
            return _refusal(tag, outcome)
        try:
            self.store = yield blocking_call(self.mda.user_store, outcome.username)
        except Exception:
            log.exception("cannot open the store of %r", outcome.username)
            return _tagged(tag, "NO", "Cannot open the mail store", r.Unavailable())
        try:
            usage = yield blocking_call(self.store.quota_usage)
            self.quota = usage.limit is not None
        except StoreError:
            log.warning("cannot read the quota of %r", outcome.username, exc_info=True)
        caps = list(self.capabilities())
        caps = [
            x for x in caps if not x.startswith("AUTH=") and x not in ("STARTTLS", "LOGINDISABLED")
        ]
        return _tagged(tag, "OK", "Logged in", r.CapabilityCode(capabilities=tuple(caps)))

    def finish_append(self) -> Op[r.Tagged]:
        assert self.append is not None
        started, spool = self.append
        self.append = None
        store = self.store
        assert store is not None
        tag = started.tag
        try:
            flags = [f for f in started.flags or () if f.lower() != "\\recent"]
            validity, uid = yield blocking_call(
                _spooled_append, store, started.mailbox, spool, flags, started.date
            )
        except MailboxNotFound:
            return _tagged(tag, "NO", "No such mailbox", r.TryCreate())
        except InvalidMailboxName as exc:
            return _tagged(tag, "NO", f"Invalid mailbox name: {exc}", r.Cannot())
        except QuotaExceeded:
            return _tagged(tag, "NO", "Quota exceeded", r.OverQuota())
        except ValueError as exc:
            return _tagged(tag, "BAD", f"Invalid flag: {exc}")
        except StoreError as exc:
            log.warning("APPEND refused: %s", exc)
            return _tagged(tag, "NO", "Cannot store the message", r.ServerBug())
        finally:
            spool.close()
        code = r.AppendUid(uidvalidity=validity, uids=imap.SequenceSet.of(uid))
        return _tagged(tag, "OK", "APPEND completed", code)


def _copy(
    store: UserStore, box: Mailbox, uids: list[int], target: str, move: bool
) -> tuple[int, list[int], list[int]]:
    """COPY or MOVE into ``target`` of this user's store: (UIDVALIDITY, sources, new)."""
    dest = store.mailbox(target)
    if not uids:
        return dest.uidvalidity, [], []
    src, new = (box.move if move else box.copy)(uids, dest)
    return dest.uidvalidity, src, new


def _status(mda: Any, store: UserStore, name: str, items: Any) -> dict[Any, Any]:
    box = store.mailbox(name)
    recent = 0
    if "RECENT" in items:
        recent = _recent_count(mda, store, name, [rec.uid for rec in box.snapshot()])
    values = imap_data.status_values(box, items, recent=recent)
    if "APPENDLIMIT" in values:
        values["APPENDLIMIT"] = mda.max_message_size  # RFC 7889 4: the APPENDLIMIT= value
    return {k: v for k, v in values.items() if v is not None}


def _list_rows(
    cmd: c.List, infos: Any, subscribed: set[str], selection: set[str]
) -> list[tuple[str, set[str], tuple[bytes, ...] | None]]:
    """The LIST answer rows (name, attributes, CHILDINFO), mailboxes in store order.

    With the SUBSCRIBED selection, subscribed names that do not exist are listed
    ``\\NonExistent`` and, with RECURSIVEMATCH, a matching parent of a subscribed
    mailbox gets ``CHILDINFO ("SUBSCRIBED")`` (RFC 5258 3.5).
    """
    matchers = [list_matcher(cmd.reference, p) for p in cmd.patterns]

    def matches(name: str) -> bool:
        return any(m.fullmatch(name) for m in matchers)

    by_name = {info.name: info for info in infos}
    order = [info.name for info in infos]
    extra = sorted((subscribed - set(by_name)) if "SUBSCRIBED" in selection else ())
    childinfo: set[str] = set()
    if "SUBSCRIBED" in selection and "RECURSIVEMATCH" in selection:
        for name in subscribed:
            parts = name.split("/")
            for i in range(1, len(parts)):
                childinfo.add("/".join(parts[:i]))
        extra = sorted(set(extra) | (childinfo - set(by_name)))
    rows: list[tuple[str, set[str], tuple[bytes, ...] | None]] = []
    for name in order + extra:
        if not matches(name):
            continue
        info = by_name.get(name)
        child = (b"SUBSCRIBED",) if name in childinfo else None
        if "SUBSCRIBED" in selection and name not in subscribed and child is None:
            continue
        if "SPECIAL-USE" in selection and (info is None or info.special_use is None):
            continue
        attributes = set(info.attributes) if info is not None else {"\\NonExistent"}
        if info is not None and info.special_use:
            attributes.add(info.special_use)
        if name in subscribed:
            attributes.add("\\Subscribed")
        rows.append((name, attributes, child))
    return rows


def _quota(usage: Any) -> r.Quota:
    """The one quota root ``""``: STORAGE in units of 1024 octets (RFC 9208 5.1)."""
    storage = r.QuotaResource(
        name="STORAGE", usage=(usage.used + 1023) // 1024, limit=usage.limit // 1024
    )
    return r.Quota(root=b"", resources=(storage,))


def _sort_or_thread(cmd: c.Sort | c.Thread, infos: Any, saved: list[int]) -> r.Response:
    """SORT or THREAD (RFC 5256) over the messages the search program selects."""
    if lookup_charset(cmd.charset) is None:
        raise UnknownCharset(cmd.charset)  # RFC 5256 3: NO even when no key reads text
    found = search_messages(cmd.search, infos, charset=cmd.charset, saved=saved)
    if isinstance(cmd, c.Sort):
        return r.Sort(numbers=tuple(sort(cmd.criteria, found, uid=cmd.uid)))
    return r.Thread(threads=thread(cmd.algorithm, found, uid=cmd.uid))


def _search(
    criteria: Any, infos: Any, uid: bool, charset: str | None, saved: list[int]
) -> list[int]:
    return message_search(criteria, infos, uid=uid, charset=charset, saved=saved)


def _expunge_allowed(cmd: c.Command) -> bool:
    """RFC 9051 7.4.1: no EXPUNGE during FETCH, STORE, SEARCH by sequence number."""
    if isinstance(cmd, (c.Fetch, c.Store, c.Search, c.Copy, c.Sort, c.Thread)):
        return bool(cmd.uid)
    return True


def _refusal(tag: str, outcome: AuthOutcome) -> r.Tagged:
    answers: dict[str, tuple[str, r.Code | None, str]] = {
        "temporary": ("NO", r.Unavailable(), "Too many failures, try later"),
        "encryption-required": ("NO", r.PrivacyRequired(), "TLS required for this login"),
        "aborted": ("BAD", None, "Authentication cancelled"),
        "unsupported": ("NO", None, "Unsupported authentication mechanism"),
        "malformed": ("BAD", None, "Malformed authentication exchange"),
    }
    status, code, text = answers.get(
        outcome.code, ("NO", r.AuthenticationFailed(), "Authentication failed")
    )
    return _tagged(tag, status, text, code)


def imap_flow(mda: MDA, info: TransportInfo) -> Op[None]:
    """One IMAP connection, from the greeting to LOGOUT (or timeout, or the peer leaving)."""
    session = _Session(mda, info)
    return imap_compress.compressing(session.run(), session.compression)
