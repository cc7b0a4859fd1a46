"""The mail store as the LMTP, POP3 and IMAP servers see it.

Three abstract classes: `MailStore` (all users), `UserStore` (one user's mailboxes,
subscriptions and quota) and `Mailbox` (one folder's messages, UIDs, flags and
MODSEQs). Nothing here names a file or a directory, so that a shared database store
can take the Maildir's place (DESIGN.md 5); `mailproto_adapters.mda.maildir` is the
embedded implementation.

Conventions every implementation keeps:

- Mailbox names are IMAP names with "/" as the delimiter, INBOX case-insensitive
  (`mailproto_adapters.mda.names.normalize_name`).
- UIDs are given in strictly ascending order, never reused while UIDVALIDITY stays.
- Every change (new message, flag change, expunge) gets a MODSEQ above every earlier one
  (RFC 7162); `Mailbox.highestmodseq` is the cheap value a session polls to learn that
  someone else changed the folder, and `Mailbox.watch` calls back in-process at once.
- System flags are spelt "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft";
  keywords are IMAP atoms ("$Forwarded", "Work"). "\\Recent" is a session's business
  and never stored.
- Methods are blocking and thread-safe; async servers call them in a worker thread.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import datetime
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO

import attrs

from .names import InvalidMailboxName

if TYPE_CHECKING:  # annotations only: a process that only queues mail skips the IMAP core
    from mailproto.imap.responses import BodyType, Envelope

__all__ = [
    "DELIVERY_ID",
    "SPECIAL_USE",
    "SYSTEM_FLAGS",
    "Changes",
    "FlagsResult",
    "InvalidMailboxName",
    "MailStore",
    "Mailbox",
    "MailboxExists",
    "MailboxHasChildren",
    "MailboxInfo",
    "MailboxNotFound",
    "MessageMetadata",
    "MessageRecord",
    "QuotaExceeded",
    "QuotaUsage",
    "StoreError",
    "UserStore",
]

# What names a delivered copy (LMTP XDELIVERYID): letters, digits, "_" and "-".
DELIVERY_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")

SYSTEM_FLAGS = frozenset(("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"))

#: The folders made for every new user, with their RFC 6154 attribute.
SPECIAL_USE: dict[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}


class StoreError(Exception):
    """Base class of the store's refusals (the servers turn them into NO / -ERR / 4xx)."""


class MailboxNotFound(StoreError):
    """No such mailbox (IMAP ``NO [NONEXISTENT]``)."""


class MailboxExists(StoreError):
    """CREATE or RENAME onto a name that exists (IMAP ``NO [ALREADYEXISTS]``)."""


class MailboxHasChildren(StoreError):
    """DELETE of a mailbox with inferiors, or of INBOX (IMAP ``NO [INUSE]``/``[CANNOT]``)."""


class QuotaExceeded(StoreError):
    """Delivery or APPEND would pass the user's storage quota.

    LMTP answers 552 5.2.2 (or 452 4.2.2), IMAP ``NO [OVERQUOTA]`` (RFC 9208).
    """

    def __init__(self, used: int, limit: int, size: int) -> None:
        super().__init__(f"quota exceeded: {used} + {size} > {limit} octets")
        self.used = used
        self.limit = limit
        self.size = size


@attrs.frozen(slots=True, kw_only=True)
class MessageRecord:
    """What a session knows of a message without reading it (one row of a snapshot)."""

    uid: int
    flags: frozenset[str]  # system flags ("\\Seen"...)
    keywords: frozenset[str]
    size: int  # octets of the stored message
    internal_date: datetime.datetime  # timezone-aware
    modseq: int

    @property
    def all_flags(self) -> frozenset[str]:
        """Flags and keywords together, as FETCH FLAGS shows them (less \\Recent)."""
        return self.flags | self.keywords


@attrs.frozen(slots=True, kw_only=True)
class MessageMetadata:
    """The parsed facts FETCH needs, computed once per message and cached.

    ``size`` is the stored octets; ``virtual_size`` counts each bare LF as CRLF (what
    the message is on the wire). ``body`` is BODY (no extension data), ``bodystructure``
    BODYSTRUCTURE.
    """

    size: int
    virtual_size: int
    envelope: Envelope
    body: BodyType
    bodystructure: BodyType


