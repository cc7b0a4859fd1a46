"""What a driver needs from a connection, in two colours, and the errors it may raise.

A transport is a connected byte stream that can be upgraded to TLS in place. Three
implementations exist: blocking sockets (`_socket`), asyncio with a memory-BIO TLS layer
(`_asyncio`) and anyio streams (`_anyio`). They read with plain ``receive`` (no framing:
the core frames), never read ahead of what they hand out (so no byte is lost at
STARTTLS), and translate their library's exceptions into the ones below, which are what a
user can act on.
"""

from __future__ import annotations

import ssl
from typing import Protocol

from ._effects import TLSInfo, TransportInfo

__all__ = [
    "AsyncTransport",
    "ConnectionLost",
    "TLSFailed",
    "Transport",
    "TransportError",
    "TransportTimeout",
]


class TransportError(Exception):
    """The connection failed: refused, reset, or broken."""


class TransportTimeout(TransportError, TimeoutError):
    """The peer did not answer, or did not take our bytes, in time."""


class ConnectionLost(TransportError):
    """The peer closed the connection where the protocol needed more from it."""


class TLSFailed(TransportError):
    """The TLS handshake failed; ``reason`` says why (a certificate check, say)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"TLS failed: {reason}")
        self.reason = reason


class Transport(Protocol):
    """A blocking connection."""

    def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to ``max_bytes`` octets, at least one; b"" when the peer closed."""

    def send_all(self, data: bytes, timeout: float | None) -> None: ...

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None,
        timeout: float | None,
    ) -> TLSInfo: ...

    def close(self) -> None:
        """Close; never raises."""

    def info(self) -> TransportInfo: ...


class AsyncTransport(Protocol):
    """An async connection (asyncio, or anyio on asyncio or trio)."""

    async def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to ``max_bytes`` octets, at least one; b"" when the peer closed."""

    async def send_all(self, data: bytes, timeout: float | None) -> None: ...

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None,
        timeout: float | None,
    ) -> TLSInfo: ...

    async def aclose(self) -> None:
        """Close; never raises, and completes even when the caller is cancelled."""

    def info(self) -> TransportInfo: ...


def tls_reason(exc: BaseException) -> str:
    """A readable reason for a TLS failure (the certificate check's message if any)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__
