"""The LMTP delivery session (RFC 2033): the MTA hands a message to the MDA's store.

Written once as a flow of effects (`_effects`), run by every flavour's ``serve()``.
The sans-I/O `mailproto.smtp.ServerConnection(lmtp=True)` checks the protocol; this
module decides the answers:

- A recipient ``local@domain`` is the user ``local@domain`` when the users file has that
  full address, else the user ``local`` (any domain: the MTA decided the domain is ours).
  No such user: ``550 5.1.1``. Over quota: ``452 4.2.2``, or ``552 5.2.2`` when the
  message alone (its SIZE=) is larger than the quota.
- The body is spooled to a temporary file (`SpooledTemporaryFile`, in memory only up to
  1 MiB), never held whole. After the end of data each accepted recipient gets its own
  reply, in RCPT order, only once its copy is on disk (the store fsyncs before
  returning), each copy starting with ``Return-Path: <sender>`` and
  ``Delivered-To: <recipient>``.
- Exactly once, with our MTA: LHLO offers ``XDELIVERYID``, an extension of ours. A
  ``RCPT TO:<a> XDELIVERYID=<id>`` names that recipient's copy (stored in its Maildir
  name by the same rename that stores it); with ``XREDELIVERY`` too, a copy already
  stored under that id is not stored again (250, the first copy's UID logged). So a
  crash between our fsync and the MTA's record of our 250 never duplicates a message.
- A session idle for ``MDA.lmtp_idle_timeout`` seconds (5 min) gets ``421 4.4.2``.
"""

from __future__ import annotations

import io
import logging
import tempfile
from typing import IO, TYPE_CHECKING, BinaryIO, cast

import attrs

from mailproto import NEED_DATA, RemoteProtocolError, smtp

from .._calls import blocking_call
from .._effects import Op, Receive, Send, TransportInfo
from .._transport import TransportTimeout
from .store import DELIVERY_ID, QuotaExceeded, UserStore
from .users import User

if TYPE_CHECKING:
    from .service import MDA

__all__ = ["lmtp_flow", "resolve_recipient"]

log = logging.getLogger("mailproto.lmtp")

SPOOL_IN_MEMORY = 1024 * 1024  # bytes of a body kept in memory before it goes to disk


def _reply(code: int, enhanced: str | None, text: str) -> smtp.Reply:
    return smtp.Reply(code=code, lines=(text,), enhanced=enhanced)


