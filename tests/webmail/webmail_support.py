"""Shared by the webmail tests: a mail system with users, the webmail in front of it on
an anyio portal thread, and a small cookie-keeping HTTP client over http.client."""

from __future__ import annotations

import contextlib
import functools
import http.client
import imaplib
import re
import secrets
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import attrs

from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mua.webmail import Webmail, WebmailConfig
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

PASSWORD = "a fine password"
DOMAIN = "example.org"
SERVICES = ("lmtp", "smtp", "submission", "imap")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@attrs.define
class Env:
    system: MailSystem
    webmail: Webmail
    port: int
    clock: FakeClock
    browsers: list[Browser] = attrs.field(factory=list)

    def browser(self) -> Browser:
        """A new browser, closed when the environment stops."""
        browser = Browser(self.port)
        self.browsers.append(browser)
        return browser

    def imap(self, user: str = "alice") -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.system.ports["imap"])
        client.login(user, PASSWORD)
        return client

    def append(self, data: bytes, user: str = "alice", folder: str = "INBOX") -> None:
        client = self.imap(user)
        try:
            client.append(folder, "", imaplib.Time2Internaldate(time.time()), data)
        finally:
            client.logout()

    def messages(self, user: str, folder: str) -> list[bytes]:
        client = self.imap(user)
        try:
            _, data = client.select(folder, readonly=True)
            count = int(data[0] or 0)
            out = []
            for n in range(1, count + 1):
                _, fetched = client.fetch(str(n), "(BODY.PEEK[])")
                item = fetched[0]
                assert isinstance(item, tuple)
                out.append(item[1])
            return out
        finally:
            client.logout()


@contextlib.contextmanager
def running(
    tmp_path: Path,
    users: tuple[str, ...] = ("alice", "bob"),
    tls: ssl.SSLContext | None = None,
    **config: Any,
) -> Iterator[Env]:
    data = tmp_path / "data"
    data.mkdir()
    db = UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4))
    for user in users:
        db.add(user, PASSWORD)
    system = MailSystem(
        SystemConfig(
            data_dir=data,
            hostname=f"mx.{DOMAIN}",
            local_domains=(DOMAIN,),
            listeners=tuple(ListenerConfig(service=s) for s in SERVICES),
            allow_plaintext=True,
            grace=1.0,
        )
    ).start()
    clock = FakeClock()
    try:
        settings: dict[str, Any] = {"domain": DOMAIN, "poll_interval": 0.1, "clock": clock}
        settings.update(config)
        webmail = Webmail(
            imap=("127.0.0.1", system.ports["imap"]),
            submission=("127.0.0.1", system.ports["submission"]),
            authenticator=system.mda.authenticator,
            config=WebmailConfig(**settings),
        )
        with anyio.from_thread.start_blocking_portal() as portal:
            future, port = portal.start_task(
                functools.partial(webmail.serve, "127.0.0.1", 0, tls=tls)
            )
            env = Env(system=system, webmail=webmail, port=port, clock=clock)
            try:
                yield env
            finally:
                for browser in env.browsers:
                    browser.close()
                portal.call(webmail.close, 0.5)
                future.result(timeout=10)
    finally:
        system.close(grace=1)


@attrs.define
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


class Browser:
    """Keeps one keep-alive connection and the session cookie, like a browser would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        self.cookie: str | None = None
        self.csrf = ""

    def close(self) -> None:
        self.conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        try:
            self.conn.request(method, path, body=body, headers=sent)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            self.conn.request(method, path, body=body, headers=sent)
            response = self.conn.getresponse()
        data = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            value = cookie.split(";", 1)[0]
            self.cookie = None if value.endswith("=") else value
        reply = Reply(status=response.status, headers=response.headers, body=data)
        found = re.search(rb'name=csrf value="([^"]+)"', data)
        if found:
            self.csrf = found.group(1).decode()
        if response.will_close:
            self.conn.close()
        return reply

    def get(self, path: str, **params: Any) -> Reply:
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return self.request("GET", path)

    def post(
        self,
        path: str,
        fields: dict[str, Any] | list[tuple[str, str]],
        *,
        files: list[tuple[str, str, str, bytes]] = (),  # type: ignore[assignment]
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if csrf and self.csrf and not any(k == "csrf" for k, _ in items):
            items.append(("csrf", self.csrf))
        sent = dict(headers or {})
        if files or sent.pop("multipart", ""):
            body, ctype = multipart(items, files)
        else:
            body = urllib.parse.urlencode(items).encode()
            ctype = "application/x-www-form-urlencoded"
        sent.setdefault("Content-Type", ctype)
        return self.request("POST", path, body=body, headers=sent)

    def login(self, user: str = "alice", password: str = PASSWORD) -> Reply:
        reply = self.post("/login", {"user": user, "password": password}, csrf=False)
        if reply.status == 303:
            self.get(reply.header("Location"))
        return reply


def multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body: fields, then (field, filename, type, data) files."""
    boundary = "----b" + secrets.token_hex(8)
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += str(value).encode() + b"\r\n"
    for name, filename, ctype, data in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def simple_message(
    subject: str, body: str = "Hello.\r\n", sender: str = "carol@elsewhere.test"
) -> bytes:
    return (
        f"From: Carol <{sender}>\r\nTo: alice@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{secrets.token_hex(6)}@elsewhere.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()
