"""Real third-party clients against the MDA's IMAP server: mbsync, fetchmail, imapclient.

The servers run in the background as in tests/mda/test_mda_imap.py (blocking flavour);
what the clients leave on the server is checked through the store itself, so that a
client bug and a server bug cannot cancel each other out.
"""

from __future__ import annotations

import getpass
import importlib
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_mda_imap import Server, make_mda, simple

from mailproto_adapters._serving import SessionFactory
from mailproto_adapters.mda.service import MDA

if TYPE_CHECKING:
    from conftest import RequireTool

pytestmark = pytest.mark.interop


@pytest.fixture
def serve() -> Iterator[Callable[[str, SessionFactory], Server]]:
    servers: list[Server] = []

    def start(flavour: str, session: SessionFactory) -> Server:
        server = Server(flavour, session)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def subject(octets: bytes) -> str:
    """A message's Subject, the key that survives mbsync's rewriting (LF line endings
    and an X-TUID header in the Near copy)."""
    for line in octets.splitlines():
        if line.startswith(b"Subject: "):
            return line[9:].decode()
    raise AssertionError(f"no Subject in {octets!r}")


def server_state(mda: MDA, mailbox: str = "INBOX") -> dict[bytes, frozenset[str]]:
    """A mailbox as the store has it: each message's octets -> its flags."""
    box = mda.store.user("alice").mailbox(mailbox)
    state: dict[bytes, frozenset[str]] = {}
    for record in box.snapshot():
        with box.open(record.uid) as handle:
            state[handle.read()] = record.flags
    return state


# -- mbsync ------------------------------------------------------------------------------

_MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen"}


def by_subject(state: dict[bytes, frozenset[str]]) -> dict[str, frozenset[str]]:
    return {subject(octets): flags for octets, flags in state.items()}


def near_state(folder: Path) -> dict[str, frozenset[str]]:
    """A Near Maildir folder: each message's Subject -> its flags."""
    state: dict[bytes, frozenset[str]] = {}
    for sub in ("new", "cur"):
        for path in (folder / sub).iterdir():
            letters = path.name.partition(":2,")[2]
            flags = frozenset(_MAILDIR_FLAGS[c] for c in letters if c in _MAILDIR_FLAGS)
            state[path.read_bytes()] = flags
    return by_subject(state)


def near_file(folder: Path, octets: bytes) -> Path:
    for sub in ("new", "cur"):
        for path in (folder / sub).iterdir():
            if subject(path.read_bytes()) == subject(octets):
                return path
    raise AssertionError(f"{octets!r} not in {folder}")


def add_near_flag(path: Path, letter: str) -> None:
    """What a Maildir mail reader does: move to cur/ and add the letter to the info."""
    base, _, letters = path.name.partition(":2,")
    new = f"{base}:2,{''.join(sorted(set(letters + letter)))}"
    path.rename(path.parent.parent / "cur" / new)


