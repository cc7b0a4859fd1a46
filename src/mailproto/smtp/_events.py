"""SMTP and LMTP events: the same immutable classes for sending and for receiving.

A client sends command events and receives `Reply` events; a server receives the commands
and sends replies. Bodies travel as `MessageData` chunks closed by `EndOfMessage` (DATA, or
the last BDAT chunk) or `EndOfChunk` (a BDAT chunk that is not the last). Events validate
their fields when built, so an application cannot put a CRLF into a command by mistake.

Addresses are kept in their wire form without the angle brackets (``"a b"@example.com``
keeps its quotes); `mailproto.smtp.split_address` gives the unquoted local part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import attrs

from .._util import Event, LocalProtocolError

__all__ = [
    "Auth",
    "AuthCancel",
    "AuthChallenge",
    "AuthResponse",
    "Bdat",
    "BodyType",
    "CommandRejected",
    "ConnectionClosed",
    "Data",
    "Ehlo",
    "EndOfChunk",
    "EndOfMessage",
    "Expn",
    "Helo",
    "Help",
    "Lhlo",
    "MailFrom",
    "MessageData",
    "MessageRejected",
    "Noop",
    "Notify",
    "Quit",
    "RcptTo",
    "Reply",
    "Rset",
    "SMTPEvent",
    "StartTLS",
    "Vrfy",
]

BodyType = Literal["7BIT", "8BITMIME", "BINARYMIME"]
Notify = Literal["SUCCESS", "FAILURE", "DELAY"]

# Text that may go on a command or reply line: no CR, LF or NUL. UTF-8 is allowed here;
# where the protocol needs ASCII, the connection checks it against the session. Lone
# surrogates are not text: they have no UTF-8 form to send.
_LINE_TEXT = re.compile(r"[^\r\n\x00\ud800-\udfff]*")
_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")  # RFC 3463: ASCII digits
_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5321 Atom (ORCPT addr-type)


def _xtext_length(value: str) -> int:
    """Length of ``value`` written as RFC 3461 xtext (one "+XX" per escaped octet)."""
    return sum(1 if 0x21 <= b <= 0x7E and b not in (0x2B, 0x3D) else 3 for b in value.encode())


def _text(name: str, value: str) -> None:
    if not isinstance(value, str) or _LINE_TEXT.fullmatch(value) is None:
        raise LocalProtocolError(f"{name} must be text without CR, LF or NUL: {value!r}")


class SMTPEvent(Event):
    """Base class of the SMTP events."""

    __slots__ = ()


def _check_text(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    _text(attr.name, value)


def _check_optional_text(
    _inst: object, attr: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None:
        _text(attr.name, value)


def _check_hello_domain(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    _text(attr.name, value)
    if not value or " " in value or "\t" in value:
        raise LocalProtocolError(f"{attr.name} must be one non-empty word: {value!r}")


# --- commands -------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class Ehlo(SMTPEvent):
    """EHLO: start (or restart) an ESMTP session. ``domain`` is the client's name."""

    domain: str = attrs.field(validator=_check_hello_domain)


@attrs.frozen(slots=True, kw_only=True)
class Helo(SMTPEvent):
    """HELO: start a plain SMTP session (no extensions)."""

    domain: str = attrs.field(validator=_check_hello_domain)


@attrs.frozen(slots=True, kw_only=True)
class Lhlo(SMTPEvent):
    """LHLO: the LMTP greeting (RFC 2033), in place of EHLO."""

    domain: str = attrs.field(validator=_check_hello_domain)


def _params(
    value: Iterable[tuple[str, str | None]],
) -> tuple[tuple[str, str | None], ...]:
    if value == ():
        return ()  # the usual case, on every MAIL and RCPT built
    out = tuple((k.upper(), v) for k, v in value)
    for key, val in out:
        if _KEYWORD.fullmatch(key) is None:
            raise LocalProtocolError(f"bad ESMTP parameter keyword {key!r}")
        if val is not None and (not val or re.search(r"[\x00-\x20=\x7f\ud800-\udfff]", val)):
            raise LocalProtocolError(f"bad ESMTP parameter value {val!r}")
    return out


