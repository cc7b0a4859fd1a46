"""POP3 events: the same immutable classes for sending and receiving.

A client sends command events and receives `Ok` / `Err` (and `AuthChallenge` during
AUTH); a multi-line response is an `Ok` followed by `ResponseData` chunks (unstuffed) and
`EndOfResponse`. The core knows which responses are multi-line from the command they
answer (RFC 1939: LIST and UIDL without argument, RETR, TOP; RFC 2449: CAPA).
"""

from __future__ import annotations

import re

import attrs

from .._util import Event, LocalProtocolError

__all__ = [
    "Apop",
    "Auth",
    "AuthCancel",
    "AuthChallenge",
    "AuthResponse",
    "Capa",
    "CommandRejected",
    "ConnectionClosed",
    "Dele",
    "EndOfResponse",
    "Err",
    "List",
    "Noop",
    "Ok",
    "POP3Event",
    "Pass",
    "Quit",
    "ResponseData",
    "Retr",
    "Rset",
    "Stat",
    "Stls",
    "Top",
    "Uidl",
    "User",
    "Utf8",
]

_TEXT = re.compile(r"[^\r\n\x00]*")
# resp-code = "[" resp-level *("/" resp-level) "]"; resp-level = 1*rchar (RFC 2449)
_RESP_CODE = re.compile(r"[\x21-\x2e\x30-\x5c\x5e-\x7f]+(?:/[\x21-\x2e\x30-\x5c\x5e-\x7f]+)*")
# A status text that starts like this would read back as a response code.
_LEADING_CODE = re.compile(r"\[" + _RESP_CODE.pattern + r"\]")
_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}")


