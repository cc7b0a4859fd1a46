"""Webmail sessions: who is logged in, their CSRF token and their IMAP connection.

A session is a random id (256 bits) in an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` over TLS; RFC 6265 and its SameSite draft). The IMAP password lives only
in this process's memory, in the `Session`, for the session's lifetime: it is never
written to a cookie, a URL, a page or a log, and is dropped at logout or expiry. A
session ends after ``idle_timeout`` without a request and ``max_age`` after login,
whichever comes first.

Each session owns one IMAP connection, opened at login, used under a lock (one command
at a time), and opened again (LOGIN with the kept password) when the server dropped it.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs

from mailproto import ProtocolError

from ..._transport import TransportError
from ...anyio import AsyncIMAPClient
from ...errors import ConnectionLost, MailError

__all__ = ["IMAPEndpoint", "Session", "SessionStore"]

COOKIE = "mailproto_session"


@attrs.frozen(kw_only=True)
class IMAPEndpoint:
    """Where the MDA's IMAP server is and how to reach it."""

    host: str = "127.0.0.1"
    port: int = 143
    tls: ssl.SSLContext | bool = False
    starttls: ssl.SSLContext | bool | None = False
    timeout: float = 30.0

    def client(self) -> AsyncIMAPClient:
        return AsyncIMAPClient(
            self.host, self.port, tls=self.tls, starttls=self.starttls, timeout=self.timeout
        )


@attrs.define(kw_only=True, eq=False)
class Session:
    """One logged-in user."""

    id: str
    user: str
    password: str = attrs.field(repr=False)
    csrf: str
    created: float
    last_seen: float
    endpoint: IMAPEndpoint
    client: AsyncIMAPClient | None = attrs.field(default=None, repr=False)
    lock: anyio.Lock = attrs.field(factory=anyio.Lock, repr=False)
    folders: dict[str, str] = attrs.field(factory=dict)  # special use -> folder name
    # Unread counts by folder and when they were asked (STATUS costs the server a scan
    # of the folder; the sidebar can be a few seconds old, the event stream keeps the
    # current folder's count live).
    unseen: dict[str, int] = attrs.field(factory=dict)
    unseen_at: float = 0.0
    closed: bool = False

    def check_csrf(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), token.encode("utf-8", "replace"))

    async def login(self) -> AsyncIMAPClient:
        """A fresh IMAP connection, logged in (raises `AuthenticationFailed`)."""
        client = self.endpoint.client()
        await client.connect()
        try:
            await client.login(self.user, self.password)
        except BaseException:
            await client.aclose()
            raise
        return client

    @contextlib.asynccontextmanager
    async def imap(self) -> AsyncIterator[AsyncIMAPClient]:
        """The session's IMAP connection, for this task alone; reconnects if dropped."""
        async with self.lock:
            if self.closed:
                raise ConnectionLost("the session has ended")
            if self.client is None or self.client._transport is None:
                self.client = await self.login()
            try:
                yield self.client
            except (TransportError, ConnectionLost, OSError, ProtocolError):
                await self._drop()
                raise
            except Exception:
                raise  # a refusal (tagged NO) or our own check between commands: in step
            except BaseException:
                # Cancelled in the middle of a command: the rest of its answer would be
                # read as the next one's, so this connection is done for.
                with anyio.CancelScope(shield=True):
                    await self._drop()
                raise

    async def run(self, action: Callable[[AsyncIMAPClient], Any], *, retry: bool = True) -> Any:
        """``await action(client)`` under the lock; once again on a fresh connection if
        the old one had died (a server restart, an idle timeout) and ``retry`` (not for
        APPEND: the server may have stored the message before the connection broke)."""
        for attempt in (1, 2):
            try:
                async with self.imap() as client:
                    return await action(client)
            except (TransportError, ConnectionLost, OSError, ProtocolError):
                if attempt == 2 or self.closed or not retry:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    async def end(self) -> None:
        """Log out of IMAP and forget the password."""
        self.closed = True
        self.password = ""
        client, self.client = self.client, None
        if client is not None:
            with anyio.move_on_after(5, shield=True):
                with contextlib.suppress(MailError, TransportError, OSError):
                    await client.logout()
            await client.aclose()


class SessionStore:
    """The sessions of one webmail process, in memory, bounded."""

    def __init__(
        self,
        *,
        idle_timeout: float = 30 * 60.0,
        max_age: float = 12 * 3600.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user: str, password: str, endpoint: IMAPEndpoint) -> Session:
        now = self.clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            password=password,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            endpoint=endpoint,
        )
        self._sessions[session.id] = session
        return session

    def expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_timeout or now - session.created > self.max_age

    def get(self, session_id: str | None) -> tuple[Session | None, list[Session]]:
        """The live session for a cookie value (touched), and sessions to end now."""
        now = self.clock()
        ended = self.sweep(now) if len(self._sessions) > 64 or session_id else []
        if not session_id:
            return None, ended
        session = self._sessions.get(session_id)
        if session is None:
            return None, ended
        session.last_seen = now
        return session, ended

    def sweep(self, now: float) -> list[Session]:
        """Remove expired sessions (and the oldest beyond ``max_sessions``)."""
        ended = [s for s in self._sessions.values() if self.expired(s, now)]
        overflow = len(self._sessions) - len(ended) - self.max_sessions
        if overflow > 0:
            alive = sorted(
                (s for s in self._sessions.values() if not self.expired(s, now)),
                key=lambda s: s.last_seen,
            )
            ended += alive[:overflow]
        for session in ended:
            self._sessions.pop(session.id, None)
        return ended

    def remove(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def all(self) -> list[Session]:
        return list(self._sessions.values())
