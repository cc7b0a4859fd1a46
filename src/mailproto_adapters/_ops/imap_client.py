"""The IMAP client's flows, written once for every flavour.

`IMAPClientSession` holds the sans-I/O `mailproto.imap.ClientConnection`, the tag
counter and the visible `MailboxState`; each method returns a flow (a generator of
effects) that a facade (`_imap_clients`) hands to its driver.

Every response the server sends passes through `IMAPClientSession._apply` first, whichever
command it came with (or none: IDLE), so the mailbox state follows EXISTS, EXPUNGE,
VANISHED, FETCH MODSEQ and the codes of untagged OK responses as they arrive. A
command's tagged NO or BAD raises `ServerError` ("NO"/"BAD", the text, the command).

FETCH literals larger than the core's ``stream_literals_over`` never sit whole in the
core: `fetch` puts their pieces together (the caller asked for the value), while
`fetch_stream` hands each piece to the caller's file-like as it comes (``Call``
effects, so an async writer is awaited).

IDLE is three flows (`idle_start`, `idle_next`, `idle_end`) so that a facade can offer it
as an iterator the caller stops: `idle_next` waits for the next update with a receive
timeout, ends and restarts IDLE every ``renew`` seconds, and takes a DONE that gets no
answer within the session's timeout for what it is, a dead connection.

APPEND streams its literal (the core's `AppendStarted` / `AppendData` / `AppendEnded`):
bytes or a file-like read in chunks, at once with LITERAL+ or after the "+", so a large
message never sits whole in memory.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import itertools
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from mailproto import NEED_DATA, PAUSED, LocalProtocolError, imap
from mailproto.imap import commands as c
from mailproto.imap import responses as r
from mailproto.imap.commands import SearchKey
from mailproto.sasl import SASLError

from .._effects import Call, Close, Info, Op, Receive, Send, StartTLS, TLSInfo
from .._transport import TransportError, TransportTimeout
from ..errors import AuthenticationFailed, ConnectionLost, MailError, ServerError
from .smtp_client import _best_mechanism, _mechanism
from .tls_choice import upgrade_context

__all__ = [
    "FetchResult",
    "IMAPClientSession",
    "Ids",
    "MailboxState",
    "ResumeResult",
    "attribute_name",
]

# How much of a literal goes into one Send: big enough to be cheap, small enough to stream.
_CHUNK = 1 << 20
# RFC 2177: clients should end IDLE and start it again at least every 29 minutes.
IDLE_RENEW = 28 * 60.0

Ids: TypeAlias = "int | str | Sequence[int] | imap.SequenceSet"
Items: TypeAlias = "str | c.FetchItem | Sequence[str | c.FetchItem]"
Criteria: TypeAlias = "str | SearchKey | Sequence[SearchKey]"


@attrs.define(slots=True, kw_only=True)
class MailboxState:
    """The selected mailbox as the client last heard of it (SELECT/EXAMINE and after).

    Kept up to date by every response: ``exists`` follows EXISTS, EXPUNGE and VANISHED;
    ``recent`` RECENT; ``flags`` FLAGS; the rest the codes of untagged OK responses
    (PERMANENTFLAGS, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UNSEEN) and FETCH MODSEQ.
    ``read_only`` is true after EXAMINE or a [READ-ONLY] SELECT.
    """

    name: str
    read_only: bool = False
    exists: int = 0
    recent: int = 0
    flags: tuple[str, ...] = ()
    permanent_flags: tuple[str, ...] = ()
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    unseen: int | None = None


class FetchResult(dict[str, Any]):
    """One message's FETCH attributes by item name, as typed values.

    Keys are the item names: "FLAGS" (tuple of str), "UID", "RFC822.SIZE", "MODSEQ"
    (int), "INTERNALDATE" (datetime), "ENVELOPE" (`responses.Envelope`),
    "BODYSTRUCTURE" and "BODY" (body-structure trees), "BODY[<section>]" with
    "<origin>" when partial, "BINARY[<part>]", "BINARY.SIZE[<part>]", "RFC822",
    "RFC822.HEADER", "RFC822.TEXT" (bytes, None for NIL). ``seq`` is the message's
    sequence number; ``attributes`` the typed attributes as received.
    """

    seq: int
    attributes: builtins.list[r.FetchAttribute]

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq
        self.attributes = []


@attrs.frozen(slots=True, kw_only=True)
class ResumeResult:
    """What changed in a mailbox since a known state (`IMAPClientSession.resume`).

    ``reset``: UIDVALIDITY changed, every cached UID is void (refetch all). Otherwise
    ``vanished`` the UIDs expunged (when QRESYNC told them) and ``changed`` the messages
    whose flags changed (all of them without CONDSTORE), keyed by UID.
    """

    state: MailboxState
    reset: bool
    vanished: tuple[int, ...]
    changed: dict[int, FetchResult]


def attribute_name(attribute: r.FetchAttribute) -> str:
    """The item name a FETCH attribute is stored under in a `FetchResult`."""
    if isinstance(attribute, r.BodySection):
        name = f"BODY[{attribute.section.to_bytes().decode('ascii', 'replace')}]"
        return name if attribute.origin is None else f"{name}<{attribute.origin}>"
    if isinstance(attribute, r.Binary):
        name = "BINARY[" + ".".join(map(str, attribute.part)) + "]"
        return name if attribute.origin is None else f"{name}<{attribute.origin}>"
    if isinstance(attribute, r.BinarySize):
        return "BINARY.SIZE[" + ".".join(map(str, attribute.part)) + "]"
    return _NAMES.get(type(attribute), type(attribute).__name__.upper())


_NAMES: dict[type, str] = {
    r.FetchFlags: "FLAGS",
    r.Uid: "UID",
    r.Rfc822Size: "RFC822.SIZE",
    r.InternalDate: "INTERNALDATE",
    r.SaveDate: "SAVEDATE",
    r.EnvelopeItem: "ENVELOPE",
    r.BodyStructure: "BODYSTRUCTURE",
    r.Body: "BODY",
    r.Rfc822: "RFC822",
    r.Rfc822Header: "RFC822.HEADER",
    r.Rfc822Text: "RFC822.TEXT",
    r.ModSeq: "MODSEQ",
    r.EmailId: "EMAILID",
    r.ThreadId: "THREADID",
}


def _value(attribute: r.FetchAttribute) -> Any:
    """The plain value of an attribute: what a `FetchResult` maps its name to."""
    if isinstance(attribute, r.FetchFlags):
        return attribute.flags
    if isinstance(attribute, r.EnvelopeItem):
        return attribute.envelope
    if isinstance(attribute, r.BodyStructure | r.Body):
        return attribute.body
    if isinstance(attribute, r.BinarySize):
        return attribute.size
    if isinstance(attribute, r.BodySection | r.Binary | r.Rfc822 | r.Rfc822Header | r.Rfc822Text):
        return attribute.data
    return getattr(attribute, "value", attribute)


def sequence_set(ids: Ids) -> imap.SequenceSet:
    """A sequence set from a number, numbers, a set or its text ("1:*", "2,4:7")."""
    if isinstance(ids, imap.SequenceSet):
        return ids
    if isinstance(ids, int):
        return imap.SequenceSet.of(ids)
    if isinstance(ids, str):
        return imap.SequenceSet.parse(ids)
    return imap.SequenceSet.of(*ids)


def _count(uids: imap.SequenceSet) -> int:
    return sum(b - a + 1 for a, b in uids.normalized(0))


def _text(response: r.Tagged | r.Untagged) -> str:
    """The text of a refusal, its code first as on the wire: "[NONEXISTENT] No such..."."""
    code = response.code
    if code is None:
        return response.text
    name = getattr(code, "NAME", "") or getattr(code, "name", "") or type(code).__name__.upper()
    return f"[{name}] {response.text}".strip()


class IMAPClientSession:
    """One IMAP client session's state and flows."""

    def __init__(
        self,
        *,
        host: str,
        timeout: float | None = 60.0,
        config: imap.ClientConfig | None = None,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.conn = imap.ClientConnection(config)
        self.greeting: r.Untagged | None = None
        self.tls: TLSInfo | None = None
        self.mailbox: MailboxState | None = None
        self.bye: r.Untagged | None = None
        self.idle_renewals = 0
        self._tags = itertools.count(1)
        self._idle_tag: str | None = None
        self._idling = False
        self._idle_since = 0.0
        # Updates read while renewing IDLE, owed to the caller before any newer one.
        self._idle_backlog: builtins.list[Any] = []

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities, upper case (empty until known)."""
        return self.conn.capabilities

    def _tag(self) -> str:
        return f"M{next(self._tags):04d}"

    # -- plumbing

    def _send(self, data: bytes) -> Op[None]:
        if len(data) <= _CHUNK:
            if data:
                yield Send(data, timeout=self.timeout)
            return
        view = memoryview(data)
        for start in range(0, len(data), _CHUNK):
            yield Send(bytes(view[start : start + _CHUNK]), timeout=self.timeout)

    def _event(self) -> Op[Any]:
        """The next event; the core's releases (after a "+") are sent on the way."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                out = conn.data_to_send()
                if out:
                    yield from self._send(out)
                    continue
                conn.receive_data((yield Receive(timeout=self.timeout)))
                continue
            if event is PAUSED:
                raise LocalProtocolError("the connection waits for start_tls()")
            if isinstance(event, imap.ConnectionClosed):
                why = f": {self.bye.text}" if self.bye is not None else ""
                raise ConnectionLost(f"{self.host} closed the connection{why}")
            return event

    def _apply(self, event: Any) -> None:
        """Follow what a response says about the selected mailbox."""
        box = self.mailbox
        if isinstance(event, r.Untagged | r.Tagged):
            if isinstance(event, r.Untagged) and event.status == "BYE":
                self.bye = event
            if box is None:
                return
            code = event.code
            if isinstance(code, r.UidNext):
                box.uidnext = code.value
            elif isinstance(code, r.UidValidity):
                box.uidvalidity = code.value
            elif isinstance(code, r.PermanentFlags):
                box.permanent_flags = code.flags
            elif isinstance(code, r.HighestModSeq):
                box.highestmodseq = code.value
            elif isinstance(code, r.NoModSeq):
                box.highestmodseq = None
            elif isinstance(code, r.Unseen):
                box.unseen = code.value
            elif isinstance(code, r.ReadOnly):
                box.read_only = True
            elif isinstance(code, r.ReadWrite):
                box.read_only = False
            elif isinstance(code, r.Closed):  # RFC 7162: the previous mailbox ends here
                self.mailbox = MailboxState(name=box.name, read_only=box.read_only)
            return
        if box is None:
            return
        if isinstance(event, r.Exists):
            box.exists = event.count
        elif isinstance(event, r.Recent):
            box.recent = event.count
        elif isinstance(event, r.Expunge):
            box.exists = max(box.exists - 1, 0)
        elif isinstance(event, r.Vanished):
            if not event.earlier:
                box.exists = max(box.exists - _count(event.uids), 0)
        elif isinstance(event, r.Flags):
            box.flags = event.flags
        elif isinstance(event, r.Fetch):
            modseq = event.get(r.ModSeq)
            if isinstance(modseq, r.ModSeq) and box.highestmodseq is not None:
                box.highestmodseq = max(box.highestmodseq, modseq.value)

    def _command(
        self,
        command: c.Command,
        *,
        on_event: Callable[[Any], Op[None]] | None = None,
        error: type[ServerError] = ServerError,
    ) -> Op[tuple[builtins.list[Any], r.Tagged]]:
        """Send ``command``; its untagged responses (applied) and its tagged OK.

        ``on_event`` sees each event before it is collected (a FETCH literal's pieces).
        """
        yield from self._send(self.conn.send(command))
        untagged: builtins.list[Any] = []
        while True:
            event = yield from self._event()
            self._apply(event)
            if isinstance(event, r.Tagged) and event.tag == command.tag:
                break
            if on_event is not None:
                yield from on_event(event)
            else:
                untagged.append(event)
        if event.status != "OK":
            name = type(command).__name__.upper()
            raise error(event.status, _text(event), command=name)
        return untagged, event

    def _simple(self, command: c.Command) -> Op[builtins.list[Any]]:
        untagged, _ = yield from self._command(command)
        return untagged

    # -- connection and authentication

    def greet(self) -> Op[r.Untagged]:
        """Read the greeting (BYE raises `ServerError`); CAPABILITY if it named none."""
        info = yield Info()
        self.tls = info.tls  # implicit TLS: the transport did the handshake
        event = yield from self._event()
        self._apply(event)
        if not isinstance(event, r.Untagged) or event.status == "BYE":
            raise ServerError("BYE", getattr(event, "text", ""), command="greeting")
        self.greeting = event
        if not self.capabilities:
            yield from self.capability()
        return event

    def open(self, starttls: ssl.SSLContext | bool | None = None) -> Op[r.Untagged]:
        """Greeting (and CAPABILITY), and STARTTLS: required (True or a context), never
        (False), or when offered (None). Returns the greeting."""
        greeting = yield from self.greet()
        offered = "STARTTLS" in self.capabilities
        context = upgrade_context(starttls, secure=self.tls is not None, offered=offered)
        if context is not None:
            yield from self.starttls(context)
        return greeting

    def capability(self) -> Op[frozenset[str]]:
        yield from self._simple(c.Capability(tag=self._tag()))
        return self.capabilities

    def starttls(self, context: ssl.SSLContext, hostname: str | None = None) -> Op[TLSInfo]:
        """STARTTLS, the handshake, and CAPABILITY again (RFC 9051 6.2.1)."""
        if "STARTTLS" not in self.capabilities:
            raise ServerError("NO", "STARTTLS is not offered", command="STARTTLS")
        yield from self._simple(c.StartTLS(tag=self._tag()))
        self.conn.start_tls()
        self.tls = yield StartTLS(context, hostname=hostname or self.host, timeout=self.timeout)
        yield from self.capability()
        return self.tls

    def login(self, username: str, password: str) -> Op[r.Tagged]:
        """LOGIN; AUTHENTICATE instead when the server announced LOGINDISABLED."""
        if "LOGINDISABLED" in self.capabilities:
            return (yield from self.authenticate(username, password))
        login = c.Login(tag=self._tag(), username=username.encode(), password=password.encode())
        _, tagged = yield from self._command(login, error=AuthenticationFailed)
        if not self.capabilities:
            yield from self.capability()
        return tagged

    def authenticate(
        self, username: str, password: str, mechanism: str | None = None
    ) -> Op[r.Tagged]:
        """AUTHENTICATE with ``mechanism``, or the best offered (SCRAM-SHA-256 first,
        PLAIN over TLS); the first message goes with the command when SASL-IR allows."""
        caps = self.capabilities
        offered = frozenset(cap[5:] for cap in caps if cap.startswith("AUTH="))
        if mechanism is None:
            mechanism = _best_mechanism(offered, tls=self.tls is not None)
            if mechanism is None:
                raise AuthenticationFailed(
                    "NO",
                    f"no mechanism we know is offered: {sorted(offered)}",
                    command="AUTHENTICATE",
                )
        client = _mechanism(mechanism.upper(), username, password, self.host)
        initial = client.initial_response() if "SASL-IR" in caps else None
        command = c.Authenticate(tag=self._tag(), mechanism=client.name, initial_response=initial)
        yield from self._send(self.conn.send(command))
        while True:
            event = yield from self._event()
            self._apply(event)
            if isinstance(event, imap.AuthChallenge):
                try:
                    answer: Any = imap.AuthenticateResponse(data=client.respond(event.data))
                except SASLError:
                    answer = imap.AuthenticateCancel()
                yield from self._send(self.conn.send(answer))
            elif isinstance(event, r.Tagged) and event.tag == command.tag:
                break
        if event.status != "OK":
            raise AuthenticationFailed(event.status, _text(event), command="AUTHENTICATE")
        try:
            client.verify_success(None)
        except SASLError as exc:
            raise AuthenticationFailed("NO", str(exc), command="AUTHENTICATE") from None
        if not self.capabilities:
            yield from self.capability()
        return event

    def enable(self, *capabilities: str) -> Op[frozenset[str]]:
        """ENABLE (RFC 5161): what the server enabled now."""
        untagged = yield from self._simple(c.Enable(tag=self._tag(), capabilities=capabilities))
        return frozenset(
            cap.upper() for e in untagged if isinstance(e, r.Enabled) for cap in e.capabilities
        )

    def id(self, fields: dict[str, str | None]) -> Op[dict[str, str | None] | None]:
        """ID (RFC 2971): the server's fields, or None if it gave NIL."""
        params = (
            tuple((k.encode(), None if v is None else v.encode()) for k, v in fields.items())
            or None
        )
        untagged = yield from self._simple(c.Id(tag=self._tag(), parameters=params))
        for event in untagged:
            if isinstance(event, r.Id):
                if event.params is None:
                    return None
                return {
                    k.decode("utf-8", "replace"): None
                    if v is None
                    else v.decode("utf-8", "replace")
                    for k, v in event.params
                }
        return None

    def namespace(self) -> Op[r.Namespace | None]:
        untagged = yield from self._simple(c.Namespace(tag=self._tag()))
        return next((e for e in untagged if isinstance(e, r.Namespace)), None)

    def noop(self) -> Op[builtins.list[Any]]:
        """NOOP: the untagged updates it collected (the mailbox state follows them)."""
        return (yield from self._simple(c.Noop(tag=self._tag())))

    def logout(self) -> Op[None]:
        """LOGOUT and close; a server that already closed is not an error."""
        # A server that closed first did what we asked.
        with contextlib.suppress(TransportError, MailError, OSError, LocalProtocolError):
            yield from self._simple(c.Logout(tag=self._tag()))
        self.mailbox = None
        yield Close()

    # -- mailboxes

    def list(self, reference: str = "", pattern: str = "*") -> Op[builtins.list[r.List]]:
        untagged = yield from self._simple(
            c.List(tag=self._tag(), reference=reference, patterns=(pattern,))
        )
        return [e for e in untagged if isinstance(e, r.List)]

    def lsub(self, reference: str = "", pattern: str = "*") -> Op[builtins.list[r.Lsub]]:
        untagged = yield from self._simple(
            c.Lsub(tag=self._tag(), reference=reference, pattern=pattern)
        )
        return [e for e in untagged if isinstance(e, r.Lsub)]

    def status(self, mailbox: str, items: Sequence[str]) -> Op[dict[str, int | str]]:
        """STATUS: item name (upper case) -> value."""
        wanted: Any = tuple(i.upper() for i in items)
        untagged = yield from self._simple(c.Status(tag=self._tag(), mailbox=mailbox, items=wanted))
        out: dict[str, int | str] = {}
        for event in untagged:
            if isinstance(event, r.Status):
                out.update(event.items)
        return out

    def create(self, mailbox: str) -> Op[None]:
        yield from self._simple(c.Create(tag=self._tag(), mailbox=mailbox))

    def delete(self, mailbox: str) -> Op[None]:
        yield from self._simple(c.Delete(tag=self._tag(), mailbox=mailbox))

    def subscribe(self, mailbox: str) -> Op[None]:
        yield from self._simple(c.Subscribe(tag=self._tag(), mailbox=mailbox))

    def select(
        self,
        mailbox: str,
        *,
        readonly: bool = False,
        condstore: bool = False,
        qresync: c.QResync | None = None,
        on_event: Callable[[Any], Op[None]] | None = None,
    ) -> Op[MailboxState]:
        """SELECT (EXAMINE with ``readonly``): the new `MailboxState`."""
        kind = c.Examine if readonly else c.Select
        command = kind(tag=self._tag(), mailbox=mailbox, condstore=condstore, qresync=qresync)
        self.mailbox = MailboxState(name=command.mailbox, read_only=readonly)
        try:
            yield from self._command(command, on_event=on_event)
        except ServerError:
            self.mailbox = None
            raise
        assert self.mailbox is not None
        return self.mailbox

    def close(self) -> Op[None]:
        """CLOSE: expunge (unless read-only) and leave the mailbox."""
        yield from self._simple(c.Close(tag=self._tag()))
        self.mailbox = None

    def unselect(self) -> Op[None]:
        yield from self._simple(c.Unselect(tag=self._tag()))
        self.mailbox = None

    # -- messages

    def search(
        self, criteria: Criteria, *, uid: bool = True, charset: str | None = None
    ) -> Op[builtins.list[int]]:
        """[UID] SEARCH: matching UIDs (or sequence numbers), ascending."""
        keys: tuple[SearchKey, ...]
        if isinstance(criteria, str):
            raw = criteria.encode("utf-8")
            if not raw.isascii() and charset is None and not self.conn.utf8:
                charset = "UTF-8"
            parsed = imap.parse_command(b"X SEARCH " + raw, utf8=True)
            assert isinstance(parsed, c.Search)
            keys = parsed.criteria
        elif isinstance(criteria, SearchKey):
            keys = (criteria,)
        else:
            keys = tuple(criteria)
        command = c.Search(tag=self._tag(), uid=uid, criteria=keys, charset=charset)
        untagged = yield from self._simple(command)
        found: builtins.list[int] = []
        for event in untagged:
            if isinstance(event, r.Search):
                found.extend(event.numbers)
            elif isinstance(event, r.ESearch) and event.all is not None:
                found.extend(event.all.iter(0))
        return sorted(set(found))

    def fetch(
        self,
        ids: Ids,
        items: Items,
        *,
        uid: bool = True,
        changedsince: int | None = None,
        vanished: bool = False,
    ) -> Op[dict[int, FetchResult]]:
        """[UID] FETCH: a `FetchResult` per message, keyed by UID (or sequence number).

        ``items`` as on the wire ("FLAGS", "(UID ENVELOPE BODY.PEEK[])", a list of such
        names) or typed `commands.FetchItem` values. Literals the core streams (large
        bodies) are put back together here.
        """
        command = c.Fetch(
            tag=self._tag(),
            uid=uid,
            sequence_set=sequence_set(ids),
            items=_fetch_items(items),
            changedsince=changedsince,
            vanished=vanished,
        )
        results: dict[int, FetchResult] = {}
        by_seq: dict[int, FetchResult] = {}
        streamed: builtins.list[tuple[str, bytearray]] = []

        def collect(event: Any) -> Op[None]:
            if isinstance(event, imap.FetchLiteralStarted):
                streamed.append((event.item.decode("ascii", "replace").upper(), bytearray()))
            elif isinstance(event, imap.FetchLiteralData):
                streamed[-1][1].extend(event.data)
            elif isinstance(event, r.Fetch):
                result = by_seq.get(event.seq) or FetchResult(event.seq)
                _fill(result, event, streamed)
                streamed.clear()
                key = result.get("UID") if uid else event.seq
                if isinstance(key, int):
                    by_seq[event.seq] = result
                    results[key] = result
            return
            yield  # a generator

        yield from self._command(command, on_event=collect)
        return results

    def fetch_stream(self, uid: int, section: str, out: Any, *, use_uid: bool = True) -> Op[int]:
        """Write BODY[section] of one message into ``out`` (its ``write`` is called with
        each piece as it arrives; awaited if it is a coroutine); the octets written."""
        parsed = imap.parse_command(f"X FETCH 1 BODY.PEEK[{section}]".encode(), utf8=True)
        assert isinstance(parsed, c.Fetch)
        command = c.Fetch(
            tag=self._tag(), uid=use_uid, sequence_set=sequence_set(uid), items=parsed.items
        )
        written = 0
        streaming = False

        def write(event: Any) -> Op[None]:
            nonlocal written, streaming
            if isinstance(event, imap.FetchLiteralStarted):
                streaming = True
            elif isinstance(event, imap.FetchLiteralData):
                yield Call(out.write, (event.data,))
                written += len(event.data)
            elif isinstance(event, r.Fetch):
                body = event.get(r.BodySection)
                if not streaming and isinstance(body, r.BodySection) and body.data:
                    yield Call(out.write, (body.data,))
                    written += len(body.data)
                streaming = False

        yield from self._command(command, on_event=write)
        return written

    def store(
        self,
        ids: Ids,
        flags: Iterable[str],
        action: Literal["add", "remove", "set"] = "add",
        *,
        uid: bool = True,
        silent: bool = False,
    ) -> Op[dict[int, tuple[str, ...]]]:
        """[UID] STORE: the new flags by UID (or sequence number); empty when silent."""
        command = c.Store(
            tag=self._tag(),
            uid=uid,
            sequence_set=sequence_set(ids),
            action=action,
            flags=tuple(flags),
            silent=silent,
        )
        untagged = yield from self._simple(command)
        out: dict[int, tuple[str, ...]] = {}
        for event in untagged:
            if isinstance(event, r.Fetch):
                got = event.get(r.FetchFlags)
                key_attr = event.get(r.Uid)
                key = key_attr.value if uid and isinstance(key_attr, r.Uid) else event.seq
                if isinstance(got, r.FetchFlags):
                    out[key] = got.flags
        return out

    def copy(self, ids: Ids, mailbox: str, *, uid: bool = True) -> Op[r.CopyUid | None]:
        """[UID] COPY: the COPYUID code when the server has UIDPLUS."""
        command = c.Copy(tag=self._tag(), uid=uid, sequence_set=sequence_set(ids), mailbox=mailbox)
        _, tagged = yield from self._command(command)
        return tagged.code if isinstance(tagged.code, r.CopyUid) else None

    def move(self, ids: Ids, mailbox: str, *, uid: bool = True) -> Op[r.CopyUid | None]:
        """[UID] MOVE (RFC 6851); without MOVE, COPY + STORE \\Deleted + UID EXPUNGE
        (UIDPLUS needed, so that no other deleted message is expunged)."""
        seqset = sequence_set(ids)
        if "MOVE" in self.capabilities:
            copyuid: r.CopyUid | None = None

            def note(event: Any) -> Op[None]:
                nonlocal copyuid
                if isinstance(event, r.Untagged) and isinstance(event.code, r.CopyUid):
                    copyuid = event.code
                return
                yield

            command = c.Move(tag=self._tag(), uid=uid, sequence_set=seqset, mailbox=mailbox)
            _, tagged = yield from self._command(command, on_event=note)
            return copyuid or (tagged.code if isinstance(tagged.code, r.CopyUid) else None)
        if not uid or "UIDPLUS" not in self.capabilities:
            raise MailError("the server has neither MOVE nor UIDPLUS: move by UID impossible")
        result = yield from self.copy(seqset, mailbox, uid=True)
        yield from self.store(seqset, ("\\Deleted",), "add", uid=True, silent=True)
        yield from self.expunge(seqset)
        return result

    def expunge(self, uids: Ids | None = None) -> Op[builtins.list[int]]:
        """EXPUNGE, or UID EXPUNGE of ``uids`` (UIDPLUS): the sequence numbers expunged
        (or the UIDs, when the server reports VANISHED)."""
        if uids is None:
            command = c.Expunge(tag=self._tag())
        else:
            command = c.Expunge(tag=self._tag(), uid=True, sequence_set=sequence_set(uids))
        untagged = yield from self._simple(command)
        gone: builtins.list[int] = []
        for event in untagged:
            if isinstance(event, r.Expunge):
                gone.append(event.seq)
            elif isinstance(event, r.Vanished):
                gone.extend(event.uids.iter(0))
        return gone

    def append(
        self,
        mailbox: str,
        message: bytes | Any,
        flags: Iterable[str] = (),
        date: datetime.datetime | None = None,
        *,
        size: int | None = None,
    ) -> Op[r.AppendUid | None]:
        """APPEND one message: bytes, or a binary file-like (sync or async ``read``, and
        ``seek``/``tell`` unless ``size`` is given) streamed in chunks, never whole. The
        literal goes at once with LITERAL+, else after the server's "+". Returns the
        APPENDUID code when the server has UIDPLUS."""
        data: bytes | None = None
        reader: Any = message
        if isinstance(message, bytes | bytearray | memoryview):
            data = bytes(message)
            size = len(data)
        elif size is None:
            here = yield Call(message.tell)
            end = yield Call(message.seek, (0, 2))
            yield Call(message.seek, (here,))
            size = end - here
        binary = data is not None and b"\x00" in data
        tag = self._tag()
        start = imap.AppendStarted(
            tag=tag, mailbox=mailbox, flags=tuple(flags) or None, date=date, size=size,
            binary=binary,
        )  # fmt: skip
        head = self.conn.send(start)
        yield from self._send(head)
        if not head.endswith(b"+}\r\n"):
            while True:  # the "+", or a NO instead
                event = yield from self._event()
                self._apply(event)
                if isinstance(event, imap.AppendReady):
                    break
                if isinstance(event, r.Tagged) and event.tag == tag:
                    raise ServerError(event.status, _text(event), command="APPEND")
        sent = 0
        while sent < size:
            if data is not None:
                piece = data[sent : sent + _CHUNK]
            else:
                piece = yield Call(reader.read, (min(_CHUNK, size - sent),))
                if not piece:
                    raise MailError(f"the message ended after {sent} of {size} octets")
            yield Send(self.conn.send(imap.AppendData(data=bytes(piece))), timeout=self.timeout)
            sent += len(piece)
        yield Send(self.conn.send(imap.AppendEnded()), timeout=self.timeout)
        while True:
            event = yield from self._event()
            self._apply(event)
            if isinstance(event, r.Tagged) and event.tag == tag:
                break
        if event.status != "OK":
            raise ServerError(event.status, _text(event), command="APPEND")
        return event.code if isinstance(event.code, r.AppendUid) else None

    # -- IDLE

    def idle_start(self) -> Op[None]:
        """IDLE until the server's "+"; updates before it are kept for `idle_next`."""
        command = c.Idle(tag=self._tag())
        yield from self._send(self.conn.send(command))
        self._idle_tag = command.tag
        while True:
            event = yield from self._event()
            self._apply(event)
            if isinstance(event, imap.IdleStarted):
                break
            if isinstance(event, r.Tagged) and event.tag == command.tag:
                self._idle_tag = None
                raise ServerError(event.status, _text(event), command="IDLE")
            if _is_update(event):
                self._idle_backlog.append(event)
        self._idling = True
        self._idle_since = time.monotonic()

    def idle_done(self) -> Op[builtins.list[Any]]:
        """DONE, and the updates that came before the tagged OK."""
        if self._idle_tag is None:
            return []
        tag, self._idle_tag = self._idle_tag, None
        if self._idling:
            self._idling = False
            yield from self._send(self.conn.send(c.IdleDone()))
        updates: builtins.list[Any] = []
        while True:
            event = yield from self._event()
            self._apply(event)
            if isinstance(event, r.Tagged) and event.tag == tag:
                break
            if _is_update(event):
                updates.append(event)
        if event.status != "OK":
            raise ServerError(event.status, _text(event), command="IDLE")
        return updates

    def idle_end(self) -> Op[None]:
        """End IDLE for good: DONE; updates not yet taken stay in the mailbox state."""
        yield from self.idle_done()
        self._idle_backlog.clear()

    def idle_next(self, *, renew: float = IDLE_RENEW, timeout: float | None = None) -> Op[Any]:
        """The next update while idling; None when ``timeout`` seconds passed without one.

        Every ``renew`` seconds IDLE is ended and begun again (RFC 2177: before 29
        minutes): a server that does not answer DONE within the session's timeout is
        a dead connection, reported as `TransportTimeout`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = self.conn
        while True:
            if self._idle_backlog:
                return self._idle_backlog.pop(0)
            event = conn.next_event()
            if event is NEED_DATA:
                now = time.monotonic()
                renew_at = self._idle_since + renew
                if now >= renew_at:
                    self._idle_backlog += yield from self.idle_done()
                    yield from self.idle_start()
                    self.idle_renewals += 1
                    continue
                if deadline is not None and now >= deadline:
                    return None
                wait = renew_at - now if deadline is None else min(renew_at, deadline) - now
                try:
                    data = yield Receive(timeout=max(wait, 0.001))
                except TransportTimeout:
                    continue
                conn.receive_data(data)
                continue
            if isinstance(event, imap.ConnectionClosed):
                why = f": {self.bye.text}" if self.bye is not None else ""
                raise ConnectionLost(f"{self.host} closed the connection{why}")
            self._apply(event)
            if isinstance(event, r.Tagged):  # the server ended IDLE on its own
                self._idle_tag, self._idling = None, False
                if event.status != "OK":
                    raise ServerError(event.status, _text(event), command="IDLE")
                yield from self.idle_start()
                continue
            if _is_update(event):
                return event

    # -- resynchronisation

    def resume(self, mailbox: str, uidvalidity: int, highestmodseq: int | None) -> Op[ResumeResult]:
        """Select ``mailbox`` and learn what changed since (``uidvalidity``,
        ``highestmodseq``): QRESYNC when offered (expunged UIDs and changed flags in the
        SELECT), else CONDSTORE (UID FETCH CHANGEDSINCE), else the flags of every
        message. ``reset`` when UIDVALIDITY changed: nothing cached is valid then."""
        caps = self.capabilities
        changed: dict[int, FetchResult] = {}
        vanished: builtins.list[int] = []
        if "QRESYNC" in caps and highestmodseq:
            if "QRESYNC" not in self.conn.enabled:
                yield from self.enable("QRESYNC")

            def note(event: Any) -> Op[None]:
                if isinstance(event, r.Vanished):
                    vanished.extend(event.uids.iter(0))
                elif isinstance(event, r.Fetch):
                    result = FetchResult(event.seq)
                    _fill(result, event, [])
                    if isinstance(result.get("UID"), int):
                        changed[result["UID"]] = result
                return
                yield

            qresync = c.QResync(uidvalidity=uidvalidity, modseq=highestmodseq)
            state = yield from self.select(mailbox, qresync=qresync, on_event=note)
            if state.uidvalidity != uidvalidity:
                return ResumeResult(state=state, reset=True, vanished=(), changed={})
            return ResumeResult(state=state, reset=False, vanished=tuple(vanished), changed=changed)
        condstore = "CONDSTORE" in caps and bool(highestmodseq)
        state = yield from self.select(mailbox, condstore=condstore)
        if state.uidvalidity != uidvalidity:
            return ResumeResult(state=state, reset=True, vanished=(), changed={})
        if state.exists:
            items = "(UID FLAGS MODSEQ)" if condstore else "(UID FLAGS)"
            since = highestmodseq if condstore else None
            changed = yield from self.fetch("1:*", items, changedsince=since)
        return ResumeResult(state=state, reset=False, vanished=(), changed=changed)


def _is_update(event: Any) -> bool:
    """Whether an untagged response is news for an IDLE caller (not a keepalive)."""
    if isinstance(event, r.Untagged):
        return event.code is not None or event.status != "OK"
    return isinstance(event, r.Response) and not isinstance(event, r.Tagged | r.Continuation)


def _fetch_items(items: Items) -> Any:
    if isinstance(items, c.FetchAttr | c.FetchBody | c.FetchBinary | c.FetchBinarySize):
        return items
    if isinstance(items, str):
        text = items.strip()
        if text.upper() in ("ALL", "FAST", "FULL"):
            return text.upper()
        if not text.startswith("("):
            text = f"({text})"
    else:
        typed = [i for i in items if not isinstance(i, str)]
        if typed and len(typed) == len(items):
            return tuple(typed)
        if typed:
            raise LocalProtocolError("give FETCH items all as str or all typed")
        text = "(" + " ".join(str(i) for i in items) + ")"
    parsed = imap.parse_command(b"X FETCH 1 " + text.encode(), utf8=True)
    assert isinstance(parsed, c.Fetch)
    return parsed.items


def _fill(
    result: FetchResult, event: r.Fetch, streamed: builtins.list[tuple[str, bytearray]]
) -> None:
    """Put a FETCH response's attributes into ``result``, streamed literals in place."""
    pending = list(streamed)
    for attribute in event.attributes:
        name = attribute_name(attribute)
        value = _value(attribute)
        if pending and value == b"":
            match = next((p for p in pending if p[0] == name), pending[0])
            pending.remove(match)
            value = bytes(match[1])
        result.attributes.append(attribute)
        result[name] = value