@attrs.frozen(slots=True, kw_only=True)
class MailFrom(SMTPEvent):
    """MAIL FROM: start a transaction. ``sender`` "" is the null reverse-path ``<>``.

    ``extra`` holds parameters beyond the ones typed here (only those a server has
    declared it accepts reach it).
    """

    sender: str = attrs.field(validator=_check_text)
    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False
    auth: str | None = attrs.field(default=None, validator=_check_optional_text)
    ret: Literal["FULL", "HDRS"] | None = None
    envid: str | None = attrs.field(default=None, validator=_check_optional_text)
    extra: tuple[tuple[str, str | None], ...] = attrs.field(default=(), converter=_params)

    def __attrs_post_init__(self) -> None:
        if self.size is not None and not 0 <= self.size < 10**20:
            raise LocalProtocolError(f"SIZE out of range: {self.size}")
        if self.body not in (None, "7BIT", "8BITMIME", "BINARYMIME"):
            raise LocalProtocolError(f"bad BODY value {self.body!r}")
        if self.ret not in (None, "FULL", "HDRS"):
            raise LocalProtocolError(f"bad RET value {self.ret!r}")
        # RFC 3461 section 4.4: 1 to 100 characters of xtext (an esmtp-value is not empty).
        if self.envid is not None and not 0 < _xtext_length(self.envid) <= 100:
            raise LocalProtocolError(f"ENVID must be 1 to 100 characters as xtext: {self.envid!r}")


@attrs.frozen(slots=True, kw_only=True)
class RcptTo(SMTPEvent):
    """RCPT TO: add a recipient. ``notify`` None means no NOTIFY parameter; an empty
    set means NOTIFY=NEVER. ``orcpt`` is (address type, address), decoded from xtext."""

    recipient: str = attrs.field(validator=_check_text)
    notify: frozenset[Notify] | None = None
    orcpt: tuple[str, str] | None = None
    extra: tuple[tuple[str, str | None], ...] = attrs.field(default=(), converter=_params)

    def __attrs_post_init__(self) -> None:
        if not self.recipient:
            raise LocalProtocolError("a recipient cannot be the null path")
        if self.notify is not None and not self.notify <= {"SUCCESS", "FAILURE", "DELAY"}:
            raise LocalProtocolError(f"bad NOTIFY value {sorted(self.notify)!r}")
        if self.orcpt is not None:
            for part in self.orcpt:
                _text("orcpt", part)
            # RFC 3461 section 4.2: addr-type ";" xtext, neither of them empty.
            if _ATOM.fullmatch(self.orcpt[0]) is None or not self.orcpt[1]:
                raise LocalProtocolError(f"bad ORCPT value {self.orcpt!r}")


@attrs.frozen(slots=True)
class Data(SMTPEvent):
    """DATA: the body follows, dot-stuffed, after the server's 354."""


@attrs.frozen(slots=True, kw_only=True)
class Bdat(SMTPEvent):
    """BDAT (RFC 3030): exactly ``size`` bytes of body follow the command line."""

    size: int
    last: bool = False

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.size < 10**20:
            raise LocalProtocolError(f"BDAT size out of range: {self.size}")


@attrs.frozen(slots=True)
class Rset(SMTPEvent):
    """RSET: abort the transaction."""


@attrs.frozen(slots=True, kw_only=True)
class Noop(SMTPEvent):
    """NOOP, with its optional (ignored) argument."""

    argument: str = attrs.field(default="", validator=_check_text)


@attrs.frozen(slots=True)
class Quit(SMTPEvent):
    """QUIT: the server answers 221 and closes."""


@attrs.frozen(slots=True, kw_only=True)
class Vrfy(SMTPEvent):
    """VRFY: ask whether a user or mailbox exists."""

    argument: str = attrs.field(validator=_check_text)


@attrs.frozen(slots=True, kw_only=True)
class Expn(SMTPEvent):
    """EXPN: ask for the members of a mailing list."""

    argument: str = attrs.field(validator=_check_text)


@attrs.frozen(slots=True, kw_only=True)
class Help(SMTPEvent):
    """HELP, with an optional topic."""

    argument: str = attrs.field(default="", validator=_check_text)


