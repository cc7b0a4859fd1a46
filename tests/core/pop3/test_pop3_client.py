"""The client role: reading responses (single and multi-line), what may be sent when,
pipelining, AUTH, STLS, CAPA, and a RETR of several megabytes in random chunkings."""

from __future__ import annotations

import base64
import random

import pytest
from pop3_helpers import GREETING, chunks, drain, merged, pending, state

from mailproto import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError
from mailproto._dotdata import DotStuffer
from mailproto.pop3 import (
    AUTHORIZATION,
    CLOSED,
    CONNECTED,
    ERROR,
    TLS_PENDING,
    TRANSACTION,
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Capa,
    ClientConfig,
    ClientConnection,
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
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)

DIGEST = "c4c9334bac560ecc979e58001b3e22fb"
CAPA_PIPELINING = b"+OK\r\nPIPELINING\r\nUIDL\r\nTOP\r\n.\r\n"


def events_for(client: ClientConnection, data: bytes) -> list[POP3Event]:
    client.receive_data(data)
    events, blocked = drain(client)
    assert blocked is not PAUSED or state(client) is TLS_PENDING
    return events


def greeted(config: ClientConfig | None = None) -> ClientConnection:
    client = ClientConnection(config)
    assert state(client) is CONNECTED
    assert pending(client) == (None,)
    assert client.next_event() is NEED_DATA
    assert events_for(client, b"+OK " + GREETING.encode() + b"\r\n") == [Ok(text=GREETING)]
    assert state(client) is AUTHORIZATION
    assert pending(client) == ()
    return client


def logged_in(*, pipelining: bool = False) -> ClientConnection:
    client = greeted()
    assert client.send(Apop(name="mrose", digest=DIGEST)) == b"APOP mrose " + DIGEST.encode() + (
        b"\r\n"
    )
    assert events_for(client, b"+OK maildrop has 2 messages\r\n") == [
        Ok(text="maildrop has 2 messages")
    ]
    assert state(client) is TRANSACTION
    if pipelining:
        client.send(Capa())
        events_for(client, CAPA_PIPELINING)
    return client


# --- greeting ---------------------------------------------------------------------------------


def test_greeting() -> None:
    client = greeted()
    assert client.greeting == Ok(text=GREETING)
    assert client.apop_timestamp == "<1896.697170952@dbc.mtview.ca.us>"


def test_no_command_before_the_greeting() -> None:
    client = ClientConnection()
    assert client.apop_timestamp is None
    with pytest.raises(LocalProtocolError, match="greeting"):
        client.send(Capa())
    client.receive_data(b"+OK ready\r\n")
    with pytest.raises(LocalProtocolError, match="greeting"):
        client.send(Capa())  # the greeting is buffered, not read yet
    assert client.next_event() == Ok(text="ready")
    assert client.apop_timestamp is None
    assert client.send(Capa()) == b"CAPA\r\n"


def test_negative_greeting() -> None:
    client = ClientConnection()
    assert events_for(client, b"-ERR [SYS/TEMP] too busy\r\n") == [
        Err(code="SYS/TEMP", text="too busy")
    ]
    assert state(client) is CLOSED
    assert client.greeting is None
    with pytest.raises(LocalProtocolError, match="can't send"):
        client.send(Quit())
    assert events_for(client, b"") == [ConnectionClosed()]


@pytest.mark.parametrize(
    "data", [b"220 smtp.example.org ESMTP\r\n", b"* OK IMAP4rev1\r\n", b"+\r\n", b"+ x\r\n"]
)
def test_not_a_pop3_server(data: bytes) -> None:
    client = ClientConnection()
    client.receive_data(data)
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert state(client) is ERROR
    with pytest.raises(LocalProtocolError):
        client.next_event()
    with pytest.raises(LocalProtocolError):
        client.send(Capa())


