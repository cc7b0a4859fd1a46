"""The TOML configuration of ``mailproto serve``: the embedded default, validation, the
example files, the effective configuration printed back."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from mailproto_adapters.config import (
    DEFAULT_CONFIG,
    ConfigError,
    load_config,
    parse_config,
    render,
)
from mailproto_adapters.serve_cli import prepare
from mailproto_adapters.tls_setup import ensure_self_signed

EXAMPLES = Path(__file__).parents[2] / "examples"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text))
    return caught.value.problems


def test_embedded_default(tmp_path: Path) -> None:
    settings = load_config(None, cwd=tmp_path)
    assert settings.source == "embedded default"
    assert settings.data_dir == tmp_path / "mailproto-data"
    assert settings.hostname == "localhost"
    assert settings.local_domains == ("localhost",)
    assert settings.demo_user == "demo"
    assert settings.allow_plaintext is True  # everything is on loopback
    assert settings.self_signed
    assert settings.tls_cert is None
    assert {(x.service, x.host, x.port) for x in settings.listeners} == {
        ("smtp", "127.0.0.1", 2525),
        ("submission", "127.0.0.1", 2587),
        ("submissions", "127.0.0.1", 2465),
        ("pop3", "127.0.0.1", 2110),
        ("pop3s", "127.0.0.1", 2995),
        ("imap", "127.0.0.1", 2143),
        ("imaps", "127.0.0.1", 2993),
        ("lmtp", "127.0.0.1", 2024),
    }
    assert (settings.webmail_enabled, settings.webmail_port) == (True, 8025)
    assert settings.max_message_size == 50 * 1024 * 1024
    assert (settings.lifetime, settings.delay_warning) == (5 * 86400.0, 4 * 3600.0)
    assert (settings.min_backoff, settings.max_backoff) == (300.0, 4000.0)
    assert settings.smarthost is None
    assert settings.static_routes == {}
    assert (settings.lmtp_process, settings.smtp_processes) == (True, 4)
    assert settings.delivery_nice == 10
    # An empty file is the same configuration; --data wins over server.data_dir.
    empty = parse_config({}, cwd=tmp_path)
    assert empty.effective == settings.effective
    assert load_config(None, data_dir="/srv/mail").data_dir == Path("/srv/mail")


def test_the_example_files() -> None:
    written_out = (EXAMPLES / "mailproto.toml").read_text()
    assert tomllib.loads(written_out) == tomllib.loads(DEFAULT_CONFIG)
    production = load_config(EXAMPLES / "production.toml")
    ports = {x.service: x.port for x in production.listeners}
    assert ports == {
        "smtp": 25,
        "submission": 587,
        "submissions": 465,
        "pop3": 110,
        "pop3s": 995,
        "imap": 143,
        "imaps": 993,
        "lmtp": 24,
    }
    assert len(production.local_domains) == 2
    assert production.smarthost is not None
    assert production.smarthost_auth is not None
    assert production.allow_plaintext is False
    assert production.tls_cert is not None
    assert production.tls_cert.is_absolute()
    assert production.demo_user is None


def test_every_problem_names_its_key() -> None:
    found = problems(
        """
[server]
hostname = "bad host name"
grace = "soon"
log_level = "loud"
colour = "blue"

[domains]
local = ["example.org", "not a domain"]

[[listeners]]
service = "smtp"
port = 70000

[[listeners]]
service = "pop4"
host = "mail.example.org"

[[listeners]]
service = "lmtp"
port = "24"

[tls]
cert = "/etc/ssl/cert.pem"

[auth]
allow_plaintext = "sometimes"

[delivery]
min_backoff = "10m"
max_backoff = "1m"
static_routes = { "example.net" = "mx.example.net:99999" }
smarthost = { host = "relay.example.net", password = "x" }

[limits]
max_message_size = "huge"
max_recipients = -1

