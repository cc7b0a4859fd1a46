"""The POP3 client's flows, written once for every flavour.

`POP3ClientSession` holds the sans-I/O `mailproto.pop3.ClientConnection` and the
settings; each method returns a flow (a generator of effects) that a facade hands to its
driver: `greet`, `capa`, `stls`, `login` (SASL, APOP or USER/PASS), `stat`, `list`,
`uidl`, `retr`, `top`, `dele`, `rset`, `noop`, `quit`, and the pipelined `list_many`,
`dele_many`, `retr_many` (RFC 2449 PIPELINING when offered, one command at a time if not).

A message body reaches the caller as the core hands it over, in chunks: ``retr(n, out)``
writes each chunk to ``out`` through a `Call` effect (so an async file's ``write`` is
awaited), and never holds the whole message.
"""

from __future__ import annotations

import builtins
import ssl
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mailproto import NEED_DATA, LocalProtocolError
from mailproto import pop3 as p
from mailproto.sasl import (
    ClientMechanism,
    CramMD5Client,
    LoginClient,
    PlainClient,
    SASLError,
    ScramSha256Client,
)

from .._effects import Call, Close, Info, Op, Receive, Send, StartTLS, TLSInfo
from ..errors import AuthenticationFailed, ConnectionLost, MailError, ServerError
from .tls_choice import upgrade_context

__all__ = ["POP3ClientSession"]

R = TypeVar("R")

# Commands sent in one write while pipelining; the next batch goes out once half of
# them are answered, so neither side can block writing while the other does too.
_WINDOW = 64


