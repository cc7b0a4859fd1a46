"""The three transports under the two drivers: one flow, every flavour.

Each scenario is written once as a flow (a generator of effects) and run by `drive` on
blocking sockets, and by `drive_async` on the asyncio transport and on anyio (asyncio and
trio). The peer is a plain thread with blocking sockets and the standard ssl module.

The STARTTLS scenarios make the peer send its ClientHello at once after our "220", and
make us wait before starting TLS, so the hello is already buffered when the upgrade
begins: the bytes must not be lost (python/cpython#142352 is that bug in asyncio streams).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from mailproto_adapters import _anyio, _asyncio, _socket
from mailproto_adapters._driver import drive, drive_async
from mailproto_adapters._effects import (
    Call,
    Close,
    Info,
    Op,
    Receive,
    Send,
    StartTLS,
    TLSInfo,
    TransportInfo,
)
from mailproto_adapters._transport import TLSFailed, TransportError, TransportTimeout

if TYPE_CHECKING:
    from conftest import TLSFiles

FLAVOURS = ["blocking", "asyncio", "anyio-asyncio", "anyio-trio"]


# --- a scripted peer in a thread ----------------------------------------------------------


class Peer:
    """Runs ``script(sock)`` on one connection, as server or client, in a thread."""

    def __init__(self, script: Callable[[socket.socket], object]) -> None:
        self.script = script
        self.error: BaseException | None = None
        self.result: object = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sock: socket.socket | None = None

    def _run(self) -> None:
        assert self.sock is not None
        try:
            with self.sock:
                self.sock.settimeout(10)
                self.result = self.script(self.sock)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def serve(self) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        port = int(listener.getsockname()[1])

        def accept() -> None:
            with listener:
                listener.settimeout(10)
                self.sock, _ = listener.accept()
            self._run()

        self.thread = threading.Thread(target=accept, daemon=True)
        self.thread.start()
        return port

    def connect(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.thread.start()

    def join(self) -> object:
        self.thread.join(15)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def read_line(sock: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def echo_server(tls: TLSFiles) -> Callable[[socket.socket], object]:
    """Echo lines; "STARTTLS" upgrades; "QUIT" closes."""

    def script(sock: socket.socket) -> object:
        conn: socket.socket | ssl.SSLSocket = sock
        try:
            while line := read_line(conn):
                if line == b"STARTTLS\r\n":
                    conn.sendall(b"220 go\r\n")
                    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    ctx.load_cert_chain(tls.cert, tls.key)
                    conn = ctx.wrap_socket(sock, server_side=True)
                elif line == b"QUIT\r\n":
                    conn.sendall(b"bye\r\n")
                    return None
                else:
                    conn.sendall(line)
            return None
        finally:
            conn.close()

    return script


# --- running a flow in every flavour --------------------------------------------------------


def run_client(flavour: str, port: int, flow: Op[Any]) -> Any:
    if flavour == "blocking":
        blocking = _socket.connect("127.0.0.1", port, timeout=10)
        try:
            return drive(flow, blocking)
        finally:
            blocking.close()

    async def main() -> Any:
        if flavour == "asyncio":
            transport: Any = await _asyncio.connect("127.0.0.1", port, timeout=10)
        else:
            transport = await _anyio.connect("127.0.0.1", port, timeout=10)
        try:
            return await drive_async(flow, transport)
        finally:
            await transport.aclose()

    backend = "trio" if flavour == "anyio-trio" else "asyncio"
    return anyio.run(main, backend=backend)


def run_server(flavour: str, peer: Peer, flow: Op[Any]) -> Any:
    """Accept one connection in ``flavour``, have ``peer`` connect, run ``flow`` on it."""
    if flavour == "blocking":
        with socket.create_server(("127.0.0.1", 0)) as listener:
            peer.connect(listener.getsockname()[1])
            sock, _ = listener.accept()
        blocking = _socket.SocketTransport(sock)
        try:
            return drive(flow, blocking)
        finally:
            blocking.close()

    async def asyncio_main() -> Any:
        import asyncio

        accepted: asyncio.Future[_asyncio.StreamProtocol] = asyncio.Future()

        class Accepted(_asyncio.StreamProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                accepted.set_result(self)

        server = await asyncio.get_running_loop().create_server(Accepted, "127.0.0.1", 0)
        peer.connect(server.sockets[0].getsockname()[1])
        proto = await accepted
        server.close()
        assert isinstance(proto.transport, asyncio.Transport)
        transport = _asyncio.AsyncioTransport(proto.transport, proto)
        try:
            return await drive_async(flow, transport)
        finally:
            await transport.aclose()

    async def anyio_main() -> Any:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        async with listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            peer.connect(port)
            inner = listener.listeners[0]
            assert isinstance(inner, anyio.abc.SocketListener)
            stream = await inner.accept()
        transport = _anyio.AnyIOTransport(stream)
        try:
            return await drive_async(flow, transport)
        finally:
            await transport.aclose()

    if flavour == "asyncio":
        return anyio.run(asyncio_main, backend="asyncio")
    return anyio.run(anyio_main, backend="trio" if flavour == "anyio-trio" else "asyncio")


def receive_line() -> Op[bytes]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = yield Receive(timeout=10)
        if not chunk:
            break
        data += chunk
    return data


def pause(flavour: str) -> Call:
    """Wait a little, in the flavour's own way (a blocking sleep would stop the loop)."""
    if flavour == "blocking":
        return Call(time.sleep, (0.3,))
    return Call(anyio.sleep, (0.3,))


