"""The MDA's LMTP listener in a process of its own: local delivery on a second core.

A Python process runs one thread of Python at a time, so under load the MTA's SMTP
sessions and local delivery (LMTP, Maildir files, SQLite) would share one core. With
`LMTPProcess` the parent binds the LMTP socket and hands it to a child
(``python -m mailproto_adapters.mda.lmtp_process``) that serves it with an `MDA` of its
own over the same data directory. The store is made for several processes (a ``flock``
per folder, SQLite in WAL mode), and the parent's IMAP and POP3 sessions notice new mail
as they notice any other writer's (the folder's HIGHESTMODSEQ), as with Dovecot's LMTP
next to its IMAP.

The parent keeps the listening socket: connections wait in its backlog while a child
starts, so the runner never sees the listener down. The child stops when its stdin
reaches end of file (`close`, or the parent died) or on SIGTERM, letting its sessions
finish; it ignores SIGINT (a Ctrl-C in the terminal reaches the parent, which stops it in
order). A child that exits on its own is started again.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .._serving import ServeConfig

__all__ = ["LMTPProcess", "main"]

log = logging.getLogger("mailproto.lmtp_process")

_BUSY = b"421 4.3.2 Too many connections, try later\r\n"
_READY = "ready"


class LMTPProcess:
    """The parent's handle on the child serving LMTP on ``listener``.

    ``start()`` returns once the child serves; ``close(grace)`` stops it and closes the
    socket. ``pid`` is the current child's (it changes when one is started again).
    """

    def __init__(
        self,
        listener: socket.socket,
        data_dir: str | os.PathLike[str],
        *,
        hostname: str = "localhost",
        max_message_size: int = 50 * 1024 * 1024,
        max_connections: int = 512,
        max_per_ip: int = 32,
        grace: float = 10.0,
        start_timeout: float = 60.0,
        restart_delay: float = 1.0,
    ) -> None:
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        self.data_dir = Path(data_dir)
        self.hostname = hostname
        self.max_message_size = max_message_size
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.grace = grace
        self.start_timeout = start_timeout
        self.restart_delay = restart_delay
        self.config = ServeConfig(name="lmtp", port=self.port, grace=grace)
        self.starts = 0
        self._process: subprocess.Popen[str] | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def _command(self) -> list[str]:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        return [
            sys.executable, "-m", "mailproto_adapters.mda.lmtp_process",
            "--fd", str(self.listener.fileno()),
            "--data", str(self.data_dir),
            "--hostname", self.hostname,
            "--max-message-size", str(self.max_message_size),
            "--max-connections", str(self.max_connections),
            "--max-per-ip", str(self.max_per_ip),
            "--grace", repr(self.grace),
            "--log-level", str(level),
        ]  # fmt: skip

    def _spawn(self) -> subprocess.Popen[str]:
        """Start a child and wait for its "ready" line (its server is accepting)."""
        process = subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(self.listener.fileno(),),
            env={**os.environ, "PYTHONPATH": _import_path()},
        )
        stdout = process.stdout
        assert stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        if not ready or ready[0].strip() != _READY:
            _stop(process, 0.0)
            raise RuntimeError(f"the LMTP process did not start (exit status {process.poll()})")
        self.starts += 1
        return process

    def start(self) -> LMTPProcess:
        self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="lmtp-process", daemon=True)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        """Start the child again whenever it exits while we are not closing."""
        while not self._closing.is_set():
            process = self._process
            if process is None:
                return
            status = process.wait()
            if self._closing.is_set():
                return
            _close_pipes(process)
            log.error("the LMTP process exited (status %s); starting it again", status)
            while not self._closing.wait(self.restart_delay):
                try:
                    with self._lock:
                        if self._closing.is_set():
                            return
                        self._process = self._spawn()
                    break
                except (OSError, RuntimeError) as exc:
                    log.error("cannot start the LMTP process: %s", exc)

    def close(self, grace: float | None = None) -> None:
        """Stop the child (its sessions get ``grace`` seconds) and close the socket."""
        self._closing.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _stop(process, self.grace if grace is None else grace)
        if self._watcher is not None:
            self._watcher.join(10)
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
    here = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


# --- the child ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The child: serve LMTP on the inherited socket until stdin ends or SIGTERM."""
    parser = argparse.ArgumentParser(prog="mailproto-lmtp")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--hostname", default="localhost")
    parser.add_argument("--max-message-size", type=int, default=50 * 1024 * 1024)
    parser.add_argument("--max-connections", type=int, default=512)
    parser.add_argument("--max-per-ip", type=int, default=32)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s[lmtp process]: %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)

    from .._serve_blocking import BlockingServer
    from .service import MDA

    listener = socket.socket(fileno=args.fd)
    mda = MDA(args.data, hostname=args.hostname, max_message_size=args.max_message_size)
    config = ServeConfig(
        port=listener.getsockname()[1],
        max_connections=args.max_connections,
        max_per_ip=args.max_per_ip,
        busy=_BUSY,
        grace=args.grace,
        name="lmtp",
    )
    server = BlockingServer(mda.lmtp_session, config, listener=listener).start()
    try:
        print(_READY, flush=True)
        while sys.stdin.read(65536):
            pass
    finally:
        started = time.monotonic()
        server.close()
        log.debug("stopped in %.2f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
