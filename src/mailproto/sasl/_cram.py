"""CRAM-MD5 (RFC 2195): a challenge-response over a shared cleartext secret.

The server sends a unique ``msg-id``-like string, ``<random.random@hostname>``; the client
answers ``user SP hex(HMAC-MD5(password, challenge))``. RFC 2195 builds the challenge
from a timestamp and the process id; the core has no clock, and all that matters is that
it never repeats, so both numbers are random digits from `secrets` (or injected, for
tests).

The mechanism is obsolete (RFC 6331 explains why for its DIGEST sibling): the server must
keep cleartext passwords, hence `NeedCramMD5Secret` asks the application for one. It is
here for old clients; prefer SCRAM-SHA-256.
"""

from __future__ import annotations

import hmac
import re
import secrets

from ._base import (
    Challenge,
    ClientMechanism,
    NeedCramMD5Secret,
    ServerMechanism,
    ServerStep,
    Success,
    auth_failed,
)
from ._syntax import Reject, decode_utf8

__all__ = ["CramMD5Client", "CramMD5Server"]

# Printable ASCII without "<", ">", "@" and space: whatever keeps the challenge a msg-id.
_NONCE = re.compile(rb"[!-;=?A-~]+")
_HOSTNAME = re.compile(r"[!-;=?A-~]+")
_RESPONSE = re.compile(rb"(.+) ([0-9a-fA-F]{32})", re.DOTALL)


def _digest(password: str, challenge: bytes) -> str:
    return hmac.new(password.encode("utf-8"), challenge, "md5").hexdigest()


class CramMD5Server(ServerMechanism):
    """CRAM-MD5, server side: challenge, answer, `NeedCramMD5Secret`."""

    name = "CRAM-MD5"

    def __init__(self, *, hostname: str = "localhost", nonce: bytes | None = None) -> None:
        """``nonce`` replaces the random ``digits.digits`` part of the challenge.

        Raises ValueError if ``hostname`` or ``nonce`` would not fit in ``<nonce@host>``.
        """
        super().__init__()
        if not _HOSTNAME.fullmatch(hostname):
            raise ValueError("hostname must be printable ASCII without '<', '>', '@' or spaces")
        if nonce is None:
            nonce = f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}".encode()
        elif not _NONCE.fullmatch(nonce):
            raise ValueError("nonce must be printable ASCII without '<', '>', '@' or spaces")
        self.challenge = b"<" + nonce + b"@" + hostname.encode("ascii") + b">"
        self._username = ""
        self._digest = b""

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is not None:
            raise Reject("no initial response allowed, the server speaks first")
        return Challenge(data=self.challenge)

    def _receive(self, data: bytes) -> ServerStep:
        match = _RESPONSE.fullmatch(data)
        if match is None:
            raise Reject("expected user name, space, 32 hex digits")
        self._username = decode_utf8(match[1], "user name")
        self._digest = match[2].lower()
        return NeedCramMD5Secret(username=self._username)

    def _respond_with_secret(self, password: str | None) -> ServerStep:
        if password is None:
            return auth_failed(self.name)
        expected = _digest(password, self.challenge).encode("ascii")
        if not hmac.compare_digest(expected, self._digest):
            return auth_failed(self.name)
        return Success(username=self._username, authzid="", data=None)


class CramMD5Client(ClientMechanism):
    """CRAM-MD5, client side: no initial response, one answer."""

    name = "CRAM-MD5"

    def __init__(self, username: str, password: str) -> None:
        if not username:
            raise ValueError("CRAM-MD5 needs a non-empty username")
        self._username = username
        self._password = password
        self._answered = False

    def _initial_response(self) -> None:
        return None

    def _respond(self, challenge: bytes) -> bytes:
        if self._answered:
            raise Reject("unexpected challenge after the answer")
        if not challenge:
            raise Reject("empty challenge")
        self._answered = True
        digest = _digest(self._password, challenge)
        return f"{self._username} {digest}".encode()
