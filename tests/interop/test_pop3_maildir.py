"""Real clients read a Maildir through ``examples/pop3_maildir.py``: poplib and fetchmail.

The example runs as a subprocess on 127.0.0.1 and an ephemeral port (``--port 0``; the
port comes from its first line of output), is always stopped, and its output is checked
for tracebacks. Every message is compared byte for byte with its file once that is
converted to what POP3 sends: CRLF line endings, and a final CRLF if the file has none.

The Maildir holds the awkward cases: LF-only line endings, lines that start with "." (and
a line that is only "."), a message without a final newline, 8-bit UTF-8, a file name too
long for a UIDL, and a message over 1 MB whose layout puts a CRLF across the example's
64 KiB reads and a "." line right at the start of one.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import poplib
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RequireTool, TLSFiles

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "pop3_maildir.py"
USER, PASSWORD = "alice", "correct horse"  # PASS takes the rest of the line, spaces too
READ_SIZE = 65536  # the example reads files in chunks of this size (its CHUNK)


# --- the Maildir ---------------------------------------------------------------------


def big_message() -> bytes:
    """Over 1 MB of CRLF lines, with two traps at the example's read boundaries: a "."
    line that starts a read, and a CRLF split between two reads (its CR ends the first)
    followed by a line that is only "."."""
    buf = bytearray(
        b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\n"
        b"Subject: big\r\nX-Test-Id: big\r\n\r\n"
    )

    def fill_to(end: int) -> None:
        """Append filler lines (up to 78 octets with CRLF) until the size is ``end``."""
        n = 0
        while end - len(buf) > 100:
            n += 1
            buf.extend(b"%05d " % n + b"x" * 70 + b"\r\n")
        rest = end - len(buf)
        assert rest == 0 or rest >= 4
        if rest:
            buf.extend(b"y" * (rest // 2 - 2) + b"\r\n" + b"z" * (rest - rest // 2 - 2) + b"\r\n")
        assert len(buf) == end

    fill_to(READ_SIZE)
    buf.extend(b".a dot line at the start of the second read\r\n")
    fill_to(2 * READ_SIZE - 5)
    buf.extend(b"tail\r\n")  # its CR ends the second read, its LF starts the third
    assert buf[2 * READ_SIZE - 1 : 2 * READ_SIZE + 1] == b"\r\n"
    buf.extend(b".\r\n..\r\n")
    fill_to(1_100_000)
    buf.extend(b"the end\r\n")
    return bytes(buf)


LONG_NAME = "1700000006.M6P100." + "x" * 80 + ".test:2,S"

# Maildir file (relative to the folder) -> content. POP3 numbers them by file name.
MESSAGES: dict[str, bytes] = {
    "cur/1700000001.M1P100.test:2,S": (
        b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\n"
        b"Subject: CRLF and dots\r\nX-Test-Id: crlf\r\n\r\n"
        b"Hello Alice,\r\n.leading dot\r\n..two dots\r\n.\r\nthe line above was a dot\r\n"
    ),
    "new/1700000002.M2P100.test": (
        b"From: Bob <bob@example.org>\nTo: alice@example.org\n"
        b"Subject: LF only\nX-Test-Id: lf\n\n"
        b"line one\n.dot line\n.\n\nafter an empty line\n"
    ),
    "cur/1700000003.M3P100.test:2,": (
        "From: Bob <bob@example.org>\nTo: alice@example.org\n"
        "Subject: =?utf-8?q?caf=C3=A9?=\nX-Test-Id: utf8\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        "Café crème, naïve façade, 日本語, 📬\n"
    ).encode(),
    "new/1700000004.M4P100.test": (
        b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\n"
        b"Subject: no final newline\r\nX-Test-Id: nonl\r\n\r\nno newline after this"
    ),
    "cur/1700000005.M5P100.test:2,S": big_message(),
    "cur/" + LONG_NAME: (
        b"From: Bob <bob@example.org>\nTo: alice@example.org\n"
        b"Subject: long file name\nX-Test-Id: long\n\nits UIDL is a hash\n"
    ),
}
ORDER = sorted(MESSAGES, key=lambda rel: rel.split("/")[1])  # message n is ORDER[n - 1]


def wire(content: bytes) -> bytes:
    """What POP3 sends of a file (unstuffed): CRLF line endings, a final CRLF."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", content)
    return out if out == b"" or out.endswith(b"\r\n") else out + b"\r\n"