# --- the scenarios ---------------------------------------------------------------------------


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_client_plain_then_starttls(flavour: str, tls_files: TLSFiles) -> None:
    peer = Peer(echo_server(tls_files))
    port = peer.serve()

    def flow() -> Op[list[object]]:
        seen: list[object] = []
        yield Send(b"hello\r\n")
        seen.append((yield from receive_line()))
        info = yield Info()
        assert isinstance(info, TransportInfo)
        seen.append((info.peer, info.tls))
        yield Send(b"STARTTLS\r\n")
        seen.append((yield from receive_line()))
        tls = yield StartTLS(tls_files.client_context(), hostname="localhost", timeout=10)
        assert isinstance(tls, TLSInfo)
        seen.append(tls.version is not None and tls.cipher is not None)
        big = b"x" * 200_000 + b"\r\n"  # more than any one socket buffer
        yield Send(big)
        echoed = b""
        while len(echoed) < len(big):
            echoed += yield Receive(timeout=10)
        seen.append(echoed == big)
        info = yield Info()
        seen.append(info.tls is not None)
        yield Send(b"QUIT\r\n")
        seen.append((yield from receive_line()))
        seen.append((yield Receive(timeout=10)))
        yield Close()
        return seen

    seen = run_client(flavour, port, flow())
    peer.join()
    assert seen == [
        b"hello\r\n",
        (("127.0.0.1", port), None),
        b"220 go\r\n",
        True,
        True,
        True,
        b"bye\r\n",
        b"",
    ]


def test_server_starttls_with_an_eager_client_hello(flavour: str, tls_files: TLSFiles) -> None:
    def client(sock: socket.socket) -> object:
        sock.sendall(b"STARTTLS\r\n")
        assert read_line(sock) == b"220 go\r\n"
        # The hello goes out at once, while the server still sleeps.
        with tls_files.client_context().wrap_socket(sock, server_hostname="localhost") as conn:
            conn.sendall(b"ping\r\n")
            return read_line(conn)

    def flow() -> Op[bytes]:
        line = yield from receive_line()
        assert line == b"STARTTLS\r\n"
        yield Send(b"220 go\r\n")
        yield pause(flavour)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls_files.cert, tls_files.key)
        yield StartTLS(ctx, server_side=True, timeout=10)
        line = yield from receive_line()
        yield Send(b"pong " + line)
        return line

    peer = Peer(client)
    assert run_server(flavour, peer, flow()) == b"ping\r\n"
    assert peer.join() == b"pong ping\r\n"


def test_certificate_failure_says_why(flavour: str, tls_files: TLSFiles) -> None:
    peer = Peer(echo_server(tls_files))
    port = peer.serve()

    def flow() -> Op[str]:
        yield Send(b"STARTTLS\r\n")
        yield from receive_line()
        try:
            # the default context does not trust the test CA
            yield StartTLS(ssl.create_default_context(), hostname="localhost", timeout=10)
        except TLSFailed as exc:
            yield Close()
            return exc.reason
        raise AssertionError("the handshake should fail")

    reason = run_client(flavour, port, flow())
    assert "certificate" in reason
    with pytest.raises((ssl.SSLError, OSError)):
        peer.join()


def test_timeout_and_eof(flavour: str) -> None:
    def script(sock: socket.socket) -> object:
        assert read_line(sock) == b"wait\r\n"
        time.sleep(0.5)
        sock.sendall(b"late\r\n")
        return None

    peer = Peer(script)
    port = peer.serve()

    def flow() -> Op[list[object]]:
        seen: list[object] = []
        yield Send(b"wait\r\n")
        try:
            yield Receive(timeout=0.05)
        except TransportTimeout:
            seen.append("timeout")
        seen.append((yield from receive_line()))
        seen.append((yield Receive(timeout=10)))
        yield Close()
        yield Close()  # closing twice is harmless
        return seen

    assert run_client(flavour, port, flow()) == ["timeout", b"late\r\n", b""]
    peer.join()


def test_errors_propagate_when_the_flow_does_not_catch(flavour: str) -> None:
    def script(sock: socket.socket) -> object:
        read_line(sock)
        time.sleep(0.3)
        return None

    peer = Peer(script)
    port = peer.serve()

    def flow() -> Op[None]:
        yield Send(b"x\r\n")
        yield Receive(timeout=0.01)

    with pytest.raises(TransportTimeout):
        run_client(flavour, port, flow())
    peer.join()


def test_refused_connection(flavour: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    if flavour == "blocking":
        with pytest.raises(TransportError):
            _socket.connect("127.0.0.1", port, timeout=5)
        return

    async def main() -> None:
        module: Any = _asyncio if flavour == "asyncio" else _anyio
        with pytest.raises(TransportError):
            await module.connect("127.0.0.1", port, timeout=5)

    anyio.run(main, backend="trio" if flavour == "anyio-trio" else "asyncio")


def test_tls_info_of_an_unfinished_handshake() -> None:
    """A session whose TLS handshake failed still gets its log line (no ValueError)."""
    from mailproto_adapters._effects import tls_info

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    unfinished = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    info = tls_info(unfinished)
    assert info.peer_certificate is None
    assert info.cipher is None
