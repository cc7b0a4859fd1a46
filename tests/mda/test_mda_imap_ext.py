"""IMAP server extensions over the MDA store: SORT, THREAD, [UNSEEN n] and \\Recent.

imaplib against a blocking server in the background; the answers are compared with
what RFC 5256 and RFC 3501 2.3.2 say for small, hand-made mailboxes.
"""

from __future__ import annotations

import imaplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailproto_adapters import blocking
from mailproto_adapters._serving import ServeConfig
from mailproto_adapters.mda.auth import Authenticator
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB


def mail(subject: str, date: str, msgid: str, refs: str = "", size: int = 0) -> bytes:
    head = f"From: x@example.org\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {msgid}\r\n"
    if refs:
        head += f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n"
    return (head + "\r\n" + "x" * size + "\r\n").encode()


@pytest.fixture
def mda(tmp_path: Path) -> MDA:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw")
    users.add("quota", "quota-pw", quota=2 * 1024 * 1024)
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


def login(port: int, user: str = "alice") -> Any:
    client: Any = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    client.login(user, f"{user}-pw")
    return client


def thread_mailbox(mda: MDA) -> None:
    store = mda.user_store("alice")
    store.deliver(mail("Plans", "Mon, 2 Nov 2026 10:00:00 +0000", "<a@x>", size=300))
    store.deliver(mail("Re: plans", "Mon, 2 Nov 2026 11:00:00 +0000", "<b@x>", "<a@x>"))
    store.deliver(mail("other", "Sun, 1 Nov 2026 09:00:00 +0000", "<c@x>", size=400))
    store.deliver(mail("Re: Plans", "Mon, 2 Nov 2026 12:00:00 +0000", "<d@x>", "<a@x> <b@x>"))
    store.deliver(mail("Beta", "Tue, 3 Nov 2026 08:00:00 +0000", "<e@x>", size=500))


def test_sort(mda: MDA, port: int) -> None:
    thread_mailbox(mda)
    client = login(port)
    for cap in ("SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESEARCH"):
        assert cap in client.capabilities
    client.select("INBOX")
    assert client.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"5 3 1 2 4"])
    assert client.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b"3 1 2 4 5"])
    assert client.sort("(REVERSE SIZE)", "UTF-8", "ALL")[1] == [b"5 3 1 4 2"]
    assert client.sort("(SUBJECT REVERSE DATE)", "UTF-8", "ALL")[1] == [b"5 3 4 2 1"]
    # A search program restricts the messages; UID SORT answers UIDs.
    assert client.sort("(SUBJECT)", "UTF-8", "2:4")[1] == [b"3 2 4"]
    client.store("1", "+FLAGS", "(\\Seen)")
    assert client.uid("SORT", "(DATE)", "UTF-8", "UNSEEN") == ("OK", [b"3 2 4 5"])
    assert client.sort("(ARRIVAL)", "US-ASCII", "SUBJECT", "plans")[1] == [b"1 2 4"]
    typ, data = client._simple_command("SORT", "(SUBJECT)", "X-NOPE", "ALL")
    assert typ == "NO"
    assert b"[BADCHARSET" in data[0]
    client.logout()


def test_thread(mda: MDA, port: int) -> None:
    thread_mailbox(mda)
    client = login(port)
    client.select("INBOX")
    typ, data = client.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    assert data == [b"(3)(1 2 4)(5)"]
    typ, data = client.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data == [b"(3)(1 (2)(4))(5)"]
    typ, data = client.uid("THREAD", "REFERENCES", "UTF-8", "2:5")
    assert data == [b"(3)(2 4)(5)"]
    with pytest.raises(imaplib.IMAP4.error, match="unknown THREAD algorithm"):
        client._simple_command("THREAD", "NOSUCH", "UTF-8", "ALL")
    assert client.noop()[0] == "OK"
    client.logout()


def test_unseen_at_select(mda: MDA, port: int) -> None:
    store = mda.user_store("alice")
    store.deliver(mail("a", "Mon, 2 Nov 2026 10:00:00 +0000", "<a@x>"), flags=["\\Seen"])
    store.deliver(mail("b", "Mon, 2 Nov 2026 10:00:00 +0000", "<b@x>"))
    store.deliver(mail("c", "Mon, 2 Nov 2026 10:00:00 +0000", "<c@x>"), flags=["\\Seen"])
    client = login(port)
    client.select("INBOX")
    assert client.untagged_responses.pop("UNSEEN") == [b"2"]
    client.store("2", "+FLAGS", "(\\Seen)")
    client.select("INBOX", readonly=True)
    assert "UNSEEN" not in client.untagged_responses  # all seen: no code
    client.logout()