@pytest.mark.parametrize("how", ["whole", "bytewise", 2])
def test_three_way_reader_check(how: str | int) -> None:
    client = logged_in()
    client.send(Stat())
    data = b"+OK 2 320\r\n"
    pieces = list(chunks(data, how))
    for piece in pieces[:-1]:
        client.receive_data(piece)
        assert client.next_event() is NEED_DATA
    client.receive_data(pieces[-1] + b"+OK")
    assert client.next_event() == Ok(text="2 320")
    # The trailing bytes answer nothing yet: the client waits for the line to end.
    assert client.next_event() is NEED_DATA
    client.receive_data(b"\r\n")
    with pytest.raises(RemoteProtocolError, match="without a command"):
        client.next_event()


# --- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "wire", "events"),
    [
        (Stat(), b"+OK 2 320\r\n", [Ok(text="2 320")]),
        (List(msg=1), b"+OK 1 120\r\n", [Ok(text="1 120")]),
        (
            List(),
            b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n",
            [Ok(text="2 messages"), ResponseData(b"1 120\r\n2 200\r\n"), EndOfResponse()],
        ),
        (List(), b"+OK\r\n.\r\n", [Ok(), EndOfResponse()]),
        (Uidl(msg=2), b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n", [Ok(text="2 QhdPYR:00WBw1Ph7x7")]),
        (
            Uidl(),
            b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n.\r\n",
            [Ok(), ResponseData(b"1 whqtswO00WBw418f9t5JxYwZ\r\n"), EndOfResponse()],
        ),
        (
            Retr(msg=1),
            b"+OK 120 octets\r\n..\r\n...x\r\n.y\r\n\r\n.\r\n",
            [Ok(text="120 octets"), ResponseData(b".\r\n..x\r\ny\r\n\r\n"), EndOfResponse()],
        ),
        (
            Top(msg=1, lines=0),
            b"+OK\r\nSubject: x\r\n\r\n.\r\n",
            [Ok(), ResponseData(b"Subject: x\r\n\r\n"), EndOfResponse()],
        ),
        (Retr(msg=1), b"-ERR [SYS/TEMP] busy\r\n", [Err(code="SYS/TEMP", text="busy")]),
        (Dele(msg=1), b"+OK message 1 deleted\r\n", [Ok(text="message 1 deleted")]),
        (Noop(), b"+OK\r\n", [Ok()]),
        (Rset(), b"+OK\r\n", [Ok()]),
        (Quit(), b"+OK bye\r\n", [Ok(text="bye")]),
    ],
)
@pytest.mark.parametrize("how", ["whole", "bytewise", "random"])
def test_responses(command: POP3Event, wire: bytes, events: list[POP3Event], how: str) -> None:
    client = logged_in()
    client.send(command)
    got: list[POP3Event] = []
    for piece in chunks(wire, how):
        got += events_for(client, piece)
    assert merged(got) == events
    assert pending(client) == ()


def test_body_bare_line_endings_are_content() -> None:
    # Only CRLF.CRLF ends a body: LF.LF and CR.CR are data.
    client = logged_in()
    client.send(Retr(msg=1))
    events = events_for(client, b"+OK\r\na\n.\nb\r.\rc\r\n.\r\n")
    assert merged(events) == [Ok(), ResponseData(b"a\n.\nb\r.\rc\r\n"), EndOfResponse()]


def test_body_chunks_stream() -> None:
    client = logged_in()
    client.send(Retr(msg=1))
    assert events_for(client, b"+OK\r\nline one\r\nline t") == [
        Ok(),
        ResponseData(b"line one\r\n"),
    ]
    assert events_for(client, b"wo\r\n.") == [ResponseData(b"line two\r\n")]
    assert events_for(client, b"\r") == []
    assert events_for(client, b"\n") == [EndOfResponse()]
    assert pending(client) == ()


def test_end_of_file_inside_a_body() -> None:
    client = logged_in()
    client.send(Retr(msg=1))
    events_for(client, b"+OK\r\npartial\r\n")
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="inside a multi-line"):
        client.next_event()


def test_end_of_file() -> None:
    client = logged_in()
    client.send(Stat())
    client.receive_data(b"+OK 1")
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed()
    assert state(client) is CLOSED
    assert pending(client) == (Stat(),)  # never answered
    with pytest.raises(LocalProtocolError, match="after end of file"):
        client.receive_data(b"x")


