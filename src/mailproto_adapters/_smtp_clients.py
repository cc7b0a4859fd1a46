"""`SMTPClient` and the async `AsyncSMTPClientBase`: one-line delegations to the flows.

Every method builds a flow of `_ops.smtp_client.SMTPClientSession` and runs it with the
flavour's driver; nothing of SMTP is written here. The asyncio and anyio modules pick
their transport by subclassing `AsyncSMTPClientBase` with one ``_open`` method.
"""

from __future__ import annotations

import email.message
import ssl
from collections.abc import Sequence
from typing import TypeVar

from mailproto import smtp as s

from . import _socket
from ._client_base import AsyncClient, SyncClient
from ._effects import TLSInfo
from ._ops.smtp_client import SendResult, SMTPClientSession
from ._ops.tls_choice import tls_context

__all__ = ["AsyncSMTPClientBase", "SMTPClient", "SendResult"]

T = TypeVar("T")


class _SMTPClientCommon:
    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        tls: ssl.SSLContext | bool = False,
        starttls: ssl.SSLContext | bool | None = None,
        timeout: float | None = 60.0,
        local_hostname: str = "localhost",
        lmtp: bool = False,
    ) -> None:
        """``tls``: implicit TLS (port 465), True for the default context.
        ``starttls``: upgrade after EHLO: True or a context to require it, False never,
        None (the default) when the server offers it.
        """
        self.host = host
        self.port = port
        self.timeout = timeout
        self._tls = tls_context(tls)
        self._starttls = starttls
        self.session = SMTPClientSession(
            host=host,
            local_hostname=local_hostname,
            timeout=timeout,
            lmtp=lmtp,
            tls=self._tls is not None,
        )

    @property
    def extensions(self) -> s.Extensions:
        """What the server offered in its last EHLO reply."""
        return self.session.extensions

    @property
    def tls_info(self) -> TLSInfo | None:
        return self.session.tls


class SMTPClient(_SMTPClientCommon, SyncClient):
    """A blocking SMTP (or LMTP) client; use it as a context manager.

    ``with SMTPClient("mail.example", 587) as smtp: smtp.login(...); smtp.send_message(m)``
    connects, reads the greeting, says EHLO and upgrades with STARTTLS when offered.
    """

    def connect(self) -> s.Reply:
        """Connect, read the greeting, EHLO, and STARTTLS as configured."""
        transport = _socket.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
        return self._start(transport, self.session.open(self._starttls))

    def ehlo(self, name: str | None = None) -> s.Reply:
        return self._run(self.session.ehlo(name))

    def starttls(self, context: ssl.SSLContext | None = None) -> TLSInfo:
        return self._run(self.session.starttls(context or ssl.create_default_context()))

    def login(self, username: str, password: str, *, mechanism: str | None = None) -> s.Reply:
        return self._run(self.session.login(username, password, mechanism=mechanism))

    def send_message(
        self,
        message: email.message.Message | bytes,
        *,
        sender: str | None = None,
        recipients: Sequence[str] | None = None,
    ) -> SendResult:
        return self._run(self.session.send_message(message, sender=sender, recipients=recipients))

    def noop(self) -> s.Reply:
        return self._run(self.session.noop())

    def rset(self) -> s.Reply:
        return self._run(self.session.rset())

    def quit(self) -> s.Reply | None:
        reply = self._run(self.session.quit())
        self._transport = None
        return reply

    def close(self) -> None:
        """Close without QUIT."""
        self._drop()

    _end = quit


class AsyncSMTPClientBase(_SMTPClientCommon, AsyncClient):
    """The async SMTP client; `mailproto_adapters.asyncio` and `.anyio` give it a transport."""

    async def connect(self) -> s.Reply:
        """Connect, read the greeting, EHLO, and STARTTLS as configured."""
        return await self._start(self.session.open(self._starttls))

    async def ehlo(self, name: str | None = None) -> s.Reply:
        return await self._run(self.session.ehlo(name))

    async def starttls(self, context: ssl.SSLContext | None = None) -> TLSInfo:
        return await self._run(self.session.starttls(context or ssl.create_default_context()))

    async def login(self, username: str, password: str, *, mechanism: str | None = None) -> s.Reply:
        return await self._run(self.session.login(username, password, mechanism=mechanism))

    async def send_message(
        self,
        message: email.message.Message | bytes,
        *,
        sender: str | None = None,
        recipients: Sequence[str] | None = None,
    ) -> SendResult:
        return await self._run(
            self.session.send_message(message, sender=sender, recipients=recipients)
        )

    async def noop(self) -> s.Reply:
        return await self._run(self.session.noop())

    async def rset(self) -> s.Reply:
        return await self._run(self.session.rset())

    async def quit(self) -> s.Reply | None:
        reply = await self._run(self.session.quit())
        self._transport = None
        return reply

    async def aclose(self) -> None:
        """Close without QUIT."""
        await self._drop()

    _end = quit
