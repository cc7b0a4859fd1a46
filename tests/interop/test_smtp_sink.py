"""Real clients deliver through ``examples/smtp_sink.py``: smtplib, swaks, smtp-source,
and our own `ClientConnection` over real sockets and real TLS.

Every delivered file is checked byte for byte: the ``X-Envelope-From``/``X-Envelope-To``
lines the sink adds, then the message exactly as the client meant it (dot-stuffing
undone, CRLF line endings). Raw sockets cover what these clients never do: a pipelined
group answered in one write, BDAT chunks, plaintext pipelined after STARTTLS.
"""

from __future__ import annotations

import email.generator
import email.policy
import io
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailproto import NEED_DATA
from mailproto.sasl import PlainClient
from mailproto.smtp import (
    Auth,
    Bdat,
    ClientConnection,
    Ehlo,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
    SMTPEvent,
    StartTLS,
)

if TYPE_CHECKING:
    from conftest import RequireTool, Sink, StartSink, TLSFiles

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice@example.com", "correct horse"


def envelope(sender: str, *recipients: str) -> bytes:
    lines = [f"X-Envelope-From: <{sender}>\r\n"]
    lines += [f"X-Envelope-To: <{rcpt}>\r\n" for rcpt in recipients]
    return "".join(lines).encode("utf-8")


@contextmanager
def smtp_client(sink: Sink) -> Iterator[smtplib.SMTP]:
    # An explicit local_hostname: smtplib would otherwise ask DNS for our FQDN.
    client = smtplib.SMTP(sink.host, sink.port, local_hostname="client.example", timeout=10)
    try:
        yield client
    finally:
        client.close()


class RawClient:
    """A socket and a reply reader, for what no ordinary client sends."""

    def __init__(self, sink: Sink) -> None:
        self.sock = socket.create_connection((sink.host, sink.port), timeout=10)
        self.buf = b""
        self.reads = 0  # how many recv() calls returned data

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, n: int) -> list[tuple[int, bytes]]:
        """Read ``n`` complete replies: (code, text of their last line)."""
        out: list[tuple[int, bytes]] = []
        while len(out) < n:
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError(f"closed after {out!r}")
                self.reads += 1
                self.buf += data
                continue
            self.buf = rest
            if line[3:4] != b"-":
                out.append((int(line[:3]), line[4:]))
        return out

    def at_eof(self) -> bool:
        return self.buf == b"" and self.sock.recv(1024) == b""

    def hello(self) -> None:
        assert self.replies(1)[0][0] == 220
        self.send(b"EHLO client.example\r\n")
        assert self.replies(1)[0][0] == 250


@pytest.fixture
def raw(sink: Sink) -> Iterator[RawClient]:
    client = RawClient(sink)
    try:
        yield client
    finally:
        client.close()


# --- smtplib --------------------------------------------------------------------------


def test_plain_message(sink: Sink) -> None:
    msg = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nHi there.\r\n"
    with smtp_client(sink) as client:
        assert client.sendmail("a@example.com", ["b@example.com"], msg) == {}
        assert client.quit()[0] == 221
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + msg]
    assert sink.leftovers() == []


def test_extensions_offered(sink: Sink) -> None:
    with smtp_client(sink) as client:
        code, _ = client.ehlo()
        assert code == 250
        for keyword in ("pipelining", "8bitmime", "smtputf8", "chunking", "dsn"):
            assert client.has_extn(keyword), keyword
        assert client.has_extn("enhancedstatuscodes")
        assert client.esmtp_features["size"] == "10240000"
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")


def test_several_recipients_and_null_sender(sink: Sink) -> None:
    msg = b"Subject: to three\r\n\r\nbody\r\n"
    rcpts = ["b@example.com", "c@example.org", '"d d"@example.net']
    with smtp_client(sink) as client:
        assert client.sendmail("", rcpts, msg) == {}
        assert client.sendmail("a@example.com", rcpts[:1], msg) == {}
    assert sink.messages() == [
        envelope("", *rcpts) + msg,
        envelope("a@example.com", "b@example.com") + msg,
    ]


