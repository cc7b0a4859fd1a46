"""Idle delivery connections kept for the next batch to the same place.

As Postfix's connection cache (``smtp_connection_cache_on_demand``): when a delivery
attempt ends with its connection in good order, the connection is kept instead of closed
(no QUIT), and the next attempt to the same hop and address takes it: no TCP
handshake, greeting, EHLO/LHLO, TLS or AUTH again. Under load the runner makes many
small attempts (each starts as soon as a worker is free), so this is most of their cost.

An idle connection is kept at most ``idle`` seconds (Postfix: 2 s) and checked with RSET
when taken; one the server closed meanwhile fails that check and is dropped for a new
connection, which the attempt's results never see. ``sweep()`` (the runner calls it at
least once a second) ends the expired ones with QUIT.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable

from mailproto import smtp as s

from .._driver import drive
from .._effects import Op, Receive, Send
from .._ops.smtp_client import SMTPClientSession
from .._socket import SocketTransport

__all__ = ["ConnectionCache"]

_QUIT_TIMEOUT = 2.0


class ConnectionCache:
    """Idle connections by key (which server, how reached); thread-safe."""

    def __init__(
        self, *, idle: float = 2.0, size: int = 20, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle = idle
        self.size = size
        self.clock = clock
        self._lock = threading.Lock()
        # Oldest first: (key, since, transport, session).
        self._idle: list[tuple[Hashable, float, SocketTransport, SMTPClientSession]] = []
        self.reused = 0  # connections taken again (for tests and logs)

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle)

    def take(self, key: Hashable) -> tuple[SocketTransport, SMTPClientSession] | None:
        """The most recently kept connection for ``key`` still within its time, or None."""
        expired = self._expired()
        try:
            with self._lock:
                for i in range(len(self._idle) - 1, -1, -1):
                    if self._idle[i][0] == key:
                        _, _, transport, session = self._idle.pop(i)
                        self.reused += 1
                        return transport, session
            return None
        finally:
            _quit_all(expired)

    def put(self, key: Hashable, transport: SocketTransport, session: SMTPClientSession) -> None:
        """Keep a connection whose last transaction is complete (no QUIT sent)."""
        over: list[tuple[SocketTransport, SMTPClientSession]] = []
        with self._lock:
            self._idle.append((key, self.clock(), transport, session))
            while len(self._idle) > self.size:
                _, _, old, old_session = self._idle.pop(0)
                over.append((old, old_session))
        _quit_all(over)

    def sweep(self) -> None:
        """End the connections idle for longer than ``idle``."""
        _quit_all(self._expired())

    def close(self) -> None:
        """End every idle connection."""
        with self._lock:
            kept, self._idle = self._idle, []
        _quit_all([(transport, session) for _, _, transport, session in kept])

    def _expired(self) -> list[tuple[SocketTransport, SMTPClientSession]]:
        limit = self.clock() - self.idle
        with self._lock:
            old = [x for x in self._idle if x[1] < limit]
            if not old:
                return []
            self._idle = [x for x in self._idle if x[1] >= limit]
        return [(transport, session) for _, _, transport, session in old]


def _quit_all(connections: list[tuple[SocketTransport, SMTPClientSession]]) -> None:
    for transport, session in connections:
        with contextlib.suppress(Exception):  # it is going away whatever it answers
            drive(_quit(session), transport)
        transport.close()


def _quit(session: SMTPClientSession) -> Op[None]:
    """QUIT and wait briefly for the 221 (RFC 5321 4.1.1.10: the server closes)."""
    yield Send(session.conn.send(s.Quit()), timeout=_QUIT_TIMEOUT)
    yield Receive(timeout=_QUIT_TIMEOUT)
