"""The SMTP session state, shared by both roles.

Rule one of h11's state module holds here too: this module does not know which role we
play. A server applies a (command, reply) pair when it *sends* the reply; a client applies
the same pair when it *receives* it; both end in the same state. What a command may do in
each state (`check`) and what a reply does (`apply`) are written once, below.

States, in the order a session walks them::

    CONNECTED --220--> GREETED --EHLO/HELO/LHLO 250--> READY --MAIL 250--> MAIL
      |554             ^  (STARTTLS done)                ^      --RCPT 250--> RCPT
      v                |                                 |          --DATA 354--> DATA
    REFUSED      TLS_PENDING <--STARTTLS 220-- READY     '--final reply-- (body end)

CLOSED follows 221 and any 421. A BDAT transaction stays in RCPT with ``bdat`` set.
"""

from __future__ import annotations

import attrs

from .._util import Sentinel
from ._events import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EndOfMessage,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
)
from ._syntax import Extensions, Rejection

__all__ = [
    "CLOSED",
    "CONNECTED",
    "DATA",
    "ERROR",
    "GREETED",
    "MAIL",
    "RCPT",
    "READY",
    "REFUSED",
    "TLS_PENDING",
    "Session",
]


class CONNECTED(Sentinel, metaclass=Sentinel):
    """Waiting for the server's greeting."""


class REFUSED(Sentinel, metaclass=Sentinel):
    """The greeting was 554: only QUIT is useful now (RFC 5321 section 3.1)."""


class GREETED(Sentinel, metaclass=Sentinel):
    """Greeted (or TLS just started); no EHLO/HELO/LHLO accepted yet."""


class READY(Sentinel, metaclass=Sentinel):
    """Hello done, no mail transaction."""


class MAIL(Sentinel, metaclass=Sentinel):
    """MAIL accepted, no recipient accepted yet."""


class RCPT(Sentinel, metaclass=Sentinel):
    """At least one recipient accepted: DATA or BDAT may follow."""


class DATA(Sentinel, metaclass=Sentinel):
    """DATA got 354: the body is on its way."""


class TLS_PENDING(Sentinel, metaclass=Sentinel):
    """STARTTLS got 220: the TLS handshake comes next, nothing else."""


class CLOSED(Sentinel, metaclass=Sentinel):
    """QUIT got 221, a 421 was sent, or the connection is gone."""


class ERROR(Sentinel, metaclass=Sentinel):
    """The protocol was broken; only a closing 421/554 reply may still be sent."""


# The success codes each command may get. Any 4xx/5xx is always a possible answer.
SUCCESS_CODES: dict[type[SMTPEvent] | None, frozenset[int]] = {
    None: frozenset({220}),  # the greeting
    Ehlo: frozenset({250}),
    Helo: frozenset({250}),
    Lhlo: frozenset({250}),
    MailFrom: frozenset({250}),
    RcptTo: frozenset({250, 251}),
    Data: frozenset({354}),
    EndOfMessage: frozenset({250}),
    Bdat: frozenset({250}),
    Rset: frozenset({250}),
    Noop: frozenset({250}),
    Help: frozenset({211, 214}),
    Vrfy: frozenset({250, 251, 252}),
    Expn: frozenset({250, 252}),
    Quit: frozenset({221}),
    StartTLS: frozenset({220}),
    Auth: frozenset({235, 334}),
    AuthResponse: frozenset({235, 334}),
    AuthCancel: frozenset(),
}

# Commands that need a hello first (RFC 5321 section 4.1.4: NOOP, HELP, EXPN, VRFY and
# RSET may come at any time).
_NEED_HELLO = (MailFrom, RcptTo, Data, Bdat, StartTLS, Auth)


def _bad_sequence(text: str) -> Rejection:
    return Rejection(503, "5.5.1", text)


