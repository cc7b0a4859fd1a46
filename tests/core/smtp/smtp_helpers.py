"""Shared helpers of the SMTP/LMTP connection tests (``from smtp_helpers import ...``).

- ``events(conn, data)``: feed bytes, take every event until NEED_DATA or PAUSED.
- ``state_of(conn)``, ``pending_of(client)``: read through a call, so that mypy does not
  narrow a property across the calls that change it.
- ``Responder()``: called as ``responder(server, event)``, does what a simple, obliging
  application does with one server event: sends the reply the core suggests for a
  rejection, or the ordinary success reply (250, 354 for DATA, 221 for QUIT, one reply per
  recipient after an LMTP body...), and returns the bytes sent. It plays real SASL PLAIN
  and LOGIN exchanges for AUTH (user "user", password "pencil") and calls ``start_tls()``
  after its 220 to STARTTLS.
- ``Exchange()``: called as ``exchange(client, server, *events)``, the client sends
  ``events``; bytes go back and forth, the server answering through its own `Responder`,
  until neither side has anything to say. Returns (server events, client events).
"""

from __future__ import annotations

from mailproto import NEED_DATA, PAUSED
from mailproto.sasl import (
    Challenge,
    Failure,
    ServerMechanism,
    ServerStep,
    Success,
    VerifyPassword,
    server_mechanism,
)
from mailproto.smtp import (
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    ClientConnection,
    CommandRejected,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfChunk,
    EndOfMessage,
    Expn,
    Helo,
    Help,
    Lhlo,
    MessageRejected,
    Quit,
    Reply,
    ServerConnection,
    SMTPEvent,
    StartTLS,
    Vrfy,
)

USERS = {"user": "pencil"}

# What the obliging server offers after EHLO/LHLO.
EXTENSIONS = (
    "PIPELINING",
    "SIZE 10240000",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "DSN",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "AUTH PLAIN LOGIN",
)


def events(conn: ServerConnection | ClientConnection, data: bytes = b"") -> list[SMTPEvent]:
    """Feed ``data``, then take every event until NEED_DATA or PAUSED (or the end)."""
    if data:
        conn.receive_data(data)
    out: list[SMTPEvent] = []
    _drain(conn, out)
    return out


def state_of(conn: ServerConnection | ClientConnection) -> object:
    """The connection's state, read through a call so that mypy does not narrow it."""
    return conn.state


def pending_of(client: ClientConnection) -> tuple[SMTPEvent | None, ...]:
    """The client's pending commands, read through a call so that mypy does not narrow."""
    return client.pending


class Responder:
    """The obliging application, with the SASL exchange it has in progress."""

    def __init__(self) -> None:
        self.mechanism: ServerMechanism | None = None

    def _sasl(self, server: ServerConnection, step: ServerStep) -> bytes:
        while isinstance(step, VerifyPassword):
            assert self.mechanism is not None
            step = self.mechanism.verified(USERS.get(step.username) == step.password)
        if isinstance(step, Success):
            assert step.data is None  # PLAIN and LOGIN have no data with success
            self.mechanism = None
            return server.send(Reply(code=235, enhanced="2.7.0", lines="Authenticated"))
        if isinstance(step, Failure):
            self.mechanism = None
            code, enhanced = (501, "5.5.2") if step.code == "malformed" else (535, "5.7.8")
            return server.send(Reply(code=code, enhanced=enhanced, lines=step.reason))
        assert isinstance(step, Challenge)
        return server.send(AuthChallenge(data=step.data))

    def __call__(self, server: ServerConnection, event: SMTPEvent) -> bytes:
        if isinstance(event, CommandRejected | MessageRejected):
            out = b""
            while server.replies_owed:
                out += server.send(event.reply)
            return out
        if isinstance(event, Ehlo | Lhlo):
            return server.send(Reply(code=250, lines=("mx.example.org", *EXTENSIONS)))
        if isinstance(event, Auth):
            self.mechanism = server_mechanism(event.mechanism)
            return self._sasl(server, self.mechanism.start(event.initial_response))
        if isinstance(event, AuthResponse):
            assert self.mechanism is not None
            return self._sasl(server, self.mechanism.receive(event.data))
        if isinstance(event, AuthCancel):
            self.mechanism = None
            return server.send(Reply(code=501, enhanced="5.0.0", lines="AUTH cancelled"))
        if isinstance(event, StartTLS):
            out = server.send(Reply(code=220, enhanced="2.0.0", lines="Ready to start TLS"))
            server.start_tls()
            return out
        if isinstance(event, EndOfMessage | EndOfChunk):
            out = b""
            while server.replies_owed:
                out += server.send(Reply(code=250, enhanced="2.0.0", lines="OK"))
            return out
        if not server.replies_owed:
            return b""  # Bdat, MessageData, ConnectionClosed: nothing is owed
        codes: dict[type[SMTPEvent], int] = {Data: 354, Quit: 221, Vrfy: 252, Expn: 252}
        code = codes.get(type(event), 214 if isinstance(event, Help) else 250)
        enhanced = None if code == 354 or isinstance(event, Helo) else "2.0.0"
        return server.send(Reply(code=code, enhanced=enhanced, lines="OK"))


def _drain(conn: ServerConnection | ClientConnection, out: list[SMTPEvent]) -> None:
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return
        assert isinstance(event, SMTPEvent)
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return


class Exchange:
    """Our client and our server talking in memory, the server played by a `Responder`."""

    def __init__(self) -> None:
        self.responder = Responder()

    def __call__(
        self, client: ClientConnection, server: ServerConnection, *sent: SMTPEvent
    ) -> tuple[list[SMTPEvent], list[SMTPEvent]]:
        server_events: list[SMTPEvent] = []
        client_events: list[SMTPEvent] = []
        for event in sent:
            server.receive_data(client.send(event))
        while True:
            seen = len(server_events)
            while not (server_events and isinstance(server_events[-1], ConnectionClosed)):
                _drain(server, server_events)
                if len(server_events) == seen:
                    break
                replies = b"".join(self.responder(server, e) for e in server_events[seen:])
                seen = len(server_events)
                if replies:
                    client.receive_data(replies)
            before = len(client_events)
            _drain(client, client_events)
            if len(client_events) == before:
                return server_events, client_events
