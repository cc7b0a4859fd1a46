"""Helpers of the POP3 core tests.

- `drain` and `merged` read events out of a connection;
- `MaildropApp` is a scripted server application: it answers every event of a
  `ServerConnection` the way a real POP3 server would, over an in-memory maildrop, and
  runs SASL exchanges with the real mechanisms of `mailproto.sasl`;
- `Pair` is our client against our server, in memory (h11's ConnectionPair);
- `load_transcript` and `replay` read the C:/S: files of tests/vectors/ and play them
  through both roles, checking every byte each side writes.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import attrs
import pytest

from mailproto import NEED_DATA, PAUSED, LocalProtocolError
from mailproto._util import Sentinel
from mailproto.pop3 import (
    AUTHORIZATION,
    TLS_PENDING,
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Capa,
    ClientConfig,
    ClientConnection,
    CommandRejected,
    ConnectionClosed,
    Dele,
    EndOfResponse,
    Err,
    List,
    Noop,
    Ok,
    Pass,
    POP3Event,
    Quit,
    ResponseData,
    Retr,
    Rset,
    ServerConfig,
    ServerConnection,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
    apop_digest,
)
from mailproto.pop3._state import is_multiline
from mailproto.pop3._syntax import (
    Rejection,
    parse_auth_response,
    parse_command,
    parse_status_line,
)
from mailproto.sasl import (
    Challenge,
    Failure,
    NeedCramMD5Secret,
    NeedScramCredentials,
    ScramCredentials,
    ServerMechanism,
    ServerStep,
    Success,
    VerifyPassword,
    scram_credentials,
    server_mechanism,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors"

Blocked = type[NEED_DATA] | type[PAUSED] | None
AnyConnection = ServerConnection | ClientConnection

GREETING = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
USERS = {"mrose": "tanstaaf", "tim": "tanstaaftanstaaf", "jürgen": "pässwörd"}
DIGEST_MROSE = apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
SCRAM = {name: scram_credentials(pw, salt=b"salt:" + name.encode()) for name, pw in USERS.items()}


def message(size: int, seed: int = 0) -> bytes:
    """A message of exactly ``size`` octets, CRLF lines, some starting with a period."""
    rng = random.Random(seed)
    head = b"From: a@example.org\r\nSubject: test\r\n\r\n"
    lines = [head]
    total = len(head)
    while total < size:
        room = size - total
        if room <= 2:
            lines.append(b"\r\n"[-room:] if room == 1 else b"\r\n")
            total += room
            break
        n = min(room - 2, rng.randint(0, 70))
        body = bytes(rng.choice(b"abc .xyz") for _ in range(n))
        lines.append(body + b"\r\n")
        total += n + 2
    out = b"".join(lines)
    assert len(out) == size, (len(out), size)
    return out


# --- reading events -----------------------------------------------------------------------


def state(conn: AnyConnection) -> type[Sentinel]:
    """``conn.state``, through a call so that mypy does not narrow it across assertions."""
    return conn.state


def pending(client: ClientConnection) -> tuple[POP3Event | None, ...]:
    """``client.pending``, through a call for the same reason."""
    return client.pending


def drain(conn: AnyConnection) -> tuple[list[POP3Event], Blocked]:
    """Every event up to the point where ``conn`` blocks (NEED_DATA, PAUSED) or closes
    (then the second item is None and the last event is `ConnectionClosed`)."""
    events: list[POP3Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events, event
        assert isinstance(event, POP3Event)
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events, None


def merged(events: Iterable[POP3Event]) -> list[POP3Event]:
    """``events`` with adjacent `ResponseData` joined: chunking is not a property of the
    stream, so comparisons go through this."""
    out: list[POP3Event] = []
    for event in events:
        if isinstance(event, ResponseData) and out and isinstance(out[-1], ResponseData):
            out[-1] = ResponseData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def chunks(data: bytes, how: str | int, seed: int = 0) -> Iterator[bytes]:
    """``data`` cut "whole", "bytewise", "random" (seeded) or in pieces of ``how`` bytes."""
    if not data:
        return
    if how == "whole":
        yield data
    elif how == "bytewise":
        for i in range(len(data)):
            yield data[i : i + 1]
    elif how == "random":
        rng = random.Random(seed)
        i = 0
        while i < len(data):
            n = rng.randint(1, 20)
            yield data[i : i + n]
            i += n
    else:
        assert isinstance(how, int)
        for i in range(0, len(data), how):
            yield data[i : i + how]


# --- a server application -----------------------------------------------------------------


class MaildropApp:
    """Answers a `ServerConnection` like a real server over ``messages``.

    ``log`` keeps every event the server reported; ``pump`` feeds bytes and returns what
    the server writes back. SASL runs through `mailproto.sasl` mechanisms.
    """

    def __init__(
        self,
        server: ServerConnection,
        *,
        messages: list[bytes] | None = None,
        capabilities: tuple[str, ...] = (
            "TOP",
            "USER",
            "UIDL",
            "RESP-CODES",
            "PIPELINING",
            "SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256",
            "STLS",
            "UTF8 USER",
        ),
        greeting: str = GREETING,
        nonce: bytes = b"server-nonce",
    ) -> None:
        self.server = server
        self.messages = messages if messages is not None else [message(120), message(200, 1)]
        self.capabilities = capabilities
        self.greeting = greeting
        self.nonce = nonce
        self.log: list[POP3Event] = []
        self.user: str | None = None
        self.mech: ServerMechanism | None = None
        self.success_pending = False
        self.removed: frozenset[int] = frozenset()

    def greet(self) -> bytes:
        return self.server.send(Ok(text=self.greeting))

    def pump(self, data: bytes = b"") -> bytes:
        """Feed ``data`` and answer every event; stop when the server blocks or closes."""
        if data:
            self.server.receive_data(data)
        out = bytearray()
        while True:
            event = self.server.next_event()
            if event is NEED_DATA or event is PAUSED:
                return bytes(out)
            assert isinstance(event, POP3Event)
            self.log.append(event)
            if isinstance(event, ConnectionClosed):
                return bytes(out)
            out += self.answer(event)

    def _live(self) -> list[int]:
        return [n for n in range(1, len(self.messages) + 1) if n not in self.server.deleted]

    def _login(self, user: str) -> bytes:
        self.user = user
        self.server.open_maildrop(len(self.messages))
        size = sum(len(m) for m in self.messages)
        return self.server.send(
            Ok(text=f"{user}'s maildrop has {len(self.messages)} messages ({size} octets)")
        )

    def _multiline(self, status: Ok, body: bytes) -> bytes:
        send = self.server.send
        return send(status) + send(ResponseData(body)) + send(EndOfResponse())

    def answer(self, event: POP3Event) -> bytes:
        send = self.server.send
        match event:
            case CommandRejected(reply=reply):
                return send(reply)
            case User(name=name):
                self.user = name
                if name not in USERS:
                    return send(Err(code="AUTH", text="no such mailbox"))
                return send(Ok(text=f"{name} is a real hoopy frood"))
            case Pass(password=password):
                if self.user is None or USERS.get(self.user) != password:
                    return send(Err(code="AUTH", text="invalid password"))
                return self._login(self.user)
            case Apop(name=name, digest=digest):
                timestamp = self.server.apop_timestamp
                secret = USERS.get(name)
                if timestamp is None or secret is None:
                    return send(Err(code="AUTH", text="permission denied"))
                if apop_digest(timestamp, secret) != digest:
                    return send(Err(code="AUTH", text="permission denied"))
                return self._login(name)
            case Auth(mechanism=None):
                body = b"".join(m.encode() + b"\r\n" for m in self._mechanisms())
                return self._multiline(Ok(text="methods supported:"), body)
            case Auth(mechanism=str(name), initial_response=initial):
                if name not in self._mechanisms():
                    return send(Err(text="unrecognized authentication type"))
                self.mech = server_mechanism(name, hostname="example.org", nonce=self.nonce)
                return self._step(self.mech.start(initial))
            case AuthResponse(data=data):
                if self.success_pending:
                    self.success_pending = False
                    assert self.user is not None
                    return self._login(self.user)
                assert self.mech is not None
                return self._step(self.mech.receive(data))
            case AuthCancel():
                self.mech = None
                return send(Err(text="authentication cancelled"))
            case Capa():
                body = b"".join(t.encode() + b"\r\n" for t in self.capabilities)
                return self._multiline(Ok(text="Capability list follows"), body)
            case Stls():
                return send(Ok(text="Begin TLS negotiation"))
            case Utf8():
                return send(Ok(text="UTF8 enabled"))
            case Quit():
                if self.server.state is AUTHORIZATION:
                    return send(Ok(text="dewey POP3 server signing off"))
                self.removed = self.server.deleted
                left = len(self.messages) - len(self.removed)
                tail = "maildrop empty" if not left else f"{left} messages left"
                return send(Ok(text=f"dewey POP3 server signing off ({tail})"))
            case Stat():
                live = self._live()
                size = sum(len(self.messages[n - 1]) for n in live)
                return send(Ok(text=f"{len(live)} {size}"))
            case List(msg=None):
                live = self._live()
                body = b"".join(b"%d %d\r\n" % (n, len(self.messages[n - 1])) for n in live)
                size = sum(len(self.messages[n - 1]) for n in live)
                return self._multiline(Ok(text=f"{len(live)} messages ({size} octets)"), body)
            case List(msg=int(n)):
                return send(Ok(text=f"{n} {len(self.messages[n - 1])}"))
            case Uidl(msg=None):
                body = b"".join(b"%d uid-%d\r\n" % (n, n) for n in self._live())
                return self._multiline(Ok(), body)
            case Uidl(msg=int(n)):
                return send(Ok(text=f"{n} uid-{n}"))
            case Retr(msg=n):
                data = self.messages[n - 1]
                return self._multiline(Ok(text=f"{len(data)} octets"), data)
            case Top(msg=n, lines=count):
                head, sep, body = self.messages[n - 1].partition(b"\r\n\r\n")
                kept = b"".join(body.splitlines(keepends=True)[:count])
                return self._multiline(Ok(), head + sep + kept)
            case Dele(msg=n):
                return send(Ok(text=f"message {n} deleted"))
            case Rset():
                return send(Ok(text=f"maildrop has {len(self.messages)} messages"))
            case Noop():
                return send(Ok())
        raise AssertionError(f"unexpected event {event!r}")

    def _mechanisms(self) -> list[str]:
        for tag in self.capabilities:
            if tag.startswith("SASL "):
                return tag.split()[1:]
        return []

    def _step(self, step: ServerStep) -> bytes:
        assert self.mech is not None
        send = self.server.send
        while True:
            match step:
                case Challenge(data=data):
                    return send(AuthChallenge(data=data))
                case VerifyPassword(username=username, password=password):
                    step = self.mech.verified(USERS.get(username) == password)
                case NeedCramMD5Secret(username=username):
                    step = self.mech.respond_with_secret(USERS.get(username))
                case NeedScramCredentials(username=username):
                    creds: ScramCredentials | None = SCRAM.get(username)
                    step = self.mech.respond_with_credentials(creds)
                case Success(username=username, data=data):
                    self.user = username
                    if data:
                        # RFC 5034 has no room for data with success in +OK: it goes out
                        # as one more challenge, answered by an empty line.
                        self.success_pending = True
                        return send(AuthChallenge(data=data))
                    return self._login(username)
                case Failure(code=code):
                    return send(Err(code="AUTH" if code == "auth" else None, text="no"))
                case _:
                    raise AssertionError(step)


# --- our client against our server ----------------------------------------------------------


class Pair:
    """A `ClientConnection` talking to a `ServerConnection` driven by a `MaildropApp`.

    ``wire`` records every byte in both directions as ("C" | "S", bytes).
    """

    def __init__(
        self,
        *,
        server_config: ServerConfig | None = None,
        client_config: ClientConfig | None = None,
        messages: list[bytes] | None = None,
        capabilities: tuple[str, ...] | None = None,
    ) -> None:
        self.server = ServerConnection(server_config or ServerConfig(allow_insecure_auth=True))
        self.client = ClientConnection(client_config)
        if capabilities is None:
            self.app = MaildropApp(self.server, messages=messages)
        else:
            self.app = MaildropApp(self.server, messages=messages, capabilities=capabilities)
        self.wire: list[tuple[Literal["C", "S"], bytes]] = []
        greeting = self.app.greet()
        self.wire.append(("S", greeting))
        self.client.receive_data(greeting)
        events, blocked = drain(self.client)
        assert events == [Ok(text=self.app.greeting)]
        assert blocked is NEED_DATA

    def send(self, *commands: POP3Event) -> list[POP3Event]:
        """Send ``commands`` back to back (pipelined if more than one); return what the
        client reads back, `ResponseData` merged."""
        data = b"".join(self.client.send(c) for c in commands)
        return self.transfer(data)

    def transfer(self, data: bytes) -> list[POP3Event]:
        self.wire.append(("C", data))
        start = len(self.app.log)
        out = self.app.pump(data)
        self.wire.append(("S", out))
        self.client.receive_data(out)
        events, _ = drain(self.client)
        if self.client.state is TLS_PENDING:
            assert self.server.state is TLS_PENDING
            self.server.start_tls()
            self.client.start_tls()
        # The server saw, as events, the commands the client sent.
        self.server_events = self.app.log[start:]
        return merged(events)

    def close(self) -> list[POP3Event]:
        self.client.receive_data(b"")
        self.server.receive_data(b"")
        events, _ = drain(self.client)
        return events


# --- transcripts ------------------------------------------------------------------------------


@attrs.frozen
class Line:
    side: Literal["C", "C!", "S", "!"]
    text: str


def load_transcript(name: str) -> list[Line]:
    """Lines of tests/vectors/<name>: "C: ", "C! ", "S: " (text after the prefix,
    verbatim, trailing spaces included) and "! directive"; "#" comments and blank lines
    are skipped. "C!" is a line our client refuses to send, written to the server raw."""
    out: list[Line] = []
    for raw in (VECTORS / name).read_text("utf-8").split("\n"):
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw.startswith("! "):
            out.append(Line("!", raw[2:].strip()))
        elif raw[:3] in ("C: ", "S: "):
            out.append(Line("C" if raw[0] == "C" else "S", raw[3:]))
        elif raw.startswith("C! "):
            out.append(Line("C!", raw[3:]))
        elif raw in ("C:", "S:"):
            out.append(Line("C" if raw[0] == "C" else "S", ""))
        else:
            raise AssertionError(f"{name}: bad transcript line {raw!r}")
    return out


@attrs.define
class Replay:
    server: ServerConnection
    client: ClientConnection
    server_events: list[POP3Event] = attrs.Factory(list)
    client_events: list[POP3Event] = attrs.Factory(list)
    server_bytes: bytes = b""
    client_bytes: bytes = b""


def _server_event(text: str, in_body: bool) -> POP3Event:
    """What the server application sends to produce the transcript line ``text``."""
    if in_body:
        if text == ".":
            return EndOfResponse()
        unstuffed = text[1:] if text.startswith(".") else text
        return ResponseData(unstuffed.encode("utf-8") + b"\r\n")
    if text == "+" or text.startswith("+ "):
        return AuthChallenge(data=base64.b64decode(text[2:], validate=True))
    status = parse_status_line(text.encode("utf-8"))
    assert status is not None, text
    return status


def replay(name: str, how: str | int = "whole") -> Replay:
    """Play transcript ``name`` through our server and our client at once.

    Every "C:" line is parsed into its command event; the client must write exactly that
    line for it and the server must read back the same event. Every "S:" line is the
    event the server application sends (a body line unstuffed into `ResponseData`); the
    server must write exactly that line and the client must read back the same events.
    A "C!" line is one our client refuses to build or send (LocalProtocolError); it
    goes to the server raw, which must refuse it with the -ERR of the "S:" line after
    it, and that answer goes to no client. Bytes travel cut as ``how`` says (see
    `chunks`). Directives: "! implicit-tls" (first
    line: both configured for port 995), "! maildrop N" (the server application opens a
    maildrop of N messages, before the +OK of a login), "! starttls" (both sides call
    start_tls(), the TLS handshake being out of the core's sight).
    """
    lines = load_transcript(name)
    tls = bool(lines) and lines[0] == Line("!", "implicit-tls")
    server = ServerConnection(ServerConfig(tls=tls))
    client = ClientConnection(ClientConfig(tls=tls))
    result = Replay(server, client)
    command: POP3Event | None = None
    in_body = False
    pending_s = bytearray()
    expected_client: list[POP3Event] = []
    raw_turn = False  # the answers now written answer a "C!" line

    def flush_server() -> None:
        nonlocal pending_s
        if raw_turn:
            pending_s = bytearray()
            expected_client.clear()
            return
        for piece in chunks(bytes(pending_s), how):
            client.receive_data(piece)
        events, blocked = drain(client)
        assert blocked in (NEED_DATA, PAUSED)
        assert merged(events) == merged(expected_client), name
        result.client_events += events
        pending_s = bytearray()
        expected_client.clear()

    for line in lines:
        if line.side == "!":
            directive, _, arg = line.text.partition(" ")
            if directive == "maildrop":
                server.open_maildrop(int(arg))
            elif directive == "starttls":
                flush_server()
                server.start_tls()
                client.start_tls()
            else:
                assert directive == "implicit-tls"
            continue
        wire = line.text.encode("utf-8") + b"\r\n"
        if line.side == "C!":
            flush_server()
            raw_turn = True
            with pytest.raises((LocalProtocolError, Rejection)):
                client.send(parse_command(wire[:-2], utf8=client.session.utf8))
            for piece in chunks(wire, how):
                server.receive_data(piece)
            events, blocked = drain(server)
            assert len(events) == 1, events
            assert isinstance(events[0], CommandRejected), (line, events)
            command = events[0]
            result.server_events += events
            continue
        if line.side == "C":
            flush_server()
            raw_turn = False
            if client.session.in_auth:
                command = parse_auth_response(line.text.encode("utf-8"))
            else:
                command = parse_command(line.text.encode("utf-8"), utf8=client.session.utf8)
            assert client.send(command) == wire, line
            result.client_bytes += wire
            for piece in chunks(wire, how):
                server.receive_data(piece)
            events, blocked = drain(server)
            assert events == [command], (line, events)
            assert blocked is PAUSED
            result.server_events += events
            continue
        event = _server_event(line.text, in_body)
        if isinstance(command, CommandRejected):
            assert event == command.reply, line  # the -ERR the core chose
        assert server.send(event) == wire, line
        result.server_bytes += wire
        pending_s += wire
        expected_client.append(event)
        if isinstance(event, EndOfResponse):
            in_body = False
        elif isinstance(event, Ok) and command is not None and is_multiline(command):
            in_body = True
    flush_server()
    return result
