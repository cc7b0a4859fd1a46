"""Hypothesis over whole sessions: split invariance, arbitrary bytes to both roles, body
round trips through both roles, and bounded memory whatever the peer sends."""

from __future__ import annotations

import re
import tracemalloc

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from smtp_helpers import Exchange, Responder, state_of

from mailproto import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError
from mailproto.smtp import (
    CLOSED,
    TLS_PENDING,
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    ClientConnection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    ServerConfig,
    ServerConnection,
    SMTPEvent,
    StartTLS,
    Vrfy,
)

SETTINGS = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def run_server(server: ServerConnection, pieces: list[bytes]) -> list[SMTPEvent]:
    """Feed ``pieces`` one by one, answering every event as an obliging application."""
    auto_reply = Responder()
    out: list[SMTPEvent] = []
    for piece in [*pieces, b""]:
        server.receive_data(piece)
        while True:
            event = server.next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            assert isinstance(event, SMTPEvent)
            out.append(event)
            if isinstance(event, ConnectionClosed):
                return out
            auto_reply(server, event)
    raise AssertionError("the session did not end")  # pragma: no cover


def canonical(events: list[SMTPEvent]) -> list[SMTPEvent]:
    """Merge MessageData runs; drop the body of a refused message (it must be discarded,
    and how much of it came out before the problem was seen depends on the split)."""
    out: list[SMTPEvent] = []
    for e in events:
        if isinstance(e, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(out[-1].data + e.data)
        elif isinstance(e, MessageRejected) and out and isinstance(out[-1], MessageData):
            out[-1] = e
        else:
            out.append(e)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


# --- (a) split invariance ---------------------------------------------------------------

body_text = st.lists(
    st.sampled_from([b"a", b"b c", b".", b"..", b"\r\n", b"\r\n.", b"\n", b"\r", b"x" * 40]),
    max_size=20,
).map(b"".join)
BARE = re.compile(rb"(?<!\r)\n|\r(?!\n)")


def session_bytes(body: bytes, chunk: bytes) -> bytes:
    # The body as a client sends it: a period that starts a line is doubled.
    body = re.sub(rb"(\A|\r\n)\.", rb"\1..", body)
    return (
        b"EHLO client.example.net\r\n"
        b"MAIL FROM:<alice@example.net> SIZE=100 BODY=8BITMIME\r\n"
        b"RCPT TO:<bob@example.org>\r\n"
        b"RCPT TO:<carol@example.org> NOTIFY=SUCCESS,FAILURE\r\n"
        b"DATA\r\n" + body + b"\r\n.\r\n"
        b"MAIL FROM:<>\r\nRCPT TO:<postmaster>\r\n"
        b"BDAT " + str(len(chunk)).encode() + b"\r\n" + chunk + b"BDAT 0 LAST\r\n"
        b"RSET\r\nNOOP\r\nHELP\r\nQUIT\r\nafter quit\r\n"
    )


@SETTINGS
@given(
    body=body_text,
    chunk=st.binary(max_size=50),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=25),
    normalize=st.booleans(),
)
@example(body=b".\r\n..\r\n", chunk=b"\r\n.\r\n", cuts=list(range(1, 400)), normalize=False)
def test_split_invariance(body: bytes, chunk: bytes, cuts: list[int], normalize: bool) -> None:
    config = ServerConfig(bare_line_endings="normalize" if normalize else "reject")
    data = session_bytes(body, chunk)

    def server() -> ServerConnection:
        s = ServerConnection(config)
        s.send(Reply(code=220))
        return s

    whole = canonical(run_server(server(), [data]))
    assert canonical(run_server(server(), split(data, cuts))) == whole
    # The session is the one written above, whatever the body: nothing in it ends DATA.
    kinds = [type(e).__name__ for e in whole if not isinstance(e, MessageData)]
    end = "MessageRejected" if BARE.search(body) and not normalize else "EndOfMessage"
    assert kinds == [
        "Ehlo",
        "MailFrom",
        "RcptTo",
        "RcptTo",
        "Data",
        end,
        "MailFrom",
        "RcptTo",
        "Bdat",
        "EndOfChunk",
        "Bdat",
        "EndOfMessage",
        "Rset",
        "Noop",
        "Help",
        "Quit",
        "ConnectionClosed",
    ]


