"""POP3 grammar: command lines, status lines, CAPA and listings (RFC 1939, 2449, 5034).

RFC 1939 section 3: a command is a case-insensitive keyword and arguments separated by
single spaces; status lines start with "+OK" or "-ERR". RFC 2449 adds response codes in
square brackets right after the status indicator, and CAPA. Parsers raise `Rejection`
with the -ERR a server should send.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping

import attrs

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

__all__ = [
    "Capabilities",
    "Rejection",
    "apop_digest",
    "apop_timestamp",
    "format_command",
    "format_status",
    "parse_command",
    "parse_scan_listing",
    "parse_status_line",
    "parse_uidl_listing",
]


class Rejection(Exception):
    """A command the server must refuse; ``reply`` is the -ERR to send."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.reply = Err(text=text, code=code)


def _number(arg: str) -> int:
    if not arg.isdigit() or not arg.isascii() or len(arg) > 10 or int(arg) == 0:
        raise Rejection(f"Invalid message number: {arg[:20]}")
    return int(arg)


def _args(verb: str, rest: str, lo: int, hi: int) -> list[str]:
    args = rest.split(" ") if rest else []
    if not lo <= len(args) <= hi or any(not a for a in args):
        if lo == hi == 0:
            raise Rejection(f"{verb} takes no argument")
        raise Rejection(f"Wrong number of arguments for {verb}")
    return args


