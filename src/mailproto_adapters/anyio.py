"""anyio flavour (asyncio or trio): `AsyncSMTPClient` over anyio streams."""

from __future__ import annotations

from . import _anyio
from ._ops.smtp_client import SendResult
from ._smtp_clients import AsyncSMTPClientBase
from ._transport import AsyncTransport

__all__ = ["AsyncSMTPClient", "SendResult"]


class AsyncSMTPClient(AsyncSMTPClientBase):
    """An SMTP (or LMTP) client on anyio; ``async with AsyncSMTPClient(host) as smtp:``."""

    async def _open(self) -> AsyncTransport:
        return await _anyio.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