[aliases]
alice = ["not-an-address"]
"""
    )
    expected = [
        "server.hostname: must be a domain name",
        'server.grace: must be seconds or a duration like "30s"',
        "server.log_level: must be one of debug, info, warning, error",
        "server.colour: unknown key",
        'domains.local[1]: not a domain name: "not a domain"',
        "listeners[0].port: must be 0..65535 (0: any free port), got 70000",
        "listeners[1].service: must be one of lmtp, smtp,",
        'listeners[1].host: must be an IP address (127.0.0.1, ::1, 0.0.0.0, ::), got "mail',
        'listeners[2].port: must be an integer, got "24"',
        "tls.key: cert and key must be given together",
        'auth.allow_plaintext: must be true, false or "loopback", got "sometimes"',
        "delivery.max_backoff: must be at least min_backoff (600 s), got 60 s",
        "delivery.static_routes.example.net: bad port in 'mx.example.net:99999'",
        "delivery.smarthost.username: missing: a password needs a username",
        'limits.max_message_size: must be octets or a size like "512K"',
        "limits.max_recipients: must be 1..100000, got -1",
        'aliases.alice[0]: not an address: "not-an-address"',
        "webmail.enabled: webmail needs an imap and a submission listener",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in found), (start, found)
    assert len(found) == len(expected), found


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[listeners]]\nservice = "smtp"\nport = 0\n', "listeners: needs an lmtp listener"),
        ("listeners = 3\n", "listeners: must be an array of tables"),
        ("server = 1\n", "server: must be a table, got 1"),
        ("[tls]\nself_signed = false\n", "tls.self_signed: is false and no cert/key"),
        ('[domains]\nlocal = "example.org"\n', "domains.local: must be an array"),
        ("[domains]\nlocal = []\n", "domains.local: must name at least one domain"),
        ('[server]\ndemo_user = "a b"\n', "server.demo_user: "),
        ('[delivery.smarthost]\ntls = "always"\n', "delivery.smarthost.tls: must be one of"),
        ('[delivery.smarthost]\ntls = "may"\n', "delivery.smarthost.host: missing"),
        ("[webmail]\nport = 99999\n", "webmail.port: must be 0..65535"),
        ("[delivery]\nnice = 20\n", "delivery.nice: must be 0..19, got 20"),
        ("[auth]\nallow_plaintext = 1\n", "auth.allow_plaintext: must be true, false"),
        ("[limits]\nmax_message_size = 1000\n", "limits.max_message_size: must be at least 1024"),
        ("[server]\ngrace = -1\n", "server.grace: must be at least 0 seconds"),
        ("[server]\nhostname = true\n", "server.hostname: must be a string, got true"),
        (
            '[[listeners]]\nservice = "lmtp"\nport = 24\n[[listeners]]\nservice = "smtp"\n'
            "port = 24\n",
            "listeners[1].port: 127.0.0.1:24 is already used by listeners[0]",
        ),
        (
            '[delivery.smarthost]\nhost = "relay.example.net"\ntls = "none"\nusername = "u"\n'
            'password = "p"\n',
            'delivery.smarthost.tls: "none" with a username',
        ),
        ('[aliases]\nalice = "a@example.org"\n', "aliases.alice: must be an array of addresses"),
    ],
)
def test_single_problems(text: str, message: str) -> None:
    found = problems(text)
    assert any(p.startswith(message) for p in found), found


def test_values_and_units(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    settings = parse_config(
        tomllib.loads(
            f"""
