"""`POP3Client` and the async `AsyncPOP3ClientBase`: one-line delegations to the flows.

Every method builds a flow of `_ops.pop3_client.POP3ClientSession` and runs it with the
flavour's driver; nothing of POP3 is written here. The asyncio and anyio modules pick
their transport by subclassing `AsyncPOP3ClientBase` with one ``_open`` method.

The names are poplib's (``stat``, ``list``, ``uidl``, ``retr``, ``top``, ``dele``,
``rset``, ``noop``, ``quit``, ``capa``, ``stls``, ``apop``), with typed results instead
of raw lines: ``stat()`` -> (count, size), ``list()`` -> [(n, size)], ``uidl()`` ->
[(n, uid)], ``retr(n)`` -> bytes (CRLF line endings, dot-stuffing undone), or the size
when ``out`` (a binary file) is given and the message is streamed into it.

``login(user, password)`` picks the best way the server offers: SASL when CAPA lists
it (SCRAM-SHA-256 first; then PLAIN/LOGIN over TLS, CRAM-MD5), else APOP if the greeting
has a timestamp and ``apop=True``, else USER/PASS. ``mechanism=`` forces one: a SASL
name, "APOP" or "USER".

``retr_many``, ``list_many`` and ``dele_many`` send their commands pipelined when CAPA
offers PIPELINING (RFC 2449), one by one otherwise.
"""

from __future__ import annotations

import builtins
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, overload

from mailproto import pop3 as p

from . import _socket
from ._client_base import AsyncClient, SyncClient
from ._effects import TLSInfo
from ._ops.pop3_client import POP3ClientSession
from ._ops.tls_choice import tls_context

__all__ = ["AsyncPOP3ClientBase", "POP3Client"]

T = TypeVar("T")


class Out(Protocol):
    """Where a streamed body goes: a binary file, or anything with ``write(bytes)``
    (an async file's ``write`` is awaited)."""

    def write(self, data: bytes, /) -> Any: ...


def _write(out: Out | None) -> Callable[[bytes], Any] | None:
    return None if out is None else out.write


class _POP3ClientCommon:
    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: ssl.SSLContext | bool = False,
        starttls: ssl.SSLContext | bool | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        """``port``: 110, or 995 with ``tls``. ``tls``: implicit TLS, True for the
        default context. ``starttls``: STLS after CAPA: True or a context to require
        it, False never, None (the default) when the server offers it.
        """
        self.host = host
        self._tls = tls_context(tls)
        self.port = port if port is not None else (995 if self._tls else 110)
        self.timeout = timeout
        self._starttls = starttls
        self.session = POP3ClientSession(host=host, timeout=timeout, tls=self._tls is not None)

    @property
    def capabilities(self) -> p.Capabilities:
        """What the server listed in its last CAPA answer."""
        return self.session.capabilities

    @property
    def welcome(self) -> str:
        """The greeting's text (poplib's ``getwelcome()``)."""
        greeting = self.session.greeting
        return greeting.text if greeting is not None else ""

    @property
    def login_method(self) -> str | None:
        """How `login` went in: a SASL mechanism's name, "APOP" or "USER"."""
        return self.session.login_method

    @property
    def tls_info(self) -> TLSInfo | None:
        return self.session.tls


class POP3Client(_POP3ClientCommon, SyncClient):
    """A blocking POP3 client; use it as a context manager.

    ``with POP3Client("pop.example", tls=True) as pop: pop.login(user, pw); pop.retr(1)``
    connects, reads the greeting, asks CAPA, upgrades with STLS as configured, and QUITs
    at the end of a block that raised nothing (so the deletions are committed).
    """

    def connect(self) -> p.Ok:
        """Connect, read the greeting, CAPA, and STLS as configured."""
        transport = _socket.connect(self.host, self.port, timeout=self.timeout, tls=self._tls)
        return self._start(transport, self.session.open(self._starttls))

    def capa(self) -> p.Capabilities:
        return self._run(self.session.capa())

    def stls(self, context: ssl.SSLContext | None = None) -> TLSInfo:
        return self._run(self.session.stls(context or ssl.create_default_context()))

    def login(
        self, user: str, password: str, *, mechanism: str | None = None, apop: bool = False
    ) -> p.Ok:
        return self._run(self.session.login(user, password, mechanism=mechanism, apop=apop))

    def apop(self, user: str, password: str) -> p.Ok:
        return self._run(self.session.apop(user, password))

    def user_pass(self, user: str, password: str) -> p.Ok:
        return self._run(self.session.user_pass(user, password))

    def stat(self) -> tuple[int, int]:
        return self._run(self.session.stat())

    @overload
    def list(self, n: None = None) -> builtins.list[tuple[int, int]]: ...
    @overload
    def list(self, n: int) -> tuple[int, int]: ...
    def list(self, n: int | None = None) -> builtins.list[tuple[int, int]] | tuple[int, int]:
        return self._run(self.session.list(n))

    @overload
    def uidl(self, n: None = None) -> builtins.list[tuple[int, str]]: ...
    @overload
    def uidl(self, n: int) -> tuple[int, str]: ...
    def uidl(self, n: int | None = None) -> builtins.list[tuple[int, str]] | tuple[int, str]:
        return self._run(self.session.uidl(n))

    @overload
    def retr(self, n: int, out: None = None) -> bytes: ...
    @overload
    def retr(self, n: int, out: Out) -> int: ...
    def retr(self, n: int, out: Out | None = None) -> bytes | int:
        """The message's bytes; with ``out``, streamed into it and its size returned."""
        return self._run(self.session.retr(n, _write(out)))

    @overload
    def top(self, n: int, lines: int, out: None = None) -> bytes: ...
    @overload
    def top(self, n: int, lines: int, out: Out) -> int: ...
    def top(self, n: int, lines: int, out: Out | None = None) -> bytes | int:
        """The header and ``lines`` lines of the body, as `retr` gives a message."""
        return self._run(self.session.top(n, lines, _write(out)))

    def retr_many(
        self, numbers: Sequence[int], out_factory: Callable[[int], Out | None] | None = None
    ) -> builtins.list[Any]:
        """RETR each message, pipelined: their bytes, or their sizes for the messages
        ``out_factory(n)`` gives a file for. A -ERR for one (its result is b"") does not
        stop the others; the first raises `ServerError` once all are read."""
        writer = None if out_factory is None else (lambda n: _write(out_factory(n)))
        return self._run(self.session.retr_many(numbers, writer))

    def list_many(self, numbers: Sequence[int]) -> builtins.list[tuple[int, int]]:
        return self._run(self.session.list_many(numbers))

    def dele(self, n: int) -> p.Ok:
        return self._run(self.session.dele(n))

    def dele_many(self, numbers: Sequence[int]) -> None:
        return self._run(self.session.dele_many(numbers))

    def rset(self) -> p.Ok:
        return self._run(self.session.rset())

    def noop(self) -> p.Ok:
        return self._run(self.session.noop())

    def quit(self) -> p.Ok | None:
        """QUIT (deleted messages are removed now) and close."""
        try:
            return self._run(self.session.quit())
        finally:
            self._transport = None

    def close(self) -> None:
        """Close without QUIT: nothing is deleted."""
        self._drop()

    _end = quit


