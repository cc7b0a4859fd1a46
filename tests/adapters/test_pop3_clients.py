"""POP3Client (blocking) and AsyncPOP3Client (asyncio, anyio on asyncio and trio).

Against real servers on 127.0.0.1: a private Dovecot POP3 (``tests/dovecot_helpers.py``)
serving a Maildir of a few messages, one of 2 MB, and our ``examples/pop3_maildir.py``
as a subprocess (STLS with a trustme certificate, APOP, SASL PLAIN). Every scenario is
one async function run by each flavour: the blocking client is wrapped so that the same
scenario drives it. The async flavours are the two subclasses below, exactly what
``mailproto_adapters.asyncio`` and ``.anyio`` export as ``AsyncPOP3Client``.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from dovecot_helpers import (
    Dovecot,
    deliver,
    free_port,
    instance_processes,
    start_dovecot,
    unavailable_reason,
)
from mailproto import LocalProtocolError
from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters._driver import drive
from mailproto_adapters._effects import TLSInfo, TransportInfo
from mailproto_adapters._ops.pop3_client import POP3ClientSession
from mailproto_adapters._pop3_clients import POP3Client
from mailproto_adapters.errors import AuthenticationFailed, ServerError, TLSFailed

if TYPE_CHECKING:
    from conftest import TLSFiles

pytestmark = pytest.mark.interop

FLAVOURS = ["blocking", "asyncio", "anyio-asyncio", "anyio-trio"]
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "pop3_maildir.py"
USER, PASSWORD = "alice", "correct horse"


class SyncAsAsync:
    """The blocking client behind the async API, so one scenario tests every flavour."""

    def __init__(self, client: POP3Client) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    async def __aenter__(self) -> SyncAsAsync:
        self.client.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.client.__exit__(*exc)


def client(flavour: str, port: int, **kwargs: Any) -> Any:
    if flavour == "blocking":
        return SyncAsAsync(POP3Client("127.0.0.1", port, **kwargs))
    module: Any = asyncio_flavour if flavour == "asyncio" else anyio_flavour
    return module.AsyncPOP3Client("127.0.0.1", port, **kwargs)


def run(flavour: str, scenario: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(scenario, backend="trio" if flavour == "anyio-trio" else "asyncio")


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- the messages ----------------------------------------------------------------------


def big_message(size: int = 2_000_000) -> bytes:
    """``size`` octets of CRLF lines, some starting with "." (stuffed on the wire)."""
    buf = bytearray(b"From: Bob <bob@example.org>\r\nSubject: big\r\nX-Test-Id: big\r\n\r\n")
    n = 0
    while size - len(buf) > 100:
        n += 1
        buf += (b"." if n % 97 == 0 else b"") + b"%06d " % n + b"x" * 60 + b"\r\n"
    buf += b"e" * (size - len(buf) - 2) + b"\r\n"
    return bytes(buf)


MESSAGES = [
    b"From: Bob <bob@example.org>\r\nSubject: one\r\nX-Test-Id: one\r\n\r\n"
    b"line 1\r\n.leading dot\r\nline 3\r\n.\r\nline 5\r\n",
    b"From: Bob <bob@example.org>\r\nSubject: two\r\nX-Test-Id: two\r\n\r\nshort\r\n",
    big_message(),
    "From: Bob <bob@example.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nX-Test-Id: utf8\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nCafé, 日本語\r\n".encode(),
]


def top_of(message: bytes, lines: int) -> bytes:
    header, _, body = message.partition(b"\r\n\r\n")
    return (
        header + b"\r\n\r\n" + b"".join(line + b"\r\n" for line in body.split(b"\r\n")[:-1][:lines])
    )


# --- Dovecot ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot(pytestconfig: pytest.Config, tls_files: TLSFiles) -> Iterator[Dovecot]:
    """Dovecot with POP3 on ``ports["pop3"]`` (STLS offered) and ``ports["pop3s"]``
    (implicit TLS), both with the trustme certificate."""
    from conftest import RequireTool, interop_required

    reason = unavailable_reason(("pop3",))
    if reason is not None:
        RequireTool(interop_required(pytestconfig)).unavailable(reason)
    # Not under pytest's temporary root: another pytest run on this machine resets that
    # to mode 0700, which would lock Dovecot's users out in the middle of the tests.
    base = Path(tempfile.mkdtemp(prefix="mailproto-pop3-dovecot-"))
    pop3s = free_port()  # a clash with another listener would show as a failed start
    try:
        deliver(base / "Maildir", MESSAGES)
        (base / "run").mkdir()
        server = start_dovecot(
            base / "run",
            base / "Maildir",
            protocols=("pop3",),
            user=USER,
            password=PASSWORD,
            # Later settings win: SCRAM and CRAM-MD5 too; no delay after a bad password,
            # and no growing per-IP penalty (an auth process that cannot reach anvil's
            # penalty socket does without: the documented way to turn it off).
            extra_config="auth_mechanisms = plain login cram-md5 scram-sha-256\n"
            "auth_failure_delay = 0\n"
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
            f"ssl = yes\nssl_cert = <{tls_files.cert}\nssl_key = <{tls_files.key}\n"
            f"service pop3-login {{\n  inet_listener pop3s {{\n    port = {pop3s}\n  }}\n}}\n",
            private_root=base,
        )
        server.ports["pop3s"] = pop3s
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert not instance_processes(server.instance)


def maildir_messages(maildir: Path) -> list[bytes]:
    """The Maildir's messages in Dovecot's (delivery) order: by the time in their names."""
    files = [f for sub in ("new", "cur") for f in (maildir / sub).iterdir()]
    return [f.read_bytes() for f in sorted(files, key=lambda f: f.name)]


def test_dovecot_read_everything(flavour: str, dovecot: Dovecot, tmp_path: Path) -> None:
    target = tmp_path / "big.eml"

    async def scenario() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with client(flavour, dovecot.ports["pop3"], starttls=False, timeout=10) as pop:
            assert pop.tls_info is None
            got["caps"] = pop.capabilities
            await pop.login(USER, PASSWORD, mechanism="USER")
            got["stat"] = await pop.stat()
            got["list"] = await pop.list()
            got["list1"] = await pop.list(1)
            got["uidl"] = await pop.uidl()
            got["uidl2"] = await pop.uidl(2)
            got["retr"] = [await pop.retr(n) for n in (1, 2, 4)]
            with open(target, "wb") as out:
                got["streamed"] = await pop.retr(3, out=out)
            got["top"] = [await pop.top(1, n) for n in (0, 2)]
            got["list_many"] = await pop.list_many([4, 2, 1])
            got["list_many_big"] = await pop.list_many([1, 2, 3, 4] * 50)  # in batches
            buffers: dict[int, io.BytesIO] = {}
            got["retr_many"] = await pop.retr_many(
                [1, 2, 4], lambda n: buffers.setdefault(n, io.BytesIO())
            )
            got["retr_many_bytes"] = await pop.retr_many([2, 1])
            got["buffers"] = {n: b.getvalue() for n, b in buffers.items()}
            await pop.noop()
            with pytest.raises(ServerError) as missing:
                await pop.retr(99)
            got["missing"] = missing.value
        return got

    got = run(flavour, scenario)
    assert {"USER", "UIDL", "TOP", "PIPELINING"} <= set(got["caps"].tags)
    assert {"PLAIN", "SCRAM-SHA-256"} <= got["caps"].sasl_mechanisms
    on_disk = maildir_messages(dovecot.maildir)
    assert on_disk == MESSAGES
    sizes = [len(m) for m in MESSAGES]
    assert got["stat"] == (len(MESSAGES), sum(sizes))
    assert got["list"] == list(enumerate(sizes, 1))
    assert got["list1"] == (1, sizes[0])
    uids = [u for _, u in got["uidl"]]
    assert [n for n, _ in got["uidl"]] == [1, 2, 3, 4]
    assert len(set(uids)) == 4
    assert got["uidl2"] == (2, uids[1])
    assert got["retr"] == [MESSAGES[0], MESSAGES[1], MESSAGES[3]]
    assert got["streamed"] == len(MESSAGES[2]) == target.stat().st_size
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(MESSAGES[2]).digest()
    assert got["top"] == [top_of(MESSAGES[0], 0), top_of(MESSAGES[0], 2)]
    assert got["list_many"] == [(4, sizes[3]), (2, sizes[1]), (1, sizes[0])]
    assert got["list_many_big"] == list(enumerate(sizes, 1)) * 50
    assert got["retr_many"] == [sizes[0], sizes[1], sizes[3]]
    assert got["buffers"] == {1: MESSAGES[0], 2: MESSAGES[1], 4: MESSAGES[3]}
    assert got["retr_many_bytes"] == [MESSAGES[1], MESSAGES[0]]
    assert got["missing"].code == "-ERR"
    assert got["missing"].command == "RETR"


@pytest.mark.parametrize("mechanism", [None, "PLAIN", "LOGIN", "CRAM-MD5", "USER"])
def test_dovecot_login_mechanisms(dovecot: Dovecot, mechanism: str | None) -> None:
    """Each way in, with the blocking client (the flows are the same in every flavour);
    the default picks SCRAM-SHA-256, which also checks the server's signature."""
    with POP3Client("127.0.0.1", dovecot.ports["pop3"], starttls=False, timeout=10) as pop:
        pop.login(USER, PASSWORD, mechanism=mechanism)
        assert pop.login_method == (mechanism or "SCRAM-SHA-256")
        assert pop.stat()[0] >= len(MESSAGES)


