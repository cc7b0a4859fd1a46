"""Relay: queued messages handed to another MTA over SMTP, with a result per recipient.

RFC 5321 section 5.1: the hops (MX hosts, each with its addresses) are tried in order,
and a host that cannot be reached, answers 421, or refuses the greeting or EHLO (a 5xx
too) is left for the next one. Sections 4.1.1.1 (EHLO, HELO when EHLO is refused), 4.1.4
(RSET between the transactions of one connection), 4.2.5 (the reply after the body is
the one that counts) and 4.5.3.2 (timeouts; one value here for every step).
RFC 3207: STARTTLS, opportunistic or required; RFC 4954: AUTH to a smarthost.
RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030 CHUNKING/BINARYMIME, RFC 6531 SMTPUTF8,
RFC 2920 PIPELINING, RFC 3461 DSN parameters passed on (RET, ENVID, NOTIFY, ORCPT).

Everything of SMTP goes through the sans-I/O `mailproto.smtp.ClientConnection` (held by
an `SMTPClientSession`), driven on a blocking socket by `_driver.drive`; the body is
read from the queue file in pieces, so a message never sits in memory whole.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import BinaryIO, Literal

import attrs

from mailproto import ProtocolError
from mailproto import smtp as s

from .._driver import drive
from .._effects import Call, Info, Op, Send, StartTLS
from .._ops.smtp_client import SMTPClientSession
from .._socket import SocketTransport
from .._transport import TLSFailed, TransportError, TransportTimeout
from ..errors import AuthenticationFailed, MailError, ServerError
from .connections import ConnectionCache
from .queue import QueuedRecipient, QueueEntry
from .routing import MAX_ADDRESSES, Hop

__all__ = ["OutgoingMessage", "RecipientResult", "deliver_remote"]

# How much of a body is read from the file and sent at a time (and the BDAT chunk size).
CHUNK = 64 * 1024
# Longest reply text kept in a result (the core bounds replies; envelopes stay small).
_MAX_TEXT = 1000


@attrs.frozen(kw_only=True)
class OutgoingMessage:
    """One queued message and the recipients to deliver it to on this trip."""

    entry: QueueEntry
    recipients: tuple[QueuedRecipient, ...]
    open: Callable[[], BinaryIO]
    # For LMTP to our MDA: a name per recipient's copy (XDELIVERYID), and whether an
    # earlier attempt may have stored it already (the MDA then checks first).
    delivery_ids: tuple[str, ...] = ()
    redelivery: bool = False


@attrs.frozen(kw_only=True)
class RecipientResult:
    """What became of one recipient: 2xx delivered, 4xx retry later, 5xx bounce.

    ``text`` is the enhanced status code and the reply text ("5.1.1 No such user");
    ``remote_mta`` the host that answered (or was last tried).
    """

    address: str
    code: int
    text: str
    remote_mta: str


class _HopFailed(Exception):
    """This connection is of no more use: try the next address or hop."""

    def __init__(self, why: str, enhanced: str = "4.4.2") -> None:
        super().__init__(why)
        self.why = why
        self.enhanced = enhanced


class _Stale(Exception):
    """A kept connection failed its RSET check (the server closed it meanwhile)."""


class _PlainRetry(Exception):
    """Opportunistic TLS failed in the handshake: try that address again without it."""


Report = Callable[[int, list[RecipientResult]], object]


def deliver_remote(
    hops: Sequence[Hop],
    messages: Sequence[OutgoingMessage],
    *,
    helo: str,
    timeout: float = 300.0,
    tls_context: ssl.SSLContext | None = None,
    report: Report | None = None,
    lmtp: bool = False,
    connections: ConnectionCache | None = None,
) -> list[list[RecipientResult]]:
    """Deliver ``messages`` through the first hop that takes them; blocking.

    One connection carries every message (RSET between them). Recipients a connection
    leaves without an answer (it failed, or the server said 421) go on to the next
    address, then the next hop; those no hop answered get a 4xx saying why. Returns one
    list per message, in the order of its ``recipients``; ``report(index, results)``
    is also called for each message as soon as all its recipients are answered, so the
    queue can record them before the rest of the batch is done. ``lmtp``: the hop is an
    LMTP server (RFC 2033: LHLO, one reply per recipient after the body).
    ``connections``: take a kept connection to the hop when there is one, and keep this
    one for the next batch when it ends in good order (`connections.ConnectionCache`).
    """
    results: list[list[RecipientResult | None]] = [[None] * len(m.recipients) for m in messages]
    reported: set[int] = set()

    def settled(index: int) -> None:
        if report is not None and index not in reported:
            per = results[index]
            if all(r is not None for r in per):
                reported.add(index)
                report(index, [r for r in per if r is not None])

    failures: list[tuple[str, str]] = []  # (enhanced code, "host[address]: why")
    last_host = ""

    def unresolved() -> bool:
        return any(r is None for per in results for r in per)

    for hop in hops:
        if not unresolved():
            break
        last_host = hop.host
        try:
            addresses = _addresses(hop)
        except _HopFailed as exc:
            failures.append((exc.enhanced, f"{hop.host}: {exc.why}"))
            continue
        for address in addresses:
            if not unresolved():
                break
            kind = _LMTPAttempt if lmtp else _Attempt
            attempt = kind(hop, address, messages, results, helo, timeout, tls_context, settled)
            try:
                try:
                    attempt.run(starttls=True, connections=connections)
                except _PlainRetry as exc:
                    failures.append(("4.7.5", f"{hop.host}[{address}]: {exc}; retried without TLS"))
                    attempt.run(starttls=False)
            except _HopFailed as exc:
                failures.append((exc.enhanced, f"{hop.host}[{address}]: {exc.why}"))
    if not failures:
        failures.append(("4.4.4", "no host to deliver to"))
    enhanced = failures[-1][0]  # always 4.x.y: a connection-level failure is temporary
    why = _clip(f"{enhanced} Delivery failed: " + "; ".join(f[1] for f in failures[-4:]))
    return [
        [
            r
            if r is not None
            else RecipientResult(
                address=m.recipients[i].address, code=451, text=why, remote_mta=last_host
            )
            for i, r in enumerate(per)
        ]
        for m, per in zip(messages, results, strict=True)
    ]


def _addresses(hop: Hop) -> list[str]:
    """Where to connect for a hop: its addresses, or the system resolver's (IPv4 first)."""
    if hop.addresses:
        return list(hop.addresses)
    try:
        return [str(ipaddress.ip_address(hop.host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hop.host, hop.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _HopFailed(f"host not found: {exc}", "4.4.4") from None
    found: list[str] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            address = str(info[4][0])
            if info[0] == family and address not in found:
                found.append(address)
    if not found:
        raise _HopFailed("host has no address", "4.4.4")
    return found[:MAX_ADDRESSES]


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _opportunistic_context() -> ssl.SSLContext:
    """TLS without certificate checks: better than plaintext, as Postfix's "may"."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _text(reply: s.Reply) -> str:
    """ "5.1.1 No such user": the enhanced code (class.0.0 when the server gave none)."""
    enhanced = reply.enhanced or f"{reply.code // 100}.0.0"
    return _clip(f"{enhanced} {' '.join(line.strip() for line in reply.lines)}".rstrip())


class _Attempt:
    """One connection to one address of a hop, carrying the unresolved recipients."""

    def __init__(
        self,
        hop: Hop,
        address: str,
        messages: Sequence[OutgoingMessage],
        results: list[list[RecipientResult | None]],
        helo: str,
        timeout: float,
        tls_context: ssl.SSLContext | None,
        settled: Callable[[int], None] = lambda index: None,
    ) -> None:
        self.settled = settled
        self.hop = hop
        self.address = address
        self.messages = messages
        self.results = results
        self.helo = helo
        self.timeout = timeout
        self.tls_context = tls_context
        self.sess = self._new_session()
        self.starttls = True
        # A transaction was left open (refused, abandoned): RSET before the next MAIL.
        # One whose body was answered needs none (RFC 5321 section 4.1.1.4).
        self.rset_pending = False

    def _new_session(self) -> SMTPClientSession:
        return SMTPClientSession(
            host=self.hop.host,
            local_hostname=self.helo,
            timeout=self.timeout,
            tls=self.hop.implicit_tls,
        )

    def _context(self) -> ssl.SSLContext:
        if self.hop.tls == "encrypt":
            return self.tls_context or ssl.create_default_context()
        return _opportunistic_context()

    # -- the connection

    def run(self, *, starttls: bool, connections: ConnectionCache | None = None) -> None:
        """Deliver over a kept connection or a new one; raises `_HopFailed` or
        `_PlainRetry`. With ``connections`` the connection is kept when it ends well."""
        self.starttls = starttls
        key = (type(self).__name__, self.hop, self.address)
        if connections is not None:
            while (kept := connections.take(key)) is not None:
                transport, self.sess = kept
                try:
                    self._drive(transport, reused=True, connections=connections, key=key)
                    return
                except _Stale:
                    continue  # closed meanwhile: another kept one, or a new connection
        self.sess = self._new_session()  # a fresh session for each connection
        self._drive(self._connect(), reused=False, connections=connections, key=key)

    def _connect(self) -> SocketTransport:
        try:
            sock = socket.create_connection((self.address, self.hop.port), timeout=self.timeout)
        except TimeoutError:
            raise _HopFailed(f"no connection in {self.timeout} s", "4.4.1") from None
        except OSError as exc:
            raise _HopFailed(f"cannot connect: {exc.strerror or exc}", "4.4.1") from None
        return SocketTransport(sock)

    def _drive(
        self,
        transport: SocketTransport,
        *,
        reused: bool,
        connections: ConnectionCache | None,
        key: object,
    ) -> None:
        keep = False
        try:
            if self.hop.implicit_tls and not reused:
                transport.start_tls(
                    self._context(),
                    server_side=False,
                    hostname=self.hop.host,
                    timeout=self.timeout,
                )
            keep = drive(self._session(reused=reused, keep=connections is not None), transport)
        except (_HopFailed, _PlainRetry, _Stale):
            raise
        except TLSFailed as exc:
            raise _HopFailed(f"TLS failed: {exc.reason}", "4.7.5") from None
        except TransportTimeout as exc:
            raise _HopFailed(f"timeout: {exc}", "4.4.2") from None
        except TransportError as exc:
            raise _HopFailed(str(exc) or "connection lost", "4.4.2") from None
        except ServerError as exc:
            raise _HopFailed(f"{exc.command} refused: {exc.code} {exc.text}", "4.4.2") from None
        except (ProtocolError, MailError) as exc:
            raise _HopFailed(f"protocol error: {exc}", "4.5.0") from None
        finally:
            if keep and connections is not None:
                connections.put(key, transport, self.sess)
            else:
                transport.close()

    def _session(self, *, reused: bool = False, keep: bool = False) -> Op[bool]:
        """The whole conversation; True when the connection ended in good order and is
        to be kept (``keep``: no QUIT then)."""
        sess = self.sess
        if reused:
            try:
                reply = yield from self._command(s.Rset())
            except Exception as exc:  # closed, timed out, 421: not this batch's business
                raise _Stale(str(exc)) from None
            if reply.code != 250:
                raise _Stale(f"RSET: {reply.code}")
        else:
            info = yield Info()
            sess.tls = info.tls
            greeting = yield from self._reply()
            if greeting.code != 220:
                raise _HopFailed(f"greeting: {greeting.code} {_text(greeting)}", "4.4.2")
            yield from self._hello()
            yield from self._secure()
            yield from self._login()
        self.rset_pending = False
        for index in range(len(self.messages)):
            if all(r is not None for r in self.results[index]):
                continue
            yield from self._transaction(index)
            self.settled(index)
        if keep:
            return True
        with contextlib.suppress(Exception):  # delivered already: the end does not matter
            yield from self._command(s.Quit())
        return False

    def _rset_reply(self) -> Op[None]:
        reply = yield from self._reply()
        if reply.code >= 400:
            raise _HopFailed(f"RSET: {reply.code} {_text(reply)}")

    def _reply(self) -> Op[s.Reply]:
        reply = yield from self.sess.reply()
        if reply.code == 421:
            raise _HopFailed(f"server said {reply.code} {_text(reply)}", "4.4.2")
        return reply

    def _command(self, event: s.SMTPEvent) -> Op[s.Reply]:
        yield Send(self.sess.conn.send(event), timeout=self.timeout)
        return (yield from self._reply())

    def _hello(self) -> Op[None]:
        """EHLO, and HELO when EHLO gets a 5xx (RFC 5321 4.1.1.1)."""
        reply = yield from self._command(s.Ehlo(domain=self.helo))
        if reply.code >= 500:
            reply = yield from self._command(s.Helo(domain=self.helo))
        if reply.code >= 400:
            raise _HopFailed(f"EHLO/HELO: {reply.code} {_text(reply)}", "4.4.2")

    def _secure(self) -> Op[None]:
        """STARTTLS per the hop's policy: "may" when offered, "encrypt" always."""
        sess, policy = self.sess, self.hop.tls
        if sess.tls is not None or policy == "none":
            return
        offered = "STARTTLS" in sess.extensions
        if offered and self.starttls:
            reply = yield from self._command(s.StartTLS())
            if reply.code == 220:
                try:
                    # Refuses bytes sent after the 220 (response injection, RFC 3207 5).
                    sess.conn.start_tls()
                    sess.tls = yield StartTLS(
                        self._context(), hostname=self.hop.host, timeout=self.timeout
                    )
                except (TLSFailed, ProtocolError) as exc:
                    why = f"TLS failed: {exc.reason if isinstance(exc, TLSFailed) else exc}"
                    if policy == "may":
                        raise _PlainRetry(why) from None
                    raise _HopFailed(why, "4.7.5") from None
                yield from self._hello()
                return
            if policy == "encrypt":
                raise _HopFailed(f"STARTTLS refused: {reply.code} {_text(reply)}", "4.7.4")
            return  # "may": go on in plaintext
        if policy == "encrypt":
            raise _HopFailed("TLS is required but STARTTLS is not offered", "4.7.4")

    def _login(self) -> Op[None]:
        """AUTH with the hop's credentials, never in plaintext except on loopback."""
        if self.hop.auth is None or not self.sess.extensions.auth_mechanisms:
            return  # not offered: send without, as Postfix does
        if self.sess.tls is None and not _loopback(self.address):
            raise _HopFailed("not sending credentials without TLS", "4.7.0")
        user, password = self.hop.auth
        try:
            yield from self.sess.login(user, password)
        except AuthenticationFailed as exc:
            raise _HopFailed(f"authentication failed: {exc.code} {exc.text}", "4.7.0") from None

    # -- one message

    def _settle(self, index: int, which: Sequence[int], code: int, text: str) -> None:
        message, out = self.messages[index], self.results[index]
        for i in which:
            out[i] = RecipientResult(
                address=message.recipients[i].address,
                code=code,
                text=text,
                remote_mta=self.hop.host,
            )

    def _settle_reply(self, index: int, which: Sequence[int], reply: s.Reply) -> None:
        self._settle(index, which, reply.code, _text(reply))

    def _transaction(self, index: int) -> Op[None]:
        """MAIL, RCPT, DATA or BDAT for the recipients of one message still unanswered."""
        message = self.messages[index]
        entry = message.entry
        todo = [i for i, r in enumerate(self.results[index]) if r is None]
        ext = self.sess.extensions
        host = self.hop.host
        addresses = [message.recipients[i].address for i in todo]
        utf8 = entry.smtputf8 or not (
            entry.sender.isascii() and all(a.isascii() for a in addresses)
        )
        if utf8 and "SMTPUTF8" not in ext:
            why = f"5.6.7 {host} does not offer SMTPUTF8, which this message needs"
            self._settle(index, todo, 553, why)
            return
        if entry.body == "BINARYMIME" and not ("BINARYMIME" in ext and "CHUNKING" in ext):
            why = f"5.6.3 {host} does not accept binary MIME, which this message is"
            self._settle(index, todo, 554, why)
            return
        limit = ext.max_size
        if limit and entry.size > limit:
            why = f"5.3.4 Message size {entry.size} exceeds the limit {limit} of {host}"
            self._settle(index, todo, 552, why)
            return
        if entry.sender and not s.is_valid_mailbox(entry.sender, utf8=utf8):
            self._settle(index, todo, 553, "5.1.7 Bad sender address syntax")
            return
        dsn = "DSN" in ext
        rcpts: list[tuple[int, s.RcptTo]] = []
        for i in todo:
            recipient = message.recipients[i]
            address = recipient.address
            if not (s.is_valid_mailbox(address, utf8=utf8) or address.lower() == "postmaster"):
                self._settle(index, [i], 553, "5.1.3 Bad recipient address syntax")
                continue
            rcpts.append((i, self._rcpt(message, i, dsn)))
        if not rcpts:
            return
        mail = _mail(entry, ext, utf8=utf8, dsn=dsn)
        try:
            body = yield Call(message.open)
        except OSError as exc:
            why = f"4.3.0 Cannot read the queued message: {exc}"
            self._settle(index, [i for i, _ in rcpts], 451, why)
            return
        try:
            yield from self._send(index, mail, rcpts, body)
        finally:
            body.close()

    def _send(
        self, index: int, mail: s.MailFrom, rcpts: list[tuple[int, s.RcptTo]], body: BinaryIO
    ) -> Op[None]:
        conn = self.sess.conn
        ext = self.sess.extensions
        chunking = "CHUNKING" in ext
        data_reply: s.Reply | None = None
        rcpt_replies: list[s.Reply] = []
        rset, self.rset_pending = self.rset_pending, True  # until the body is answered
        indices = [i for i, _ in rcpts]
        whole: bytes | None = None  # a body sent in the same group as MAIL and RCPT
        read: list[bytes] = []  # pieces of a larger body read already
        if "PIPELINING" in ext:
            # RSET may open a pipelined group (RFC 2920 3.1): one round trip fewer.
            commands: list[s.SMTPEvent] = [mail, *(event for _, event in rcpts)]
            if rset:
                commands.insert(0, s.Rset())
            if chunking:
                # A body of one chunk goes with the commands as BDAT LAST (RFC 3030
                # section 4.2 pipelines it so): the whole transaction in one round trip.
                # Refused recipients cost the server nothing but reading the chunk.
                whole = yield from self._read(index, indices, body)
                if whole:
                    following = yield from self._read(index, indices, body)
                    if following:  # larger: chunks after the replies, these two first
                        read = [whole, following]
                        whole = None
                if whole is not None:
                    commands += [s.Bdat(size=len(whole), last=True), s.MessageData(data=whole)]
            else:
                commands.append(s.Data())
            yield Send(b"".join([conn.send(c) for c in commands]), timeout=self.timeout)
            if rset:
                yield from self._rset_reply()
            mail_reply = yield from self._reply()
            for _ in rcpts:
                rcpt_replies.append((yield from self._reply()))
            if not chunking:
                data_reply = yield from self._reply()
        else:
            if rset:
                yield Send(conn.send(s.Rset()), timeout=self.timeout)
                yield from self._rset_reply()
            mail_reply = yield from self._command(mail)
            if mail_reply.code < 400:
                for _, event in rcpts:
                    rcpt_replies.append((yield from self._command(event)))
        accepted: list[int] = []
        if mail_reply.code < 400:
            for (i, _), reply in zip(rcpts, rcpt_replies, strict=True):
                if reply.code >= 400:
                    self._settle_reply(index, [i], reply)
                else:
                    accepted.append(i)
        if whole is not None:  # the BDAT's answer: one reply, or one per copy (LMTP)
            reply = yield from self._reply()
            if not accepted:  # a refusal of a transaction without recipients
                if mail_reply.code >= 400:
                    self._settle_reply(index, indices, mail_reply)
                return
            self.rset_pending = reply.code >= 400
            yield from self._final(index, accepted, reply)
            return
        if mail_reply.code >= 400:
            yield from self._end_empty(data_reply)
            self._settle_reply(index, indices, mail_reply)
            return
        if not accepted:
            yield from self._end_empty(data_reply)
            return
        if chunking:
            final = yield from self._bdat(index, accepted, body, read)
        else:
            if data_reply is None:
                data_reply = yield from self._command(s.Data())
            if data_reply.code != 354:
                self._settle_reply(index, accepted, data_reply)
                return
            final = yield from self._data(index, accepted, body)
        self.rset_pending = final.code >= 400  # a refused chunk: the server may wait on
        yield from self._final(index, accepted, final)

    def _rcpt(self, message: OutgoingMessage, i: int, dsn: bool) -> s.RcptTo:
        return _rcpt(message.recipients[i], dsn=dsn)

    def _final(self, index: int, accepted: list[int], reply: s.Reply) -> Op[None]:
        """The reply after the body is every accepted recipient's (SMTP)."""
        self._settle_reply(index, accepted, reply)
        return
        yield

    def _end_empty(self, data_reply: s.Reply | None) -> Op[None]:
        """A pipelined DATA the server took although nothing else was: end it empty."""
        if data_reply is not None and data_reply.code == 354:
            yield Send(self.sess.conn.send(s.EndOfMessage()), timeout=self.timeout)
            yield from self._reply()

    def _read(self, index: int, accepted: list[int], body: BinaryIO) -> Op[bytes]:
        """A piece of the body; a file that cannot be read drops the connection, so the
        server discards the unfinished transaction."""
        try:
            data: bytes = yield Call(body.read, (CHUNK,))
        except OSError as exc:
            self._settle(index, accepted, 451, f"4.3.0 Cannot read the queued message: {exc}")
            raise _HopFailed("local error reading a message; connection dropped", "4.3.0") from None
        return data

    def _data(self, index: int, accepted: list[int], body: BinaryIO) -> Op[s.Reply]:
        """The body after a 354, dot-stuffed by the core, then the end of data."""
        conn = self.sess.conn
        while True:
            piece = yield from self._read(index, accepted, body)
            if not piece:
                break
            yield Send(conn.send(s.MessageData(data=piece)), timeout=self.timeout)
        yield Send(conn.send(s.EndOfMessage()), timeout=self.timeout)
        return (yield from self._reply())

    def _bdat(
        self, index: int, accepted: list[int], body: BinaryIO, read: list[bytes]
    ) -> Op[s.Reply]:
        """The body in BDAT chunks (RFC 3030), after the pieces ``read`` already; a
        refused chunk ends the message."""
        conn = self.sess.conn
        piece = read.pop(0) if read else (yield from self._read(index, accepted, body))
        while True:
            if read:
                following = read.pop(0)
            else:
                following = (yield from self._read(index, accepted, body)) if piece else b""
            last = not following
            out = conn.send(s.Bdat(size=len(piece), last=last))
            out += conn.send(s.MessageData(data=piece))
            yield Send(out, timeout=self.timeout)
            reply = yield from self._reply()
            if last or reply.code >= 400:
                return reply
            piece = following


def _mail(entry: QueueEntry, ext: s.Extensions, *, utf8: bool, dsn: bool) -> s.MailFrom:
    """MAIL FROM with what the server offers: SIZE, BODY, SMTPUTF8, RET and ENVID.

    An 8-bit body goes to a server without 8BITMIME unchanged (no BODY parameter), as
    Postfix does when it does not convert: nearly every server takes it.
    """
    body: s.BodyType | None = None
    if entry.body == "BINARYMIME":
        body = "BINARYMIME"
    elif entry.body == "8BITMIME" and "8BITMIME" in ext:
        body = "8BITMIME"
    ret: Literal["FULL", "HDRS"] | None = None
    if dsn and entry.ret in ("FULL", "HDRS"):
        ret = "FULL" if entry.ret == "FULL" else "HDRS"
    fields = {
        "sender": entry.sender,
        "size": entry.size if "SIZE" in ext else None,
        "body": body,
        "smtputf8": utf8,
        "ret": ret,
    }
    if dsn and entry.envid:
        try:
            return s.MailFrom(envid=entry.envid, **fields)  # type: ignore[arg-type]
        except ProtocolError:
            pass  # an ENVID we cannot pass on is dropped, not the message
    return s.MailFrom(**fields)  # type: ignore[arg-type]


def _rcpt(recipient: QueuedRecipient, *, dsn: bool) -> s.RcptTo:
    """RCPT TO, with NOTIFY and ORCPT when the server offers DSN (RFC 3461 4.1, 4.2)."""
    if not dsn:
        return s.RcptTo(recipient=recipient.address)
    notify = recipient.notify
    valid = {"SUCCESS", "FAILURE", "DELAY"}
    notify_set = frozenset(n for n in notify if n in valid) if notify is not None else None
    orcpt: tuple[str, str] | None = None
    if recipient.orcpt:
        kind, sep, value = recipient.orcpt.partition(";")
        if sep:
            try:
                orcpt = (kind.strip(), s.xtext_decode(value.strip()))
            except ValueError:
                orcpt = None
    for candidate in (orcpt, None):
        try:
            return s.RcptTo(
                recipient=recipient.address,
                notify=notify_set,  # type: ignore[arg-type]
                orcpt=candidate,
            )
        except ProtocolError:
            continue
    return s.RcptTo(recipient=recipient.address)


class _LMTPAttempt(_Attempt):
    """The same transaction over LMTP (RFC 2033): LHLO, no TLS or AUTH (a local hop),
    the copy's ``XDELIVERYID`` when the server offers it, and after the body one reply
    per accepted recipient, each for its own copy (section 4.2)."""

    def _new_session(self) -> SMTPClientSession:
        return SMTPClientSession(
            host=self.hop.host, local_hostname=self.helo, timeout=self.timeout, lmtp=True
        )

    def _hello(self) -> Op[None]:
        reply = yield from self._command(s.Lhlo(domain=self.helo))
        if reply.code >= 400:
            raise _HopFailed(f"LHLO: {reply.code} {_text(reply)}", "4.4.2")

    def _secure(self) -> Op[None]:
        return
        yield

    def _login(self) -> Op[None]:
        return
        yield

    def _rcpt(self, message: OutgoingMessage, i: int, dsn: bool) -> s.RcptTo:
        event = _rcpt(message.recipients[i], dsn=dsn)
        if message.delivery_ids and "XDELIVERYID" in self.sess.extensions:
            extra: list[tuple[str, str | None]] = [("XDELIVERYID", message.delivery_ids[i])]
            if message.redelivery:
                extra.append(("XREDELIVERY", None))
            event = attrs.evolve(event, extra=extra)
        return event

    def _final(self, index: int, accepted: list[int], reply: s.Reply) -> Op[None]:
        self._settle_reply(index, accepted[:1], reply)
        for i in accepted[1:]:
            self._settle_reply(index, [i], (yield from self._reply()))