def test_8bitmime_utf8_body(sink: Sink) -> None:
    msg = (
        "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nCafé, naïve, 日本語, ελληνικά.\r\n"
    ).encode()
    with smtp_client(sink) as client:
        client.ehlo()
        assert client.has_extn("8bitmime")
        client.sendmail("a@example.com", ["b@example.com"], msg, mail_options=["BODY=8BITMIME"])
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + msg]


def test_smtputf8_addresses(sink: Sink) -> None:
    sender, rcpt = "jörg@bücher.example", "用户@例え.jp"
    msg = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: ünïcode\r\n\r\nHallo.\r\n".encode()
    with smtp_client(sink) as client:
        client.ehlo()
        client.sendmail(sender, [rcpt], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert sink.messages() == [envelope(sender, rcpt) + msg]


def test_non_ascii_address_without_smtputf8_is_refused(sink: Sink) -> None:
    with smtp_client(sink) as client:
        client.ehlo()
        client.command_encoding = "utf-8"  # let smtplib put UTF-8 on the wire anyway
        code, text = client.mail("jörg@bücher.example")
        assert (code, text[:5]) == (553, b"5.6.7")
        assert client.noop()[0] == 250  # the session goes on


def test_leading_dots_and_long_lines(sink: Sink) -> None:
    line_900, line_998 = b"x" * 899 + b"y", b"z" * 998  # 998 + CRLF: the longest allowed
    msg = (
        b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nbetween lone dots\r\n"
        b".\r\n" + line_900 + b"\r\n. space\r\n" + line_998 + b"\r\nlast\r\n"
    )
    with smtp_client(sink) as client:
        client.sendmail("a@example.com", ["b@example.com"], msg)
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + msg]


def test_998_octet_line_starting_with_a_dot_is_accepted(sink: Sink) -> None:
    # RFC 5321 section 4.5.3.1.6: a text line is at most 1000 octets with its CRLF, "not
    # counting the leading dot duplicated for transparency". This line is 998 + CRLF;
    # smtplib sends it stuffed, 1001 octets on the wire.
    msg = b"Subject: limit\r\n\r\n." + b"x" * 997 + b"\r\n"
    with smtp_client(sink) as client:
        assert client.sendmail("a@example.com", ["b@example.com"], msg) == {}
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + msg]


@pytest.mark.parametrize("length", [999, 1200])
def test_line_over_1000_octets_is_refused_and_nothing_is_kept(sink: Sink, length: int) -> None:
    msg = b"Subject: too long\r\n\r\nfine\r\n" + b"z" * length + b"\r\nfine\r\n"
    with smtp_client(sink) as client, pytest.raises(smtplib.SMTPDataError) as info:
        client.sendmail("a@example.com", ["b@example.com"], msg)
    assert info.value.smtp_code == 500
    assert sink.messages() == []
    assert sink.leftovers() == []


def test_send_message_with_attachment(sink: Sink) -> None:
    msg = EmailMessage()
    msg["From"] = "Alice <a@example.com>"
    msg["To"] = "Bob <b@example.com>, c@example.com"
    msg["Subject"] = "report"
    msg.set_content("See the attachment.\n.and a line with a dot\n")
    payload = bytes(range(256)) * 40
    msg.add_attachment(payload, maintype="application", subtype="octet-stream", filename="r.bin")
    msg.set_boundary("==boundary-for-the-test==")
    with io.BytesIO() as out:  # what send_message writes, for comparison
        email.generator.BytesGenerator(out).flatten(msg, linesep="\r\n")
        expected = out.getvalue()
    with smtp_client(sink) as client:
        assert client.send_message(msg) == {}
    [delivered] = sink.messages()
    assert delivered == envelope("a@example.com", "b@example.com", "c@example.com") + expected
    parsed = email.message_from_bytes(delivered, policy=email.policy.default)
    [attachment] = parsed.iter_attachments()
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_content() == payload


