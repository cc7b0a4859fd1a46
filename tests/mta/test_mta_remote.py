"""Relay delivery (`mta.remote.deliver_remote`) against a scripted SMTP server of this
file (per-recipient results, STARTTLS policies, DSN, CHUNKING, broken connections, 421,
hop fallback) and against Postfix's smtp-sink.

The scripted server runs on loopback, one thread per connection, and records every
session (commands, bodies, TLS). Not a real server: just enough SMTP to misbehave.
"""

from __future__ import annotations

import io
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from mailproto_adapters.mta import remote
from mailproto_adapters.mta.connections import ConnectionCache
from mailproto_adapters.mta.queue import QueuedRecipient, QueueEntry
from mailproto_adapters.mta.remote import (
    CHUNK,
    OutgoingMessage,
    RecipientResult,
    deliver_remote,
)
from mailproto_adapters.mta.routing import Hop

# --- a scripted SMTP server --------------------------------------------------------------


DEFAULT_EXTENSIONS = ("PIPELINING", "SIZE 10000000", "8BITMIME", "ENHANCEDSTATUSCODES")


@dataclass
class Behaviour:
    greeting: str = "220 fake.test ESMTP"
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    ehlo_reply: str | None = None  # e.g. "502 5.5.1 EHLO not here": the client says HELO
    helo_reply: str = "250 fake.test"
    mail_reply: str = "250 2.1.0 Ok"
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> reply
    data_reply: str = "354 go ahead"
    end_reply: str = "250 2.0.0 Ok: queued"
    bdat_reply: str = "250 2.0.0 chunk ok"
    reply_421_on: str | None = None  # a command verb: answer 421 and close
    drop_in_body: bool = False  # close after the first piece of body
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this context
    implicit_tls: bool = False
    # 220 to STARTTLS, then garbage instead of a handshake ("handshake"), or in the same
    # write as the 220 ("inject": what a response injection looks like)
    broken_tls: str | None = None
    silent: bool = False  # never greet
    starttls_reply: str = "220 2.0.0 Ready to start TLS"
    auth_reply: str = "235 2.7.0 Authentication successful"
    rset_reply: str = "250 2.0.0 Ok"


@dataclass
class Session:
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    tls: bool = False
    sock: Any = None  # the connection's socket, TLS-wrapped when it is


class _Closed(Exception):
    pass


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise _Closed
        self.buf += data

    def line(self) -> str:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def exact(self, count: int) -> bytes:
        while len(self.buf) < count:
            self._fill()
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def dot_data(self, *, drop: bool) -> bytes:
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            if drop and self.buf:
                raise _Closed
            self._fill()
        framed = b"\r\n" + self.buf
        end = framed.index(b"\r\n.\r\n")
        body = framed[2 : end + 2]
        self.buf = framed[end + 5 :]
        lines = body.split(b"\r\n")
        return b"\r\n".join(x[1:] if x.startswith(b".") else x for x in lines)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")


