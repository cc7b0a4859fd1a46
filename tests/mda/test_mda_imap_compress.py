"""COMPRESS=DEFLATE (RFC 4978) in the MDA's IMAP server.

The stream layer (`imap_compress.Deflate`, `compressing`) against zlib as a client would
use it, including a deflate bomb; then whole sessions with imaplib, its socket wrapped
in raw DEFLATE once the server said OK.
"""

from __future__ import annotations

import imaplib
import io
import socket
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

from mailproto.imap import responses as r
from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters import blocking
from mailproto_adapters._effects import Call, Receive, Send
from mailproto_adapters._serving import ServeConfig
from mailproto_adapters._transport import TransportTimeout
from mailproto_adapters.mda import imap_compress
from mailproto_adapters.mda.auth import Authenticator
from mailproto_adapters.mda.imap_compress import CompressionError, Deflate, compressing
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB


def client_deflate(data: bytes, c_: Any) -> bytes:
    return bytes(c_.compress(data) + c_.flush(zlib.Z_SYNC_FLUSH))


# -- the stream layer -------------------------------------------------------------------


def test_round_trip_both_ways() -> None:
    stream = Deflate()
    assert not stream.active
    stream.start()
    assert stream.active
    with pytest.raises(RuntimeError):
        stream.start()
    reader = zlib.decompressobj(-15)
    for chunk in (b"* OK hello\r\n", b"x" * 100_000, b"a OK done\r\n"):
        assert reader.decompress(stream.deflate(chunk)) == chunk  # sync flush: all now
    writer = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert stream.inflate(client_deflate(b"a NOOP\r\n", writer)) == b"a NOOP\r\n"
    assert not stream.pending
    # A write split anywhere: octets come out as far as they can be decoded.
    data = client_deflate(b"b CAPABILITY\r\n", writer)
    got = b"".join(stream.inflate(data[i : i + 1]) for i in range(len(data)))
    assert got == b"b CAPABILITY\r\n"
    with pytest.raises(ValueError):
        Deflate(max_output=0)


def test_deflate_bomb_is_read_in_bounded_pieces() -> None:
    stream = Deflate(max_output=4096)
    stream.start()
    writer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = client_deflate(b"\0" * 20_000_000, writer)
    assert len(bomb) < 40_000
    total = 0
    pieces = 0
    out = stream.inflate(bomb[:16384])
    while True:
        assert len(out) <= 4096
        total += len(out)
        pieces += 1
        if not stream.pending:
            break
        out = stream.inflate()
    rest = bomb[16384:]
    while rest:
        out = stream.inflate(rest[:16384])
        rest = rest[16384:]
        total += len(out)
        while stream.pending:
            piece = stream.inflate()
            assert len(piece) <= 4096
            total += len(piece)
    assert total == 20_000_000
    assert pieces > 1


def test_corrupt_or_finished_stream() -> None:
    stream = Deflate()
    stream.start()
    with pytest.raises(CompressionError, match="bad DEFLATE"):
        stream.inflate(b"\xff\xff\xff\xff garbage")
    stream = Deflate()
    stream.start()
    ended = zlib.compressobj(6, zlib.DEFLATED, -15)
    with pytest.raises(CompressionError, match="ended"):
        stream.inflate(ended.compress(b"a NOOP\r\n") + ended.flush())


def test_compress_reply() -> None:
    stream = Deflate()
    assert imap_compress.compress_reply("a", "deflate", stream).status == "OK"
    bad = imap_compress.compress_reply("a", "LZ4", stream)
    assert bad.status == "BAD"
    stream.start()
    again = imap_compress.compress_reply("a", "DEFLATE", stream)
    assert again.status == "NO"
    assert again.code == r.OtherCode(name="COMPRESSIONACTIVE")


def test_compressing_wraps_only_send_and_receive() -> None:
    stream = Deflate()
    seen: list[Any] = []

    def flow() -> Generator[Any, Any, str]:
        seen.append((yield Send(b"plain")))
        seen.append((yield Receive(timeout=1.0)))
        stream.start()
        seen.append((yield Call(len, (b"abc",))))
        seen.append((yield Send(b"squeezed\r\n")))
        seen.append((yield Receive(timeout=2.0)))
        try:
            yield Receive(timeout=3.0)
        except TransportTimeout:
            seen.append("timeout")
        for _ in range(3):
            seen.append((yield Receive(max_bytes=4)))
        seen.append((yield Receive()))
        return "done"

    wrapped = compressing(flow(), stream)
    assert wrapped.send(None) == Send(b"plain")
    assert wrapped.send(None) == Receive(timeout=1.0)
    assert isinstance(wrapped.send(b"hello"), Call)
    effect = wrapped.send(3)
    assert isinstance(effect, Send)
    assert zlib.decompressobj(-15).decompress(effect.data) == b"squeezed\r\n"
    writer = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = client_deflate(b"a NOOP\r\n", writer)
    assert wrapped.send(None) == Receive(timeout=2.0)
    # A partial block gives no octets: the wrapper reads again.
    assert wrapped.send(data[:1]) == Receive(timeout=2.0)
    assert wrapped.send(data[1:]) == Receive(timeout=3.0)
    assert wrapped.throw(TransportTimeout("slow")) == Receive(max_bytes=4)
    # max_bytes is kept: the rest is served at the next Receives, without reading.
    assert wrapped.send(client_deflate(b"0123456789", writer)) == Receive()
    with pytest.raises(StopIteration) as stop:
        wrapped.send(b"")  # the peer closed
    assert stop.value.value == "done"
    assert seen[:6] == [None, b"hello", 3, None, b"a NOOP\r\n", "timeout"]
    assert seen[6:] == [b"0123", b"4567", b"89", b""]


