"""`Call` hooks for blocking work and for waiting, whichever driver runs the flow.

A session flow reaches the disk, scrypt or a delay only through these, so that one flow
serves every flavour: the blocking driver runs the hook in the session's own thread, the
async drivers hand it to a worker thread (or await a sleep), and the event-loop server
(`_serve_events`) runs a `blocking_call` in its worker threads, a `pause` as a timer, and
a `local_call` in its loop.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from ._effects import Call

__all__ = ["blocking_call", "local_call", "offload", "pause"]


def _in_event_loop() -> bool:
    """True in an asyncio or trio task: a hook must then not block the loop."""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    trio: Any = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
            return True
        except RuntimeError:
            pass
    return False


def pause(seconds: float) -> Awaitable[None] | None:
    """A `Call` hook that waits: ``time.sleep`` in a thread, an awaitable in an event loop
    (asyncio or trio), so a failed login's delay never blocks other sessions."""
    if _in_event_loop():
        return anyio.sleep(seconds)
    time.sleep(seconds)
    return None


def offload(hook: Callable[..., Any], *args: Any) -> Any:
    """Run ``hook(*args)`` here in a thread, or in a worker thread from an event loop
    (the awaitable returned is awaited by the async driver)."""
    if _in_event_loop():
        return anyio.to_thread.run_sync(functools.partial(hook, *args))
    return hook(*args)


def blocking_call(hook: Callable[..., Any], *args: Any) -> Call:
    """A `Call` effect for blocking work (scrypt, fsync, SQLite): run directly by the
    blocking driver, in a worker thread by the others, so no loop stalls on it."""
    return Call(offload, (hook, *args))


def _offload_local(hook: Callable[..., Any], *args: Any) -> Any:
    """`offload` under another name: the mark by which `_serve_events` knows a
    `local_call` (any other driver treats the two alike)."""
    return offload(hook, *args)


def local_call(hook: Callable[..., Any], *args: Any) -> Call:
    """A `Call` effect for short work on local files, a few system calls and at most the
    fsyncs of one queue commit (a stat of the users file, opening a queue file, the
    commit): as `blocking_call` for every driver but `_serve_events`, which runs it in
    its loop.

    That server runs in several processes side by side (the SMTP children), so a commit
    stalls the other sessions of one process for the time of its fsyncs (a fraction of a
    millisecond on an SSD), as each of Postfix's processes handles one message at a time;
    the thread hand-offs it saves cost more CPU than that (about 15% more messages
    accepted, `benchmarks/mta.py`). Never for scrypt, SQLite or the network."""
    return Call(_offload_local, (hook, *args))
