"""Listeners served by child processes (`listener_process`): the MDA's LMTP
(`SystemConfig.lmtp_process`, the default of ``mailproto serve``) and the MTA's SMTP
(``smtp_processes``). Mail goes SMTP child -> queue -> the parent's runner -> LMTP child
-> store, and the parent's IMAP sees it; a killed child is started again on the same
socket and what it queued is still delivered; closing stops them; a Ctrl-C's SIGINT
leaves them to the parent; SIGTERM lets them finish."""

from __future__ import annotations

import imaplib
import os
import signal
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mailproto_adapters.listener_process import ListenerProcesses
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mta.queue import Queue, QueuedRecipient
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig
from mailproto_adapters.tls_setup import server_context

PASSWORD = "a fine password"


def config(data: Path, **more: Any) -> SystemConfig:
    data.mkdir(parents=True, exist_ok=True)
    UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4)).add("alice", PASSWORD)
    settings: dict[str, Any] = {
        "hostname": "mx.example.test",
        "local_domains": ("example.test",),
        "listeners": tuple(ListenerConfig(service=s) for s in ("lmtp", "smtp", "imap")),
        "allow_plaintext": True,
        "min_backoff": 0.2,
        "max_backoff": 0.5,
        "lmtp_process": True,
    }
    return SystemConfig(data_dir=data, **{**settings, **more})


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


def child_of(system: MailSystem, service: str = "lmtp") -> ListenerProcesses:
    (children,) = [p for p in system.processes if p.service == service]
    return children


def pid_of(children: ListenerProcesses) -> int:
    (pid,) = children.pids
    return pid


def test_delivery_goes_through_a_child_process(system: MailSystem) -> None:
    child = child_of(system)
    assert pid_of(child) != os.getpid()
    assert alive(pid_of(child))
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
    first = pid_of(child)
    os.kill(first, signal.SIGKILL)
    # Mail sent while no child runs waits in the parent's backlog or in the queue.
    send(system.ports["smtp"], "while down")
    wait_for(lambda: child.starts == 2)
    assert pid_of(child) != first
    assert alive(pid_of(child))
    send(system.ports["smtp"], "after")
    assert wait_for(lambda: sorted(subjects(system.ports["imap"])) == ["after", "while down"])


def test_close_stops_the_child(tmp_path: Path) -> None:
    started = MailSystem(config(tmp_path / "data")).start()
    pid = pid_of(child_of(started))
    assert alive(pid)
    started.close(grace=1)
    assert not alive(pid)
    assert started.processes == []


def test_sigint_is_left_to_the_parent_sigterm_stops_the_child(system: MailSystem) -> None:
    child = child_of(system)
    pid = pid_of(child)
    os.kill(pid, signal.SIGINT)  # what a Ctrl-C in the terminal sends the whole group
    time.sleep(0.5)
    assert alive(pid)
    assert pid_of(child) == pid
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: child.starts == 2)  # it stopped cleanly; the parent started another
    send(system.ports["smtp"], "after a SIGTERM")
    assert wait_for(lambda: subjects(system.ports["imap"]) == ["after a SIGTERM"])


def test_a_child_that_cannot_start_is_reported(tmp_path: Path) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    # A data directory that is a file: the child's MDA cannot open its store.
    (tmp_path / "not a directory").write_text("")
    settings = {"service": "lmtp", "data_dir": str(tmp_path / "not a directory")}
    child = ListenerProcesses(sock, settings, start_timeout=30)
    with pytest.raises(RuntimeError, match="did not start"):
        child.start()
    child.close(grace=0)


def test_anyio_flavour(tmp_path: Path) -> None:
    system = MailSystem(config(tmp_path / "data"))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            ports = await tg.start(system.serve_anyio)
            pid = pid_of(child_of(system))
            assert alive(pid)
            await anyio.to_thread.run_sync(send, ports["smtp"], "anyio")

            def delivered() -> bool:
                return subjects(ports["imap"]) == ["anyio"]

            await anyio.to_thread.run_sync(wait_for, delivered)
            system.stop_anyio()
        assert system.processes == []
        assert not alive(pid)

    anyio.run(main)


# --- the MTA's listeners in child processes ------------------------------------------------


def smtp_system(tmp_path: Path, **more: Any) -> MailSystem:
    more.setdefault("smtp_processes", 2)
    return MailSystem(config(tmp_path / "data", **more)).start()


def test_smtp_children_queue_and_the_parent_delivers(tmp_path: Path) -> None:
    system = smtp_system(tmp_path)
    try:
        children = child_of(system, "smtp")
        assert len(children.pids) == 2
        assert os.getpid() not in children.pids
        assert "smtp" not in system.servers
        # Delivery yields the CPUs to the SMTP sessions (delivery_nice): the LMTP child
        # runs with a higher nice value, the SMTP children with ours.
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert system.config.delivery_nice == 10
        lmtp = pid_of(child_of(system, "lmtp"))
        assert os.getpriority(os.PRIO_PROCESS, lmtp) == min(19, ours + 10)
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in children.pids} == {ours}
        for n in range(8):
            send(system.ports["smtp"], f"message {n}")
        expected = sorted(f"message {n}" for n in range(8))
        assert wait_for(lambda: sorted(subjects(system.ports["imap"])) == expected)
    finally:
        system.close(grace=1)
    assert system.processes == []


