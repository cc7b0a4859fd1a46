"""The configuration of ``mailproto serve``: one TOML file, read with `tomllib`, validated.

Every key is documented in docs/configuration.md. An empty file (or no file at all) is
the embedded default of DESIGN.md section 4, `DEFAULT_CONFIG`, which
``examples/mailproto.toml`` writes out: everything on 127.0.0.1, the standard ports +
2000, data in ``./mailproto-data``, local domain ``localhost``. Validation collects every
problem, each naming its key (``listeners[2].port: must be 0..65535, got 70000``);
unknown keys are errors, so a misspelt key never silently keeps a default.

The port numbers and the roles of the listeners follow RFC 5321 (25, inbound), RFC 6409
(587, submission), RFC 8314 (465/993/995, implicit TLS), RFC 1939 (110), RFC 9051 (143)
and RFC 2033 (LMTP, here on 24 / 2024 and loopback).
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .mda.users import validate_name
from .mta.routing import parse_host_port
from .mta.service import normalize_address, normalize_domain
from .system import SERVICES, ListenerConfig

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_LISTENERS",
    "ConfigError",
    "Settings",
    "load_config",
    "parse_config",
    "render",
]

# service -> port in the embedded default (the standard port + 2000).
DEFAULT_LISTENERS: dict[str, int] = {
    "smtp": 2525,
    "submission": 2587,
    "submissions": 2465,
    "pop3": 2110,
    "pop3s": 2995,
    "imap": 2143,
    "imaps": 2993,
    "lmtp": 2024,
}

DEFAULT_CONFIG = """\
# The embedded default of `mailproto serve` (what runs without --config), written out.
# Every key is explained in docs/configuration.md. An empty file means the same.

[server]
hostname = "localhost"          # our name in greetings, Received: and bounces
data_dir = "mailproto-data"     # users.toml, mail/, queue/, tls/ (relative to the cwd)
demo_user = "demo"              # made on first start (no users yet), password printed once
grace = "10s"                   # sessions get this long to finish at shutdown
log_level = "info"
lmtp_process = true             # local delivery (the MDA's LMTP) in a process of its own
smtp_processes = 4              # inbound SMTP served by this many processes (0: this one)

[domains]
local = ["localhost"]           # mail for these domains is delivered to our users

[tls]
self_signed = true              # no cert/key given: make one in DATA/tls on first start

[auth]
allow_plaintext = "loopback"    # passwords without TLS only when every listener is loopback

[[listeners]]
service = "smtp"                # inbound: mail for our users from anyone (port 25)
host = "127.0.0.1"
port = 2525

[[listeners]]
service = "submission"          # AUTH, then any destination (port 587, STARTTLS)
host = "127.0.0.1"
port = 2587

[[listeners]]
service = "submissions"         # submission over implicit TLS (port 465)
host = "127.0.0.1"
port = 2465

[[listeners]]
service = "pop3"                # port 110 (STLS)
host = "127.0.0.1"
port = 2110

[[listeners]]
service = "pop3s"               # port 995 (implicit TLS)
host = "127.0.0.1"
port = 2995

[[listeners]]
service = "imap"                # port 143 (STARTTLS)
host = "127.0.0.1"
port = 2143

[[listeners]]
service = "imaps"               # port 993 (implicit TLS)
host = "127.0.0.1"
port = 2993

[[listeners]]
service = "lmtp"                # the MTA hands local mail to the MDA here
host = "127.0.0.1"
port = 2024

[delivery]
lifetime = "5d"                 # then undelivered recipients bounce (4.4.7)
delay_warning = "4h"            # one "delayed" report after this long
min_backoff = "300s"            # retry delay doubles from here...
max_backoff = "4000s"           # ...up to here
nice = 10                       # delivery yields the CPUs to SMTP sessions under load

[limits]
max_message_size = "50M"
max_recipients = 100

