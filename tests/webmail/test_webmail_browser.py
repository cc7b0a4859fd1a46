"""The webmail in a real browser: headless Chromium driven by Playwright.

Mail arrives by swaks over SMTP; a user signs in, reads it, downloads its attachment,
replies with an attachment (found afterwards over IMAP in Sent and in the recipient's
INBOX), moves and deletes; a hostile HTML message runs no script and loads nothing
remote; a form posted without its CSRF token is refused; j/k move between messages.

One mail system and one Chromium serve the module; each test signs in as its own user in
a fresh browser context. Skipped without Playwright, Chromium or swaks, unless
MAILPROTO_REQUIRE_INTEROP=1. ``MAILPROTO_SCREENSHOTS=1`` also rewrites ``docs/img/``.

Checked on the way: the download's name from Content-Disposition (RFC 6266), the reply's
In-Reply-To (RFC 5322 section 3.6.4), remote images at a TEST-NET-2 address (RFC 5737).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pytest
from browser_support import (
    PHONE,
    Chromium,
    Traffic,
    append,
    count,
    fill_demo,
    login,
    swaks,
)
from webmail_support import DOMAIN, Env, running, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from conftest import RequireTool

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "demo")
REMOTE = "198.51.100.1"  # TEST-NET-2 (RFC 5737): nothing answers there
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

HOSTILE = (
    b"From: Mallory <mallory@evil.test>\r\nTo: carol@example.org\r\n"
    b"Subject: Your invoice\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><title>pwned</title>"
    b"<script>window.pwned = 1; parent.document.title = 'pwned'; alert('s');</script>"
    b"</head><body><p>Dear customer, please see below.</p>"
    b'<img src="http://198.51.100.1/x.png" alt="tracker">'
    b"<img src=x onerror=\"window.pwned = 2; parent.document.title = 'pwned'\">"
    b'<img src="https://198.51.100.1/y.png" onload="window.pwned = 3">'
    b'<div onmouseover="window.pwned = 4" style="background-image:url(http://198.51.100.1/b)">'
    b"hover me</div>"
    b"<svg><script>window.pwned = 5</script></svg>"
    b'<iframe src="http://198.51.100.1/frame"></iframe>'
    b'<a href="javascript:window.pwned=6">click</a>'
    b'<link rel=stylesheet href="http://198.51.100.1/s.css">'
    b"</body></html>\r\n"
)


@attrs.define
class Web:
    env: Env
    chromium: Chromium


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    chromium = Chromium()
    try:
        with running(tmp_path_factory.mktemp("webmail-browser"), users=USERS) as env:
            yield Web(env=env, chromium=chromium)
    finally:
        chromium.close()


@pytest.fixture
def page(web: Web, require_tool: RequireTool) -> Iterator[Page]:
    require_tool("playwright", module=True)
    require_tool("chromium")
    with web.chromium.page(web.env.port) as opened:
        yield opened


def wait_count(env: Env, user: str, folder: str, expected: int) -> None:
    wait_for(lambda: count(env, user, folder) == expected, timeout=10)


def test_swaks_message_read_download_reply_with_attachment(
    web: Web, page: Page, require_tool: RequireTool, tmp_path: Path
) -> None:
    program = require_tool("swaks")
    env = web.env
    pdf = tmp_path / "minutes-2026.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    swaks(
        program,
        env.system.ports["smtp"],
        sender=f"bob@{DOMAIN}",
        to=f"alice@{DOMAIN}",
        subject="Minutes of the meeting",
        body="Hello Alice, the minutes are attached.",
        attach=pdf,
        attach_type="application/pdf",
    )
    wait_count(env, "alice", "INBOX", 1)

    login(page, "alice")
    row = page.locator("table.messages tbody tr", has_text="Minutes of the meeting")
    row.wait_for()
    assert "unread" in (row.get_attribute("class") or "")
    assert row.locator(".mark.att").count() == 1
    row.locator("td.subject a").click()
    page.wait_for_selector("article.message h1:has-text('Minutes of the meeting')")
    assert "the minutes are attached" in page.inner_text("pre.body")
    assert f"bob@{DOMAIN}" in page.inner_text("dl.headers")

    link = page.locator("section.attachments a", has_text="minutes-2026.pdf")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "minutes-2026.pdf"
    assert Path(download.path()).read_bytes() == pdf.read_bytes()

    page.click("a#reply")
    page.wait_for_selector("form.compose")
    assert page.input_value("input[name=subject]") == "Re: Minutes of the meeting"
    assert f"bob@{DOMAIN}" in page.input_value("input[name=to]")
    page.fill("textarea[name=body]", "Thanks Bob, my comments are attached.\n")
    comments = tmp_path / "comments.txt"
    comments.write_bytes(b"Looks good.\n")
    page.set_input_files("input[name=attach]", comments)
    page.click("button[name=action][value=send]")
    page.wait_for_url(lambda u: "/list?f=INBOX" in u and "note=sent" in u)

    # Sent holds the copy; bob's INBOX gets the delivered reply; the original is answered.
    def parsed(user: str, folder: str) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(raw, policy=email.policy.default)
            for raw in env.messages(user, folder)
        ]

    wait_count(env, "bob", "INBOX", 1)
    for message in (parsed("alice", "Sent")[0], parsed("bob", "INBOX")[0]):
        assert message["Subject"] == "Re: Minutes of the meeting"
        assert message["In-Reply-To"]
        body = message.get_body(("plain",))
        assert body is not None
        assert "my comments are attached" in body.get_content()
        files = [
            (p.get_filename(), p.get_content().replace("\r\n", "\n"))
            for p in message.iter_attachments()
        ]
        assert files == [("comments.txt", "Looks good.\n")]
    page.goto("/list?f=INBOX")
    assert page.locator("table.messages tbody tr .mark.ans").count() == 1


def test_move_and_delete(web: Web, page: Page) -> None:
    env = web.env
    for subject in ("Keep me", "Archive me", "Delete me"):
        append(env, "bob", "INBOX", _plain(subject, "bob"))
    login(page, "bob")
    rows = page.locator("table.messages tbody tr")
    rows.first.wait_for()
    # Bob may already hold the reply of the other test; count only these three.
    page.locator("tr", has_text="Archive me").locator("input[type=checkbox]").check()
    page.select_option("#list-form select[name=to]", "Archive")
    page.click("#list-form button[value=move]")
    page.wait_for_selector("p.note[role=status]")
    assert page.locator("tr", has_text="Archive me").count() == 0
    assert [_subject(m) for m in env.messages("bob", "Archive")] == ["Archive me"]

    page.locator("tr", has_text="Delete me").locator("td.subject a").click()
    page.wait_for_selector("article.message h1:has-text('Delete me')")
    page.click("button#delete")
    page.wait_for_selector("p.note[role=status]")
    assert [_subject(m) for m in env.messages("bob", "Trash")] == ["Delete me"]
    page.goto("/list?f=INBOX")
    assert page.locator("tr", has_text="Delete me").count() == 0
    assert page.locator("tr", has_text="Keep me").count() == 1
    page.goto("/list?f=Trash")
    assert page.locator("tr", has_text="Delete me").count() == 1


def test_hostile_html_runs_no_script_and_loads_nothing_remote(web: Web, page: Page) -> None:
    env = web.env
    append(env, "carol", "INBOX", HOSTILE)
    traffic = Traffic().watch(page, blocked_hosts=(REMOTE,))
    login(page, "carol")
    page.locator("td.subject a", has_text="Your invoice").click()
    page.wait_for_selector("article.message iframe.body")
    page.wait_for_load_state("load")
    frame = page.frame_locator("iframe.body")
    frame.locator("text=Dear customer").wait_for()
    frame.locator("text=hover me").hover()
    frame.locator("text=click").click()  # a javascript: link, stripped to plain text
    assert "Remote images are blocked" in page.inner_text("article.message")

    inner = page.frame(url=lambda u: "/msg/html" in u)
    assert inner is not None
    assert inner.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.title() == "Your invoice · Webmail"
    assert "script" not in inner.content().lower()
    assert "onerror" not in inner.content().lower()
    assert traffic.dialogs == []
    assert traffic.blocked == []
    assert traffic.foreign(env.port) == []
    assert not [line for line in traffic.console if "pwned" in line]

    # The control: after "Load images" the same route does see the remote image, so an
    # empty list above means nothing tried to leave, not that the watch was blind.
    page.click("text=Load images")
    page.frame_locator("iframe.body").locator("text=Dear customer").wait_for()
    wait_for(lambda: traffic.blocked, timeout=5)
    assert all(REMOTE in u and u.endswith((".png",)) for u in traffic.blocked)
    again = page.frame(url=lambda u: "/msg/html" in u and "images=1" in u)
    assert again is not None
    assert again.evaluate("typeof window.pwned") == "undefined"
    assert traffic.dialogs == []


def test_post_without_csrf_token_is_refused(web: Web, page: Page) -> None:
    env = web.env
    append(env, "dave", "INBOX", _plain("Flag me", "dave"))
    login(page, "dave")
    page.locator("td.subject a", has_text="Flag me").click()
    page.wait_for_selector("form#msg-form")

    # The same form, once stripped of its token: refused, and nothing changed.
    page.locator("form#msg-form input[name=csrf]").evaluate("e => e.remove()")
    with page.expect_response(lambda r: r.url.endswith("/action")) as refused:
        page.click("form#msg-form button[value=flag]")
    assert refused.value.status == 403
    assert "★" not in _list_marks(page, "Flag me")

    # And with it: accepted (a redirect back to the message), and flagged.
    page.goto("/list?f=INBOX")
    page.locator("td.subject a", has_text="Flag me").click()
    with page.expect_response(lambda r: r.url.endswith("/action")) as accepted:
        page.click("form#msg-form button[value=flag]")
    assert accepted.value.status == 303
    page.wait_for_selector("form#msg-form button[value=unflag]")
    assert "★" in _list_marks(page, "Flag me")


def test_keyboard_j_k_move_between_messages(web: Web, page: Page) -> None:
    env = web.env
    for n in range(1, 4):
        append(env, "erin", "INBOX", _plain(f"Number {n}", "erin"))
    login(page, "erin")
    rows = page.locator("table.messages tbody tr")
    rows.first.wait_for()
    subjects = [s.strip() for s in rows.locator("td.subject").all_inner_texts()]
    assert subjects == ["Number 3", "Number 2", "Number 1"]  # newest first

    def current() -> str:
        return page.inner_text("table.messages tbody tr.current td.subject").strip()

    page.keyboard.press("j")
    assert current() == "Number 3"
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert current() == "Number 1"
    page.keyboard.press("k")
    assert current() == "Number 2"
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message h1:has-text('Number 2')")
    # On a message, j is the older one and k the newer.
    page.keyboard.press("j")
    page.wait_for_selector("article.message h1:has-text('Number 1')")
    page.keyboard.press("k")
    page.wait_for_selector("article.message h1:has-text('Number 2')")
    page.keyboard.press("k")
    page.wait_for_selector("article.message h1:has-text('Number 3')")
    # Typing in the search box is not a shortcut.
    page.keyboard.press("/")
    page.keyboard.type("jk")
    assert page.input_value(".top .search input[type=search]") == "jk"
    assert page.locator("article.message h1").inner_text() == "Number 3"


def test_phone_sized_window_does_not_scroll_sideways(web: Web, page: Page) -> None:
    append(
        web.env, "frank", "INBOX", _plain("A rather long subject line for a small screen", "frank")
    )
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    login(page, "frank")
    widths = {}
    for path in ("/list?f=INBOX", "/msg?f=INBOX&uid=1", "/compose"):
        page.goto(path)
        page.wait_for_selector("main.content h1")
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
    assert widths == dict.fromkeys(widths, PHONE["width"])


def test_screenshots(web: Web, page: Page, tmp_path: Path) -> None:
    """The main pages render and can be captured; with MAILPROTO_SCREENSHOTS=1 the
    pictures replace those of docs/img/ (otherwise they go to a temporary directory)."""
    env = web.env
    fill_demo(env, "demo")
    docs_img = DOCS_IMG if os.environ.get("MAILPROTO_SCREENSHOTS") == "1" else tmp_path
    docs_img.mkdir(parents=True, exist_ok=True)
    page.goto("/login")
    page.fill("input[name=user]", "demo")
    page.screenshot(path=docs_img / "webmail-login.png")
    login(page, "demo")
    page.screenshot(path=docs_img / "webmail-list.png")
    page.locator("td.subject a", has_text="Quarterly report").click()
    page.wait_for_selector("section.attachments")
    page.screenshot(path=docs_img / "webmail-message.png")
    page.click("a#reply")
    page.wait_for_selector("form.compose")
    quoted = page.input_value("textarea[name=body]")
    page.fill("textarea[name=body]", "Thanks Ada, I'll read it this weekend.\n" + quoted)
    page.screenshot(path=docs_img / "webmail-compose.png")
    with web.chromium.page(env.port, PHONE) as phone:
        login(phone, "demo")
        phone.screenshot(path=docs_img / "webmail-phone.png")


def _plain(subject: str, user: str) -> bytes:
    return (
        f"From: Someone <someone@elsewhere.test>\r\nTo: {user}@{DOMAIN}\r\n"
        f"Subject: {subject}\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{re.sub(r'[^a-z0-9]', '', subject.lower())}.{user}@elsewhere.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{subject}.\r\n"
    ).encode()


def _subject(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Subject"])


def _list_marks(page: Page, subject: str) -> str:
    page.goto("/list?f=INBOX")
    return page.locator("tr", has_text=subject).locator("td.marks").inner_text()
