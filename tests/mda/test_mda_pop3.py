"""The MDA's POP3 server: logins, the maildrop, stable UIDLs, DELE at QUIT, [IN-USE].

Clients: Python's poplib and our own POP3Client (SASL SCRAM-SHA-256 and PLAIN over
STLS). The LMTP -> POP3 round trip runs in the blocking, asyncio and anyio-trio
flavours. Servers as in test_mda_lmtp.py.
"""

from __future__ import annotations

import getpass
import os
import poplib
import shlex
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_mda_lmtp import Server

from mailproto_adapters._pop3_clients import POP3Client
from mailproto_adapters._serving import SessionFactory
from mailproto_adapters.errors import AuthenticationFailed
from mailproto_adapters.mda.auth import Authenticator
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB

if TYPE_CHECKING:
    from conftest import RequireTool, TLSFiles


def message(n: int) -> bytes:
    return (
        b"From: sender@example.org\r\nTo: alice@example.org\r\nSubject: message %d\r\n"
        b"\r\nfirst line\r\n.dot line\r\nthird line\r\n" % n
    )


def make_mda(tmp_path: Path, *, apop: bool = True, **kwargs: Any) -> MDA:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw", apop=apop)
    users.add("carol", "carol-pw")
    auth = Authenticator(users, base_delay=0.05, max_delay=0.1)
    return MDA(tmp_path, users=users, authenticator=auth, hostname="mda.test", **kwargs)


def deliver(mda: MDA, user: str, count: int) -> None:
    store = mda.store.user(user)
    for n in range(1, count + 1):
        store.deliver(message(n))


def inbox_count(mda: MDA, user: str) -> int:
    return len(mda.store.user(user).mailbox("INBOX").snapshot())


@pytest.fixture
def serve() -> Iterator[Callable[[str, SessionFactory], Server]]:
    servers: list[Server] = []

    def start(flavour: str, session: SessionFactory) -> Server:
        server = Server(flavour, session)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_poplib_user_pass_and_commands(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, allow_plaintext=True)
    deliver(mda, "alice", 3)
    server = serve("blocking", mda.pop3_session)
    pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
    try:
        caps = pop.capa()
        assert {"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"} <= set(caps)
        assert "SCRAM-SHA-256" in caps["SASL"]
        assert "PLAIN" in caps["SASL"]
        assert "STLS" not in caps  # no TLS context
        pop.user("alice")
        pop.pass_("alice-pw")
        size = len(message(1))
        assert pop.stat() == (3, 3 * size)
        assert pop.list()[1] == [b"%d %d" % (n, size) for n in (1, 2, 3)]
        validity = mda.store.user("alice").mailbox("INBOX").uidvalidity
        assert pop.uidl()[1] == [b"%d %d.%d" % (n, validity, n) for n in (1, 2, 3)]
        assert pop.uidl(2) == b"+OK 2 %d.2" % validity
        _resp, lines, octets = pop.retr(2)
        assert b"\r\n".join(lines) + b"\r\n" == message(2)
        assert octets >= size
        _resp, lines, _ = pop.top(3, 1)
        assert lines[-2:] == [b"", b"first line"]
        pop.dele(1)
        pop.dele(3)
        assert pop.stat() == (1, size)
        with pytest.raises(poplib.error_proto):
            pop.retr(1)  # deleted
        assert inbox_count(mda, "alice") == 3  # nothing removed before QUIT
        pop.quit()
    finally:
        pop.close()
    box = mda.store.user("alice").mailbox("INBOX")
    assert [r.uid for r in box.snapshot()] == [2]


def test_rset_and_dropped_session_keep_messages(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, allow_plaintext=True)
    deliver(mda, "alice", 2)
    server = serve("blocking", mda.pop3_session)
    pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
    pop.user("alice")
    pop.pass_("alice-pw")
    pop.dele(1)
    pop.dele(2)
    pop.rset()
    assert pop.stat()[0] == 2
    pop.quit()
    assert inbox_count(mda, "alice") == 2
    pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
    pop.user("alice")
    pop.pass_("alice-pw")
    pop.dele(1)
    pop.close()  # no QUIT: no UPDATE
    time.sleep(0.2)
    assert inbox_count(mda, "alice") == 2


