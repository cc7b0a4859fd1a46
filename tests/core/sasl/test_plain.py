"""PLAIN (RFC 4616) and LOGIN: vectors, malformed input, client misuse."""

from __future__ import annotations

import pytest

from mailproto._util import LocalProtocolError
from mailproto.sasl import (
    Challenge,
    Failure,
    LoginClient,
    LoginServer,
    PlainClient,
    PlainServer,
    SASLError,
    Success,
    VerifyPassword,
)

# RFC 4616 section 4, the two example messages.
RFC4616_TIM = b"\x00tim\x00tanstaaftanstaaf"
RFC4616_KURT = b"Ursel\x00Kurt\x00xipj3plmq"


def test_rfc4616_examples_server() -> None:
    server = PlainServer()
    assert server.start(RFC4616_TIM) == VerifyPassword(
        username="tim", authzid="", password="tanstaaftanstaaf"
    )
    assert server.verified(True) == Success(username="tim", authzid="", data=None)
    assert server.done

    server = PlainServer()
    assert server.start(RFC4616_KURT) == VerifyPassword(
        username="Kurt", authzid="Ursel", password="xipj3plmq"
    )
    assert server.verified(False) == Failure(reason="PLAIN: authentication failed", code="auth")


def test_rfc4616_examples_client() -> None:
    assert PlainClient("tim", "tanstaaftanstaaf").initial_response() == RFC4616_TIM
    assert PlainClient("Kurt", "xipj3plmq", authzid="Ursel").initial_response() == RFC4616_KURT


def test_plain_without_initial_response() -> None:
    server = PlainServer()
    assert server.start(None) == Challenge(data=b"")
    assert isinstance(server.receive(RFC4616_TIM), VerifyPassword)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"tim",
        b"\x00tim",
        b"\x00tim\x00pw\x00",
        b"a\x00b\x00c\x00d",
        b"\x00\x00pw",
        b"\x00tim\x00",
        b"\x00\x00",
        b"\x00" + b"u" * 256 + b"\x00pw",
        b"\x00tim\x00" + b"p" * 256,
        b"a" * 256 + b"\x00tim\x00pw",
        b"\x00t\xffm\x00pw",
        b"\x00tim\x00p\xc3",
        b"\xed\xa0\x80\x00tim\x00pw",  # a UTF-8 encoded surrogate
    ],
)
@pytest.mark.parametrize("initial", [True, False])
def test_plain_malformed(message: bytes, initial: bool) -> None:
    server = PlainServer()
    if initial:
        step = server.start(message)
    else:
        assert server.start(None) == Challenge(data=b"")
        step = server.receive(message)
    assert isinstance(step, Failure)
    assert step.code == "malformed"
    assert step.reason.startswith("PLAIN: ")
    assert server.done


def test_plain_field_limits_are_inclusive() -> None:
    server = PlainServer()
    step = server.start(b"z" * 255 + b"\x00" + b"u" * 255 + b"\x00" + b"p" * 255)
    assert isinstance(step, VerifyPassword)


def test_plain_verified_rejects_error_json() -> None:
    server = PlainServer()
    server.start(RFC4616_TIM)
    with pytest.raises(ValueError):
        server.verified(False, b"{}")


def test_plain_client_errors() -> None:
    for args in [("", "pw"), ("tim", ""), ("t\x00m", "pw"), ("tim", "p" * 256)]:
        with pytest.raises(ValueError):
            PlainClient(*args)
    with pytest.raises(ValueError):
        PlainClient("tim", "pw", authzid="a\x00")
    with pytest.raises(ValueError):
        PlainClient("tim", "pw", authzid="é" * 128)

    client = PlainClient("tim", "pw")
    with pytest.raises(SASLError) as info:
        client.respond(b"Password?")
    assert info.value.reason == "PLAIN: the server's first challenge must be empty"
    assert client.respond(b"") == b"\x00tim\x00pw"
    with pytest.raises(SASLError):
        client.respond(b"")
    with pytest.raises(LocalProtocolError):
        client.initial_response()

    client = PlainClient("tim", "pw")
    client.initial_response()
    with pytest.raises(LocalProtocolError):
        client.initial_response()
    client.verify_success(None)
    client.verify_success(b"")
    with pytest.raises(SASLError):
        client.verify_success(b"surprise")


# --- LOGIN ------------------------------------------------------------------------------


def test_login_server_prompts() -> None:
    server = LoginServer()
    assert server.start(None) == Challenge(data=b"Username:")
    assert server.receive(b"tim") == Challenge(data=b"Password:")
    assert server.receive(b"tanstaaftanstaaf") == VerifyPassword(
        username="tim", authzid="", password="tanstaaftanstaaf"
    )
    assert server.verified(True) == Success(username="tim", authzid="", data=None)


def test_login_server_initial_response_is_the_user_name() -> None:
    server = LoginServer()
    assert server.start(b"tim") == Challenge(data=b"Password:")
    assert isinstance(server.receive(b"pw"), VerifyPassword)
    assert server.verified(False) == Failure(reason="LOGIN: authentication failed", code="auth")


@pytest.mark.parametrize(
    ("username", "password"),
    [(b"", b"pw"), (b"\xff", b"pw"), (b"tim", b""), (b"tim", b"\xc3(")],
)
def test_login_server_malformed(username: bytes, password: bytes) -> None:
    server = LoginServer()
    server.start(None)
    step = server.receive(username)
    if isinstance(step, Challenge):
        step = server.receive(password)
    assert isinstance(step, Failure)
    assert step.code == "malformed"


def test_login_verified_rejects_error_json() -> None:
    server = LoginServer()
    server.start(b"tim")
    server.receive(b"pw")
    with pytest.raises(ValueError):
        server.verified(True, b"{}")


def test_login_client() -> None:
    client = LoginClient("tim", "pw")
    assert client.initial_response() is None
    # The prompt texts are ignored: old servers send "User Name" and other variants.
    assert client.respond(b"User Name\x00") == b"tim"
    assert client.respond(b"Password:") == b"pw"
    with pytest.raises(SASLError):
        client.respond(b"Password:")
    with pytest.raises(ValueError):
        LoginClient("", "pw")
    with pytest.raises(ValueError):
        LoginClient("tim", "")
