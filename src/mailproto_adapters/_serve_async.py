"""``serve()`` for asyncio (memory-BIO transport) and for anyio (asyncio or trio).

Both run each session as a task driven by `drive_async`, apply `Admission`, and close
gracefully: stop accepting, give sessions ``grace`` seconds, then cancel the rest (their
transports close under a shield).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._anyio import AnyIOTransport
from ._asyncio import AsyncioTransport, StreamProtocol
from ._driver import drive_async
from ._effects import TransportInfo
from ._serving import Admission, ServeConfig, SessionFactory, log_session
from ._transport import AsyncTransport

__all__ = ["AnyIOServer", "AsyncioServer"]


def _info(transport: AsyncTransport, last: TransportInfo) -> TransportInfo:
    """The transport's info, or ``last`` when the socket is already gone (a peer's reset
    must end its own session, never the listener's task group)."""
    try:
        return transport.info()
    except (OSError, ValueError):
        return last


async def _session(server: AsyncioServer | AnyIOServer, transport: AsyncTransport, ip: str) -> None:
    config = server.config
    if not server.admission.admit(ip):
        with contextlib.suppress(Exception):
            await transport.send_all(config.busy, 5.0)
        await transport.aclose()
        return
    started = time.monotonic()
    error: BaseException | None = None
    info = _info(transport, TransportInfo(peer=None, local=None, tls=None))
    try:
        if config.tls is not None:
            await transport.start_tls(
                config.tls, server_side=True, hostname=None, timeout=config.tls_timeout
            )
        info = transport.info()
        await drive_async(server.session(info), transport)
    except Exception as exc:
        error = exc
    finally:
        info = _info(transport, info)
        await transport.aclose()
        server.admission.release(ip)
        log_session(config, info, started, error)


class AsyncioServer:
    """An asyncio server; ``async with await AsyncioServer.start(...)`` or ``close()``."""

    def __init__(self, session: SessionFactory, config: ServeConfig) -> None:
        self.session = session
        self.config = config
        self.admission = Admission(config)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, session: SessionFactory, config: ServeConfig) -> AsyncioServer:
        self = cls(session, config)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _SessionProtocol(self), config.host, config.port, backlog=128
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def active(self) -> int:
        return self.admission.active

    def _spawn(self, protocol: StreamProtocol) -> None:
        assert isinstance(protocol.transport, asyncio.Transport)
        transport = AsyncioTransport(protocol.transport, protocol)
        peer = transport.info().peer
        task = asyncio.get_running_loop().create_task(
            _session(self, transport, peer[0] if peer else "?")
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions finish for ``grace`` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._tasks:
            _, pending = await asyncio.wait(
                set(self._tasks), timeout=self.config.grace if grace is None else grace
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def __aenter__(self) -> AsyncioServer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class _SessionProtocol(StreamProtocol):
    def __init__(self, server: AsyncioServer) -> None:
        super().__init__()
        self._owner = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owner._spawn(self)


class AnyIOServer:
    """An anyio server; run `serve` in a task group (``await tg.start(server.serve)``)."""

    def __init__(self, session: SessionFactory, config: ServeConfig) -> None:
        self.session = session
        self.config = config
        self.admission = Admission(config)
        self.port = 0
        self._accepting: anyio.CancelScope | None = None
        self._sessions: anyio.CancelScope | None = None
        self._done = anyio.Event()

    @property
    def active(self) -> int:
        return self.admission.active

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until `close`; reports the port to ``task_status``."""
        listener = await anyio.create_tcp_listener(
            local_host=self.config.host, local_port=self.config.port, backlog=128
        )
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        try:
            async with anyio.create_task_group() as sessions:
                self._sessions = sessions.cancel_scope
                with anyio.CancelScope() as accepting:
                    self._accepting = accepting
                    task_status.started(self.port)

                    async def handle(stream: anyio.abc.SocketStream) -> None:
                        peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
                        ip = str(peer[0]) if isinstance(peer, tuple) else "?"
                        sessions.start_soon(_session, self, AnyIOTransport(stream), ip)

                    async with listener:
                        await listener.serve(handle)
        finally:
            self._done.set()

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions finish for ``grace`` seconds, then cancel them."""
        if self._accepting is not None:
            self._accepting.cancel()
        with anyio.move_on_after(self.config.grace if grace is None else grace):
            while self.admission.active:
                await anyio.sleep(0.02)
        if self._sessions is not None:
            self._sessions.cancel()
        await self._done.wait()
