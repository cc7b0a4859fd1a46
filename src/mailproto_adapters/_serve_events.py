"""``EventServer``: every session of a listener in one thread, around one epoll set (Linux).

`BlockingServer` gives each session a thread. Under load that costs what a mail server
cannot afford: the sessions of a process take turns at the GIL, and each turn is a
futex hand-off and a context switch, several per SMTP command. Here one thread runs the
session flows: it waits in ``epoll`` for the listener, the connections and a wake-up
pipe, and resumes a flow when its socket is ready. Only the work that blocks leaves the
loop: a `blocking_call` hook (fsync, scrypt, SQLite) runs in a small pool of worker
threads and its result resumes the flow; a `pause` is a timer. Other `Call` hooks run
in the loop.

Sockets are non-blocking; a `Send` is tried at once and waits for ``EPOLLOUT`` only if
the kernel took part of it. TLS (implicit, or STARTTLS) is an ``SSLSocket`` in
non-blocking mode. Timeouts are deadlines checked when the earliest of them is due.

The listener is registered with ``EPOLLEXCLUSIVE``: of several processes serving one
socket (the SMTP children), a connection wakes one. The MTA's SMTP children use this
server where ``select.epoll`` exists; elsewhere they keep `BlockingServer`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import queue
import select
import socket
import ssl
import threading
import time
from typing import Any

from ._calls import offload, pause
from ._effects import (
    Call,
    Close,
    Info,
    Op,
    Receive,
    Send,
    StartTLS,
    TLSInfo,
    TransportInfo,
    peer_address,
    tls_info,
)
from ._serve_blocking import listen_socket
from ._serving import Admission, ServeConfig, ServerBase, SessionFactory, log_session
from ._transport import TLSFailed, TransportError, TransportTimeout, tls_reason

__all__ = ["EventServer", "available"]

logger = logging.getLogger("mailproto.server")

POOL_THREADS = 16  # worker threads for blocking_call hooks, started as needed
_ACCEPT_BATCH = 32  # connections accepted per wake-up of the listener
_ACCEPT_PAUSE = 0.05  # seconds without accepting after accept() failed (EMFILE)
_MAX_WAIT = 3600.0  # epoll's timeout has a limit; a longer deadline is waited for in steps
_CUT_WAIT = 5.0  # after the grace, seconds a session inside a hook gets to end

_IN = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1
_OUT = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 4

# What a session waits for.
_RUNNING, _READ, _WRITE, _HANDSHAKE, _CALL, _SLEEP = range(6)

_Result = tuple["_Session", Any, BaseException | None]


def available() -> bool:
    """True where this server can run (``select.epoll`` with ``EPOLLEXCLUSIVE``)."""
    return hasattr(select, "epoll") and hasattr(select, "EPOLLEXCLUSIVE")


class _Session:
    """One connection and its flow, between two turns of the loop."""

    __slots__ = (
        "closed",
        "deadline",
        "fd",
        "flow",
        "ip",
        "local",
        "mask",
        "max_bytes",
        "out",
        "peer",
        "sock",
        "started",
        "timeout",
        "tls",
        "tls_info",
        "waiting",
    )

    def __init__(self, sock: socket.socket, ip: str, peer: tuple[str, int] | None) -> None:
        self.sock: socket.socket = sock
        self.fd = sock.fileno()
        self.closed = False  # by a Close effect (or at the end)
        self.ip = ip
        self.peer = peer
        self.local: tuple[str, int] | None = None
        with contextlib.suppress(OSError):
            self.local = peer_address(sock.getsockname())
        self.flow: Op[None] | None = None
        self.waiting = _RUNNING
        self.mask = 0  # the events it is registered for in the epoll set
        self.deadline = math.inf
        self.timeout: float | None = None
        self.max_bytes = 65536
        self.out: memoryview | None = None  # what a Send has left to write
        self.tls: ssl.SSLSocket | None = None
        self.tls_info: TLSInfo | None = None  # once the handshake is done
        self.started = time.monotonic()

    def info(self) -> TransportInfo:
        return TransportInfo(peer=self.peer, local=self.local, tls=self.tls_info)


class EventServer(ServerBase):
    """A running server; ``close()`` stops it, giving sessions ``grace`` seconds.

    The same interface as `BlockingServer`: ``listener`` is a socket already listening
    (handed over by another process), closed by ``close()``.
    """

    def __init__(
        self, session: SessionFactory, config: ServeConfig, listener: socket.socket | None = None
    ) -> None:
        self.session = session
        self.config = config
        self._listener = listener or listen_socket(config.host, config.port)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._admission = Admission(config)
        self._epoll = select.epoll()
        self._listen_fd = self._listener.fileno()
        self._listening = False
        self._accept_again = 0.0  # monotonic time to listen again after a failed accept
        self._listen()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._epoll.register(self._wake_read, _IN)
        self._woken = False  # a byte is in the pipe already
        self._by_fd: dict[int, _Session] = {}  # sessions whose socket is open
        self._sessions: set[_Session] = set()  # every session not finished
        self._done: collections.deque[_Result] = collections.deque()
        self._jobs: queue.SimpleQueue[tuple[_Session, Call] | None] = queue.SimpleQueue()
        self._pool: list[threading.Thread] = []
        self._idle_workers = 0
        self._pool_lock = threading.Lock()
        self._next_deadline = math.inf
        self._closing = False
        self._cut_at = math.inf
        self._grace: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"{config.name}-events")
        self._thread.daemon = True

    def start(self) -> EventServer:
        self._thread.start()
        return self

    def close(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions finish for ``grace`` seconds, then cut them."""
        if not self._closing:
            self._grace = self.config.grace if grace is None else grace
            self._closing = True
            self._wake()
        if self._thread.ident is not None:
            self._thread.join((self._grace or 0.0) + _CUT_WAIT + 5.0)
        if self._thread.is_alive():  # an inline hook that never returns: leave it be
            logger.error("%s: the event loop did not stop", self.config.name)
            return
        self._epoll.close()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._pool_lock:
            pool = list(self._pool)
        for _ in pool:
            self._jobs.put(None)
        deadline = time.monotonic() + 5.0
        for worker in pool:
            worker.join(max(deadline - time.monotonic(), 0.0))
        # The pipe goes only once no worker can write to it: its number could be reused.
        if not any(w.is_alive() for w in pool):
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_read = self._wake_write = -1

    # -- the loop --------------------------------------------------------------------------

    def _wake(self) -> None:
        """Interrupt the loop's wait (at most one byte in the pipe at a time)."""
        if not self._woken and self._wake_write >= 0:
            self._woken = True
            with contextlib.suppress(OSError):  # full or closed: a wake-up is pending
                os.write(self._wake_write, b"x")

    def _listen(self) -> None:
        self._epoll.register(self._listen_fd, _IN | select.EPOLLEXCLUSIVE)
        self._listening = True

    def _run(self) -> None:
        try:
            while self._turn():
                pass
        except BaseException:  # a bug: say so, and let every client go rather than hang
            logger.exception("%s: the event loop failed", self.config.name)
            for s in list(self._sessions):
                with contextlib.suppress(Exception):
                    self._finish(s, TransportError("the server's event loop failed"))
            raise

    def _turn(self) -> bool:
        """One wait in epoll and what it brought; False once the server is stopped."""
        now = time.monotonic()
        if self._closing and not self._shutting_down(now):
            return False
        until = self._next_deadline
        if self._cut_at < math.inf:
            until = min(until, self._cut_at if now < self._cut_at else self._cut_at + _CUT_WAIT)
        if not self._listening and not self._closing:
            until = min(until, self._accept_again)
        wait = min(max(until - now, 0.0), _MAX_WAIT)
        for fd, _ in self._epoll.poll(wait):
            if fd == self._listen_fd:
                self._accept()
            elif fd == self._wake_read:
                # The byte first, then the flag: a _wake() in between writes nothing,
                # and what it announced is in _done, read below.
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 4096)
                self._woken = False
            else:
                s = self._by_fd.get(fd)
                if s is not None:
                    self._ready(s)
        for _ in range(len(self._done)):  # those there now: a busy pool cannot starve epoll
            s, value, error = self._done.popleft()
            if s.flow is not None:
                self._resume(s, value, error)
        now = time.monotonic()
        if now >= self._next_deadline:
            self._expire(now)
        if not self._listening and not self._closing and now >= self._accept_again:
            self._listen()
        return True

    def _shutting_down(self, now: float) -> bool:
        """At close(): stop accepting, then cut what is left after the grace; False once
        every session is over (or the cut ones had `_CUT_WAIT` more seconds to end)."""
        if self._cut_at == math.inf:  # the first turn since close(): let the port go
            if self._listening:
                self._epoll.unregister(self._listen_fd)
                self._listening = False
            self._listener.close()
            self._listen_fd = -1  # its number may come back as a connection's
            self._cut_at = now + (self._grace or 0.0)
        if not self._sessions:
            return False
        if now >= self._cut_at + _CUT_WAIT:
            for s in list(self._sessions):  # still in a hook: the result is dropped
                self._finish(s, TransportError("the server closed"))
            return False
        if now >= self._cut_at:
            for s in list(self._sessions):
                if s.waiting in (_READ, _WRITE, _HANDSHAKE, _SLEEP):
                    self._resume(s, None, TransportError("the server closed the connection"))
        return bool(self._sessions)

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # none left, or another process took it
            except OSError as exc:  # EMFILE and friends: wait for sessions to end
                logger.warning("%s: accept failed: %s", self.config.name, exc)
                self._epoll.unregister(self._listen_fd)
                self._listening = False
                self._accept_again = time.monotonic() + _ACCEPT_PAUSE
                return
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ip = str(address[0]) if isinstance(address, tuple) else ""
            if not self._admission.admit(ip):
                with contextlib.suppress(OSError):
                    sock.send(self.config.busy)
                sock.close()
                continue
            s = _Session(sock, ip, peer_address(address))
            self._by_fd[s.fd] = s
            self._sessions.add(s)
            s.flow = self._flow()
            self._resume(s, None, None)

    def _flow(self) -> Op[None]:
        """The session's flow, after the implicit TLS handshake if the listener has one."""
        if self.config.tls is not None:
            yield StartTLS(self.config.tls, server_side=True, timeout=self.config.tls_timeout)
        info: TransportInfo = yield Info()
        yield from self.session(info)

    # -- one session -----------------------------------------------------------------------

    def _resume(self, s: _Session, value: Any, error: BaseException | None) -> None:
        """Run the flow until it waits (or ends)."""
        flow = s.flow
        if flow is None:  # finished meanwhile
            return
        s.waiting = _RUNNING
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration:
                self._finish(s, None)
                return
            except BaseException as exc:  # the flow's own error: its session ends
                self._finish(s, exc)
                return
            value = error = None
            try:
                if isinstance(effect, Receive):
                    s.max_bytes = effect.max_bytes
                    self._check_open(s)
                    got: bytes | int = _IN
                    if s.tls is not None and s.tls.pending():
                        got = self._receive(s)
                    if isinstance(got, bytes):
                        value = got
                        continue
                    self._wait(s, _READ, effect.timeout, got)
                    return
                if isinstance(effect, Send):
                    self._check_open(s)
                    s.out = memoryview(effect.data)
                    wanted = self._send(s)
                    if not wanted:
                        continue
                    self._wait(s, _WRITE, effect.timeout, wanted)
                    return
                if isinstance(effect, Call):
                    if effect.hook is offload:
                        self._offload(s, effect)
                        return
                    if effect.hook is pause:
                        self._wait(s, _SLEEP, float(effect.args[0]))
                        return
                    value = effect.hook(*effect.args)
                elif isinstance(effect, Info):
                    value = s.info()
                elif isinstance(effect, StartTLS):
                    self._check_open(s)
                    s.tls = effect.context.wrap_socket(
                        s.sock,
                        server_side=effect.server_side,
                        server_hostname=None if effect.server_side else effect.hostname,
                        do_handshake_on_connect=False,
                    )
                    s.sock = s.tls
                    shaken = self._handshake(s)
                    if isinstance(shaken, int):
                        timeout = effect.timeout
                        if timeout is None:  # a handshake that never ends holds a place
                            timeout = self.config.tls_timeout
                        self._wait(s, _HANDSHAKE, timeout, shaken)
                        return
                    value = shaken
                elif isinstance(effect, Close):
                    self._close_socket(s)
                else:
                    raise TypeError(f"not an effect: {effect!r}")
            except Exception as exc:  # handed to the flow, which decides
                error = exc

    @staticmethod
    def _check_open(s: _Session) -> None:
        if s.closed:
            raise TransportError("the connection is closed")

    def _wait(self, s: _Session, what: int, timeout: float | None, mask: int = 0) -> None:
        """Park the session: waiting for ``what``, for the socket events ``mask``."""
        s.waiting = what
        s.timeout = timeout
        s.deadline = math.inf if timeout is None else time.monotonic() + timeout
        if s.deadline < self._next_deadline:
            self._next_deadline = s.deadline
        self._register(s, mask)

    def _register(self, s: _Session, mask: int) -> None:
        if mask == s.mask:
            return
        if s.mask == 0:
            self._epoll.register(s.fd, mask)
        elif mask == 0:
            self._epoll.unregister(s.fd)
        else:
            self._epoll.modify(s.fd, mask)
        s.mask = mask

    def _ready(self, s: _Session) -> None:
        """Its socket is readable or writable: go on with what it waits for."""
        value: bytes | TLSInfo | None = None
        try:
            if s.waiting == _READ:
                got = self._receive(s)
                wanted = got if isinstance(got, int) else 0
                value = got if isinstance(got, bytes) else None
            elif s.waiting == _WRITE:
                wanted = self._send(s)
            elif s.waiting == _HANDSHAKE:
                shaken = self._handshake(s)
                wanted = shaken if isinstance(shaken, int) else 0
                value = shaken if isinstance(shaken, TLSInfo) else None
            else:  # pragma: no cover - registered only while waiting for the socket
                self._register(s, 0)
                return
            if wanted:  # not yet
                self._register(s, wanted)
                return
        except Exception as exc:
            self._resume(s, None, exc)
            return
        self._resume(s, value, None)

    def _receive(self, s: _Session) -> bytes | int:
        """What the peer sent (b"" at its end), or the socket events to wait for."""
        try:
            return s.sock.recv(s.max_bytes)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return _IN
        except ssl.SSLWantWriteError:  # TLS has to write first (a key update)
            return _OUT
        except ssl.SSLError as exc:
            raise TransportError(f"TLS error: {tls_reason(exc)}") from exc
        except OSError as exc:
            raise TransportError(f"connection failed: {exc}") from exc

    def _send(self, s: _Session) -> int:
        """Write what is left of a Send: 0 once the kernel (or TLS) took all of it, else
        the socket events to wait for."""
        out = s.out
        assert out is not None
        try:
            while out:
                out = out[s.sock.send(out) :]
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
            s.out = out
            return _OUT
        except ssl.SSLWantReadError:  # TLS has to read first
            s.out = out
            return _IN
        except OSError as exc:
            s.out = None
            raise TransportError(f"connection failed: {exc}") from exc
        s.out = None
        return 0

    def _handshake(self, s: _Session) -> TLSInfo | int:
        """Go on with the TLS handshake: its `TLSInfo` once done, else the socket events
        to wait for."""
        tls = s.tls
        assert tls is not None
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            return _IN
        except ssl.SSLWantWriteError:
            return _OUT
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise TLSFailed(tls_reason(exc)) from exc
        except OSError as exc:
            raise TLSFailed(f"connection failed during the handshake: {exc}") from exc
        s.tls_info = tls_info(tls)
        return s.tls_info

    def _offload(self, s: _Session, effect: Call) -> None:
        """Hand a blocking_call hook to a worker thread; its result resumes the flow."""
        self._wait(s, _CALL, None)
        with self._pool_lock:
            if self._idle_workers:
                self._idle_workers -= 1
            elif len(self._pool) < POOL_THREADS:
                worker = threading.Thread(
                    target=self._work, name=f"{self.config.name}-worker", daemon=True
                )
                worker.start()
                self._pool.append(worker)
        self._jobs.put((s, effect))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            s, effect = job
            result: _Result
            try:
                result = (s, effect.hook(*effect.args), None)
            except BaseException as exc:  # the flow's business, whatever it is
                result = (s, None, exc)
            with self._pool_lock:
                self._idle_workers += 1
            self._done.append(result)
            self._wake()

    def _expire(self, now: float) -> None:
        """Throw TransportTimeout into the flows whose wait is over (a sleep just ends),
        and note the next deadline."""
        for s in [s for s in self._sessions if s.deadline <= now]:
            s.deadline = math.inf
            if s.waiting == _SLEEP:
                self._resume(s, None, None)
            elif s.waiting == _HANDSHAKE:
                self._resume(s, None, TransportTimeout(f"TLS handshake not done in {s.timeout} s"))
            elif s.waiting == _WRITE:
                self._resume(s, None, TransportTimeout(f"the peer took no data in {s.timeout} s"))
            elif s.waiting == _READ:
                self._resume(s, None, TransportTimeout(f"no data from the peer in {s.timeout} s"))
        self._next_deadline = min((s.deadline for s in self._sessions), default=math.inf)

    def _close_socket(self, s: _Session) -> None:
        """Close the connection; the session may go on (with errors for any I/O)."""
        if s.closed:
            return
        s.closed = True
        self._register(s, 0)
        if self._by_fd.get(s.fd) is s:  # the number is free for the next connection
            del self._by_fd[s.fd]
        with contextlib.suppress(OSError):
            s.sock.shutdown(socket.SHUT_RDWR)
        s.sock.close()

    def _finish(self, s: _Session, error: BaseException | None) -> None:
        """The flow ended (or is cut): close the connection, count it out, log it."""
        flow, s.flow = s.flow, None
        if flow is None:
            return
        self._sessions.discard(s)
        self._close_socket(s)
        with contextlib.suppress(Exception):
            flow.close()
        self._admission.release(s.ip)
        log_session(self.config, s.info(), s.started, error)