class AsyncPOP3ClientBase(_POP3ClientCommon, AsyncClient):
    """The async POP3 client; `mailproto_adapters.asyncio` and `.anyio` give it a transport.

    ``out`` files may be plain binary files or async ones (their ``write`` is awaited).
    """

    async def connect(self) -> p.Ok:
        """Connect, read the greeting, CAPA, and STLS as configured."""
        return await self._start(self.session.open(self._starttls))

    async def capa(self) -> p.Capabilities:
        return await self._run(self.session.capa())

    async def stls(self, context: ssl.SSLContext | None = None) -> TLSInfo:
        return await self._run(self.session.stls(context or ssl.create_default_context()))

    async def login(
        self, user: str, password: str, *, mechanism: str | None = None, apop: bool = False
    ) -> p.Ok:
        return await self._run(self.session.login(user, password, mechanism=mechanism, apop=apop))

    async def apop(self, user: str, password: str) -> p.Ok:
        return await self._run(self.session.apop(user, password))

    async def user_pass(self, user: str, password: str) -> p.Ok:
        return await self._run(self.session.user_pass(user, password))

    async def stat(self) -> tuple[int, int]:
        return await self._run(self.session.stat())

    @overload
    async def list(self, n: None = None) -> builtins.list[tuple[int, int]]: ...
    @overload
    async def list(self, n: int) -> tuple[int, int]: ...
    async def list(self, n: int | None = None) -> builtins.list[tuple[int, int]] | tuple[int, int]:
        return await self._run(self.session.list(n))

    @overload
    async def uidl(self, n: None = None) -> builtins.list[tuple[int, str]]: ...
    @overload
    async def uidl(self, n: int) -> tuple[int, str]: ...
    async def uidl(self, n: int | None = None) -> builtins.list[tuple[int, str]] | tuple[int, str]:
        return await self._run(self.session.uidl(n))

    @overload
    async def retr(self, n: int, out: None = None) -> bytes: ...
    @overload
    async def retr(self, n: int, out: Out) -> int: ...
    async def retr(self, n: int, out: Out | None = None) -> bytes | int:
        """The message's bytes; with ``out``, streamed into it and its size returned."""
        return await self._run(self.session.retr(n, _write(out)))

    @overload
    async def top(self, n: int, lines: int, out: None = None) -> bytes: ...
    @overload
    async def top(self, n: int, lines: int, out: Out) -> int: ...
    async def top(self, n: int, lines: int, out: Out | None = None) -> bytes | int:
        """The header and ``lines`` lines of the body, as `retr` gives a message."""
        return await self._run(self.session.top(n, lines, _write(out)))

    async def retr_many(
        self, numbers: Sequence[int], out_factory: Callable[[int], Out | None] | None = None
    ) -> builtins.list[Any]:
        """RETR each message, pipelined: their bytes, or their sizes for the messages
        ``out_factory(n)`` gives a file for. A -ERR for one (its result is b"") does not
        stop the others; the first raises `ServerError` once all are read."""
        writer = None if out_factory is None else (lambda n: _write(out_factory(n)))
        return await self._run(self.session.retr_many(numbers, writer))

    async def list_many(self, numbers: Sequence[int]) -> builtins.list[tuple[int, int]]:
        return await self._run(self.session.list_many(numbers))

    async def dele(self, n: int) -> p.Ok:
        return await self._run(self.session.dele(n))

    async def dele_many(self, numbers: Sequence[int]) -> None:
        return await self._run(self.session.dele_many(numbers))

    async def rset(self) -> p.Ok:
        return await self._run(self.session.rset())

    async def noop(self) -> p.Ok:
        return await self._run(self.session.noop())

    async def quit(self) -> p.Ok | None:
        """QUIT (deleted messages are removed now) and close."""
        try:
            return await self._run(self.session.quit())
        finally:
            self._transport = None

    async def aclose(self) -> None:
        """Close without QUIT: nothing is deleted."""
        await self._drop()

    async def close(self) -> None:
        """`aclose` under poplib's name."""
        await self._drop()

    _end = quit
