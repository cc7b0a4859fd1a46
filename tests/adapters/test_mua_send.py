"""``mailproto send`` against the whole system on loopback: what arrives over IMAP is the
message the options described; refusals and header injection give the right status."""

from __future__ import annotations

import email.policy
import io
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from conftest import TLSFiles
from mailproto_adapters.blocking import IMAPClient
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mua import send_cli
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig
from mailproto_adapters.tls_setup import server_context

PASSWORD = "a fine password"
SERVICES = ("lmtp", "submission", "imap", "pop3")


def start_system(data: Path, **config: object) -> MailSystem:
    data.mkdir(parents=True, exist_ok=True)
    db = UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4))
    for user in ("alice", "bob"):
        db.add(user, PASSWORD)
    settings: dict[str, object] = {
        "hostname": "mx.example.org",
        "local_domains": ("example.org",),
        "listeners": tuple(ListenerConfig(service=s) for s in SERVICES),
        "allow_plaintext": True,
    }
    settings.update(config)
    return MailSystem(SystemConfig(data_dir=data, **settings)).start()  # type: ignore[arg-type]


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSystem]:
    monkeypatch.setenv("MAILPROTO_PASSWORD", PASSWORD)
    started = start_system(tmp_path / "data")
    yield started
    started.close(grace=1)


def conn(system: MailSystem, user: str = "alice") -> list[str]:
    port = system.ports["submission"]
    return ["--server", f"127.0.0.1:{port}", "--tls", "none", "--user", user]


def inbox(system: MailSystem, user: str, count: int = 1) -> list[bytes]:
    """The user's INBOX, once it holds ``count`` messages (delivery is asynchronous)."""
    deadline = time.monotonic() + 15
    while True:
        with IMAPClient("127.0.0.1", system.ports["imap"], starttls=False) as imap:
            imap.login(user, PASSWORD)
            state = imap.examine("INBOX")
            if state.exists >= count:
                found = imap.fetch("1:*", ["BODY.PEEK[]"])
                return [found[uid]["BODY[]"] for uid in sorted(found)]
        if time.monotonic() > deadline:
            raise AssertionError(f"{user} has fewer than {count} messages")
        time.sleep(0.05)


