"""What ``mailproto send``, ``fetch``, ``ls`` and ``read`` share: connection options,
the password, TLS, exit statuses and text made safe for a terminal.

TLS follows RFC 8314: ``--tls implicit`` (ports 465, 993, 995), ``--tls starttls``
(RFC 3207 STARTTLS, RFC 2595 STLS, RFC 3501 6.2.1 STARTTLS; required), ``--tls none``;
by default STARTTLS when the server offers it, and no password is sent in clear unless
``--tls none`` says so. Passwords never come from argv (``ps`` and shell histories
show it): ``--password-file``, ``MAILPROTO_PASSWORD`` or a prompt.

Exit statuses follow sysexits.h as ``mailproto user`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import re
import ssl
import sys
import unicodedata
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

from mailproto import ProtocolError

from .._transport import TLSFailed, TransportError
from ..blocking import IMAPClient, POP3Client, SMTPClient
from ..errors import AuthenticationFailed, MailError, ServerError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORTS",
    "CliError",
    "Parser",
    "add_connection_options",
    "ending",
    "human_size",
    "open_imap",
    "open_pop3",
    "open_smtp",
    "password",
    "run",
    "safe",
]

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_PROTOCOL = 76
EX_NOPERM = 77

DEFAULT_HOST = "127.0.0.1"
# service -> (plain or STARTTLS port, implicit TLS port): the embedded default's ports
# (DESIGN.md section 4: the standard port + 2000).
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "submission": (2587, 2465),
    "imap": (2143, 2993),
    "pop3": (2110, 2995),
}
PASSWORD_ENV = "MAILPROTO_PASSWORD"
SELF_SIGNED_HINT = "mailproto-data/tls/cert.pem"


class CliError(Exception):
    """A failure to report on stderr as ``PROG: error: message``, with an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as `CliError` (status 64) instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.format_usage().rstrip()}\n{self.prog}: error: {message}", EX_USAGE)


def add_connection_options(parser: argparse.ArgumentParser, services: str) -> None:
    """--server, --tls, --cafile, --insecure, --user, --password-file, --timeout."""
    ports = ", ".join(
        f"{name} {plain} ({implicit} with --tls implicit)"
        for name, (plain, implicit) in DEFAULT_PORTS.items()
        if name in services.split(",")
    )
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server",
        metavar="HOST[:PORT]",
        default=DEFAULT_HOST,
        help=f"the server (default {DEFAULT_HOST}; ports: {ports})",
    )
    group.add_argument(
        "--tls",
        choices=("implicit", "starttls", "none"),
        default=None,
        help="implicit TLS, STARTTLS required, or none (default: STARTTLS when offered; "
        "then a password is never sent in clear)",
    )
    group.add_argument("--cafile", metavar="FILE", help="trust the certificates in FILE (PEM)")
    group.add_argument(
        "--insecure", action="store_true", help="do not check the server's certificate"
    )
    group.add_argument("--user", help="the account to log in as")
    group.add_argument(
        "--password-file",
        metavar="FILE",
        help=f"read the password from FILE's first line (else ${PASSWORD_ENV}, else a prompt)",
    )
    group.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")


def server_address(value: str, service: str, implicit: bool) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6]:PORT or a bare V6 address -> (host, port)."""
    default = DEFAULT_PORTS[service][1 if implicit else 0]
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", value)
    if match:
        host, port = match.group(1), match.group(2)
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, None
    if not host:
        raise CliError(f"--server {value!r}: no host", EX_USAGE)
    if port is None:
        return host, default
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"--server {value!r}: bad port", EX_USAGE)
    return host, int(port)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    """The client context: the system's CAs, or --cafile's; no check with --insecure."""
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"--cafile {args.cafile}: {exc}", EX_NOINPUT) from exc
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def password(args: argparse.Namespace) -> str:
    """--password-file's first line, else $MAILPROTO_PASSWORD, else a prompt on the tty."""
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as file:
                line = file.readline()
        except OSError as exc:
            raise CliError(f"--password-file: {exc.strerror or exc}", EX_NOINPUT) from exc
        return line.removesuffix("\n").removesuffix("\r")
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    try:
        with open("/dev/tty", "rb"):
            pass
    except OSError:
        raise CliError(
            f"no password: use --password-file or ${PASSWORD_ENV} (no terminal to ask on)",
            EX_USAGE,
        ) from None
    try:
        return getpass.getpass(f"Password for {args.user}: ")
    except (EOFError, KeyboardInterrupt):
        raise CliError("no password given", EX_USAGE) from None


def _upgrade(
    args: argparse.Namespace,
    offered: bool,
    secure: bool,
    upgrade: Callable[[ssl.SSLContext], object],
    name: str,
) -> None:
    """STARTTLS/STLS as --tls says; refuse to go on in clear with a password to send."""
    if args.tls in ("implicit", "none") or secure:
        return
    if offered:
        upgrade(tls_context(args))
    elif args.tls == "starttls":
        raise CliError(f"the server does not offer {name} (--tls starttls)", EX_PROTOCOL)
    elif args.user:
        raise CliError(
            f"the server does not offer {name}: the password would go in clear "
            "(--tls none allows it)",
            EX_PROTOCOL,
        )


