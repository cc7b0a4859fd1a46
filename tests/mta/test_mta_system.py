"""The MTA as a whole, with real peers: swaks and smtp-source in, LMTP to our MDA, a second
instance and Postfix's smtp-sink as remote destinations, MX found through a DNS server on
loopback, bounces back to the sender's INBOX.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import poplib
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dns_server import DNSServer, make_resolver

from conftest import RequireTool
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

PASSWORD = "a fine password"
SERVICES = ("lmtp", "smtp", "submission", "imap", "pop3")


def make_system(
    data: Path, domain: str, users: tuple[str, ...] = ("alice",), **config: Any
) -> MailSystem:
    data.mkdir(parents=True, exist_ok=True)
    db = UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4))
    for user in users:
        db.add(user, PASSWORD)
    settings: dict[str, Any] = {
        "hostname": f"mx.{domain}",
        "local_domains": (domain,),
        "listeners": tuple(ListenerConfig(service=s) for s in SERVICES),
        "allow_plaintext": True,
        "min_backoff": 0.2,
        "max_backoff": 0.5,
    }
    settings.update(config)
    return MailSystem(SystemConfig(data_dir=data, **settings)).start()


@pytest.fixture
def systems() -> Iterator[list[MailSystem]]:
    started: list[MailSystem] = []
    yield started
    for system in started:
        system.close(grace=1)


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def inbox(system: MailSystem, user: str) -> list[bytes]:
    """The user's INBOX over IMAP (imaplib), each message's bytes."""
    client = imaplib.IMAP4("127.0.0.1", system.ports["imap"])
    try:
        client.login(user, PASSWORD)
        _, data = client.select("INBOX", readonly=True)
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


def test_swaks_to_a_local_user_is_read_over_imap_and_pop3(
    tmp_path: Path, systems: list[MailSystem], require_tool: RequireTool
) -> None:
    swaks = require_tool("swaks")
    system = make_system(tmp_path / "a", "a.example")
    systems.append(system)
    done = subprocess.run(
        [
            swaks,
            "--server",
            "127.0.0.1",
            "--port",
            str(system.ports["smtp"]),
            "--from",
            "someone@outside.example",
            "--to",
            "alice@a.example",
            "--header",
            "Subject: from swaks",
            "--body",
            "hello over SMTP",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "250 2.0.0" in done.stdout
    (message,) = wait_for(lambda: inbox(system, "alice"))
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["Subject"] == "from swaks"
    assert parsed["Return-Path"] == "<someone@outside.example>"
    assert parsed["Delivered-To"] == "alice@a.example"
    assert "by mx.a.example" in str(parsed["Received"])
    queue_id = re.search(r"queued as (\w+)", done.stdout)
    assert queue_id is not None
    assert f"id {queue_id[1]}" in str(parsed["Received"])  # the header names the queue id
    pop = poplib.POP3("127.0.0.1", system.ports["pop3"])
    try:
        pop.user("alice")
        pop.pass_(PASSWORD)
        _, lines, _ = pop.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == message
    finally:
        pop.quit()


def test_smtp_source_load_all_delivered(
    tmp_path: Path, systems: list[MailSystem], require_tool: RequireTool
) -> None:
    source = require_tool("smtp-source")
    system = make_system(tmp_path / "a", "a.example")
    systems.append(system)
    count = 200
    done = subprocess.run(
        [
            source,
            "-m",
            str(count),
            "-s",
            "10",
            "-l",
            "2048",
            "-f",
            "load@outside.example",
            "-t",
            "alice@a.example",
            f"127.0.0.1:{system.ports['smtp']}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    maildir = tmp_path / "a" / "mail" / "alice" / "new"
    wait_for(lambda: len(list(maildir.iterdir())) == count, timeout=60)


def submit(system: MailSystem, sender: str, rcpts: list[str], subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", system.ports["submission"]) as smtp:
        smtp.login(sender.split("@")[0], PASSWORD)
        head = f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
        smtp.sendmail(sender, rcpts, (head + "\r\nbody\r\n").encode())


def test_relay_to_a_second_instance_and_bounce_when_it_refuses(
    tmp_path: Path, systems: list[MailSystem]
) -> None:
    b = make_system(tmp_path / "b", "b.example", users=("bob",))
    systems.append(b)
    a = make_system(
        tmp_path / "a",
        "a.example",
        static_routes={"b.example": f"127.0.0.1:{b.ports['smtp']}"},
    )
    systems.append(a)
    submit(a, "alice@a.example", ["bob@b.example"], "across")
    (message,) = wait_for(lambda: inbox(b, "bob"))
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["Subject"] == "across"
    assert parsed["Message-ID"]  # added by submission
    assert parsed["Date"]
    received = parsed.get_all("Received") or []
    assert len(received) == 2  # a's submission, then b's inbound
    assert "by mx.b.example" in str(received[0])
    assert "with ESMTPA" in str(received[1]) or "ESMTPSA" in str(received[1])

    submit(a, "alice@a.example", ["nobody@b.example"], "to nobody")
    (report,) = wait_for(lambda: inbox(a, "alice"))
    parsed = email.message_from_bytes(report, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed["Return-Path"] == "<>"
    parts = parsed.get_payload()
    assert isinstance(parts, list)
    status = str(parts[1])
    assert "Final-Recipient: rfc822; nobody@b.example" in status
    assert "Status: 5.1.1" in status
    assert "Action: failed" in status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_relay_to_postfix_smtp_sink(
    tmp_path: Path, systems: list[MailSystem], require_tool: RequireTool
) -> None:
    sink = require_tool("smtp-sink")
    # smtp-sink writes as nobody, who cannot enter pytest's 0700 temporary tree
    dump = Path(tempfile.mkdtemp(prefix="mailproto-sink-"))
    dump.chmod(0o777)
    port = free_port()
    proc = subprocess.Popen(
        [sink, "-u", "nobody", "-d", f"{dump}/%H%M%S.", f"127.0.0.1:{port}", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        a = make_system(
            tmp_path / "a", "a.example", static_routes={"sink.example": f"127.0.0.1:{port}"}
        )
        systems.append(a)
        submit(a, "alice@a.example", ["one@sink.example", "two@sink.example"], "to the sink")
        (dumped,) = wait_for(lambda: list(dump.iterdir()))
        data = wait_for(
            lambda: dumped.read_bytes() if b"to the sink" in dumped.read_bytes() else b""
        )
        assert b"one@sink.example" in data
        assert b"two@sink.example" in data
        wait_for(lambda: not list((tmp_path / "a" / "queue" / "envelopes").iterdir()))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(dump, ignore_errors=True)


def test_relay_by_mx_to_a_second_instance(tmp_path: Path, systems: list[MailSystem]) -> None:
    b = make_system(tmp_path / "b", "b.example", users=("bob",))
    systems.append(b)
    records = {
        "b.example": {"MX": ["10 mx1.b.example.", "20 mx2.b.example."]},
        "mx1.b.example": {"A": ["127.0.0.2"]},  # nothing listens there: next MX
        "mx2.b.example": {"A": ["127.0.0.1"]},
        "null.example": {"MX": ["0 ."]},
    }
    with DNSServer(records) as dns:
        a = make_system(
            tmp_path / "a",
            "a.example",
            resolver=make_resolver(dns.port),
            relay_port=b.ports["smtp"],
        )
        systems.append(a)
        submit(a, "alice@a.example", ["bob@b.example", "x@null.example"], "by MX")
        (message,) = wait_for(lambda: inbox(b, "bob"))
        assert b"Subject: by MX" in message
        (report,) = wait_for(lambda: inbox(a, "alice"))
        assert b"x@null.example" in report
        assert b"5.1.10" in report