def test_mbsync_two_way(tmp_path: Path, serve: Any, require_tool: RequireTool) -> None:
    """mbsync: a full sync to an empty Maildir, flag changes both ways, a message added
    on the Near side, an expunge on each side, then a re-sync that changes nothing."""
    program = require_tool("mbsync")
    mda = make_mda(tmp_path / "data", allow_plaintext=True)
    store = mda.store.user("alice")
    messages = [simple(f"message {n}", f"body {n}") for n in range(3)]
    for octets in messages:
        store.deliver(octets)
    archived = simple("archived")
    store.deliver(archived, "Archive", flags=["\\Seen"])
    server = serve("blocking", mda.imap_session)
    near = tmp_path / "near"
    near.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount far\nHost 127.0.0.1\nPort {server.port}\nUser alice\nPass alice-pw\n"
        "SSLType None\nAuthMechs LOGIN\nTimeout 20\n\n"
        "IMAPStore far\nAccount far\n\n"
        f"MaildirStore near\nPath {near}/\nInbox {near}/INBOX\nSubFolders Verbatim\n\n"
        "Channel sync\nFar :far:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\n"
        "SyncState *\n"
    )

    logs: list[str] = []

    def sync() -> None:
        env = {**os.environ, "HOME": str(tmp_path), "LC_ALL": "C"}
        result = subprocess.run(
            [program, "-c", str(rc), "-a"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        log = (result.stdout + result.stderr).decode(errors="replace")
        assert result.returncode == 0, log
        logs.append(log)

    # 1. Full sync: every folder is created on the Near side with its messages and flags.
    sync()
    folders = {p.name for p in near.iterdir() if p.is_dir()}
    assert folders >= {"INBOX", "Archive", "Sent", "Drafts", "Trash", "Junk"}
    assert near_state(near / "INBOX") == by_subject(server_state(mda))
    assert server_state(mda) == dict.fromkeys(messages, frozenset())
    assert near_state(near / "Archive") == {"archived": frozenset({"\\Seen"})}

    # 2. Flags changed on both sides: Near reads message 0; the server flags message 1
    # over IMAP-independent means (the store, as another session would).
    add_near_flag(near_file(near / "INBOX", messages[0]), "S")
    uids = {r.uid: r for r in store.mailbox("INBOX").snapshot()}
    by_octets = dict(zip(messages, sorted(uids), strict=True))
    store.mailbox("INBOX").set_flags([by_octets[messages[1]]], ["\\Flagged"])
    sync()
    expected = {
        messages[0]: frozenset({"\\Seen"}),
        messages[1]: frozenset({"\\Flagged"}),
        messages[2]: frozenset(),
    }
    assert server_state(mda) == expected
    assert near_state(near / "INBOX") == by_subject(expected)

    # 3. A message written on the Near side reaches the server; one expunged on the
    # server disappears from the Near side.
    written = simple("written near", "from the laptop")
    (near / "INBOX" / "new" / "1700000000.P1Q1.laptop").write_bytes(written)
    inbox = store.mailbox("INBOX")
    inbox.set_flags([by_octets[messages[2]]], ["\\Deleted"])
    inbox.expunge([by_octets[messages[2]]])
    # And one trashed on the Near side (T) is expunged on the server (Expunge Both).
    add_near_flag(near_file(near / "INBOX", messages[0]), "T")
    sync()
    del expected[messages[2]]
    del expected[messages[0]]
    expected[written] = frozenset()
    far = server_state(mda)
    assert by_subject(far) == near_state(near / "INBOX") == by_subject(expected)
    (uploaded,) = (octets for octets in far if subject(octets) == "written near")
    assert b"from the laptop" in uploaded

    # 4. A re-sync changes nothing on either side.
    before_far = [(r.uid, r.flags, r.modseq) for r in inbox.snapshot()]
    before_near = sorted(str(p.relative_to(near)) for p in near.rglob("*") if p.is_file())
    before_near = [n for n in before_near if "mbsyncstate" not in n]
    sync()
    assert [(r.uid, r.flags, r.modseq) for r in inbox.snapshot()] == before_far
    after_near = sorted(str(p.relative_to(near)) for p in near.rglob("*") if p.is_file())
    assert [n for n in after_near if "mbsyncstate" not in n] == before_near
    # mbsync had nothing to complain about but the cleartext password (loopback).
    for log in logs:
        complaints = [
            line
            for line in log.splitlines()
            if ("Warning" in line or "Error" in line) and "in the clear" not in line
        ]
        assert complaints == [], log


# -- fetchmail over IMAP ------------------------------------------------------------------


def test_fetchmail_imap(tmp_path: Path, serve: Any, require_tool: RequireTool) -> None:
    """fetchmail over IMAP: `keep` leaves the messages (seen), then `fetchall` without
    keep fetches them again and deletes them from the server."""
    program = require_tool("fetchmail")
    home, delivered = tmp_path / "fetchmail-home", tmp_path / "delivered"
    home.mkdir(mode=0o700)
    delivered.mkdir()
    mda = make_mda(tmp_path / "data", allow_plaintext=True)
    messages = [
        b"From: sender@example.org\r\nTo: alice@example.org\r\nSubject: imap %d\r\n"
        b"\r\nfirst line\r\n.dot line\r\n" % n
        for n in range(3)
    ]
    for octets in messages:
        mda.store.user("alice").deliver(octets)
    server = serve("blocking", mda.imap_session)

    def run(options: str) -> tuple[int, str]:
        rc = home / "fetchmailrc"
        sink = f"cat > $(mktemp {shlex.quote(str(delivered))}/msg.XXXXXXXX)"
        rc.write_text(
            "set no syslog\nset no bouncemail\nset invisible\n"
            f"poll 127.0.0.1 with proto IMAP port {server.port} timeout 20"
            " auth password\n"
            f'  user "alice" there with password "alice-pw" is "{getpass.getuser()}" here\n'
            f"  no rewrite stripcr sslproto '' no sslcertck {options}\n"
            f'  mda "{sink}"\n'
        )
        rc.chmod(0o600)
        env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home), "LC_ALL": "C"}
        result = subprocess.run(
            [program, "-f", str(rc), "-v", "--nosyslog"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=40,
            check=False,
        )
        return result.returncode, (result.stdout + result.stderr).decode(errors="replace")

    def take() -> list[bytes]:
        out = sorted(path.read_bytes() for path in delivered.iterdir())
        for path in delivered.iterdir():
            path.unlink()
        return out

    def bodies(got: list[bytes]) -> list[bytes]:
        # stripcr: fetchmail hands the MDA LF lines; compare the original lines.
        return sorted(g.split(b"Subject: ", 1)[1] for g in got)

    expected = sorted(m.replace(b"\r\n", b"\n").split(b"Subject: ", 1)[1] for m in messages)
    status, log = run("keep")
    assert status == 0, log
    assert bodies(take()) == expected
    # Kept, and marked \Seen: the next poll fetches nothing new.
    assert set(server_state(mda).values()) == {frozenset({"\\Seen"})}
    status, log = run("keep")  # all seen now: nothing new
    assert status == 1, log
    assert take() == []
    status, log = run("fetchall")
    assert status == 0, log
    assert bodies(take()) == expected
    assert server_state(mda) == {}


# -- the imapclient library ---------------------------------------------------------------


def test_imapclient_library(tmp_path: Path, serve: Any, require_tool: RequireTool) -> None:
    require_tool("imapclient", module=True)
    imapclient: Any = importlib.import_module("imapclient")

    mda = make_mda(tmp_path, allow_plaintext=True)
    store = mda.store.user("alice")
    store.deliver(simple("first", "apple"))
    store.deliver(simple("second", "banana"))
    server = serve("blocking", mda.imap_session)
    client = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10)
    try:
        client.login("alice", "alice-pw")
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 2
        uidvalidity = info[b"UIDVALIDITY"]
        uids = client.search(["BODY", "banana"])
        assert len(uids) == 1
        banana = uids[0]
        got = client.fetch(uids, ["ENVELOPE", "FLAGS", "BODY.PEEK[]", "RFC822.SIZE"])
        assert got[banana][b"ENVELOPE"].subject == b"second"
        assert got[banana][b"BODY[]"] == simple("second", "banana")
        assert got[banana][b"RFC822.SIZE"] == len(simple("second", "banana"))
        # \Recent is session state (RFC 3501 2.3.2), not part of what is compared.
        assert set(got[banana][b"FLAGS"]) - {b"\\Recent"} == set()

        flags = client.set_flags([banana], [b"\\Flagged", b"$Work"])
        assert set(flags[banana]) - {b"\\Recent"} == {b"\\Flagged", b"$Work"}
        assert client.search(["FLAGGED"]) == [banana]

        appended = client.append("INBOX", simple("third", "cherry"), flags=[b"\\Seen"])
        match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", appended)
        assert match is not None, appended
        assert int(match[1]) == uidvalidity
        all_uids = client.search(["ALL"])
        assert len(all_uids) == 3
        third = max(all_uids)

        client.copy([banana], "Archive")
        client.move([third], "Trash")
        assert client.search(["ALL"]) == sorted(set(all_uids) - {third})
        assert client.folder_status("Archive", [b"MESSAGES"])[b"MESSAGES"] == 1
        assert client.folder_status("Trash", [b"MESSAGES"])[b"MESSAGES"] == 1

        client.add_flags([banana], [b"\\Deleted"])
        client.expunge()
        remaining = client.search(["ALL"])
        assert banana not in remaining
        assert len(remaining) == 1

        # IDLE: a delivery from another thread shows as EXISTS within a couple of seconds.
        client.idle()
        timer = threading.Timer(0.3, store.deliver, (simple("wake up"),))
        timer.start()
        started = time.monotonic()
        seen: list[Any] = []
        while time.monotonic() - started < 5 and not any(r[1] == b"EXISTS" for r in seen):
            seen += client.idle_check(timeout=1)
        client.idle_done()
        timer.join()
        assert (2, b"EXISTS") in seen
        assert time.monotonic() - started < 3
        assert len(client.search(["ALL"])) == 2
    finally:
        client.logout()
    inbox = server_state(mda)
    assert simple("wake up") in inbox
    assert simple("first", "apple") in inbox
    assert server_state(mda, "Archive") == {simple("second", "banana"): frozenset({"\\Flagged"})}
