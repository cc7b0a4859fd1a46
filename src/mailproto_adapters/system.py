"""The whole mail system in one process: the MDA's and the MTA's listeners and the runner.

`MailSystem` wires the components the way DESIGN.md section 1 draws them: the MTA's
SMTP listeners queue mail; the delivery runner hands local recipients to the MDA's LMTP
listener (the MTA -> MDA step is real LMTP over loopback, as between two machines) and
remote ones to other MTAs; POP3 and IMAP serve the store. It runs on the blocking
flavour (``start()``: one thread per session) or on anyio (``serve_anyio()``: one task
per session, blocking store work in worker threads); the delivery runner is threads in
both. `SystemConfig` says what listens where; `mailproto serve` builds it from the TOML
file (`config`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import attrs

from ._effects import Op, TransportInfo
from ._serve_async import AnyIOServer, AsyncioServer
from ._serve_blocking import BlockingServer, listen_socket
from ._serving import ServeConfig
from .listener_process import ListenerProcesses
from .mda.service import MDA
from .mta.local import LMTPTarget
from .mta.routing import Router
from .mta.runner import DeliveryRunner
from .mta.service import MTA
from .mua.webmail import IMAPEndpoint, SubmissionEndpoint, Webmail, WebmailConfig

__all__ = ["MDA_SERVICES", "SERVICES", "ListenerConfig", "MailSystem", "SystemConfig", "reachable"]

log = logging.getLogger("mailproto.system")

# service -> (implicit TLS, the reply sent to a connection over a limit)
SERVICES: dict[str, tuple[bool, bytes]] = {
    "lmtp": (False, b"421 4.3.2 Too many connections, try later\r\n"),
    "smtp": (False, b"421 4.7.0 Too many connections, try later\r\n"),
    "submission": (False, b"421 4.7.0 Too many connections, try later\r\n"),
    "submissions": (True, b"421 4.7.0 Too many connections, try later\r\n"),
    "pop3": (False, b"-ERR [SYS/TEMP] Too many connections, try later\r\n"),
    "pop3s": (True, b"-ERR [SYS/TEMP] Too many connections, try later\r\n"),
    "imap": (False, b"* BYE [UNAVAILABLE] Too many connections, try later\r\n"),
    "imaps": (True, b"* BYE [UNAVAILABLE] Too many connections, try later\r\n"),
}

# The MDA's services: opened first (LMTP must be up before the runner delivers) and
# closed last (the runner may still be handing mail over).
MDA_SERVICES = ("lmtp", "pop3", "pop3s", "imap", "imaps")


@attrs.frozen(kw_only=True)
class ListenerConfig:
    """One listening socket: which service, where (port 0 picks a free port)."""

    service: str = attrs.field(validator=attrs.validators.in_(SERVICES))
    host: str = "127.0.0.1"
    port: int = 0
    max_connections: int = 512
    max_per_ip: int = 32
    # For a listener only this process uses (the embedded default's LMTP): when its
    # port is taken, listen on a free port instead of failing.
    any_port_if_taken: bool = False


@attrs.frozen(kw_only=True)
class SystemConfig:
    """Everything `MailSystem` needs; `mailproto serve` builds it from the TOML file."""

    data_dir: Path
    hostname: str = "localhost"
    local_domains: tuple[str, ...] = ("localhost",)
    listeners: tuple[ListenerConfig, ...] = ()
    tls_context: ssl.SSLContext | None = None
    allow_plaintext: bool = False
    aliases: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    postmaster: str | None = None
    max_message_size: int = 50 * 1024 * 1024
    static_routes: Mapping[str, str] = attrs.field(factory=dict)
    smarthost: str | None = None
    smarthost_auth: tuple[str, str] | None = None
    resolver: Any = None
    relay_port: int = 25
    lifetime: float = 5 * 86400.0
    delay_warning: float = 4 * 3600.0
    min_backoff: float = 300.0
    max_backoff: float = 4000.0
    outbound_tls_context: ssl.SSLContext | None = None
    smarthost_tls: str = "may"
    max_recipients: int = 100
    workers: int = 20
    per_destination: int = 5
    local_workers: int = 5
    grace: float = 10.0
    # Webmail (host, port): an HTTP server, a client of the imap and submission listeners.
    webmail: tuple[str, int] | None = None
    # The MDA's LMTP listener (local delivery) served by a child process, and each
    # inbound SMTP listener by this many (0: by this process), so that they get cores of
    # their own (`listener_process`); the parent keeps the sockets. The SMTP children
    # build their TLS context (STARTTLS) from ``tls_files`` (certificate, key).
    lmtp_process: bool = False
    smtp_processes: int = 0
    tls_files: tuple[Path, Path] | None = None
    # Added to the nice value of the delivery runner's threads and of the LMTP child
    # (`_priority`): when the CPUs are busy, SMTP sessions come first (0: same priority).
    delivery_nice: int = attrs.field(
        default=10, validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(19))
    )


@contextlib.contextmanager
def _naming(listener: ListenerConfig) -> Iterator[None]:
    """Say which listener could not open its socket (``Address already in use``)."""
    try:
        yield
    except OSError as exc:
        where = f"[{listener.host}]" if ":" in listener.host else listener.host
        raise OSError(
            exc.errno,
            f"{listener.service} cannot listen on {where}:{listener.port}: {exc.strerror or exc}",
        ) from exc


def _close_together(
    closables: Sequence[BlockingServer | ListenerProcesses], grace: float | None
) -> None:
    """Close them at once (each waits for its sessions, or its children's)."""
    threads = [threading.Thread(target=c.close, args=(grace,)) for c in closables]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _any_port(listener: ListenerConfig, exc: OSError) -> ListenerConfig:
    """The listener again on a free port, when its own is taken and it may move;
    otherwise ``exc`` is raised."""
    if not (listener.any_port_if_taken and exc.errno == errno.EADDRINUSE):
        raise exc
    log.warning("%s: port %d is taken, using a free port", listener.service, listener.port)
    return attrs.evolve(listener, port=0)


def _listen_retrying(listener: ListenerConfig, patience: float = 10.0) -> socket.socket:
    """A listening socket for children to serve. After a crash of this process its
    children finish their sessions on their own, holding the old socket until they see
    the end of their stdin (a fraction of a second): a restart waits for the port rather
    than failing (only for a fixed port that may not move elsewhere)."""
    deadline = time.monotonic() + (0.0 if listener.any_port_if_taken else patience)
    while True:
        try:
            return listen_socket(listener.host, listener.port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio
        return False
    return True


async def _serve_in(
    tg: anyio.abc.TaskGroup, factory: Callable[[TransportInfo], Op[None]], config: ServeConfig
) -> AnyIOServer | AsyncioServer:
    """A listener on the running event loop: on asyncio our own `AsyncioServer` (its
    protocol buffers what arrives; anyio's streams pause and resume reading around every
    receive and cost twice the CPU per SMTP session), on trio an `AnyIOServer`."""
    if _on_asyncio():
        return await AsyncioServer.start(factory, config)
    server = AnyIOServer(factory, config)
    await tg.start(server.serve)
    return server


def reachable(host: str) -> str:
    """The address to connect to a listener bound to ``host`` (a wildcard: loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return "::1" if host == "::" else host


class MailSystem:
    """The running system: ``start()``, then ``ports``; ``close()`` stops everything.

    Or, in an anyio task group: ``ports = await tg.start(system.serve_anyio)``, and
    ``system.stop_anyio()`` (from the event loop) to shut down gracefully.
    """

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.mda = MDA(
            config.data_dir,
            tls_context=config.tls_context,
            allow_plaintext=config.allow_plaintext,
            hostname=config.hostname,
            max_message_size=config.max_message_size,
        )
        self.runner: DeliveryRunner | None = None
        self.mta = MTA(
            config.data_dir,
            mda=self.mda,
            hostname=config.hostname,
            local_domains=config.local_domains,
            aliases=config.aliases,
            tls_context=config.tls_context,
            allow_plaintext_auth=config.allow_plaintext,
            postmaster=config.postmaster,
            max_message_size=config.max_message_size,
            max_recipients=config.max_recipients,
            on_queued=self._queued,
        )
        # service -> its first listener's server and port (several listeners may share
        # a service); `bound` lists every listener with its real port, in order.
        self.servers: dict[str, BlockingServer] = {}
        self.ports: dict[str, int] = {}
        self.bound: list[tuple[ListenerConfig, int]] = []
        self._blocking: list[BlockingServer] = []
        self.processes: list[ListenerProcesses] = []
        self._stop_event: anyio.Event | None = None
        self._stop_requested = False
        self.webmail: Webmail | None = None
        # The blocking flavour runs the webmail in an event loop thread (a portal).
        self._portal_cm: Any = None
        self._portal: Any = None

    def _webmail(self) -> Webmail:
        """The webmail, as an ordinary client of our own imap and submission listeners
        (STARTTLS without a certificate check when logins in plaintext are refused:
        the peer is this process, on loopback)."""
        if "imap" not in self.ports or "submission" not in self.ports:
            raise ValueError("webmail needs an imap and a submission listener")
        starttls: ssl.SSLContext | bool = False
        if not self.config.allow_plaintext:
            starttls = ssl.create_default_context()
            starttls.check_hostname = False
            starttls.verify_mode = ssl.CERT_NONE
        host = self._loopback("imap")
        self.webmail = Webmail(
            imap=IMAPEndpoint(host=host, port=self.ports["imap"], starttls=starttls),
            submission=SubmissionEndpoint(
                host=self._loopback("submission"), port=self.ports["submission"], starttls=starttls
            ),
            authenticator=self.mda.authenticator,
            config=WebmailConfig(domain=self.config.local_domains[0]),
        )
        return self.webmail

    def _loopback(self, service: str) -> str:
        """Where this process reaches its own listener of ``service``."""
        return reachable(next(x.host for x, _ in self.bound if x.service == service))

    def _queued(self, entry: Any) -> None:
        if self.runner is not None:
            self.runner.submit(entry)

    def _factory(self, service: str) -> Callable[[TransportInfo], Op[None]]:
        return {
            "lmtp": self.mda.lmtp_session,
            "pop3": self.mda.pop3_session,
            "pop3s": self.mda.pop3_session,
            "imap": self.mda.imap_session,
            "imaps": self.mda.imap_session,
            "smtp": self.mta.inbound_session,
            "submission": self.mta.submission_session,
            "submissions": self.mta.submissions_session,
        }[service]

    def _serve_config(self, listener: ListenerConfig) -> ServeConfig:
        implicit_tls, busy = SERVICES[listener.service]
        tls = self.config.tls_context if implicit_tls else None
        if implicit_tls and tls is None:
            raise ValueError(f"{listener.service} needs a TLS certificate")
        return ServeConfig(
            host=listener.host,
            port=listener.port,
            tls=tls,
            max_connections=listener.max_connections,
            max_per_ip=listener.max_per_ip,
            busy=busy,
            grace=self.config.grace,
            name=listener.service,
        )

    def _bound(self, listener: ListenerConfig, port: int) -> None:
        self.bound.append((listener, port))
        self.ports.setdefault(listener.service, port)

    def _in_processes(self, listener: ListenerConfig) -> bool:
        """Whether child processes serve this listener."""
        if listener.service == "lmtp":
            return self.config.lmtp_process
        return listener.service == "smtp" and self.config.smtp_processes > 0

    def _child_settings(self, listener: ListenerConfig) -> dict[str, Any]:
        config = self.config
        settings: dict[str, Any] = {
            "service": listener.service,
            "data_dir": str(config.data_dir),
            "hostname": config.hostname,
            "max_message_size": config.max_message_size,
            "max_connections": listener.max_connections,
            "max_per_ip": listener.max_per_ip,
            "grace": config.grace,
        }
        if listener.service == "lmtp":
            settings["nice"] = config.delivery_nice
            return settings
        if config.tls_context is not None:
            if config.tls_files is None:
                raise ValueError("smtp_processes with TLS needs tls_files (certificate, key)")
            settings["tls_cert"], settings["tls_key"] = map(str, config.tls_files)
        settings.update(
            local_domains=list(config.local_domains),
            aliases={k: list(v) for k, v in config.aliases.items()},
            postmaster=config.postmaster,
            max_recipients=config.max_recipients,
            allow_plaintext=config.allow_plaintext,
        )
        return settings

    def _start_processes(self, listener: ListenerConfig) -> None:
        """Bind the listener's socket here and start the children that serve it."""
        settings = self._child_settings(listener)
        with _naming(listener):
            try:
                sock = _listen_retrying(listener)
            except OSError as exc:
                moved = _any_port(listener, exc)
                sock = listen_socket(moved.host, moved.port)
        lmtp = listener.service == "lmtp"
        children = ListenerProcesses(
            sock,
            settings,
            count=1 if lmtp else self.config.smtp_processes,
            on_queued=None if lmtp else self._queued_id,
            on_exit=None if lmtp else self._rescan,
        )
        try:
            children.start()
        except BaseException:
            sock.close()
            raise
        self.processes.append(children)
        self._bound(listener, children.port)

    def _queued_id(self, entry_id: str) -> None:
        """A child queued a message: the runner takes it as it takes ours (it reads the
        entry when it schedules it)."""
        if self.runner is not None and entry_id in self.mta.queue:  # a queue id, queued
            self.runner.submit_id(entry_id)

    def _rescan(self) -> None:
        """A child ended: what it queued and did not say is found in the queue."""
        if self.runner is not None:
            self.runner.rescan()

    def _close_processes(self, grace: float | None, *, mda: bool) -> None:
        """Stop the MDA's children (``mda``) or the MTA's, all at once."""
        children = [p for p in self.processes if (p.service in MDA_SERVICES) == mda]
        self.processes = [p for p in self.processes if p not in children]
        _close_together(children, grace)

    def _listen(self, listener: ListenerConfig) -> None:
        if self._in_processes(listener):
            self._start_processes(listener)
            return
        with _naming(listener):
            try:
                server = BlockingServer(
                    self._factory(listener.service), self._serve_config(listener)
                )
            except OSError as exc:
                config = self._serve_config(_any_port(listener, exc))
                server = BlockingServer(self._factory(listener.service), config)
            server.start()
        self._blocking.append(server)
        self.servers.setdefault(listener.service, server)
        self._bound(listener, server.port)

    def _sides(self) -> tuple[list[ListenerConfig], list[ListenerConfig]]:
        mda_side = [x for x in self.config.listeners if x.service in MDA_SERVICES]
        mta_side = [x for x in self.config.listeners if x.service not in MDA_SERVICES]
        if not any(x.service == "lmtp" for x in mda_side):
            raise ValueError("an LMTP listener is needed for local delivery")
        return mda_side, mta_side

    def _start_runner(self) -> DeliveryRunner:
        """Recover the queue and start the runner over it (LMTP must be listening)."""
        self.mta.queue.recover()
        runner = DeliveryRunner(
            self.mta.queue,
            hostname=self.config.hostname,
            is_local=self.mta.is_local_domain,
            router=Router(
                static_routes=self.config.static_routes,
                smarthost=self.config.smarthost,
                smarthost_auth=self.config.smarthost_auth,
                smarthost_tls=self.config.smarthost_tls,
                resolver=self.config.resolver,
                port=self.config.relay_port,
                own_names=(self.config.hostname,),
            ),
            lmtp=LMTPTarget(host=self._loopback("lmtp"), port=self.ports["lmtp"]),
            workers=self.config.workers,
            per_destination=self.config.per_destination,
            local_workers=self.config.local_workers,
            lifetime=self.config.lifetime,
            delay_warning=self.config.delay_warning,
            min_backoff=self.config.min_backoff,
            max_backoff=self.config.max_backoff,
            tls_context=self.config.outbound_tls_context,
            nice=self.config.delivery_nice,
        )
        runner.start()
        self.runner = runner
        return runner

    # -- blocking flavour ------------------------------------------------------------------

    def start(self) -> MailSystem:
        """Open the MDA's listeners first (LMTP must be up before the runner delivers),
        then start the runner over what the queue holds, then open the MTA's."""
        try:
            mda_side, mta_side = self._sides()
            for listener in mda_side:
                self._listen(listener)
            self._start_runner()
            for listener in mta_side:
                self._listen(listener)
            if self.config.webmail is not None:
                webmail = self._webmail()
                self._portal_cm = anyio.from_thread.start_blocking_portal()
                self._portal = self._portal_cm.__enter__()
                host, port = self.config.webmail
                _, self.ports["webmail"] = self._portal.start_task(
                    functools.partial(webmail.serve, host, port)
                )
        except BaseException:
            self.close()
            raise
        return self

    def close(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions finish (``grace`` s), stop the runner."""
        if self._portal is not None:
            portal, self._portal = self._portal, None
            if self.webmail is not None:
                portal.call(self.webmail.close, grace)
            self._portal_cm.__exit__(None, None, None)
        mta_side = [s for s in self._blocking if s.config.name not in MDA_SERVICES]
        _close_together(mta_side, grace)
        self._close_processes(grace, mda=False)
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        _close_together([s for s in self._blocking if s not in mta_side], grace)
        self._close_processes(grace, mda=True)
        self._blocking.clear()
        self.servers.clear()

    def __enter__(self) -> MailSystem:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- anyio flavour -----------------------------------------------------------------------

    async def serve_anyio(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve every listener until `stop_anyio` (or until cancelled): on asyncio with
        our `AsyncioServer`, on trio with an `AnyIOServer`; reports ``ports`` to
        ``task_status`` once all listen. The shutdown
        (MTA listeners, then the runner, then the MDA's) runs shielded."""
        self._stop_event = anyio.Event()
        if self._stop_requested:
            self._stop_event.set()
        started: list[AnyIOServer | AsyncioServer] = []
        try:
            async with anyio.create_task_group() as tg:
                try:
                    mda_side, mta_side = self._sides()
                    for listener in mda_side:
                        await self._start_anyio(tg, listener, started)
                    await anyio.to_thread.run_sync(self._start_runner)
                    for listener in mta_side:
                        await self._start_anyio(tg, listener, started)
                    if self.config.webmail is not None:
                        host, port = self.config.webmail
                        serve = functools.partial(self._webmail().serve, host, port)
                        self.ports["webmail"] = await tg.start(serve)
                    task_status.started(dict(self.ports))
                    await self._stop_event.wait()
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._aclose(started)
        finally:
            self._stop_event = None

    async def _start_anyio(
        self,
        tg: anyio.abc.TaskGroup,
        listener: ListenerConfig,
        started: list[AnyIOServer | AsyncioServer],
    ) -> None:
        if self._in_processes(listener):
            await anyio.to_thread.run_sync(self._start_processes, listener)
            return
        factory = self._factory(listener.service)
        server: AnyIOServer | AsyncioServer
        with _naming(listener):
            try:
                server = await _serve_in(tg, factory, self._serve_config(listener))
            except OSError as exc:
                config = self._serve_config(_any_port(listener, exc))
                server = await _serve_in(tg, factory, config)
        started.append(server)
        self._bound(listener, server.port)

    async def _aclose(self, started: list[AnyIOServer | AsyncioServer]) -> None:
        grace = self.config.grace

        async def close_all(servers: list[AnyIOServer | AsyncioServer]) -> None:
            async with anyio.create_task_group() as tg:
                for server in servers:
                    tg.start_soon(server.close, grace)

        if self.webmail is not None:
            await self.webmail.close(grace)
        await close_all([s for s in started if s.config.name not in MDA_SERVICES])
        await anyio.to_thread.run_sync(functools.partial(self._close_processes, grace, mda=False))
        runner, self.runner = self.runner, None
        if runner is not None:
            await anyio.to_thread.run_sync(runner.stop)
        await close_all([s for s in started if s.config.name in MDA_SERVICES])
        await anyio.to_thread.run_sync(functools.partial(self._close_processes, grace, mda=True))

    def stop_anyio(self) -> None:
        """Ask `serve_anyio` to shut down gracefully (call it from the event loop)."""
        self._stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()
