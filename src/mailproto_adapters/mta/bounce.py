"""Delivery status notifications: the bounce, the delay warning and the success report.

- RFC 3464 (the ``message/delivery-status`` fields, section 2) inside an RFC 6522
  ``multipart/report`` of three parts: a human-readable text, the machine-readable
  status, the returned content (section 4.3 of RFC 3461: ``RET=HDRS`` returns the
  header block only; ``FULL`` or no RET returns the whole message in a "failed"
  report). Delay and success reports return the headers only: RET=FULL asks for the
  whole message in failed reports alone (RFC 3461 section 4.3). Actions: failed,
  delayed, delivered, and relayed (section 5.2.2: handed to a hop without DSN).
- RFC 3461 section 4.1 (NOTIFY): no NOTIFY means FAILURE,DELAY (the section lets the MTA
  choose between FAILURE and FAILURE,DELAY; we send delay warnings), NEVER means none;
  section 6.3: Original-Envelope-Id from ENVID, Original-Recipient only from ORCPT.
- RFC 6533 for internationalised mail (SMTPUTF8, or an address that is not ASCII):
  ``message/global-delivery-status``, ``message/global`` / ``message/global-headers``
  and the ``utf-8`` address type (utf-8-addr-unitext form, section 3).
- RFC 3463: the Status comes from the enhanced code of the last reply when it agrees
  with the action, else X.0.0 of the action's class.
- RFC 3834 section 5: ``Auto-Submitted: auto-replied``; the caller sends the report with
  a null reverse-path and never reports on a report (`wants_report`).
- RFC 5322: CRLF lines of at most 998 octets (long fields folded at white space), dates
  in section 3.3 form, a unique Message-ID. Text that came from the network (a peer's
  reply, addresses, ENVID) never carries a CR, LF or other control character into a
  header field.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from .queue import QueuedRecipient, QueueEntry

__all__ = ["delivery_report", "wants_report"]

# "relayed" (RFC 3461 section 5.2.2 b): handed to a next hop that does not offer DSN,
# for a recipient with NOTIFY=SUCCESS; that hop will send no success report.
ACTIONS = ("failed", "delayed", "delivered", "relayed")
_NOTIFY_FOR_ACTION = {
    "failed": "FAILURE",
    "delayed": "DELAY",
    "delivered": "SUCCESS",
    "relayed": "SUCCESS",
}
_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Successful Mail Delivery Report",
}
_DEFAULT_STATUS = {"failed": "5.0.0", "delayed": "4.0.0", "delivered": "2.0.0", "relayed": "2.0.0"}
_STATUS_CLASSES = {"failed": "45", "delayed": "4", "delivered": "2", "relayed": "2"}

HEADER_LIMIT = 256 * 1024  # octets of an original header block we ever return
DIAGNOSTIC_LIMIT = 4096  # characters of a peer's reply kept in a report
_LINE_LIMIT = 998  # RFC 5322 section 2.1.1, without the CRLF
_FOLD_AT = 78  # preferred line length (RFC 5322 section 2.1.1)
_PIECE = 900  # longest run without white space put on one line

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_REPLY = re.compile(r"([2-5])[0-9]{2}(?:[ -]+([245])\.([0-9]{1,3})\.([0-9]{1,3})(?![0-9.]))?")
_CONTINUATION = re.compile(r"[2-5][0-9]{2}[ -]?")
_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}(?= |$)")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_HOST_JUNK = re.compile(r"[^A-Za-z0-9.\-\[\]:]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DIRTY = re.compile(rb"\r(?!\n)|(?<!\r)\n|\x00|[^\r\n]{999}")


def wants_report(entry: QueueEntry, recipient: QueuedRecipient, action: str) -> bool:
    """Whether the sender asked (or, by default, expects) a report of ``action`` for
    ``recipient`` (RFC 3461 section 4.1). Never for the null sender or for a report we
    generated ourselves: a report about a report could loop forever."""
    if entry.sender == "" or entry.kind == "bounce":
        return False
    notify = recipient.notify
    if notify is None:  # the default: FAILURE,DELAY
        return action in ("failed", "delayed")
    return _NOTIFY_FOR_ACTION.get(action, "") in notify


def delivery_report(
    entry: QueueEntry,
    recipients: Sequence[QueuedRecipient],
    *,
    action: str,
    reporting_mta: str,
    message: BinaryIO,
    now: float,
    retry_until: float | None = None,
    max_returned: int = 1_000_000,
) -> bytes:
    """The whole report message (CRLF lines) to queue for ``entry.sender`` with a null
    reverse-path. Raises ValueError for an unknown action, no recipients or a null
    sender (check `wants_report` first)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown report action {action!r}")
    if not recipients:
        raise ValueError("a delivery report needs at least one recipient")
    if entry.sender == "":
        raise ValueError("no report is ever sent to the null sender")
    host = _mta_name(reporting_mta) or "localhost"
    utf8 = entry.smtputf8 or any(
        _NON_ASCII.search(text)
        for text in (
            entry.sender,
            entry.envid or "",
            *(r.address for r in recipients),
            *(r.orcpt or "" for r in recipients),
        )
    )
    returned, content_type, note = _returned_content(entry, action, message, max_returned, utf8)
    status_part = _status_part(entry, recipients, action, host, retry_until, utf8)
    text_part = _text_part(entry, recipients, action, host, retry_until, note, utf8).encode()

    report_type = "global-delivery-status" if utf8 else "delivery-status"
    parts = [
        (
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Description: Notification\r\n" + _cte(text_part),
            text_part,
        ),
        (
            f"Content-Type: message/{report_type}\r\n".encode()
            + b"Content-Description: Delivery report\r\n"
            + _cte(status_part),
            status_part,
        ),
        (
            f"Content-Type: {content_type}\r\n".encode()
            + b"Content-Description: Returned content\r\n"
            + _cte(returned),
            returned,
        ),
    ]
    boundary = _boundary(entry.id, [body for _, body in parts])
    eight_bit = any(_has_8bit(body) for _, body in parts)

    to = _clean(entry.sender, ascii_only=not utf8)
    headers = [
        _field("From", f"Mail Delivery System <MAILER-DAEMON@{host}>"),
        _field("To", f"<{to}>"),
        _field("Subject", _SUBJECTS[action]),
        _field("Date", _date(now)),
        _field("Message-ID", f"<{_safe_id(entry.id)}.{secrets.token_hex(8)}@{host}>"),
        "MIME-Version: 1.0\r\n",
        "Auto-Submitted: auto-replied\r\n",
        f'Content-Type: multipart/report; report-type={report_type};\r\n boundary="{boundary}"\r\n',
        f"Content-Transfer-Encoding: {'8bit' if eight_bit else '7bit'}\r\n",
    ]
    out = [
        "".join(headers).encode(),
        b"\r\nThis is a MIME-encapsulated delivery status report.\r\n",
    ]
    delimiter = f"--{boundary}".encode()
    for part_headers, body in parts:
        out += [b"\r\n", delimiter, b"\r\n", part_headers, b"\r\n", body]
    out += [b"\r\n", delimiter, b"--\r\n"]
    return b"".join(out)