[webmail]                       # the MUA in a browser (docs/webmail.md)
enabled = true
host = "127.0.0.1"
port = 8025
"""

LOG_LEVELS = ("debug", "info", "warning", "error")
SMARTHOST_TLS = ("may", "encrypt", "none")
MASK = "********"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+)\s*(?:([kmg])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


class ConfigError(Exception):
    """The configuration is not valid: ``problems`` lists each one, key first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@attrs.frozen(kw_only=True)
class Settings:
    """The validated configuration: what `serve_cli` needs to build a `SystemConfig`,
    and ``effective``, the whole tree with defaults filled in (secrets included; `render`
    masks them)."""

    data_dir: Path
    hostname: str
    demo_user: str | None
    grace: float
    log_level: str
    lmtp_process: bool
    smtp_processes: int
    postmaster: str | None
    local_domains: tuple[str, ...]
    listeners: tuple[ListenerConfig, ...]
    tls_cert: Path | None
    tls_key: Path | None
    self_signed: bool
    allow_plaintext: bool  # the effective value ("loopback" resolved)
    lifetime: float
    delay_warning: float
    min_backoff: float
    max_backoff: float
    relay_port: int
    workers: int
    per_destination: int
    local_workers: int
    delivery_nice: int
    static_routes: dict[str, str]
    smarthost: str | None
    smarthost_tls: str
    smarthost_auth: tuple[str, str] | None
    aliases: dict[str, tuple[str, ...]]
    max_message_size: int
    max_recipients: int
    webmail_enabled: bool
    webmail_host: str
    webmail_port: int
    source: str  # the config file, or "embedded default"
    warnings: tuple[str, ...] = ()
    effective: dict[str, Any] = attrs.field(factory=dict)


