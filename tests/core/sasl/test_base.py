"""What all mechanisms share: the step values, the call-order rules, the registry."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

import mailproto.sasl as sasl
from mailproto._util import LocalProtocolError, ProtocolError
from mailproto.sasl import (
    SERVER_MECHANISMS,
    Challenge,
    Failure,
    NeedCramMD5Secret,
    NeedScramCredentials,
    SASLError,
    ServerMechanism,
    Success,
    VerifyPassword,
    VerifyToken,
    scram_credentials,
    server_mechanism,
)


def test_public_names() -> None:
    assert sorted(sasl.__all__) == sorted(set(sasl.__all__))
    for name in sasl.__all__:
        assert hasattr(sasl, name)


def test_steps_are_frozen_values() -> None:
    step = Challenge(data=b"x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        step.data = b"y"  # type: ignore[misc]
    assert step == Challenge(data=b"x")
    assert hash(step) == hash(Challenge(data=b"x"))
    with pytest.raises(TypeError):
        Challenge(b"x")  # type: ignore[call-arg]


def test_failure_code_is_checked() -> None:
    assert Failure(reason="r", code="aborted").code == "aborted"
    with pytest.raises(ValueError):
        Failure(reason="r", code="nope")  # type: ignore[arg-type]


def test_secrets_are_not_in_repr() -> None:
    assert "hunter2" not in repr(VerifyPassword(username="u", authzid="", password="hunter2"))
    assert "tok" not in repr(VerifyToken(username="u", token="tok", kind="XOAUTH2"))


def test_sasl_error() -> None:
    error = SASLError("PLAIN: nope")
    assert error.reason == "PLAIN: nope"
    assert str(error) == "PLAIN: nope"
    assert not isinstance(error, ProtocolError)


@pytest.mark.parametrize("name", SERVER_MECHANISMS)
def test_factory_is_case_insensitive(name: str) -> None:
    for spelling in (name, name.lower(), name.title()):
        mech = server_mechanism(spelling)
        assert isinstance(mech, ServerMechanism)
        assert mech.name == name
        assert not mech.done


@pytest.mark.parametrize(
    "name", ["", "DIGEST-MD5", "GSSAPI", "pla\u0131n", "SCRAM-SHA-1", "PLAIN "]
)
def test_factory_unknown(name: str) -> None:
    with pytest.raises(ValueError):
        server_mechanism(name)


def test_factory_hostname_is_checked() -> None:
    with pytest.raises(ValueError):
        server_mechanism("CRAM-MD5", hostname="a b")
    # Mechanisms that do not use them ignore hostname and nonce.
    for name in ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"):
        server_mechanism(name, hostname="a b", nonce=b"")


@pytest.mark.parametrize("name", SERVER_MECHANISMS)
def test_call_order(name: str) -> None:
    mech = server_mechanism(name)
    creds = scram_credentials("pw", iterations=4096)
    wrong_calls: dict[str, Callable[[], object]] = {
        "receive": lambda: mech.receive(b""),
        "verified": lambda: mech.verified(True),
        "respond_with_secret": lambda: mech.respond_with_secret("pw"),
        "respond_with_credentials": lambda: mech.respond_with_credentials(creds),
        "start": lambda: mech.start(None),
    }
    for method in ("receive", "verified", "respond_with_secret", "respond_with_credentials"):
        with pytest.raises(LocalProtocolError, match=f"can't call {method}"):
            wrong_calls[method]()

    step = mech.start(None)
    assert isinstance(step, Challenge)
    allowed = "receive"
    for method, call in wrong_calls.items():
        if method != allowed:
            with pytest.raises(LocalProtocolError, match=r"expects receive\(\)"):
                call()

    step = mech.receive(b"\xff")  # malformed for every mechanism's first answer
    if isinstance(step, Challenge):  # LOGIN asks for the password next
        step = mech.receive(b"")
    assert isinstance(step, Failure)
    assert mech.done
    for call in wrong_calls.values():
        with pytest.raises(LocalProtocolError, match="it is done"):
            call()


def test_continuations_are_guarded() -> None:
    mech = server_mechanism("PLAIN")
    assert isinstance(mech.start(b"\x00u\x00p"), VerifyPassword)
    with pytest.raises(LocalProtocolError):
        mech.receive(b"")
    with pytest.raises(LocalProtocolError):
        mech.respond_with_secret("p")
    assert isinstance(mech.verified(True), Success)

    mech = server_mechanism("CRAM-MD5")
    mech.start(None)
    assert isinstance(mech.receive(b"u " + b"0" * 32), NeedCramMD5Secret)
    with pytest.raises(LocalProtocolError):
        mech.verified(True)

    mech = server_mechanism("SCRAM-SHA-256")
    assert isinstance(mech.start(b"n,,n=u,r=abc"), NeedScramCredentials)
    with pytest.raises(LocalProtocolError):
        mech.respond_with_secret("p")
    assert isinstance(mech.respond_with_credentials(None), Challenge)