# --- the machine-readable part (RFC 3464 section 2) ------------------------------------


def _status_part(
    entry: QueueEntry,
    recipients: Sequence[QueuedRecipient],
    action: str,
    host: str,
    retry_until: float | None,
    utf8: bool,
) -> bytes:
    ascii_only = not utf8
    blocks: list[list[str]] = []
    fields = []
    if entry.envid is not None:
        fields.append(_field("Original-Envelope-Id", _clean(entry.envid, ascii_only)))
    fields.append(_field("Reporting-MTA", f"dns; {host}"))
    fields.append(_field("Arrival-Date", _date(entry.arrival)))
    fields.append(_field("X-Mailproto-Queue-ID", _clean(entry.id, True)))  # an extension-field
    blocks.append(fields)
    for rcpt in recipients:
        fields = []
        original = _orcpt(rcpt.orcpt, utf8) if rcpt.orcpt is not None else None
        if original is not None:
            fields.append(_field("Original-Recipient", original))
        fields.append(_field("Final-Recipient", _typed_address(rcpt.address, utf8)))
        fields.append(_field("Action", action))
        fields.append(_field("Status", _status(action, rcpt.last_reply)))
        if rcpt.remote_mta:
            remote = _mta_name(rcpt.remote_mta)
            if remote:
                fields.append(_field("Remote-MTA", f"dns; {remote}"))
        diagnostic = _diagnostic(rcpt.last_reply or "", ascii_only)
        if diagnostic:
            fields.append(_field("Diagnostic-Code", f"smtp; {diagnostic}"))
        if rcpt.last_attempt is not None:
            fields.append(_field("Last-Attempt-Date", _date(rcpt.last_attempt)))
        if action == "delayed" and retry_until is not None:
            fields.append(_field("Will-Retry-Until", _date(retry_until)))
        blocks.append(fields)
    return "\r\n".join("".join(block) for block in blocks).encode()


def _status(action: str, reply: str | None) -> str:
    """The RFC 3463 code: the reply's enhanced code when its class agrees with the reply
    code and fits the action, else X.0.0 of the reply's class when that fits, else the
    action's default (RFC 3464 section 2.3.4)."""
    m = _REPLY.match(reply.lstrip()) if reply else None
    if m is not None and m.group(1) in _STATUS_CLASSES[action]:
        if m.group(2) == m.group(1):
            return f"{m.group(2)}.{int(m.group(3))}.{int(m.group(4))}"
        return f"{m.group(1)}.0.0"
    return _DEFAULT_STATUS[action]


