"""Steps, errors and the two abstract mechanism roles.

Theory of operation
-------------------

A SASL exchange is a short conversation whose messages are carried by the application
protocol (SMTP ``334`` lines, IMAP ``+`` continuations, POP3 ``+`` lines). Framing and
base64 belong to those layers; this package sees decoded bytes only.

A *server* mechanism is driven like an h11 connection: every call returns one *step*, a
small immutable value that says what happens next.

* `Challenge`: send ``data`` to the client and hand its answer to ``receive()``.
* `VerifyPassword`, `NeedCramMD5Secret`, `NeedScramCredentials`, `VerifyToken`: the
  mechanism needs the application (its user database, its token introspection). The
  application answers through the matching method (``verified()``,
  ``respond_with_secret()``, ``respond_with_credentials()``). No callbacks: a lookup may be
  asynchronous in the adapter, and the core must not care.
* `Success` and `Failure`: the exchange is over (``done`` is true).

Which method may be called next is decided by the type of the last step alone, through the
`_NEXT_CALL` table below, so the rule is the same for every mechanism and lives in one
place. Calling anything else is a bug in the caller and raises `LocalProtocolError`.
Whatever the *client* sent, on the other hand, never raises: bad input is a `Failure`.

A *client* mechanism is simpler, because the protocol layer already knows when to call it:
``initial_response()`` for the command line, ``respond()`` for every challenge, and
``verify_success()`` when the server says the exchange succeeded. A server that says
something unexpected makes the client raise `SASLError`, which the protocol layer turns
into a cancelled exchange (``*``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar, Literal, TypeAlias

import attrs

from mailproto._util import LocalProtocolError

from ._credentials import ScramCredentials
from ._syntax import Reject, RejectCode

__all__ = [
    "Challenge",
    "ClientMechanism",
    "Failure",
    "FailureCode",
    "NeedCramMD5Secret",
    "NeedScramCredentials",
    "SASLError",
    "ServerMechanism",
    "ServerStep",
    "Success",
    "TokenKind",
    "VerifyPassword",
    "VerifyToken",
]

FailureCode: TypeAlias = RejectCode
TokenKind: TypeAlias = Literal["XOAUTH2", "OAUTHBEARER"]

_FAILURE_CODES = ("auth", "malformed", "aborted", "unsupported")


class SASLError(Exception):
    """A client mechanism cannot go on: the server sent something it must not accept.

    Deliberately not a `mailproto.ProtocolError`: the connection itself is fine; only the
    authentication exchange has to be cancelled (``*``) or treated as failed. ``reason`` is
    safe to log, it never contains a password or a token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- Steps a server mechanism returns -----------------------------------------------------
#
# Don't subclass these: the type of a step is what the next-call table dispatches on.


@attrs.frozen(kw_only=True)
class Challenge:
    """Send ``data`` to the client (the protocol layer base64-encodes it), then call
    ``receive()`` with the client's decoded answer."""

    data: bytes


@attrs.frozen(kw_only=True)
class VerifyPassword:
    """PLAIN or LOGIN got a password: check it, then call ``verified(ok)``.

    ``authzid`` is the identity the client wants to act as, ``""`` for "the same as
    ``username``"; the application decides whether ``username`` may act as somebody else.
    The password is kept out of ``repr()`` so that a logged step does not leak it.
    """

    username: str
    authzid: str
    password: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class NeedCramMD5Secret:
    """CRAM-MD5 needs the user's cleartext password: call ``respond_with_secret()`` with it,
    or with ``None`` for an unknown user."""

    username: str


@attrs.frozen(kw_only=True)
class NeedScramCredentials:
    """SCRAM needs the stored keys of ``username``: call ``respond_with_credentials()`` with
    them, or with ``None`` for an unknown user (the mechanism then carries on with made-up
    keys and fails at the proof, so the client cannot tell which users exist)."""

    username: str
    authzid: str


@attrs.frozen(kw_only=True)
class VerifyToken:
    """An OAuth 2.0 bearer token arrived: check it for ``username``, then call
    ``verified(ok, error_json)``. The token is kept out of ``repr()``."""

    username: str
    token: str = attrs.field(repr=False)
    kind: TokenKind


@attrs.frozen(kw_only=True)
class Success:
    """The client is authenticated as ``username`` (acting as ``authzid`` if non-empty).

    ``data`` is RFC 4422's "additional data with success" (SCRAM's ``v=...``). SMTP has no
    room for it in the ``235`` reply and sends it as one more challenge; IMAP puts it in
    the tagged OK. That choice belongs to the protocol layer, hence a plain field here.
    """

    username: str
    authzid: str
    data: bytes | None


@attrs.frozen(kw_only=True)
class Failure:
    """The exchange failed. ``reason`` is safe to log: never a password or a token.

    ``code`` lets the protocol layer pick its reply: ``"auth"`` bad credentials (SMTP 535),
    ``"malformed"`` the client broke the mechanism's syntax (SMTP 501), ``"unsupported"`` a
    feature the client insists on is not available (channel binding, SCRAM extensions),
    ``"aborted"`` for the protocol layer's own use when the client cancels with ``*``.
    """

    reason: str
    code: FailureCode = attrs.field(validator=attrs.validators.in_(_FAILURE_CODES))


ServerStep: TypeAlias = (
    Challenge
    | VerifyPassword
    | NeedCramMD5Secret
    | NeedScramCredentials
    | VerifyToken
    | Success
    | Failure
)

