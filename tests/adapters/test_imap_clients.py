"""IMAPClient (blocking) and the async IMAP client (asyncio, anyio on asyncio and trio).

Against a private Dovecot (`dovecot_helpers`) on 127.0.0.1 serving a Maildir of four
messages, one of them 2 MB. Every scenario is one async function run by each flavour:
the blocking client is wrapped so that the same scenario drives it. Scenarios that
change mail work in mailboxes of their own (named after the flavour), so they do not
disturb each other or the INBOX the read-only scenarios look at.

A second Dovecot announces fewer capabilities (no LITERAL+, no MOVE), so that the
synchronizing-literal APPEND and the COPY + STORE + UID EXPUNGE fallback of ``move``
run against a real server too.
"""

from __future__ import annotations

import datetime
import io
import shutil
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from dovecot_helpers import (
    Dovecot,
    deliver,
    free_port,
    instance_processes,
    start_dovecot,
    unavailable_reason,
)
from mailproto.imap import commands as c
from mailproto.imap import responses as r
from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters._imap_clients import Idle, IMAPClient
from mailproto_adapters.errors import (
    AuthenticationFailed,
    ServerError,
    TLSFailed,
    TransportTimeout,
)

if TYPE_CHECKING:
    from conftest import TLSFiles

pytestmark = pytest.mark.interop

FLAVOURS = ["blocking", "asyncio", "anyio-asyncio", "anyio-trio"]


