"""`IMAPClient` and the async `AsyncIMAPClientBase`: one-line delegations to the flows.

Every method builds a flow of `_ops.imap_client.IMAPClientSession` and runs it with the
flavour's driver; nothing of IMAP is written here. The asyncio and anyio modules pick
their transport by subclassing `AsyncIMAPClientBase` with one ``_open`` method.

Names follow imaplib and imapclient: ``IMAPClient(host, tls=True)`` as a context
manager, ``login``, ``select``, ``search``, ``fetch``, ``store``, ``append``, ``idle``,
``logout``. ``close()`` is IMAP CLOSE (as in imaplib); ``shutdown()`` drops the
connection without LOGOUT (as in imapclient).
"""

from __future__ import annotations

import builtins
import datetime
import ssl
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

from mailproto import imap
from mailproto.imap import responses as r

from . import _socket
from ._client_base import AsyncClient, SyncClient
from ._effects import TLSInfo
from ._ops.imap_client import (
    IDLE_RENEW,
    Criteria,
    FetchResult,
    Ids,
    IMAPClientSession,
    Items,
    MailboxState,
    ResumeResult,
)
from ._ops.tls_choice import tls_context
from ._transport import TransportError

__all__ = [
    "AsyncIMAPClientBase",
    "AsyncIdle",
    "FetchResult",
    "IMAPClient",
    "Idle",
    "MailboxState",
    "ResumeResult",
]

T = TypeVar("T")


class _IMAPClientCommon:
    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: ssl.SSLContext | bool = False,
        starttls: ssl.SSLContext | bool | None = None,
        timeout: float | None = 60.0,
        config: imap.ClientConfig | None = None,
    ) -> None:
        """``port``: 993 with ``tls``, else 143. ``tls``: implicit TLS, True for the
        default context. ``starttls``: True or a context to require it, False never,
        None (the default) when the server offers it. ``timeout``: seconds to wait for
        any answer (IDLE aside)."""
        self._tls = tls_context(tls)
        self.host = host
        self.port = port if port is not None else (993 if self._tls is not None else 143)
        self.timeout = timeout
        self._starttls = starttls
        self.session = IMAPClientSession(host=host, timeout=timeout, config=config)

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities, upper case (as last announced)."""
        return self.session.capabilities

    @property
    def mailbox(self) -> MailboxState | None:
        """The selected mailbox's state, kept up to date by every response; None if none."""
        return self.session.mailbox

    @property
    def tls_info(self) -> TLSInfo | None:
        return self.session.tls

    @property
    def greeting(self) -> r.Untagged | None:
        return self.session.greeting


