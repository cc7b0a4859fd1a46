"""SCRAM-SHA-256 (RFC 5802 with the hash of RFC 7677), without channel binding.

Theory of operation
-------------------

Four messages (RFC 5802 section 5)::

    C: gs2-header client-first-message-bare       n,,n=user,r=<client nonce>
    S: server-first-message                       r=<client+server nonce>,s=<salt>,i=4096
    C: client-final-message                       c=biws,r=<nonce>,p=<ClientProof>
    S: server-final-message                       v=<ServerSignature>

Both sides sign ``AuthMessage = client-first-bare "," server-first "," client-final
without the proof``. The client proves it knows ``ClientKey`` (``ClientProof = ClientKey XOR
HMAC(StoredKey, AuthMessage)``) and the server, by returning ``ServerSignature =
HMAC(ServerKey, AuthMessage)``, proves it holds the user's stored keys. The server here
never sees a password, only `ScramCredentials`.

Channel binding is not offered: the GS2 flag must be ``n`` (client cannot bind) or ``y``
(client could, but believes the server cannot, which is true as we do not advertise
``-PLUS``). ``p=...`` is refused with ``code="unsupported"``. The reserved ``m=`` attribute
must make the exchange fail wherever it appears (RFC 5802 section 5.1).

An unknown user is not revealed early. ``respond_with_credentials(None)`` continues with
keys derived from the user name and a secret key (``fake_salt_key``), so the salt looks
like a real one and the exchange fails only at the proof, exactly as a wrong password does.
For the salt to stay the same over several attempts, as a real user's does, pass the same
``fake_salt_key`` to every mechanism the server creates; by default each instance draws a
random one, which only hides the answer within a single exchange.

Iteration counts: RFC 7677 section 4 requires at least 4096; the client refuses fewer, and
also refuses more than `ScramSha256Client.MAX_ITERATIONS` so that a hostile server cannot
make it burn minutes of CPU.
"""

from __future__ import annotations

import hmac
import re
import secrets

from mailproto._util import LocalProtocolError

from ._base import (
    Challenge,
    ClientMechanism,
    NeedScramCredentials,
    ServerMechanism,
    ServerStep,
    Success,
    auth_failed,
)
from ._credentials import (
    ScramCredentials,
    hmac_sha256,
    salted_password,
    sha256,
)
from ._syntax import (
    Reject,
    b64decode,
    b64encode,
    decode_saslname,
    decode_utf8,
    encode_saslname,
    is_printable,
)

__all__ = ["ScramSha256Client", "ScramSha256Server"]

_MIN_ITERATIONS = 4096
# RFC 5802: attr-val = ALPHA "=" value; value = 1*value-char (anything but NUL and ",").
_ATTR_VAL = re.compile(r"[A-Za-z]=[^,\x00]+")
_POSIT_NUMBER = re.compile(r"[1-9][0-9]{0,9}")


def _message(data: bytes, what: str) -> str:
    text = decode_utf8(data, what)
    if "\x00" in text:
        raise Reject(f"{what} contains NUL")
    return text


def _attributes(text: str) -> list[str]:
    """Split a message into ``x=value`` parts, refusing the reserved ``m=`` anywhere."""
    parts = text.split(",")
    if any(part.startswith("m=") for part in parts):
        raise Reject("mandatory extensions are not supported", "unsupported")
    return parts


def _take(parts: list[str], index: int, attr: str, what: str) -> str:
    if index >= len(parts) or not parts[index].startswith(attr + "="):
        raise Reject(f"expected {what} ({attr}=)")
    return parts[index][2:]


def _check_extensions(parts: list[str]) -> None:
    # Optional extensions are ignored, but they must still be attribute syntax.
    if not all(_ATTR_VAL.fullmatch(part) for part in parts):
        raise Reject("bad attribute syntax")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(len(a))


def _nonce_argument(nonce: bytes | None) -> str:
    if nonce is None:
        return secrets.token_urlsafe(18)  # 24 characters of [A-Za-z0-9_-]
    text = nonce.decode("ascii", errors="replace")
    if not is_printable(text):
        raise ValueError("nonce must be printable ASCII without ','")
    return text


