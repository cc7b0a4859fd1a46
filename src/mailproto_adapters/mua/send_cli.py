"""``mailproto send``: compose a message (or take a ready one) and submit it.

Submission is RFC 6409 over `SMTPClient` (STARTTLS RFC 3207, AUTH RFC 4954). The message
is an RFC 5322 one made by the standard library's `email` package (policy SMTP: CRLF
line ends, RFC 2047 encoded words for non-ASCII text; MIME per RFC 2045-2049 with the
attachments' types guessed from their names). Header values given as options are
checked for CR, LF and NUL before anything is built, so that an option cannot smuggle a
header field or a second message in. A ready message (``--message``) goes as it is,
with its line ends made CRLF and its Bcc fields removed (as smtplib does); its sender
and recipients come from its header fields unless ``--from`` / ``--to`` give them.

Each recipient's outcome is printed: ``accepted``, or ``refused CODE TEXT``; the status
is 0 when all were accepted, 67 (EX_NOUSER) when one was refused for good and 75
(EX_TEMPFAIL) when the refusals were all temporary (4xx).
"""

from __future__ import annotations

import argparse
import email.policy
import email.utils
import mimetypes
import os
import re
import sys
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from ..blocking import SendResult
from ..errors import RecipientsRefused
from .common import (
    EX_DATAERR,
    EX_NOINPUT,
    EX_NOUSER,
    EX_OK,
    EX_TEMPFAIL,
    EX_USAGE,
    CliError,
    Parser,
    add_connection_options,
    ending,
    open_smtp,
    run,
    safe,
)

__all__ = ["build_message", "main", "parser"]

PROG = "mailproto send"


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description="Compose a message (or send a ready one) through a submission server.",
    )
    compose = p.add_argument_group("composing")
    compose.add_argument("--from", dest="sender", metavar="ADDRESS", help="the author")
    compose.add_argument(
        "--to", action="append", default=[], metavar="ADDRESS", help="a recipient (repeatable)"
    )
    compose.add_argument("--cc", action="append", default=[], metavar="ADDRESS")
    compose.add_argument(
        "--bcc", action="append", default=[], metavar="ADDRESS", help="sent to, never shown"
    )
    compose.add_argument("--subject", default="")
    body = compose.add_mutually_exclusive_group()
    body.add_argument("--body", help="the text (default: standard input)")
    body.add_argument("--body-file", metavar="FILE", help="the text, from FILE (UTF-8)")
    compose.add_argument(
        "--html-file", metavar="FILE", help="an HTML alternative to the text (UTF-8)"
    )
    compose.add_argument(
        "--attach", action="append", default=[], metavar="FILE", help="attach FILE (repeatable)"
    )
    compose.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra header field (repeatable)",
    )
    p.add_argument(
        "--message",
        metavar="FILE",
        help="send the ready message in FILE ('-': standard input) instead of composing",
    )
    p.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the message instead of sending it",
    )
    add_connection_options(p, "submission")
    return p


def main(argv: list[str]) -> int:
    """``mailproto send ARGS``: the exit status."""
    return run(PROG, parser(), argv, _send)


# -- checking what the options say ------------------------------------------------------

_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 3.6.8 ftext
_UNSAFE = re.compile(r"[\r\n\x00]")


def _check_value(option: str, value: str) -> str:
    if _UNSAFE.search(value):
        raise CliError(f"{option}: CR, LF and NUL are not allowed in a header value", EX_DATAERR)
    return value


def _address(option: str, value: str) -> Address:
    """One mailbox (``user@example.org`` or ``Name <user@example.org>``), checked."""
    _check_value(option, value)
    header = email.policy.SMTP.header_factory("to", value)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if header.defects or len(addresses) != 1:
        raise CliError(f"{option} {value!r}: not one valid address", EX_DATAERR)
    address = addresses[0]
    if not address.username or not address.domain:
        raise CliError(
            f"{option} {value!r}: an address needs a local part and a domain", EX_DATAERR
        )
    return address


def _addresses(option: str, values: list[str]) -> list[Address]:
    """Repeated options; a comma separates addresses inside one value too."""
    out: list[Address] = []
    for value in values:
        _check_value(option, value)
        header = email.policy.SMTP.header_factory("to", value)
        if header.defects:
            raise CliError(f"{option} {value!r}: not a valid address list", EX_DATAERR)
        for address in getattr(header, "addresses", ()):
            out.append(_address(option, str(address)))
    return out


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{what} {path}: {exc.strerror or exc}", EX_NOINPUT) from exc


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{what} is not UTF-8 text: {exc}", EX_DATAERR) from exc


def _stdin_bytes() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        data: bytes = buffer.read()
        return data
    return sys.stdin.read().encode("utf-8")


def _guess_type(path: str) -> tuple[str, str]:
    kind, encoding = mimetypes.guess_type(path, strict=False)
    if encoding == "gzip":
        kind = "application/gzip"
    elif encoding is not None or kind is None:
        kind = kind if encoding is None and kind else "application/octet-stream"
    maintype, _, subtype = kind.partition("/")
    return maintype, subtype


# -- building -------------------------------------------------------------------------


