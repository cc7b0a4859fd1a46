"""The skeleton every connection of the core shares: receiving bytes, pulling events.

``receive_data`` only buffers; ``next_event`` parses. Inside a connection everything
raises `LocalProtocolError`; ``next_event`` is the one place where an error raised while
reading the peer's bytes is re-classed as `RemoteProtocolError` (the peer's fault), and
from then on the connection refuses to parse anything more.
"""

from __future__ import annotations

import abc
from typing import Generic, TypeVar

from ._buffer import ReceiveBuffer
from ._util import NEED_DATA, PAUSED, Event, LocalProtocolError, ProtocolError

__all__ = ["ConnectionBase"]

E = TypeVar("E", bound=Event)


class ConnectionBase(abc.ABC, Generic[E]):
    """``receive_data`` / ``next_event`` for a connection whose events are ``E``."""

    def __init__(self) -> None:
        self._buf = ReceiveBuffer()
        self._eof = False
        self._error_state = False

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means it closed its side."""
        if data:
            if self._eof:
                raise LocalProtocolError("received data after end of file")
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> E | type[NEED_DATA] | type[PAUSED]:
        """The next event from the peer, `NEED_DATA` (feed more bytes first) or `PAUSED`
        (we owe the peer something: a reply, or a TLS handshake).

        Raises:
            RemoteProtocolError: the peer broke the protocol beyond repair; its
                ``reply_hint``, when set, is what a server should send before closing.
        """
        if self._error_state:
            raise LocalProtocolError("can't receive events after a protocol error")
        try:
            return self._next_event()
        except ProtocolError as exc:
            self._error_state = True
            if isinstance(exc, LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    @abc.abstractmethod
    def _next_event(self) -> E | type[NEED_DATA] | type[PAUSED]:
        """Parse the next event out of ``self._buf``; raise LocalProtocolError if bad."""
