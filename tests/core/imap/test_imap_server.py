"""The IMAP server connection: sessions, states, literals, APPEND, AUTHENTICATE, IDLE."""

from __future__ import annotations

import base64
import datetime
import random
from pathlib import Path

import pytest

from mailproto import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError
from mailproto._util import Event
from mailproto.imap import (
    AUTHENTICATED,
    LOGOUT,
    NOT_AUTHENTICATED,
    SELECTED,
    AppendData,
    AppendEnded,
    AppendStarted,
    AuthChallenge,
    AuthenticateCancel,
    AuthenticateResponse,
    CommandRejected,
    ConnectionClosed,
    ServerConfig,
    ServerConnection,
    commands,
    dump,
    format_command,
    parse_command,
    parse_response,
)
from mailproto.imap import responses as r
from mailproto.imap._state import State
from mailproto.sasl import PlainClient, PlainServer, Success, VerifyPassword

VECTORS = Path(__file__).parent.parent.parent / "vectors"
GREETING = r.Untagged(status="OK", text="ready")
INSECURE = ServerConfig(allow_insecure_auth=True)


def ok(tag: str, text: str = "done") -> r.Tagged:
    return r.Tagged(tag=tag, status="OK", text=text)


def state(conn: ServerConnection) -> State:
    return conn.state  # a call, so that mypy does not narrow across sends


def server(config: ServerConfig | None = None, *, preauth: bool = False) -> ServerConnection:
    conn = ServerConnection(config)
    assert conn.next_event() is PAUSED  # the greeting is owed
    greeting = r.Untagged(status="PREAUTH", text="hi") if preauth else GREETING
    assert conn.send(greeting).endswith(b"\r\n")
    return conn


def event(conn: ServerConnection, data: bytes) -> Event:
    conn.receive_data(data)
    ev = conn.next_event()
    assert isinstance(ev, Event), ev
    return ev


def selected(config: ServerConfig | None = None) -> ServerConnection:
    conn = server(config, preauth=True)
    ev = event(conn, b"s1 SELECT INBOX\r\n")
    assert isinstance(ev, commands.Select)
    conn.send(ok("s1"))
    assert state(conn) is SELECTED
    return conn


# --- the RFC 9051 sample session ---------------------------------------------------------


def session_messages(name: str) -> list[tuple[str, bytes]]:
    messages: list[tuple[str, bytes]] = []
    for line in (VECTORS / name).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        data = rest.encode() + b"\r\n"
        if kind == "S+":
            messages[-1] = (messages[-1][0], messages[-1][1] + data)
        else:
            assert kind in ("S:", "C:")
            messages.append((kind, data))
    return messages


@pytest.mark.parametrize("name", sorted(p.name for p in VECTORS.glob("imap-session-*.txt")))
def test_session_replayed_byte_exactly(name: str) -> None:
    conn = ServerConnection(INSECURE)
    states = []
    for kind, data in session_messages(name):
        if kind == "S:":
            assert conn.send(parse_response(data)) == data
            states.append(state(conn))
        else:
            ev = event(conn, data)
            if data.upper() == b"DONE\r\n":
                assert ev == commands.IdleDone()
            else:
                assert ev == parse_command(data)
            assert conn.next_event() is PAUSED
    assert SELECTED in states
    if name == "imap-session-rfc9051.txt":
        assert AUTHENTICATED in states
        assert state(conn) is LOGOUT
        assert conn.next_event() == ConnectionClosed()
        with pytest.raises(LocalProtocolError):
            conn.send(GREETING)
    assert conn.data_to_send() == b""


# --- greeting and states ---------------------------------------------------------------------


def test_greeting_must_be_ok_preauth_or_bye() -> None:
    conn = ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(ok("a"))
    with pytest.raises(LocalProtocolError):
        conn.send(r.Untagged(status="NO", text="x"))
    assert conn.send(r.Untagged(status="BYE", text="busy")) == b"* BYE busy\r\n"
    assert state(conn) is LOGOUT
    assert conn.next_event() == ConnectionClosed()


