"""SMTP grammar: command lines, paths, ESMTP parameters, replies, EHLO keywords.

The regular expressions follow RFC 5321 section 4.1.2 (with the RFC 6531 additions for
SMTPUTF8, where UTF-8 is allowed in local parts, domains and parameter values), written
beside the ABNF they implement. Parsers raise `Rejection`, carrying the reply a server
should send; the connection turns it into a `CommandRejected` event.

Leniency, deliberately small: "MAIL FROM: <a@b>" (a space after the colon, as several old
clients send) is accepted; a path without angle brackets is not.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping

import attrs

from ._events import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Notify,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
)

__all__ = [
    "Extensions",
    "Rejection",
    "format_command",
    "format_reply",
    "is_valid_mailbox",
    "join_address",
    "parse_command",
    "split_address",
    "xtext_decode",
    "xtext_encode",
]


class Rejection(Exception):
    """A command the server must refuse; ``reply`` is what to send."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(text)
        self.reply = Reply(code=code, enhanced=enhanced, lines=(text,))


# --- RFC 5321 section 4.1.2 and 4.1.3, as regular expressions over str ----------------

# atext (RFC 5322) =/ UTF8-non-ascii (RFC 6531)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ATEXT_U = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
# Dot-string = Atom *("." Atom)
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_DOT_STRING_U = rf"{_ATEXT_U}+(?:\.{_ATEXT_U}+)*"
# Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP = %d32-33 / %d35-91 / %d93-126;
# quoted-pairSMTP = %d92 %d32-126
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_QUOTED_U = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
# sub-domain = Let-dig [Ldh-str]; U-label for SMTPUTF8
_SUB_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_SUB_DOMAIN_U = (
    r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\-\u0080-\U0010ffff]*"
    r"[A-Za-z0-9\u0080-\U0010ffff])?"
)
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_DOMAIN_U = rf"{_SUB_DOMAIN_U}(?:\.{_SUB_DOMAIN_U})*"
# address-literal = "[" ( IPv4 / IPv6 / General-address-literal ) "]"; the inside is
# checked by _check_literal; dcontent = %d33-90 / %d94-126
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"


def _mailbox_re(utf8: bool) -> str:
    local = f"(?:{_DOT_STRING_U}|{_QUOTED_U})" if utf8 else f"(?:{_DOT_STRING}|{_QUOTED})"
    domain = _DOMAIN_U if utf8 else _DOMAIN
    return rf"(?P<local>{local})@(?P<domain>{domain}|{_LITERAL})"


def _path_re(utf8: bool) -> re.Pattern[str]:
    domain = _DOMAIN_U if utf8 else _DOMAIN
    # Path = "<" [ A-d-l ":" ] Mailbox ">"; A-d-l = At-domain *( "," At-domain )
    adl = rf"@{domain}(?:,@{domain})*:"
    return re.compile(rf"<(?:{adl})?(?P<mailbox>{_mailbox_re(utf8)})>")


_PATH = {False: _path_re(False), True: _path_re(True)}
_MAILBOX = {False: re.compile(_mailbox_re(False)), True: re.compile(_mailbox_re(True))}
_POSTMASTER = re.compile(r"<(?P<mailbox>postmaster)>", re.IGNORECASE)
# esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
# esmtp-value = 1*(%d33-60 / %d62-126) =/ UTF8-non-ascii
_PARAM = re.compile(
    r"(?P<key>[A-Za-z0-9][A-Za-z0-9-]*)(?:=(?P<value>[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+))?"
)
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_QUOTED_LOCAL = re.compile(r'"((?:[^"\\]|\\.)*)"@', re.DOTALL)
_MAX_PATH = 256  # RFC 5321 section 4.5.3.1.3: octets, with the angle brackets
_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
# size-value = 1*20DIGIT (RFC 1870); str.isdigit() would take any Unicode digit.
_SIZE = re.compile(r"[0-9]{1,20}")
# What no event may carry (see _events): a command line or a decoded value with it is
# refused here, so that building the event cannot fail.
_NOT_LINE_TEXT = re.compile(r"[\r\n\x00]")


