"""IMAP connection events: what is neither a command nor a response.

Commands (`mailproto.imap.commands`) and responses (`mailproto.imap.responses`) are
events themselves; these are the rest: a command the server refused before the
application saw it, the lines of an AUTHENTICATE exchange, an APPEND's message streamed
in pieces, the start of IDLE seen by a client, and the end of the connection.
"""

from __future__ import annotations

import datetime

import attrs

from .._util import Event, LocalProtocolError
from . import _responses as r

__all__ = [
    "AppendData",
    "AppendEnded",
    "AppendReady",
    "AppendStarted",
    "AuthChallenge",
    "AuthenticateCancel",
    "AuthenticateResponse",
    "CommandRejected",
    "ConnectionClosed",
    "FetchLiteralData",
    "FetchLiteralStarted",
    "IdleStarted",
]


def _bytes(instance: object, attribute: attrs.Attribute[bytes], value: object) -> None:
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"{attribute.name} must be bytes: {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class CommandRejected(Event):
    """The server refused a command by itself: ``response`` is what it must send.

    A tagged BAD for a command it could not parse (or not in this state, or with a tag
    already in use), an untagged BAD when not even a tag was found, a tagged NO [LIMIT]
    for a refused literal, NO [PRIVACYREQUIRED] for a login without TLS. ``tag`` is the
    refused command's tag when known.
    """

    tag: str | None
    response: r.Tagged | r.Untagged

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.response, (r.Tagged, r.Untagged)):
            raise LocalProtocolError(f"not a status response: {self.response!r}")
        if isinstance(self.response, r.Tagged) and self.response.tag != self.tag:
            raise LocalProtocolError("a tagged rejection carries the command's tag")


@attrs.frozen(slots=True, kw_only=True)
class AuthenticateResponse(Event):
    """A client line answering a SASL challenge during AUTHENTICATE (decoded base64)."""

    data: bytes = attrs.field(validator=_bytes)


@attrs.frozen(slots=True, kw_only=True)
class AuthenticateCancel(Event):
    """The client's "*" line: it gives up the AUTHENTICATE exchange (RFC 9051 6.2.2)."""


@attrs.frozen(slots=True, kw_only=True)
class AuthChallenge(Event):
    """A SASL challenge: the server sends it as ``+ base64``; the client receives it."""

    data: bytes = attrs.field(validator=_bytes)


@attrs.frozen(slots=True, kw_only=True)
class AppendStarted(Event):
    """An APPEND command up to its message literal; the message follows as AppendData.

    ``size`` is the announced literal size, ``binary`` whether it is a literal8
    (RFC 3516). After `AppendEnded` the server owes the tagged reply. A server receives
    these events; a client sends them to stream a message it does not hold whole.
    """

    tag: str
    mailbox: str
    flags: tuple[str, ...] | None = None
    date: datetime.datetime | None = None
    size: int
    binary: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 0:
            raise LocalProtocolError(f"not a literal size: {self.size!r}")


@attrs.frozen(slots=True, kw_only=True)
class AppendData(Event):
    """A piece of an APPEND's message, in order; the pieces are the literal exactly."""

    data: bytes = attrs.field(validator=_bytes)


@attrs.frozen(slots=True, kw_only=True)
class AppendEnded(Event):
    """The APPEND's message and its command line are complete."""


@attrs.frozen(slots=True, kw_only=True)
class AppendReady(Event):
    """The server's "+" for a streamed APPEND: the client may send its `AppendData`."""


@attrs.frozen(slots=True, kw_only=True)
class FetchLiteralStarted(Event):
    """A FETCH response's literal that the client streams instead of holding it whole.

    ``seq`` is the message's sequence number, ``item`` the attribute as the server
    wrote it (``b"BODY[1.2]"``, ``b"BINARY[1]<0>"``, ``b"RFC822"``), ``size`` the
    literal's size. Its octets follow as `FetchLiteralData` events; then the `Fetch`
    response itself, in which the streamed attribute's data is empty.
    """

    seq: int
    item: bytes = attrs.field(validator=_bytes)
    size: int

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 0:
            raise LocalProtocolError(f"not a literal size: {self.size!r}")


@attrs.frozen(slots=True, kw_only=True)
class FetchLiteralData(Event):
    """A piece of a streamed FETCH literal, in order; the pieces are the literal exactly."""

    data: bytes = attrs.field(validator=_bytes)


@attrs.frozen(slots=True, kw_only=True)
class IdleStarted(Event):
    """The client received the "+" answering its IDLE: the server is idling."""


@attrs.frozen(slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The peer closed the connection (or the session ended with LOGOUT)."""
