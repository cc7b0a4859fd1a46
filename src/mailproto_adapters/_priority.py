"""CPU priority for delivery work: accepting mail comes first when the CPUs are busy.

A client waiting for its 250 holds a connection; a queued message waits at no cost to
anyone. So the delivery runner's threads and the MDA's LMTP process run with a higher
nice value (``SystemConfig.delivery_nice``): when SMTP sessions want the CPUs, they get
most of them and delivery catches up after the burst; when the CPUs are free, nice
changes nothing. Exim's ``queue_only_load`` and sendmail's ``QueueLA`` make the same
choice more bluntly (no delivery at all above a load average).

On Linux nice is an attribute of each thread (setpriority(2) with a thread id), so the
runner lowers only its own threads, not the listeners sharing its process. Elsewhere
nothing is changed.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["MAX_NICE", "delivery_nice", "lower_thread_priority"]

MAX_NICE = 19


def _thread_nice() -> int | None:
    """The calling thread's nice value; None where it is not a per-thread value."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except OSError:
        return None


def delivery_nice(increment: int) -> int | None:
    """The nice value for delivery threads: the calling thread's (the listeners') plus
    ``increment``, at most 19; None when there is nothing to change."""
    current = _thread_nice()
    if increment <= 0 or current is None:
        return None
    return min(MAX_NICE, current + increment)


def lower_thread_priority(nice: int | None) -> bool:
    """Give the calling thread the nice value ``nice`` if it is higher than its own (so
    calling it twice, or in a thread that inherited it, changes nothing more); the
    threads it starts afterwards inherit it. False when nothing was changed."""
    current = _thread_nice()
    if nice is None or current is None or nice <= current:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        return False
    return True
