"""FETCH, SEARCH and STATUS data for the IMAP server, from the store (no protocol here).

The IMAP session (`mailproto_adapters.mda.imap`) turns commands into calls on this module
and its answers into responses; this module knows how each item is computed and what it
costs:

- cheap items (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) come from the
  `MessageRecord` the session already holds;
- ENVELOPE, BODY and BODYSTRUCTURE come from the store's metadata cache
  (`Mailbox.metadata` / `Mailbox.metadata_many`), without opening the message file, so
  that a client's FETCH 1:* of the message list reads no message;
- sections (BODY[...], RFC822, RFC822.HEADER, RFC822.TEXT, BINARY[...],
  BINARY.SIZE[...]) open the file once per message and answer with `mailproto.message`.

Octets are served as stored (docs/message.md: "sections are the stored bytes"), so
RFC822.SIZE is the stored size, equal to the length of BODY[] and consistent with the
sizes in the cached BODYSTRUCTURE. A NUL octet cannot be sent in a non-BINARY literal:
it is served as 0x80, as Dovecot does, which keeps the lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Set
from functools import partial
from typing import Any

from mailproto import LocalProtocolError
from mailproto.imap import FETCH_WIRE_ITEMS, FetchRow, FetchWriter, Section, StatusItem
from mailproto.imap.commands import FetchAttr, FetchBinary, FetchBody, FetchItem
from mailproto.imap.responses import (
    Binary,
    BinarySize,
    Body,
    BodySection,
    BodyStructure,
    Envelope,
    EnvelopeItem,
    FetchAttribute,
    FetchFlags,
    InternalDate,
    ModSeq,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    SaveDate,
    Uid,
)
from mailproto.message import Message, MessageInfo, binary, parse_message, section

from .store import Mailbox, MessageMetadata, MessageRecord

__all__ = [
    "MACROS",
    "UnknownCte",
    "UnsupportedItem",
    "expand_items",
    "fetch_attributes",
    "fetch_many",
    "fetch_wire_many",
    "marks_seen",
    "message_infos",
    "needs_file",
    "needs_metadata",
    "sets_seen",
    "status_values",
    "wire_names",
]

#: RFC 3501 6.4.5 / RFC 9051 6.4.5 macros.
MACROS: dict[str, tuple[FetchItem, ...]] = {
    "ALL": (
        FetchAttr(name="FLAGS"),
        FetchAttr(name="INTERNALDATE"),
        FetchAttr(name="RFC822.SIZE"),
        FetchAttr(name="ENVELOPE"),
    ),
    "FAST": (
        FetchAttr(name="FLAGS"),
        FetchAttr(name="INTERNALDATE"),
        FetchAttr(name="RFC822.SIZE"),
    ),
    "FULL": (
        FetchAttr(name="FLAGS"),
        FetchAttr(name="INTERNALDATE"),
        FetchAttr(name="RFC822.SIZE"),
        FetchAttr(name="ENVELOPE"),
        FetchAttr(name="BODY"),
    ),
}

_SYSTEM_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_METADATA_ATTRS = frozenset(("ENVELOPE", "BODY", "BODYSTRUCTURE"))
_FILE_ATTRS = frozenset(("RFC822", "RFC822.HEADER", "RFC822.TEXT"))
_BODY_ATTRS = frozenset(("BODY", "BODYSTRUCTURE"))
_BATCH = 500
_WIRE_BATCH = 200


class UnknownCte(Exception):
    """BINARY of a part whose transfer encoding we cannot undo: ``NO [UNKNOWN-CTE]``."""

    def __init__(self, part: tuple[int, ...]) -> None:
        super().__init__(f"unknown content transfer encoding in part {part!r}")
        self.part = part


class UnsupportedItem(ValueError):
    """An item this store cannot answer (EMAILID, THREADID: no OBJECTID); answer BAD."""


def expand_items(items: str | FetchItem | tuple[FetchItem, ...]) -> tuple[FetchItem, ...]:
    """The items of a FETCH command as a tuple, macros expanded (RFC 3501 6.4.5).

    ALL is (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), FAST (FLAGS INTERNALDATE
    RFC822.SIZE), FULL (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY). Raises
    `ValueError` for another name.
    """
    if isinstance(items, str):
        try:
            return MACROS[items.upper()]
        except KeyError:
            raise ValueError(f"not a FETCH macro: {items!r}") from None
    if isinstance(items, tuple):
        return items
    return (items,)


def sets_seen(record: MessageRecord, items: Sequence[FetchItem]) -> bool:
    """Whether fetching ``items`` sets \\Seen on this message (RFC 9051 6.4.5).

    BODY[...], BINARY[...], RFC822 and RFC822.TEXT without .PEEK do, when the message
    is not \\Seen yet. A session may call this first, store \\Seen, and pass the new
    record to `fetch_attributes` so that FLAGS and MODSEQ show the stored state.
    """
    if "\\Seen" in record.flags:
        return False
    return any(_marks_seen(item) for item in items)


def marks_seen(items: Sequence[FetchItem]) -> bool:
    """Whether fetching ``items`` sets \\Seen on a message not \\Seen yet (`sets_seen`
    without the record: asked once for a FETCH of many messages)."""
    return any(_marks_seen(item) for item in items)


def _marks_seen(item: FetchItem) -> bool:
    if isinstance(item, (FetchBody, FetchBinary)):
        return not item.peek
    return isinstance(item, FetchAttr) and item.name in ("RFC822", "RFC822.TEXT")


def needs_metadata(items: Sequence[FetchItem]) -> bool:
    """Whether the items need the cached metadata (ENVELOPE, BODY, BODYSTRUCTURE)."""
    return any(isinstance(i, FetchAttr) and i.name in _METADATA_ATTRS for i in items)


def needs_file(items: Sequence[FetchItem]) -> bool:
    """Whether the items need the message's octets (sections, RFC822*, BINARY*)."""
    return any(not isinstance(i, FetchAttr) or i.name in _FILE_ATTRS for i in items)