def test_response_line_limit() -> None:
    client = ClientConnection(ClientConfig(max_response_line=20))
    for _ in range(100):
        client.receive_data(b"+OK " + b"x" * 100)
        assert client.next_event() is NEED_DATA
    assert len(client._buf) < 20  # dropped as it arrives
    client.receive_data(b"\r\n")
    with pytest.raises(RemoteProtocolError, match="too long"):
        client.next_event()


@pytest.mark.parametrize("newline", [b"", b"\r\n"])
def test_body_line_limit(newline: bytes) -> None:
    # A body line is buffered until its end: a server sending one endless line must not
    # make the client hold it all.
    client = ClientConnection(ClientConfig(max_body_line=1000))
    events_for(client, b"+OK\r\n")
    client.send(Capa())
    assert events_for(client, b"+OK\r\n" + b"x" * 998 + b"\r\n") == [
        Ok(),
        ResponseData(b"x" * 998 + b"\r\n"),
    ]
    client.receive_data(b"y" * 1001 + newline)
    with pytest.raises(RemoteProtocolError, match="over 1000 octets"):
        client.next_event()
    assert state(client) is ERROR


def test_bare_cr_in_status_text() -> None:
    client = ClientConnection()
    client.receive_data(b"+OK a\rb\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_quit_closes() -> None:
    client = logged_in()
    client.send(Quit())
    assert events_for(client, b"+OK dewey POP3 server signing off\r\n") == [
        Ok(text="dewey POP3 server signing off")
    ]
    assert state(client) is CLOSED
    with pytest.raises(LocalProtocolError, match="can't send"):
        client.send(Noop())
    assert events_for(client, b"") == [ConnectionClosed()]


def test_quit_answered_with_err_still_closes() -> None:
    # RFC 1939 section 6: -ERR to QUIT means some deleted messages were not removed; the
    # server closes all the same.
    client = logged_in()
    client.send(Quit())
    events_for(client, b"-ERR some deleted messages not removed\r\n")
    assert state(client) is CLOSED


# --- a RETR of several megabytes ----------------------------------------------------------------


def big_message(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    alphabet = b"abcdefghij .\r\n"
    lines = []
    total = 0
    while total < size:
        n = rng.choice([0, 1, 2, 10, 76, 200, 998, 5000])
        line = bytes(rng.choice(alphabet[:12]) for _ in range(min(n, 40))) * (1 + n // 40)
        if rng.random() < 0.2:
            line = b"." + line  # a line starting with a period
        lines.append(line + b"\r\n")
        total += len(line) + 2
    return b"".join(lines)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_big_retr_in_random_chunkings(seed: int) -> None:
    body = big_message(3_000_000 + seed, seed)
    stuffer = DotStuffer()
    wire = b"+OK message follows\r\n" + stuffer.encode(body) + stuffer.end()
    client = logged_in()
    client.send(Retr(msg=1))
    rng = random.Random(seed)
    got = bytearray()
    largest_chunk = largest_event = 0
    statuses: list[POP3Event] = []
    i = 0
    while i < len(wire):
        n = rng.choice([1, 7, 100, 1500, 16384, 65536, 300_000])
        piece = wire[i : i + n]
        i += n
        largest_chunk = max(largest_chunk, len(piece))
        for event in events_for(client, piece):
            if isinstance(event, ResponseData):
                got += event.data
                largest_event = max(largest_event, len(event.data))
            else:
                statuses.append(event)
    assert statuses == [Ok(text="message follows"), EndOfResponse()]
    assert bytes(got) == body
    # Streamed: no event is larger than what arrived at once plus one partial line.
    assert largest_event <= largest_chunk + 5002


# --- CAPA ---------------------------------------------------------------------------------


def test_capa_fills_capabilities() -> None:
    client = greeted()
    assert client.capabilities is None
    client.send(Capa())
    events = events_for(client, b"+OK\r\nTOP\r\nSASL PLAIN SCRAM-SHA-256\r\nSTLS\r\nUTF8 USER\r\n")
    assert client.capabilities is None  # not complete yet
    events += events_for(client, b".\r\n")
    assert merged(events) == [
        Ok(),
        ResponseData(b"TOP\r\nSASL PLAIN SCRAM-SHA-256\r\nSTLS\r\nUTF8 USER\r\n"),
        EndOfResponse(),
    ]
    caps = client.capabilities
    assert caps is not None
    assert caps.sasl_mechanisms == frozenset({"PLAIN", "SCRAM-SHA-256"})
    assert caps.tags["UTF8"] == ("USER",)
    assert "STLS" in caps
    assert "PIPELINING" not in caps
    # A second CAPA replaces the first.
    client.send(Capa())
    events_for(client, b"+OK\r\nUSER\r\n.\r\n")
    assert client.capabilities is not None
    assert dict(client.capabilities.tags) == {"USER": ()}


def test_capa_refused() -> None:
    client = greeted()
    client.send(Capa())
    assert events_for(client, b"-ERR unknown command\r\n") == [Err(text="unknown command")]
    assert client.capabilities is None


def test_capa_size_limit() -> None:
    client = ClientConnection(ClientConfig(max_capa_size=100))
    events_for(client, b"+OK\r\n")
    client.send(Capa())
    client.receive_data(b"+OK\r\n" + b"X-TAG\r\n" * 20 + b".\r\n")
    assert client.next_event() == Ok()
    with pytest.raises(RemoteProtocolError, match="CAPA"):
        client.next_event()


# --- what may be sent when -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [Stat(), List(), Retr(msg=1), Dele(msg=1), Noop(), Rset(), Top(msg=1, lines=1), Uidl()],
)
def test_transaction_commands_need_login(command: POP3Event) -> None:
    client = greeted()
    with pytest.raises(LocalProtocolError, match="not allowed now: Not authenticated"):
        client.send(command)


@pytest.mark.parametrize(
    "command",
    [
        User(name="mrose"),
        Pass(password="x"),
        Apop(name="mrose", digest=DIGEST),
        Auth(mechanism="PLAIN"),
        Stls(),
        Utf8(),
    ],
)
def test_authorization_commands_refused_in_transaction(command: POP3Event) -> None:
    client = logged_in()
    with pytest.raises(LocalProtocolError, match="TRANSACTION"):
        client.send(command)


def test_client_state_rules() -> None:
    client = greeted()
    with pytest.raises(LocalProtocolError, match="Send USER first"):
        client.send(Pass(password="x"))
    client.send(User(name="mrose"))
    events_for(client, b"+OK\r\n")
    client.send(Pass(password="tanstaaf"))
    events_for(client, b"+OK\r\n")
    client.send(Dele(msg=2))
    events_for(client, b"+OK\r\n")
    with pytest.raises(LocalProtocolError, match="already deleted"):
        client.send(Retr(msg=2))
    client.send(Rset())
    events_for(client, b"+OK\r\n")
    assert client.send(Retr(msg=2)) == b"RETR 2\r\n"


def test_client_never_sends_responses() -> None:
    client = greeted()
    for event in (
        Ok(),
        Err(),
        ResponseData(b""),
        EndOfResponse(),
        AuthChallenge(data=b""),
        CommandRejected(reply=Err()),
        ConnectionClosed(),
    ):
        with pytest.raises(LocalProtocolError):
            client.send(event)


def test_command_line_limit() -> None:
    # RFC 2449 section 4: a command is at most 255 octets with its CRLF.
    client = greeted()
    assert client.send(User(name="u" * 248)) == b"USER " + b"u" * 248 + b"\r\n"
    events_for(client, b"-ERR no\r\n")
    with pytest.raises(LocalProtocolError, match="255"):
        client.send(User(name="u" * 249))
    assert pending(client) == ()
    assert client.send(Capa()) == b"CAPA\r\n"  # the refused command left no trace


def test_auth_initial_response_limit() -> None:
    # RFC 5034 section 4: an initial response that would make AUTH longer than 255 octets
    # must not be used; the client sends AUTH alone and answers the empty challenge.
    client = greeted()
    fits = b"\0u\0" + b"p" * 177
    line = client.send(Auth(mechanism="XOAUTH2", initial_response=fits))
    assert len(line) == 255
    events_for(client, b"-ERR [AUTH] no\r\n")
    with pytest.raises(LocalProtocolError, match="255"):
        client.send(Auth(mechanism="XOAUTH2", initial_response=fits + b"p"))
    assert pending(client) == ()
    assert client.send(Auth(mechanism="PLAIN")) == b"AUTH PLAIN\r\n"
    assert events_for(client, b"+ \r\n") == [AuthChallenge(data=b"")]
    # Answers inside the exchange are not commands: no 255-octet limit.
    long_answer = b"\0u\0" + b"p" * 1000
    assert client.send(AuthResponse(data=long_answer)) == base64.b64encode(long_answer) + b"\r\n"


# --- pipelining ---------------------------------------------------------------------------------


def test_no_pipelining_unless_offered() -> None:
    client = logged_in()
    client.send(Stat())
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        client.send(Stat())
    assert pending(client) == (Stat(),)  # the refused one was not queued
    events_for(client, b"+OK 2 320\r\n")
    client.send(Capa())
    events_for(client, b"+OK\r\nTOP\r\n.\r\n")
    client.send(Stat())
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        client.send(Stat())


def test_pipelined_responses_match_commands_in_order() -> None:
    client = logged_in(pipelining=True)
    out = b"".join(
        client.send(c) for c in (Stat(), List(), Retr(msg=1), Dele(msg=1), Uidl(msg=2), Quit())
    )
    assert out == b"STAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nUIDL 2\r\nQUIT\r\n"
    assert pending(client) == (Stat(), List(), Retr(msg=1), Dele(msg=1), Uidl(msg=2), Quit())
    events = events_for(
        client,
        b"+OK 2 320\r\n"
        b"+OK\r\n1 120\r\n2 200\r\n.\r\n"
        b"+OK\r\n+OK looks like a status\r\n.\r\n"  # a body line that reads as +OK
        b"-ERR [SYS/TEMP] not now\r\n"
        b"+OK 2 uid2\r\n"
        b"+OK bye\r\n",
    )
    assert merged(events) == [
        Ok(text="2 320"),
        Ok(),
        ResponseData(b"1 120\r\n2 200\r\n"),
        EndOfResponse(),
        Ok(),
        ResponseData(b"+OK looks like a status\r\n"),
        EndOfResponse(),
        Err(code="SYS/TEMP", text="not now"),
        Ok(text="2 uid2"),
        Ok(text="bye"),
    ]
    assert pending(client) == ()
    assert state(client) is CLOSED
    assert client.session.deleted == set()  # DELE 1 got -ERR


def test_pipelining_predicts_state() -> None:
    client = logged_in(pipelining=True)
    client.send(Dele(msg=1))
    with pytest.raises(LocalProtocolError, match="already deleted"):
        client.send(Retr(msg=1))  # as if DELE 1 succeeds
    client.send(Rset())
    client.send(Retr(msg=1))
    # DELE 1 fails after all: the prediction follows the real answers.
    events_for(client, b"-ERR no\r\n+OK\r\n+OK\r\n.\r\n")
    assert client.session.deleted == set()
    client.send(Dele(msg=2))
    events_for(client, b"+OK\r\n")
    with pytest.raises(LocalProtocolError, match="already deleted"):
        client.send(Top(msg=2, lines=0))


@pytest.mark.parametrize(
    "first",
    [
        Quit(),
        Stls(),
        Auth(mechanism="CRAM-MD5"),
        Auth(),
        User(name="mrose"),
        Pass(password="secret"),
        Apop(name="mrose", digest=DIGEST),
    ],
)
def test_commands_that_end_a_pipeline(first: POP3Event) -> None:
    client = greeted()
    client.send(Capa())
    events_for(client, CAPA_PIPELINING)
    if isinstance(first, Pass):
        client.send(User(name="mrose"))
        events_for(client, b"+OK\r\n")
    client.send(first)
    with pytest.raises(LocalProtocolError, match="must be answered"):
        client.send(Capa())
    assert pending(client) == (first,)


def test_no_pipelining_after_an_auth_answer() -> None:
    # The server may answer with one more challenge: a command sent meanwhile would be
    # read as the answer to it.
    client = greeted()
    client.send(Capa())
    events_for(client, CAPA_PIPELINING)
    client.send(Auth(mechanism="SCRAM-SHA-256"))
    events_for(client, b"+ \r\n")
    client.send(AuthResponse(data=b"n,,n=u,r=abc"))
    with pytest.raises(LocalProtocolError, match="must be answered"):
        client.send(Capa())
    assert events_for(client, b"+ cj1hYmNkZWY=\r\n") == [AuthChallenge(data=b"r=abcdef")]


# --- AUTH -------------------------------------------------------------------------------------


def test_auth_exchange() -> None:
    client = greeted()
    assert client.send(Auth(mechanism="LOGIN")) == b"AUTH LOGIN\r\n"
    assert events_for(client, b"+ VXNlcm5hbWU6\r\n") == [AuthChallenge(data=b"Username:")]
    assert client.session.in_auth
    with pytest.raises(LocalProtocolError, match="can't send"):
        client.send(Noop())
    assert client.send(AuthResponse(data=b"mrose")) == b"bXJvc2U=\r\n"
    with pytest.raises(LocalProtocolError, match="no AUTH challenge"):
        client.send(AuthResponse(data=b"again"))
    assert events_for(client, b"+ UGFzc3dvcmQ6\r\n") == [AuthChallenge(data=b"Password:")]
    client.send(AuthResponse(data=b"tanstaaf"))
    assert events_for(client, b"+OK logged in\r\n") == [Ok(text="logged in")]
    assert state(client) is TRANSACTION
    assert not client.session.in_auth


def test_auth_cancel() -> None:
    client = greeted()
    client.send(Auth(mechanism="CRAM-MD5"))
    events_for(client, b"+ PDEyMzRAeD4=\r\n")
    assert client.send(AuthCancel()) == b"*\r\n"
    assert events_for(client, b"-ERR cancelled\r\n") == [Err(text="cancelled")]
    assert state(client) is AUTHORIZATION
    assert not client.session.in_auth
    assert client.send(Capa()) == b"CAPA\r\n"


def test_auth_answer_needs_a_challenge() -> None:
    client = greeted()
    with pytest.raises(LocalProtocolError, match="no AUTH challenge"):
        client.send(AuthResponse(data=b""))
    with pytest.raises(LocalProtocolError, match="no AUTH challenge"):
        client.send(AuthCancel())


def test_auth_failure() -> None:
    client = greeted()
    client.send(Auth(mechanism="PLAIN", initial_response=b"\0u\0p"))
    assert events_for(client, b"-ERR [AUTH] invalid\r\n") == [Err(code="AUTH", text="invalid")]
    assert state(client) is AUTHORIZATION


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (Stat(), b"+ AAAA\r\n"),  # a continuation outside of AUTH
        (Auth(), b"+ AAAA\r\n"),  # a bare AUTH lists mechanisms, it has no exchange
        (Auth(mechanism="PLAIN"), b"+ not base64!\r\n"),
        (Auth(mechanism="PLAIN"), b"+ \xff\r\n"),
    ],
)
def test_bad_challenges(command: POP3Event, line: bytes) -> None:
    client = logged_in() if isinstance(command, Stat) else greeted()
    client.send(command)
    client.receive_data(line)
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert state(client) is ERROR