def test_dovecot_tls_sasl_plain_dele_rset_quit(
    flavour: str, dovecot: Dovecot, tls_files: TLSFiles
) -> None:
    """Over STLS, then over implicit TLS: DELE and RSET leave the Maildir alone; DELE
    (alone and pipelined) then QUIT removes the files."""
    stamp = 1_800_000_000 + FLAVOURS.index(flavour) * 10
    extra = [b"Subject: doomed %d\r\nX-Test-Id: doomed\r\n\r\nbye\r\n" % i for i in range(3)]
    deliver(dovecot.maildir, extra, first_time=stamp)
    count = len(MESSAGES) + len(extra)
    context = tls_files.client_context()

    async def scenario() -> None:
        async with client(flavour, dovecot.ports["pop3"], starttls=context, timeout=10) as pop:
            assert pop.tls_info is not None
            assert "STLS" not in pop.capabilities  # CAPA asked again after STLS
            await pop.login(USER, PASSWORD, mechanism="PLAIN")
            assert await pop.stat() == (count, sum(map(len, MESSAGES + extra)))
            await pop.dele(count)
            with pytest.raises(LocalProtocolError, match="deleted"):
                await pop.retr(count)  # the core knows, and does not send it
            assert (await pop.stat())[0] == count - 1
            await pop.rset()
            assert (await pop.stat())[0] == count
            assert await pop.retr(count) == extra[-1]
        assert maildir_messages(dovecot.maildir) == MESSAGES + extra
        async with client(flavour, dovecot.ports["pop3s"], tls=context, timeout=10) as pop:
            assert pop.tls_info is not None
            await pop.login(USER, PASSWORD)  # SCRAM-SHA-256
            await pop.dele(len(MESSAGES) + 1)
            await pop.dele_many([len(MESSAGES) + 2, len(MESSAGES) + 3])
            assert (await pop.stat())[0] == len(MESSAGES)
            assert (await pop.quit()) is not None

    run(flavour, scenario)
    assert maildir_messages(dovecot.maildir) == MESSAGES


