"""What every flavour's ``serve()`` shares: settings, admission, and the session log line.

A server runs one *session flow* per connection: ``session(info) -> Op[None]``, a
generator of effects like the client flows, given the peer's `TransportInfo`. The
flavour's ``serve()`` (threads, asyncio, anyio) only accepts connections, applies the
limits here, drives the flow with its driver, closes the connection, and writes one log
line per session. Idle timeouts are the flows' own (``Receive(timeout=...)``); the RFC
defaults are below.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import attrs

from ._effects import Op, TransportInfo
from ._transport import ConnectionLost, TLSFailed, TransportError, TransportTimeout

__all__ = [
    "IDLE_TIMEOUTS",
    "STARTTLS_TIMEOUT",
    "Admission",
    "ServeConfig",
    "ServerBase",
    "SessionFactory",
    "log_session",
    "outcome_of",
]

logger = logging.getLogger("mailproto.server")

# RFC 5321 4.5.3.2.7 (server timeout 5 minutes), RFC 1939 3 (10 minutes),
# RFC 9051 5.4 (at least 30 minutes).
IDLE_TIMEOUTS = {"smtp": 300.0, "lmtp": 300.0, "pop3": 600.0, "imap": 1800.0}
# Seconds a client gets to finish the TLS handshake after STARTTLS (or STLS): one that
# goes quiet must not keep its connection, and its place, for ever.
STARTTLS_TIMEOUT = 30.0

SessionFactory = Callable[[TransportInfo], Op[None]]


@attrs.frozen(slots=True, kw_only=True)
class ServeConfig:
    """Where and how to listen.

    ``tls``: implicit TLS on this listener (SMTPS 465, POP3S 995, IMAPS 993); STARTTLS is
    the session flow's business. ``busy``: bytes sent to a connection refused by a limit
    before it is closed (``421 4.7.0 ...`` for SMTP, ``-ERR ...`` for POP3, ``* BYE ...``
    for IMAP). ``grace``: seconds sessions get to finish at shutdown.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls: ssl.SSLContext | None = None
    max_connections: int = 512
    max_per_ip: int = 32
    busy: bytes = b""
    grace: float = 10.0
    name: str = "server"
    tls_timeout: float = 30.0


class Admission:
    """Counts sessions in total and per peer address; thread-safe."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._per_ip: dict[str, int] = {}
        self.active = 0

    def admit(self, ip: str) -> bool:
        with self._lock:
            if self.active >= self.config.max_connections:
                return False
            if self._per_ip.get(ip, 0) >= self.config.max_per_ip:
                return False
            self.active += 1
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
            return True

    def release(self, ip: str) -> None:
        with self._lock:
            self.active -= 1
            left = self._per_ip[ip] - 1
            if left:
                self._per_ip[ip] = left
            else:
                del self._per_ip[ip]


class ServerBase:
    """What the servers in threads (`BlockingServer`, `EventServer`) share: the session
    count, and ``close()`` at the end of a ``with`` block."""

    _admission: Admission

    @property
    def active(self) -> int:
        """Sessions running now."""
        return self._admission.active

    def close(self, grace: float | None = None) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def outcome_of(exc: BaseException | None) -> str:
    """A short word for how a session ended, for the log line."""
    if exc is None:
        return "ok"
    if isinstance(exc, TransportTimeout):
        return "timeout"
    if isinstance(exc, TLSFailed):
        return f"tls-failed ({exc.reason})"
    if isinstance(exc, ConnectionLost):
        return "lost"
    if isinstance(exc, TransportError):
        return f"error ({exc})"
    return f"crashed ({type(exc).__name__}: {exc})"


def log_session(
    config: ServeConfig, info: TransportInfo, started: float, exc: BaseException | None
) -> None:
    """One line per session: peer, TLS, outcome, duration. Never a password."""
    peer = f"{info.peer[0]}:{info.peer[1]}" if info.peer else "?"
    tls = f"{info.tls.version} {info.tls.cipher}" if info.tls else "plain"
    outcome = outcome_of(exc)
    level = logging.ERROR if outcome.startswith("crashed") else logging.INFO
    extra: dict[str, Any] = {"peer": peer, "outcome": outcome}
    logger.log(
        level,
        "%s session peer=%s tls=%s outcome=%s seconds=%.3f",
        config.name,
        peer,
        tls,
        outcome,
        time.monotonic() - started,
        extra=extra,
        exc_info=exc if level == logging.ERROR else None,
    )
