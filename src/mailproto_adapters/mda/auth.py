"""Authentication for the MDA's servers (IMAP, POP3, and SMTP submission if it wants).

`Authenticator` answers the three ways a mail client logs in:

* SASL (IMAP AUTHENTICATE, POP3 AUTH): `Authenticator.authenticate` returns an
  `AuthExchange`, a small object the protocol server feeds with the client's decoded
  answers; it gives back either a `mailproto.sasl.Challenge` to send or a final
  `AuthOutcome`. The mechanism's questions to the application (check this password,
  give me the SCRAM keys) are answered inside, from the `UserDB`, so the servers only
  shuttle bytes. Every call is synchronous and may spend one scrypt (tens of ms): async
  servers run it in a worker thread.
* IMAP LOGIN and POP3 USER/PASS: `Authenticator.check_login`.
* POP3 APOP: `Authenticator.check_apop`, for users who opted into storing the secret.

Failed logins are throttled, never locked out. Failures are counted per user and per
client IP (IPv6 per /64) in a sliding window. Each failed answer carries a delay the
server waits before sending it (0.5 s doubling up to 8 s with the failures of that user
or IP); an IP past ``max_ip_failures`` in the window is refused outright with a temporary
failure, without its password being checked. A user name alone never causes a refusal:
an attacker failing as ``alice`` only slows the answers to failed attempts, and alice's
correct password, from anywhere not itself refused, still gets in at once.

Logs go to the ``mailproto.auth`` logger: user (repr, as the client sent it), IP,
mechanism and outcome. Never a password, a hash or a proof.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

import attrs

from mailproto.sasl import (
    Challenge,
    Failure,
    NeedScramCredentials,
    ScramSha256Server,
    ServerMechanism,
    ServerStep,
    Success,
    VerifyPassword,
    server_mechanism,
)

from .users import UserDB, validate_name

__all__ = [
    "PLAINTEXT_MECHANISMS",
    "AuthExchange",
    "AuthOutcome",
    "Authenticator",
    "OutcomeCode",
]

log = logging.getLogger("mailproto.auth")

PLAINTEXT_MECHANISMS = ("PLAIN", "LOGIN")
"""Mechanisms that send the password itself: only over TLS unless a listener allows."""

OutcomeCode = Literal[
    "ok", "auth", "malformed", "unsupported", "encryption-required", "aborted", "temporary"
]
"""How a login ended, for the server to pick its reply:

* ``ok``: authenticated (IMAP OK, POP3 +OK, SMTP 235).
* ``auth``: bad credentials, unknown or disabled user: the client learns no more than
  that (IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR [AUTH], SMTP 535 5.7.8).
* ``malformed``: the client broke the mechanism's syntax (SMTP 501, IMAP BAD/NO).
* ``unsupported``: unknown or unoffered mechanism, or a feature it asked for (IMAP NO,
  SMTP 504).
* ``encryption-required``: a plaintext mechanism or LOGIN/USER without TLS (IMAP NO
  [PRIVACYREQUIRED], POP3 -ERR, SMTP 538 5.7.11).
* ``aborted``: the client cancelled with ``*`` (IMAP BAD, SMTP 501).
* ``temporary``: throttled, try later (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP],
  SMTP 454 4.7.0).
