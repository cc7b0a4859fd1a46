"""The I/O requests a session makes: the only vocabulary between logic and transports.

Session logic (an SMTP client sending a message, an IMAP server session) is written once,
as a generator that *yields* these effects and receives their results; a driver
(`_driver.drive` for blocking sockets, `_driver.drive_async` for asyncio, anyio and trio)
performs them on a transport. So the logic never knows which kind of I/O runs it, and
each flavour costs one small transport, not a second copy of every flow.

- `Receive` -> bytes (``b""`` when the peer closed). ``timeout`` in seconds or None.
- `Send` -> None, once all the bytes are handed to the kernel (or the TLS layer).
- `StartTLS` -> `TLSInfo`: the transport is upgraded in place (its buffer was empty:
  the core refuses plaintext pipelined after STARTTLS before this effect is made).
- `Close` -> None; never raises.
- `Call` -> whatever ``hook(*args)`` returns; the async driver awaits an awaitable
  result, so application hooks may be plain functions or coroutines.
- `Info` -> the transport's `TransportInfo` (peer address, TLS).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Generator
from typing import Any, TypeAlias, TypeVar

import attrs

__all__ = [
    "Call",
    "Close",
    "Effect",
    "Info",
    "Op",
    "Receive",
    "Send",
    "StartTLS",
    "TLSInfo",
    "TransportInfo",
]

T = TypeVar("T")


@attrs.frozen(slots=True)
class Receive:
    """Read what the peer sent: at most ``max_bytes``, waiting at most ``timeout`` s."""

    timeout: float | None = None
    max_bytes: int = 65536


@attrs.frozen(slots=True)
class Send:
    """Write all of ``data``, waiting at most ``timeout`` seconds for the peer to take it."""

    data: bytes
    timeout: float | None = None


@attrs.frozen(slots=True)
class StartTLS:
    """Upgrade the connection to TLS (STARTTLS, STLS); ``hostname`` is checked if given."""

    context: ssl.SSLContext
    server_side: bool = False
    hostname: str | None = None
    timeout: float | None = None


@attrs.frozen(slots=True)
class Close:
    """Close the connection (after a TLS close_notify where there is TLS)."""


@attrs.frozen(slots=True)
class Call:
    """Call an application hook; its result (awaited if awaitable) is the effect's result."""

    hook: Callable[..., Any]
    args: tuple[Any, ...] = ()


@attrs.frozen(slots=True)
class Info:
    """Ask for the transport's `TransportInfo`."""


Effect: TypeAlias = Receive | Send | StartTLS | Close | Call | Info
# A session flow: yields effects, gets their results back, returns T.
Op: TypeAlias = Generator[Effect, Any, T]


@attrs.frozen(slots=True, kw_only=True)
class TLSInfo:
    """What was negotiated: for logs, ``Received:`` headers and policy."""

    version: str | None = None
    cipher: str | None = None
    peer_certificate: dict[str, Any] | None = None


@attrs.frozen(slots=True, kw_only=True)
class TransportInfo:
    """Who is on the other end, and whether the connection is encrypted."""

    peer: tuple[str, int] | None = None
    local: tuple[str, int] | None = None
    tls: TLSInfo | None = None


def tls_info(obj: ssl.SSLSocket | ssl.SSLObject) -> TLSInfo:
    """The `TLSInfo` of an established TLS connection (socket or memory-BIO object)."""
    cipher = obj.cipher()
    try:
        certificate = obj.getpeercert() or None
    except ValueError:  # the handshake failed or never finished (a session's last log line)
        certificate = None
    return TLSInfo(
        version=obj.version(),
        cipher=cipher[0] if cipher else None,
        peer_certificate=certificate,
    )


def peer_address(address: Any) -> tuple[str, int] | None:
    """A socket address as (host, port), IPv6 scope and flow info dropped."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None
