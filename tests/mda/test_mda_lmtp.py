"""The MDA's LMTP server: per-recipient results, headers, the exact body on disk.

Clients: Python's smtplib.LMTP and our own SMTPClient(lmtp=True). Servers: the blocking
flavour, and asyncio / anyio-trio in a blocking portal (as tests/adapters/test_serve.py
runs them), so the one flow is checked in each.
"""

from __future__ import annotations

import io
import smtplib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters import blocking
from mailproto_adapters._serving import ServeConfig, SessionFactory
from mailproto_adapters._smtp_clients import SMTPClient
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mta.local import LMTPTarget, deliver_local
from mailproto_adapters.mta.queue import QueuedRecipient, QueueEntry
from mailproto_adapters.mta.remote import OutgoingMessage

BODY = (
    b"From: sender@example.org\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"line one\r\n"
    b".leading dot\r\n"
    b"\xc3\xa9t\xc3\xa9 8bit\r\n"
)


class Server:
    """An MDA session factory served by one flavour, in the background."""

    def __init__(self, flavour: str, session: SessionFactory) -> None:
        config = ServeConfig(host="127.0.0.1", port=0, grace=1.0)
        self._portal_cm: Any = None
        if flavour == "blocking":
            self.server: Any = blocking.BlockingServer(session, config).start()
            self.port = int(self.server.port)
            return
        backend = "trio" if flavour == "anyio-trio" else "asyncio"
        self._portal_cm = anyio.from_thread.start_blocking_portal(backend=backend)
        self.portal = self._portal_cm.__enter__()
        if flavour == "asyncio":
            self.server = self.portal.call(asyncio_flavour.AsyncioServer.start, session, config)
            self.port = int(self.server.port)
        else:
            self.server = anyio_flavour.AnyIOServer(session, config)
            self._task, self.port = self.portal.start_task(self.server.serve)

    def stop(self) -> None:
        if self._portal_cm is None:
            self.server.close(1.0)
            return
        self.portal.call(self.server.close, 1.0)
        self._portal_cm.__exit__(None, None, None)


def make_mda(tmp_path: Path, **kwargs: Any) -> MDA:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw")
    users.add("bob@example.net", "bob-pw")
    users.add("full", "full-pw", quota=300)
    users.add("tiny", "tiny-pw", quota=10)
    kwargs.setdefault("allow_plaintext", True)
    return MDA(tmp_path, users=users, hostname="mda.test", **kwargs)


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


def stored(mda: MDA, user: str) -> list[bytes]:
    box = mda.store.user(user).mailbox("INBOX")
    out = []
    for record in box.snapshot():
        with box.open(record.uid) as f:
            out.append(f.read())
    return out


def fill(mda: MDA, user: str, octets: int) -> None:
    mda.store.user(user).deliver(b"Subject: filler\r\n\r\n" + b"x" * octets + b"\r\n")


