"""The MTA's SMTP server sessions (RFC 5321): the inbound and the submission listeners.

Written once as a flow of effects (`smtpd_flow`), run by every flavour's ``serve()``.
The sans-I/O `mailproto.smtp.ServerConnection` checks the protocol (syntax, sequence,
SIZE, recipients limit, errors in a row, dot-stuffing; only CRLF.CRLF ends the data, so
SMTP smuggling with bare LF or CR finds no end); this module decides the answers:

- EHLO offers PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531),
  CHUNKING (RFC 3030), SIZE (RFC 1870), ENHANCEDSTATUSCODES (RFC 2034), DSN (RFC 3461),
  STARTTLS (RFC 3207) when there is a TLS context and no TLS yet, and on submission AUTH
  (RFC 4954) once TLS is on (or anywhere with ``allow_plaintext_auth``).
- Inbound: a recipient in a local domain must be a user (``550 5.1.1``); any other
  domain is ``550 5.7.1 Relaying denied``. Domains are normalized before the decision
  (`service.normalize_domain`), and local parts holding ``%``, ``!`` or ``@`` (routes
  a later hop could follow) count as not local. The core already dropped source routes
  (``@a,@b:``): the domain checked is the final one. Bare ``postmaster`` (RFC 5321
  section 4.5.1) is accepted.
- Submission: AUTH first (``530 5.7.0``), then MAIL FROM must be one of the user's
  addresses (``553 5.7.1``), then any destination; Message-ID and Date are added when
  the header block has none (RFC 6409 section 8).
- Both: a ``Received:`` field (RFC 5321 section 4.4, protocol names of RFC 3848 and
  RFC 6531, TLS version and cipher in a comment as RFC 8314 section 4.3 recommends) is
  written first, the body streams into `Queue.new_message`, and ``250`` is sent only once
  `Queue.commit` has made the message durable (RFC 5321 section 6.1).
- Limits: ``max_junk_commands`` commands outside a transaction (NOOP, RSET, VRFY, EXPN,
  HELP, EHLO, HELO) before a MAIL -> ``421 4.7.0``; refused recipients past
  ``tarpit_after`` slow each further refusal down; idle ``idle_timeout`` -> ``421 4.4.2``.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs

from mailproto import NEED_DATA, RemoteProtocolError, smtp
from mailproto.sasl import Challenge

from .._calls import blocking_call, local_call, pause
from .._effects import Call, Op, Receive, Send, StartTLS, TLSInfo, TransportInfo
from .._serving import STARTTLS_TIMEOUT
from .._transport import TransportTimeout
from ..mda.auth import AuthExchange, AuthOutcome
from .queue import MessageWriter, QueuedRecipient, QueueEntry
from .service import ListenerPolicy, normalize_domain

if TYPE_CHECKING:
    from .service import MTA

__all__ = ["check_recipient", "received_field", "smtpd_flow"]

log = logging.getLogger("mailproto.smtpd")

HEADER_LIMIT = 64 * 1024  # octets of header block held back while looking for fields
_ROUTING = re.compile(r"[%!@]")  # local-part characters some MTAs still route on
_FIELDS = re.compile(rb"^(message-id|date)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _unique_reply(code: int, enhanced: str | None, text: str) -> smtp.Reply:
    """A one-line reply whose text never recurs (a queue id)."""
    return smtp.Reply(code=code, lines=(text,), enhanced=enhanced)


# Replies are immutable and nearly all recur (those naming the host too): each one is
# built and checked once.
_reply = functools.lru_cache(maxsize=256)(_unique_reply)


@functools.lru_cache(maxsize=64)
def _ehlo_reply(lines: tuple[str, ...]) -> smtp.Reply:
    return smtp.Reply(code=250, lines=lines)


RELAY_DENIED = _reply(550, "5.7.1", "Relaying denied")
NO_SUCH_USER = _reply(550, "5.1.1", "No such user here")
RECIPIENT_OK = _reply(250, "2.1.5", "Recipient ok")
TEMPORARY = _reply(451, "4.3.0", "Temporary local problem, try again later")

_AUTH_REPLIES: dict[str, smtp.Reply] = {
    "auth": _reply(535, "5.7.8", "Authentication credentials invalid"),
    "malformed": _reply(501, "5.5.2", "Malformed authentication exchange"),
    "unsupported": _reply(504, "5.5.4", "Unrecognized authentication type"),
    "encryption-required": _reply(
        538, "5.7.11", "Encryption required for requested authentication mechanism"
    ),
    "aborted": _reply(501, "5.7.0", "Authentication cancelled"),
    "temporary": _reply(454, "4.7.0", "Temporary authentication failure"),
}


# -- policy decisions (pure, testable) -----------------------------------------------------


def check_recipient(mta: MTA, address: str, relay: bool) -> tuple[str | None, smtp.Reply]:
    """RCPT TO: the address to queue (domain normalized) and 250, or None and the refusal.

    ``relay`` is true for an authenticated submission client: non-local domains are then
    allowed. Runs in a worker thread (it reads the users file).
    """
    if "@" not in address:  # the core lets only a bare "postmaster" through
        return _postmaster(mta, None)
    local, domain = smtp.split_address(address)
    normal = normalize_domain(domain)
    if normal is not None and normal in mta.local_domains:
        if _ROUTING.search(local):
            # user%remote@local, remote!user@local, "user@remote"@local: a later hop
            # could route on these; we deliver to none of them.
            return None, (NO_SUCH_USER if relay else RELAY_DENIED)
        queued = smtp.join_address(local, normal)
        if mta.local_user(queued) is not None:
            return queued, RECIPIENT_OK
        if local.lower() == "postmaster":
            return _postmaster(mta, normal)
        return None, NO_SUCH_USER
    if not relay:
        return None, RELAY_DENIED
    if normal is None:
        return None, _reply(550, "5.1.2", "Bad destination domain")
    return smtp.join_address(local, normal), RECIPIENT_OK


def _postmaster(mta: MTA, domain: str | None) -> tuple[str | None, smtp.Reply]:
    user = mta.postmaster_user()
    if user is None:
        return None, NO_SUCH_USER
    if "@" in user:
        return user, RECIPIENT_OK
    domain = domain or (mta.local_domains[0] if mta.local_domains else mta.hostname)
    return f"{user}@{domain}", RECIPIENT_OK


def _address_literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def received_field(
    *,
    helo: str | None,
    ip: str | None,
    hostname: str,
    protocol: str,
    id: str,
    tls: TLSInfo | None,
    recipients: list[str],
    when: float,
) -> bytes:
    """A ``Received:`` trace field (RFC 5321 section 4.4), folded, ending with CRLF."""
    literal = _address_literal(ip) if ip else None
    if helo and smtp.is_valid_mailbox(f"x@{helo}"):
        source = f"{helo} ({literal})" if literal else helo
    elif literal:
        source = f"{literal} ({literal})"
    else:
        source = "unknown"
    lines = [f"Received: from {source}", f"\tby {hostname} (mailproto) with {protocol} id {id}"]
    if tls is not None and tls.version:
        lines.append(f"\t(using {tls.version} with cipher {tls.cipher or 'unknown'})")
    stamp = email.utils.format_datetime(datetime.fromtimestamp(when, UTC))
    if len(recipients) == 1:
        lines.append(f"\tfor <{recipients[0]}>; {stamp}")
    else:
        lines[-1] += f"; {stamp}"
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")


def protocol_name(*, esmtp: bool, utf8: bool, tls: bool, auth: bool) -> str:
    """The ``with`` keyword of the Received field: RFC 3848 (ESMTPSA...) and RFC 6531
    (UTF8SMTPSA...)."""
    if not (esmtp or tls or auth):
        return "SMTP"
    return ("UTF8SMTP" if utf8 else "ESMTP") + ("S" if tls else "") + ("A" if auth else "")


# -- the body --------------------------------------------------------------------------


class _Body:
    """Streams one message into its queue file. The header block (up to HEADER_LIMIT)
    is held back until it ends, so that the fields we add (Received first, then the
    missing Message-ID and Date on submission) are written before it."""

    def __init__(self, writer: MessageWriter | None) -> None:
        self.writer = writer  # None: no queue file could be made, octets are dropped
        self.received = 0  # octets from the client
        self.failed = writer is None  # or a write failed (full disk): refuse the message
        self._head: bytearray | None = bytearray()
        self._searched = 0

    def feed(self, data: bytes, prefix: Callable[[set[bytes]], bytes]) -> None:
        self.received += len(data)
        if self._head is None:
            self._write(data)
            return
        self._head += data
        head = self._head
        start = max(self._searched - 3, 0)
        self._searched = len(head)
        done = head[:2] == b"\r\n" or head[:1] == b"\n"
        if not done:
            done = _HEADER_END.search(head, start) is not None
        if done or len(head) > HEADER_LIMIT:
            self._release(prefix)

    def finish(self, prefix: Callable[[set[bytes]], bytes]) -> None:
        if self._head is not None:
            self._release(prefix)

    def _release(self, prefix: Callable[[set[bytes]], bytes]) -> None:
        head = bytes(self._head or b"")
        self._head = None
        match = _HEADER_END.search(head)
        block = head[: match.start()] if match else head
        if head[:2] == b"\r\n" or head[:1] == b"\n":
            block = b""
        present = {m.group(1).lower() for m in _FIELDS.finditer(block)}
        self._write(prefix(present) + head)

    def _write(self, data: bytes) -> None:
        if self.failed or self.writer is None:
            return
        try:
            self.writer.write(data)
        except (OSError, ValueError):
            log.exception("writing a message to the queue failed")
            self.failed = True


# -- the session -----------------------------------------------------------------------


@attrs.define
class _Transaction:
    mail: smtp.MailFrom
    id: str
    recipients: list[QueuedRecipient] = attrs.field(factory=list)
    body: _Body | None = None


class _Session:
    """The state of one SMTP connection; `run` is its flow."""

    def __init__(self, mta: MTA, policy: ListenerPolicy, info: TransportInfo) -> None:
        self.mta = mta
        self.policy = policy
        self.tls: TLSInfo | None = info.tls
        self.ip = info.peer[0] if info.peer else None
        config = smtp.ServerConfig(
            max_recipients=mta.max_recipients,
            max_message_size=mta.max_message_size,
            max_errors=mta.max_errors,
            tls=info.tls is not None,
            allow_insecure_auth=policy.allow_plaintext_auth,
        )
        self.conn = smtp.ServerConnection(config)
        self.out = bytearray()
        self.helo: str | None = None
        self.esmtp = False
        self.user: str | None = None
        self.exchange: AuthExchange | None = None
        self.success: AuthOutcome | None = None  # SCRAM's final data sent, awaiting ""
        self.junk = 0  # commands since the last MAIL that moved no mail
        self.refused = 0  # refused recipients in this session (the tarpit)
        self.txn: _Transaction | None = None

    # -- plumbing ------------------------------------------------------------------------

    def send(self, reply: smtp.Reply) -> None:
        self.out += self.conn.send(reply)

    def flush(self) -> Op[None]:
        if self.out:
            yield Send(bytes(self.out), timeout=self.mta.idle_timeout)
            self.out.clear()

    def reset(self) -> Op[None]:
        """End the transaction, dropping a half-received message."""
        txn, self.txn = self.txn, None
        if txn is not None and txn.body is not None and txn.body.writer is not None:
            yield local_call(self.mta.queue.abort, txn.body.writer)

    def run(self) -> Op[None]:
        self.send(_reply(220, None, f"{self.mta.hostname} ESMTP mailproto ready"))
        try:
            while True:
                try:
                    event = self.conn.next_event()
                except RemoteProtocolError as exc:  # too many errors, STARTTLS injection
                    if isinstance(exc.reply_hint, smtp.Reply):
                        self.out += self.conn.send(exc.reply_hint)
                    break
                if event is NEED_DATA:
                    yield from self.flush()
                    try:
                        data = yield Receive(timeout=self.mta.idle_timeout)
                    except TransportTimeout:
                        self.send(_reply(421, "4.4.2", "Idle for too long, closing"))
                        break
                    self.conn.receive_data(data)
                    continue
                if not isinstance(event, smtp.SMTPEvent):  # PAUSED: never, we always reply
                    raise AssertionError(f"unexpected {event!r}")
                if not (yield from self.handle(event)):
                    break
            yield from self.flush()
        finally:
            txn, self.txn = self.txn, None
            if txn is not None and txn.body is not None and txn.body.writer is not None:
                self.mta.queue.abort(txn.body.writer)

    # -- commands ------------------------------------------------------------------------

    def handle(self, event: smtp.SMTPEvent) -> Op[bool]:
        """Answer one event; False when the session is over."""
        match event:
            case smtp.CommandRejected(reply=reply):
                self.send(reply)
            case smtp.MessageData(data=data):
                if self.txn is not None and self.txn.body is not None:
                    self.txn.body.feed(data, self.prefix)
            case smtp.RcptTo():
                yield from self.rcpt(event)
            case smtp.MailFrom():
                yield from self.mail(event)
            case smtp.Data():
                if (yield from self.open_body()):
                    self.send(_reply(354, None, "End data with <CR><LF>.<CR><LF>"))
                else:
                    self.send(TEMPORARY)  # DATA refused: the transaction stays open
            case smtp.Bdat():
                yield from self.open_body()
            case smtp.EndOfChunk():
                txn = self.txn
                received = txn.body.received if txn is not None and txn.body else 0
                self.send(_unique_reply(250, "2.0.0", f"{received} octets received"))
            case smtp.EndOfMessage():
                yield from self.end_of_message()
            case smtp.MessageRejected(reply=reply):
                yield from self.reset()
                self.send(reply)
            case smtp.Ehlo(domain=domain) | smtp.Helo(domain=domain):
                if not self.junk_ok():
                    return False
                yield from self.reset()
                self.helo, self.esmtp = domain, isinstance(event, smtp.Ehlo)
                if self.esmtp:
                    self.send(_ehlo_reply(tuple(self.ehlo_lines())))
                else:
                    self.send(_reply(250, None, self.mta.hostname))
            case smtp.StartTLS():
                return (yield from self.starttls())
            case smtp.Auth(mechanism=mechanism, initial_response=initial):
                self.exchange = self.mta.authenticator.authenticate(
                    mechanism,
                    peer_ip=self.ip or "",
                    tls=self.tls is not None,
                    allow_plaintext=self.policy.allow_plaintext_auth,
                )
                step = yield blocking_call(self.exchange.start, initial)
                yield from self.auth_step(step)
            case smtp.AuthResponse(data=data):
                if self.success is not None:
                    outcome, self.success = self.success, None
                    if data:
                        outcome = attrs.evolve(outcome, ok=False, code="malformed")
                    yield from self.auth_finish(outcome)
                else:
                    assert self.exchange is not None  # the core saw our 334
                    step = yield blocking_call(self.exchange.receive, data)
                    yield from self.auth_step(step)
            case smtp.AuthCancel():
                if self.exchange is not None:
                    self.exchange.abort()
                self.exchange = self.success = None
                self.send(_AUTH_REPLIES["aborted"])
            case smtp.Rset():
                if not self.junk_ok():
                    return False
                yield from self.reset()
                self.send(_reply(250, "2.0.0", "Ok"))
            case smtp.Noop():
                if not self.junk_ok():
                    return False
                self.send(_reply(250, "2.0.0", "Ok"))
            case smtp.Vrfy():
                if not self.junk_ok():
                    return False
                self.send(_reply(252, "2.5.0", "Cannot VRFY user, but will accept message"))
            case smtp.Expn():
                if not self.junk_ok():
                    return False
                self.send(_reply(502, "5.5.1", "EXPN not available"))
            case smtp.Help():
                if not self.junk_ok():
                    return False
                self.send(_reply(214, "2.0.0", "See RFC 5321"))
            case smtp.Quit():
                self.send(_reply(221, "2.0.0", f"{self.mta.hostname} closing connection"))
                return False
            case smtp.ConnectionClosed():
                return False
            case _:  # pragma: no cover - the core sends nothing else to a server
                raise AssertionError(f"unexpected event {event!r}")
        return True

    def junk_ok(self) -> bool:
        """Count a command that moves no mail; past the limit it is answered 421 and the
        session ends."""
        self.junk += 1
        if self.junk <= self.mta.max_junk_commands:
            return True
        self.send(_reply(421, "4.7.0", "Too many commands without mail, closing"))
        return False

    def ehlo_lines(self) -> list[str]:
        lines = [
            self.mta.hostname,
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            f"SIZE {self.mta.max_message_size}",
            "ENHANCEDSTATUSCODES",
            "DSN",
        ]
        if self.mta.tls_context is not None and self.tls is None:
            lines.append("STARTTLS")
        if self.policy.require_auth and (self.tls is not None or self.policy.allow_plaintext_auth):
            mechanisms = self.mta.authenticator.mechanisms(
                self.tls is not None, self.policy.allow_plaintext_auth
            )
            lines.append("AUTH " + " ".join(mechanisms))
        return lines

    def starttls(self) -> Op[bool]:
        context = self.mta.tls_context
        assert context is not None  # else STARTTLS was not offered: the core refused it
        self.send(_reply(220, "2.0.0", "Ready to start TLS"))
        yield from self.flush()
        try:
            self.conn.start_tls()
        except RemoteProtocolError as exc:  # plaintext pipelined after STARTTLS
            if isinstance(exc.reply_hint, smtp.Reply):
                self.out += self.conn.send(exc.reply_hint)
            return False
        self.tls = yield StartTLS(context, server_side=True, timeout=STARTTLS_TIMEOUT)
        # RFC 3207 section 4.2: forget what the client said before TLS.
        self.helo, self.esmtp, self.user = None, False, None
        return True

    def auth_step(self, step: Challenge | AuthOutcome) -> Op[None]:
        if isinstance(step, Challenge):
            self.send_challenge(step.data)
            return
        self.exchange = None
        if step.ok and step.data:
            # RFC 4954 section 4: additional data with success goes in a 334, which the
            # client answers with an empty line before the 235.
            self.success = step
            self.send_challenge(step.data)
            return
        yield from self.auth_finish(step)

    def send_challenge(self, data: bytes) -> None:
        self.out += self.conn.send(smtp.AuthChallenge(data=data))

    def auth_finish(self, outcome: AuthOutcome) -> Op[None]:
        if outcome.ok:
            self.user = outcome.username
            self.send(_reply(235, "2.7.0", "Authentication successful"))
            return
        if outcome.delay > 0:
            yield Call(pause, (outcome.delay,))
        self.send(_AUTH_REPLIES.get(outcome.code, _AUTH_REPLIES["auth"]))

    def mail(self, event: smtp.MailFrom) -> Op[None]:
        yield from self.reset()
        if self.policy.require_auth:
            if self.user is None:
                if self.tls is None and self.mta.tls_context is not None:
                    text = "Must issue a STARTTLS command first"
                    if self.policy.allow_plaintext_auth:
                        text = "Authentication required"
                else:
                    text = "Authentication required"
                self.send(_reply(530, "5.7.0", text))
                return
            allowed = yield local_call(self.mta.may_send_as, self.user, event.sender)
            if not allowed:
                self.send(_reply(553, "5.7.1", f"Sender address not owned by {self.user}"))
                return
        self.txn = _Transaction(mail=event, id=secrets.token_hex(8))
        self.junk = 0
        self.send(_reply(250, "2.1.0", "Sender ok"))

    def rcpt(self, event: smtp.RcptTo) -> Op[None]:
        txn = self.txn
        assert txn is not None  # the core checked MAIL came first
        try:
            address, reply = yield local_call(
                check_recipient, self.mta, event.recipient, self.user is not None
            )
        except Exception:
            log.exception("checking recipient %r failed", event.recipient)
            address, reply = None, TEMPORARY
        if address is None:
            if reply.code >= 500:
                self.refused += 1
                over = self.refused - self.mta.tarpit_after
                if over > 0 and self.mta.tarpit_step > 0:
                    delay = min(over * self.mta.tarpit_step, self.mta.tarpit_max)
                    yield from self.flush()
                    yield Call(pause, (delay,))
            self.send(reply)
            return
        if all(r.address.lower() != address.lower() for r in txn.recipients):
            orcpt = f"{event.orcpt[0]};{event.orcpt[1]}" if event.orcpt else None
            notify = frozenset(event.notify) if event.notify is not None else None
            txn.recipients.append(QueuedRecipient(address=address, orcpt=orcpt, notify=notify))
        self.send(reply)

    def open_body(self) -> Op[bool]:
        """DATA, or the first BDAT: a queue file for the body; False if none could be
        made (BDAT chunks are then read and dropped, and the end refused)."""
        txn = self.txn
        assert txn is not None  # the core checked MAIL and RCPT came first
        if txn.body is None:
            try:
                writer = yield local_call(self.mta.queue.new_message)
            except Exception:
                log.exception("cannot create a queue file")
                writer = None
            txn.body = _Body(writer)
        return txn.body.writer is not None

    def prefix(self, present: set[bytes]) -> bytes:
        """Received (always), then Message-ID and Date when submission lacks them."""
        txn = self.txn
        assert txn is not None
        now = time.time()
        out = received_field(
            helo=self.helo,
            ip=self.ip,
            hostname=self.mta.hostname,
            protocol=protocol_name(
                esmtp=self.esmtp,
                utf8=txn.mail.smtputf8,
                tls=self.tls is not None,
                auth=self.user is not None,
            ),
            id=txn.body.writer.id if txn.body and txn.body.writer else txn.id,
            tls=self.tls,
            recipients=[r.address for r in txn.recipients],
            when=now,
        )
        if self.policy.require_auth:
            if b"message-id" not in present:
                token = f"{time.time_ns():x}.{secrets.token_hex(8)}"
                out += f"Message-ID: <{token}@{self.mta.hostname}>\r\n".encode()
            if b"date" not in present:
                stamp = email.utils.format_datetime(datetime.fromtimestamp(now, UTC))
                out += f"Date: {stamp}\r\n".encode()
        return out

    def end_of_message(self) -> Op[None]:
        txn = self.txn
        assert txn is not None
        assert txn.body is not None  # DATA or BDAT came first
        body = txn.body
        body.finish(self.prefix)
        self.txn = None
        yield from self.flush()
        if body.writer is None or body.failed:
            if body.writer is not None:
                yield local_call(self.mta.queue.abort, body.writer)
            self.send(_reply(452, "4.3.1", "Insufficient system storage"))
            return
        mail = txn.mail
        try:
            # A local_call: in the SMTP children's event loop, see _calls.local_call.
            entry: QueueEntry = yield local_call(self._commit, body.writer, mail, txn.recipients)
        except Exception:
            log.exception("queueing message %s failed", txn.id)
            yield local_call(self.mta.queue.abort, body.writer)  # commit did, unless broken
            self.send(TEMPORARY)
            return
        log.info(
            "queued %s from=<%s> rcpts=%d size=%d client=%s user=%s",
            entry.id,
            mail.sender,
            len(entry.recipients),
            entry.size,
            entry.client,
            self.user,
        )
        try:
            self.mta.queued(entry)
        except Exception:
            log.exception("the on_queued hook failed for %s", entry.id)
        self.send(_unique_reply(250, "2.0.0", f"Ok: queued as {entry.id}"))

    def _commit(
        self, writer: MessageWriter, mail: smtp.MailFrom, recipients: list[QueuedRecipient]
    ) -> QueueEntry:
        body = mail.body if mail.body in ("8BITMIME", "BINARYMIME") else None
        return self.mta.queue.commit(
            writer,
            sender=mail.sender,
            recipients=recipients,
            ret=mail.ret,
            envid=mail.envid,
            body=body,
            smtputf8=mail.smtputf8,
            auth_user=self.user,
            client=self.client(),
        )

    def client(self) -> str:
        helo = self.helo or "unknown"
        return f"{helo} ({_address_literal(self.ip)})" if self.ip else helo


def smtpd_flow(mta: MTA, policy: ListenerPolicy, info: TransportInfo) -> Op[None]:
    """One SMTP connection, from the greeting to QUIT (or timeout, or the peer leaving)."""
    return _Session(mta, policy, info).run()
