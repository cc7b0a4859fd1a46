"""Shared by the browser tests and the screenshots: headless Chromium under Playwright
(sync API) in front of the webmail of `webmail_support.running`, plus what a test needs
around it: mail delivered by swaks, a recorder of every request the page makes, demo
content for the screenshots.

Chromium is Debian's (``/usr/bin/chromium``), not a Playwright download, so nothing is
fetched at test time. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import imaplib
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from webmail_support import DOMAIN, PASSWORD, Env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, Request, Route

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000


def chromium_path() -> str | None:
    """Debian's Chromium, or whatever ``chromium`` is on PATH; None when there is none."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


class Chromium:
    """One headless Chromium for a whole module, started on first use (launching costs
    about a second, a new context a few milliseconds)."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def browser(self) -> Browser:
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium_path() or CHROMIUM, args=CHROMIUM_ARGS
            )
        return self._browser

    @contextmanager
    def page(self, port: int, viewport: dict[str, int] | None = None) -> Iterator[Page]:
        """A page in a fresh context (its own cookies), closed afterwards."""
        context = self.browser().new_context(
            base_url=f"http://127.0.0.1:{port}",
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            accept_downloads=True,
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()
        self._browser = self._playwright = None


class OriginRefused(AssertionError):
    """The webmail refused the browser's own form as coming "from another site"."""


def login(page: Page, user: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would, and wait for the Inbox."""
    page.goto("/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button[type=submit]")
    if posted.value.status == 403 and "another site" in page.content():
        origin = posted.value.request.header_value("origin")
        raise OriginRefused(f"login form refused with 403; the browser sent Origin: {origin}")
    page.wait_for_url(lambda u: "/list?f=INBOX" in u)
    page.wait_for_selector("h1:has-text('Inbox')")


@attrs.define
class Traffic:
    """Every request the page made, console line it logged and dialog it opened; and the
    requests to ``blocked`` hosts, which a route aborts before they leave."""

    requests: list[str] = attrs.field(factory=list)
    console: list[str] = attrs.field(factory=list)
    dialogs: list[str] = attrs.field(factory=list)
    blocked: list[str] = attrs.field(factory=list)

    def watch(self, page: Page, blocked_hosts: tuple[str, ...] = ()) -> Traffic:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        for host in blocked_hosts:

            def stop(route: Route, request: Request) -> None:
                self.blocked.append(request.url)
                route.abort()

            page.context.route(f"http://{host}/**", stop)
            page.context.route(f"https://{host}/**", stop)
        return self

    def foreign(self, port: int) -> list[str]:
        """Requests to anywhere but the webmail (``data:`` URLs never leave the page)."""
        own = f"http://127.0.0.1:{port}/"
        return [u for u in self.requests if not u.startswith((own, "data:", "about:"))]


def swaks(
    program: str,
    port: int,
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    attach: Path | None = None,
    attach_type: str = "application/octet-stream",
) -> None:
    """Deliver one message through the MTA's SMTP port with swaks."""
    args = [
        program,
        "--server",
        f"127.0.0.1:{port}",
        "--from",
        sender,
        "--to",
        to,
        "--helo",
        "client.example.net",
        "--header",
        f"Subject: {subject}",
        "--body",
        body,
        "--timeout",
        "10",
    ]
    if attach is not None:
        args += ["--attach-type", attach_type, "--attach", f"@{attach}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def count(env: Env, user: str, folder: str) -> int:
    client = env.imap(user)
    try:
        _, data = client.select(folder, readonly=True)
        return int(data[0] or 0)
    finally:
        client.logout()


def append(env: Env, user: str, folder: str, message: bytes, flags: str = "") -> None:
    """APPEND with flags (``env.append`` gives none)."""
    client = env.imap(user)
    try:
        client.append(folder, flags, imaplib.Time2Internaldate(time.time()), message)
    finally:
        client.logout()


# --- demo content for the screenshots -------------------------------------------------

_DEMO = [
    # (name, address, subject, date, flags, body, attachment name)
    (
        "Margaret Hamilton",
        "margaret@apollo.example",
        "Review notes for the release, before Thursday",
        "Mon, 23 Nov 2026 09:12:00 +0000",
        "(\\Seen)",
        "Hi Alice,\n\nI went through the change list for 2.4 and left notes inline.\n"
        "Two items need a decision before Thursday's freeze:\n\n"
        "  1. The retry schedule for deferred mail: keep 4h, or go to 2h?\n"
        "  2. Whether the webmail ships enabled by default.\n\n"
        "The full notes are in the attached PDF.\n\nThanks,\nMargaret\n",
        None,
    ),
    (
        "Grace Hopper",
        "grace@navy.example",
        "Lunch on Friday?",
        "Tue, 24 Nov 2026 12:40:00 +0000",
        "(\\Seen \\Answered)",
        "Are you free on Friday at 12:30? The usual place.\n\nGrace\n",
        None,
    ),
    (
        "Ops team",
        "ops@example.org",
        "Maintenance window: Saturday 02:00-04:00 UTC",
        "Wed, 25 Nov 2026 16:05:00 +0000",
        "",
        "The MX hosts will be restarted one at a time. No mail will be lost; "
        "deliveries may be delayed by a few minutes.\n",
        None,
    ),
    (
        "Linus Example",
        "linus@kernel.example",
        "Re: patch series v3",
        "Thu, 26 Nov 2026 08:30:00 +0000",
        "(\\Seen)",
        "Looks good to me. Applied to the next branch.\n",
        None,
    ),
    (
        "Ada Lovelace",
        "ada@analytical.example",
        "Quarterly report, Q3 figures attached",
        "Fri, 27 Nov 2026 10:15:00 +0000",
        "(\\Flagged)",
        "Hello Alice,\n\nThe Q3 figures are attached, with the charts you asked for.\n"
        "Revenue is up 12 % on the quarter; the details are on page 3.\n\n"
        "Could you look at the summary before Monday's meeting?\n\n"
        "Best regards,\nAda\n",
        "Q3-report.pdf",
    ),
    (
        "Katherine Johnson",
        "katherine@orbit.example",
        "Trajectory numbers, second pass",
        "Sat, 28 Nov 2026 07:50:00 +0000",
        "",
        "I re-ran the numbers by hand; they agree with the machine to the eighth place.\n",
        None,
    ),
]


def demo_message(
    n: int, name: str, address: str, subject: str, date: str, body: str, attachment: str | None
) -> bytes:
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["From"] = f"{name} <{address}>"
    message["To"] = f"Alice Martin <alice@{DOMAIN}>"
    message["Subject"] = subject
    message["Date"] = date
    message["Message-ID"] = f"<demo.{n:04d}@{address.split('@')[1]}>"
    message.set_content(body)
    if attachment:
        pdf = b"%PDF-1.4\n% demo\n" + b"0" * 180_000 + b"\n%%EOF\n"
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=attachment)
    return message.as_bytes()


def fill_demo(env: Env, user: str) -> None:
    """A small, plausible mailbox: read and unread, flagged, answered, an attachment."""
    for n, (name, address, subject, date, flags, body, attachment) in enumerate(_DEMO):
        message = demo_message(n, name, address, subject, date, body, attachment)
        append(env, user, "INBOX", message, flags)
