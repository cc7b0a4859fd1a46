"""POP3 connections: `ServerConnection` and `ClientConnection`.

The contract is the core's: ``receive_data(bytes)`` (b"" = EOF), ``next_event()`` ->
event | `NEED_DATA` | `PAUSED`, ``send(event) -> bytes``.

Server side: one command is read, then the connection pauses until the application has
responded, so pipelined commands (RFC 2449 PIPELINING) are answered in order. A +OK to
LIST/UIDL without argument, RETR, TOP, CAPA or a bare AUTH opens a multi-line response:
send `ResponseData` chunks (dot-stuffed, bare CR/LF repaired on the way) and then
`EndOfResponse`. Message numbers are checked against the maildrop the application opened
(`open_maildrop`) and the messages deleted so far; the answer for a bad one comes out as
a `CommandRejected` with its -ERR, like every other bad command.

Client side: sent commands queue for their responses; a multi-line body streams out as
`ResponseData` chunks, unstuffed by a `DotReader`, never held whole (one line of it at
most, up to ``max_body_line``). The CAPA body is also kept (it is small and bounded) so
that `capabilities` knows about PIPELINING. ``send`` checks a command against the state
the session will be in once every pending command has succeeded, the way the server
will check it: no STAT before a login, no PASS but right after USER, no non-ASCII before
UTF8, no line over 255 octets (RFC 2449; RFC 5034 says to drop an initial response that
would not fit), and no pipelining unless CAPA showed PIPELINING, never after a command
whose outcome changes how the server reads the next line (STLS, AUTH and its answers,
USER, PASS, APOP, QUIT).
"""

from __future__ import annotations

import base64
import binascii
from collections import deque

import attrs

from .._buffer import LINE_TOO_LONG
from .._connection import ConnectionBase
from .._dotdata import DotEnd, DotReader, DotStuffer
from .._util import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError, Sentinel
from ._events import (
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Capa,
    CommandRejected,
    ConnectionClosed,
    EndOfResponse,
    Err,
    Ok,
    Pass,
    POP3Event,
    Quit,
    ResponseData,
    Stls,
    User,
)
from ._state import (
    CLOSED,
    CONNECTED,
    ERROR,
    TLS_PENDING,
    TRANSACTION,
    UPDATE,
    Session,
    is_multiline,
)
from ._syntax import (
    Capabilities,
    Rejection,
    apop_timestamp,
    format_command,
    format_status,
    parse_auth_response,
    parse_command,
    parse_status_line,
)

__all__ = ["ClientConfig", "ClientConnection", "ServerConfig", "ServerConnection"]

NextEvent = POP3Event | type[NEED_DATA] | type[PAUSED]


@attrs.frozen(slots=True, kw_only=True)
class ServerConfig:
    """Limits and policy of a server connection."""

    max_command_line: int = 255  # RFC 2449 section 4, with CRLF
    max_auth_line: int = 12288  # SASL answers and AUTH with an initial response
    max_errors: int = 10  # in a row, then the session ends
    tls: bool = False  # implicit TLS (port 995)
    allow_insecure_auth: bool = False  # USER/PASS and AUTH PLAIN/LOGIN without TLS


@attrs.frozen(slots=True, kw_only=True)
class ClientConfig:
    """Limits of a client connection."""

    max_response_line: int = 16384  # room for long SASL challenges
    max_command_line: int = 255  # RFC 2449 section 4, with CRLF; AUTH answers are exempt
    max_capa_size: int = 65536
    # A body line is buffered until its LF arrives: this bounds the memory it takes.
    max_body_line: int = 1 << 20
    tls: bool = False


_TOO_MANY_ERRORS = Err(text="Too many errors, closing connection")
_PLAINTEXT = Err(code="AUTH", text="Plaintext authentication disallowed without TLS")
_CLEARTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
# RFC 1939 section 3: "Responses may be up to 512 characters long, including the
# terminating CRLF" (RFC 2449 section 4 keeps this for the status line).
_MAX_STATUS_LINE = 512


def _status_line(event: Ok | Err) -> bytes:
    data = format_status(event)
    if len(data) > _MAX_STATUS_LINE:
        raise LocalProtocolError(f"status line over {_MAX_STATUS_LINE} octets (RFC 1939)")
    return data


class _Rejected(Sentinel, metaclass=Sentinel):
    """The response owed is the -ERR of a `CommandRejected`."""