@attrs.define(slots=True)
class Session:
    """Everything a (command, reply) pair can change, and the rules for changing it."""

    lmtp: bool = False
    tls: bool = False
    state: type[Sentinel] = CONNECTED
    extensions: Extensions | None = None  # from the EHLO/LHLO reply; None after HELO
    authenticated: bool = False
    in_auth: bool = False  # a 334 was sent: the next line is a SASL response
    # The transaction.
    utf8: bool = False
    binarymime: bool = False
    bdat: bool = False  # a BDAT chunk was accepted in this transaction
    accepted: int = 0  # recipients accepted
    refused: int = 0  # recipients refused
    size: int = 0  # body octets accepted so far (BDAT)

    def copy(self) -> Session:
        return attrs.evolve(self)

    def _reset_transaction(self) -> None:
        self.utf8 = self.binarymime = self.bdat = False
        self.accepted = self.refused = self.size = 0

    def check(self, command: SMTPEvent, *, max_recipients: int | None = None) -> None:
        """Raise `Rejection` if ``command`` may not be sent in this state."""
        state = self.state
        if state is REFUSED and not isinstance(command, Quit):
            raise _bad_sequence("Service refused; send QUIT")
        if self.lmtp and isinstance(command, (Ehlo, Helo)):
            raise Rejection(500, "5.5.1", "This is LMTP: use LHLO")
        if isinstance(command, Lhlo) and not self.lmtp:
            raise Rejection(500, "5.5.2", "Syntax error, command unrecognized")
        if state is GREETED and isinstance(command, _NEED_HELLO):
            raise _bad_sequence("Send EHLO first" if not self.lmtp else "Send LHLO first")
        ext = self.extensions
        if isinstance(command, MailFrom):
            if state is not READY:
                raise _bad_sequence("Sender already specified")
        elif isinstance(command, RcptTo):
            if state is READY:
                raise _bad_sequence("Need MAIL command")
            if self.bdat:
                raise _bad_sequence("RCPT after BDAT")
            if max_recipients is not None and self.accepted >= max_recipients:
                raise Rejection(452, "4.5.3", "Too many recipients")
        elif isinstance(command, Data):
            self._check_body_start("DATA")
            if self.bdat:
                raise _bad_sequence("DATA after BDAT")
            if self.binarymime:
                raise _bad_sequence("BODY=BINARYMIME requires BDAT")
        elif isinstance(command, Bdat):
            if ext is None or "CHUNKING" not in ext:
                raise Rejection(502, "5.5.1", "CHUNKING not offered")
            self._check_body_start("BDAT")
        elif isinstance(command, StartTLS):
            if ext is None or "STARTTLS" not in ext:
                raise Rejection(502, "5.5.1", "STARTTLS not offered")
            if self.tls:
                raise _bad_sequence("TLS already active")
            if state is not READY:
                raise _bad_sequence("STARTTLS not allowed during a transaction")
        elif isinstance(command, Auth):
            if ext is None or "AUTH" not in ext:
                raise Rejection(502, "5.5.1", "AUTH not offered")
            if self.authenticated:
                raise _bad_sequence("Already authenticated")
            if state is not READY:
                raise _bad_sequence("AUTH not allowed during a transaction")

    def _check_body_start(self, verb: str) -> None:
        if self.state is READY:
            raise _bad_sequence("Need MAIL command")
        if self.state is MAIL:
            if self.refused:
                raise Rejection(554, "5.5.1", "No valid recipients")
            raise _bad_sequence("Need RCPT command")

    def apply(self, command: SMTPEvent | None, reply: Reply) -> None:
        """Update the session for ``reply`` answering ``command`` (None: the greeting)."""
        code = reply.code
        if code == 421:
            self.state = CLOSED
            return
        ok = code < 400
        # The commands of a mail transaction first: they are the ones a busy client or
        # server applies most (the branches test disjoint classes; order is only speed).
        if isinstance(command, RcptTo):
            if ok:
                self.state = RCPT
                self.accepted += 1
            else:
                self.refused += 1
        elif isinstance(command, MailFrom):
            if ok:
                self.state = MAIL
                self.utf8 = command.smtputf8
                self.binarymime = command.body == "BINARYMIME"
        elif isinstance(command, Data):
            if ok:
                self.state = DATA
        elif isinstance(command, EndOfMessage):
            self._end_transaction()
        elif command is None:
            self.state = GREETED if ok else REFUSED
        elif isinstance(command, (Ehlo, Lhlo, Helo)):
            if ok:
                self.state = READY
                self.extensions = (
                    None if isinstance(command, Helo) else Extensions.from_reply(reply)
                )
                self._reset_transaction()
        elif isinstance(command, Bdat):
            if ok and not command.last:
                self.bdat = True
                self.size += command.size
            else:
                self._end_transaction()
        elif isinstance(command, Rset):
            if ok:
                self._reset_transaction()
                if self.state is not GREETED:
                    self.state = READY
        elif isinstance(command, Quit):
            if ok:
                self.state = CLOSED
        elif isinstance(command, StartTLS):
            if ok:
                self.state = TLS_PENDING
        elif isinstance(command, (Auth, AuthResponse, AuthCancel)):
            self.in_auth = code == 334
            if code == 235:
                self.authenticated = True

    def _end_transaction(self) -> None:
        self._reset_transaction()
        self.state = READY

    def tls_started(self) -> None:
        """RFC 3207 section 4.2: forget everything learned before TLS; EHLO again."""
        self.state = GREETED
        self.tls = True
        self.extensions = None
        self.authenticated = False
        self.in_auth = False
        self._reset_transaction()
