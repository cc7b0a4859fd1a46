"""CRAM-MD5 (RFC 2195): the RFC example, challenge format, malformed answers."""

from __future__ import annotations

import re

import pytest

from mailproto.sasl import (
    Challenge,
    CramMD5Client,
    CramMD5Server,
    Failure,
    NeedCramMD5Secret,
    SASLError,
    Success,
    server_mechanism,
)

# RFC 2195 section 2.
RFC2195_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
RFC2195_RESPONSE = b"tim b913a602c7eda7a495b4e6e7334d3890"


def rfc_server() -> CramMD5Server:
    return CramMD5Server(hostname="postoffice.reston.mci.net", nonce=b"1896.697170952")


def test_rfc2195_example_server() -> None:
    server = rfc_server()
    assert server.start(None) == Challenge(data=RFC2195_CHALLENGE)
    assert server.receive(RFC2195_RESPONSE) == NeedCramMD5Secret(username="tim")
    assert server.respond_with_secret("tanstaaftanstaaf") == Success(
        username="tim", authzid="", data=None
    )


def test_rfc2195_example_client() -> None:
    client = CramMD5Client("tim", "tanstaaftanstaaf")
    assert client.initial_response() is None
    assert client.respond(RFC2195_CHALLENGE) == RFC2195_RESPONSE
    with pytest.raises(SASLError):
        client.respond(RFC2195_CHALLENGE)


def test_factory_passes_hostname_and_nonce() -> None:
    server = server_mechanism(
        "cram-md5", hostname="postoffice.reston.mci.net", nonce=b"1896.697170952"
    )
    assert server.start(None) == Challenge(data=RFC2195_CHALLENGE)


def test_default_challenge_is_random_digits() -> None:
    first = CramMD5Server().challenge
    assert re.fullmatch(rb"<[0-9]+\.[0-9]+@localhost>", first)
    assert CramMD5Server().challenge != first


def test_uppercase_digest_is_accepted() -> None:
    server = rfc_server()
    server.start(None)
    server.receive(RFC2195_RESPONSE.upper().replace(b"TIM", b"tim"))
    assert isinstance(server.respond_with_secret("tanstaaftanstaaf"), Success)


def test_user_name_with_space() -> None:
    server = rfc_server()
    server.start(None)
    assert server.receive(b"tim smith " + b"0" * 32) == NeedCramMD5Secret(username="tim smith")


@pytest.mark.parametrize("secret", [None, "wrong"])
def test_bad_secret(secret: str | None) -> None:
    server = rfc_server()
    server.start(None)
    server.receive(RFC2195_RESPONSE)
    step = server.respond_with_secret(secret)
    assert step == Failure(reason="CRAM-MD5: authentication failed", code="auth")


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"tim",
        b"tim ",
        b" b913a602c7eda7a495b4e6e7334d3890",
        b"timb913a602c7eda7a495b4e6e7334d3890",
        b"tim b913a602c7eda7a495b4e6e7334d389",
        b"tim b913a602c7eda7a495b4e6e7334d38900",
        b"tim g913a602c7eda7a495b4e6e7334d3890",
        b"t\xffm b913a602c7eda7a495b4e6e7334d3890",
    ],
)
def test_malformed_answer(answer: bytes) -> None:
    server = rfc_server()
    server.start(None)
    step = server.receive(answer)
    assert isinstance(step, Failure)
    assert step.code == "malformed"


@pytest.mark.parametrize("initial", [b"", b"tim"])
def test_initial_response_is_refused(initial: bytes) -> None:
    step = rfc_server().start(initial)
    assert isinstance(step, Failure)
    assert step.code == "malformed"


@pytest.mark.parametrize(
    ("hostname", "nonce"),
    [("bad host", None), ("a>b", None), ("", None), ("host", b"1<2"), ("host", b""), ("h", b"a@b")],
)
def test_bad_constructor_arguments(hostname: str, nonce: bytes | None) -> None:
    with pytest.raises(ValueError):
        CramMD5Server(hostname=hostname, nonce=nonce)


def test_client_errors() -> None:
    with pytest.raises(ValueError):
        CramMD5Client("", "pw")
    with pytest.raises(SASLError):
        CramMD5Client("tim", "pw").respond(b"")
    client = CramMD5Client("tim", "pw")
    client.respond(RFC2195_CHALLENGE)
    client.verify_success(None)