# The whole state machine common to all server mechanisms: the last step decides which
# method the application may call next ("" = none, the exchange is over).
_NEXT_CALL: dict[type, str] = {
    Challenge: "receive",
    VerifyPassword: "verified",
    VerifyToken: "verified",
    NeedCramMD5Secret: "respond_with_secret",
    NeedScramCredentials: "respond_with_credentials",
    Success: "",
    Failure: "",
}


class ServerMechanism(abc.ABC):
    """The server side of one SASL exchange. Use a fresh instance per exchange.

    Get one from `server_mechanism`, call `start`, then follow the steps (see the module
    documentation of `mailproto.sasl`). Subclasses implement ``_start``/``_receive`` and the
    continuation hooks they need; the public methods enforce the call order.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self._next_call = "start"

    @property
    def done(self) -> bool:
        """True once a `Success` or `Failure` was returned."""
        return self._next_call == ""

    def start(self, initial_response: bytes | None) -> ServerStep:
        """Begin the exchange. ``None`` means the client sent no initial response (which
        is not the same as an empty one: SMTP's ``AUTH PLAIN =``)."""
        self._check_call("start")
        return self._advance(lambda: self._start(initial_response))

    def receive(self, data: bytes) -> ServerStep:
        """The client's answer to the last `Challenge`."""
        self._check_call("receive")
        return self._advance(lambda: self._receive(data))

    def verified(self, ok: bool, error_json: bytes | None = None) -> ServerStep:
        """Answer a `VerifyPassword` or `VerifyToken` step.

        ``error_json`` only applies to a failed token (XOAUTH2, OAUTHBEARER): it is sent to
        the client as an error challenge (RFC 7628 section 3.2.2) before the `Failure`.
        Without it the mechanism fails at once.
        """
        self._check_call("verified")
        return self._advance(lambda: self._verified(ok, error_json))

    def respond_with_secret(self, password: str | None) -> ServerStep:
        """Answer a `NeedCramMD5Secret` step; ``None`` for an unknown user."""
        self._check_call("respond_with_secret")
        return self._advance(lambda: self._respond_with_secret(password))

    def respond_with_credentials(self, creds: ScramCredentials | None) -> ServerStep:
        """Answer a `NeedScramCredentials` step; ``None`` for an unknown user."""
        self._check_call("respond_with_credentials")
        return self._advance(lambda: self._respond_with_credentials(creds))

    # -- machinery ------------------------------------------------------------------------

    def _check_call(self, method: str) -> None:
        if self._next_call != method:
            expected = f"{self._next_call}()" if self._next_call else "nothing, it is done"
            raise LocalProtocolError(
                f"{self.name}: can't call {method}() now; the mechanism expects {expected}"
            )

    def _advance(self, handler: Callable[[], ServerStep]) -> ServerStep:
        try:
            step = handler()
        except Reject as exc:
            step = Failure(reason=f"{self.name}: {exc.reason}", code=exc.code)
        self._next_call = _NEXT_CALL[type(step)]
        return step

    # -- hooks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _start(self, initial_response: bytes | None) -> ServerStep: ...

    @abc.abstractmethod
    def _receive(self, data: bytes) -> ServerStep: ...

    # The continuation hooks are reached only after the mechanism itself returned the step
    # that allows them, so a mechanism that never returns that step never gets the call.
    def _verified(self, ok: bool, error_json: bytes | None) -> ServerStep:
        raise AssertionError("unreachable")  # pragma: no cover

    def _respond_with_secret(self, password: str | None) -> ServerStep:
        raise AssertionError("unreachable")  # pragma: no cover

    def _respond_with_credentials(self, creds: ScramCredentials | None) -> ServerStep:
        raise AssertionError("unreachable")  # pragma: no cover


def auth_failed(name: str) -> Failure:
    """The one reason every mechanism gives for bad credentials: say no more than that."""
    return Failure(reason=f"{name}: authentication failed", code="auth")


class ClientMechanism(abc.ABC):
    """The client side of one SASL exchange. Use a fresh instance per exchange.

    Call `initial_response` only if its result is sent with the command (SMTP ``AUTH``,
    IMAP with SASL-IR); otherwise the server starts with a challenge, usually empty, and
    `respond` produces the first message instead.
    """

    name: ClassVar[str]

    def initial_response(self) -> bytes | None:
        """The message to send with the command, or ``None`` for server-first mechanisms.

        Raises:
            LocalProtocolError: the initial response was already produced or the exchange
                is past its start.
        """
        return self._initial_response()

    def respond(self, challenge: bytes) -> bytes:
        """Answer one decoded server challenge.

        Raises:
            SASLError: the challenge is malformed or not expected at this point.
        """
        try:
            return self._respond(challenge)
        except Reject as exc:
            raise SASLError(f"{self.name}: {exc.reason}") from None

    def verify_success(self, data: bytes | None) -> None:
        """Check the server's success, with its "additional data with success" if any.

        Mechanisms without server authentication accept only ``None`` or ``b""``; SCRAM
        checks the server signature, here or from the last challenge if it came that way.

        Raises:
            SASLError: the server's claim of success cannot be trusted.
        """
        try:
            self._verify_success(data)
        except Reject as exc:
            raise SASLError(f"{self.name}: {exc.reason}") from None

    @abc.abstractmethod
    def _initial_response(self) -> bytes | None: ...

    @abc.abstractmethod
    def _respond(self, challenge: bytes) -> bytes: ...

    def _verify_success(self, data: bytes | None) -> None:
        if data:
            raise Reject("unexpected additional data with success")