def test_dovecot_wrong_password(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> None:
        for mechanism in ("USER", None):
            async with client(flavour, dovecot.ports["pop3"], starttls=False) as pop:
                with pytest.raises(AuthenticationFailed):
                    await pop.login(USER, "wrong", mechanism=mechanism)

    run(flavour, scenario)


@pytest.mark.parametrize("how", ["tls", "starttls"])
def test_dovecot_untrusted_certificate(flavour: str, dovecot: Dovecot, how: str) -> None:
    port = dovecot.ports["pop3s" if how == "tls" else "pop3"]

    async def scenario() -> None:
        async with client(flavour, port, **{how: True}):
            raise AssertionError("the handshake should fail")

    with pytest.raises(TLSFailed, match="certificate"):
        run(flavour, scenario)


# --- our example server: STLS, APOP, pipelining ------------------------------------------


@dataclass
class Example:
    """A running ``examples/pop3_maildir.py`` and its Maildir."""

    process: subprocess.Popen[bytes]
    log: Path
    maildir: Path
    port: int = 0

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_example(tmp_path: Path) -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def start(*args: str) -> Example:
        maildir = tmp_path / f"Maildir{len(started)}"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for i, data in enumerate(MESSAGES):
            (maildir / "cur" / f"{1_700_000_000 + i}.M{i}P1.test:2,S").write_bytes(data)
        log = tmp_path / f"example{len(started)}.log"
        command = [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", "0"]
        command += ["--maildir", str(maildir), "--user", USER, "--password", PASSWORD, *args]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        server = Example(process, log, maildir)
        started.append(server)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            first, newline, _ = log.read_text(errors="replace").partition("\n")
            if newline and first.startswith("listening on 127.0.0.1:"):
                server.port = int(first.rpartition(":")[2])
                return server
            if process.poll() is not None:
                break
            time.sleep(0.02)
        pytest.fail(f"pop3_maildir did not start:\n{server.stop()}", pytrace=False)

    try:
        yield start
    finally:
        crashed = [out for out in (s.stop() for s in started) if "Traceback" in out]
    if crashed:
        pytest.fail("pop3_maildir crashed:\n" + "\n".join(crashed), pytrace=False)


def test_example_stls_login_retr(
    flavour: str, start_example: Callable[..., Example], tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = start_example(*tls_files.args())
    target = tmp_path / "big.eml"

    async def scenario() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with client(flavour, server.port, starttls=tls_files.client_context()) as pop:
            assert pop.tls_info is not None
            assert pop.tls_info.version.startswith("TLS")
            got["caps"] = pop.capabilities
            await pop.login(USER, PASSWORD)  # SASL PLAIN, offered only now
            got["stat"] = await pop.stat()
            with open(target, "wb") as out:
                got["streamed"] = await pop.retr(3, out)
            got["first"] = await pop.retr(1)
            await pop.dele_many([2, 4])
            got["after"] = await pop.list()
        return got

    got = run(flavour, scenario)
    assert "STLS" not in got["caps"]
    assert got["caps"].sasl_mechanisms == {"PLAIN"}
    assert got["stat"] == (len(MESSAGES), sum(map(len, MESSAGES)))
    assert got["streamed"] == len(MESSAGES[2])
    assert target.read_bytes() == MESSAGES[2]
    assert got["first"] == MESSAGES[0]
    assert got["after"] == [(1, len(MESSAGES[0])), (3, len(MESSAGES[2]))]
    assert sorted(f.read_bytes() for f in (server.maildir / "cur").iterdir()) == sorted(
        [MESSAGES[0], MESSAGES[2]]
    )


@pytest.mark.parametrize("flavour", FLAVOURS[1:])
def test_example_retr_into_an_async_file(
    flavour: str, start_example: Callable[..., Example], tmp_path: Path
) -> None:
    """An async file's write is awaited chunk by chunk (anyio.open_file here)."""
    server = start_example()
    target = tmp_path / "big.eml"

    async def scenario() -> int:
        async with client(flavour, server.port, starttls=False) as pop:
            await pop.login(USER, PASSWORD)
            async with await anyio.open_file(target, "wb") as out:
                size: int = await pop.retr(3, out)
                return size

    assert run(flavour, scenario) == len(MESSAGES[2])
    assert target.read_bytes() == MESSAGES[2]


def test_example_apop_and_plain_text(flavour: str, start_example: Callable[..., Example]) -> None:
    server = start_example()

    async def scenario() -> None:
        async with client(flavour, server.port, starttls=False) as pop:
            assert re.search(r"<[^<>@\s]+@[^<>\s]+>", pop.welcome)
            with pytest.raises(AuthenticationFailed, match=r"\[AUTH\]"):
                await pop.login(USER, "wrong", mechanism="APOP")
            await pop.apop(USER, PASSWORD)
            assert (await pop.stat())[0] == len(MESSAGES)
            assert await pop.uidl(1) == (1, "1700000000.M0P1.test")
            await pop.dele(1)
            # no QUIT: the block raises, the connection is closed, nothing is deleted
            raise KeyError("leave")

    with pytest.raises(KeyError):
        run(flavour, scenario)
    assert len(list((server.maildir / "cur").iterdir())) == len(MESSAGES)


def test_example_stls_untrusted_certificate(
    flavour: str, start_example: Callable[..., Example], tls_files: TLSFiles
) -> None:
    server = start_example(*tls_files.args())

    async def scenario() -> None:
        async with client(flavour, server.port, starttls=True):
            raise AssertionError("the handshake should fail")

    with pytest.raises(TLSFailed, match="certificate"):
        run(flavour, scenario)


def test_example_stls_required_but_not_offered(
    flavour: str, start_example: Callable[..., Example]
) -> None:
    server = start_example()

    async def scenario() -> None:
        async with client(flavour, server.port, starttls=True):
            raise AssertionError("STLS is not offered")

    with pytest.raises(ServerError, match="STLS"):
        run(flavour, scenario)


# --- pipelining, seen on the wire (a scripted server) -------------------------------------


class Scripted:
    """A blocking transport that answers each command line from ``answers`` and
    records every write, to see what went out together."""

    def __init__(self, greeting: bytes, answers: dict[bytes, bytes]) -> None:
        self.pending = greeting
        self.answers = answers
        self.writes: list[bytes] = []

    def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        data, self.pending = self.pending[:max_bytes], self.pending[max_bytes:]
        return data

    def send_all(self, data: bytes, timeout: float | None) -> None:
        self.writes.append(data)
        for line in data.splitlines():
            self.pending += self.answers[line]

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None,
        timeout: float | None,
    ) -> TLSInfo:
        raise AssertionError("no TLS here")

    def close(self) -> None:
        pass

    def info(self) -> TransportInfo:
        return TransportInfo()


@pytest.mark.parametrize("pipelining", [True, False])
def test_pipelined_commands_go_out_together(pipelining: bool) -> None:
    capa = b"+OK\r\nUIDL\r\n" + (b"PIPELINING\r\n" if pipelining else b"") + b".\r\n"
    answers = {b"CAPA": capa, b"USER a": b"+OK\r\n", b"PASS b": b"+OK\r\n", b"RSET": b"+OK\r\n"}
    answers |= {b"DELE %d" % n: b"+OK\r\n" for n in range(1, 200)}
    answers[b"DELE 7"] = b"-ERR [SYS/TEMP] no\r\n"
    answers |= {b"RETR %d" % n: b"+OK\r\nm%d\r\n..x\r\n.\r\n" % n for n in (1, 2)}
    transport = Scripted(b"+OK hi\r\n", answers)
    session = POP3ClientSession(host="scripted")
    drive(session.greet(), transport)
    drive(session.capa(), transport)
    drive(session.login("a", "b"), transport)
    assert session.login_method == "USER"
    transport.writes.clear()
    with pytest.raises(ServerError, match=r"DELE 7: .*\[SYS/TEMP\] no"):
        drive(session.dele_many(range(1, 151)), transport)
    assert b"".join(transport.writes) == b"".join(b"DELE %d\r\n" % n for n in range(1, 151))
    if pipelining:  # a first window of 64, then a batch each time half are answered
        assert [len(w.splitlines()) for w in transport.writes] == [64] + [32] * 2 + [22]
    else:
        assert len(transport.writes) == 150
    drive(session.rset(), transport)
    transport.writes.clear()
    assert drive(session.retr_many([1, 2]), transport) == [b"m1\r\n.x\r\n", b"m2\r\n.x\r\n"]
    assert len(transport.writes) == (1 if pipelining else 2)
