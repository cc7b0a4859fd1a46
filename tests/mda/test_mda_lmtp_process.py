"""The MDA's LMTP in a process of its own (`SystemConfig.lmtp_process`, the default of
``mailproto serve``): mail goes SMTP -> queue -> LMTP child -> store, and the parent's IMAP
sees it; a killed child is started again on the same socket; closing stops it; a
Ctrl-C's SIGINT leaves it to the parent; SIGTERM lets it finish."""

from __future__ import annotations

import imaplib
import os
import signal
import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mailproto_adapters.mda.lmtp_process import LMTPProcess
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

PASSWORD = "a fine password"


def config(data: Path) -> SystemConfig:
    data.mkdir(parents=True, exist_ok=True)
    UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4)).add("alice", PASSWORD)
    return SystemConfig(
        data_dir=data,
        hostname="mx.example.test",
        local_domains=("example.test",),
        listeners=tuple(ListenerConfig(service=s) for s in ("lmtp", "smtp", "imap")),
        allow_plaintext=True,
        min_backoff=0.2,
        max_backoff=0.5,
        lmtp_process=True,
    )


@pytest.fixture
def system(tmp_path: Path) -> Iterator[MailSystem]:
    started = MailSystem(config(tmp_path / "data")).start()
    try:
        yield started
    finally:
        started.close(grace=1)


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
    return value


def send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        message = f"From: bob@elsewhere.test\r\nSubject: {subject}\r\n\r\nHello.\r\n"
        client.sendmail("bob@elsewhere.test", ["alice@example.test"], message)


def subjects(port: int) -> list[str]:
    """The Subject of every message in alice's INBOX, over IMAP (imaplib)."""
    client = imaplib.IMAP4("127.0.0.1", port)
    try:
        client.login("alice", PASSWORD)
        client.select("INBOX", readonly=True)
        _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        out = []
        for item in data:
            if isinstance(item, tuple):
                out.append(item[1].decode().strip().removeprefix("Subject: "))
        return out
    except imaplib.IMAP4.error:
        return []
    finally:
        client.logout()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: it serves nothing.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def child_of(system: MailSystem) -> LMTPProcess:
    (child,) = system.lmtp_processes
    return child


def test_delivery_goes_through_a_child_process(system: MailSystem) -> None:
    child = child_of(system)
    assert child.pid is not None
    assert child.pid != os.getpid()
    assert alive(child.pid)
    assert system.ports["lmtp"] == child.port
    assert "lmtp" not in system.servers  # nothing in this process serves it
    assert system.runner is not None
    system.runner.connections.idle = 60.0  # however slow this machine is
    send(system.ports["smtp"], "first")
    assert wait_for(lambda: subjects(system.ports["imap"]) == ["first"])
    send(system.ports["smtp"], "second")
    assert wait_for(lambda: subjects(system.ports["imap"]) == ["first", "second"])
    # The runner kept its LMTP connection to the child for the second message.
    assert system.runner.connections.reused >= 1


def test_the_child_speaks_lmtp_on_the_parents_socket(system: MailSystem) -> None:
    with socket.create_connection(("127.0.0.1", system.ports["lmtp"]), timeout=10) as sock:
        f = sock.makefile("rwb")
        assert f.readline().startswith(b"220 ")
        f.write(b"LHLO test\r\nMAIL FROM:<x@elsewhere.test>\r\nRCPT TO:<nobody@example.test>\r\n")
        f.flush()
        while (line := f.readline())[3:4] == b"-":  # LHLO's reply, to its last line
            pass
        assert line.startswith(b"250 ")
        assert f.readline().startswith(b"250 ")  # MAIL
        assert f.readline().startswith(b"550 5.1.1")  # the child reads the users file too
        f.write(b"QUIT\r\n")
        f.flush()
        assert f.readline().startswith(b"221 ")


def test_a_killed_child_is_started_again_and_nothing_is_lost(system: MailSystem) -> None:
    child = child_of(system)
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    # Mail sent while no child runs waits in the parent's backlog or in the queue.
    send(system.ports["smtp"], "while down")
    wait_for(lambda: child.starts == 2)
    assert child.pid != first
    assert child.pid is not None
    assert alive(child.pid)
    send(system.ports["smtp"], "after")
    assert wait_for(lambda: sorted(subjects(system.ports["imap"])) == ["after", "while down"])


def test_close_stops_the_child(tmp_path: Path) -> None:
    started = MailSystem(config(tmp_path / "data")).start()
    pid = child_of(started).pid
    assert pid is not None
    assert alive(pid)
    started.close(grace=1)
    assert not alive(pid)
    assert started.lmtp_processes == []


def test_sigint_is_left_to_the_parent_sigterm_stops_the_child(system: MailSystem) -> None:
    child = child_of(system)
    pid = child.pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)  # what a Ctrl-C in the terminal sends the whole group
    time.sleep(0.5)
    assert alive(pid)
    assert child.pid == pid
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: child.starts == 2)  # it stopped cleanly; the parent started another
    send(system.ports["smtp"], "after a SIGTERM")
    assert wait_for(lambda: subjects(system.ports["imap"]) == ["after a SIGTERM"])


def test_a_child_that_cannot_start_is_reported(tmp_path: Path) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    # A data directory that is a file: the child's MDA cannot open its store.
    (tmp_path / "not a directory").write_text("")
    child = LMTPProcess(sock, tmp_path / "not a directory", start_timeout=30)
    with pytest.raises(RuntimeError, match="did not start"):
        child.start()
    child.close(grace=0)


def test_anyio_flavour(tmp_path: Path) -> None:
    system = MailSystem(config(tmp_path / "data"))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            ports = await tg.start(system.serve_anyio)
            pid = child_of(system).pid or 0
            assert alive(pid)
            await anyio.to_thread.run_sync(send, ports["smtp"], "anyio")

            def delivered() -> bool:
                return subjects(ports["imap"]) == ["anyio"]

            await anyio.to_thread.run_sync(wait_for, delivered)
            system.stop_anyio()
        assert system.lmtp_processes == []
        assert not alive(pid)

    anyio.run(main)
