"""The webmail against a real MailSystem: login, list, search, read, attachments,
compose (to another user's INBOX and to Sent), flags, move, delete, Trash, new mail."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio.abc
import pytest
from webmail_support import DOMAIN, PASSWORD, Browser, Env, running, simple_message, wait_for

ATTACHED = (
    b"From: Carol <carol@elsewhere.test>\r\nTo: alice@example.org\r\nSubject: Report\r\n"
    b"Date: Sat, 28 Nov 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
    b"--XX\r\nContent-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOf\r\n--XX--\r\n"
)

HOSTILE = (
    b"From: Mallory <mallory@evil.test>\r\nTo: alice@example.org\r\nSubject: Hello there\r\n"
    b"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/related; boundary="RR"\r\n\r\n'
    b"--RR\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<p>Hi<script>alert(1)</script></p><img src=x onerror="alert(2)">'
    b'<img src="http://tracker.evil.test/pixel.gif"><img src="cid:logo@x">'
    b'<a href="javascript:alert(3)">click</a><a href="https://ok.test/">ok</a>'
    b'<div style="color:red;background-image:url(http://evil.test/bg)">styled</div>'
    b'<iframe src="http://evil.test/"></iframe><form action="http://evil.test/"></form>\r\n'
    b"--RR\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--RR--\r\n"
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with running(tmp_path) as started:
        yield started


@pytest.fixture
def alice(env: Env) -> Iterator[Browser]:
    browser = env.browser()
    assert browser.login().status == 303
    yield browser
    browser.close()


def uids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'name=uid value="(\d+)"', page)]


def test_login_refused_and_accepted(env: Env) -> None:
    browser = env.browser()
    page = browser.get("/login")
    assert page.status == 200
    assert "Sign in" in page.text
    assert browser.get("/list").status == 303  # no session: to the login page
    bad = browser.post("/login", {"user": "alice", "password": "wrong"}, csrf=False)
    assert bad.status == 403
    assert browser.cookie is None
    assert "wrong" not in bad.text.lower().replace("wrong user name", "")
    good = browser.post("/login", {"user": "alice", "password": PASSWORD}, csrf=False)
    assert good.status == 303
    cookie = good.header("Set-Cookie")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert PASSWORD not in cookie
    assert browser.get("/list", f="INBOX").status == 200
    out = browser.post("/logout", {})
    assert out.status == 303
    assert browser.cookie is None
    assert browser.get("/list", f="INBOX").status == 303
    browser.close()


def test_list_search_and_paging(tmp_path: Path) -> None:
    with running(tmp_path, page_size=3) as env:
        for n in range(7):
            env.append(simple_message(f"Number {n}", sender=f"s{n}@elsewhere.test"))
        browser = env.browser()
        browser.login()
        first = browser.get("/list", f="INBOX")
        assert first.status == 200
        assert uids(first.text) == [7, 6, 5]  # newest first, one page
        assert "Page 1 of 3" in first.text
        third = browser.get("/list", f="INBOX", page=3)
        assert uids(third.text) == [1]
        found = browser.get("/list", f="INBOX", q="Number 4", **{"in": "subject"})
        assert uids(found.text) == [5]
        by_from = browser.get("/list", f="INBOX", q="s2@elsewhere", **{"in": "from"})
        assert uids(by_from.text) == [3]
        anywhere = browser.get("/list", f="INBOX", q='quote " and \\ back')
        assert anywhere.status == 200
        assert uids(anywhere.text) == []
        missing = browser.get("/list", f="NoSuchFolder")
        assert missing.status in (400, 404)
        browser.close()


def test_read_plain_marks_seen(env: Env, alice: Browser) -> None:
    env.append(simple_message("Plain one", body="Line <b>one</b>\r\n"))
    page = alice.get("/msg", f="INBOX", uid=1)
    assert page.status == 200
    assert "Line &lt;b&gt;one&lt;/b&gt;" in page.text
    assert 'id="reply"' in page.text
    listing = alice.get("/list", f="INBOX")
    assert 'class="read"' in listing.text
    client = env.imap()
    try:
        client.select("INBOX")
        _, data = client.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]  # type: ignore[operator]
    finally:
        client.logout()
    assert alice.get("/msg", f="INBOX", uid=99).status == 404
    assert alice.get("/msg", f="INBOX", uid="x").status == 400


def test_hostile_html_is_sanitised(env: Env, alice: Browser) -> None:
    env.append(HOSTILE)
    page = alice.get("/msg", f="INBOX", uid=1)
    assert page.status == 200
    assert "<iframe" in page.text
    assert 'sandbox="allow-popups' in page.text
    assert "allow-scripts" not in page.text
    assert "allow-same-origin" not in page.text
    assert "Load images" in page.text
    assert "script-src 'self'" in page.header("Content-Security-Policy")
    frame = alice.get("/msg/html", f="INBOX", uid=1)
    assert frame.status == 200
    csp = frame.header("Content-Security-Policy")
    assert "default-src 'none'" in csp
    assert "sandbox" in csp
    assert "http" not in csp
    body = frame.text.lower()
    for bad in (
        "<script",
        "alert(",
        "onerror",
        "javascript:",
        "tracker.evil.test",
        "evil.test/bg",
        "<iframe",
        "<form",
        "background-image",
    ):
        assert bad not in body, bad
    assert "data:image/png;base64,ivborw0kggo=" in body  # the cid: image, from the message
    assert 'href="https://ok.test/"' in body
    assert "noopener" in body
    assert "color:red" in body.replace(" ", "")
    loaded = alice.get("/msg/html", f="INBOX", uid=1, images=1)
    assert "http://tracker.evil.test/pixel.gif" in loaded.text
    assert "<script" not in loaded.text.lower()
    assert "onerror" not in loaded.text.lower()
    assert "img-src data: https: http:" in loaded.header("Content-Security-Policy")


def test_attachment_download(env: Env, alice: Browser) -> None:
    env.append(ATTACHED)
    listing = alice.get("/list", f="INBOX")
    assert 'title="Attachment"' in listing.text
    page = alice.get("/msg", f="INBOX", uid=1)
    found = re.search(r'href="(/msg/part\?[^"]+)"', page.text)
    assert found is not None
    assert "résumé 2026.pdf" in page.text
    part = alice.get(found.group(1).replace("&amp;", "&"))
    assert part.status == 200
    assert part.header("Content-Type") == "application/pdf"
    assert part.header("X-Content-Type-Options") == "nosniff"
    disposition = part.header("Content-Disposition")
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9" in disposition
    assert 'filename="r_sum_ 2026.pdf"' in disposition
    assert part.body.startswith(b"%PDF-1.4")
    assert alice.get("/msg/part", f="INBOX", uid=1, part=77).status == 404


def test_compose_with_attachment_reaches_bob_and_sent(env: Env, alice: Browser) -> None:
    alice.get("/compose")
    reply = alice.post(
        "/compose",
        {
            "to": f"Bob <bob@{DOMAIN}>",
            "cc": "",
            "bcc": "",
            "subject": "Café plans",
            "body": "See you at noon.\n",
            "action": "send",
        },
        files=[
            ("attach", "../../etc/plan.txt", "text/plain", b"noon\n"),
            ("attach", "photo.png", "image/png", b"\x89PNG\r\n\x1a\nrest"),
        ],
    )
    assert reply.status == 303, reply.text
    assert "note=sent" in reply.header("Location")
    received = wait_for(lambda: env.messages("bob", "INBOX"))
    message = email.message_from_bytes(received[0], policy=email.policy.default)
    assert message["Subject"] == "Café plans"
    assert message["From"] == f"alice@{DOMAIN}"
    names = [p.get_filename() for p in message.iter_attachments()]
    assert names == ["plan.txt", "photo.png"]
    png = next(p for p in message.iter_attachments() if p.get_filename() == "photo.png")
    assert png.get_content() == b"\x89PNG\r\n\x1a\nrest"
    sent = env.messages("alice", "Sent")
    assert len(sent) == 1
    assert b"Caf" in sent[0]
    assert b"See you at noon." in sent[0]


def test_reply_and_draft(env: Env, alice: Browser) -> None:
    env.append(simple_message("Question", body="Shall we?\r\n"))
    form = alice.get("/compose", mode="reply", f="INBOX", uid=1)
    assert form.status == 200
    assert 'value="Re: Question"' in form.text
    assert "&gt; Shall we?" in form.text
    in_reply_to = re.search(r'name=in_reply_to value="([^"]*)"', form.text)
    assert in_reply_to is not None
    reply = alice.post(
        "/compose",
        {
            "to": "carol@elsewhere.test",
            "subject": "Re: Question",
            "body": "Yes.",
            "in_reply_to": in_reply_to.group(1).replace("&lt;", "<").replace("&gt;", ">"),
            "reply_f": "INBOX",
            "reply_uid": "1",
            "action": "draft",
        },
        files=[],
        headers={"multipart": "1"},
    )
    assert reply.status == 303
    assert "note=draft" in reply.header("Location")
    drafts = env.messages("alice", "Drafts")
    assert len(drafts) == 1
    assert b"In-Reply-To: <" in drafts[0]
    forward = alice.get("/compose", mode="forward", f="INBOX", uid=1)
    assert 'value="Fwd: Question"' in forward.text
    assert "fwd_uid" in forward.text


def test_header_injection_refused(env: Env, alice: Browser) -> None:
    alice.get("/compose")
    reply = alice.post(
        "/compose",
        {
            "to": "bob@example.org",
            "subject": "Hi\r\nBcc: victim@elsewhere.test",
            "body": "x",
            "action": "send",
        },
        files=[],
        headers={"multipart": "1"},
    )
    assert reply.status == 400
    bad_to = alice.post(
        "/compose",
        {
            "to": "bob@example.org\nBcc: x@y.test",
            "subject": "Hi",
            "body": "x",
            "action": "send",
        },
        files=[],
        headers={"multipart": "1"},
    )
    assert bad_to.status == 400
    assert env.messages("alice", "Sent") == []


def test_flags_move_delete_and_empty_trash(env: Env, alice: Browser) -> None:
    for n in range(3):
        env.append(simple_message(f"Item {n}"))
    alice.get("/list", f="INBOX")
    assert alice.post("/action", [("f", "INBOX"), ("op", "flag"), ("uid", "1")]).status == 303
    listing = alice.get("/list", f="INBOX")
    assert 'title="Flagged"' in listing.text
    alice.post("/action", [("f", "INBOX"), ("op", "seen"), ("uid", "2")])
    alice.post("/action", [("f", "INBOX"), ("op", "unseen"), ("uid", "2")])
    moved = alice.post("/action", [("f", "INBOX"), ("op", "move"), ("to", "Archive"), ("uid", "1")])
    assert moved.status == 303
    assert len(env.messages("alice", "Archive")) == 1
    deleted = alice.post("/action", [("f", "INBOX"), ("op", "delete"), ("uid", "2"), ("uid", "3")])
    assert deleted.status == 303
    assert env.messages("alice", "INBOX") == []
    assert len(env.messages("alice", "Trash")) == 2
    trash = alice.get("/list", f="Trash")
    assert "Empty Trash" in trash.text
    one = uids(trash.text)[0]
    gone = alice.post("/action", [("f", "Trash"), ("op", "delete"), ("uid", str(one))])
    assert "note=expunged" in gone.header("Location")
    assert len(env.messages("alice", "Trash")) == 1
    assert alice.post("/trash/empty", {}).status == 303
    assert env.messages("alice", "Trash") == []
    assert alice.post("/action", [("f", "INBOX"), ("op", "explode")]).status == 400


def test_new_mail_event(env: Env, alice: Browser) -> None:
    """The event stream says when the folder changes (polling STATUS every 0.1 s here)."""
    sock = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    try:
        sock.sendall(
            b"GET /events?f=INBOX HTTP/1.1\r\nHost: x\r\nCookie: "
            + (alice.cookie or "").encode()
            + b"\r\n\r\n"
        )
        got = b""
        while b"ping" not in got:
            got += sock.recv(4096)
        assert b"text/event-stream" in got
        env.append(simple_message("Fresh"))
        while b"event: mail" not in got:
            got += sock.recv(4096)
        assert b'"new": true' in got
    finally:
        sock.close()


def test_static_and_keyboard_script(env: Env) -> None:
    browser = env.browser()
    css = browser.get("/static/style.css")
    assert css.status == 200
    assert css.header("Content-Type").startswith("text/css")
    js = browser.get("/static/app.js")
    assert js.status == 200
    assert b"keydown" in js.body
    assert (
        browser.request(
            "GET", "/static/app.js", headers={"If-None-Match": js.header("ETag")}
        ).status
        == 304
    )
    assert browser.get("/static/../app.py").status == 404
    browser.close()


def test_neighbours_odd_folder_names_and_unicode_search(env: Env, alice: Browser) -> None:
    client = env.imap()
    try:
        client.create('"My Stuff"')
    finally:
        client.logout()
    for n in range(3):
        env.append(simple_message(f"Note {n}", body=f"body {n} naïve café\r\n"))
    middle = alice.get("/msg", f="INBOX", uid=2)
    assert 'id="older" rel=next href="/msg?f=INBOX&amp;uid=1"' in middle.text
    assert 'id="newer" rel=prev href="/msg?f=INBOX&amp;uid=3"' in middle.text
    last = alice.get("/msg", f="INBOX", uid=3)
    assert 'id="newer"' not in last.text
    assert 'id="older"' in last.text
    listing = alice.get("/list", f="INBOX")
    assert 'href="/list?f=My+Stuff"' in listing.text
    moved = alice.post(
        "/action", [("f", "INBOX"), ("op", "move"), ("to", "My Stuff"), ("uid", "1")]
    )
    assert moved.status == 303
    assert uids(alice.get("/list", f="My Stuff").text) == [1]
    found = alice.get("/list", f="INBOX", q="café")
    assert found.status == 200
    assert uids(found.text) == [3, 2]
    plain = alice.get("/msg/html", f="INBOX", uid=2)  # no HTML part: an empty frame
    assert plain.status == 200
    assert "<body></body>" in plain.text


def test_event_stream_ends_with_the_session(env: Env, alice: Browser) -> None:
    sock = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    try:
        cookie = (alice.cookie or "").encode()
        sock.sendall(b"GET /events?f=INBOX HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + b"\r\n\r\n")
        got = b""
        while b"ping" not in got:
            got += sock.recv(4096)
        env.clock.now += 10 * 3600  # past the idle timeout
        while b"event: end" not in got:
            got += sock.recv(4096)
    finally:
        sock.close()


def test_a_dropped_imap_connection_is_opened_again(env: Env, alice: Browser) -> None:
    env.append(simple_message("Still here"))
    session = env.webmail.sessions.all()[0]
    assert session.client is not None
    transport = session.client._transport
    assert transport is not None
    raw = transport.stream.extra(anyio.abc.SocketAttribute.raw_socket)  # type: ignore[attr-defined]
    raw.shutdown(socket.SHUT_RDWR)  # as if the server went away
    listing = alice.get("/list", f="INBOX")
    assert listing.status == 200
    assert uids(listing.text) == [1]
    assert session.client is not None
    assert session.client._transport is not transport


def test_shutdown_with_an_event_stream_open(tmp_path: Path) -> None:
    with running(tmp_path) as env:
        browser = env.browser()
        browser.login()
        sock = socket.create_connection(("127.0.0.1", env.port), timeout=10)
        cookie = (browser.cookie or "").encode()
        sock.sendall(b"GET /events?f=INBOX HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + b"\r\n\r\n")
        got = b""
        while b"ping" not in got:
            got += sock.recv(4096)
    # The webmail closed with the stream still open; the connection ends cleanly.
    try:
        while sock.recv(4096):
            pass
    finally:
        sock.close()