@pytest.mark.parametrize("flavour", ["blocking", "asyncio", "anyio-trio"])
def test_smtplib_lmtp_per_recipient(tmp_path: Path, serve: Any, flavour: str) -> None:
    mda = make_mda(tmp_path)
    fill(mda, "full", 400)  # before its quota (300) applies: now over it
    mda.user_store("full")
    server = serve(flavour, mda.lmtp_session)
    with smtplib.LMTP("127.0.0.1", server.port, timeout=10) as client:
        code, _ = client.ehlo()  # smtplib.LMTP sends LHLO
        assert code == 250
        assert client.has_extn("pipelining")
        assert client.has_extn("enhancedstatuscodes")
        client.mail("sender@example.org")
        assert client.rcpt("alice@example.org")[0] == 250
        assert client.rcpt("Bob@Example.NET")[0] == 250  # a full-address user
        code, msg = client.rcpt("nobody@example.org")
        assert (code, msg[:5]) == (550, b"5.1.1")
        code, msg = client.rcpt("full@example.org")
        assert (code, msg[:5]) == (452, b"4.2.2")
        assert client.rcpt("alice@other.example")[0] == 250  # any domain: user "alice"
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(BODY.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        replies = [client.getreply() for _ in range(3)]
        assert [r[0] for r in replies] == [250, 250, 250]
        client.quit()
    alice = stored(mda, "alice")
    assert sorted(alice) == sorted(
        [
            b"Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.org\r\n" + BODY,
            b"Return-Path: <sender@example.org>\r\nDelivered-To: alice@other.example\r\n" + BODY,
        ]
    )
    assert stored(mda, "bob@example.net") == [
        b"Return-Path: <sender@example.org>\r\nDelivered-To: Bob@Example.NET\r\n" + BODY
    ]
    assert len(stored(mda, "full")) == 1  # only the filler


@pytest.mark.parametrize("flavour", ["blocking", "anyio-asyncio"])
def test_our_client_lmtp(tmp_path: Path, serve: Any, flavour: str) -> None:
    mda = make_mda(tmp_path)
    server = serve(flavour, mda.lmtp_session)
    with SMTPClient("127.0.0.1", server.port, lmtp=True, starttls=False, timeout=10) as client:
        result = client.send_message(
            BODY,
            sender="",
            recipients=["alice@example.org", "ghost@example.org", "tiny@example.org"],
        )
    assert result.accepted == ("alice@example.org",)
    assert result.refused["ghost@example.org"][0] == 550
    # tiny's quota (10 octets) is smaller than the message itself: 552 5.2.2 at RCPT
    # (SIZE= known), or after the body.
    assert result.refused["tiny@example.org"][0] == 552
    assert result.lmtp_replies["alice@example.org"].code == 250
    assert stored(mda, "alice") == [
        b"Return-Path: <>\r\nDelivered-To: alice@example.org\r\n" + BODY
    ]


@pytest.mark.parametrize("flavour", ["blocking", "asyncio"])
def test_the_mta_lmtp_client_in_one_round_trip(tmp_path: Path, serve: Any, flavour: str) -> None:
    """The MTA's LMTP client sends MAIL, RCPT and BDAT LAST with the body in one group:
    the refusals at RCPT, the copies' replies after the body and the next transaction's
    replies all stay in step."""
    mda = make_mda(tmp_path)
    mda.user_store("tiny")
    server = serve(flavour, mda.lmtp_session)
    rcpts = ("alice@example.org", "ghost@example.org", "tiny@example.org", "bob@example.net")
    messages = [
        OutgoingMessage(
            entry=QueueEntry(
                id=f"000{n}",
                sender="s@example.org",
                recipients=[QueuedRecipient(address=a) for a in addresses],
                arrival=0.0,
                next_attempt=0.0,
                size=len(BODY),
            ),
            recipients=tuple(QueuedRecipient(address=a) for a in addresses),
            open=lambda: io.BytesIO(BODY),
        )
        for n, addresses in enumerate([rcpts, ("ghost@example.org",), ("alice@example.org",)])
    ]
    results = deliver_local(LMTPTarget(port=server.port, timeout=10), messages, helo="mx.test")
    assert [[r.code for r in per] for per in results] == [[250, 550, 552, 250], [550], [250]]
    prefix = b"Return-Path: <s@example.org>\r\nDelivered-To: "
    assert stored(mda, "alice") == [prefix + b"alice@example.org\r\n" + BODY] * 2
    assert stored(mda, "bob@example.net") == [prefix + b"bob@example.net\r\n" + BODY]
    assert stored(mda, "tiny") == []


def test_over_quota_found_after_body(tmp_path: Path, serve: Any) -> None:
    """Without SIZE=, the quota is found when the copy is written: a per-recipient 552."""
    mda = make_mda(tmp_path)
    mda.user_store("tiny")
    server = serve("blocking", mda.lmtp_session)
    with smtplib.LMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        client.mail("s@example.org")
        assert client.rcpt("tiny@x")[0] == 250
        assert client.rcpt("alice@x")[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(BODY.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        first, second = client.getreply(), client.getreply()
        assert first[0] == 552
        assert first[1][:5] == b"5.2.2"
        assert second[0] == 250
    assert stored(mda, "tiny") == []
    assert len(stored(mda, "alice")) == 1


def test_large_body_is_spooled(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    server = serve("blocking", mda.lmtp_session)
    body = b"Subject: big\r\n\r\n" + (b"y" * 98 + b"\r\n") * 25_000  # 2.5 MB
    with smtplib.LMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo()
        assert client.sendmail("s@example.org", ["alice@example.org"], body) == {}
    assert stored(mda, "alice") == [
        b"Return-Path: <s@example.org>\r\nDelivered-To: alice@example.org\r\n" + body
    ]


def test_idle_timeout(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, lmtp_idle_timeout=0.3)
    server = serve("blocking", mda.lmtp_session)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        data = b""
        while not data.endswith(b"closing\r\n") and len(data) < 1000:
            chunk = sock.recv(1000)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"220 ")
    assert b"421 4.4.2" in data


def test_other_commands(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    server = serve("blocking", mda.lmtp_session)
    with smtplib.LMTP("127.0.0.1", server.port, timeout=10) as client:
        assert client.ehlo()[0] == 250
        assert "chunking" in client.esmtp_features
        assert client.noop()[0] == 250
        assert client.verify("alice")[0] == 252
        assert client.docmd("EHLO", "x")[0] == 500  # LMTP speaks LHLO only
        client.mail("s@example.org")
        assert client.rcpt("alice@x")[0] == 250
        assert client.rset()[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 503  # the transaction was reset
    assert stored(mda, "alice") == []


def test_body_too_large_answered_per_recipient(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, max_message_size=1000)
    server = serve("blocking", mda.lmtp_session)
    with smtplib.LMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        client.mail("s@example.org")  # no SIZE=: found while reading the body
        assert client.rcpt("alice@x")[0] == 250
        assert client.rcpt("bob@example.net")[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 30 + b".\r\n")
        assert [client.getreply()[0] for _ in range(2)] == [552, 552]
        assert client.noop()[0] == 250  # the session goes on
    assert stored(mda, "alice") == []