def test_rset_and_new_transaction(sink: Sink) -> None:
    with smtp_client(sink) as client:
        client.ehlo()
        assert client.mail("old@example.com")[0] == 250
        assert client.rcpt("old@example.com")[0] == 250
        assert client.rset()[0] == 250
        client.sendmail("new@example.com", ["b@example.com"], b"Subject: x\r\n\r\ny\r\n")
    assert sink.messages() == [
        envelope("new@example.com", "b@example.com") + b"Subject: x\r\n\r\ny\r\n"
    ]


def test_bad_sequences_get_503_and_the_session_goes_on(sink: Sink) -> None:
    with smtp_client(sink) as client:
        client.ehlo()
        assert client.rcpt("b@example.com")[0] == 503
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("FROB")[0] == 500
        assert client.vrfy("b@example.com")[0] == 252
        assert client.sendmail("a@example.com", ["b@example.com"], b"\r\n") == {}
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + b"\r\n"]


def test_size_limit(start_sink: StartSink) -> None:
    sink = start_sink("--max-size", "1000")
    with smtp_client(sink) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "1000"
        assert client.mail("a@example.com", ["SIZE=1001"])[0] == 552
        # Announcing no SIZE does not help: the body is counted as it arrives.
        assert client.mail("a@example.com")[0] == 250
        assert client.rcpt("b@example.com")[0] == 250
        code, text = client.data(b"Subject: big\r\n\r\n" + b"x\r\n" * 400)
        assert (code, text[:5]) == (552, b"5.3.4")
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: small\r\n\r\n")
    assert sink.messages() == [
        envelope("a@example.com", "b@example.com") + b"Subject: small\r\n\r\n"
    ]
    assert sink.leftovers() == []


# --- raw sockets: pipelining, CHUNKING, STARTTLS injection ----------------------------


def test_pipelined_group_is_answered_in_one_write(raw: RawClient, sink: Sink) -> None:
    raw.hello()
    raw.send(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
        b"RCPT TO:<c@example.com>\r\nDATA\r\n"
    )
    reads = raw.reads
    assert [code for code, _ in raw.replies(4)] == [250, 250, 250, 354]
    # RFC 2920 section 3.2: the server may and should group the replies; the sink writes
    # them when the core has nothing more to read, so one recv() holds all four.
    assert raw.reads == reads + 1
    raw.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert [code for code, _ in raw.replies(2)] == [250, 221]
    assert raw.at_eof()
    assert sink.messages() == [
        envelope("a@example.com", "b@example.com", "c@example.com")
        + b"Subject: pipelined\r\n\r\nbody\r\n"
    ]


def test_chunking_pipelined_bdat(raw: RawClient, sink: Sink) -> None:
    raw.hello()
    chunk1 = b"Subject: chunks\r\n\r\n.no unstuffing\r\n.\r\nbare\nlf\r\n"
    chunk2 = b"\x00\xff binary is fine in BDAT"
    raw.send(
        b"MAIL FROM:<a@example.com> BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\n"
        + b"BDAT %d\r\n" % len(chunk1)
        + chunk1
        + b"BDAT %d LAST\r\n" % len(chunk2)
        + chunk2
        + b"MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nBDAT 0 LAST\r\nQUIT\r\n"
    )
    codes = [code for code, _ in raw.replies(8)]
    assert codes == [250, 250, 250, 250, 250, 250, 250, 221]
    assert sink.messages() == [
        envelope("a@example.com", "b@example.com") + chunk1 + chunk2,
        envelope("c@example.com", "d@example.com"),
    ]


