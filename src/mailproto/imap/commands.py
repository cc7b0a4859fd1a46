"""IMAP commands as typed values (RFC 3501, RFC 9051 and extensions), and search keys.

The same classes serve a client that sends them and a server that receives them:
``mailproto.imap.parse_command`` and ``format_command`` convert them.
"""

from . import _commands, _search
from ._commands import *  # noqa: F403
from ._search import *  # noqa: F403

__all__ = _commands.__all__ + _search.__all__
