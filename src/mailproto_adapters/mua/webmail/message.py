"""Messages for the browser: reading them safely and writing them without injection.

Reading: a fetched message is parsed with the `email` package (RFC 5322, MIME RFC 2045
to 2049). Its text/plain part is shown escaped; its text/html part goes through nh3 (an
allow-list sanitizer: no script, no event handler attribute, no style sheet, no form,
only http, https and mailto links), remote images are removed unless the reader asked
for them, and ``cid:`` images (RFC 2392) are replaced by ``data:`` URLs made from the
message's own parts, so nothing but the message itself is ever loaded for it. The page
shows that HTML in a sandboxed iframe under its own Content-Security-Policy.

Writing: every header value from the compose form is refused if it holds CR or LF (or
NUL), addresses are parsed by the `email` package's header registry, and the message is
serialised by it (RFC 2047 encoded words, RFC 2231 file names): a form field can never
start a new header line. Attachment names are reduced to a plain file name.
"""

from __future__ import annotations

import base64
import email
import email.errors
import email.header
import email.message
import email.policy
import email.utils
import html
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable
from typing import Any

import attrs
import nh3

from mailproto.imap import responses as r

__all__ = [
    "Attachment",
    "HeaderInjection",
    "ReadMessage",
    "build_message",
    "content_disposition",
    "decode_header",
    "format_addresses",
    "has_attachment",
    "parse_message",
    "safe_filename",
    "sanitize_html",
]

MAX_INLINE_IMAGES = 8 << 20  # octets of cid: images turned into data: URLs, in all
MAX_TEXT = 2 << 20  # characters of a text part shown


class HeaderInjection(ValueError):
    """A compose field tried to carry a line break into a header."""


def decode_header(raw: bytes | str | None) -> str:
    """An unstructured header value (RFC 2047 encoded words decoded), for display."""
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        decoded = str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        decoded = text
    return " ".join(decoded.split())


def _address(a: r.Address) -> str:
    name = decode_header(a.name) if a.name else ""
    mailbox = (a.mailbox or b"").decode("utf-8", "replace")
    host = (a.host or b"").decode("utf-8", "replace")
    addr = f"{mailbox}@{host}" if host else mailbox
    return name or addr


def format_addresses(addresses: tuple[r.Address, ...] | None) -> str:
    """Display names (or addresses) of an ENVELOPE address list."""
    if not addresses:
        return ""
    return ", ".join(_address(a) for a in addresses if a.host is not None or a.mailbox)


def _parts(body: Any) -> Iterable[Any]:
    yield body
    if isinstance(body, r.BodyMultipart):
        for part in body.parts:
            yield from _parts(part)


def has_attachment(body: Any) -> bool:
    """Whether a BODYSTRUCTURE has a part given as an attachment (or a named file)."""
    for part in _parts(body):
        if isinstance(part, r.BodyMultipart):
            continue
        disposition = getattr(part, "disposition", None)
        if disposition is not None and disposition.type.lower() == b"attachment":
            return True
        if isinstance(part, r.BodyBasic) and part.media_type.lower() not in (b"image",):
            return True
        if isinstance(part, r.BodyMessage) and part is not body:
            return True
    return False


@attrs.frozen(kw_only=True)
class Attachment:
    """A part offered for download: its index in the message's walk order."""

    index: int
    filename: str
    content_type: str
    size: int


@attrs.frozen(kw_only=True)
class ReadMessage:
    """What the read page shows."""

    subject: str
    sender: str
    to: str
    cc: str
    date: str
    message_id: str
    references: str
    reply_to: str
    text: str | None
    html: str | None  # the raw HTML part, sanitised only when shown
    attachments: tuple[Attachment, ...]
    has_remote_images: bool


