"""`SMTPClient` and the async `AsyncSMTPClientBase`: one-line delegations to the flows.

Every method builds a flow of `_ops.smtp_client.SMTPClientSession` and runs it with the
flavour's driver; nothing of SMTP is written here. The asyncio and anyio modules pick
their transport by subclassing `AsyncSMTPClientBase` with one ``_open`` method.
"""

from __future__ import annotations

import email.message
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

from mailproto import LocalProtocolError
from mailproto import smtp as s

from . import _socket
from ._driver import drive, drive_async
from ._effects import Op, TLSInfo
from ._ops.smtp_client import SendResult, SMTPClientSession
from ._transport import AsyncTransport, Transport

__all__ = ["AsyncSMTPClientBase", "SMTPClient", "SendResult"]

T = TypeVar("T")


def _context(value: ssl.SSLContext | bool | None) -> ssl.SSLContext | None:
    if value is True:
        return ssl.create_default_context()
    return value or None


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
        self._tls = _context(tls)
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

    def _after_ehlo(self) -> ssl.SSLContext | None:
        """The context to STARTTLS with now, if any."""
        if self._tls is not None or self.session.tls is not None:
            return None
        if self._starttls is None:
            if "STARTTLS" in self.session.extensions:
                return ssl.create_default_context()
            return None
        return _context(self._starttls)


class SMTPClient(_SMTPClientCommon):
    """A blocking SMTP (or LMTP) client; use it as a context manager.

    ``with SMTPClient("mail.example", 587) as smtp: smtp.login(...); smtp.send_message(m)``
    connects, reads the greeting, says EHLO and upgrades with STARTTLS when offered.
    """

    _transport: Transport | None = None

    def _run(self, op: Op[T]) -> T:
        if self._transport is None:
            raise LocalProtocolError("not connected: use connect() or a with block")
        return drive(op, self._transport)

    def connect(self) -> s.Reply:
        """Connect, read the greeting, EHLO, and STARTTLS as configured."""
        self._transport = _socket.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
        try:
            greeting = self._run(self.session.greet())
            self._run(self.session.ehlo())
            context = self._after_ehlo()
            if context is not None:
                self._run(self.session.starttls(context))
        except BaseException:
            self.close()
            raise
        return greeting

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
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> SMTPClient:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            if kind is None:
                self.quit()
            else:
                self.close()


class AsyncSMTPClientBase(_SMTPClientCommon):
    """The async SMTP client; `mailproto_adapters.asyncio` and `.anyio` give it a transport."""

    _transport: AsyncTransport | None = None

    async def _open(self) -> AsyncTransport:
        raise NotImplementedError

    async def _run(self, op: Op[T]) -> T:
        if self._transport is None:
            raise LocalProtocolError("not connected: use connect() or an async with block")
        return await drive_async(op, self._transport)

    async def connect(self) -> s.Reply:
        """Connect, read the greeting, EHLO, and STARTTLS as configured."""
        self._transport = await self._open()
        try:
            greeting = await self._run(self.session.greet())
            await self._run(self.session.ehlo())
            context = self._after_ehlo()
            if context is not None:
                await self._run(self.session.starttls(context))
        except BaseException:
            await self.aclose()
            raise
        return greeting

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
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def __aenter__(self) -> Any:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            if kind is None:
                await self.quit()
            else:
                await self.aclose()
