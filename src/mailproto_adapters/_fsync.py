"""Directory fsyncs: one on its own, or one round shared by the threads that need it.

Making a new name durable (a rename, a link) takes an fsync of its directory. Concurrent
writers to one directory (the queue's SMTP sessions, deliveries to one Maildir) need not
each pay one: `GroupSync` runs a round of fsyncs on behalf of every caller that asked
before the round began.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

__all__ = ["GroupSync", "fsync_dir"]


def fsync_dir(path: str) -> None:
    """fsync the directory ``path``: the names added, renamed or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GroupSync:
    """fsync a set of directories on behalf of many threads at once.

    Each caller takes a ticket after its rename. A sync that starts after a ticket was
    taken covers it; one thread runs the fsyncs while the others wait for the result, so
    twenty sessions committing together cost about one round of directory fsyncs.
    """

    def __init__(self, dirs: Iterable[str]) -> None:
        self._dirs = tuple(dirs)
        self._cond = threading.Condition(threading.Lock())
        self._requested = 0
        self._done = 0
        self._running = False
        self.rounds = 0  # fsync rounds run, for tests and benchmarks

    def sync(self) -> None:
        with self._cond:
            self._requested += 1
            ticket = self._requested
            while self._done < ticket:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                target = self._requested
                ok = False
                self._cond.release()
                try:
                    for path in self._dirs:
                        fsync_dir(path)
                    ok = True
                finally:
                    self._cond.acquire()
                    self._running = False
                    if ok:
                        self._done = target
                        self.rounds += 1
                    self._cond.notify_all()