class POP3ClientSession:
    """One POP3 client session's state and flows."""

    def __init__(self, *, host: str, timeout: float | None = 60.0, tls: bool = False) -> None:
        self.host = host
        self.timeout = timeout
        self.conn = p.ClientConnection(p.ClientConfig(tls=tls))
        self.tls: TLSInfo | None = None
        # How the last login went in: a SASL mechanism's name, "APOP" or "USER".
        self.login_method: str | None = None

    @property
    def capabilities(self) -> p.Capabilities:
        """The server's CAPA listing (empty before CAPA, or if it does not know CAPA)."""
        return self.conn.capabilities or p.Capabilities()

    @property
    def greeting(self) -> p.Ok | None:
        return self.conn.greeting

    # -- plumbing

    def _event(self) -> Op[p.POP3Event]:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data((yield Receive(timeout=self.timeout)))
                continue
            if isinstance(event, p.ConnectionClosed):
                raise ConnectionLost(f"{self.host} closed the connection")
            assert isinstance(event, p.POP3Event)
            return event

    def _status(self) -> Op[p.Ok | p.Err | p.AuthChallenge]:
        event = yield from self._event()
        if not isinstance(event, p.Ok | p.Err | p.AuthChallenge):
            raise ConnectionLost(f"unexpected event from {self.host}: {event!r}")
        return event

    def _ok(self, command: str, error: type[ServerError] = ServerError) -> Op[p.Ok]:
        """The status of the oldest command sent; -ERR raises ``error``."""
        status = yield from self._status()
        if isinstance(status, p.Err):
            raise _error(status, command, error)
        if not isinstance(status, p.Ok):
            raise ConnectionLost(f"unexpected AUTH challenge from {self.host}")
        return status

    def _command(self, event: p.POP3Event, command: str) -> Op[p.Ok]:
        yield Send(self.conn.send(event), timeout=self.timeout)
        return (yield from self._ok(command))

    def _body(self, write: Callable[[bytes], Any] | None) -> Op[bytes | int]:
        """A multi-line body: to ``write`` chunk by chunk (its size is returned), or whole."""
        chunks: builtins.list[bytes] = []
        size = 0
        while True:
            event = yield from self._event()
            if isinstance(event, p.EndOfResponse):
                return size if write is not None else b"".join(chunks)
            if not isinstance(event, p.ResponseData):
                raise ConnectionLost(f"unexpected event from {self.host}: {event!r}")
            if write is None:
                chunks.append(event.data)
            else:
                size += len(event.data)
                yield Call(write, (event.data,))

    def _multiline(
        self, event: p.POP3Event, command: str, write: Callable[[bytes], Any] | None = None
    ) -> Op[bytes | int]:
        yield from self._command(event, command)
        return (yield from self._body(write))

    # -- flows: connecting

    def greet(self) -> Op[p.Ok]:
        """Read the greeting; a -ERR greeting raises `ServerError`. With implicit TLS,
        ``tls`` is known from here on (it decides which SASL mechanisms are safe)."""
        info = yield Info()
        self.tls = info.tls
        return (yield from self._ok("greeting"))

    def open(self, starttls: ssl.SSLContext | bool | None = None) -> Op[p.Ok]:
        """Greeting, CAPA, and STLS: required (True or a context), never (False), or when
        offered (None). Returns the greeting."""
        greeting = yield from self.greet()
        yield from self.capa()
        offered = "STLS" in self.capabilities
        context = upgrade_context(starttls, secure=self.tls is not None, offered=offered)
        if context is not None:
            yield from self.stls(context)
        return greeting

    def capa(self) -> Op[p.Capabilities]:
        """CAPA (RFC 2449); a server that does not know it has no capabilities."""
        yield Send(self.conn.send(p.Capa()), timeout=self.timeout)
        status = yield from self._status()
        if isinstance(status, p.Ok):
            yield from self._body(None)
        return self.capabilities

    def stls(self, context: ssl.SSLContext, hostname: str | None = None) -> Op[TLSInfo]:
        """STLS, the handshake, and CAPA again (RFC 2595 section 4: it may change)."""
        if self.conn.capabilities is not None and "STLS" not in self.conn.capabilities:
            raise ServerError("-ERR", "STLS is not offered", command="STLS")
        yield from self._command(p.Stls(), "STLS")
        self.conn.start_tls()
        self.tls = yield StartTLS(context, hostname=hostname or self.host, timeout=self.timeout)
        yield from self.capa()
        return self.tls

    # -- flows: logging in

    def login(
        self, user: str, password: str, *, mechanism: str | None = None, apop: bool = False
    ) -> Op[p.Ok]:
        """Log in the best way offered; see `mailproto_adapters.blocking.POP3Client.login`."""
        if mechanism is None:
            offered = self.capabilities.sasl_mechanisms
            mechanism = _best_mechanism(offered, tls=self.tls is not None)
            if mechanism is None:
                use_apop = apop and self.conn.apop_timestamp is not None
                mechanism = "APOP" if use_apop else "USER"
        name = self.login_method = mechanism.upper()
        if name == "USER":
            return (yield from self.user_pass(user, password))
        if name == "APOP":
            return (yield from self.apop(user, password))
        return (yield from self.auth(name, user, password))

    def user_pass(self, user: str, password: str) -> Op[p.Ok]:
        """USER and PASS (RFC 1939 section 7): the password in the clear."""
        yield Send(self.conn.send(p.User(name=user)), timeout=self.timeout)
        yield from self._ok("USER", AuthenticationFailed)
        yield Send(self.conn.send(p.Pass(password=password)), timeout=self.timeout)
        return (yield from self._ok("PASS", AuthenticationFailed))

    def apop(self, user: str, password: str) -> Op[p.Ok]:
        """APOP (RFC 1939 section 7): an MD5 digest of the greeting's timestamp."""
        stamp = self.conn.apop_timestamp
        if stamp is None:
            raise AuthenticationFailed("-ERR", "no APOP timestamp in the greeting", command="APOP")
        event = p.Apop(name=user, digest=p.apop_digest(stamp, password))
        yield Send(self.conn.send(event), timeout=self.timeout)
        return (yield from self._ok("APOP", AuthenticationFailed))

    def auth(self, mechanism: str, user: str, password: str) -> Op[p.Ok]:
        """AUTH (RFC 5034) with one SASL mechanism."""
        client = _mechanism(mechanism, user, password)
        initial = client.initial_response()
        try:
            data = self.conn.send(p.Auth(mechanism=client.name, initial_response=initial))
        except LocalProtocolError:
            if initial is None:
                raise
            # RFC 5034 section 4: too long for the command line; send it when asked.
            data = self.conn.send(p.Auth(mechanism=client.name))
        else:
            initial = None
        yield Send(data, timeout=self.timeout)
        status = yield from self._status()
        while isinstance(status, p.AuthChallenge):
            try:
                if initial is not None:
                    answer: p.POP3Event = p.AuthResponse(data=initial)
                    initial = None
                else:
                    answer = p.AuthResponse(data=client.respond(status.data))
            except SASLError:
                answer = p.AuthCancel()
            yield Send(self.conn.send(answer), timeout=self.timeout)
            status = yield from self._status()
        if isinstance(status, p.Err):
            raise _error(status, "AUTH", AuthenticationFailed)
        try:
            client.verify_success(None)
        except SASLError as exc:
            raise AuthenticationFailed("-ERR", str(exc), command="AUTH") from None
        return status

    # -- flows: the maildrop

    def stat(self) -> Op[tuple[int, int]]:
        """STAT: (message count, maildrop size in octets)."""
        ok = yield from self._command(p.Stat(), "STAT")
        return _two_numbers(ok, "STAT")

    def list(self, n: int | None = None) -> Op[builtins.list[tuple[int, int]] | tuple[int, int]]:
        """LIST: every (number, size), or one message's."""
        if n is not None:
            ok = yield from self._command(p.List(msg=n), "LIST")
            return _two_numbers(ok, "LIST")
        body = yield from self._multiline(p.List(), "LIST")
        assert isinstance(body, bytes)
        return p.parse_scan_listing(body)

    def uidl(self, n: int | None = None) -> Op[builtins.list[tuple[int, str]] | tuple[int, str]]:
        """UIDL: every (number, unique id), or one message's."""
        if n is not None:
            ok = yield from self._command(p.Uidl(msg=n), "UIDL")
            words = ok.text.split()
            if len(words) < 2 or not words[0].isdigit():
                raise ServerError("-ERR", f"bad UIDL answer {ok.text!r}", command="UIDL")
            return int(words[0]), words[1]
        body = yield from self._multiline(p.Uidl(), "UIDL")
        assert isinstance(body, bytes)
        return p.parse_uidl_listing(body)

    def retr(self, n: int, write: Callable[[bytes], Any] | None = None) -> Op[bytes | int]:
        """RETR: the message's bytes, or, given ``write``, its size once written."""
        return (yield from self._multiline(p.Retr(msg=n), "RETR", write))

    def top(
        self, n: int, lines: int, write: Callable[[bytes], Any] | None = None
    ) -> Op[bytes | int]:
        """TOP: the header and the first ``lines`` lines of the body."""
        return (yield from self._multiline(p.Top(msg=n, lines=lines), "TOP", write))

    def dele(self, n: int) -> Op[p.Ok]:
        return (yield from self._command(p.Dele(msg=n), "DELE"))

    def rset(self) -> Op[p.Ok]:
        return (yield from self._command(p.Rset(), "RSET"))

    def noop(self) -> Op[p.Ok]:
        return (yield from self._command(p.Noop(), "NOOP"))

    def quit(self) -> Op[p.Ok | None]:
        """QUIT and close. A -ERR (RFC 2449 [SYS/TEMP]: some deletions failed) raises
        `ServerError` once closed; a server that already closed is not an error."""
        failed: ServerError | None = None
        try:
            reply: p.Ok | None = yield from self._command(p.Quit(), "QUIT")
        except ServerError as exc:
            reply, failed = None, exc
        except (ConnectionLost, MailError, OSError, LocalProtocolError):
            reply = None
        yield Close()
        if failed is not None:
            raise failed
        return reply

    # -- flows: pipelined (RFC 2449 section 6.6)

    def _pipeline(
        self,
        commands: Sequence[p.POP3Event],
        name: str,
        answer: Callable[[int, p.Ok | p.Err], Op[R]],
    ) -> Op[builtins.list[R]]:
        """Send ``commands`` in batches when PIPELINING is offered (else one at a time),
        read every answer in order with ``answer(index, status)``; -ERRs do not stop
        the others, and the first raises `ServerError` once all are read."""
        window = _WINDOW if "PIPELINING" in self.capabilities else 1
        results: builtins.list[R] = []
        first_error: ServerError | None = None
        sent = 0
        for index in range(len(commands)):
            if sent - index <= window // 2 and sent < len(commands):
                batch = commands[sent : sent + window - (sent - index)]
                yield Send(b"".join(self.conn.send(c) for c in batch), timeout=self.timeout)
                sent += len(batch)
            status = yield from self._status()
            if isinstance(status, p.AuthChallenge):
                raise ConnectionLost(f"unexpected AUTH challenge from {self.host}")
            if isinstance(status, p.Err) and first_error is None:
                first_error = _error(status, f"{name} {_number(commands[index])}", ServerError)
            results.append((yield from answer(index, status)))
        if first_error is not None:
            raise first_error
        return results

    def dele_many(self, numbers: Sequence[int]) -> Op[None]:
        """DELE every message of ``numbers``, pipelined."""

        def answer(index: int, status: p.Ok | p.Err) -> Op[None]:
            return None
            yield  # a generator

        yield from self._pipeline([p.Dele(msg=n) for n in numbers], "DELE", answer)

    def list_many(self, numbers: Sequence[int]) -> Op[builtins.list[tuple[int, int]]]:
        """LIST n for each of ``numbers``, pipelined: their (number, size)."""

        def answer(index: int, status: p.Ok | p.Err) -> Op[tuple[int, int]]:
            if isinstance(status, p.Err):
                return (numbers[index], -1)
            return _two_numbers(status, "LIST")
            yield  # a generator

        return (yield from self._pipeline([p.List(msg=n) for n in numbers], "LIST", answer))

    def retr_many(
        self,
        numbers: Sequence[int],
        writer: Callable[[int], Callable[[bytes], Any] | None] | None = None,
    ) -> Op[builtins.list[bytes | int]]:
        """RETR each of ``numbers``, pipelined. ``writer(n)`` gives the write function
        of message n (its size is then its result), or None for its bytes."""

        def answer(index: int, status: p.Ok | p.Err) -> Op[bytes | int]:
            if isinstance(status, p.Err):
                return b""
            write = writer(numbers[index]) if writer is not None else None
            return (yield from self._body(write))

        return (yield from self._pipeline([p.Retr(msg=n) for n in numbers], "RETR", answer))


