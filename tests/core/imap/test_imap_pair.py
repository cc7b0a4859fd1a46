"""Our IMAP client against our IMAP server, through bytes only."""

from __future__ import annotations

from mailproto import NEED_DATA, PAUSED, Event
from mailproto.imap import ClientConnection, SequenceSet
from mailproto.imap import commands as c
from mailproto.imap import responses as r
from mailproto.imap._events import (
    AppendData,
    AppendEnded,
    AppendStarted,
    AuthChallenge,
    AuthenticateResponse,
    ConnectionClosed,
    IdleStarted,
)
from mailproto.imap._server import ServerConfig, ServerConnection
from mailproto.imap._state import AUTHENTICATED, LOGOUT, SELECTED, State
from mailproto.sasl import PlainClient


def state(conn: ClientConnection | ServerConnection) -> State:
    """The state, read through a call so that mypy does not narrow it across steps."""
    return conn.state


def pull(conn: ClientConnection | ServerConnection, data: bytes = b"") -> list[Event]:
    """Feed ``data`` (nothing when empty: b"" would mean EOF) and take every event."""
    if data:
        conn.receive_data(data)
    out: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        assert isinstance(event, Event)
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out


def test_session_with_literal_append_idle_and_logout() -> None:
    server = ServerConnection(ServerConfig(allow_insecure_auth=True))
    client = ClientConnection()
    greeting = r.Untagged(status="OK", code=r.CapabilityCode(capabilities=("IMAP4rev2",)),
                          text="ready")  # fmt: skip
    assert pull(client, server.send(greeting)) == [greeting]

    # LOGIN with a password that needs a synchronizing literal.
    login = c.Login(tag="a1", username=b"fred", password=b"se\r\ncret")
    wire = client.send(login)
    assert pull(server, wire) == []  # waiting for the literal; "+" queued
    assert pull(client, server.data_to_send()) == []  # the "+" is consumed
    assert pull(server, client.data_to_send()) == [login]
    done = r.Tagged(tag="a1", status="OK", text="LOGIN completed")
    assert pull(client, server.send(done)) == [done]
    assert state(client) is AUTHENTICATED
    assert state(server) is AUTHENTICATED

    # SELECT and FETCH pipelined; the server takes them one at a time.
    select = c.Select(tag="a2", mailbox="INBOX")
    fetch = c.Fetch(
        tag="a3", sequence_set=SequenceSet.parse(b"1"), items=(c.FetchAttr(name="UID"),)
    )
    assert pull(server, client.send(select) + client.send(fetch)) == [select]
    wire = server.send(r.Exists(count=1)) + server.send(
        r.Tagged(tag="a2", status="OK", code=r.ReadWrite(), text="SELECT completed")
    )
    assert [type(e) for e in pull(client, wire)] == [r.Exists, r.Tagged]
    assert state(client) is SELECTED
    assert pull(server) == [fetch]
    wire = server.send(r.Fetch(seq=1, attributes=(r.Uid(value=42),)))
    wire += server.send(r.Tagged(tag="a3", status="OK", text="FETCH completed"))
    got = pull(client, wire)
    assert got[0] == r.Fetch(seq=1, attributes=(r.Uid(value=42),))
    assert client.pending == ()

    # APPEND: the message literal waits for the server's "+" and is streamed there.
    message = b"Subject: hi\r\n\r\nHello\r\n"
    append = c.Append(tag="a4", mailbox="Sent", messages=(c.AppendMessage(message=message),))
    wire = client.send(append)
    assert wire == b"a4 APPEND Sent {%d}\r\n" % len(message)
    [started] = pull(server, wire)
    assert isinstance(started, AppendStarted)
    assert started.size == len(message)
    assert pull(client, server.data_to_send()) == []
    streamed = pull(server, client.data_to_send())
    assert streamed[-1] == AppendEnded()
    assert b"".join(e.data for e in streamed if isinstance(e, AppendData)) == message
    assert [
        type(e) for e in pull(client, server.send(r.Tagged(tag="a4", status="OK", text="done")))
    ] == [r.Tagged]

    # IDLE: "+" becomes IdleStarted, untagged responses flow, DONE ends it.
    idle = c.Idle(tag="a5")
    assert pull(server, client.send(idle)) == [idle]
    assert pull(client, server.send(r.Continuation(text="idling"))) == [IdleStarted()]
    assert pull(client, server.send(r.Exists(count=2))) == [r.Exists(count=2)]
    assert pull(server, client.send(c.IdleDone())) == [c.IdleDone()]
    pull(client, server.send(r.Tagged(tag="a5", status="OK", text="IDLE terminated")))
    assert client.pending == ()

    # LOGOUT.
    logout = c.Logout(tag="a6")
    assert pull(server, client.send(logout)) == [logout]
    wire = server.send(r.Untagged(status="BYE", text="bye"))
    wire += server.send(r.Tagged(tag="a6", status="OK", text="LOGOUT completed"))
    assert [type(e) for e in pull(client, wire)] == [r.Untagged, r.Tagged]
    assert state(client) is LOGOUT
    assert state(server) is LOGOUT


def test_authenticate_plain_without_initial_response() -> None:
    server = ServerConnection(ServerConfig(allow_insecure_auth=True))
    client = ClientConnection()
    pull(client, server.send(r.Untagged(status="OK", text="ready")))
    auth = c.Authenticate(tag="t1", mechanism="PLAIN")
    assert pull(server, client.send(auth)) == [auth]
    assert pull(client, server.send(AuthChallenge(data=b""))) == [AuthChallenge(data=b"")]
    mech = PlainClient("tim", "tanstaaftanstaaf")
    answer = AuthenticateResponse(data=mech.respond(b""))
    assert pull(server, client.send(answer)) == [answer]
    assert answer.data == b"\x00tim\x00tanstaaftanstaaf"
    pull(client, server.send(r.Tagged(tag="t1", status="OK", text="Success")))
    assert state(client) is AUTHENTICATED
    assert state(server) is AUTHENTICATED
