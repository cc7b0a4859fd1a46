"""``mailproto serve`` and ``mailproto check-config``: the whole mail system, one command.

``serve`` reads the configuration (`config`; the embedded default of DESIGN.md section 4
without ``--config``), makes what a first start needs (the data directory, a
self-signed certificate, the demo user, whose password is printed once), starts
`MailSystem` (the MTA's SMTP listeners, RFC 5321 / RFC 6409 / RFC 8314; the MDA's LMTP,
POP3 and IMAP; the delivery runner) and prints a banner saying how to reach each
listener. SIGINT (Ctrl-C) and SIGTERM stop it gracefully: listeners closed, sessions
given ``server.grace`` seconds, the runner stopped, exit status 0.

``check-config`` validates a configuration and prints the effective one (defaults
filled in, secrets masked); exit status 0 when valid, 1 when not.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import anyio
import attrs

from .config import ConfigError, Settings, load_config, render
from .system import SERVICES, MailSystem, SystemConfig, reachable

__all__ = ["check_config_main", "prepare", "serve_main"]

log = logging.getLogger("mailproto.serve")

EX_OK = 0
EX_USAGE = 64
EX_CONFIG = 78
FLAVOURS = ("anyio", "blocking")

# service -> (what it is for, the TLS it offers before the login)
_ROLES: dict[str, tuple[str, str]] = {
    "smtp": ("inbound mail for our domains", "STARTTLS"),
    "submission": ("mail from our users (AUTH, then any destination)", "STARTTLS"),
    "submissions": ("mail from our users (AUTH, then any destination)", "implicit TLS"),
    "pop3": ("read mail over POP3", "STLS"),
    "pop3s": ("read mail over POP3", "implicit TLS"),
    "imap": ("read mail over IMAP", "STARTTLS"),
    "imaps": ("read mail over IMAP", "implicit TLS"),
    "lmtp": ("internal: the MTA hands local mail to the MDA", "no TLS"),
}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors to the caller instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.format_usage().rstrip()}\n{self.prog}: error: {message}")


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EX_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)


def _config_errors(error: ConfigError, out: TextIO) -> None:
    for problem in error.problems:
        print(f"mailproto: config error: {problem}", file=out)


# -- preparing a start ----------------------------------------------------------------------


def tls_context(settings: Settings) -> tuple[ssl.SSLContext, Path, Path, bool]:
    """The server TLS context: ``[tls]``'s certificate, else the self-signed one in
    ``DATA/tls`` (made when missing). Returns it, the certificate's and the key's paths
    and whether it is self-signed; raises `ConfigError` naming the key when it cannot be
    loaded."""
    from .tls_setup import ensure_self_signed, server_context

    if settings.tls_cert is not None and settings.tls_key is not None:
        try:
            context = server_context(settings.tls_cert, settings.tls_key)
            return context, settings.tls_cert, settings.tls_key, False
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                [f"tls.cert: cannot load {settings.tls_cert} with {settings.tls_key}: {exc}"]
            ) from exc
    cert, key, created = ensure_self_signed(
        settings.data_dir / "tls", settings.hostname, settings.local_domains
    )
    if created:
        log.info("made a self-signed certificate: %s", cert)
    return server_context(cert, key), cert, key, True


def ensure_demo_user(settings: Settings) -> str | None:
    """Create the demo user when the users file has no user yet; its password (random)
    is returned, else None (it exists already, or there are other users)."""
    from .mda.users import UserDB

    if settings.demo_user is None:
        return None
    db = UserDB(settings.data_dir / "users.toml")
    if db.list():
        return None
    password = secrets.token_urlsafe(12)
    db.add(settings.demo_user, password)
    return password


def prepare(settings: Settings) -> tuple[SystemConfig, Path, bool, str | None]:
    """Make the data directory, the certificate and the demo user; build `SystemConfig`.

    Returns it, the certificate path, whether it is self-signed, and the demo user's new
    password (None unless it was made now)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    context, cert, key, self_signed = tls_context(settings)
    password = ensure_demo_user(settings)
    listeners = settings.listeners
    if settings.source == "embedded default":  # LMTP is internal there: any port will do
        listeners = tuple(
            attrs.evolve(x, any_port_if_taken=True) if x.service == "lmtp" else x for x in listeners
        )
    config = SystemConfig(
        data_dir=settings.data_dir,
        hostname=settings.hostname,
        local_domains=settings.local_domains,
        listeners=listeners,
        tls_context=context,
        allow_plaintext=settings.allow_plaintext,
        aliases=settings.aliases,
        postmaster=settings.postmaster,
        max_message_size=settings.max_message_size,
        max_recipients=settings.max_recipients,
        static_routes=settings.static_routes,
        smarthost=settings.smarthost,
        smarthost_auth=settings.smarthost_auth,
        smarthost_tls=settings.smarthost_tls,
        relay_port=settings.relay_port,
        lifetime=settings.lifetime,
        delay_warning=settings.delay_warning,
        min_backoff=settings.min_backoff,
        max_backoff=settings.max_backoff,
        workers=settings.workers,
        per_destination=settings.per_destination,
        local_workers=settings.local_workers,
        delivery_nice=settings.delivery_nice,
        grace=settings.grace,
        lmtp_process=settings.lmtp_process,
        smtp_processes=settings.smtp_processes,
        tls_files=(cert, key),
        webmail=(settings.webmail_host, settings.webmail_port)
        if settings.webmail_enabled
        else None,
    )
    return config, cert, self_signed, password


