"""Local delivery: queued messages handed to the MDA over LMTP (RFC 2033).

The same delivery code as relaying (`remote.deliver_remote`) in its LMTP form: one
connection carries a batch of messages, and each recipient gets its own result after
the body: 2xx delivered, 4xx retried later, 5xx bounced. A connection that cannot be
made or breaks leaves the recipients not yet answered with a 4xx, so the queue keeps the
message and tries again.

Exactly once: each recipient's copy is named (``XDELIVERYID``, our LMTP server's
extension: queue id and recipient index), and a retry that follows an attempt of unknown
outcome (the MTA restarted, the connection broke after the body) says so
(``XREDELIVERY``): the MDA then looks for that copy before storing it again.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .connections import ConnectionCache
from .remote import OutgoingMessage, RecipientResult, Report, deliver_remote
from .routing import Hop

__all__ = ["LMTPTarget", "deliver_local"]


@attrs.frozen(kw_only=True)
class LMTPTarget:
    """Where the MDA's LMTP server listens."""

    host: str = "127.0.0.1"
    port: int = 2024
    timeout: float = 300.0


def deliver_local(
    target: LMTPTarget,
    messages: Sequence[OutgoingMessage],
    *,
    helo: str,
    report: Report | None = None,
    connections: ConnectionCache | None = None,
) -> list[list[RecipientResult]]:
    """Deliver each message to its local recipients; one result list per message.
    ``connections``: LMTP connections kept between batches (the runner's)."""
    hop = Hop(host=target.host, port=target.port, tls="none")
    return deliver_remote(
        [hop],
        messages,
        helo=helo,
        timeout=target.timeout,
        report=report,
        lmtp=True,
        connections=connections,
    )