class IMAPClient(_IMAPClientCommon, SyncClient):
    """A blocking IMAP client; use it as a context manager.

    ``with IMAPClient("imap.example", tls=True) as imap: imap.login(user, password)``
    connects, reads the greeting, asks CAPABILITY if the greeting named none, and
    upgrades with STARTTLS as configured; a clean exit says LOGOUT.
    """

    def connect(self) -> r.Untagged:
        """Connect, read the greeting (and CAPABILITY), STARTTLS as configured."""
        transport = _socket.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
        return self._start(transport, self.session.open(self._starttls))

    def starttls(self, context: ssl.SSLContext | None = None) -> TLSInfo:
        return self._run(self.session.starttls(context or ssl.create_default_context()))

    def capability(self) -> frozenset[str]:
        """Ask CAPABILITY again (the `capabilities` property holds the last answer)."""
        return self._run(self.session.capability())

    def login(self, user: str, password: str) -> r.Tagged:
        """LOGIN (AUTHENTICATE when LOGINDISABLED); `AuthenticationFailed` on NO."""
        return self._run(self.session.login(user, password))

    def authenticate(self, user: str, password: str, mechanism: str | None = None) -> r.Tagged:
        """AUTHENTICATE: ``mechanism`` or the best offered, SCRAM-SHA-256 first."""
        return self._run(self.session.authenticate(user, password, mechanism))

    def enable(self, *capabilities: str) -> frozenset[str]:
        return self._run(self.session.enable(*capabilities))

    def id(self, **fields: str | None) -> dict[str, str | None] | None:
        """ID (RFC 2971): ``id(name="myapp", version="1")`` -> the server's fields."""
        return self._run(self.session.id(fields))

    def namespace(self) -> r.Namespace | None:
        return self._run(self.session.namespace())

    def noop(self) -> builtins.list[Any]:
        """NOOP: the untagged updates it brought (also applied to `mailbox`)."""
        return self._run(self.session.noop())

    def list(self, reference: str = "", pattern: str = "*") -> builtins.list[r.List]:
        return self._run(self.session.list(reference, pattern))

    def lsub(self, reference: str = "", pattern: str = "*") -> builtins.list[r.Lsub]:
        return self._run(self.session.lsub(reference, pattern))

    def status(
        self, mailbox: str, items: Sequence[str] = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
    ) -> dict[str, int | str]:
        """STATUS: ``{"MESSAGES": 3, ...}``."""
        return self._run(self.session.status(mailbox, items))

    def create(self, mailbox: str) -> None:
        self._run(self.session.create(mailbox))

    def delete(self, mailbox: str) -> None:
        self._run(self.session.delete(mailbox))

    def subscribe(self, mailbox: str) -> None:
        self._run(self.session.subscribe(mailbox))

    def select(self, mailbox: str = "INBOX", readonly: bool = False) -> MailboxState:
        """SELECT (EXAMINE with ``readonly``): the live `MailboxState`."""
        return self._run(self.session.select(mailbox, readonly=readonly))

    def examine(self, mailbox: str = "INBOX") -> MailboxState:
        return self._run(self.session.select(mailbox, readonly=True))

    def close(self) -> None:
        """IMAP CLOSE: expunge \\Deleted messages and leave the mailbox (imaplib's close)."""
        self._run(self.session.close())

    def unselect(self) -> None:
        self._run(self.session.unselect())

    def search(
        self, criteria: Criteria = "ALL", *, uid: bool = True, charset: str | None = None
    ) -> builtins.list[int]:
        """``search("UNSEEN")`` or typed search keys: the UIDs (sequence numbers if not ``uid``)."""
        return self._run(self.session.search(criteria, uid=uid, charset=charset))

    def fetch(
        self, ids: Ids, items: Items, *, uid: bool = True, changedsince: int | None = None
    ) -> dict[int, FetchResult]:
        """``fetch([1, 2], ["FLAGS", "ENVELOPE"])`` -> ``{uid: FetchResult}`` (typed values)."""
        return self._run(self.session.fetch(ids, items, uid=uid, changedsince=changedsince))

    def fetch_stream(self, uid: int, section: str, out: Any, *, use_uid: bool = True) -> int:
        """Write BODY[section] into the binary file-like ``out`` as it arrives."""
        return self._run(self.session.fetch_stream(uid, section, out, use_uid=use_uid))

    def store(
        self,
        ids: Ids,
        flags: Iterable[str],
        action: Literal["add", "remove", "set"] = "add",
        *,
        uid: bool = True,
        silent: bool = False,
    ) -> dict[int, tuple[str, ...]]:
        """STORE +FLAGS / -FLAGS / FLAGS: the new flags per message."""
        return self._run(self.session.store(ids, flags, action, uid=uid, silent=silent))

    def copy(self, ids: Ids, mailbox: str, *, uid: bool = True) -> r.CopyUid | None:
        return self._run(self.session.copy(ids, mailbox, uid=uid))

    def move(self, ids: Ids, mailbox: str, *, uid: bool = True) -> r.CopyUid | None:
        """MOVE, or COPY + STORE \\Deleted + UID EXPUNGE when MOVE is not offered."""
        return self._run(self.session.move(ids, mailbox, uid=uid))

    def expunge(self, uids: Ids | None = None) -> builtins.list[int]:
        """EXPUNGE, or UID EXPUNGE of ``uids`` (only those)."""
        return self._run(self.session.expunge(uids))

    def append(
        self,
        mailbox: str,
        message: bytes | Any,
        flags: Iterable[str] = (),
        date: datetime.datetime | None = None,
        *,
        size: int | None = None,
    ) -> r.AppendUid | None:
        """APPEND a message (bytes, or a binary file-like streamed in chunks; ``size``
        when it cannot seek): APPENDUID with UIDPLUS."""
        return self._run(self.session.append(mailbox, message, flags, date, size=size))

    def resume(self, mailbox: str, uidvalidity: int, highestmodseq: int | None) -> ResumeResult:
        """Select ``mailbox`` and learn only what changed (QRESYNC, CONDSTORE, flags)."""
        return self._run(self.session.resume(mailbox, uidvalidity, highestmodseq))

    def idle(self, *, timeout: float | None = None, renew: float = IDLE_RENEW) -> Idle:
        """IDLE as an iterator of untagged updates::

            with client.idle() as updates:
                for update in updates:  # responses.Exists, Expunge, Fetch...
                    break               # leaving the block sends DONE

        ``timeout``: the iteration ends after that many seconds without an update.
        ``renew``: IDLE is restarted that often (RFC 2177 asks for under 29 minutes).
        """
        return Idle(self, timeout=timeout, renew=renew)

    def logout(self) -> None:
        """LOGOUT and close the connection."""
        self._run(self.session.logout())
        self._transport = None

    def shutdown(self) -> None:
        """Close the connection without LOGOUT."""
        self._drop()

    _end = logout