@attrs.frozen(slots=True, kw_only=True)
class MailboxInfo:
    """One row of LIST: the name and its attributes ("\\HasChildren", "\\Sent"...)."""

    name: str
    attributes: frozenset[str]
    special_use: str | None = None


@attrs.frozen(slots=True, kw_only=True)
class QuotaUsage:
    """STORAGE resource of the user's quota root (RFC 9208), in octets."""

    used: int
    limit: int | None
    messages: int


@attrs.frozen(slots=True, kw_only=True)
class FlagsResult:
    """The result of `Mailbox.set_flags`.

    ``changed`` are the records whose flags changed, with their new MODSEQ; ``modified``
    the UIDs refused because their MODSEQ was above UNCHANGEDSINCE (RFC 7162 MODIFIED).
    """

    changed: tuple[MessageRecord, ...]
    modified: tuple[int, ...] = ()


@attrs.frozen(slots=True, kw_only=True)
class Changes:
    """What changed after a MODSEQ: records changed or added, UIDs expunged (VANISHED)."""

    records: tuple[MessageRecord, ...]
    expunged: tuple[int, ...]
    highestmodseq: int


class Mailbox(abc.ABC):
    """One folder. A handle is cheap; several sessions may hold one each."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The canonical mailbox name."""

    @property
    @abc.abstractmethod
    def uidvalidity(self) -> int:
        """UIDVALIDITY: constant for the life of the folder."""

    @property
    @abc.abstractmethod
    def uidnext(self) -> int:
        """The UID the next message will get (after noticing others' deliveries)."""

    @property
    @abc.abstractmethod
    def highestmodseq(self) -> int:
        """HIGHESTMODSEQ, after noticing others' changes: poll it to learn of changes."""

    @abc.abstractmethod
    def snapshot(self) -> list[MessageRecord]:
        """Every message, in UID order (SELECT, and resynchronising a session).

        To learn the HIGHESTMODSEQ that goes with it atomically, use
        ``changes_since(0)``: its records are the same list.
        """

    @abc.abstractmethod
    def open(self, uid: int) -> BinaryIO:
        """The message's stored octets; `KeyError` when the UID is gone."""

    @abc.abstractmethod
    def metadata(self, uid: int) -> MessageMetadata:
        """Size, envelope and body structure, parsed once and then served from cache."""

    def metadata_many(self, uids: Iterable[int]) -> dict[int, MessageMetadata]:
        """`metadata` for many messages (FETCH 1:* ENVELOPE); missing UIDs are left out."""
        out: dict[int, MessageMetadata] = {}
        for uid in uids:
            with contextlib.suppress(KeyError):
                out[uid] = self.metadata(uid)
        return out

    def envelopes_many(self, uids: Iterable[int]) -> dict[int, Envelope]:
        """Only the envelopes (FETCH 1:* ENVELOPE); a store may decode them alone."""
        return {uid: md.envelope for uid, md in self.metadata_many(uids).items()}

    def reader(self, uids: Sequence[int]) -> Callable[[int], bytes]:
        """A function reading a message's octets (`KeyError` when it is gone), for the
        messages ``uids`` read one after the other (SEARCH TEXT); a store may look
        them all up at once."""

        def read(uid: int) -> bytes:
            with self.open(uid) as fp:
                return fp.read()

        return read

    def envelope_wires_many(self, uids: Iterable[int]) -> dict[int, bytes | Envelope]:
        """The envelopes for `mailproto.imap.FetchWriter`: each as the wire form
        `mailproto.imap.encode_envelope` gave (a store may cache it) or as an `Envelope`."""
        return dict(self.envelopes_many(uids))

    @abc.abstractmethod
    def set_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: str = "add",
        unchangedsince: int | None = None,
    ) -> FlagsResult:
        """STORE: ``mode`` "add", "remove" or "set"; only real changes get a new MODSEQ."""

    @abc.abstractmethod
    def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (only among ``uids`` when given)."""

    @abc.abstractmethod
    def append(
        self,
        message: bytes | BinaryIO,
        flags: Iterable[str] = (),
        internal_date: datetime.datetime | None = None,
        *,
        delivery_id: str | None = None,
    ) -> int:
        """Store a message (quota checked first); its UID. ``delivery_id`` (`DELIVERY_ID`
        syntax) is stored with it, atomically, for `delivered` to find."""

    @abc.abstractmethod
    def delivered(self, delivery_id: str) -> int | None:
        """The UID of the message stored with ``delivery_id``, if it is still here."""

    @abc.abstractmethod
    def copy(self, uids: Iterable[int], target: Mailbox) -> tuple[list[int], list[int]]:
        """COPY into ``target`` keeping flags: (source UIDs, new UIDs), pairwise (COPYUID)."""

    @abc.abstractmethod
    def move(self, uids: Iterable[int], target: Mailbox) -> tuple[list[int], list[int]]:
        """MOVE (RFC 6851): copy, then expunge the sources whatever their flags."""

    @abc.abstractmethod
    def changes_since(self, modseq: int) -> Changes:
        """Records with MODSEQ above ``modseq`` and UIDs expunged after it (QRESYNC)."""

    @abc.abstractmethod
    def watch(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(highestmodseq)`` after each change seen in this process.

        For IDLE: changes made in this process call back at once; changes made by other
        processes are seen by whoever polls `highestmodseq` next. Returns a function that
        stops the watch. Callbacks run in the changing thread: they should only wake
        something up.
        """


