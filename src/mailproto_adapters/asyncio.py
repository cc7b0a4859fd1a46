"""asyncio flavour: clients over the memory-BIO asyncio transport, and ``serve()``.

- `AsyncSMTPClient` (SMTP and LMTP), `AsyncPOP3Client`, `AsyncIMAPClient`.
- ``await serve(session, ...)``: a task per connection running a session flow; returns
  the started `AsyncioServer` (``.port``, ``await .close(grace)``, an async context
  manager).
"""

from __future__ import annotations

import ssl

from . import _asyncio
from ._imap_clients import AsyncIMAPClientBase
from ._ops.smtp_client import SendResult
from ._pop3_clients import AsyncPOP3ClientBase
from ._serve_async import AsyncioServer
from ._serving import ServeConfig, SessionFactory
from ._smtp_clients import AsyncSMTPClientBase
from ._transport import AsyncTransport

__all__ = [
    "AsyncIMAPClient",
    "AsyncPOP3Client",
    "AsyncSMTPClient",
    "AsyncioServer",
    "SendResult",
    "ServeConfig",
    "serve",
]


class AsyncSMTPClient(AsyncSMTPClientBase):
    """An SMTP (or LMTP) client on asyncio; ``async with AsyncSMTPClient(host) as smtp:``."""

    async def _open(self) -> AsyncTransport:
        return await _asyncio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)


async def serve(
    session: SessionFactory,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    max_connections: int = 512,
    max_per_ip: int = 32,
    busy: bytes = b"",
    grace: float = 10.0,
    name: str = "server",
) -> AsyncioServer:
    """Listen on host:port and run ``session(info)`` for each connection (see ServeConfig)."""
    config = ServeConfig(
        host=host,
        port=port,
        tls=tls,
        max_connections=max_connections,
        max_per_ip=max_per_ip,
        busy=busy,
        grace=grace,
        name=name,
    )
    return await AsyncioServer.start(session, config)


class AsyncPOP3Client(AsyncPOP3ClientBase):
    """A POP3 client on asyncio; ``async with AsyncPOP3Client(host) as pop:``."""

    async def _open(self) -> AsyncTransport:
        return await _asyncio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)


class AsyncIMAPClient(AsyncIMAPClientBase):
    """An IMAP client on asyncio; ``async with AsyncIMAPClient(host, tls=True) as imap:``."""

    async def _open(self) -> AsyncTransport:
        return await _asyncio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