class ScramSha256Server(ServerMechanism):
    """SCRAM-SHA-256, server side.

    Steps: (empty `Challenge` if there was no initial response), `NeedScramCredentials`,
    `Challenge` (server-first), then `Success` whose ``data`` is the server-final message
    ``v=...`` for the protocol layer to deliver, or `Failure`.
    """

    name = "SCRAM-SHA-256"

    def __init__(
        self,
        *,
        nonce: bytes | None = None,
        fake_salt_key: bytes | None = None,
        fake_iterations: int = _MIN_ITERATIONS,
    ) -> None:
        """
        Args:
            nonce: the server's part of the nonce (random by default), printable ASCII
                without ``,``.
            fake_salt_key: secret for the made-up credentials of unknown users; share one
                across the server to keep their salts stable (see the module notes).
            fake_iterations: the iteration count shown for unknown users; match the one
                real users have.
        """
        super().__init__()
        self._server_nonce = _nonce_argument(nonce)
        if fake_salt_key is None:
            fake_salt_key = secrets.token_bytes(32)
        self._fake_salt_key = fake_salt_key
        self._fake_iterations = fake_iterations
        self._fake = False
        self._username = ""
        self._authzid = ""
        self._gs2_header = ""
        self._client_first_bare = ""
        self._nonce = ""
        self._server_first = ""
        self._creds: ScramCredentials | None = None

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"")
        return self._receive(initial_response)

    def _receive(self, data: bytes) -> ServerStep:
        if not self._server_first:
            return self._client_first(data)
        return self._client_final(data)

    def _client_first(self, data: bytes) -> ServerStep:
        text = _message(data, "client-first-message")
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise Reject("client-first-message has no GS2 header")
        flag, authz, bare = parts
        if flag.startswith("p="):
            raise Reject("channel binding is not supported", "unsupported")
        if flag not in ("n", "y"):
            raise Reject("bad GS2 channel binding flag")
        if authz:
            if not authz.startswith("a="):
                raise Reject("bad GS2 authorization identity")
            self._authzid = decode_saslname(authz[2:], "authorization identity")
        attributes = _attributes(bare)
        self._username = decode_saslname(_take(attributes, 0, "n", "user name"), "user name")
        client_nonce = _take(attributes, 1, "r", "client nonce")
        if not is_printable(client_nonce):
            raise Reject("bad client nonce")
        _check_extensions(attributes[2:])
        self._gs2_header = f"{flag},{authz},"
        self._client_first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        return NeedScramCredentials(username=self._username, authzid=self._authzid)

    def _respond_with_credentials(self, creds: ScramCredentials | None) -> ServerStep:
        if creds is None:
            self._fake = True
            key, user = self._fake_salt_key, self._username.encode("utf-8")
            creds = ScramCredentials(
                salt=hmac_sha256(key, b"salt\x00" + user)[:16],
                iterations=self._fake_iterations,
                stored_key=hmac_sha256(key, b"stored-key\x00" + user),
                server_key=hmac_sha256(key, b"server-key\x00" + user),
            )
        self._creds = creds
        self._server_first = f"r={self._nonce},s={b64encode(creds.salt)},i={creds.iterations}"
        return Challenge(data=self._server_first.encode("utf-8"))

    def _client_final(self, data: bytes) -> ServerStep:
        assert self._creds is not None
        text = _message(data, "client-final-message")
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise Reject("client-final-message has no proof")
        attributes = _attributes(without_proof)
        binding = b64decode(_take(attributes, 0, "c", "channel binding"), "channel binding")
        if binding != self._gs2_header.encode("utf-8"):
            raise Reject("channel binding does not repeat the GS2 header")
        if _take(attributes, 1, "r", "nonce") != self._nonce:
            raise Reject("nonce mismatch")
        _check_extensions(attributes[2:])
        proof = b64decode(proof_b64, "proof")
        if len(proof) != len(self._creds.stored_key):
            raise Reject("proof has the wrong length")

        auth_message = ",".join((self._client_first_bare, self._server_first, without_proof))
        auth_bytes = auth_message.encode("utf-8")
        client_key = _xor(proof, hmac_sha256(self._creds.stored_key, auth_bytes))
        genuine = hmac.compare_digest(sha256(client_key), self._creds.stored_key)
        if not genuine or self._fake:
            return auth_failed(self.name)
        signature = hmac_sha256(self._creds.server_key, auth_bytes)
        return Success(
            username=self._username,
            authzid=self._authzid,
            data=b"v=" + b64encode(signature).encode("ascii"),
        )