# --- (b) arbitrary bytes ----------------------------------------------------------------

COMMANDS = [
    b"EHLO x.example\r\n",
    b"LHLO x.example\r\n",
    b"HELO x.example\r\n",
    b"MAIL FROM:<a@example.net>\r\n",
    b"MAIL FROM:<a@example.net> SIZE=10 BODY=BINARYMIME SMTPUTF8\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 3 LAST\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AHVzZXIAcGVuY2ls\r\n",
    b"AUTH LOGIN dXNlcg==\r\n",
    b"*\r\n",
    b"AHVzZXIAcGVuY2ls\r\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"QUIT\r\n",
    b"\n.\n",
    b"\r\n",
]
garbage = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.one_of(st.sampled_from(COMMANDS), st.binary(max_size=20)), max_size=40).map(
        b"".join
    ),
)
SMALL = ServerConfig(
    max_command_line=64,
    max_text_line=80,
    max_auth_line=100,
    max_message_size=300,
    max_recipients=3,
    max_errors=5,
    allow_insecure_auth=True,
)


@SETTINGS
@given(
    data=garbage,
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
    lmtp=st.booleans(),
    small=st.booleans(),
)
def test_arbitrary_bytes_to_a_server(data: bytes, cuts: list[int], lmtp: bool, small: bool) -> None:
    server = ServerConnection(SMALL if small else None, lmtp=lmtp)
    server.send(Reply(code=220))
    try:
        events = run_server(server, split(data, cuts))
    except RemoteProtocolError as exc:
        hint = exc.reply_hint
        assert isinstance(hint, Reply)
        assert hint.code in (421, 554)
        assert server.send(hint).startswith(str(hint.code).encode())
        return
    assert all(isinstance(e, SMTPEvent) for e in events)
    assert events[-1] == ConnectionClosed()


REPLIES = [
    b"250 OK\r\n",
    b"250-a\r\n",
    b"250 2.0.0 done\r\n",
    b"334 \r\n",
    b"334 VXNlcm5hbWU6\r\n",
    b"354 go\r\n",
    b"421 bye\r\n",
    b"550 5.1.1 no\r\n",
    b"220 ready\r\n",
    b"221 bye\r\n",
]
reply_garbage = st.one_of(
    st.binary(max_size=500),
    st.lists(st.one_of(st.sampled_from(REPLIES), st.binary(max_size=10)), max_size=20).map(
        b"".join
    ),
)
CLIENT_SETUPS: dict[str, list[SMTPEvent]] = {
    "greeting": [],
    "ehlo": [Ehlo(domain="c.example")],
    "auth": [Auth(mechanism="LOGIN")],
    "transaction": [
        MailFrom(sender="a@example.net"),
        RcptTo(recipient="b@example.org"),
        Data(),
    ],
}
PREPARED = b"220 hi\r\n250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN\r\n"


@settings(deadline=None, max_examples=300)
@given(
    data=reply_garbage,
    setup=st.sampled_from(sorted(CLIENT_SETUPS)),
    bytewise=st.booleans(),
    lmtp=st.booleans(),
)
def test_arbitrary_bytes_to_a_client(data: bytes, setup: str, bytewise: bool, lmtp: bool) -> None:
    client = ClientConnection(lmtp=lmtp)
    if setup != "greeting":
        client.receive_data(PREPARED)
        assert client.next_event() == Reply(code=220, lines=("hi",))
        client.send(Lhlo(domain="c.example") if lmtp else Ehlo(domain="c.example"))
        while client.next_event() is not NEED_DATA:
            pass
        for command in CLIENT_SETUPS[setup]:
            if not isinstance(command, Ehlo):
                client.send(command)
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    try:
        for piece in [*pieces, b""]:
            client.receive_data(piece)
            while True:
                event = client.next_event()
                if event is NEED_DATA or event is PAUSED:
                    break
                assert isinstance(event, SMTPEvent)
                if isinstance(event, ConnectionClosed):
                    return
            if event is PAUSED:
                client.start_tls()  # pragma: no cover  # STARTTLS is never sent here
    except RemoteProtocolError:
        return