class UserStore(abc.ABC):
    """One user's mailboxes. Another user's mailboxes are not reachable from here."""

    @property
    @abc.abstractmethod
    def user(self) -> str:
        """The user's name."""

    @abc.abstractmethod
    def list(self) -> list[MailboxInfo]:
        """Every mailbox, INBOX first, the others sorted by name."""

    @abc.abstractmethod
    def create(self, name: str, special_use: str | None = None) -> None:
        """CREATE (superior names too, RFC 3501 6.3.3); `MailboxExists` if present."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """DELETE; refuses INBOX and mailboxes with inferiors (`MailboxHasChildren`)."""

    @abc.abstractmethod
    def rename(self, old: str, new: str) -> None:
        """RENAME with inferiors; renaming INBOX moves its messages (RFC 3501 6.3.5)."""

    @abc.abstractmethod
    def subscribe(self, name: str) -> None:
        """SUBSCRIBE (the name need not exist)."""

    @abc.abstractmethod
    def unsubscribe(self, name: str) -> None:
        """UNSUBSCRIBE."""

    @abc.abstractmethod
    def subscriptions(self) -> builtins.list[str]:
        """The subscribed names, sorted."""

    @abc.abstractmethod
    def mailbox(self, name: str) -> Mailbox:
        """A handle on an existing mailbox; `MailboxNotFound` otherwise."""

    @abc.abstractmethod
    def quota_usage(self) -> QuotaUsage:
        """Storage used by all mailboxes, and the limit."""

    def quota_limit(self) -> int | None:
        """The storage limit alone: cheaper than `quota_usage` where a store can say."""
        return self.quota_usage().limit

    def deliver(
        self,
        message: bytes | BinaryIO,
        mailbox: str = "INBOX",
        flags: Iterable[str] = (),
        internal_date: datetime.datetime | None = None,
        *,
        delivery_id: str | None = None,
        redelivery: bool = False,
    ) -> int:
        """Deliver (LMTP): durably stored when it returns; the new UID.

        ``delivery_id`` names this copy (the MTA's queue id and recipient); with
        ``redelivery`` (the MTA is not sure an earlier attempt failed: it restarted
        meanwhile) a copy already stored under that id is not stored again: its UID is
        returned. So a crash between our fsync and the MTA's own record of the
        delivery never makes a duplicate.

        Raises `QuotaExceeded` before writing anything when the quota would be passed.
        """
        box = self.mailbox(mailbox)
        if redelivery and delivery_id is not None:
            uid = box.delivered(delivery_id)
            if uid is not None:
                return uid
        return box.append(message, flags, internal_date, delivery_id=delivery_id)


class MailStore(abc.ABC):
    """Every user's mail."""

    @abc.abstractmethod
    def user(self, name: str) -> UserStore:
        """The user's store, created with INBOX and the SPECIAL-USE folders if new."""

    @abc.abstractmethod
    def users(self) -> Sequence[str]:
        """The users that have a store."""
