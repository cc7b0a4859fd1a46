"""Crash safety: the MTA is killed (SIGKILL) at random moments while clients send mail.

Four smtplib clients send at least 1,000 messages to the inbound listener of a mail system
(MTA + MDA) running in a child process, which a killer thread SIGKILLs and restarts at
random intervals. A client whose attempt gets no 250 tries again with a new attempt id
(as an MTA would). In the end, after a last restart and once the queue is empty:

- every attempt that got a 250 is in the recipient's Maildir exactly once;
- every message in the Maildir is an attempt a client made, byte for byte, at most once
  (an attempt cut short after the queue's commit but before its 250 may be delivered:
  the client cannot know, RFC 5321 section 6.1 accepts such duplicates of a message);
- nothing else appears, no half-written message, and every message gets delivered.

Twice: everything in one process, and as ``mailproto serve`` runs by default (inbound
SMTP in two child processes, the MDA's LMTP in one), where the SIGKILL reaches the main
process only and its children go on with the sessions they have, then stop.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mailproto_adapters.mda.users import ScryptParams, UserDB

CHILD = Path(__file__).with_name("mta_crash_child.py")
MESSAGES = 1000
CLIENTS = 4
KILLS = 8
BODY = b"".join(
    b"line %d of a message that is long enough to span writes\r\n" % i for i in range(40)
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """The mail system process; `restart()` kills it (SIGKILL) and starts it again."""

    def __init__(self, data: Path, children: bool = False) -> None:
        self.data = data
        self.children = children
        self.smtp, self.lmtp = free_port(), free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.kills = 0
        self.groups: list[int] = []  # each life's process group: its children too

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                str(self.data),
                str(self.smtp),
                str(self.lmtp),
                *(["children"] if self.children else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.groups.append(self.proc.pid)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self._forget()
            self.kills += 1

    def _forget(self) -> None:
        assert self.proc is not None
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.stdin = None
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._forget()
        # Children of killed lives end by themselves (end of their stdin); make sure.
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


def message(attempt: str) -> bytes:
    return (
        b"From: sender@remote.example\r\nTo: alice@localhost\r\n"
        b"Subject: attempt "
        + attempt.encode()
        + b"\r\nX-Attempt: "
        + attempt.encode()
        + b"\r\n\r\n"
        + BODY
    )


@pytest.mark.parametrize("children", [False, True], ids=["one process", "children"])
def test_kill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, children: bool
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4)).add("alice", "pw-not-used-here")
    child = Child(data, children)
    child.start()
    lock = threading.Lock()
    acked: set[str] = set()
    tried: set[str] = set()
    next_number = iter(range(4 * MESSAGES))  # at most; we stop after MESSAGES and KILLS
    done = threading.Event()

    def client(k: int) -> None:
        while True:
            with lock:
                if len(acked) >= MESSAGES and child.kills >= KILLS:
                    return
                number = next(next_number, None)
            if number is None:
                return
            attempt_no = 0
            while True:
                attempt = f"{number}.{attempt_no}"
                attempt_no += 1
                with lock:
                    tried.add(attempt)
                try:
                    with smtplib.SMTP("127.0.0.1", child.smtp, timeout=20) as smtp:
                        smtp.sendmail(
                            "sender@remote.example", ["alice@localhost"], message(attempt)
                        )
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.05)
                    continue
                with lock:
                    acked.add(attempt)
                break

    def killer() -> None:
        rng = random.Random(1234)
        while child.kills < KILLS and not done.wait(rng.uniform(0.3, 1.0)):
            child.kill()
            child.start()

    clients = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    kill_thread = threading.Thread(target=killer)
    try:
        for t in clients:
            t.start()
        kill_thread.start()
        for t in clients:
            t.join(600)
        done.set()
        kill_thread.join()
        # Let the last life deliver everything.
        queue_dir = data / "queue" / "envelopes"
        deadline = time.monotonic() + 120
        while any(queue_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(queue_dir.iterdir()), "the queue did not drain"
    finally:
        done.set()
        child.stop()
    assert child.kills == KILLS
    found: dict[str, int] = {}
    maildir = data / "mail" / "alice"
    for folder in ("new", "cur"):
        for name in os.listdir(maildir / folder):
            content = (maildir / folder / name).read_bytes()
            match = re.search(rb"\r\nX-Attempt: ([0-9.]+)\r\n", content)
            assert match is not None, f"unknown message {name}"
            attempt = match.group(1).decode()
            assert content.endswith(message(attempt)), f"{name} was cut or changed"
            trace = content[: -len(message(attempt))]
            assert trace.startswith(b"Return-Path: <sender@remote.example>\r\n")
            assert b"\r\nReceived: from " in trace
            found[attempt] = found.get(attempt, 0) + 1
    assert set(found) <= tried
    duplicates = {a: n for a, n in found.items() if n > 1}
    assert duplicates == {}
    missing = acked - set(found)
    assert missing == set()
    assert len(acked) >= MESSAGES
