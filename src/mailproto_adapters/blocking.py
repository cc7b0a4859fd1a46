"""Blocking-socket flavour: clients and ``serve()`` on threads.

- `SMTPClient` (SMTP and LMTP), `POP3Client`, `IMAPClient` (with `MailboxState`,
  `FetchResult`, `ResumeResult`).
- `serve(session, ...)`: a thread per connection running a session flow; returns the
  started `BlockingServer` (``.port``, ``.close(grace)``, a context manager).
"""

from __future__ import annotations

import ssl

from ._imap_clients import FetchResult, IMAPClient, MailboxState, ResumeResult
from ._ops.smtp_client import SendResult
from ._pop3_clients import POP3Client
from ._serve_blocking import BlockingServer
from ._serving import ServeConfig, SessionFactory
from ._smtp_clients import SMTPClient

__all__ = [
    "BlockingServer",
    "FetchResult",
    "IMAPClient",
    "MailboxState",
    "POP3Client",
    "ResumeResult",
    "SMTPClient",
    "SendResult",
    "ServeConfig",
    "serve",
]


def serve(
    session: SessionFactory,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    max_connections: int = 512,
    max_per_ip: int = 32,
    busy: bytes = b"",
    grace: float = 10.0,
    name: str = "server",
) -> BlockingServer:
    """Listen on host:port and run ``session(info)`` for each connection (see ServeConfig)."""
    config = ServeConfig(
        host=host,
        port=port,
        tls=tls,
        max_connections=max_connections,
        max_per_ip=max_per_ip,
        busy=busy,
        grace=grace,
        name=name,
    )
    return BlockingServer(session, config).start()
