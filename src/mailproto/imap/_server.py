"""The server side of an IMAP connection (RFC 9051 / RFC 3501), sans I/O.

Usage, in short::

    conn = ServerConnection(ServerConfig())
    sock.sendall(conn.send(Untagged(status="OK", text="ready")))  # the greeting
    conn.receive_data(data)
    event = conn.next_event()  # a command or connection event, NEED_DATA, or PAUSED
    sock.sendall(conn.data_to_send())  # "+" continuations for accepted literals

One command is handled at a time: after a command event, ``next_event()`` returns
`PAUSED` until the application has sent its tagged completion (untagged responses may be
sent any time). The exceptions are the exchanges where the client speaks while the
command runs: AUTHENTICATE (after each `AuthChallenge` a line comes back as
`AuthenticateResponse` or `AuthenticateCancel`), IDLE (after the "+" `Continuation`, the
"DONE" line comes as `IdleDone`) and APPEND, whose message is streamed as
`AppendStarted`, `AppendData`... `AppendEnded`, after which the tagged reply is owed.

Commands the server refuses by itself never raise: they come out as `CommandRejected`
events carrying the response to send (BAD for a bad command, NO [LIMIT] for a literal
that is too big, NO [PRIVACYREQUIRED] for a password without TLS). Accepted
synchronizing literals are answered with "+" automatically: the bytes wait in
`data_to_send()` (and go out first with the next `send`). What cannot be repaired (too
many errors in a row, plaintext pipelined after STARTTLS, an unreadable literal size)
raises `RemoteProtocolError` with an untagged BYE as its ``reply_hint``.
"""

from __future__ import annotations

import base64
import binascii
import re

import attrs

from .._connection import ConnectionBase
from .._util import NEED_DATA, PAUSED, Event, LocalProtocolError, RemoteProtocolError
from . import _commands as c
from . import _responses as r
from ._command_codec import CommandParseError, parse_command, parse_idle_done
from ._events import (
    AppendData,
    AppendEnded,
    AppendStarted,
    AuthChallenge,
    AuthenticateCancel,
    AuthenticateResponse,
    CommandRejected,
    ConnectionClosed,
)
from ._fragment import Fragmentizer, LiteralAnnouncement, MessageTooLong
from ._grammar import ParseError, dump
from ._response_codec import format_response
from ._state import AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, State, allowed_in, next_state

__all__ = ["ServerConfig", "ServerConnection"]

NextEvent = Event | type[NEED_DATA] | type[PAUSED]

_TAG = re.compile(rb"[\x21\x23\x24\x26\x27\x2c-\x5a\x5e-\x7a\x7c\x7e]+")
_APPEND = re.compile(rb"[^ ]+ APPEND ", re.IGNORECASE)
_ANNOUNCEMENT = re.compile(rb"(~?\{)[0-9]+(\+?\}\r\n)\Z")
_CLEARTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
_BYE_ERRORS = r.Untagged(status="BYE", text="Too many errors")
_BYE_STARTTLS = r.Untagged(status="BYE", text="Command pipelining after STARTTLS")
_BYE_FRAMING = r.Untagged(status="BYE", text="Protocol error")
_CONTINUE = b"+ Ready\r\n"


@attrs.frozen(slots=True, kw_only=True)
class ServerConfig:
    """Limits and policies of a `ServerConnection`.

    Args:
        max_line_length: the longest line of a command, CRLF included.
        max_message_size: the largest command, its literals included (not APPEND's
            message, which is streamed).
        max_literal_size: the largest literal accepted into a command.
        max_append_size: the largest APPEND message (APPENDLIMIT).
        max_errors: BAD responses in a row before the connection is dropped.
        append_chunk_size: the most octets in one `AppendData`.
        allow_insecure_auth: accept LOGIN / AUTHENTICATE PLAIN without TLS.
        tls: the connection is already encrypted (implicit TLS, port 993).
        literal_minus: the server advertises LITERAL- (RFC 7888): non-synchronizing
            literals over 4096 octets are refused.
        utf8: mailbox names are UTF-8 from the start (IMAP4rev2 only).
    """

    max_line_length: int = 8192
    max_message_size: int = 1 << 20
    max_literal_size: int = 1 << 20
    max_append_size: int = 64 << 20
    max_errors: int = 10
    append_chunk_size: int = 1 << 16
    allow_insecure_auth: bool = False
    tls: bool = False
    literal_minus: bool = False
    utf8: bool = False

    def __attrs_post_init__(self) -> None:
        for name in ("max_literal_size", "max_append_size", "max_errors", "append_chunk_size"):
            if getattr(self, name) < 1:
                raise LocalProtocolError(f"{name} must be at least 1")