def _error(status: p.Err, command: str, error: type[ServerError]) -> ServerError:
    """The exception for a -ERR, its response code (such as [IN-USE]) in the text."""
    text = f"[{status.code}] {status.text}" if status.code else status.text
    return error("-ERR", text, command=command)


def _number(command: p.POP3Event) -> int:
    msg = getattr(command, "msg", None)
    return msg if isinstance(msg, int) else 0


def _two_numbers(ok: p.Ok, command: str) -> tuple[int, int]:
    words = ok.text.split()
    if len(words) < 2 or not (words[0].isdigit() and words[1].isdigit()):
        raise ServerError("-ERR", f"bad {command} answer {ok.text!r}", command=command)
    return int(words[0]), int(words[1])


# SCRAM first; without TLS, CRAM-MD5 before the mechanisms that send the password.
_PREFERENCE_TLS = ("SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5")
_PREFERENCE_PLAIN = ("SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN")


def _best_mechanism(offered: frozenset[str], *, tls: bool) -> str | None:
    for name in _PREFERENCE_TLS if tls else _PREFERENCE_PLAIN:
        if name in offered:
            return name
    return None


def _mechanism(name: str, user: str, password: str) -> ClientMechanism:
    if name == "SCRAM-SHA-256":
        return ScramSha256Client(user, password)
    if name == "PLAIN":
        return PlainClient(user, password)
    if name == "LOGIN":
        return LoginClient(user, password)
    if name == "CRAM-MD5":
        return CramMD5Client(user, password)
    raise AuthenticationFailed("-ERR", f"mechanism {name} is not supported", command="AUTH")