class ScramSha256Client(ClientMechanism):
    """SCRAM-SHA-256, client side, without channel binding (GS2 flag ``n``).

    After `respond` to the server-final message (or `verify_success` with it), the server
    is known to hold this user's keys; `verify_success` refuses a success that never came
    with a valid server signature.
    """

    name = "SCRAM-SHA-256"
    #: Highest iteration count accepted from a server (PBKDF2 cost is linear in it).
    MAX_ITERATIONS = 1_000_000

    def __init__(
        self, username: str, password: str, authzid: str = "", nonce: bytes | None = None
    ) -> None:
        """``nonce`` is the client nonce (random by default); printable ASCII without ``,``.

        The password is prepared with an approximation of SASLprep (see
        `mailproto.sasl.scram_credentials`); the user name is sent as given.

        Raises ValueError for an empty user name, a NUL in a name, or a bad nonce.
        """
        if not username:
            raise ValueError("SCRAM needs a non-empty username")
        if "\x00" in username or "\x00" in authzid:
            raise ValueError("names must not contain NUL")
        client_nonce = _nonce_argument(nonce)
        authz = f"a={encode_saslname(authzid)}" if authzid else ""
        self._gs2_header = f"n,{authz},"
        self._client_nonce = client_nonce
        self._client_first_bare = f"n={encode_saslname(username)},r={client_nonce}"
        self._password = password
        self._state = "start"  # -> "first-sent" -> "final-sent" -> "verified"
        self._server_signature = b""

    def _initial_response(self) -> bytes:
        if self._state != "start":
            raise LocalProtocolError("SCRAM-SHA-256: the first message was already produced")
        self._state = "first-sent"
        return (self._gs2_header + self._client_first_bare).encode("utf-8")

    def _respond(self, challenge: bytes) -> bytes:
        if self._state == "start":
            if challenge:
                raise Reject("the server's first challenge must be empty")
            return self._initial_response()
        if self._state == "first-sent":
            return self._client_final(challenge)
        if self._state == "final-sent":
            self._check_server_final(challenge)
            return b""
        raise Reject("unexpected challenge after the server-final message")

    def _client_final(self, challenge: bytes) -> bytes:
        server_first = _message(challenge, "server-first-message")
        attributes = _attributes(server_first)
        nonce = _take(attributes, 0, "r", "nonce")
        if (
            not is_printable(nonce)
            or not nonce.startswith(self._client_nonce)
            or len(nonce) == len(self._client_nonce)
        ):
            raise Reject("server nonce does not extend the client nonce")
        salt = b64decode(_take(attributes, 1, "s", "salt"), "salt")
        if not salt:
            raise Reject("empty salt")
        count = _take(attributes, 2, "i", "iteration count")
        if not _POSIT_NUMBER.fullmatch(count):
            raise Reject("bad iteration count")
        iterations = int(count)
        if iterations < _MIN_ITERATIONS:
            raise Reject("iteration count below 4096")
        if iterations > self.MAX_ITERATIONS:
            raise Reject("iteration count too high")
        _check_extensions(attributes[3:])

        binding = b64encode(self._gs2_header.encode("utf-8"))
        without_proof = f"c={binding},r={nonce}"
        auth_message = ",".join((self._client_first_bare, server_first, without_proof))
        auth_bytes = auth_message.encode("utf-8")
        salted = salted_password(self._password, salt, iterations)
        client_key = hmac_sha256(salted, b"Client Key")
        proof = _xor(client_key, hmac_sha256(sha256(client_key), auth_bytes))
        self._server_signature = hmac_sha256(hmac_sha256(salted, b"Server Key"), auth_bytes)
        self._state = "final-sent"
        return f"{without_proof},p={b64encode(proof)}".encode()

    def _check_server_final(self, data: bytes) -> None:
        text = _message(data, "server-final-message")
        attributes = text.split(",")
        if attributes[0].startswith("e="):
            error = attributes[0][2:]
            if is_printable(error) and len(error) <= 64:
                raise Reject(f"server error {error}", "auth")
            raise Reject("server error", "auth")
        signature = b64decode(_take(attributes, 0, "v", "server signature"), "verifier")
        if not hmac.compare_digest(signature, self._server_signature):
            raise Reject("server signature mismatch: the server is not authentic", "auth")
        self._state = "verified"

    def _verify_success(self, data: bytes | None) -> None:
        if data:
            if self._state not in ("final-sent", "verified"):
                raise Reject("server claimed success before the exchange was complete")
            self._check_server_final(data)
        elif self._state != "verified":
            raise Reject("server claimed success without proving its identity")