[server]
hostname = "mx.example.org"
data_dir = "spool"
demo_user = ""
postmaster = "alice"
grace = "1.5s"
[domains]
local = ["Example.ORG.", "example.net"]
[auth]
allow_plaintext = false
[delivery]
lifetime = "2d"
delay_warning = 0
min_backoff = "500ms"
max_backoff = 60
relay_port = 2525
nice = 0
[delivery.static_routes]
"Example.COM" = "[192.0.2.1]:2525"
[delivery.smarthost]
host = "relay.example.net:587"
tls = "encrypt"
username = "me"
password_file = "{secret}"
[aliases]
alice = ["postmaster@example.org"]
[limits]
max_message_size = "10MiB"
"""
        ),
        cwd=tmp_path,
    )
    assert settings.data_dir == tmp_path / "spool"
    assert settings.demo_user is None
    assert settings.postmaster == "alice"
    assert settings.grace == 1.5
    assert settings.local_domains == ("example.org", "example.net")
    assert settings.allow_plaintext is False
    assert (settings.lifetime, settings.delay_warning) == (172800.0, 0.0)
    assert (settings.min_backoff, settings.max_backoff) == (0.5, 60.0)
    assert settings.delivery_nice == 0
    assert settings.static_routes == {"example.com": "[192.0.2.1]:2525"}
    assert settings.smarthost == "relay.example.net:587"
    assert settings.smarthost_tls == "encrypt"
    assert settings.smarthost_auth == ("me", "s3cret")
    assert settings.aliases == {"alice": ("postmaster@example.org",)}
    assert settings.max_message_size == 10 * 1024 * 1024
    text = render(settings)
    assert 'password = "********"' in text
    assert "s3cret" not in text
    assert 's3cret"' in render(settings, mask=False)
    # What check-config prints reads back as the same configuration.
    again = parse_config(tomllib.loads(render(settings, mask=False)), cwd=tmp_path)
    assert again.effective == settings.effective


def test_plaintext_loopback_rule() -> None:
    def mode(text: str) -> tuple[bool, tuple[str, ...]]:
        settings = parse_config(tomllib.loads(text))
        return settings.allow_plaintext, settings.warnings

    lmtp = '[webmail]\nenabled = false\n[[listeners]]\nservice = "lmtp"\nport = 0\n'
    public = '[[listeners]]\nservice = "imap"\nhost = "0.0.0.0"\nport = 0\n'
    assert mode(lmtp + public) == (False, ())
    assert mode(lmtp + public.replace("0.0.0.0", "::1")) == (True, ())
    allowed, warnings = mode("[auth]\nallow_plaintext = true\n" + lmtp + public)
    assert allowed
    assert "not on loopback" in warnings[0]
    with pytest.raises(ConfigError, match=r"webmail.enabled: webmail needs an imap"):
        mode(lmtp.replace("false", "true") + public)  # webmail without submission


def test_prepare_makes_the_first_start_things(tmp_path: Path) -> None:
    settings = load_config(None, data_dir=tmp_path / "data")
    config, cert, self_signed, password = prepare(settings)
    assert self_signed
    assert cert == tmp_path / "data" / "tls" / "cert.pem"
    assert password is not None
    assert len(password) >= 12
    assert config.tls_context is not None
    assert config.allow_plaintext is True
    assert (tmp_path / "data" / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    # Second start: the same certificate, no new demo user.
    _, cert_again, _, password_again = prepare(settings)
    assert cert_again == cert
    assert password_again is None


def test_configured_certificate(tmp_path: Path) -> None:
    cert, key, _ = ensure_self_signed(tmp_path / "elsewhere", "mx.example.org")
    settings = parse_config(
        {"tls": {"cert": str(cert), "key": str(key)}, "server": {"demo_user": ""}},
        data_dir=tmp_path / "data",
    )
    _, used, self_signed, password = prepare(settings)
    assert used == cert
    assert not self_signed
    assert password is None
    assert not (tmp_path / "data" / "tls").exists()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_effective_tree_keys_are_documented() -> None:
    """Every key check-config can print is in docs/configuration.md."""
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    settings = parse_config(
        {
            "server": {"postmaster": "alice"},
            "tls": {"cert": "/c", "key": "/k"},
            "delivery": {
                "smarthost": {"host": "relay.example.net", "username": "u", "password": "p"}
            },
        }
    )

    def keys(tree: Any, path: str) -> list[str]:
        out = []
        for name, value in tree.items():
            if isinstance(value, dict) and name not in ("static_routes", "aliases"):
                out += keys(value, f"{path}{name}.")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                out += keys(value[0], f"{path}{name}.")
            else:
                out.append(f"{path}{name}")
        return out

    for key in [*keys(settings.effective, ""), "delivery.smarthost.password_file"]:
        assert f"`{key}`" in doc, key


def test_a_broken_certificate_is_replaced(tmp_path: Path) -> None:
    cert, _, created = ensure_self_signed(tmp_path, "localhost")
    assert created
    assert ensure_self_signed(tmp_path, "localhost")[2] is False
    cert.write_text("not a certificate")
    assert ensure_self_signed(tmp_path, "localhost")[2] is True
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