def test_preauth_greeting_authenticates() -> None:
    assert server(preauth=True).state is AUTHENTICATED
    assert server().state is NOT_AUTHENTICATED


def test_preauth_only_as_greeting() -> None:
    conn = server()
    with pytest.raises(LocalProtocolError):
        conn.send(r.Untagged(status="PREAUTH", text="x"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a SELECT INBOX\r\n", NOT_AUTHENTICATED),
        (b"a FETCH 1 FLAGS\r\n", NOT_AUTHENTICATED),
        (b"a FETCH 1 FLAGS\r\n", AUTHENTICATED),
        (b"a CLOSE\r\n", AUTHENTICATED),
        (b"a LOGIN u p\r\n", AUTHENTICATED),
        (b"a STARTTLS\r\n", SELECTED),
    ],
)
def test_command_not_allowed_in_state_is_bad(line: bytes, expected: object) -> None:
    if expected is SELECTED:
        conn = selected()
    else:
        conn = server(INSECURE, preauth=expected is AUTHENTICATED)
    ev = event(conn, line)
    assert isinstance(ev, CommandRejected)
    assert isinstance(ev.response, r.Tagged)
    assert ev.tag == "a"
    assert ev.response.status == "BAD"
    assert conn.next_event() is PAUSED
    conn.send(ev.response)
    assert state(conn) is expected
    ev = event(conn, b"b NOOP\r\n")
    assert ev == commands.Noop(tag="b")


def test_state_transitions_through_a_session() -> None:
    conn = server(INSECURE)
    assert isinstance(event(conn, b"a LOGIN u p\r\n"), commands.Login)
    conn.send(r.Tagged(tag="a", status="NO", text="bad password"))
    assert state(conn) is NOT_AUTHENTICATED
    assert isinstance(event(conn, b"b LOGIN u q\r\n"), commands.Login)
    conn.send(ok("b"))
    assert state(conn) is AUTHENTICATED
    assert isinstance(event(conn, b"c EXAMINE INBOX\r\n"), commands.Examine)
    conn.send(ok("c"))
    assert state(conn) is SELECTED
    assert isinstance(event(conn, b"d SELECT nothere\r\n"), commands.Select)
    conn.send(r.Tagged(tag="d", status="NO", text="no such mailbox"))
    assert state(conn) is AUTHENTICATED  # a failed SELECT closes the mailbox
    assert isinstance(event(conn, b"e SELECT INBOX\r\n"), commands.Select)
    conn.send(ok("e"))
    assert isinstance(event(conn, b"f UNSELECT\r\n"), commands.Unselect)
    conn.send(ok("f"))
    assert state(conn) is AUTHENTICATED


def test_paused_until_tagged_completion() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a NOOP\r\nb NOOP\r\n")
    assert conn.next_event() == commands.Noop(tag="a")
    assert conn.next_event() is PAUSED
    assert conn.owed_tag == "a"
    conn.send(r.Exists(count=3))  # untagged data any time
    assert conn.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        conn.send(ok("b"))  # not the outstanding tag
    conn.send(ok("a"))
    assert conn.next_event() == commands.Noop(tag="b")
    conn.send(ok("b"))
    assert conn.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError):
        conn.send(ok("c"))


