"""OAuth 2.0 bearer tokens: OAUTHBEARER (RFC 7628) and Google's older XOAUTH2.

Theory of operation
-------------------

Both mechanisms carry the token in one client message of ``key=value`` pairs separated by
``0x01`` (``kvsep``), closed by an empty pair::

    XOAUTH2      user=alice@example.com ^A auth=Bearer ya29.tok ^A ^A
    OAUTHBEARER  n,a=alice@example.com, ^A host=imap.example.com ^A port=993 ^A
                 auth=Bearer tok ^A ^A

OAUTHBEARER starts with a GS2 header (RFC 5801) like SCRAM's, whose ``a=`` names the user;
channel binding does not exist for it, so a ``p=`` flag is refused. The token is checked
by the application (`VerifyToken`); the mechanism only extracts it.

On a bad token, both let the server explain in a JSON error document (``status``,
``scope``, ``openid-configuration``) sent as a *challenge*, because SASL has no other way
to carry data with a failure. The client acknowledges it (XOAUTH2: an empty message, though
some send ``0x01``; OAUTHBEARER: exactly ``0x01``) and then the server fails the exchange.
`ServerMechanism.verified` takes that document as ``error_json``; the client keeps the one
it received in ``error_json`` for the application to read.

Token syntax is RFC 6750's ``b64token``; values are RFC 7628's ``*(VCHAR / SP / HTAB / CR /
LF)``, relaxed to allow UTF-8 so that internationalised addresses pass through.
"""

from __future__ import annotations

import abc
import re

from mailproto._util import LocalProtocolError

from ._base import (
    Challenge,
    ClientMechanism,
    ServerMechanism,
    ServerStep,
    Success,
    TokenKind,
    VerifyToken,
    auth_failed,
)
from ._syntax import Reject, decode_saslname, decode_utf8, encode_saslname

__all__ = ["OAuthBearerClient", "OAuthBearerServer", "XOAuth2Client", "XOAuth2Server"]

_KEY = re.compile(r"[A-Za-z]+")
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")
_B64TOKEN = r"[A-Za-z0-9\-._~+/]+=*"
_BEARER = re.compile(rf"[Bb][Ee][Aa][Rr][Ee][Rr] +({_B64TOKEN})")
_TOKEN = re.compile(_B64TOKEN)


def _kvpairs(pairs: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _KEY.fullmatch(key) or _BAD_VALUE_CHAR.search(value):
            raise Reject("bad key=value pair")
        if key in result:
            raise Reject("duplicate key")
        result[key] = value
    return result


def _bearer_token(pairs: dict[str, str]) -> str:
    if "auth" not in pairs:
        raise Reject("missing auth=")
    match = _BEARER.fullmatch(pairs["auth"])
    if match is None:
        raise Reject("auth= is not a Bearer token")
    return match[1]


class _OAuthServer(ServerMechanism):
    # What the client may answer to the error challenge, before the final Failure.
    _error_acks: tuple[bytes, ...]
    kind: TokenKind

    def __init__(self) -> None:
        super().__init__()
        self._username = ""
        self._error_sent = False

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"")
        return self._receive(initial_response)

    def _receive(self, data: bytes) -> ServerStep:
        if self._error_sent:
            if data not in self._error_acks:
                raise Reject("bad answer to the error challenge")
            return auth_failed(self.name)
        self._username, token = self._parse(decode_utf8(data, "client response"))
        return VerifyToken(username=self._username, token=token, kind=self.kind)

    @abc.abstractmethod
    def _parse(self, text: str) -> tuple[str, str]:
        """Return (username, token) from the decoded client message, or raise Reject."""

    def _verified(self, ok: bool, error_json: bytes | None) -> ServerStep:
        if ok:
            if error_json is not None:
                raise ValueError("error_json is only for a failed token")
            return Success(username=self._username, authzid="", data=None)
        if not error_json:
            return auth_failed(self.name)
        self._error_sent = True
        return Challenge(data=error_json)


class XOAuth2Server(_OAuthServer):
    """XOAUTH2, server side: one message, `VerifyToken`, maybe an error `Challenge`."""

    name = "XOAUTH2"
    kind = "XOAUTH2"
    _error_acks = (b"", b"\x01")

    def _parse(self, text: str) -> tuple[str, str]:
        if not text.endswith("\x01\x01"):
            raise Reject("message must end with two 0x01")
        pairs = _kvpairs(text[:-2].split("\x01"))
        username = pairs.get("user", "")
        if not username:
            raise Reject("missing user=")
        return username, _bearer_token(pairs)


