"""Properties of the IMAP server connection: split invariance and fuzzing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailproto import NEED_DATA, PAUSED, RemoteProtocolError
from mailproto._util import Event
from mailproto.imap import (
    AppendData,
    AppendEnded,
    AuthChallenge,
    AuthenticateCancel,
    AuthenticateResponse,
    CommandRejected,
    ConnectionClosed,
    ServerConfig,
    ServerConnection,
    commands,
)
from mailproto.imap import responses as r

SESSION = (
    b"a1 CAPABILITY\r\n"
    b"a8 AUTHENTICATE X\r\naGk=\r\n"
    b"a2 LOGIN {4}\r\nuser {6+}\r\nsecret\r\n"
    b"a3 SELECT INBOX\r\n"
    b"a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n"
    b"a5 FROB\r\n"
    b"a6 APPEND Sent (\\Seen) {40}\r\n" + bytes(range(40)) + b"\r\n"
    b"a7 IDLE\r\nDONE\r\n"
    b"a9 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n"
    b"a10 LOGOUT\r\n"
)


def respond(conn: ServerConnection, ev: Event) -> bytes:
    """What a trivial server answers to each event."""
    if isinstance(ev, commands.Idle):
        return conn.send(r.Continuation(text="idling"))
    if isinstance(ev, commands.Authenticate):
        return conn.send(AuthChallenge(data=b"go"))
    if isinstance(ev, commands.Logout):
        return conn.send(r.Untagged(status="BYE", text="bye")) + conn.send(
            r.Tagged(tag=ev.tag, status="OK", text="bye")
        )
    if isinstance(ev, commands.Command):
        return conn.send(r.Tagged(tag=ev.tag, status="OK", text="done"))
    if isinstance(ev, CommandRejected):
        return conn.send(ev.response)
    if isinstance(ev, AuthenticateResponse):
        return conn.send(r.Tagged(tag=conn.owed_tag or "", status="NO", text="no"))
    if isinstance(ev, (AppendEnded, commands.IdleDone, AuthenticateCancel)):
        tag = conn.owed_tag
        assert tag is not None
        return conn.send(r.Tagged(tag=tag, status="OK", text="done"))
    return b""


def run(chunks: list[bytes], config: ServerConfig) -> tuple[list[Event], bytes]:
    conn = ServerConnection(config)
    out = bytearray(conn.send(r.Untagged(status="OK", text="hi")))
    events: list[Event] = []
    for chunk in [*chunks, b""]:
        conn.receive_data(chunk)
        while True:
            ev = conn.next_event()
            out += conn.data_to_send()
            if ev is NEED_DATA:
                break
            if ev is PAUSED:
                conn.start_tls()  # only STARTTLS leaves the connection waiting here
                continue
            assert isinstance(ev, Event)
            if isinstance(ev, ConnectionClosed):
                return events, bytes(out)
            if isinstance(ev, AppendData) and events and isinstance(events[-1], AppendData):
                events[-1] = AppendData(data=events[-1].data + ev.data)
            else:
                events.append(ev)
            out += respond(conn, ev)
    return events, bytes(out)


CONFIG = ServerConfig(allow_insecure_auth=True, append_chunk_size=7)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[i:j] for i, j in zip([0, *points], [*points, len(data)], strict=True)]
    return [p for p in pieces if p]


def test_whole_session() -> None:
    events, out = run([SESSION], CONFIG)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "Capability", "Authenticate", "AuthenticateResponse", "Login", "Select", "Fetch",
        "CommandRejected", "AppendStarted", "AppendData", "AppendEnded", "Idle", "IdleDone",
        "Store", "Logout",
    ]  # fmt: skip
    assert events[8] == AppendData(data=bytes(range(40)))
    assert events[2] == AuthenticateResponse(data=b"hi")
    assert out.count(b"+ Ready\r\n") == 2
    assert out.endswith(b"* BYE bye\r\na10 OK bye\r\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=30))
def test_split_invariance(cuts: list[int]) -> None:
    assert run(split(SESSION, cuts), CONFIG) == run([SESSION], CONFIG)


FUZZ_CONFIG = ServerConfig(
    allow_insecure_auth=True,
    max_line_length=64,
    max_message_size=200,
    max_literal_size=50,
    max_append_size=100,
    max_errors=5,
    append_chunk_size=16,
)
PIECES = st.sampled_from(
    [
        b"\r\n", b"{5}\r\n", b"{3+}\r\n", b"~{4}\r\n", b"{99999}\r\n", b"a LOGIN u p\r\n",
        b"b SELECT INBOX\r\n", b"c APPEND INBOX ", b"d IDLE\r\n", b"DONE\r\n", b"*\r\n",
        b"e AUTHENTICATE PLAIN\r\n", b"f STARTTLS\r\n", b"g LOGOUT\r\n", b"h NOOP\r\n",
        b"i FETCH 1 FULL\r\n", b"aGVsbG8=\r\n", b" ", b"x" * 70,
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PIECES, st.binary(max_size=20)), max_size=30), st.lists(st.integers()))
def test_fuzz_only_events_or_remote_errors(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    hint: Event | None = None
    events: list[Event] = []
    try:
        events, _ = run(split(data, cuts), FUZZ_CONFIG)
    except RemoteProtocolError as exc:
        hint = exc.reply_hint
    if hint is not None:
        assert isinstance(hint, r.Untagged)
        assert hint.status == "BYE"
    assert all(isinstance(e, Event) for e in events)