# --- bodies through both roles ------------------------------------------------------------


@settings(deadline=None, max_examples=200)
@given(
    pieces=st.lists(
        st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"\x00", b"\xff"])).map(
            b"".join
        ),
        max_size=12,
    )
)
def test_any_body_in_any_chunking_arrives_normalised(pieces: list[bytes]) -> None:
    client = ClientConnection()
    server = ServerConnection()
    client.receive_data(server.send(Reply(code=220)))
    client.next_event()
    wire = client.send(Ehlo(domain="c.example"))
    server.receive_data(wire)
    server.next_event()
    client.receive_data(server.send(Reply(code=250, lines=("mx", "PIPELINING"))))
    client.next_event()
    wire = b"".join(
        client.send(e)
        for e in (MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Data())
    )
    server.receive_data(wire)
    for code in (250, 250, 354):
        server.next_event()
        client.receive_data(server.send(Reply(code=code)))
        client.next_event()
    wire = b"".join(client.send(MessageData(p)) for p in pieces) + client.send(EndOfMessage())
    # What the client puts on the wire is clean: only CRLF, and one terminator at the end.
    assert re.search(rb"(?<!\r)\n|\r(?!\n)", wire) is None
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    assert b"\r\n.\r\n" not in wire[:-3]
    server.receive_data(wire + b"NOOP\r\n")
    got: list[SMTPEvent] = []
    while (next_event := server.next_event()) is not PAUSED:
        assert isinstance(next_event, SMTPEvent)
        got.append(next_event)
    body = b"".join(pieces)
    expected = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert b"".join(e.data for e in got if isinstance(e, MessageData)) == expected
    assert got[-1] == EndOfMessage()
    server.send(Reply(code=250))
    assert server.next_event() == Noop()


# --- bounded memory ---------------------------------------------------------------------

