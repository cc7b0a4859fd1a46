"""SMTP and LMTP connections: `ServerConnection` and `ClientConnection`.

Both follow the contract of the whole core::

    conn.receive_data(data)    # bytes from the peer; b"" means the peer closed
    event = conn.next_event()  # an event, NEED_DATA, or PAUSED (we owe the peer)
    data = conn.send(event)    # bytes to write; LocalProtocolError if illegal now

Theory of operation, server side. The server reads one command, then pauses until the
application has sent the reply (``next_event()`` returns `PAUSED`); pipelined commands
wait in the buffer meanwhile, so replies always come in command order (RFC 2920). Bad
commands never raise: they come out as `CommandRejected` events carrying the reply to
send, and the session goes on. Only what cannot go on raises `RemoteProtocolError`
with a ``reply_hint`` (421 after too many errors in a row, 554 for plaintext pipelined
after STARTTLS). DATA bodies go through a `DotReader`, BDAT chunks are counted bytes;
both come out as `MessageData` chunks, never whole.

Client side. Sent commands wait in a queue for their replies, so a client may pipeline
when the server offers PIPELINING (and only then), and each reply is matched to its
command to move the session on. A client checks its commands against the state the
session will be in once every pending command has succeeded, so it cannot send MAIL
before EHLO or RCPT before MAIL; replies that say otherwise resynchronise it.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from typing import Literal

import attrs

from .._buffer import LINE_TOO_LONG
from .._connection import ConnectionBase
from .._dotdata import DotEnd, DotReader, DotStuffer
from .._util import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError, Sentinel
from ._events import (
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Bdat,
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
    MailFrom,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
)
from ._state import (
    CLOSED,
    CONNECTED,
    DATA,
    ERROR,
    SUCCESS_CODES,
    TLS_PENDING,
    Session,
)
from ._syntax import (
    Extensions,
    Rejection,
    build_reply,
    decode_base64,
    format_command,
    format_reply,
    is_valid_mailbox,
    parse_command,
    parse_reply_line,
)

__all__ = ["ClientConfig", "ClientConnection", "ServerConfig", "ServerConnection"]

NextEvent = SMTPEvent | type[NEED_DATA] | type[PAUSED]


@attrs.frozen(slots=True, kw_only=True)
class ServerConfig:
    """Limits and policy of a server connection (RFC 5321 section 4.5.3.1 defaults)."""

    max_command_line: int = 512
    max_text_line: int = 1000
    max_auth_line: int = 12288  # RFC 4954 section 4
    max_recipients: int = 100
    max_message_size: int = 10_240_000
    max_errors: int = 10  # in a row, then 421
    bare_line_endings: Literal["reject", "normalize"] = "reject"
    tls: bool = False  # the connection is already encrypted (implicit TLS)
    allow_insecure_auth: bool = False  # AUTH without TLS
    extra_mail_parameters: frozenset[str] = frozenset()
    extra_rcpt_parameters: frozenset[str] = frozenset()


@attrs.frozen(slots=True, kw_only=True)
class ClientConfig:
    """Limits of a client connection."""

    max_reply_line: int = 16384  # room for long AUTH challenges
    max_reply_lines: int = 1000
    tls: bool = False


def _reject(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code=code, enhanced=enhanced, lines=(text,))


_TOO_MANY_ERRORS = _reject(421, "4.7.0", "Too many errors, closing connection")
_LINE_TOO_LONG = _reject(500, "5.5.2", "Line too long")
_BODY_PROBLEMS = {
    "bare-line-ending": _reject(550, "5.5.2", "Message contains a bare CR or LF"),
    "line-too-long": _reject(500, "5.5.2", "Line too long"),
    "too-large": _reject(552, "5.3.4", "Message size exceeds fixed maximum message size"),
}
_ENCRYPTION_REQUIRED = _reject(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)


class _Rejected(Sentinel, metaclass=Sentinel):
    """The reply owed is the one of a `CommandRejected`: any 4xx/5xx."""


class ServerConnection(ConnectionBase[SMTPEvent]):
    """The server side of an SMTP or LMTP session (``lmtp=True``)."""

    def __init__(self, config: ServerConfig | None = None, *, lmtp: bool = False) -> None:
        self.config = config or ServerConfig()
        self.session = Session(lmtp=lmtp, tls=self.config.tls)
        super().__init__()
        self._errors = 0
        # What we owe the client a reply for; None when we owe nothing.
        self._owed: SMTPEvent | type[_Rejected] | None = None
        self._owed_greeting = True
        self._owed_count = 0  # LMTP: replies still due after the body
        # Body reading: a DotReader during DATA, a byte count during BDAT.
        self._dot: DotReader | None = None
        self._bdat: Bdat | None = None
        self._bdat_left = 0
        self._bdat_problem: Reply | None = None

    # -- properties ---------------------------------------------------------------------

    @property
    def state(self) -> type[Sentinel]:
        return ERROR if self._error_state else self.session.state

    @property
    def lmtp(self) -> bool:
        return self.session.lmtp

    @property
    def extensions(self) -> Extensions | None:
        """What our EHLO/LHLO reply offered (None before it or after HELO)."""
        return self.session.extensions

    @property
    def replies_owed(self) -> int:
        """How many replies the application must send before reading on."""
        if self._owed_greeting:
            return 1
        if self._owed is None:
            return 0
        return max(self._owed_count, 1)

    # -- receiving ----------------------------------------------------------------------

    def _next_event(self) -> NextEvent:
        if self.session.state is CLOSED:
            return ConnectionClosed()
        if self._dot is not None:
            return self._read_data()
        if self._bdat is not None:
            return self._read_bdat()
        if self._owed is not None or self._owed_greeting or self.session.state is TLS_PENDING:
            return PAUSED
        if self._errors >= self.config.max_errors:
            raise LocalProtocolError("too many errors", reply_hint=_TOO_MANY_ERRORS)
        limit = self._line_limit()
        line = self._buf.extract_line(limit)
        if line is None:
            if self._eof:
                self.session.state = CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if line is LINE_TOO_LONG:
            return self._rejected(Rejection(500, "5.5.2", "Line too long"), b"")
        assert isinstance(line, bytes)
        if self.session.in_auth:
            return self._auth_response(line)
        try:
            if line[:5].upper() == b"BDAT " or line.upper() == b"BDAT":
                return self._start_bdat(line)
            event = parse_command(
                line,
                extensions=self.session.extensions,
                utf8=self.session.utf8,
                extra_mail_params=self.config.extra_mail_parameters,
                extra_rcpt_params=self.config.extra_rcpt_parameters,
            )
            self._check(event)
        except Rejection as rej:
            return self._rejected(rej, line)
        self._owed = event
        return event

    def _line_limit(self) -> int:
        cfg = self.config
        if self.session.in_auth:
            return cfg.max_auth_line
        limit = cfg.max_command_line
        ext = self.session.extensions
        if ext is not None:
            # Extensions raise the limit by what their parameters may add: RFC 3461
            # section 5 (ENVID/RET and ORCPT/NOTIFY), RFC 4954 section 5 (AUTH=).
            if "DSN" in ext:
                limit += 600
            if "AUTH" in ext:
                limit += 500
        return limit

    def _check(self, event: SMTPEvent) -> None:
        cfg = self.config
        self.session.check(event, max_recipients=cfg.max_recipients)
        if isinstance(event, MailFrom):
            if event.size is not None and event.size > cfg.max_message_size:
                raise Rejection(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif isinstance(event, Auth):
            if not (self.session.tls or cfg.allow_insecure_auth):
                raise Rejection(538, "5.7.11", _ENCRYPTION_REQUIRED.lines[0])
            ext = self.session.extensions
            assert ext is not None  # session.check refused AUTH when it was not offered
            if event.mechanism not in ext.auth_mechanisms:
                raise Rejection(504, "5.5.4", "Unrecognized authentication type")

    def _rejected(self, rej: Rejection, line: bytes) -> CommandRejected:
        self._owed = _Rejected
        # A refused SASL response (bad base64, over-long line) ends the AUTH exchange, as
        # the client sees it when it gets the 5xx.
        self.session.in_auth = False
        # Never log a SASL secret: AUTH lines keep only their mechanism (whatever blanks
        # separate the words: "AUTH<TAB>PLAIN secret" is refused, and must not leak either).
        if line[:4].upper() == b"AUTH":
            line = b" ".join(line.split(None, 2)[:2])
        return CommandRejected(reply=rej.reply, command=line[:80])

    def _auth_response(self, line: bytes) -> SMTPEvent:
        if line == b"*":
            event: SMTPEvent = AuthCancel()
        else:
            try:
                event = AuthResponse(data=decode_base64(line.decode("ascii", "replace")))
            except Rejection as rej:
                return self._rejected(rej, b"")
        self._owed = event
        return event

    def _start_bdat(self, line: bytes) -> NextEvent:
        parts = line.split()
        last = len(parts) == 3 and parts[2].upper() == b"LAST"
        if not (len(parts) == 2 or last) or not parts[1].isdigit() or len(parts[1]) > 19:
            # Without a size the bytes that follow cannot be framed: refuse the command
            # and read on; the chunk's bytes will be refused as commands.
            raise Rejection(501, "5.5.4", "Syntax: BDAT size [LAST]")
        event = Bdat(size=int(parts[1]), last=last)
        self._bdat = event
        self._bdat_left = event.size
        try:
            self._check(event)
            if self.session.size + event.size > self.config.max_message_size:
                self._bdat_problem = _BODY_PROBLEMS["too-large"]
        except Rejection as rej:
            self._bdat_problem = rej.reply
        if self._bdat_problem is not None:
            return self._read_bdat()
        return event

    def _read_bdat(self) -> NextEvent:
        bdat = self._bdat
        assert bdat is not None
        if self._bdat_left:
            if not self._buf:
                if self._eof:
                    self._bdat = None
                    self.session.state = CLOSED
                    return ConnectionClosed()
                return NEED_DATA
            chunk = self._buf.extract_at_most(self._bdat_left)
            self._bdat_left -= len(chunk)
            if self._bdat_problem is None:
                return MessageData(chunk)
            return self._read_bdat()
        self._bdat = None
        problem, self._bdat_problem = self._bdat_problem, None
        if problem is not None and problem.code != 552:
            self._owed = _Rejected
            return CommandRejected(reply=problem, command=format_command(bdat)[:-2])
        self._owed = bdat
        # LMTP: the last chunk is answered once per accepted recipient, even when the
        # message is refused (RFC 2033 section 4.2), or the client waits for the rest.
        self._owed_count = self._replies_for_end() if bdat.last else 1
        if problem is not None:
            # The chunk was fine but the message grew too big: the transaction fails.
            return MessageRejected(reply=problem)
        return EndOfMessage() if bdat.last else EndOfChunk()

    def _replies_for_end(self) -> int:
        return max(self.session.accepted, 1) if self.session.lmtp else 1

    def _read_data(self) -> NextEvent:
        dot = self._dot
        assert dot is not None
        result = dot.read(self._buf.data)
        if result is None:
            if self._eof:
                self._dot = None
                self.session.state = CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if isinstance(result, DotEnd):
            self._dot = None
            self._owed = EndOfMessage()
            # LMTP: one reply per accepted recipient, for a refused message too.
            self._owed_count = self._replies_for_end()
            if result.problem is not None:
                return MessageRejected(reply=_BODY_PROBLEMS[result.problem])
            return EndOfMessage()
        return MessageData(result)

    # -- sending ------------------------------------------------------------------------

    def send(self, event: SMTPEvent) -> bytes:
        """Bytes for a reply (`Reply` or `AuthChallenge`) the application sends."""
        if isinstance(event, AuthChallenge):
            if not isinstance(self._owed, Auth | AuthResponse):
                raise LocalProtocolError("AuthChallenge outside of AUTH")
            reply = Reply(code=334, lines=(base64.b64encode(event.data).decode(),))
            self._sent(reply)
            return b"334 " + base64.b64encode(event.data) + b"\r\n"
        if not isinstance(event, Reply):
            raise LocalProtocolError(f"a server sends replies, not {type(event).__name__}")
        if self._error_state:
            if event.code not in (421, 554):
                raise LocalProtocolError("after a protocol error only 421 or 554 may be sent")
            self.session.state = CLOSED
            return format_reply(event)
        if self.session.state is CLOSED:
            raise LocalProtocolError("the session is closed")
        if event.code == 334:
            raise LocalProtocolError("send AuthChallenge for a 334 reply")
        if event.code == 421:
            # 421 may be sent at any time (RFC 5321 section 3.8); it ends the session.
            self._sent(event)
            return format_reply(event)
        if self._owed_greeting:
            if event.code not in (220, 554):
                raise LocalProtocolError(f"a greeting is 220 or 554, not {event.code}")
        elif self._owed is None:
            raise LocalProtocolError("no command is waiting for a reply")
        elif event.code < 400:
            owed = self._owed
            if not isinstance(owed, SMTPEvent):
                raise LocalProtocolError(f"a refused command takes 4xx/5xx, not {event.code}")
            if event.code not in SUCCESS_CODES[type(owed)]:
                raise LocalProtocolError(f"{event.code} is not a reply to {type(owed).__name__}")
        self._sent(event)
        return format_reply(event)

    def _sent(self, reply: Reply) -> None:
        session = self.session
        if self._owed_greeting:
            self._owed_greeting = False
            session.apply(None, reply)
            return
        if reply.code == 421:
            session.apply(None, reply)
            self._owed = None
            self._dot = None
            self._bdat = None
            return
        if self._owed_count > 1:
            self._owed_count -= 1  # LMTP: more per-recipient replies to come
            return
        # Errors in a row count commands: LMTP recipients refused after the body (over
        # quota...) are not the client's errors, and count once at most.
        self._errors = self._errors + 1 if reply.code >= 400 else 0
        owed = self._owed
        if owed is _Rejected:
            self._owed = None
            return
        assert isinstance(owed, SMTPEvent)
        self._owed_count = 0
        self._owed = None
        session.apply(owed, reply)
        if isinstance(owed, Data) and session.state is DATA:
            self._dot = DotReader(
                max_line_length=self.config.max_text_line,
                max_size=self.config.max_message_size,
                bare_line_endings=self.config.bare_line_endings,
            )

    def start_tls(self) -> None:
        """Call after sending 220 to STARTTLS, before the handshake.

        Raises `RemoteProtocolError` if the client pipelined plaintext after STARTTLS
        (a command injection attempt, CVE-2011-0411 class); otherwise the session
        restarts from before EHLO, as RFC 3207 section 4.2 requires.
        """
        if self.session.state is not TLS_PENDING:
            raise LocalProtocolError("start_tls() is only valid after a 220 to STARTTLS")
        if self._buf:
            self._error_state = True
            raise RemoteProtocolError(
                "plaintext pipelined after STARTTLS",
                reply_hint=_reject(554, "5.5.1", "Command pipelining after STARTTLS"),
            )
        self.session.tls_started()


class _Pending:
    """A command waiting for its reply (a plain class: one is made per command)."""

    __slots__ = ("command", "replies", "resolved")

    def __init__(self, command: SMTPEvent | None, *, resolved: bool = True) -> None:
        self.command = command  # None: the greeting
        self.replies = 1  # LMTP body end: resolved when its first reply arrives
        self.resolved = resolved


class ClientConnection(ConnectionBase[SMTPEvent]):
    """The client side of an SMTP or LMTP session (``lmtp=True``)."""

    def __init__(self, config: ClientConfig | None = None, *, lmtp: bool = False) -> None:
        self.config = config or ClientConfig()
        self.session = Session(lmtp=lmtp, tls=self.config.tls)
        self._predicted = self.session.copy()
        self._pending: deque[_Pending] = deque([_Pending(None)])
        super().__init__()
        self._lines: list[str] = []
        self._code = 0
        self._known: dict[bytes, Reply] = {}  # one-line replies already parsed, by line
        self._valid: set[tuple[str, bool]] = set()  # addresses found valid
        self._stuffer: DotStuffer | None = None
        self._bdat_left = 0

    @property
    def state(self) -> type[Sentinel]:
        return ERROR if self._error_state else self.session.state

    @property
    def lmtp(self) -> bool:
        return self.session.lmtp

    @property
    def extensions(self) -> Extensions | None:
        """The server's EHLO/LHLO keywords (None before them, or after HELO)."""
        return self.session.extensions

    @property
    def pending(self) -> tuple[SMTPEvent | None, ...]:
        """Commands sent and still waiting for their reply, oldest first."""
        return tuple(p.command for p in self._pending)

    # -- receiving ----------------------------------------------------------------------

    def _next_event(self) -> NextEvent:
        if self.session.state is TLS_PENDING:
            return PAUSED
        extract_line = self._buf.extract_line
        config = self.config
        texts = self._lines  # the lines of a reply read so far (kept over NEED_DATA)
        while True:
            line = extract_line(config.max_reply_line)
            if line is None:
                if self._eof:
                    self.session.state = CLOSED
                    return ConnectionClosed()
                return NEED_DATA
            if line is LINE_TOO_LONG:
                raise LocalProtocolError("reply line too long")
            assert isinstance(line, bytes)
            if not texts:
                # A one-line reply seen before ("250 2.0.0 Ok" to every RCPT): replies
                # are immutable, so the same one serves again, unparsed.
                known = self._known.get(line)
                if known is not None:
                    self._received(known)
                    return known
            parsed = parse_reply_line(line)
            if parsed is None:
                raise LocalProtocolError(f"not an SMTP reply line: {line[:80]!r}")
            code, last, text = parsed
            if texts and code != self._code:
                raise LocalProtocolError("reply code changed inside a multi-line reply")
            self._code = code
            texts.append(text)
            if len(texts) > config.max_reply_lines:
                raise LocalProtocolError("too many lines in one reply")
            if last:
                break
        self._lines = []
        if code == 334:
            return self._challenge(texts)
        reply = build_reply(code, texts)
        if len(texts) == 1 and len(line) <= _KNOWN_LINE and len(self._known) < _KNOWN_REPLIES:
            self._known[line] = reply
        self._received(reply)
        return reply

    def _challenge(self, texts: list[str]) -> AuthChallenge:
        pending = self._pending[0] if self._pending else None
        if pending is None or not isinstance(pending.command, Auth | AuthResponse):
            raise LocalProtocolError("334 outside of AUTH")
        try:
            data = base64.b64decode(texts[0].strip().encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise LocalProtocolError("334 challenge is not base64") from None
        self._pending.popleft()
        self.session.apply(pending.command, Reply(code=334))
        self._resync()
        return AuthChallenge(data=data)

    def _received(self, reply: Reply) -> None:
        queue = self._pending
        code = reply.code
        if not queue:
            if code == 421:  # unsolicited shutdown notice
                self.session.apply(None, reply)
                self._resync()
                return
            raise LocalProtocolError(f"unexpected reply {code}: no command pending")
        pending = queue[0]
        command = pending.command
        if code < 400:
            allowed = SUCCESS_CODES[type(command) if command is not None else None]
            # 3xx only where the protocol has one; any 2xx counts as success elsewhere.
            if code not in allowed and (code >= 300 or not _two_xx(allowed)):
                raise LocalProtocolError(f"reply {code} does not answer {command!r}")
        if not pending.resolved:
            pending.replies = max(self.session.accepted, 1)
            pending.resolved = True
        if code == 421:
            queue.clear()
            self.session.apply(None, reply)
            self._resync()
            return
        pending.replies -= 1
        if pending.replies > 0:
            return
        queue.popleft()
        if code == 354 and isinstance(command, Data):
            self._stuffer = DotStuffer()
        self.session.apply(command, reply)
        if code >= 400 or type(command) not in _ASSUMED:
            # The prediction assumed success, or knew nothing of this command: redo it.
            # (A success that was assumed leaves the prediction as it is.)
            self._resync()

    def _resync(self) -> None:
        """Recompute the predicted state from the real one and what is still pending."""
        predicted = self.session.copy()
        for p in self._pending:
            assert p.command is not None  # the greeting is answered before anything is sent
            _assume_success(predicted, p.command)
        self._predicted = predicted

    # -- sending ------------------------------------------------------------------------

    def send(self, event: SMTPEvent) -> bytes:
        """Bytes for a command or body piece; LocalProtocolError if not allowed now."""
        if self._error_state:
            raise LocalProtocolError("can't send after a protocol error")
        if self.session.state is CLOSED:
            # Also stops a body being sent when the server closed with 421 meanwhile.
            raise LocalProtocolError("the session is closed")
        if isinstance(event, MessageData):
            return self._send_data(event.data)
        if isinstance(event, EndOfMessage):
            if self._stuffer is None:
                raise LocalProtocolError("EndOfMessage outside of DATA")
            tail = self._stuffer.end()
            self._stuffer = None
            end = EndOfMessage()
            self._pending.append(_Pending(end, resolved=not self.session.lmtp))
            self._predicted.apply(end, _ASSUMED[EndOfMessage])
            return tail
        if self._stuffer is not None or self._bdat_left:
            raise LocalProtocolError("a message body is being sent")
        if isinstance(event, _AUTH_ANSWERS):
            if not self.session.in_auth or self._pending:
                raise LocalProtocolError("no AUTH challenge to answer")
            self.session.in_auth = False
            self._pending.append(_Pending(event))
            return format_command(event)
        if isinstance(event, _NOT_SENT_BY_CLIENT):
            raise LocalProtocolError(f"a client does not send {type(event).__name__}")
        if self.session.in_auth:
            # The server reads the next line as the SASL response.
            raise LocalProtocolError("answer the AUTH challenge first (AuthResponse/AuthCancel)")
        state = self.session.state
        if state is CONNECTED:
            raise LocalProtocolError("wait for the server's greeting")
        if state is TLS_PENDING:
            raise LocalProtocolError("call start_tls() first")
        if self._pending:
            self._check_pipelining(event)
        predicted = self._predicted
        try:
            predicted.check(event)
        except Rejection as rej:
            raise LocalProtocolError(f"{type(event).__name__} not allowed now: {rej}") from None
        self._check_parameters(event)
        data = format_command(event)
        if isinstance(event, Bdat):
            self._bdat_left = event.size
            self._pending.append(_Pending(event, resolved=not (self.lmtp and event.last)))
        else:
            self._pending.append(_Pending(event))
        assumed = _ASSUMED.get(type(event))
        if assumed is not None:
            predicted.apply(event, assumed)
        return data

    def _check_pipelining(self, event: SMTPEvent) -> None:
        ext = self.session.extensions
        if ext is None or "PIPELINING" not in ext.keywords:
            raise LocalProtocolError("the server did not offer PIPELINING: wait for the reply")
        # RFC 2920 section 3.1: these end a group; nothing may follow until they answer,
        # so only the newest pending command can be one.
        last = self._pending[-1].command
        if isinstance(last, _ENDS_GROUP):
            raise LocalProtocolError(
                f"{type(last).__name__} must be answered before the next command"
            )

    def _check_parameters(self, event: SMTPEvent) -> None:
        ext = self.session.extensions or _NO_EXTENSIONS
        if isinstance(event, MailFrom):
            offered = ext.keywords  # upper case, as the keywords below
            body = event.body
            for keyword, needed in (
                ("SIZE", event.size is not None),
                # RFC 3030 section 4.2: BODY=BINARYMIME needs BINARYMIME, not 8BITMIME.
                ("8BITMIME", body in ("7BIT", "8BITMIME")),
                ("BINARYMIME", body == "BINARYMIME"),
                ("SMTPUTF8", event.smtputf8),
                ("AUTH", event.auth is not None),
                ("DSN", event.ret is not None or event.envid is not None),
            ):
                if needed and keyword not in offered:
                    raise LocalProtocolError(f"the server did not offer {keyword}")
            if event.sender and not self._valid_mailbox(event.sender, event.smtputf8):
                raise LocalProtocolError(f"not a valid sender address: {event.sender!r}")
        elif isinstance(event, RcptTo):
            if (event.notify is not None or event.orcpt is not None) and "DSN" not in ext:
                raise LocalProtocolError("the server did not offer DSN")
            if not self._valid_mailbox(event.recipient, self._predicted.utf8) and (
                event.recipient.lower() != "postmaster"
            ):
                raise LocalProtocolError(f"not a valid recipient address: {event.recipient!r}")
        elif isinstance(event, (Ehlo, Helo, Lhlo, Noop, Help)) and not (
            format_command(event).isascii()
        ):
            # Only MAIL, RCPT, VRFY and EXPN may carry UTF-8 (RFC 6531), as servers check.
            raise LocalProtocolError("this command must be ASCII")

    def _valid_mailbox(self, address: str, utf8: bool) -> bool:
        """`is_valid_mailbox`, remembering the addresses found valid (a sender and its
        recipients come back message after message)."""
        key = (address, utf8)
        if key in self._valid:
            return True
        valid = is_valid_mailbox(address, utf8=utf8)
        if valid and len(self._valid) < _KNOWN_ADDRESSES:
            self._valid.add(key)
        return valid

    def _send_data(self, data: bytes) -> bytes:
        if self._stuffer is not None:
            return self._stuffer.encode(data)
        if len(data) > self._bdat_left:
            raise LocalProtocolError(
                "more data than the BDAT size announced"
                if self._bdat_left
                else "no message body is being sent"
            )
        self._bdat_left -= len(data)
        return data

    def start_tls(self) -> None:
        """Call after the server's 220 to STARTTLS, before the handshake.

        Raises `RemoteProtocolError` if the server sent anything after its 220 (a
        response injection attempt); otherwise the session restarts before EHLO.
        """
        if self.session.state is not TLS_PENDING:
            raise LocalProtocolError("start_tls() is only valid after a 220 to STARTTLS")
        if self._buf:
            self._error_state = True
            raise RemoteProtocolError("data from the server after its 220 to STARTTLS")
        self.session.tls_started()
        self._resync()


_KNOWN_REPLIES = 32  # the first distinct one-line replies remembered per connection...
_KNOWN_LINE = 200  # ...when no longer than this
_KNOWN_ADDRESSES = 256  # the first addresses found valid, remembered per connection
_AUTH_ANSWERS = (AuthResponse, AuthCancel)
_NOT_SENT_BY_CLIENT = (Reply, AuthChallenge, CommandRejected, MessageRejected)
_NO_EXTENSIONS = Extensions()

_ENDS_GROUP = (
    Ehlo,
    Helo,
    Lhlo,
    Data,
    Vrfy,
    Expn,
    Noop,
    Quit,
    StartTLS,
    Auth,
    AuthResponse,
    AuthCancel,
)


def _two_xx(allowed: frozenset[int]) -> bool:
    return any(200 <= c < 300 for c in allowed)


# The reply each command is assumed to get while it waits in a pipeline. The commands
# that end a group (above) are never followed by another before their reply arrives, so
# nothing needs assuming for them.
_ASSUMED = {
    MailFrom: Reply(code=250),
    RcptTo: Reply(code=250),
    Data: Reply(code=354),
    Bdat: Reply(code=250),
    EndOfMessage: Reply(code=250),
    Rset: Reply(code=250),
    Help: Reply(code=214),
}


def _assume_success(session: Session, command: SMTPEvent) -> None:
    """Move a predicted session as if ``command`` had succeeded."""
    assumed = _ASSUMED.get(type(command))
    if assumed is not None:
        session.apply(command, assumed)