C = TypeVar("C", SMTPClient, IMAPClient, POP3Client)


def _open(
    args: argparse.Namespace,
    factory: Callable[..., C],
    service: str,
    offered: Callable[[C], bool],
    upgrade: Callable[[C], Callable[[ssl.SSLContext], object]],
    name: str,
    *,
    login_needed: bool,
) -> C:
    """Connect, upgrade as --tls says, and log in: the opening of every command."""
    if login_needed and not args.user:
        raise CliError("--user is needed", EX_USAGE)
    implicit = args.tls == "implicit"
    host, port = server_address(args.server, service, implicit)
    client = factory(
        host,
        port,
        tls=tls_context(args) if implicit else False,
        starttls=False,
        timeout=args.timeout,
    )
    client.connect()
    try:
        secure = client.tls_info is not None
        _upgrade(args, offered(client), secure, upgrade(client), name)
        if args.user:
            client.login(args.user, password(args))
    except BaseException:
        client._drop()  # without QUIT/LOGOUT (IMAP's close() is the CLOSE command)
        raise
    return client


def open_smtp(args: argparse.Namespace) -> SMTPClient:
    """A connected submission client, upgraded and logged in (when --user) as asked."""
    return _open(
        args,
        SMTPClient,
        "submission",
        lambda c: "STARTTLS" in c.extensions,
        lambda c: c.starttls,
        "STARTTLS",
        login_needed=False,
    )


def open_imap(args: argparse.Namespace) -> IMAPClient:
    """A connected IMAP client, upgraded and logged in as asked (--user is required)."""
    return _open(
        args,
        IMAPClient,
        "imap",
        lambda c: "STARTTLS" in c.capabilities,
        lambda c: c.starttls,
        "STARTTLS",
        login_needed=True,
    )


def open_pop3(args: argparse.Namespace) -> POP3Client:
    """A connected POP3 client, upgraded and logged in as asked (--user is required)."""
    return _open(
        args,
        POP3Client,
        "pop3",
        lambda c: "STLS" in c.capabilities,
        lambda c: c.stls,
        "STLS",
        login_needed=True,
    )


@contextlib.contextmanager
def ending(client: C) -> Iterator[C]:
    """A connected client's block: QUIT / LOGOUT at its end, a plain close after an
    exception (the clients' own ``with`` would connect again)."""
    try:
        yield client
    except BaseException:
        if isinstance(client, IMAPClient):
            client.shutdown()
        else:
            client.close()
        raise
    if isinstance(client, IMAPClient):
        client.logout()
    else:
        client.quit()


def run(
    prog: str, parser: argparse.ArgumentParser, argv: list[str], body: Callable[..., int]
) -> int:
    """Parse ``argv`` and run ``body(args)``; every failure becomes a message on stderr
    and a sysexits status (no traceback for what the network or the user did)."""
    try:
        args = parser.parse_args(argv)
    except CliError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        return body(args)
    except CliError as exc:
        message, status = str(exc), exc.status
    except AuthenticationFailed as exc:
        message, status = f"login refused: {exc.code} {exc.text}", EX_NOPERM
    except ServerError as exc:
        message, status = str(exc), EX_TEMPFAIL if exc.temporary else EX_UNAVAILABLE
    except TLSFailed as exc:
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in exc.reason or "certificate" in exc.reason:
            hint = f" (a self-signed server, as the embedded default? --cafile {SELF_SIGNED_HINT})"
        message, status = f"{exc}{hint}", EX_PROTOCOL
    except ProtocolError as exc:
        message, status = f"protocol error: {exc}", EX_PROTOCOL
    except (TransportError, ConnectionError) as exc:
        message, status = f"{args.server}: {exc}", EX_UNAVAILABLE
    except MailError as exc:
        message, status = str(exc), EX_DATAERR
    except KeyboardInterrupt:
        message, status = "interrupted", EX_TEMPFAIL
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        message, status = f"{where}{exc.strerror or exc}", EX_IOERR
    print(f"{prog}: error: {safe(message)}", file=sys.stderr)
    return status


_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe(text: str, *, keep_newlines: bool = False) -> str:
    """Text from a message or a server, fit for a terminal: control characters (escape
    sequences that could rewrite the screen or the title) and bidirectional overrides
    shown as ``\\xNN`` / ``\\uNNNN``; tabs kept, newlines kept when asked."""
    out = []
    for ch in text:
        if ch == "\t" or (keep_newlines and ch == "\n"):
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def human_size(size: int) -> str:
    """1234 -> "1.2 kB" (decimal units, as ls -h --si)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover
