"""Webmail: the MUA in a browser, an HTTP/1.1 server on h11 and a client of IMAP and SMTP.

``Webmail(imap=(host, port), submission=(host, port), authenticator=None)``; run it with
``await tg.start(webmail.serve, host, port)`` or give ``webmail.session`` (a connection
flow) to an `AnyIOServer`. ``python -m mailproto_adapters.mua.webmail`` runs it alone.
See ``docs/webmail.md``.
"""

from __future__ import annotations

from .app import SECURITY_HEADERS, SubmissionEndpoint, Webmail, WebmailConfig
from .http import HTTPLimits
from .sessions import IMAPEndpoint

__all__ = [
    "SECURITY_HEADERS",
    "HTTPLimits",
    "IMAPEndpoint",
    "SubmissionEndpoint",
    "Webmail",
    "WebmailConfig",
]
