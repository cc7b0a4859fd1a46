"""Listeners served by child processes: the MDA's LMTP, and the MTA's SMTP on several cores.

A Python process runs one thread of Python at a time, so under load the SMTP sessions,
the delivery runner and the MDA's LMTP (Maildir files, SQLite) would share one core.
`ListenerProcesses` takes a listening socket the parent bound and serves it from
``count`` children (``python -m mailproto_adapters.listener_process``), each with its own
`MDA` (service ``lmtp``) or `MTA` (``smtp``, ``submission``, ``submissions``) over the
same data directory, as Postfix runs several ``smtpd`` and Dovecot its ``lmtp``:

- the store and the queue are made for several processes (a ``flock`` per folder and
  SQLite in WAL mode; one file per queue entry, claimed by ``link``), and the parent's
  IMAP and POP3 sessions notice a child's deliveries as they notice any writer's;
- an SMTP child says ``queued <id>`` on its stdout for each message it queued, and the
  parent hands the entry to its delivery runner (`on_queued`); when a child ends, the
  parent has the runner read the queue again (`on_exit`), so nothing waits for a restart;
- the parent keeps the socket: connections wait in its backlog while a child starts,
  and a child that exits is started again;
- a child stops when its stdin reaches end of file (`close`, or the parent died) or on
  SIGTERM, letting its sessions finish; it ignores SIGINT (a Ctrl-C in the terminal
  reaches the parent, which stops the children in order).

Limits on connections are per child (``max_connections`` and ``max_per_ip`` are divided
among the children, rounding up): Postfix's anvil, a shared counter, is not built.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._serving import ServeConfig

__all__ = ["MTA_SERVICES", "ChildSettings", "ListenerProcesses", "main"]

log = logging.getLogger("mailproto.listener_process")

MTA_SERVICES = ("smtp", "submission", "submissions")
_BUSY = {
    "lmtp": b"421 4.3.2 Too many connections, try later\r\n",
    **dict.fromkeys(MTA_SERVICES, b"421 4.7.0 Too many connections, try later\r\n"),
}
_READY = "ready"
_MAX_RESTART_DELAY = 60.0
_QUEUED = "queued "

# What a child needs to build its MDA or MTA: plain JSON, the first line of its stdin.
ChildSettings = Mapping[str, Any]


class _Child:
    """A child process and the thread reading its stdout; `wait` returns it once the
    child said "ready"."""

    def __init__(self, owner: ListenerProcesses, process: subprocess.Popen[str]) -> None:
        self.owner = owner
        self.process = process
        self.ready = threading.Event()
        self.said_ready: list[bool] = []
        self.reader = threading.Thread(
            target=owner._read,
            args=(process.stdout, self.ready, self.said_ready),
            name=f"{owner.service}-process",
            daemon=True,
        )

    def wait(self) -> _Child:
        """Itself once it serves; RuntimeError (and it is stopped) if it does not."""
        if not self.ready.wait(self.owner.start_timeout) or not self.said_ready:
            self.abandon()
            status = self.process.poll()
            raise RuntimeError(
                f"the {self.owner.service} process did not start (exit status {status})"
            )
        self.owner.starts += 1
        return self

    def abandon(self) -> None:
        """Stop it (a start that failed as a whole)."""
        if self.process.poll() is None:
            _stop(self.process, 0.0)
        else:
            _close_pipes(self.process)
        self.reader.join(5)


class ListenerProcesses:
    """The parent's handle on the ``count`` children serving ``listener``.

    ``start()`` returns once every child serves; ``close(grace)`` stops them and closes
    the socket. ``settings``: ``service`` ("lmtp", "smtp", "submission", "submissions"),
    ``data_dir`` and what that service's child needs (see `_build`).
    """

    def __init__(
        self,
        listener: socket.socket,
        settings: ChildSettings,
        *,
        count: int = 1,
        on_queued: Callable[[str], object] | None = None,
        on_exit: Callable[[], object] | None = None,
        start_timeout: float = 60.0,
        restart_delay: float = 1.0,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        self.settings = dict(settings)
        self.service = str(settings["service"])
        self.count = count
        self.on_queued = on_queued
        self.on_exit = on_exit
        self.start_timeout = start_timeout
        self.restart_delay = restart_delay
        self.grace = float(settings.get("grace", 10.0))
        self.starts = 0
        self._children: list[_Child | None] = [None] * count
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._watchers: list[threading.Thread] = []

    @property
    def pids(self) -> list[int]:
        """The running children's process ids."""
        return [c.process.pid for c in self._children if c is not None]

    def _settings_line(self) -> str:
        """The child's settings: one line of JSON, the first on its stdin (a command
        line would show them in ``ps`` and limits one argument to 128 KiB)."""
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        settings = {**self.settings, "fd": self.listener.fileno(), "log_level": str(level)}
        for key in ("max_connections", "max_per_ip"):
            if key in settings:
                settings[key] = max(1, math.ceil(int(settings[key]) / self.count))
        return json.dumps(settings) + "\n"

    def _spawn(self) -> _Child:
        """Start a child and wait until it serves."""
        return self._launch().wait()

    def _launch(self) -> _Child:
        """Start a child; its `_Child.wait` returns once it said "ready"."""
        process = subprocess.Popen(
            [sys.executable, "-m", "mailproto_adapters.listener_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(self.listener.fileno(),),
            env={**os.environ, "PYTHONPATH": _import_path()},
        )
        assert process.stdin is not None
        try:
            process.stdin.write(self._settings_line())
            process.stdin.flush()
        except OSError:
            pass  # it died at once: its start fails below, with its status
        child = _Child(self, process)
        child.reader.start()
        return child

    def _read(self, stdout: Any, ready: threading.Event, said_ready: list[bool]) -> None:
        """A child's stdout: "ready" once, then "queued <id>" per queued message. Its
        end also sets ``ready``: a child that died starting is not waited for."""
        try:
            for line in stdout:
                if line.startswith(_QUEUED):
                    if self.on_queued is not None:
                        try:
                            self.on_queued(line[len(_QUEUED) :].strip())
                        except Exception:
                            log.exception("the on_queued hook failed")
                elif line.strip() == _READY:
                    said_ready.append(True)
                    ready.set()
        except (OSError, ValueError):
            pass
        finally:
            ready.set()

    def start(self) -> ListenerProcesses:
        """Start every child at once; returns when all serve."""
        launched = [self._launch() for _ in range(self.count)]
        try:
            for slot, child in enumerate(launched):
                self._children[slot] = child.wait()
        except BaseException:
            for child in launched:
                child.abandon()
            self.close(0.0)
            raise
        for slot in range(self.count):
            watcher = threading.Thread(
                target=self._watch, args=(slot,), name=f"{self.service}-watch", daemon=True
            )
            self._watchers.append(watcher)
            watcher.start()
        return self

    def _watch(self, slot: int) -> None:
        """Start the child in ``slot`` again whenever it exits while we are not closing;
        one that keeps dying young is started less and less often (up to once a minute),
        as Postfix throttles a service that fails."""
        delay = self.restart_delay
        while not self._closing.is_set():
            child = self._children[slot]
            if child is None:
                return
            born = time.monotonic()
            status = child.process.wait()
            young = time.monotonic() - born < 10
            if not young:
                delay = self.restart_delay
            child.reader.join(5)  # every "queued" line it wrote has been handed on
            if self._closing.is_set():
                return
            _close_pipes(child.process)
            log.error("the %s process exited (status %s); starting it again", self.service, status)
            if self.on_exit is not None:
                try:
                    self.on_exit()
                except Exception:
                    log.exception("the on_exit hook failed")
            while not self._closing.wait(delay):
                try:
                    with self._lock:
                        if self._closing.is_set():
                            return
                        self._children[slot] = self._spawn()
                    break
                except (OSError, RuntimeError) as exc:
                    log.error("cannot start the %s process: %s", self.service, exc)
                    delay = min(delay * 2, _MAX_RESTART_DELAY)
            if young:  # the next one waits longer
                delay = min(delay * 2, _MAX_RESTART_DELAY)

    def close(self, grace: float | None = None) -> None:
        """Stop the children (their sessions get ``grace`` seconds) and close the socket."""
        self._closing.set()
        with self._lock:
            children, self._children = self._children, [None] * self.count
        wait = self.grace if grace is None else grace
        stoppers = [threading.Thread(target=_stop, args=(c.process, wait)) for c in children if c]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        for child in children:
            if child is not None:
                child.reader.join(5)
        for watcher in self._watchers:
            watcher.join(10)
        self.listener.close()


def _stop(process: subprocess.Popen[str], grace: float) -> None:
    """End of file on its stdin, then ``grace`` seconds (and some) to finish, then kill."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(grace + 5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _close_pipes(process)


def _close_pipes(process: subprocess.Popen[str]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _import_path() -> str:
    """PYTHONPATH for the child: where this package was imported from comes first."""
    here = str(Path(__file__).resolve().parents[1])
    rest = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


# --- the child ----------------------------------------------------------------------------


def _build(settings: ChildSettings, say: Callable[[str], None]) -> tuple[Any, ServeConfig]:
    """The session factory and the serving configuration of the child's service."""
    service = str(settings["service"])
    data_dir = str(settings["data_dir"])
    hostname = str(settings.get("hostname", "localhost"))
    max_size = int(settings.get("max_message_size", 50 * 1024 * 1024))
    tls = None
    cert, key = settings.get("tls_cert"), settings.get("tls_key")
    if cert and key:
        from .tls_setup import server_context

        tls = server_context(cert, key)
    serve = ServeConfig(
        max_connections=int(settings.get("max_connections", 512)),
        max_per_ip=int(settings.get("max_per_ip", 32)),
        busy=_BUSY[service],
        grace=float(settings.get("grace", 10.0)),
        name=service,
        tls=tls if service == "submissions" else None,
    )
    if service == "lmtp":
        from .mda.service import MDA

        return MDA(data_dir, hostname=hostname, max_message_size=max_size).lmtp_session, serve
    if service not in MTA_SERVICES:
        raise ValueError(f"no child process for the {service} service")
    if service == "submissions" and tls is None:
        raise ValueError("submissions needs tls_cert and tls_key")
    from .mta.service import MTA

    mta = MTA(
        data_dir,
        hostname=hostname,
        local_domains=tuple(settings.get("local_domains", ("localhost",))),
        aliases={k: tuple(v) for k, v in dict(settings.get("aliases", {})).items()},
        tls_context=tls,
        allow_plaintext_auth=bool(settings.get("allow_plaintext", False)),
        postmaster=settings.get("postmaster"),
        max_message_size=max_size,
        max_recipients=int(settings.get("max_recipients", 100)),
        on_queued=lambda entry: say(_QUEUED + entry.id),
    )
    factory = {
        "smtp": mta.inbound_session,
        "submission": mta.submission_session,
        "submissions": mta.submissions_session,
    }[service]
    return factory, serve


def main(argv: Sequence[str] | None = None) -> int:
    """The child: its settings from the first line of stdin, then serve the inherited
    socket until stdin ends or SIGTERM."""
    argparse.ArgumentParser(
        prog="python -m mailproto_adapters.listener_process",
        description="A listener child of mailproto serve (settings: JSON on stdin).",
    ).parse_args(argv)
    settings = json.loads(sys.stdin.readline())
    level = str(settings.get("log_level", "WARNING")).upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format=f"%(asctime)s %(levelname)s %(name)s[{settings['service']} process]: %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nice = int(settings.get("nice", 0))
    if nice > 0:  # delivery (LMTP) yields to accepting mail: `_priority`
        with contextlib.suppress(OSError):
            os.nice(nice)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)

    from . import _serve_events
    from ._serve_blocking import BlockingServer

    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    profile_dir = os.environ.get("MAILPROTO_PROFILE_DIR")
    if profile_dir:
        from ._profiling import profile_threads

        merged = profile_threads(os.environ.get("MAILPROTO_PROFILE_CLOCK", "wall"))
        where = os.path.join(profile_dir, f"{settings['service']}-{os.getpid()}.prof")

        def dump() -> None:
            stats = merged()
            if stats is not None:
                stats.dump_stats(where)

        atexit.register(dump)
    factory, config = _build(settings, say)
    listener = socket.socket(fileno=int(settings["fd"]))
    config = attrs.evolve(config, port=listener.getsockname()[1])
    # SMTP sessions all in one thread around epoll (`_serve_events`); the MDA's LMTP
    # child serves the delivery runner's few connections in threads.
    events = settings["service"] in MTA_SERVICES and _serve_events.available()
    server = (_serve_events.EventServer if events else BlockingServer)(
        factory, config, listener=listener
    ).start()
    try:
        say(_READY)
        while sys.stdin.read(65536):
            pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
