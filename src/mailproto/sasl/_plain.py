"""PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login): passwords in the clear.

Both only make sense under TLS; refusing them on a clear-text connection is the protocol
layer's job, since only it knows whether TLS is active.

PLAIN is one message, ``[authzid] NUL authcid NUL passwd``, in UTF-8. RFC 4616 caps each
field at 255 octets and forbids empty ``authcid`` and ``passwd``; NUL cannot occur inside a
field because it is the separator, so exactly three fields is the whole syntax check.

LOGIN predates SASL's rules and was never standardised. The server prompts
``Username:`` then ``Password:``, the client answers each with the bare value. Clients in
the wild ignore the prompt texts (old servers sent ``User Name``), so the client here does
too and answers by position. Some clients send the user name as an initial response; the
server accepts that and skips the first prompt.
"""

from __future__ import annotations

from mailproto._util import LocalProtocolError

from ._base import (
    Challenge,
    ClientMechanism,
    ServerMechanism,
    ServerStep,
    Success,
    VerifyPassword,
    auth_failed,
)
from ._syntax import Reject, decode_utf8

__all__ = ["LoginClient", "LoginServer", "PlainClient", "PlainServer"]

_MAX_FIELD = 255  # RFC 4616 section 2: 1*SAFE / 0*SAFE, "up to 255 octets"


def _check_verified_args(name: str, error_json: bytes | None) -> None:
    if error_json is not None:
        raise ValueError(f"{name} has no error challenge; error_json must be None")


class PlainServer(ServerMechanism):
    """PLAIN, server side: one message, then `VerifyPassword`."""

    name = "PLAIN"

    def __init__(self) -> None:
        super().__init__()
        self._username = ""
        self._authzid = ""

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"")
        return self._receive(initial_response)

    def _receive(self, data: bytes) -> ServerStep:
        fields = data.split(b"\x00")
        if len(fields) != 3:
            raise Reject("expected authzid NUL authcid NUL passwd")
        authzid, authcid, passwd = fields
        if not authcid or not passwd:
            raise Reject("empty user name or password")
        if max(len(authzid), len(authcid), len(passwd)) > _MAX_FIELD:
            raise Reject("field longer than 255 octets")
        self._username = decode_utf8(authcid, "user name")
        self._authzid = decode_utf8(authzid, "authorization identity")
        password = decode_utf8(passwd, "password")
        return VerifyPassword(username=self._username, authzid=self._authzid, password=password)

    def _verified(self, ok: bool, error_json: bytes | None) -> ServerStep:
        _check_verified_args(self.name, error_json)
        if not ok:
            return auth_failed(self.name)
        return Success(username=self._username, authzid=self._authzid, data=None)


class LoginServer(ServerMechanism):
    """LOGIN, server side: prompt ``Username:``, prompt ``Password:``, `VerifyPassword`."""

    name = "LOGIN"

    def __init__(self) -> None:
        super().__init__()
        self._username: str | None = None

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"Username:")
        return self._receive(initial_response)

    def _receive(self, data: bytes) -> ServerStep:
        if self._username is None:
            if not data:
                raise Reject("empty user name")
            self._username = decode_utf8(data, "user name")
            return Challenge(data=b"Password:")
        if not data:
            raise Reject("empty password")
        password = decode_utf8(data, "password")
        return VerifyPassword(username=self._username, authzid="", password=password)

    def _verified(self, ok: bool, error_json: bytes | None) -> ServerStep:
        _check_verified_args(self.name, error_json)
        assert self._username is not None
        if not ok:
            return auth_failed(self.name)
        return Success(username=self._username, authzid="", data=None)


def _utf8_field(value: str, what: str) -> bytes:
    data = value.encode("utf-8")
    if b"\x00" in data:
        raise ValueError(f"{what} must not contain NUL")
    return data


class PlainClient(ClientMechanism):
    """PLAIN, client side. Sends its one message as the initial response, or in answer to
    the server's empty challenge when the protocol has no room for an initial response."""

    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        """Raises ValueError for what RFC 4616 cannot carry: an empty user name or
        password, a NUL, a field over 255 octets."""
        fields = [
            _utf8_field(authzid, "authzid"),
            _utf8_field(username, "username"),
            _utf8_field(password, "password"),
        ]
        if not username or not password:
            raise ValueError("PLAIN needs a non-empty username and password")
        if max(map(len, fields)) > _MAX_FIELD:
            raise ValueError("PLAIN fields are limited to 255 octets each")
        self._message = b"\x00".join(fields)
        self._sent = False

    def _initial_response(self) -> bytes:
        return self._send()

    def _send(self) -> bytes:
        if self._sent:
            raise LocalProtocolError("PLAIN: the response was already produced")
        self._sent = True
        return self._message

    def _respond(self, challenge: bytes) -> bytes:
        if self._sent:
            raise Reject("unexpected challenge after the credentials were sent")
        if challenge:
            raise Reject("the server's first challenge must be empty")
        return self._send()


class LoginClient(ClientMechanism):
    """LOGIN, client side: no initial response; user name to the first prompt, password
    to the second, whatever their text."""

    name = "LOGIN"

    def __init__(self, username: str, password: str) -> None:
        if not username or not password:
            raise ValueError("LOGIN needs a non-empty username and password")
        self._answers = [username.encode("utf-8"), password.encode("utf-8")]

    def _initial_response(self) -> None:
        return None

    def _respond(self, challenge: bytes) -> bytes:
        if not self._answers:
            raise Reject("unexpected third challenge")
        return self._answers.pop(0)