def test_bdat_without_recipient_is_refused_and_its_bytes_skipped(
    raw: RawClient, sink: Sink
) -> None:
    raw.hello()
    raw.send(b"MAIL FROM:<a@example.com>\r\nBDAT 6 LAST\r\nNOOP\r\nNOOP\r\n")
    assert [code for code, _ in raw.replies(3)] == [250, 503, 250]
    assert sink.messages() == []


def test_bare_lf_in_data_is_refused(raw: RawClient, sink: Sink) -> None:
    raw.hello()
    raw.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    assert [code for code, _ in raw.replies(3)] == [250, 250, 354]
    # SMTP smuggling: "\n.\n" and "\r\n.\n" are content, never the end of DATA.
    raw.send(b"Subject: x\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n")
    code, text = raw.replies(1)[0]
    assert (code, text[:5]) == (550, b"5.5.2")
    raw.send(b"QUIT\r\n")
    assert raw.replies(1)[0][0] == 221
    assert sink.messages() == []
    assert sink.leftovers() == []


def test_plaintext_pipelined_after_starttls_is_refused(
    start_sink: StartSink, tls_files: TLSFiles
) -> None:
    sink = start_sink(*tls_files.args())
    raw = RawClient(sink)
    try:
        raw.hello()
        raw.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        replies = raw.replies(2)
        assert [code for code, _ in replies] == [220, 554]
        assert raw.at_eof()
    finally:
        raw.close()


# --- STARTTLS and AUTH ----------------------------------------------------------------


def tls_auth_sink(start_sink: StartSink, tls_files: TLSFiles) -> Sink:
    return start_sink(*tls_files.args(), "--user", USER, "--password", PASSWORD)


def test_starttls_then_auth_plain(start_sink: StartSink, tls_files: TLSFiles) -> None:
    sink = tls_auth_sink(start_sink, tls_files)
    msg = b"Subject: secret\r\n\r\nover TLS\r\n"
    with smtp_client(sink) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # never offered in the clear with a cert
        assert client.mail("a@example.com")[0] == 530
        assert client.docmd("AUTH", "PLAIN AGFsaWNlAHB3")[0] == 502
        assert client.starttls(context=tls_files.client_context())[0] == 220
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert client.mail("a@example.com")[0] == 530  # still not authenticated
        assert client.login(USER, PASSWORD)[0] == 235  # smtplib picks PLAIN
        assert client.sendmail("a@example.com", ["b@example.com"], msg) == {}
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + msg]


@pytest.mark.parametrize("initial_response", [False, True])
def test_starttls_then_auth_login(
    start_sink: StartSink, tls_files: TLSFiles, initial_response: bool
) -> None:
    sink = tls_auth_sink(start_sink, tls_files)
    with smtp_client(sink) as client:
        client.starttls(context=tls_files.client_context())
        client.ehlo()
        client.user, client.password = USER, PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=initial_response)
        assert code == 235
        assert client.sendmail("a@example.com", ["b@example.com"], b"\r\nlogin\r\n") == {}
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + b"\r\nlogin\r\n"]


@pytest.mark.parametrize(("user", "password"), [(USER, "wrong"), ("mallory@example.com", PASSWORD)])
def test_bad_credentials_get_535(
    start_sink: StartSink, tls_files: TLSFiles, user: str, password: str
) -> None:
    sink = tls_auth_sink(start_sink, tls_files)
    with smtp_client(sink) as client:
        client.starttls(context=tls_files.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login(user, password)
        assert info.value.smtp_code == 535
        assert client.mail("a@example.com")[0] == 530
        assert client.login(USER, PASSWORD)[0] == 235  # a later attempt may succeed
        assert client.mail("a@example.com")[0] == 250


def test_auth_without_certificate_works_in_the_clear(start_sink: StartSink) -> None:
    sink = start_sink("--user", USER, "--password", PASSWORD)
    with smtp_client(sink) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        code, text = client.mail("a@example.com")
        assert (code, text[:5]) == (530, b"5.7.0")
        assert client.rcpt("b@example.com")[0] == 503
        client.login(USER, PASSWORD)
        assert client.sendmail("a@example.com", ["b@example.com"], b"\r\nauth\r\n") == {}
    assert sink.messages() == [envelope("a@example.com", "b@example.com") + b"\r\nauth\r\n"]


def test_tls_client_that_does_not_trust_the_certificate(
    start_sink: StartSink, tls_files: TLSFiles
) -> None:
    sink = tls_auth_sink(start_sink, tls_files)
    with smtp_client(sink) as client, pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(context=ssl.create_default_context())
    # The sink dropped that session quietly and serves the next one.
    with smtp_client(sink) as client:
        assert client.noop()[0] == 250


# --- swaks ----------------------------------------------------------------------------


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=30
    )


