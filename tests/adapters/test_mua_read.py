"""``mailproto ls`` and ``mailproto read`` against the whole system on loopback: folder and
message listings, a message decoded for a terminal, attachments saved safely."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailproto_adapters.blocking import IMAPClient
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mua import read_cli
from mailproto_adapters.mua.common import safe
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

PASSWORD = "a fine password"


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSystem]:
    monkeypatch.setenv("MAILPROTO_PASSWORD", PASSWORD)
    data = tmp_path / "data"
    data.mkdir()
    UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4)).add("alice", PASSWORD)
    config = SystemConfig(
        data_dir=data,
        local_domains=("example.org",),
        listeners=tuple(ListenerConfig(service=s) for s in ("lmtp", "imap")),
        allow_plaintext=True,
    )
    started = MailSystem(config).start()
    yield started
    started.close(grace=1)


def append(
    system: MailSystem, *messages: bytes, folder: str = "INBOX", flags: tuple[str, ...] = ()
) -> None:
    with IMAPClient("127.0.0.1", system.ports["imap"], starttls=False) as imap:
        imap.login("alice", PASSWORD)
        if folder != "INBOX" and not imap.list("", folder):
            imap.create(folder)
        for data in messages:
            imap.append(folder, data, flags)


def conn(system: MailSystem) -> list[str]:
    port = system.ports["imap"]
    return ["--server", f"127.0.0.1:{port}", "--tls", "none", "--user", "alice"]


def simple(n: int, subject: str | None = None, sender: str = "bob@example.net") -> bytes:
    subject = subject or f"message {n}"
    return (
        f"From: {sender}\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
        f"Date: Mon, 0{n} Jun 2026 10:00:00 +0000\r\n\r\nbody {n}\r\n"
    ).encode()


def rich() -> bytes:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = "Bob Example <bob@example.net>"
    message["To"] = "alice@example.org"
    message["Subject"] = "Réunion: the slides"
    message["Date"] = "Tue, 02 Jun 2026 09:30:00 +0200"
    message.set_content("Hi Alice,\nthe slides are attached.\n")
    message.add_alternative("<p>Hi Alice,</p><p>the <b>slides</b></p>", subtype="html")
    message.add_attachment(b"\x00\x01" * 600, "application", "pdf", filename="../../etc/passwd")
    message.add_attachment(b"PK\x03\x04", "application", "zip", filename="slides.zip")
    message.add_attachment(b"again", "application", "zip", filename="slides.zip")
    return bytes(message)


def test_ls_folders_with_counts(system: MailSystem, capsys: pytest.CaptureFixture[str]) -> None:
    append(system, simple(1), simple(2))
    append(system, simple(3), flags=("\\Seen",))
    append(system, simple(4), folder="Work")
    assert read_cli.ls_main(conn(system)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["FOLDER", "MESSAGES", "UNSEEN"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["INBOX"] == ["3", "2"]
    assert rows["Work"] == ["1", "1"]
    assert lines[1].startswith("INBOX")


def test_ls_messages_newest_first_with_limit(
    system: MailSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, simple(1), simple(2, "=?utf-8?q?caf=C3=A9?=", "Zoé <zoe@example.net>"))
    append(system, simple(3, "read one"), flags=("\\Seen", "\\Flagged"))
    assert read_cli.ls_main(["INBOX", *conn(system)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["UID", "DATE", "FROM"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]
    assert "read one" in lines[1]
    assert " FS " in lines[1]
    assert "café" in lines[2]
    assert "Zoé" in lines[2]
    assert " N " in lines[2]
    assert "2026-06-01" in lines[3] or "2026-05-31" in lines[3]  # local time zone
    assert read_cli.ls_main(["INBOX", "--limit", "1", *conn(system)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert read_cli.ls_main(["Empty", *conn(system)]) != 0  # no such folder
    capsys.readouterr()


def test_read_shows_text_and_attachments_and_saves_them_safely(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, rich())
    out_dir = tmp_path / "saved"
    assert read_cli.main(["INBOX", "1", "--save-attachments", str(out_dir), *conn(system)]) == 0
    out = capsys.readouterr().out
    assert "From: Bob Example <bob@example.net>" in out
    assert "Subject: Réunion: the slides" in out
    assert "Hi Alice,\nthe slides are attached." in out
    assert "<p>" not in out
    assert "Attachments:" in out
    assert "1. ../../etc/passwd  application/pdf  1.2 kB" in out
    assert "2. slides.zip  application/zip  4 B" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["passwd", "slides (2).zip", "slides.zip"]
    assert (out_dir / "passwd").read_bytes() == b"\x00\x01" * 600
    assert (out_dir / "slides (2).zip").read_bytes() == b"again"
    assert not (tmp_path / "etc").exists()
    # Reading did not set \Seen (BODY.PEEK).
    with IMAPClient("127.0.0.1", system.ports["imap"], starttls=False) as imap:
        imap.login("alice", PASSWORD)
        imap.examine("INBOX")
        assert "\\Seen" not in imap.fetch(1, ["FLAGS"])[1]["FLAGS"]


def test_read_html_only_and_terminal_escapes(
    system: MailSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    html = (
        b"From: x@example.net\r\nSubject: =?utf-8?q?hi=1B]0;owned=07?=\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><title>t</title><style>p{}</style></head><body>"
        b"<script>alert(1)</script><h1>Title</h1><p>Caf&eacute; &amp; <a href='https://e.x/'>"
        b"link</a>\x1b[2J</p><ul><li>one</li><li>two</li></ul></body></html>\r\n"
    )
    append(system, html)
    assert read_cli.main(["INBOX", "1", *conn(system)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "Subject: hi\\x1b]0;owned\\x07" in out
    assert "alert" not in out
    assert "p{}" not in out
    assert "Title\n" in out
    assert "Café & link <https://e.x/>\\x1b[2J" in out
    assert "* one\n" in out
    assert "* two" in out


def test_read_raw_and_missing(
    system: MailSystem, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    append(system, simple(1))
    assert read_cli.main(["INBOX", "1", "--raw", *conn(system)]) == 0
    assert capsysbinary.readouterr().out == simple(1)
    assert read_cli.main(["INBOX", "7", *conn(system)]) == 66
    assert b"no message with UID 7" in capsysbinary.readouterr().err


def test_helpers() -> None:
    assert read_cli.html_to_text("<div>a</div><div>b<br>c</div>") == "a\n\nb\nc\n"
    assert safe("a\x1b[31mb\u202ec\td") == "a\\x1b[31mb\\u202ec\td"
    part = EmailMessage()
    part.set_content(b"x", "application", "octet-stream")
    assert read_cli.safe_filename("..", 3, part) == "attachment-3.bin"
    assert read_cli.safe_filename("C:\\x\\evil.exe", 1, part) == "evil.exe"
    assert read_cli.safe_filename(".bashrc", 1, part) == "bashrc"
    assert read_cli.safe_filename("a\x00b;rm -rf.txt", 1, part) == "a_b_rm -rf.txt"
    assert len(read_cli.safe_filename("x" * 300 + ".pdf", 1, part)) == 120


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert read_cli.main(["INBOX"]) == 64
    assert read_cli.main(["INBOX", "x"]) == 64
    assert read_cli.ls_main(["--limit", "0", "--user", "a"]) == 64
    assert read_cli.ls_main(["--server", "127.0.0.1:1", "--tls", "none"]) == 64  # no --user
    capsys.readouterr()
