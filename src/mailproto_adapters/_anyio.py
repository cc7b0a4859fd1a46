"""The anyio transport (asyncio or trio underneath): a ByteStream, upgraded in place.

STARTTLS is `anyio.streams.tls.TLSStream.wrap` over the same stream, which reads through
it, so nothing already received is lost. ``standard_compatible=False``: mail protocols
have their own end (QUIT, LOGOUT), so a peer closing without close_notify is not an
attack on message integrity. Peer address and TLS details come from typed attributes.
"""

from __future__ import annotations

import contextlib
import ssl

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from ._effects import TLSInfo, TransportInfo, peer_address
from ._transport import TLSFailed, TransportError, TransportTimeout, tls_reason

__all__ = ["AnyIOTransport", "connect"]


class AnyIOTransport:
    """An `AsyncTransport` over an anyio byte stream."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self._closed = False

    async def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        try:
            with anyio.fail_after(timeout):
                return await self.stream.receive(max_bytes)
        except TimeoutError:
            raise TransportTimeout(f"no data from the peer in {timeout} s") from None
        except anyio.EndOfStream:
            return b""
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise TransportError(f"connection failed: {exc}") from exc
        except ssl.SSLError as exc:
            raise TransportError(f"TLS error: {tls_reason(exc)}") from exc

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        try:
            with anyio.fail_after(timeout):
                await self.stream.send(data)
        except TimeoutError:
            raise TransportTimeout(f"the peer took no data in {timeout} s") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise TransportError(f"connection failed: {exc}") from exc

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None,
        timeout: float | None,
    ) -> TLSInfo:
        try:
            with anyio.fail_after(timeout):
                self.stream = await TLSStream.wrap(
                    self.stream,
                    server_side=server_side,
                    hostname=None if server_side else hostname,
                    ssl_context=context,
                    standard_compatible=False,
                )
        except TimeoutError:
            raise TransportTimeout(f"TLS handshake not done in {timeout} s") from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise TLSFailed(tls_reason(exc)) from exc
        except (anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            raise TLSFailed(f"connection failed during the handshake: {exc}") from exc
        return _tls_info(self.stream)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(anyio.BrokenResourceError, OSError, ssl.SSLError):
                await self.stream.aclose()

    def info(self) -> TransportInfo:
        stream = self.stream
        peer = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
        local = stream.extra(anyio.abc.SocketAttribute.local_address, None)
        tls = _tls_info(stream) if stream.extra(TLSAttribute.ssl_object, None) else None
        return TransportInfo(peer=peer_address(peer), local=peer_address(local), tls=tls)


def _tls_info(stream: anyio.abc.ByteStream) -> TLSInfo:
    cipher = stream.extra(TLSAttribute.cipher, None)
    try:
        certificate = stream.extra(TLSAttribute.peer_certificate, None) or None
    except ValueError:  # the handshake failed or never finished
        certificate = None
    return TLSInfo(
        version=stream.extra(TLSAttribute.tls_version, None),
        cipher=cipher[0] if cipher else None,
        peer_certificate=certificate,
    )


async def connect(
    host: str,
    port: int,
    *,
    timeout: float | None = 30.0,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> AnyIOTransport:
    """Connect to host:port, with implicit TLS when ``tls`` is given."""
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, port)
    except TimeoutError:
        raise TransportTimeout(f"no connection to {host}:{port} in {timeout} s") from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
    transport = AnyIOTransport(stream)
    if tls is not None:
        try:
            await transport.start_tls(
                tls, server_side=False, hostname=server_hostname or host, timeout=timeout
            )
        except BaseException:
            await transport.aclose()
            raise
    return transport