def swaks_command(swaks: str, sink: Sink, *args: str) -> list[str]:
    return [
        swaks,
        "--server",
        sink.host,
        "--port",
        str(sink.port),
        "--helo",
        "client.example",
        "--timeout",
        "10",
        *args,
    ]


def test_swaks_pipelining_and_8bit_data(
    require_tool: RequireTool, sink: Sink, tmp_path: Path
) -> None:
    swaks = require_tool("swaks")
    data = "Subject: café\nFrom: a@example.com\n\n.leading dot\nnaïve ünïcode\n..two dots\nend"
    (tmp_path / "data.txt").write_bytes(data.encode())
    result = run_tool(
        *swaks_command(swaks, sink, "--protocol", "ESMTP", "--pipeline"),
        *("--from", "a@example.com", "--to", "b@example.com,c@example.com"),
        *("--data", f"@{tmp_path / 'data.txt'}"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # swaks wrote the whole group before reading any reply: the sink saw it pipelined.
    sent = [line.strip() for line in result.stdout.splitlines() if line.startswith(("<", " ->"))]
    start = sent.index("-> MAIL FROM:<a@example.com>")
    assert sent[start : start + 8] == [
        "-> MAIL FROM:<a@example.com>",
        "-> RCPT TO:<b@example.com>",
        "-> RCPT TO:<c@example.com>",
        "-> DATA",
        "<-  250 2.1.0 Sender ok",
        "<-  250 2.1.5 Recipient ok",
        "<-  250 2.1.5 Recipient ok",
        "<-  354 End data with <CR><LF>.<CR><LF>",
    ]
    expected = data.replace("\n", "\r\n").encode() + b"\r\n"  # swaks ends the last line
    assert sink.messages() == [
        envelope("a@example.com", "b@example.com", "c@example.com") + expected
    ]


def swaks_with_tls(require_tool: RequireTool) -> str:
    swaks = require_tool("swaks")
    support = run_tool(swaks, "--support").stdout + run_tool(swaks, "--support").stderr
    if "=== TLS supported" not in support:
        require_tool.unavailable("swaks lacks TLS support (Debian package libnet-ssleay-perl)")
    return swaks


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_starttls_and_auth(
    require_tool: RequireTool, start_sink: StartSink, tls_files: TLSFiles, mechanism: str
) -> None:
    swaks = swaks_with_tls(require_tool)
    sink = tls_auth_sink(start_sink, tls_files)
    result = run_tool(
        *swaks_command(swaks, sink, "-tls", "--tls-verify", "--tls-ca-path", str(tls_files.ca)),
        *("--tls-sni", "localhost"),
        *("--auth", mechanism, "--auth-user", USER, "--auth-password", PASSWORD),
        *("--from", "a@example.com", "--to", "b@example.com"),
        *("--data", "Subject: swaks\\n\\nover TLS\\n", "--pipeline"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    assert sink.messages() == [
        envelope("a@example.com", "b@example.com") + b"Subject: swaks\r\n\r\nover TLS\r\n\r\n"
    ]


def test_swaks_wrong_password(
    require_tool: RequireTool, start_sink: StartSink, tls_files: TLSFiles
) -> None:
    swaks = swaks_with_tls(require_tool)
    sink = tls_auth_sink(start_sink, tls_files)
    result = run_tool(
        *swaks_command(swaks, sink, "-tls", "--tls-verify", "--tls-ca-path", str(tls_files.ca)),
        *("--auth", "PLAIN", "--auth-user", USER, "--auth-password", "nope"),
        *("--from", "a@example.com", "--to", "b@example.com"),
    )
    assert result.returncode != 0
    assert "535 5.7.8" in result.stdout
    assert sink.messages() == []


# --- Postfix's smtp-source ------------------------------------------------------------


def test_smtp_source_50_messages_in_5_sessions(require_tool: RequireTool, sink: Sink) -> None:
    smtp_source = require_tool("smtp-source")
    result = run_tool(
        smtp_source,
        *("-s", "5", "-m", "50", "-l", "2048", "-M", "client.example"),
        *("-f", "a@example.com", "-t", "b@example.com", f"{sink.host}:{sink.port}"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    messages = sink.messages()
    assert len(messages) == 50
    head = envelope("a@example.com", "b@example.com") + b"From: <a@example.com>\r\n"
    for message in messages:
        assert message.startswith(head)
        _, _, body = message.partition(b"\r\n\r\n")
        lines = body.split(b"\r\n")
        assert lines[-1] == b""
        assert all(set(line[1:]) <= {ord("X")} for line in lines)
        assert 2000 <= len(body) <= 2100


def test_smtp_source_one_connection(require_tool: RequireTool, sink: Sink) -> None:
    smtp_source = require_tool("smtp-source")
    result = run_tool(
        smtp_source,
        *("-d", "-m", "20", "-r", "3", "-N", "-l", "100", "-M", "client.example"),
        *("-f", "a@example.com", "-t", "b@example.com", f"{sink.host}:{sink.port}"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    messages = sink.messages()
    assert len(messages) == 20
    assert all(m.count(b"\r\nX-Envelope-To: <") == 3 for m in messages)


# --- our own client over real sockets and real TLS ------------------------------------


def test_our_client_starttls_auth_and_pipelined_bdat(
    start_sink: StartSink, tls_files: TLSFiles
) -> None:
    sink = tls_auth_sink(start_sink, tls_files)
    conn = ClientConnection()
    sock: socket.socket = socket.create_connection((sink.host, sink.port), timeout=10)

    def send(*events: SMTPEvent) -> None:
        sock.sendall(b"".join(conn.send(event) for event in events))

    def reply() -> Reply:
        while (event := conn.next_event()) is NEED_DATA:
            conn.receive_data(sock.recv(65536))
        assert isinstance(event, Reply), event
        return event

    try:
        assert reply().code == 220
        send(Ehlo(domain="client.example"))
        assert reply().code == 250
        send(StartTLS())
        assert reply().code == 220
        conn.start_tls()
        sock = tls_files.client_context().wrap_socket(sock, server_hostname="localhost")
        send(Ehlo(domain="client.example"))
        assert reply().code == 250
        assert conn.extensions is not None
        assert conn.extensions.auth_mechanisms == {"PLAIN", "LOGIN"}
        plain = PlainClient(USER, PASSWORD)
        send(Auth(mechanism="PLAIN", initial_response=plain.initial_response()))
        assert reply().code == 235
        send(
            MailFrom(sender="a@example.com", size=15, body="8BITMIME"),
            RcptTo(recipient="b@example.com"),
            Bdat(size=10),
            MessageData(b"Subject: \xc3"),
            Bdat(size=5, last=True),
            MessageData(b"\xa9\r\n\r\n"),
            Quit(),
        )
        assert [reply().code for _ in range(5)] == [250, 250, 250, 250, 221]
    finally:
        sock.close()
    assert sink.messages() == [
        envelope("a@example.com", "b@example.com") + "Subject: é\r\n\r\n".encode()
    ]