MEMORY_CASES: dict[str, tuple[bytes, bytes]] = {
    # what puts the server in the state, then what is repeated
    "command line": (b"", b"NOOP xxxxxxxxxxxxxxx"),
    "auth response": (b"AUTH PLAIN\r\n", b"QUFBQUFBQUFB"),
    "data line": (b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n", b"y" * 7),
    "data lines": (
        b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
        b"line of text\r\n",
    ),
    "bdat": (b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nBDAT 99999999999\r\n", b"z"),
}


@pytest.mark.parametrize("size", [1 << 12, 1 << 16])
@pytest.mark.parametrize("case", sorted(MEMORY_CASES))
def test_server_memory_stays_bounded(case: str, size: int) -> None:
    auto_reply = Responder()
    prefix, filler = MEMORY_CASES[case]
    server = ServerConnection(ServerConfig(tls=True, max_message_size=1 << 40))
    server.send(Reply(code=220))
    run_prefix = b"EHLO c.example\r\n" + prefix
    piece = (filler * (size // len(filler) + 1))[:size]
    tracemalloc.start()
    try:
        server.receive_data(run_prefix)
        baseline = 0
        for i in range(16 * (1 << 20) // size):  # 16 MiB in all
            server.receive_data(piece)
            while True:
                event = server.next_event()
                if event is NEED_DATA or event is PAUSED:
                    break
                assert isinstance(event, SMTPEvent)
                auto_reply(server, event)
            if i == 3:
                tracemalloc.reset_peak()
                baseline = tracemalloc.get_traced_memory()[0]
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 8 * size + (1 << 16), (case, peak - baseline)
    assert current - baseline < 4 * size + (1 << 16)


def test_client_memory_stays_bounded() -> None:
    client = ClientConnection()
    client.receive_data(b"220 hi\r\n")
    client.next_event()
    client.send(Noop())
    tracemalloc.start()
    try:
        client.receive_data(b"250-" + b"y" * (1 << 16))
        assert client.next_event() is NEED_DATA
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            client.receive_data(b"y" * (1 << 16))  # 13 MiB of one reply line
            assert client.next_event() is NEED_DATA
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - baseline < 1 << 18
    # The line over max_reply_line is refused once its end is seen.
    client.receive_data(b"\r\n")
    with pytest.raises(RemoteProtocolError, match="too long"):
        client.next_event()


# --- pairs: both sides always agree on the session ----------------------------------------

CLIENT_MOVES: list[SMTPEvent] = [
    Ehlo(domain="c.example"),
    Helo(domain="c.example"),
    Lhlo(domain="c.example"),
    MailFrom(sender="a@example.net"),
    MailFrom(sender="a@example.net", body="BINARYMIME", size=5000),
    RcptTo(recipient="b@example.org"),
    RcptTo(recipient="unknown@example.org"),
    Data(),
    Bdat(size=3),
    Bdat(size=2, last=True),
    MessageData(b"ab"),
    MessageData(b".\n.\r"),
    MessageData(b"x" * 200),
    EndOfMessage(),
    Rset(),
    Noop(),
    Vrfy(argument="bob"),
    Help(),
    StartTLS(),
    Auth(mechanism="PLAIN"),
    Auth(mechanism="PLAIN", initial_response=b"\x00user\x00pencil"),
    Auth(mechanism="LOGIN", initial_response=b"user"),
    AuthResponse(data=b"\x00user\x00pencil"),
    AuthResponse(data=b"pencil"),
    AuthCancel(),
    Quit(),
]


@settings(SETTINGS, max_examples=200)
@given(
    moves=st.lists(st.integers(min_value=0, max_value=len(CLIENT_MOVES) - 1), max_size=40),
    lmtp=st.booleans(),
    tls=st.booleans(),
)
def test_pair_sides_always_agree(moves: list[int], lmtp: bool, tls: bool) -> None:
    """Whatever a client sends (that it is allowed to send), our server and our client end
    every exchange in the same state; the server answers as the obliging application."""
    exchange = Exchange()
    client = ClientConnection(lmtp=lmtp)
    server = ServerConnection(ServerConfig(tls=tls, max_message_size=300), lmtp=lmtp)
    client.receive_data(server.send(Reply(code=220)))
    client.next_event()
    for index in moves:
        move = CLIENT_MOVES[index]
        if isinstance(move, Bdat) and move.size == 3:
            batch: list[SMTPEvent] = [move, MessageData(b"a\nb")]
        elif isinstance(move, Bdat):
            batch = [move, MessageData(b"\r\n")]
        else:
            batch = [move]
        try:
            data = client.send(batch[0])
        except LocalProtocolError:
            continue  # the client refuses what it may not send: nothing went out
        for extra in batch[1:]:
            data += client.send(extra)
        server.receive_data(data)
        exchange(client, server)
        if state_of(client) is TLS_PENDING:
            client.start_tls()
        for side in (client.session, server.session):
            assert side.lmtp == lmtp
        assert state_of(client) is state_of(server)
        assert client.extensions == server.extensions
        assert client.session.authenticated == server.session.authenticated
        assert client.session.in_auth == server.session.in_auth
        assert client.session.accepted == server.session.accepted
        assert client.session.bdat == server.session.bdat
        assert server.replies_owed == 0
        if state_of(client) is CLOSED:
            break