def test_parse_error_with_and_without_tag() -> None:
    conn = server()
    ev = event(conn, b"a1 FROB\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.response == r.Tagged(tag="a1", status="BAD", text=ev.response.text)
    assert conn.send(ev.response).startswith(b"a1 BAD ")
    ev = event(conn, b"\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag is None
    assert isinstance(ev.response, r.Untagged)
    assert ev.response.status == "BAD"
    assert conn.next_event() is NEED_DATA  # nothing owed for an untagged BAD
    conn.send(ev.response)
    assert event(conn, b"a2 NOOP\r\n") == commands.Noop(tag="a2")


def test_too_many_errors_in_a_row() -> None:
    conn = server(ServerConfig(max_errors=3))
    for i in range(3):
        ev = event(conn, b"x%d FROB\r\n" % i)
        assert isinstance(ev, CommandRejected)
        conn.send(ev.response)
    conn.receive_data(b"y NOOP\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply_hint == r.Untagged(status="BYE", text="Too many errors")
    with pytest.raises(LocalProtocolError):
        conn.send(ok("y"))
    assert conn.send(r.Untagged(status="BYE", text="bye")) == b"* BYE bye\r\n"
    assert state(conn) is LOGOUT


def test_errors_in_a_row_reset_by_success() -> None:
    conn = server(ServerConfig(max_errors=2))
    for i in range(4):
        ev = event(conn, b"x%d FROB\r\n" % i)
        assert isinstance(ev, CommandRejected)
        conn.send(ev.response)
        assert isinstance(event(conn, b"n%d NOOP\r\n" % i), commands.Noop)
        conn.send(ok(f"n{i}"))


def test_line_too_long_is_bad_and_connection_goes_on() -> None:
    conn = server(ServerConfig(max_line_length=64))
    ev = event(conn, b"t1 NOOP " + b"x" * 100 + b"\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "t1"
    conn.send(ev.response)
    ev = event(conn, b"y" * 100 + b"\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag is None
    assert event(conn, b"t2 NOOP\r\n") == commands.Noop(tag="t2")


def test_logout() -> None:
    conn = server()
    ev = event(conn, b"z LOGOUT\r\n")
    assert ev == commands.Logout(tag="z")
    with pytest.raises(LocalProtocolError):
        conn.send(ok("z"))  # BYE comes first (RFC 9051 6.1.3)
    assert conn.send(r.Untagged(status="BYE", text="bye")) == b"* BYE bye\r\n"
    assert state(conn) is NOT_AUTHENTICATED
    assert conn.send(ok("z")) == b"z OK done\r\n"
    assert state(conn) is LOGOUT
    assert conn.next_event() == ConnectionClosed()


def test_unsolicited_bye_closes() -> None:
    conn = server()
    conn.send(r.Untagged(status="BYE", text="shutting down"))
    assert state(conn) is LOGOUT
    assert conn.next_event() == ConnectionClosed()


def test_peer_closes() -> None:
    conn = server()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    conn = server()
    conn.receive_data(b"a NOOP")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_send_rejects_non_responses() -> None:
    conn = server()
    with pytest.raises(LocalProtocolError):
        conn.send(commands.Noop(tag="a"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        conn.send(r.Continuation(text="go"))
    with pytest.raises(LocalProtocolError):
        conn.send(AuthChallenge(data=b""))


def test_enable_utf8_switches_mailbox_encoding() -> None:
    conn = server(preauth=True)
    assert isinstance(event(conn, b"e ENABLE UTF8=ACCEPT\r\n"), commands.Enable)
    conn.send(r.Enabled(capabilities=("UTF8=ACCEPT",)))
    conn.send(ok("e"))
    ev = event(conn, 's SELECT "Entwürfe"\r\n'.encode())
    assert isinstance(ev, commands.Select)
    assert ev.mailbox == "Entwürfe"


def test_config_limits_checked() -> None:
    with pytest.raises(LocalProtocolError):
        ServerConfig(max_errors=0)


# --- literals --------------------------------------------------------------------------------


def test_sync_literal_accepted_with_continuation() -> None:
    conn = server(INSECURE)
    conn.receive_data(b"a LOGIN {4}\r\n")
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b"+ Ready\r\n"
    assert conn.data_to_send() == b""
    conn.receive_data(b"user {6}\r\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"secret\r\n")
    ev2 = conn.next_event()
    assert ev2 == commands.Login(tag="a", username=b"user", password=b"secret")
    assert conn.data_to_send() == b"+ Ready\r\n"


def test_continuation_goes_out_before_a_response() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a NOOP\r\nb SELECT {5}\r\n")
    assert conn.next_event() == commands.Noop(tag="a")
    conn.send(ok("a"))
    assert conn.next_event() is NEED_DATA
    assert conn.send(r.Exists(count=1)) == b"+ Ready\r\n* 1 EXISTS\r\n"


def test_nonsync_literal_accepted_without_continuation() -> None:
    conn = server(INSECURE)
    conn.receive_data(b"a LOGIN {4+}\r\nuser {6+}\r\nsecret\r\n")
    assert conn.next_event() == commands.Login(tag="a", username=b"user", password=b"secret")
    assert conn.data_to_send() == b""


def test_refused_sync_literal_octets_are_not_read() -> None:
    conn = server(ServerConfig(max_literal_size=10, allow_insecure_auth=True))
    ev = event(conn, b"a LOGIN {100}\r\n")
    assert ev == CommandRejected(
        tag="a",
        response=r.Tagged(tag="a", status="NO", code=r.Limit(), text="Literal too big"),
    )
    assert conn.data_to_send() == b""
    conn.send(ev.response)
    assert event(conn, b"b NOOP\r\n") == commands.Noop(tag="b")


def test_refused_nonsync_literal_octets_are_skipped() -> None:
    conn = server(ServerConfig(max_literal_size=10))
    payload = b"c NOOP\r\n" * 20
    conn.receive_data(b"a LOGIN {%d+}\r\n" % len(payload) + payload + b" x\r\nb NOOP\r\n")
    ev = conn.next_event()
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "a"
    conn.send(ev.response)
    assert conn.next_event() == commands.Noop(tag="b")
    assert conn.next_event() is PAUSED


def test_literal_minus_refuses_big_nonsync_literal() -> None:
    conn = server(ServerConfig(literal_minus=True))
    ev = event(conn, b"a LOGIN {5000+}\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "a"
    conn.receive_data(b"x" * 5000 + b" y\r\n")
    conn.send(ev.response)
    assert event(conn, b"b NOOP\r\n") == commands.Noop(tag="b")


def test_message_over_limit_by_literals() -> None:
    conn = server(ServerConfig(max_message_size=30, allow_insecure_auth=True))
    ev = event(conn, b"a LOGIN {20}\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "a"


def test_refused_literal_without_tag_is_untagged_bad() -> None:
    conn = server(ServerConfig(max_literal_size=10))
    ev = event(conn, b"{100}\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag is None
    assert isinstance(ev.response, r.Untagged)


def test_unreadable_literal_size_is_fatal() -> None:
    conn = server()
    conn.receive_data(b"a LOGIN {" + b"9" * 30 + b"}\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert isinstance(info.value.reply_hint, r.Untagged)
    assert info.value.reply_hint.status == "BYE"


# --- APPEND ----------------------------------------------------------------------------------


def drain_append(conn: ServerConnection) -> tuple[bytes, int]:
    """Pull AppendData until NEED_DATA; returns the data and the most buffered."""
    out = bytearray()
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA:
            return bytes(out), 0
        if isinstance(ev, AppendEnded):
            return bytes(out), 1
        assert isinstance(ev, AppendData), ev
        out += ev.data


def test_append_streamed_with_flags_and_date() -> None:
    conn = server(preauth=True)
    ev = event(conn, b'a APPEND saved (\\Seen) "05-Jan-2024 10:00:00 +0100" {11}\r\n')
    assert isinstance(ev, AppendStarted)
    assert ev.tag == "a"
    assert ev.mailbox == "saved"
    assert ev.flags == ("\\Seen",)
    assert ev.size == 11
    assert not ev.binary
    assert ev.date == datetime.datetime(
        2024, 1, 5, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert conn.data_to_send() == b"+ Ready\r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(ok("a"))  # the message is still coming
    conn.receive_data(b"hello world\r\n")
    assert drain_append(conn) == (b"hello world", 1)
    assert conn.next_event() is PAUSED
    conn.send(ok("a"))
    assert event(conn, b"b NOOP\r\n") == commands.Noop(tag="b")


@pytest.mark.parametrize("seed", range(5))
def test_append_of_megabytes_in_random_chunks(seed: int) -> None:
    rnd = random.Random(seed)
    message = rnd.randbytes(3 * 1024 * 1024 + 17)
    conn = server(ServerConfig(append_chunk_size=4096), preauth=True)
    wire = b"a APPEND INBOX ~{%d+}\r\n" % len(message) + message + b"\r\nb NOOP\r\n"
    got = bytearray()
    events: list[Event] = []
    pos = 0
    most = 0
    while pos < len(wire):
        n = rnd.randint(1, 200_000)
        conn.receive_data(wire[pos : pos + n])
        pos += n
        while (ev := conn.next_event()) not in (NEED_DATA, PAUSED):
            assert isinstance(ev, Event)
            if isinstance(ev, AppendData):
                assert len(ev.data) <= 4096
                got += ev.data
            else:
                events.append(ev)
            if isinstance(ev, AppendEnded):
                conn.send(ok("a"))
        most = max(most, len(conn._buf))
    assert bytes(got) == message
    assert isinstance(events[0], AppendStarted)
    assert events[0].binary
    assert events[1:] == [AppendEnded(), commands.Noop(tag="b")]
    assert most <= 200_000 + 64  # memory bounded by what one receive_data brought


def test_append_mailbox_as_literal() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a APPEND {5}\r\n")
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b"+ Ready\r\n"
    ev = event(conn, b"INBOX {3+}\r\nabc\r\n")
    assert isinstance(ev, AppendStarted)
    assert ev.mailbox == "INBOX"
    assert drain_append(conn) == (b"abc", 1)


def test_append_too_big_is_refused() -> None:
    conn = server(ServerConfig(max_append_size=10), preauth=True)
    ev = event(conn, b"a APPEND INBOX {11}\r\n")
    assert isinstance(ev, CommandRejected)
    assert isinstance(ev.response, r.Tagged)
    assert ev.response.status == "NO"
    assert ev.response.code == r.TooBig()  # RFC 7889 3.1
    conn.send(ev.response)
    assert event(conn, b"b NOOP\r\n") == commands.Noop(tag="b")


def test_append_not_authenticated_is_refused_unread() -> None:
    conn = server()
    ev = event(conn, b"a APPEND INBOX {11+}\r\nhello world\r\n")
    assert isinstance(ev, CommandRejected)
    assert isinstance(ev.response, r.Tagged)
    assert ev.response.status == "BAD"
    conn.send(ev.response)
    assert conn.next_event() is NEED_DATA


def test_multiappend_refused() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a APPEND INBOX {1+}\r\nx {1+}\r\ny\r\nb NOOP\r\n")
    assert isinstance(conn.next_event(), AppendStarted)
    assert conn.next_event() == AppendData(data=b"x")
    ev = conn.next_event()
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "a"
    conn.send(ev.response)
    assert conn.next_event() == commands.Noop(tag="b")


def test_append_junk_after_message() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a APPEND INBOX {1+}\r\nx junk\r\n")
    assert isinstance(conn.next_event(), AppendStarted)
    assert conn.next_event() == AppendData(data=b"x")
    ev = conn.next_event()
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "a"


def test_append_eof_in_message() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a APPEND INBOX {10+}\r\nabc")
    assert isinstance(conn.next_event(), AppendStarted)
    assert conn.next_event() == AppendData(data=b"abc")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    conn = server(preauth=True)
    conn.receive_data(b"a APPEND INBOX {1+}\r\nx")
    assert isinstance(conn.next_event(), AppendStarted)
    assert conn.next_event() == AppendData(data=b"x")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_append_empty_message() -> None:
    conn = server(preauth=True)
    conn.receive_data(b"a APPEND INBOX {0+}\r\n\r\n")
    assert isinstance(conn.next_event(), AppendStarted)
    assert conn.next_event() == AppendEnded()


# --- AUTHENTICATE ----------------------------------------------------------------------------


def test_authenticate_plain_over_tls() -> None:
    conn = server(ServerConfig(tls=True))
    ev = event(conn, b"a AUTHENTICATE PLAIN\r\n")
    assert isinstance(ev, commands.Authenticate)
    assert ev.initial_response is None
    mech = PlainServer()
    step = mech.start(ev.initial_response)
    assert conn.next_event() is PAUSED
    assert conn.send(AuthChallenge(data=b"")) == b"+ \r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(AuthChallenge(data=b""))  # the client's answer is due first
    client = PlainClient("tim", "tanstaaftanstaaf")
    answer = base64.b64encode(client.initial_response() or b"")
    ev = event(conn, answer + b"\r\n")
    assert isinstance(ev, AuthenticateResponse)
    step = mech.receive(ev.data)
    assert step == VerifyPassword(username="tim", authzid="", password="tanstaaftanstaaf")
    assert isinstance(mech.verified(True), Success)
    assert conn.next_event() is PAUSED
    conn.send(ok("a"))
    assert state(conn) is AUTHENTICATED


def test_authenticate_sasl_ir() -> None:
    conn = server(ServerConfig(tls=True))
    ir = base64.b64encode(b"\x00tim\x00pw")
    ev = event(conn, b"a AUTHENTICATE PLAIN " + ir + b"\r\n")
    assert isinstance(ev, commands.Authenticate)
    assert ev.initial_response == b"\x00tim\x00pw"
    conn.send(ok("a"))
    assert state(conn) is AUTHENTICATED


def test_authenticate_cancel_and_bad_base64() -> None:
    conn = server(ServerConfig(tls=True))
    event(conn, b"a AUTHENTICATE PLAIN\r\n")
    conn.send(AuthChallenge(data=b"x"))
    assert event(conn, b"*\r\n") == AuthenticateCancel()
    conn.send(r.Tagged(tag="a", status="BAD", text="cancelled"))
    event(conn, b"b AUTHENTICATE PLAIN\r\n")
    conn.send(AuthChallenge(data=b""))
    ev = event(conn, b"not base64!\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "b"
    conn.send(ev.response)
    event(conn, b"c AUTHENTICATE PLAIN\r\n")
    conn.send(AuthChallenge(data=b""))
    ev = event(conn, b"abc {5}\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "c"
    conn.send(ev.response)
    assert event(conn, b"d NOOP\r\n") == commands.Noop(tag="d")


def test_authenticate_eof_during_exchange() -> None:
    conn = server(ServerConfig(tls=True))
    event(conn, b"a AUTHENTICATE PLAIN\r\n")
    conn.send(AuthChallenge(data=b""))
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


@pytest.mark.parametrize(
    "line", [b"a LOGIN u p\r\n", b"a AUTHENTICATE PLAIN\r\n", b"a AUTHENTICATE LOGIN\r\n"]
)
def test_cleartext_password_without_tls_refused(line: bytes) -> None:
    conn = server()
    ev = event(conn, line)
    assert isinstance(ev, CommandRejected)
    assert isinstance(ev.response, r.Tagged)
    assert ev.response.status == "NO"
    assert ev.response.code == r.PrivacyRequired()
    conn.send(ev.response)
    assert state(conn) is NOT_AUTHENTICATED


def test_other_mechanism_allowed_without_tls() -> None:
    conn = server()
    assert isinstance(event(conn, b"a AUTHENTICATE SCRAM-SHA-256\r\n"), commands.Authenticate)


# --- STARTTLS --------------------------------------------------------------------------------


def test_starttls() -> None:
    conn = server()
    assert not conn.tls
    assert event(conn, b"a STARTTLS\r\n") == commands.StartTLS(tag="a")
    with pytest.raises(LocalProtocolError):
        conn.start_tls()  # the OK was not sent yet
    conn.send(ok("a"))
    assert conn.next_event() is PAUSED
    conn.start_tls()
    assert conn.tls
    assert state(conn) is NOT_AUTHENTICATED
    assert isinstance(event(conn, b"b LOGIN u p\r\n"), commands.Login)
    conn.send(ok("b"))
    assert state(conn) is AUTHENTICATED


def test_starttls_twice_is_bad() -> None:
    conn = server(ServerConfig(tls=True))
    ev = event(conn, b"a STARTTLS\r\n")
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "a"


def test_starttls_refused_keeps_plaintext() -> None:
    conn = server()
    event(conn, b"a STARTTLS\r\n")
    conn.send(r.Tagged(tag="a", status="NO", text="no certificate"))
    assert not conn.tls
    assert event(conn, b"b NOOP\r\n") == commands.Noop(tag="b")


def test_starttls_command_injection() -> None:
    conn = server()
    conn.receive_data(b"a STARTTLS\r\nb LOGIN u p\r\n")
    assert conn.next_event() == commands.StartTLS(tag="a")
    conn.send(ok("a"))
    with pytest.raises(RemoteProtocolError) as info:
        conn.start_tls()
    assert info.value.reply_hint == r.Untagged(
        status="BYE", text="Command pipelining after STARTTLS"
    )
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    assert conn.send(r.Untagged(status="BYE", text="x")) == b"* BYE x\r\n"


# --- IDLE -----------------------------------------------------------------------------------


def test_idle() -> None:
    conn = selected()
    assert event(conn, b"i IDLE\r\n") == commands.Idle(tag="i")
    assert conn.next_event() is PAUSED
    assert conn.send(r.Continuation(text="idling")) == b"+ idling\r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(r.Continuation(text="again"))
    assert conn.next_event() is NEED_DATA
    assert conn.send(r.Exists(count=4)) == b"* 4 EXISTS\r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(ok("i"))  # DONE first
    assert event(conn, b"done\r\n") == commands.IdleDone()
    assert conn.next_event() is PAUSED
    conn.send(ok("i"))
    assert state(conn) is SELECTED


@pytest.mark.parametrize("line", [b"x NOOP\r\n", b"DONE {3}\r\n"])
def test_anything_but_done_during_idle_is_bad(line: bytes) -> None:
    conn = selected()
    event(conn, b"i IDLE\r\n")
    conn.send(r.Continuation(text="idling"))
    ev = event(conn, line)
    assert isinstance(ev, CommandRejected)
    assert ev.tag == "i"
    assert isinstance(ev.response, r.Tagged)
    assert ev.response.status == "BAD"
    conn.send(ev.response)
    assert event(conn, b"n NOOP\r\n") == commands.Noop(tag="n")


def test_command_rejected_event_checks_tag() -> None:
    with pytest.raises(LocalProtocolError):
        CommandRejected(tag="a", response=r.Tagged(tag="b", status="BAD", text="x"))
    with pytest.raises(LocalProtocolError):
        CommandRejected(tag="a", response=r.Exists(count=1))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        AppendData(data="text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        AppendStarted(tag="a", mailbox="INBOX", size=-1)
    assert isinstance(r.Exists(count=1), Event)  # responses are events


def test_format_command_round_trip_through_server() -> None:
    cmd = commands.Login(tag="t", username=b"us er", password=b"p\r\nw")
    conn = server(INSECURE)
    conn.receive_data(dump(format_command(cmd)))
    assert conn.next_event() == cmd