# -- the banner -----------------------------------------------------------------------------


def _address(host: str, port: int, *, reach: bool = False) -> str:
    """``host:port`` (``[v6]:port``); with ``reach``, a wildcard becomes loopback."""
    if reach:
        host = reachable(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _how(service: str, where: str, user: str, domain: str, plaintext: bool) -> str:
    """A command line that reaches the listener (swaks for SMTP, openssl or imaplib)."""
    host, _, port = where.rpartition(":")
    host = host.strip("[]")
    if service == "smtp":
        return f"swaks --server {where} --to {user}@{domain}"
    if service == "submission":
        tls = "" if plaintext else " -tls"
        return f"swaks --server {where}{tls} --auth-user {user} --from {user}@{domain} --to ..."
    if service == "submissions":
        return f"swaks --server {where} --tlsc --auth-user {user} --from {user}@{domain} --to ..."
    if service in ("pop3", "imap"):
        login = "plaintext login allowed" if plaintext else "log in after STARTTLS"
        starttls = "-starttls pop3" if service == "pop3" else "-starttls imap"
        return f"{login}; openssl s_client -connect {host}:{port} {starttls}"
    if service in ("pop3s", "imaps"):
        return f"openssl s_client -connect {host}:{port}"
    return "used by the delivery runner, not by people"


def banner(
    system: MailSystem,
    settings: Settings,
    *,
    flavour: str,
    cert: Path,
    self_signed: bool,
    demo_password: str | None,
) -> str:
    """What ``serve`` prints once every listener is open: one line per listener (name,
    address:port, TLS, what for, how to reach it), the certificate, the demo account."""
    from mailproto import __version__

    user = settings.demo_user or "USER"
    domain = settings.local_domains[0]
    lines = [
        f"mailproto {__version__}: serving {', '.join(settings.local_domains)} as "
        f"{settings.hostname} ({flavour} flavour; config: {settings.source})",
        f"data: {settings.data_dir}",
        "listeners:",
    ]
    order = {id(x): i for i, x in enumerate(settings.listeners)}
    for listener, port in sorted(system.bound, key=lambda b: order.get(id(b[0]), 0)):
        where = _address(listener.host, port)
        role, tls = _ROLES[listener.service]
        if SERVICES[listener.service][0]:
            tls = "implicit TLS"
        lines.append(f"  {listener.service:<12} {where:<22} {tls:<13} {role}")
        reach = _address(listener.host, port, reach=True)
        how = _how(listener.service, reach, user, domain, settings.allow_plaintext)
        lines.append(f"  {'':<12} {how}")
    loopback_rule = settings.effective.get("auth", {}).get("allow_plaintext") == "loopback"
    lines.append(
        "plaintext logins (no TLS): "
        + ("allowed" if settings.allow_plaintext else "refused, log in after STARTTLS")
        + (" (all listeners on loopback)" if settings.allow_plaintext and loopback_rule else "")
    )
    kind = "self-signed: tell clients to accept it" if self_signed else "configured"
    lines.append(f"TLS certificate: {cert} ({kind})")
    if "webmail" in system.ports:
        where = _address(settings.webmail_host, system.ports["webmail"], reach=True)
        lines.append(f"webmail: http://{where}/ (log in with a mail account)")
    if demo_password is not None:
        lines.append(
            f"demo account (shown only this once): user {settings.demo_user}, "
            f"address {settings.demo_user}@{domain}, password {demo_password}"
        )
    elif settings.demo_user is not None:
        lines.append(
            f"users: mailproto user --users {settings.data_dir / 'users.toml'} list|add|passwd"
        )
    lines.append("ready; stop with Ctrl-C (or SIGTERM)")
    return "\n".join(lines)


# -- running --------------------------------------------------------------------------------


async def _serve_anyio(system: MailSystem, ready: Callable[[], None]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            await tg.start(system.serve_anyio)
            ready()
            async for signum in signals:
                log.info("%s: shutting down", signal.Signals(signum).name)
                break
            system.stop_anyio()


def _serve_blocking(system: MailSystem, ready: Callable[[], None]) -> None:
    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        system.start()
        try:
            ready()
            while not stop.wait(0.5):
                pass
            log.info("%s: shutting down", signal.Signals(received[0]).name)
        finally:
            system.close()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _os_error(exc: BaseException) -> OSError | None:
    """The `OSError` in ``exc`` (anyio wraps it in exception groups), or None."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_error(inner)
            if found is not None:
                return found
    return None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def serve_main(argv: Sequence[str]) -> int:
    """``mailproto serve [--config FILE] [--data DIR] [--flavour anyio|blocking]``."""
    parser = _Parser(
        prog="mailproto serve",
        description="Run the whole mail system: MTA, MDA, delivery and webmail.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the TOML configuration (default: the embedded default, see docs/configuration.md)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="the data directory (overrides server.data_dir; default ./mailproto-data)",
    )
    parser.add_argument(
        "--flavour",
        choices=FLAVOURS,
        default="anyio",
        help="anyio (one task per session, default) or blocking (threads)",
    )
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        settings = load_config(args.config, data_dir=args.data)
        _setup_logging(settings.log_level)
        for warning in settings.warnings:
            log.warning("%s", warning)
        config, cert, self_signed, password = prepare(settings)
    except ConfigError as exc:
        _config_errors(exc, sys.stderr)
        return EX_CONFIG
    except OSError as exc:
        print(f"mailproto: error: {exc}", file=sys.stderr)
        return EX_CONFIG

    system = MailSystem(config)

    def ready() -> None:
        print(
            banner(
                system,
                settings,
                flavour=args.flavour,
                cert=cert,
                self_signed=self_signed,
                demo_password=password,
            ),
            flush=True,
        )

    try:
        if args.flavour == "anyio":
            anyio.run(_serve_anyio, system, ready)
        else:
            _serve_blocking(system, ready)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # a port in use, no permission for a port below 1024
        error = _os_error(exc)
        if error is None:
            raise
        print(f"mailproto: error: {error.strerror or error}", file=sys.stderr)
        return 71  # EX_OSERR
    print("mailproto: stopped", file=sys.stderr, flush=True)
    return EX_OK


def check_config_main(argv: Sequence[str]) -> int:
    """``mailproto check-config [--config FILE] [--data DIR]``: 0 valid, 1 not."""
    parser = _Parser(
        prog="mailproto check-config",
        description="Validate a configuration and print the effective one (secrets masked).",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="the TOML configuration (default: the embedded default)"
    )
    parser.add_argument(
        "--data", metavar="DIR", help="the data directory (overrides server.data_dir)"
    )
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        settings = load_config(args.config, data_dir=args.data)
        if settings.tls_cert is not None and settings.tls_key is not None:
            tls_context(settings)  # only loads the configured files: nothing is made
    except ConfigError as exc:
        _config_errors(exc, sys.stderr)
        return 1
    for warning in settings.warnings:
        print(f"mailproto: warning: {warning}", file=sys.stderr)
    print(render(settings), end="")
    return EX_OK