class ServerConnection(ConnectionBase[POP3Event]):
    """The server side of a POP3 session."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.session = Session(tls=self.config.tls)
        super().__init__()
        self._errors = 0
        self._owed: POP3Event | type[_Rejected] | None = None
        self._owed_greeting = True
        self._stuffer: DotStuffer | None = None  # a multi-line response is being sent
        self._maildrop_pending = False
        self.apop_timestamp: str | None = None  # from our greeting, for APOP

    @property
    def state(self) -> type[Sentinel]:
        if self._error_state:
            return ERROR
        if isinstance(self._owed, Quit) and self.session.state is TRANSACTION:
            return UPDATE
        return self.session.state

    @property
    def deleted(self) -> frozenset[int]:
        """Messages marked with DELE: remove them when QUIT arrives in TRANSACTION."""
        return frozenset(self.session.deleted)

    def open_maildrop(self, message_count: int) -> None:
        """Call when a login succeeded, before sending its +OK: the maildrop now holds
        ``message_count`` messages, numbered from 1."""
        owed = self._owed
        if not isinstance(owed, Pass | Apop | Auth | AuthResponse) or (
            isinstance(owed, Auth) and owed.mechanism is None
        ):
            raise LocalProtocolError("open_maildrop() belongs right before a login's +OK")
        if message_count < 0:
            raise LocalProtocolError("message_count must be >= 0")
        self.session.message_count = message_count
        self.session.deleted.clear()
        self._maildrop_pending = True

    # -- receiving ----------------------------------------------------------------------

    def _next_event(self) -> NextEvent:
        session = self.session
        if session.state is CLOSED:
            return ConnectionClosed()
        if (
            self._owed is not None
            or self._owed_greeting
            or self._stuffer is not None
            or session.state is TLS_PENDING
        ):
            return PAUSED
        if self._errors >= self.config.max_errors:
            raise RemoteProtocolError("too many errors", reply_hint=_TOO_MANY_ERRORS)
        line = self._buf.extract_line(max(self.config.max_auth_line, self.config.max_command_line))
        if line is None:
            if self._eof:
                session.state = CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if line is LINE_TOO_LONG:
            return self._rejected(Rejection("Line too long"), b"")
        assert isinstance(line, bytes)
        try:
            if session.in_auth:
                event = parse_auth_response(line)
            else:
                if len(line) + 2 > self.config.max_command_line and line[:5].upper() != b"AUTH ":
                    raise Rejection("Line too long")
                event = parse_command(line, utf8=session.utf8)
                session.check(event)
                self._check_policy(event)
        except Rejection as rej:
            return self._rejected(rej, line)
        self._owed = event
        return event

    def _check_policy(self, event: POP3Event) -> None:
        if self.session.tls or self.config.allow_insecure_auth:
            return
        if isinstance(event, User | Pass) or (
            isinstance(event, Auth) and event.mechanism in _CLEARTEXT_MECHANISMS
        ):
            raise Rejection(_PLAINTEXT.text, _PLAINTEXT.code)

    def _rejected(self, rej: Rejection, line: bytes) -> CommandRejected:
        """Refuse ``line``: its -ERR is owed, and it ends a SASL exchange it was part of."""
        self._owed = _Rejected
        session = self.session
        # Never keep a secret in a log line: an answer inside AUTH is all secret.
        verb = b"" if session.in_auth else line.split(b" ", 1)[0].upper()
        if session.in_auth or verb in (b"PASS", b"AUTH", b"APOP"):
            line = verb
        session.in_auth = False
        session.user_accepted = False  # PASS only right after USER (RFC 1939 section 7)
        return CommandRejected(reply=rej.reply, command=line[:80])

    # -- sending ------------------------------------------------------------------------

    def send(self, event: POP3Event) -> bytes:
        """Bytes for a response event the application sends."""
        if self._error_state:
            if not isinstance(event, Err):
                raise LocalProtocolError("after a protocol error only -ERR may be sent")
            data = _status_line(event)
            self.session.state = CLOSED
            return data
        if self._stuffer is not None:
            if isinstance(event, ResponseData):
                return self._stuffer.encode(event.data)
            if isinstance(event, EndOfResponse):
                tail = self._stuffer.end()
                self._stuffer = None
                return tail
            raise LocalProtocolError("finish the multi-line response first")
        if isinstance(event, AuthChallenge):
            if not isinstance(self._owed, Auth | AuthResponse) or (
                isinstance(self._owed, Auth) and self._owed.mechanism is None
            ):
                raise LocalProtocolError("AuthChallenge outside of AUTH")
            self._owed = None
            self.session.in_auth = True
            self._errors = 0
            return b"+ " + base64.b64encode(event.data) + b"\r\n"
        if not isinstance(event, Ok | Err):
            raise LocalProtocolError(f"a server sends responses, not {type(event).__name__}")
        if self.session.state is CLOSED:
            raise LocalProtocolError("the session is closed")
        data = _status_line(event)
        if self._owed_greeting:
            self._owed_greeting = False
            self.session.apply(None, event)
            self.apop_timestamp = apop_timestamp(event.text) if isinstance(event, Ok) else None
            return data
        owed = self._owed
        if owed is None:
            raise LocalProtocolError("no command is waiting for a response")
        if owed is _Rejected:
            if not isinstance(event, Err):
                raise LocalProtocolError("a rejected command gets -ERR")
            self._owed = None
            self._errors += 1
            return data
        assert isinstance(owed, POP3Event)
        if isinstance(owed, AuthCancel) and isinstance(event, Ok):
            raise LocalProtocolError("a cancelled AUTH gets -ERR")
        login = isinstance(owed, Pass | Apop | AuthResponse) or (
            isinstance(owed, Auth) and owed.mechanism is not None
        )
        if login and isinstance(event, Ok) and not self._maildrop_pending:
            raise LocalProtocolError("call open_maildrop() before a login's +OK")
        self._maildrop_pending = False
        self._errors = self._errors + 1 if isinstance(event, Err) else 0
        self._owed = None
        self.session.apply(owed, event)
        if isinstance(event, Ok) and is_multiline(owed):
            self._stuffer = DotStuffer()
        return data

    def start_tls(self) -> None:
        """Call after sending +OK to STLS, before the handshake (RFC 2595 section 4).

        Raises `RemoteProtocolError` if the client pipelined plaintext after STLS.
        """
        if self.session.state is not TLS_PENDING:
            raise LocalProtocolError("start_tls() is only valid after +OK to STLS")
        if self._buf:
            self._error_state = True
            raise RemoteProtocolError(
                "plaintext pipelined after STLS",
                reply_hint=Err(text="Command pipelining after STLS"),
            )
        self.session.tls_started()


@attrs.define(slots=True)
class _Pending:
    command: POP3Event | None  # None: the greeting


class ClientConnection(ConnectionBase[POP3Event]):
    """The client side of a POP3 session."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig()
        self.session = Session(tls=self.config.tls)
        self._predicted = self.session.copy()
        self._pending: deque[_Pending] = deque([_Pending(None)])
        super().__init__()
        self._body: DotReader | None = None  # a multi-line response is arriving
        self._body_command: POP3Event | None = None
        self._capa = bytearray()
        self.greeting: Ok | None = None
        self.capabilities: Capabilities | None = None

    @property
    def state(self) -> type[Sentinel]:
        return ERROR if self._error_state else self.session.state

    @property
    def pending(self) -> tuple[POP3Event | None, ...]:
        """Commands sent and still waiting for their response, oldest first."""
        return tuple(p.command for p in self._pending)

    @property
    def apop_timestamp(self) -> str | None:
        """The timestamp of the server's greeting, when it offers APOP."""
        return apop_timestamp(self.greeting.text) if self.greeting is not None else None

    # -- receiving ----------------------------------------------------------------------

    def _next_event(self) -> NextEvent:
        if self._body is not None:
            return self._read_body()
        if self.session.state is TLS_PENDING:
            return PAUSED
        line = self._buf.extract_line(self.config.max_response_line)
        if line is None:
            if self._eof:
                self.session.state = CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if line is LINE_TOO_LONG:
            raise LocalProtocolError("response line too long")
        assert isinstance(line, bytes)
        if not self._pending:
            raise LocalProtocolError(f"response without a command: {line[:80]!r}")
        command = self._pending[0].command
        if line[:1] == b"+" and line[:3].upper() != b"+OK":
            return self._challenge(line, command)
        status = parse_status_line(line)
        if status is None:
            raise LocalProtocolError(f"not a POP3 status line: {line[:80]!r}")
        self._pending.popleft()
        if command is None:
            self.greeting = status if isinstance(status, Ok) else None
        self.session.apply(command, status)
        if isinstance(command, Stls) and isinstance(status, Ok):
            self.capabilities = None
        if command is not None and isinstance(status, Ok) and is_multiline(command):
            self._body = DotReader(
                max_line_length=self.config.max_body_line, bare_line_endings="accept"
            )
            self._body_command = command
            self._capa.clear()
        self._resync()
        return status

    def _challenge(self, line: bytes, command: POP3Event | None) -> AuthChallenge:
        if not isinstance(command, Auth | AuthResponse) or (
            isinstance(command, Auth) and command.mechanism is None
        ):
            raise LocalProtocolError("continuation outside of AUTH")
        text = line[1:].strip()
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise LocalProtocolError("AUTH challenge is not base64") from None
        self._pending.popleft()
        self.session.in_auth = True
        self._resync()
        return AuthChallenge(data=data)

    def _read_body(self) -> NextEvent:
        assert self._body is not None
        result = self._body.read(self._buf.data)
        if self._body.problem is not None:  # the one it can have: a line too long
            raise LocalProtocolError(
                f"multi-line response line over {self.config.max_body_line} octets"
            )
        if result is None:
            if self._eof:
                raise LocalProtocolError("connection closed inside a multi-line response")
            return NEED_DATA
        if isinstance(result, DotEnd):
            if isinstance(self._body_command, Capa):
                self.capabilities = Capabilities.parse(bytes(self._capa))
            self._body = None
            self._body_command = None
            return EndOfResponse()
        if isinstance(self._body_command, Capa):
            if len(self._capa) + len(result) > self.config.max_capa_size:
                raise LocalProtocolError("CAPA response too large")
            self._capa += result
        return ResponseData(result)

    def _resync(self) -> None:
        # The greeting is never pending here: commands wait for it.
        predicted = self.session.copy()
        for p in self._pending:
            predicted.apply(p.command, Ok())
        self._predicted = predicted

    # -- sending ------------------------------------------------------------------------

    def send(self, event: POP3Event) -> bytes:
        """Bytes for a command; LocalProtocolError if it may not be sent now."""
        if self._error_state:
            raise LocalProtocolError("can't send after a protocol error")
        if isinstance(event, AuthResponse | AuthCancel):
            if not self.session.in_auth or self._pending:
                raise LocalProtocolError("no AUTH challenge to answer")
            self.session.in_auth = False
            self._pending.append(_Pending(event))
            return format_command(event)
        if isinstance(event, Ok | Err | ResponseData | EndOfResponse | AuthChallenge):
            raise LocalProtocolError(f"a client does not send {type(event).__name__}")
        state = self.session.state
        if state is CONNECTED or (self._pending and self._pending[0].command is None):
            raise LocalProtocolError("wait for the server's greeting")
        if state in (CLOSED, TLS_PENDING) or self.session.in_auth:
            raise LocalProtocolError(f"can't send commands now (state {state!r})")
        if self._pending:
            caps = self.capabilities
            if caps is None or "PIPELINING" not in caps:
                raise LocalProtocolError("the server did not offer PIPELINING: wait")
            for p in self._pending:
                # After these the server reads the next line differently (TLS, a SASL
                # answer), or what we may send depends on their outcome.
                if isinstance(p.command, Stls | Auth | AuthResponse | Quit | User | Pass | Apop):
                    raise LocalProtocolError(
                        f"{type(p.command).__name__} must be answered before the next command"
                    )
        try:
            self._predicted.check(event)
        except Rejection as rej:
            raise LocalProtocolError(f"{type(event).__name__} not allowed now: {rej}") from None
        data = format_command(event)
        if not data.isascii() and not self._predicted.utf8:
            # RFC 6856: UTF-8 in names and passwords only once UTF8 was accepted.
            raise LocalProtocolError("non-ASCII command: send UTF8 first (RFC 6856)")
        if len(data) > self.config.max_command_line:
            # RFC 5034 section 4: an AUTH whose initial response would not fit must be
            # sent without it; the mechanism then starts with an empty challenge.
            raise LocalProtocolError(
                f"command over {self.config.max_command_line} octets (RFC 2449 section 4)"
            )
        self._pending.append(_Pending(event))
        self._predicted.apply(event, Ok())
        return data

    def start_tls(self) -> None:
        """Call after the server's +OK to STLS, before the handshake.

        Raises `RemoteProtocolError` if the server sent anything after its +OK.
        """
        if self.session.state is not TLS_PENDING:
            raise LocalProtocolError("start_tls() is only valid after +OK to STLS")
        if self._buf:
            self._error_state = True
            raise RemoteProtocolError("data from the server after its +OK to STLS")
        self.session.tls_started()
        self.capabilities = None
        self._resync()