class _Prefixed(io.RawIOBase):
    """A header block followed by the spooled body, read as one stream, never joined."""

    def __init__(self, prefix: bytes, body: IO[bytes]) -> None:
        self._prefix = memoryview(prefix)
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(out), len(self._prefix))
            out[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._body.read(len(out))
        out[: len(data)] = data
        return len(data)


@attrs.define
class _Recipient:
    address: str  # as the client gave it
    user: str  # canonical user name
    store: UserStore  # found at RCPT time, used again for the delivery
    delivery_id: str | None = None  # XDELIVERYID: names this copy in the store
    redelivery: bool = False  # XREDELIVERY: the copy may be stored already


def resolve_recipient(mda: MDA, address: str) -> str | None:
    """The user an address delivers to: the full address if it is a user, else the local
    part (whatever the domain); None for an unknown or disabled user."""
    user = _recipient_user(mda, address)
    return user.name if user is not None else None


def _recipient_user(mda: MDA, address: str) -> User | None:
    local, _domain = smtp.split_address(address)
    user = mda.users.find(address, local)
    return user if user is not None and user.enabled else None


def check_recipient(
    mda: MDA, address: str, size: int | None
) -> tuple[_Recipient | None, smtp.Reply]:
    """RCPT: the recipient (its user and store) and a 250, or None and the refusal
    (unknown user, over quota)."""
    user = _recipient_user(mda, address)
    if user is None:
        return None, _reply(550, "5.1.1", "No such user here")
    store = mda.user_store(user.name, record=user)
    accepted = _Recipient(address, user.name, store)
    if store.quota_limit() is None:  # no quota: no need to add up the mailboxes
        return accepted, _reply(250, "2.1.5", "Recipient ok")
    usage = store.quota_usage()
    if usage.limit is not None:
        if size is not None and size > usage.limit:
            return None, _reply(552, "5.2.2", "Message larger than the mailbox quota")
        if usage.used >= usage.limit or usage.used + (size or 0) > usage.limit:
            return None, _reply(452, "4.2.2", "Mailbox full")
    return accepted, _reply(250, "2.1.5", "Recipient ok")


def deliver(mda: MDA, sender: str, rcpt: _Recipient, body: IO[bytes], size: int) -> smtp.Reply:
    """Store one recipient's copy (durably, fsynced) and return its reply."""
    prefix = b"Return-Path: <%s>\r\nDelivered-To: %s\r\n" % (
        sender.encode("utf-8", "surrogateescape"),
        rcpt.address.encode("utf-8", "surrogateescape"),
    )
    body.seek(0)
    try:
        stream = io.BufferedReader(_Prefixed(prefix, body), 65536)
        uid = rcpt.store.deliver(
            cast(BinaryIO, stream), delivery_id=rcpt.delivery_id, redelivery=rcpt.redelivery
        )
    except QuotaExceeded as exc:
        if exc.limit < size + len(prefix):
            return _reply(552, "5.2.2", "Message larger than the mailbox quota")
        return _reply(452, "4.2.2", "Mailbox full")
    except Exception:
        log.exception("delivery to %r failed", rcpt.user)
        return _reply(451, "4.3.0", "Temporary failure storing the message")
    log.info("delivered to %r uid=%d size=%d", rcpt.user, uid, size + len(prefix))
    return _reply(250, "2.0.0", "Delivered")


def lmtp_flow(mda: MDA, info: TransportInfo) -> Op[None]:
    """One LMTP connection, from the greeting to QUIT (or timeout, or the peer leaving)."""
    config = smtp.ServerConfig(
        max_message_size=mda.max_message_size,
        extra_rcpt_parameters=frozenset({"XDELIVERYID", "XREDELIVERY"}),
    )
    conn = smtp.ServerConnection(config, lmtp=True)
    out = bytearray(conn.send(_reply(220, None, f"{mda.hostname} LMTP ready")))
    sender = ""
    size: int | None = None
    recipients: list[_Recipient] = []
    spool: IO[bytes] | None = None
    spooled = 0

    def reset() -> None:
        nonlocal sender, size, spool, spooled
        sender, size, spooled = "", None, 0
        recipients.clear()
        if spool is not None:
            spool.close()
            spool = None

    try:
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:  # the client broke LMTP: say why, close
                if isinstance(exc.reply_hint, smtp.Reply):
                    out += conn.send(exc.reply_hint)
                break
            if event is NEED_DATA:
                if out:
                    yield Send(bytes(out), timeout=mda.lmtp_idle_timeout)
                    out.clear()
                try:
                    data = yield Receive(timeout=mda.lmtp_idle_timeout)
                except TransportTimeout:
                    out += conn.send(_reply(421, "4.4.2", "Idle for too long, closing"))
                    break
                conn.receive_data(data)
                continue
            match event:
                case smtp.CommandRejected(reply=reply):
                    out += conn.send(reply)
                case smtp.Lhlo():
                    reset()
                    lines = [
                        mda.hostname,
                        "PIPELINING",
                        "ENHANCEDSTATUSCODES",
                        "8BITMIME",
                        f"SIZE {mda.max_message_size}",
                        "CHUNKING",
                        "SMTPUTF8",
                        "XDELIVERYID",
                    ]
                    out += conn.send(smtp.Reply(code=250, lines=tuple(lines)))
                case smtp.MailFrom(sender=address, size=declared):
                    reset()
                    sender, size = address, declared
                    out += conn.send(_reply(250, "2.1.0", "Sender ok"))
                case smtp.RcptTo(recipient=address, extra=extra):
                    params = dict(extra)
                    delivery_id = params.get("XDELIVERYID")
                    if delivery_id is not None and not DELIVERY_ID.fullmatch(delivery_id):
                        out += conn.send(_reply(501, "5.5.4", "Invalid XDELIVERYID"))
                        continue
                    accepted, reply = yield blocking_call(check_recipient, mda, address, size)
                    if accepted is not None:
                        accepted.delivery_id = delivery_id
                        accepted.redelivery = "XREDELIVERY" in params
                        recipients.append(accepted)
                    out += conn.send(reply)
                case smtp.Data():
                    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115
                    spooled = 0
                    out += conn.send(_reply(354, None, "Start mail input; end with <CRLF>.<CRLF>"))
                case smtp.Bdat():
                    if spool is None:
                        spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115
                        spooled = 0
                case smtp.MessageData(data=data):
                    if spool is not None:
                        spool.write(data)
                        spooled += len(data)
                case smtp.EndOfChunk():
                    out += conn.send(_reply(250, "2.0.0", f"{spooled} octets received"))
                case smtp.EndOfMessage():
                    assert spool is not None  # the core saw DATA or BDAT first
                    for rcpt in list(recipients):
                        reply = yield blocking_call(deliver, mda, sender, rcpt, spool, spooled)
                        # This copy is on disk: say so now (with the replies pipelined
                        # before it, in one write).
                        out += conn.send(reply)
                        yield Send(bytes(out), timeout=mda.lmtp_idle_timeout)
                        out.clear()
                    reset()
                case smtp.MessageRejected(reply=reply):
                    for _ in range(max(len(recipients), 1)):
                        out += conn.send(reply)
                    reset()
                case smtp.Rset():
                    reset()
                    out += conn.send(_reply(250, "2.0.0", "Reset"))
                case smtp.Noop():
                    out += conn.send(_reply(250, "2.0.0", "OK"))
                case smtp.Vrfy():
                    out += conn.send(_reply(252, "2.5.0", "Cannot VRFY, send some mail"))
                case smtp.Expn() | smtp.Ehlo() | smtp.Helo():
                    out += conn.send(_reply(502, "5.5.1", "Command not implemented"))
                case smtp.Help():
                    out += conn.send(_reply(214, "2.0.0", "See RFC 2033"))
                case smtp.Quit():
                    out += conn.send(_reply(221, "2.0.0", f"{mda.hostname} closing"))
                    break
                case smtp.ConnectionClosed():
                    break
                case _:  # STARTTLS, AUTH: not offered, so the core refused them already
                    out += conn.send(_reply(502, "5.5.1", "Command not implemented"))
        if out:
            yield Send(bytes(out), timeout=mda.lmtp_idle_timeout)
    finally:
        reset()