def test_bare_auth_lists_mechanisms() -> None:
    client = greeted()
    client.send(Auth())
    events = events_for(client, b"+OK\r\nPLAIN\r\nCRAM-MD5\r\n.\r\n")
    assert merged(events) == [Ok(), ResponseData(b"PLAIN\r\nCRAM-MD5\r\n"), EndOfResponse()]
    assert state(client) is AUTHORIZATION


# --- STLS -------------------------------------------------------------------------------------


def test_stls() -> None:
    client = greeted()
    client.send(Capa())
    events_for(client, b"+OK\r\nSTLS\r\nPIPELINING\r\n.\r\n")
    client.send(User(name="mrose"))
    events_for(client, b"+OK\r\n")
    assert client.send(Stls()) == b"STLS\r\n"
    assert events_for(client, b"+OK Begin TLS negotiation\r\n") == [
        Ok(text="Begin TLS negotiation")
    ]
    assert state(client) is TLS_PENDING
    assert client.next_event() is PAUSED
    assert client.capabilities is None  # RFC 2595 section 4: forget the old CAPA
    with pytest.raises(LocalProtocolError, match="can't send"):
        client.send(Capa())
    client.start_tls()
    assert state(client) is AUTHORIZATION
    assert client.session.tls
    assert client.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError, match="Send USER first"):
        client.send(Pass(password="x"))
    with pytest.raises(LocalProtocolError, match="TLS is already active"):
        client.send(Stls())


