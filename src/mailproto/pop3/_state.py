"""The POP3 session state, shared by both roles (RFC 1939 section 3).

As in the SMTP core, this module does not know which side we are: a server applies a
(command, response) pair when it sends the response, a client when it receives it.

    CONNECTED --+OK greeting--> AUTHORIZATION --+OK to PASS/APOP/AUTH--> TRANSACTION
                                 |  ^ STLS +OK, then start_tls()          |
                                 v  |                                     | QUIT
                               TLS_PENDING                       UPDATE (reply due)
    QUIT in AUTHORIZATION and the reply to QUIT in UPDATE lead to CLOSED.
"""

from __future__ import annotations

import attrs

from .._util import Sentinel
from ._events import (
    Apop,
    Auth,
    AuthCancel,
    AuthResponse,
    Capa,
    Dele,
    Err,
    List,
    Noop,
    Ok,
    Pass,
    POP3Event,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)
from ._syntax import Rejection

__all__ = [
    "AUTHORIZATION",
    "CLOSED",
    "CONNECTED",
    "ERROR",
    "TLS_PENDING",
    "TRANSACTION",
    "UPDATE",
    "Session",
    "is_multiline",
]


class CONNECTED(Sentinel, metaclass=Sentinel):
    """Waiting for the server's greeting."""


class AUTHORIZATION(Sentinel, metaclass=Sentinel):
    """The client must identify itself."""


class TRANSACTION(Sentinel, metaclass=Sentinel):
    """The maildrop is open."""


class UPDATE(Sentinel, metaclass=Sentinel):
    """QUIT in TRANSACTION: the server removes deleted messages, then replies."""


class TLS_PENDING(Sentinel, metaclass=Sentinel):
    """STLS got +OK: the TLS handshake comes next."""


class CLOSED(Sentinel, metaclass=Sentinel):
    """The session is over."""


class ERROR(Sentinel, metaclass=Sentinel):
    """The protocol was broken; only a closing -ERR may still be sent."""


_AUTHORIZATION_COMMANDS = (User, Pass, Apop, Auth, Capa, Stls, Quit, Utf8)
_TRANSACTION_COMMANDS = (Stat, List, Retr, Dele, Noop, Rset, Top, Uidl, Quit, Capa)
_LOGIN = (Pass, Apop, Auth, AuthResponse)


def is_multiline(command: POP3Event) -> bool:
    """True if a +OK to ``command`` carries a multi-line body."""
    if isinstance(command, List | Uidl):
        return command.msg is None
    if isinstance(command, Auth):
        return command.mechanism is None
    return isinstance(command, Retr | Top | Capa)


@attrs.define(slots=True)
class Session:
    """Everything a (command, response) pair can change, and the rules for changing it."""

    tls: bool = False
    state: type[Sentinel] = CONNECTED
    user_accepted: bool = False  # USER got +OK: PASS may follow
    in_auth: bool = False  # a "+ " challenge was sent: the next line is a SASL answer
    utf8: bool = False
    message_count: int | None = None  # known to a server from open_maildrop()
    deleted: set[int] = attrs.field(factory=set)

    def copy(self) -> Session:
        return attrs.evolve(self, deleted=set(self.deleted))

    def check(self, command: POP3Event) -> None:
        """Raise `Rejection` if ``command`` may not be sent now."""
        state = self.state
        if state is AUTHORIZATION:
            if not isinstance(command, _AUTHORIZATION_COMMANDS):
                raise Rejection("Not authenticated")
            if isinstance(command, Pass) and not self.user_accepted:
                raise Rejection("Send USER first")
            if isinstance(command, Stls) and self.tls:
                raise Rejection("TLS is already active")
            if isinstance(command, Utf8) and self.utf8:
                raise Rejection("UTF8 is already enabled")
            return
        # Neither role asks in another state: a server reads no command before its
        # greeting, during TLS_PENDING or once CLOSED, and a client sends none then (nor
        # pipelines after STLS or QUIT, which lead there).
        assert state is TRANSACTION, state
        if not isinstance(command, _TRANSACTION_COMMANDS):
            raise Rejection("Command not valid in TRANSACTION state")
        msg = getattr(command, "msg", None)
        if msg is not None:
            if self.message_count is not None and msg > self.message_count:
                raise Rejection(f"No such message: {msg}")
            if msg in self.deleted:
                raise Rejection(f"Message {msg} already deleted")

    def apply(self, command: POP3Event | None, response: Ok | Err) -> None:
        """Update the session for ``response`` answering ``command`` (None: greeting)."""
        ok = isinstance(response, Ok)
        # RFC 1939 section 7: PASS only "immediately after a successful USER command".
        self.user_accepted = ok and isinstance(command, User)
        if command is None:
            self.state = AUTHORIZATION if ok else CLOSED
        elif isinstance(command, (*_LOGIN, AuthCancel)):
            self.in_auth = False
            if ok and not (isinstance(command, Auth) and command.mechanism is None):
                self.state = TRANSACTION  # a bare AUTH only lists mechanisms
        elif isinstance(command, Dele):
            if ok:
                self.deleted.add(command.msg)
        elif isinstance(command, Rset):
            if ok:
                self.deleted.clear()
        elif isinstance(command, Quit):
            self.state = CLOSED
        elif isinstance(command, Stls):
            if ok:
                self.state = TLS_PENDING
        elif isinstance(command, Utf8):
            if ok:
                self.utf8 = True

    def tls_started(self) -> None:
        """RFC 2595 section 4: back to AUTHORIZATION, forget what was learnt before
        (the server "MUST discard any knowledge obtained from the client"), UTF8 mode
        included."""
        self.state = AUTHORIZATION
        self.tls = True
        self.user_accepted = False
        self.in_auth = False
        self.utf8 = False