def test_compose_with_attachments_arrives_with_its_mime_structure(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 20)
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nline two\n")
    html = tmp_path / "body.html"
    html.write_text("<p>Hello <b>Bob</b></p>")
    status = send_cli.main(
        [
            "--from", "Alice Example <alice@example.org>",
            "--to", "bob@example.org",
            "--bcc", "alice@example.org",
            "--subject", "Quarterly — report",
            "--body", "Hello Bob,\nsee attached.\n",
            "--html-file", str(html),
            "--attach", str(pdf),
            "--attach", str(notes),
            *conn(system),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "bob@example.org: accepted" in out
    assert "alice@example.org: accepted" in out
    assert out.splitlines()[-1].startswith("server: 250")

    (raw,) = inbox(system, "bob")
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Quarterly — report"
    assert message["From"].addresses[0].addr_spec == "alice@example.org"
    assert message["Bcc"] is None
    assert b"Bcc" not in raw.split(b"\r\n\r\n")[0]
    assert message["Message-ID"]
    assert message["Date"]
    assert message.get_content_type() == "multipart/mixed"
    types = [part.get_content_type() for part in message.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
        "text/plain",
    ]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Hello Bob,\nsee attached.\n"
    attachments = {a.get_filename(): a for a in message.iter_attachments()}
    assert attachments["report.pdf"].get_content() == pdf.read_bytes()
    assert attachments["notes.txt"].get_content().replace("\r\n", "\n") == "line one\nline two\n"
    # The Bcc recipient got it too, without the Bcc field.
    (copy,) = inbox(system, "alice")
    assert b"\r\nBcc:" not in copy


def test_body_from_stdin_and_ready_message_from_file(
    system: MailSystem,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("from stdin ✓\n".encode())))
    args = ["--from", "alice@example.org", "--to", "bob@example.org", "--subject", "one"]
    assert send_cli.main([*args, *conn(system)]) == 0
    ready = tmp_path / "ready.eml"
    ready.write_bytes(
        b"From: alice@example.org\nTo: bob@example.org\nBcc: alice@example.org\n"
        b"Subject: two\n\nready made\n"
    )
    assert send_cli.main(["--message", str(ready), *conn(system)]) == 0
    out = capsys.readouterr().out
    assert out.count("bob@example.org: accepted") == 2
    assert "alice@example.org: accepted" in out  # from the ready message's Bcc
    first, second = inbox(system, "bob", 2)
    body = BytesParser(policy=email.policy.default).parsebytes(first).get_body(("plain",))
    assert body is not None
    assert "from stdin ✓" in body.get_content()
    assert second.endswith(b"\r\n\r\nready made\r\n")  # CRLF made, body as given
    assert b"Bcc:" not in second


def test_refused_recipient_exit_status(
    system: MailSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--from", "alice@example.org", "--subject", "x", "--body", "x", *conn(system)]
    status = send_cli.main(["--to", "bob@example.org", "--to", "nobody@example.org", *args])
    out = capsys.readouterr().out
    assert status == 67, out
    assert "bob@example.org: accepted" in out
    assert "nobody@example.org: refused 550" in out
    # Every recipient refused: still one line each, and the same status.
    assert send_cli.main(["--to", "nobody@example.org", *args]) == 67
    assert "nobody@example.org: refused 5" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--subject", "hi\r\nBcc: victim@example.org"),
        ("--subject", "hi\nX-Evil: 1"),
        ("--to", "bob@example.org\r\nBcc: victim@example.org"),
        ("--from", "alice@example.org\nX-Evil: 1"),
        ("--header", "X-Note: a\r\nX-Evil: 1"),
        ("--cc", "bob@example.org\x00"),
    ],
)
def test_header_injection_is_refused(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {"--from": "alice@example.org", "--to": "bob@example.org", "--subject": "s"}
    args[option] = value
    argv = [x for pair in args.items() for x in pair]
    # Nothing listens there: the check comes before any connection.
    assert send_cli.main([*argv, "--body", "b", "--server", "127.0.0.1:1", "--tls", "none"]) == 65
    assert "CR, LF and NUL are not allowed" in capsys.readouterr().err


def test_bad_addresses_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--server", "127.0.0.1:1", "--body", "b"]
    assert send_cli.main(["--from", "alice@example.org", "--to", "not an address", *base]) == 65
    assert send_cli.main(["--from", "alice", "--to", "bob@example.org", *base]) == 65
    assert send_cli.main(["--from", "alice@example.org", *base]) == 64  # no recipient
    assert send_cli.main(["--message", "x.eml", "--subject", "s"]) == 64
    assert send_cli.main(["--server", "127.0.0.1:99999", "--from", "a@b.c"]) == 64
    assert send_cli.main(["--password", "secret"]) == 64  # never on the command line
    capsys.readouterr()


def test_print_shows_the_message_without_sending(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    data = tmp_path / "photo.png"
    data.write_bytes(b"\x89PNG\r\n\x1a\n")
    argv = ["--from", "alice@example.org", "--to", "bob@example.org", "--subject", "café"]
    assert send_cli.main([*argv, "--body", "x", "--attach", str(data), "--print"]) == 0
    out = capsysbinary.readouterr().out
    message = BytesParser(policy=email.policy.default).parsebytes(out)
    assert message["Subject"] == "café"
    assert b"=?utf-8?" in out  # RFC 2047 on the wire
    (png,) = message.iter_attachments()
    assert png.get_content_type() == "image/png"
    assert png.get_filename() == "photo.png"


def test_plaintext_password_refused_unless_tls_none(
    system: MailSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    port = system.ports["submission"]
    argv = ["--from", "alice@example.org", "--to", "bob@example.org", "--body", "x"]
    server = ["--server", f"127.0.0.1:{port}", "--user", "alice"]
    assert send_cli.main([*argv, *server]) == 76
    assert "--tls none" in capsys.readouterr().err
    assert send_cli.main([*argv, *server, "--tls", "starttls"]) == 76


def test_wrong_password(
    system: MailSystem, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILPROTO_PASSWORD", "wrong")
    argv = ["--from", "alice@example.org", "--to", "bob@example.org", "--body", "x"]
    assert send_cli.main([*argv, *conn(system)]) == 77
    assert "login refused" in capsys.readouterr().err


def test_starttls_with_cafile_and_password_file(
    tmp_path: Path,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("MAILPROTO_PASSWORD", raising=False)
    context = server_context(tls_files.cert, tls_files.key)
    system = start_system(tmp_path / "data", tls_context=context, allow_plaintext=False)
    try:
        secret = tmp_path / "password"
        secret.write_text(PASSWORD + "\n")
        argv = ["--from", "alice@example.org", "--to", "bob@example.org", "--body", "over TLS"]
        server = ["--server", f"127.0.0.1:{system.ports['submission']}", "--user", "alice"]
        ok = [*argv, *server, "--password-file", str(secret), "--cafile", str(tls_files.ca)]
        assert send_cli.main(ok) == 0
        assert "bob@example.org: accepted" in capsys.readouterr().out
    finally:
        system.close(grace=1)
