"""The MDA's IMAP server: Python's imaplib and our IMAPClient against it, over the store.

Servers run in the background as tests/mda/test_mda_lmtp.py runs them (blocking
threads, asyncio or anyio-trio in a portal); answers are compared with what
`mailproto.message` says of the same octets.
"""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.from_thread
import pytest

from mailproto import message
from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters import blocking
from mailproto_adapters._imap_clients import IMAPClient
from mailproto_adapters._serving import ServeConfig, SessionFactory
from mailproto_adapters.asyncio import AsyncIMAPClient
from mailproto_adapters.errors import AuthenticationFailed
from mailproto_adapters.mda.auth import Authenticator
from mailproto_adapters.mda.imap import list_matcher
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB

MSG = (
    b"From: Ann Example <ann@example.org>\r\n"
    b"To: alice@example.org, Bob <bob@example.net>\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= plans\r\n"
    b"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"hello banana\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAEC\r\n"
    b"--b1--\r\n"
)


def simple(subject: str, body: str = "text") -> bytes:
    return f"From: x@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


class Server:
    """An MDA session factory served by one flavour, in the background."""

    def __init__(self, flavour: str, session: SessionFactory) -> None:
        config = ServeConfig(host="127.0.0.1", port=0, grace=1.0)
        self._portal_cm: Any = None
        if flavour == "blocking":
            self.server: Any = blocking.BlockingServer(session, config).start()
            self.port = int(self.server.port)
            return
        backend = "trio" if flavour == "anyio-trio" else "asyncio"
        self._portal_cm = anyio.from_thread.start_blocking_portal(backend=backend)
        self.portal = self._portal_cm.__enter__()
        if flavour == "asyncio":
            self.server = self.portal.call(asyncio_flavour.AsyncioServer.start, session, config)
            self.port = int(self.server.port)
        else:
            self.server = anyio_flavour.AnyIOServer(session, config)
            self._task, self.port = self.portal.start_task(self.server.serve)

    def stop(self) -> None:
        if self._portal_cm is None:
            self.server.close(1.0)
            return
        self.portal.call(self.server.close, 1.0)
        self._portal_cm.__exit__(None, None, None)


def make_mda(tmp_path: Path, **kwargs: Any) -> MDA:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw")
    users.add("bob", "bob-pw")
    users.add("tiny", "tiny-pw", quota=50)
    kwargs.setdefault("allow_plaintext", True)
    kwargs.setdefault("authenticator", Authenticator(users, base_delay=0.05, max_delay=0.1))
    return MDA(tmp_path, users=users, hostname="mda.test", **kwargs)


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


def imaplib_login(port: int, user: str = "alice", password: str = "alice-pw") -> Any:
    client: Any = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    client.login(user, password)
    return client


# -- pure helpers -----------------------------------------------------------------------


def test_list_patterns() -> None:
    names = ["INBOX", "INBOX/sub", "Archive", "Archive/2025", "Archive/2025/q1", "a%b"]

    def match(ref: str, pattern: str) -> list[str]:
        m = list_matcher(ref, pattern)
        return [n for n in names if m.fullmatch(n)]

    assert match("", "*") == names
    assert match("", "%") == ["INBOX", "Archive", "a%b"]
    assert match("", "Archive/%") == ["Archive/2025"]
    assert match("Archive/", "*") == ["Archive/2025", "Archive/2025/q1"]
    assert match("", "inbox") == ["INBOX"]
    assert match("", "inbox/*") == ["INBOX/sub"]
    assert match("", "A*5") == ["Archive/2025"]


