"""`EventServer`: what only the one-thread server has to get right.

The scenarios every flavour shares (limits, idle timeouts, implicit TLS, shutdown) run
in test_serve.py with the "events" flavour; here: where each kind of `Call` runs, that a
slow hook or a pause never stalls the other sessions, partial writes, STARTTLS in the
middle of a session, a send that times out, a flow that crashes, many hook results
arriving at once, and two servers sharing a socket.
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
from typing import TYPE_CHECKING, Any

import pytest

from mailproto_adapters._calls import blocking_call, local_call, pause
from mailproto_adapters._effects import Call, Close, Op, Receive, Send, StartTLS, TransportInfo
from mailproto_adapters._serve_blocking import listen_socket
from mailproto_adapters._serve_events import EventServer, available
from mailproto_adapters._serving import ServeConfig
from mailproto_adapters._transport import TransportError, TransportTimeout

if TYPE_CHECKING:
    from conftest import TLSFiles

pytestmark = pytest.mark.skipif(not available(), reason="epoll with EPOLLEXCLUSIVE only")

Flow = Callable[[TransportInfo], Op[None]]


@pytest.fixture
def serve() -> Iterator[Callable[..., EventServer]]:
    servers: list[EventServer] = []

    def starter(flow: Flow, **config: Any) -> EventServer:
        server = EventServer(flow, ServeConfig(**config)).start()
        servers.append(server)
        return server

    yield starter
    for server in servers:
        server.close(1.0)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_blocking_calls_run_in_workers_the_others_in_the_loop(
    serve: Callable[..., EventServer],
) -> None:
    """A blocking_call leaves the loop's thread, a local_call and a plain Call do not;
    a slow blocking_call holds up its own session only."""
    seen: dict[str, int] = {}
    release = threading.Event()

    def where(name: str) -> str:
        seen[name] = threading.get_ident()
        return name

    def slow() -> str:
        release.wait(10)
        return where("slow")

    def flow(info: TransportInfo) -> Op[None]:
        command = yield Receive(timeout=5)
        if command == b"slow\n":
            got = yield blocking_call(slow)
        else:
            got = yield blocking_call(where, "blocking")
            got += " " + (yield local_call(where, "local"))
            got += " " + (yield Call(where, ("plain",)))
        yield Send(got.encode() + b"\n")

    server = serve(flow)
    with connect(server.port) as stuck, connect(server.port) as quick:
        stuck.sendall(b"slow\n")
        quick.sendall(b"quick\n")
        assert read_until(quick, b"\n") == b"blocking local plain\n"  # while slow waits
        release.set()
        assert read_until(stuck, b"\n") == b"slow\n"
    loop = server._thread.ident
    assert seen["local"] == seen["plain"] == loop
    assert seen["blocking"] != loop
    assert seen["slow"] != loop


def test_a_pause_is_a_timer(serve: Callable[..., EventServer]) -> None:
    """A paused session (the tarpit, a failed login) lets the others run meanwhile."""

    def flow(info: TransportInfo) -> Op[None]:
        command = yield Receive(timeout=5)
        if command == b"pause\n":
            began = time.monotonic()
            yield Call(pause, (0.5,))
            yield Send(b"%.2f\n" % (time.monotonic() - began))
        else:
            yield Send(b"at once\n")

    server = serve(flow)
    with connect(server.port) as paused, connect(server.port) as other:
        paused.sendall(b"pause\n")
        time.sleep(0.05)
        began = time.monotonic()
        other.sendall(b"x\n")
        assert read_until(other, b"\n") == b"at once\n"
        assert time.monotonic() - began < 0.4
        slept = float(read_until(paused, b"\n"))
        assert 0.45 <= slept < 3.0


def test_big_sends_wait_for_a_slow_reader(serve: Callable[..., EventServer]) -> None:
    """Megabytes the kernel cannot take at once go out as the client reads, intact."""
    blob = os.urandom(4 * 1024 * 1024)

    def flow(info: TransportInfo) -> Op[None]:
        yield Send(blob, timeout=10)
        yield Send(b"END")

    server = serve(flow)
    with connect(server.port) as sock:
        time.sleep(0.3)  # the server's first send fills the buffers and waits
        assert read_until(sock, b"END") == blob + b"END"


def test_a_send_nobody_reads_times_out(serve: Callable[..., EventServer]) -> None:
    outcome: list[str] = []

    def flow(info: TransportInfo) -> Op[None]:
        try:
            yield Send(b"x" * (32 * 1024 * 1024), timeout=0.3)
        except TransportTimeout as exc:
            outcome.append(str(exc))

    server = serve(flow)
    with connect(server.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_for(lambda: bool(outcome))
    assert outcome == ["the peer took no data in 0.3 s"]
    wait_for(lambda: server.active == 0)


def test_starttls_in_the_middle_of_a_session(
    serve: Callable[..., EventServer], tls_files: TLSFiles
) -> None:
    """Plain text, then STARTTLS, then data bigger than a TLS record both ways (the
    records left in the TLS layer after a read are read without waiting)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    blob = os.urandom(200_000)

    def flow(info: TransportInfo) -> Op[None]:
        yield Send(b"ready\n")
        assert (yield Receive(timeout=5)) == b"STARTTLS\n"
        yield Send(b"go\n")
        tls = yield StartTLS(context, server_side=True, timeout=5)
        yield Send(tls.version.encode() + b"\n")
        got = b""
        while len(got) < len(blob):
            got += yield Receive(timeout=5, max_bytes=1000)
        yield Send(b"same\n" if got == blob else b"changed\n")
        yield Send(blob)

    server = serve(flow)
    with connect(server.port) as plain:
        assert read_until(plain, b"\n") == b"ready\n"
        plain.sendall(b"STARTTLS\n")
        assert read_until(plain, b"\n") == b"go\n"
        with tls_files.client_context().wrap_socket(plain, server_hostname="localhost") as tls:
            assert read_until(tls, b"\n").startswith(b"TLSv1.")
            tls.sendall(blob)
            assert read_until(tls, b"\n") == b"same\n"
            got = b""
            while len(got) < len(blob):
                got += tls.recv(65536)
            assert got == blob


