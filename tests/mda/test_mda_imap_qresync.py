"""QRESYNC (RFC 7162 3.2) and untagged RECENT updates of the MDA's IMAP server.

Two sessions on one mailbox: one changes and expunges, the other resynchronises with
SELECT ... (QRESYNC ...) or UID FETCH ... (CHANGEDSINCE n VANISHED), or sees VANISHED
instead of EXPUNGE while selected. A small line client keeps the order of untagged
responses (imaplib groups them by name); imaplib checks the ordinary paths.
"""

from __future__ import annotations

import imaplib
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailproto_adapters import blocking
from mailproto_adapters._serving import ServeConfig
from mailproto_adapters.mda.auth import Authenticator
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB


def mail(n: int) -> bytes:
    return f"From: x@example.org\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


@pytest.fixture
def mda(tmp_path: Path) -> MDA:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw")
    return MDA(
        tmp_path,
        users=users,
        hostname="mda.test",
        allow_plaintext=True,
        authenticator=Authenticator(users, base_delay=0.05, max_delay=0.1),
    )


@pytest.fixture
def port(mda: MDA) -> Iterator[int]:
    config = ServeConfig(host="127.0.0.1", port=0, grace=1.0)
    server: Any = blocking.BlockingServer(mda.imap_session, config).start()
    yield int(server.port)
    server.close(1.0)


