"""``mailproto queue list|show|flush|delete``, called as functions with captured output."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import pytest

from mailproto_adapters.mta import queue_cli
from mailproto_adapters.mta.queue import Queue, QueuedRecipient, QueueEntry

ARRIVAL = 1_700_000_000.0  # 2023-11-14T22:13:20Z
MESSAGE = (
    b"From: Alice <a@example.org>\r\nTo: b@example.net\r\nSubject: hello\r\n"
    b"\tcontinued\r\nX-Evil: \x1b[31mred\r\n\r\nthe body is not shown\r\n"
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def queue(data: Path) -> Queue:
    return Queue(data / "queue", clock=lambda: ARRIVAL)


def enqueue(q: Queue, *rcpts: str, sender: str = "a@example.org", **fields: Any) -> QueueEntry:
    writer = q.new_message()
    writer.write(MESSAGE)
    recipients = [QueuedRecipient(address=r) for r in rcpts or ("b@example.net",)]
    return q.commit(writer, sender=sender, recipients=recipients, **fields)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = queue_cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- list -------------------------------------------------------------------------------


def test_list_empty_and_missing(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "queue", "--data", str(data), "list")
    assert status == 66
    assert "no queue in" in err
    Queue(data / "queue")
    assert run(capsys, "list", "--data", str(data)) == (0, "mail queue is empty\n", "")


def test_list_entries(data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    a = enqueue(queue, "b@example.net", "c@example.com")
    a.recipients[0].state = "delivered"
    a.recipients[0].last_reply = "250 2.0.0 ok"
    a.recipients[0].last_attempt = ARRIVAL + 1
    a.recipients[0].remote_mta = "lmtp"
    a.recipients[1].last_reply = "451 4.4.1 \x1b]0;pwned\x07 refused"
    a.recipients[1].last_attempt = ARRIVAL + 2
    a.recipients[1].attempts = 1
    a.next_attempt = ARRIVAL + 300
    queue.save(a)
    b = enqueue(queue, "a@example.org", sender="", kind="bounce")
    broken = enqueue(queue)
    (data / "queue" / "envelopes" / f"{broken.id}.json").write_text("{")
    status, out, err = run(capsys, "--data", str(data), "list")
    assert status == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == (
        f"{a.id}  2023-11-14T22:13:20Z  {len(MESSAGE)}  <a@example.org>  "
        "<b@example.net>:delivered <c@example.com>:pending  next=2023-11-14T22:18:20Z  "
        "last='451 4.4.1 \\x1b]0;pwned\\x07 refused'"
    )
    assert lines[1] == (
        f"{b.id}  2023-11-14T22:13:20Z  {len(MESSAGE)}  <>  [bounce]  "
        "<a@example.org>:pending  next=2023-11-14T22:13:20Z"
    )
    assert lines[2].startswith(f"{broken.id}  unreadable envelope: not UTF-8 JSON")
    assert lines[3] == f"-- 2 messages, {2 * len(MESSAGE)} octets"
    assert "\x1b" not in out


def test_list_one_entry_and_last_reply_host(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    a = enqueue(queue)
    a.recipients[0].last_reply = "451 4.4.1 later"
    a.recipients[0].remote_mta = "mx.example.net"
    queue.save(a)
    status, out, _ = run(capsys, "list", "--data", str(data))
    assert status == 0
    assert out.splitlines()[0].endswith("last='451 4.4.1 later' (mx.example.net)")
    assert out.splitlines()[1] == f"-- 1 message, {len(MESSAGE)} octets"


def test_list_skips_entries_that_vanish(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue(queue)

    def gone(self: Queue, entry_id: str) -> QueueEntry:
        raise FileNotFoundError(entry_id)

    monkeypatch.setattr(Queue, "read", gone)
    assert run(capsys, "list", "--data", str(data)) == (0, "mail queue is empty\n", "")


def test_list_io_error(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Queue) -> list[str]:
        raise PermissionError(13, "Permission denied", "envelopes")

    monkeypatch.setattr(Queue, "ids", denied)
    status, _, err = run(capsys, "list", "--data", str(data))
    assert status == 74
    assert err == "mailproto queue: error: envelopes: Permission denied\n"


def test_old_layout_is_refused(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = data / "queue" / "messages"
    old.mkdir(parents=True)
    (data / "queue" / "envelopes").mkdir()
    (old / ("0" * 20)).write_bytes(MESSAGE)
    for action in ("list", "flush"):
        status, out, err = run(capsys, action, "--data", str(data))
        assert (status, out) == (78, "")
        assert err.startswith("mailproto queue: error: ")
        assert "old layout" in err


def test_list_with_saved_and_damaged_entries(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    """The saved envelope is the one listed; a damaged entry file is listed as such."""
    a = enqueue(queue)
    a.recipients[0].state = "failed"
    queue.save(a)
    b = enqueue(queue)
    (data / "queue" / "envelopes" / b.id).write_bytes(MESSAGE)  # cut short: no envelope
    status, out, _ = run(capsys, "list", "--data", str(data))
    assert status == 0
    lines = out.splitlines()
    assert "<b@example.net>:failed" in lines[0]
    assert lines[1] == f"{b.id}  unreadable envelope: the entry file has no envelope trailer"
    assert lines[2] == f"-- 1 message, {len(MESSAGE)} octets"


# -- show -------------------------------------------------------------------------------


def test_show(data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    entry = enqueue(
        queue,
        "b@example.net",
        "c@example.com",
        sender="pelé@exemple.fr",
        ret="HDRS",
        envid="ENV1",
        body="8BITMIME",
        smtputf8=True,
        auth_user="alice",
        client="mua ([127.0.0.1])",
    )
    entry.recipients[0].orcpt = "rfc822;b@example.net"
    entry.recipients[0].notify = frozenset()
    entry.recipients[1].notify = frozenset({"FAILURE", "DELAY"})
    entry.recipients[1].last_reply = "451 4.4.1 try later"
    entry.recipients[1].remote_mta = "mx.example.com"
    entry.recipients[1].last_attempt = ARRIVAL + 60
    entry.recipients[1].attempts = 1
    entry.warned = True
    queue.save(entry)
    status, out, err = run(capsys, "show", entry.id, "--data", str(data))
    assert (status, err) == (0, "")
    assert out == (
        f"id: {entry.id}\n"
        "kind: message\n"
        "arrival: 2023-11-14T22:13:20Z\n"
        "next attempt: 2023-11-14T22:13:20Z\n"
        f"size: {len(MESSAGE)}\n"
        "sender: <pelé@exemple.fr>\n"
        "client: mua ([127.0.0.1])\n"
        "auth user: alice\n"
        "body: 8BITMIME\n"
        "smtputf8: yes\n"
        "ret: HDRS\n"
        "envid: ENV1\n"
        "delay warning sent: yes\n"
        "recipient: <b@example.net> pending, 0 attempts\n"
        "  orcpt: rfc822;b@example.net\n"
        "  notify: NEVER\n"
        "recipient: <c@example.com> pending, 1 attempts\n"
        "  notify: DELAY,FAILURE\n"
        "  last attempt: 2023-11-14T22:14:20Z\n"
        "  last reply: 451 4.4.1 try later\n"
        "  remote mta: mx.example.com\n"
        "\n"
        "From: Alice <a@example.org>\n"
        "To: b@example.net\n"
        "Subject: hello\n"
        "    continued\n"
        "X-Evil: \\x1b[31mred\n"
    )


def test_show_minimal_entry(data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    writer = queue.new_message()
    writer.write(b"Subject: only headers, no body\n")
    entry = queue.commit(writer, sender="", recipients=[QueuedRecipient(address="x@y")])
    status, out, _ = run(capsys, "show", entry.id, "--data", str(data))
    assert status == 0
    assert "auth user" not in out
    assert "smtputf8" not in out
    assert out.endswith("x@y> pending, 0 attempts\n\nSubject: only headers, no body\n")


def test_show_header_limit(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_cli, "_HEADER_LIMIT", 100)
    writer = queue.new_message()
    writer.write(b"X-Long: " + b"y" * 500 + b"\r\n\r\nbody")
    entry = queue.commit(writer, sender="", recipients=[QueuedRecipient(address="x@y")])
    status, out, _ = run(capsys, "show", entry.id, "--data", str(data))
    assert status == 0
    assert out.endswith("X-Long: " + "y" * 92 + "\n")


def test_show_errors(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = run(capsys, "show", "0" * 20, "--data", str(data))
    assert status == 66
    assert err == f"mailproto queue: error: {'0' * 20}: no such queue entry\n"
    status, _, err = run(capsys, "show", "../etc\x1b", "--data", str(data))
    assert status == 66
    assert "not a queue id" in err
    assert "\x1b" not in err
    broken = enqueue(queue)
    (data / "queue" / "envelopes" / f"{broken.id}.json").write_text("[]")
    status, _, err = run(capsys, "show", broken.id, "--data", str(data))
    assert status == 66
    assert "must be a JSON object" in err
    entry = enqueue(queue)

    def denied(self: Queue, entry_id: str) -> Any:
        raise PermissionError(13, "Permission denied", "messages/x")

    monkeypatch.setattr(Queue, "open_message", denied)
    status, _, err = run(capsys, "show", entry.id, "--data", str(data))
    assert status == 74
    assert err == "mailproto queue: error: messages/x: Permission denied\n"
    status, _, err = run(capsys, "show", entry.id, "--data", str(data / "elsewhere"))
    assert status == 66


# -- flush ------------------------------------------------------------------------------


def test_flush_all(data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    later = time.time() + 3600
    a = enqueue(queue)
    a.next_attempt = later
    queue.save(a)
    b = enqueue(queue)  # already due: left as it is
    c = enqueue(queue)
    c.next_attempt = later
    queue.save(c)
    broken = enqueue(queue)
    (data / "queue" / "envelopes" / f"{broken.id}.json").write_text("{")
    with queue.lock(c.id) as taken:  # being delivered: skipped
        assert taken
        before = time.time()
        assert run(capsys, "flush", "--data", str(data)) == (0, "", "")
    loaded = [queue.load(e.id) for e in (a, b, c)]
    assert loaded[0] is not None
    assert before <= loaded[0].next_attempt <= time.time()
    assert loaded[1] == b
    assert loaded[2] == c
    assert queue.flush_requested()
    assert not queue.flush_requested()


def test_flush_one(data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    later = time.time() + 3600
    entries = [enqueue(queue), enqueue(queue)]
    for e in entries:
        e.next_attempt = later
        queue.save(e)
    assert run(capsys, "flush", entries[1].id, "--data", str(data)) == (0, "", "")
    first, second = (queue.load(e.id) for e in entries)
    assert first is not None
    assert second is not None
    assert first.next_attempt == later
    assert second.next_attempt < later
    assert queue.flush_requested()


def test_flush_errors(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "flush", "--data", str(data / "nope"))[0] == 66
    status, _, err = run(capsys, "flush", "0" * 20, "--data", str(data))
    assert status == 66
    assert "no such queue entry" in err
    status, _, err = run(capsys, "flush", "nonsense", "--data", str(data))
    assert status == 66
    assert "not a queue id" in err

    def denied(self: Queue) -> None:
        raise PermissionError(13, "Permission denied", "flush")

    monkeypatch.setattr(Queue, "request_flush", denied)
    status, _, err = run(capsys, "flush", "--data", str(data))
    assert status == 74
    assert err == "mailproto queue: error: flush: Permission denied\n"


# -- delete -----------------------------------------------------------------------------


def test_delete(data: Path, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, c = enqueue(queue), enqueue(queue), enqueue(queue)
    queue.save(a)
    status, out, err = run(capsys, "delete", a.id, c.id, "--data", str(data))
    assert (status, out) == (0, "")
    assert err == f"mailproto queue: deleted {a.id}\nmailproto queue: deleted {c.id}\n"
    assert queue.ids() == [b.id]
    assert sorted(os.listdir(data / "queue" / "envelopes")) == [b.id]  # saved one too


def test_delete_errors(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "delete", "0" * 20, "--data", str(data / "nope"))[0] == 66
    a, b = enqueue(queue), enqueue(queue)
    with queue.lock(a.id) as taken:
        assert taken
        status, _, err = run(capsys, "delete", a.id, "0" * 20, "bad", b.id, "--data", str(data))
    assert status == 66  # the last error wins
    assert err == (
        f"mailproto queue: error: {a.id}: being delivered; try again\n"
        f"mailproto queue: error: {'0' * 20}: no such queue entry\n"
        "mailproto queue: error: not a queue id: 'bad'\n"
        f"mailproto queue: deleted {b.id}\n"
    )
    assert queue.ids() == [a.id]
    with queue.lock(a.id):
        assert run(capsys, "delete", a.id, "--data", str(data))[0] == 75

    def denied(self: Queue, entry_id: str) -> None:
        raise PermissionError(13, "Permission denied", "envelopes")

    monkeypatch.setattr(Queue, "remove", denied)
    status, _, err = run(capsys, "delete", a.id, "--data", str(data))
    assert status == 74
    assert err == "mailproto queue: error: envelopes: Permission denied\n"


# -- parsing ----------------------------------------------------------------------------


def test_usage_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "queue")
    assert status == 64
    assert "usage:" in err
    assert run(capsys, "delete")[0] == 64
    assert run(capsys, "frobnicate")[0] == 64
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert "list" in out
    assert "delete" in out


def test_register_into_another_parser(
    data: Path, queue: Queue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    top = argparse.ArgumentParser(prog="mailproto")
    queue_cli.register(top.add_subparsers(dest="command"))
    args = top.parse_args(["queue", "--data", str(data), "list"])
    assert args.func is queue_cli.cmd_list
    assert args.func(args) == 0
    assert capsys.readouterr().out == "mail queue is empty\n"
    args = top.parse_args(["queue", "list"])
    assert args.data == queue_cli.DEFAULT_DATA
    monkeypatch.chdir(data.parent)
    assert queue_cli.cmd_list(args) == 66  # the default directory holds no queue yet
    monkeypatch.setattr("sys.argv", ["mailproto", "queue", "--data", str(data), "list"])
    assert queue_cli.main() == 0
