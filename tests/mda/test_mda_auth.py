"""Authenticator: SASL exchanges, LOGIN/APOP checks, throttling, and clean logs."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from mailproto.sasl import Challenge, LoginClient, PlainClient, ScramSha256Client
from mailproto_adapters.mda.auth import Authenticator, AuthExchange, AuthOutcome
from mailproto_adapters.mda.users import ScryptParams, UserDB

PASSWORD = "Tr0ub4dor&3-secret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> UserDB:
    users = UserDB(tmp_path / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add("alice", PASSWORD, apop=True)
    users.add("bob", "bob-pw")
    return users


@pytest.fixture
def auth(db: UserDB, clock: FakeClock) -> Authenticator:
    return Authenticator(db, clock=clock, max_ip_failures=5)


def run_sasl(
    exchange: AuthExchange, client: ScramSha256Client | PlainClient | LoginClient
) -> AuthOutcome:
    """Shuttle bytes between a core client mechanism and the exchange, as a server would."""
    result = exchange.start(client.initial_response())
    while isinstance(result, Challenge):
        result = exchange.receive(client.respond(result.data))
    assert exchange.done
    assert exchange.outcome is result
    if result.ok:
        client.verify_success(result.data)
    return result


# --- mechanisms ------------------------------------------------------------------------


def test_mechanisms_offered(auth: Authenticator) -> None:
    assert auth.mechanisms(tls=False, allow_plaintext=False) == ["SCRAM-SHA-256"]
    assert auth.mechanisms(tls=True, allow_plaintext=False) == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    assert auth.mechanisms(tls=False, allow_plaintext=True) == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]


def test_scram_full_exchange_succeeds(auth: Authenticator) -> None:
    exchange = auth.authenticate("scram-sha-256", peer_ip="192.0.2.1", tls=False)
    outcome = run_sasl(exchange, ScramSha256Client("Alice", PASSWORD))
    assert outcome.ok
    assert outcome.code == "ok"
    assert outcome.username == "alice"
    assert outcome.data is not None
    assert outcome.data.startswith(b"v=")
    assert outcome.delay == 0


def test_scram_without_initial_response(auth: Authenticator) -> None:
    exchange = auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.1", tls=False)
    client = ScramSha256Client("alice", PASSWORD)
    result = exchange.start(None)
    assert isinstance(result, Challenge)
    assert result.data == b""
    while isinstance(result, Challenge):
        result = exchange.receive(client.respond(result.data))
    assert result.ok


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", PASSWORD)])
def test_scram_fails_with_wrong_password_or_user(
    auth: Authenticator, user: str, password: str
) -> None:
    exchange = auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.1", tls=False)
    outcome = run_sasl(exchange, ScramSha256Client(user, password))
    assert not outcome.ok
    assert outcome.code == "auth"
    assert outcome.delay > 0


def test_scram_unknown_user_salt_is_stable(auth: Authenticator) -> None:
    salts = set()
    for _ in range(2):
        exchange = auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.1", tls=False)
        client = ScramSha256Client("nobody", "x")
        first = exchange.start(client.initial_response())
        assert isinstance(first, Challenge)
        salts.add(first.data.split(b",")[1])
    assert len(salts) == 1


def test_scram_disabled_user_fails(auth: Authenticator, db: UserDB) -> None:
    db.update("alice", enabled=False)
    exchange = auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.1", tls=False)
    outcome = run_sasl(exchange, ScramSha256Client("alice", PASSWORD))
    assert outcome.code == "auth"
    assert outcome.reason == "disabled"


def test_scram_authzid_of_another_user_fails(auth: Authenticator) -> None:
    exchange = auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.1", tls=False)
    outcome = run_sasl(exchange, ScramSha256Client("alice", PASSWORD, authzid="bob"))
    assert outcome.code == "auth"
    exchange = auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.2", tls=False)
    assert run_sasl(exchange, ScramSha256Client("alice", PASSWORD, authzid="Alice")).ok


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_plaintext_mechanisms_need_tls(auth: Authenticator, mechanism: str) -> None:
    exchange = auth.authenticate(mechanism, peer_ip="192.0.2.1", tls=False)
    outcome = exchange.start(None)
    assert isinstance(outcome, AuthOutcome)
    assert outcome.code == "encryption-required"
    assert exchange.done


@pytest.mark.parametrize(("tls", "allow"), [(True, False), (False, True)], ids=["tls", "allowed"])
def test_plain_and_login_work_over_tls_or_when_allowed(
    auth: Authenticator, tls: bool, allow: bool
) -> None:
    for client in (PlainClient("alice", PASSWORD), LoginClient("alice", PASSWORD)):
        exchange = auth.authenticate(
            client.name, peer_ip="192.0.2.1", tls=tls, allow_plaintext=allow
        )
        outcome = run_sasl(exchange, client)
        assert outcome.ok
        assert outcome.username == "alice"
    exchange = auth.authenticate("PLAIN", peer_ip="192.0.2.1", tls=tls, allow_plaintext=allow)
    assert run_sasl(exchange, PlainClient("alice", "nope")).code == "auth"


def test_plain_authzid_must_be_the_user(auth: Authenticator) -> None:
    exchange = auth.authenticate("PLAIN", peer_ip="192.0.2.1", tls=True)
    outcome = run_sasl(exchange, PlainClient("alice", PASSWORD, authzid="bob"))
    assert outcome.code == "auth"


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "XOAUTH2", "GSSAPI", "SCRAM-SHA-1"])
def test_unoffered_mechanisms(auth: Authenticator, mechanism: str) -> None:
    outcome = auth.authenticate(mechanism, peer_ip="192.0.2.1", tls=True).start(b"x")
    assert isinstance(outcome, AuthOutcome)
    assert outcome.code == "unsupported"


def test_malformed_and_aborted(auth: Authenticator) -> None:
    outcome = auth.authenticate("PLAIN", peer_ip="192.0.2.1", tls=True).start(b"no-nuls")
    assert isinstance(outcome, AuthOutcome)
    assert outcome.code == "malformed"
    exchange = auth.authenticate("LOGIN", peer_ip="192.0.2.1", tls=True)
    assert isinstance(exchange.start(None), Challenge)
    assert exchange.abort().code == "aborted"


# --- LOGIN command and APOP ---------------------------------------------------------------


def test_check_login(auth: Authenticator, db: UserDB) -> None:
    assert auth.check_login("ALICE", PASSWORD, "192.0.2.1").username == "alice"
    assert auth.check_login("alice", "bad", "192.0.2.1").code == "auth"
    assert auth.check_login("nobody", "bad", "192.0.2.1").reason == "unknown user"
    outcome = auth.check_login("alice", PASSWORD, "192.0.2.1", tls=False, allow_plaintext=False)
    assert outcome.code == "encryption-required"
    db.update("bob", enabled=False)
    assert auth.check_login("bob", "bob-pw", "192.0.2.9").code == "auth"


def test_check_apop(auth: Authenticator) -> None:
    stamp = "<1896.697170952@dbc.mtview.ca.us>"
    good = hashlib.md5((stamp + PASSWORD).encode()).hexdigest()
    assert auth.check_apop("alice", good, stamp, "192.0.2.1").ok
    assert auth.check_apop("alice", good.upper(), stamp, "192.0.2.1").ok
    assert auth.check_apop("alice", good, "<other@x>", "192.0.2.1").code == "auth"
    # bob did not opt in: even the right digest of his password fails.
    bob = hashlib.md5((stamp + "bob-pw").encode()).hexdigest()
    assert auth.check_apop("bob", bob, stamp, "192.0.2.1").code == "auth"
    assert auth.check_apop("nobody", "00" * 16, stamp, "192.0.2.1").code == "auth"


# --- throttling -------------------------------------------------------------------------


def test_delays_grow_and_are_capped(auth: Authenticator) -> None:
    assert auth.delay("alice", "192.0.2.1") == 0
    delays = [auth.check_login("alice", "bad", f"198.51.100.{i}").delay for i in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    # The per-user count slows failures from a fresh IP too...
    assert auth.delay("alice", "203.0.113.7") == 8.0
    # ...but never blocks the right password from an IP without failures.
    outcome = auth.check_login("alice", PASSWORD, "203.0.113.7")
    assert outcome.ok
    assert outcome.delay == 0


def test_window_expires(auth: Authenticator, clock: FakeClock) -> None:
    for _ in range(3):
        auth.check_login("alice", "bad", "192.0.2.1")
    assert auth.delay("alice", "192.0.2.1") == 2.0
    clock.now += 600
    auth.check_login("alice", "bad", "192.0.2.1")
    assert auth.delay("alice", "192.0.2.1") == 4.0
    clock.now += 301  # the first three are now older than the 900 s window
    assert auth.delay("alice", "192.0.2.1") == 0.5
    clock.now += 600
    assert auth.delay("alice", "192.0.2.1") == 0


def test_ip_refused_after_too_many_failures(auth: Authenticator, clock: FakeClock) -> None:
    ip = "192.0.2.66"
    for i in range(6):  # max_ip_failures=5: the 6th failure crosses the line
        assert auth.check_login(f"user{i}", "guess", ip).code == "auth"
    assert auth.refused(ip)
    # Refused without the password being looked at, even a right one, with every method.
    refused = auth.check_login("alice", PASSWORD, ip)
    assert refused.code == "temporary"
    assert not refused.ok
    assert refused.delay > 0
    scram = auth.authenticate("SCRAM-SHA-256", peer_ip=ip, tls=True).start(None)
    assert isinstance(scram, AuthOutcome)
    assert scram.code == "temporary"
    stamp = "<1.2@x>"
    digest = hashlib.md5((stamp + PASSWORD).encode()).hexdigest()
    assert auth.check_apop("alice", digest, stamp, ip).code == "temporary"
    # Other IPs are unaffected, and the refusal ends with the window.
    assert auth.check_login("alice", PASSWORD, "192.0.2.67").ok
    clock.now += 901
    assert not auth.refused(ip)
    assert auth.check_login("alice", PASSWORD, ip).ok


def test_no_permanent_lockout_of_a_victim(auth: Authenticator, clock: FakeClock) -> None:
    # An attacker hammers alice from many addresses for a long time.
    for round_ in range(50):
        for i in range(10):
            auth.check_login("alice", "guess", f"10.{round_}.0.{i}")
        clock.now += 60
    assert auth.delay("alice", "192.0.2.200") == 8.0  # slowed, capped
    assert auth.check_login("alice", PASSWORD, "192.0.2.200").ok


def test_ipv6_counted_per_64(auth: Authenticator) -> None:
    for i in range(6):
        auth.check_login("alice", "bad", f"2001:db8:1:2::{i + 1}")
    assert auth.refused("2001:db8:1:2:ffff::1")
    assert not auth.refused("2001:db8:1:3::1")
    assert not auth.refused("not-an-ip")


def test_failure_memory_is_bounded(db: UserDB, clock: FakeClock) -> None:
    small = Authenticator(db, clock=clock, max_tracked=10)
    for i in range(100):
        small.check_login(f"spray{i}", "x", f"10.0.0.{i}")
    assert len(small._by_user._events) <= 10
    assert len(small._by_ip._events) <= 10


# --- logs -------------------------------------------------------------------------------


def test_logs_never_contain_a_password(
    auth: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD, "wrong-Pa55word", "stdin-guess"]
    auth.check_login("alice", PASSWORD, "192.0.2.1")
    auth.check_login("alice", secrets[1], "192.0.2.1")
    run_sasl(
        auth.authenticate("PLAIN", peer_ip="192.0.2.1", tls=True), PlainClient("alice", PASSWORD)
    )
    run_sasl(
        auth.authenticate("LOGIN", peer_ip="192.0.2.1", tls=True),
        LoginClient("alice", secrets[2]),
    )
    run_sasl(
        auth.authenticate("SCRAM-SHA-256", peer_ip="192.0.2.1", tls=True),
        ScramSha256Client("alice", secrets[1]),
    )
    records = [r for r in caplog.records if r.name == "mailproto.auth"]
    assert len(records) == 5
    assert all("192.0.2.1" in r.getMessage() and "alice" in r.getMessage() for r in records)
    assert [r.levelno for r in records] == [logging.INFO, logging.WARNING, logging.INFO,
                                           logging.WARNING, logging.WARNING]  # fmt: skip
    for secret in secrets:
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in record.getMessage()
            assert secret not in repr(record.args)
