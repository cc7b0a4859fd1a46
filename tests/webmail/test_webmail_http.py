"""The webmail's HTTP side and security rules: malformed requests, limits, CSRF and
origin checks, session expiry, throttled logins, and the pieces in isolation (the
multipart parser, file names, Content-Disposition, header injection)."""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from webmail_support import PASSWORD, Env, multipart, running, simple_message

from conftest import TLSFiles
from mailproto_adapters.mua.webmail import HTTPLimits
from mailproto_adapters.mua.webmail import message as m
from mailproto_adapters.mua.webmail.multipart import MultipartError, MultipartParser, TooLarge


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    limits = HTTPLimits(max_upload=64 * 1024, max_form=16 * 1024, request_timeout=2.0)
    with running(tmp_path, limits=limits, idle_timeout=60.0, max_age=600.0) as started:
        yield started


def raw(env: Env, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes (or 5 s)."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET http://evil.test/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /list?f=%ff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # TLS to plain port
    ],
)
def test_malformed_requests_get_400(env: Env, request_bytes: bytes) -> None:
    answer = raw(env, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert env.browser().get("/login").status == 200  # the server lives on


def test_oversized_head_and_bodies(env: Env) -> None:
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    assert raw(env, huge).startswith(b"HTTP/1.1 431 ")
    browser = env.browser()
    browser.login()
    browser.get("/compose")
    files = [("attach", "big.bin", "application/octet-stream", b"x" * 100_000)]
    body, ctype = multipart([("csrf", browser.csrf), ("to", "bob@example.org")], files)
    announced = browser.request("POST", "/compose", body=body, headers={"Content-Type": ctype})
    assert announced.status == 413
    # The same without Content-Length (chunked): refused while it streams in.
    browser.conn.close()
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as sock:
        head = (
            "POST /compose HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: {ctype}\r\nCookie: {browser.cookie}\r\n\r\n"
        ).encode()
        sock.sendall(head)
        answer = b""
        try:
            for start in range(0, len(body), 8192):
                piece = body[start : start + 8192]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        assert answer.startswith(b"HTTP/1.1 413"), answer[:60]
    big_form = browser.post("/action", {"f": "INBOX", "op": "seen", "pad": "y" * 20_000})
    assert big_form.status == 413


def test_bad_multipart_is_400(env: Env) -> None:
    browser = env.browser()
    browser.login()
    browser.get("/compose")
    for body, ctype in (
        (b'--abc\r\nContent-Disposition: form-data; name="to"\r\n\r\nx', "boundary=abc"),
        (b"whatever", ""),
        (b"--abc\r\nContent-Type: text/plain\r\n\r\nx\r\n--abc--\r\n", "boundary=abc"),
    ):
        reply = browser.request(
            "POST",
            "/compose",
            body=body,
            headers={"Content-Type": "multipart/form-data; " + ctype},
        )
        assert reply.status == 400, (body, reply.status)


def test_not_found_and_method_not_allowed(env: Env) -> None:
    browser = env.browser()
    assert browser.get("/nowhere").status == 404
    wrong = browser.request("DELETE", "/login")
    assert wrong.status == 405
    assert "POST" in wrong.header("Allow")
    assert browser.request("PUT", "/compose").status == 405
    assert browser.post("/logout", {}, csrf=False).status == 403  # no session
    head = browser.request("HEAD", "/login")
    assert head.status == 200
    assert head.body == b""


def test_security_headers_everywhere(env: Env) -> None:
    browser = env.browser()
    for reply in (browser.get("/login"), browser.get("/nowhere"), browser.get("/static/app.js")):
        assert reply.header("Referrer-Policy") == "no-referrer"
        assert reply.header("X-Content-Type-Options") == "nosniff"
        csp = reply.header("Content-Security-Policy")
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
    page = browser.get("/login").text
    assert "<script>" not in page
    assert " style=" not in page
    assert "onclick" not in page


def test_csrf_and_origin_checks(env: Env) -> None:
    env.append(simple_message("Keep me"))
    browser = env.browser()
    browser.login()
    fields = [("f", "INBOX"), ("op", "delete"), ("uid", "1")]
    assert browser.post("/action", fields, csrf=False).status == 403
    assert browser.post("/action", [*fields, ("csrf", "forged")], csrf=False).status == 403
    cross = browser.post("/action", fields, headers={"Origin": "http://evil.test"})
    assert cross.status == 403
    site = browser.post("/action", fields, headers={"Sec-Fetch-Site": "cross-site"})
    assert site.status == 403
    assert len(env.messages("alice", "INBOX")) == 1  # nothing happened
    login = browser.post(
        "/login",
        {"user": "alice", "password": PASSWORD},
        csrf=False,
        headers={"Origin": "http://evil.test"},
    )
    assert login.status == 403
    ok = browser.post("/action", fields, headers={"Origin": f"http://127.0.0.1:{env.port}"})
    assert ok.status == 303
    assert env.messages("alice", "INBOX") == []


def test_session_idle_and_absolute_expiry(env: Env) -> None:
    browser = env.browser()
    browser.login()
    assert browser.get("/list", f="INBOX").status == 200
    env.clock.now += 59
    assert browser.get("/list", f="INBOX").status == 200  # touched: idle time restarts
    env.clock.now += 61
    expired = browser.get("/list", f="INBOX")
    assert expired.status == 303
    assert "expired" in expired.header("Location")
    assert len(env.webmail.sessions) == 0
    browser.login()
    for _ in range(13):  # busy all along, still ends at max_age
        env.clock.now += 50
        last = browser.get("/list", f="INBOX")
    assert last.status == 303


def test_login_throttling_is_shared_with_the_mda(env: Env) -> None:
    auth = env.system.mda.authenticator
    browser = env.browser()
    for _ in range(2):
        assert browser.post("/login", {"user": "alice", "password": "no"}, csrf=False).status == 403
    assert auth.delay("alice", "127.0.0.1") > 0  # the MDA counted the webmail's failures
    auth.max_ip_failures = 1
    refused = browser.post("/login", {"user": "alice", "password": PASSWORD}, csrf=False)
    assert refused.status == 429
    auth.max_ip_failures = 20
    assert browser.login().status == 303


def test_password_kept_out_of_pages_and_cookies(env: Env) -> None:
    browser = env.browser()
    reply = browser.post("/login", {"user": "alice", "password": PASSWORD}, csrf=False)
    assert PASSWORD not in reply.header("Set-Cookie")
    assert PASSWORD not in reply.header("Location")
    for path in ("/list?f=INBOX", "/compose"):
        assert PASSWORD.encode() not in browser.get(path).body
    session = env.webmail.sessions.all()[0]
    assert PASSWORD not in repr(session)
    browser.post("/logout", {})
    assert session.password == ""


def test_keep_alive_serves_several_requests(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as sock:
        sock.sendall(
            b"GET /login HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        got = b""
        while got.count(b"</html>") < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got.startswith(b"HTTP/1.1 200")
        assert b"HTTP/1.1 404" in got


# -- the pieces ----------------------------------------------------------------------------


def _form() -> tuple[bytes, str]:
    body, ctype = multipart(
        [("to", "bob@example.org"), ("body", "line one\r\n--not-a-boundary\r\n")],
        [("attach", "a.bin", "application/octet-stream", bytes(range(256)) * 40)],
    )
    return body, ctype.split("boundary=", 1)[1]


@pytest.mark.parametrize("step", [1, 7, 100, 1 << 20])
def test_multipart_split_invariance(step: int) -> None:
    body, boundary = _form()
    parser = MultipartParser(boundary, spool_memory=1024)
    for start in range(0, len(body), step):
        parser.feed(body[start : start + step])
    parser.finish()
    assert parser.fields == {
        "to": ["bob@example.org"],
        "body": ["line one\r\n--not-a-boundary\r\n"],
    }
    [upload] = parser.uploads
    assert upload.filename == "a.bin"
    assert upload.read() == bytes(range(256)) * 40
    parser.close()


def test_multipart_limits_and_errors() -> None:
    body, boundary = _form()
    small = MultipartParser(boundary, max_field=4)
    with pytest.raises(TooLarge):
        small.feed(body)
    small.close()
    few = MultipartParser(boundary, max_parts=1)
    with pytest.raises(TooLarge):
        few.feed(body)
    few.close()
    cut = MultipartParser(boundary)
    cut.feed(body[:-10])
    with pytest.raises(MultipartError):
        cut.finish()
    with pytest.raises(MultipartError):
        MultipartParser("")


def test_safe_filename_and_disposition() -> None:
    assert m.safe_filename("../../etc/passwd") == "passwd"
    assert m.safe_filename("C:\\Users\\x\\evil.exe") == "evil.exe"
    assert m.safe_filename(".bashrc") == "bashrc"
    assert m.safe_filename("a\r\nb\x00c.txt") == "abc.txt"
    assert m.safe_filename("") == "attachment"
    assert len(m.safe_filename("x" * 500 + ".pdf")) <= 120
    assert m.safe_filename("x" * 500 + ".pdf").endswith(".pdf")
    value = m.content_disposition('na"me;ü.txt')
    assert value == "attachment; filename=\"na_me__.txt\"; filename*=UTF-8''na%22me%3B%C3%BC.txt"


def test_build_message_refuses_injection() -> None:
    with pytest.raises(m.HeaderInjection):
        m.check_header("Subject", "a\nBcc: x@y")
    with pytest.raises(ValueError):
        m.split_addresses("To", "bob@example.org\r\nBcc: x@y.test")
    with pytest.raises(ValueError):
        m.split_addresses("To", "not an address")
    message = m.build_message(
        sender="alice@example.org",
        to=["Bob <bob@example.org>"],
        cc=[],
        bcc=[],
        subject="Ça va ?",
        body="Bonjour\n",
        attachments=[("../x.txt", "text/plain", b"hi"), ("y", "bad type\r\n", b"\x00")],
    )
    data = message.as_bytes()
    assert b"\nBcc" not in data
    assert b"Subject: =?utf-8?" in data
    names = [p.get_filename() for p in message.iter_attachments()]
    assert names == ["x.txt", "y"]
    assert [p.get_content_type() for p in message.iter_attachments()][1] == (
        "application/octet-stream"
    )


def test_https_cookie_is_secure(tmp_path: Path, tls_files: TLSFiles) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(tls_files.cert), str(tls_files.key))
    with running(tmp_path, tls=server) as env:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", env.port, context=tls_files.client_context(), timeout=10
        )
        try:
            body = urllib.parse.urlencode({"user": "alice", "password": PASSWORD})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            conn.request("POST", "/login", body=body, headers=headers)
            reply = conn.getresponse()
            reply.read()
            assert reply.status == 303
            cookie = reply.getheader("Set-Cookie") or ""
            assert "; Secure" in cookie
            assert "HttpOnly" in cookie
            assert (reply.getheader("Strict-Transport-Security") or "").startswith("max-age=")
        finally:
            conn.close()


def test_a_new_login_ends_the_old_session(env: Env) -> None:
    browser = env.browser()
    browser.login()
    first = env.webmail.sessions.all()[0]
    browser.login()
    assert first.closed
    assert len(env.webmail.sessions) == 1


def test_expect_100_continue(env: Env) -> None:
    body = b"user=alice&password=wrong"
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        assert sock.recv(100).startswith(b"HTTP/1.1 403 ")