def decode_base64(text: str) -> bytes:
    """Strict base64 for SASL lines; raises `Rejection`."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Rejection("Invalid base64 data") from None


_CONTROL = re.compile(rb"[\x00\r\n]")


def parse_command(line: bytes, *, utf8: bool = False) -> POP3Event:
    """Parse one command line (without CRLF) into its event."""
    if _CONTROL.search(line):
        # Only CRLF ends a line: a NUL, bare CR or bare LF inside one is garbage.
        raise Rejection("Invalid characters in command")
    try:
        text = line.decode("utf-8" if utf8 else "ascii")
    except UnicodeDecodeError:
        if not utf8:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise Rejection("Non-ASCII command: send UTF8 first") from None
        raise Rejection("Invalid characters in command") from None
    verb, sep, rest = text.partition(" ")
    # ASCII first: U+017F (long s) upper-cases to "S", so "\u017ftat" would be STAT.
    verb = verb.upper() if verb.isascii() else ""
    if verb == "PASS":
        if not sep or not rest:
            raise Rejection("Syntax: PASS password")
        return Pass(password=rest)
    if verb == "USER":
        (name,) = _args(verb, rest, 1, 1)
        return User(name=name)
    if verb == "APOP":
        name, digest = _args(verb, rest, 2, 2)
        if re.fullmatch(r"[0-9a-fA-F]{32}", digest) is None:
            raise Rejection("Syntax: APOP name digest")
        return Apop(name=name, digest=digest.lower())
    if verb == "AUTH":
        args = _args(verb, rest, 0, 2)
        if not args:
            return Auth()
        if re.fullmatch(r"[A-Za-z0-9_-]{1,20}", args[0]) is None:
            raise Rejection("Syntax: AUTH mechanism [initial-response]")
        initial = None
        if len(args) == 2:
            initial = b"" if args[1] == "=" else decode_base64(args[1])
        return Auth(mechanism=args[0].upper(), initial_response=initial)
    if verb in ("LIST", "UIDL"):
        args = _args(verb, rest, 0, 1)
        msg = _number(args[0]) if args else None
        return List(msg=msg) if verb == "LIST" else Uidl(msg=msg)
    if verb in ("RETR", "DELE"):
        (arg,) = _args(verb, rest, 1, 1)
        return Retr(msg=_number(arg)) if verb == "RETR" else Dele(msg=_number(arg))
    if verb == "TOP":
        number, count = _args(verb, rest, 2, 2)
        if not count.isdigit() or not count.isascii() or len(count) > 10:
            raise Rejection(f"Invalid line count: {count[:20]}")
        return Top(msg=_number(number), lines=int(count))
    simple: dict[str, type[POP3Event]] = {
        "QUIT": Quit,
        "STAT": Stat,
        "NOOP": Noop,
        "RSET": Rset,
        "CAPA": Capa,
        "STLS": Stls,
        "UTF8": Utf8,
    }
    if verb in simple:
        _args(verb, rest, 0, 0)
        return simple[verb]()
    raise Rejection("Unknown command")


def parse_auth_response(line: bytes) -> POP3Event:
    """A line sent in answer to a "+ " challenge: base64, or "*" to cancel."""
    if line == b"*":
        return AuthCancel()
    return AuthResponse(data=decode_base64(line.decode("ascii", "replace")))


def format_command(event: POP3Event) -> bytes:
    """The command line for ``event``, with CRLF."""
    if isinstance(event, User):
        text = f"USER {event.name}"
    elif isinstance(event, Pass):
        text = f"PASS {event.password}"
    elif isinstance(event, Apop):
        text = f"APOP {event.name} {event.digest}"
    elif isinstance(event, Auth):
        text = "AUTH"
        if event.mechanism is not None:
            text += f" {event.mechanism}"
        if event.initial_response is not None:
            text += " " + (base64.b64encode(event.initial_response).decode() or "=")
    elif isinstance(event, AuthResponse):
        text = base64.b64encode(event.data).decode()
    elif isinstance(event, AuthCancel):
        text = "*"
    elif isinstance(event, List | Uidl):
        text = type(event).__name__.upper() + ("" if event.msg is None else f" {event.msg}")
    elif isinstance(event, Retr | Dele):
        text = f"{type(event).__name__.upper()} {event.msg}"
    elif isinstance(event, Top):
        text = f"TOP {event.msg} {event.lines}"
    elif isinstance(event, Quit | Stat | Noop | Rset | Capa | Stls):
        text = type(event).__name__.upper()
    elif isinstance(event, Utf8):
        text = "UTF8"
    else:
        raise TypeError(f"not a command: {event!r}")
    return text.encode("utf-8") + b"\r\n"


def format_status(event: Ok | Err) -> bytes:
    """The status line of a response."""
    out = "+OK" if isinstance(event, Ok) else "-ERR"
    if event.code is not None:
        out += f" [{event.code}]"
    if event.text:
        out += f" {event.text}"
    return out.encode("utf-8") + b"\r\n"


_STATUS = re.compile(rb"(\+OK|-ERR)(?:[ \t](.*))?", re.DOTALL | re.IGNORECASE)
_CODE = re.compile(r"\[([\x21-\x2e\x30-\x5c\x5e-\x7f]+(?:/[\x21-\x2e\x30-\x5c\x5e-\x7f]+)*)\] ?")


def parse_status_line(line: bytes) -> Ok | Err | None:
    """An `Ok` or `Err` from a status line, or None if the line is not one."""
    m = _STATUS.fullmatch(line)
    if m is None:
        return None
    text = (m.group(2) or b"").decode("utf-8", "replace").replace("\x00", "")
    code = None
    cm = _CODE.match(text)
    if cm is not None:
        code, text = cm.group(1), text[cm.end() :]
    if m.group(1).upper() == b"+OK":
        return Ok(text=text, code=code)
    return Err(text=text, code=code)


def apop_timestamp(greeting: str) -> str | None:
    """The APOP timestamp (a msg-id, RFC 1939 section 7) of a greeting, if any."""
    m = re.search(r"<[^<>\s]+@[^<>\s]+>", greeting)
    return m.group(0) if m else None


def apop_digest(timestamp: str, secret: str) -> str:
    """The APOP digest: lower-case hex MD5 of the timestamp followed by the secret."""
    return hashlib.md5((timestamp + secret).encode("utf-8"), usedforsecurity=False).hexdigest()


@attrs.frozen(slots=True)
class Capabilities:
    """The CAPA listing of a server (RFC 2449): tag (upper case) -> its parameters."""

    tags: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> Capabilities:
        tags: dict[str, tuple[str, ...]] = {}
        for line in data.decode("utf-8", "replace").split("\r\n"):
            words = line.split()
            if words:
                tags[words[0].upper()] = tuple(words[1:])
        return cls(tags)

    def __contains__(self, tag: str) -> bool:
        return tag.upper() in self.tags

    @property
    def sasl_mechanisms(self) -> frozenset[str]:
        return frozenset(m.upper() for m in self.tags.get("SASL", ()))


def format_capabilities(tags: Iterable[str]) -> bytes:
    """The body of a CAPA response from capability lines such as "SASL PLAIN"."""
    return b"".join(t.encode("utf-8") + b"\r\n" for t in tags)


def parse_scan_listing(data: bytes) -> list[tuple[int, int]]:
    """(message number, size) pairs of a LIST response body."""
    out = []
    for line in data.split(b"\r\n"):
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            out.append((int(parts[0]), int(parts[1])))
    return out


def parse_uidl_listing(data: bytes) -> list[tuple[int, str]]:
    """(message number, unique-id) pairs of a UIDL response body."""
    out = []
    for line in data.split(b"\r\n"):
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1].decode("ascii", "replace")))
    return out


def uidl_ok(unique_id: str) -> bool:
    """RFC 1939 section 7: 1 to 70 characters in the range 0x21 to 0x7E."""
    return 1 <= len(unique_id) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in unique_id)
