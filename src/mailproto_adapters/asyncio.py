"""asyncio flavour: `AsyncSMTPClient` over the memory-BIO asyncio transport."""

from __future__ import annotations

from . import _asyncio
from ._ops.smtp_client import SendResult
from ._smtp_clients import AsyncSMTPClientBase
from ._transport import AsyncTransport

__all__ = ["AsyncSMTPClient", "SendResult"]


class AsyncSMTPClient(AsyncSMTPClientBase):
    """An SMTP (or LMTP) client on asyncio; ``async with AsyncSMTPClient(host) as smtp:``."""

    async def _open(self) -> AsyncTransport:
        return await _asyncio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
