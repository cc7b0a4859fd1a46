"""The blocking transport: a socket read with ``recv`` (never ``makefile``).

``recv`` hands out exactly what the kernel holds, so nothing is read ahead: at STARTTLS
the socket is wrapped with every TLS byte still unread. Timeouts are the socket's own.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import Any

from ._effects import TLSInfo, TransportInfo, peer_address, tls_info
from ._transport import TLSFailed, TransportError, TransportTimeout, tls_reason

__all__ = ["SocketTransport", "connect"]


class SocketTransport:
    """A connected (possibly TLS) socket as a `Transport`."""

    __slots__ = ("_addresses", "_closed", "_timeout", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._closed = False
        self._timeout: float | None = -1.0  # unknown: set on first use
        self._addresses: tuple[Any, Any] | None = None  # (peer, local), once known

    def _set_timeout(self, timeout: float | None) -> None:
        # settimeout is a system call each time: only when the value changes.
        if timeout != self._timeout:
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        try:
            self._set_timeout(timeout)
            return self.sock.recv(max_bytes)
        except TimeoutError:
            raise TransportTimeout(f"no data from the peer in {timeout} s") from None
        except ssl.SSLError as exc:
            raise TransportError(f"TLS error: {tls_reason(exc)}") from exc
        except OSError as exc:
            raise TransportError(f"connection failed: {exc}") from exc

    def send_all(self, data: bytes, timeout: float | None) -> None:
        try:
            self._set_timeout(timeout)
            self.sock.sendall(data)
        except TimeoutError:
            raise TransportTimeout(f"the peer took no data in {timeout} s") from None
        except OSError as exc:
            raise TransportError(f"connection failed: {exc}") from exc

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None,
        timeout: float | None,
    ) -> TLSInfo:
        try:
            tls = context.wrap_socket(
                self.sock,
                server_side=server_side,
                server_hostname=None if server_side else hostname,
                do_handshake_on_connect=False,
            )
            self.sock = tls
            tls.settimeout(timeout)
            self._timeout = timeout
            tls.do_handshake()
        except TimeoutError:
            raise TransportTimeout(f"TLS handshake not done in {timeout} s") from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise TLSFailed(tls_reason(exc)) from exc
        except OSError as exc:
            raise TLSFailed(f"connection failed during the handshake: {exc}") from exc
        return tls_info(tls)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def info(self) -> TransportInfo:
        tls = tls_info(self.sock) if isinstance(self.sock, ssl.SSLSocket) else None
        if self._addresses is None:  # two system calls, once: they never change
            try:
                peer = peer_address(self.sock.getpeername())
                local = peer_address(self.sock.getsockname())
            except OSError:
                return TransportInfo(tls=tls)
            self._addresses = (peer, local)
        peer, local = self._addresses
        return TransportInfo(peer=peer, local=local, tls=tls)


def connect(
    host: str,
    port: int,
    *,
    timeout: float | None = 30.0,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> SocketTransport:
    """Connect to host:port (IPv4 or IPv6), with implicit TLS when ``tls`` is given."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise TransportTimeout(f"no connection to {host}:{port} in {timeout} s") from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = SocketTransport(sock)
    if tls is not None:
        try:
            transport.start_tls(
                tls, server_side=False, hostname=server_hostname or host, timeout=timeout
            )
        except BaseException:
            transport.close()
            raise
    return transport