def _tag_of(data: bytes) -> str | None:
    m = _TAG.match(data)
    if m is None or m.end() >= len(data) or data[m.end()] != 0x20 or b"+" in m.group():
        return None
    return m.group().decode("ascii")


def _reject(tag: str | None, status: str, text: str, code: r.Code | None = None) -> CommandRejected:
    if tag is None:
        return CommandRejected(tag=None, response=r.Untagged(status="BAD", code=code, text=text))
    resp = r.Tagged(tag=tag, status="NO" if status == "NO" else "BAD", code=code, text=text)
    return CommandRejected(tag=tag, response=resp)


class ServerConnection(ConnectionBase[Event]):
    """One IMAP session, server side; see the module documentation."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        super().__init__()
        self.config = config or ServerConfig()
        self._fz = Fragmentizer(
            max_message_size=self.config.max_message_size,
            max_line_length=self.config.max_line_length,
        )
        self._state: State = NOT_AUTHENTICATED
        self._tls = self.config.tls
        self._utf8 = self.config.utf8
        self._greeting_owed = True
        self._closed = False
        self._bye_sent = False  # the BYE that must precede LOGOUT's tagged OK
        self._errors = 0
        # The tag whose completion we owe, and its command (None for a rejection).
        self._owed_tag: str | None = None
        self._owed_cmd: c.Command | None = None
        self._auth_waiting = False  # a challenge was sent; the client's line is due
        self._idling = False  # "+" sent to IDLE; "DONE" is due
        self._appending = False  # an APPEND's message is being streamed
        self._tls_pending = False
        self._out = bytearray()

    # -- inspection ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        """NOT_AUTHENTICATED, AUTHENTICATED, SELECTED or LOGOUT."""
        return self._state

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted (implicit TLS or after STARTTLS)."""
        return self._tls

    @property
    def owed_tag(self) -> str | None:
        """The tag of the command whose tagged completion we owe, if any."""
        return self._owed_tag

    def data_to_send(self) -> bytes:
        """Bytes the connection produced by itself ("+" for accepted literals)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- receiving ----------------------------------------------------------------------

    def _next_event(self) -> NextEvent:
        if self._closed:
            return ConnectionClosed()
        if self._greeting_owed or self._tls_pending:
            return PAUSED
        if self._errors >= self.config.max_errors:
            raise LocalProtocolError("too many errors", reply_hint=_BYE_ERRORS)
        try:
            if self._appending:
                return self._read_append()
            if self._owed_tag is not None:
                if self._auth_waiting or self._idling:
                    return self._read_client_line()
                return PAUSED
            return self._read_command()
        except LocalProtocolError as exc:
            if exc.reply_hint is None:
                exc.reply_hint = _BYE_FRAMING
            raise

    def _frame(self) -> bytes | LiteralAnnouncement | MessageTooLong | type[NEED_DATA]:
        item = self._fz.next_message(self._buf)
        if item is not None:
            return item
        if self._eof:
            if self._fz.mid_message or self._buf:
                raise LocalProtocolError("connection closed in the middle of a command")
            self._closed = True
            self._state = LOGOUT
        return NEED_DATA

    def _owe(self, tag: str, cmd: c.Command | None) -> None:
        self._owed_tag = tag
        self._owed_cmd = cmd

    def _rejected(self, rej: CommandRejected) -> CommandRejected:
        if rej.tag is not None:
            self._owe(rej.tag, None)
        return rej

    def _read_command(self) -> NextEvent:
        item = self._frame()
        if item is NEED_DATA:
            return ConnectionClosed() if self._closed else NEED_DATA
        if isinstance(item, LiteralAnnouncement):
            return self._announced(item)
        if isinstance(item, MessageTooLong):
            what = "Line" if item.reason == "line" else "Command"
            return self._rejected(_reject(_tag_of(item.head), "BAD", f"{what} too long"))
        assert isinstance(item, bytes)
        try:
            cmd = parse_command(item, utf8=self._utf8)
        except CommandParseError as exc:
            return self._rejected(_reject(exc.tag, "BAD", f"Syntax error: {exc}"[:200]))
        return self._command(cmd)

    def _command(self, cmd: c.Command) -> NextEvent:
        if not allowed_in(cmd, self._state):
            return self._rejected(
                _reject(cmd.tag, "BAD", f"{type(cmd).__name__.upper()} not allowed now")
            )
        if not self._tls and not self.config.allow_insecure_auth:
            if isinstance(cmd, c.Login) or (
                isinstance(cmd, c.Authenticate) and cmd.mechanism in _CLEARTEXT_MECHANISMS
            ):
                return self._rejected(
                    _reject(cmd.tag, "NO", "Use STARTTLS first", r.PrivacyRequired())
                )
        if isinstance(cmd, c.StartTLS) and self._tls:
            return self._rejected(_reject(cmd.tag, "BAD", "TLS is already active"))
        self._owe(cmd.tag, cmd)
        return cmd

    def _announced(self, ann: LiteralAnnouncement) -> NextEvent:
        fz, buf = self._fz, self._buf
        prefix = fz.peek_message(buf)
        tag = _tag_of(prefix)
        append = self._append_prefix(prefix) if _APPEND.match(prefix) else None
        if append is not None:
            if not allowed_in(append, self._state):
                fz.refuse(buf)
                return self._rejected(_reject(tag, "BAD", "APPEND not allowed now"))
            if ann.size > self.config.max_append_size:
                fz.refuse(buf)
                # RFC 7889 3.1: an APPEND over the limit gets [TOOBIG]
                return self._rejected(_reject(tag, "NO", "Message too big", r.TooBig()))
            fz.stream_literal(buf)
            if ann.sync:
                self._out += _CONTINUE
            self._appending = True
            self._owe(append.tag, append)
            msg = append.messages[0]
            return AppendStarted(
                tag=append.tag,
                mailbox=append.mailbox,
                flags=msg.flags,
                date=msg.internal_date,
                size=ann.size,
                binary=msg.binary,
            )
        if self.config.literal_minus and not ann.sync and ann.size > 4096:
            fz.refuse(buf)
            return self._rejected(_reject(tag, "NO", "Literal too big", r.Limit()))
        if ann.size > self.config.max_literal_size or not ann.within_limit:
            fz.refuse(buf)
            return self._rejected(_reject(tag, "NO", "Literal too big", r.Limit()))
        fz.accept(buf)
        if ann.sync:
            self._out += _CONTINUE
        return self._read_command()

    def _append_prefix(self, prefix: bytes) -> c.Append | None:
        # The command up to its message literal, read with the literal made empty.
        trial = _ANNOUNCEMENT.sub(rb"\g<1>0\g<2>", prefix) + b"\r\n"
        try:
            cmd = parse_command(trial, utf8=self._utf8)
        except CommandParseError:
            return None
        if isinstance(cmd, c.Append) and len(cmd.messages) == 1:
            return cmd
        return None

    def _read_append(self) -> NextEvent:
        fz, buf = self._fz, self._buf
        if fz.literal_remaining:
            chunk = fz.take_literal_chunk(buf, self.config.append_chunk_size)
            if chunk is None:
                if self._eof:
                    raise LocalProtocolError("connection closed in the middle of APPEND")
                return NEED_DATA
            return AppendData(data=chunk)
        item = self._frame()  # raises at EOF: the message is not finished
        if item is NEED_DATA:
            return NEED_DATA
        self._appending = False
        tag = self._owed_tag
        assert tag is not None
        if item == b"\r\n":
            return AppendEnded()
        if isinstance(item, LiteralAnnouncement):
            fz.refuse(buf)
            return self._rejected(_reject(tag, "BAD", "MULTIAPPEND is not supported"))
        return self._rejected(_reject(tag, "BAD", "Junk after the APPEND message"))

    def _read_client_line(self) -> NextEvent:
        item = self._frame()
        if item is NEED_DATA:
            if self._closed:
                raise LocalProtocolError("connection closed in the middle of a command")
            return NEED_DATA
        tag = self._owed_tag
        assert tag is not None
        if self._idling:
            self._idling = False
            if isinstance(item, bytes):
                try:
                    return parse_idle_done(item)
                except ParseError:
                    pass
            if isinstance(item, LiteralAnnouncement):
                self._fz.refuse(self._buf)
            return self._rejected(_reject(tag, "BAD", "Expected DONE"))
        self._auth_waiting = False
        if isinstance(item, bytes):
            line = item[:-2]
            if line == b"*":
                return AuthenticateCancel()
            try:
                return AuthenticateResponse(data=base64.b64decode(line, validate=True))
            except binascii.Error:
                pass
        if isinstance(item, LiteralAnnouncement):
            self._fz.refuse(self._buf)
        return self._rejected(_reject(tag, "BAD", "Invalid base64 in SASL response"))

    # -- sending ------------------------------------------------------------------------

    def send(self, event: r.Response | AuthChallenge) -> bytes:
        """The bytes of a response (or SASL challenge) the application sends.

        Any queued "+" continuations go out first, so the order on the wire is kept.

        Raises:
            LocalProtocolError: the response is not allowed now (a tagged response for
                a tag that is not owed, a greeting that is not OK/PREAUTH/BYE...).
        """
        if self._error_state:
            if not (isinstance(event, r.Untagged) and event.status == "BYE"):
                raise LocalProtocolError("after a protocol error only BYE may be sent")
            self._state = LOGOUT
            self._closed = True
            return self._wire(event)
        if self._closed:
            raise LocalProtocolError("the connection is closed")
        if isinstance(event, AuthChallenge):
            if not isinstance(self._owed_cmd, c.Authenticate) or self._auth_waiting:
                raise LocalProtocolError("AuthChallenge outside of AUTHENTICATE")
            self._auth_waiting = True
            return self._flush() + b"+ " + base64.b64encode(event.data) + b"\r\n"
        if not isinstance(event, r.Response):
            raise LocalProtocolError(f"a server sends responses, not {type(event).__name__}")
        if self._greeting_owed:
            if not isinstance(event, r.Untagged) or event.status not in ("OK", "PREAUTH", "BYE"):
                raise LocalProtocolError("the greeting is an untagged OK, PREAUTH or BYE")
            self._greeting_owed = False
            if event.status == "PREAUTH":
                self._state = AUTHENTICATED
            elif event.status == "BYE":
                self._state = LOGOUT
                self._closed = True
            return self._wire(event)
        if isinstance(event, r.Tagged):
            return self._send_tagged(event)
        if isinstance(event, r.Continuation):
            if not isinstance(self._owed_cmd, c.Idle) or self._idling:
                raise LocalProtocolError("a continuation is only sent to start IDLE")
            self._idling = True
            return self._wire(event)
        if isinstance(event, r.Untagged):
            if event.status == "BAD":
                self._errors += 1
            elif event.status == "PREAUTH":
                raise LocalProtocolError("PREAUTH is only a greeting")
            elif event.status == "BYE":
                if isinstance(self._owed_cmd, c.Logout):
                    self._bye_sent = True
                else:
                    self._state = LOGOUT
                    self._closed = True
        elif isinstance(event, r.Enabled) and "UTF8=ACCEPT" in event.capabilities:
            self._utf8 = True
        return self._wire(event)

    def send_fetch_lines(self, data: bytes) -> bytes:
        """The bytes of FETCH responses a `FetchWriter` wrote (any number, joined).

        The bulk form of `send` for untagged FETCH data: the same checks of the
        connection's state, without a value object per response.

        Raises:
            LocalProtocolError: nothing may be sent now but a BYE or a greeting.
        """
        if self._error_state or self._closed or self._greeting_owed:
            raise LocalProtocolError("FETCH responses are not allowed now")
        if self._out:
            return self._flush() + data
        return data

    def _send_tagged(self, event: r.Tagged) -> bytes:
        if event.tag != self._owed_tag:
            raise LocalProtocolError(f"no command with tag {event.tag!r} awaits completion")
        if self._appending or self._idling or self._auth_waiting:
            raise LocalProtocolError("the client is still sending this command")
        cmd = self._owed_cmd
        if isinstance(cmd, c.Logout) and not self._bye_sent:
            raise LocalProtocolError("send the untagged BYE before completing LOGOUT")
        self._owed_tag = self._owed_cmd = None
        self._errors = self._errors + 1 if event.status == "BAD" else 0
        if cmd is not None:
            self._state = next_state(cmd, event.status == "OK", self._state)
            if isinstance(cmd, c.Logout):
                self._closed = True
            elif isinstance(cmd, c.StartTLS) and event.status == "OK":
                self._tls_pending = True
        return self._wire(event)

    def _flush(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _wire(self, event: r.Response) -> bytes:
        return self._flush() + dump(format_response(event, utf8=self._utf8))

    def start_tls(self) -> None:
        """Call after sending the tagged OK to STARTTLS, before the TLS handshake.

        Raises `RemoteProtocolError` (``reply_hint``: an untagged BYE) if the client
        pipelined plaintext after STARTTLS (command injection, CVE-2011-0411 class);
        otherwise the session restarts: not authenticated, capabilities to re-request.
        """
        if not self._tls_pending:
            raise LocalProtocolError("start_tls() is only valid after OK to STARTTLS")
        self._tls_pending = False
        if self._buf or self._fz.mid_message:
            self._error_state = True
            raise RemoteProtocolError(
                "plaintext pipelined after STARTTLS", reply_hint=_BYE_STARTTLS
            )
        self._tls = True
        self._state = NOT_AUTHENTICATED