def _check_literal(domain: str) -> bool:
    """Validate the inside of an address literal (RFC 5321 section 4.1.3)."""
    if not domain.startswith("["):
        return True
    inner = domain[1:-1]
    if inner[:5].upper() == "IPV6:":
        # IPv6-addr has no zone index ("%eth0"), which ipaddress would accept.
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return "%" not in inner
    tag, colon, content = inner.partition(":")
    if colon:
        # General-address-literal = Standardized-tag ":" 1*dcontent
        return bool(content) and re.fullmatch(r"[A-Za-z0-9-]*[A-Za-z0-9]", tag) is not None
    # IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0 to 255 (leading zeros
    # allowed, which ipaddress refuses)
    m = _IPV4.fullmatch(inner)
    return m is not None and all(int(n) <= 255 for n in m.groups())


def is_valid_mailbox(address: str, *, utf8: bool = False) -> bool:
    """True if ``address`` is a Mailbox by RFC 5321 (RFC 6531 when ``utf8``)."""
    m = _MAILBOX[utf8].fullmatch(address)
    return m is not None and _check_literal(m.group("domain"))


def split_address(address: str) -> tuple[str, str]:
    """Split a wire-form mailbox into (local part without quoting, domain).

    ``split_address('"john smith"@example.com') == ("john smith", "example.com")``.
    """
    # A quoted local part may hold "@", and so may an address literal ("[tag:a@b]").
    quoted = _QUOTED_LOCAL.match(address)
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted.group(1), flags=re.DOTALL), address[quoted.end() :]
    local, at, domain = address.partition("@")
    if not at:
        return address, ""
    return local, domain


