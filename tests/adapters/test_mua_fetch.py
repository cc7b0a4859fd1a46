"""``mailproto fetch`` against the whole system on loopback: IMAP and POP3 into Maildir and
mbox, resumed runs that get only what is new, flags as Maildir info."""

from __future__ import annotations

import io
import json
import mailbox
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailproto_adapters.blocking import IMAPClient, POP3Client
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mua import fetch_cli
from mailproto_adapters.mua.local_store import MboxTarget, maildir_info
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
        listeners=tuple(ListenerConfig(service=s) for s in ("lmtp", "imap", "pop3")),
        allow_plaintext=True,
    )
    started = MailSystem(config).start()
    yield started
    started.close(grace=1)


def message(n: int, body: str = "") -> bytes:
    return (
        f"From: sender{n}@example.net\r\nTo: alice@example.org\r\nSubject: message {n}\r\n"
        f"Return-Path: <sender{n}@example.net>\r\n\r\nbody {n}\r\n{body}"
    ).encode()


def append(
    system: MailSystem, *messages: bytes, folder: str = "INBOX", flags: tuple[str, ...] = ()
) -> None:
    with IMAPClient("127.0.0.1", system.ports["imap"], starttls=False) as imap:
        imap.login("alice", PASSWORD)
        if folder != "INBOX" and not imap.list("", folder):
            imap.create(folder)
        for data in messages:
            imap.append(folder, data, flags)


def conn(system: MailSystem, protocol: str = "imap") -> list[str]:
    port = system.ports[protocol]
    return ["--server", f"127.0.0.1:{port}", "--tls", "none", "--user", "alice"]


def files(maildir: Path, sub: str) -> list[Path]:
    return sorted((maildir / sub).iterdir())


def test_imap_to_maildir_then_only_new_messages(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, message(1))
    append(system, message(2), flags=("\\Seen",))
    append(system, message(3), flags=("\\Flagged", "\\Answered", "\\Seen"))
    target = tmp_path / "Mail"
    assert fetch_cli.main(["--to", f"maildir:{target}", *conn(system)]) == 0
    assert "INBOX: 3 new" in capsys.readouterr().out
    (new,) = files(target, "new")
    assert new.read_bytes() == message(1).replace(b"\r\n", b"\n")  # LF, as written locally
    cur = files(target, "cur")
    assert sorted(p.name.rsplit(":2,", 1)[1] for p in cur) == ["FRS", "S"]
    assert not list((target / "tmp").iterdir())
    state = json.loads((tmp_path / "Mail.mailproto-fetch.json").read_text())
    (account,) = state["accounts"].values()
    assert account["folders"]["INBOX"]["last_uid"] == 3

    append(system, message(4), message(5))
    assert fetch_cli.main(["--to", f"maildir:{target}", *conn(system)]) == 0
    assert "INBOX: 2 new" in capsys.readouterr().out
    assert len(files(target, "new")) == 3
    assert len(files(target, "cur")) == 2
    assert fetch_cli.main(["--to", f"maildir:{target}", *conn(system)]) == 0
    assert "INBOX: 0 new" in capsys.readouterr().out
    # The server's flags were not touched (EXAMINE, BODY.PEEK).
    with IMAPClient("127.0.0.1", system.ports["imap"], starttls=False) as imap:
        imap.login("alice", PASSWORD)
        imap.examine("INBOX")
        assert "\\Seen" not in imap.fetch(1, ["FLAGS"])[1]["FLAGS"]


def test_uidvalidity_change_fetches_everything_again(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, message(1), message(2))
    target = tmp_path / "Mail"
    assert fetch_cli.main(["--to", f"maildir:{target}", "--quiet", *conn(system)]) == 0
    state_file = tmp_path / "Mail.mailproto-fetch.json"
    state = json.loads(state_file.read_text())
    for account in state["accounts"].values():
        account["folders"]["INBOX"]["uidvalidity"] += 1
    state_file.write_text(json.dumps(state))
    assert fetch_cli.main(["--to", f"maildir:{target}", *conn(system)]) == 0
    captured = capsys.readouterr()
    assert "UIDVALIDITY changed" in captured.err
    assert "INBOX: 2 new" in captured.out
    assert len(files(target, "new")) == 4


def test_imap_to_mbox_quotes_from_lines_and_resumes(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, message(1, "From here on\r\n>From there\r\n"), flags=("\\Seen",))
    append(system, message(2))
    target = tmp_path / "mail.mbox"
    assert fetch_cli.main(["--to", f"mbox:{target}", *conn(system)]) == 0
    data = target.read_bytes()
    assert data.startswith(b"From sender1@example.net ")
    assert b"\n>From here on\n>>From there\n" in data
    assert b"\r" not in data
    box = mailbox.mbox(target)
    assert [m["Subject"] for m in box] == ["message 1", "message 2"]
    assert [m["Status"] for m in box] == ["RO", "O"]
    box.close()

    append(system, message(3))
    assert fetch_cli.main(["--to", f"mbox:{target}", *conn(system)]) == 0
    assert "INBOX: 1 new" in capsys.readouterr().out.splitlines()[-1]
    box = mailbox.mbox(target)
    assert [m["Subject"] for m in box] == ["message 1", "message 2", "message 3"]
    box.close()


