"""Our `ClientConnection`, driven by a small blocking-socket loop, against aiosmtpd.

aiosmtpd runs in its own thread (``aiosmtpd.controller.Controller``) on 127.0.0.1 and an
ephemeral port, with a handler that records envelopes and refuses one address. It is a
peer, not the reference: PEERS.md notes it sometimes answers "500 Line too long" to
valid data, so these tests send short lines and check protocol flow, not its limits.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from mailproto import NEED_DATA
from mailproto.sasl import LoginClient, PlainClient
from mailproto.smtp import (
    CLOSED,
    READY,
    Auth,
    AuthChallenge,
    AuthResponse,
    ClientConnection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Lhlo,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
)

if TYPE_CHECKING:
    from conftest import RequireTool

pytestmark = pytest.mark.interop

USER, PASSWORD = b"alice", b"correct horse"
REFUSED = "nobody@example.com"  # the handler answers 550 to this recipient


class BlockingClient:
    """The I/O half of an SMTP client, in a dozen lines: the core does the rest."""

    def __init__(self, port: int, *, lmtp: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = ClientConnection(lmtp=lmtp)

    def close(self) -> None:
        self.sock.close()

    def state(self) -> object:
        return self.conn.state

    def send(self, *events: SMTPEvent) -> None:
        self.sock.sendall(b"".join(self.conn.send(event) for event in events))

    def event(self) -> SMTPEvent:
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
                continue
            assert isinstance(event, SMTPEvent), event  # PAUSED only follows STARTTLS
            return event

    def reply(self) -> Reply:
        event = self.event()
        assert isinstance(event, Reply), event
        return event

    def challenge(self) -> bytes:
        event = self.event()
        assert isinstance(event, AuthChallenge), event
        return event.data

    def command(self, event: SMTPEvent) -> Reply:
        self.send(event)
        return self.reply()

    def commands(self, *events: SMTPEvent) -> list[Reply]:
        """Send a group of commands (pipelined if offered) and read one reply each."""
        ext = self.conn.extensions
        if ext is not None and "PIPELINING" in ext:
            self.send(*events)
            return [self.reply() for _ in events]
        return [self.command(event) for event in events]


@attrs.define
class Delivery:
    sender: str
    recipients: list[str]
    content: bytes


@attrs.define
class Handler:
    """An aiosmtpd handler: records deliveries, refuses `REFUSED`, may add PIPELINING."""

    pipelining: bool = False
    lmtp_statuses: list[str] = attrs.field(factory=list)
    deliveries: list[Delivery] = attrs.field(factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads commands in order, so pipelining just works
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.deliveries.append(
            Delivery(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        if self.lmtp_statuses:
            # aiosmtpd's LMTP class answers DATA like SMTP, with one reply; several
            # lines joined by CRLF make it send one reply per recipient, as RFC 2033 asks.
            return "\r\n".join(self.lmtp_statuses)
        return "250 2.0.0 Message accepted"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = (auth_data.login, auth_data.password) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


@attrs.define
class Server:
    port: int
    handler: Handler


StartServer = Callable[..., Server]  # (handler, *, lmtp=False, **smtp_kwargs)
Connect = Callable[..., BlockingClient]  # (server, *, lmtp=False)


@pytest.fixture
def start_aiosmtpd(require_tool: RequireTool) -> Iterator[StartServer]:
    """``start_aiosmtpd(handler, lmtp=False, **smtp_kwargs)`` -> `Server`."""
    require_tool("aiosmtpd", module=True)
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP

    class EphemeralController(Controller):
        """Binds port 0 and learns the port before aiosmtpd's own start-up check."""

        lmtp = False

        def factory(self) -> SMTP:
            return (LMTP if self.lmtp else SMTP)(self.handler, **self.SMTP_kwargs)

        def _trigger_server(self) -> None:
            server: Any = self.server  # an asyncio Server, listening by now
            self.port = server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    controllers: list[EphemeralController] = []

    def start(handler: Handler, *, lmtp: bool = False, **kwargs: Any) -> Server:
        controller = EphemeralController(
            handler, hostname="127.0.0.1", port=0, server_hostname="aiosmtpd.test", **kwargs
        )
        controller.lmtp = lmtp
        controller.start()
        controllers.append(controller)
        return Server(controller.port, handler)

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()


