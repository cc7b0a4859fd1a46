"""The client streams large FETCH literals instead of holding them whole.

A literal of a FETCH response larger than ``ClientConfig.stream_literals_over`` comes
out as `FetchLiteralStarted`, `FetchLiteralData` pieces, then the `Fetch` response
with that item's data empty. The small thresholds here keep the tests fast; the same
code streams a 50 MB body.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto import NEED_DATA, Event, LocalProtocolError, RemoteProtocolError
from mailproto.imap import (
    AppendData,
    AppendEnded,
    AppendReady,
    AppendStarted,
    ClientConfig,
    ClientConnection,
    FetchLiteralData,
    FetchLiteralStarted,
    Section,
    SequenceSet,
    ServerConfig,
    ServerConnection,
    parse_command,
)
from mailproto.imap import commands as c
from mailproto.imap import responses as r

GREETING = b"* OK [CAPABILITY IMAP4rev2] ready\r\n"
BODY = b"".join(b"line %06d of a large message body\r\n" % i for i in range(3000))


def _client(**config: int) -> ClientConnection:
    conn = ClientConnection(ClientConfig(**config))  # type: ignore[arg-type]
    conn.receive_data(GREETING)
    assert isinstance(conn.next_event(), r.Untagged)
    conn.send(c.Login(tag="L", username=b"u", password=b"p"))
    conn.receive_data(b"L OK done\r\n")
    assert isinstance(conn.next_event(), r.Tagged)
    conn.send(c.Select(tag="S", mailbox="INBOX"))
    conn.receive_data(b"S OK [READ-WRITE] done\r\n")
    assert isinstance(conn.next_event(), r.Tagged)
    conn.send(c.Fetch(tag="F", sequence_set=SequenceSet.parse("1:*"), items="ALL"))
    return conn


def _run(conn: ClientConnection, data: bytes, sizes: list[int] | None = None) -> list[Event]:
    """Feed ``data`` in pieces of the given sizes (whole by default); collect events."""
    out: list[Event] = []
    pos = 0
    pieces = iter(sizes or [])
    while pos < len(data):
        n = next(pieces, len(data))
        conn.receive_data(data[pos : pos + max(n, 1)])
        pos += max(n, 1)
        while (event := conn.next_event()) is not NEED_DATA:
            assert isinstance(event, Event)
            out.append(event)
    return out


def _joined(events: list[Event]) -> list[Event | bytes]:
    """Events with each run of FetchLiteralData joined into the bytes it carried."""
    out: list[Event | bytes] = []
    for event in events:
        if isinstance(event, FetchLiteralData):
            if out and isinstance(out[-1], bytes):
                out[-1] += event.data
            else:
                out.append(event.data)
        else:
            out.append(event)
    return out


def test_a_large_body_is_streamed() -> None:
    conn = _client(stream_literals_over=1000, literal_chunk_size=4096)
    wire = b"* 7 FETCH (UID 42 BODY[] {%d}\r\n%s FLAGS (\\Seen))\r\nF OK done\r\n" % (
        len(BODY),
        BODY,
    )
    events = _run(conn, wire)
    pieces = [e for e in events if isinstance(e, FetchLiteralData)]
    assert all(len(p.data) <= 4096 for p in pieces)
    assert len(pieces) >= len(BODY) // 4096
    started, body, fetch, done = _joined(events)
    assert started == FetchLiteralStarted(seq=7, item=b"BODY[]", size=len(BODY))
    assert body == BODY
    assert fetch == r.Fetch(
        seq=7,
        attributes=(
            r.Uid(value=42),
            r.BodySection(section=Section(), data=b""),
            r.FetchFlags(flags=("\\Seen",)),
        ),
    )
    assert isinstance(done, r.Tagged)
    assert conn.pending == ()


def test_two_streamed_items_and_a_small_one_in_one_response() -> None:
    conn = _client(stream_literals_over=100)
    small = b"Subject: hi\r\n\r\n"
    wire = (
        b"* 3 FETCH (BODY[1] {%d}\r\n%s BODY[HEADER] {%d}\r\n%s BINARY[2]<0> ~{%d}\r\n%s)\r\n"
        % (len(BODY), BODY, len(small), small, 300, b"\x00" * 300)
    )
    out = _joined(_run(conn, wire))
    assert out[:5] == [
        FetchLiteralStarted(seq=3, item=b"BODY[1]", size=len(BODY)),
        BODY,
        FetchLiteralStarted(seq=3, item=b"BINARY[2]<0>", size=300),
        b"\x00" * 300,
        r.Fetch(
            seq=3,
            attributes=(
                r.BodySection(section=Section(part=(1,)), data=b""),
                r.BodySection(section=Section(text="HEADER"), data=small),
                r.Binary(part=(2,), origin=0, data=b""),
            ),
        ),
    ]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5000), max_size=40))
def test_split_invariance(sizes: list[int]) -> None:
    wire = b"* 1 FETCH (BODY[TEXT] {%d}\r\n%s UID 9)\r\nF OK done\r\n" % (len(BODY), BODY)
    whole = _joined(_run(_client(stream_literals_over=500), wire))
    split = _joined(_run(_client(stream_literals_over=500), wire, sizes))
    assert split == whole
    assert len(whole) == 4


def test_a_streamed_literal_may_exceed_max_literal_size() -> None:
    conn = _client(stream_literals_over=100, max_literal_size=1000)
    wire = b"* 1 FETCH (RFC822 {%d}\r\n%s)\r\n" % (len(BODY), BODY)
    started, body, fetch = _joined(_run(conn, wire))
    assert started == FetchLiteralStarted(seq=1, item=b"RFC822", size=len(BODY))
    assert body == BODY
    assert fetch == r.Fetch(seq=1, attributes=(r.Rfc822(data=b""),))


def test_literals_of_other_responses_are_not_streamed() -> None:
    # Only FETCH items stream; a big literal elsewhere is held up to max_literal_size.
    conn = _client(stream_literals_over=10)
    name = b"a mailbox with a long name"
    [listing] = _run(conn, b'* LIST () "/" {%d}\r\n%s\r\n' % (len(name), name))
    assert listing == r.List(attributes=(), delimiter="/", mailbox=name.decode())
    conn = _client(stream_literals_over=10, max_literal_size=20)
    with pytest.raises(RemoteProtocolError):
        _run(conn, b'* LIST () "/" {%d}\r\n%s\r\n' % (len(name), name))


def test_small_literals_are_not_streamed() -> None:
    conn = _client()
    [fetch] = _run(conn, b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n")
    assert fetch == r.Fetch(seq=1, attributes=(r.BodySection(section=Section(), data=b"hello"),))


def test_closing_in_the_middle_of_a_streamed_literal() -> None:
    conn = _client(stream_literals_over=10)
    events = _run(conn, b"* 1 FETCH (BODY[] {100}\r\n" + b"x" * 50)
    assert [type(e) for e in events] == [FetchLiteralStarted, FetchLiteralData]
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_chunk_size_is_checked() -> None:
    with pytest.raises(ValueError):
        ClientConfig(literal_chunk_size=0)
    with pytest.raises(LocalProtocolError):
        FetchLiteralStarted(seq=1, item=b"BODY[]", size=-1)


def test_a_literal_that_does_not_follow_an_item_name_is_held() -> None:
    # "{n+}" is no response literal of RFC 9051, but it is read like one: not streamed.
    conn = _client(stream_literals_over=10)
    [fetch] = _run(conn, b"* 1 FETCH (BODY[] {20+}\r\n%s)\r\n" % (b"y" * 20))
    assert fetch == r.Fetch(seq=1, attributes=(r.BodySection(section=Section(), data=b"y" * 20),))


# --- a streamed APPEND (client to server) ---------------------------------------------------


def _selected(capabilities: bytes = b"IMAP4rev2") -> ClientConnection:
    conn = ClientConnection()
    conn.receive_data(GREETING)
    assert isinstance(conn.next_event(), r.Untagged)
    conn.send(c.Login(tag="L", username=b"u", password=b"p"))
    conn.receive_data(b"L OK [CAPABILITY %s] done\r\n" % capabilities)
    assert isinstance(conn.next_event(), r.Tagged)
    return conn


def test_streamed_append_waits_for_the_continuation() -> None:
    conn = _selected()
    start = AppendStarted(tag="A", mailbox="Sent", flags=("\\Seen",), size=10)
    assert conn.send(start) == b"A APPEND Sent (\\Seen) {10}\r\n"
    with pytest.raises(LocalProtocolError, match="AppendReady"):
        conn.send(AppendData(data=b"0123"))
    with pytest.raises(LocalProtocolError, match="must complete first"):
        conn.send(c.Noop(tag="N"))
    conn.receive_data(b"+ Ready\r\n")
    assert conn.next_event() == AppendReady()
    assert conn.send(AppendData(data=b"0123")) == b"0123"
    with pytest.raises(LocalProtocolError, match="missing"):
        conn.send(AppendEnded())
    with pytest.raises(LocalProtocolError, match="more octets"):
        conn.send(AppendData(data=b"0123456"))
    assert conn.send(AppendData(data=b"456789")) == b"456789"
    assert conn.send(AppendEnded()) == b"\r\n"
    conn.receive_data(b"A OK [APPENDUID 7 3] done\r\n")
    done = conn.next_event()
    assert isinstance(done, r.Tagged)
    assert done.code == r.AppendUid(uidvalidity=7, uids=SequenceSet.parse("3"))
    assert conn.pending == ()
    conn.send(c.Noop(tag="N"))  # the session goes on


def test_streamed_append_with_literal_plus_and_literal8() -> None:
    conn = _selected(b"IMAP4rev2 LITERAL+ BINARY")
    date = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    start = AppendStarted(tag="A", mailbox="INBOX", date=date, size=3, binary=True)
    wire = conn.send(start)
    assert wire == b'A APPEND INBOX " 2-Jan-2024 03:04:05 +0000" ~{3+}\r\n'
    assert conn.send(AppendData(data=b"a\x00b")) == b"a\x00b"  # no "+" to wait for
    assert conn.send(AppendEnded()) == b"\r\n"
    parsed = parse_command(wire + b"a\x00b\r\n")
    assert isinstance(parsed, c.Append)
    assert parsed.messages[0].binary


def test_literal_minus_streams_small_messages_only() -> None:
    conn = _selected(b"IMAP4rev2 LITERAL-")
    assert conn.send(AppendStarted(tag="A", mailbox="INBOX", size=4096)).endswith(b"{4096+}\r\n")
    conn.send(AppendData(data=b"x" * 4096))
    conn.send(AppendEnded())
    conn.receive_data(b"A OK done\r\n")
    conn.next_event()
    assert conn.send(AppendStarted(tag="B", mailbox="INBOX", size=4097)).endswith(b"{4097}\r\n")


def test_a_refused_streamed_append() -> None:
    conn = _selected()
    conn.send(AppendStarted(tag="A", mailbox="INBOX", size=10**9))
    conn.receive_data(b"A NO [TOOBIG] too big\r\n")
    refused = conn.next_event()
    assert isinstance(refused, r.Tagged)
    assert refused.status == "NO"
    with pytest.raises(LocalProtocolError, match="without AppendStarted"):
        conn.send(AppendData(data=b"x"))
    conn.send(c.Noop(tag="N"))


def test_streamed_append_between_our_client_and_our_server() -> None:
    server = ServerConnection(ServerConfig(allow_insecure_auth=True, append_chunk_size=1000))
    client = ClientConnection()
    client.receive_data(server.send(r.Untagged(status="PREAUTH", text="hi")))
    assert isinstance(client.next_event(), r.Untagged)
    body = BODY[:5000]
    server.receive_data(client.send(AppendStarted(tag="A", mailbox="INBOX", size=len(body))))
    started = server.next_event()
    assert isinstance(started, AppendStarted)
    assert started.size == len(body)
    client.receive_data(server.data_to_send())
    assert client.next_event() == AppendReady()
    for i in range(0, len(body), 1500):
        server.receive_data(client.send(AppendData(data=body[i : i + 1500])))
    server.receive_data(client.send(AppendEnded()))
    got = b""
    while not isinstance(event := server.next_event(), AppendEnded):
        assert isinstance(event, AppendData)
        got += event.data
    assert got == body
    client.receive_data(server.send(r.Tagged(tag="A", status="OK", text="done")))
    assert isinstance(client.next_event(), r.Tagged)