def _diagnostic(reply: str, ascii_only: bool) -> str:
    """A reply as one line: the lines of a multiline reply joined by spaces, without the
    repeated code and enhanced code of the continuation lines."""
    lines = [line for line in re.split(r"\r\n|\r|\n", reply) if line.strip()]
    if not lines:
        return ""
    first = lines[0].strip()
    m = _REPLY.match(first)
    enhanced = f"{m.group(2)}.{m.group(3)}.{m.group(4)}" if m and m.group(2) else None
    joined = [first]
    for line in lines[1:]:
        line = line.strip()
        code = _CONTINUATION.match(line)
        if code is not None and line[:3] == first[:3]:
            line = line[code.end() :].lstrip()
        repeated = _ENHANCED.match(line)
        if repeated is not None and repeated.group() == enhanced:
            line = line[repeated.end() :].lstrip()
        joined.append(line)
    text = " ".join(_clean(" ".join(joined), ascii_only).split())
    if len(text) > DIAGNOSTIC_LIMIT:
        text = text[: DIAGNOSTIC_LIMIT - 3] + "..."
    return text


def _typed_address(address: str, utf8: bool) -> str:
    """``rfc822; addr`` or, for an address that is not ASCII, ``utf-8; addr`` in the
    utf-8-addr-unitext form of RFC 6533 section 3."""
    if _NON_ASCII.search(address) and utf8:
        return f"utf-8; {_unitext(address)}"
    return f"rfc822; {_clean(address, not utf8)}"


def _orcpt(orcpt: str, utf8: bool) -> str | None:
    """Original-Recipient from the ORCPT parameter (``type;address``, xtext decoded);
    None when no address is left to show."""
    kind, sep, address = orcpt.partition(";")
    if not sep:
        kind, address = "rfc822", orcpt
    kind = kind.strip()
    address = _clean(address, False).strip()
    if not address:
        return None
    if _ATOM.fullmatch(kind) is None:
        kind = "unknown"
    if kind.lower() == "rfc822":
        return _typed_address(address, utf8)
    return f"{kind}; {_clean(address, not utf8)}"


def _unitext(address: str) -> str:
    """RFC 6533 utf-8-addr-unitext: ASCII controls, space, ``\\``, ``+`` and ``=`` as
    ``\\x{HEX}``, other characters as they are (UTF-8)."""
    out = []
    for ch in address:
        code = ord(ch)
        if code < 0x21 or code == 0x7F or ch in "\\+=" or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{{{code:02X}}}")
        else:
            out.append(ch)
    return "".join(out)


# --- the human-readable part ----------------------------------------------------------


def _text_part(
    entry: QueueEntry,
    recipients: Sequence[QueuedRecipient],
    action: str,
    host: str,
    retry_until: float | None,
    note: str,
    utf8: bool,
) -> str:
    ascii_only = not utf8
    lines = [f"This is the mail delivery system at {host}.", ""]
    if action == "failed":
        intro = (
            "Your message could not be delivered to the recipients listed below. "
            "The delivery was refused for good, or did not succeed in the time the "
            "system keeps trying, so it has been given up."
        )
    elif action == "delayed":
        until = f" until {_date(retry_until)}" if retry_until is not None else ""
        intro = (
            "Your message has not been delivered yet to the recipients listed below. "
            f"Nothing needs to be done on your side: the system keeps trying{until}, "
            "and tells you again only if it has to give up."
        )
    elif action == "delivered":
        intro = (
            "Your message was delivered to the recipients listed below. You asked to "
            "be told when that happens."
        )
    else:
        intro = (
            "Your message was passed on for the recipients listed below to a system "
            "that does not send delivery reports, so you will hear nothing more about "
            "its delivery from there. You asked to be told when it is delivered."
        )
    lines += textwrap.wrap(intro, 72)
    lines.append("")
    lines += textwrap.wrap(note, 72)
    lines.append("")
    for rcpt in recipients:
        lines += textwrap.wrap(f"<{_clean(rcpt.address, ascii_only)}>:", 72)
        where = ""
        if rcpt.remote_mta:
            where = f" by {_clean(rcpt.remote_mta, ascii_only)}"
        diagnostic = _diagnostic(rcpt.last_reply or "", ascii_only)
        if diagnostic:
            said = f"The last answer{where} was: {diagnostic}"
        else:
            said = f"Delivery {action}; no answer from another server was recorded."
        if rcpt.attempts:
            said += f" ({rcpt.attempts} attempt{'s' if rcpt.attempts != 1 else ''})"
        lines += textwrap.wrap(said, 72, initial_indent="    ", subsequent_indent="    ")
        lines.append("")
    return "\r\n".join(lines)