def test_all_folders_to_maildir_plus_plus(system: MailSystem, tmp_path: Path) -> None:
    append(system, message(1))
    append(system, message(2), folder="Work")
    append(system, message(3), message(4), folder="Work/Projects")
    append(system, message(5), folder="v1.2")  # a dot inside a name is not a level
    target = tmp_path / "Mail"
    assert fetch_cli.main(["--to", f"maildir:{target}", "--all-folders", *conn(system)]) == 0
    assert len(files(target, "new")) == 1
    assert len(files(target / ".Work", "new")) == 1
    assert len(files(target / ".Work.Projects", "new")) == 2
    assert len(files(target / ".v1_2", "new")) == 1
    assert (target / ".Work" / "maildirfolder").exists()
    assert not (target / "maildirfolder").exists()
    mbox_dir = tmp_path / "mboxes"
    assert fetch_cli.main(["--to", f"mbox:{mbox_dir}", "--all-folders", *conn(system)]) == 0
    assert sorted(p.name for p in mbox_dir.iterdir()) == [
        "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "Work", "Work.Projects", "v1_2"
    ]  # fmt: skip


def test_single_folder(system: MailSystem, tmp_path: Path) -> None:
    append(system, message(1))
    append(system, message(2), folder="Archive")
    target = tmp_path / "archive"
    assert fetch_cli.main(["--to", f"maildir:{target}", "--folder", "Archive", *conn(system)]) == 0
    (only,) = files(target, "new")
    assert b"message 2" in only.read_bytes()


def pop3_count(system: MailSystem) -> int:
    with POP3Client("127.0.0.1", system.ports["pop3"], starttls=False) as pop:
        pop.login("alice", PASSWORD)
        count: int = pop.stat()[0]
        return count


def test_pop3_keep_then_only_new(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, message(1), message(2))
    target = tmp_path / "Mail"
    argv = ["--protocol", "pop3", "--keep", "--to", f"maildir:{target}", *conn(system, "pop3")]
    assert fetch_cli.main(argv) == 0
    assert "POP3: 2 new" in capsys.readouterr().out
    assert pop3_count(system) == 2
    assert len(files(target, "new")) == 2
    assert fetch_cli.main(argv) == 0
    assert "POP3: 0 new" in capsys.readouterr().out
    append(system, message(3))
    assert fetch_cli.main(argv) == 0
    assert "POP3: 1 new" in capsys.readouterr().out
    assert len(files(target, "new")) == 3


def test_pop3_without_keep_deletes_what_it_stored(
    system: MailSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(system, message(1), message(2))
    target = tmp_path / "mail.mbox"
    argv = ["--protocol", "pop3", "--to", f"mbox:{target}", *conn(system, "pop3")]
    # First kept: then the default run stores nothing new but deletes both.
    assert fetch_cli.main([*argv, "--keep"]) == 0
    assert fetch_cli.main(argv) == 0
    assert "0 new (0 B) -> mbox" in capsys.readouterr().out.splitlines()[-1]
    assert pop3_count(system) == 0
    append(system, message(3))
    assert fetch_cli.main(argv) == 0
    assert "1 new" in capsys.readouterr().out
    assert pop3_count(system) == 0
    box = mailbox.mbox(target)
    assert [m["Subject"] for m in box] == ["message 1", "message 2", "message 3"]
    box.close()
    state = json.loads((tmp_path / "mail.mbox.mailproto-fetch.json").read_text())
    (account,) = state["accounts"].values()
    assert account["uidls"] == []


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ["--server", "127.0.0.1:1", "--user", "alice"]
    assert fetch_cli.main(["--to", "elsewhere:/x", *server]) == 64
    assert fetch_cli.main(["--to", f"maildir:{tmp_path}", "--keep", *server]) == 64
    assert (
        fetch_cli.main(["--to", f"maildir:{tmp_path}", "--protocol", "pop3", "--folder", "x"]) == 64
    )
    assert fetch_cli.main(["--to", f"maildir:{tmp_path / 'm'}", "--tls", "none", *server]) == 69
    assert "error" in capsys.readouterr().err


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    tty = FakeTTY()
    progress = fetch_cli.Progress(tty)
    progress.start("INBOX", 4, 4000)
    for _ in range(4):
        progress.advance(1000)
    progress.finish()
    text = tty.getvalue()
    assert text.startswith("\rINBOX [")
    assert "4/4 4.0 kB" in text
    assert text.endswith("\n")
    plain = io.StringIO()
    quiet = fetch_cli.Progress(plain)
    quiet.start("INBOX", 4, 4000)
    quiet.advance(1000)
    quiet.finish()
    assert plain.getvalue() == ""


def test_maildir_info_and_mbox_lock(tmp_path: Path) -> None:
    assert maildir_info(["\\Seen", "\\Answered", "$Forwarded", "\\Draft", "x"]) == "DPRS"
    assert maildir_info([]) == ""
    first = MboxTarget(tmp_path / "box")
    try:
        with pytest.raises(OSError, match="locked"):
            MboxTarget(tmp_path / "box")
    finally:
        first.close()