class Idle:
    """The updates of one IDLE (see `IMAPClient.idle`); DONE when the block is left."""

    def __init__(self, client: IMAPClient, *, timeout: float | None, renew: float) -> None:
        self._client = client
        self._timeout = timeout
        self._renew = renew
        self._started = False

    def __enter__(self) -> Idle:
        self._client._run(self._client.session.idle_start())
        self._started = True
        return self

    def __iter__(self) -> Idle:
        if not self._started:
            self.__enter__()
        return self

    def __next__(self) -> Any:
        update = self._client._run(
            self._client.session.idle_next(renew=self._renew, timeout=self._timeout)
        )
        if update is None:
            raise StopIteration
        return update

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started and self._client._transport is not None:
            self._started = False
            if kind is None or not isinstance(exc, TransportError | OSError):
                self._client._run(self._client.session.idle_end())


class AsyncIMAPClientBase(_IMAPClientCommon, AsyncClient):
    """The async IMAP client; `mailproto_adapters.asyncio` and `.anyio` give it a transport.

    The same methods as `IMAPClient`, awaited; ``async with client.idle() as updates:
    async for update in updates: ...``. ``aclose()`` drops the connection.
    """

    async def connect(self) -> r.Untagged:
        """Connect, read the greeting (and CAPABILITY), STARTTLS as configured."""
        return await self._start(self.session.open(self._starttls))

    async def starttls(self, context: ssl.SSLContext | None = None) -> TLSInfo:
        return await self._run(self.session.starttls(context or ssl.create_default_context()))

    async def capability(self) -> frozenset[str]:
        return await self._run(self.session.capability())

    async def login(self, user: str, password: str) -> r.Tagged:
        return await self._run(self.session.login(user, password))

    async def authenticate(
        self, user: str, password: str, mechanism: str | None = None
    ) -> r.Tagged:
        return await self._run(self.session.authenticate(user, password, mechanism))

    async def enable(self, *capabilities: str) -> frozenset[str]:
        return await self._run(self.session.enable(*capabilities))

    async def id(self, **fields: str | None) -> dict[str, str | None] | None:
        return await self._run(self.session.id(fields))

    async def namespace(self) -> r.Namespace | None:
        return await self._run(self.session.namespace())

    async def noop(self) -> builtins.list[Any]:
        return await self._run(self.session.noop())

    async def list(self, reference: str = "", pattern: str = "*") -> builtins.list[r.List]:
        return await self._run(self.session.list(reference, pattern))

    async def lsub(self, reference: str = "", pattern: str = "*") -> builtins.list[r.Lsub]:
        return await self._run(self.session.lsub(reference, pattern))

    async def status(
        self, mailbox: str, items: Sequence[str] = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
    ) -> dict[str, int | str]:
        return await self._run(self.session.status(mailbox, items))

    async def create(self, mailbox: str) -> None:
        await self._run(self.session.create(mailbox))

    async def delete(self, mailbox: str) -> None:
        await self._run(self.session.delete(mailbox))

    async def subscribe(self, mailbox: str) -> None:
        await self._run(self.session.subscribe(mailbox))

    async def select(self, mailbox: str = "INBOX", readonly: bool = False) -> MailboxState:
        return await self._run(self.session.select(mailbox, readonly=readonly))

    async def examine(self, mailbox: str = "INBOX") -> MailboxState:
        return await self._run(self.session.select(mailbox, readonly=True))

    async def close(self) -> None:
        """IMAP CLOSE (imaplib's close); `aclose` drops the connection."""
        await self._run(self.session.close())

    async def unselect(self) -> None:
        await self._run(self.session.unselect())

    async def search(
        self, criteria: Criteria = "ALL", *, uid: bool = True, charset: str | None = None
    ) -> builtins.list[int]:
        return await self._run(self.session.search(criteria, uid=uid, charset=charset))

    async def fetch(
        self, ids: Ids, items: Items, *, uid: bool = True, changedsince: int | None = None
    ) -> dict[int, FetchResult]:
        return await self._run(self.session.fetch(ids, items, uid=uid, changedsince=changedsince))

    async def fetch_stream(self, uid: int, section: str, out: Any, *, use_uid: bool = True) -> int:
        return await self._run(self.session.fetch_stream(uid, section, out, use_uid=use_uid))

    async def store(
        self,
        ids: Ids,
        flags: Iterable[str],
        action: Literal["add", "remove", "set"] = "add",
        *,
        uid: bool = True,
        silent: bool = False,
    ) -> dict[int, tuple[str, ...]]:
        return await self._run(self.session.store(ids, flags, action, uid=uid, silent=silent))

    async def copy(self, ids: Ids, mailbox: str, *, uid: bool = True) -> r.CopyUid | None:
        return await self._run(self.session.copy(ids, mailbox, uid=uid))

    async def move(self, ids: Ids, mailbox: str, *, uid: bool = True) -> r.CopyUid | None:
        return await self._run(self.session.move(ids, mailbox, uid=uid))

    async def expunge(self, uids: Ids | None = None) -> builtins.list[int]:
        return await self._run(self.session.expunge(uids))

    async def append(
        self,
        mailbox: str,
        message: bytes | Any,
        flags: Iterable[str] = (),
        date: datetime.datetime | None = None,
        *,
        size: int | None = None,
    ) -> r.AppendUid | None:
        return await self._run(self.session.append(mailbox, message, flags, date, size=size))

    async def resume(
        self, mailbox: str, uidvalidity: int, highestmodseq: int | None
    ) -> ResumeResult:
        return await self._run(self.session.resume(mailbox, uidvalidity, highestmodseq))

    def idle(self, *, timeout: float | None = None, renew: float = IDLE_RENEW) -> AsyncIdle:
        """IDLE as an async iterator: ``async with client.idle() as updates:``."""
        return AsyncIdle(self, timeout=timeout, renew=renew)

    async def logout(self) -> None:
        await self._run(self.session.logout())
        self._transport = None

    async def aclose(self) -> None:
        """Close the connection without LOGOUT."""
        await self._drop()

    shutdown = aclose
    _end = logout


class AsyncIdle:
    """The updates of one IDLE, async (see `AsyncIMAPClientBase.idle`)."""

    def __init__(self, client: AsyncIMAPClientBase, *, timeout: float | None, renew: float) -> None:
        self._client = client
        self._timeout = timeout
        self._renew = renew
        self._started = False

    async def __aenter__(self) -> AsyncIdle:
        await self._client._run(self._client.session.idle_start())
        self._started = True
        return self

    def __aiter__(self) -> AsyncIdle:
        return self

    async def __anext__(self) -> Any:
        if not self._started:
            await self.__aenter__()
        update = await self._client._run(
            self._client.session.idle_next(renew=self._renew, timeout=self._timeout)
        )
        if update is None:
            raise StopAsyncIteration
        return update

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started and self._client._transport is not None:
            self._started = False
            if kind is None or not isinstance(exc, TransportError | OSError):
                await self._client._run(self._client.session.idle_end())