def test_closing_the_wrapper_closes_the_flow() -> None:
    closed: list[bool] = []

    def flow() -> Generator[Any, Any, None]:
        try:
            yield Receive()
        finally:
            closed.append(True)

    wrapped = compressing(flow(), Deflate())
    next(wrapped)
    wrapped.close()
    assert closed == [True]


# -- whole sessions -----------------------------------------------------------------------


@pytest.fixture
def compress_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """imaplib does not know COMPRESS: let it send the command."""
    monkeypatch.setitem(imaplib.Commands, "COMPRESS", ("AUTH", "SELECTED"))


@pytest.fixture
def mda(tmp_path: Path) -> MDA:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw")
    return MDA(
        tmp_path,
        users=users,
        hostname="mda.test",
        allow_plaintext=True,
        authenticator=Authenticator(users, base_delay=0.05, max_delay=0.1),
    )


@pytest.fixture
def port(mda: MDA) -> Iterator[int]:
    config = ServeConfig(host="127.0.0.1", port=0, grace=1.0)
    server: Any = blocking.BlockingServer(mda.imap_session, config).start()
    yield int(server.port)
    server.close(1.0)


class _Inflating(io.RawIOBase):
    """The client's reading side once compression is on."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = zlib.decompressobj(-15)
        self.buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.buf:
            raw = self.sock.recv(65536)
            if not raw:
                return 0
            self.buf = self.stream.decompress(raw)
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


class _Deflating:
    """The client's writing side once compression is on (sync flush per write)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.stream = zlib.compressobj(6, zlib.DEFLATED, -15)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(client_deflate(data, self.stream))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def start_compression(client: Any) -> None:
    typ, data = client._simple_command("COMPRESS", "DEFLATE")
    assert typ == "OK", data
    raw = client.sock
    client.file = io.BufferedReader(_Inflating(raw))
    client.sock = _Deflating(raw)


def login(port: int) -> Any:
    client: Any = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    client.login("alice", "alice-pw")
    return client


def test_offered_after_login(port: int) -> None:
    client = login(port)
    assert "COMPRESS=DEFLATE" in client.capabilities
    client.logout()


@pytest.mark.usefixtures("compress_command")
def test_imaplib_session_compressed(mda: MDA, port: int) -> None:
    body = b"Subject: big\r\n\r\n" + b"All work and no play.\r\n" * 5000
    mda.user_store("alice").deliver(body)
    client = login(port)
    assert "COMPRESS=DEFLATE" in client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="Unknown compression"):
        client._simple_command("COMPRESS", "LZ4")
    start_compression(client)
    assert client.select("INBOX") == ("OK", [b"1"])
    typ, data = client.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK"
    assert data[0][1] == body
    # A second COMPRESS: NO [COMPRESSIONACTIVE], the session goes on.
    typ, data = client._simple_command("COMPRESS", "DEFLATE")
    assert typ == "NO"
    assert data[0].startswith(b"[COMPRESSIONACTIVE]")
    client.append("INBOX", None, None, b"Subject: two\r\n\r\nsecond\r\n")
    assert client.noop()[0] == "OK"
    assert client.search(None, "ALL") == ("OK", [b"1 2"])
    client.logout()


@pytest.mark.usefixtures("compress_command")
def test_deflate_bomb_over_the_wire(port: int) -> None:
    client = login(port)
    client.select("INBOX")
    start_compression(client)  # with a mailbox selected: its updates go first
    # 50 MB of one line, a few KiB compressed: refused as too long, memory stays small.
    client.sock.sendall(b"a NOOP " + b"x" * 50_000_000 + b"\r\n")
    line = client.readline()
    assert b"BAD" in line
    assert b"too long" in line.lower()
    assert client.noop()[0] == "OK"
    client.logout()


@pytest.mark.usefixtures("compress_command")
def test_corrupt_stream_closes_the_connection(port: int) -> None:
    client = login(port)
    start_compression(client)
    client.sock._sock.sendall(b"\xff\xff\xff\xff not deflate at all\r\n")
    assert client.file.read(1) == b""  # closed, without a word (it could not be read)
    client.sock.close()
    again = login(port)  # the server goes on
    assert again.noop()[0] == "OK"
    again.logout()


@pytest.mark.usefixtures("compress_command")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_flavours_compressed_with_idle(mda: MDA, backend: str) -> None:
    """The same session under the async drivers; IDLE's 1 s polls are Receive timeouts."""
    config = ServeConfig(host="127.0.0.1", port=0, grace=1.0)
    with anyio.from_thread.start_blocking_portal(backend=backend) as portal:
        server: Any
        if backend == "asyncio":
            server = portal.call(asyncio_flavour.AsyncioServer.start, mda.imap_session, config)
            port = int(server.port)
        else:
            server = anyio_flavour.AnyIOServer(mda.imap_session, config)
            _task, port = portal.start_task(server.serve)
        try:
            client = login(port)
            client.select("INBOX")
            start_compression(client)
            tag = client._new_tag()
            client.send(tag + b" IDLE\r\n")
            assert client.readline().startswith(b"+")
            mda.user_store("alice").deliver(b"Subject: hi\r\n\r\nhello\r\n")
            assert client.readline() == b"* 1 EXISTS\r\n"
            assert client.readline() == b"* 1 RECENT\r\n"
            client.send(b"DONE\r\n")
            assert client.readline().startswith(tag + b" OK")
            typ, data = client.fetch("1", "(BODY.PEEK[])")
            assert typ == "OK"
            assert data[0][1] == b"Subject: hi\r\n\r\nhello\r\n"
            client.logout()
        finally:
            portal.call(server.close, 1.0)