class FakeSMTP:
    """``with FakeSMTP(Behaviour(...)) as server:`` listens on 127.0.0.1:server.port."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.sessions: list[Session] = []
        self.errors: list[BaseException] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FakeSMTP:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            session = Session()
            self.sessions.append(session)
            thread = threading.Thread(target=self._serve, args=(sock, session), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket, session: Session) -> None:
        sock.settimeout(5)
        try:
            self._session(sock, session)
        except (_Closed, OSError):
            pass
        except Exception as exc:  # pragma: no cover - shown by the tests that check errors
            self.errors.append(exc)
        finally:
            sock.close()

    def _session(self, raw: socket.socket, session: Session) -> None:
        session.sock = raw
        try:
            self._dialogue(raw, session)
        finally:
            session.sock.close()

    def _dialogue(self, raw: socket.socket, session: Session) -> None:
        b = self.behaviour
        sock = raw
        if b.implicit_tls:
            assert b.tls is not None
            sock = session.sock = b.tls.wrap_socket(raw, server_side=True)
            session.tls = True
        conn = _Conn(sock)
        if b.silent:
            while not self._stop.is_set():
                self._stop.wait(0.05)
            return
        conn.send(b.greeting)
        if b.greeting.startswith("421"):
            return
        chunks: list[bytes] = []
        mail_ok, accepted = False, 0  # the transaction, for a BDAT without recipients
        while True:
            line = conn.line()
            session.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if b.reply_421_on == verb:
                conn.send("421 4.3.2 Shutting down")
                return
            if verb == "EHLO":
                if b.ehlo_reply:
                    conn.send(b.ehlo_reply)
                    continue
                ext = list(b.extensions)
                if b.tls is not None and not session.tls and not b.implicit_tls:
                    ext.append("STARTTLS")
                lines = ["fake.test", *ext]
                for item in lines[:-1]:
                    conn.send("250-" + item)
                conn.send("250 " + lines[-1])
            elif verb == "HELO":
                conn.send(b.helo_reply)
            elif verb == "STARTTLS":
                if b.broken_tls == "inject":
                    sock.sendall(b.starttls_reply.encode() + b"\r\n250 injected\r\n")
                    return
                conn.send(b.starttls_reply)
                if not b.starttls_reply.startswith("220"):
                    continue
                if b.broken_tls:
                    self._stop.wait(0.2)
                    sock.sendall(b"this is not TLS\r\n" * 4)
                    return
                assert b.tls is not None
                sock = session.sock = b.tls.wrap_socket(sock, server_side=True)
                session.tls = True
                conn = _Conn(sock)
            elif verb == "AUTH":
                conn.send(b.auth_reply)
            elif verb == "MAIL":
                conn.send(b.mail_reply)
                mail_ok, accepted = b.mail_reply.startswith("2"), 0
            elif verb == "RCPT":
                address = line.split(":", 1)[1].split(">", 1)[0].lstrip(" <")
                reply = b.refuse.get(address, "250 2.1.5 Ok") if mail_ok else "503 5.5.1 MAIL first"
                accepted += reply.startswith("2")
                conn.send(reply)
            elif verb == "DATA":
                conn.send(b.data_reply)
                if b.data_reply.startswith("354"):
                    session.messages.append(conn.dot_data(drop=b.drop_in_body))
                    conn.send(b.end_reply)
            elif verb == "BDAT":
                parts = line.split()
                chunks.append(conn.exact(int(parts[1])))
                if b.drop_in_body:
                    return
                if not accepted:  # read, and refused (as Postfix does)
                    chunks = []
                    conn.send("503 5.5.1 Error: need RCPT command")
                    continue
                if len(parts) > 2 and parts[2].upper() == "LAST":
                    session.messages.append(b"".join(chunks))
                    chunks = []
                    conn.send(b.end_reply)
                else:
                    conn.send(b.bdat_reply)
            elif verb == "RSET":
                chunks = []
                mail_ok, accepted = False, 0
                conn.send(b.rset_reply)
            elif verb == "QUIT":
                conn.send("221 2.0.0 Bye")
                return
            else:
                conn.send("502 5.5.2 Error: command not recognized")


# --- helpers -----------------------------------------------------------------------------

BODY = b"Subject: test\r\n\r\nline one\r\n.starts with a dot\r\nlast\r\n"


def outgoing(
    data: bytes = BODY,
    recipients: tuple[str | QueuedRecipient, ...] = ("b@example.net",),
    *,
    sender: str = "a@example.org",
    **fields: Any,
) -> OutgoingMessage:
    rcpts = tuple(QueuedRecipient(address=r) if isinstance(r, str) else r for r in recipients)
    entry = QueueEntry(
        id="0001",
        sender=sender,
        recipients=list(rcpts),
        arrival=0.0,
        next_attempt=0.0,
        size=len(data),
        **fields,
    )
    return OutgoingMessage(entry=entry, recipients=rcpts, open=lambda: io.BytesIO(data))


def hop_to(server: FakeSMTP | int, **fields: Any) -> Hop:
    port = server if isinstance(server, int) else server.port
    return Hop(host="localhost", port=port, addresses=("127.0.0.1",), **fields)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def codes(results: list[list[RecipientResult]]) -> list[list[int]]:
    return [[r.code for r in per] for per in results]


@pytest.fixture
def server_tls(tls_files: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    return context


def deliver(hops: list[Hop], messages: list[OutgoingMessage], **kw: Any) -> Any:
    kw.setdefault("timeout", 5.0)
    return deliver_remote(hops, messages, helo="relay.example.org", **kw)


# --- one connection, several messages, per-recipient results -----------------------------


def test_several_messages_over_one_pipelined_connection() -> None:
    refuse = {"nobody@example.net": "550 5.1.1 No such user", "later@example.net": "450 busy"}
    with FakeSMTP(Behaviour(refuse=refuse)) as server:
        messages = [
            outgoing(recipients=("b@example.net", "nobody@example.net")),
            outgoing(b"Subject: two\r\n\r\nsecond\r\n", recipients=("c@example.net",)),
            outgoing(recipients=("later@example.net", "d@example.net")),
        ]
        results = deliver([hop_to(server)], messages)
    assert codes(results) == [[250, 550], [250], [450, 250]]
    assert results[0][1].text == "5.1.1 No such user"
    assert results[2][0].text == "4.0.0 busy"  # no enhanced code given: class.0.0
    assert results[0][0].text == "2.0.0 Ok: queued"
    assert all(r.remote_mta == "localhost" for per in results for r in per)
    (session,) = server.sessions
    assert session.messages == [BODY, b"Subject: two\r\n\r\nsecond\r\n", BODY]
    verbs = [c.split()[0].upper() for c in session.commands]
    assert verbs.count("RSET") == 0  # each transaction ended with its body's reply
    assert verbs[-1] == "QUIT"
    assert f"MAIL FROM:<a@example.org> SIZE={len(BODY)}" in session.commands
    assert not session.tls  # no STARTTLS offered


def test_without_pipelining_and_every_recipient_refused() -> None:
    behaviour = Behaviour(extensions=("8BITMIME",), refuse={"x@example.net": "550 5.1.1 no"})
    with FakeSMTP(behaviour) as server:
        messages = [
            outgoing(recipients=("x@example.net",)),
            outgoing(recipients=("y@example.net",)),
        ]
        results = deliver([hop_to(server)], messages)
    assert codes(results) == [[550], [250]]
    (session,) = server.sessions
    assert sum(c == "DATA" for c in session.commands) == 1  # no DATA without a recipient
    assert "MAIL FROM:<a@example.org>" in session.commands  # no SIZE offered, none sent


def test_pipelined_data_after_every_recipient_refused() -> None:
    # A server that answers 354 to a pipelined DATA with no recipient: ended empty.
    with FakeSMTP(Behaviour(refuse={"x@example.net": "550 5.1.1 no"})) as server:
        results = deliver([hop_to(server)], [outgoing(recipients=("x@example.net",))])
    assert codes(results) == [[550]]
    assert server.sessions[0].messages == [b""]


@pytest.mark.parametrize("pipelining", [True, False])
def test_mail_refused(pipelining: bool) -> None:
    ext = DEFAULT_EXTENSIONS if pipelining else ("8BITMIME",)
    behaviour = Behaviour(
        extensions=ext, mail_reply="553 5.7.1 Sender refused", data_reply="503 no"
    )
    with FakeSMTP(behaviour) as server:
        results = deliver([hop_to(server)], [outgoing(recipients=("a@x.org", "b@x.org"))])
    assert codes(results) == [[553, 553]]
    assert results[0][0].text == "5.7.1 Sender refused"


def test_data_and_end_of_data_refused() -> None:
    with FakeSMTP(Behaviour(extensions=(), data_reply="554 5.5.1 no DATA today")) as server:
        results = deliver([hop_to(server)], [outgoing()])
    assert codes(results) == [[554]]
    with FakeSMTP(Behaviour(end_reply="552 5.3.4 too big after all")) as server:
        results = deliver([hop_to(server)], [outgoing(recipients=("a@x.org", "b@x.org"))])
    assert codes(results) == [[552, 552]]


def test_large_body_streams_in_pieces() -> None:
    body = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" + (b"." + b"y" * 200 + b"\r\n") * 1500
    assert len(body) > 2 * CHUNK
    with FakeSMTP() as server:
        results = deliver([hop_to(server)], [outgoing(body)])
    assert codes(results) == [[250]]
    assert server.sessions[0].messages == [body]


# --- extensions ----------------------------------------------------------------------------


def test_dsn_parameters_passed_on_when_offered() -> None:
    rcpts = (
        QueuedRecipient(
            address="b@example.net",
            notify=frozenset({"SUCCESS", "FAILURE"}),
            orcpt="rfc822;b+2Bx@example.net",
        ),
        QueuedRecipient(address="c@example.net", notify=frozenset()),
        QueuedRecipient(address="d@example.net", orcpt="junk-without-type"),
        QueuedRecipient(address="e@example.net", orcpt="rfc822;bad+ZZxtext"),
        QueuedRecipient(address="f@example.net", orcpt="bad type;f@example.net"),
    )
    message = outgoing(recipients=rcpts, ret="HDRS", envid="id 1")
    with FakeSMTP(Behaviour(extensions=(*DEFAULT_EXTENSIONS, "DSN"))) as server:
        assert codes(deliver([hop_to(server)], [message])) == [[250] * 5]
    commands = server.sessions[0].commands
    assert f"MAIL FROM:<a@example.org> SIZE={len(BODY)} RET=HDRS ENVID=id+201" in commands
    assert "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.net" in [
        c.replace("NOTIFY=FAILURE,SUCCESS", "NOTIFY=SUCCESS,FAILURE") for c in commands
    ]
    assert "RCPT TO:<c@example.net> NOTIFY=NEVER" in commands
    assert "RCPT TO:<d@example.net>" in commands
    assert "RCPT TO:<e@example.net>" in commands
    assert "RCPT TO:<f@example.net>" in commands
    # Not offered: nothing of DSN is sent.
    with FakeSMTP() as server:
        assert codes(deliver([hop_to(server)], [message])) == [[250] * 5]
    assert not any("NOTIFY" in c or "RET=" in c for c in server.sessions[0].commands)


def test_envid_that_cannot_be_passed_on_is_dropped() -> None:
    message = outgoing(envid="x" * 200, ret="FULL")
    with FakeSMTP(Behaviour(extensions=("DSN",))) as server:
        assert codes(deliver([hop_to(server)], [message])) == [[250]]
    assert "MAIL FROM:<a@example.org> RET=FULL" in server.sessions[0].commands


def test_chunking_sends_bdat_chunks() -> None:
    body = b"Subject: c\r\n\r\n" + b"z" * (CHUNK * 2 + 10) + b"\r\n.\r\n"
    behaviour = Behaviour(extensions=("CHUNKING", "BINARYMIME", "8BITMIME", "SIZE"))
    with FakeSMTP(behaviour) as server:
        messages = [outgoing(body, body="BINARYMIME"), outgoing(b"")]
        assert codes(deliver([hop_to(server)], messages)) == [[250], [250]]
    session = server.sessions[0]
    assert session.messages == [body, b""]
    bdats = [c for c in session.commands if c.startswith("BDAT")]
    assert bdats == [
        f"BDAT {CHUNK}",
        f"BDAT {CHUNK}",
        f"BDAT {len(body) - 2 * CHUNK} LAST",
        "BDAT 0 LAST",
    ]
    assert f"MAIL FROM:<a@example.org> SIZE={len(body)} BODY=BINARYMIME" in session.commands


def test_chunking_pipelined_and_a_refused_chunk() -> None:
    body = b"x" * (CHUNK + 5)
    behaviour = Behaviour(extensions=("CHUNKING", "PIPELINING"), bdat_reply="554 5.6.0 bad chunk")
    with FakeSMTP(behaviour) as server:
        results = deliver([hop_to(server)], [outgoing(body, recipients=("a@x.org", "b@x.org"))])
    assert codes(results) == [[554, 554]]
    assert results[0][0].text == "5.6.0 bad chunk"


def test_a_one_chunk_body_goes_with_the_commands() -> None:
    """With PIPELINING and CHUNKING, MAIL, RCPT and BDAT LAST with the body leave in one
    group: a server that answers nothing before it has the whole transaction still gets
    its message (a client waiting for the MAIL reply would time out)."""
    body = BODY
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        got: list[bytes] = []

        def serve() -> None:
            sock, _ = listener.accept()
            with sock:
                sock.sendall(b"220 mute.test ESMTP\r\n")
                data = b""
                while b"\r\n" not in data:
                    data += sock.recv(4096)
                sock.sendall(b"250-mute.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
                data = b""
                end = b"BDAT %d LAST\r\n" % len(body) + body
                while not data.endswith(end):
                    piece = sock.recv(65536)
                    if not piece:
                        return
                    data += piece
                got.append(data)
                sock.sendall(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued\r\n")
                sock.recv(4096)  # QUIT
                sock.sendall(b"221 2.0.0 Bye\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        results = deliver([hop_to(port)], [outgoing(body)], timeout=3.0)
        thread.join(5)
    assert codes(results) == [[250]]
    assert len(got) == 1
    assert got[0].startswith(b"MAIL FROM:<a@example.org>")
    assert b"RCPT TO:<b@example.net>\r\nBDAT" in got[0]


def test_a_pipelined_bdat_after_refusals_keeps_the_replies_in_step() -> None:
    """A BDAT sent with a MAIL or RCPT that the server refuses is refused too (the
    server reads its chunk): the recipients keep the refusals they got, and the next
    transaction on the connection reads its own replies."""
    extensions = ("PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES")
    refuse = {"nobody@example.net": "550 5.1.1 No such user"}
    with FakeSMTP(Behaviour(extensions=extensions, refuse=refuse)) as server:
        messages = [
            outgoing(recipients=("nobody@example.net",)),
            outgoing(b"Subject: two\r\n\r\nsecond\r\n", recipients=("c@example.net",)),
        ]
        results = deliver([hop_to(server)], messages)
    assert codes(results) == [[550], [250]]
    assert results[0][0].text == "5.1.1 No such user"
    assert server.sessions[0].messages == [b"Subject: two\r\n\r\nsecond\r\n"]
    behaviour = Behaviour(extensions=extensions, mail_reply="451 4.3.0 Try later")
    with FakeSMTP(behaviour) as server:
        results = deliver([hop_to(server)], [outgoing(recipients=("a@x.org", "b@x.org"))] * 2)
    assert codes(results) == [[451, 451], [451, 451]]
    assert results[0][0].text == "4.3.0 Try later"
    assert server.sessions[0].messages == []


def test_eight_bit_bodies() -> None:
    body = "Subject: é\r\n\r\ncafé\r\n".encode()
    with FakeSMTP() as server:
        assert codes(deliver([hop_to(server)], [outgoing(body, body="8BITMIME")])) == [[250]]
    assert any("BODY=8BITMIME" in c for c in server.sessions[0].commands)
    # A peer without 8BITMIME gets the body unchanged and no BODY parameter.
    with FakeSMTP(Behaviour(extensions=("PIPELINING",))) as server:
        assert codes(deliver([hop_to(server)], [outgoing(body, body="8BITMIME")])) == [[250]]
    assert not any("BODY=" in c for c in server.sessions[0].commands)
    assert server.sessions[0].messages == [body]


def test_binarymime_needs_the_peer_to_offer_it() -> None:
    with FakeSMTP() as server:
        results = deliver([hop_to(server)], [outgoing(body="BINARYMIME")])
    assert codes(results) == [[554]]
    assert results[0][0].text.startswith("5.6.3 ")


def test_smtputf8_needed_but_not_offered() -> None:
    with FakeSMTP() as server:
        messages = [
            outgoing(recipients=("用户@例子.广告",)),
            outgoing(smtputf8=True),
            outgoing(),  # still delivered on the same connection
        ]
        results = deliver([hop_to(server)], messages)
    assert codes(results) == [[553], [553], [250]]
    assert results[0][0].text.startswith("5.6.7 ")
    with FakeSMTP(Behaviour(extensions=("SMTPUTF8", "8BITMIME"))) as server:
        results = deliver([hop_to(server)], [outgoing(recipients=("用户@例子.广告",))])
    assert codes(results) == [[250]]
    assert "RCPT TO:<用户@例子.广告>" in server.sessions[0].commands
    assert "MAIL FROM:<a@example.org> SMTPUTF8" in server.sessions[0].commands


def test_size_over_the_peer_limit() -> None:
    with FakeSMTP(Behaviour(extensions=("SIZE 10",))) as server:
        results = deliver([hop_to(server)], [outgoing()])
    assert codes(results) == [[552]]
    assert results[0][0].text.startswith("5.3.4 ")


def test_bad_addresses_are_refused_before_sending() -> None:
    with FakeSMTP() as server:
        results = deliver(
            [hop_to(server)],
            [
                outgoing(sender="not an address"),
                outgoing(recipients=("bad address", "postmaster", "ok@x.org")),
                outgoing(recipients=("also bad",)),
            ],
        )
    assert codes(results) == [[553], [553, 250, 250], [553]]
    assert results[0][0].text.startswith("5.1.7 ")
    assert results[1][0].text.startswith("5.1.3 ")
    assert server.sessions[0].messages == [BODY]


def test_null_sender() -> None:
    with FakeSMTP() as server:
        assert codes(deliver([hop_to(server)], [outgoing(sender="")])) == [[250]]
    assert f"MAIL FROM:<> SIZE={len(BODY)}" in server.sessions[0].commands


def test_unreadable_message_file() -> None:
    def broken() -> BinaryIO:
        raise OSError("gone")

    class FailingRead(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("disk error")

    good = outgoing()
    missing = OutgoingMessage(entry=good.entry, recipients=good.recipients, open=broken)
    unreadable = OutgoingMessage(
        entry=good.entry, recipients=good.recipients, open=lambda: FailingRead(BODY)
    )
    with FakeSMTP() as server:
        results = deliver([hop_to(server)], [missing, good, unreadable, outgoing()])
    assert codes(results) == [[451], [250], [451], [451]]
    assert results[0][0].text.startswith("4.3.0 Cannot read")
    assert results[2][0].text.startswith("4.3.0 Cannot read")
    # The unreadable one dropped the connection (the server discards the unfinished
    # message); the last one, left without a connection, waits for the next attempt.
    assert "local error reading a message" in results[3][0].text
    assert len(server.sessions[0].messages) == 1


# --- hello and greeting ----------------------------------------------------------------


def test_helo_when_ehlo_is_refused() -> None:
    with FakeSMTP(Behaviour(ehlo_reply="502 5.5.2 what?")) as server:
        assert codes(deliver([hop_to(server)], [outgoing()])) == [[250]]
    assert [c.split()[0] for c in server.sessions[0].commands[:2]] == ["EHLO", "HELO"]


def test_refused_greeting_or_hello_moves_on() -> None:
    with (
        FakeSMTP(Behaviour(greeting="554 5.7.1 go away")) as first,
        FakeSMTP(Behaviour(ehlo_reply="550 no", helo_reply="550 no either")) as second,
        FakeSMTP(Behaviour(greeting="421 4.3.2 busy")) as third,
    ):
        results = deliver([hop_to(first), hop_to(second), hop_to(third)], [outgoing()])
    assert codes(results) == [[451]]
    text = results[0][0].text
    assert text.startswith("4.4.2 Delivery failed: ")
    for code in ("554", "550", "421"):
        assert code in text


# --- failures and hop fallback ---------------------------------------------------------


def test_fallback_through_hops_and_addresses() -> None:
    with FakeSMTP(Behaviour(greeting="421 4.3.2 try later")) as busy, FakeSMTP() as good:
        hops = [
            hop_to(closed_port()),
            Hop(host="localhost", port=busy.port, addresses=("127.0.0.1",)),
            Hop(host="localhost", port=good.port, addresses=("127.0.0.2", "127.0.0.1")),
        ]
        results = deliver(hops, [outgoing(), outgoing()])
    assert codes(results) == [[250], [250]]
    assert len(good.sessions) == 1
    assert len(good.sessions[0].messages) == 2


def test_every_hop_failing_gives_4xx_saying_why() -> None:
    results = deliver([hop_to(closed_port())], [outgoing(recipients=("a@x.org", "b@x.org"))])
    assert codes(results) == [[451, 451]]
    assert results[0][0].text.startswith("4.4.1 Delivery failed: localhost[127.0.0.1]")
    assert "cannot connect" in results[0][0].text
    assert results[0][0].remote_mta == "localhost"
    results = deliver([], [outgoing()])
    assert codes(results) == [[451]]
    assert results[0][0].text.startswith("4.4.4 ")
    assert deliver([hop_to(closed_port())], []) == []


def test_connection_dropped_in_the_body_moves_on() -> None:
    refuse = {"gone@x.org": "550 5.1.1 gone"}
    with FakeSMTP(Behaviour(drop_in_body=True, refuse=refuse)) as bad, FakeSMTP() as good:
        messages = [outgoing(recipients=("gone@x.org", "a@x.org")), outgoing()]
        results = deliver([hop_to(bad), hop_to(good)], messages)
    # The refusal stands; the recipient left unanswered is delivered by the next hop.
    assert codes(results) == [[550, 250], [250]]
    assert [c for c in good.sessions[0].commands if c.startswith("RCPT")] == [
        "RCPT TO:<a@x.org>",
        "RCPT TO:<b@example.net>",
    ]
    with FakeSMTP(Behaviour(drop_in_body=True, extensions=("CHUNKING",))) as bad:
        results = deliver([hop_to(bad)], [outgoing()])
    assert codes(results) == [[451]]
    assert results[0][0].text.startswith("4.4.2 ")


@pytest.mark.parametrize("verb", ["MAIL", "RCPT", "DATA"])
def test_421_moves_on_to_the_next_hop(verb: str) -> None:
    with FakeSMTP(Behaviour(reply_421_on=verb, extensions=())) as bad, FakeSMTP() as good:
        results = deliver([hop_to(bad), hop_to(good)], [outgoing(), outgoing()])
    assert codes(results) == [[250], [250]]
    delivered = len(bad.sessions[0].messages) + len(good.sessions[0].messages)
    assert delivered == 2


# A transaction whose recipients were all refused is left open: RSET before the next.
REFUSED = {"nobody@example.net": "550 5.1.1 No such user"}


def test_rset_after_an_abandoned_transaction_only() -> None:
    with FakeSMTP(Behaviour(refuse=REFUSED, extensions=("CHUNKING", "PIPELINING"))) as server:
        messages = [outgoing(), outgoing(recipients=("nobody@example.net",)), outgoing()]
        results = deliver([hop_to(server)], messages)
    assert codes(results) == [[250], [550], [250]]
    assert verbs_of(server.sessions[0]) == [
        *("EHLO", "MAIL", "RCPT", "BDAT"),
        *("MAIL", "RCPT", "BDAT"),
        *("RSET", "MAIL", "RCPT", "BDAT", "QUIT"),
    ]
    assert server.sessions[0].messages == [BODY, BODY]


def test_421_to_rset_moves_on_to_the_next_hop() -> None:
    behaviour = Behaviour(reply_421_on="RSET", refuse=REFUSED, extensions=())
    with FakeSMTP(behaviour) as bad, FakeSMTP() as good:
        messages = [outgoing(recipients=("nobody@example.net",)), outgoing()]
        results = deliver([hop_to(bad), hop_to(good)], messages)
    assert codes(results) == [[550], [250]]
    assert good.sessions[0].messages == [BODY]


def test_timeout_when_the_server_never_greets() -> None:
    with FakeSMTP(Behaviour(silent=True)) as server:
        started = time.monotonic()
        results = deliver([hop_to(server)], [outgoing()], timeout=0.3)
        assert time.monotonic() - started < 3
    assert codes(results) == [[451]]
    assert "timeout" in results[0][0].text


def test_rset_refused_moves_on() -> None:
    behaviour = Behaviour(rset_reply="500 5.5.1 what RSET?", refuse=REFUSED)
    with FakeSMTP(behaviour) as bad, FakeSMTP() as good:
        messages = [outgoing(recipients=("nobody@example.net",)), outgoing()]
        results = deliver([hop_to(bad), hop_to(good)], messages)
    assert codes(results) == [[550], [250]]
    assert bad.sessions[0].messages == [b""]  # the pipelined DATA, ended empty
    assert good.sessions[0].messages == [BODY]


def test_second_address_not_needed() -> None:
    with FakeSMTP() as server:
        hop = Hop(host="localhost", port=server.port, addresses=("127.0.0.1", "127.0.0.2"))
        assert codes(deliver([hop], [outgoing()])) == [[250]]
    assert len(server.sessions) == 1


def test_a_protocol_error_from_the_peer() -> None:
    with FakeSMTP(Behaviour(greeting="hello, this is not SMTP")) as server:
        results = deliver([hop_to(server)], [outgoing()])
    assert codes(results) == [[451]]
    assert "protocol error" in results[0][0].text


def test_hop_resolved_by_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSMTP() as server:
        hop = Hop(host="localhost", port=server.port)
        assert codes(deliver([hop], [outgoing()])) == [[250]]
        assert codes(deliver([Hop(host="127.0.0.1", port=server.port)], [outgoing()])) == [[250]]

    def not_found(*args: Any, **kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", not_found)
    results = deliver([Hop(host="mx.example.invalid", port=25)], [outgoing()])
    assert codes(results) == [[451]]
    assert results[0][0].text.startswith("4.4.4 ")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [])
    results = deliver([Hop(host="mx.example.invalid", port=25)], [outgoing()])
    assert "no address" in results[0][0].text


# --- TLS -------------------------------------------------------------------------------


def test_opportunistic_starttls(server_tls: ssl.SSLContext) -> None:
    with FakeSMTP(Behaviour(tls=server_tls)) as server:
        # "may" does not check the certificate (the default context would refuse it).
        assert codes(deliver([hop_to(server)], [outgoing()])) == [[250]]
    (session,) = server.sessions
    assert session.tls
    assert [c.split()[0] for c in session.commands[:3]] == ["EHLO", "STARTTLS", "EHLO"]


@pytest.mark.parametrize("broken", ["handshake", "inject"])
def test_opportunistic_tls_handshake_failure_retries_in_plaintext(
    server_tls: ssl.SSLContext, broken: str
) -> None:
    with FakeSMTP(Behaviour(tls=server_tls, broken_tls=broken)) as server:
        assert codes(deliver([hop_to(server)], [outgoing()])) == [[250]]
        first, second = server.sessions
        assert "STARTTLS" in first.commands
        assert "STARTTLS" not in second.commands
        assert second.messages == [BODY]
        # Required TLS: no plaintext retry.
        results = deliver([hop_to(server, tls="encrypt")], [outgoing()])
    assert codes(results) == [[451]]
    assert results[0][0].text.startswith("4.7.5 ")
    assert len(server.sessions) == 3


def test_starttls_refused_under_may_goes_on_in_plaintext(server_tls: ssl.SSLContext) -> None:
    behaviour = Behaviour(tls=server_tls, starttls_reply="454 4.7.0 TLS not available")
    with FakeSMTP(behaviour) as server:
        assert codes(deliver([hop_to(server)], [outgoing()])) == [[250]]
        results = deliver([hop_to(server, tls="encrypt")], [outgoing()])
    assert codes(results) == [[451]]
    assert results[0][0].text.startswith("4.7.4 ")


def test_tls_none_never_starts_tls(server_tls: ssl.SSLContext) -> None:
    with FakeSMTP(Behaviour(tls=server_tls)) as server:
        assert codes(deliver([hop_to(server, tls="none")], [outgoing()])) == [[250]]
    assert "STARTTLS" not in server.sessions[0].commands


def test_required_tls(server_tls: ssl.SSLContext, tls_files: Any) -> None:
    trusted = tls_files.client_context()
    with FakeSMTP(Behaviour(tls=server_tls)) as server, FakeSMTP() as plain:
        # Verified against our CA: delivered over TLS.
        results = deliver([hop_to(server, tls="encrypt")], [outgoing()], tls_context=trusted)
        assert codes(results) == [[250]]
        assert server.sessions[-1].tls
        # The default context does not know the CA: TLS fails, the next hop takes it.
        results = deliver([hop_to(server, tls="encrypt"), hop_to(plain)], [outgoing()])
        assert codes(results) == [[250]]
        assert plain.sessions[0].messages == [BODY]
        # Not offered: a 4xx (no plaintext fallback).
        results = deliver([hop_to(plain, tls="encrypt")], [outgoing()])
    assert codes(results) == [[451]]
    assert "STARTTLS is not offered" in results[0][0].text
    # The certificate does not name this host.
    with FakeSMTP(Behaviour(tls=server_tls)) as server:
        hop = Hop(host="other.example", port=server.port, addresses=("127.0.0.1",), tls="encrypt")
        results = deliver([hop], [outgoing()], tls_context=trusted)
    assert codes(results) == [[451]]
    assert results[0][0].text.startswith("4.7.5 ")


def test_implicit_tls(server_tls: ssl.SSLContext, tls_files: Any) -> None:
    with FakeSMTP(Behaviour(tls=server_tls, implicit_tls=True)) as server:
        hop = hop_to(server, implicit_tls=True, tls="encrypt")
        results = deliver([hop], [outgoing()], tls_context=tls_files.client_context())
        assert codes(results) == [[250]]
        assert server.sessions[0].tls
        assert "STARTTLS" not in server.sessions[0].commands
        results = deliver([hop], [outgoing()])  # unknown CA
    assert codes(results) == [[451]]
    assert "TLS failed" in results[0][0].text


# --- AUTH to a smarthost ---------------------------------------------------------------


def test_auth_on_loopback_without_tls() -> None:
    with FakeSMTP(Behaviour(extensions=("AUTH PLAIN LOGIN",))) as server:
        hop = hop_to(server, auth=("user", "secret"))
        assert codes(deliver([hop], [outgoing()])) == [[250]]
    assert any(c.startswith("AUTH PLAIN ") for c in server.sessions[0].commands)
    assert "secret" not in repr(hop)


def test_auth_not_offered_sends_without() -> None:
    with FakeSMTP() as server:
        assert codes(deliver([hop_to(server, auth=("u", "p"))], [outgoing()])) == [[250]]
    assert not any(c.startswith("AUTH") for c in server.sessions[0].commands)


def test_auth_refused_and_no_credentials_in_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    behaviour = Behaviour(extensions=("AUTH PLAIN",), auth_reply="535 5.7.8 bad credentials")
    with FakeSMTP(behaviour) as server:
        results = deliver([hop_to(server, auth=("u", "p"))], [outgoing()])
        assert codes(results) == [[451]]
        assert "authentication failed: 535" in results[0][0].text
        # Not loopback (as seen by the delivery): no AUTH without TLS.
        monkeypatch.setattr(remote, "_loopback", lambda address: False)
        results = deliver([hop_to(server, auth=("u", "p"))], [outgoing()])
    assert codes(results) == [[451]]
    assert "without TLS" in results[0][0].text
    assert not any(c.startswith("AUTH") for c in server.sessions[-1].commands)


def test_loopback_check() -> None:
    assert remote._loopback("127.0.0.1")
    assert remote._loopback("::1")
    assert not remote._loopback("192.0.2.1")
    assert not remote._loopback("not-an-ip")


# --- Postfix's smtp-sink ---------------------------------------------------------------


@pytest.fixture
def smtp_sink(require_tool: Any) -> Iterator[int]:
    binary = require_tool("smtp-sink")
    port = closed_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [binary, *user, f"127.0.0.1:{port}", "100"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "smtp-sink did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.interop
def test_smtp_sink(smtp_sink: int, tmp_path: Path) -> None:
    path = tmp_path / "message"
    body = b"Subject: sink\r\n\r\n" + b".dot line\r\n" * 5000
    path.write_bytes(body)
    rcpts = (
        QueuedRecipient(address="a@example.net", notify=frozenset({"FAILURE"})),
        QueuedRecipient(address="b@example.net", orcpt="rfc822;b@example.net"),
    )
    entry = QueueEntry(
        id="1",
        sender="s@example.org",
        recipients=list(rcpts),
        arrival=0.0,
        next_attempt=0.0,
        size=len(body),
        ret="HDRS",
        envid="e1",
        body="8BITMIME",
    )
    on_disk = OutgoingMessage(entry=entry, recipients=rcpts, open=lambda: path.open("rb"))
    messages = [on_disk, *(outgoing() for _ in range(10)), on_disk]
    results = deliver([hop_to(smtp_sink)], messages)
    assert codes(results) == [[250, 250], *([[250]] * 10), [250, 250]]


# --- the connection cache ------------------------------------------------------------------


def verbs_of(session: Session) -> list[str]:
    return [c.split()[0].upper() for c in session.commands]


def test_a_kept_connection_carries_the_next_batch() -> None:
    cache = ConnectionCache()
    with FakeSMTP() as server:
        first = deliver([hop_to(server)], [outgoing()], connections=cache)
        assert len(cache) == 1
        second = deliver(
            [hop_to(server)], [outgoing(b"Subject: 2\r\n\r\ntwo\r\n")], connections=cache
        )
        assert codes(first) == codes(second) == [[250]]
        assert cache.reused == 1
        (session,) = server.sessions  # one connection for both
        assert verbs_of(session) == ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"]
        assert session.messages == [BODY, b"Subject: 2\r\n\r\ntwo\r\n"]
        cache.close()
        assert len(cache) == 0
        wait_until(lambda: verbs_of(session)[-1] == "QUIT")


def wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("how", ["421", "closed"])
def test_a_kept_connection_the_server_ended_is_replaced_unseen(how: str) -> None:
    cache = ConnectionCache()
    behaviour = Behaviour(reply_421_on="RSET" if how == "421" else None)
    with FakeSMTP(behaviour) as server:
        deliver([hop_to(server)], [outgoing()], connections=cache)
        if how == "closed":
            server.sessions[0].sock.shutdown(socket.SHUT_RDWR)
        results = deliver([hop_to(server)], [outgoing()], connections=cache)
        assert codes(results) == [[250]]
        assert results[0][0].text == "2.0.0 Ok: queued"  # nothing of the stale one shows
        assert len(server.sessions) == 2
        assert verbs_of(server.sessions[1]) == ["EHLO", "MAIL", "RCPT", "DATA"]
        assert len(cache) == 1  # the new one is kept in turn
        cache.close()


def test_idle_connections_expire_with_quit() -> None:
    now = [100.0]
    cache = ConnectionCache(idle=2.0, clock=lambda: now[0])
    with FakeSMTP() as server:
        deliver([hop_to(server)], [outgoing()], connections=cache)
        now[0] += 1.0
        cache.sweep()
        assert len(cache) == 1  # still within its time
        now[0] += 1.5
        cache.sweep()
        assert len(cache) == 0
        wait_until(lambda: verbs_of(server.sessions[0])[-1] == "QUIT")
        # An expired one is never handed out either.
        deliver([hop_to(server)], [outgoing()], connections=cache)
        now[0] += 5.0
        assert cache.take(("_Attempt", hop_to(server), "127.0.0.1")) is None
        assert len(server.sessions) == 2


def test_a_failed_attempt_keeps_nothing() -> None:
    cache = ConnectionCache()
    with FakeSMTP(Behaviour(drop_in_body=True)) as server:
        results = deliver([hop_to(server)], [outgoing()], connections=cache)
    assert codes(results) == [[451]]
    assert len(cache) == 0


def test_connections_are_kept_per_server_and_bounded() -> None:
    cache = ConnectionCache(size=1)
    with FakeSMTP() as one, FakeSMTP() as two:
        deliver([hop_to(one)], [outgoing()], connections=cache)
        deliver([hop_to(two)], [outgoing()], connections=cache)
        assert len(cache) == 1  # the older one (to `one`) was ended to make room
        wait_until(lambda: verbs_of(one.sessions[0])[-1] == "QUIT")
        deliver([hop_to(two)], [outgoing()], connections=cache)
        assert len(two.sessions) == 1
        assert cache.reused == 1
        cache.close()
