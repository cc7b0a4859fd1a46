"""The delivery runner: grouping, results, retries with back-off, expiry, reports, limits.

The deliverers are fakes here (the real LMTP and SMTP delivery have their own tests and
the whole-MTA tests run them for real); the queue is the real one on disk.
"""

from __future__ import annotations

import email
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from mailproto_adapters.mta.queue import Queue, QueuedRecipient, QueueEntry
from mailproto_adapters.mta.remote import OutgoingMessage, RecipientResult
from mailproto_adapters.mta.routing import Hop, RouteError, Router
from mailproto_adapters.mta.runner import LOCAL, DeliveryRunner, destination

MESSAGE = b"From: a@remote.example\r\nTo: b@localhost\r\nSubject: hi\r\n\r\nbody\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeRouter:
    def __init__(self, errors: dict[str, RouteError] | None = None) -> None:
        self.errors = errors or {}

    def route(self, domain: str) -> list[Hop]:
        if domain in self.errors:
            raise self.errors[domain]
        return [Hop(host=f"mx.{domain}")]


class Deliverer:
    """Answers each recipient from ``answers`` (address -> (code, text)), default 250."""

    def __init__(self, answers: dict[str, tuple[int, str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[Any, list[OutgoingMessage]]] = []
        self.lock = threading.Lock()
        self.gate: threading.Event | None = None
        self.active = 0
        self.most = 0

    def __call__(
        self, where: Any, messages: Sequence[OutgoingMessage], **kwargs: Any
    ) -> list[list[RecipientResult]]:
        with self.lock:
            self.calls.append((where, list(messages)))
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            if self.gate is not None:
                self.gate.wait(10)
            out = []
            for m in messages:
                with m.open() as f:
                    data = f.read()
                assert data == MESSAGE or m.entry.kind == "bounce"
                out.append(
                    [
                        RecipientResult(
                            address=r.address,
                            code=self.answers.get(r.address, (250, "2.0.0 ok"))[0],
                            text=self.answers.get(r.address, (250, "2.0.0 ok"))[1],
                            remote_mta="peer",
                        )
                        for r in m.recipients
                    ]
                )
            return out
        finally:
            with self.lock:
                self.active -= 1


def enqueue(queue: Queue, sender: str, *rcpts: str, **kw: Any) -> QueueEntry:
    writer = queue.new_message()
    writer.write(MESSAGE)
    return queue.commit(
        writer, sender=sender, recipients=[QueuedRecipient(address=a) for a in rcpts], **kw
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> Queue:
    return Queue(tmp_path / "queue", clock=clock)


def make_runner(
    queue: Queue,
    clock: Clock,
    local: Deliverer | None = None,
    remote: Deliverer | None = None,
    router: Any = None,
    **kw: Any,
) -> DeliveryRunner:
    return DeliveryRunner(
        queue,
        hostname="mx.localhost",
        is_local=lambda d: d.lower() in {"localhost", "local.example"},
        router=cast(Router, router or FakeRouter()),
        clock=clock,
        local_deliverer=local or Deliverer(),
        remote_deliverer=remote or Deliverer(),
        **kw,
    )


def reports(queue: Queue) -> list[tuple[QueueEntry, email.message.Message]]:
    out = []
    for id_ in queue.ids():
        entry = queue.load(id_)
        assert entry is not None
        if entry.kind == "bounce":
            with queue.open_message(id_) as f:
                out.append((entry, email.message_from_bytes(f.read())))
    return out


def test_destination_keys() -> None:
    local = {"localhost"}.__contains__
    assert destination("bob@localhost", local) == LOCAL
    assert destination("postmaster", local) == LOCAL
    assert destination("bob@Remote.Example.", local) == "remote.example"


def test_delivered_entries_leave_the_queue(queue: Queue, clock: Clock) -> None:
    local, remote = Deliverer(), Deliverer()
    enqueue(queue, "a@remote.example", "b@localhost", "c@other.example", "d@other.example")
    runner = make_runner(queue, clock, local, remote)
    runner.run_once()
    assert queue.ids() == []
    assert [len(m[0].recipients) for _, m in local.calls] == [1]
    ((hops, msgs),) = remote.calls
    assert hops == [Hop(host="mx.other.example")]
    assert [r.address for r in msgs[0].recipients] == ["c@other.example", "d@other.example"]


def test_one_connection_carries_several_messages(queue: Queue, clock: Clock) -> None:
    remote = Deliverer()
    for i in range(5):
        enqueue(queue, "a@localhost", f"r{i}@other.example")
    make_runner(queue, clock, remote=remote, batch=3).run_once()
    assert sorted(len(msgs) for _, msgs in remote.calls) == [2, 3]
    assert queue.ids() == []


def test_temporary_failures_back_off_exponentially(queue: Queue, clock: Clock) -> None:
    remote = Deliverer({"c@other.example": (451, "4.3.0 try later")})
    entry = enqueue(queue, "a@localhost", "c@other.example", "d@other.example")
    runner = make_runner(queue, clock, remote=remote)
    runner.run_once()
    saved = queue.load(entry.id)
    assert saved is not None
    assert [r.state for r in saved.recipients] == ["pending", "delivered"]
    assert saved.recipients[0].last_reply == "451 4.3.0 try later"
    assert saved.recipients[0].remote_mta == "peer"
    assert saved.next_attempt == clock.now + 300
    runner.run_once()  # not due yet: nothing happens
    assert len(remote.calls) == 1
    clock.now += 300
    runner.run_once()
    saved = queue.load(entry.id)
    assert saved is not None
    assert saved.recipients[0].attempts == 2
    assert saved.next_attempt == clock.now + 600
    assert [r.address for r in remote.calls[-1][1][0].recipients] == ["c@other.example"]
    assert runner.backoff(10) == 4000


def test_permanent_failure_bounces_to_the_sender(queue: Queue, clock: Clock) -> None:
    remote = Deliverer({"c@other.example": (550, "5.1.1 no such user")})
    entry = enqueue(queue, "a@localhost", "c@other.example", envid="ENV1")
    make_runner(queue, clock, remote=remote).run_once()
    assert queue.load(entry.id) is None
    ((bentry, report),) = reports(queue)
    assert bentry.sender == ""
    assert [r.address for r in bentry.recipients] == ["a@localhost"]
    assert report.get_content_type() == "multipart/report"
    assert "5.1.1" in report.as_string()


def test_a_report_is_delivered_and_never_reported_on(queue: Queue, clock: Clock) -> None:
    local = Deliverer({"a@localhost": (550, "5.1.1 gone")})
    remote = Deliverer({"c@other.example": (550, "5.1.1 no")})
    enqueue(queue, "a@localhost", "c@other.example")
    runner = make_runner(queue, clock, local=local, remote=remote)
    runner.run_once()
    assert len(reports(queue)) == 1
    runner.run_once()  # the report fails too: dropped, no report about it
    assert queue.ids() == []


def test_null_sender_gets_no_report(queue: Queue, clock: Clock) -> None:
    remote = Deliverer({"c@other.example": (550, "5.1.1 no")})
    enqueue(queue, "", "c@other.example")
    make_runner(queue, clock, remote=remote).run_once()
    assert queue.ids() == []


def test_expiry_fails_the_pending_recipients(queue: Queue, clock: Clock) -> None:
    remote = Deliverer({"c@other.example": (451, "4.4.1 unreachable")})
    entry = enqueue(queue, "a@localhost", "c@other.example")
    runner = make_runner(queue, clock, remote=remote, lifetime=1000.0, delay_warning=10**9)
    runner.run_once()
    clock.now += 1000
    runner.run_once()
    assert queue.load(entry.id) is None
    ((_, report),) = reports(queue)
    assert "expired" in report.as_string()


def test_delay_warning_once(queue: Queue, clock: Clock) -> None:
    remote = Deliverer({"c@other.example": (451, "4.4.1 unreachable")})
    local = Deliverer()
    entry = enqueue(queue, "a@localhost", "c@other.example")
    runner = make_runner(queue, clock, local=local, remote=remote, delay_warning=100.0)
    runner.run_once()
    assert reports(queue) == []
    clock.now += 300
    runner.run_once()
    saved = queue.load(entry.id)
    assert saved is not None
    assert saved.warned
    assert len(reports(queue)) == 1
    clock.now += 600
    runner.run_once()  # the warning is delivered (to a@localhost); no second one
    assert reports(queue) == []
    assert [m.entry.kind for _, msgs in local.calls for m in msgs] == ["bounce"]
    saved = queue.load(entry.id)
    assert saved is not None
    assert saved.warned


def test_route_errors(queue: Queue, clock: Clock) -> None:
    router = FakeRouter(
        {
            "null.example": RouteError("556 5.1.10 null MX", permanent=True),
            "dns.example": RouteError("451 4.4.3 DNS timeout", permanent=False),
        }
    )
    entry = enqueue(queue, "", "x@null.example", "y@dns.example")
    make_runner(queue, clock, router=router).run_once()
    saved = queue.load(entry.id)
    assert saved is not None
    assert [r.state for r in saved.recipients] == ["failed", "pending"]
    assert saved.recipients[0].last_reply == "556 5.1.10 null MX"


def test_a_stuck_destination_does_not_block_others(queue: Queue, clock: Clock) -> None:
    remote = Deliverer()
    remote.gate = threading.Event()
    local = Deliverer()
    for i in range(6):
        enqueue(queue, "a@localhost", f"r@slow{i}.example")
    enqueue(queue, "a@remote.example", "b@localhost")
    runner = make_runner(queue, clock, local=local, remote=remote, workers=4, per_destination=1)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not local.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert local.calls  # delivered while four slow destinations hold every worker
        assert remote.active == 4
    finally:
        remote.gate.set()
        runner.stop()
    assert remote.most == 4


def test_a_stuck_destination_keeps_to_its_share(queue: Queue, clock: Clock) -> None:
    gate = threading.Event()
    fast = Deliverer()

    def remote(hops: list[Hop], messages: Sequence[OutgoingMessage], **kw: Any) -> Any:
        if hops[0].host == "mx.slow.example":
            gate.wait(10)
        return fast(hops, messages, **kw)

    for _ in range(4):
        enqueue(queue, "a@localhost", "r@slow.example")
    enqueue(queue, "a@localhost", "r@fast.example")
    runner = make_runner(
        queue, clock, remote=cast(Deliverer, remote), workers=3, per_destination=2, batch=1
    )
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not any(h[0].host == "mx.fast.example" for h, _ in fast.calls):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        gate.set()
        runner.stop()


def test_per_destination_limit(queue: Queue, clock: Clock) -> None:
    remote = Deliverer()
    remote.gate = threading.Event()
    for _ in range(6):
        enqueue(queue, "a@localhost", "r@one.example")
    runner = make_runner(queue, clock, remote=remote, batch=1, per_destination=2)
    runner.start()
    try:
        time.sleep(0.3)
        assert remote.active == 2
    finally:
        remote.gate.set()
        deadline = time.monotonic() + 10
        while queue.ids() and time.monotonic() < deadline:
            time.sleep(0.02)
        runner.stop()
    assert queue.ids() == []
    assert remote.most == 2


def submit_one(runner: DeliveryRunner, queue: Queue) -> None:
    """Start ``runner``, submit one local message, see it leave the queue, stop."""
    runner.start()
    try:
        runner.submit(enqueue(queue, "a@remote.example", "b@localhost"))
        deadline = time.monotonic() + 5
        while queue.ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.ids() == []
    finally:
        runner.stop()


def test_submit_wakes_the_runner(queue: Queue, clock: Clock) -> None:
    submit_one(make_runner(queue, clock, local=Deliverer()), queue)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice per thread: Linux")
def test_delivery_threads_run_with_a_higher_nice_value(queue: Queue, clock: Clock) -> None:
    """``nice``: the workers (and the scheduler) yield the CPUs; the thread that made the
    runner, standing for the listeners, keeps its own priority."""
    seen: list[int] = []

    class Recording(Deliverer):
        def __call__(self, *args: Any, **kw: Any) -> Any:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().__call__(*args, **kw)

    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    submit_one(make_runner(queue, clock, local=Recording(), nice=3), queue)
    assert seen == [min(19, ours + 3)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours


def test_a_locked_entry_waits(queue: Queue, clock: Clock) -> None:
    entry = enqueue(queue, "a@remote.example", "b@localhost")
    runner = make_runner(queue, clock)
    with queue.lock(entry.id) as taken:
        assert taken
        runner.run_once(timeout=1)
        assert queue.ids() == [entry.id]
    clock.now += 10
    runner.run_once()
    assert queue.ids() == []


def test_a_crashing_deliverer_only_defers(queue: Queue, clock: Clock) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[list[RecipientResult]]:
        raise RuntimeError("bug")

    entry = enqueue(queue, "a@remote.example", "b@localhost")
    runner = make_runner(queue, clock, local=cast(Deliverer, broken))
    runner.run_once()
    saved = queue.load(entry.id)
    assert saved is not None
    assert saved.recipients[0].state == "pending"
    assert saved.recipients[0].last_reply == "451 4.3.0 bug"
