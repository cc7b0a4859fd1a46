"""``serve()`` in every flavour: sessions, limits, idle timeouts, TLS, shutdown, the log.

The session flow is a tiny line echo written once (a generator of effects); each
flavour's server runs it. Clients are plain blocking sockets in the test's thread (for
the async flavours the server runs in a thread of its own with its event loop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest

from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters import blocking
from mailproto_adapters._effects import Op, Receive, Send, TransportInfo
from mailproto_adapters._serve_blocking import listen_socket
from mailproto_adapters._serve_events import EventServer
from mailproto_adapters._serving import ServeConfig
from mailproto_adapters._transport import TransportTimeout

if TYPE_CHECKING:
    from conftest import TLSFiles

FLAVOURS = ["blocking", "events", "asyncio", "anyio-asyncio", "anyio-trio"]
BUSY = b"421 4.7.0 Too many connections\r\n"


def echo(idle: float) -> Callable[[TransportInfo], Op[None]]:
    """Greets, echoes lines, stops at QUIT or after ``idle`` seconds of silence."""

    def session(info: TransportInfo) -> Op[None]:
        yield Send(b"hello %s\r\n" % (b"tls" if info.tls else b"plain"))
        buffer = b""
        while True:
            data = yield Receive(timeout=idle)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                if line.strip() == b"QUIT":
                    yield Send(b"bye\r\n")
                    return
                if line.strip() == b"SLOW":  # keeps the session busy a while
                    with contextlib.suppress(TransportTimeout):
                        buffer += yield Receive(timeout=0.5)
                yield Send(line + b"\n")

    return session


class Running:
    """A server of some flavour, started in the background; ``stop()`` closes it.

    The async servers run in an anyio blocking portal: an event loop in a thread that
    this thread calls into.
    """

    def __init__(self, flavour: str, config: ServeConfig, idle: float) -> None:
        session = echo(idle)
        self._portal_cm: Any = None
        if flavour == "blocking":
            self.server: Any = blocking.BlockingServer(session, config).start()
            self.port = self.server.port
            return
        if flavour == "events":
            self.server = EventServer(session, config).start()
            self.port = self.server.port
            return
        backend = "trio" if flavour == "anyio-trio" else "asyncio"
        self._portal_cm = anyio.from_thread.start_blocking_portal(backend=backend)
        self.portal = self._portal_cm.__enter__()
        if flavour == "asyncio":
            self.server = self.portal.call(asyncio_flavour.AsyncioServer.start, session, config)
            self.port = self.server.port
        else:
            self.server = anyio_flavour.AnyIOServer(session, config)
            self._task, self.port = self.portal.start_task(self.server.serve)

    @property
    def active(self) -> int:
        return int(self.server.active)

    def stop(self, grace: float = 2.0) -> None:
        if self._portal_cm is None:
            self.server.close(grace)
            return
        if self.server is not None:
            self.portal.call(self.server.close, grace)
            self.server = None
            self._portal_cm.__exit__(None, None, None)


@pytest.fixture(params=FLAVOURS)
def start(request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    flavour = str(request.param)
    servers: list[Running] = []

    def starter(idle: float = 5.0, **config: Any) -> Running:
        running = Running(flavour, ServeConfig(**config), idle)
        servers.append(running)
        return running

    yield starter
    for running in servers:
        running.stop()


def connect(port: int, context: ssl.SSLContext | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if context is not None:
        return context.wrap_socket(sock, server_hostname="localhost")
    return sock


def line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- the scenarios --------------------------------------------------------------------------


def test_sessions_in_parallel(start: Callable[..., Running]) -> None:
    server = start()
    socks = [connect(server.port) for _ in range(5)]
    for i, sock in enumerate(socks):
        assert line(sock) == b"hello plain\r\n"
        sock.sendall(b"ping %d\n" % i)
    for i, sock in enumerate(socks):
        assert line(sock) == b"ping %d\n" % i
        sock.sendall(b"QUIT\n")
        assert line(sock) == b"bye\r\n"
        assert sock.recv(10) == b""
        sock.close()
    wait_for(lambda: server.active == 0)


def test_per_ip_limit_answers_busy_and_closes(start: Callable[..., Running]) -> None:
    server = start(max_per_ip=2, busy=BUSY)
    first, second = connect(server.port), connect(server.port)
    assert line(first) == line(second) == b"hello plain\r\n"
    third = connect(server.port)
    assert line(third) == BUSY
    assert third.recv(10) == b""
    third.close()
    first.close()
    wait_for(lambda: server.active == 1)
    fourth = connect(server.port)  # a place is free again
    assert line(fourth) == b"hello plain\r\n"
    for sock in (second, fourth):
        sock.close()


def test_connection_limit(start: Callable[..., Running]) -> None:
    server = start(max_connections=1, busy=BUSY)
    first = connect(server.port)
    assert line(first) == b"hello plain\r\n"
    second = connect(server.port)
    assert line(second) == BUSY
    first.close()
    second.close()


def test_idle_timeout_ends_the_session_and_is_logged(
    start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailproto.server")
    server = start(idle=0.2, name="echo")
    sock = connect(server.port)
    assert line(sock) == b"hello plain\r\n"
    assert sock.recv(10) == b""  # the server gave up on us
    sock.close()
    wait_for(lambda: server.active == 0)
    wait_for(lambda: any("outcome=timeout" in r.getMessage() for r in caplog.records))
    [record] = [r for r in caplog.records if "outcome=timeout" in r.getMessage()]
    assert record.getMessage().startswith("echo session peer=127.0.0.1:")
    assert "tls=plain" in record.getMessage()


def test_implicit_tls(start: Callable[..., Running], tls_files: TLSFiles) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    server = start(tls=context)
    with connect(server.port, tls_files.client_context()) as sock:
        assert line(sock) == b"hello tls\r\n"
        sock.sendall(b"QUIT\n")
        assert line(sock) == b"bye\r\n"


def test_graceful_shutdown_lets_a_session_finish(start: Callable[..., Running]) -> None:
    server = start()
    sock = connect(server.port)
    assert line(sock) == b"hello plain\r\n"
    sock.sendall(b"SLOW\nafter\nQUIT\n")
    stopper = threading.Thread(target=server.stop, kwargs={"grace": 5.0})
    time.sleep(0.1)
    stopper.start()
    # the session in progress still completes
    assert line(sock) == b"SLOW\n"
    assert line(sock) == b"after\n"
    assert line(sock) == b"bye\r\n"
    stopper.join(10)
    assert not stopper.is_alive()
    with pytest.raises(OSError):
        connect(server.port).close()  # no longer listening
    sock.close()


def test_shutdown_cuts_sessions_after_the_grace(start: Callable[..., Running]) -> None:
    server = start(idle=30.0)
    sock = connect(server.port)
    assert line(sock) == b"hello plain\r\n"
    began = time.monotonic()
    server.stop(grace=0.2)
    assert time.monotonic() - began < 5
    assert sock.recv(10) == b""
    sock.close()


def test_a_session_whose_socket_is_gone_ends_alone() -> None:
    """transport.info() failing (a reset socket, an unfinished TLS handshake) ends that
    session only: the listener's task group must not see the exception."""
    from mailproto_adapters._serve_async import AnyIOServer, _session
    from mailproto_adapters._serving import ServeConfig

    class Gone:
        closed = False

        def info(self) -> None:
            raise OSError(9, "Bad file descriptor")

        async def aclose(self) -> None:
            self.closed = True

    def flow(info: object) -> Any:
        return
        yield

    server = AnyIOServer(flow, ServeConfig())
    gone = Gone()
    anyio.run(_session, server, cast(Any, gone), "127.0.0.1")
    assert gone.closed
    assert server.admission.active == 0