def join_address(local: str, domain: str) -> str:
    """The wire form of local@domain, quoting the local part when it needs it."""
    if re.fullmatch(_DOT_STRING_U, local) is None:
        local = '"' + re.sub(r'(["\\])', r"\\\1", local) + '"'
    return f"{local}@{domain}"


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 xtext ("+" HEXCHAR HEXCHAR escapes). Raises ValueError."""
    if _XTEXT.fullmatch(value) is None:
        raise ValueError(f"not xtext: {value!r}")
    raw = re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)
    # Escaped octets may be the UTF-8 of an address.
    return raw.encode("latin-1").decode("utf-8")


def xtext_encode(value: str) -> str:
    """Encode text as RFC 3461 xtext."""
    return "".join(
        chr(b) if 0x21 <= b <= 0x7E and b not in (0x2B, 0x3D) else f"+{b:02X}"
        for b in value.encode("utf-8")
    )


# --- command lines --------------------------------------------------------------------


def _parse_path(
    text: str, *, utf8: bool, null_ok: bool, postmaster_ok: bool, enhanced: str
) -> tuple[str, str]:
    """Parse a path at the start of ``text``; returns (mailbox, rest of text)."""
    text = text.lstrip(" ")
    if null_ok and text.startswith("<>"):
        return "", text[2:]
    m = _PATH[utf8].match(text)
    if m is not None and not _check_literal(m.group("domain")):
        m = None
    if m is None and postmaster_ok:
        m = _POSTMASTER.match(text)
    if m is None:
        if not utf8 and not text.isascii() and _PATH[True].match(text):
            raise Rejection(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
        raise Rejection(501, enhanced, "Bad address syntax")
    if len(text[: m.end()].encode("utf-8")) > _MAX_PATH:
        raise Rejection(501, enhanced, "Path too long")
    return m.group("mailbox"), text[m.end() :]


def _parse_params(text: str) -> list[tuple[str, str | None]]:
    if not text:
        return []
    if not text.startswith(" "):
        raise Rejection(501, "5.5.2", "Syntax error after the address")
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text[1:].split(" "):
        if not item:
            continue  # tolerate doubled spaces
        m = _PARAM.fullmatch(item)
        if m is None:
            raise Rejection(501, "5.5.4", f"Bad parameter syntax: {item[:40]}")
        key = m.group("key").upper()
        if key in seen:
            raise Rejection(501, "5.5.4", f"Duplicate parameter {key}")
        seen.add(key)
        out.append((key, m.group("value")))
    return out


def _unsupported(key: str) -> Rejection:
    return Rejection(555, "5.5.4", f"Unsupported parameter {key}")


def _bad_value(key: str) -> Rejection:
    return Rejection(501, "5.5.4", f"Bad value for {key}")


def _xtext_value(key: str, value: str) -> str:
    """Decode an xtext parameter value (RFC 3461 section 4); 501 if it is bad."""
    try:
        text = xtext_decode(value)
    except ValueError:
        raise _bad_value(key) from None
    if _NOT_LINE_TEXT.search(text):
        raise _bad_value(key)
    return text


@attrs.frozen(slots=True)
class Extensions:
    """The service extensions of an EHLO reply: keyword (upper case) -> parameters.

    Both roles build it from the same 250 reply: the client to know what it may use, the
    server to know what it has offered (parameters of extensions it did not offer are
    refused with 555).
    """

    keywords: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_reply(cls, reply: Reply) -> Extensions:
        keywords: dict[str, str] = {}
        for line in reply.lines[1:]:
            word, _, params = line.strip().partition(" ")
            if "=" in word and word.upper().startswith("AUTH="):
                # Old "AUTH=PLAIN LOGIN" form, still sent by some servers.
                word, params = "AUTH", f"{word[5:]} {params}".strip()
            if word:
                keywords[word.upper()] = params.strip()
        return cls(keywords)

    def __contains__(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def max_size(self) -> int | None:
        """SIZE limit in octets; None when not offered, 0 when offered without one."""
        if "SIZE" not in self.keywords:
            return None
        value = self.keywords["SIZE"]
        return int(value) if _SIZE.fullmatch(value) else 0

    @property
    def auth_mechanisms(self) -> frozenset[str]:
        return frozenset(self.keywords.get("AUTH", "").upper().split())


def _mail_from(
    rest: str, ext: Extensions | None, utf8_session: bool, extra_keys: frozenset[str]
) -> MailFrom:
    if rest[:5].upper() != "FROM:":
        raise Rejection(501, "5.5.2", "Syntax: MAIL FROM:<address>")
    after = rest[5:]
    # SMTPUTF8 comes after the path but decides the path's grammar: look ahead.
    smtputf8 = bool(re.search(r" SMTPUTF8(?: |$)", after, re.IGNORECASE))
    sender, params_text = _parse_path(
        after,
        utf8=smtputf8 and ext is not None and "SMTPUTF8" in ext,
        null_ok=True,
        postmaster_ok=False,
        enhanced="5.1.7",
    )
    fields: dict[str, object] = {}
    extra: list[tuple[str, str | None]] = []
    for key, value in _parse_params(params_text):
        if ext is None:
            raise _unsupported(key)
        if key == "SIZE" and "SIZE" in ext:
            if value is None or _SIZE.fullmatch(value) is None:
                raise _bad_value(key)
            fields["size"] = int(value)
        elif key == "BODY" and ("8BITMIME" in ext or "BINARYMIME" in ext):
            # BODY comes with 8BITMIME (RFC 1652) and with BINARYMIME (RFC 3030 section
            # 3), each for its own value; 7BIT is the default either way.
            body = (value or "").upper()
            if body not in ("7BIT", "8BITMIME", "BINARYMIME"):
                raise _bad_value(key)
            if body != "7BIT" and body not in ext:
                raise _unsupported(f"BODY={body}")
            fields["body"] = body
        elif key == "SMTPUTF8" and "SMTPUTF8" in ext:
            if value is not None:
                raise _bad_value(key)
            fields["smtputf8"] = True
        elif key == "AUTH" and "AUTH" in ext:
            if not value:
                raise _bad_value(key)
            fields["auth"] = "" if value == "<>" else _xtext_value(key, value)
        elif key == "RET" and "DSN" in ext:
            ret = (value or "").upper()
            if ret not in ("FULL", "HDRS"):
                raise _bad_value(key)
            fields["ret"] = ret
        elif key == "ENVID" and "DSN" in ext:
            if not value or len(value) > 100:
                raise _bad_value(key)
            fields["envid"] = _xtext_value(key, value)
        elif key in extra_keys and key not in _TYPED_MAIL:
            extra.append((key, value))
        else:
            raise _unsupported(key)
    if not utf8_session and not fields.get("smtputf8") and not sender.isascii():
        raise Rejection(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    return MailFrom(
        sender=sender,
        size=fields.get("size"),  # type: ignore[arg-type]
        body=fields.get("body"),  # type: ignore[arg-type]
        smtputf8=bool(fields.get("smtputf8")),
        auth=fields.get("auth"),  # type: ignore[arg-type]
        ret=fields.get("ret"),  # type: ignore[arg-type]
        envid=fields.get("envid"),  # type: ignore[arg-type]
        extra=extra,
    )


_TYPED_MAIL = frozenset({"SIZE", "BODY", "SMTPUTF8", "AUTH", "RET", "ENVID"})
_TYPED_RCPT = frozenset({"NOTIFY", "ORCPT"})


def _rcpt_to(rest: str, ext: Extensions | None, utf8: bool, extra_keys: frozenset[str]) -> RcptTo:
    if rest[:3].upper() != "TO:":
        raise Rejection(501, "5.5.2", "Syntax: RCPT TO:<address>")
    recipient, params_text = _parse_path(
        rest[3:], utf8=utf8, null_ok=False, postmaster_ok=True, enhanced="5.1.3"
    )
    notify: frozenset[Notify] | None = None
    orcpt: tuple[str, str] | None = None
    extra: list[tuple[str, str | None]] = []
    for key, value in _parse_params(params_text):
        if ext is None:
            raise _unsupported(key)
        if key == "NOTIFY" and "DSN" in ext:
            items = (value or "").upper().split(",")
            if items == ["NEVER"]:
                notify = frozenset()
            elif not set(items) <= {"SUCCESS", "FAILURE", "DELAY"} or len(set(items)) != len(items):
                raise _bad_value(key)
            else:
                notify = frozenset(items)  # type: ignore[arg-type]
        elif key == "ORCPT" and "DSN" in ext:
            # original-recipient-address = addr-type ";" xtext; addr-type = atom
            addr_type, semi, addr = (value or "").partition(";")
            if not semi or not addr or re.fullmatch(f"{_ATEXT}+", addr_type) is None:
                raise _bad_value(key)
            orcpt = (addr_type.lower(), _xtext_value(key, addr))
        elif key in extra_keys and key not in _TYPED_RCPT:
            extra.append((key, value))
        else:
            raise _unsupported(key)
    return RcptTo(recipient=recipient, notify=notify, orcpt=orcpt, extra=extra)


def _no_argument(verb: str, rest: str) -> None:
    if rest.strip():
        raise Rejection(501, "5.5.4", f"{verb} takes no argument")


def _hello_domain(verb: str, rest: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise Rejection(501, "5.5.4", f"Syntax: {verb} hostname")
    return words[0]


def _auth(rest: str) -> Auth:
    parts = rest.split()
    if not 1 <= len(parts) <= 2 or re.fullmatch(r"[A-Za-z0-9_-]{1,20}", parts[0]) is None:
        raise Rejection(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
    initial: bytes | None = None
    if len(parts) == 2:
        initial = b"" if parts[1] == "=" else decode_base64(parts[1])
    return Auth(mechanism=parts[0].upper(), initial_response=initial)


def decode_base64(text: str) -> bytes:
    """Strict base64 (RFC 4648) for SASL lines; raises `Rejection` 501 5.5.2."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Rejection(501, "5.5.2", "Invalid base64 data") from None


