"""The asyncio transport: a buffering `asyncio.Protocol` and a memory-BIO TLS layer.

asyncio's StreamReader reads ahead, and ``StreamWriter.start_tls`` used to lose bytes
already buffered (a client's ClientHello sent right after "220 Ready to start TLS",
python/cpython#142352). Here the protocol keeps what arrived in one buffer that only
`receive` drains, and TLS is an `ssl.SSLObject` over two memory BIOs fed *from that
buffer*, so bytes that came before the upgrade are the first the TLS layer reads. The
buffer pauses the socket when it holds ``limit`` octets (backpressure), and writes wait
for the transport to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from ._effects import TLSInfo, TransportInfo, peer_address, tls_info
from ._transport import ConnectionLost, TLSFailed, TransportError, TransportTimeout, tls_reason

__all__ = ["AsyncioTransport", "StreamProtocol", "connect"]


class StreamProtocol(asyncio.Protocol):
    """Collects received bytes for `AsyncioTransport`; flow control both ways."""

    def __init__(self, limit: int = 256 * 1024) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._reading_paused = False
        self.writing_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.limit and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # keep the transport open: we may still write (and close properly)

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- for the transport

    def _wake_reader(self) -> None:
        waiter, self._data_waiter = self._data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` buffered octets, waiting for some; b"" at EOF."""
        while not self.buffer:
            if self.eof:
                if self.error is not None:
                    raise TransportError(f"connection failed: {self.error}")
                return b""
            self._data_waiter = asyncio.get_running_loop().create_future()
            await self._data_waiter
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self._reading_paused and len(self.buffer) < self.limit // 2 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        if self.transport is None or self.transport.is_closing():
            if self.error is not None or self.eof:
                raise ConnectionLost("the connection is closed")
        while self.writing_paused and not self.eof:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter


class AsyncioTransport:
    """An `AsyncTransport` over an asyncio transport and `StreamProtocol`."""

    def __init__(self, transport: asyncio.Transport, protocol: StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._closed = False

    async def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        if self._tls is None and self._protocol.buffer:
            return await self._protocol.read(max_bytes)  # no wait: no timer needed
        try:
            async with asyncio.timeout(timeout):
                if self._tls is None:
                    return await self._protocol.read(max_bytes)
                return await self._tls_read(max_bytes)
        except TimeoutError:
            raise TransportTimeout(f"no data from the peer in {timeout} s") from None

    async def _tls_read(self, max_bytes: int) -> bytes:
        assert self._tls is not None
        while True:
            try:
                return self._tls.read(max_bytes)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._feed():
                    return b""  # the peer closed without close_notify: EOF all the same
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError as exc:
                raise TransportError(f"TLS error: {tls_reason(exc)}") from exc

    async def _feed(self) -> bool:
        """Move received octets into the TLS layer; False at EOF."""
        data = await self._protocol.read(65536)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._write(data)
            await self._protocol.drain()

    def _write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionLost("the connection is closed")
        self._transport.write(data)

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        if self._tls is None and not self._protocol.writing_paused:
            self._write(data)  # the transport takes it all: no wait, no timer
            return
        try:
            async with asyncio.timeout(timeout):
                if self._tls is None:
                    self._write(data)
                    await self._protocol.drain()
                    return
                view = memoryview(data)
                while view:
                    try:
                        n = self._tls.write(view)
                    except ssl.SSLError as exc:
                        raise TransportError(f"TLS error: {tls_reason(exc)}") from exc
                    view = view[n:]
                    await self._flush()
        except TimeoutError:
            raise TransportTimeout(f"the peer took no data in {timeout} s") from None

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None,
        timeout: float | None,
    ) -> TLSInfo:
        if self._tls is not None:
            raise TLSFailed("TLS is already active")
        tls = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=None if server_side else hostname,
        )
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        await self._flush()
                        if not await self._feed():
                            raise TLSFailed("the peer closed during the handshake") from None
                await self._flush()
        except TimeoutError:
            raise TransportTimeout(f"TLS handshake not done in {timeout} s") from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            # The alert that says why goes to the peer before we give up.
            with contextlib.suppress(TransportError):
                await self._flush()
            raise TLSFailed(tls_reason(exc)) from exc
        self._tls = tls
        return tls_info(tls)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._tls is not None:
            # send close_notify without waiting for the peer's
            with contextlib.suppress(ssl.SSLError):
                self._tls.unwrap()
            data = self._outgoing.read()
            if data and not self._transport.is_closing():
                self._transport.write(data)
        self._transport.close()

    def info(self) -> TransportInfo:
        return TransportInfo(
            peer=peer_address(self._transport.get_extra_info("peername")),
            local=peer_address(self._transport.get_extra_info("sockname")),
            tls=tls_info(self._tls) if self._tls is not None else None,
        )


async def connect(
    host: str,
    port: int,
    *,
    timeout: float | None = 30.0,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> AsyncioTransport:
    """Connect to host:port, with implicit TLS when ``tls`` is given."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            raw, protocol = await loop.create_connection(StreamProtocol, host, port)
    except TimeoutError:
        raise TransportTimeout(f"no connection to {host}:{port} in {timeout} s") from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
    assert isinstance(raw, asyncio.Transport)
    transport = AsyncioTransport(raw, protocol)
    if tls is not None:
        try:
            await transport.start_tls(
                tls, server_side=False, hostname=server_hostname or host, timeout=timeout
            )
        except BaseException:
            await transport.aclose()
            raise
    return transport