def test_recent(mda: MDA, port: int) -> None:
    store = mda.user_store("alice")
    store.deliver(mail("old", "Mon, 2 Nov 2026 10:00:00 +0000", "<a@x>"))
    one = login(port)
    # What was there before this process first selected the mailbox is not recent.
    one.select("INBOX")
    assert one.untagged_responses.pop("RECENT") == [b"0"]
    store.deliver(mail("new", "Mon, 2 Nov 2026 10:00:00 +0000", "<b@x>"))
    one.noop()
    assert one.untagged_responses.pop("EXISTS")[-1] == b"2"
    _typ, data = one.fetch("1:2", "(FLAGS)")
    assert b"\\Recent" not in data[0]
    assert b"\\Recent" in data[1]
    assert one.search(None, "RECENT") == ("OK", [b"2"])
    assert one.search(None, "NEW") == ("OK", [b"2"])

    # Claimed by the first session: nobody else sees it \Recent.
    two = login(port)
    two.select("INBOX")
    assert two.untagged_responses.pop("RECENT") == [b"0"]
    two.close()

    # Delivered while only EXAMINE looks: recent for the next read-write SELECT.
    one.close()
    store.deliver(mail("newer", "Mon, 2 Nov 2026 10:00:00 +0000", "<c@x>"))
    assert b"(RECENT 1)" in two.status("INBOX", "(RECENT)")[1][0]
    two.select("INBOX", readonly=True)
    assert two.untagged_responses.pop("RECENT") == [b"1"]
    one.select("INBOX")
    assert one.untagged_responses.pop("RECENT") == [b"1"]
    assert one.untagged_responses.pop("UNSEEN") == [b"1"]
    assert one.search(None, "RECENT") == ("OK", [b"3"])
    assert b"(RECENT 0)" in two.status("INBOX", "(RECENT)")[1][0]
    assert b"\\Recent" in one.fetch("3", "(FLAGS)")[1][0]
    one.logout()
    three = login(port)
    three.enable("IMAP4rev2")  # RFC 9051 has no \\Recent
    store.deliver(mail("newest", "Mon, 2 Nov 2026 10:00:00 +0000", "<d@x>"))
    three.select("INBOX")
    assert "RECENT" not in three.untagged_responses
    assert b"\\Recent" not in three.fetch("4", "(FLAGS)")[1][0]
    three.logout()
    two.logout()


def listing(client: Any, *args: str) -> tuple[list[str], list[str]]:
    """LIST with raw arguments: the LIST lines and the STATUS lines, as text."""
    client.untagged_responses.pop("LIST", None)
    client.untagged_responses.pop("STATUS", None)
    typ, _ = client._simple_command("LIST", *args)
    assert typ == "OK"
    lists = [x.decode() for x in client.untagged_responses.pop("LIST", [])]
    status = [x.decode() for x in client.untagged_responses.pop("STATUS", [])]
    return lists, status