class _Table:
    """Reads one TOML table strictly: typed getters that record problems by key path,
    and `done` to report the keys nobody asked for."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key(name)}: {text}")

    def raw(self, name: str) -> Any:
        self.seen.add(name)
        return self.data.get(name)

    def _typed(self, name: str, default: Any, kinds: tuple[type, ...], what: str) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) and bool not in kinds:
            self.problem(name, f"must be {what}, got {_show(value)}")
            return default
        if not isinstance(value, kinds):
            self.problem(name, f"must be {what}, got {_show(value)}")
            return default
        return value

    def get_str(self, name: str, default: Any, *, nonempty: bool = False) -> Any:
        value = self._typed(name, default, (str,), "a string")
        if nonempty and value is not None and not value.strip():
            self.problem(name, "must not be empty")
            return default
        return value

    def get_bool(self, name: str, default: bool) -> bool:
        return bool(self._typed(name, default, (bool,), "true or false"))

    def get_int(self, name: str, default: int, lo: int, hi: int, hint: str = "") -> int:
        value = self._typed(name, default, (int,), "an integer")
        if not lo <= value <= hi:
            self.problem(name, f"must be {lo}..{hi}{hint}, got {value}")
            return default
        return int(value)

    def duration(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(name)
        if value is None:
            return default
        seconds = _duration(value)
        if seconds is None:
            self.problem(
                name,
                f'must be seconds or a duration like "30s", "10m", "4h", "5d"; got {_show(value)}',
            )
            return default
        if seconds < minimum:
            self.problem(name, f"must be at least {minimum:g} seconds, got {_show(value)}")
            return default
        return seconds

    def size(self, name: str, default: int, *, minimum: int = 1) -> int:
        value = self.raw(name)
        if value is None:
            return default
        octets = _size(value)
        if octets is None:
            self.problem(
                name, f'must be octets or a size like "512K", "50M", "1G"; got {_show(value)}'
            )
            return default
        if octets < minimum:
            self.problem(name, f"must be at least {minimum} octets, got {_show(value)}")
            return default
        return octets

    def table(self, name: str) -> _Table:
        value = self.raw(name)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            self.problem(name, f"must be a table, got {_show(value)}")
            value = {}
        return _Table(value, self.key(name), self.problems)

    def done(self) -> None:
        for name in self.data:
            if name not in self.seen:
                self.problem(name, "unknown key")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match[1]) * _UNITS[(match[2] or "s").lower()]
    return None


def _size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(match[1]) * _SIZE_UNITS.get((match[2] or "").lower(), 1)
    return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_host(table: _Table, name: str, default: str) -> str:
    host: str = table.get_str(name, default)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        table.problem(
            name, f"must be an IP address (127.0.0.1, ::1, 0.0.0.0, ::), got {_show(host)}"
        )
        return default
    return host


def _path(value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


def parse_config(
    data: Mapping[str, Any],
    *,
    source: str = "embedded default",
    data_dir: str | os.PathLike[str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Validate a parsed TOML document; raises `ConfigError` listing every problem.

    Relative paths are taken from ``cwd`` (the current directory by default);
    ``data_dir`` (``--data``) wins over ``server.data_dir``."""
    base = cwd if cwd is not None else Path.cwd()
    problems: list[str] = []
    warnings: list[str] = []
    top = _Table(data, "", problems)

    server = top.table("server")
    hostname = server.get_str("hostname", "localhost", nonempty=True)
    if normalize_domain(hostname) is None:
        server.problem("hostname", f"must be a domain name, got {_show(hostname)}")
        hostname = "localhost"
    data_text = server.get_str("data_dir", "mailproto-data", nonempty=True)
    data_path = _path(os.fspath(data_dir) if data_dir is not None else data_text, base)
    demo_user = server.get_str("demo_user", "demo")
    if demo_user:
        try:
            demo_user = validate_name(demo_user)
        except ValueError as exc:
            server.problem("demo_user", str(exc))
    postmaster = server.get_str("postmaster", None)
    if postmaster is not None:
        try:
            postmaster = validate_name(postmaster)
        except ValueError as exc:
            server.problem("postmaster", str(exc))
    grace = server.duration("grace", 10.0)
    log_level = server.get_str("log_level", "info")
    if log_level not in LOG_LEVELS:
        server.problem(
            "log_level", f"must be one of {', '.join(LOG_LEVELS)}; got {_show(log_level)}"
        )
        log_level = "info"
    lmtp_process = server.get_bool("lmtp_process", True)
    smtp_processes = server.get_int("smtp_processes", 4, 0, 64)
    server.done()

    domains = top.table("domains")
    local_raw = domains.raw("local")
    local_domains: list[str] = ["localhost"]
    if local_raw is not None:
        if not isinstance(local_raw, list) or not all(isinstance(d, str) for d in local_raw):
            domains.problem("local", f"must be an array of domain names, got {_show(local_raw)}")
        elif not local_raw:
            domains.problem("local", "must name at least one domain")
        else:
            local_domains = []
            for i, domain in enumerate(local_raw):
                normal = normalize_domain(domain)
                if normal is None:
                    domains.problem(f"local[{i}]", f"not a domain name: {_show(domain)}")
                else:
                    local_domains.append(normal)
    domains.done()

    listeners = _listeners(top, problems)

    tls = top.table("tls")
    cert_text = tls.get_str("cert", None, nonempty=True)
    key_text = tls.get_str("key", None, nonempty=True)
    self_signed = tls.get_bool("self_signed", True)
    if (cert_text is None) != (key_text is None):
        tls.problem("cert" if cert_text is None else "key", "cert and key must be given together")
        cert_text = key_text = None
    tls_cert = _path(cert_text, base) if cert_text else None
    tls_key = _path(key_text, base) if key_text else None
    if tls_cert is None and not self_signed and listeners:
        tls.problem(
            "self_signed",
            "is false and no cert/key is given: the listeners "
            "offer TLS (STARTTLS, implicit TLS) and need a certificate",
        )
    tls.done()

    auth = top.table("auth")
    plain = auth.raw("allow_plaintext")
    if plain is None:
        plain = "loopback"
    if not (isinstance(plain, bool) or plain == "loopback"):
        auth.problem("allow_plaintext", f'must be true, false or "loopback", got {_show(plain)}')
        plain = "loopback"
    password_hosts = [x.host for x in listeners if x.service != "lmtp"]
    all_loopback = all(_is_loopback(h) for h in password_hosts)
    allow_plaintext = all_loopback if plain == "loopback" else bool(plain)
    if plain is True and not all_loopback:
        warnings.append(
            "auth.allow_plaintext = true on a listener that is not on loopback:"
            " passwords may cross the network unencrypted"
        )
    auth.done()

    delivery = top.table("delivery")
    lifetime = delivery.duration("lifetime", 5 * 86400.0, minimum=1.0)
    delay_warning = delivery.duration("delay_warning", 4 * 3600.0)
    min_backoff = delivery.duration("min_backoff", 300.0, minimum=0.01)
    max_backoff = delivery.duration("max_backoff", 4000.0, minimum=0.01)
    if max_backoff < min_backoff:
        delivery.problem(
            "max_backoff",
            f"must be at least min_backoff ({min_backoff:g} s), got {max_backoff:g} s",
        )
    relay_port = delivery.get_int("relay_port", 25, 1, 65535)
    workers = delivery.get_int("workers", 20, 1, 1000)
    per_destination = delivery.get_int("per_destination", 5, 1, 1000)
    local_workers = delivery.get_int("local_workers", 5, 1, 1000)
    delivery_nice = delivery.get_int("nice", 10, 0, 19)
    routes = delivery.table("static_routes")
    static_routes: dict[str, str] = {}
    for domain, target in routes.data.items():
        routes.seen.add(domain)
        if normalize_domain(domain) is None:
            routes.problem(json.dumps(domain), "not a domain name")
        elif not isinstance(target, str):
            routes.problem(domain, f'must be "host" or "host:port", got {_show(target)}')
        else:
            try:
                parse_host_port(target, relay_port)
            except ValueError as exc:
                routes.problem(domain, str(exc))
            else:
                static_routes[domain.lower().rstrip(".")] = target
    smart = delivery.table("smarthost")
    smarthost = smart.get_str("host", None, nonempty=True)
    smarthost_tls = smart.get_str("tls", "may")
    if smarthost_tls not in SMARTHOST_TLS:
        smart.problem(
            "tls", f"must be one of {', '.join(SMARTHOST_TLS)}; got {_show(smarthost_tls)}"
        )
        smarthost_tls = "may"
    username = smart.get_str("username", None, nonempty=True)
    password = smart.get_str("password", None)
    password_file = smart.get_str("password_file", None, nonempty=True)
    if smarthost is not None:
        try:
            parse_host_port(smarthost, relay_port)
        except ValueError as exc:
            smart.problem("host", str(exc))
    elif smart.data:
        smart.problem("host", "missing: the other smarthost keys need it")
    if password is not None and password_file is not None:
        smart.problem("password_file", "give password or password_file, not both")
    if password_file is not None:
        try:
            lines = _path(password_file, base).read_text("utf-8").splitlines()
            password = lines[0] if lines else ""
        except (OSError, UnicodeDecodeError) as exc:
            smart.problem("password_file", f"cannot read it: {exc}")
            password = ""  # reported once, not again as a missing password
    smarthost_auth: tuple[str, str] | None = None
    if username is not None:
        if password is None:
            smart.problem("username", "needs password or password_file")
        else:
            smarthost_auth = (username, password)
    elif password is not None or password_file is not None:
        smart.problem("username", "missing: a password needs a username")
    if smarthost_auth is not None and smarthost_tls == "none":
        smart.problem("tls", '"none" with a username would send the password in clear')
    smart.done()
    routes.done()
    delivery.done()

    aliases_table = top.table("aliases")
    aliases: dict[str, tuple[str, ...]] = {}
    for user, addresses in aliases_table.data.items():
        aliases_table.seen.add(user)
        key = json.dumps(user) if not re.fullmatch(r"[A-Za-z0-9_-]+", user) else user
        try:
            name = validate_name(user)
        except ValueError as exc:
            aliases_table.problem(key, str(exc))
            continue
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            aliases_table.problem(key, f"must be an array of addresses, got {_show(addresses)}")
            continue
        good: list[str] = []
        for i, address in enumerate(addresses):
            if normalize_address(address) is None or "@" not in address:
                aliases_table.problem(f"{key}[{i}]", f"not an address: {_show(address)}")
            else:
                good.append(address)
        aliases[name] = tuple(good)
    aliases_table.done()

    limits = top.table("limits")
    max_message_size = limits.size("max_message_size", 50 * 1024 * 1024, minimum=1024)
    max_recipients = limits.get_int("max_recipients", 100, 1, 100_000)
    limits.done()

    webmail = top.table("webmail")
    webmail_enabled = webmail.get_bool("enabled", True)
    webmail_host = _check_host(webmail, "host", "127.0.0.1")
    webmail_port = webmail.get_int("port", 8025, 0, 65535, " (0: any free port)")
    services = {x.service for x in listeners}
    if webmail_enabled and listeners and not {"imap", "submission"} <= services:
        problems.append(
            "webmail.enabled: webmail needs an imap and a submission listener "
            "(it is their client); add them or set enabled = false"
        )
    webmail.done()
    top.done()

    if problems:
        raise ConfigError(problems)
    effective: dict[str, Any] = {
        "server": {
            "hostname": hostname,
            "data_dir": str(data_path),
            "demo_user": demo_user or "",
            **({"postmaster": postmaster} if postmaster else {}),
            "grace": grace,
            "log_level": log_level,
            "lmtp_process": lmtp_process,
            "smtp_processes": smtp_processes,
        },
        "domains": {"local": local_domains},
        "tls": {
            **({"cert": str(tls_cert), "key": str(tls_key)} if tls_cert else {}),
            "self_signed": self_signed,
        },
        "auth": {"allow_plaintext": plain},
        "listeners": [
            {
                "service": x.service,
                "host": x.host,
                "port": x.port,
                "max_connections": x.max_connections,
                "max_per_ip": x.max_per_ip,
            }
            for x in listeners
        ],
        "delivery": {
            "lifetime": lifetime,
            "delay_warning": delay_warning,
            "min_backoff": min_backoff,
            "max_backoff": max_backoff,
            "relay_port": relay_port,
            "workers": workers,
            "per_destination": per_destination,
            "local_workers": local_workers,
            "nice": delivery_nice,
            "static_routes": static_routes,
            **(
                {
                    "smarthost": {
                        "host": smarthost,
                        "tls": smarthost_tls,
                        **(
                            {"username": smarthost_auth[0], "password": smarthost_auth[1]}
                            if smarthost_auth
                            else {}
                        ),
                    }
                }
                if smarthost
                else {}
            ),
        },
        "aliases": {k: list(v) for k, v in aliases.items()},
        "limits": {"max_message_size": max_message_size, "max_recipients": max_recipients},
        "webmail": {"enabled": webmail_enabled, "host": webmail_host, "port": webmail_port},
    }
    return Settings(
        data_dir=data_path,
        hostname=hostname,
        demo_user=demo_user or None,
        grace=grace,
        log_level=log_level,
        lmtp_process=lmtp_process,
        smtp_processes=smtp_processes,
        postmaster=postmaster,
        local_domains=tuple(dict.fromkeys(local_domains)),
        listeners=listeners,
        tls_cert=tls_cert,
        tls_key=tls_key,
        self_signed=self_signed,
        allow_plaintext=allow_plaintext,
        lifetime=lifetime,
        delay_warning=delay_warning,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        relay_port=relay_port,
        workers=workers,
        per_destination=per_destination,
        local_workers=local_workers,
        delivery_nice=delivery_nice,
        static_routes=static_routes,
        smarthost=smarthost,
        smarthost_tls=smarthost_tls,
        smarthost_auth=smarthost_auth,
        aliases=aliases,
        max_message_size=max_message_size,
        max_recipients=max_recipients,
        webmail_enabled=webmail_enabled,
        webmail_host=webmail_host,
        webmail_port=webmail_port,
        source=source,
        warnings=tuple(warnings),
        effective=effective,
    )


