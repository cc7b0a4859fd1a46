"""``mailproto ls`` and ``mailproto read``: look at a mailbox over IMAP from a terminal.

``ls`` lists the folders (LIST, then STATUS MESSAGES UNSEEN for each: RFC 3501 6.3.8,
6.3.10) or, given one, its messages newest first (EXAMINE, UID SEARCH ALL, UID FETCH
(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)). ``read FOLDER UID`` fetches one message
with BODY.PEEK[] (so reading does not set \\Seen) and shows its main header fields
(RFC 2047 words decoded), its text (text/plain, or text/html turned into plain text:
tags dropped, script and style skipped, entities decoded) and its attachments with
their decoded sizes. Everything that came from the message or the server is shown
with control characters escaped (`common.safe`), so a message cannot drive the
terminal. ``--raw`` writes the message's bytes as they are; ``--save-attachments DIR``
writes each attachment under a file name reduced to safe characters, never outside DIR
and never over an existing file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import email.policy
import email.utils
import os
import re
import shutil
import sys
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mailproto.imap import responses as r

from .common import (
    EX_NOINPUT,
    EX_OK,
    EX_USAGE,
    CliError,
    Parser,
    add_connection_options,
    ending,
    human_size,
    open_imap,
    run,
    safe,
)

__all__ = ["html_to_text", "ls_main", "main", "safe_filename"]

LS_PROG = "mailproto ls"
READ_PROG = "mailproto read"


def ls_parser() -> argparse.ArgumentParser:
    p = Parser(prog=LS_PROG, description="List the folders, or the messages of one folder.")
    p.add_argument("folder", nargs="?", help="list this folder's messages")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    add_connection_options(p, "imap")
    return p


def read_parser() -> argparse.ArgumentParser:
    p = Parser(prog=READ_PROG, description="Show one message.")
    p.add_argument("folder")
    p.add_argument("uid", type=int)
    p.add_argument("--raw", action="store_true", help="write the message's bytes as they are")
    p.add_argument("--save-attachments", metavar="DIR", help="save the attachments in DIR")
    add_connection_options(p, "imap")
    return p


def ls_main(argv: list[str]) -> int:
    """``mailproto ls ARGS``: the exit status."""
    return run(LS_PROG, ls_parser(), argv, _ls)


def main(argv: list[str]) -> int:
    """``mailproto read ARGS``: the exit status."""
    return run(READ_PROG, read_parser(), argv, _read)


# -- decoding for display ---------------------------------------------------------------


def _header_text(name: str, raw: bytes | str | None) -> str:
    """A header value as a person reads it: RFC 2047 words decoded, controls escaped."""
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    # Any malformed value is shown as it came.
    with contextlib.suppress(Exception):
        text = str(email.policy.default.header_factory(name, text))
    return safe(" ".join(text.split()))


def _envelope_from(envelope: r.Envelope | None) -> str:
    if envelope is None or not envelope.from_:
        return ""
    address = envelope.from_[0]
    if address.name:
        return _header_text("subject", address.name)
    mailbox = (address.mailbox or b"").decode("utf-8", "replace")
    host = (address.host or b"").decode("utf-8", "replace")
    return safe(f"{mailbox}@{host}" if host else mailbox)


def _date(envelope: r.Envelope | None, internal: Any) -> str:
    when: datetime.datetime | None = None
    if envelope is not None and envelope.date:
        try:
            when = email.utils.parsedate_to_datetime(envelope.date.decode("ascii", "replace"))
        except (TypeError, ValueError, IndexError):
            when = None
    if when is None and isinstance(internal, datetime.datetime):
        when = internal
    if when is None:
        return "?"
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


_FLAG_SHORT = {"\\seen": "S", "\\answered": "R", "\\flagged": "F", "\\deleted": "T", "\\draft": "D"}


def _flags(flags: tuple[str, ...]) -> str:
    """Flags as Maildir letters (N for unseen), keywords after them."""
    lower = [f.lower() for f in flags]
    letters = "".join(sorted(_FLAG_SHORT[f] for f in lower if f in _FLAG_SHORT))
    if "\\seen" not in lower:
        letters = "N" + letters
    keywords = [safe(f) for f in flags if not f.startswith("\\")]
    return " ".join([letters or "-", *keywords])


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


# -- ls -------------------------------------------------------------------------------


def _ls(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1", EX_USAGE)
    with ending(open_imap(args)) as imap:
        if args.folder is None:
            rows = []
            for entry in imap.list("", "*"):
                attributes = {a.lower() for a in entry.attributes}
                if {"\\noselect", "\\nonexistent"} & attributes:
                    rows.append((entry.mailbox, "-", "-"))
                    continue
                status = imap.status(entry.mailbox, ("MESSAGES", "UNSEEN"))
                rows.append(
                    (
                        entry.mailbox,
                        str(status.get("MESSAGES", "?")),
                        str(status.get("UNSEEN", "?")),
                    )
                )
            rows.sort(key=lambda row: (row[0].upper() != "INBOX", row[0]))
            width = max([len("FOLDER"), *(len(safe(row[0])) for row in rows)])
            print(f"{'FOLDER':<{width}}  {'MESSAGES':>8}  {'UNSEEN':>6}")
            for name, messages, unseen in rows:
                print(f"{safe(name):<{width}}  {messages:>8}  {unseen:>6}")
            return EX_OK
        mailbox = imap.examine(args.folder)
        uids = sorted(imap.search("ALL"), reverse=True)[: args.limit] if mailbox.exists else []
        found = (
            imap.fetch(uids, ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"])
            if (uids)
            else {}
        )
    columns = shutil.get_terminal_size((100, 24)).columns
    uid_width = max([3, *(len(str(u)) for u in uids)])
    print(f"{'UID':>{uid_width}}  {'DATE':<16}  {'FROM':<20}  {'SIZE':>8}  {'FLAGS':<5}  SUBJECT")
    fixed = uid_width + 2 + 16 + 2 + 20 + 2 + 8 + 2 + 5 + 2
    for uid in uids:
        item = found.get(uid)
        if item is None:
            continue
        envelope = item.get("ENVELOPE")
        subject = _header_text("subject", envelope.subject if envelope else None)
        sender = _fit(_envelope_from(envelope), 20)
        flags = _flags(tuple(item.get("FLAGS") or ()))
        size = human_size(int(item.get("RFC822.SIZE") or 0))
        line = (
            f"{uid:>{uid_width}}  {_date(envelope, item.get('INTERNALDATE')):<16}  "
            f"{sender:<20}  {size:>8}  {flags:<5}  "
        )
        print(line + _fit(subject, max(columns - max(len(line), fixed) - 1, 20)))
    return EX_OK


# -- read -----------------------------------------------------------------------------


class _HTMLText(HTMLParser):
    """Crude HTML to text: the character data, line breaks for blocks, nothing run."""

    BLOCKS = frozenset(
        {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
        | {"blockquote", "pre", "hr", "section", "article", "header", "footer"}
    )
    SKIP = frozenset(("script", "style", "head", "title", "template", "noscript"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.out.append("\n")
            if tag == "li":
                self.out.append("* ")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.out.append("\n")
        elif tag == "a" and self.href:
            if self.href.startswith(("http:", "https:", "mailto:")):
                self.out.append(f" <{self.href}>")
            self.href = None

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Plain text from HTML, crudely: enough to read a message, nothing interpreted."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip() + "\n"


def _parts(message: Message) -> Iterator[Message]:
    """The leaf parts; an attached message (message/rfc822) counts as one leaf."""
    if message.get_content_maintype() == "multipart":
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from _parts(part)
    else:
        yield message


def _attachments(message: EmailMessage, body: Message | None) -> list[Message]:
    found = []
    for part in _parts(message):
        if part is body:
            continue
        disposition = part.get_content_disposition()
        named = part.get_filename() is not None
        if disposition == "attachment" or named or part.get_content_maintype() != "text":
            found.append(part)
    return found


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=email.policy.SMTP)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):
        data = part.get_payload(decode=True)
        content = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
    text = content.replace("\r\n", "\n") if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text


_UNSAFE_NAME = re.compile(r"[^\w.\-+=,@ ()\[\]]")


def safe_filename(name: str | None, index: int, part: Message) -> str:
    """A file name without directories, controls or odd characters (``attachment-N``
    when nothing is left), at most 120 characters, never ``.`` or ``..`` or hidden."""
    base = (name or "").replace("\\", "/").split("/")[-1]
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    if len(base) > 120:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 120 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:120]
    if not base:
        import mimetypes

        ext = mimetypes.guess_extension(part.get_content_type()) or ".bin"
        base = f"attachment-{index}{ext}"
    return base


def _save(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new file in ``directory``; ``name (2).ext`` if it exists."""
    directory.mkdir(parents=True, exist_ok=True)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    for n in range(1, 1000):
        candidate = name if n == 1 else f"{stem} ({n}){'.' + ext if ext else ''}"
        path = directory / candidate
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path
    raise CliError(f"{directory}: too many files named {name!r}", EX_USAGE)