def test_list_extended(mda: MDA, port: int) -> None:
    store = mda.user_store("alice")
    store.create("Work")
    store.create("Work/Projects")
    store.create("Work/Old")
    for name in store.subscriptions():
        store.unsubscribe(name)
    store.subscribe("INBOX")
    store.subscribe("Work/Projects")
    store.subscribe("Gone/Child")
    store.deliver(mail("a", "Mon, 2 Nov 2026 10:00:00 +0000", "<a@x>", size=10))
    client = login(port)
    assert "LIST-EXTENDED" in client.capabilities
    assert "LIST-STATUS" in client.capabilities

    lists, _ = listing(client, "(SUBSCRIBED)", '""', '"*"')
    assert lists == [
        '(\\HasNoChildren \\Subscribed) "/" INBOX',
        '(\\HasNoChildren \\Subscribed) "/" Work/Projects',
        '(\\NonExistent \\Subscribed) "/" Gone/Child',
    ]
    lists, _ = listing(client, "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"')
    assert lists == [
        '(\\HasNoChildren \\Subscribed) "/" INBOX',
        '(\\HasChildren) "/" Work ("CHILDINFO" ("SUBSCRIBED"))',
        '(\\NonExistent) "/" Gone ("CHILDINFO" ("SUBSCRIBED"))',
    ]
    lists, _ = listing(client, "(SPECIAL-USE)", '""', '"*"', "RETURN", "(SPECIAL-USE)")
    assert {x.rsplit(" ", 1)[1] for x in lists} == {"Sent", "Drafts", "Trash", "Junk", "Archive"}
    # Several patterns, RETURN (SUBSCRIBED CHILDREN).
    lists, _ = listing(client, '""', '("INBOX" "Work/%")', "RETURN", "(SUBSCRIBED CHILDREN)")
    assert lists == [
        '(\\HasNoChildren \\Subscribed) "/" INBOX',
        '(\\HasNoChildren) "/" Work/Old',
        '(\\HasNoChildren \\Subscribed) "/" Work/Projects',
    ]
    client.logout()


def test_list_status(mda: MDA, port: int) -> None:
    store = mda.user_store("alice")
    store.deliver(mail("a", "Mon, 2 Nov 2026 10:00:00 +0000", "<a@x>", size=10))
    store.deliver(mail("b", "Mon, 2 Nov 2026 10:00:00 +0000", "<b@x>"), flags=["\\Seen"])
    store.create("Work")
    store.create("Work/Sub")
    client = login(port)
    lists, status = listing(client, '""', '"*"', "RETURN", "(STATUS (MESSAGES UNSEEN APPENDLIMIT))")
    assert len(lists) == len(status)
    assert "INBOX (MESSAGES 2 UNSEEN 1 APPENDLIMIT 52428800)" in status
    assert '"Work/Sub" (MESSAGES 0 UNSEEN 0 APPENDLIMIT 52428800)' in status or (
        "Work/Sub (MESSAGES 0 UNSEEN 0 APPENDLIMIT 52428800)" in status
    )
    assert f"APPENDLIMIT={mda.max_message_size}" in client.capabilities
    client.logout()


def test_searchres(mda: MDA, port: int) -> None:
    thread_mailbox(mda)
    mda.user_store("alice").create("Kept")
    client = login(port)
    assert "SEARCHRES" in client.capabilities
    client.select("INBOX")
    client.untagged_responses.clear()
    typ, _ = client._simple_command("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "plans")
    assert typ == "OK"
    assert "ESEARCH" not in client.untagged_responses  # SAVE alone: no result sent
    typ, data = client.fetch("$", "(UID)")
    assert [x.decode() for x in data] == ["1 (UID 1)", "2 (UID 2)", "4 (UID 4)"]
    assert client.uid("SEARCH", "$", "NOT", "SUBJECT", "re") == ("OK", [b"1"])
    assert client.sort("(REVERSE DATE)", "UTF-8", "$")[1] == [b"4 2 1"]
    assert client.store("$", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert client.search(None, "FLAGGED") == ("OK", [b"1 2 4"])
    # MIN and MAX with SAVE keep only those; the ESEARCH still answers them.
    typ, _ = client._simple_command("SEARCH", "RETURN", "(SAVE MIN MAX)", "ALL")
    assert client.untagged_responses.pop("ESEARCH")[0].endswith(b"MIN 1 MAX 5")
    assert client.search(None, "$") == ("OK", [b"1 5"])
    assert client.copy("$", "Kept")[0] == "OK"
    assert client.status("Kept", "(MESSAGES)")[1] == [b"Kept (MESSAGES 2)"]
    # Expunged messages leave "$"; a failed SEARCH ... RETURN (SAVE) empties it.
    client.store("1", "+FLAGS", "(\\Deleted)")
    client.expunge()
    assert client.uid("SEARCH", "$") == ("OK", [b"5"])
    typ, _ = client._simple_command(
        "SEARCH", "RETURN", "(SAVE)", "CHARSET", "X-NOPE", "SUBJECT", "x"
    )
    assert typ == "NO"
    assert client.search(None, "$") == ("OK", [b""])
    # A new SELECT starts with an empty "$".
    client._simple_command("UID", "SEARCH", "RETURN", "(SAVE)", "ALL")
    client.select("INBOX")
    assert client.fetch("$", "(UID)") == ("OK", [None])
    client.logout()


def test_quota(mda: MDA, port: int) -> None:
    store = mda.user_store("quota")
    store.deliver(mail("a", "Mon, 2 Nov 2026 10:00:00 +0000", "<a@x>", size=3000))
    used = (store.quota_usage().used + 1023) // 1024
    client = login(port, "quota")
    typ, caps = client.capability()
    assert b"QUOTA" in caps[0].split()
    assert b"QUOTA=RES-STORAGE" in caps[0].split()
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK"
    assert data == [[b'INBOX ""'], [f'"" (STORAGE {used} 2048)'.encode()]]
    assert client.getquota('""') == ("OK", [f'"" (STORAGE {used} 2048)'.encode()])
    assert client.getquota("other")[0] == "NO"
    typ, data = client.setquota('""', "(STORAGE 99999)")
    assert typ == "NO"
    assert b"[NOPERM]" in data[0]
    assert client.getquotaroot("Nope")[0] == "NO"
    typ, data = client.status("INBOX", "(DELETED DELETED-STORAGE SIZE)")
    assert data == [b"INBOX (DELETED 0 DELETED-STORAGE 0 SIZE %d)" % store.quota_usage().used]
    client.logout()
    # Without a storage limit there is no quota root: QUOTA is not offered.
    client = login(port)
    assert b"QUOTA" not in client.capability()[1][0].split()
    with pytest.raises(imaplib.IMAP4.error, match="not supported"):
        client.getquotaroot("INBOX")
    client.logout()


def test_search_modseq(mda: MDA, port: int) -> None:
    thread_mailbox(mda)
    client = login(port)
    client.select("INBOX")
    client.store("2", "+FLAGS", "(\\Flagged)")
    highest = max(r.modseq for r in mda.user_store("alice").mailbox("INBOX").snapshot())
    _typ, data = client.search(None, "MODSEQ", str(highest))
    assert data == [b"2 (MODSEQ %d)" % highest]
    client._simple_command("SEARCH", "RETURN", "(COUNT)", "MODSEQ", "1")
    assert client.untagged_responses.pop("ESEARCH")[0].endswith(b"COUNT 5 MODSEQ %d" % highest)
    assert client.search(None, "ALL") == ("OK", [b"1 2 3 4 5"])  # no MODSEQ key: none
    client.logout()
