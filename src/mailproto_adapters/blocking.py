"""Blocking-socket flavour: `SMTPClient` (and, next, the POP3 and IMAP clients, serve())."""

from __future__ import annotations

from ._ops.smtp_client import SendResult
from ._smtp_clients import SMTPClient

__all__ = ["SMTPClient", "SendResult"]