def _check_text(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or _TEXT.fullmatch(value) is None:
        raise LocalProtocolError(f"{attr.name} must be text without CR, LF or NUL: {value!r}")


def _check_word(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    _check_text(_inst, attr, value)
    if not value or " " in value:
        raise LocalProtocolError(f"{attr.name} must be one non-empty word: {value!r}")


def _check_optional_msg(
    _inst: object, attr: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and not 1 <= value < 10**10:
        raise LocalProtocolError(f"{attr.name} must be a message number >= 1: {value!r}")


def _check_msg(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    _check_optional_msg(_inst, attr, value)  # type: ignore[arg-type]


class POP3Event(Event):
    """Base class of the POP3 events."""

    __slots__ = ()


# --- commands -------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class User(POP3Event):
    """USER name (RFC 1939)."""

    name: str = attrs.field(validator=_check_word)


@attrs.frozen(slots=True, kw_only=True)
class Pass(POP3Event):
    """PASS password. The password may contain spaces; it is kept out of repr()."""

    password: str = attrs.field(validator=_check_text, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.password:
            raise LocalProtocolError("PASS needs a non-empty password")


@attrs.frozen(slots=True, kw_only=True)
class Apop(POP3Event):
    """APOP name digest: ``digest`` is the lower-case hex MD5 of timestamp + secret."""

    name: str = attrs.field(validator=_check_word)
    digest: str

    def __attrs_post_init__(self) -> None:
        if re.fullmatch(r"[0-9a-f]{32}", self.digest) is None:
            raise LocalProtocolError("APOP digest must be 32 lower-case hex digits")


@attrs.frozen(slots=True, kw_only=True)
class Auth(POP3Event):
    """AUTH (RFC 5034). ``mechanism`` None is a bare AUTH, which lists the mechanisms
    (an older habit some clients keep). ``initial_response`` is decoded; b"" for "="."""

    mechanism: str | None = None
    initial_response: bytes | None = None

    def __attrs_post_init__(self) -> None:
        if self.mechanism is not None and _MECHANISM.fullmatch(self.mechanism) is None:
            raise LocalProtocolError(f"bad SASL mechanism name {self.mechanism!r}")
        if self.mechanism is None and self.initial_response is not None:
            raise LocalProtocolError("an initial response needs a mechanism")


@attrs.frozen(slots=True, kw_only=True)
class AuthResponse(POP3Event):
    """The client's answer to a "+ " challenge, decoded from base64."""

    data: bytes = attrs.field(repr=False)


@attrs.frozen(slots=True)
class AuthCancel(POP3Event):
    """The client answered a challenge with "*": the server must answer -ERR."""


@attrs.frozen(slots=True)
class Quit(POP3Event):
    """QUIT: in TRANSACTION, the server removes the deleted messages (UPDATE state)."""


@attrs.frozen(slots=True)
class Stat(POP3Event):
    """STAT: "+OK count size"."""


@attrs.frozen(slots=True, kw_only=True)
class List(POP3Event):
    """LIST [msg]: one scan line, or (no argument) a multi-line scan listing."""

    msg: int | None = attrs.field(default=None, validator=_check_optional_msg)


@attrs.frozen(slots=True, kw_only=True)
class Retr(POP3Event):
    """RETR msg: the whole message, multi-line."""

    msg: int = attrs.field(validator=_check_msg)


@attrs.frozen(slots=True, kw_only=True)
class Dele(POP3Event):
    """DELE msg: mark for deletion at QUIT."""

    msg: int = attrs.field(validator=_check_msg)


@attrs.frozen(slots=True)
class Noop(POP3Event):
    """NOOP."""


@attrs.frozen(slots=True)
class Rset(POP3Event):
    """RSET: unmark every deleted message."""


@attrs.frozen(slots=True, kw_only=True)
class Top(POP3Event):
    """TOP msg n: the header and the first ``lines`` lines of the body, multi-line."""

    msg: int = attrs.field(validator=_check_msg)
    lines: int

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.lines < 10**10:
            raise LocalProtocolError(f"TOP line count out of range: {self.lines}")


@attrs.frozen(slots=True, kw_only=True)
class Uidl(POP3Event):
    """UIDL [msg]: unique-id of one message, or (no argument) a multi-line listing."""

    msg: int | None = attrs.field(default=None, validator=_check_optional_msg)


@attrs.frozen(slots=True)
class Capa(POP3Event):
    """CAPA (RFC 2449): the capabilities, multi-line."""


@attrs.frozen(slots=True)
class Stls(POP3Event):
    """STLS (RFC 2595): after +OK both sides start TLS, then call ``start_tls()``."""


@attrs.frozen(slots=True)
class Utf8(POP3Event):
    """UTF8 (RFC 6856): the session switches to UTF-8 for names, passwords and mail."""


# --- responses ------------------------------------------------------------------------


def _check_code(_inst: object, attr: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and _RESP_CODE.fullmatch(value) is None:
        raise LocalProtocolError(f"bad response code {value!r}")


def _check_status(status: Ok | Err) -> None:
    # "+OK [X] y" is code X and text "y": without a code, such a text cannot be sent.
    if status.code is None and _LEADING_CODE.match(status.text):
        raise LocalProtocolError(f"text reads as a response code, pass code=: {status.text!r}")


@attrs.frozen(slots=True, kw_only=True)
class Ok(POP3Event):
    """+OK [\\[code\\]] text. For LIST, UIDL without argument, RETR, TOP and CAPA, the
    multi-line body follows as `ResponseData` chunks and `EndOfResponse`."""

    text: str = attrs.field(default="", validator=_check_text)
    code: str | None = attrs.field(default=None, validator=_check_code)

    def __attrs_post_init__(self) -> None:
        _check_status(self)


@attrs.frozen(slots=True, kw_only=True)
class Err(POP3Event):
    """-ERR [\\[code\\]] text, with RFC 2449 / RFC 3206 response codes such as
    "IN-USE", "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", "AUTH"."""

    text: str = attrs.field(default="", validator=_check_text)
    code: str | None = attrs.field(default=None, validator=_check_code)

    def __attrs_post_init__(self) -> None:
        _check_status(self)


@attrs.frozen(slots=True)
class ResponseData(POP3Event):
    """A piece of a multi-line response body, unstuffed, with its CRLFs."""

    data: bytes


@attrs.frozen(slots=True)
class EndOfResponse(POP3Event):
    """The multi-line response is complete (its "." line was read or written)."""


@attrs.frozen(slots=True, kw_only=True)
class AuthChallenge(POP3Event):
    """A "+ " continuation during AUTH, decoded from base64."""

    data: bytes


@attrs.frozen(slots=True)
class ConnectionClosed(POP3Event):
    """The peer closed the connection, or the session ended."""


@attrs.frozen(slots=True, kw_only=True)
class CommandRejected(POP3Event):
    """The core refused a command (syntax, state, message number). Send ``reply``.

    ``command`` is the start of the offending line for logs (never a password).
    """

    reply: Err
    command: bytes = b""