# -- imaplib -------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["blocking", "asyncio", "anyio-trio"])
def test_imaplib_session(tmp_path: Path, serve: Any, flavour: str) -> None:
    mda = make_mda(tmp_path)
    server = serve(flavour, mda.imap_session)
    client: Any = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    caps = client.capabilities
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "AUTH=SCRAM-SHA-256"):
        assert cap in caps
    with pytest.raises(imaplib.IMAP4.error):
        client.login("alice", "wrong")
    client.login("alice", "alice-pw")

    typ, lines = client.list()
    assert typ == "OK"
    listed = {line.decode().rsplit(" ", 1)[-1].strip('"'): line.decode() for line in lines}
    assert set(listed) >= {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    assert "\\Sent" in listed["Sent"]
    assert "\\HasNoChildren" in listed["Sent"]

    typ, data = client.append("INBOX", "(\\Flagged)", None, MSG)
    assert typ == "OK"
    assert b"APPENDUID" in data[0]
    client.append("INBOX", None, None, simple("second", "apple"))
    typ, data = client.select("INBOX")
    assert typ == "OK"
    assert data == [b"2"]
    assert client.untagged_responses.get("UIDVALIDITY")
    assert client.untagged_responses["UIDNEXT"] == [b"3"]
    assert client.untagged_responses["RECENT"] == [b"0"]

    # FETCH answers equal what mailproto.message says of the same octets.
    parsed = message.parse_message(MSG)
    typ, data = client.fetch("1", "(BODY[])")
    assert data[0][1] == MSG
    typ, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]
    assert b"\\Flagged" in data[0]
    typ, data = client.fetch("2", "(BODY.PEEK[] FLAGS)")
    assert b"\\Seen" not in data[-1]
    typ, data = client.fetch("1", "(ENVELOPE)")
    assert b'"=?utf-8?q?caf=C3=A9?= plans"' in data[0]
    assert message.envelope(parsed).subject == b"=?utf-8?q?caf=C3=A9?= plans"
    typ, data = client.uid("SEARCH", None, "BODY", "banana")
    assert data == [b"1"]
    typ, data = client.search(None, "UNSEEN")
    assert data == [b"2"]
    client.literal = "café".encode()
    typ, data = client.search("UTF-8", "SUBJECT")
    assert data == [b"1"]
    typ, data = client.search("KOI9-XX", "ALL")
    assert typ == "NO"
    # STORE, then COPY and MOVE with COPYUID, then EXPUNGE.
    typ, data = client.store("2", "+FLAGS", "(\\Deleted $Work)")
    assert b"$Work" in data[0]
    assert b"\\Deleted" in data[0]
    typ, data = client.copy("1", "Archive")
    assert typ == "OK"
    assert b"COPYUID" in data[0]
    typ, data = client.uid("MOVE", "1", "Trash")
    assert typ == "OK"
    typ, data = client.expunge()
    assert typ == "OK"
    assert client.select("INBOX")[1] == [b"0"]
    assert client.select("Archive")[1] == [b"1"]
    assert client.select("Trash", readonly=True)[1] == [b"1"]
    typ, data = client.fetch("1", "(BODY[1])")
    assert b"hello banana" in repr(data).encode()
    typ, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]  # it was seen before the move
    assert client.create("Projects/2026")[0] == "OK"
    typ, data = client.status("Archive", "(MESSAGES UIDNEXT UNSEEN)")
    assert typ == "OK"
    assert b"MESSAGES 1" in data[0]
    assert client.logout()[0] == "BYE"