def test_blocking_session_threads_are_reused_and_end_at_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session thread serves the next connection after its session; when none comes
    for IDLE_WORKER_SECONDS it ends, and close() ends the idle ones at once."""
    from mailproto_adapters import _serve_blocking

    monkeypatch.setattr(_serve_blocking, "IDLE_WORKER_SECONDS", 0.5)
    server = blocking.BlockingServer(echo(5.0), ServeConfig())
    threads: list[threading.Thread] = []
    run = server._run

    def recording_run(sock: socket.socket, address: tuple[str, int]) -> None:
        threads.append(threading.current_thread())
        run(sock, address)

    monkeypatch.setattr(server, "_run", recording_run)
    server.start()
    try:

        def one_session() -> None:
            with connect(server.port) as sock:
                assert line(sock) == b"hello plain\r\n"
                sock.sendall(b"QUIT\n")
                assert line(sock) == b"bye\r\n"
            wait_for(lambda: server.active == 0)
            wait_for(lambda: server._idle == 1)

        for _ in range(4):
            one_session()
        worker = threads[0]
        assert threads == [worker] * 4  # the same thread served all four
        assert server._workers == 1
        wait_for(lambda: server._workers == 0)  # idle for longer than 0.5 s: it ended
        worker.join(2)
        assert not worker.is_alive()
        one_session()  # a new thread when none is idle
        assert threads[-1] is not worker
        assert server._workers == 1
        started = time.monotonic()
    finally:
        server.close()
    wait_for(lambda: server._workers == 0, timeout=2)
    assert time.monotonic() - started < 2  # close() did not wait for the idle timeout


def test_blocking_servers_sharing_one_socket() -> None:
    """Two servers accepting on one listening socket (as the SMTP children do, each
    with its own descriptor): connections are served while both run, and closing one
    (its accept thread woken at once, its descriptor closed) leaves the socket to the
    other."""
    listener = listen_socket("127.0.0.1", 0)
    port = listener.getsockname()[1]
    twin = socket.socket(fileno=os.dup(listener.fileno()))
    first = blocking.BlockingServer(echo(5.0), ServeConfig(), listener=listener).start()
    second = blocking.BlockingServer(echo(5.0), ServeConfig(), listener=twin).start()
    try:

        def one_session() -> None:
            with connect(port) as sock:
                assert line(sock) == b"hello plain\r\n"
                sock.sendall(b"ping\nQUIT\n")
                assert line(sock) == b"ping\n"
                assert line(sock) == b"bye\r\n"

        for _ in range(10):
            one_session()
        started = time.monotonic()
        first.close(grace=1.0)
        assert time.monotonic() - started < 1.0
        for _ in range(5):
            one_session()  # the second server takes every one now
    finally:
        first.close(grace=1.0)  # a second close() does nothing more
        second.close(grace=1.0)
