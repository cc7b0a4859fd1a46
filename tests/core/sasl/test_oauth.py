"""XOAUTH2 and OAUTHBEARER (RFC 7628): published examples, the error dance, bad input."""

from __future__ import annotations

import base64

import pytest

from mailproto._util import LocalProtocolError
from mailproto.sasl import (
    Challenge,
    Failure,
    OAuthBearerClient,
    OAuthBearerServer,
    SASLError,
    Success,
    VerifyToken,
    XOAuth2Client,
    XOAuth2Server,
    server_mechanism,
)

# RFC 7628 section 4.1, the IMAP initial client response, and section 4.3's error.
RFC7628_INITIAL = base64.b64decode(
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
    "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)
RFC7628_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
RFC7628_ERROR = base64.b64decode(
    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3Vy"
    "YXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="
)
# Google's XOAUTH2 documentation example.
XOAUTH2_INITIAL = base64.b64decode(
    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhi"
    "SFJoZG1semRHRXVZMjl0Q2cBAQ=="
)
XOAUTH2_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg"


def test_vectors_are_what_we_think() -> None:
    assert RFC7628_INITIAL == (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )
    assert RFC7628_ERROR.startswith(b'{"status":"invalid_token"')
    expected = b"user=someuser@example.com\x01auth=Bearer " + XOAUTH2_TOKEN.encode()
    assert expected + b"\x01\x01" == XOAUTH2_INITIAL


def test_oauthbearer_rfc7628_client() -> None:
    client = OAuthBearerClient("user@example.com", RFC7628_TOKEN, "server.example.com", 143)
    assert client.initial_response() == RFC7628_INITIAL
    with pytest.raises(LocalProtocolError):
        client.initial_response()
    client.verify_success(None)


def test_oauthbearer_rfc7628_server_success() -> None:
    server = server_mechanism("oauthbearer")
    assert server.start(RFC7628_INITIAL) == VerifyToken(
        username="user@example.com", token=RFC7628_TOKEN, kind="OAUTHBEARER"
    )
    assert server.verified(True) == Success(username="user@example.com", authzid="", data=None)


def test_oauthbearer_rfc7628_error_exchange() -> None:
    client = OAuthBearerClient("user@example.com", RFC7628_TOKEN, "server.example.com", 143)
    server = OAuthBearerServer()
    assert isinstance(server.start(client.initial_response()), VerifyToken)
    step = server.verified(False, RFC7628_ERROR)
    assert step == Challenge(data=RFC7628_ERROR)
    assert client.respond(step.data) == b"\x01"
    assert client.error_json == RFC7628_ERROR
    assert server.receive(b"\x01") == Failure(
        reason="OAUTHBEARER: authentication failed", code="auth"
    )
    with pytest.raises(SASLError):
        client.verify_success(None)
    with pytest.raises(SASLError):
        client.respond(b"again")


def test_xoauth2_google_example() -> None:
    client = XOAuth2Client("someuser@example.com", XOAUTH2_TOKEN)
    assert client.initial_response() == XOAUTH2_INITIAL
    server = server_mechanism("XOAUTH2")
    assert server.start(XOAUTH2_INITIAL) == VerifyToken(
        username="someuser@example.com", token=XOAUTH2_TOKEN, kind="XOAUTH2"
    )
    assert server.verified(True) == Success(username="someuser@example.com", authzid="", data=None)


@pytest.mark.parametrize("ack", [b"", b"\x01"])
def test_xoauth2_error_exchange(ack: bytes) -> None:
    server = XOAuth2Server()
    server.start(XOAUTH2_INITIAL)
    error = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
    assert server.verified(False, error) == Challenge(data=error)
    assert server.receive(ack) == Failure(reason="XOAUTH2: authentication failed", code="auth")

    client = XOAuth2Client("someuser@example.com", XOAUTH2_TOKEN)
    client.initial_response()
    assert client.respond(error) == b""
    assert client.error_json == error


@pytest.mark.parametrize("server", [XOAuth2Server, OAuthBearerServer])
def test_bad_acknowledgement_of_error(server: type[XOAuth2Server | OAuthBearerServer]) -> None:
    mech = server()
    mech.start(XOAUTH2_INITIAL if server is XOAuth2Server else RFC7628_INITIAL)
    mech.verified(False, b"{}")
    step = mech.receive(b"\x01\x01")
    assert isinstance(step, Failure)
    assert step.code == "malformed"


@pytest.mark.parametrize("initial", [XOAUTH2_INITIAL, RFC7628_INITIAL])
def test_failure_without_error_json(initial: bytes) -> None:
    server = XOAuth2Server() if initial == XOAUTH2_INITIAL else OAuthBearerServer()
    server.start(initial)
    step = server.verified(False)
    assert isinstance(step, Failure)
    assert step.code == "auth"


def test_verified_true_with_error_json_is_a_bug() -> None:
    server = XOAuth2Server()
    server.start(XOAUTH2_INITIAL)
    with pytest.raises(ValueError):
        server.verified(True, b"{}")


@pytest.mark.parametrize("server", [XOAuth2Server, OAuthBearerServer])
def test_no_initial_response(server: type[XOAuth2Server | OAuthBearerServer]) -> None:
    mech = server()
    assert mech.start(None) == Challenge(data=b"")
    message = XOAUTH2_INITIAL if server is XOAuth2Server else RFC7628_INITIAL
    assert isinstance(mech.receive(message), VerifyToken)


def test_oauthbearer_optional_parts() -> None:
    server = OAuthBearerServer()
    step = server.start(b"y,,\x01auth=bearer  tok\x01\x01")
    assert step == VerifyToken(username="", token="tok", kind="OAUTHBEARER")
    assert server.verified(True) == Success(username="", authzid="", data=None)

    step = OAuthBearerServer().start(b"n,a=a=2Cb=3D,\x01x=\tsp ace\r\n\x01auth=Bearer t=\x01\x01")
    assert step == VerifyToken(username="a,b=", token="t=", kind="OAUTHBEARER")


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"", "malformed"),
        (b"n,", "malformed"),
        (b"n,,", "malformed"),
        (b"n,,\x01", "malformed"),
        (b"n,,\x01\x01", "malformed"),
        (b"n,,\x01\x01\x01", "malformed"),
        (b"n,,auth=Bearer t\x01\x01", "malformed"),
        (b"n,,\x01auth=Bearer t\x01", "malformed"),
        (b"p=tls-unique,,\x01auth=Bearer t\x01\x01", "unsupported"),
        (b"x,,\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,b=user,\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,a=,\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,a=us=er,\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,,\x01host=h\x01\x01", "malformed"),
        (b"n,,\x01auth=Basic dXNlcjpwdw==\x01\x01", "malformed"),
        (b"n,,\x01auth=Bearer\x01\x01", "malformed"),
        (b"n,,\x01auth=Bearer a b\x01\x01", "malformed"),
        (b"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", "malformed"),
        (b"n,,\x01auth\x01\x01", "malformed"),
        (b"n,,\x01h0st=x\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,,\x01host=a\x00b\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,,\x01host=\xff\x01auth=Bearer t\x01\x01", "malformed"),
        (b"n,,\x01auth=Bearer t\x01\x01\x01", "malformed"),
    ],
)
def test_oauthbearer_malformed(message: bytes, code: str) -> None:
    step = OAuthBearerServer().start(message)
    assert isinstance(step, Failure)
    assert step.code == code


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x01\x01",
        b"user=u\x01auth=Bearer t\x01",
        b"user=u\x01auth=Bearer t",
        b"auth=Bearer t\x01\x01",
        b"user=\x01auth=Bearer t\x01\x01",
        b"user=u\x01\x01",
        b"user=u\x01auth=Bearer \x01\x01",
        b"user=u\x01auth=MAC t\x01\x01",
        b"user=u\x01user=v\x01auth=Bearer t\x01\x01",
        b"user=u\x01\x01auth=Bearer t\x01\x01",
        b"user=u\x7f\x01auth=Bearer t\x01\x01",
        b"user=\xc3\x01auth=Bearer t\x01\x01",
    ],
)
def test_xoauth2_malformed(message: bytes) -> None:
    step = XOAuth2Server().start(message)
    assert isinstance(step, Failure)
    assert step.code == "malformed"


