"""The MTA's SMTP listeners (mta/smtpd.py, mta/service.py) end to end on loopback.

Senders: Python's smtplib, swaks (interop: skipped when missing unless
MAILPROTO_REQUIRE_INTEROP=1), our own SMTPClient and a raw line-level client. Each MTA's
``on_queued`` hook reads the entry and the message back from disk when it is called,
which is before the 250: so a client that got its 250 finds the message in that list.
The helpers here (`start_env`, `Raw`) are also used by test_mta_relay.py.
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mailproto_adapters import blocking
from mailproto_adapters._effects import TLSInfo
from mailproto_adapters._smtp_clients import SMTPClient
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mta import smtpd
from mailproto_adapters.mta.queue import QueueEntry
from mailproto_adapters.mta.service import MTA, normalize_domain
from mailproto_adapters.mta.smtpd import check_recipient, protocol_name, received_field

if TYPE_CHECKING:
    from conftest import RequireTool, TLSFiles

LOCAL_DOMAINS = ("example.org", "example.net", "bücher.example")


@dataclass
class Queued:
    """What the on_queued hook found on disk when it was called (before the 250)."""

    entry: QueueEntry
    message: bytes


@dataclass
class Env:
    mta: MTA
    inbound: blocking.BlockingServer
    submission: blocking.BlockingServer
    queued: list[Queued] = field(default_factory=list)
    servers: list[blocking.BlockingServer] = field(default_factory=list)

    def serve(self, session: Any, **kwargs: Any) -> blocking.BlockingServer:
        server = blocking.serve(session, grace=1.0, **kwargs)
        self.servers.append(server)
        return server

    def close(self) -> None:
        # In parallel: each close waits for its acceptor's 0.2 s poll.
        closers = [
            threading.Thread(target=server.close, args=(1.0,))
            for server in [self.inbound, self.submission, *self.servers]
        ]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()

    def disk(self) -> list[tuple[QueueEntry, bytes]]:
        """Everything in the queue directory now."""
        out = []
        for entry_id in self.mta.queue.ids():
            entry = self.mta.queue.load(entry_id)
            assert entry is not None
            with self.mta.queue.open_message(entry_id) as f:
                out.append((entry, f.read()))
        return out

    def leftovers(self) -> list[str]:
        """Temporary files in the queue (a message neither committed nor aborted)."""
        return sorted(p.name for p in (Path(self.mta.queue.path) / "tmp").iterdir())


def server_context(tls_files: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls_files.cert), str(tls_files.key))
    return ctx


def make_users(path: Path) -> UserDB:
    users = UserDB(path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", "alice-pw")
    users.add("bob@example.net", "bob-pw")
    users.add("postmaster", "pm-pw")
    return users


def start_env(tmp_path: Path, tls_files: Any | None = None, **kwargs: Any) -> Env:
    holder: list[Env] = []

    def on_queued(entry: QueueEntry) -> None:
        env = holder[0]
        loaded = env.mta.queue.load(entry.id)
        assert loaded is not None, "on_queued called before the entry was on disk"
        with env.mta.queue.open_message(entry.id) as f:
            env.queued.append(Queued(loaded, f.read()))

    if "users" not in kwargs:
        kwargs["users"] = make_users(tmp_path)
    kwargs.setdefault("hostname", "mx.example.org")
    kwargs.setdefault("local_domains", LOCAL_DOMAINS)
    kwargs.setdefault("tarpit_step", 0.0)
    if tls_files is not None:
        kwargs.setdefault("tls_context", server_context(tls_files))
    mta = MTA(tmp_path / "mta", on_queued=on_queued, **kwargs)
    inbound = blocking.serve(mta.inbound_session, grace=1.0, name="smtp")
    submission = blocking.serve(mta.submission_session, grace=1.0, name="submission")
    env = Env(mta, inbound, submission)
    holder.append(env)
    return env


def env_fixture(tmp_path: Path, tls_files: Any, **kwargs: Any) -> Iterator[Env]:
    env = start_env(tmp_path, tls_files, **kwargs)
    try:
        yield env
    finally:
        env.close()


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=30
    )


class Raw:
    """A line-level SMTP client: sends exactly the bytes given, reads whole replies."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> tuple[int, str]:
        """One reply: (code, its lines joined with \\n); (0, "") at end of file."""
        lines: list[str] = []
        while True:
            line = self.file.readline()
            if not line:
                return 0, "\n".join(lines)
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> tuple[int, str]:
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.send(data + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- fixtures and small helpers ---------------------------------------------------------

RECEIVED = re.compile(
    r"Received: from (?P<from>\S+) \((?P<literal>\[[^\]]+\])\)\r\n"
    r"\tby mx\.example\.org \(mailproto\) with (?P<proto>[A-Z0-9]+) id (?P<id>[0-9a-f]+)"
    r"(?:\r\n\t\(using (?P<tls>TLSv[0-9.]+) with cipher (?P<cipher>[A-Za-z0-9_-]+)\))?"
    r"(?:\r\n\tfor <(?P<for>[^>]+)>)?; (?P<date>[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000)\r\n"
)
BODY = b"From: someone@remote.test\r\nSubject: hello\r\n\r\nline one\r\n.leading dot\r\n"


@pytest.fixture
def env(tmp_path: Path, tls_files: TLSFiles) -> Iterator[Env]:
    yield from env_fixture(tmp_path, tls_files)


def trace_and_rest(message: bytes) -> tuple[re.Match[str], bytes]:
    """The Received field we wrote (checked against RFC 5321 4.4's shape) and the rest."""
    text = message.decode("utf-8", "surrogateescape")
    m = RECEIVED.match(text)
    assert m is not None, message[:400]
    return m, text[m.end() :].encode("utf-8", "surrogateescape")


def submission_client(env: Env, tls_files: TLSFiles, user: str, password: str) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", env.submission.port, timeout=10)
    client.ehlo("client.example")
    client.starttls(context=tls_files.client_context())
    client.ehlo("client.example")
    client.login(user, password)
    return client


def queued_id(reply_text: bytes | str) -> str:
    text = reply_text.decode() if isinstance(reply_text, bytes) else reply_text
    m = re.search(r"queued as ([0-9a-f]+)", text)
    assert m is not None, text
    return m.group(1)


# --- inbound ----------------------------------------------------------------------------


def test_inbound_accepts_local_users_smtplib(env: Env) -> None:
    with smtplib.SMTP("127.0.0.1", env.inbound.port, timeout=10) as client:
        code, ehlo = client.ehlo("client.example")
        assert code == 250
        offered = ehlo.decode().upper().split("\n")
        for keyword in ("PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "STARTTLS"):
            assert keyword in offered
        assert "ENHANCEDSTATUSCODES" in offered
        assert f"SIZE {env.mta.max_message_size}" in offered
        assert not any(line.startswith("AUTH") for line in offered)  # never on inbound
        assert client.mail("someone@remote.test")[0] == 250
        assert client.rcpt("alice@example.org") == (250, b"2.1.5 Recipient ok")
        assert client.rcpt("Bob@EXAMPLE.NET")[0] == 250  # a full-address user, any case
        code, text = client.data(BODY)
        assert code == 250
        assert text.startswith(b"2.0.0 Ok: queued as ")
        # on_queued ran (reading the entry from disk) before this 250 came back.
        assert [q.entry.id for q in env.queued] == [queued_id(text)]
    queued = env.queued[0]
    assert queued.entry.sender == "someone@remote.test"
    assert [r.address for r in queued.entry.recipients] == [
        "alice@example.org",
        "Bob@example.net",
    ]
    assert queued.entry.auth_user is None
    assert queued.entry.client == "client.example ([127.0.0.1])"
    m, rest = trace_and_rest(queued.message)
    assert m.group("from") == "client.example"
    assert m.group("literal") == "[127.0.0.1]"
    assert m.group("proto") == "ESMTP"
    assert m.group("for") is None  # two recipients: no "for"
    assert m.group("tls") is None
    assert rest == BODY  # smtplib dot-stuffed ".leading", the server unstuffed it
    assert env.disk() == [(queued.entry, queued.message)]


def test_inbound_unknown_user_and_relay_refused(env: Env) -> None:
    with smtplib.SMTP("127.0.0.1", env.inbound.port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("someone@remote.test")
        assert client.rcpt("nobody@example.org") == (550, b"5.1.1 No such user here")
        assert client.rcpt("victim@remote.test") == (550, b"5.7.1 Relaying denied")
        assert client.rcpt("bob@example.org")[0] == 550  # bob is bob@example.net only
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.data(b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 554  # no valid recipients
    assert env.disk() == []


def test_inbound_postmaster(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        assert raw.cmd("MAIL FROM:<>")[0] == 250
        assert raw.cmd("RCPT TO:<Postmaster>")[0] == 250
        assert raw.cmd("RCPT TO:<postmaster@EXAMPLE.net>")[0] == 250
        assert raw.cmd("DATA")[0] == 354
        assert raw.cmd(b"Subject: to the postmaster\r\n\r\nhi\r\n.")[0] == 250
    ((entry, _),) = env.disk()
    assert entry.sender == ""
    assert [r.address for r in entry.recipients] == [
        "postmaster@example.org",
        "postmaster@example.net",
    ]


def test_postmaster_alias_and_absent(tmp_path: Path) -> None:
    users = make_users(tmp_path)
    users.delete("postmaster")
    env = start_env(tmp_path, users=users, postmaster="bob@example.net")
    try:
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            raw.cmd("MAIL FROM:<>")
            assert raw.cmd("RCPT TO:<postmaster>")[0] == 250
            assert raw.cmd("RCPT TO:<postmaster@example.org>")[0] == 250
        env.mta.postmaster = "alice"
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            raw.cmd("MAIL FROM:<>")
            assert raw.cmd("RCPT TO:<postmaster@example.net>")[0] == 250
            assert raw.cmd("DATA")[0] == 354
            assert raw.cmd(b"Subject: x\r\n\r\nx\r\n.")[0] == 250
        env.mta.postmaster = None
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            raw.cmd("MAIL FROM:<>")
            assert raw.cmd("RCPT TO:<postmaster>") == (550, "5.1.1 No such user here")
    finally:
        env.close()
    ((entry, _),) = env.disk()
    assert [r.address for r in entry.recipients] == ["alice@example.net"]


@pytest.mark.interop
def test_inbound_swaks(env: Env, require_tool: RequireTool, tmp_path: Path) -> None:
    swaks = require_tool("swaks")
    data = tmp_path / "data.txt"
    data.write_bytes(b"Subject: swaks\nMessage-ID: <m1@remote.test>\n\nfrom swaks\n")
    result = run_tool(
        swaks,
        *("--server", f"127.0.0.1:{env.inbound.port}", "--helo", "swaks.example"),
        *("--timeout", "10", "--pipeline", "--from", "a@remote.test"),
        *("--to", "alice@example.org", "--data", f"@{data}"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as" in result.stdout
    refused = run_tool(
        swaks,
        *("--server", f"127.0.0.1:{env.inbound.port}", "--helo", "swaks.example"),
        *("--timeout", "10", "--from", "a@remote.test", "--to", "victim@remote.test"),
    )
    assert refused.returncode != 0
    assert "550 5.7.1 Relaying denied" in refused.stdout
    (queued,) = env.queued
    m, rest = trace_and_rest(queued.message)
    assert m.group("from") == "swaks.example"
    assert m.group("for") == "alice@example.org"
    assert rest.startswith(b"Subject: swaks\r\nMessage-ID: <m1@remote.test>\r\n")
    assert b"Date:" not in rest  # inbound adds nothing but the trace field


# --- submission -------------------------------------------------------------------------


def test_submission_requires_tls_then_auth(env: Env, tls_files: TLSFiles) -> None:
    with smtplib.SMTP("127.0.0.1", env.submission.port, timeout=10) as client:
        _, ehlo = client.ehlo("client.example")
        assert b"AUTH" not in ehlo  # no AUTH before TLS
        code, text = client.mail("alice@example.org")
        assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")
        client.starttls(context=tls_files.client_context())
        _, ehlo = client.ehlo("client.example")
        assert b"AUTH SCRAM-SHA-256 PLAIN LOGIN" in ehlo
        assert b"STARTTLS" not in ehlo
        assert client.mail("alice@example.org") == (530, b"5.7.0 Authentication required")
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            client.login("alice", "wrong")
        assert failed.value.smtp_code == 535
        assert "5.7.8" in str(failed.value.smtp_error)
    assert env.disk() == []


def test_submission_plain_over_starttls_relays(env: Env, tls_files: TLSFiles) -> None:
    with submission_client(env, tls_files, "alice", "alice-pw") as client:
        assert client.mail("alice@example.org") == (250, b"2.1.0 Sender ok")
        assert client.rcpt("friend@remote.test")[0] == 250
        assert client.rcpt("bob@example.net")[0] == 250
        assert client.rcpt("ghost@example.org") == (550, b"5.1.1 No such user here")
        code, text = client.data(b"Subject: out\r\n\r\nhello world\r\n")
        assert code == 250
        assert [q.entry.id for q in env.queued] == [queued_id(text)]
    queued = env.queued[0]
    assert queued.entry.auth_user == "alice"
    assert [r.address for r in queued.entry.recipients] == [
        "friend@remote.test",
        "bob@example.net",
    ]
    m, rest = trace_and_rest(queued.message)
    assert m.group("proto") == "ESMTPSA"
    assert m.group("tls") in ("TLSv1.2", "TLSv1.3")
    assert m.group("cipher")
    # Message-ID and Date added (before the header block, after the trace field).
    head = rest.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert re.fullmatch(rb"Message-ID: <[0-9a-f]+\.[0-9a-f]+@mx\.example\.org>", head[0])
    assert head[1].startswith(b"Date: ")
    assert parsedate_to_datetime(head[1][6:].decode()) is not None
    assert rest.endswith(b"Subject: out\r\n\r\nhello world\r\n")


def test_submission_keeps_message_id_and_date(env: Env, tls_files: TLSFiles) -> None:
    body = (
        b"Subject: mine\r\nmessage-id: <own@client.example>\r\n"
        b"DATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n"
    )
    partial = b"Subject: half\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n"
    with submission_client(env, tls_files, "alice", "alice-pw") as client:
        client.sendmail("alice@example.org", ["x@remote.test"], body)
        client.sendmail("alice@example.org", ["x@remote.test"], partial)
        client.sendmail("alice@example.org", ["x@remote.test"], b"\r\nno header at all\r\n")
    first, second, third = (trace_and_rest(q.message)[1] for q in env.queued)
    assert first == body
    assert second.startswith(b"Message-ID: <")
    assert second.endswith(partial)
    assert b"Date:" not in second.split(b"Subject:")[0]
    assert third.startswith(b"Message-ID: <")
    assert b"\r\nDate: " in third
    assert third.endswith(b"\r\n\r\nno header at all\r\n")


def test_submission_sender_must_belong_to_user(tmp_path: Path, tls_files: TLSFiles) -> None:
    env = start_env(tmp_path, tls_files, aliases={"alice": ["Alice.Smith@Example.ORG"]})
    try:
        with submission_client(env, tls_files, "alice", "alice-pw") as client:
            assert client.mail("bob@example.net") == (
                553,
                b"5.7.1 Sender address not owned by alice",
            )
            client.rset()
            assert client.mail("")[0] == 553  # no null sender on submission
            client.rset()
            for own in ("alice@example.org", "ALICE@example.net", "alice.smith@example.org"):
                assert client.mail(own)[0] == 250, own
                client.rset()
            assert client.mail("alice@bücher.example", ["SMTPUTF8"])[0] == 250
            client.rset()
            assert client.mail("alice@xn--bcher-kva.example")[0] == 250
        with submission_client(env, tls_files, "bob@example.net", "bob-pw") as client:
            assert client.mail("bob@example.net")[0] == 250
            client.rset()
            assert client.mail("bob@example.org")[0] == 553
    finally:
        env.close()


def test_dsn_parameters_are_stored(env: Env, tls_files: TLSFiles) -> None:
    with submission_client(env, tls_files, "alice", "alice-pw") as client:
        assert (
            client.mail("alice@example.org", ["RET=HDRS", "ENVID=env+2Bid", "BODY=8BITMIME"])[0]
            == 250
        )
        assert (
            client.rcpt(
                "a@remote.test", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;A+2Bx@remote.test"]
            )[0]
            == 250
        )
        assert client.rcpt("b@remote.test", ["NOTIFY=NEVER"])[0] == 250
        assert client.rcpt("c@remote.test")[0] == 250
        assert client.rcpt("C@Remote.Test")[0] == 250  # the same mailbox: queued once
        assert client.data("Subject: dsn\r\n\r\nbody caf\u00e9\r\n".encode())[0] == 250
    ((entry, _),) = env.disk()
    assert (entry.ret, entry.envid, entry.body, entry.smtputf8) == (
        "HDRS",
        "env+id",
        "8BITMIME",
        False,
    )
    a, b, c = entry.recipients
    assert (a.address, a.notify, a.orcpt) == (
        "a@remote.test",
        frozenset({"SUCCESS", "DELAY"}),
        "rfc822;A+x@remote.test",
    )
    assert (b.notify, b.orcpt) == (frozenset(), None)
    assert (c.address, c.notify) == ("c@remote.test", None)


def test_smtputf8_and_idna(env: Env, tls_files: TLSFiles) -> None:
    with submission_client(env, tls_files, "alice", "alice-pw") as client:
        assert client.mail("alice@example.org", ["SMTPUTF8"])[0] == 250
        assert client.rcpt("jörg@bücher.example")[0] == 550  # our domain, no such user
        assert client.rcpt("alice@BÜCHER.example")[0] == 250
        assert client.rcpt("jörg@münchen.test")[0] == 250
        assert client.data("Subject: ü\r\n\r\nü\r\n".encode())[0] == 250
    ((entry, message),) = env.disk()
    assert entry.smtputf8
    assert [r.address for r in entry.recipients] == [
        "alice@xn--bcher-kva.example",
        "jörg@xn--mnchen-3ya.test",
    ]
    m, _ = trace_and_rest(message)
    assert m.group("proto") == "UTF8SMTPSA"


def test_scram_login_with_our_client_and_bdat(env: Env, tls_files: TLSFiles) -> None:
    with SMTPClient(
        "127.0.0.1", env.submission.port, starttls=tls_files.client_context(), timeout=10
    ) as client:
        assert client.login("alice", "alice-pw").code == 235  # SCRAM-SHA-256 first
        result = client.send_message(
            b"Subject: chunks\r\n\r\n" + b"x" * 300_000 + b"\r\n",
            sender="alice@example.org",
            recipients=["x@remote.test"],
        )
        assert result.reply.code == 250
    (queued,) = env.queued
    m, rest = trace_and_rest(queued.message)
    assert m.group("for") == "x@remote.test"
    assert rest.endswith(b"Subject: chunks\r\n\r\n" + b"x" * 300_000 + b"\r\n")


def test_bdat_raw(env: Env) -> None:
    body = b"Subject: bdat\r\n\r\n" + b"\x00binary?\r\n.\r\n"
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.send(b"BDAT 10\r\n" + body[:10])
        assert raw.reply() == (250, "2.0.0 10 octets received")
        raw.send(b"BDAT %d LAST\r\n" % (len(body) - 10) + body[10:])
        code, text = raw.reply()
        assert code == 250
        assert "queued as" in text
    (queued,) = env.queued
    assert trace_and_rest(queued.message)[1] == body


def test_pipelined_transactions(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        group = b"".join(
            b"MAIL FROM:<s%d@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
            b"RCPT TO:<nobody@example.org>\r\nDATA\r\n"
            % n
            + b"Subject: %d\r\n\r\nbody %d\r\n.\r\n" % (n, n)
            for n in range(3)
        )
        raw.send(group + b"QUIT\r\n")
        codes = [raw.reply()[0] for _ in range(3 * 5 + 1)]
    assert codes == [250, 250, 550, 354, 250] * 3 + [221]
    assert [q.entry.sender for q in env.queued] == [f"s{n}@remote.test" for n in range(3)]
    for n, q in enumerate(env.queued):
        assert trace_and_rest(q.message)[1] == b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n)


def test_implicit_tls_submissions(env: Env, tls_files: TLSFiles) -> None:
    server = env.serve(env.mta.submissions_session, tls=server_context(tls_files))
    with smtplib.SMTP_SSL(
        "127.0.0.1", server.port, context=tls_files.client_context(), timeout=10
    ) as client:
        _, ehlo = client.ehlo("client.example")
        assert b"STARTTLS" not in ehlo
        assert b"AUTH SCRAM-SHA-256 PLAIN LOGIN" in ehlo
        client.login("alice", "alice-pw")
        client.sendmail("alice@example.org", ["x@remote.test"], b"Subject: 465\r\n\r\nx\r\n")
    m, _ = trace_and_rest(env.queued[0].message)
    assert m.group("proto") == "ESMTPSA"
    assert m.group("tls")


@pytest.mark.interop
def test_swaks_submission_starttls_auth(
    env: Env, tls_files: TLSFiles, require_tool: RequireTool
) -> None:
    swaks = require_tool("swaks")
    support = run_tool(swaks, "--support")
    if "=== TLS supported" not in support.stdout + support.stderr:
        require_tool.unavailable("swaks lacks TLS support (Debian package libnet-ssleay-perl)")
    result = run_tool(
        swaks,
        *("--server", f"127.0.0.1:{env.submission.port}", "--helo", "swaks.example"),
        *("-tls", "--tls-verify", "--tls-ca-path", str(tls_files.ca), "--tls-sni", "localhost"),
        *("--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw"),
        *("--from", "alice@example.org", "--to", "friend@remote.test", "--timeout", "10"),
        *("--data", "Subject: via swaks\\n\\nhello\\n"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    m, rest = trace_and_rest(env.queued[0].message)
    assert (m.group("from"), m.group("proto")) == ("swaks.example", "ESMTPSA")
    assert rest.startswith(b"Message-ID: <")
    assert b"Subject: via swaks\r\n" in rest


def test_plaintext_auth_when_allowed(tmp_path: Path) -> None:
    env = start_env(tmp_path, allow_plaintext_auth=True)
    try:
        with smtplib.SMTP("127.0.0.1", env.submission.port, timeout=10) as client:
            _, ehlo = client.ehlo("client.example")
            assert b"AUTH SCRAM-SHA-256 PLAIN LOGIN" in ehlo
            assert b"STARTTLS" not in ehlo  # no TLS context at all
            assert client.mail("alice@example.org") == (530, b"5.7.0 Authentication required")
            client.rset()
            client.login("alice", "alice-pw")  # smtplib picks PLAIN
            client.sendmail("alice@example.org", ["x@remote.test"], b"Subject: p\r\n\r\nx\r\n")
        m, _ = trace_and_rest(env.queued[0].message)
        assert m.group("proto") == "ESMTPA"
    finally:
        env.close()


def test_auth_exchanges_by_hand(tmp_path: Path) -> None:
    env = start_env(tmp_path, allow_plaintext_auth=True)
    plain = base64.b64encode(b"\x00alice\x00alice-pw").decode()
    try:
        with Raw(env.submission.port) as raw:
            raw.cmd("EHLO client.example")
            assert raw.cmd("AUTH LOGIN")[0] == 334
            assert raw.cmd("*") == (501, "5.7.0 Authentication cancelled")
            assert raw.cmd("AUTH CRAM-MD5")[0] == 504
            assert raw.cmd("AUTH PLAIN")[0] == 334
            assert raw.cmd(base64.b64encode(b"garbage").decode())[0] == 501
            assert raw.cmd(f"AUTH PLAIN {plain}") == (235, "2.7.0 Authentication successful")
            assert raw.cmd(f"AUTH PLAIN {plain}")[0] == 503  # already authenticated
        with Raw(env.submission.port) as raw:
            raw.cmd("EHLO client.example")
            assert raw.cmd("AUTH SCRAM-SHA-256")[0] == 334
            assert raw.cmd("*")[0] == 501
    finally:
        env.close()


def test_scram_final_data_answered_with_data_is_refused(tmp_path: Path) -> None:
    from mailproto.sasl import ScramSha256Client

    env = start_env(tmp_path, allow_plaintext_auth=True)
    try:
        with Raw(env.submission.port) as raw:
            raw.cmd("EHLO client.example")
            scram = ScramSha256Client("alice", "alice-pw")
            first = base64.b64encode(scram.initial_response() or b"").decode()
            code, challenge = raw.cmd(f"AUTH SCRAM-SHA-256 {first}")
            assert code == 334
            final = scram.respond(base64.b64decode(challenge))
            code, server_final = raw.cmd(base64.b64encode(final).decode())
            assert code == 334
            assert base64.b64decode(server_final).startswith(b"v=")
            assert raw.cmd(base64.b64encode(b"unexpected").decode())[0] == 501
    finally:
        env.close()


# --- limits and odd commands --------------------------------------------------------------


def test_other_commands(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        assert raw.greeting == (220, "mx.example.org ESMTP mailproto ready")
        assert raw.cmd("HELO old.example") == (250, "mx.example.org")
        assert raw.cmd("VRFY alice")[0] == 252
        assert raw.cmd("EXPN staff") == (502, "5.5.1 EXPN not available")
        assert raw.cmd("HELP")[0] == 214
        assert raw.cmd("NOOP") == (250, "2.0.0 Ok")
        assert raw.cmd("AUTH PLAIN")[0] == 502  # not offered on inbound
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        assert raw.cmd(b"Subject: helo\r\n\r\nx\r\n.")[0] == 250
        assert raw.cmd("QUIT") == (221, "2.0.0 mx.example.org closing connection")
    m, _ = trace_and_rest(env.queued[0].message)
    assert (m.group("from"), m.group("proto")) == ("old.example", "SMTP")


def test_invalid_helo_is_not_trusted_in_received(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO bad(name);x")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        assert raw.cmd(b"x\r\n.")[0] == 250
    m, _ = trace_and_rest(env.queued[0].message)
    assert m.group("from") == "[127.0.0.1]"


def test_junk_commands_limit(tmp_path: Path) -> None:
    env = start_env(tmp_path, max_junk_commands=5)
    try:
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            for _ in range(4):
                assert raw.cmd("NOOP")[0] == 250
            assert raw.cmd("MAIL FROM:<a@remote.test>")[0] == 250  # resets the count
            for _ in range(5):
                assert raw.cmd("RSET")[0] == 250
            assert raw.cmd("VRFY x") == (421, "4.7.0 Too many commands without mail, closing")
            assert raw.reply() == (0, "")
    finally:
        env.close()


def test_errors_limit_and_recipient_limit(tmp_path: Path) -> None:
    env = start_env(tmp_path, max_errors=3, max_recipients=2)
    try:
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            raw.cmd("MAIL FROM:<a@remote.test>")
            assert raw.cmd("RCPT TO:<alice@example.org>")[0] == 250
            assert raw.cmd("RCPT TO:<bob@example.net>")[0] == 250
            assert raw.cmd("RCPT TO:<postmaster@example.org>") == (
                452,
                "4.5.3 Too many recipients",
            )
            assert raw.cmd("FOO")[0] == 500
            assert raw.cmd("BAR")[0] == 500
            assert raw.cmd("BAZ")[0] == 421
    finally:
        env.close()


def test_size_limit(tmp_path: Path) -> None:
    env = start_env(tmp_path, max_message_size=1000)
    try:
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            assert raw.cmd("MAIL FROM:<a@remote.test> SIZE=5000")[0] == 552
            raw.cmd("MAIL FROM:<a@remote.test>")
            raw.cmd("RCPT TO:<alice@example.org>")
            raw.cmd("DATA")
            code, text = raw.cmd(b"x" * 900 + b"\r\n" + b"y" * 900 + b"\r\n.")
            assert (code, text[:5]) == (552, "5.3.4")
        assert env.disk() == []
        assert env.leftovers() == []
    finally:
        env.close()


def test_tarpit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(smtpd, "pause", lambda seconds: waits.append(seconds))
    env = start_env(tmp_path, tarpit_after=2, tarpit_step=1.0, tarpit_max=3.0, max_errors=50)
    try:
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            raw.cmd("MAIL FROM:<a@remote.test>")
            for n in range(7):
                assert raw.cmd(f"RCPT TO:<nobody{n}@example.org>")[0] == 550
            assert raw.cmd("RCPT TO:<alice@example.org>")[0] == 250  # no wait for a good one
    finally:
        env.close()
    assert waits == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_idle_timeout(tmp_path: Path) -> None:
    env = start_env(tmp_path, idle_timeout=0.3)
    try:
        with Raw(env.inbound.port) as raw:
            raw.cmd("EHLO client.example")
            assert raw.reply() == (421, "4.4.2 Idle for too long, closing")
    finally:
        env.close()


def test_starttls_injection_refused(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.send(b"STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\n")
        assert raw.reply()[0] == 220
        assert raw.reply() == (554, "5.5.1 Command pipelining after STARTTLS")


def test_inbound_starttls(env: Env, tls_files: TLSFiles) -> None:
    with smtplib.SMTP("127.0.0.1", env.inbound.port, timeout=10) as client:
        client.ehlo("client.example")
        client.starttls(context=tls_files.client_context())
        _, ehlo = client.ehlo("client.example")
        assert b"STARTTLS" not in ehlo
        assert b"AUTH" not in ehlo
        client.sendmail("a@remote.test", ["alice@example.org"], b"Subject: s\r\n\r\nx\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@remote.test", ["x@remote.test"], b"Subject: s\r\n\r\nx\r\n")
    m, _ = trace_and_rest(env.queued[0].message)
    assert m.group("proto") == "ESMTPS"


def test_bare_line_feed_refused_and_file_dropped(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        assert raw.cmd(b"Subject: x\r\n\r\nbare\nlf\r\n.") == (
            550,
            "5.5.2 Message contains a bare CR or LF",
        )
        assert raw.cmd("NOOP")[0] == 250
    assert env.disk() == []
    assert env.leftovers() == []


def test_dropped_connections_leave_nothing(env: Env) -> None:
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        raw.send(b"Subject: cut\r\n\r\nhalf a message")
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.send(b"BDAT 5\r\nabcde")
        assert raw.reply()[0] == 250
        assert raw.cmd("RSET")[0] == 250
        assert raw.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.send(b"BDAT 5\r\nabcde")
        assert raw.reply()[0] == 250
    deadline = time.monotonic() + 5
    while env.leftovers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert env.leftovers() == []
    assert env.disk() == []


def test_queue_failures(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk on fire")

    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        with monkeypatch.context() as m:
            m.setattr(env.mta.queue, "commit", broken)
            assert raw.cmd(b"Subject: x\r\n\r\nx\r\n.") == (
                451,
                "4.3.0 Temporary local problem, try again later",
            )
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        with monkeypatch.context() as m:
            m.setattr(env.mta.queue, "new_message", broken)
            assert raw.cmd("DATA")[0] == 451
            raw.send(b"BDAT 3 LAST\r\nabc")
            assert raw.reply() == (452, "4.3.1 Insufficient system storage")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        real_new = env.mta.queue.new_message

        class FullDisk:
            def __init__(self) -> None:
                self.inner = real_new()

            def write(self, data: bytes) -> None:
                raise OSError(28, "No space left on device")

            def __getattr__(self, name: str) -> Any:
                return getattr(self.inner, name)

        # The writer was made at DATA: break it now, before the body arrives.
        assert raw.cmd(b"Subject: big\r\n\r\nx\r\n.")[0] == 250
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        real_abort = env.mta.queue.abort
        with monkeypatch.context() as m:
            m.setattr(env.mta.queue, "new_message", FullDisk)
            m.setattr(env.mta.queue, "abort", lambda writer: real_abort(writer.inner))
            assert raw.cmd("DATA")[0] == 354
            assert raw.cmd(b"Subject: full\r\n\r\nx\r\n.") == (
                452,
                "4.3.1 Insufficient system storage",
            )
        with monkeypatch.context() as m:
            m.setattr(env.mta.users, "find", broken)
            raw.cmd("MAIL FROM:<a@remote.test>")
            assert raw.cmd("RCPT TO:<alice@example.org>")[0] == 451
    assert len(env.disk()) == 1
    assert env.leftovers() == []


def test_on_queued_failure_still_answers_250(tmp_path: Path) -> None:
    env = start_env(tmp_path)

    def explode(entry: QueueEntry) -> None:
        raise RuntimeError("runner asleep")

    env.mta.on_queued = explode
    try:
        with smtplib.SMTP("127.0.0.1", env.inbound.port, timeout=10) as client:
            client.sendmail("a@remote.test", ["alice@example.org"], b"Subject: x\r\n\r\nx\r\n")
    finally:
        env.close()
    assert len(env.disk()) == 1


# --- the MTA object and the pure helpers ---------------------------------------------------


def test_mta_with_mda(tmp_path: Path) -> None:
    users = make_users(tmp_path)
    mda = MDA(tmp_path / "mda", users=users)
    mta = MTA(tmp_path / "mta", mda=mda, local_domains=["Example.ORG."])
    assert mta.users is users
    assert mta.authenticator is mda.authenticator
    assert mta.local_domains == ("example.org",)
    assert mta.is_local_domain("EXAMPLE.org.")
    assert not mta.is_local_domain("example.org..")
    assert mta.local_user("Alice@example.org") == "alice"
    assert mta.local_user("nobody@example.org") is None
    assert mta.queue.path == str(tmp_path / "mta" / "queue")
    mta.queued(None)  # type: ignore[arg-type]  # no hook: nothing happens
    alone = MTA(tmp_path / "alone")
    assert alone.users.path == tmp_path / "alone" / "users.toml"
    with pytest.raises(ValueError):
        MTA(tmp_path / "bad", local_domains=["ok.example", "bad..example"])


@pytest.mark.parametrize(
    ("domain", "normal"),
    [
        ("Example.ORG.", "example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("xn--zz.example", None),
        ("l\u043ecalhost", "xn--lcalhost-nbh"),  # a Cyrillic o: another domain
        ("\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", "localhost"),  # fullwidth
        ("[127.000.0.1]", "[127.0.0.1]"),
        ("[IPv6:0:0::1]", "[IPv6:::1]"),
        ("[IPv6:nope]", None),
        ("[tag:content]", None),
        ("[1.2.3]", None),
        ("[1.2.3.4", None),
        ("", None),
        (".", None),
        ("a..b", None),
        (".a", None),
        ("a" * 64 + ".example", None),
        ("\u00ad", None),  # maps to nothing
        ("x\u2025y.example", None),  # not IDNA-valid
    ],
)
def test_normalize_domain(domain: str, normal: str | None) -> None:
    assert normalize_domain(domain) == normal


def test_sender_addresses(tmp_path: Path) -> None:
    mta = MTA(
        tmp_path,
        users=make_users(tmp_path),
        local_domains=["a.example", "b.example"],
        aliases={"Alice": ["boss@C.example", "bad@@x"], "bob@example.net": ["b@a.example"]},
    )
    assert mta.sender_addresses("alice") == {"alice@a.example", "alice@b.example", "boss@c.example"}
    assert mta.sender_addresses("bob@example.net") == {"bob@example.net", "b@a.example"}
    assert mta.may_send_as("ALICE", "Boss@c.example.")
    assert not mta.may_send_as("alice", "alice@c.example")
    assert not mta.may_send_as("alice", "")


def test_protocol_names_and_received_field() -> None:
    assert protocol_name(esmtp=False, utf8=False, tls=False, auth=False) == "SMTP"
    assert protocol_name(esmtp=True, utf8=False, tls=True, auth=True) == "ESMTPSA"
    assert protocol_name(esmtp=True, utf8=True, tls=True, auth=False) == "UTF8SMTPS"
    assert protocol_name(esmtp=False, utf8=False, tls=True, auth=False) == "ESMTPS"
    field_ = received_field(
        helo=None,
        ip=None,
        hostname="mx.example.org",
        protocol="ESMTP",
        id="abc",
        tls=TLSInfo(version="TLSv1.3", cipher=None),
        recipients=[],
        when=0.0,
    )
    assert field_ == (
        b"Received: from unknown\r\n\tby mx.example.org (mailproto) with ESMTP id abc\r\n"
        b"\t(using TLSv1.3 with cipher unknown); Thu, 01 Jan 1970 00:00:00 +0000\r\n"
    )
    v6 = received_field(
        helo="client.example",
        ip="::1",
        hostname="mx.example.org",
        protocol="ESMTP",
        id="abc",
        tls=None,
        recipients=["a@b.example"],
        when=0.0,
    )
    assert v6.startswith(b"Received: from client.example ([IPv6:::1])\r\n")
    helo_only = received_field(
        helo="client.example",
        ip=None,
        hostname="h",
        protocol="SMTP",
        id="1",
        tls=None,
        recipients=[],
        when=0.0,
    )
    assert helo_only.startswith(b"Received: from client.example\r\n")


def test_check_recipient_rules(tmp_path: Path) -> None:
    mta = MTA(tmp_path, users=make_users(tmp_path), local_domains=LOCAL_DOMAINS)
    assert check_recipient(mta, "alice@example.org", False)[0] == "alice@example.org"
    assert check_recipient(mta, "a%b@example.org", True)[1].enhanced == "5.1.1"
    assert check_recipient(mta, "a%b@example.org", False)[1].enhanced == "5.7.1"
    assert check_recipient(mta, "x@xn--zz.example", True)[1].enhanced == "5.1.2"
    assert check_recipient(mta, "x@xn--zz.example", False)[1].enhanced == "5.7.1"
    assert check_recipient(mta, "x@[192.0.2.1]", True)[0] == "x@[192.0.2.1]"
    assert check_recipient(mta, "x@[192.0.2.1]", False)[0] is None
    literal = MTA(tmp_path / "lit", users=mta.users, local_domains=["[192.0.2.1]"])
    assert check_recipient(literal, "alice@[192.000.2.1]", False)[0] == "alice@[192.0.2.1]"


def test_async_flavour(tmp_path: Path, tls_files: TLSFiles) -> None:
    """The same flow under the asyncio driver: blocking work goes through worker threads."""
    import anyio.from_thread

    from mailproto_adapters import asyncio as asyncio_flavour

    env = start_env(tmp_path, tls_files)
    config = blocking.ServeConfig(host="127.0.0.1", port=0, grace=1.0)
    with anyio.from_thread.start_blocking_portal(backend="asyncio") as portal:
        inbound = portal.call(asyncio_flavour.AsyncioServer.start, env.mta.inbound_session, config)
        submission = portal.call(
            asyncio_flavour.AsyncioServer.start, env.mta.submission_session, config
        )
        try:
            with smtplib.SMTP("127.0.0.1", inbound.port, timeout=10) as client:
                client.ehlo("client.example")
                client.sendmail("a@remote.test", ["alice@example.org"], b"Subject: a\r\n\r\nx\r\n")
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    client.sendmail("a@remote.test", ["x@remote.test"], b"x\r\n")
            with smtplib.SMTP("127.0.0.1", submission.port, timeout=10) as client:
                client.ehlo("client.example")
                client.starttls(context=tls_files.client_context())
                client.ehlo("client.example")
                with pytest.raises(smtplib.SMTPAuthenticationError):
                    client.login("alice", "wrong")  # waits its delay in the loop
                client.login("alice", "alice-pw")
                client.sendmail("alice@example.org", ["x@remote.test"], b"Subject: b\r\n\r\nx\r\n")
        finally:
            portal.call(inbound.close, 1.0)
            portal.call(submission.close, 1.0)
            env.close()
    assert [q.entry.recipients[0].address for q in env.queued] == [
        "alice@example.org",
        "x@remote.test",
    ]