class OAuthBearerServer(_OAuthServer):
    """OAUTHBEARER, server side: one message, `VerifyToken`, maybe an error `Challenge`.

    The user name is the GS2 header's ``a=``, which RFC 7628 makes optional: without it
    `VerifyToken` and `Success` carry ``username=""`` and the application knows the user
    from the token alone. ``authzid`` of the `Success` is always ``""``: the token's owner
    is the only identity involved.
    """

    name = "OAUTHBEARER"
    kind = "OAUTHBEARER"
    _error_acks = (b"\x01",)

    def _parse(self, text: str) -> tuple[str, str]:
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise Reject("message has no GS2 header")
        flag, authz, rest = parts
        if flag.startswith("p="):
            raise Reject("channel binding is not supported", "unsupported")
        if flag not in ("n", "y"):
            raise Reject("bad GS2 channel binding flag")
        username = ""
        if authz:
            if not authz.startswith("a="):
                raise Reject("bad GS2 authorization identity")
            username = decode_saslname(authz[2:], "authorization identity")
        # rest = kvsep *(kvpair kvsep) kvsep, and there must be at least auth=.
        if len(rest) < 3 or rest[0] != "\x01" or not rest.endswith("\x01\x01"):
            raise Reject("key=value pairs must be framed by 0x01")
        pairs = _kvpairs(rest[1:-2].split("\x01"))
        return username, _bearer_token(pairs)


def _check_value(value: str, what: str) -> None:
    # Stricter than the server: a user name or a host has no business with CR, LF or TAB.
    if _CONTROL_CHAR.search(value):
        raise ValueError(f"{what} must not contain control characters")


class _OAuthClient(ClientMechanism):
    """Shared client logic. ``error_json`` holds the server's error challenge, if it sent
    one (a JSON document, passed on unchecked)."""

    _error_ack: bytes

    def __init__(self, token: str) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError("token must be an RFC 6750 b64token")
        self._state = "start"  # -> "sent" -> "error"
        self.error_json: bytes | None = None

    @abc.abstractmethod
    def _message(self) -> bytes: ...

    def _initial_response(self) -> bytes:
        if self._state != "start":
            raise LocalProtocolError(f"{self.name}: the response was already produced")
        self._state = "sent"
        return self._message()

    def _respond(self, challenge: bytes) -> bytes:
        if self._state == "start":
            if challenge:
                raise Reject("the server's first challenge must be empty")
            return self._initial_response()
        if self._state == "sent":
            # Anything after the token is the error document; acknowledging it is the only
            # way to get the server's final failure.
            self.error_json = challenge
            self._state = "error"
            return self._error_ack
        raise Reject("unexpected challenge after the error challenge")

    def _verify_success(self, data: bytes | None) -> None:
        if self._state == "error":
            raise Reject("server claimed success after an error challenge")
        super()._verify_success(data)


class XOAuth2Client(_OAuthClient):
    """XOAUTH2, client side: ``user=...^Aauth=Bearer ...^A^A``."""

    name = "XOAUTH2"
    _error_ack = b""

    def __init__(self, username: str, token: str) -> None:
        """Raises ValueError for an empty or control-character user name or a token that
        is not a ``b64token``."""
        super().__init__(token)
        if not username:
            raise ValueError("XOAUTH2 needs a non-empty username")
        _check_value(username, "username")
        self._text = f"user={username}\x01auth=Bearer {token}\x01\x01"

    def _message(self) -> bytes:
        return self._text.encode("utf-8")


class OAuthBearerClient(_OAuthClient):
    """OAUTHBEARER, client side (RFC 7628), GS2 flag ``n``.

    ``host`` and ``port`` are the server the client believes it talks to; RFC 7628 makes
    them optional, and some servers (for example for token audience checks) want them.
    An empty ``username`` leaves ``a=`` out of the GS2 header.
    """

    name = "OAUTHBEARER"
    _error_ack = b"\x01"

    def __init__(
        self, username: str, token: str, host: str | None = None, port: int | None = None
    ) -> None:
        """Raises ValueError for a NUL in the user name, control characters in the host, a
        port outside 0-65535 or a token that is not a ``b64token``."""
        super().__init__(token)
        if "\x00" in username:
            raise ValueError("username must not contain NUL")
        authz = f"a={encode_saslname(username)}" if username else ""
        kvpairs = []
        if host is not None:
            _check_value(host, "host")
            kvpairs.append(f"host={host}")
        if port is not None:
            if not 0 <= port <= 65535:
                raise ValueError("port must be in 0-65535")
            kvpairs.append(f"port={port}")
        kvpairs.append(f"auth=Bearer {token}")
        self._text = f"n,{authz},\x01" + "".join(kv + "\x01" for kv in kvpairs) + "\x01"

    def _message(self) -> bytes:
        return self._text.encode("utf-8")