def test_imaplib_envelope_and_bodystructure(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    mda.store.user("alice").deliver(MSG)
    server = serve("blocking", mda.imap_session)
    with IMAPClient("127.0.0.1", server.port, starttls=False, timeout=10) as client:
        client.login("alice", "alice-pw")
        client.select("INBOX")
        got = client.fetch([1], ["ENVELOPE", "BODYSTRUCTURE", "BODY", "BODY.PEEK[]", "RFC822.SIZE"])
    parsed = message.parse_message(MSG)
    one = got[1]
    assert one["ENVELOPE"] == message.envelope(parsed)
    assert one["BODYSTRUCTURE"] == message.body_structure(parsed, extensible=True)
    assert one["BODY"] == message.body_structure(parsed, extensible=False)
    assert one["BODY[]"] == MSG
    assert one["RFC822.SIZE"] == len(MSG)


def test_imaplib_cross_user_names(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    mda.store.user("bob").deliver(simple("bob's secret"))
    server = serve("blocking", mda.imap_session)
    client = imaplib_login(server.port)
    client.append("INBOX", None, None, simple("mine"))
    client.select("INBOX")
    for name in ("../bob/INBOX", "../bob", "/etc", "..", "~bob/INBOX", "bob/INBOX", "~bob"):
        quoted = '"' + name + '"'
        assert client.select("INBOX")[0] == "OK"
        typ, _ = client.copy("1", quoted)
        assert typ == "NO", name
        typ, _ = client.select(quoted)
        assert typ == "NO", name
        typ, data = client.list('""', quoted)
        assert data == [None], name
    typ, data = client.list('""', '"*"')
    assert not any(b"bob" in line for line in data if line)
    # Whatever alice creates lives in her own store.
    assert client.create('"~bob"')[0] == "OK"
    assert "~bob" in [i.name for i in mda.store.user("alice").list()]
    assert "~bob" not in [i.name for i in mda.store.user("bob").list()]
    assert len(mda.store.user("bob").mailbox("INBOX").snapshot()) == 1
    client.logout()


# Crafted mailbox names: traversal, absolute paths, other users' names, encodings of
# ".." and "/", Maildir++ dots, wildcards, control characters (RFC 3501 5.1; issue 7).
CRAFTED_NAMES = (
    "../bob/INBOX",
    "../bob",
    "../../bob/INBOX",
    "..",
    "../",
    "/etc",
    "/",
    "//bob",
    "~bob",
    "~bob/INBOX",
    "~/../bob",
    "bob/INBOX",
    "INBOX/../../bob",
    "INBOX/..",
    "Trash/../../bob/INBOX",
    "./../bob",
    "..\\bob",
    "\\..\\bob",
    ".bob",
    "..bob",
    "&AC4ALg-/bob",
    "&AC8-bob",
    "%2e%2e/bob",
    "../BOB/INBOX",
    "../bob/.Sent",
    "INBOX\x01../bob",
    "../bob/*",
    "../bob/%",
    "mail/bob",
    "../../../../../etc/passwd",
)


def test_no_traversal_or_other_users_with_crafted_names(tmp_path: Path, serve: Any) -> None:
    """Each crafted name, through SELECT, EXAMINE, STATUS, LIST, COPY, APPEND, CREATE,
    RENAME and DELETE: never another user's mail, never a file outside alice's store."""
    assert len(CRAFTED_NAMES) >= 20
    mda = make_mda(tmp_path)
    bob = mda.store.user("bob")
    bob.deliver(simple("bob's secret"))
    bob_folders = sorted(i.name for i in bob.list())

    def outside() -> list[Path]:
        alice = tmp_path / "mail" / "alice"
        return sorted(p for p in tmp_path.rglob("*") if alice not in (p, *p.parents))

    before = outside()
    server = serve("blocking", mda.imap_session)
    client = imaplib_login(server.port)
    client.append("INBOX", None, None, simple("mine"))

    def attempt(command: Callable[..., Any], *args: Any) -> tuple[str, Any]:
        try:
            return cast(tuple[str, Any], command(*args))
        except imaplib.IMAP4.error as exc:  # BAD: imaplib raises
            return "BAD", [str(exc).encode()]

    for name in CRAFTED_NAMES:
        quoted = '"' + name.replace("\\", "\\\\") + '"'
        assert client.select("INBOX")[0] == "OK"
        for typ, data in (
            attempt(client.copy, "1", quoted),
            attempt(client.append, quoted, None, None, simple("into " + name)),
            attempt(client.status, quoted, "(MESSAGES)"),
            attempt(client.select, quoted, True),
        ):
            assert typ in ("NO", "BAD") or b"secret" not in repr(data).encode(), name
        for line in attempt(client.list, '""', quoted)[1]:
            assert line is None or b"secret" not in line, name
        if attempt(client.create, quoted)[0] == "OK":  # a legal name of alice's: hers
            assert name in [i.name for i in mda.store.user("alice").list()], name
            assert client.rename(quoted, '"renamed"')[0] == "OK", name
            assert client.delete('"renamed"')[0] == "OK", name
    client.logout()
    assert outside() == before  # nothing made, moved or removed outside alice's store
    assert sorted(i.name for i in bob.list()) == bob_folders
    (record,) = bob.mailbox("INBOX").snapshot()
    with bob.mailbox("INBOX").open(record.uid) as handle:
        assert b"bob's secret" in handle.read()


def test_imaplib_append_errors(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    server = serve("blocking", mda.imap_session)
    client = imaplib_login(server.port, "tiny", "tiny-pw")
    typ, data = client.append("Nowhere", None, None, simple("x"))
    assert typ == "NO"
    assert b"TRYCREATE" in data[0]
    typ, data = client.append("INBOX", None, None, simple("y" * 100))
    assert typ == "NO"
    assert b"OVERQUOTA" in data[0]
    client.logout()


def test_second_session_sees_flags_at_noop(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    store = mda.store.user("alice")
    for i in range(3):
        store.deliver(simple(f"m{i}"))
    server = serve("blocking", mda.imap_session)
    one = imaplib_login(server.port)
    two = imaplib_login(server.port)
    one.select("INBOX")
    two.select("INBOX")
    one.store("2", "+FLAGS", "(\\Flagged)")
    two.noop()
    fetches = two.untagged_responses.pop("FETCH", [])
    assert any(b"\\Flagged" in f and f.startswith(b"2 ") for f in fetches), fetches
    # A delivery shows as EXISTS; an expunge by the first session as EXPUNGE at NOOP,
    # but never during a FETCH by sequence number.
    store.deliver(simple("m3"))
    one.store("1", "+FLAGS", "(\\Deleted)")
    one.expunge()
    assert two.fetch("1:*", "(FLAGS)")[0] == "OK"
    assert "EXPUNGE" not in two.untagged_responses
    two.noop()
    assert two.untagged_responses.pop("EXPUNGE") == [b"1"]
    assert two.untagged_responses.pop("EXISTS")[-1] == b"4"  # sent during the FETCH
    assert two.search(None, "ALL")[1] == [b"1 2 3"]
    one.logout()
    two.logout()


# -- our IMAPClient ----------------------------------------------------------------------


def test_our_client_scram_and_flags(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, allow_plaintext=False)
    server = serve("blocking", mda.imap_session)
    with IMAPClient("127.0.0.1", server.port, starttls=False, timeout=10) as client:
        assert "LOGINDISABLED" in client.capabilities
        with pytest.raises(AuthenticationFailed):
            client.authenticate("alice", "nope", "SCRAM-SHA-256")
    with IMAPClient("127.0.0.1", server.port, starttls=False, timeout=10) as client:
        client.authenticate("alice", "alice-pw", "SCRAM-SHA-256")
        uid = client.append("INBOX", simple("hello"), ["$Label"])
        assert uid is not None
        state = client.select("INBOX")
        assert state.exists == 1
        assert state.uidvalidity == uid.uidvalidity
        assert state.highestmodseq
        assert "\\*" in state.permanent_flags
        new = client.store([1], ["\\Answered"], "add")
        assert set(new[1]) == {"\\Answered", "$Label"}
        got = client.fetch([1], ["FLAGS", "UID"])
        assert set(got[1]["FLAGS"]) == {"\\Answered", "$Label"}
        assert client.search("ANSWERED") == [1]
        assert client.search("UNANSWERED") == []
        assert client.move([1], "Archive") is not None
        assert client.select("Archive").exists == 1
        names = {m.mailbox for m in client.list("", "%")}
        assert {"INBOX", "Archive", "Sent"} <= names
        assert client.namespace() is not None


def test_idle_wakes_on_delivery(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    store = mda.store.user("alice")
    server = serve("blocking", mda.imap_session)
    with IMAPClient("127.0.0.1", server.port, starttls=False, timeout=10) as client:
        client.login("alice", "alice-pw")
        client.select("INBOX")
        timer = threading.Timer(0.3, store.deliver, (simple("wake up"),))
        start = time.monotonic()
        timer.start()
        seen: list[Any] = []
        with client.idle(timeout=5) as updates:
            for update in updates:
                seen.append(update)
                if type(update).__name__ == "Exists":
                    break
        timer.join()
        assert time.monotonic() - start < 2.3
        assert any(getattr(u, "count", None) == 1 for u in seen)
        assert client.noop() is not None


@pytest.mark.parametrize("flavour", ["asyncio", "anyio-trio"])
def test_async_client_and_lmtp_wakes_idle(tmp_path: Path, serve: Any, flavour: str) -> None:
    import smtplib

    mda = make_mda(tmp_path)
    imap_server = serve(flavour, mda.imap_session)
    lmtp_server = serve("blocking", mda.lmtp_session)

    def deliver() -> None:
        with smtplib.LMTP("127.0.0.1", lmtp_server.port, timeout=10) as lmtp:
            lmtp.sendmail("x@example.org", ["alice@example.org"], simple("via lmtp"))

    async def main() -> None:
        async with AsyncIMAPClient("127.0.0.1", imap_server.port, starttls=False) as client:
            await client.login("alice", "alice-pw")
            await client.select("INBOX")
            timer = threading.Timer(0.3, deliver)
            start = time.monotonic()
            timer.start()
            async with client.idle(timeout=5) as updates:
                async for update in updates:
                    if type(update).__name__ == "Exists":
                        break
            timer.join()
            assert time.monotonic() - start < 2.3
            got = await client.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
            assert b"via lmtp" in next(iter(got.values()))["BODY[HEADER.FIELDS (SUBJECT)]"]

    asyncio.run(main())


def test_imapclient_library(tmp_path: Path, serve: Any) -> None:
    imapclient = pytest.importorskip("imapclient")
    mda = make_mda(tmp_path)
    mda.store.user("alice").deliver(simple("for imapclient"))
    server = serve("blocking", mda.imap_session)
    client = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10)
    client.login("alice", "alice-pw")
    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 1
    got = client.fetch([1], ["ENVELOPE", "FLAGS"])
    assert got[1][b"ENVELOPE"].subject == b"for imapclient"
    assert [f[2] for f in client.list_folders()][:1] == ["INBOX"]
    client.logout()


def test_starttls_then_plain_login(tmp_path: Path, serve: Any, tls_files: Any) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    mda = make_mda(tmp_path, tls_context=context, allow_plaintext=False)
    server = serve("blocking", mda.imap_session)
    plain: Any = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    assert "STARTTLS" in plain.capabilities
    assert "LOGINDISABLED" in plain.capabilities
    plain.logout()
    ca = tls_files.client_context()
    with IMAPClient("127.0.0.1", server.port, starttls=ca, timeout=10) as client:
        assert client.tls_info is not None
        assert "LOGINDISABLED" not in client.capabilities
        client.login("alice", "alice-pw")
        assert client.select("INBOX").exists == 0


def test_fetch_of_a_message_expunged_elsewhere(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    store = mda.store.user("alice")
    for i in range(2):
        store.deliver(simple(f"m{i}"))
    server = serve("blocking", mda.imap_session)
    one = imaplib_login(server.port)
    two = imaplib_login(server.port)
    one.select("INBOX")
    two.select("INBOX")
    one.store("1", "+FLAGS", "(\\Deleted)")
    one.expunge()
    # The second session still numbers 1 and 2; the FETCH answers for 2 without EXPUNGE.
    typ, data = two.fetch("2", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert b"m1" in repr(data).encode()
    assert "EXPUNGE" not in two.untagged_responses
    assert two.fetch("1", "(UID)")[0] == "OK"  # gone: no data, still no EXPUNGE
    assert "EXPUNGE" not in two.untagged_responses
    two.uid("SEARCH", "ALL")  # a UID command: now the EXPUNGE is due
    assert two.untagged_responses.pop("EXPUNGE") == [b"1"]
    # Commands the server does not offer get a BAD, in any state; the session goes on.
    with pytest.raises(imaplib.IMAP4.error, match="not supported"):
        two._simple_command("GETQUOTAROOT", "INBOX")
    two.close()
    with pytest.raises(imaplib.IMAP4.error, match="not supported"):
        two._simple_command("GETQUOTAROOT", "INBOX")
    assert two.noop()[0] == "OK"
    one.logout()
    two.logout()


def test_imaplib_idle_and_examine(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    store = mda.store.user("alice")
    store.deliver(simple("old"))
    server = serve("asyncio", mda.imap_session)
    client = imaplib_login(server.port)
    typ, _ = client.select("INBOX", readonly=True)
    assert typ == "OK"
    assert client.untagged_responses.get("READ-ONLY") is not None
    typ, data = client.fetch("1", "(BODY[] FLAGS)")
    assert b"\\Seen" not in repr(data).encode()  # EXAMINE never sets \Seen
    assert client.store("1", "+FLAGS", "(\\Flagged)")[0] == "NO"
    assert store.mailbox("INBOX").snapshot()[0].flags == frozenset()
    # IMAP4rev1 IDLE by hand: "+", then an EXISTS within 2 s of a delivery, then DONE.
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+")
    start = time.monotonic()
    threading.Timer(0.2, store.deliver, (simple("new"),)).start()
    line = client.readline()
    assert line == b"* 2 EXISTS\r\n"
    assert client.readline() == b"* 1 RECENT\r\n"
    assert time.monotonic() - start < 2.0
    client.send(b"DONE\r\n")
    assert client.readline().startswith(tag + b" OK")
    client.logout()


def test_condstore_changedsince_and_unchangedsince(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    store = mda.store.user("alice")
    for i in range(3):
        store.deliver(simple(f"m{i}"))
    server = serve("blocking", mda.imap_session)
    client = imaplib_login(server.port)
    typ, data = client._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    assert typ == "OK"
    client.state = "SELECTED"  # imaplib only knows its own select()
    highest = int(client.untagged_responses["HIGHESTMODSEQ"][-1])
    client.store("2", "+FLAGS", "(\\Flagged)")
    typ, data = client.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {highest})")
    assert len(data) == 1
    assert data[0].startswith(b"2 (")
    assert b"MODSEQ" in data[0]
    typ, data = client.uid("STORE", "1:3", f"(UNCHANGEDSINCE {highest})", "+FLAGS", "(\\Seen)")
    assert typ == "OK"
    assert [line.split(b" ")[0] for line in data] == [b"1", b"3"]  # 2 is MODIFIED
    flags = {u.uid: u.flags for u in store.mailbox("INBOX").snapshot()}
    assert flags == {1: {"\\Seen"}, 2: {"\\Flagged"}, 3: {"\\Seen"}}
    client.logout()


@pytest.mark.parametrize("flavour", ["blocking", "asyncio"])
def test_dropped_sessions_leave_no_trace(tmp_path: Path, serve: Any, flavour: str) -> None:
    import socket

    mda = make_mda(tmp_path)
    server = serve(flavour, mda.imap_session)
    for script in (
        b"a LOGIN alice alice-pw\r\nb SELECT INBOX\r\nc IDLE\r\n",
        b"a LOGIN alice alice-pw\r\nb APPEND INBOX {100+}\r\nFrom: half\r\n",
        b"a LOGIN alice alice-pw\r\nb AUTHENTICATE PLAIN\r\n",
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.recv(4096)
            sock.sendall(script)
            time.sleep(0.2)
    assert mda.store.user("alice").mailbox("INBOX").snapshot() == []
    client = imaplib_login(server.port)
    assert client.select("INBOX")[1] == [b"0"]
    client.logout()


def test_mailbox_operations(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path)
    server = serve("blocking", mda.imap_session)
    client = imaplib_login(server.port)
    assert client.create("Work/2026")[0] == "OK"
    assert client.create("Work")[0] == "NO"  # made as the superior of Work/2026
    _, data = client.list('""', "Work/%")
    assert data == [b'(\\HasNoChildren) "/" Work/2026']
    _, data = client.list('""', "%")
    work = [line for line in data if line.endswith(b" Work")]
    assert work == [b'(\\HasChildren) "/" Work']
    _, data = client.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    assert client.delete("Work")[0] == "NO"  # has inferiors
    assert client.rename("Work/2026", "Done")[0] == "OK"
    assert client.subscribe("Done")[0] == "OK"
    _, data = client.lsub('""', "*")
    assert b'() "/" Done' in data  # with the SPECIAL-USE folders, subscribed at creation
    _, data = client.list('""', "Done")
    assert data == [b'(\\HasNoChildren) "/" Done']
    assert client.delete("Done")[0] == "OK"
    assert client.select("Done")[0] == "NO"
    assert client.delete("INBOX")[0] == "NO"
    client.logout()


def test_select_snapshot_follows_every_change(tmp_path: Path, serve: Any) -> None:
    """SELECT reuses the folder's snapshot while nothing changed, and never after: a
    delivery, a flag change, a new keyword and an expunge each show at the next SELECT."""
    mda = make_mda(tmp_path)
    store = mda.store.user("alice")
    for i in range(3):
        store.deliver(simple(f"m{i}"))
    server = serve("blocking", mda.imap_session)
    one, two = imaplib_login(server.port), imaplib_login(server.port)

    def select() -> tuple[int, Any, bytes]:
        typ, data = two.select("INBOX", readonly=True)
        assert typ == "OK"
        unseen = two.untagged_responses.get("UNSEEN", [None])[-1]
        flags = two.untagged_responses.get("FLAGS", [b""])[-1]
        return int(data[0]), unseen, flags

    assert select() == (3, b"1", select()[2])
    assert select()[0] == 3  # unchanged: the same snapshot
    store.deliver(simple("m3"))
    assert select()[0] == 4
    one.select("INBOX")
    one.store("1", "+FLAGS", "(\\Seen)")
    assert select()[1] == b"2"
    one.store("2", "+FLAGS", "(project)")
    assert b"project" in select()[2]
    one.store("3", "+FLAGS", "(\\Deleted)")
    one.expunge()
    assert select()[0] == 3
    one.logout()
    two.logout()