def test_apop_and_in_use(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)  # plaintext not allowed, no TLS: only APOP and SCRAM
    deliver(mda, "alice", 1)
    server = serve("blocking", mda.pop3_session)
    first = poplib.POP3("127.0.0.1", server.port, timeout=10)
    caps = first.capa()
    assert "USER" not in caps
    assert caps["SASL"] == ["SCRAM-SHA-256"]
    with pytest.raises(poplib.error_proto):
        first.user("alice")  # plaintext refused
    first.apop("alice", "alice-pw")
    second = poplib.POP3("127.0.0.1", server.port, timeout=10)
    with pytest.raises(poplib.error_proto, match=r"IN-USE"):
        second.apop("alice", "alice-pw")
    first.quit()
    second.apop("alice", "alice-pw")  # free again
    assert second.stat()[0] == 1
    second.quit()
    third = poplib.POP3("127.0.0.1", server.port, timeout=10)
    with pytest.raises(poplib.error_proto, match=r"AUTH"):
        third.apop("alice", "wrong")
    with pytest.raises(poplib.error_proto, match=r"AUTH"):
        third.apop("carol", "carol-pw")  # carol did not opt into APOP
    third.quit()


def test_no_apop_timestamp_without_apop_users(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, apop=False, allow_plaintext=True)
    server = serve("blocking", mda.pop3_session)
    pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
    assert b"<" not in pop.getwelcome()
    pop.quit()


def test_lock_file_excludes_other_processes(tmp_path: Path) -> None:
    mda = make_mda(tmp_path)
    other = MDA(tmp_path, users=mda.users)  # its own in-process state, like a process
    release = mda.lock_maildrop("alice")
    assert release is not None
    assert other.lock_maildrop("alice") is None
    assert other.lock_maildrop("carol") is not None
    release()
    again = other.lock_maildrop("alice")
    assert again is not None
    again()


def test_our_client_sasl_over_stls(tmp_path: Path, serve: Any, tls_files: TLSFiles) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    mda = make_mda(tmp_path, tls_context=context)
    deliver(mda, "alice", 2)
    server = serve("blocking", mda.pop3_session)
    ca = tls_files.client_context()
    with POP3Client("127.0.0.1", server.port, starttls=ca, timeout=10) as pop:
        assert pop.tls_info is not None
        assert "PLAIN" in pop.capabilities.sasl_mechanisms
        pop.login("alice", "alice-pw", mechanism="SCRAM-SHA-256")
        assert pop.stat() == (2, 2 * len(message(1)))
        assert pop.retr(1) == message(1)
    with POP3Client("127.0.0.1", server.port, starttls=ca, timeout=10) as pop:
        pop.login("alice", "alice-pw", mechanism="PLAIN")
        pop.dele(1)
    assert inbox_count(mda, "alice") == 1
    with (
        POP3Client("127.0.0.1", server.port, starttls=ca, timeout=10) as pop,
        pytest.raises(AuthenticationFailed),
    ):
        pop.login("alice", "nope", mechanism="SCRAM-SHA-256")


def test_idle_timeout_closes_without_update(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, allow_plaintext=True, pop3_idle_timeout=0.3)
    deliver(mda, "alice", 1)
    server = serve("blocking", mda.pop3_session)
    pop = poplib.POP3("127.0.0.1", server.port, timeout=5)
    pop.user("alice")
    pop.pass_("alice-pw")
    pop.dele(1)
    time.sleep(0.6)
    with pytest.raises((poplib.error_proto, OSError)):
        pop.stat()
    pop.close()
    assert inbox_count(mda, "alice") == 1
    again = poplib.POP3("127.0.0.1", server.port, timeout=5)  # the lock was released
    again.user("alice")
    again.pass_("alice-pw")
    again.quit()