"""


@attrs.frozen(kw_only=True)
class AuthOutcome:
    """The end of a login attempt.

    ``username`` is the canonical user on success (the one to open the store for) and the
    name as the client sent it otherwise. ``delay`` is how long the server should wait
    before answering (0 on success). ``data`` is SASL's "additional data with success"
    (SCRAM's ``v=...``). ``reason`` is for logs only, safe to write, never for the client.
    """

    ok: bool
    code: OutcomeCode
    username: str
    reason: str = ""
    delay: float = 0.0
    data: bytes | None = None


_REASONS = {"bad": "bad password", "unknown": "unknown user", "disabled": "disabled"}


class _Throttle:
    """Failure timestamps per key in a sliding window, bounded in memory."""

    def __init__(self, window: float, clock: Callable[[], float], max_keys: int) -> None:
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self._window:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def count(self, key: str) -> int:
        events = self._prune(key, self._clock())
        return len(events) if events is not None else 0

    def add(self, key: str) -> None:
        now = self._clock()
        events = self._prune(key, now)
        if events is None:
            if len(self._events) >= self._max_keys:
                self._evict(now)
            events = self._events[key] = deque()
        events.append(now)
        # A key under attack grows no further than needed to exceed any threshold.
        while len(events) > 1024:
            events.popleft()

    def _evict(self, now: float) -> None:
        for key in list(self._events):
            self._prune(key, now)
        if len(self._events) >= self._max_keys:
            # Still full of live keys: forget those whose last failure is oldest.
            by_age = sorted(self._events, key=lambda k: self._events[k][-1])
            for key in by_age[: len(by_age) - self._max_keys // 2]:
                del self._events[key]

    def clear(self, key: str) -> None:
        self._events.pop(key, None)


def _ip_key(peer_ip: str) -> str:
    """One counter per IPv4 address, per /64 for IPv6 (one host usually owns the /64)."""
    try:
        address = ipaddress.ip_address(peer_ip.split("%", 1)[0])
    except ValueError:
        return peer_ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _user_key(username: str) -> str:
    try:
        return validate_name(username)
    except ValueError:
        return username[:256]


class Authenticator:
    """Checks logins against a `UserDB` and throttles failures. Thread-safe; one per
    server process, shared by all its listeners so an IP's failures count everywhere."""

    def __init__(
        self,
        users: UserDB,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: float = 900.0,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        max_ip_failures: int = 20,
        max_tracked: int = 100_000,
        hostname: str = "localhost",
    ) -> None:
        """
        Args:
            users: where users and their keys live.
            clock: monotonic seconds; tests pass a fake one.
            window: seconds a failure counts for.
            base_delay, max_delay: the delay after the first failure, doubling with each
                further one, and its cap.
            max_ip_failures: above this many failures in the window an IP is refused.
            max_tracked: bound on the users and IPs remembered (memory under a spray).
            hostname: for mechanisms that put it in a challenge.
        """
        self.users = users
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_ip_failures = max_ip_failures
        self.hostname = hostname
        self._lock = threading.Lock()
        self._by_user = _Throttle(window, clock, max_tracked)
        self._by_ip = _Throttle(window, clock, max_tracked)
        # One secret per server, so an unknown user's fake SCRAM salt stays the same from
        # one attempt to the next, as a real user's does.
        self._fake_salt_key = secrets.token_bytes(32)

    # -- policy -------------------------------------------------------------------------

    def mechanisms(self, tls: bool, allow_plaintext: bool) -> list[str]:
        """SASL mechanisms to advertise: SCRAM-SHA-256 always, PLAIN and LOGIN only over
        TLS or where the listener allows them (the loopback embedded default)."""
        names = ["SCRAM-SHA-256"]
        if tls or allow_plaintext:
            names += PLAINTEXT_MECHANISMS
        return names

    def delay(self, user: str, ip: str) -> float:
        """Seconds to wait before answering a failed attempt by ``user`` from ``ip``:
        0 without recent failures, then ``base_delay`` doubling per failure of the user
        or of the IP (whichever has more), capped at ``max_delay``."""
        with self._lock:
            failures = max(self._by_user.count(_user_key(user)), self._by_ip.count(_ip_key(ip)))
        if failures == 0:
            return 0.0
        return float(min(self.base_delay * 2.0 ** min(failures - 1, 62), self.max_delay))

    def refused(self, ip: str) -> bool:
        """True while ``ip`` has more than ``max_ip_failures`` failures in the window."""
        with self._lock:
            return self._by_ip.count(_ip_key(ip)) > self.max_ip_failures

    # -- the three ways in --------------------------------------------------------------

    def authenticate(
        self,
        mechanism: str,
        *,
        peer_ip: str,
        tls: bool,
        allow_plaintext: bool = False,
        nonce: bytes | None = None,
    ) -> AuthExchange:
        """Begin a SASL exchange; call `AuthExchange.start` with the initial response.

        ``nonce`` replaces SCRAM's random server nonce, for tests.
        """
        return AuthExchange(self, mechanism, peer_ip, tls, allow_plaintext, nonce)

    def check_login(
        self,
        user: str,
        password: str,
        peer_ip: str,
        *,
        tls: bool = True,
        allow_plaintext: bool = True,
    ) -> AuthOutcome:
        """IMAP LOGIN and POP3 USER/PASS. These send the password in the clear, so pass
        the connection's ``tls`` and the listener's ``allow_plaintext`` to have them
        refused as ``encryption-required`` (the defaults leave that to the caller)."""
        if not (tls or allow_plaintext):
            return self._finish("LOGIN-CMD", user, peer_ip, "encryption-required", "no TLS")
        if self.refused(peer_ip):
            return self._finish("LOGIN-CMD", user, peer_ip, "temporary", "IP throttled")
        return self._password_outcome("LOGIN-CMD", user, password, peer_ip)

    def check_apop(self, user: str, digest: str, timestamp: str, peer_ip: str) -> AuthOutcome:
        """POP3 APOP: ``digest`` is the client's hex MD5 of the greeting's ``timestamp``
        (with its angle brackets) followed by the secret. Fails for users who did not opt
        into APOP, exactly as for a wrong digest."""
        if self.refused(peer_ip):
            return self._finish("APOP", user, peer_ip, "temporary", "IP throttled")
        secret = self.users.apop_secret(user)
        expected = hashlib.md5(
            (timestamp + (secret or "")).encode("utf-8"), usedforsecurity=False
        ).hexdigest()
        ok = secret is not None and hmac.compare_digest(
            expected.encode("ascii"), digest.lower().encode("utf-8", "replace")
        )
        if ok:
            return self._finish("APOP", user, peer_ip, "ok", "")
        reason = "no APOP secret or unknown user" if secret is None else "bad digest"
        return self._finish("APOP", user, peer_ip, "auth", reason)

    # -- internals ------------------------------------------------------------------------

    def _password_outcome(
        self, mechanism: str, user: str, password: str, peer_ip: str, data: bytes | None = None
    ) -> AuthOutcome:
        check = self.users.check_password(user, password)
        if check == "ok":
            return self._finish(mechanism, user, peer_ip, "ok", "", data)
        return self._finish(mechanism, user, peer_ip, "auth", _REASONS[check])

    def _finish(
        self,
        mechanism: str,
        user: str,
        peer_ip: str,
        code: OutcomeCode,
        reason: str,
        data: bytes | None = None,
    ) -> AuthOutcome:
        """Count, log and wrap up one attempt."""
        if code == "ok":
            canonical = validate_name(user)
            log.info("login ok user=%r ip=%s mechanism=%s", canonical, peer_ip, mechanism)
            return AuthOutcome(ok=True, code="ok", username=canonical, data=data)
        if code in ("auth", "malformed"):
            # Count what guesses a password; a refusal, an abort, a missing TLS do not.
            with self._lock:
                self._by_user.add(_user_key(user))
                self._by_ip.add(_ip_key(peer_ip))
        delay = self.delay(user, peer_ip) if code != "encryption-required" else 0.0
        log.warning(
            "login failed user=%r ip=%s mechanism=%s outcome=%s reason=%s",
            user,
            peer_ip,
            mechanism,
            code,
            reason,
        )
        return AuthOutcome(ok=False, code=code, username=user, reason=reason, delay=delay)


class AuthExchange:
    """One SASL exchange, sans I/O: the server passes decoded client data in and gets a
    `Challenge` to send (base64 and framing are its job) or the final `AuthOutcome`.

    ``start(initial_response)`` first (None when the client sent none), then
    ``receive(data)`` for every answer to a challenge, or ``abort()`` when the client
    cancels (``*``). ``done`` is true once an outcome was returned.
    """

    def __init__(
        self,
        auth: Authenticator,
        mechanism: str,
        peer_ip: str,
        tls: bool,
        allow_plaintext: bool,
        nonce: bytes | None,
    ) -> None:
        self._auth = auth
        self.mechanism = mechanism.upper() if mechanism.isascii() else mechanism
        self.peer_ip = peer_ip
        self._username = ""
        self._outcome: AuthOutcome | None = None
        self._early: AuthOutcome | None = None
        self._mech: ServerMechanism | None = None
        if self.mechanism not in auth.mechanisms(tls=True, allow_plaintext=True):
            self._early = auth._finish(
                self.mechanism[:32], "", peer_ip, "unsupported", "mechanism not offered"
            )
        elif self.mechanism not in auth.mechanisms(tls, allow_plaintext):
            self._early = auth._finish(
                self.mechanism, "", peer_ip, "encryption-required", "plaintext without TLS"
            )
        elif auth.refused(peer_ip):
            self._early = auth._finish(self.mechanism, "", peer_ip, "temporary", "IP throttled")
        elif self.mechanism == "SCRAM-SHA-256":
            self._mech = ScramSha256Server(
                nonce=nonce,
                fake_salt_key=auth._fake_salt_key,
                fake_iterations=auth.users.scram_iterations,
            )
        else:
            self._mech = server_mechanism(self.mechanism, hostname=auth.hostname)

    @property
    def done(self) -> bool:
        return self._outcome is not None

    @property
    def outcome(self) -> AuthOutcome | None:
        return self._outcome

    def start(self, initial_response: bytes | None) -> Challenge | AuthOutcome:
        """Begin with the client's initial response (None if it sent none)."""
        if self._early is not None:
            self._outcome = self._early
            return self._early
        assert self._mech is not None
        return self._drive(self._mech.start(initial_response))

    def receive(self, data: bytes) -> Challenge | AuthOutcome:
        """The client's decoded answer to the last challenge."""
        assert self._mech is not None
        return self._drive(self._mech.receive(data))

    def abort(self) -> AuthOutcome:
        """The client cancelled the exchange."""
        self._outcome = self._auth._finish(
            self.mechanism, self._username, self.peer_ip, "aborted", "cancelled by client"
        )
        return self._outcome

    def _drive(self, step: ServerStep) -> Challenge | AuthOutcome:
        """Answer the mechanism's questions until it needs the client or is done."""
        assert self._mech is not None
        while True:
            match step:
                case Challenge():
                    return step
                case VerifyPassword(username=user, authzid=authzid, password=password):
                    self._username = user
                    check = self._auth.users.check_password(user, password)
                    if not self._authzid_ok(user, authzid):
                        return self._end("auth", "authzid differs from user")
                    step = self._mech.verified(check == "ok")
                    if check != "ok":
                        return self._end("auth", _REASONS[check])
                case NeedScramCredentials(username=user, authzid=authzid):
                    self._username = user
                    creds = self._auth.users.scram_credentials(user)
                    if not self._authzid_ok(user, authzid):
                        creds = None
                    step = self._mech.respond_with_credentials(creds)
                case Success(username=user, data=data):
                    self._outcome = self._auth._finish(
                        self.mechanism, user, self.peer_ip, "ok", "", data
                    )
                    return self._outcome
                case Failure(reason=reason, code=code):
                    outcome_code: OutcomeCode = code
                    if code == "auth":
                        reason = self._why(self._username)
                    return self._end(outcome_code, reason)
                case _:  # CRAM-MD5 and OAuth are not offered
                    return self._end("unsupported", "mechanism step not supported")

    def _authzid_ok(self, user: str, authzid: str) -> bool:
        """No proxy authorization: the authzid, if any, must name the user itself."""
        if not authzid:
            return True
        try:
            return validate_name(authzid) == validate_name(user)
        except ValueError:
            return False

    def _why(self, user: str) -> str:
        found = self._auth.users.get(user)
        if found is None:
            return "unknown user"
        return "disabled" if not found.enabled else "bad credentials"

    def _end(self, code: OutcomeCode, reason: str) -> AuthOutcome:
        self._outcome = self._auth._finish(
            self.mechanism, self._username, self.peer_ip, code, reason
        )
        return self._outcome
