"""Our client against our server, whole sessions in memory.

Each step checks what the client reads back and what the server saw (`Pair` records
both); SASL exchanges run the real mechanisms of `mailproto.sasl` at both ends.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pop3_helpers import GREETING, USERS, Pair, message, state

from mailproto.pop3 import (
    AUTHORIZATION,
    CLOSED,
    TRANSACTION,
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Capa,
    ClientConfig,
    CommandRejected,
    ConnectionClosed,
    Dele,
    EndOfResponse,
    Err,
    List,
    Noop,
    Ok,
    Pass,
    POP3Event,
    Quit,
    ResponseData,
    Retr,
    Rset,
    ServerConfig,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
    apop_digest,
    parse_scan_listing,
    parse_uidl_listing,
)
from mailproto.sasl import (
    ClientMechanism,
    CramMD5Client,
    LoginClient,
    PlainClient,
    SASLError,
    ScramSha256Client,
)

MESSAGES = [message(120), message(200, 1), b".\r\n..\r\nno final newline", b""]


def body(events: list[POP3Event]) -> bytes:
    assert isinstance(events[0], Ok), events
    assert events[-1] == EndOfResponse()
    data = b"".join(e.data for e in events[1:-1] if isinstance(e, ResponseData))
    assert len(events) == (3 if data else 2)
    return data


def test_user_pass_session() -> None:
    pair = Pair(messages=MESSAGES)
    caps = pair.send(Capa())
    assert pair.server_events == [Capa()]
    assert caps[0] == Ok(text="Capability list follows")
    assert pair.client.capabilities is not None
    assert "USER" in pair.client.capabilities
    assert pair.send(User(name="mrose")) == [Ok(text="mrose is a real hoopy frood")]
    assert pair.send(Pass(password="tanstaaf")) == [
        Ok(text="mrose's maildrop has 4 messages (343 octets)")
    ]
    assert pair.server_events == [Pass(password="tanstaaf")]
    assert state(pair.client) is state(pair.server) is TRANSACTION
    assert pair.send(Stat()) == [Ok(text="4 343")]
    assert parse_scan_listing(body(pair.send(List()))) == [(1, 120), (2, 200), (3, 23), (4, 0)]
    assert pair.send(List(msg=2)) == [Ok(text="2 200")]
    assert parse_uidl_listing(body(pair.send(Uidl()))) == [
        (1, "uid-1"),
        (2, "uid-2"),
        (3, "uid-3"),
        (4, "uid-4"),
    ]
    assert pair.send(Uidl(msg=3)) == [Ok(text="3 uid-3")]
    # Bodies come back exactly, but for the CRLF a body needs at its end.
    assert body(pair.send(Retr(msg=1))) == MESSAGES[0]
    assert body(pair.send(Retr(msg=2))) == MESSAGES[1]
    assert body(pair.send(Retr(msg=3))) == b".\r\n..\r\nno final newline\r\n"
    assert body(pair.send(Retr(msg=4))) == b""
    assert b"\r\n..\r\n" in b"".join(data for side, data in pair.wire if side == "S")
    top = body(pair.send(Top(msg=2, lines=1)))
    head = MESSAGES[1].split(b"\r\n\r\n")[0]
    assert top.startswith(head + b"\r\n\r\n")
    assert top.count(b"\r\n") == head.count(b"\r\n") + 3
    assert pair.send(Dele(msg=1)) == [Ok(text="message 1 deleted")]
    assert pair.send(Stat()) == [Ok(text="3 223")]
    assert pair.send(Rset()) == [Ok(text="maildrop has 4 messages")]
    assert pair.send(Dele(msg=3)) == [Ok(text="message 3 deleted")]
    assert pair.send(Noop()) == [Ok()]
    assert pair.send(Quit()) == [Ok(text="dewey POP3 server signing off (3 messages left)")]
    assert pair.app.removed == frozenset({3})
    assert state(pair.client) is state(pair.server) is CLOSED
    assert pair.close() == [ConnectionClosed()]


def test_apop_session() -> None:
    pair = Pair()
    assert pair.client.apop_timestamp == pair.server.apop_timestamp
    timestamp = pair.client.apop_timestamp
    assert timestamp is not None
    wrong = Apop(name="mrose", digest=apop_digest(timestamp, "wrong"))
    assert pair.send(wrong) == [Err(code="AUTH", text="permission denied")]
    right = Apop(name="mrose", digest=apop_digest(timestamp, "tanstaaf"))
    assert pair.send(right)[0].__class__ is Ok
    assert state(pair.client) is TRANSACTION
    assert pair.send(Quit()) == [Ok(text="dewey POP3 server signing off (2 messages left)")]


def test_stls_then_login() -> None:
    pair = Pair(server_config=ServerConfig())
    refused = Err(code="AUTH", text="Plaintext authentication disallowed without TLS")
    assert pair.send(User(name="mrose")) == [refused]
    assert pair.server_events == [
        CommandRejected(reply=refused, command=b"USER mrose"),
    ]
    pair.send(Capa())
    assert pair.client.capabilities is not None
    assert pair.send(Stls()) == [Ok(text="Begin TLS negotiation")]
    # Pair did the handshake: both restarted in AUTHORIZATION, capabilities forgotten.
    assert state(pair.client) is state(pair.server) is AUTHORIZATION
    assert pair.client.capabilities is None
    assert pair.client.session.tls
    assert pair.server.session.tls
    assert pair.send(User(name="mrose")) == [Ok(text="mrose is a real hoopy frood")]
    assert pair.send(Pass(password="tanstaaf"))[0].__class__ is Ok
    assert state(pair.server) is TRANSACTION


def test_utf8_session() -> None:
    pair = Pair()
    assert pair.send(Utf8()) == [Ok(text="UTF8 enabled")]
    assert pair.send(User(name="jürgen")) == [Ok(text="jürgen is a real hoopy frood")]
    assert pair.send(Pass(password="pässwörd")) == [
        Ok(text="jürgen's maildrop has 2 messages (320 octets)")
    ]
    assert pair.server_events == [Pass(password="pässwörd")]


def test_pipelined_session() -> None:
    pair = Pair()
    pair.send(Capa())
    pair.send(Apop(name="mrose", digest=apop_digest(GREETING[GREETING.index("<") :], "tanstaaf")))
    commands: list[POP3Event] = [
        Stat(),
        List(),
        Retr(msg=1),
        Top(msg=2, lines=0),
        Dele(msg=1),
        Uidl(msg=2),
        Noop(),
        Quit(),
    ]
    events = pair.send(*commands)
    # One write from the client, one from the server: every command in it was read and
    # answered in order.
    assert pair.wire[-2] == (
        "C",
        b"STAT\r\nLIST\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nUIDL 2\r\nNOOP\r\nQUIT\r\n",
    )
    assert pair.server_events == [*commands, ConnectionClosed()]
    statuses = [e for e in events if isinstance(e, Ok | Err)]
    assert statuses == [
        Ok(text="2 320"),
        Ok(text="2 messages (320 octets)"),
        Ok(text="120 octets"),
        Ok(),
        Ok(text="message 1 deleted"),
        Ok(text="2 uid-2"),
        Ok(),
        Ok(text="dewey POP3 server signing off (1 messages left)"),
    ]
    assert pair.app.removed == frozenset({1})
    assert state(pair.client) is CLOSED


def test_pipelined_errors_are_answered_in_order() -> None:
    pair = Pair()
    pair.send(Capa())
    pair.send(User(name="mrose"))
    pair.send(Pass(password="tanstaaf"))
    events = pair.send(Retr(msg=1), Dele(msg=1), List(msg=2))
    assert [type(e) for e in events] == [Ok, ResponseData, EndOfResponse, Ok, Ok]
    # The server refuses what the client cannot know is wrong.
    events = pair.send(Retr(msg=9))
    assert events == [Err(text="No such message: 9")]
    assert pair.server_events == [
        CommandRejected(reply=Err(text="No such message: 9"), command=b"RETR 9")
    ]


# --- SASL, real mechanisms at both ends ----------------------------------------------------------


def authenticate(
    pair: Pair, mechanism: str, client_mech: ClientMechanism, *, initial: bool
) -> list[POP3Event]:
    """Run AUTH the way an application would; return every status the client saw."""
    response = client_mech.initial_response() if initial else None
    seen: list[POP3Event] = []
    events = pair.send(Auth(mechanism=mechanism, initial_response=response))
    while True:
        assert len(events) == 1
        (event,) = events
        seen.append(event)
        if isinstance(event, AuthChallenge):
            try:
                answer = client_mech.respond(event.data)
            except SASLError:
                events = pair.send(AuthCancel())
                continue
            events = pair.send(AuthResponse(data=answer))
            continue
        if isinstance(event, Ok):
            client_mech.verify_success(None)
        return seen


MECHANISMS: dict[str, Callable[[str, str], ClientMechanism]] = {
    "PLAIN": lambda user, password: PlainClient(user, password),
    "LOGIN": lambda user, password: LoginClient(user, password),
    "CRAM-MD5": lambda user, password: CramMD5Client(user, password),
    "SCRAM-SHA-256": lambda user, password: ScramSha256Client(
        user, password, nonce=b"client-nonce"
    ),
}


@pytest.mark.parametrize("initial", [True, False])
@pytest.mark.parametrize("user", ["tim", "jürgen"])
@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_sasl_success(mechanism: str, user: str, initial: bool) -> None:
    pair = Pair(server_config=ServerConfig(tls=True), client_config=ClientConfig(tls=True))
    seen = authenticate(pair, mechanism, MECHANISMS[mechanism](user, USERS[user]), initial=initial)
    assert seen[-1] == Ok(text=f"{user}'s maildrop has 2 messages (320 octets)")
    challenges = [e for e in seen if isinstance(e, AuthChallenge)]
    # PLAIN: its message goes with AUTH, or answers an empty challenge. LOGIN and
    # CRAM-MD5 have no initial response: two prompts, one challenge. SCRAM: server-first,
    # then server-final as one more challenge (POP3's +OK has no room for additional data
    # with success), after an empty one without initial response.
    expected = {
        "PLAIN": 0 if initial else 1,
        "LOGIN": 2,
        "CRAM-MD5": 1,
        "SCRAM-SHA-256": 2 if initial else 3,
    }[mechanism]
    assert len(challenges) == expected
    assert state(pair.client) is state(pair.server) is TRANSACTION
    assert not pair.client.session.in_auth
    assert not pair.server.session.in_auth
    assert pair.send(Stat()) == [Ok(text="2 320")]


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_sasl_wrong_password(mechanism: str) -> None:
    pair = Pair(server_config=ServerConfig(tls=True), client_config=ClientConfig(tls=True))
    seen = authenticate(pair, mechanism, MECHANISMS[mechanism]("tim", "wrong"), initial=True)
    assert seen[-1] == Err(code="AUTH", text="no")
    assert state(pair.client) is state(pair.server) is AUTHORIZATION
    # The session goes on: a second try with the right password works.
    seen = authenticate(pair, mechanism, MECHANISMS[mechanism]("tim", USERS["tim"]), initial=True)
    assert isinstance(seen[-1], Ok)


def test_sasl_client_cancels() -> None:
    # The client mechanism refuses the server's challenge (PLAIN wants an empty one): the
    # application cancels the exchange with "*".
    pair = Pair(server_config=ServerConfig(tls=True), client_config=ClientConfig(tls=True))
    seen = authenticate(pair, "CRAM-MD5", PlainClient("tim", "x"), initial=False)
    assert seen == [
        AuthChallenge(data=b"<server-nonce@example.org>"),
        Err(text="authentication cancelled"),
    ]
    assert pair.server_events == [AuthCancel()]
    assert state(pair.server) is AUTHORIZATION


def test_sasl_cancel_with_star() -> None:
    pair = Pair(server_config=ServerConfig(tls=True), client_config=ClientConfig(tls=True))
    assert pair.send(Auth(mechanism="LOGIN")) == [AuthChallenge(data=b"Username:")]
    assert pair.send(AuthCancel()) == [Err(text="authentication cancelled")]
    assert pair.server_events == [AuthCancel()]
    assert pair.wire[-2] == ("C", b"*\r\n")
    assert state(pair.client) is state(pair.server) is AUTHORIZATION
    assert pair.send(Capa())[0] == Ok(text="Capability list follows")


def test_sasl_unknown_mechanism_and_listing() -> None:
    pair = Pair()
    assert pair.send(Auth(mechanism="GSSAPI")) == [Err(text="unrecognized authentication type")]
    events = pair.send(Auth())
    assert body(events) == b"PLAIN\r\nLOGIN\r\nCRAM-MD5\r\nSCRAM-SHA-256\r\n"
    assert state(pair.client) is AUTHORIZATION