def _flags(record: MessageRecord, *, recent: bool, seen: bool) -> FetchFlags:
    system = record.flags | {"\\Seen"} if seen else record.flags
    out = [f for f in _SYSTEM_ORDER if f in system]
    if recent:
        out.append("\\Recent")
    out.extend(sorted(record.keywords))
    return FetchFlags(flags=tuple(out))


def _no_nul(data: bytes) -> bytes:
    # A literal (not literal8) cannot hold NUL; Dovecot sends 0x80 in its place.
    return data.replace(b"\0", b"\x80") if b"\0" in data else data


class _Octets:
    """The message's octets and parse, read at most once per fetch of one message."""

    __slots__ = ("_data", "_mailbox", "_message", "_read", "_uid")

    def __init__(
        self, mailbox: Mailbox, uid: int, read: Callable[[int], bytes] | None = None
    ) -> None:
        self._mailbox = mailbox
        self._uid = uid
        self._read = read  # `Mailbox.reader` of a batch, or None: `open`
        self._data: bytes | None = None
        self._message: Message | None = None

    def data(self) -> bytes:
        if self._data is None:
            if self._read is not None:
                self._data = self._read(self._uid)
            else:
                with self._mailbox.open(self._uid) as fp:
                    self._data = fp.read()
        return self._data

    def message(self) -> Message:
        if self._message is None:
            self._message = parse_message(self.data())
        return self._message

    def section(self, sec: Section, partial: tuple[int, int] | None) -> bytes:
        if not sec.part and sec.text is None:
            data = self.data()  # BODY[]: no parse needed
            if partial is not None:
                data = data[partial[0] : partial[0] + partial[1]]
            return _no_nul(data)
        out = section(self.message(), sec, partial)
        return _no_nul(out if out is not None else b"")

    def binary(self, part: tuple[int, ...], partial: tuple[int, int] | None) -> bytes:
        if not part:
            data = self.data()
            return data if partial is None else data[partial[0] : partial[0] + partial[1]]
        out = binary(self.message(), part, partial)
        if out is None:
            raise UnknownCte(part)
        return out