# Verbs of RFC 821 that RFC 5321 dropped or never required: a clear 502, not a 500.
_NOT_IMPLEMENTED = frozenset({"TURN", "ETRN", "SEND", "SOML", "SAML", "ATRN", "BURL"})


def parse_command(
    line: bytes,
    *,
    extensions: Extensions | None,
    utf8: bool,
    extra_mail_params: frozenset[str] = frozenset(),
    extra_rcpt_params: frozenset[str] = frozenset(),
) -> SMTPEvent:
    """Parse one command line (without CRLF) into its event.

    ``extensions`` is what the server offered in its EHLO reply (None after HELO or
    before any hello); ``utf8`` says the current transaction has SMTPUTF8. BDAT is
    parsed by the connection, which owns the framing of its bytes.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(500, "5.5.2", "Invalid UTF-8 in command") from None
    if _NOT_LINE_TEXT.search(text):
        # Only CRLF ends a line: a bare CR or LF (or a NUL) inside one is not text.
        raise Rejection(500, "5.5.2", "Bare CR, LF or NUL in command")
    verb, _, rest = text.partition(" ")
    verb = verb.upper()
    if not text.isascii() and verb not in ("MAIL", "RCPT", "VRFY", "EXPN"):
        raise Rejection(500, "5.5.2", "Non-ASCII characters in command")
    if verb == "MAIL":
        return _mail_from(rest, extensions, utf8, extra_mail_params)
    if verb == "RCPT":
        return _rcpt_to(rest, extensions, utf8, extra_rcpt_params)
    if verb == "DATA":
        _no_argument(verb, rest)
        return Data()
    if verb == "EHLO":
        return Ehlo(domain=_hello_domain(verb, rest))
    if verb == "HELO":
        return Helo(domain=_hello_domain(verb, rest))
    if verb == "LHLO":
        return Lhlo(domain=_hello_domain(verb, rest))
    if verb == "RSET":
        _no_argument(verb, rest)
        return Rset()
    if verb == "NOOP":
        return Noop(argument=rest)
    if verb == "QUIT":
        _no_argument(verb, rest)
        return Quit()
    if verb == "VRFY":
        if not rest.strip():
            raise Rejection(501, "5.5.4", "Syntax: VRFY address")
        return Vrfy(argument=rest.strip())
    if verb == "EXPN":
        if not rest.strip():
            raise Rejection(501, "5.5.4", "Syntax: EXPN list")
        return Expn(argument=rest.strip())
    if verb == "HELP":
        return Help(argument=rest.strip())
    if verb == "STARTTLS":
        _no_argument(verb, rest)
        return StartTLS()
    if verb == "AUTH":
        return _auth(rest)
    if verb in _NOT_IMPLEMENTED:
        raise Rejection(502, "5.5.1", f"{verb} not implemented")
    raise Rejection(500, "5.5.2", "Syntax error, command unrecognized")


# --- writing --------------------------------------------------------------------------


def format_command(event: SMTPEvent) -> bytes:
    """The command line for ``event``, with CRLF (BDAT included, not its bytes)."""
    if isinstance(event, MailFrom):
        # Built by appending: MAIL and RCPT are formatted once per message and recipient.
        text = f"MAIL FROM:<{event.sender}>"
        if event.size is not None:
            text += f" SIZE={event.size}"
        if event.body is not None:
            text += f" BODY={event.body}"
        if event.smtputf8:
            text += " SMTPUTF8"
        if event.auth is not None:
            text += " AUTH=" + (xtext_encode(event.auth) if event.auth else "<>")
        if event.ret is not None:
            text += f" RET={event.ret}"
        if event.envid is not None:
            text += f" ENVID={xtext_encode(event.envid)}"
        if event.extra:
            text += "".join(f" {k}" if v is None else f" {k}={v}" for k, v in event.extra)
    elif isinstance(event, RcptTo):
        text = f"RCPT TO:<{event.recipient}>"
        if event.notify is not None:
            order = [n for n in ("SUCCESS", "FAILURE", "DELAY") if n in event.notify]
            text += " NOTIFY=" + (",".join(order) or "NEVER")
        if event.orcpt is not None:
            text += f" ORCPT={event.orcpt[0]};{xtext_encode(event.orcpt[1])}"
        if event.extra:
            text += "".join(f" {k}" if v is None else f" {k}={v}" for k, v in event.extra)
    elif isinstance(event, _VERB_ONLY):
        text = type(event).__name__.upper()
    elif isinstance(event, (Ehlo, Helo, Lhlo)):
        text = f"{type(event).__name__.upper()} {event.domain}"
    elif isinstance(event, Bdat):
        text = f"BDAT {event.size}" + (" LAST" if event.last else "")
    elif isinstance(event, Auth):
        text = f"AUTH {event.mechanism}"
        if event.initial_response is not None:
            text += " " + (base64.b64encode(event.initial_response).decode() or "=")
    elif isinstance(event, AuthResponse):
        text = base64.b64encode(event.data).decode()
    elif isinstance(event, AuthCancel):
        text = "*"
    elif isinstance(event, (Noop, Help)):
        verb = type(event).__name__.upper()
        text = f"{verb} {event.argument}" if event.argument else verb
    elif isinstance(event, (Vrfy, Expn)):
        text = f"{type(event).__name__.upper()} {event.argument}"
    elif isinstance(event, StartTLS):
        text = "STARTTLS"
    else:
        raise TypeError(f"not a command: {event!r}")
    return text.encode("utf-8") + b"\r\n"


_VERB_ONLY = (Data, Rset, Quit)


def format_reply(reply: Reply) -> bytes:
    """The wire form of a reply, enhanced code repeated on every line (RFC 2034)."""
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    last = len(reply.lines) - 1
    out = []
    for i, line in enumerate(reply.lines):
        text = f"{prefix}{line}".rstrip(" ") if not line else f"{prefix}{line}"
        sep = " " if i == last else "-"
        # Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
        out.append(f"{reply.code}{sep}{text}\r\n" if text or sep == "-" else f"{reply.code}\r\n")
    return "".join(out).encode("utf-8")


_REPLY_LINE = re.compile(rb"([2-5][0-9][0-9])(?:([ -])(.*))?", re.DOTALL)
_ENHANCED_PREFIX = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: |$)")


def parse_reply_line(line: bytes) -> tuple[int, bool, str] | None:
    """(code, is_last, text) of one reply line, or None if it is not a reply line."""
    # Reply-code = %x32-35 %x30-39 %x30-39, then SP or "-" and any text (or nothing);
    # tested by hand: this runs for every line a client reads.
    if len(line) < 3 or not 0x32 <= line[0] <= 0x35 or not line[1:3].isdigit():
        return None
    if len(line) == 3:
        return int(line), True, ""
    sep = line[3]
    if sep != 0x20 and sep != 0x2D:
        return None
    return int(line[:3]), sep == 0x20, line[4:].decode("utf-8", "replace")


def build_reply(code: int, texts: list[str]) -> Reply:
    """A `Reply` from the texts of its lines, taking the enhanced code off if present."""
    first = texts[0]
    enhanced: str | None = None
    # The enhanced code's class digit is the reply's (cheap test before the regex).
    if first[:1] == _CLASS_DIGIT.get(code // 100):
        m = _ENHANCED_PREFIX.match(first)
        if m is not None:
            enhanced = m.group(1)
            # RFC 2034: the code is followed by SP (or ends the line); "2.0.0x" is text.
            prefix = f"{enhanced} "
            texts = ["" if t == enhanced else t.removeprefix(prefix) for t in texts]
    lines = tuple(texts)
    # What Reply checks, tested without its regexes (ASCII without CR, LF or NUL is
    # valid text); anything else goes through Reply's validators, and its errors.
    in_range = 200 <= code <= 599
    for t in lines:
        if not (in_range and t.isascii()) or "\r" in t or "\n" in t or "\x00" in t:
            return Reply(code=code, lines=lines, enhanced=enhanced)
    return Reply._unchecked(code, lines, enhanced)


_CLASS_DIGIT = {2: "2", 4: "4", 5: "5"}