def _listeners(top: _Table, problems: list[str]) -> tuple[ListenerConfig, ...]:
    raw = top.raw("listeners")
    if raw is None:
        return tuple(ListenerConfig(service=s, port=p) for s, p in DEFAULT_LISTENERS.items())
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        top.problem("listeners", "must be an array of tables ([[listeners]])")
        return ()
    out: list[ListenerConfig] = []
    taken: dict[tuple[str, int], int] = {}
    for i, item in enumerate(raw):
        table = _Table(item, f"listeners[{i}]", problems)
        service = table.get_str("service", None)
        if service is None:
            table.problem("service", f"missing: one of {', '.join(SERVICES)}")
        elif service not in SERVICES:
            table.problem("service", f"must be one of {', '.join(SERVICES)}; got {_show(service)}")
            service = None
        host = _check_host(table, "host", "127.0.0.1")
        port = table.get_int(
            "port", DEFAULT_LISTENERS.get(service or "", 0), 0, 65535, " (0: any free port)"
        )
        max_connections = table.get_int("max_connections", 512, 1, 1_000_000)
        max_per_ip = table.get_int("max_per_ip", 32, 1, 1_000_000)
        table.done()
        if port and (host, port) in taken:
            table.problem(
                "port", f"{host}:{port} is already used by listeners[{taken[host, port]}]"
            )
        taken.setdefault((host, port), i)
        if service is not None:
            out.append(
                ListenerConfig(
                    service=service,
                    host=host,
                    port=port,
                    max_connections=max_connections,
                    max_per_ip=max_per_ip,
                )
            )
    if raw and not any(x.get("service") == "lmtp" for x in raw):
        top.problem(
            "listeners", "needs an lmtp listener: the MTA hands local mail to the MDA over LMTP"
        )
    return tuple(out)


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Read and validate the file at ``path``, or the embedded default when None.

    Raises `ConfigError` (a TOML syntax error or an unreadable file is one too)."""
    if path is None:
        return parse_config(tomllib.loads(DEFAULT_CONFIG), data_dir=data_dir, cwd=cwd)
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read it: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: not valid TOML: {exc}"]) from exc
    return parse_config(data, source=name, data_dir=data_dir, cwd=cwd)


# -- printing the effective configuration ------------------------------------------------

_SECRETS = ("password",)


def render(settings: Settings, *, mask: bool = True) -> str:
    """The effective configuration as TOML (defaults filled in, durations in seconds,
    sizes in octets); secrets are replaced by ``********`` unless ``mask`` is False."""
    lines = [f"# effective configuration ({settings.source})"]
    tree = settings.effective
    _render_table(lines, [], tree, mask)
    return "\n".join(lines) + "\n"


def _render_table(lines: list[str], path: list[str], table: Mapping[str, Any], mask: bool) -> None:
    scalars = {k: v for k, v in table.items() if not _is_table(v) and not _is_table_array(v)}
    if path and (scalars or not any(_is_table(v) or _is_table_array(v) for v in table.values())):
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
    for name, value in scalars.items():
        shown = MASK if mask and name in _SECRETS and value is not None else value
        lines.append(f"{_key(name)} = {_value(shown)}")
    for name, value in table.items():
        if _is_table(value):
            _render_table(lines, [*path, name], value, mask)
        elif _is_table_array(value):
            for item in value:
                lines.append("")
                lines.append(f"[[{'.'.join(_key(p) for p in [*path, name])}]]")
                for key, inner in item.items():
                    lines.append(f"{_key(key)} = {_value(inner)}")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, dict) for x in value)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