def _attributes(
    mailbox: Mailbox,
    record: MessageRecord,
    items: Sequence[FetchItem],
    *,
    uid: bool,
    condstore: bool,
    recent: bool,
    metadata: MessageMetadata | None,
    envelope: Envelope | None = None,
    read: Callable[[int], bytes] | None = None,
) -> tuple[list[FetchAttribute], bool]:
    seen = sets_seen(record, items)
    octets = _Octets(mailbox, record.uid, read)
    md = metadata
    out: list[FetchAttribute] = []
    done: set[FetchItem] = set()
    if uid and FetchAttr(name="UID") not in items:
        out.append(Uid(value=record.uid))
    for item in items:
        if item in done:
            continue
        done.add(item)
        if isinstance(item, FetchAttr):
            name = item.name
            if name == "FLAGS":
                out.append(_flags(record, recent=recent, seen=seen))
            elif name == "UID":
                out.append(Uid(value=record.uid))
            elif name == "INTERNALDATE":
                # IMAP date-times have whole seconds; a file's mtime may not
                out.append(InternalDate(value=record.internal_date.replace(microsecond=0)))
            elif name == "RFC822.SIZE":
                out.append(Rfc822Size(value=record.size))
            elif name == "MODSEQ":
                out.append(ModSeq(value=record.modseq))
            elif name in _METADATA_ATTRS:
                if name == "ENVELOPE" and envelope is not None:
                    out.append(EnvelopeItem(envelope=envelope))
                    continue
                if md is None:
                    md = mailbox.metadata(record.uid)
                if name == "ENVELOPE":
                    out.append(EnvelopeItem(envelope=md.envelope))
                elif name == "BODY":
                    out.append(Body(body=md.body))
                else:
                    out.append(BodyStructure(body=md.bodystructure))
            elif name == "RFC822":
                out.append(Rfc822(data=octets.section(Section(), None)))
            elif name == "RFC822.HEADER":
                out.append(Rfc822Header(data=octets.section(Section(text="HEADER"), None)))
            elif name == "RFC822.TEXT":
                out.append(Rfc822Text(data=octets.section(Section(text="TEXT"), None)))
            elif name == "SAVEDATE":
                out.append(SaveDate(value=None))  # RFC 8514: NIL when not known
            else:
                raise UnsupportedItem(f"{name} is not supported")
        elif isinstance(item, FetchBody):
            origin = item.partial[0] if item.partial is not None else None
            data = octets.section(item.section, item.partial)
            out.append(BodySection(section=item.section, origin=origin, data=data))
        elif isinstance(item, FetchBinary):
            origin = item.partial[0] if item.partial is not None else None
            data = octets.binary(item.part, item.partial)
            out.append(Binary(part=item.part, origin=origin, data=data))
        else:
            out.append(BinarySize(part=item.part, size=len(octets.binary(item.part, None))))
    if condstore and FetchAttr(name="MODSEQ") not in items:
        out.append(ModSeq(value=record.modseq))
    return out, seen


def fetch_attributes(
    mailbox: Mailbox,
    record: MessageRecord,
    items: Sequence[FetchItem],
    *,
    uid: bool,
    condstore: bool = False,
    recent: bool = False,
) -> tuple[list[FetchAttribute], bool]:
    """The FETCH attributes of one message, and whether the fetch sets \\Seen.

    Attributes come in the order asked (a repeated item once). With ``uid`` (UID FETCH)
    UID comes first unless asked (RFC 9051 6.4.9); with ``condstore`` MODSEQ is added
    at the end unless asked (RFC 7162 3.1.4.1). FLAGS shows \\Recent when ``recent``
    and \\Seen when the fetch sets it; the session stores \\Seen (and may then send the
    new MODSEQ), or calls `sets_seen` first and passes the stored record.

    Raises `KeyError` when the message is gone, `UnknownCte` for BINARY of an unknown
    encoding (``NO [UNKNOWN-CTE]``), `UnsupportedItem` for EMAILID / THREADID.
    """
    return _attributes(
        mailbox,
        record,
        items,
        uid=uid,
        condstore=condstore,
        recent=recent,
        metadata=None,
    )