def build_message(args: argparse.Namespace, body_text: str) -> EmailMessage:
    """The message the options describe (Bcc included: the client leaves it out)."""
    if not args.sender:
        raise CliError("--from is needed to compose a message", EX_USAGE)
    sender = _address("--from", args.sender)
    to, cc, bcc = (
        _addresses("--to", args.to),
        _addresses("--cc", args.cc),
        _addresses("--bcc", args.bcc),
    )
    if not (to or cc or bcc):
        raise CliError("no recipient: give --to, --cc or --bcc", EX_USAGE)
    extra: list[tuple[str, str]] = []
    for field in args.header:
        name, colon, value = field.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise CliError(f"--header {field!r}: not 'Name: value'", EX_USAGE)
        extra.append((name, _check_value("--header", value.strip())))
    subject = _check_value("--subject", args.subject)

    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    if to:
        message["To"] = to
    if cc:
        message["Cc"] = cc
    if bcc:
        message["Bcc"] = bcc
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)
    domain = sender.domain if sender.domain.isascii() else None
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message["User-Agent"] = "mailproto"
    for name, value in extra:
        message[name] = value
    message.set_content(body_text)
    if args.html_file:
        html = _text(_read(args.html_file, "--html-file"), "--html-file")
        message.add_alternative(html, subtype="html")
    for path in args.attach:
        data = _read(path, "--attach")
        maintype, subtype = _guess_type(path)
        message.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=os.path.basename(path)
        )
    return message


def _strip_bcc(data: bytes) -> bytes:
    """The header section without Bcc / Resent-Bcc fields (and their folded lines)."""
    end = data.find(b"\r\n\r\n")
    head, rest = (data, b"") if end < 0 else (data[: end + 2], data[end + 2 :])
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        dropping = name in (b"bcc", b"resent-bcc")
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + rest


def ready_message(
    args: argparse.Namespace,
) -> tuple[bytes, str | None, list[str]]:
    """--message: its bytes (CRLF, no Bcc) and the envelope from the options or headers."""
    raw = _stdin_bytes() if args.message == "-" else _read(args.message, "--message")
    if not raw.strip():
        raise CliError("the message is empty", EX_DATAERR)
    data = re.sub(rb"\r?\n", b"\r\n", raw)
    headers = BytesParser(policy=email.policy.SMTP).parsebytes(data, headersonly=True)
    resent = "Resent-" if headers.get_all("Resent-Date") else ""
    sender = (
        _address("--from", args.sender).addr_spec
        if args.sender
        else _header_sender(headers, resent)
    )
    given = [a.addr_spec for a in _addresses("--to", args.to + args.cc + args.bcc)]
    if given:
        recipients = given
    else:
        fields = [
            str(v) for name in ("To", "Cc", "Bcc") for v in headers.get_all(resent + name) or []
        ]
        recipients = [a for _, a in email.utils.getaddresses(fields) if a]
    if not recipients:
        raise CliError("no recipient: none in the message's header, and no --to", EX_USAGE)
    return _strip_bcc(data), sender, recipients


def _header_sender(headers: EmailMessage, resent: str) -> str | None:
    field = headers[resent + "Sender"] or headers[resent + "From"]
    if field is None:
        return None
    found = email.utils.getaddresses([str(field)])
    return found[0][1] if found and found[0][1] else None


# -- sending --------------------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    composing = any(
        (args.to, args.cc, args.bcc, args.subject, args.body, args.body_file, args.html_file)
    ) or bool(args.attach or args.header)
    if args.message is not None:
        if any((args.subject, args.body, args.body_file, args.html_file, args.attach, args.header)):
            raise CliError("--message sends a ready message: no composing options", EX_USAGE)
        data, sender, recipients = ready_message(args)
        if args.print_only:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return EX_OK
        with ending(open_smtp(args)) as client:
            try:
                result = client.send_message(data, sender=sender or "", recipients=recipients)
            except RecipientsRefused as exc:
                return _report(recipients, None, exc.refused)
        return _report(recipients, result, result.refused)

    if not composing and not args.sender:
        raise CliError("nothing to send: compose with --from/--to or give --message", EX_USAGE)
    if args.body is not None:
        body_text = args.body
    elif args.body_file is not None:
        body_text = _text(_read(args.body_file, "--body-file"), "--body-file")
    else:
        # Checked first, so that a mistake does not wait for a body on the terminal.
        build_message(args, "")
        if sys.stdin.isatty():
            print(f"{PROG}: type the text, then Ctrl-D", file=sys.stderr)
        body_text = _text(_stdin_bytes(), "standard input")
    message = build_message(args, body_text)
    if args.print_only:
        sys.stdout.buffer.write(bytes(message))
        sys.stdout.flush()
        return EX_OK
    recipients = [a.addr_spec for a in _addresses("--to", args.to + args.cc + args.bcc)]
    with ending(open_smtp(args)) as client:
        try:
            result = client.send_message(
                message, sender=_address("--from", args.sender).addr_spec, recipients=recipients
            )
        except RecipientsRefused as exc:
            return _report(recipients, None, exc.refused)
    return _report(recipients, result, result.refused)


def _report(
    recipients: list[str], result: SendResult | None, refused: dict[str, tuple[int, str]]
) -> int:
    """One line per recipient on stdout; the status says whether all were accepted."""
    for address in recipients:
        if address in refused:
            code, text = refused[address]
            print(f"{safe(address)}: refused {code} {safe(text)}")
        else:
            print(f"{safe(address)}: accepted")
    if result is not None:
        reply = " ".join(result.reply.lines)
        enhanced = f"{result.reply.enhanced} " if result.reply.enhanced else ""
        print(f"server: {result.reply.code} {enhanced}{safe(reply)}")
    if not refused:
        return EX_OK
    if all(400 <= code < 500 for code, _ in refused.values()):
        return EX_TEMPFAIL
    return EX_NOUSER