def _big_message() -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-\r\n"
    head = (
        b"From: Dave <dave@example.net>\r\nTo: bob@example.org\r\nSubject: Big one\r\n"
        b"Date: Mon, 05 Jan 2026 10:00:00 +0000\r\nMessage-ID: <big@example.net>\r\n\r\n"
    )
    return head + line * (2 * 1024 * 1024 // len(line))


MESSAGES = [
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>, carol@example.org\r\n"
    b"Subject: Hello\r\n"
    b"Date: Thu, 01 Jan 2026 09:00:00 +0100\r\n"
    b"Message-ID: <hello@example.com>\r\n"
    b"\r\n"
    b"Hello Bob.\r\n",
    b"From: Bob <bob@example.org>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: Files\r\n"
    b"Date: Fri, 02 Jan 2026 09:00:00 +0000\r\n"
    b"Message-ID: <files@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
    b"\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"See attached.\r\n"
    b"--XYZ\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQF\r\n"
    b"--XYZ--\r\n",
    _big_message(),
    b"From: Carol <carol@example.org>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: Lunch?\r\n"
    b"Date: Sat, 03 Jan 2026 12:00:00 +0000\r\n"
    b"\r\n"
    b"Noon?\r\n",
]
NEW_MESSAGE = b"From: Eve <eve@example.com>\r\nSubject: Appended\r\n\r\nNew.\r\n"
# What the second Dovecot announces: no LITERAL+ (so literals wait for "+"), no MOVE.
FEW_CAPABILITIES = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE UIDPLUS"


# --- the peers ------------------------------------------------------------------------

# IDLE notices new mail within a second; a wrong password is answered without the
# failure delay, and earns 127.0.0.1 no auth penalty (a delay growing up to 15 s for
# every later login from there): the anvil socket that keeps penalties is closed to auth.
QUICK_CONFIG = """\
mailbox_idle_check_interval = 1 secs
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


def _start(config: pytest.Config, extra: str) -> Iterator[Dovecot]:
    """A private Dovecot in a directory of its own under the system temporary directory.

    Not under pytest's ``/tmp/pytest-of-<user>``: every pytest run resets that one to
    mode 0700, so another run starting meanwhile (on a shared machine) would lock
    Dovecot's users out of the passwd-file halfway through this module.
    """
    from conftest import RequireTool, interop_required

    reason = unavailable_reason(("imap",))
    if reason is not None:
        RequireTool(interop_required(config)).unavailable(reason)
    base = Path(tempfile.mkdtemp(prefix="mailproto-imap-"))
    try:
        base.chmod(0o711)
        deliver(base / "Maildir", MESSAGES)
        (base / "run").mkdir()
        server = start_dovecot(
            base / "run",
            base / "Maildir",
            extra_config=QUICK_CONFIG + extra,
            private_root=base,
        )
        try:
            yield server
        finally:
            server.stop()
            assert not instance_processes(server.instance)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def dovecot(pytestconfig: pytest.Config) -> Iterator[Dovecot]:
    yield from _start(pytestconfig, "")


@pytest.fixture(scope="module")
def tls_dovecot(pytestconfig: pytest.Config, tls_files: TLSFiles) -> Iterator[Dovecot]:
    """A Dovecot with the trustme certificate: STARTTLS on its IMAP port, and implicit
    TLS on a second port (`Dovecot.ports["imaps"]`)."""
    port = free_port()
    extra = (
        f"ssl = yes\nssl_cert = <{tls_files.cert}\nssl_key = <{tls_files.key}\n"
        "service imap-login {\n  inet_listener imaps {\n"
        f"    address = 127.0.0.1\n    port = {port}\n    ssl = yes\n  }}\n}}\n"
    )
    for server in _start(pytestconfig, extra):
        server.ports["imaps"] = port
        yield server


@pytest.fixture(scope="module")
def plain_dovecot(pytestconfig: pytest.Config) -> Iterator[Dovecot]:
    yield from _start(pytestconfig, f"imap_capability = {FEW_CAPABILITIES}\n")


# --- the four flavours ----------------------------------------------------------------


class SyncIdleAsAsync:
    def __init__(self, idle: Idle) -> None:
        self.idle = idle

    async def __aenter__(self) -> SyncIdleAsAsync:
        self.idle.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.idle.__exit__(*exc)

    def __aiter__(self) -> SyncIdleAsAsync:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self.idle)
        except StopIteration:
            raise StopAsyncIteration from None


class SyncAsAsync:
    """The blocking client behind the async API, so one scenario tests every flavour."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    def idle(self, **kwargs: Any) -> SyncIdleAsAsync:
        return SyncIdleAsAsync(self.client.idle(**kwargs))

    async def __aenter__(self) -> SyncAsAsync:
        self.client.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.client.__exit__(*exc)


def client(flavour: str, server: Dovecot | int, **kwargs: Any) -> Any:
    """A client of ``server`` (or of 127.0.0.1 and this port) in ``flavour``."""
    port = server if isinstance(server, int) else server.imap_port
    if flavour == "blocking":
        return SyncAsAsync(IMAPClient("127.0.0.1", port, **kwargs))
    kind = (asyncio_flavour if flavour == "asyncio" else anyio_flavour).AsyncIMAPClient
    return kind("127.0.0.1", port, **kwargs)


def run(flavour: str, scenario: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(scenario, backend="trio" if flavour == "anyio-trio" else "asyncio")


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- scenarios ------------------------------------------------------------------------


def test_login_capabilities_namespace_id_logout(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        imap = client(flavour, dovecot)
        async with imap:
            assert "IMAP4REV1" in imap.capabilities
            assert imap.greeting is not None
            assert imap.greeting.status == "OK"
            await imap.login(dovecot.user, dovecot.password)
            assert {"IDLE", "UIDPLUS", "MOVE"} <= imap.capabilities  # the post-login list
            namespace = await imap.namespace()
            assert namespace is not None
            assert namespace.personal is not None
            server_id = await imap.id(name="mailproto-test", version="1")
            assert server_id is not None
            assert server_id.get("name") == "Dovecot"
            assert await imap.noop() == []
            assert await imap.enable("CONDSTORE") == {"CONDSTORE"}
        return imap

    imap = run(flavour, scenario)
    inner = imap.client if flavour == "blocking" else imap
    assert inner._transport is None  # LOGOUT closed it


def test_wrong_password(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> None:
        async with client(flavour, dovecot) as imap:
            with pytest.raises(AuthenticationFailed) as caught:
                await imap.login(dovecot.user, "not the password")
            assert caught.value.code == "NO"
            assert caught.value.command == "LOGIN"
            assert caught.value.text.startswith("[AUTHENTICATIONFAILED] ")
            with pytest.raises(AuthenticationFailed):
                await imap.authenticate(dovecot.user, "wrong", "PLAIN")

    run(flavour, scenario)


def test_authenticate(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.authenticate(dovecot.user, dovecot.password)  # PLAIN, with SASL-IR
            return await imap.status("INBOX", ["MESSAGES"])

    assert run(flavour, scenario) == {"MESSAGES": len(MESSAGES)}


def test_list_status_examine(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            listed = await imap.list()
            subscribed = await imap.lsub()
            status = await imap.status("INBOX", ["MESSAGES", "UIDNEXT", "UIDVALIDITY"])
            state = await imap.examine("INBOX")
            assert imap.mailbox is state
            return listed, subscribed, status, state

    listed, subscribed, status, state = run(flavour, scenario)
    assert all(isinstance(entry, r.List) for entry in listed)
    assert "INBOX" in {entry.mailbox for entry in listed}
    assert all(isinstance(entry, r.Lsub) for entry in subscribed)
    assert status["MESSAGES"] == len(MESSAGES)
    assert status["UIDNEXT"] == len(MESSAGES) + 1
    assert state.name == "INBOX"
    assert state.read_only
    assert state.exists == len(MESSAGES)
    assert state.uidvalidity == status["UIDVALIDITY"]
    assert state.uidnext == len(MESSAGES) + 1
    assert {"\\Seen", "\\Flagged", "\\Deleted"} <= set(state.flags)
    assert state.permanent_flags == ()  # read-only: nothing can be stored


def test_search(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            await imap.examine("INBOX")
            return (
                await imap.search("ALL"),
                await imap.search("FROM carol"),
                await imap.search('OR SUBJECT "Hello" LARGER 1000000'),
                await imap.search(c.SearchText(name="SUBJECT", value=b"files")),
                await imap.search("FROM nobody-at-all"),
                await imap.search("ALL", uid=False),
                await imap.search('BODY "Grüße"'),  # sent with CHARSET UTF-8
            )

    every, carol, hello_or_big, files, nobody, seqs, utf8 = run(flavour, scenario)
    assert every == [1, 2, 3, 4]
    assert carol == [4]
    assert hello_or_big == [1, 3]
    assert files == [2]
    assert nobody == []
    assert seqs == [1, 2, 3, 4]
    assert utf8 == []


def test_fetch_typed(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            await imap.examine("INBOX")
            summary = await imap.fetch(
                "1:*", ["UID", "FLAGS", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE"]
            )
            bodies = await imap.fetch([1, 3], "BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (Subject)]")
            by_seq = await imap.fetch(2, c.FetchAttr(name="UID"), uid=False)
            return summary, bodies, by_seq

    summary, bodies, by_seq = run(flavour, scenario)
    assert sorted(summary) == [1, 2, 3, 4]
    for uid, data in enumerate(MESSAGES, 1):
        result = summary[uid]
        assert result["UID"] == uid
        assert result.seq == uid
        assert result["RFC822.SIZE"] == len(data)
        assert isinstance(result["FLAGS"], tuple)
        assert "\\Seen" not in result["FLAGS"]
    hello = summary[1]["ENVELOPE"]
    assert isinstance(hello, r.Envelope)
    assert hello.subject == b"Hello"
    assert hello.message_id == b"<hello@example.com>"
    assert hello.date == b"Thu, 01 Jan 2026 09:00:00 +0100"
    assert hello.from_ == (r.Address(name=b"Alice", mailbox=b"alice", host=b"example.com"),)
    assert hello.to is not None
    assert [(a.mailbox, a.host) for a in hello.to] == [
        (b"bob", b"example.org"),
        (b"carol", b"example.org"),
    ]
    assert summary[4]["ENVELOPE"].message_id is None
    simple = summary[1]["BODYSTRUCTURE"]
    assert isinstance(simple, r.BodyText)
    assert simple.subtype.upper() == b"PLAIN"
    assert simple.size == len(b"Hello Bob.\r\n")
    assert simple.lines == 1
    mixed = summary[2]["BODYSTRUCTURE"]
    assert isinstance(mixed, r.BodyMultipart)
    assert mixed.subtype.upper() == b"MIXED"
    assert mixed.params is not None
    assert (b"boundary", b"XYZ") in mixed.params
    text, attachment = mixed.parts
    assert isinstance(text, r.BodyText)
    assert text.subtype.upper() == b"PLAIN"
    assert text.params == ((b"charset", b"utf-8"),)
    assert text.size == len(b"See attached.")
    assert text.lines == 0
    assert isinstance(attachment, r.BodyBasic)
    kind = (attachment.media_type.upper(), attachment.subtype.upper())
    assert kind == (b"APPLICATION", b"OCTET-STREAM")
    assert attachment.encoding.upper() == b"BASE64"
    assert attachment.size == len(b"AAECAwQF")
    # Whole bodies, the 2 MB one streamed by the core and put back together.
    assert bodies[1]["BODY[]"] == MESSAGES[0]
    assert bodies[3]["BODY[]"] == MESSAGES[2]
    assert bodies[1]["BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: Hello\r\n\r\n"
    assert by_seq == {2: by_seq[2]}
    assert by_seq[2]["UID"] == 2


def test_fetch_stream(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            await imap.examine("INBOX")
            big, small, text = io.BytesIO(), io.BytesIO(), io.BytesIO()
            sizes = (
                await imap.fetch_stream(3, "", big),
                await imap.fetch_stream(1, "", small),
                await imap.fetch_stream(3, "TEXT", text),
            )
            return sizes, big.getvalue(), small.getvalue(), text.getvalue()

    sizes, big, small, text = run(flavour, scenario)
    assert big == MESSAGES[2]
    assert small == MESSAGES[0]
    assert text == MESSAGES[2].partition(b"\r\n\r\n")[2]
    assert sizes == (len(big), len(small), len(text))


def test_store_copy_move_expunge(flavour: str, dovecot: Dovecot) -> None:
    work, other = f"Work-{flavour}", f"Other-{flavour}"

    async def scenario() -> None:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            await imap.create(work)
            await imap.create(other)
            await imap.examine("INBOX")
            copied = await imap.copy([1, 2, 4], work)
            assert isinstance(copied, r.CopyUid)
            assert list(copied.source.iter(0)) == [1, 2, 4]
            state = await imap.select(work)
            assert not state.read_only
            assert state.exists == 3
            assert "\\Flagged" in state.permanent_flags
            uids = await imap.search("ALL")
            assert uids == list(copied.destination.iter(0))
            first, second, third = uids

            stored = await imap.store([first, second], ["\\Flagged", "$Work"])
            assert set(stored) == {first, second}
            assert {"\\Flagged", "$Work"} <= set(stored[first])
            assert await imap.search("FLAGGED") == [first, second]
            await imap.store(second, ["\\Flagged"], "remove")
            await imap.store(third, ["\\Answered"], "set", silent=True)
            flags = await imap.fetch(uids, "FLAGS")
            assert "\\Flagged" in flags[first]["FLAGS"]
            assert "\\Flagged" not in flags[second]["FLAGS"]
            assert "\\Answered" in flags[third]["FLAGS"]

            moved = await imap.move(first, other)
            assert isinstance(moved, r.CopyUid)
            assert state.exists == 2  # the EXPUNGE came with the MOVE
            assert await imap.search("ALL") == [second, third]
            assert (await imap.status(other, ["MESSAGES"]))["MESSAGES"] == 1

            await imap.store([second, third], ["\\Deleted"], silent=True)
            assert await imap.expunge([third]) == [2]  # only the one asked for
            assert state.exists == 1
            assert await imap.expunge() == [1]
            assert state.exists == 0
            await imap.close()
            assert imap.mailbox is None
            await imap.delete(work)
            await imap.delete(other)

    run(flavour, scenario)


def test_append_then_find(flavour: str, dovecot: Dovecot) -> None:
    box = f"Appended-{flavour}"
    when = datetime.datetime(2026, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)

    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            await imap.create(box)
            small = await imap.append(box, NEW_MESSAGE, flags=["\\Seen", "$Mine"], date=when)
            big = await imap.append(box, io.BytesIO(MESSAGES[2]))
            assert isinstance(small, r.AppendUid)
            assert isinstance(big, r.AppendUid)
            await imap.select(box)
            found = await imap.search('SUBJECT "Appended"')
            result = await imap.fetch(found, "FLAGS INTERNALDATE BODY.PEEK[]")
            copy = io.BytesIO()
            [big_uid] = big.uids.iter(0)
            await imap.fetch_stream(big_uid, "", copy)
            await imap.unselect()  # Dovecot disconnects a session whose mailbox is deleted
            await imap.delete(box)
            return small, found, result, copy.getvalue()

    small, found, result, big = run(flavour, scenario)
    assert found == list(small.uids.iter(0))
    [fetched] = result.values()
    assert fetched["BODY[]"] == NEW_MESSAGE
    assert {"\\Seen", "$Mine"} <= set(fetched["FLAGS"])
    assert fetched["INTERNALDATE"] == when
    assert big == MESSAGES[2]


def test_errors_name_the_server_text(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> None:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            with pytest.raises(ServerError) as caught:
                await imap.select("No-Such-Mailbox")
            assert caught.value.code == "NO"
            assert caught.value.command == "SELECT"
            assert caught.value.text
            assert imap.mailbox is None
            assert await imap.noop() == []  # the session goes on

    run(flavour, scenario)


def test_idle_sees_an_append_from_another_client(flavour: str, dovecot: Dovecot) -> None:
    box = f"Idle-{flavour}"

    async def scenario() -> Any:
        async with client(flavour, dovecot) as watcher, client(flavour, dovecot) as writer:
            await watcher.login(dovecot.user, dovecot.password)
            await writer.login(dovecot.user, dovecot.password)
            await writer.create(box)
            state = await watcher.select(box)
            assert state.exists == 0
            seen = []
            async with watcher.idle(timeout=20) as updates:
                await writer.append(box, NEW_MESSAGE)
                async for update in updates:
                    seen.append(update)
                    if isinstance(update, r.Exists):
                        break
            assert state.exists == 1  # the visible state followed
            assert await watcher.search("ALL") == [1]  # and the session goes on after DONE
            await watcher.unselect()
            await writer.delete(box)
            return seen

    seen = run(flavour, scenario)
    assert r.Exists(count=1) in seen


def test_idle_renews_and_stops_after_its_timeout(flavour: str, dovecot: Dovecot) -> None:
    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap:
            await imap.login(dovecot.user, dovecot.password)
            await imap.examine("INBOX")
            async with imap.idle(timeout=0.7, renew=0.2) as updates:
                seen = [u async for u in updates]
            assert await imap.noop() == []
            return seen, imap.session.idle_renewals

    seen, renewals = run(flavour, scenario)
    assert seen == []
    assert renewals >= 2


def test_resume_tells_only_what_changed(flavour: str, dovecot: Dovecot) -> None:
    box = f"Resume-{flavour}"

    async def scenario() -> Any:
        async with client(flavour, dovecot) as imap, client(flavour, dovecot) as other:
            await imap.login(dovecot.user, dovecot.password)
            await other.login(dovecot.user, dovecot.password)
            await imap.create(box)
            for _ in range(3):
                await imap.append(box, NEW_MESSAGE)
            known = await imap.status(box, ["UIDVALIDITY", "HIGHESTMODSEQ"])
            # Meanwhile another client flags one message and expunges another.
            await other.select(box)
            await other.store(2, ["\\Flagged"])
            await other.store(3, ["\\Deleted"])
            await other.expunge([3])
            result = await imap.resume(box, known["UIDVALIDITY"], known["HIGHESTMODSEQ"])
            await imap.unselect()
            stale = await imap.resume(box, known["UIDVALIDITY"] + 1, known["HIGHESTMODSEQ"])
            await imap.unselect()
            await imap.delete(box)
            return result, stale

    result, stale = run(flavour, scenario)
    assert not result.reset
    assert result.state.exists == 2
    assert result.vanished == (3,)
    assert set(result.changed) == {2}
    assert "\\Flagged" in result.changed[2]["FLAGS"]
    assert stale.reset


def test_without_literal_plus_and_move(flavour: str, plain_dovecot: Dovecot) -> None:
    box, other = f"Few-{flavour}", f"FewOther-{flavour}"

    async def scenario() -> None:
        async with client(flavour, plain_dovecot) as imap:
            await imap.login(plain_dovecot.user, plain_dovecot.password)
            assert "LITERAL+" not in imap.capabilities
            assert "MOVE" not in imap.capabilities
            await imap.create(box)
            await imap.create(other)
            appended = await imap.append(box, MESSAGES[2])  # waits for "+", then 2 MB
            assert isinstance(appended, r.AppendUid)
            await imap.append(box, NEW_MESSAGE, flags=["\\Deleted"])  # must survive
            state = await imap.select(box)
            [uid] = appended.uids.iter(0)
            moved = await imap.move(uid, other)  # COPY, STORE \Deleted, UID EXPUNGE
            assert isinstance(moved, r.CopyUid)
            assert state.exists == 1
            assert (await imap.fetch("1:*", "BODY.PEEK[]")).popitem()[1]["BODY[]"] == NEW_MESSAGE
            copy = io.BytesIO()
            await imap.select(other)
            await imap.fetch_stream(1, "", copy, use_uid=False)
            assert copy.getvalue() == MESSAGES[2]
            await imap.unselect()
            await imap.delete(box)
            await imap.delete(other)
            # No CONDSTORE, no QRESYNC: resume fetches the flags of every message.
            status = await imap.status("INBOX", ["UIDVALIDITY"])
            resumed = await imap.resume("INBOX", status["UIDVALIDITY"], None)
            assert not resumed.reset
            assert sorted(resumed.changed) == [1, 2, 3, 4]
            assert all("FLAGS" in result for result in resumed.changed.values())

    run(flavour, scenario)


def test_starttls(flavour: str, tls_dovecot: Dovecot, tls_files: TLSFiles) -> None:
    async def scenario() -> Any:
        async with client(flavour, tls_dovecot, starttls=tls_files.client_context()) as imap:
            assert imap.tls_info is not None
            assert imap.tls_info.version is not None
            assert "STARTTLS" not in imap.capabilities  # asked again over TLS
            await imap.login(tls_dovecot.user, tls_dovecot.password)
            return await imap.status("INBOX", ["MESSAGES"])

    assert run(flavour, scenario) == {"MESSAGES": len(MESSAGES)}


def test_implicit_tls(flavour: str, tls_dovecot: Dovecot, tls_files: TLSFiles) -> None:
    port = tls_dovecot.ports["imaps"]

    async def scenario() -> Any:
        async with client(flavour, port, tls=tls_files.client_context()) as imap:
            assert imap.tls_info is not None
            await imap.authenticate(tls_dovecot.user, tls_dovecot.password)  # PLAIN over TLS
            await imap.examine("INBOX")
            out = io.BytesIO()
            await imap.fetch_stream(3, "", out)
            return out.getvalue()

    assert run(flavour, scenario) == MESSAGES[2]


def test_untrusted_certificate(flavour: str, tls_dovecot: Dovecot) -> None:
    async def scenario() -> None:
        async with client(flavour, tls_dovecot, starttls=True):
            raise AssertionError("the handshake should fail")

    with pytest.raises(TLSFailed, match="certificate"):
        run(flavour, scenario)


# --- IDLE on a connection that died: a scripted peer ----------------------------------


class SilentAfterIdle:
    """A peer on 127.0.0.1 that logs in, selects, starts IDLE and then never answers
    (as when the network went away): a client must notice by its own timeout."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.done = threading.Event()
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
            buffer = b""
            while not self.done.is_set():
                conn.settimeout(0.1)
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    tag, _, rest = line.partition(b" ")
                    verb = rest.split(b" ")[0].upper()
                    if verb == b"IDLE":
                        conn.sendall(b"+ idling\r\n")
                    elif verb == b"SELECT":
                        conn.sendall(b"* 1 EXISTS\r\n" + tag + b" OK [READ-WRITE] done\r\n")
                    elif tag != b"DONE":  # DONE gets no answer: the peer is gone
                        conn.sendall(tag + b" OK done\r\n")

    def close(self) -> None:
        self.done.set()
        self.listener.close()
        self.thread.join(timeout=5)


def test_idle_detects_a_dead_connection(flavour: str) -> None:
    peer = SilentAfterIdle()

    async def scenario() -> None:
        async with client(flavour, peer.port, timeout=0.3) as imap:
            await imap.login("someone", "secret")
            await imap.select("INBOX")
            async with imap.idle(renew=0.2) as updates:
                async for _ in updates:
                    raise AssertionError("no update was sent")

    try:
        with pytest.raises(TransportTimeout):
            run(flavour, scenario)
    finally:
        peer.close()