# --- the returned content (RFC 3462/6522 section 3, RFC 3461 section 4.3) ------------


def _returned_content(
    entry: QueueEntry, action: str, message: BinaryIO, max_returned: int, utf8: bool
) -> tuple[bytes, str, str]:
    """(body, content type, sentence for the text part). The message is read once, at
    most max(max_returned, HEADER_LIMIT) + 1 octets."""
    limit = max(max_returned, HEADER_LIMIT) + 1
    data = _read(message, limit)
    whole = len(data) <= max_returned
    full_type = "message/global" if utf8 else "message/rfc822"
    headers_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    if action != "failed":
        reason = "The headers of your message are attached."
    elif entry.ret == "HDRS":
        reason = "As you asked, only the headers of your message are attached."
    elif not whole:
        reason = (
            f"Your message is larger than {max_returned} octets, so only its headers are attached."
        )
    else:
        body = data if data.endswith(b"\n") or not data else data + b"\r\n"
        if _DIRTY.search(body) is None:
            return body, full_type, "Your message is attached."
        reason = (
            "Your message has lines that cannot be sent back unchanged (too long, or "
            "not ended by CRLF), so only its headers are attached."
        )
    return _header_block(data, complete=len(data) < limit), headers_type, reason


def _read(stream: BinaryIO, limit: int) -> bytes:
    chunks = []
    size = 0
    while size < limit:
        chunk = stream.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _header_block(data: bytes, *, complete: bool) -> bytes:
    """The original header block without its empty line, every line CRLF-ended and at
    most 998 octets, without NUL. No empty line: all of a complete message is header
    (RFC 5322 section 2.1); of a cut one, the lines before HEADER_LIMIT."""
    m = _HEADER_END.search(data, 0, HEADER_LIMIT + 4)
    if data.startswith((b"\r\n", b"\n")):
        block = b""
    elif m is not None and m.start() <= HEADER_LIMIT:
        block = data[: m.start()]
    elif complete and len(data) <= HEADER_LIMIT:
        block = data
    else:
        block = data[:HEADER_LIMIT]
        cut = max(block.rfind(b"\n"), block.rfind(b"\r"))
        block = block[:cut] if cut >= 0 else b""
    lines = re.split(rb"\r\n|\r|\n", block.replace(b"\x00", b""))
    return b"".join(line[:_LINE_LIMIT] + b"\r\n" for line in lines if line)


# --- small helpers ----------------------------------------------------------------------


def _clean(text: str, ascii_only: bool) -> str:
    """Text from the network made safe for one header line: every control character
    (CR and LF among them) becomes a space, and ``?`` stands for what ASCII cannot say
    when the report is not internationalised."""
    text = _CONTROLS.sub(" ", text)
    if ascii_only:
        text = _NON_ASCII.sub("?", text)
    return text


def _field(name: str, value: str) -> str:
    """``name: value`` CRLF, folded at spaces near 78 octets; no line over 998 octets (a
    run without spaces longer than 900 octets is split with a folding space)."""
    value = _CONTROLS.sub(" ", value)
    words: list[str] = []
    for word in value.split(" "):
        words += _pieces(word) if word else []
    lines = [f"{name}:"]
    for word in words:
        current = lines[-1]
        if len(current) == len(name) + 1 or _octets(current) + 1 + _octets(word) <= _FOLD_AT:
            lines[-1] = f"{current} {word}"
        else:
            lines.append(f" {word}")
    return "\r\n".join(lines) + "\r\n"


def _pieces(word: str) -> Iterable[str]:
    piece = ""
    size = 0
    for ch in word:
        n = len(ch.encode("utf-8", "surrogatepass"))
        if size + n > _PIECE:
            yield piece
            piece, size = "", 0
        piece += ch
        size += n
    yield piece


def _octets(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _date(timestamp: float) -> str:
    """RFC 5322 section 3.3 date-time, in UTC (``+0000``)."""
    return format_datetime(datetime.fromtimestamp(timestamp, UTC))


def _mta_name(host: str) -> str:
    """A host name for an ``dns;`` mta-name: A-labels for a non-ASCII name (IDNA),
    and nothing but letters, digits and ``.-[]:``."""
    host = host.strip()
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # no IDNA form: the ASCII left of it
            host = host.encode("idna").decode("ascii")
    return _HOST_JUNK.sub("", host)


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "", text) or "report"


def _boundary(seed: str, bodies: Sequence[bytes]) -> str:
    """A multipart boundary (RFC 2046 section 5.1.1) found in none of the parts."""
    while True:
        boundary = f"=_{_safe_id(seed)[:20]}.{secrets.token_hex(12)}"
        if not any(boundary.encode() in body for body in bodies):
            return boundary


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


def _cte(body: bytes) -> bytes:
    return b"Content-Transfer-Encoding: 8bit\r\n" if _has_8bit(body) else b""