@attrs.frozen(slots=True)
class StartTLS(SMTPEvent):
    """STARTTLS (RFC 3207): after 220 both sides start a TLS handshake."""


@attrs.frozen(slots=True, kw_only=True)
class Auth(SMTPEvent):
    """AUTH (RFC 4954). ``initial_response`` is decoded: None when the client sent
    none, b"" when it sent "=" (an empty initial response)."""

    mechanism: str
    initial_response: bytes | None = None

    def __attrs_post_init__(self) -> None:
        if _MECHANISM.fullmatch(self.mechanism) is None:
            raise LocalProtocolError(f"bad SASL mechanism name {self.mechanism!r}")


@attrs.frozen(slots=True, kw_only=True)
class AuthResponse(SMTPEvent):
    """The client's answer to a 334 challenge, decoded from base64."""

    data: bytes


@attrs.frozen(slots=True)
class AuthCancel(SMTPEvent):
    """The client answered a challenge with "*": the server must reply 501."""


# --- body -----------------------------------------------------------------------------


@attrs.frozen(slots=True)
class MessageData(SMTPEvent):
    """A piece of the message body: unstuffed content, never the terminator."""

    data: bytes


@attrs.frozen(slots=True)
class EndOfMessage(SMTPEvent):
    """The body is complete (DATA terminator, or the last BDAT chunk): a reply is due
    (in LMTP, one reply per accepted recipient)."""


@attrs.frozen(slots=True)
class EndOfChunk(SMTPEvent):
    """A BDAT chunk that is not the last one is complete: one reply is due."""


# --- replies --------------------------------------------------------------------------


_new = object.__new__
_set = object.__setattr__


def _lines(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split("\n"))
    return tuple(value)


@attrs.frozen(slots=True, kw_only=True)
class Reply(SMTPEvent):
    """A server reply: three-digit ``code``, one or more text ``lines`` and, per
    RFC 2034, an ``enhanced`` status code such as "2.1.0" written on every line.

    ``lines`` may be given as one string with "\\n" between lines.
    """

    code: int
    lines: tuple[str, ...] = attrs.field(default=("",), converter=_lines)
    enhanced: str | None = None

    def __attrs_post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise LocalProtocolError(f"reply code out of range: {self.code}")
        if not self.lines:
            raise LocalProtocolError("a reply needs at least one line")
        for line in self.lines:
            _text("reply line", line)
        if self.enhanced is not None and (
            _ENHANCED.fullmatch(self.enhanced) is None or self.enhanced[0] != str(self.code)[0]
        ):
            raise LocalProtocolError(
                f"enhanced code {self.enhanced!r} does not fit reply code {self.code}"
            )

    @classmethod
    def _unchecked(cls, code: int, lines: tuple[str, ...], enhanced: str | None) -> Reply:
        """A reply whose fields the caller has already validated (the core's parser):
        building one per server reply is on every client's hot path."""
        reply = _new(cls)
        _set(reply, "code", code)
        _set(reply, "lines", lines)
        _set(reply, "enhanced", enhanced)
        return reply

    @property
    def text(self) -> str:
        """All lines joined with "\\n"."""
        return "\n".join(self.lines)

    @property
    def is_success(self) -> bool:
        return self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500


@attrs.frozen(slots=True, kw_only=True)
class AuthChallenge(SMTPEvent):
    """A 334 reply during AUTH, its text decoded from base64."""

    data: bytes


@attrs.frozen(slots=True)
class ConnectionClosed(SMTPEvent):
    """The peer closed the connection (``receive_data(b"")``)."""


# --- rejections made by the core (server side) ----------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class CommandRejected(SMTPEvent):
    """The core refused a command (syntax, sequence, limits). Send ``reply``.

    ``command`` is the start of the offending line, for logs (never an AUTH secret).
    """

    reply: Reply
    command: bytes = b""


@attrs.frozen(slots=True, kw_only=True)
class MessageRejected(SMTPEvent):
    """The body ended but the core refused it (bare CR/LF, line too long, too large).

    It comes in place of `EndOfMessage` or `EndOfChunk`; send ``reply``. The body
    chunks already received must be discarded.
    """

    reply: Reply
