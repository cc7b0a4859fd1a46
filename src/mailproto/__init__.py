"""mailproto: sans-I/O SMTP/LMTP, POP3 and IMAP.

The core speaks bytes: feed what the peer sent with ``receive_data``, take events with
``next_event``, and turn the events you want to send into bytes with ``send``. It never
touches a socket, a clock or a file; `mailproto_adapters` does that.
"""

from ._util import (
    NEED_DATA,
    PAUSED,
    Event,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from ._version import __version__

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "Event",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "__version__",
]
