"""The seed's story end to end, on ``mailproto serve`` with real clients.

A user submits with swaks (STARTTLS + AUTH on submission) to another local user; the
message goes MTA -> queue -> LMTP -> Maildir; the recipient reads it with poplib,
imaplib, mbsync and fetchmail. A message from an outside MTA arrives on the inbound port.
A user added with ``mailproto user add`` while the server runs can receive at once.
(Relaying to a second instance and the bounce when it refuses are in
tests/mta/test_mta_system.py.)
"""

from __future__ import annotations

import getpass
import imaplib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_serve_cli import Server, write_config

from conftest import RequireTool

pytestmark = pytest.mark.interop

BOB_PASSWORD = "bob's long password"


@pytest.fixture
def system(tmp_path: Path) -> Iterator[Server]:
    data = tmp_path / "data"
    server = Server(write_config(tmp_path / "mailproto.toml"), data, "anyio", tmp_path / "log")
    try:
        subprocess.run(
            [sys.executable, "-m", "mailproto_adapters", "user", "add", "bob",
             "--users", str(data / "users.toml"), "--password-stdin"],
            input=BOB_PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield server
    finally:
        server.stop()


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def swaks(program: str, *args: str) -> str:
    done = subprocess.run([program, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def imap_subjects(port: int) -> list[str]:
    client = imaplib.IMAP4("127.0.0.1", port)
    try:
        client.login("bob", BOB_PASSWORD)
        client.select("INBOX", readonly=True)
        _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return sorted(
            item[1].decode().strip().removeprefix("Subject: ")
            for item in data
            if isinstance(item, tuple)
        )
    except imaplib.IMAP4.error:
        return []
    finally:
        client.logout()


def test_submission_to_a_local_user_read_by_four_clients(
    system: Server, tmp_path: Path, require_tool: RequireTool
) -> None:
    program = require_tool("swaks")
    assert system.password is not None
    out = swaks(
        program, "--server", f"127.0.0.1:{system.ports['submission']}", "--tls",
        "--auth", "PLAIN", "--auth-user", "demo", f"--auth-password={system.password}",
        "--from", "demo@localhost", "--to", "bob@localhost",
        "--header", "Subject: from demo", "--body", "submitted with swaks",
    )  # fmt: skip
    assert "250 2.0.0 Ok: queued as" in out
    swaks(
        program, "--server", f"127.0.0.1:{system.ports['smtp']}",
        "--from", "stranger@outside.example", "--to", "bob@localhost",
        "--header", "Subject: from outside", "--body", "arrived on the inbound port",
    )  # fmt: skip
    subjects = ["from demo", "from outside"]
    assert wait_for(lambda: imap_subjects(system.ports["imap"]) == subjects)

    # poplib: both messages, with our trace fields, left on the server.
    import poplib

    pop = poplib.POP3("127.0.0.1", system.ports["pop3"])
    pop.user("bob")
    pop.pass_(BOB_PASSWORD)
    count, _ = pop.stat()
    assert count == 2
    texts = [b"\r\n".join(pop.retr(n)[1]) for n in (1, 2)]
    pop.quit()
    assert any(b"submitted with swaks" in t and b"Delivered-To: bob@localhost" in t for t in texts)
    assert any(b"Return-Path: <stranger@outside.example>" in t for t in texts)

    # mbsync: pull INBOX into a Maildir.
    mbsync = require_tool("mbsync")
    near = tmp_path / "near"
    near.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount far\nHost 127.0.0.1\nPort {system.ports['imap']}\nUser bob\n"
        f'Pass "{BOB_PASSWORD}"\nSSLType None\nAuthMechs LOGIN\nTimeout 20\n\n'
        "IMAPStore far\nAccount far\n\n"
        f"MaildirStore near\nPath {near}/\nInbox {near}/INBOX\n\n"
        "Channel pull\nFar :far:\nNear :near:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        "SyncState *\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "LC_ALL": "C"}
    done = subprocess.run(
        [mbsync, "-c", str(rc), "-a"], capture_output=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pulled = [p.read_bytes() for sub in ("new", "cur") for p in (near / "INBOX" / sub).iterdir()]
    assert sorted(b"from demo" in p for p in pulled) == [False, True]

    # fetchmail over POP3: both messages handed to a local "MDA" (a shell command).
    fetchmail = require_tool("fetchmail")
    home, delivered = tmp_path / "fetchmail-home", tmp_path / "delivered"
    home.mkdir(mode=0o700)
    delivered.mkdir()
    fetchmailrc = home / "fetchmailrc"
    sink = f"cat > $(mktemp {shlex.quote(str(delivered))}/msg.XXXXXXXX)"
    fetchmailrc.write_text(
        "set no syslog\nset no bouncemail\nset invisible\n"
        f"poll 127.0.0.1 with proto POP3 port {system.ports['pop3']} timeout 20\n"
        f'  user "bob" there with password "{BOB_PASSWORD}" is "{getpass.getuser()}" here\n'
        f"  no rewrite stripcr sslproto '' no sslcertck keep fetchall\n"
        f'  mda "{sink}"\n'
    )
    fetchmailrc.chmod(0o600)
    env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home), "LC_ALL": "C"}
    done = subprocess.run(
        [fetchmail, "-f", str(fetchmailrc), "-v", "--nosyslog"],
        stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    fetched = [p.read_bytes() for p in delivered.iterdir()]
    assert len(fetched) == 2
    assert any(b"submitted with swaks" in f for f in fetched)