def fetch_many(
    mailbox: Mailbox,
    records: Sequence[MessageRecord],
    items: Sequence[FetchItem],
    *,
    uid: bool,
    condstore: bool = False,
    recent: Set[int] = frozenset(),
) -> Iterator[tuple[MessageRecord, list[FetchAttribute], bool]]:
    """`fetch_attributes` over many messages, metadata read 500 at a time.

    Yields (record, attributes, sets \\Seen) in record order; ``recent`` holds the UIDs
    that are \\Recent in this session. A message that disappeared meanwhile is skipped
    (the session learns of its expunge at the next poll). `UnknownCte` and
    `UnsupportedItem` propagate as for `fetch_attributes`.
    """
    want_md = needs_metadata(items)
    want_file = needs_file(items) and isinstance(mailbox, Mailbox)
    # ENVELOPE alone (the message list): the store decodes only the envelopes.
    envelope_only = (
        want_md
        and isinstance(mailbox, Mailbox)
        and not any(isinstance(i, FetchAttr) and i.name in _BODY_ATTRS for i in items)
    )
    for start in range(0, len(records), _BATCH):
        chunk = records[start : start + _BATCH]
        mds: dict[int, MessageMetadata] = {}
        envs: dict[int, Envelope] = {}
        if envelope_only:
            envs = mailbox.envelopes_many(r.uid for r in chunk)
        elif want_md:
            mds = mailbox.metadata_many(r.uid for r in chunk)
        # The files of the batch looked up at once (Maildir: one query, not one each).
        read = mailbox.reader([r.uid for r in chunk]) if want_file else None
        for record in chunk:
            md = mds.get(record.uid)
            env = envs.get(record.uid)
            if want_md and md is None and env is None:
                continue  # gone
            try:
                attributes, seen = _attributes(
                    mailbox,
                    record,
                    items,
                    uid=uid,
                    condstore=condstore,
                    recent=record.uid in recent,
                    metadata=md,
                    envelope=env,
                    read=read,
                )
            except KeyError:
                continue
            yield record, attributes, seen


def wire_names(
    items: Sequence[FetchItem], *, uid: bool, condstore: bool = False
) -> tuple[str, ...] | None:
    """The item names `fetch_wire_many` writes for this FETCH, or None when an item
    needs `fetch_many` (BODY, BODYSTRUCTURE, sections...).

    The order is `fetch_attributes`'s: UID first for UID FETCH unless asked, the items
    as asked (a repeat once), MODSEQ last with ``condstore`` unless asked.
    """
    names: list[str] = []
    if uid and FetchAttr(name="UID") not in items:
        names.append("UID")
    for item in items:
        if type(item) is not FetchAttr or item.name not in FETCH_WIRE_ITEMS:
            return None
        names.append(item.name)
    if condstore:
        names.append("MODSEQ")
    return tuple(dict.fromkeys(names)) or None


def fetch_wire_many(
    mailbox: Mailbox,
    records: Sequence[MessageRecord],
    seqs: Sequence[int],
    names: Sequence[str],
    *,
    recent: Set[int] = frozenset(),
    batch: int = _WIRE_BATCH,
) -> Iterator[bytes]:
    """The FETCH responses of the message list, written straight to bytes.

    For items that `wire_names` accepted (none of them sets \\Seen): yields the
    responses of ``batch`` messages at a time, joined, for the records with sequence
    numbers ``seqs``. FLAGS is shown as the session shows flag changes: every flag and
    keyword sorted, \\Recent for the UIDs in ``recent``. Envelopes come from
    `Mailbox.envelope_wires_many` (cached wire forms); one whose cached form does not
    check is taken from the metadata instead. A message that disappeared is skipped.
    The lines are written by `mailproto.imap.FetchWriter`, which checks every value.
    """
    writer = FetchWriter(names)
    want_env = "ENVELOPE" in names
    want_date = "INTERNALDATE" in names
    flag_lists: dict[tuple[frozenset[str], frozenset[str], bool], tuple[str, ...]] = {}
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        envs: dict[int, bytes | Envelope] = {}
        if want_env:
            envs = mailbox.envelope_wires_many(r.uid for r in chunk)
        rows: list[FetchRow] = []
        for record, seq in zip(chunk, seqs[start : start + batch], strict=True):
            uid = record.uid
            env = envs.get(uid)
            if env is None and want_env:
                continue  # gone
            key = (record.flags, record.keywords, uid in recent)
            flags = flag_lists.get(key)
            if flags is None:
                shown = set(record.flags | record.keywords)
                if key[2]:
                    shown.add("\\Recent")
                flags = flag_lists[key] = tuple(sorted(shown))
            date = record.internal_date.replace(microsecond=0) if want_date else None
            rows.append((seq, flags, uid, date, record.size, env, max(record.modseq, 1)))
        try:
            data = writer.lines(rows)
        except LocalProtocolError:
            data = b"".join(_checked_lines(mailbox, writer, rows))
        if data:
            yield data