def test_a_killed_smtp_child_is_replaced_and_the_queue_read_again(tmp_path: Path) -> None:
    system = smtp_system(tmp_path, smtp_processes=1)
    try:
        children = child_of(system, "smtp")
        os.kill(pid_of(children), signal.SIGKILL)
        wait_for(lambda: children.starts == 2)
        send(system.ports["smtp"], "after the kill")
        assert wait_for(lambda: subjects(system.ports["imap"]) == ["after the kill"])
        # An entry another process queued without saying so (it died first) is found
        # when the queue is read again, as the parent does after a child ends.
        queue = Queue(tmp_path / "data" / "queue")
        writer = queue.new_message()
        writer.write(b"Subject: unsaid\r\n\r\nHello.\r\n")
        queue.commit(
            writer,
            sender="bob@elsewhere.test",
            recipients=[QueuedRecipient(address="alice@example.test")],
        )
        assert system.runner is not None
        system.runner.rescan()
        assert wait_for(
            lambda: sorted(subjects(system.ports["imap"])) == ["after the kill", "unsaid"]
        )
    finally:
        system.close(grace=1)


def test_starttls_in_smtp_children(tmp_path: Path, tls_files: Any) -> None:
    context = server_context(tls_files.cert, tls_files.key)
    with pytest.raises(ValueError, match="tls_files"):
        smtp_system(tmp_path / "one", tls_context=context)
    system = smtp_system(
        tmp_path / "two", tls_context=context, tls_files=(tls_files.cert, tls_files.key)
    )
    client_tls = ssl.create_default_context(cafile=str(tls_files.ca))
    try:
        with smtplib.SMTP("127.0.0.1", system.ports["smtp"]) as client:
            client.starttls(context=client_tls)
            message = "From: bob@elsewhere.test\r\nSubject: tls\r\n\r\nHello.\r\n"
            client.sendmail("bob@elsewhere.test", ["alice@example.test"], message)
        assert wait_for(lambda: subjects(system.ports["imap"]) == ["tls"])
    finally:
        system.close(grace=1)


def test_submission_services_in_children(tmp_path: Path, tls_files: Any) -> None:
    """`ListenerProcesses` serves submission (587) and submissions (465) too: AUTH with
    the users file, the sender checked, each queued message said to the parent."""
    data = tmp_path / "data"
    config(data)  # the users file
    queued: list[str] = []
    client_tls = ssl.create_default_context(cafile=str(tls_files.ca))
    message = "From: alice@example.test\r\nSubject: {}\r\n\r\nHello.\r\n"
    for service in ("submission", "submissions"):
        settings = {
            "service": service,
            "data_dir": str(data),
            "hostname": "mx.example.test",
            "local_domains": ["example.test"],
            "tls_cert": str(tls_files.cert),
            "tls_key": str(tls_files.key),
        }
        children = ListenerProcesses(
            socket.create_server(("127.0.0.1", 0)), settings, on_queued=queued.append
        ).start()
        try:
            if service == "submission":
                with smtplib.SMTP("127.0.0.1", children.port) as client:
                    client.starttls(context=client_tls)
                    client.login("alice", PASSWORD)
                    with pytest.raises(smtplib.SMTPSenderRefused):  # not hers
                        client.sendmail("eve@example.test", ["x@example.net"], "x")
                    client.sendmail("alice@example.test", ["x@example.net"], message.format(1))
            else:
                with smtplib.SMTP_SSL("127.0.0.1", children.port, context=client_tls) as c:
                    c.login("alice", PASSWORD)
                    c.sendmail("alice@example.test", ["x@example.net"], message.format(2))
        finally:
            children.close(grace=1)
    assert len(queued) == 2
    queue = Queue(data / "queue")
    entries = [queue.load(id_) for id_ in queued]
    assert all(e is not None and e.auth_user == "alice" for e in entries)


def test_a_child_that_keeps_dying_young_is_started_less_often(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config(data)
    settings = {"service": "lmtp", "data_dir": str(data)}
    children = ListenerProcesses(
        socket.create_server(("127.0.0.1", 0)), settings, restart_delay=0.3
    ).start()
    try:
        gaps = []
        for starts in (2, 3):
            os.kill(pid_of(children), signal.SIGKILL)
            died = time.monotonic()
            wait_for(lambda n=starts: children.starts == n)  # type: ignore[misc]
            gaps.append(time.monotonic() - died)
        # 0.3 s, then twice that (a process start adds a little to both).
        assert gaps[0] >= 0.3
        assert gaps[1] >= 0.6
        assert gaps[1] > gaps[0]
    finally:
        children.close(grace=0)
