"""``serve()`` for blocking sockets: an accept thread and a thread per running session.

Session threads are kept for the next connection once their session ends (for
``IDLE_WORKER_SECONDS``): starting a thread costs a system call or three and, worse, the
accept thread waits until the new thread has run, which under load can be a GIL switch
interval while new connections wait in the backlog.

On Linux the accept thread waits in an epoll set with EPOLLEXCLUSIVE, woken by close()
through a pipe: when several processes accept on one socket (the SMTP children), a
connection wakes one of them rather than all, each of which would take its GIL from its
sessions for nothing. Elsewhere it polls the listener in 0.2 s steps.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import threading
import time

from ._driver import drive
from ._effects import TransportInfo
from ._serving import Admission, ServeConfig, ServerBase, SessionFactory, log_session
from ._socket import SocketTransport

__all__ = ["BlockingServer", "listen_socket"]

IDLE_WORKER_SECONDS = 30.0  # an idle session thread waits this long for a connection

_Job = tuple[socket.socket, tuple[str, int]]


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128, reuse_port=False)


class BlockingServer(ServerBase):
    """A running server; ``close()`` stops it, giving sessions ``grace`` seconds.

    ``listener``: a socket already listening (handed over by another process), used
    instead of one bound to ``config.host`` and ``config.port``; it is closed by ``close()``.
    """

    def __init__(
        self, session: SessionFactory, config: ServeConfig, listener: socket.socket | None = None
    ) -> None:
        self.session = session
        self.config = config
        self._listener = listener or listen_socket(config.host, config.port)
        self.port: int = self._listener.getsockname()[1]
        self._admission = Admission(config)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, SocketTransport | None] = {}
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = 0  # session threads waiting on _jobs (under _lock)
        self._workers = 0  # session threads alive (under _lock)
        self._handed = 0  # connections accepted, not yet in _sessions (under _lock)
        self._wake: tuple[int, ...] = os.pipe()  # close() wakes the accept thread
        self._wake_read = self._wake[0]
        os.set_blocking(self._wake[1], False)
        self._acceptor = threading.Thread(target=self._accept, name=f"{config.name}-accept")
        self._acceptor.daemon = True

    def start(self) -> BlockingServer:
        self._acceptor.start()
        return self

    def _waiter(self) -> select.epoll | None:
        """An epoll set of the listener (exclusive wake-up) and the wake-up pipe; None
        where the system has no EPOLLEXCLUSIVE (then accept() times out every 0.2 s)."""
        exclusive = getattr(select, "EPOLLEXCLUSIVE", 0)
        if not exclusive or not hasattr(select, "epoll"):
            return None
        waiter = select.epoll()
        try:
            waiter.register(self._listener.fileno(), select.EPOLLIN | exclusive)
            waiter.register(self._wake_read, select.EPOLLIN)
        except OSError:  # a kernel older than 4.5
            waiter.close()
            return None
        return waiter

    def _accept(self) -> None:
        waiter = self._waiter()
        if waiter is None:
            self._listener.settimeout(0.2)  # to notice close() without the pipe
        else:
            self._listener.setblocking(False)
        try:
            self._accept_loop(waiter)
        finally:
            if waiter is not None:
                waiter.close()

    def _accept_loop(self, waiter: select.epoll | None) -> None:
        listener = self._listener.fileno()
        while not self._closing.is_set():
            if waiter is not None and not any(fd == listener for fd, _ in waiter.poll()):
                continue  # the wake-up pipe: close()
            try:
                sock, address = self._listener.accept()
            except (TimeoutError, BlockingIOError):  # none yet, or another process's
                continue
            except OSError:
                if self._closing.is_set():
                    return
                time.sleep(0.05)  # EMFILE and friends: back off instead of spinning
                continue
            sock.settimeout(None)
            if sock.family != socket.AF_UNIX:
                # Replies are whole writes already: Nagle would hold a second one (LMTP's
                # per-recipient replies) until the client's delayed ACK, 40 ms later.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._handed += 1  # close() waits for it as for a running session
                if self._idle:  # an idle thread takes it; put under the lock, see _work
                    self._idle -= 1
                    self._jobs.put((sock, address))
                    continue
                self._workers += 1
            threading.Thread(target=self._work, args=((sock, address),), daemon=True).start()

    def _work(self, job: _Job | None) -> None:
        """Serve connections until none comes for ``IDLE_WORKER_SECONDS`` (or close)."""
        try:
            while job is not None:
                self._run(*job)
                with self._lock:
                    self._idle += 1
                try:
                    job = self._jobs.get(timeout=IDLE_WORKER_SECONDS)
                except queue.Empty:
                    with self._lock:  # a job put meanwhile counted on us: take it
                        try:
                            job = self._jobs.get_nowait()
                        except queue.Empty:
                            self._idle -= 1
                            return
        finally:
            with self._lock:
                self._workers -= 1

    def _run(self, sock: socket.socket, address: tuple[str, int]) -> None:
        me = threading.current_thread()
        with self._lock:
            self._sessions[me] = None
            self._handed -= 1
        ip = str(address[0])
        try:
            if not self._admission.admit(ip):
                with contextlib.suppress(OSError):
                    sock.sendall(self.config.busy)
                sock.close()
                return
            try:
                self._session(sock)
            finally:
                self._admission.release(ip)
        finally:
            with self._lock:
                self._sessions.pop(me, None)

    def _session(self, sock: socket.socket) -> None:
        transport = SocketTransport(sock)
        with self._lock:
            self._sessions[threading.current_thread()] = transport
        started = time.monotonic()
        error: BaseException | None = None
        info = TransportInfo()
        try:
            info = transport.info()
            if self.config.tls is not None:
                transport.start_tls(
                    self.config.tls,
                    server_side=True,
                    hostname=None,
                    timeout=self.config.tls_timeout,
                )
            drive(self.session(transport.info()), transport)
        except Exception as exc:
            error = exc
        finally:
            with contextlib.suppress(OSError):
                info = transport.info()
            transport.close()
            log_session(self.config, info, started, error)

    def close(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions finish for ``grace`` seconds, then cut them."""
        self._closing.set()
        wake, self._wake = self._wake, ()  # closed once, however often close() is called
        if wake:
            with contextlib.suppress(OSError):  # full: a wake-up is pending already
                os.write(wake[1], b"x")
        if self._acceptor.ident is not None:  # started
            self._acceptor.join(5)
        self._listener.close()
        for fd in wake:
            os.close(fd)
        with self._lock:  # no job comes any more: each session thread ends at its None
            for _ in range(self._workers):
                self._jobs.put(None)
        deadline = time.monotonic() + (self.config.grace if grace is None else grace)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._sessions and not self._handed:
                    return
            time.sleep(0.02)
        with self._lock:
            left = list(self._sessions.items())
        for thread, transport in left:
            if transport is not None:
                transport.close()
            thread.join(5)