def _checked_lines(mailbox: Mailbox, writer: FetchWriter, rows: list[FetchRow]) -> Iterator[bytes]:
    """Line by line: a cached envelope that does not check is taken from the metadata."""
    for row in rows:
        try:
            yield writer.line(row)
        except LocalProtocolError:
            if type(row[5]) is not bytes:
                raise
            try:
                env = mailbox.metadata(row[2]).envelope
            except KeyError:
                continue  # gone
            yield writer.line((*row[:5], env, row[6]))


def _read(read_uid: Callable[[int], bytes], uid: int) -> bytes:
    try:
        return read_uid(uid)
    except KeyError:
        return b""  # expunged meanwhile: an empty message matches no text key


def _load(read: Callable[[], bytes]) -> Message:
    return parse_message(read())


def message_infos(
    mailbox: Mailbox,
    records: Sequence[MessageRecord],
    *,
    recent: Set[int] = frozenset(),
) -> list[MessageInfo]:
    """The `MessageInfo` list that `mailproto.message.search`, `sort`, `thread` take.

    Sequence numbers are 1..n in record order (pass the session's view, in UID order);
    ``recent`` holds the UIDs \\Recent in this session. ``load`` opens and parses the
    file only when a key needs the header or the text, ``read`` just reads it (an
    expunged file reads as an empty message).
    """
    out: list[MessageInfo] = []
    # A store's own reader (Maildir: the file names in one query); a wrapper that is
    # no `Mailbox` is read through its `open`.
    uids = [r.uid for r in records]
    if isinstance(mailbox, Mailbox):
        read_uid = mailbox.reader(uids)
    else:
        read_uid = Mailbox.reader(mailbox, uids)
    for seq, record in enumerate(records, 1):
        flags = record.all_flags
        if record.uid in recent:
            flags = flags | {"\\Recent"}
        read = partial(_read, read_uid, record.uid)  # partial: no call per message here
        out.append(
            MessageInfo(
                seq=seq,
                uid=record.uid,
                internal_date=record.internal_date,
                size=record.size,
                load=partial(_load, read),
                flags=flags,
                modseq=record.modseq,
                read=read,
            )
        )
    return out


_SNAPSHOT_ITEMS = frozenset(("MESSAGES", "UNSEEN", "DELETED", "SIZE", "DELETED-STORAGE"))


def status_values(
    mailbox: Mailbox, items: Sequence[StatusItem], *, recent: int = 0
) -> dict[StatusItem, Any]:
    """The values of a STATUS response, by item, in the order asked.

    MESSAGES, UNSEEN, DELETED (RFC 9051), SIZE (RFC 8438: the sum of RFC822.SIZE) and
    DELETED-STORAGE (RFC 9208) count a snapshot; RECENT is ``recent`` (the session's
    business); UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ (RFC 7162) come from the mailbox.
    APPENDLIMIT is None (no limit per mailbox: the server omits it or answers NIL), and
    MAILBOXID None unless the store has a ``mailbox_id`` (the server then omits it).
    Snapshot and HIGHESTMODSEQ are read together (``changes_since(0)``).
    """
    wanted = set(items)
    records: Sequence[MessageRecord] = ()
    highest: int | None = None
    if wanted & _SNAPSHOT_ITEMS:
        if "HIGHESTMODSEQ" in wanted:
            changes = mailbox.changes_since(0)
            records, highest = changes.records, changes.highestmodseq
        else:
            records = mailbox.snapshot()
    out: dict[StatusItem, Any] = {}
    for item in items:
        if item == "MESSAGES":
            out[item] = len(records)
        elif item == "RECENT":
            out[item] = recent
        elif item == "UIDNEXT":
            out[item] = mailbox.uidnext
        elif item == "UIDVALIDITY":
            out[item] = mailbox.uidvalidity
        elif item == "UNSEEN":
            out[item] = sum(1 for r in records if "\\Seen" not in r.flags)
        elif item == "DELETED":
            out[item] = sum(1 for r in records if "\\Deleted" in r.flags)
        elif item == "SIZE":
            out[item] = sum(r.size for r in records)
        elif item == "DELETED-STORAGE":
            out[item] = sum(r.size for r in records if "\\Deleted" in r.flags)
        elif item == "HIGHESTMODSEQ":
            out[item] = highest if highest is not None else mailbox.highestmodseq
        elif item == "APPENDLIMIT":
            out[item] = None
        elif item == "MAILBOXID":
            out[item] = getattr(mailbox, "mailbox_id", None)
        else:
            raise ValueError(f"not a STATUS item: {item!r}")
    return out
