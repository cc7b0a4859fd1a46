"""The SMTP (and LMTP) client's flows, written once for every flavour.

`SMTPClientSession` holds the sans-I/O `mailproto.smtp.ClientConnection` and the
settings; each method returns a flow (a generator of effects) that a facade hands to
its driver: `greet`, `ehlo`, `starttls`, `login`, `send_message`, `noop`, `rset`, `quit`.

Sending a message: MAIL FROM with SIZE, BODY=8BITMIME and SMTPUTF8 as needed and offered;
every RCPT; then DATA, or BDAT when CHUNKING is offered. With PIPELINING the whole
envelope (and a BDAT body) goes out in one write, and the replies are read after. The
result names each refused recipient; a message with no accepted recipient raises
`RecipientsRefused`. Over LMTP the end of the body gets one reply per recipient.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import ssl
from collections.abc import Sequence

import attrs

from mailproto import NEED_DATA
from mailproto import smtp as s
from mailproto.sasl import (
    ClientMechanism,
    CramMD5Client,
    LoginClient,
    PlainClient,
    SASLError,
    ScramSha256Client,
)

from .._effects import Close, Info, Op, Receive, Send, StartTLS, TLSInfo
from ..errors import (
    AuthenticationFailed,
    ConnectionLost,
    MailError,
    RecipientsRefused,
    ServerError,
)
from .tls_choice import upgrade_context

__all__ = ["SMTPClientSession", "SendResult", "message_bytes"]

# How much of a body goes into one Send: big enough to be cheap, small enough to stream.
_CHUNK = 1 << 20


@attrs.frozen(slots=True, kw_only=True)
class SendResult:
    """What became of a message: the recipients accepted and those refused, with why.

    ``reply`` is the server's answer to the body (for LMTP, the first accepted
    recipient's); ``lmtp_replies`` maps each accepted recipient to its LMTP reply.
    """

    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]]
    reply: s.Reply
    lmtp_replies: dict[str, s.Reply] = attrs.field(factory=dict)


def message_bytes(
    message: email.message.Message | bytes,
) -> tuple[bytes, str | None, list[str]]:
    """The wire bytes of a message, and the sender and recipients its headers name.

    Like smtplib's send_message: the sender is Sender or From, the recipients To, Cc and
    Bcc (or the Resent-* set when present), and Bcc fields are not transmitted.
    """
    if isinstance(message, bytes):
        return message, None, []
    resent = message.get_all("Resent-Date")
    prefix = "Resent-" if resent else ""
    sender_field = message[prefix + "Sender"] or message[prefix + "From"]
    sender = email.utils.getaddresses([str(sender_field)])[0][1] if sender_field else None
    fields = [
        str(v) for name in ("To", "Cc", "Bcc") for v in (message.get_all(prefix + name) or [])
    ]
    recipients = [addr for _, addr in email.utils.getaddresses(fields) if addr]
    copy = message
    if message["Bcc"] is not None or message["Resent-Bcc"] is not None:
        copy = email.message_from_bytes(message.as_bytes(policy=email.policy.SMTP))
        del copy["Bcc"]
        del copy["Resent-Bcc"]
    try:
        data = copy.as_bytes(policy=email.policy.SMTP)
    except UnicodeEncodeError:
        data = copy.as_bytes(policy=email.policy.SMTPUTF8)
    return data, sender, recipients


class SMTPClientSession:
    """One SMTP or LMTP client session's state and flows."""

    def __init__(
        self,
        *,
        host: str,
        local_hostname: str = "localhost",
        timeout: float | None = 300.0,
        lmtp: bool = False,
        tls: bool = False,
    ) -> None:
        self.host = host
        self.local_hostname = local_hostname
        self.timeout = timeout
        self.conn = s.ClientConnection(s.ClientConfig(tls=tls), lmtp=lmtp)
        self.greeting: s.Reply | None = None
        self.tls: TLSInfo | None = None

    @property
    def extensions(self) -> s.Extensions:
        """The server's EHLO keywords (empty before EHLO, or after HELO)."""
        return self.conn.extensions or s.Extensions()

    # -- plumbing

    def _reply(self) -> Op[s.Reply | s.AuthChallenge]:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data((yield Receive(timeout=self.timeout)))
                continue
            if isinstance(event, _ANSWERS):
                return event
            raise self._lost(event)

    def _lost(self, event: object) -> ConnectionLost:
        """The error for an event that is neither a reply nor a challenge."""
        if isinstance(event, s.ConnectionClosed):
            return ConnectionLost(f"{self.host} closed the connection")
        return ConnectionLost(f"unexpected event from {self.host}: {event!r}")

    def reply(self) -> Op[s.Reply]:
        """The next reply (a 334 challenge where none is expected is an error)."""
        event = yield from self._reply()
        if not isinstance(event, s.Reply):
            raise ServerError(334, "unexpected AUTH challenge")
        return event

    def _replies(self, count: int) -> Op[list[s.Reply]]:
        """The next ``count`` replies, as `reply` reads them, in one flow: a pipelined
        transaction reads its replies without a generator per reply."""
        conn = self.conn
        replies: list[s.Reply] = []
        while len(replies) < count:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data((yield Receive(timeout=self.timeout)))
            elif isinstance(event, s.Reply):
                replies.append(event)
            elif isinstance(event, s.AuthChallenge):
                raise ServerError(334, "unexpected AUTH challenge")
            else:
                raise self._lost(event)
        return replies

    def _command(self, event: s.SMTPEvent) -> Op[s.Reply]:
        yield Send(self.conn.send(event), timeout=self.timeout)
        return (yield from self.reply())

    @staticmethod
    def _check(reply: s.Reply, command: str) -> s.Reply:
        if reply.code >= 400:
            raise ServerError(reply.code, _text(reply), command=command)
        return reply

    # -- flows

    def greet(self) -> Op[s.Reply]:
        """Read the greeting; a 554 (or any refusal) raises `ServerError`."""
        info = yield Info()
        self.tls = info.tls  # implicit TLS is up already
        self.greeting = self._check((yield from self.reply()), "greeting")
        return self.greeting

    def open(self, starttls: ssl.SSLContext | bool | None = None) -> Op[s.Reply]:
        """Greeting, EHLO, and STARTTLS: required (True or a context), never (False), or
        when offered (None). Returns the greeting."""
        greeting = yield from self.greet()
        yield from self.ehlo()
        offered = "STARTTLS" in self.extensions
        context = upgrade_context(starttls, secure=self.tls is not None, offered=offered)
        if context is not None:
            yield from self.starttls(context)
        return greeting

    def ehlo(self, name: str | None = None) -> Op[s.Reply]:
        """EHLO (LHLO for LMTP); HELO if the server does not know EHLO."""
        domain = name or self.local_hostname
        if self.conn.lmtp:
            return self._check((yield from self._command(s.Lhlo(domain=domain))), "LHLO")
        reply = yield from self._command(s.Ehlo(domain=domain))
        if reply.code in (500, 502):
            reply = yield from self._command(s.Helo(domain=domain))
        return self._check(reply, "EHLO")

    def starttls(self, context: ssl.SSLContext, hostname: str | None = None) -> Op[TLSInfo]:
        """STARTTLS, the handshake, and EHLO again (RFC 3207 4.2)."""
        if "STARTTLS" not in self.extensions:
            raise ServerError(502, "STARTTLS is not offered", command="STARTTLS")
        self._check((yield from self._command(s.StartTLS())), "STARTTLS")
        self.conn.start_tls()
        self.tls = yield StartTLS(context, hostname=hostname or self.host, timeout=self.timeout)
        yield from self.ehlo()
        return self.tls

    def login(self, username: str, password: str, *, mechanism: str | None = None) -> Op[s.Reply]:
        """AUTH with the best mechanism offered (SCRAM-SHA-256 first), or ``mechanism``."""
        offered = self.extensions.auth_mechanisms
        if mechanism is None:
            mechanism = _best_mechanism(offered, tls=self.tls is not None)
            if mechanism is None:
                raise AuthenticationFailed(
                    504, f"no mechanism we know is offered: {sorted(offered)}", command="AUTH"
                )
        client = _mechanism(mechanism.upper(), username, password, self.host)
        auth = s.Auth(mechanism=client.name, initial_response=client.initial_response())
        yield Send(self.conn.send(auth), timeout=self.timeout)
        event = yield from self._reply()
        while isinstance(event, s.AuthChallenge):
            try:
                answer: s.SMTPEvent = s.AuthResponse(data=client.respond(event.data))
            except SASLError:
                answer = s.AuthCancel()
            yield Send(self.conn.send(answer), timeout=self.timeout)
            event = yield from self._reply()
        if not 200 <= event.code < 300:  # 235; smtp-sink says 250, which the core accepts
            raise AuthenticationFailed(event.code, _text(event), command="AUTH")
        try:
            client.verify_success(None)
        except SASLError as exc:
            raise AuthenticationFailed(535, str(exc), command="AUTH") from None
        return event

    def send_message(
        self,
        message: email.message.Message | bytes,
        *,
        sender: str | None = None,
        recipients: Sequence[str] | None = None,
    ) -> Op[SendResult]:
        """Send one message; see the module docstring."""
        data, header_sender, header_recipients = message_bytes(message)
        if sender is None:
            sender = header_sender or ""
        rcpts = list(recipients if recipients is not None else header_recipients)
        if not rcpts:
            raise MailError("no recipients")
        ext = self.extensions.keywords  # upper case, as the names tested below
        utf8 = not (sender.isascii() and all(r.isascii() for r in rcpts))
        if utf8 and "SMTPUTF8" not in ext:
            raise MailError("the server does not offer SMTPUTF8 for non-ASCII addresses")
        eight_bit = not data.isascii()
        mail = s.MailFrom(
            sender=sender,
            size=len(data) if "SIZE" in ext else None,
            body="8BITMIME" if eight_bit and "8BITMIME" in ext else None,
            smtputf8=utf8,
        )
        pipelined = "PIPELINING" in ext
        chunking = "CHUNKING" in ext
        commands: list[s.SMTPEvent] = [mail, *(s.RcptTo(recipient=r) for r in rcpts)]
        commands.append(s.Bdat(size=len(data), last=True) if chunking else s.Data())
        conn = self.conn
        replies: list[s.Reply] = []
        if pipelined:
            send = conn.send
            out = b"".join([send(c) for c in commands])
            if chunking:
                out += send(s.MessageData(data=data))
            yield Send(out, timeout=self.timeout)
            replies = yield from self._replies(len(commands))
        else:
            for command in commands:
                if command is not mail and replies[0].code >= 400:
                    break  # MAIL was refused
                if command is commands[-1] and all(r.code >= 400 for r in replies[1:]):
                    break  # no recipient: no body
                yield Send(conn.send(command), timeout=self.timeout)
                if isinstance(command, s.Bdat):
                    yield from self._body(data, stuffed=False)
                replies.append((yield from self.reply()))
        mail_reply = replies[0]
        if mail_reply.code >= 400:
            if len(replies) == len(commands) and replies[-1].code == 354:
                yield from self._body(b"", stuffed=True)  # end a DATA the server began
                yield from self.reply()
            raise ServerError(mail_reply.code, _text(mail_reply), command="MAIL")
        refused = {
            r: (rep.code, _text(rep))
            for r, rep in zip(rcpts, replies[1 : 1 + len(rcpts)], strict=True)
            if rep.code >= 400
        }
        accepted = tuple(r for r in rcpts if r not in refused)
        if len(replies) < len(commands):
            raise RecipientsRefused(refused)
        last = replies[-1]
        if not chunking:
            if last.code != 354:
                if not accepted:
                    raise RecipientsRefused(refused)
                raise ServerError(last.code, _text(last), command="DATA")
            if len(data) <= _CHUNK:
                # What _body sends for one piece, without copying it.
                out = conn.send(s.MessageData(data=data)) + conn.send(s.EndOfMessage())
                yield Send(out, timeout=self.timeout)
            else:
                yield from self._body(data, stuffed=True)
            (last,) = yield from self._replies(1)
        if not accepted:
            raise RecipientsRefused(refused)
        lmtp: dict[str, s.Reply] = {}
        if self.conn.lmtp:
            lmtp[accepted[0]] = last
            for r in accepted[1:]:
                lmtp[r] = yield from self.reply()
            if all(rep.code >= 400 for rep in lmtp.values()):
                raise ServerError(last.code, _text(last), command="DATA")
        elif last.code >= 400:
            raise ServerError(last.code, _text(last), command="DATA")
        return SendResult(accepted=accepted, refused=refused, reply=last, lmtp_replies=lmtp)

    def _body(self, data: bytes, *, stuffed: bool) -> Op[None]:
        """Send the body in pieces of `_CHUNK`; the end of data goes with the last piece
        (one write for a small message: each write costs the peer a wake-up)."""
        view = memoryview(data)
        last = max(len(data) - 1, 0) // _CHUNK * _CHUNK
        for start in range(0, last + 1, _CHUNK):
            out = self.conn.send(s.MessageData(data=bytes(view[start : start + _CHUNK])))
            if start == last and stuffed:
                out += self.conn.send(s.EndOfMessage())
            yield Send(out, timeout=self.timeout)

    def noop(self) -> Op[s.Reply]:
        return self._check((yield from self._command(s.Noop())), "NOOP")

    def rset(self) -> Op[s.Reply]:
        return self._check((yield from self._command(s.Rset())), "RSET")

    def quit(self) -> Op[s.Reply | None]:
        """QUIT and close; a server that already closed is not an error."""
        try:
            reply: s.Reply | None = yield from self._command(s.Quit())
        except (ConnectionLost, MailError, OSError):
            reply = None
        yield Close()
        return reply


_ANSWERS = (s.Reply, s.AuthChallenge)


def _text(reply: s.Reply) -> str:
    """A reply's text for errors and results, its enhanced code first."""
    text = " ".join(reply.lines)
    return f"{reply.enhanced} {text}" if reply.enhanced else text


# SCRAM first; without TLS, CRAM-MD5 before the mechanisms that send the password.
_PREFERENCE_TLS = ("SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5")
_PREFERENCE_PLAIN = ("SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN")


def _best_mechanism(offered: frozenset[str], *, tls: bool) -> str | None:
    for name in _PREFERENCE_TLS if tls else _PREFERENCE_PLAIN:
        if name in offered:
            return name
    return None


def _mechanism(name: str, username: str, password: str, host: str) -> ClientMechanism:
    if name == "SCRAM-SHA-256":
        return ScramSha256Client(username, password)
    if name == "PLAIN":
        return PlainClient(username, password)
    if name == "LOGIN":
        return LoginClient(username, password)
    if name == "CRAM-MD5":
        return CramMD5Client(username, password)
    raise AuthenticationFailed(504, f"mechanism {name} is not supported", command="AUTH")