def test_xoauth2_ignores_unknown_keys() -> None:
    step = XOAuth2Server().start(b"user=u\x01vendor=x\x01auth=Bearer t\x01\x01")
    assert step == VerifyToken(username="u", token="t", kind="XOAUTH2")


def test_token_is_not_in_repr() -> None:
    step = XOAuth2Server().start(XOAUTH2_INITIAL)
    assert XOAUTH2_TOKEN not in repr(step)


def test_client_without_initial_response() -> None:
    for client in (
        XOAuth2Client("u", "t"),
        OAuthBearerClient("u", "t"),
    ):
        with pytest.raises(SASLError):
            type(client)("u", "t").respond(b"not empty")
        first = client.respond(b"")
        assert first.endswith(b"auth=Bearer t\x01\x01")
        with pytest.raises(LocalProtocolError):
            client.initial_response()


def test_oauthbearer_client_variants() -> None:
    assert OAuthBearerClient("", "t").initial_response() == b"n,,\x01auth=Bearer t\x01\x01"
    assert (
        OAuthBearerClient("a,b=c", "t", port=0).initial_response()
        == b"n,a=a=2Cb=3Dc,\x01port=0\x01auth=Bearer t\x01\x01"
    )
    assert (
        OAuthBearerClient("u", "t", host="h").initial_response()
        == b"n,a=u,\x01host=h\x01auth=Bearer t\x01\x01"
    )


@pytest.mark.parametrize(
    ("username", "token", "host", "port"),
    [
        ("u", "", None, None),
        ("u", "a b", None, None),
        ("u", "t\x01", None, None),
        ("u\x00", "t", None, None),
        ("u", "t", "h\x01", None),
        ("u", "t", "h\n", None),
        ("u", "t", None, -1),
        ("u", "t", None, 65536),
    ],
)
def test_oauthbearer_client_errors(
    username: str, token: str, host: str | None, port: int | None
) -> None:
    with pytest.raises(ValueError):
        OAuthBearerClient(username, token, host, port)


@pytest.mark.parametrize(("username", "token"), [("", "t"), ("u\x01", "t"), ("u", "t t")])
def test_xoauth2_client_errors(username: str, token: str) -> None:
    with pytest.raises(ValueError):
        XOAuth2Client(username, token)


def test_client_unexpected_success_data() -> None:
    client = XOAuth2Client("u", "t")
    client.initial_response()
    with pytest.raises(SASLError):
        client.verify_success(b"data")
    client.verify_success(None)
