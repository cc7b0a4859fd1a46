"""IMAP message semantics: pure functions over RFC 5322 / MIME message bytes.

Parse a message once (`parse_message`), then answer FETCH items from the `Message`:
`envelope`, `body_structure` (BODY with ``extensible=False``), sections (`section`,
`binary`, `binary_size`), INTERNALDATE (`format_internal_date`, `parse_internal_date`),
transfer decoding (`decode_transfer`), addresses (`parse_addresses`). Over a mailbox
of `MessageInfo`: `search` (every RFC 3501 / 9051 key, CHARSET, `esearch` result
shapes), `sort` (RFC 5256, `base_subject`) and `thread` (ORDEREDSUBJECT, REFERENCES).
Dovecot is the reference for every answer; see docs/message.md for where and why we
differ.
"""

from __future__ import annotations

from ._address import parse_addresses
from ._bodystructure import body_structure
from ._envelope import envelope
from ._internaldate import format_internal_date, parse_internal_date
from ._model import HeaderBlock, Message, Part, parse_message
from ._search import (
    SUPPORTED_CHARSETS,
    MessageInfo,
    UnknownCharset,
    esearch,
    saved_result,
    search,
    search_messages,
    uses_modseq,
)
from ._sections import binary, binary_size, section
from ._sort import base_subject, sort
from ._thread import THREAD_ALGORITHMS, thread
from ._transfer import decode_transfer
from ._words import decode_header, decode_text

__all__ = [
    "SUPPORTED_CHARSETS",
    "THREAD_ALGORITHMS",
    "HeaderBlock",
    "Message",
    "MessageInfo",
    "Part",
    "UnknownCharset",
    "base_subject",
    "binary",
    "binary_size",
    "body_structure",
    "decode_header",
    "decode_text",
    "decode_transfer",
    "envelope",
    "esearch",
    "format_internal_date",
    "parse_addresses",
    "parse_internal_date",
    "parse_message",
    "saved_result",
    "search",
    "search_messages",
    "section",
    "sort",
    "thread",
    "uses_modseq",
]