class Raw:
    """Commands as lines, answers as the list of lines up to the tagged one."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        assert self.line().startswith(b"* OK")
        assert self.cmd("LOGIN alice alice-pw")[-1].split()[1] == b"OK"

    def line(self) -> bytes:
        data = self.file.readline()
        assert data.endswith(b"\r\n"), data
        return data[:-2]

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = f"t{self.n}".encode()
        self.send(f"t{self.n} {text}")
        return self.until(tag)

    def until(self, tag: bytes) -> list[bytes]:
        out = []
        while True:
            line = self.line()
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def ok(self, text: str) -> list[bytes]:
        lines = self.cmd(text)
        assert lines[-1].split()[1] == b"OK", lines
        return lines

    def close(self) -> None:
        self.cmd("LOGOUT")
        self.file.close()
        self.sock.close()


def value(lines: list[bytes], name: bytes) -> int:
    for line in lines:
        m = re.search(rb"\[" + name + rb" (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {name!r} in {lines!r}")


def untagged(lines: list[bytes]) -> list[bytes]:
    return [x for x in lines if x.startswith(b"* ")]


def fill(mda: MDA, count: int) -> None:
    store = mda.user_store("alice")
    for i in range(1, count + 1):
        store.deliver(mail(i))


def test_capability_enable_and_errors(mda: MDA, port: int) -> None:
    fill(mda, 2)
    a = Raw(port)
    assert b"QRESYNC" in a.ok("CAPABILITY")[0].split()
    # Before ENABLE QRESYNC, the QRESYNC parameter and VANISHED are BAD (RFC 7162 3.2.5, 3.2.6).
    assert a.cmd("SELECT INBOX (QRESYNC (1 1))")[-1].split()[1] == b"BAD"
    a.ok("SELECT INBOX")
    assert a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].split()[1] == b"BAD"
    assert a.ok("ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC"
    assert a.ok("ENABLE QRESYNC CONDSTORE")[0] == b"* ENABLED"  # both already on
    # VANISHED needs UID FETCH and CHANGEDSINCE.
    assert a.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")[-1].split()[1] == b"BAD"
    assert a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].split()[1] == b"BAD"
    # ENABLE QRESYNC turned CONDSTORE on: a flag change reports UID and MODSEQ.
    stored = a.ok("STORE 1 +FLAGS (\\Flagged)")
    assert re.fullmatch(rb"\* 1 FETCH \(FLAGS \(\\Flagged\) UID 1 MODSEQ \(\d+\)\)", stored[0])
    a.close()


def test_select_qresync_after_another_session_expunged(mda: MDA, port: int) -> None:
    fill(mda, 6)
    a = Raw(port)
    a.ok("ENABLE QRESYNC")
    lines = a.ok("SELECT INBOX")
    validity, modseq = value(lines, b"UIDVALIDITY"), value(lines, b"HIGHESTMODSEQ")
    a.close()

    b = Raw(port)
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS (\\Seen)")
    b.ok("STORE 3,4,6 +FLAGS (\\Deleted)")
    assert untagged(b.ok("EXPUNGE")) == [b"* 6 EXPUNGE", b"* 4 EXPUNGE", b"* 3 EXPUNGE"]
    b.close()

    a = Raw(port)
    a.ok("ENABLE QRESYNC")
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:6))")
    assert b"* 3 EXISTS" in lines
    rest = untagged(lines)[untagged(lines).index(b"* VANISHED (EARLIER) 3:4,6") :]
    assert rest[0] == b"* VANISHED (EARLIER) 3:4,6"
    assert re.fullmatch(rb"\* 2 FETCH \(FLAGS \(\\Seen\) UID 2 MODSEQ \(\d+\)\)", rest[1])
    assert len(rest) == 2
    assert value(lines, b"HIGHESTMODSEQ") > modseq
    # Known UIDs limit VANISHED; a second SELECT says [CLOSED] first.
    lines = a.ok(f"EXAMINE INBOX (QRESYNC ({validity} {modseq} 1:3))")
    assert lines[0].startswith(b"* OK [CLOSED]")
    assert b"* VANISHED (EARLIER) 3" in lines
    # Without known UIDs: every UID expunged since the MODSEQ.
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
    assert b"* VANISHED (EARLIER) 3:4,6" in lines
    # Sequence match data is accepted (the server never needs it).
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:6 (1:2 1:2)))")
    assert b"* VANISHED (EARLIER) 3:4,6" in lines
    # Nothing changed since the current HIGHESTMODSEQ: no VANISHED, no FETCH.
    now = value(lines, b"HIGHESTMODSEQ")
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity} {now} 1:6))")
    assert not [x for x in lines if b"VANISHED" in x or b"FETCH" in x]
    # Another UIDVALIDITY: the client must resynchronise fully, nothing is reported.
    lines = a.ok(f"SELECT INBOX (QRESYNC ({validity + 1} {modseq} 1:6))")
    assert not [x for x in lines if b"VANISHED" in x or b"FETCH" in x]
    a.close()


def test_vanished_instead_of_expunge(mda: MDA, port: int) -> None:
    fill(mda, 8)
    a, b = Raw(port), Raw(port)
    a.ok("ENABLE QRESYNC")
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    # Another session's expunge: VANISHED at the next NOOP.
    b.ok("STORE 1 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")
    lines = untagged(a.ok("NOOP"))
    assert b"* VANISHED 1" in lines
    assert not [x for x in lines if x.endswith(b"EXPUNGE")]
    # The session's own EXPUNGE: VANISHED, and HIGHESTMODSEQ in the tagged OK.
    a.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    lines = a.ok("EXPUNGE")
    assert untagged(lines) == [b"* VANISHED 2:3"]
    highest = value(lines, b"HIGHESTMODSEQ")
    # UID EXPUNGE and MOVE too.
    a.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    lines = a.ok("UID EXPUNGE 4")
    assert untagged(lines) == [b"* VANISHED 4"]
    assert value(lines, b"HIGHESTMODSEQ") > highest
    lines = a.ok("UID MOVE 5 Archive")
    assert lines[-2] == b"* VANISHED 5"
    assert lines[0].startswith(b"* OK [COPYUID ")
    # During IDLE.
    a.send("t100 IDLE")
    assert a.line().startswith(b"+ ")
    # A session without QRESYNC still gets EXPUNGE (UIDs 2 to 5 were its 1 to 4).
    assert untagged(b.ok("NOOP")) == [
        b"* 4 EXPUNGE",
        b"* 3 EXPUNGE",
        b"* 2 EXPUNGE",
        b"* 1 EXPUNGE",
    ]
    b.ok("UID STORE 6 +FLAGS (\\Deleted)")
    b.ok("UID EXPUNGE 6")
    assert a.line() == b"* VANISHED 6"
    a.send("DONE")
    assert a.until(b"t100")[-1].startswith(b"t100 OK")
    a.close()
    b.close()


def test_uid_fetch_vanished(mda: MDA, port: int) -> None:
    fill(mda, 6)
    a, b = Raw(port), Raw(port)
    a.ok("ENABLE QRESYNC")
    modseq = value(a.ok("SELECT INBOX"), b"HIGHESTMODSEQ")
    b.ok("SELECT INBOX")
    b.ok("STORE 1,5 +FLAGS (\\Deleted)")
    b.ok("STORE 3 +FLAGS (\\Answered)")
    b.ok("EXPUNGE")
    a.ok("NOOP")  # learns of the expunges: VANISHED 1,5
    lines = a.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    body = untagged(lines)
    assert body[0] == b"* VANISHED (EARLIER) 1,5"
    assert body[1].startswith(b"* 2 FETCH (")
    for part in (b"UID 3", b"FLAGS (\\Answered)", b"MODSEQ ("):
        assert part in body[1]
    assert len(body) == 2
    # Only UIDs of the set; none at all when nothing vanished there.
    lines = a.ok(f"UID FETCH 2:4 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert not [x for x in lines if b"VANISHED" in x]
    lines = a.ok(f"UID FETCH 4:6 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert untagged(lines) == [b"* VANISHED (EARLIER) 5"]
    # "$" (SEARCHRES) as the set: empty at first, then the saved UIDs.
    assert untagged(a.ok(f"UID FETCH $ (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")) == []
    a.ok("UID SEARCH RETURN (SAVE) 1:6")
    lines = a.ok(f"UID FETCH $ (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert b"* VANISHED (EARLIER) 1,5" not in lines  # "$" holds only live UIDs
    a.close()
    b.close()


def test_vanished_held_back_during_fetch(mda: MDA, port: int) -> None:
    fill(mda, 3)
    a, b = Raw(port), Raw(port)
    a.ok("ENABLE QRESYNC")
    before = value(a.ok("SELECT INBOX"), b"HIGHESTMODSEQ")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    # FETCH by sequence number: no VANISHED, and a HIGHESTMODSEQ below the expunge's.
    lines = a.ok("FETCH 1:3 (UID)")
    assert not [x for x in lines if b"VANISHED" in x]
    held = value(lines, b"HIGHESTMODSEQ")
    assert held == before
    lines = a.ok("NOOP")
    assert b"* VANISHED 2" in lines
    assert value(lines[-1:], b"HIGHESTMODSEQ") > held  # the real value once they went out
    # A reconnection from the held-back HIGHESTMODSEQ still learns of the expunge.
    c = Raw(port)
    c.ok("ENABLE QRESYNC")
    validity = value(c.ok("EXAMINE INBOX"), b"UIDVALIDITY")
    lines = c.ok(f"EXAMINE INBOX (QRESYNC ({validity} {held}))")
    assert b"* VANISHED (EARLIER) 2" in lines
    for s in (a, b, c):
        s.close()


def test_recent_updates(mda: MDA, port: int) -> None:
    fill(mda, 1)
    a = Raw(port)
    lines = a.ok("SELECT INBOX")
    assert b"* 0 RECENT" in lines
    mda.user_store("alice").deliver(mail(2))
    assert untagged(a.ok("NOOP")) == [b"* 2 EXISTS", b"* 1 RECENT"]
    mda.user_store("alice").deliver(mail(3))
    a.send("t100 IDLE")
    assert a.line().startswith(b"+ ")
    assert a.line() == b"* 3 EXISTS"
    assert a.line() == b"* 2 RECENT"
    a.send("DONE")
    a.until(b"t100")
    # Another read-write session sees none of them \Recent, and no RECENT count grows.
    b = Raw(port)
    assert b"* 0 RECENT" in b.ok("SELECT INBOX")
    # IMAP4rev2: no RECENT at all.
    b.ok("ENABLE IMAP4rev2")
    mda.user_store("alice").deliver(mail(4))
    assert untagged(b.ok("NOOP")) == [b"* 4 EXISTS"]
    assert untagged(a.ok("NOOP")) == [b"* 4 EXISTS", b"* 2 RECENT"]
    a.close()
    b.close()


def test_imaplib_resync(mda: MDA, port: int) -> None:
    fill(mda, 4)
    client: Any = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    client.login("alice", "alice-pw")
    assert "QRESYNC" in client.capabilities
    client.enable("QRESYNC")
    client.select("INBOX")
    validity = int(client.untagged_responses["UIDVALIDITY"][0])
    modseq = int(client.untagged_responses["HIGHESTMODSEQ"][0])
    client.store("2", "+FLAGS", "(\\Deleted)")
    client.expunge()
    assert client.untagged_responses.pop("VANISHED") == [b"2"]
    client.unselect()
    typ, _ = client._simple_command("SELECT", "INBOX", f"(QRESYNC ({validity} {modseq}))")
    assert typ == "OK"
    assert client.untagged_responses.pop("VANISHED") == [b"(EARLIER) 2"]
    client.logout()