def parse_message(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def _header(message: email.message.Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header the registry cannot parse
        value = None
    if value is None:
        return ""
    return " ".join(str(value).split())


def _content(part: email.message.Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


_REMOTE = re.compile(r"""<img[^>]+src\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE)


def read_message(data: bytes) -> ReadMessage:
    """The parts of a message the read page needs."""
    message = parse_message(data)
    text: str | None = None
    html_part: str | None = None
    attachments: list[Attachment] = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if disposition != "attachment" and filename is None:
            if ctype == "text/plain" and text is None:
                text = _content(part)[:MAX_TEXT]
                continue
            if ctype == "text/html" and html_part is None:
                html_part = _content(part)[:MAX_TEXT]
                continue
            if ctype.startswith("image/") and part.get("Content-ID"):
                continue  # an inline image of the HTML part
        if index == 0 and ctype.startswith("text/"):
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        name = safe_filename(filename or f"part-{index}{_extension(ctype)}")
        attachments.append(Attachment(index=index, filename=name, content_type=ctype, size=size))
    return ReadMessage(
        subject=decode_header(_header(message, "Subject")),
        sender=_header(message, "From"),
        to=_header(message, "To"),
        cc=_header(message, "Cc"),
        date=_header(message, "Date"),
        message_id=_header(message, "Message-ID"),
        references=_header(message, "References"),
        reply_to=_header(message, "Reply-To"),
        text=text,
        html=html_part,
        attachments=tuple(attachments),
        has_remote_images=bool(html_part and _REMOTE.search(html_part)),
    )


def _extension(ctype: str) -> str:
    return {"text/plain": ".txt", "text/html": ".html", "message/rfc822": ".eml"}.get(ctype, ".bin")


def message_part(data: bytes, index: int) -> tuple[str, str, bytes] | None:
    """(file name, content type, decoded bytes) of the part at ``index`` in walk order."""
    message = parse_message(data)
    for i, part in enumerate(message.walk()):
        if i != index:
            continue
        if part.is_multipart():
            return None
        ctype = part.get_content_type()
        if ctype == "message/rfc822" or isinstance(part.get_payload(), list):
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            body = (
                first.as_bytes(policy=email.policy.SMTP)
                if isinstance(first, email.message.Message)
                else b""
            )
        else:
            payload = part.get_payload(decode=True)
            body = payload if isinstance(payload, bytes) else b""
        name = safe_filename(part.get_filename() or f"part-{index}{_extension(ctype)}")
        return name, ctype, body
    return None


def inline_images(data: bytes) -> dict[str, tuple[str, bytes]]:
    """Content-ID (without <>) -> (type, bytes) of the message's image parts."""
    out: dict[str, tuple[str, bytes]] = {}
    total = 0
    for part in parse_message(data).walk():
        cid = part.get("Content-ID")
        if not cid or not part.get_content_type().startswith("image/"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        total += len(payload)
        if total > MAX_INLINE_IMAGES:
            break
        out[str(cid).strip().strip("<>")] = (part.get_content_type(), payload)
    return out


# -- HTML ----------------------------------------------------------------------------------

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "center"}
_ATTRIBUTES: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("*", set()).update({"title", "lang", "dir", "style"})
_ATTRIBUTES.setdefault("font", set()).update({"color", "face", "size"})
_ATTRIBUTES.setdefault("td", set()).update({"bgcolor", "valign", "width", "height"})
_ATTRIBUTES.setdefault("table", set()).update({"bgcolor", "border", "cellpadding", "width"})
_ATTRIBUTES["table"].add("cellspacing")
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height"})
# CSS properties allowed in style attributes: layout and colour, never url() loaders
# (background-image, list-style-image, content, cursor and the like are left out).
_STYLE = {
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "font-size",
    "font-family",
    "text-align",
    "text-decoration",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-collapse",
    "width",
    "max-width",
    "height",
    "line-height",
    "vertical-align",
    "white-space",
    "display",
}


def sanitize_html(
    source: str, images: dict[str, tuple[str, bytes]], *, load_remote: bool
) -> tuple[str, bool]:
    """nh3-clean HTML; ``cid:`` images become data: URLs, remote ones are dropped unless
    ``load_remote``. Returns the HTML and whether a remote image was dropped."""
    blocked = False

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            lowered = value.strip().lower()
            if lowered.startswith("cid:"):
                found = images.get(urllib.parse.unquote(value.strip()[4:]).strip("<>"))
                if found is None:
                    return None
                ctype, payload = found
                return f"data:{ctype};base64,{base64.b64encode(payload).decode('ascii')}"
            if lowered.startswith(("http:", "https:", "//")):
                if load_remote:
                    return value
                blocked = True
                return None
            return None
        return value

    cleaned = nh3.clean(
        source,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "cid"},
        filter_style_properties=_STYLE,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
    return cleaned, blocked


def text_to_html(text: str) -> str:
    """Plain text for a page: escaped, links left as text."""
    return html.escape(text)


# -- writing -------------------------------------------------------------------------------

_BAD = re.compile(r"[\r\n\x00]")


def check_header(name: str, value: str) -> str:
    """A compose field's value, refused if it could break a header line."""
    if _BAD.search(value):
        raise HeaderInjection(f"the {name} field holds a line break")
    return value.strip()


def split_addresses(field: str, value: str) -> list[str]:
    """The addresses of a To/Cc/Bcc field, each checked (``name <addr>`` or ``addr``)."""
    check_header(field, value)
    out = []
    for name, addr in email.utils.getaddresses([value]):
        if not addr:
            continue
        if "@" not in addr or any(c.isspace() or c in '<>,;"' for c in addr):
            raise ValueError(f"not an address in {field}: {addr!r}")
        out.append(email.utils.formataddr((name, addr)) if name else addr)
    return out


def safe_filename(name: str) -> str:
    """A plain file name: no directories, no control characters, not hidden, bounded."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '<>:"|?*')
    name = name.strip().lstrip(".").strip()
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:9]) if dot and len(ext) < 10 else name[:120]
    return name or "attachment"


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """RFC 6266 Content-Disposition with an ASCII fallback and RFC 8187 ``filename*``."""
    kind = "inline" if inline else "attachment"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_" for c in filename)
    encoded = urllib.parse.quote(filename, safe="")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


def build_message(
    *,
    sender: str,
    to: list[str],
    cc: list[str],
    bcc: list[str],
    subject: str,
    body: str,
    attachments: list[tuple[str, str, bytes]],
    in_reply_to: str = "",
    references: str = "",
    forwarded: bytes | None = None,
    domain: str = "localhost",
) -> email.message.EmailMessage:
    """A new message from checked compose fields (the email package serialises it)."""
    message = email.message.EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if bcc:
        message["Bcc"] = ", ".join(bcc)
    message["Subject"] = check_header("Subject", subject)
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    if in_reply_to:
        message["In-Reply-To"] = check_header("In-Reply-To", in_reply_to)
    if references:
        message["References"] = check_header("References", references)
    message["MIME-Version"] = "1.0"
    message.set_content(body.replace("\r\n", "\n"))
    for filename, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        if not maintype or not subtype or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", ctype):
            maintype, subtype = "application", "octet-stream"
        if maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        if maintype == "text":
            message.add_attachment(
                data.decode("utf-8", "replace"), subtype=subtype, filename=safe_filename(filename)
            )
        else:
            message.add_attachment(
                data, maintype=maintype, subtype=subtype, filename=safe_filename(filename)
            )
    if forwarded is not None:
        inner = email.message_from_bytes(forwarded, policy=email.policy.default)
        message.add_attachment(inner, filename="forwarded.eml")
    return message
