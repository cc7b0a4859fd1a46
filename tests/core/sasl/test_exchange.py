"""Every client mechanism against its server mechanism, in memory, as a protocol layer
would run them: with and without an initial response, good and bad credentials."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailproto.sasl import (
    SERVER_MECHANISMS,
    Challenge,
    ClientMechanism,
    CramMD5Client,
    Failure,
    LoginClient,
    NeedCramMD5Secret,
    NeedScramCredentials,
    OAuthBearerClient,
    PlainClient,
    SASLError,
    ScramSha256Client,
    ServerStep,
    Success,
    VerifyPassword,
    VerifyToken,
    XOAuth2Client,
    scram_credentials,
    server_mechanism,
)

USERS = {"tim": "tanstaaftanstaaf", "user": "pencil", "jürgen": "pässwörd"}
CREDS = {name: scram_credentials(password) for name, password in USERS.items()}
TOKENS = {"ya29.good-token": "user", "Z29vZA==": "jürgen"}
ERROR_JSON = b'{"status":"invalid_token","scope":"mail"}'


def run(
    client: ClientMechanism, mechanism: str, *, initial: bool = True, error_json: bytes = ERROR_JSON
) -> tuple[ServerStep, list[tuple[str, bytes]]]:
    """Drive both ends until the server is done; return its last step and the transcript."""
    server = server_mechanism(mechanism)
    transcript: list[tuple[str, bytes]] = []
    first = client.initial_response() if initial else None
    if first is not None:
        transcript.append(("C", first))
    step = server.start(first)
    while not server.done:
        match step:
            case Challenge(data=data):
                transcript.append(("S", data))
                answer = client.respond(data)
                transcript.append(("C", answer))
                step = server.receive(answer)
            case VerifyPassword(username=username, authzid=authzid, password=password):
                assert authzid in ("", username)
                step = server.verified(USERS.get(username) == password)
            case NeedCramMD5Secret(username=username):
                step = server.respond_with_secret(USERS.get(username))
            case NeedScramCredentials(username=username):
                step = server.respond_with_credentials(CREDS.get(username))
            case VerifyToken(username=username, token=token):
                ok = TOKENS.get(token) == username
                step = server.verified(ok, None if ok else error_json)
            case _:  # pragma: no cover
                raise AssertionError(step)
    if isinstance(step, Success):
        client.verify_success(step.data)
    return step, transcript


ClientFactory = Callable[[str, str], ClientMechanism]

FACTORIES: dict[str, ClientFactory] = {
    "PLAIN": lambda user, secret: PlainClient(user, secret),
    "LOGIN": lambda user, secret: LoginClient(user, secret),
    "CRAM-MD5": lambda user, secret: CramMD5Client(user, secret),
    "SCRAM-SHA-256": lambda user, secret: ScramSha256Client(user, secret),
    "XOAUTH2": lambda user, secret: XOAuth2Client(user, secret),
    "OAUTHBEARER": lambda user, secret: OAuthBearerClient(user, secret, "imap.example", 993),
}
GOOD = {"XOAUTH2": "ya29.good-token", "OAUTHBEARER": "ya29.good-token"}


def test_every_server_mechanism_has_a_client() -> None:
    assert set(FACTORIES) == set(SERVER_MECHANISMS)


@pytest.mark.parametrize("mechanism", SERVER_MECHANISMS)
@pytest.mark.parametrize("initial", [True, False])
def test_success(mechanism: str, initial: bool) -> None:
    client = FACTORIES[mechanism]("user", GOOD.get(mechanism, "pencil"))
    step, transcript = run(client, mechanism, initial=initial)
    assert isinstance(step, Success)
    assert step.username == "user"
    assert step.authzid == ""
    if mechanism == "SCRAM-SHA-256":
        assert step.data is not None
        assert step.data.startswith(b"v=")
    else:
        assert step.data is None
    # Without an initial response, every mechanism opens with a challenge.
    if not initial:
        assert transcript[0][0] == "S"


@pytest.mark.parametrize("mechanism", SERVER_MECHANISMS)
def test_non_ascii_user(mechanism: str) -> None:
    secret = "Z29vZA==" if mechanism in GOOD else "pässwörd"
    step, _ = run(FACTORIES[mechanism]("jürgen", secret), mechanism)
    assert isinstance(step, Success)
    assert step.username == "jürgen"


@pytest.mark.parametrize("mechanism", SERVER_MECHANISMS)
@pytest.mark.parametrize("user", ["user", "nobody"])
def test_wrong_secret_or_unknown_user(mechanism: str, user: str) -> None:
    secret = "ya29.bad-token" if mechanism in GOOD else "pencil2"
    step, transcript = run(FACTORIES[mechanism](user, secret), mechanism)
    assert isinstance(step, Failure)
    assert step.code == "auth"
    assert step.reason == f"{mechanism}: authentication failed"
    assert secret not in step.reason
    if mechanism in GOOD:
        # The token failure went through the error challenge and its acknowledgement.
        assert ("S", ERROR_JSON) in transcript


def test_scram_server_signature_is_delivered_as_a_challenge() -> None:
    """SMTP's way (RFC 4954): the v= goes in a 334 and the client answers empty."""
    server = server_mechanism("SCRAM-SHA-256")
    client = ScramSha256Client("user", "pencil")
    server.start(client.initial_response())
    step = server.respond_with_credentials(CREDS["user"])
    assert isinstance(step, Challenge)
    step = server.receive(client.respond(step.data))
    assert isinstance(step, Success)
    assert step.data is not None
    assert client.respond(step.data) == b""
    client.verify_success(None)
    client.verify_success(step.data)  # checking it twice is harmless
    with pytest.raises(SASLError):
        client.respond(step.data)


def test_plain_with_authzid() -> None:
    server = server_mechanism("PLAIN")
    client = PlainClient("user", "pencil", authzid="postmaster")
    step = server.start(client.initial_response())
    assert step == VerifyPassword(username="user", authzid="postmaster", password="pencil")
    assert server.verified(True) == Success(username="user", authzid="postmaster", data=None)


def test_scram_with_authzid() -> None:
    server = server_mechanism("SCRAM-SHA-256")
    client = ScramSha256Client("user", "pencil", authzid="post,master=1")
    step = server.start(client.initial_response())
    assert step == NeedScramCredentials(username="user", authzid="post,master=1")
    step = server.respond_with_credentials(CREDS["user"])
    assert isinstance(step, Challenge)
    step = server.receive(client.respond(step.data))
    assert isinstance(step, Success)
    assert step == Success(username="user", authzid="post,master=1", data=step.data)
    client.verify_success(step.data)
