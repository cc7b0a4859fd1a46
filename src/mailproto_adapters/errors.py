"""The errors a user of the clients and servers can act on.

- `TransportError`: the connection failed (refused, reset); `ConnectionLost`: the peer
  closed where an answer was owed; `TransportTimeout`: no answer in time; `TLSFailed`:
  the handshake failed, with the reason (a certificate that does not verify, say).
- `ServerError`: the server refused what we asked, with its code and text (SMTP 4xx/5xx,
  POP3 -ERR, IMAP NO/BAD); `AuthenticationFailed` when that was a login;
  `RecipientsRefused` when no recipient of a message was accepted.
"""

from __future__ import annotations

from ._transport import ConnectionLost, TLSFailed, TransportError, TransportTimeout

__all__ = [
    "AuthenticationFailed",
    "ConnectionLost",
    "MailError",
    "RecipientsRefused",
    "ServerError",
    "TLSFailed",
    "TransportError",
    "TransportTimeout",
]


class MailError(Exception):
    """Base of the errors a server's answer causes."""


class ServerError(MailError):
    """The server refused: ``code`` (SMTP reply code, or "NO"/"BAD"/"-ERR") and ``text``."""

    def __init__(self, code: int | str, text: str, *, command: str = "") -> None:
        where = f"{command}: " if command else ""
        super().__init__(f"{where}server said {code} {text}".rstrip())
        self.code = code
        self.text = text
        self.command = command

    @property
    def temporary(self) -> bool:
        """Whether trying again later may help (SMTP 4xx)."""
        return isinstance(self.code, int) and 400 <= self.code < 500


class AuthenticationFailed(ServerError):
    """The server refused the credentials (or the mechanism)."""


class RecipientsRefused(ServerError):
    """Every recipient was refused: ``refused`` maps each address to (code, text)."""

    def __init__(self, refused: dict[str, tuple[int, str]]) -> None:
        code, text = next(iter(refused.values())) if refused else (550, "")
        super().__init__(code, text, command="RCPT")
        self.refused = refused
