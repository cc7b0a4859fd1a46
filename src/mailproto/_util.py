"""Pieces every protocol of the core shares: sentinels, the error hierarchy, events.

Errors are split by who broke the protocol, as in h11. Inside the core everything raises
`LocalProtocolError`; a connection's ``next_event()`` is the one place that turns it into
`RemoteProtocolError`, because there the bad bytes came from the peer. Both carry a
``reply_hint``: the event a server should send before it closes (SMTP 421, IMAP BYE...).
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "Event",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Sentinel",
]


class Sentinel(type):
    """Metaclass for sentinel values: ``type(X) is X``, so they dispatch like events."""

    def __new__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwds: Any
    ) -> Sentinel:
        assert bases == (Sentinel,)
        v = super().__new__(cls, name, bases, namespace, **kwds)
        v.__class__ = v  # type: ignore[assignment]
        return v

    def __repr__(self) -> str:
        return self.__name__


class NEED_DATA(Sentinel, metaclass=Sentinel):
    """``next_event()`` needs more bytes from the peer before it can say anything."""


class PAUSED(Sentinel, metaclass=Sentinel):
    """``next_event()`` waits for us: we owe the peer a reply (or a TLS handshake)."""


class Event:
    """Base of every event of every protocol. Events are immutable attrs classes."""

    __slots__ = ()


class ProtocolError(Exception):
    """Somebody broke the protocol. Abstract: raise one of the two subclasses.

    ``reply_hint`` is the event a server should send to the peer before closing, when
    there is one (for SMTP a ``Reply`` with code 421 or 554, for IMAP a ``BYE``).
    """

    def __init__(self, msg: str, reply_hint: Event | None = None) -> None:
        if type(self) is ProtocolError:
            raise TypeError("tried to directly instantiate ProtocolError")
        Exception.__init__(self, msg)
        self.reply_hint = reply_hint

    def _reraise_as_remote_protocol_error(self) -> NoReturn:
        # Re-class in place so the traceback still points where the problem was found.
        self.__class__ = RemoteProtocolError
        raise self


class LocalProtocolError(ProtocolError):
    """We (the caller of the API) tried to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow; the session cannot go on."""