def test_stls_refused() -> None:
    client = greeted()
    client.send(Stls())
    assert events_for(client, b"-ERR no\r\n") == [Err(text="no")]
    assert state(client) is AUTHORIZATION
    with pytest.raises(LocalProtocolError, match="start_tls"):
        client.start_tls()


@pytest.mark.parametrize("injected", [b"+OK injected\r\n", b"-", b"\r\n"])
def test_stls_response_injection(injected: bytes) -> None:
    # Bytes after +OK to STLS came before the handshake, in plaintext: a man in the middle
    # may have put them there to be read as if they came through TLS.
    client = greeted()
    client.send(Stls())
    client.receive_data(b"+OK Begin TLS\r\n" + injected)
    assert client.next_event() == Ok(text="Begin TLS")
    assert client.next_event() is PAUSED
    with pytest.raises(RemoteProtocolError, match="after its \\+OK to STLS"):
        client.start_tls()
    assert state(client) is ERROR
    with pytest.raises(LocalProtocolError):
        client.send(Capa())
    with pytest.raises(LocalProtocolError):
        client.next_event()


# --- UTF8 -------------------------------------------------------------------------------------


def test_utf8() -> None:
    client = greeted()
    with pytest.raises(LocalProtocolError, match="send UTF8 first"):
        client.send(User(name="jürgen"))
    with pytest.raises(LocalProtocolError, match="send UTF8 first"):
        client.send(Apop(name="jürgen", digest=DIGEST))
    client.send(Utf8())
    events_for(client, b"-ERR no\r\n")
    assert not client.session.utf8
    client.send(Utf8())
    events_for(client, b"+OK UTF8 enabled\r\n")
    assert client.session.utf8
    with pytest.raises(LocalProtocolError, match="already enabled"):
        client.send(Utf8())
    assert client.send(User(name="jürgen")) == "USER jürgen\r\n".encode()
    assert events_for(client, "+OK jürgen est là\r\n".encode()) == [Ok(text="jürgen est là")]


def test_utf8_forgotten_after_stls() -> None:
    client = greeted()
    client.send(Utf8())
    events_for(client, b"+OK\r\n")
    client.send(Stls())
    events_for(client, b"+OK\r\n")
    client.start_tls()
    assert not client.session.utf8
    with pytest.raises(LocalProtocolError, match="send UTF8 first"):
        client.send(User(name="jürgen"))


def test_utf8_may_be_pipelined_before_names() -> None:
    client = greeted()
    client.send(Capa())
    events_for(client, CAPA_PIPELINING)
    client.send(Utf8())
    # Checked against the state UTF8 will have made once accepted.
    assert client.send(User(name="jürgen")) == "USER jürgen\r\n".encode()
    assert events_for(client, b"+OK\r\n+OK\r\n") == [Ok(), Ok()]
    assert client.session.utf8
    assert client.session.user_accepted
