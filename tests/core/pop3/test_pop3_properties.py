"""Hypothesis: split invariance of whole sessions, dot-stuffing round trips through both
roles, and fuzzing (whatever the peer sends, a connection answers with events,
NEED_DATA, PAUSED or RemoteProtocolError, never another exception)."""

from __future__ import annotations

import base64
import itertools
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pop3_helpers import DIGEST_MROSE, MaildropApp, Pair, drain, merged

from mailproto import NEED_DATA, PAUSED, RemoteProtocolError
from mailproto.pop3 import (
    CLOSED,
    TLS_PENDING,
    Auth,
    AuthCancel,
    AuthChallenge,
    Capa,
    ClientConnection,
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
    ServerConfig,
    ServerConnection,
    Stat,
    Top,
    Uidl,
    User,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A client's side of a session through every state and most error paths.
SESSION = (
    b"CAPA\r\n"
    b"STAT\r\n"  # not yet
    b"AUTH PLAIN\r\n" + base64.b64encode(b"\0tim\0wrong") + b"\r\n"
    b"AUTH LOGIN\r\n*\r\n"
    b"AUTH CRAM-MD5\r\n!!\r\n"  # bad base64
    b"USER mrose\r\nPASS tanstaaf\r\n"
    b"STAT\r\nLIST\r\nRETR 1\r\nBOGUS\r\nTOP 2 1\r\nDELE 1\r\nRETR 1\r\nUIDL\r\n"
    b"LIST 9\r\nRETR 0\r\nUSER a\x00b\r\n" + b"NOOP " * 60 + b"\r\n"
    b"RSET\r\nLIST 2\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n"
)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the offsets ``cuts`` (any order, out of range ones ignored)."""
    points = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def serve(data: bytes, cuts: list[int]) -> tuple[list[POP3Event], bytes]:
    """Feed ``data`` to a server cut at ``cuts``, answered by a `MaildropApp`."""
    server = ServerConnection(ServerConfig(allow_insecure_auth=True))
    app = MaildropApp(server)
    out = app.greet()
    for piece in cut(data, cuts):
        out += app.pump(piece)
    if server.state is not CLOSED:
        server.receive_data(b"")
        out += app.pump()
    return app.log, out


REFERENCE = serve(SESSION, [])


def test_reference_session() -> None:
    events, out = REFERENCE
    assert events[-2:] == [Quit(), ConnectionClosed()]
    assert Pass(password="tanstaaf") in events
    assert [line for line in out.split(b"\r\n") if line.startswith(b"-ERR")] == [
        b"-ERR Not authenticated",
        b"-ERR [AUTH] no",
        b"-ERR authentication cancelled",
        b"-ERR Invalid base64 data",
        b"-ERR Unknown command",
        b"-ERR Message 1 already deleted",
        b"-ERR No such message: 9",
        b"-ERR Invalid message number: 0",
        b"-ERR Invalid characters in command",
        b"-ERR Line too long",
    ]
    # RSET undid DELE 1.
    assert out.endswith(b"+OK dewey POP3 server signing off (2 messages left)\r\n")
    assert serve(SESSION, list(range(len(SESSION)))) == REFERENCE  # byte by byte


@FAST
@given(st.lists(st.integers(0, len(SESSION)), max_size=40))
def test_server_split_invariance(cuts: list[int]) -> None:
    assert serve(SESSION, cuts) == REFERENCE


def client_session() -> list[tuple[list[POP3Event], bytes]]:
    """(commands the client sends, bytes the server answers) of a pipelined session."""
    pair = Pair()
    steps: list[list[POP3Event]] = [
        [Capa()],
        [User(name="mrose")],
        [Pass(password="tanstaaf")],
        [Stat(), List(), Retr(msg=1), Top(msg=2, lines=2), Uidl(), Dele(msg=2)],
        [Noop(), List(msg=1)],
        [Quit()],
    ]
    out: list[tuple[list[POP3Event], bytes]] = []
    for commands in steps:
        pair.send(*commands)
        out.append((commands, pair.wire[-1][1]))
    return out


CLIENT_SESSION = client_session()


def read(cut_lists: list[list[int]]) -> list[POP3Event]:
    client = ClientConnection()
    client.receive_data(b"+OK ready <1.2@x>\r\n")
    events, _ = drain(client)
    for (commands, data), cuts in zip(CLIENT_SESSION, cut_lists, strict=False):
        for command in commands:
            client.send(command)
        for piece in cut(data, cuts):
            client.receive_data(piece)
            events += drain(client)[0]
    client.receive_data(b"")
    events += drain(client)[0]
    return merged(events)


CLIENT_REFERENCE = read([[] for _ in CLIENT_SESSION])


def test_client_reference_session() -> None:
    statuses = [e for e in CLIENT_REFERENCE if not isinstance(e, ResponseData)]
    assert len([e for e in statuses if isinstance(e, Ok)]) == 13
    assert statuses[-1] == ConnectionClosed()
    assert CLIENT_REFERENCE[-2].__class__ is Ok  # QUIT answered


@FAST
@given(
    st.lists(
        st.lists(st.integers(0, 2000), max_size=20),
        min_size=len(CLIENT_SESSION),
        max_size=len(CLIENT_SESSION),
    )
)
def test_client_split_invariance(cut_lists: list[list[int]]) -> None:
    assert read(cut_lists) == CLIENT_REFERENCE


# --- dot-stuffing through both roles ---------------------------------------------------------

_pieces = st.lists(
    st.one_of(
        st.sampled_from([b".", b"..", b"\r\n", b"\r", b"\n", b".\r\n", b"\r\n.\r\n", b"x"]),
        st.binary(max_size=8),
    ),
    max_size=30,
)


def normalized(body: bytes) -> bytes:
    """What the client must read back: bare CR and LF repaired, a final CRLF added."""
    fixed = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    return fixed if not fixed or fixed.endswith(b"\r\n") else fixed + b"\r\n"


@FAST
@example(pieces=[b"a\r", b"\n.", b"\r\n.\r\n"], cuts=[1, 2, 3])
@given(_pieces, st.lists(st.integers(0, 300), max_size=10))
def test_body_round_trip(pieces: list[bytes], cuts: list[int]) -> None:
    pair = Pair()
    pair.send(User(name="mrose"))
    pair.send(Pass(password="tanstaaf"))
    server, client = pair.server, pair.client
    client.send(Retr(msg=1))
    server.receive_data(b"RETR 1\r\n")
    assert server.next_event() == Retr(msg=1)
    wire = server.send(Ok())
    for piece in pieces:
        wire += server.send(ResponseData(piece))
    wire += server.send(EndOfResponse())
    events: list[POP3Event] = []
    for piece in cut(wire, cuts):
        client.receive_data(piece)
        events += drain(client)[0]
    body = normalized(b"".join(pieces))
    assert merged(events) == [Ok(), *([ResponseData(body)] if body else []), EndOfResponse()]
    assert server.next_event() is NEED_DATA


# --- fuzzing ---------------------------------------------------------------------------------

_fragments = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"\r\n",
                b"USER mrose\r\n",
                b"PASS tanstaaf\r\n",
                b"APOP mrose " + DIGEST_MROSE.encode() + b"\r\n",
                b"AUTH PLAIN\r\n",
                b"AUTH LOGIN\r\n",
                b"*\r\n",
                b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
                b"STLS\r\n",
                b"UTF8\r\n",
                b"CAPA\r\n",
                b"RETR 1\r\n",
                b"TOP 2 3\r\n",
                b"DELE 1\r\n",
                b"LIST\r\n",
                b"UIDL 2\r\n",
                b"RSET\r\n",
                b"QUIT\r\n",
            ]
        ),
    ),
    max_size=25,
)


@FAST
@given(_fragments, st.booleans(), st.booleans())
def test_server_fuzz(fragments: list[bytes], bytewise: bool, tls: bool) -> None:
    server = ServerConnection(ServerConfig(tls=tls, max_errors=5))
    app = MaildropApp(server)
    app.greet()
    data = b"".join(fragments)
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    error: RemoteProtocolError | None = None
    try:
        for piece in [*pieces, b""]:
            if server.state is CLOSED:
                break
            server.receive_data(piece)
            app.pump()
            if server.state is TLS_PENDING:
                server.start_tls()
                app.pump()
    except RemoteProtocolError as exc:
        error = exc
    if error is None:
        assert app.log[-1] == ConnectionClosed()
    elif error.reply_hint is not None:
        # The server can still say goodbye with the hint.
        assert isinstance(error.reply_hint, Err)
        assert server.send(error.reply_hint).startswith(b"-ERR ")


_responses = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"\r\n",
                b"+OK\r\n",
                b"+OK 2 320\r\n",
                b"-ERR [SYS/TEMP] no\r\n",
                b"+ \r\n",
                b"+ VXNlcm5hbWU6\r\n",
                b".\r\n",
                b"..\r\n",
                b"PIPELINING\r\n",
                b"+OK [IN-USE]\r\n",
            ]
        ),
    ),
    max_size=25,
)


@FAST
@given(st.integers(0, 3), _responses, st.booleans())
def test_client_fuzz(start: int, fragments: list[bytes], bytewise: bool) -> None:
    client = ClientConnection()
    if start:
        client.receive_data(b"+OK ready\r\n")
        assert drain(client)[0] == [Ok(text="ready")]
        client.send(Capa())
        client.receive_data(b"+OK\r\nPIPELINING\r\n.\r\n")
        drain(client)
        assert client.capabilities is not None
        commands: list[list[POP3Event]] = [
            [],
            [Auth(mechanism="LOGIN")],
            [User(name="mrose")],
            [Capa(), Auth()],
        ]
        for command in commands[start]:
            client.send(command)
    data = b"".join(fragments)
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    try:
        for piece in [*pieces, b""]:
            client.receive_data(piece)
            while True:
                event = client.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED:
                    client.start_tls()
                    continue
                assert isinstance(event, POP3Event)
                if isinstance(event, ConnectionClosed):
                    return
                if isinstance(event, AuthChallenge):
                    client.send(AuthCancel())
    except RemoteProtocolError:
        pass