def _read(args: argparse.Namespace) -> int:
    with ending(open_imap(args)) as imap:
        mailbox = imap.examine(args.folder)
        raw = b""
        if mailbox.exists:
            found = imap.fetch([args.uid], ["UID", "BODY.PEEK[]"])
            item = found.get(args.uid)
            raw = (item.get("BODY[]") if item is not None else None) or b""
    if not raw:
        raise CliError(f"no message with UID {args.uid} in {safe(args.folder)}", EX_NOINPUT)
    if args.raw:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        return EX_OK
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    for name in ("Date", "From", "To", "Cc", "Subject"):
        value = message.get(name)
        if value is not None:
            print(f"{name}: {_header_text(name, str(value))}")
    print()
    try:
        body = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError):
        body = None
    if body is not None:
        text = _text_of(body)
        print(safe(text, keep_newlines=True).rstrip("\n"))
    else:
        print("(no text part)")
    attachments = _attachments(message, body)
    if attachments:
        print()
        print("Attachments:")
    directory = Path(args.save_attachments) if args.save_attachments else None
    for index, part in enumerate(attachments, 1):
        data = _payload(part)
        filename = part.get_filename()
        shown = _header_text("subject", filename) if filename else "(no name)"
        print(f"  {index}. {shown}  {safe(part.get_content_type())}  {human_size(len(data))}")
        if directory is not None:
            path = _save(directory, safe_filename(filename, index, part), data)
            print(f"     saved as {safe(str(path))}")
    return EX_OK