@pytest.fixture
def client_factory() -> Iterator[Connect]:
    clients: list[BlockingClient] = []

    def connect(server: Server, *, lmtp: bool = False) -> BlockingClient:
        client = BlockingClient(server.port, lmtp=lmtp)
        clients.append(client)
        return client

    try:
        yield connect
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelined"])
def test_transaction_with_a_refused_recipient(
    start_aiosmtpd: StartServer, client_factory: Connect, pipelining: bool
) -> None:
    server = start_aiosmtpd(Handler(pipelining=pipelining))
    client = client_factory(server)
    assert client.reply().code == 220
    ehlo = client.command(Ehlo(domain="client.example"))
    assert ehlo.code == 250
    ext = client.conn.extensions
    assert ext is not None
    assert ("PIPELINING" in ext) is pipelining
    assert "8BITMIME" in ext

    rcpts = ["b@example.com", REFUSED, "c@example.com"]
    group: list[SMTPEvent] = [MailFrom(sender="a@example.com")]
    group += [RcptTo(recipient=r) for r in rcpts]
    group.append(Data())
    replies = client.commands(*group)
    assert [r.code for r in replies] == [250, 250, 550, 250, 354]
    assert replies[2].enhanced == "5.1.1"  # the refusal is matched to its RCPT
    assert client.conn.session.accepted == 2
    assert client.conn.session.refused == 1

    # Bare LF and bare CR are repaired to CRLF, leading dots are doubled on the wire,
    # and a missing final line ending is added; aiosmtpd undoes the stuffing.
    body = b"Subject: dots\n\n.leading\r\n.\rmiddle\n..two\r\nno final newline"
    client.send(MessageData(body[:20]), MessageData(body[20:]), EndOfMessage())
    final = client.reply()
    assert (final.code, final.enhanced) == (250, "2.0.0")
    assert client.state() is READY
    [delivery] = server.handler.deliveries
    assert delivery == Delivery(
        "a@example.com",
        ["b@example.com", "c@example.com"],
        b"Subject: dots\r\n\r\n.leading\r\n.\r\nmiddle\r\n..two\r\nno final newline\r\n",
    )

    assert [r.code for r in client.commands(MailFrom(sender=""), Rset())] == [250, 250]
    assert client.command(Quit()).code == 221
    assert client.state() is CLOSED
    assert isinstance(client.event(), ConnectionClosed)
    assert len(server.handler.deliveries) == 1


def test_data_refused_when_every_recipient_was_refused(
    start_aiosmtpd: StartServer, client_factory: Connect
) -> None:
    server = start_aiosmtpd(Handler(pipelining=True))
    client = client_factory(server)
    client.reply()
    client.command(Ehlo(domain="client.example"))
    replies = client.commands(MailFrom(sender="a@example.com"), RcptTo(recipient=REFUSED), Data())
    assert [r.code for r in replies] == [250, 550, 503]
    # The client knows no body may follow: DATA failed, the transaction is still open.
    assert client.command(Rset()).code == 250
    assert client.command(Quit()).code == 221
    assert server.handler.deliveries == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_against_aiosmtpd(
    start_aiosmtpd: StartServer, client_factory: Connect, mechanism: str
) -> None:
    server = start_aiosmtpd(Handler(), authenticator=authenticator, auth_require_tls=False)
    client = client_factory(server)
    client.reply()
    client.command(Ehlo(domain="client.example"))
    ext = client.conn.extensions
    assert ext is not None
    assert {"PLAIN", "LOGIN"} <= ext.auth_mechanisms

    if mechanism == "PLAIN":
        plain = PlainClient(USER.decode(), "wrong password")
        failed = client.command(Auth(mechanism="PLAIN", initial_response=plain.initial_response()))
        assert failed.code == 535
        plain = PlainClient(USER.decode(), PASSWORD.decode())
        reply = client.command(Auth(mechanism="PLAIN", initial_response=plain.initial_response()))
    else:
        login = LoginClient(USER.decode(), PASSWORD.decode())
        client.send(Auth(mechanism="LOGIN"))
        client.send(AuthResponse(data=login.respond(client.challenge())))
        client.send(AuthResponse(data=login.respond(client.challenge())))
        reply = client.reply()
    assert reply.code == 235
    assert client.conn.session.authenticated

    replies = client.commands(MailFrom(sender="a@example.com"), RcptTo(recipient="b@example.com"))
    assert [r.code for r in replies] == [250, 250]
    assert client.command(Data()).code == 354
    client.send(MessageData(b"Subject: authenticated\r\n\r\nhi\r\n"), EndOfMessage())
    assert client.reply().code == 250
    assert client.command(Quit()).code == 221
    assert server.handler.deliveries[0].content == b"Subject: authenticated\r\n\r\nhi\r\n"


def test_lmtp_one_reply_per_recipient(start_aiosmtpd: StartServer, client_factory: Connect) -> None:
    statuses = ["250 2.0.0 <b@example.com> delivered", "452 4.2.2 <c@example.com> mailbox full"]
    server = start_aiosmtpd(Handler(lmtp_statuses=statuses), lmtp=True)
    client = client_factory(server, lmtp=True)
    assert client.reply().code == 220
    assert client.command(Lhlo(domain="client.example")).code == 250
    rcpts = ["b@example.com", REFUSED, "c@example.com"]
    replies = client.commands(
        MailFrom(sender="a@example.com"), *(RcptTo(recipient=r) for r in rcpts), Data()
    )
    assert [r.code for r in replies] == [250, 250, 550, 250, 354]
    client.send(MessageData(b"Subject: lmtp\r\n\r\nper recipient\r\n"), EndOfMessage())
    # RFC 2033 section 4.2: one reply per accepted recipient, in RCPT order.
    per_recipient = [client.reply(), client.reply()]
    assert [(r.code, r.enhanced) for r in per_recipient] == [(250, "2.0.0"), (452, "4.2.2")]
    assert client.state() is READY
    assert client.command(Quit()).code == 221
    [delivery] = server.handler.deliveries
    assert delivery.recipients == ["b@example.com", "c@example.com"]
