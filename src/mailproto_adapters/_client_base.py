"""What the SMTP, POP3 and IMAP client facades share, sync and async.

A facade holds a transport and runs its session's flows on it (`_run`). `_start` runs
the opening flow (greeting, capabilities, STARTTLS as configured; written once in each
session as ``open``) and closes the transport if it fails. As context managers they
connect on entry and, on exit, end the session politely (`_end`: QUIT, LOGOUT) or,
after an exception, just drop the connection (`_drop`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

from mailproto import LocalProtocolError

from ._driver import drive, drive_async
from ._effects import Op
from ._transport import AsyncTransport, Transport

__all__ = ["AsyncClient", "SyncClient"]

T = TypeVar("T")


class SyncClient:
    """The blocking half: `_run`, `_start`, and the context manager."""

    _transport: Transport | None = None

    def _run(self, op: Op[T]) -> T:
        if self._transport is None:
            raise LocalProtocolError("not connected: use connect() or a with block")
        return drive(op, self._transport)

    def _start(self, transport: Transport, opening: Op[T]) -> T:
        self._transport = transport
        try:
            return self._run(opening)
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        """Close the connection without ending the session."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connect(self) -> Any:
        raise NotImplementedError

    def _end(self) -> Any:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            if kind is None:
                self._end()
            else:
                self._drop()


class AsyncClient:
    """The async half; subclasses in `.asyncio` and `.anyio` say how to `_open`."""

    _transport: AsyncTransport | None = None

    async def _open(self) -> AsyncTransport:
        raise NotImplementedError

    async def _run(self, op: Op[T]) -> T:
        if self._transport is None:
            raise LocalProtocolError("not connected: use connect() or an async with block")
        return await drive_async(op, self._transport)

    async def _start(self, opening: Op[T]) -> T:
        self._transport = await self._open()
        try:
            return await self._run(opening)
        except BaseException:
            await self._drop()
            raise

    async def _drop(self) -> None:
        """Close the connection without ending the session."""
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def connect(self) -> Any:
        raise NotImplementedError

    async def _end(self) -> Any:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            if kind is None:
                await self._end()
            else:
                await self._drop()
