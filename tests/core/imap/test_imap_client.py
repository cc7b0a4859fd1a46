"""Tests for mailproto.imap._client: the client side of an IMAP connection."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto import NEED_DATA, PAUSED, Event, LocalProtocolError, RemoteProtocolError
from mailproto.imap import (
    ClientConfig,
    ClientConnection,
    SequenceSet,
    dump,
    format_response,
    parse_command,
)
from mailproto.imap import commands as c
from mailproto.imap import responses as r
from mailproto.imap._events import (
    AuthChallenge,
    AuthenticateCancel,
    AuthenticateResponse,
    ConnectionClosed,
    IdleStarted,
)
from mailproto.imap._state import AUTHENTICATED, ERROR, LOGOUT, NOT_AUTHENTICATED, SELECTED
from mailproto.sasl import (
    Challenge,
    NeedScramCredentials,
    PlainClient,
    ScramSha256Client,
    ScramSha256Server,
    Success,
    scram_credentials,
)

VECTORS = Path(__file__).parent.parent.parent / "vectors"
GREETING = b"* OK [CAPABILITY IMAP4rev2 SASL-IR AUTH=PLAIN] ready\r\n"


def events(conn: ClientConnection) -> list[Event]:
    """Every event available now (stops at NEED_DATA / PAUSED / ConnectionClosed)."""
    out: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        assert isinstance(event, Event)
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out


def feed(conn: ClientConnection, data: bytes) -> list[Event]:
    conn.receive_data(data)
    return events(conn)


def greeted(greeting: bytes = GREETING, config: ClientConfig | None = None) -> ClientConnection:
    conn = ClientConnection(config)
    assert len(feed(conn, greeting)) == 1
    return conn


def logged_in(greeting: bytes = GREETING) -> ClientConnection:
    conn = greeted(greeting)
    conn.send(c.Login(tag="L", username=b"u", password=b"p"))
    feed(conn, b"L OK done\r\n")
    assert conn.state is AUTHENTICATED
    return conn


def selected() -> ClientConnection:
    conn = logged_in()
    conn.send(c.Select(tag="S", mailbox="INBOX"))
    feed(conn, b"S OK [READ-WRITE] done\r\n")
    assert conn.state is SELECTED
    return conn


# --- the RFC 9051 section 8 session ------------------------------------------------------


def _session() -> list[tuple[str, bytes]]:
    """The messages of the shared vector: ("S", response) or ("C", command), CRLF ended.

    An "S+ " line goes on with the previous response (a literal's lines).
    """
    messages: list[tuple[str, bytes]] = []
    for line in (VECTORS / "imap-session-rfc9051.txt").read_bytes().split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        kind, _, rest = line.partition(b" ")
        data = rest + b"\r\n"
        if kind == b"S+":
            messages[-1] = (messages[-1][0], messages[-1][1] + data)
        else:
            assert kind in (b"S:", b"C:")
            messages.append((kind[:1].decode(), data))
    return messages


def test_rfc9051_sample_session_byte_exact() -> None:
    conn = ClientConnection()
    received: list[Event] = []
    sent: list[bytes] = []
    for who, data in _session():
        if who == "C":
            # The example writes commands in lower case: a parsed command keeps its
            # spelling, so the client sends the RFC's very bytes.
            command = parse_command(data)
            wire = conn.send(command)
            assert wire == data
            assert parse_command(wire) == command
            assert conn.data_to_send() == b""
            sent.append(wire)
            continue
        [event] = feed(conn, data)
        # Every server message is one event that writes back to the very same bytes.
        assert isinstance(event, r.Response)
        assert dump(format_response(event)) == data
        received.append(event)
    assert sent == [data for who, data in _session() if who == "C"]
    assert len(sent) == 6
    assert conn.state is LOGOUT
    assert conn.pending == ()
    kinds = [type(e).__name__ for e in received]
    assert kinds == [
        "Untagged", "Tagged",  # greeting, a001
        "Exists", "Flags", "Untagged", "List", "Tagged",  # a002
        "Fetch", "Tagged",  # a003
        "Fetch", "Tagged",  # a004
        "Fetch", "Tagged",  # a005
        "Untagged", "Tagged",  # a006
    ]  # fmt: skip
    header = received[9]
    assert isinstance(header, r.Fetch)
    body = header.attributes[0]
    assert isinstance(body, r.BodySection)
    assert body.data is not None
    assert len(body.data) == 342
    assert body.data.startswith(b"Date: Wed, 17 Jul 1996")
    assert received[-2] == r.Untagged(status="BYE", text="IMAP4rev2 server terminating connection")
    assert [e.status for e in received if isinstance(e, r.Tagged)] == ["OK"] * 6
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.next_event() == ConnectionClosed()


# --- greetings of real servers ----------------------------------------------------------

REAL_GREETINGS = [
    # Dovecot (its default login_greeting, capabilities in the greeting)
    (
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
        b"STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
        {"IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+",
         "STARTTLS", "AUTH=PLAIN"},
    ),
    # Gmail
    (b"* OK Gimap ready for requests from 192.0.2.1 h4mb12345678abc\r\n", set()),
    # Cyrus IMAP
    (
        b"* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE STARTTLS AUTH=PLAIN SASL-IR] "
        b"mail.example.org Cyrus IMAP 3.8.1 server ready\r\n",
        {"IMAP4REV1", "LITERAL+", "ID", "ENABLE", "STARTTLS", "AUTH=PLAIN", "SASL-IR"},
    ),
    # Microsoft Exchange / Outlook.com
    (
        b"* OK The Microsoft Exchange IMAP4 service is ready. "
        b"[QgBOADEAUABSADEAMwBDAEEAMAAwADAAMQAuAG4AYQBtAHAAcgBkADEAMwAuAHAAcgBvAGQA]\r\n",
        set(),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("greeting", "caps"), REAL_GREETINGS)
def test_real_server_greetings(greeting: bytes, caps: set[str]) -> None:
    conn = ClientConnection()
    [event] = feed(conn, greeting)
    assert isinstance(event, r.Untagged)
    assert event.status == "OK"
    assert conn.capabilities == caps
    assert conn.state is NOT_AUTHENTICATED


def test_gmail_capabilities_then_xoauth2_with_initial_response() -> None:
    conn = ClientConnection()
    feed(conn, REAL_GREETINGS[1][0])
    conn.send(c.Capability(tag="a1"))
    feed(
        conn,
        b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN "
        b"X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN "
        b"AUTH=OAUTHBEARER AUTH=XOAUTH\r\na1 OK Thats all she wrote! h4mb1\r\n",
    )
    assert {"SASL-IR", "AUTH=XOAUTH2", "X-GM-EXT-1"} <= conn.capabilities
    token = b"user=someone@gmail.com\x01auth=Bearer ya29.x\x01\x01"
    wire = conn.send(c.Authenticate(tag="a2", mechanism="XOAUTH2", initial_response=token))
    assert wire == b"a2 AUTHENTICATE XOAUTH2 " + base64.b64encode(token) + b"\r\n"
    feed(
        conn,
        b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 "
        b"UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED "
        b"LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584\r\n"
        b"a2 OK someone@gmail.com authenticated (Success)\r\n",
    )
    assert conn.state is AUTHENTICATED
    assert "LITERAL-" in conn.capabilities
    assert "AUTH=XOAUTH2" not in conn.capabilities


def test_preauth_and_bye_greetings() -> None:
    conn = ClientConnection()
    [event] = feed(conn, b"* PREAUTH [CAPABILITY IMAP4rev2] logged in as Smith\r\n")
    assert isinstance(event, r.Untagged)
    assert event.status == "PREAUTH"
    assert conn.state is AUTHENTICATED
    assert conn.capabilities == {"IMAP4REV2"}
    conn.send(c.Select(tag="a", mailbox="inbox"))
    conn = ClientConnection()
    feed(conn, b"* BYE Autologout; too many connections\r\n")
    assert conn.state is LOGOUT
    with pytest.raises(LocalProtocolError):
        conn.send(c.Noop(tag="a"))


@pytest.mark.parametrize(
    "greeting", [b"+ hi\r\n", b"a1 OK hi\r\n", b"* NO hi\r\n", b"* 3 EXISTS\r\n"]
)
def test_bad_greeting(greeting: bytes) -> None:
    conn = ClientConnection()
    conn.receive_data(greeting)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.state is ERROR
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(c.Noop(tag="a"))


def test_send_before_greeting() -> None:
    conn = ClientConnection()
    assert conn.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError, match="greeting"):
        conn.send(c.Noop(tag="a"))


# --- capabilities and ENABLE ------------------------------------------------------------


def test_capability_response_and_enabled() -> None:
    conn = greeted(b"* OK hi\r\n")
    assert conn.capabilities == frozenset()
    conn.send(c.Capability(tag="a"))
    feed(conn, b"* CAPABILITY IMAP4rev1 imap4rev2 ENABLE\r\na OK done\r\n")
    assert conn.capabilities == {"IMAP4REV1", "IMAP4REV2", "ENABLE"}
    conn.send(c.Login(tag="b", username=b"u", password=b"p"))
    feed(conn, b"b OK [CAPABILITY IMAP4rev2 ENABLE UTF8=ACCEPT] hi\r\n")
    assert conn.capabilities == {"IMAP4REV2", "ENABLE", "UTF8=ACCEPT"}
    assert not conn.utf8
    conn.send(c.Enable(tag="c", capabilities=("UTF8=ACCEPT",)))
    feed(conn, b"* ENABLED utf8=accept\r\nc OK enabled\r\n")
    assert conn.enabled == {"UTF8=ACCEPT"}
    assert conn.utf8
    # UTF-8 mode: mailbox names go out and come in as UTF-8.
    assert conn.send(c.Select(tag="d", mailbox="Entwürfe")) == 'd SELECT "Entwürfe"\r\n'.encode()
    [event, _] = feed(conn, '* LIST () "/" "Entwürfe"\r\nd OK done\r\n'.encode())
    assert isinstance(event, r.List)
    assert event.mailbox == "Entwürfe"


def test_login_forgets_capabilities_without_code() -> None:
    conn = greeted()
    conn.send(c.Login(tag="L", username=b"u", password=b"p"))
    feed(conn, b"L OK done\r\n")
    assert conn.capabilities == frozenset()


def test_untagged_capability_code_any_time() -> None:
    conn = greeted(b"* OK hi\r\n")
    feed(conn, b"* OK [CAPABILITY IMAP4rev2 IDLE] more\r\n")
    assert conn.capabilities == {"IMAP4REV2", "IDLE"}


def test_logindisabled_and_sasl_ir_checks() -> None:
    conn = greeted(b"* OK [CAPABILITY IMAP4rev2 LOGINDISABLED STARTTLS] hi\r\n")
    with pytest.raises(LocalProtocolError, match="LOGINDISABLED"):
        conn.send(c.Login(tag="a", username=b"u", password=b"p"))
    with pytest.raises(LocalProtocolError, match="SASL-IR"):
        conn.send(c.Authenticate(tag="a", mechanism="PLAIN", initial_response=b"x"))
    assert conn.pending == ()


# --- state checks and pipelining --------------------------------------------------------


def test_state_errors_on_send() -> None:
    conn = greeted()
    for command in (
        c.Select(tag="a", mailbox="INBOX"),
        c.Fetch(tag="a", sequence_set=SequenceSet.parse(b"1"), items="FAST"),
        c.Idle(tag="a"),
    ):
        with pytest.raises(LocalProtocolError, match="not allowed"):
            conn.send(command)
    conn = logged_in()
    with pytest.raises(LocalProtocolError, match="not allowed"):
        conn.send(c.Login(tag="x", username=b"u", password=b"p"))
    with pytest.raises(LocalProtocolError, match="not allowed"):
        conn.send(c.Close(tag="x"))
    with pytest.raises(LocalProtocolError, match="does not send"):
        conn.send(r.Tagged(tag="x", status="OK"))
    with pytest.raises(LocalProtocolError, match="IdleDone"):
        conn.send(c.IdleDone())
    with pytest.raises(LocalProtocolError, match="challenge"):
        conn.send(AuthenticateResponse(data=b""))
    assert conn.pending == ()


def test_pipelining_matches_tagged_completions() -> None:
    conn = logged_in()
    out = conn.send(c.Select(tag="s1", mailbox="INBOX"))
    # FETCH is allowed: the SELECT is assumed to succeed.
    out += conn.send(c.Fetch(tag="f1", sequence_set=SequenceSet.parse(b"1:*"), items="FAST"))
    out += conn.send(c.Noop(tag="n1"))
    assert out == b"s1 SELECT INBOX\r\nf1 FETCH 1:* FAST\r\nn1 NOOP\r\n"
    with pytest.raises(LocalProtocolError, match="in use"):
        conn.send(c.Noop(tag="f1"))
    assert [cmd.tag for cmd in conn.pending] == ["s1", "f1", "n1"]
    got = feed(conn, b"* 2 EXISTS\r\ns1 OK [READ-WRITE] done\r\n")
    assert conn.state is SELECTED
    assert got[-1] == r.Tagged(tag="s1", status="OK", code=r.ReadWrite(), text="done")
    # Completions may come in any order.
    feed(conn, b"n1 OK noop\r\n")
    assert [cmd.tag for cmd in conn.pending] == ["f1"]
    feed(conn, b"* 1 FETCH (FLAGS ())\r\nf1 OK done\r\n")
    assert conn.pending == ()


def test_failed_select_leaves_authenticated() -> None:
    conn = selected()
    conn.send(c.Select(tag="s2", mailbox="nope"))
    feed(conn, b"s2 NO [NONEXISTENT] no such mailbox\r\n")
    assert conn.state is AUTHENTICATED
    conn = selected()
    conn.send(c.Close(tag="cl"))
    feed(conn, b"cl OK closed\r\n")
    assert conn.state is AUTHENTICATED


def test_tagged_response_for_unknown_tag() -> None:
    conn = greeted()
    conn.receive_data(b"zz OK what\r\n")
    with pytest.raises(RemoteProtocolError, match="outstanding"):
        conn.next_event()


# --- literals ---------------------------------------------------------------------------


def _login_with_literal() -> c.Login:
    return c.Login(tag="a", username=b"fred", password=b"pa\r\nss")


def test_sync_literal_waits_for_continuation() -> None:
    conn = greeted()
    assert conn.send(_login_with_literal()) == b"a LOGIN fred {6}\r\n"
    assert conn.data_to_send() == b""
    with pytest.raises(LocalProtocolError, match="complete first"):
        conn.send(c.Noop(tag="b"))
    assert feed(conn, b"+ Ready for literal\r\n") == []
    assert conn.data_to_send() == b"pa\r\nss\r\n"
    assert conn.data_to_send() == b""
    conn.send(c.Noop(tag="b"))
    feed(conn, b"a OK logged in\r\nb OK done\r\n")
    assert conn.state is AUTHENTICATED


def test_two_sync_literals_need_two_continuations() -> None:
    conn = greeted()
    assert conn.send(c.Login(tag="a", username=b"\xc3\xa9", password=b"\xc3\xa8")) == (
        b"a LOGIN {2}\r\n"
    )
    feed(conn, b"+ go\r\n")
    assert conn.data_to_send() == b"\xc3\xa9 {2}\r\n"
    feed(conn, b"+ go\r\n")
    assert conn.data_to_send() == b"\xc3\xa8\r\n"


def test_no_in_place_of_continuation_cancels_command() -> None:
    conn = logged_in()
    append = c.Append(tag="ap", mailbox="INBOX", messages=(c.AppendMessage(message=b"x" * 10),))
    assert conn.send(append) == b"ap APPEND INBOX {10}\r\n"
    [event] = feed(conn, b"ap NO [TOOBIG] too big\r\n")
    assert isinstance(event, r.Tagged)
    assert event.status == "NO"
    assert conn.data_to_send() == b""
    assert conn.pending == ()
    # The next command goes out whole.
    assert conn.send(c.Noop(tag="n")) == b"n NOOP\r\n"
    conn.receive_data(b"+ unexpected\r\n")
    with pytest.raises(RemoteProtocolError, match="continuation"):
        conn.next_event()


def test_literal_plus_and_literal_minus() -> None:
    conn = logged_in(b"* OK [CAPABILITY IMAP4rev2 LITERAL+] hi\r\n")
    conn.send(c.Capability(tag="k"))
    feed(conn, b"* CAPABILITY IMAP4rev2 LITERAL+\r\nk OK done\r\n")
    big = b"y" * 5000
    out = conn.send(c.Append(tag="ap", mailbox="INBOX", messages=(c.AppendMessage(message=big),)))
    assert out == b"ap APPEND INBOX {5000+}\r\n" + big + b"\r\n"
    conn = greeted(b"* OK [CAPABILITY IMAP4rev2 LITERAL-] hi\r\n")
    assert conn.send(_login_with_literal()) == b"a LOGIN fred {6+}\r\npa\r\nss\r\n"
    conn = greeted(b"* OK [CAPABILITY IMAP4rev2 LITERAL-] hi\r\n")
    long_password = b"\n" * 4097
    assert conn.send(c.Login(tag="a", username=b"u", password=long_password)) == (
        b"a LOGIN u {4097}\r\n"
    )


def test_response_literal_limit() -> None:
    conn = greeted(config=ClientConfig(max_literal_size=10))
    feed(conn, b"* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n")
    conn.receive_data(b"* 1 FETCH (BODY[] {11}\r\n")
    with pytest.raises(RemoteProtocolError, match="too big"):
        conn.next_event()


def test_response_line_limit() -> None:
    conn = greeted(b"* OK hi\r\n", ClientConfig(max_line_length=20))
    conn.receive_data(b"* OK " + b"x" * 30 + b"\r\n")
    with pytest.raises(RemoteProtocolError, match="limit"):
        conn.next_event()


def test_unknown_quirk_refused_and_quirks_used() -> None:
    with pytest.raises(LocalProtocolError, match="quirks"):
        ClientConfig(quirks=frozenset({"nope"}))
    line = b"* OK [READ-WRITE]SELECT completed\r\n"
    strict = greeted()
    strict.receive_data(line)
    with pytest.raises(RemoteProtocolError, match="malformed"):
        strict.next_event()
    lax = greeted(config=ClientConfig(quirks=frozenset({"code-no-space"})))
    [event] = feed(lax, line)
    assert event == r.Untagged(status="OK", code=r.ReadWrite(), text="SELECT completed")


# --- AUTHENTICATE -----------------------------------------------------------------------


def test_authenticate_plain_with_sasl_ir() -> None:
    conn = greeted()
    mech = PlainClient("tim", "tanstaaftanstaaf")
    ir = mech.initial_response()
    out = conn.send(c.Authenticate(tag="a", mechanism="PLAIN", initial_response=ir))
    assert out == b"a AUTHENTICATE PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
    [event] = feed(conn, b"a OK [CAPABILITY IMAP4rev2 IDLE] Success\r\n")
    assert isinstance(event, r.Tagged)
    assert conn.state is AUTHENTICATED
    assert conn.capabilities == {"IMAP4REV2", "IDLE"}


def test_authenticate_plain_with_empty_challenge_and_cancel() -> None:
    conn = greeted(b"* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] hi\r\n")
    assert conn.send(c.Authenticate(tag="a", mechanism="PLAIN")) == b"a AUTHENTICATE PLAIN\r\n"
    with pytest.raises(LocalProtocolError, match="complete first"):
        conn.send(c.Noop(tag="b"))
    assert feed(conn, b"+ \r\n") == [AuthChallenge(data=b"")]
    with pytest.raises(LocalProtocolError):
        conn.send(c.IdleDone())
    assert conn.send(AuthenticateCancel()) == b"*\r\n"
    with pytest.raises(LocalProtocolError, match="challenge"):
        conn.send(AuthenticateCancel())
    [event] = feed(conn, b"a BAD cancelled\r\n")
    assert isinstance(event, r.Tagged)
    assert event.status == "BAD"
    assert conn.state is NOT_AUTHENTICATED
    assert conn.capabilities == {"IMAP4REV2", "AUTH=PLAIN"}


def test_authenticate_challenge_not_base64() -> None:
    conn = greeted()
    conn.send(c.Authenticate(tag="a", mechanism="PLAIN"))
    conn.receive_data(b"+ not base64!\r\n")
    with pytest.raises(RemoteProtocolError, match="base64"):
        conn.next_event()


def test_authenticate_scram_sha_256_against_scripted_server() -> None:
    """RFC 7677 section 3 exchange, carried by IMAP (the server side is mailproto.sasl)."""
    conn = greeted(b"* OK [CAPABILITY IMAP4rev2 AUTH=SCRAM-SHA-256] hi\r\n")
    client = ScramSha256Client("user", "pencil", nonce=b"rOprNGfwEbeRWgbNEkqO")
    server = ScramSha256Server(nonce=b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    creds = scram_credentials("pencil", salt=base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="),
                              iterations=4096)  # fmt: skip
    assert conn.send(c.Authenticate(tag="s", mechanism="SCRAM-SHA-256")) == (
        b"s AUTHENTICATE SCRAM-SHA-256\r\n"
    )
    step = None
    [challenge] = feed(conn, b"+ \r\n")
    assert challenge == AuthChallenge(data=b"")
    wire = conn.send(AuthenticateResponse(data=client.initial_response() or b""))
    step = server.start(base64.b64decode(wire))
    assert isinstance(step, NeedScramCredentials)
    assert step.username == "user"
    step = server.respond_with_credentials(creds)
    rounds = 0
    while isinstance(step, Challenge):
        rounds += 1
        [challenge] = feed(conn, b"+ " + base64.b64encode(step.data) + b"\r\n")
        assert isinstance(challenge, AuthChallenge)
        assert challenge.data == step.data
        wire = conn.send(AuthenticateResponse(data=client.respond(challenge.data)))
        step = server.receive(base64.b64decode(wire))
    assert isinstance(step, Success)
    assert step.data
    assert rounds == 1  # server-first
    # IMAP has no room for additional data with success in the tagged OK: it comes as
    # one more challenge (RFC 4422 section 3.6), answered with an empty line.
    [final] = feed(conn, b"+ " + base64.b64encode(step.data) + b"\r\n")
    assert isinstance(final, AuthChallenge)
    assert final.data == step.data
    assert conn.send(AuthenticateResponse(data=client.respond(final.data))) == b"\r\n"
    client.verify_success(None)
    feed(conn, b"s OK SCRAM-SHA-256 authentication successful\r\n")
    assert conn.state is AUTHENTICATED


# --- IDLE -------------------------------------------------------------------------------


def test_idle() -> None:
    conn = selected()
    assert conn.send(c.Idle(tag="i")) == b"i IDLE\r\n"
    with pytest.raises(LocalProtocolError, match="IdleDone"):
        conn.send(c.IdleDone())  # not before the "+"
    with pytest.raises(LocalProtocolError, match="complete first"):
        conn.send(c.Noop(tag="n"))
    got = feed(conn, b"+ idling\r\n* 4 EXISTS\r\n* 1 EXPUNGE\r\n")
    assert got == [IdleStarted(), r.Exists(count=4), r.Expunge(seq=1)]
    assert conn.send(c.IdleDone()) == b"DONE\r\n"
    with pytest.raises(LocalProtocolError, match="IdleDone"):
        conn.send(c.IdleDone())
    [done] = feed(conn, b"i OK IDLE terminated\r\n")
    assert isinstance(done, r.Tagged)
    assert conn.send(c.Noop(tag="n")) == b"n NOOP\r\n"
    assert conn.state is SELECTED


def test_idle_refused() -> None:
    conn = logged_in()
    conn.send(c.Idle(tag="i"))
    feed(conn, b"i BAD no idle\r\n")
    assert conn.send(c.Noop(tag="n")) == b"n NOOP\r\n"


# --- STARTTLS, LOGOUT, EOF ----------------------------------------------------------------


def test_starttls() -> None:
    conn = greeted(b"* OK [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED] hi\r\n")
    with pytest.raises(LocalProtocolError, match="start_tls"):
        conn.start_tls()
    assert conn.send(c.StartTLS(tag="t")) == b"t STARTTLS\r\n"
    feed(conn, b"t OK Begin TLS negotiation now\r\n")
    assert conn.next_event() is PAUSED
    with pytest.raises(LocalProtocolError, match="start_tls"):
        conn.send(c.Noop(tag="n"))
    conn.start_tls()
    assert conn.capabilities == frozenset()
    assert conn.send(c.Login(tag="l", username=b"u", password=b"p")) == b"l LOGIN u p\r\n"


def test_starttls_refused() -> None:
    conn = greeted()
    conn.send(c.StartTLS(tag="t"))
    feed(conn, b"t NO not now\r\n")
    with pytest.raises(LocalProtocolError):
        conn.start_tls()
    assert conn.send(c.Noop(tag="n")) == b"n NOOP\r\n"


def test_starttls_refuses_injected_response() -> None:
    conn = greeted()
    conn.send(c.StartTLS(tag="t"))
    conn.receive_data(b"t OK go\r\n* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] injected\r\n")
    [ok] = events(conn)
    assert isinstance(ok, r.Tagged)
    with pytest.raises(RemoteProtocolError, match="STARTTLS"):
        conn.start_tls()
    assert conn.state is ERROR


def test_logout_and_close() -> None:
    conn = logged_in()
    assert conn.send(c.Logout(tag="z")) == b"z LOGOUT\r\n"
    got = feed(conn, b"* BYE bye\r\nz OK done\r\n")
    assert [type(e) for e in got] == [r.Untagged, r.Tagged]
    assert conn.state is LOGOUT
    assert feed(conn, b"") == [ConnectionClosed()]


def test_eof_in_the_middle_of_a_response() -> None:
    conn = greeted()
    conn.receive_data(b"* 1 FETCH (BODY[] {5}\r\nab")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="closed"):
        conn.next_event()


def test_unsolicited_preauth_is_an_error() -> None:
    conn = greeted()
    conn.receive_data(b"* PREAUTH again\r\n")
    with pytest.raises(RemoteProtocolError, match="PREAUTH"):
        conn.next_event()


def test_bye_any_time_moves_to_logout() -> None:
    conn = selected()
    [bye] = feed(conn, b"* BYE [UNAVAILABLE] shutting down\r\n")
    assert isinstance(bye, r.Untagged)
    assert conn.state is LOGOUT


# --- properties ---------------------------------------------------------------------------

SERVER_STREAM = (
    b"* OK [CAPABILITY IMAP4rev2 LITERAL+] ready\r\n"
    b"* 1 FETCH (UID 7 BODY[] {12}\r\nHello\r\nworld FLAGS (\\Seen))\r\n"
    b"* SEARCH 1 2 3\r\n"
    b"* OK [ALERT] careful\r\n"
    b"* 3 EXISTS\r\n"
)


def _collect(chunks: list[bytes]) -> list[Event]:
    conn = ClientConnection()
    out: list[Event] = []
    for chunk in chunks:
        out += feed(conn, chunk)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SERVER_STREAM)), max_size=12))
def test_split_invariance(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    bounds = zip([0, *points], [*points, len(SERVER_STREAM)], strict=True)
    chunks = [SERVER_STREAM[a:b] for a, b in bounds if b > a]
    assert _collect(chunks) == _collect([SERVER_STREAM])
    assert len(_collect([SERVER_STREAM])) == 5


PIECES = [
    b"* OK hi\r\n",
    b"a OK done\r\n",
    b"a NO nope\r\n",
    b"+ go\r\n",
    b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n",
    b"* 1 FETCH (BODY[] {99}\r\n",
    b"* CAPABILITY IMAP4rev2 LITERAL+\r\n",
    b"* BYE bye\r\n",
    b"{",
    b"}\r\n",
    b"\r\n",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(PIECES)), max_size=8),
    st.booleans(),
)
def test_fuzz_only_events_need_data_or_remote_error(chunks: list[bytes], eof: bool) -> None:
    conn = ClientConnection(ClientConfig(max_line_length=200, max_literal_size=50))
    feed(conn, b"* OK hi\r\n")
    conn.send(c.Login(tag="a", username=b"u", password=b"p"))
    try:
        for chunk in [*chunks, *([b""] if eof else [])]:
            conn.receive_data(chunk)
            while True:
                event = conn.next_event()
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
                assert isinstance(event, Event)
            if isinstance(event, ConnectionClosed):
                break
    except RemoteProtocolError:
        assert conn.state is ERROR
        with pytest.raises(LocalProtocolError):
            conn.next_event()


def _pipelined_session(chunks: list[bytes]) -> tuple[list[Event], ClientConnection]:
    conn = ClientConnection()
    messages = _session()
    feed(conn, messages[0][1])  # the greeting
    for who, data in messages:
        if who == "C":
            conn.send(parse_command(data))  # all pipelined: each assumes the one before
    out: list[Event] = []
    for chunk in chunks:
        out += feed(conn, chunk)
    return out, conn


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_split_invariance_of_the_rfc9051_session(data: st.DataObject) -> None:
    stream = b"".join(d for who, d in _session()[1:] if who == "S")
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(stream) - 1), max_size=20))
    points = sorted(set(cuts))
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole, _ = _pipelined_session([stream])
    split, conn = _pipelined_session(chunks)
    assert split == whole
    assert len(whole) == 14
    assert conn.state is LOGOUT
    assert conn.pending == ()
