"""Sans-I/O IMAP (RFC 3501 IMAP4rev1, RFC 9051 IMAP4rev2) and its common extensions.

What is here today is the grammar, both directions: `parse_command` / `format_command`
over the values of `mailproto.imap.commands`, `parse_response` / `format_response` over
those of `mailproto.imap.responses`, and the `Fragmentizer` that frames messages and
their literals out of the byte stream. Commands and responses share names (FETCH,
SEARCH, LIST...), so each set lives in its own module.
"""

from . import commands, responses
from ._client import ClientConfig, ClientConnection
from ._command_codec import (
    CommandParseError,
    format_command,
    format_idle_done,
    parse_command,
    parse_idle_done,
)
from ._events import (
    AppendData,
    AppendEnded,
    AppendReady,
    AppendStarted,
    AuthChallenge,
    AuthenticateCancel,
    AuthenticateResponse,
    CommandRejected,
    ConnectionClosed,
    FetchLiteralData,
    FetchLiteralStarted,
    IdleStarted,
)
from ._fetch_wire import FETCH_WIRE_ITEMS, FetchRow, FetchWriter, encode_envelope, is_envelope_wire
from ._fragment import Fragmentizer, LiteralAnnouncement, MessageTooLong
from ._grammar import (
    Fragment,
    LiteralFragment,
    LiteralMode,
    ParseError,
    SequenceSet,
    dump,
)
from ._response_codec import QUIRKS, format_response, parse_response
from ._server import ServerConfig, ServerConnection
from ._state import AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, SELECTED, State
from ._types import Section, StatusItem, decode_mailbox, encode_mailbox

__all__ = [
    "AUTHENTICATED",
    "FETCH_WIRE_ITEMS",
    "LOGOUT",
    "NOT_AUTHENTICATED",
    "QUIRKS",
    "SELECTED",
    "AppendData",
    "AppendEnded",
    "AppendReady",
    "AppendStarted",
    "AuthChallenge",
    "AuthenticateCancel",
    "AuthenticateResponse",
    "ClientConfig",
    "ClientConnection",
    "CommandParseError",
    "CommandRejected",
    "ConnectionClosed",
    "FetchLiteralData",
    "FetchLiteralStarted",
    "FetchRow",
    "FetchWriter",
    "Fragment",
    "Fragmentizer",
    "IdleStarted",
    "LiteralAnnouncement",
    "LiteralFragment",
    "LiteralMode",
    "MessageTooLong",
    "ParseError",
    "Section",
    "SequenceSet",
    "ServerConfig",
    "ServerConnection",
    "State",
    "StatusItem",
    "commands",
    "decode_mailbox",
    "dump",
    "encode_envelope",
    "encode_mailbox",
    "format_command",
    "format_idle_done",
    "format_response",
    "is_envelope_wire",
    "parse_command",
    "parse_idle_done",
    "parse_response",
    "responses",
]