def uid(rel: str) -> str:
    base = rel.split("/")[1].split(":")[0]
    if len(base) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in base):
        return base
    return hashlib.sha256(base.encode()).hexdigest()


def label_of(content: bytes) -> str:
    m = re.search(rb"^X-Test-Id: (\S+)\r?$", content, re.MULTILINE)
    assert m is not None
    return m.group(1).decode()


def make_maildir(path: Path, messages: dict[str, bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for rel, content in messages.items():
        (path / rel).write_bytes(content)
    return path


def files_left(maildir: Path) -> set[str]:
    return {
        f"{p.parent.name}/{p.name}" for sub in ("cur", "new") for p in (maildir / sub).iterdir()
    }


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return make_maildir(tmp_path / "Maildir", MESSAGES)


# --- the server ----------------------------------------------------------------------


@dataclass
class Server:
    """A running ``examples/pop3_maildir.py``."""

    process: subprocess.Popen[bytes]
    log: Path  # its stdout and stderr
    port: int = 0
    stopped: bool = field(default=False)

    def stop(self) -> str:
        """Terminate it (SIGTERM, then SIGKILL) and return its output."""
        if not self.stopped:
            self.stopped = True
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.log.read_text(errors="replace")


class StartServer:
    """``start_server(maildir, *args)`` runs the example; every one is stopped at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: list[Server] = []

    def __call__(self, maildir: Path, *args: str) -> Server:
        log = self.directory / f"pop3_maildir{len(self.servers)}.log"
        command = [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", "0"]
        command += ["--maildir", str(maildir), "--user", USER, "--password", PASSWORD, *args]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        server = Server(process, log)
        self.servers.append(server)
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

    def stop_all(self) -> list[str]:
        """Stop every server; the outputs that show a crash."""
        return [out for out in (s.stop() for s in self.servers) if "Traceback" in out]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    starter = StartServer(tmp_path)
    try:
        yield starter
    finally:
        crashed = starter.stop_all()
    if crashed:
        pytest.fail("pop3_maildir crashed:\n" + "\n".join(crashed), pytrace=False)


@pytest.fixture
def server(start_server: StartServer, maildir: Path) -> Server:
    return start_server(maildir)


def pop3(server: Server) -> poplib.POP3:
    return poplib.POP3("127.0.0.1", server.port, timeout=10)


def login(server: Server) -> poplib.POP3:
    client = pop3(server)
    try:
        client.user(USER)
        client.pass_(PASSWORD)
    except BaseException:
        client.close()
        raise
    return client


def login_when_unlocked(server: Server) -> poplib.POP3:
    """Log in once the session before has ended on the server and unlocked the maildrop."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return login(server)
        except poplib.error_proto as exc:
            if b"[IN-USE]" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def retrieved(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


# --- poplib --------------------------------------------------------------------------


def test_poplib_reads_every_message_byte_for_byte(server: Server, maildir: Path) -> None:
    with closing(pop3(server)) as client:
        assert re.fullmatch(rb"\+OK .*<[^<>@\s]+@[^<>\s]+>", client.getwelcome())
        caps = client.capa()
        for cap in ("TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"):
            assert cap in caps
        assert caps["SASL"] == ["PLAIN"]
        assert "IMPLEMENTATION" in caps
        assert "STLS" not in caps  # no certificate
        assert client.user(USER).startswith(b"+OK")
        assert client.pass_(PASSWORD).startswith(b"+OK")

        sizes = [len(wire(MESSAGES[rel])) for rel in ORDER]
        assert client.stat() == (len(ORDER), sum(sizes))
        _, listing, _ = client.list()
        assert listing == [b"%d %d" % (n, size) for n, size in enumerate(sizes, 1)]
        _, uidls, _ = client.uidl()
        assert uidls == [f"{n} {uid(rel)}".encode() for n, rel in enumerate(ORDER, 1)]
        assert len(uid("cur/" + LONG_NAME)) == 64
        for n, rel in enumerate(ORDER, 1):
            scan: object = client.list(n)  # typeshed says a listing; it is one line
            assert scan == b"+OK %d %d" % (n, sizes[n - 1])
            assert client.uidl(n) == f"+OK {n} {uid(rel)}".encode()
            _, lines, _ = client.retr(n)
            assert retrieved(lines) == wire(MESSAGES[rel]), rel
        with pytest.raises(poplib.error_proto, match="No such message"):
            client.retr(len(ORDER) + 1)
        assert client.noop().startswith(b"+OK")
        assert client.quit().startswith(b"+OK")
    assert files_left(maildir) == set(MESSAGES)


def test_poplib_top(server: Server) -> None:
    with closing(login(server)) as client:
        for n, rel in enumerate(ORDER, 1):
            message = wire(MESSAGES[rel])
            header, _, body = message.partition(b"\r\n\r\n")
            body_lines = body.split(b"\r\n")[:-1]
            for count in (0, 1, 3):
                _, lines, _ = client.top(n, count)
                expected = header + b"\r\n\r\n" + b"".join(b + b"\r\n" for b in body_lines[:count])
                assert retrieved(lines) == expected, (rel, count)
            _, lines, _ = client.top(n, 99_999_999)  # what fetchmail asks for
            assert retrieved(lines) == message, rel
        client.quit()


def test_poplib_apop(server: Server) -> None:
    with closing(pop3(server)) as client:
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.apop(USER, "wrong")
        assert client.apop(USER, PASSWORD).startswith(b"+OK")
        assert client.stat()[0] == len(ORDER)
        _, lines, _ = client.retr(2)
        assert retrieved(lines) == wire(MESSAGES[ORDER[1]])
        client.quit()


def test_poplib_wrong_password_and_user(server: Server) -> None:
    with closing(pop3(server)) as client:
        client.user(USER)
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
            client.pass_("wrong")
        client.user("mallory")
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
            client.pass_(PASSWORD)
        with pytest.raises(poplib.error_proto, match="Not authenticated"):
            client.stat()
        client.user(USER)  # still in AUTHORIZATION: try again
        assert client.pass_(PASSWORD).startswith(b"+OK")
        client.quit()


def test_dele_and_quit_remove_files(server: Server, maildir: Path) -> None:
    with closing(login(server)) as client:
        assert client.dele(1).startswith(b"+OK")
        assert client.dele(3).startswith(b"+OK")
        with pytest.raises(poplib.error_proto, match="already deleted"):
            client.retr(1)
        with pytest.raises(poplib.error_proto):
            client.dele(3)
        count, size = client.stat()
        kept = [rel for n, rel in enumerate(ORDER, 1) if n not in (1, 3)]
        assert (count, size) == (len(kept), sum(len(wire(MESSAGES[r])) for r in kept))
        _, listing, _ = client.list()
        assert [int(line.split()[0]) for line in listing] == [2, 4, 5, 6]  # numbers stay
        assert files_left(maildir) == set(MESSAGES)  # nothing removed before QUIT
        assert client.quit().startswith(b"+OK")
    assert files_left(maildir) == set(kept)
    with closing(login(server)) as client:  # a new session numbers what is left
        _, uidls, _ = client.uidl()
        assert uidls == [f"{n} {uid(rel)}".encode() for n, rel in enumerate(kept, 1)]
        client.quit()


def test_rset_and_a_lost_connection_keep_files(server: Server, maildir: Path) -> None:
    with closing(login(server)) as client:
        client.dele(1)
        client.dele(2)
        assert client.rset().startswith(b"+OK")
        assert client.stat()[0] == len(ORDER)
        _, lines, _ = client.retr(1)
        assert retrieved(lines) == wire(MESSAGES[ORDER[0]])
        client.quit()
    assert files_left(maildir) == set(MESSAGES)
    client = login(server)
    client.dele(1)
    client.close()  # no QUIT: no UPDATE state, nothing is removed (RFC 1939 section 6)
    with closing(login_when_unlocked(server)) as client:
        assert client.stat()[0] == len(ORDER)
        client.quit()
    assert files_left(maildir) == set(MESSAGES)


def test_maildrop_is_locked_while_in_use(server: Server) -> None:
    with closing(login(server)) as first, closing(pop3(server)) as second:
        second.user(USER)
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            second.pass_(PASSWORD)
        first.quit()
        second.user(USER)
        assert second.pass_(PASSWORD).startswith(b"+OK")
        second.quit()


def test_stls(start_server: StartServer, maildir: Path, tls_files: TLSFiles) -> None:
    server = start_server(maildir, *tls_files.args())
    with closing(pop3(server)) as client:
        caps = client.capa()
        assert "STLS" in caps
        assert "USER" not in caps  # no password in the clear before TLS
        assert "SASL" not in caps
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.user(USER)
        client.quit()
    with closing(pop3(server)) as client:
        assert client.stls(tls_files.client_context()).startswith(b"+OK")
        caps = client.capa()
        assert "STLS" not in caps
        assert "USER" in caps
        assert caps["SASL"] == ["PLAIN"]
        client.user(USER)
        client.pass_(PASSWORD)
        for n, rel in enumerate(ORDER, 1):
            _, lines, _ = client.retr(n)
            assert retrieved(lines) == wire(MESSAGES[rel])
        client.quit()


# --- raw sockets: what poplib does not send ------------------------------------------


class Raw:
    """A POP3 connection driven by hand."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        line = self.file.readline()
        assert line.endswith(b"\r\n"), line
        return line[:-2]

    def body(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".":
            lines.append(line[1:] if line.startswith(b".") else line)
        return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed_by_server(self) -> bool:
        return self.file.read() == b""


@contextmanager
def raw_session(server: Server) -> Iterator[Raw]:
    raw = Raw(server.port)
    try:
        yield raw
    finally:
        raw.file.close()
        raw.sock.close()


def plain(authzid: str, user: str, password: str) -> bytes:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode())


def test_auth_plain(server: Server) -> None:
    with raw_session(server) as raw:
        raw.send(b"AUTH\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.body() == [b"PLAIN"]
        raw.send(b"AUTH CRAM-MD5\r\n")
        assert raw.line().startswith(b"-ERR")
        raw.send(b"AUTH PLAIN " + plain("", USER, "wrong") + b"\r\n")
        assert raw.line().startswith(b"-ERR [AUTH]")
        raw.send(b"AUTH PLAIN " + plain("bob", USER, PASSWORD) + b"\r\n")  # not bob
        assert raw.line().startswith(b"-ERR [AUTH]")
        raw.send(b"AUTH PLAIN\r\n")  # no initial response: an empty challenge first
        assert raw.line() == b"+ "
        raw.send(b"*\r\n")
        assert raw.line().startswith(b"-ERR")
        raw.send(b"AUTH PLAIN\r\n")
        assert raw.line() == b"+ "
        raw.send(plain(USER, USER, PASSWORD) + b"\r\n")
        assert raw.line().startswith(b"+OK")
        raw.send(b"STAT\r\n")
        assert raw.line().split()[:2] == [b"+OK", str(len(ORDER)).encode()]
        raw.send(b"QUIT\r\n")
        assert raw.line().startswith(b"+OK")


def test_auth_exchange_ends_with_its_err(server: Server) -> None:
    """RFC 5034 section 4: once the server answered -ERR, the AUTH exchange is over and
    the next line is a command, even when the -ERR was for an over-long answer."""
    with raw_session(server) as raw:
        raw.send(b"AUTH PLAIN\r\n")
        assert raw.line() == b"+ "
        raw.send(b"A" * 20000 + b"\r\n")  # longer than any SASL answer may be
        assert raw.line().startswith(b"-ERR")
        raw.send(b"CAPA\r\n")
        assert raw.line().startswith(b"+OK"), "CAPA was taken for a SASL answer"
        assert b"TOP" in raw.body()


def test_pipelined_commands_are_answered_in_order(server: Server) -> None:
    with raw_session(server) as raw:
        raw.send(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
        assert raw.line().startswith(b"+OK")
        assert raw.line().startswith(b"+OK")
        raw.send(b"STAT\r\nLIST 1\r\nBOGUS\r\nRETR 2\r\nUIDL\r\nTOP 1 0\r\nRETR 99\r\nNOOP\r\n")
        assert raw.line().startswith(b"+OK %d " % len(ORDER))
        assert raw.line() == b"+OK 1 %d" % len(wire(MESSAGES[ORDER[0]]))
        assert raw.line().startswith(b"-ERR")
        assert raw.line().startswith(b"+OK")
        assert retrieved(raw.body()) == wire(MESSAGES[ORDER[1]])
        assert raw.line().startswith(b"+OK")
        assert len(raw.body()) == len(ORDER)
        assert raw.line().startswith(b"+OK")
        header = wire(MESSAGES[ORDER[0]]).partition(b"\r\n\r\n")[0]
        assert retrieved(raw.body()) == header + b"\r\n\r\n"
        assert raw.line().startswith(b"-ERR")
        assert raw.line().startswith(b"+OK")
        raw.send(b"QUIT\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.closed_by_server()


def test_bad_commands_get_err_and_the_session_goes_on(server: Server) -> None:
    with raw_session(server) as raw:
        raw.send(b"STAT\r\nUSER " + b"x" * 300 + b"\r\nPASS x\r\n")  # too soon, too long
        assert [raw.line()[:4] for _ in range(3)] == [b"-ERR"] * 3
        raw.send(f"user {USER}\r\npass {PASSWORD}\r\n".encode())  # case-insensitive
        assert raw.line().startswith(b"+OK")
        assert raw.line().startswith(b"+OK")
        bad = [
            b"RETR 0",
            b"RETR x",
            b"RETR",
            b"TOP 1 -1",
            b"STAT 1",
            b"DELE 99",
            b"STLS",
            b"RE\xe9",
        ]
        raw.send(b"".join(b + b"\r\n" for b in bad))
        for command in bad:
            assert raw.line().startswith(b"-ERR"), command
        raw.send(b"stat\r\n")
        assert raw.line().startswith(b"+OK %d " % len(ORDER))
        raw.send(b"QUIT\r\n")
        assert raw.line().startswith(b"+OK")


def test_too_many_errors_end_the_session(server: Server) -> None:
    with raw_session(server) as raw:
        raw.send(b"BOGUS\r\n" * 12)
        for _ in range(10):
            assert raw.line().startswith(b"-ERR")
        assert raw.line() == b"-ERR Too many errors, closing connection"
        assert raw.closed_by_server()


def test_stls_refuses_plaintext_pipelined_after_it(
    start_server: StartServer, maildir: Path, tls_files: TLSFiles
) -> None:
    """RFC 2595 section 4 / the "STARTTLS command injection" class: a command sent in
    plaintext behind STLS must never be read as if it came over TLS."""
    server = start_server(maildir, *tls_files.args())
    with raw_session(server) as raw:
        raw.send(f"STLS\r\nUSER {USER}\r\n".encode())
        assert raw.line().startswith(b"+OK")
        assert raw.line() == b"-ERR Command pipelining after STLS"
        assert raw.closed_by_server()


# --- fetchmail -----------------------------------------------------------------------


@dataclass
class Fetchmail:
    """fetchmail with a private home (rc file, .fetchids) and an MDA that writes every
    message it delivers to its own file."""

    program: str
    home: Path
    delivered: Path

    def run(self, port: int, options: str) -> tuple[int, str]:
        rc = self.home / "fetchmailrc"
        mda = f"cat > $(mktemp {shlex.quote(str(self.delivered))}/msg.XXXXXXXX)"
        rc.write_text(
            "set no syslog\n"
            "set no bouncemail\n"
            "set invisible\n"  # no Received header: the message arrives as sent
            f"poll 127.0.0.1 with proto POP3 port {port} uidl timeout 20\n"
            f'  user "{USER}" there with password "{PASSWORD}" is "{getpass.getuser()}" here\n'
            f"  no rewrite no stripcr {options}\n"  # addresses untouched, CRLF kept
            f'  mda "{mda}"\n'
        )
        rc.chmod(0o600)  # fetchmail refuses an rc file others can read
        env = {**os.environ, "HOME": str(self.home), "FETCHMAILHOME": str(self.home)}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            [self.program, "-f", str(rc), "-v", "--nosyslog"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=40,
            check=False,
        )
        return result.returncode, (result.stdout + result.stderr).decode(errors="replace")

    def take(self) -> dict[str, bytes]:
        """The messages delivered since the last call, by X-Test-Id."""
        out: dict[str, bytes] = {}
        for path in self.delivered.iterdir():
            content = path.read_bytes()
            key = label_of(content)
            assert key not in out, f"{key} delivered twice"
            out[key] = content
            path.unlink()
        return out


@pytest.fixture
def fetchmail(require_tool: RequireTool, tmp_path: Path) -> Fetchmail:
    program = require_tool("fetchmail")
    home, delivered = tmp_path / "fetchmail-home", tmp_path / "delivered"
    home.mkdir(mode=0o700)
    delivered.mkdir()
    return Fetchmail(program, home, delivered)


def expected(messages: dict[str, bytes]) -> dict[str, bytes]:
    return {label_of(content): wire(content) for content in messages.values()}


PLAINTEXT = "sslproto '' no sslcertck"  # the server has no certificate


def test_fetchmail_fetches_and_deletes(fetchmail: Fetchmail, server: Server, maildir: Path) -> None:
    status, log = fetchmail.run(server.port, PLAINTEXT)
    assert status == 0, log
    assert fetchmail.take() == expected(MESSAGES)
    assert f"{len(MESSAGES)} messages for {USER}" in log
    assert files_left(maildir) == set()  # DELE, then QUIT removed them
    status, log = fetchmail.run(server.port, PLAINTEXT)
    assert status == 1, log  # no mail
    assert fetchmail.take() == {}


def test_fetchmail_keep_with_uidl(fetchmail: Fetchmail, server: Server, maildir: Path) -> None:
    status, log = fetchmail.run(server.port, f"keep {PLAINTEXT}")
    assert status == 0, log
    assert fetchmail.take() == expected(MESSAGES)
    assert files_left(maildir) == set(MESSAGES)

    assert (fetchmail.home / ".fetchids").exists()
    status, log = fetchmail.run(server.port, f"keep {PLAINTEXT}")
    assert status == 1, log  # every UIDL is known: nothing new
    assert fetchmail.take() == {}

    added = {"new/1700000007.M7P100.test": b"Subject: later\nX-Test-Id: later\n\nnew mail\n"}
    make_maildir(maildir, added)
    status, log = fetchmail.run(server.port, f"keep {PLAINTEXT}")
    assert status == 0, log
    assert fetchmail.take() == expected(added)
    assert f"{len(MESSAGES) + 1} messages ({len(MESSAGES)} seen)" in log, log
    assert log.count("reading message") == 1, log
    assert files_left(maildir) == set(MESSAGES) | set(added)


def test_fetchmail_stls(
    fetchmail: Fetchmail, start_server: StartServer, maildir: Path, tls_files: TLSFiles
) -> None:
    server = start_server(maildir, *tls_files.args())
    # fetchmail checks the certificate for "127.0.0.1" as a DNS name, which matches no
    # IP address entry: it is told to expect "localhost" instead.
    tls = f"sslproto 'tls1.2+' sslcertck sslcertfile \"{tls_files.ca}\" sslcommonname localhost"
    status, log = fetchmail.run(server.port, f"keep fetchall {tls}")  # fetchall: RETR
    assert status == 0, log
    assert "POP3> STLS" in log
    assert "POP3> RETR 5" in log
    assert fetchmail.take() == expected(MESSAGES)
    assert files_left(maildir) == set(MESSAGES)