def test_a_crashing_flow_is_logged_and_the_server_goes_on(
    serve: Callable[..., EventServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailproto.server")

    def flow(info: TransportInfo) -> Op[None]:
        command = yield Receive(timeout=5)
        if command == b"crash\n":
            raise RuntimeError("a bug")
        yield Send(b"fine\n")

    server = serve(flow, name="echo")
    with connect(server.port) as sock:
        sock.sendall(b"crash\n")
        assert sock.recv(10) == b""
    with connect(server.port) as sock:
        sock.sendall(b"hi\n")
        assert read_until(sock, b"\n") == b"fine\n"
    wait_for(lambda: any("crashed (RuntimeError: a bug)" in r.getMessage() for r in caplog.records))


def test_many_hook_results_at_once(serve: Callable[..., EventServer]) -> None:
    """Results of worker threads arriving together each resume their session (a lost
    wake-up of the loop would leave some waiting forever)."""

    def work(n: int) -> int:
        time.sleep(0.001 * (n % 3))
        return n + 1

    def flow(info: TransportInfo) -> Op[None]:
        n = 0
        for _ in range(50):
            n = yield blocking_call(work, n)
        yield Send(b"%d\n" % n)

    server = serve(flow, max_per_ip=64)
    socks = [connect(server.port) for _ in range(40)]
    try:
        for sock in socks:
            assert read_until(sock, b"\n") == b"50\n"
    finally:
        for sock in socks:
            sock.close()
    wait_for(lambda: server.active == 0)


def test_close_waits_for_a_hook_in_progress() -> None:
    """A session inside a blocking_call at close() gets its result, then ends: the
    hook (a queue commit) is never cut short; the port is free at once."""
    entered, release = threading.Event(), threading.Event()
    results: list[str] = []

    def commit() -> str:
        entered.set()
        release.wait(10)
        return "committed"

    def flow(info: TransportInfo) -> Op[None]:
        results.append((yield blocking_call(commit)))
        with contextlib.suppress(TransportError):
            yield Send(b"250\n")

    server = EventServer(flow, ServeConfig(grace=0.1)).start()
    port = server.port
    with connect(port) as sock:
        assert entered.wait(5)
        closer = threading.Thread(target=server.close)
        closer.start()
        wait_for(lambda: _free(port))
        time.sleep(0.3)  # past the grace
        assert results == []
        release.set()
        closer.join(10)
        assert not closer.is_alive()
        assert results == ["committed"]
        sock.close()


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the connection
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_two_servers_sharing_one_socket() -> None:
    """As the SMTP children: each with its own descriptor of one listening socket;
    closing one leaves the socket to the other."""

    def flow(info: TransportInfo) -> Op[None]:
        data = yield Receive(timeout=5)
        yield Send(data)

    listener = listen_socket("127.0.0.1", 0)
    port = listener.getsockname()[1]
    twin = socket.socket(fileno=os.dup(listener.fileno()))
    first = EventServer(flow, ServeConfig(), listener=listener).start()
    second = EventServer(flow, ServeConfig(), listener=twin).start()
    try:
        for _ in range(10):
            with connect(port) as sock:
                sock.sendall(b"ping\n")
                assert read_until(sock, b"\n") == b"ping\n"
        first.close()
        for _ in range(10):
            with connect(port) as sock:
                sock.sendall(b"pong\n")
                assert read_until(sock, b"\n") == b"pong\n"
    finally:
        first.close()
        second.close()


def test_a_session_that_closed_its_socket_and_goes_on(serve: Callable[..., EventServer]) -> None:
    """After a Close the flow may still wait (a hook, a pause) while a new connection
    gets the same descriptor number: each keeps its own session, I/O after the Close
    fails as on a closed transport, and every session is counted out."""
    errors: list[str] = []
    release = threading.Event()

    def flow(info: TransportInfo) -> Op[None]:
        command = yield Receive(timeout=5)
        if command != b"close\n":
            yield Send(b"echo " + command)
            return
        yield Send(b"closing\n")
        yield Close()
        yield blocking_call(release.wait, 10)
        yield Call(pause, (0.05,))
        try:
            yield Receive(timeout=5)
        except TransportError as exc:
            errors.append(str(exc))

    server = serve(flow)
    with connect(server.port) as first:
        first.sendall(b"close\n")
        assert read_until(first, b"\n") == b"closing\n"
        assert first.recv(10) == b""
    with connect(server.port) as second:  # likely the descriptor number the first had
        second.sendall(b"hi\n")
        assert read_until(second, b"\n") == b"echo hi\n"
        assert second.recv(10) == b""
    release.set()
    wait_for(lambda: server.active == 0)
    assert errors == ["the connection is closed"]


def test_a_tls_session_that_closes_leaves_the_server_running(
    serve: Callable[..., EventServer], tls_files: TLSFiles
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)

    def flow(info: TransportInfo) -> Op[None]:
        yield Send(b"hello\n")
        yield Close()

    server = serve(flow, tls=context)
    for _ in range(3):
        with (
            connect(server.port) as plain,
            tls_files.client_context().wrap_socket(plain, server_hostname="localhost") as sock,
        ):
            assert read_until(sock, b"\n") == b"hello\n"
    wait_for(lambda: server.active == 0)
    assert server._thread.is_alive()


def test_accept_failing_pauses_the_listener_not_the_sessions(
    serve: Callable[..., EventServer],
) -> None:
    """accept() failing (EMFILE) takes the listener out of the epoll set for a moment
    instead of stalling the loop: running sessions go on at full speed."""

    def flow(info: TransportInfo) -> Op[None]:
        while data := (yield Receive(timeout=5)):
            yield Send(data)

    server = serve(flow)
    real = server._listener
    failures = [0]

    class Failing:
        def accept(self) -> Any:
            failures[0] += 1
            raise OSError(24, "Too many open files")

        def close(self) -> None:
            real.close()

    with connect(server.port) as busy:
        busy.sendall(b"x")
        assert busy.recv(10) == b"x"
        server._listener = Failing()  # type: ignore[assignment]
        waiting = connect(server.port)  # queued in the backlog: accept() fails on it
        began = time.monotonic()
        for _ in range(200):
            busy.sendall(b"y")
            assert busy.recv(10) == b"y"
        assert time.monotonic() - began < 5.0  # was 50 ms a round trip: 10 s
        assert failures[0] >= 1
        server._listener = real
        waiting.sendall(b"z")
        assert waiting.recv(10) == b"z"  # accepted once the listener is back
        waiting.close()


def test_a_very_long_timeout(serve: Callable[..., EventServer]) -> None:
    """A deadline beyond what epoll can wait for at once is waited for in steps."""

    def flow(info: TransportInfo) -> Op[None]:
        data = yield Receive(timeout=1e9)
        yield Send(data)

    server = serve(flow)
    with connect(server.port) as sock:
        time.sleep(0.1)
        sock.sendall(b"late\n")
        assert read_until(sock, b"\n") == b"late\n"
    assert server._thread.is_alive()
