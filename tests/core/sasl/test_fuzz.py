"""Property tests: whatever a client sends, a server mechanism answers with a step.

Each run walks one exchange to its end. At every point where the client speaks, the
strategy either lets a real client answer (to reach the deeper states) or sends arbitrary
bytes, sometimes a mutated real answer; every application answer is drawn at random too.
The only acceptable outcome of each call is a step object, never an exception, and the
exchange must end after a handful of steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

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
    ScramCredentials,
    ScramSha256Client,
    ScramSha256Server,
    ServerMechanism,
    ServerStep,
    Success,
    VerifyPassword,
    VerifyToken,
    XOAuth2Client,
    scram_credentials,
    server_mechanism,
)

REAL_CREDS = scram_credentials("pw", salt=b"fixed salt")

CLIENTS: dict[str, Callable[[], ClientMechanism]] = {
    "PLAIN": lambda: PlainClient("u", "pw"),
    "LOGIN": lambda: LoginClient("u", "pw"),
    "CRAM-MD5": lambda: CramMD5Client("u", "pw"),
    "SCRAM-SHA-256": lambda: ScramSha256Client("u", "pw", nonce=b"client-nonce"),
    "XOAUTH2": lambda: XOAuth2Client("u", "tok"),
    "OAUTHBEARER": lambda: OAuthBearerClient("u", "tok"),
}

creds_strategy = st.one_of(
    st.none(),
    st.just(REAL_CREDS),
    st.builds(
        ScramCredentials,
        salt=st.binary(min_size=1, max_size=32),
        iterations=st.integers(1, 100_000),
        stored_key=st.binary(min_size=32, max_size=32),
        server_key=st.binary(min_size=32, max_size=32),
    ),
)


def make_server(name: str) -> ServerMechanism:
    """Fixed nonces and keys: Hypothesis replays choices, so the run must be deterministic."""
    if name == "SCRAM-SHA-256":
        return ScramSha256Server(nonce=b"server-nonce", fake_salt_key=b"key")
    return server_mechanism(name, nonce=b"1.2")


def mutate(data: st.DataObject, message: bytes) -> bytes:
    """Flip, drop or insert one byte of a genuine message."""
    if not message:
        return data.draw(st.binary(max_size=4))
    index = data.draw(st.integers(0, len(message) - 1))
    action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
    if action == "flip":
        byte = data.draw(st.integers(0, 255))
        return message[:index] + bytes([byte]) + message[index + 1 :]
    if action == "drop":
        return message[:index] + message[index + 1 :]
    return message[:index] + data.draw(st.binary(min_size=1, max_size=3)) + message[index:]


def client_message(
    data: st.DataObject, client: ClientMechanism | None, challenge: bytes | None
) -> bytes:
    genuine: bytes | None = None
    if client is not None:
        try:
            genuine = client.initial_response() if challenge is None else client.respond(challenge)
        except SASLError:
            genuine = None
    choice = data.draw(st.sampled_from(["genuine", "mutated", "random"]))
    if genuine is not None and choice == "genuine":
        return genuine
    if genuine is not None and choice == "mutated":
        return mutate(data, genuine)
    return data.draw(st.binary(max_size=200))


def is_step(value: object) -> bool:
    return isinstance(value, ServerStep)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=st.sampled_from(SERVER_MECHANISMS))
def test_server_mechanisms_never_raise(data: st.DataObject, name: str) -> None:
    mech = make_server(name)
    client: ClientMechanism | None = CLIENTS[name]() if data.draw(st.booleans()) else None

    if data.draw(st.booleans()):
        first: bytes | None = client_message(data, client, None)
        if client is not None and client.name in ("LOGIN", "CRAM-MD5"):
            client = None  # it has no initial response, so it cannot follow any more
    else:
        first = None
    step: ServerStep = mech.start(first)

    for _ in range(8):
        assert is_step(step)
        match step:
            case Challenge(data=challenge):
                step = mech.receive(client_message(data, client, challenge))
            case VerifyPassword():
                step = mech.verified(data.draw(st.booleans()))
            case NeedCramMD5Secret():
                step = mech.respond_with_secret(data.draw(st.none() | st.text(max_size=10)))
            case NeedScramCredentials():
                step = mech.respond_with_credentials(data.draw(creds_strategy))
            case VerifyToken():
                ok = data.draw(st.booleans())
                error = None if ok else data.draw(st.none() | st.binary(max_size=50))
                step = mech.verified(ok, error)
            case Success() | Failure():
                break
    assert isinstance(step, Success | Failure)
    assert mech.done


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(SERVER_MECHANISMS),
    initial=st.none() | st.binary(max_size=300),
    answers=st.lists(st.binary(max_size=300), max_size=4),
)
def test_arbitrary_bytes_at_every_receive(
    name: str, initial: bytes | None, answers: list[bytes]
) -> None:
    """Plain arbitrary bytes, the application always saying yes: still only steps."""
    mech = make_server(name)
    step = mech.start(initial)
    pending = list(answers)
    while not mech.done:
        assert is_step(step)
        if isinstance(step, Challenge):
            step = mech.receive(pending.pop(0) if pending else b"")
        elif isinstance(step, VerifyPassword | VerifyToken):
            step = mech.verified(True)
        elif isinstance(step, NeedCramMD5Secret):
            step = mech.respond_with_secret("pw")
        else:
            assert isinstance(step, NeedScramCredentials)
            step = mech.respond_with_credentials(REAL_CREDS)
    assert isinstance(step, Success | Failure)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(SERVER_MECHANISMS), challenges=st.lists(st.binary(max_size=200)))
def test_clients_raise_only_sasl_error(name: str, challenges: list[bytes]) -> None:
    """The client side, for symmetry: a hostile server gets SASLError and nothing else."""
    client = CLIENTS[name]()
    reasons: list[str] = []
    for challenge in challenges:
        try:
            client.respond(challenge)
        except SASLError as exc:
            reasons.append(exc.reason)
    with contextlib.suppress(SASLError):
        client.verify_success(None)
    assert all(reason.startswith(name + ": ") for reason in reasons)
