"""anyio flavour (asyncio or trio): clients over anyio streams, and `AnyIOServer`.

- `AsyncSMTPClient` (SMTP and LMTP), `AsyncPOP3Client`, `AsyncIMAPClient`.
- ``server = AnyIOServer(session, ServeConfig(...)); port = await tg.start(server.serve)``
  serves in a task group until ``await server.close(grace)``.
"""

from __future__ import annotations

from . import _anyio
from ._imap_clients import AsyncIMAPClientBase
from ._ops.smtp_client import SendResult
from ._pop3_clients import AsyncPOP3ClientBase
from ._serve_async import AnyIOServer
from ._serving import ServeConfig
from ._smtp_clients import AsyncSMTPClientBase
from ._transport import AsyncTransport

__all__ = [
    "AnyIOServer",
    "AsyncIMAPClient",
    "AsyncPOP3Client",
    "AsyncSMTPClient",
    "SendResult",
    "ServeConfig",
]


class AsyncSMTPClient(AsyncSMTPClientBase):
    """An SMTP (or LMTP) client on anyio; ``async with AsyncSMTPClient(host) as smtp:``."""

    async def _open(self) -> AsyncTransport:
        return await _anyio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)


class AsyncPOP3Client(AsyncPOP3ClientBase):
    """A POP3 client on anyio; ``async with AsyncPOP3Client(host) as pop:``."""

    async def _open(self) -> AsyncTransport:
        return await _anyio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)


class AsyncIMAPClient(AsyncIMAPClientBase):
    """An IMAP client on anyio; ``async with AsyncIMAPClient(host, tls=True) as imap:``."""

    async def _open(self) -> AsyncTransport:
        return await _anyio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
