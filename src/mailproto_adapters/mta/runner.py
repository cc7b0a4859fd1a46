"""The delivery runner: moves queued messages on, retries, expires and bounces them.

One scheduler thread keeps the queue's entries in a heap by their next attempt; worker
threads deliver. Recipients are grouped by destination (the MDA over LMTP for local
domains, else the recipient's domain), so one connection carries several messages, and
each destination has its own concurrency limit: a stuck destination holds at most
``per_destination`` of the ``workers`` for remote delivery, and local delivery has its
own ``local_workers``, so no remote trouble delays local mail (RFC 5321 section 4.5.4.1
asks for per-destination retry and limits).

After an attempt each recipient is delivered (2xx), failed (5xx) or still pending (4xx,
connection trouble). Pending ones are retried with exponential back-off (``min_backoff``
doubling up to ``max_backoff``, as Postfix's 300 s / 4,000 s) until ``lifetime`` (5 days)
after arrival, when they fail with 4.4.7. Failures, a delay warning after
``delay_warning`` (4 hours) and, when asked (NOTIFY=SUCCESS), success reports go back to
the sender as RFC 3464 reports (`bounce`), queued like any message with the null sender,
so a report is never reported on (no bounce loops). The report is queued before the
entry is updated: a crash in between may send a report twice, never lose one.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from mailproto import smtp

from .._priority import delivery_nice, lower_thread_priority
from . import bounce
from .connections import ConnectionCache
from .local import LMTPTarget, deliver_local
from .queue import Queue, QueuedRecipient, QueueEntry
from .remote import OutgoingMessage, RecipientResult, deliver_remote
from .routing import RouteError, Router

__all__ = ["LOCAL", "DeliveryRunner"]

log = logging.getLogger("mailproto.mta.delivery")

LOCAL = "[lmtp]"  # the destination key of local recipients (no domain can be spelled so)

Deliverer = Callable[..., list[list[RecipientResult]]]


@attrs.define(eq=False)
class _Work:
    """An entry being delivered: its lock, the attempts still running, what changed."""

    entry: QueueEntry
    stack: contextlib.ExitStack
    outstanding: int = 0
    failed: list[QueuedRecipient] = attrs.field(factory=list)
    delivered: list[QueuedRecipient] = attrs.field(factory=list)
    mutex: threading.Lock = attrs.field(factory=threading.Lock)


def _delivery_id(entry: QueueEntry, rcpt: QueuedRecipient) -> str:
    """The name of one recipient's copy: queue id and the recipient's position."""
    index = next(i for i, r in enumerate(entry.recipients) if r is rcpt)
    return f"{entry.id}_{index}"


def _everyone(
    messages: Sequence[OutgoingMessage], code: int, text: str
) -> list[list[RecipientResult]]:
    """The same result for every recipient of every message (no hop was reached)."""
    return [
        [
            RecipientResult(address=r.address, code=code, text=text, remote_mta="")
            for r in m.recipients
        ]
        for m in messages
    ]


def destination(address: str, is_local: Callable[[str], bool]) -> str:
    """The destination key of a recipient: `LOCAL`, or its domain in lower case."""
    _local, domain = smtp.split_address(address)
    if not domain or is_local(domain):
        return LOCAL
    return domain.lower().rstrip(".")


class DeliveryRunner:
    """Delivers what `Queue` holds; `start()` it, `submit()` new entries, `stop()` it."""

    def __init__(
        self,
        queue: Queue,
        *,
        hostname: str,
        is_local: Callable[[str], bool],
        router: Router | None = None,
        lmtp: LMTPTarget | None = None,
        clock: Callable[[], float] = time.time,
        workers: int = 20,
        per_destination: int = 5,
        local_workers: int = 5,
        batch: int = 20,
        lifetime: float = 5 * 86400.0,
        delay_warning: float = 4 * 3600.0,
        min_backoff: float = 300.0,
        max_backoff: float = 4000.0,
        tls_context: Any = None,
        remote_deliverer: Deliverer = deliver_remote,
        local_deliverer: Deliverer = deliver_local,
        nice: int = 0,
    ) -> None:
        self.queue = queue
        self.hostname = hostname
        self.is_local = is_local
        self.router = router or Router()
        self.lmtp = lmtp or LMTPTarget()
        self.clock = clock
        self.workers = workers
        self.per_destination = per_destination
        self.local_workers = local_workers
        self.batch = batch
        self.lifetime = lifetime
        self.delay_warning = delay_warning
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.tls_context = tls_context
        self._remote = remote_deliverer
        self._local = local_deliverer
        self._cond = threading.Condition()
        self._heap: list[tuple[float, str]] = []
        self._work: dict[str, _Work] = {}
        self._waiting: dict[str, deque[tuple[_Work, list[QueuedRecipient]]]] = {}
        self._active: dict[str, int] = {}
        self._running = 0
        # Entries queued by this process and not yet attempted: their first attempt
        # cannot have stored anything yet, so the MDA need not look for a copy.
        self._fresh: set[str] = set()
        self._stop = False
        self._thread: threading.Thread | None = None
        # ``nice``: the scheduler's and the workers' nice value is raised by this much
        # (Linux; `_priority`), so that under load accepting mail comes first.
        self._nice = delivery_nice(nice)
        self._pool = ThreadPoolExecutor(
            max_workers=workers + local_workers,
            thread_name_prefix="delivery",
            initializer=functools.partial(lower_thread_priority, self._nice),
        )
        # LMTP connections to the MDA kept between batches (Postfix caches them too).
        self.connections = ConnectionCache(size=local_workers)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Load every queued entry (due now or later) and start the scheduler thread."""
        self._load_all()
        self._thread = threading.Thread(target=self._loop, name="delivery-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling, let running attempts finish (up to ``timeout``)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.connections.close()

    def submit(self, entry: QueueEntry) -> None:
        """A new entry is in the queue (the SMTP server calls this after its commit)."""
        self.submit_id(entry.id, entry.next_attempt)

    def submit_id(self, entry_id: str, when: float | None = None) -> None:
        """A new entry, by its id (another process queued it): due at ``when`` (now)."""
        with self._cond:
            self._fresh.add(entry_id)
            heapq.heappush(self._heap, (self.clock() if when is None else when, entry_id))
            self._cond.notify_all()

    def rescan(self) -> None:
        """Read the queue again for entries nobody submitted (another process queued
        them and could not say so)."""
        self._load_all()
        self.wake()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def run_once(self, timeout: float = 60.0) -> None:
        """Attempt everything due now and wait until those attempts end (for tests and
        ``mailproto queue flush`` without a running server)."""
        self._load_all()
        with self._cond:
            self._schedule(self.clock())
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._work and time.monotonic() < deadline:
                self._dispatch()
                self._cond.wait(0.05)
        self.connections.close()  # nothing is coming after this

    def idle(self) -> bool:
        """No attempt running or waiting."""
        with self._cond:
            return not self._work

    # -- scheduling (under self._cond) ----------------------------------------------------

    def _load_all(self) -> None:
        entries = []
        for id_ in self.queue.ids():
            entry = self.queue.load(id_)
            if entry is not None:
                entries.append((entry.next_attempt, entry.id))
        with self._cond:
            known = {id_ for _, id_ in self._heap} | set(self._work)
            for item in entries:
                if item[1] not in known:
                    heapq.heappush(self._heap, item)

    def _loop(self) -> None:
        lower_thread_priority(self._nice)
        while True:
            with self._cond:
                if self._stop:
                    return
            try:
                if self.queue.flush_requested():
                    self._flush()
            except OSError:
                log.exception("cannot read the queue's flush request")
            self.connections.sweep()
            with self._cond:
                now = self.clock()
                self._schedule(now)
                self._dispatch()
                wait = 1.0
                if self._heap:
                    wait = max(0.0, min(wait, self._heap[0][0] - now))
                self._cond.wait(wait)

    def _flush(self) -> None:
        """``mailproto queue flush``: every entry is due now."""
        with self._cond:
            self._heap = [(0.0, id_) for _, id_ in self._heap]
            heapq.heapify(self._heap)
        self._load_all()

    def _schedule(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            _, id_ = heapq.heappop(self._heap)
            if id_ in self._work:
                continue
            entry = self.queue.load(id_)
            if entry is None:
                continue  # deleted meanwhile (mailproto queue delete)
            if entry.next_attempt > now:
                heapq.heappush(self._heap, (entry.next_attempt, id_))
                continue
            stack = contextlib.ExitStack()
            if not stack.enter_context(self.queue.lock(id_)):
                stack.close()
                heapq.heappush(self._heap, (now + 5.0, id_))  # someone else holds it
                continue
            work = _Work(entry=entry, stack=stack)
            groups: dict[str, list[QueuedRecipient]] = {}
            for rcpt in entry.recipients:
                if rcpt.state == "pending":
                    groups.setdefault(destination(rcpt.address, self.is_local), []).append(rcpt)
            if not groups:
                self._work[id_] = work
                self._pool.submit(self._finish, work)
                continue
            self._work[id_] = work
            work.outstanding = len(groups)
            for dest, rcpts in groups.items():
                self._waiting.setdefault(dest, deque()).append((work, rcpts))

    def _dispatch(self) -> None:
        for dest, waiting in list(self._waiting.items()):
            local = dest == LOCAL
            limit = self.local_workers if local else self.per_destination
            while waiting and (local or self._running < self.workers):
                if self._active.get(dest, 0) >= limit:
                    break
                items = [waiting.popleft() for _ in range(min(self.batch, len(waiting)))]
                self._active[dest] = self._active.get(dest, 0) + 1
                self._running += not local
                self._pool.submit(self._attempt, dest, items)
            if not waiting:
                del self._waiting[dest]

    # -- attempts (worker threads) ----------------------------------------------------------

    def _attempt(self, dest: str, items: list[tuple[_Work, list[QueuedRecipient]]]) -> None:
        messages = [
            OutgoingMessage(
                entry=work.entry,
                recipients=tuple(rcpts),
                open=functools.partial(self.queue.open_message, work.entry.id),
                delivery_ids=tuple(_delivery_id(work.entry, r) for r in rcpts),
                redelivery=work.entry.id not in self._fresh or any(r.attempts for r in rcpts),
            )
            for work, rcpts in items
        ]
        reported: set[int] = set()

        def report(index: int, result: list[RecipientResult]) -> None:
            reported.add(index)
            work, rcpts = items[index]
            self._record(work, rcpts, result)

        try:
            results = self._deliver(dest, messages, report)
        except Exception as exc:  # a bug or an odd failure: retry later, never lose
            log.exception("delivery to %s failed", dest)
            results = _everyone(messages, 451, f"4.3.0 {exc}")
        finally:
            with self._cond:
                self._active[dest] -= 1
                if not self._active[dest]:
                    del self._active[dest]
                self._running -= dest != LOCAL
                self._cond.notify_all()
        for index, ((work, rcpts), result) in enumerate(zip(items, results, strict=False)):
            if index not in reported:
                self._record(work, rcpts, result)

    def _deliver(
        self,
        dest: str,
        messages: Sequence[OutgoingMessage],
        report: Callable[[int, list[RecipientResult]], None],
    ) -> list[list[RecipientResult]]:
        if dest == LOCAL:
            return self._local(
                self.lmtp, messages, helo=self.hostname, report=report, connections=self.connections
            )
        try:
            hops = self.router.route(dest)
        except RouteError as exc:
            code, _, text = exc.reply.partition(" ")
            return _everyone(messages, int(code), text)
        return self._remote(
            hops, messages, helo=self.hostname, tls_context=self.tls_context, report=report
        )

    def _record(
        self, work: _Work, rcpts: list[QueuedRecipient], results: list[RecipientResult]
    ) -> None:
        now = self.clock()
        by_address: dict[str, RecipientResult] = {}
        for result in results:
            by_address.setdefault(result.address, result)
        with work.mutex:
            for rcpt in rcpts:
                result = by_address.get(rcpt.address) or RecipientResult(
                    address=rcpt.address, code=451, text="4.3.0 no answer", remote_mta=""
                )
                rcpt.attempts += 1
                rcpt.last_attempt = now
                rcpt.last_reply = f"{result.code} {result.text}".strip()
                rcpt.remote_mta = result.remote_mta or None
                if 200 <= result.code < 300:
                    rcpt.state = "delivered"
                    work.delivered.append(rcpt)
                elif 500 <= result.code < 600:
                    rcpt.state = "failed"
                    work.failed.append(rcpt)
                log.info(
                    "id=%s to=<%s> relay=%s status=%s reply=%r",
                    work.entry.id,
                    rcpt.address,
                    rcpt.remote_mta or "none",
                    rcpt.state if rcpt.state != "pending" else "deferred",
                    rcpt.last_reply,
                )
            work.outstanding -= 1
            done = work.outstanding == 0
        if done:
            self._finish(work)

    def _finish(self, work: _Work) -> None:
        """All attempts of this round are in: report, then save or remove the entry."""
        entry = work.entry
        now = self.clock()
        try:
            pending = [r for r in entry.recipients if r.state == "pending"]
            if pending and now >= entry.arrival + self.lifetime:
                for rcpt in pending:
                    rcpt.state = "failed"
                    last = f"; last reply: {rcpt.last_reply}" if rcpt.last_reply else ""
                    rcpt.last_reply = f"451 4.4.7 Delivery time expired{last}"
                    work.failed.append(rcpt)
                pending = []
            self._report(entry, work.failed, "failed", now)
            self._report(entry, work.delivered, "delivered", now)
            if pending and not entry.warned and now >= entry.arrival + self.delay_warning:
                if self._report(entry, pending, "delayed", now):
                    entry.warned = True
            if pending:
                attempts = max(r.attempts for r in pending)
                entry.next_attempt = now + self.backoff(attempts)
                self.queue.save(entry)
                with self._cond:
                    heapq.heappush(self._heap, (entry.next_attempt, entry.id))
            else:
                self.queue.remove(entry.id)
        except Exception:
            log.exception("cannot update queue entry %s; it is retried later", entry.id)
            with self._cond:
                heapq.heappush(self._heap, (now + self.min_backoff, entry.id))
        finally:
            work.stack.close()
            with self._cond:
                self._fresh.discard(entry.id)
                self._work.pop(entry.id, None)
                self._cond.notify_all()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` tries."""
        return float(min(self.max_backoff, self.min_backoff * 2 ** max(attempts - 1, 0)))

    def _report(
        self, entry: QueueEntry, rcpts: list[QueuedRecipient], action: str, now: float
    ) -> bool:
        """Queue a delivery report about ``rcpts`` to the sender, if they want one."""
        wanted = [r for r in rcpts if bounce.wants_report(entry, r, action)]
        if not wanted:
            return False
        with self.queue.open_message(entry.id) as message:
            report = bounce.delivery_report(
                entry,
                wanted,
                action=action,
                reporting_mta=self.hostname,
                message=message,
                now=now,
                retry_until=entry.arrival + self.lifetime,
            )
        writer = self.queue.new_message()
        try:
            writer.write(report)
            queued = self.queue.commit(
                writer,
                sender="",
                recipients=[QueuedRecipient(address=entry.sender)],
                smtputf8=entry.smtputf8,
                body=None if report.isascii() else "8BITMIME",
                client="mailproto delivery report",
                kind="bounce",
            )
        except BaseException:
            self.queue.abort(writer)
            raise
        log.info("id=%s report=%s about %s", queued.id, action, entry.id)
        self.submit(queued)
        return True
