"""RFC example sessions from tests/vectors/pop3_*.txt, replayed through both roles.

`replay` checks every byte either side writes against the transcript and every event
either side reads against the other's; these tests add what each RFC example shows.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest
from pop3_helpers import VECTORS, load_transcript, merged, replay, state

from mailproto.pop3 import (
    AUTHORIZATION,
    CLOSED,
    TRANSACTION,
    Apop,
    Auth,
    AuthChallenge,
    AuthResponse,
    Capabilities,
    EndOfResponse,
    Ok,
    POP3Event,
    ResponseData,
    apop_digest,
    parse_scan_listing,
)
from mailproto.sasl import PlainClient, Success, VerifyPassword, server_mechanism

ALL = sorted(p.name for p in VECTORS.glob("pop3_*.txt"))
CUTS: list[str | int] = ["whole", "bytewise", "random", 7]


def test_vectors_are_there() -> None:
    assert "pop3_rfc1939_example.txt" in ALL
    assert "pop3_rfc2449_capa.txt" in ALL
    assert "pop3_rfc5034_auth_plain_ir.txt" in ALL
    assert "pop3_rfc5034_auth_plain_challenge.txt" in ALL


@pytest.mark.parametrize("how", CUTS)
@pytest.mark.parametrize("name", ALL)
def test_replay_both_roles(name: str, how: str | int) -> None:
    result = replay(name, how)
    # The bytes each side wrote are the transcript's, line for line.
    lines = load_transcript(name)
    wire_c = b"".join(line.text.encode() + b"\r\n" for line in lines if line.side == "C")
    wire_s = b"".join(line.text.encode() + b"\r\n" for line in lines if line.side == "S")
    assert result.client_bytes == wire_c
    assert result.server_bytes == wire_s


def body_of(events: Sequence[POP3Event], index: int) -> bytes:
    """The body of the ``index``-th multi-line response among ``events``."""
    bodies: list[bytes] = []
    current: bytes | None = None
    for event in events:
        if isinstance(event, Ok):
            current = b""
        elif isinstance(event, ResponseData):
            assert current is not None
            current += event.data
        elif isinstance(event, EndOfResponse):
            assert current is not None
            bodies.append(current)
            current = None
        else:
            current = None
    return bodies[index]


def test_rfc1939_example_session() -> None:
    result = replay("pop3_rfc1939_example.txt")
    client, server = result.client, result.server
    # Section 7: the digest is MD5 over the greeting's timestamp and the shared secret.
    assert client.apop_timestamp == server.apop_timestamp == "<1896.697170952@dbc.mtview.ca.us>"
    digest = apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
    assert digest == "c4c9334bac560ecc979e58001b3e22fb"
    assert result.server_events[0] == Apop(name="mrose", digest=digest)
    events = merged(result.client_events)
    listing = body_of(events, 0)
    assert parse_scan_listing(listing) == [(1, 120), (2, 200)]
    first, second = body_of(events, 1), body_of(events, 2)
    # The sizes LIST announced are the sizes of the unstuffed messages the client got.
    assert (len(first), len(second)) == (120, 200)
    assert b"\r\n.\r\n..and this one starts with two periods.\r\n.period first\r\n" in second
    # QUIT in TRANSACTION: UPDATE, both messages are for the application to remove.
    assert server.deleted == frozenset({1, 2})
    assert state(server) is CLOSED
    assert state(client) is CLOSED


def test_rfc2449_capa_example() -> None:
    result = replay("pop3_rfc2449_capa.txt", "bytewise")
    caps = result.client.capabilities
    assert caps is not None
    assert list(caps.tags) == [
        "TOP",
        "USER",
        "SASL",
        "RESP-CODES",
        "LOGIN-DELAY",
        "PIPELINING",
        "EXPIRE",
        "UIDL",
        "IMPLEMENTATION",
    ]
    assert caps.tags["LOGIN-DELAY"] == ("900",)
    assert caps.tags["EXPIRE"] == ("60",)
    assert caps.sasl_mechanisms == frozenset({"CRAM-MD5", "KERBEROS_V4"})
    assert "pipelining" in caps
    assert "STLS" not in caps
    assert caps == Capabilities.parse(body_of(merged(result.client_events), 0))
    assert state(result.client) is AUTHORIZATION


def test_rfc5034_plain_with_initial_response() -> None:
    result = replay("pop3_rfc5034_auth_plain_ir.txt")
    client = result.client
    auth = result.server_events[-1]
    assert auth == Auth(mechanism="PLAIN", initial_response=b"test\x00test\x00test")
    # The initial response is the one our PLAIN client makes, and the real PLAIN server
    # accepts it.
    assert PlainClient("test", "test", authzid="test").initial_response() == b"test\0test\0test"
    assert isinstance(auth, Auth)
    mech = server_mechanism("PLAIN")
    step = mech.start(auth.initial_response)
    assert step == VerifyPassword(username="test", authzid="test", password="test")
    assert mech.verified(True) == Success(username="test", authzid="test", data=None)
    # STLS restarted the session: the CAPA read before it was forgotten, the new one lacks
    # STLS (RFC 2595 section 4).
    assert client.capabilities is not None
    assert "STLS" not in client.capabilities
    assert "PLAIN" in client.capabilities.sasl_mechanisms
    assert client.session.tls
    assert state(client) is TRANSACTION
    assert state(result.server) is TRANSACTION


def test_rfc5034_plain_with_empty_challenge() -> None:
    result = replay("pop3_rfc5034_auth_plain_challenge.txt", "bytewise")
    assert b"\r\n+ \r\n" in result.server_bytes  # "+", one space, nothing else
    challenge = [e for e in result.client_events if isinstance(e, AuthChallenge)]
    assert challenge == [AuthChallenge(data=b"")]
    answer = result.server_events[-1]
    assert answer == AuthResponse(data=base64.b64decode("dGVzdAB0ZXN0AHRlc3Q="))
    # Our PLAIN client answers the empty challenge with the same bytes.
    assert PlainClient("test", "test", authzid="test").respond(b"") == b"test\0test\0test"
    assert state(result.client) is TRANSACTION
    assert state(result.server) is TRANSACTION
    assert not result.client.session.in_auth