@pytest.mark.parametrize("flavour", ["blocking", "asyncio", "anyio-trio"])
def test_lmtp_then_pop3_round_trip(tmp_path: Path, serve: Any, flavour: str) -> None:
    mda = make_mda(tmp_path, allow_plaintext=True)
    lmtp = serve(flavour, mda.lmtp_session)
    pop3 = serve(flavour, mda.pop3_session)
    with smtplib.LMTP("127.0.0.1", lmtp.port, timeout=10) as client:
        client.ehlo()
        for n in (1, 2):
            assert client.sendmail("s@example.org", ["alice@example.org"], message(n)) == {}
    with POP3Client("127.0.0.1", pop3.port, timeout=10) as pop:
        pop.login("alice", "alice-pw", mechanism="SCRAM-SHA-256")
        assert pop.stat()[0] == 2
        got = pop.retr(2)
        assert got == b"Return-Path: <s@example.org>\r\nDelivered-To: alice@example.org\r\n" + (
            message(2)
        )
        # a failed login waits out its delay without blocking the other session
        with (
            POP3Client("127.0.0.1", pop3.port, timeout=10) as bad,
            pytest.raises(AuthenticationFailed),
        ):
            bad.login("carol", "wrong", mechanism="SCRAM-SHA-256")
        pop.dele(1)
        pop.dele(2)
    assert inbox_count(mda, "alice") == 0


@pytest.mark.interop
def test_fetchmail(tmp_path: Path, serve: Any, require_tool: RequireTool) -> None:
    """fetchmail with UIDL: keeps, sees nothing new the second time, then fetches and
    deletes (DELE and QUIT) the messages."""
    program = require_tool("fetchmail")
    home, delivered = tmp_path / "fetchmail-home", tmp_path / "delivered"
    home.mkdir(mode=0o700)
    delivered.mkdir()
    mda = make_mda(tmp_path / "data", allow_plaintext=True)
    deliver(mda, "alice", 3)
    server = serve("blocking", mda.pop3_session)

    def run(options: str) -> tuple[int, str]:
        rc = home / "fetchmailrc"
        sink = f"cat > $(mktemp {shlex.quote(str(delivered))}/msg.XXXXXXXX)"
        rc.write_text(
            "set no syslog\nset no bouncemail\nset invisible\n"
            f"poll 127.0.0.1 with proto POP3 port {server.port} uidl timeout 20"
            " auth password\n"
            f'  user "alice" there with password "alice-pw" is "{getpass.getuser()}" here\n'
            f"  no rewrite no stripcr sslproto '' no sslcertck {options}\n"
            f'  mda "{sink}"\n'
        )
        rc.chmod(0o600)
        env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home), "LC_ALL": "C"}
        result = subprocess.run(
            [program, "-f", str(rc), "-v", "--nosyslog"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=40,
            check=False,
        )
        return result.returncode, (result.stdout + result.stderr).decode(errors="replace")

    def take() -> list[bytes]:
        out = sorted(path.read_bytes() for path in delivered.iterdir())
        for path in delivered.iterdir():
            path.unlink()
        return out

    status, log = run("keep")
    assert status == 0, log
    assert take() == sorted(message(n) for n in (1, 2, 3))
    status, log = run("keep")
    assert status == 1, log  # every UIDL known: nothing new
    assert take() == []
    status, log = run("fetchall")
    assert status == 0, log
    assert len(take()) == 3
    assert inbox_count(mda, "alice") == 0


def test_pipelined_commands(tmp_path: Path, serve: Any) -> None:
    """RFC 2449 PIPELINING: commands sent in one write get their responses in order."""
    mda = make_mda(tmp_path, allow_plaintext=True)
    deliver(mda, "alice", 2)
    server = serve("blocking", mda.pop3_session)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"+OK")
        sock.sendall(b"USER alice\r\nPASS alice-pw\r\nSTAT\r\nUIDL 2\r\nDELE 1\r\nQUIT\r\n")
        lines = [stream.readline() for _ in range(6)]
    assert all(line.startswith(b"+OK") for line in lines), lines
    assert lines[2] == b"+OK 2 %d\r\n" % (2 * len(message(1)))
    assert inbox_count(mda, "alice") == 1
